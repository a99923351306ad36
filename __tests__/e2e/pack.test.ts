// The packed tarball is what users install. Pack it, install
// it into an empty folder, and use it there from CommonJS, ESM and npx; then
// lint the package with publint and @arethetypeswrong/cli.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, cleanEnv } from '../helpers/run-cli';

const exec = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

jest.setTimeout(180_000);

let dir: string;
let tarball: string;
let app: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sse-hub-pack-'));
  app = join(dir, 'app');
  // Pack a full, fresh build (declarations included) made in a copy of the
  // package, so the CLI suites running alongside never see ROOT/dist rebuilt
  // under their feet, and stale types in ROOT/dist can't pass for new ones.
  const pkg = join(dir, 'pkg');
  mkdirSync(pkg);
  for (const entry of [
    'package.json',
    'README.md',
    'CHANGELOG.md',
    'tsconfig.json',
    'tsconfig.build.json',
    'src',
    'public',
    'docs',
    'scripts',
  ]) {
    cpSync(join(ROOT, entry), join(pkg, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  await exec(process.execPath, [join(pkg, 'scripts', 'build.mjs')], { cwd: pkg });
  const { stdout } = await exec(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: pkg,
    env: cleanEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
  tarball = join(dir, info.filename);
  packed = info.files.map((f) => f.path);

  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const install = (extra: string[]) =>
    exec(NPM, ['install', '--no-audit', '--no-fund', '--ignore-scripts', ...extra, tarball], {
      cwd: app,
      env: cleanEnv(),
    });
  // The npm cache usually has every dependency; the registry is the fallback.
  await install(['--offline']).catch(() => install(['--prefer-offline']));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let packed: string[] = [];

test('the tarball holds dist (ESM, CJS, types), public, the README and the docs it links to, and no sources or tests', () => {
  for (const file of [
    'package.json',
    'README.md',
    'dist/cjs/index.js',
    'dist/cjs/index.d.ts',
    'dist/esm/index.js',
    'dist/esm/index.d.ts',
    'dist/cjs/bin/sse-runserver.js',
    'dist/cjs/bin/sse-send.js',
    'public/sse.js',
    'public/jquery.eventsource.js',
    'docs/protocol.md',
    'docs/errors.md',
  ]) {
    expect(packed).toContain(file);
  }
  // The README's docs/ links resolve in node_modules/sse-hub too; the screenshots stay in the repository.
  expect(packed.filter((f) => f.startsWith('docs/') && !f.endsWith('.md'))).toEqual([]);
  expect(packed.filter((f) => /^(src|__tests__|bench|examples)\//.test(f))).toEqual([]);
});

const script = `
  const hub = sseHub.createHub({ broker: 'memory' });
  const checks = ['createHub', 'sseMiddleware', 'sendEvent', 'configure', 'fromQuery', 'fromSession', 'clientScripts']
    .map((name) => name + ':' + typeof sseHub[name]);
  hub.sendEvent('message', { type: 'message' }, 'all')
    .then(() => hub.close())
    .then(() => console.log(JSON.stringify({ checks, frame: sseHub.encodeFrame({ event: 'm', data: 'a\\nb' }).toString() })));
`;
const expected = {
  checks: [
    'createHub:function',
    'sseMiddleware:function',
    'sendEvent:function',
    'configure:function',
    'fromQuery:function',
    'fromSession:function',
    'clientScripts:function',
  ],
  frame: 'event: m\ndata: a\ndata: b\n\n',
};

test("require('sse-hub') works in the install", async () => {
  const { stdout } = await exec(process.execPath, ['-e', `const sseHub = require('sse-hub');${script}`], {
    cwd: app,
    env: cleanEnv(),
  });
  expect(JSON.parse(stdout)).toEqual(expected);
});

test("import('sse-hub') works in the install", async () => {
  const { stdout } = await exec(
    process.execPath,
    ['--input-type=module', '-e', `const sseHub = await import('sse-hub');${script}`],
    { cwd: app, env: cleanEnv() },
  );
  expect(JSON.parse(stdout)).toEqual(expected);
});

test('npx sse-runserver --help and npx sse-send --help run from the install', async () => {
  const runserver = await exec(NPX, ['--no-install', 'sse-runserver', '--help'], { cwd: app, env: cleanEnv() });
  expect(runserver.stdout).toMatch(/Usage: sse-runserver/);
  expect(runserver.stdout).toMatch(/--port <n>/);
  const send = await exec(NPX, ['--no-install', 'sse-send', '--help'], { cwd: app, env: cleanEnv() });
  expect(send.stdout).toMatch(/Usage: sse-send/);
});

test('publint reports no errors or warnings', async () => {
  const { stdout } = await exec(NPX, ['--no-install', 'publint', 'run', tarball, '--strict'], {
    cwd: ROOT,
    env: cleanEnv(),
  });
  expect(stdout).not.toMatch(/Errors:|Warnings:/);
});

// The tarball packed above is what `attw --pack .` would pack, without
// running `prepare` (a rebuild of dist/) again.
test('@arethetypeswrong/cli reports no problems in the packed tarball', async () => {
  const { stdout } = await exec(NPX, ['--no-install', 'attw', tarball, '--format', 'json'], {
    cwd: ROOT,
    env: cleanEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
  const report = JSON.parse(stdout) as { analysis: { problems: unknown[] } };
  expect(report.analysis.problems).toEqual([]);
});
