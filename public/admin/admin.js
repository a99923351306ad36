// The sse-hub admin dashboard's script: polls api/stats, draws the chart,
// tails one channel through a real hub stream (api/tail), publishes test
// events. Every value from the server reaches the page through textContent,
// never as HTML: event data is shown as text, whatever it contains.
(function () {
  'use strict';

  var TOKEN_KEY = 'sse-hub-admin-token';
  var POLL_EVERY = 1000;
  var TAIL_KEPT = 200;
  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  var pollTimer = null;
  var tail = null;
  var tailChannel = null;

  function $(id) {
    return document.getElementById(id);
  }

  function api(path, init) {
    init = init || {};
    var headers = init.headers || {};
    if (token) headers.Authorization = 'Bearer ' + token;
    init.headers = headers;
    init.cache = 'no-store';
    init.credentials = 'same-origin';
    return fetch(path, init);
  }

  function errorOf(res) {
    return res.json().then(
      function (body) {
        return (body && body.error) || 'HTTP ' + res.status;
      },
      function () {
        return 'HTTP ' + res.status;
      },
    );
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString();
  }

  // ---- login ---------------------------------------------------------------

  function showLogin(message) {
    clearTimeout(pollTimer);
    stopTail();
    $('dashboard').hidden = true;
    $('broker').hidden = true;
    $('logout').hidden = true;
    $('summary').textContent = '';
    $('login').hidden = false;
    if (message) $('login-message').textContent = message;
    $('token').focus();
  }

  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token').value;
    sessionStorage.setItem(TOKEN_KEY, token);
    poll();
  });

  $('logout').addEventListener('click', function () {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('Logged out.');
  });

  // ---- polling -------------------------------------------------------------

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, POLL_EVERY);
  }

  async function poll() {
    var res;
    try {
      res = await api('api/stats');
    } catch (err) {
      alertLine('The server does not answer: ' + err.message);
      schedule();
      return;
    }
    if (res.status === 401 || res.status === 403) {
      var why = await errorOf(res);
      showLogin(res.status === 401 && token ? 'Wrong token.' : res.status === 403 ? why : '');
      return;
    }
    if (!res.ok) {
      alertLine(await errorOf(res));
      schedule();
      return;
    }
    var stats = await res.json();
    $('login').hidden = true;
    $('dashboard').hidden = false;
    $('logout').hidden = !token;
    render(stats);
    schedule();
  }

  function alertLine(text) {
    $('alert').hidden = !text;
    $('alert').textContent = text || '';
  }

  function render(stats) {
    var badge = $('broker');
    badge.hidden = false;
    badge.textContent = stats.broker.name + (stats.broker.healthy ? ' · up' : ' · DOWN');
    badge.className = stats.broker.healthy ? 'badge' : 'badge down';
    var subs = stats.channels.reduce(function (n, c) {
      return n + c.connections;
    }, 0);
    $('summary').textContent =
      stats.process.connections +
      ' connections here · ' +
      subs +
      ' subscriptions on the busiest channels · up ' +
      duration(stats.process.uptime);
    $('processes').textContent =
      stats.processes === null
        ? '(this process only)'
        : '(' + stats.processes + ' process' + (stats.processes === 1 ? ')' : 'es)');
    alertLine(
      !stats.broker.healthy
        ? 'The ' +
            stats.broker.name +
            ' broker is down: events are not flowing.' +
            (stats.presenceError ? ' ' + stats.presenceError : '')
        : stats.presenceError || '',
    );
    renderChannels(stats.channels);
    renderRefusals(stats.refusals, stats.refusalTotals);
    drawChart(stats.series);
  }

  function duration(seconds) {
    if (seconds < 120) return seconds + ' s';
    if (seconds < 7200) return Math.round(seconds / 60) + ' min';
    return Math.round(seconds / 3600) + ' h';
  }

  function renderChannels(channels) {
    var body = $('channels').tBodies[0];
    body.textContent = '';
    channels.forEach(function (c) {
      var row = el('tr', c.channel === tailChannel ? 'selected' : '');
      row.dataset.channel = c.channel;
      row.appendChild(el('td', 'name', c.channel));
      row.appendChild(el('td', 'subs', c.connections));
      row.appendChild(el('td', 'users', c.users));
      row.appendChild(el('td', 'rate', c.eventsPerSecond === null ? '—' : c.eventsPerSecond));
      row.appendChild(el('td', 'history', c.history === null ? '—' : c.history));
      row.addEventListener('click', function () {
        startTail(c.channel);
      });
      body.appendChild(row);
    });
    $('no-channels').hidden = channels.length > 0;
  }

  function renderRefusals(refusals, totals) {
    var list = $('refusals');
    list.textContent = '';
    refusals.forEach(function (r) {
      var item = el('li');
      item.appendChild(el('span', 'time', clock(r.time)));
      item.appendChild(el('span', 'kind', r.kind));
      item.appendChild(el('span', 'detail', r.detail));
      list.appendChild(item);
    });
    $('no-refusals').hidden = refusals.length > 0;
    $('refusal-totals').textContent = Object.keys(totals)
      .map(function (k) {
        return k + ' ' + totals[k];
      })
      .join(' · ');
  }

  // ---- chart ---------------------------------------------------------------

  function label(value) {
    return value === Math.round(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1);
  }

  function drawChart(series) {
    var canvas = $('chart');
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth;
    var height = canvas.clientHeight;
    if (canvas.width !== width * ratio) canvas.width = width * ratio;
    if (canvas.height !== height * ratio) canvas.height = height * ratio;
    var g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    var css = getComputedStyle(document.documentElement);
    var pad = { left: 44, right: 44, top: 8, bottom: 18 };
    var w = width - pad.left - pad.right;
    var h = height - pad.top - pad.bottom;
    var now = series.length ? series[series.length - 1][0] : Date.now();
    var span = 10 * 60 * 1000;
    function x(t) {
      return pad.left + w * (1 - (now - t) / span);
    }
    function top(values) {
      var max = Math.max.apply(null, values.concat([1]));
      var step = Math.pow(10, Math.floor(Math.log10(max)));
      return Math.ceil(max / step) * step;
    }
    var maxC = top(
      series.map(function (s) {
        return s[1];
      }),
    );
    var maxE = top(
      series.map(function (s) {
        return s[2];
      }),
    );
    g.strokeStyle = '#e1e4ea';
    g.fillStyle = '#6b7385';
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    for (var i = 0; i <= 4; i++) {
      var y = pad.top + (h * i) / 4;
      g.beginPath();
      g.moveTo(pad.left, y);
      g.lineTo(pad.left + w, y);
      g.stroke();
      g.textAlign = 'right';
      g.fillText(label((maxC * (4 - i)) / 4), pad.left - 6, y + 4);
      g.textAlign = 'left';
      g.fillText(label((maxE * (4 - i)) / 4), pad.left + w + 6, y + 4);
    }
    g.textAlign = 'center';
    for (var m = 10; m >= 0; m -= 2) g.fillText(m === 0 ? 'now' : '-' + m + ' min', x(now - m * 60000), height - 4);
    function line(index, max, color) {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      series.forEach(function (s, k) {
        var px = Math.max(pad.left, x(s[0]));
        var py = pad.top + h * (1 - s[index] / max);
        if (k === 0) g.moveTo(px, py);
        else g.lineTo(px, py);
      });
      g.stroke();
    }
    line(1, maxC, css.getPropertyValue('--connections').trim() || '#2563eb');
    line(2, maxE, css.getPropertyValue('--events').trim() || '#ea7a12');
  }

  // ---- tail: a real stream of the hub, read with fetch so it can carry the token ----

  function stopTail() {
    if (tail) tail.abort();
    tail = null;
  }

  function startTail(channel) {
    stopTail();
    tailChannel = channel;
    $('tail-channel').textContent = channel;
    $('tail-input').value = channel;
    $('tail-status').textContent = 'connecting…';
    if (!$('publish-channel').value) $('publish-channel').value = channel;
    Array.prototype.forEach.call($('channels').tBodies[0].rows, function (row) {
      row.className = row.dataset.channel === channel ? 'selected' : '';
    });
    var controller = new AbortController();
    tail = controller;
    api('api/tail?channel=' + encodeURIComponent(channel), { signal: controller.signal })
      .then(async function (res) {
        if (!res.ok) {
          $('tail-status').textContent = await errorOf(res);
          return;
        }
        $('tail-status').textContent = 'live';
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done) break;
          buffer += decoder.decode(chunk.value, { stream: true });
          var frames = buffer.split(/\r\n\r\n|\n\n|\r\r/);
          buffer = frames.pop();
          frames.forEach(onFrame);
        }
        throw new Error('stream ended');
      })
      .catch(function () {
        if (controller.signal.aborted || tail !== controller) return;
        $('tail-status').textContent = 'reconnecting…';
        setTimeout(function () {
          if (tail === controller) startTail(channel);
        }, 2000);
      });
  }

  function onFrame(text) {
    var event = 'message';
    var id = null;
    var data = [];
    text.split(/\r\n|\n|\r/).forEach(function (line) {
      if (line === '' || line.charAt(0) === ':') return;
      var colon = line.indexOf(':');
      var field = colon === -1 ? line : line.slice(0, colon);
      var value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.charAt(0) === ' ') value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    });
    if (data.length === 0) return; // retry: or a comment
    var item = el('li');
    item.appendChild(el('span', 'time', clock(Date.now())));
    item.appendChild(el('span', 'kind', event));
    if (id !== null) item.appendChild(el('span', 'time', '#' + id));
    item.appendChild(el('pre', 'data', data.join('\n')));
    var list = $('tail');
    list.insertBefore(item, list.firstChild);
    while (list.childNodes.length > TAIL_KEPT) list.removeChild(list.lastChild);
  }

  $('tail-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var channel = $('tail-input').value.trim();
    if (channel) startTail(channel);
  });
  $('tail-clear').addEventListener('click', function () {
    $('tail').textContent = '';
  });

  // ---- publish -------------------------------------------------------------

  $('publish-form').addEventListener('submit', async function (e) {
    e.preventDefault();
    var out = $('publish-result');
    var text = $('publish-data').value;
    var data;
    try {
      data = JSON.parse(text);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      data = text; // not JSON: sent as a string
    }
    var body = {
      channel: $('publish-channel').value.trim(),
      event: $('publish-event').value.trim() || 'message',
      data: data,
    };
    out.className = '';
    out.textContent = 'sending…';
    try {
      var res = await api('api/publish', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.ok) {
        var result = await res.json();
        out.textContent = 'sent' + (result.id ? ' as #' + result.id : '') + ' at ' + clock(Date.now());
      } else {
        out.className = 'error';
        out.textContent = await errorOf(res);
      }
    } catch (err) {
      out.className = 'error';
      out.textContent = err.message;
    }
  });

  poll();
})();
