// Keeps each run's finished results in IndexedDB as they arrive, so that a page
// reload loses nothing: the page offers to resume from them. The API key is never
// stored.

const DB = 'shadow-batch';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore('runs', { keyPath: 'runId' });
      const lines = db.createObjectStore('lines', { autoIncrement: true });
      lines.createIndex('runId', 'runId');
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
    tx.objectStore('runs').put(record);
    await done(tx);
  }

  async appendLines(runId, lines) {
    if (!this.db || lines.length === 0) return;
    const tx = this.db.transaction('lines', 'readwrite');
    const store = tx.objectStore('lines');
    for (const line of lines) store.add({ runId, line });
    await done(tx);
  }

  async unfinished() {
    if (!this.db) return null;
    const tx = this.db.transaction('runs');
    const all = await new Promise((resolve, reject) => {
      const req = tx.objectStore('runs').getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return all.filter((r) => r.status === 'running').sort((a, b) => b.startedAt - a.startedAt)[0] || null;
  }

  async lines(runId) {
    if (!this.db) return [];
    const tx = this.db.transaction('lines');
    return new Promise((resolve, reject) => {
      const req = tx.objectStore('lines').index('runId').getAll(runId);
      req.onsuccess = () => resolve(req.result.map((r) => r.line));
      req.onerror = () => reject(req.error);
    });
  }

  async forget(runId) {
    if (!this.db) return;
    const tx = this.db.transaction(['runs', 'lines'], 'readwrite');
    tx.objectStore('runs').delete(runId);
    const index = tx.objectStore('lines').index('runId');
    index.openKeyCursor(IDBKeyRange.only(runId)).onsuccess = (e) => {
      const cursor = e.target.result;
      if (cursor) { tx.objectStore('lines').delete(cursor.primaryKey); cursor.continue(); }
    };
    await done(tx);
  }
}
