// Drives the wasm core in the page, as the native CLI drives it in a terminal:
// drain poll(), perform each send with fetch, feed answers back with handle(),
// sleep until pollTimeout(). No policy lives here: pacing, retries and what the
// reports say are the core's.

import { imageDataUrl } from './pkg/shadow_wasm.js';

export const now = () => Math.floor(performance.timeOrigin + performance.now());

/** Loads an item's image as the URL the endpoint receives. */
export async function imageUrl(image, files) {
  if (image.kind === 'url' || image.kind === 'dataUrl') return image.value;
  if (image.kind === 'absolutePath') {
    throw new Error(`${image.value}: absolute paths cannot be read in the browser; use paths relative to the images folder`);
  }
  const file = files.lookup(image.value);
  if (!file) {
    throw new Error(files.size === 0
      ? `${image.value}: no images folder chosen (pick the folder the CSV's paths are relative to)`
      : `${image.value}: not in the chosen images folder`);
  }
  return imageDataUrl(new Uint8Array(await file.arrayBuffer()));
}

export class Runner {
  /**
   * @param run     a ShadowRun
   * @param options {files, apiKey, timeoutMs, on: {itemDone, batchReport, finished, tick}}
   */
  constructor(run, options) {
    this.run = run;
    this.files = options.files;
    this.apiKey = options.apiKey || null; // memory only
    if (this.apiKey) run.hideSecret(this.apiKey);
    // [name, value]: the header the core says this provider takes the key in.
    this.credential = this.apiKey ? run.credentialHeader(this.apiKey) : null;
    // [[name, value]]: what the core says a page adds to each request to this
    // endpoint (Anthropic's opt-in to calls from a browser).
    this.browserHeaders = run.browserAccess().headers;
    this.timeoutMs = options.timeoutMs;
    this.on = options.on;
    this.timer = null;
    this.finished = false;
    this.controllers = new Map();
  }

  start() { this.pump(); }

  pause() { this.feed({ type: 'pause' }); }

  resume() { this.feed({ type: 'resume' }); }

  // The core waits for the requests in flight for its grace period, then gives
  // them up and finishes; the page then aborts whatever fetch is still open.
  cancel() { this.feed({ type: 'cancel' }); }

  feed(input) {
    if (this.finished) return;
    // An answer to a request the run abandoned is taken and ignored by the core.
    this.run.handle(now(), input);
    this.pump();
  }

  pump() {
    if (this.finished) return;
    clearTimeout(this.timer);
    const t = now();
    const done = [];
    for (let out = this.run.poll(t); out !== null; out = this.run.poll(t)) {
      switch (out.type) {
        case 'send': this.send(out); break;
        case 'itemDone': done.push(out); break;
        case 'batchReport': this.on.itemDone(done.splice(0)); this.on.batchReport(out); break;
        case 'finished':
          this.on.itemDone(done.splice(0));
          this.finished = true;
          for (const c of this.controllers.values()) c.abort();
          this.on.finished(out);
          return;
      }
    }
    this.on.itemDone(done);
    this.on.tick();
    const deadline = this.run.pollTimeout();
    if (deadline !== undefined) this.timer = setTimeout(() => this.pump(), Math.max(0, deadline - now()));
  }

  async send(order) {
    const { ticket } = order;
    let url;
    try {
      url = await imageUrl(order.image, this.files);
    } catch (e) {
      this.feed({ type: 'imageFailed', ticket, message: `line ${order.line}: ${e.message}` });
      return;
    }
    const request = this.run.request(order.item, order.attempt, url, order.format, order.confidence);
    const headers = new Headers(request.headers);
    for (const [name, value] of this.browserHeaders) headers.set(name, value);
    if (this.credential) headers.set(this.credential[0], this.credential[1]);
    const controller = new AbortController();
    this.controllers.set(ticket, controller);
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; controller.abort(); }, this.timeoutMs);
    try {
      const response = await fetch(request.url, {
        method: request.method, headers, body: request.body, signal: controller.signal,
      });
      const body = await response.text();
      this.feed({ type: 'response', ticket, response: { status: response.status, headers: [...response.headers], body } });
    } catch (e) {
      const kind = timedOut ? 'timeout' : 'connect';
      // fetch's errors say little (and never the key); keep them short. A call the
      // endpoint does not allow from a page (CORS) fails here too, as one that
      // reached nothing: the page tells them apart after the run (app.js).
      const message = timedOut ? `no answer within ${this.timeoutMs / 1000} s` : String(e.message || e);
      this.feed({ type: 'transportFailed', ticket, kind, message });
    } finally {
      clearTimeout(timer);
      this.controllers.delete(ticket);
    }
  }
}

/** The chosen images folder, looked up by the CSV's relative paths. */
export class ImageFiles {
  constructor(fileList) {
    this.byPath = new Map();
    for (const f of fileList || []) {
      const full = f.webkitRelativePath || f.name;
      this.byPath.set(full, f);
      // Also without the chosen folder's own name, so that picking either the
      // CSV's folder or its images/ folder works.
      const cut = full.indexOf('/');
      if (cut >= 0 && !this.byPath.has(full.slice(cut + 1))) this.byPath.set(full.slice(cut + 1), f);
    }
    this.size = this.byPath.size;
  }

  lookup(path) {
    const clean = path.replace(/\\/g, '/').replace(/^\.\//, '');
    return this.byPath.get(clean) || null;
  }
}
