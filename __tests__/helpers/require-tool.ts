// Suites that need a system tool (redis-server, Chromium, nginx, ...) run only
// where it is installed, and otherwise FAIL: a suite that did not run must
// never count as passed. `npm test` installs the tools first (pretest,
// scripts/test-prereqs.mjs, from scripts/test-tools.json).
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

interface ToolSpec {
  program?: string;
  python?: string;
  package: string;
}

const TOOLS = (
  JSON.parse(readFileSync(join(__dirname, '..', '..', 'scripts', 'test-tools.json'), 'utf8')) as { tools: ToolSpec[] }
).tools;

export function haveTool(name: string): boolean {
  if (name.startsWith('/')) return isExecutable(name);
  return (process.env.PATH ?? '').split(delimiter).some((dir) => isExecutable(join(dir, name)));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Debian package of a program (test-tools.json), or its own name. */
function packageOf(program: string): string {
  return TOOLS.find((tool) => tool.program === program)?.package ?? program;
}

/** describe() that runs when every tool is present; else one test that fails, naming what to install. */
export function describeWithTools(tools: string[], name: string, body: () => void): void {
  const missing = tools.filter((tool) => !haveTool(tool));
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const packages = [...new Set(missing.map(packageOf))];
  describe(name, () => {
    test(`NOT RUN: ${missing.join(', ')} missing`, () => {
      throw new Error(
        `${name}: not run because ${missing.join(', ')} is not installed. Install it: apt-get install -y ${packages.join(' ')} (npm test does this when run as root).`,
      );
    });
  });
}
