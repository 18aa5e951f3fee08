// DOM and formatting helpers of the results explorer. Every string the data holds
// (labels, image names, errors: the CSV's and the endpoint's) reaches the page as a
// text node or an attribute value, never as HTML.
//
// The explorer's modules are inlined into the CLI's HTML report by concatenation
// (native/src/report.rs): each import is one line `import { ... } from './x.js';`
// of another explorer module, and exports are `export function|const|class` only.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(e, props, children) {
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'style') Object.assign(e.style, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** An HTML element; strings among the children become text nodes. */
export function el(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element. */
export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

const INT = new Intl.NumberFormat('en-US');

/** 12,345 */
export function int(n) {
  return n === null || n === undefined ? '–' : INT.format(n);
}

/** 0.9234 -> "92.3%" */
export function pct(x, digits = 1) {
  return typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : '–';
}

/** {low, high} -> "89.1–94.7%" */
export function interval(i, digits = 1) {
  if (!i || typeof i.low !== 'number') return '';
  return `${(i.low * 100).toFixed(digits)}–${(i.high * 100).toFixed(digits)}%`;
}

/** 0.91234 -> "0.912" */
export function num(x, digits = 3) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

/** Milliseconds for people: "850 ms", "2.4 s", "3m 05s". */
export function ms(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  if (x < 1000) return `${Math.round(x)} ms`;
  if (x < 60_000) return `${(x / 1000).toFixed(1)} s`;
  const s = Math.round(x / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

/** US dollars with two decimals, or two significant digits under ten cents: $0.13, $0.00044. */
export function usd(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  const digits = x === 0 ? 2 : Math.min(10, Math.max(2, 1 - Math.floor(Math.log10(Math.abs(x)))));
  return `$${x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

/** A failure's kind (the results' `errorKind`, the summary's `failureReasons` keys) in words. */
export const REASON_NAMES = {
  refused: 'refused', outsideLabels: 'outside the label set', malformed: 'malformed answer',
  http: 'HTTP error', transport: 'transport error', image: 'image error', input: 'unusable CSV row',
  answer: 'unusable answer', unknown: 'unknown',
};

/** The run's status as a person reads it, with its style class. */
export function statusOf(data) {
  const failed = data.totals && data.totals.failed > 0;
  switch (data.status) {
    case 'completed':
      return failed
        ? { text: 'completed with failures', cls: 'warn' }
        : { text: 'completed', cls: 'ok' };
    case 'interrupted': return { text: 'interrupted', cls: 'stopped' };
    case 'aborted': return { text: 'aborted', cls: 'bad' };
    case 'running': return { text: 'running', cls: 'live' };
    default: return { text: String(data.status || 'unknown'), cls: 'stopped' };
  }
}

/** A URL a thumbnail may load: nothing that runs script. */
export function safeImageUrl(url) {
  if (typeof url !== 'string' || url === '') return null;
  if (/^\s*(javascript|vbscript):/i.test(url)) return null;
  if (/^\s*data:/i.test(url) && !/^\s*data:image\/(png|jpeg|gif|webp);/i.test(url)) return null;
  return url;
}

/**
 * The image of row `i` as the host's `thumbnail(image, i)` gives it: `{url}` safe
 * to load, or `{reason}` it cannot be shown (the host's, or a general one).
 */
export function imageOf(thumbnail, image, i) {
  let got = null;
  try {
    got = thumbnail ? thumbnail(image, i) : null;
  } catch {
    got = null;
  }
  const url = typeof got === 'string' ? safeImageUrl(got) : null;
  return url ? { url } : { reason: (got && got.reason) || 'This image cannot be shown here.' };
}

/**
 * An image element of `url`, replaced by `placeholder(why)` if it fails to load.
 */
export function imageOrPlaceholder(url, props, placeholder) {
  const img = el('img', { src: url, ...props });
  img.addEventListener('error', () => img.replaceWith(placeholder('The image could not be loaded from here.')), { once: true });
  return img;
}

// Characters that reorder text around them: the explicit embeddings and overrides
// (U+202A–U+202E), the isolates (U+2066–U+2069) and the direction marks.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * User text (a label, an image name, an error) as it may be shown: the characters
 * that reorder text written as escapes, `\u{202e}`, as the console writes them, so
 * a right-to-left override in a label cannot flip it or what follows.
 */
export function shown(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}

/** Labels and names longer than this are cut, with the whole text on hover and a click. */
export const CUT_AT = 80;

/**
 * User text as a `<bdi>` (its direction isolated from the text around it), cut to
 * `max` characters when longer: the whole text in its tooltip, and a click (or
 * Enter) shows it all in place.
 */
export function userText(text, max = CUT_AT, cls = '') {
  const full = shown(text);
  const chars = [...full];
  if (chars.length <= max) return el('bdi', { class: cls || null, text: full });
  const cut = `${chars.slice(0, max).join('')}…`;
  const e = el('bdi', {
    class: `sx-cut ${cls}`.trim(), title: full, tabindex: 0, role: 'button', 'aria-expanded': 'false',
    'aria-label': `${cut} (${int(chars.length)} characters; show all)`, text: cut,
  });
  const toggle = (ev) => {
    ev.stopPropagation();
    const open = e.getAttribute('aria-expanded') !== 'true';
    e.setAttribute('aria-expanded', String(open));
    e.textContent = open ? full : cut;
  };
  e.addEventListener('click', toggle);
  e.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(ev); } });
  return e;
}

/** User text for an attribute or an <option>: shown, and cut to `max` characters. */
export function userPlain(text, max = CUT_AT) {
  const chars = [...shown(text)];
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : chars.join('');
}
