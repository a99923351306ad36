#!/usr/bin/env node
// One command for the whole example:
//   node examples/django-style/start.js              web app + `sse-runserver --channels session`
//   node examples/django-style/start.js --in-process web app with sseMiddleware() inside it
// Uses REDIS_URL when set; otherwise starts a private redis-server (if installed)
// on a free port. PORT (default 3000) is the web app's port; 0 picks a free one.
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { existsSync } = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { createApp } = require('./app');

const ROOT = path.join(__dirname, '..', '..');
const RUNSERVER = path.join(ROOT, require('../../package.json').bin['sse-runserver']);
const children = [];

async function main() {
  const mode = process.argv.includes('--in-process') ? 'in-process' : 'runserver';
  // Both processes must share the secret that signs the session cookie.
  const secret = process.env.SESSION_SECRET || randomBytes(24).toString('hex');
  const redisUrl = process.env.REDIS_URL || (await startRedis());

  let runserverUrl;
  if (mode === 'runserver') {
    if (!existsSync(RUNSERVER)) throw new Error(`${RUNSERVER} is missing: run \`npm run build\` first`);
    const args = ['--channels', 'session', '--redis', redisUrl];
    args.push('--port', process.env.SSE_PORT || '0', '--session-recheck', process.env.SSE_SESSION_RECHECK || '5');
    // The secret goes in the child's environment, not its argv, which `ps` shows to every local user.
    const env = { ...process.env, SSE_SESSION_SECRET: undefined, SSE_SESSION_SECRETS: JSON.stringify([secret]) };
    runserverUrl = await startChild(
      process.execPath,
      [RUNSERVER, ...args],
      /listening on (http:\/\/\S+?)\/? /,
      true,
      env,
    );
  }

  const { app, close } = await createApp({ redisUrl, secret, mode, runserverUrl });
  const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const url = `http://127.0.0.1:${server.address().port}`;
  console.log(`django-style example (${mode}): listening on ${url}/ (log in as admin/admin or bob/bob)`);
  if (runserverUrl) console.log(`sse-runserver --channels session at ${runserverUrl}, proxied at ${url}/sse/`);

  const stop = async () => {
    server.closeAllConnections();
    server.close();
    await close().catch(() => undefined);
    for (const child of children) child.kill('SIGTERM');
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** Spawns a process and resolves with the first capture of `ready` in its output. */
function startChild(command, args, ready, echo = true, env = process.env) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk) => {
      output += chunk;
      if (echo) process.stderr.write(chunk);
      const match = ready.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`${path.basename(args[0] ?? command)} exited (${code}):\n${output}`)),
    );
  });
}

/** A private redis-server on a free port, stopped with the example. */
async function startRedis() {
  const port = await new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
    probe.once('error', reject);
  });
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  await startChild('redis-server', args, /(Ready to accept connections)/, false).catch((err) => {
    throw new Error(`set REDIS_URL, or install redis-server: ${err.message}`);
  });
  return `redis://127.0.0.1:${port}`;
}

main().catch((err) => {
  console.error(`django-style example: ${err.message}`);
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
