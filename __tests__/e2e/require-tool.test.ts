// A suite whose tool is missing must fail, never pass as a placeholder.
// Runs describeWithTools in a child jest, on a suite that needs a tool that cannot exist.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');
const exec = promisify(execFile);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sse-hub-require-tool-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('describeWithTools with a missing tool fails the run and says what to install', async () => {
  const helper = join(ROOT, '__tests__', 'helpers', 'require-tool.ts');
  writeFileSync(
    join(dir, 'missing.test.ts'),
    `import { describeWithTools } from ${JSON.stringify(helper)};
describeWithTools(['/nonexistent/some-tool'], 'needs a tool', () => {
  test('never runs', () => undefined);
});
`,
  );
  const config = {
    rootDir: ROOT,
    roots: [dir],
    testEnvironment: 'node',
    transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: join(ROOT, 'tsconfig.json'), diagnostics: false }] },
  };
  const outcome = await exec(
    process.execPath,
    [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--json', '--config', JSON.stringify(config)],
    { cwd: ROOT },
  ).then(
    () => ({ code: 0, stdout: '' }),
    (err: { code: number; stdout: string }) => err,
  );
  expect(outcome.code).toBe(1);
  const result = JSON.parse(outcome.stdout) as { numFailedTests: number; numPassedTests: number };
  expect(result).toMatchObject({ numFailedTests: 1, numPassedTests: 0 });
  expect(outcome.stdout).toContain('apt-get install -y /nonexistent/some-tool');
});

test("npm test's pretest on a machine without the tools (and no apt-get) stops with the one apt-get line", async () => {
  // An empty PATH: no redis-server, no curl, no apt-get to install them with.
  const outcome = await exec(process.execPath, [join(ROOT, 'scripts', 'test-prereqs.mjs')], {
    env: { PATH: dir },
  }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => err,
  );
  expect(outcome.code).toBe(1);
  expect(outcome.stderr).toMatch(/^ {2}sudo apt-get install -y redis-server redis-tools .*curl/m);
});
