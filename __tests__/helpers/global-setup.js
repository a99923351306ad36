// Builds dist/ once before the suites run, so CLI and packaging tests run
// exactly what users get, built from the current sources.
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = async function globalSetup() {
  execFileSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build.mjs'), '--js-only'], {
    stdio: 'ignore',
  });
};
