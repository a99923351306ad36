// An Express app that streams events at /sse and publishes them from a route.
// Run: node examples/express/app.js   (PORT and REDIS_URL are optional)
const express = require('express');
const { clientScripts, fromQuery, getDefaultHub, sendEvent, sseMiddleware } = require('sse-hub');

const app = express();
app.use('/sse', sseMiddleware({ channels: fromQuery() })); // GET /sse?channels=all,orders
app.use('/media/sse-hub', clientScripts()); // sse.js and jquery.eventsource.js

app.post('/orders/:id/ship', async (req, res, next) => {
  try {
    await sendEvent('message', { type: 'shipped', order: req.params.id }, 'orders');
    res.status(202).json({ shipped: req.params.id });
  } catch (err) {
    next(err); // BrokerUnavailableError when Redis is down: nothing is lost silently
  }
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
// Graceful stop: end the streams (browsers reconnect elsewhere), then the server.
process.on('SIGTERM', async () => {
  await getDefaultHub().close();
  server.close();
});
