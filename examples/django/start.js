#!/usr/bin/env node
// One command for the Django example: `node examples/django/start.js`
// starts `sse-runserver --channels token --redis ...` and Django's runserver
// (Debian's python3-django, python3-redis, python3-jwt) next to it, on a fresh
// SQLite database (migrated into a temporary folder) with two users, alice/alice
// and bob/bob. The page (Django) and the stream (sse-runserver) are on two
// ports, so sse-runserver allows the page's origin with --cors-origin.
// Environment: REDIS_URL (else a private redis-server on a free port), PORT
// (Django's, default 8000; 0 picks a free one), SSE_PORT (default 0: free),
// SSE_TOKEN_SECRET (else random), SSE_TOKEN_TTL (seconds, default 300),
// DJANGO_DB (a SQLite file to use instead of a temporary one), PYTHON.
const { spawn, spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { existsSync, mkdtempSync, rmSync } = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const RUNSERVER = path.join(ROOT, require('../../package.json').bin['sse-runserver']);
const MANAGE = path.join(__dirname, 'manage.py');
// Debian's interpreter has the python3-* packages, whatever python3 comes first on PATH.
const PYTHON = process.env.PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const USERS = ['alice', 'bob'];
const children = [];
let tmp;

async function main() {
  const check = spawnSync(PYTHON, ['-c', 'import django, redis, jwt'], { encoding: 'utf8' });
  if (check.status !== 0) {
    throw new Error(`${PYTHON} lacks Django, redis or PyJWT: apt-get install python3-django python3-redis python3-jwt`);
  }
  if (!existsSync(RUNSERVER)) throw new Error(`${RUNSERVER} is missing: run \`npm run build\` first`);
  const secret = process.env.SSE_TOKEN_SECRET || randomBytes(32).toString('hex');
  const redisUrl = process.env.REDIS_URL || (await startRedis());
  const port = Number(process.env.PORT ?? 8000) || (await freePort());
  const origin = `http://127.0.0.1:${port}`;

  // The secret goes in sse-runserver's environment, not its argv, which `ps` shows to every local user.
  const sseUrl = await startChild(
    process.execPath,
    [
      RUNSERVER,
      '--channels',
      'token',
      '--redis',
      redisUrl,
      '--cors-origin',
      origin,
      '--port',
      process.env.SSE_PORT || '0',
    ],
    /listening on (http:\/\/\S+?\/?) /,
    { ...process.env, SSE_TOKEN_SECRET: undefined, SSE_TOKEN_SECRETS: JSON.stringify([secret]) },
  );

  if (!process.env.DJANGO_DB) tmp = mkdtempSync(path.join(os.tmpdir(), 'sse-hub-django-'));
  const env = {
    ...process.env,
    PYTHONUNBUFFERED: '1',
    DJANGO_DB: process.env.DJANGO_DB || path.join(tmp, 'db.sqlite3'),
    REDIS_URL: redisUrl,
    SSE_URL: sseUrl.endsWith('/') ? sseUrl : `${sseUrl}/`,
    SSE_TOKEN_SECRET: secret,
  };
  manage(['migrate', '--noinput', '-v', '0'], env);
  const create = USERS.map(
    (u) => `User.objects.filter(username='${u}').exists() or User.objects.create_user('${u}', password='${u}')`,
  );
  manage(['shell', '-c', ['from django.contrib.auth.models import User', ...create].join('\n')], env);

  await startChild(PYTHON, [MANAGE, 'runserver', '--noreload', `127.0.0.1:${port}`], /(Quit the server with)/, env);
  console.log(`django example: listening on ${origin}/ (log in as alice/alice or bob/bob)`);
  console.log(`sse-runserver --channels token at ${env.SSE_URL}, allowing ${origin}`);
  const shell = `DJANGO_DB=${env.DJANGO_DB} REDIS_URL=${redisUrl} ${PYTHON} ${path.relative(process.cwd(), MANAGE)} shell`;
  console.log(`save a Message: ${shell} -c "from board.models import Message; Message.objects.create(text='hi all')"`);

  const stop = () => {
    for (const child of children) child.kill('SIGTERM');
    cleanUp();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function manage(args, env) {
  const result = spawnSync(PYTHON, [MANAGE, ...args], { env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`manage.py ${args[0]} failed:\n${result.stderr}`);
}

/** Spawns a process and resolves with the first capture of `ready` in its output. */
function startChild(command, args, ready, env = process.env) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk) => {
      output += chunk;
      process.stderr.write(chunk);
      const match = ready.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${path.basename(args[0] ?? command)} exited (${code})`)));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.once('error', reject);
  });
}

/** A private redis-server on a free port, stopped with the example. */
async function startRedis() {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  await new Promise((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('error', (err) => reject(new Error(`set REDIS_URL, or install redis-server: ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
  });
  return `redis://127.0.0.1:${port}`;
}

function cleanUp() {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

main().catch((err) => {
  console.error(`django example: ${err.message}`);
  for (const child of children) child.kill('SIGTERM');
  cleanUp();
  process.exit(1);
});
