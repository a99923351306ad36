// `npm test`'s pretest: the suites spawn real redis-server, nginx, Chromium,
// curl, gcc and Python (Django, redis-py, PyJWT), listed in test-tools.json.
// When some are missing it installs them with apt-get if it can (root on
// Debian/Ubuntu); otherwise it stops with the one command to run. A test run
// on a machine without them must fail here, never pass having tested nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const { tools } = JSON.parse(readFileSync(new URL('./test-tools.json', import.meta.url), 'utf8'));

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function present(tool) {
  if (tool.python !== undefined) {
    // Debian's python3-* packages install for Debian's own interpreter, not a pyenv/venv one on the PATH.
    return spawnSync('/usr/bin/python3', ['-c', `import ${tool.python}`], { stdio: 'ignore' }).status === 0;
  }
  if (tool.program.startsWith('/')) return isExecutable(tool.program);
  return (process.env.PATH ?? '').split(delimiter).some((dir) => isExecutable(join(dir, tool.program)));
}

const missingPackages = () => [...new Set(tools.filter((tool) => !present(tool)).map((tool) => tool.package))];

let missing = missingPackages();
if (missing.length === 0) process.exit(0);

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const canApt = asRoot && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
if (canApt) {
  console.log(`test-prereqs: installing ${missing.join(' ')} (apt-get)`);
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  } catch {
    // Reported below with what is still missing.
  }
  missing = missingPackages();
  if (missing.length === 0) process.exit(0);
}
console.error(
  `npm test needs Debian packages that are not installed: ${missing.join(', ')}.\n` +
    `${canApt ? 'apt-get could not install them. ' : ''}Install them, then run npm test again:\n\n` +
    `  sudo apt-get install -y ${missing.join(' ')}\n`,
);
process.exit(1);
