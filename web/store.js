// Keeps each run's finished results in IndexedDB as they arrive, so that a page
// reload loses nothing: the page offers to resume from them. The API key is never
// stored.
//
// A run's record: {runId, csvName, csvText, config, status, startedAt, updatedAt,
// counts: {total, successful, failed}, abortKind, abortReason}. `status` is the
// core's (`completed`, `interrupted`, `aborted`) once the run ended in the page, and
// `running` while it runs, or when the page went away mid-run.
//
// A run's tallies, {runId, retries, rateLimitHits}: the requests re-sent and the
// 429s of all its sessions so far, kept apart from its record (which holds the
// CSV) so that the page can write them often: the core counts them per session,
// and a reload would otherwise start them again from 0.

const DB = 'shadow-batch';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 2);
    req.onupgradeneeded = (event) => {
      const db = req.result;
      if (event.oldVersion < 1) {
        db.createObjectStore('runs', { keyPath: 'runId' });
        const lines = db.createObjectStore('lines', { autoIncrement: true });
        lines.createIndex('runId', 'runId');
      }
      if (event.oldVersion < 2) db.createObjectStore('tallies', { keyPath: 'runId' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

function result(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** When a record was last written (records of older pages have no updatedAt). */
export const touched = (record) => record.updatedAt || record.startedAt || 0;

export class Store {
  static async open() {
    try {
      return new Store(await open());
    } catch {
      return new Store(null); // private mode or no IndexedDB: run without persistence
    }
  }

  constructor(db) { this.db = db; }

  async saveRun(record) {
    if (!this.db) return;
    const tx = this.db.transaction('runs', 'readwrite');
    tx.objectStore('runs').put({ ...record, updatedAt: Date.now() });
    await done(tx);
  }

  /** Keeps a run's tallies of all its sessions: {retries, rateLimitHits}. */
  async saveTallies(runId, tallies) {
    if (!this.db) return;
    const tx = this.db.transaction('tallies', 'readwrite');
    tx.objectStore('tallies').put({ runId, retries: tallies.retries, rateLimitHits: tallies.rateLimitHits });
    await done(tx);
  }

  /** A run's tallies of its earlier sessions: {retries, rateLimitHits}, zeros when none are kept. */
  async tallies(runId) {
    const none = { retries: 0, rateLimitHits: 0 };
    if (!this.db) return none;
    const got = await result(this.db.transaction('tallies').objectStore('tallies').get(runId));
    return got ? { retries: got.retries || 0, rateLimitHits: got.rateLimitHits || 0 } : none;
  }

  async appendLines(runId, lines) {
    if (!this.db || lines.length === 0) return;
    const tx = this.db.transaction('lines', 'readwrite');
    const store = tx.objectStore('lines');
    for (const line of lines) store.add({ runId, line });
    await done(tx);
  }

  /** Replaces a run's result lines, in one transaction (a resumed run's journal,
   * folded to one line per row). */
  async replaceLines(runId, lines) {
    if (!this.db) return;
    const tx = this.db.transaction('lines', 'readwrite');
    const store = tx.objectStore('lines');
    const keys = await result(store.index('runId').getAllKeys(runId));
    for (const key of keys) store.delete(key);
    for (const line of lines) store.add({ runId, line });
    await done(tx);
  }

  /** Every stored run, the one written last first. */
  async runs() {
    if (!this.db) return [];
    const all = await result(this.db.transaction('runs').objectStore('runs').getAll());
    return all.sort((a, b) => touched(b) - touched(a));
  }

  async lines(runId) {
    if (!this.db) return [];
    const rows = await result(this.db.transaction('lines').objectStore('lines').index('runId').getAll(runId));
    return rows.map((r) => r.line);
  }

  async forget(runId) {
    if (!this.db) return;
    const tx = this.db.transaction(['runs', 'lines', 'tallies'], 'readwrite');
    tx.objectStore('runs').delete(runId);
    tx.objectStore('tallies').delete(runId);
    const lines = tx.objectStore('lines');
    const keys = await result(lines.index('runId').getAllKeys(runId));
    for (const key of keys) lines.delete(key);
    await done(tx);
  }
}
