// The results explorer in the page: live during a run, final at its end, and for
// an earlier run opened from its files ("Open a finished run") without running it
// again. The data comes from the core through the wasm face (explorerData), the
// same shape the CLI embeds in its HTML report; the renderer is the report's.
// Thumbnails are the chosen images folder's files, as object URLs.

import { ExplorerStream, explorerData, runIdOfFileName } from './pkg/shadow_wasm.js';
import { renderExplorer } from './explorer/explorer.js';
import { now } from './runner.js';

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  e.append(...children);
  return e;
}

/** Whether JSON-lines `text` is a batch-API run's provider journal (its lines are records). */
function isProviderJournal(text) {
  const first = text.split('\n').find((l) => l.trim() !== '');
  try { return first !== undefined && 'record' in JSON.parse(first); } catch { return false; }
}

/** Which of a run's files `file` is, by its name, else by its content. A results
 * file (.jsonl) is not read here: it is streamed to the builder (a run of
 * 10,000,000 rows has a 3 GB one, more than a string can hold). */
export async function classify(file) {
  const name = file.name;
  // A batch-API run's provider journal (ids of its provider batches): a run
  // file, but not one the explorer reads. Its first line says.
  const head = name.endsWith('.jsonl') ? await file.slice(0, 64 * 1024).text() : null;
  if (name.includes('shadow-mode-batch-provider-') || (head !== null && isProviderJournal(head))) {
    return { kind: 'provider' };
  }
  if (name.endsWith('.jsonl')) return { kind: 'results' };
  const text = await file.text();
  // By name when it is a run's: a long run's summary is too big to parse twice.
  if (runIdOfFileName(name) !== undefined && name.includes('-progress-')) return { kind: 'progress', text };
  if (runIdOfFileName(name) !== undefined && name.endsWith('.json')) return { kind: 'summary', text };
  let value = null;
  try { value = JSON.parse(text); } catch { /* JSON lines, or not a run file */ }
  if (value && typeof value === 'object' && 'evaluation' in value) return { kind: 'summary', text };
  if (value && typeof value === 'object' && 'overallProgress' in value) return { kind: 'progress', text };
  if (value === null && text.trimStart().startsWith('{')) return { kind: 'results', text };
  return { kind: 'unknown', text };
}

/** The explorer's data of a finished run from its classified files: the results
 * streamed through the core in chunks (twice when a row is written twice). */
async function openedData(got) {
  const runId = [got.summary, got.progress, got.results]
    .map((f) => f && runIdOfFileName(f.name)).find((id) => id !== undefined);
  const stream = new ExplorerStream(got.summary?.text, got.progress?.text, runId);
  if (got.results) {
    do {
      if (got.results.text !== undefined) {
        stream.push(new TextEncoder().encode(got.results.text));
      } else {
        const reader = got.results.file.stream().getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          stream.push(value);
        }
      }
    } while (stream.endPass());
  }
  return stream.finish();
}

/** A live run's `{csvSample, precision}` (the core's, as its summary will hold them), those it has. */
function liveSampling(run) {
  const { sample, precision } = run.sampling(now());
  return { ...(sample ? { csvSample: sample } : {}), ...(precision ? { precision } : {}) };
}

export class ExplorerPanel {
  /**
   * @param section     the page's explorer section (filled here)
   * @param imageFiles  () => the chosen images folder (runner.js ImageFiles)
   */
  constructor(section, imageFiles) {
    this.section = section;
    this.imageFiles = imageFiles;
    this.urls = new Map();
    this.view = null;
    this.lastBuild = 0;
    this.buildCost = 0;
    this.timer = null;
    const input = el('input', { type: 'file', multiple: true, accept: '.jsonl,.json,application/json', id: 'open-run-files' });
    input.setAttribute('aria-describedby', 'open-run-hint');
    input.addEventListener('change', () => this.open([...input.files]).catch((e) => this.error(String(e.message || e))));
    this.message = el('p', { className: 'error', hidden: true, role: 'alert' });
    this.message.id = 'explorer-error';
    this.container = el('div', { id: 'explorer' });
    section.replaceChildren(
      el('h2', { textContent: 'Results explorer' }),
      el('details', { id: 'open-run' },
        el('summary', { textContent: 'Open a finished run' }),
        el('p', { id: 'open-run-hint', className: 'hint', textContent:
          'Choose its results file (shadow-mode-batch-results-….jsonl) and, if there is one, its summary '
          + '(shadow-mode-batch-….json) or progress file; a batch-API run\'s opens the same way (its provider journal '
          + 'may be among the files chosen). Nothing is sent anywhere. For thumbnails, choose the '
          + 'images folder under Data above.' }),
        el('label', { textContent: 'Run files ' }, input)),
      this.message,
      this.container);
  }

  error(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  thumbnail(image) {
    // Like the HTML report, the page fetches no image from elsewhere: that would
    // tell the image's host who looks at the results.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(image)) return { reason: 'A remote image: not loaded here.' };
    if (/^data:/i.test(image)) return { reason: 'An image given as a data URL: the results keep only its start.' };
    const files = this.imageFiles();
    if (!files || files.size === 0) return { reason: 'Choose the images folder (under Data) to see the images.' };
    const file = files.lookup(image);
    if (!file) return { reason: 'Not in the chosen images folder.' };
    let url = this.urls.get(file);
    if (!url) {
      url = URL.createObjectURL(file);
      this.urls.set(file, url);
    }
    return url;
  }

  show(data) {
    this.error('');
    this.data = data;
    if (this.view) {
      this.view.update(data);
    } else {
      this.view = renderExplorer(this.container, data, { thumbnail: (image) => this.thumbnail(image) });
    }
  }

  build(summary, progress, lines, live, labels) {
    const started = performance.now();
    const data = explorerData(summary, progress, lines, live, labels);
    this.buildCost = performance.now() - started;
    return data;
  }

  /** During a run: at most one rebuild per 1.5 s (longer when rebuilding is slow). */
  live(state) {
    const due = this.lastBuild + Math.max(1500, this.buildCost * 5);
    clearTimeout(this.timer);
    const run = () => {
      if (state.summary) return; // finished() has the last word
      this.lastBuild = performance.now();
      const progress = JSON.stringify(state.run.progress(now()));
      const data = this.build(undefined, progress, state.lines.join(''), true, state.run.labels());
      // A run with a baseline column: the comparison so far (the core's, as the summary will hold it).
      if (state.baselineColumn && data) data.comparison = state.run.comparison(now());
      // A sampled run: what its summary will say of the sample and the stop, so far.
      if (data) Object.assign(data, liveSampling(state.run));
      this.show(data);
    };
    if (performance.now() >= due) run();
    else this.timer = setTimeout(run, due - performance.now());
  }

  /** At the end of a run, from its summary. */
  finished(state) {
    clearTimeout(this.timer);
    this.show(this.build(JSON.stringify(state.summary), undefined, state.lines.join(''), false, undefined));
  }

  /** An earlier run, from its files. */
  async open(files) {
    if (!files.length) return;
    const got = {};
    for (const file of files) {
      const { kind, text } = await classify(file);
      if (kind === 'unknown') {
        this.error(`${file.name}: not a file of a shadow-batch run (choose its results .jsonl, summary or progress .json).`);
        return;
      }
      if (kind === 'provider') continue;
      got[kind] = { file, text, name: file.name };
    }
    if (Object.keys(got).length === 0) {
      this.error(`${files.map((f) => f.name).join(', ')}: the provider journal of a batch-API run holds no results; choose its results .jsonl, summary or progress .json.`);
      return;
    }
    try {
      this.show(await openedData(got));
    } catch (e) {
      const names = Object.values(got).map((f) => f.name).join(', ');
      this.error(`${names}: ${e.message || e}`);
    }
  }
}
