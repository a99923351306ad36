// Builds dist/cjs and dist/esm from src/ with esbuild (one output file per source
// file, no bundling), then emits declarations once with tsc and places a copy
// beside each format so that each format's types live in its own module scope.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
const dist = join(root, 'dist');

function listTs(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listTs(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const jsOnly = process.argv.includes('--js-only');
// A full build starts clean; a JavaScript-only one (tests) overwrites in place,
// so that suites already running against dist/ never see it missing.
if (!jsOnly) rmSync(dist, { recursive: true, force: true });
const entryPoints = listTs(src);
const common = { entryPoints, outbase: src, platform: 'node', target: 'node20', logLevel: 'warning' };

await build({ ...common, outdir: join(dist, 'cjs'), format: 'cjs' });
// __dirname is the one CommonJS-only global the sources use (to find public/);
// the ESM build reads it from import.meta, which Node 20.11+ provides.
await build({
  ...common,
  outdir: join(dist, 'esm'),
  format: 'esm',
  define: { __dirname: 'import.meta.dirname' },
});
writeFileSync(join(dist, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
writeFileSync(join(dist, 'esm', 'package.json'), '{ "type": "module" }\n');

// Tests only need the JavaScript: `--js-only` skips the declarations, so a
// type error in work in progress does not stop every suite (typecheck does that).
if (jsOnly) {
  console.log(`built ${entryPoints.length} modules (JavaScript only) → ${relative(root, dist)}/{cjs,esm}`);
  process.exit(0);
}
execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
for (const format of ['cjs', 'esm']) {
  cpSync(join(dist, 'types'), join(dist, format), { recursive: true });
}
rmSync(join(dist, 'types'), { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
console.log(`built ${entryPoints.length} modules → ${relative(root, dist)}/{cjs,esm}`);
