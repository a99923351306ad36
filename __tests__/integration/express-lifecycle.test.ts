// sseMiddleware under Express 5 and Express 4, around the request's life: the
// hooks see what the app set up (req.session from express-session, res.locals
// from an earlier middleware); once the stream has started, what Express kept
// only to route the request (the router's next, parseurl's cache) is released,
// while req.session and res.locals stay; the app's error handlers still get
// unexpected errors, both from sse-hub's hooks and from the rest of the app.
import http from 'node:http';
import type express5 from 'express';
import session from 'express-session';
import { createHub, fromQuery, sseMiddleware, type Hub } from '../../src/index';
import { EXPRESSES, type ExpressFactory } from '../helpers/expresses';
import { listen, type Listening } from '../helpers/listen';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

type AppRequest = http.IncomingMessage & {
  session?: { user?: string };
  res?: http.ServerResponse & { locals: Record<string, unknown> };
  next?: unknown;
  _parsedUrl?: unknown;
};

let hub: Hub;
let servers: Listening[] = [];
let readers: SseReader[] = [];

beforeEach(() => {
  hub = createHub({ broker: 'memory' });
});
afterEach(async () => {
  for (const r of readers) r.close();
  readers = [];
  await hub.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(handler: http.RequestListener): Promise<string> {
  const listening = await listen(handler);
  servers.push(listening);
  return listening.url;
}

/** An app with a session, a middleware that fills res.locals, the stream at /sse and an error handler. */
function appWith(express: ExpressFactory, sse: ReturnType<typeof sseMiddleware>, caught: string[]): express5.Express {
  const app = express();
  app.use(session({ secret: 'lifecycle-test', resave: false, saveUninitialized: true }));
  app.use((req, res, next) => {
    (req.session as unknown as { user: string }).user = 'ann';
    res.locals.role = 'editor';
    next();
  });
  app.use('/sse', sse);
  app.get('/boom', () => {
    throw new Error('boom from a route');
  });
  app.use((err: Error, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
    caught.push(err.message);
    res.status(500).json({ caught: err.message });
  });
  return app;
}

describe.each(EXPRESSES)('sseMiddleware under %s', (_name, express) => {
  test('authorize reads req.session and res.locals; once streaming, routing state is released and they stay', async () => {
    let seen: AppRequest | undefined;
    const verdicts: string[] = [];
    const sse = sseMiddleware({
      hub,
      channels: fromQuery(),
      authorize: (req, channel) => {
        const r = req as AppRequest;
        seen = r;
        verdicts.push(`${channel}:${r.session?.user}:${String(r.res?.locals.role)}`);
        return r.session?.user === 'ann' && r.res?.locals.role === 'editor';
      },
    });
    const base = await serve(appWith(express, sse, []));
    const reader = await SseReader.open(`${base}/sse?channels=all`);
    readers.push(reader);
    expect(reader.status).toBe(200);
    expect(verdicts).toEqual(['all:ann:editor']);
    await waitFor(() => hub.stats().connections === 1, { what: 'one stream' });
    // Released once the stream has started (they would live as long as the stream)...
    await waitFor(() => seen?.next === undefined, { what: "the router's next released" });
    expect(seen?._parsedUrl).toBeUndefined();
    // ...while what the app set up for the request stays.
    expect(seen?.session?.user).toBe('ann');
    expect(seen?.res?.locals.role).toBe('editor');
    await hub.sendEvent('message', 'after release', 'all');
    await reader.waitForEvents(1);
    expect(reader.events).toEqual([{ event: 'message', data: 'after release' }]);
  });

  test("the app's error handler gets what a hook throws, and the app's other errors while streams are open", async () => {
    const caught: string[] = [];
    const sse = sseMiddleware({
      hub,
      channels: fromQuery(),
      authorize: (_req, channel) => {
        if (channel === 'broken') throw new Error('authorize hook failed');
        return true;
      },
    });
    const base = await serve(appWith(express, sse, caught));
    const reader = await SseReader.open(`${base}/sse?channels=all`);
    readers.push(reader);
    await waitFor(() => hub.stats().connections === 1, { what: 'one stream' });

    expect(await getJson(`${base}/sse?channels=broken`)).toMatchObject({
      status: 500,
      body: { caught: 'authorize hook failed' },
    });
    expect(await getJson(`${base}/boom`)).toMatchObject({ status: 500, body: { caught: 'boom from a route' } });
    expect(caught).toEqual(['authorize hook failed', 'boom from a route']);
    // Refusals are still the middleware's own answer, not the error handler's.
    expect(await getJson(`${base}/sse?channels=../x`)).toMatchObject({ status: 400 });
    expect(caught).toHaveLength(2);
  });
});

test('as a plain node:http handler, a throwing hook is answered 500 JSON without internals', async () => {
  const sse = sseMiddleware({
    hub,
    channels: fromQuery(),
    authorize: () => {
      throw new Error('secret detail');
    },
  });
  const base = await serve((req, res) => sse(req, res));
  expect(await getJson(`${base}/?channels=all`)).toMatchObject({
    status: 500,
    body: { error: 'internal error; see the server log' },
  });
});
