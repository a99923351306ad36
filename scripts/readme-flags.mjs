// Rewrites the README's flag table (between the flags markers) from
// src/cli/flags.ts, through the build, so the table can never drift.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { RUNSERVER_FLAGS, flagsMarkdown } = require('../dist/cjs/cli/flags.js');
const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const next = readme.replace(
  /<!-- flags:start -->[\s\S]*<!-- flags:end -->/,
  `<!-- flags:start -->\n${flagsMarkdown(RUNSERVER_FLAGS)}\n<!-- flags:end -->`,
);
writeFileSync(path, next);
console.log(next === readme ? 'README flags table unchanged' : 'README flags table updated');
