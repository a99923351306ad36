#!/usr/bin/env node
// Why an idle stream costs more under Express (bench/RESULTS.md): whether
// 30 concurrent requests' `req` and `res` objects share one V8 hidden class
// (map), on plain node:http, on node:http with a prototype swap like
// Express's (no Express involved), and under Express 4 and 5. An object
// with a map of its own carries its own descriptor array (about 1 KiB for
// the ~40 properties of a response) for as long as it lives: for an SSE
// stream, its whole life. Needs V8's natives syntax:
//
//   node --allow-natives-syntax bench/hidden-classes.cjs
'use strict';
const http = require('node:http');

const REQUESTS = 30;
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)');

const reqProto = Object.create(http.IncomingMessage.prototype);
const resProto = Object.create(http.ServerResponse.prototype);
const mounts = {
  'node:http': () => (req, res, keep) => keep(req, res),
  'node:http + setPrototypeOf': () => (req, res, keep) => {
    Object.setPrototypeOf(req, reqProto);
    Object.setPrototypeOf(res, resProto);
    keep(req, res);
  },
  'express 4': () => expressApp(require('express4')),
  'express 5': () => expressApp(require('express')),
};

function expressApp(express) {
  let keep;
  const app = express();
  app.use((req, res) => keep(req, res));
  return (req, res, k) => {
    keep = k;
    app(req, res);
  };
}

async function measure(handler) {
  const kept = [];
  const server = http.createServer((req, res) =>
    handler(req, res, (q, s) => {
      kept.push([q, s]);
      s.writeHead(200, { 'Content-Type': 'text/event-stream' });
      s.write(': open\n\n');
    }),
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const clients = Array.from({ length: REQUESTS }, () =>
    http.get(`http://127.0.0.1:${port}/`, () => undefined).on('error', () => undefined),
  );
  while (kept.length < REQUESTS) await new Promise((resolve) => setTimeout(resolve, 10));
  const pairs = kept.slice(1).map((pair, i) => [kept[i], pair]);
  const shared = (k) => pairs.filter(([a, b]) => sameMap(a[k], b[k])).length === pairs.length;
  for (const client of clients) client.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return { req: shared(0), res: shared(1) };
}

(async () => {
  console.log(`| mount (${REQUESTS} open requests) | req: one map for all | res: one map for all |`);
  console.log('| --- | :---: | :---: |');
  for (const [name, make] of Object.entries(mounts)) {
    const { req, res } = await measure(make());
    console.log(`| ${name} | ${req ? 'yes' : 'no'} | ${res ? 'yes' : 'no'} |`);
  }
})();
