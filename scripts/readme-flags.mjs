// Rewrites the flag table of docs/cli.md (between the flags markers) from
// src/cli/flags.ts, through the build, so the table can never drift.
// (The name is historical: the table used to live in the README.)
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { RUNSERVER_FLAGS, flagsMarkdown } = require('../dist/cjs/cli/flags.js');
const path = new URL('../docs/cli.md', import.meta.url);
const page = readFileSync(path, 'utf8');
if (!/<!-- flags:start -->[\s\S]*<!-- flags:end -->/.test(page)) {
  throw new Error('docs/cli.md has no <!-- flags:start --> … <!-- flags:end --> block');
}
const next = page.replace(
  /<!-- flags:start -->[\s\S]*<!-- flags:end -->/,
  `<!-- flags:start -->\n${flagsMarkdown(RUNSERVER_FLAGS)}\n<!-- flags:end -->`,
);
writeFileSync(path, next);
console.log(next === page ? 'docs/cli.md flags table unchanged' : 'docs/cli.md flags table updated');
