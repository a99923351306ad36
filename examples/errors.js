// One error root: every sse-hub error is an SseHubError with a stable code,
// and errors about bad input are TypeErrors too. Run: node examples/errors.js
const assert = require('node:assert');
const { EventError, SseHubError, getDefaultHub, sendEvent } = require('sse-hub');

async function main() {
  try {
    await sendEvent('bad\nname', 'data', 'all'); // an event name with a line break
    assert.fail('sendEvent should have rejected');
  } catch (err) {
    assert.ok(err instanceof SseHubError); // true for every sse-hub error
    assert.ok(err instanceof EventError);
    assert.ok(err instanceof TypeError); // bad input is a TypeError too
    assert.equal(err.code, 'SSE_ERR_EVENT'); // stable: match on the code, not the message
    assert.equal(err.status, 400); // the status it is answered with over HTTP
    console.log(`${err.code}: ${err.message}`);
  } finally {
    await getDefaultHub().close();
  }
}

main();
