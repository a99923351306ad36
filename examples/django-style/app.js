// The web app of the django-style example: a login form, express-session on
// Redis (connect-redis), a page whose <body sse-data="/sse/"> opens the stream,
// and a model whose save hook publishes to the owner's channel.
//
// The stream at /sse/ comes from one of two places, as in a Django site:
// - `runserver`: a separate `sse-runserver --channels session` process that
//   reads this app's session cookie from the same Redis; /sse/ is proxied to
//   it here the way nginx would route `location /sse/` in production.
// - `in-process`: sseMiddleware() in this app, reading req.session directly.
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');
const { clientScripts, configure, fromSession, sseMiddleware } = require('sse-hub');
const { Message, openDatabase, renderMessage, escapeHtml } = require('./models');
const { In } = require('typeorm');

/** Demo accounts: user name → password. Never do this outside an example. */
const USERS = { admin: 'admin', bob: 'bob' };
const OWNERS = ['admin', 'bob', 'all'];

/**
 * @param {{ redisUrl: string, secret: string, mode: 'runserver' | 'in-process', runserverUrl?: string }} options
 */
async function createApp(options) {
  const redis = createClient({
    url: options.redisUrl,
    socket: { connectTimeout: 5000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000) },
  });
  redis.on('error', (err) => console.error(`redis: ${err.message}`));
  await redis.connect();
  // sendEvent() in the model hook publishes through this hub (to Redis, so the
  // sse-runserver process, and any other, delivers it).
  const hub = configure({ redisUrl: options.redisUrl });
  const db = await openDatabase();

  const app = express();
  app.disable('x-powered-by');
  app.use(
    session({
      store: new RedisStore({ client: redis }), // keys `sess:<sid>`, as sse-runserver reads them
      secret: options.secret,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: 24 * 3600 * 1000 },
    }),
  );
  app.use(express.urlencoded({ extended: false }));
  app.use(express.json());
  app.use('/media/sse-hub', clientScripts()); // sse.js, served from the package
  app.use('/static', express.static(path.join(__dirname, 'static')));

  if (options.mode === 'in-process') {
    app.use('/sse', sseMiddleware({ hub, channels: fromSession() })); // [username, 'all']
  } else {
    app.use('/sse', proxyTo(options.runserverUrl));
  }

  app.get('/', async (req, res, next) => {
    try {
      const user = req.session.user?.username;
      const messages = user
        ? await db.getRepository(Message).find({ where: { owner: In([user, 'all']) }, order: { id: 'ASC' } })
        : [];
      res.type('html').send(page(user, messages, options.mode));
    } catch (err) {
      next(err);
    }
  });

  app.post('/login', (req, res, next) => {
    const { username, password } = req.body ?? {};
    if (!Object.hasOwn(USERS, username) || USERS[username] !== password) {
      res
        .status(401)
        .type('html')
        .send(page(undefined, [], options.mode, 'Wrong user name or password.'));
      return;
    }
    // A new session id at login (session fixation, CWE-384).
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = { username };
      req.session.save((err2) => (err2 ? next(err2) : res.redirect(303, '/')));
    });
  });

  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie('connect.sid');
      res.redirect(303, '/');
    });
  });

  // Saving the model is all it takes: its afterInsert hook sends the event.
  app.post('/messages', async (req, res, next) => {
    try {
      if (!req.session.user) return res.status(403).json({ error: 'log in first' });
      const { owner, text } = req.body ?? {};
      if (!OWNERS.includes(owner) || typeof text !== 'string' || text.trim() === '') {
        return res.status(400).json({ error: `owner must be one of ${OWNERS.join(', ')} and text non-empty` });
      }
      const saved = await db.getRepository(Message).save({ owner, text: text.trim() });
      res.status(201).json({ id: saved.id, owner });
    } catch (err) {
      next(err); // e.g. BrokerUnavailableError: the event could not be sent, so the save failed
    }
  });

  return {
    app,
    async close() {
      await hub.close();
      await db.destroy();
      await redis.close();
    },
  };
}

/**
 * A minimal streaming reverse proxy for /sse/ (what nginx does in production:
 * see docs/deployment.md). It forwards the stream and nothing else: only GET
 * of the stream path itself, so sse-runserver's /publish (which trusts local
 * programs) and its other routes stay out of the browser's reach
 * (SECURITY.md, "Who may publish"). The request goes out with X-Forwarded-For, as from a proxy.
 */
function proxyTo(baseUrl) {
  const target = new URL(baseUrl);
  return (req, res) => {
    const [pathname, query] = req.url.split(/\?(.*)/s); // Express has stripped the /sse mount: `/?...`
    if (pathname !== '/' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.status(404).json({ error: 'only the event stream is served under /sse/' });
      return;
    }
    const headers = { accept: 'text/event-stream', host: target.host };
    for (const name of ['cookie', 'last-event-id', 'user-agent', 'accept-language']) {
      if (req.headers[name] !== undefined) headers[name] = req.headers[name];
    }
    if (req.socket.remoteAddress) headers['x-forwarded-for'] = req.socket.remoteAddress;
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: query === undefined ? '/' : `/?${query}`,
        headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        res.flushHeaders();
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.status(502).json({ error: 'the SSE server is not reachable' });
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    upstream.end();
  };
}

function page(user, messages, mode, error) {
  const items = messages.map(renderMessage).join('\n        ');
  const main = user
    ? `<div class="who">
      <p>Logged in as <strong id="user">${escapeHtml(user)}</strong> (stream: ${mode}).</p>
      <form method="post" action="/logout"><button id="logout">Log out</button></form>
    </div>
    <form id="post" method="post" action="/messages">
      <select name="owner">${OWNERS.map((o) => `<option>${o}</option>`).join('')}</select>
      <input name="text" placeholder="a message" required />
      <button>Save</button>
    </form>
    <ul id="messages">
        ${items}
    </ul>`
    : `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
    <form id="login" method="post" action="/login">
      <input name="username" placeholder="admin or bob" autocomplete="username" />
      <input name="password" type="password" placeholder="same as the name" autocomplete="current-password" />
      <button>Log in</button>
    </form>
    <ul id="messages"></ul>`;
  return `<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>sse-hub: django-style example</title>
    <link rel="stylesheet" href="/static/style.css" />
  </head>
  <body sse-data="/sse/">
    <header><strong>sse-hub · django-style example</strong><span class="status"></span></header>
    <main>
    <h1>Messages</h1>
    ${main}
    </main>
    <script src="/media/sse-hub/sse.js"></script>
    <script src="/static/page.js"></script>
  </body>
</html>`;
}

module.exports = { createApp, USERS };
