// Suites that need a system tool (redis-server, chromium, nginx) may skip on a
// laptop without it — loudly — but never under CI=true, where they run and fail.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

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

/** describe() that runs when every tool is present or CI=true; else one loud placeholder test. */
export function describeWithTools(tools: string[], name: string, body: () => void): void {
  const missing = tools.filter((tool) => !haveTool(tool));
  if (missing.length === 0 || process.env.CI === 'true') {
    describe(name, body);
    return;
  }
  describe(name, () => {
    test(`NOT RUN: ${missing.join(', ')} missing`, () => {
      console.warn(
        `\n!!! ${name}: not run because ${missing.join(', ')} is not installed (apt-get install -y ${missing.join(' ')}). CI=true runs it.\n`,
      );
    });
  });
}
