// sseMiddleware() mounted the way users mount it, on the bench's fresh build:
//   node mount.mjs http      — as a plain node:http handler
//   node mount.mjs express5  — app.use('/sse', sseMiddleware(...)) under Express 5
//   node mount.mjs express4  — the same under Express 4 (devDependency alias express4)
// Same hub as sse-runserver's defaults, on the bench's Redis; channels from the query.
import { createRequire } from 'node:module';
import http from 'node:http';

const require = createRequire(import.meta.url);
const [kind, dist] = process.argv.slice(2);
const { createHub, fromQuery, sseMiddleware } = require(dist);

const hub = createHub({ redisUrl: process.env.BENCH_REDIS_URL });
const sse = sseMiddleware({ hub, channels: fromQuery() });

let handler = sse;
if (kind === 'express5' || kind === 'express4') {
  const express = require(kind === 'express5' ? 'express' : 'express4');
  const app = express();
  app.use('/sse', sse);
  handler = app;
} else if (kind !== 'http') {
  throw new Error(`mount.mjs: unknown mount ${kind}`);
}

const server = http.createServer(handler);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/\n`);
});
process.on('SIGTERM', () => process.exit(0));
