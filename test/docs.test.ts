/**
 * The user documents (README.md, CHANGELOG.md, docs/*.md) stay readable and self-contained: the
 * README fits a ten-minute read, no page names our issue numbers or a path outside the repository,
 * and every relative link leads to a file (and heading) of the repository.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

/** Most bytes the README may have. */
const README_MAX_BYTES = 16 * 1024;

/** Pages the documents link to that other branches of this release add. */
const PAGES_FROM_OTHER_BRANCHES = ['docs/upgrading.md', 'docs/dashboards.md'];

/** Every user document, as paths relative to the repository root. */
function documents(): string[] {
  const docs = readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  return ['README.md', 'CHANGELOG.md', ...docs].filter((f) => existsSync(path.join(root, f)));
}

function read(file: string): string {
  return readFileSync(path.join(root, file), 'utf8');
}

/** A link in a page: its target as written, and the line it is on. */
interface Link {
  target: string;
  line: number;
}

/** Inline Markdown links and images, `[text](target)`, outside fenced code blocks. */
function links(text: string): Link[] {
  const found: Link[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) return;
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      found.push({ target: m[1] ?? '', line: i + 1 });
    }
  });
  return found;
}

function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target);
}

/** The text of a page with URLs and link targets taken out: what remains is prose and code. */
function withoutLinkTargets(text: string): string {
  return text.replace(/\]\([^)]*\)/g, ']()').replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s)>`'"]+/gi, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const result = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of read(file).split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1] ?? '');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** Lines of a page that match a pattern, as `file:line: text`. */
function offending(file: string, text: string, pattern: RegExp): string[] {
  return text
    .split('\n')
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => pattern.test(line))
    .map(({ line, i }) => `${file}:${i + 1}: ${line.trim()}`);
}

describe('the README', () => {
  it(`is at most ${README_MAX_BYTES} bytes`, () => {
    expect(statSync(path.join(root, 'README.md')).size).toBeLessThanOrEqual(README_MAX_BYTES);
  });
});

describe('user documents', () => {
  const files = documents();

  it('include the README and the docs folder', () => {
    expect(files).toContain('README.md');
    expect(files.filter((f) => f.startsWith('docs/')).length).toBeGreaterThan(0);
  });

  it.each(files)('%s names no issue or pull request number', (file) => {
    const text = withoutLinkTargets(read(file));
    expect(offending(file, text, /\b(?:issues?|pull requests?|PRs?)\s*(?:no\.?\s*)?#?\d+/i)).toEqual([]);
    // `#12` on its own, but not an anchor (`page.md#heading`), a heading (`## 2`) or `C#`.
    expect(offending(file, text, /(?<![\w#&/])#\d+\b/)).toEqual([]);
  });

  it.each(files)('%s names no path of a machine', (file) => {
    const text = withoutLinkTargets(read(file));
    expect(offending(file, text, /(?<![\w.~$}-])\/(?:work|tmp|home|Users|root|mnt)\//)).toEqual([]);
  });

  it.each(files)('%s names no path above the repository outside its links', (file) => {
    // Commands run from the repository root, so `../` in prose or code leaves the repository.
    const text = withoutLinkTargets(read(file));
    expect(offending(file, text, /(?:^|[^.\w])\.\.\//)).toEqual([]);
  });

  it.each(files)('%s links only to files and headings of the repository', (file) => {
    const broken: string[] = [];
    for (const { target, line } of links(read(file))) {
      if (isExternal(target)) continue;
      const [pathPart = '', anchor] = target.split('#', 2);
      const resolved = pathPart === '' ? path.join(root, file) : path.resolve(root, path.dirname(file), pathPart);
      const relative = path.relative(root, resolved);
      const where = `${file}:${line}: ${target}`;
      if (relative.startsWith('..') || path.isAbsolute(relative)) {
        broken.push(`${where} leaves the repository`);
        continue;
      }
      if (PAGES_FROM_OTHER_BRANCHES.includes(relative.split(path.sep).join('/'))) continue;
      if (!existsSync(resolved)) {
        broken.push(`${where} does not exist`);
        continue;
      }
      if (anchor && resolved.endsWith('.md') && !anchors(relative).has(anchor)) {
        broken.push(`${where} names no heading of ${relative}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('link to pages that exist once the branches of this release are merged', () => {
    // These pages come from other branches; in a branch without them, only this test fails.
    const missing = PAGES_FROM_OTHER_BRANCHES.filter((p) => !existsSync(path.join(root, p)));
    expect(missing).toEqual([]);
  });
});
