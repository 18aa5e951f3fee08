// Checks the relative links of README.md, BENCHMARKS.md and docs/*.md (Markdown's,
// and HTML's `<img src>` and `<a href>`): every linked file exists, and every #anchor names a heading of the file it points into, slugged
// as GitHub does (lower case; punctuation but `-` and `_` dropped; each space a `-`;
// a repeated heading gets -1, -2...), or an HTML <a name> there. Links to other
// sites are not fetched.
// Usage: node scripts/check-links.mjs [FILE.md...]; exit 1 naming each broken link.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The lines outside fenced code blocks, with their 1-based numbers. */
function prose(text) {
  const lines = [];
  let fence = null;
  text.split('\n').forEach((line, i) => {
    const open = /^\s*(`{3,}|~{3,})/.exec(line);
    if (open && (fence === null || open[1].startsWith(fence))) {
      fence = fence === null ? open[1] : null;
    } else if (fence === null) {
      lines.push([i + 1, line]);
    }
  });
  return lines;
}

/** GitHub's anchor of a heading's text. */
export function slug(heading) {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link keeps its text
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map();
function anchorsOf(file) {
  if (!anchorCache.has(file)) {
    const seen = new Map();
    const anchors = new Set();
    for (const [, line] of prose(readFileSync(file, 'utf8'))) {
      // An HTML anchor keeps an old address working: <a name="x"></a> or id="x".
      for (const a of line.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(a[1]);
      const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      if (!m) continue;
      const base = slug(m[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    anchorCache.set(file, anchors);
  }
  return anchorCache.get(file);
}

/** The broken relative links of one Markdown file, as messages. */
export function brokenLinks(file) {
  const problems = [];
  const where = (n) => `${relative(ROOT, file)}:${n}`;
  for (const [n, line] of prose(readFileSync(file, 'utf8'))) {
    // Inline code is not a link: `[a](b)` inside backticks is text.
    const text = line.replace(/`[^`]*`/g, '');
    // Markdown links and images, and HTML ones (`<img src="...">`, `<a href="...">`).
    const targets = [
      ...[...text.matchAll(/!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
      ...[...text.matchAll(/<(?:img|a)\s[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]),
    ];
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
      const [path, anchor] = target.split('#', 2);
      const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
      if (!existsSync(dest)) {
        problems.push(`${where(n)}: ${target}: no file ${relative(ROOT, dest)}`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (statSync(dest).isDirectory() || !dest.endsWith('.md')) {
        problems.push(`${where(n)}: ${target}: #${anchor} points into a file that is not Markdown`);
      } else if (!anchorsOf(dest).has(decodeURIComponent(anchor).toLowerCase())) {
        problems.push(`${where(n)}: ${target}: ${relative(ROOT, dest)} has no heading whose anchor is #${anchor}`);
      }
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const files = args.length
    ? args.map((f) => resolve(f))
    : [
        join(ROOT, 'README.md'),
        join(ROOT, 'BENCHMARKS.md'),
        ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => join(ROOT, 'docs', f)),
      ].filter((f) => existsSync(f));
  const problems = files.flatMap(brokenLinks);
  for (const p of problems) console.error(`broken link: ${p}`);
  if (problems.length) {
    console.error(`${problems.length} broken link(s): fix the link, or the heading it points to.`);
    process.exit(1);
  }
  console.log(`links: ${files.length} files checked, every relative link and anchor resolves`);
}
