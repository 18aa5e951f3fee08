// The explorer's view in the URL fragment, so that a link opens the same view:
// the results table's filters and sort, the per-label table's sort, the
// matrix's row shares and the column the slices break down by, as
// `#label=cat&pred=dog&dis=1&sort=-latency&norm=1&slice=site`. Labels, errors and
// columns go by their text (an index may differ in another build of the data).
// Read when the explorer is drawn and when the fragment changes; written with
// history.replaceState on every change, so that no change adds a history entry.

/** What a view holds: names, not indices; `null` where the default holds. */
export function emptyView() {
  return {
    disagreements: false, failures: false, label: null, predicted: null, noPrediction: false, text: '', error: null,
    sort: null, labelSort: null, normalise: false, slice: null,
  };
}

const sortOf = (value) => (value ? { key: value.replace(/^-/, ''), dir: value.startsWith('-') ? -1 : 1 } : null);
const sortText = (sort) => (sort ? `${sort.dir < 0 ? '-' : ''}${sort.key}` : '');

/** The view a fragment (`location.hash`, with or without its `#`) holds. */
export function readView(fragment) {
  const p = new URLSearchParams(String(fragment || '').replace(/^#/, ''));
  const view = emptyView();
  view.disagreements = p.get('dis') === '1';
  view.failures = p.get('fail') === '1';
  view.label = p.get('label');
  view.predicted = p.get('pred');
  view.noPrediction = p.get('nopred') === '1';
  view.text = p.get('q') || '';
  view.error = p.get('error');
  view.sort = sortOf(p.get('sort'));
  view.labelSort = sortOf(p.get('lsort'));
  view.normalise = p.get('norm') === '1';
  view.slice = p.get('slice');
  return view;
}

/** The fragment of `view`, without its `#`; empty for the default view. */
export function viewFragment(view) {
  const p = new URLSearchParams();
  if (view.disagreements) p.set('dis', '1');
  if (view.failures) p.set('fail', '1');
  if (view.label !== null) p.set('label', view.label);
  if (view.predicted !== null) p.set('pred', view.predicted);
  if (view.noPrediction) p.set('nopred', '1');
  if (view.text) p.set('q', view.text);
  if (view.error !== null) p.set('error', view.error);
  if (view.sort && !(view.sort.key === 'row' && view.sort.dir > 0)) p.set('sort', sortText(view.sort));
  if (view.labelSort) p.set('lsort', sortText(view.labelSort));
  if (view.normalise) p.set('norm', '1');
  if (view.slice !== null && view.slice !== undefined) p.set('slice', view.slice);
  return p.toString();
}

/** Puts `fragment` in the address bar without a history entry (nothing when it is there already). */
export function showFragment(fragment) {
  const want = fragment ? `#${fragment}` : '';
  if (location.hash === want || (!fragment && !location.hash)) return;
  try {
    history.replaceState(history.state, '', `${location.pathname}${location.search}${want}`);
  } catch {
    // A page whose history cannot be written: the view still works, without a link.
  }
}

/** The compare view's state: which rows show (a cell of the paired table, or
 * `differ`, `failed`), a label, a search, the per-label chart's score. */
export function emptyCompareView() {
  return { show: 'all', label: null, text: '', metric: null };
}

/** The compare view a fragment holds (`#show=onlyBRight&label=cat&q=x&metric=recall`). */
export function readCompareView(fragment) {
  const p = new URLSearchParams(String(fragment || '').replace(/^#/, ''));
  const view = emptyCompareView();
  view.show = p.get('show') || 'all';
  view.label = p.get('label');
  view.text = p.get('q') || '';
  view.metric = p.get('metric');
  return view;
}

/** The fragment of a compare view, without its `#`; empty for the default view. */
export function compareViewFragment(view) {
  const p = new URLSearchParams();
  if (view.show && view.show !== 'all') p.set('show', view.show);
  if (view.label !== null && view.label !== undefined) p.set('label', view.label);
  if (view.text) p.set('q', view.text);
  if (view.metric && view.metric !== 'f1') p.set('metric', view.metric);
  return p.toString();
}
