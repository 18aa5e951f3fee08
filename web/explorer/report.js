// The HTML report's start-up: reads the data the CLI embedded in the page and
// draws the explorer (a run's), or its compare mode (`kind: "comparison"`, the
// report of `shadow-batch compare`). Thumbnails: an embedded one (--embed-thumbnails), else the
// image's path relative to the report's folder; nothing from the network.

import { renderExplorer } from './explorer.js';
import { renderComparison } from './compare.js';

export function reportThumbnail(thumbnails) {
  const embedded = thumbnails.embedded || {};
  const base = thumbnails.base;
  return (image) => {
    if (Object.prototype.hasOwnProperty.call(embedded, image)) return embedded[image];
    if (/^data:/i.test(image)) return { reason: 'An image given as a data URL: the results keep only its start.' };
    if (/^[a-z][a-z0-9+.-]*:/i.test(image)) return { reason: 'A remote image: the report loads nothing from the network.' };
    if (base === null || base === undefined) return { reason: 'The images folder is not known.' };
    const path = image.replace(/\\/g, '/');
    const encode = (p) => p.split('/').map((part) => encodeURIComponent(part)).join('/');
    if (path.startsWith('/')) return `file://${encode(path)}`;
    if (/^[a-z]:\//i.test(path)) return `file:///${path.slice(0, 2)}${encode(path.slice(2))}`;
    return base + encode(path.replace(/^(\.\/)+/, ''));
  };
}

const source = document.getElementById('explorer-data');
if (source) {
  const data = JSON.parse(source.textContent);
  const options = { thumbnail: reportThumbnail(data.thumbnails || {}) };
  if (data.kind === 'comparison') renderComparison(document.getElementById('explorer'), data.comparison, options);
  else renderExplorer(document.getElementById('explorer'), data, options);
}
