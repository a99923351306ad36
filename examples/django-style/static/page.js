// The page side: sse.js turns each message into `sse.<type>` on <body>; the
// model sends `{ type: 'foo', html }`, so listening for `sse.foo` is enough.
(function () {
  'use strict';
  var body = document.body;
  var list = document.getElementById('messages');

  body.addEventListener('sse.foo', function (e) {
    list.insertAdjacentHTML('beforeend', e.detail.html); // HTML built and escaped by the server
  });
  body.addEventListener('sse.open', function () {
    body.setAttribute('data-stream', 'open');
  });
  body.addEventListener('sse.error', function (e) {
    // readyState 2: the server refused the stream (e.g. 403, not logged in) and the browser gave up.
    body.setAttribute('data-stream', e.detail && e.detail.readyState === 2 ? 'closed' : 'error');
  });

  // Save without reloading, so the new message arrives over the stream.
  var form = document.getElementById('post');
  if (form) {
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      fetch('/messages', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ owner: form.elements.owner.value, text: form.elements.text.value }),
      }).then(function (res) {
        body.setAttribute('data-saved', String(res.status));
        if (res.ok) form.elements.text.value = '';
      });
    });
  }
})();
