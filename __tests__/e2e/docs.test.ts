// The documentation holds together: every relative link in the README and
// docs/ reaches a file (and its heading, for `#anchor`s), every
// `docs/…#anchor` cited from code exists, every `<!-- file: X -->` block
// names a file the tests run, and nothing points at documents a user of the
// repository or the package does not have (a team spec, issue numbers).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/run-cli';

/** Citations that resolve for nobody who clones the repository or installs the package. */
const FOREIGN_CITATIONS: [RegExp, string][] = [
  [/\bSPEC\b/, 'the team spec (cite docs/protocol.md instead)'],
  [/\.\.\/shared\b/, 'a folder outside the repository'],
  [/\bissues? #?\d+/i, 'an issue number (cite the docs/ page that explains it)'],
  [/\bSTYLE(\.md\b| §)/, 'the team style guide'],
];

function walk(dir: string, keep: (path: string) => boolean): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'out' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...walk(path, keep));
    else if (keep(path)) found.push(path);
  }
  return found;
}

const rel = (path: string): string => relative(ROOT, path).split('\\').join('/');
const isMarkdown = (path: string): boolean => path.endsWith('.md');

/** Every markdown page a reader of the repository may open. */
const PAGES = [
  ...['README.md', 'CHANGELOG.md', 'SECURITY.md'].map((p) => join(ROOT, p)).filter((p) => existsSync(p)),
  ...walk(join(ROOT, 'docs'), isMarkdown),
  ...walk(join(ROOT, 'examples'), isMarkdown),
  ...walk(join(ROOT, 'bench'), isMarkdown),
];

/** Source that ships or that users read as examples: code comments live here. */
const CODE = ['src', 'public', 'examples', 'bench', 'scripts'].flatMap((dir) =>
  walk(join(ROOT, dir), (p) => /\.(ts|js|mjs|cjs|html|css|c)$/.test(p)),
);

/** The text of a page without fenced code and inline code, where links are not links. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]*>/g, '')
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map<string, Set<string>>();
function anchorsOf(path: string): Set<string> {
  let anchors = anchorCache.get(path);
  if (anchors === undefined) {
    anchors = new Set();
    const seen = new Map<string, number>();
    const text = readFileSync(path, 'utf8').replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
    for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
      const base = slug(match[1] as string);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    anchorCache.set(path, anchors);
  }
  return anchors;
}

/** What is wrong with a link from `from` to `target`, or undefined when it resolves. */
function brokenLink(from: string, target: string): string | undefined {
  const [file = '', anchor] = target.split('#', 2);
  const path = file === '' ? from : resolve(dirname(from), decodeURIComponent(file));
  if (!existsSync(path)) return `${rel(path)} does not exist`;
  if (anchor === undefined || anchor === '' || !isMarkdown(path)) return undefined;
  return anchorsOf(path).has(anchor) ? undefined : `${rel(path)} has no heading #${anchor}`;
}

describe('the documentation', () => {
  test('the pages are there', () => {
    const names = PAGES.map(rel);
    for (const page of ['README.md', 'SECURITY.md', 'docs/protocol.md', 'docs/errors.md', 'docs/cli.md']) {
      expect(names).toContain(page);
    }
  });

  test('the anchor of a heading is the one GitHub makes', () => {
    expect(slug('`sse-runserver --doctor URL`')).toBe('sse-runserver---doctor-url');
    expect(slug("Proxies and compression that can't break the stream")).toBe(
      'proxies-and-compression-that-cant-break-the-stream',
    );
    expect(slug("In the app's process: `fromSession()`")).toBe('in-the-apps-process-fromsession');
  });

  test('every relative link in README.md and docs/ reaches a file, and its heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const page of PAGES) {
      for (const match of prose(readFileSync(page, 'utf8')).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)/g)) {
        const target = match[1] as string;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
        checked++;
        const problem = brokenLink(page, target);
        if (problem !== undefined) broken.push(`${rel(page)}: (${target}) → ${problem}`);
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(broken).toEqual([]);
  });

  test('every docs/ page that code cites exists, with the cited heading', () => {
    const broken: string[] = [];
    for (const file of CODE) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/\bdocs\/([\w.-]+\.md)(?:#([\w-]+))?/g)) {
        const target = `${match[1]}${match[2] === undefined ? '' : `#${match[2]}`}`;
        const problem = brokenLink(join(ROOT, 'docs', 'x.md'), target);
        if (problem !== undefined) broken.push(`${rel(file)}: docs/${target} → ${problem}`);
      }
    }
    expect(broken).toEqual([]);
  });

  test('nothing cites a document the repository does not have', () => {
    const found: string[] = [];
    for (const file of [...PAGES.filter((p) => rel(p) !== 'CHANGELOG.md'), ...CODE]) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const [pattern, what] of FOREIGN_CITATIONS) {
            if (pattern.test(line)) found.push(`${rel(file)}:${i + 1} cites ${what}: ${line.trim()}`);
          }
        });
    }
    expect(found).toEqual([]);
  });

  test('every <!-- file: X --> block names a file that a test runs', () => {
    const tests = walk(join(ROOT, '__tests__'), (p) => p.endsWith('.ts'))
      .map((p) => readFileSync(p, 'utf8'))
      .join('\n');
    const named = PAGES.flatMap((page) =>
      [...readFileSync(page, 'utf8').matchAll(/<!-- file: (\S+) -->/g)].map((m) => m[1] as string),
    );
    expect(named.length).toBeGreaterThanOrEqual(3);
    expect(named.filter((file) => !tests.includes(file))).toEqual([]);
  });
});
