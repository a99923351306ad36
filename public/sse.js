/*!
 * sse-hub: sse.js, the page side of docs/browser.md. No dependencies, no build step.
 *
 * Opens one EventSource to the URL in <body sse-data="..."> (or data-sse) and
 * turns every message into an `sse.<type>` event on <body>: a DOM CustomEvent
 * (detail = the parsed message) and, when jQuery is on the page, a jQuery
 * event, so `$('body').on('sse.message', function (e, msg) {...})` works as it
 * did with tornado-sse. Invariant: a name is `sse.<msg.type>` when the parsed
 * data has a string `type`, else `sse.<event name>`; `msg` is the parsed JSON,
 * or the raw string when the data is not JSON. Pages depend on both.
 *
 *   <script src="/static/sse-hub/sse.js"></script>
 *   <body sse-data="/sse/?channels=all,foo" sse-events="alert,update">
 *
 * Attributes of <body>:
 *   sse-data / data-sse    the stream URL (required)
 *   sse-events             extra SSE event names to listen for, comma separated
 *                          (an EventSource hears only `message` otherwise)
 *   sse-heartbeat-timeout  ms without a byte before the npm polyfill reconnects
 *                          (polyfill only; keep it above the server's heartbeat)
 *   sse-share="off"        one EventSource per tab instead of one per origin
 *   sse-token-url          token mode (docs/tokens.md): a URL fetched (GET, with
 *                          cookies) before every connect and reconnect. It may
 *                          set a fresh token cookie, or answer JSON {"token": "..."},
 *                          which is then sent as ?token=. A 401/403 answer means
 *                          the user is gone: the stream stops (sse.error, readyState 2).
 *
 * Tab sharing (docs/browser.md#one-connection-for-all-tabs): tabs of one origin with the same stream URL (and the
 * same sse-events) elect a leader with the Web Locks API; only the leader
 * holds an EventSource and fans every message out over a BroadcastChannel, so
 * an app open in 8 tabs uses 1 connection. Followers dispatch the same sse.*
 * events. When the leader goes, the next tab in the lock queue takes over and
 * resumes with ?lastEventId= (the newest id any tab saw); ids already seen are
 * dropped, so every tab gets every event once, in order. Without Web Locks or
 * BroadcastChannel (or with sse-share="off") every tab has its own stream.
 *
 * Watchdog (docs/browser.md#the-watchdog-a-dead-stream-is-not-a-quiet-one): when the stream announces `event: heartbeat` (the
 * server's --heartbeat-event), the stream holder reconnects after 2.5
 * heartbeats without any message, with jittered exponential backoff, and
 * dispatches sse.stale, then sse.live when messages flow again. Heartbeat
 * events are not dispatched unless `heartbeat` is listed in sse-events.
 *
 * Token refresh: a token-mode server ends a stream when its token expires, and
 * the browser's own reconnect would carry the expired token (403, for good).
 * With sse-token-url the stream holder instead closes the EventSource, fetches
 * a fresh token, and reconnects (resuming from the last id), so a page outlives
 * its tokens for as long as the user stays logged in.
 */
(function (window, document) {
  'use strict';

  if (window.sseHub && window.sseHub.version) return; // loaded twice: keep the first

  var PREFIX = 'sse.';
  var POLYFILL_FILE = 'eventsource-polyfill.js';
  /** The server's visible heartbeat (sse-runserver --heartbeat-event): data {"heartbeat": ms, "time": epoch ms}. */
  var HEARTBEAT_EVENT = 'heartbeat';
  /** The watchdog fires after this many announced heartbeats without any message. */
  var STALE_AFTER_HEARTBEATS = 2.5;
  /** Reconnect delays after the watchdog fires: 1 s, 2 s, 4 s ... 30 s, each jittered to 50-100 %. */
  var BACKOFF_BASE = 1000;
  var BACKOFF_MAX = 30000;
  /** Longest wait before reconnecting a token stream that ended cleanly (see reconnectLater). */
  var QUICK_RECONNECT = 100;
  /** Ids remembered per tab to drop the repeats a new leader's replay may bring. */
  var SEEN_IDS = 1000;
  /** Name prefix of the Web Lock and the BroadcastChannel that tabs sharing a stream meet on. */
  var SHARE_PREFIX = 'sse-hub ';
  // Captured now: document.currentScript is only set while this file runs.
  var polyfillUrl = siblingUrl(POLYFILL_FILE);

  // --- The public handle -------------------------------------------------

  var sseHub = {
    version: 2,
    /** This tab's EventSource (native or polyfill); null in a follower tab, before connecting and after close(). */
    source: null,
    /** The stream URL read from <body>. */
    url: null,
    /** Names listened for on the EventSource (`message` + sse-events). */
    events: [],
    /** True when this tab shares one stream with the other tabs of its origin (Web Locks + BroadcastChannel). */
    shared: false,
    /** True when this tab holds the stream: the leader of the shared tabs, or a tab that does not share. */
    leader: false,
    /** The heartbeat interval (ms) the stream announced; null when it sends no heartbeat events (no watchdog). */
    heartbeat: null,
    /** True between sse.stale and sse.live. */
    stale: false,
    /** The newest event id this tab saw; the stream resumes from it. */
    lastEventId: null,
    /** The token-refresh URL from sse-token-url; null without one. */
    tokenUrl: null,
    /** Closes the stream for good in this tab; no more sse.* events are dispatched. A follower takes over a leader's stream. */
    close: close,
  };
  var closed = false;
  var config = null;
  window.sseHub = sseHub;

  // --- Configuration from <body> -----------------------------------------

  function readConfig(body) {
    var url = body.getAttribute('sse-data') || body.getAttribute('data-sse');
    var timeout = Number(body.getAttribute('sse-heartbeat-timeout'));
    var share = (body.getAttribute('sse-share') || '').trim().toLowerCase();
    var tokenUrl = body.getAttribute('sse-token-url') || body.getAttribute('data-sse-token-url');
    return {
      url: url ? url.trim() : '',
      tokenUrl: tokenUrl ? tokenUrl.trim() : '',
      events: eventNames(body.getAttribute('sse-events')),
      heartbeatTimeout: timeout > 0 ? timeout : undefined,
      share: share !== 'off' && share !== 'false' && share !== 'no',
    };
  }

  /** `message` plus the listed names, trimmed and unique; open/error are the EventSource's own. */
  function eventNames(list) {
    var names = ['message'];
    (list || '').split(',').forEach(function (name) {
      name = name.trim();
      if (name && name !== 'open' && name !== 'error' && names.indexOf(name) === -1) names.push(name);
    });
    return names;
  }

  // --- EventSource: native, or the npm polyfill from the same mount -------

  /** A URL next to this script (same static mount), from the script's own src. */
  function siblingUrl(file) {
    var script = document.currentScript;
    var src = script && script.src;
    if (!src) return file;
    return new URL(file, src).href;
  }

  /**
   * Resolves with the EventSource constructor. When the browser has none, it
   * loads event-source-polyfill (served by clientScripts() at
   * <mount>/eventsource-polyfill.js) once per page; jquery.eventsource.js
   * shares the same promise.
   */
  function whenEventSource(url) {
    if (typeof window.EventSource === 'function') return Promise.resolve(window.EventSource);
    if (!window.sseHubEventSource) {
      window.sseHubEventSource = new Promise(function (resolve, reject) {
        var script = document.createElement('script');
        script.src = url;
        script.async = true;
        script.onload = function () {
          if (typeof window.EventSource === 'function') resolve(window.EventSource);
          else reject(new Error('sse-hub: ' + url + ' loaded but defined no EventSource'));
        };
        script.onerror = function () {
          reject(new Error('sse-hub: could not load the EventSource polyfill from ' + url));
        };
        (document.head || document.documentElement).appendChild(script);
      });
    }
    return window.sseHubEventSource;
  }

  // --- Message → name and payload -----------------------------------------

  /** The parsed JSON where the data is JSON, else the raw string. */
  function parseData(data) {
    try {
      return JSON.parse(data);
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- ES2017 has no optional catch binding
    } catch (notJson) {
      return data;
    }
  }

  /** `sse.<msg.type>` when the parsed data carries a string type, else `sse.<event name>`. */
  function nameFor(eventName, msg) {
    if (msg !== null && typeof msg === 'object' && typeof msg.type === 'string' && msg.type !== '') {
      return PREFIX + msg.type;
    }
    return PREFIX + eventName;
  }

  // --- Dispatch on <body> --------------------------------------------------

  /**
   * Fires `name` on <body>: a bubbling DOM CustomEvent with `detail`, then,
   * when jQuery is on the page, `$(body).trigger(name, [detail])`. The array
   * keeps jQuery from spreading an array or array-like payload into arguments.
   */
  function dispatch(name, detail) {
    var body = document.body;
    if (!body) return;
    body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
    var jQuery = window.jQuery;
    if (typeof jQuery === 'function' && jQuery.fn && jQuery.fn.trigger) jQuery(body).trigger(name, [detail]);
  }

  /** What sse.open and sse.error carry: readyState 0 = reconnecting, 1 = open, 2 = closed for good. */
  function status(source) {
    return { url: source.url, readyState: source.readyState };
  }

  // --- Messages: once per id, in every tab ---------------------------------

  var seenIds = new Set();
  var seenOrder = [];

  /**
   * One message, from this tab's EventSource or from the leader: dropped when
   * its id was already seen (a new leader's replay starts at the newest id
   * *it* saw, which another tab may have passed), else dispatched, and
   * passed on to the followers when it came from this tab's own stream
   * (`relay`): a message from a leader that has just gone is never sent round again.
   */
  function receive(eventName, data, id, relay) {
    if (closed) return;
    if (id) {
      if (seenIds.has(id)) return;
      seenIds.add(id);
      seenOrder.push(id);
      if (seenOrder.length > SEEN_IDS) seenIds.delete(seenOrder.shift());
      sseHub.lastEventId = id;
    }
    var msg = parseData(data);
    dispatch(nameFor(eventName, msg), msg);
    if (relay && sseHub.leader) post({ k: 'event', name: eventName, data: data, id: id });
  }

  /** open, error, stale, live: dispatched here and, from the leader, in every follower. */
  function notify(kind, detail) {
    if (closed) return;
    dispatch(PREFIX + kind, detail);
    if (sseHub.leader) post({ k: kind, detail: detail });
  }

  // --- The stream (the leader's, or every tab's when not sharing) -----------

  var source = null;
  /** The last id field of `source` as seen so far: MessageEvent.lastEventId repeats it for events without an id. */
  var sourceLastId = '';
  var watchdogTimer = null;
  var retryTimer = null;
  var attempt = 0;
  var silentSince = 0;

  /** A token from the refresh URL's JSON answer, sent as ?token=; null when it set a cookie instead. */
  var token = null;

  /**
   * The stream URL with ?lastEventId=<id> (EventSource cannot set the
   * Last-Event-ID header itself) and ?token= when the refresh URL gave one.
   */
  function streamUrl(url, id) {
    if (!id && !token) return url;
    var resolved = new URL(url, document.baseURI);
    if (id) resolved.searchParams.set('lastEventId', id);
    if (token) resolved.searchParams.set('token', token);
    return resolved.href;
  }

  /**
   * GET sse-token-url with the page's cookies. Resolves with the token of a
   * JSON {"token": "..."} answer, or null (the answer set a cookie). Rejects
   * with `refused` set on 401/403: the user logged out, and no retry can help.
   */
  function refreshToken() {
    return window
      .fetch(config.tokenUrl, { credentials: 'include', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) {
          var refused = new Error('sse-hub: ' + config.tokenUrl + ' refused a token (HTTP ' + res.status + ')');
          refused.refused = true;
          throw refused;
        }
        if (!res.ok) throw new Error('sse-hub: ' + config.tokenUrl + ' answered HTTP ' + res.status);
        if ((res.headers.get('content-type') || '').indexOf('json') === -1) return null;
        return res.json().then(function (body) {
          return body && typeof body.token === 'string' && body.token ? body.token : null;
        });
      });
  }

  /** Opens the stream: with sse-token-url, only once a fresh token is in hand. */
  function openStream() {
    if (closed) return;
    var fresh = config.tokenUrl
      ? refreshToken().then(function (value) {
          token = value;
        })
      : Promise.resolve();
    Promise.all([whenEventSource(polyfillUrl), fresh]).then(
      function (ready) {
        connect(ready[0]);
      },
      function (err) {
        if (closed) return;
        if (err && err.refused) {
          // Logged out: stop for good, as a refused stream would.
          if (window.console) console.warn(err.message);
          disarmWatchdog();
          notify('error', { url: config.url, readyState: 2, error: err.message });
          return;
        }
        if (!config.tokenUrl) return failed(err);
        notify('error', { url: config.url, readyState: 0, error: String(err.message || err) });
        reconnectLater();
      },
    );
  }

  /**
   * Reconnects after a jittered, growing delay: 0.5-1 s, then 1-2 s ... up to
   * 15-30 s. `quick`: a token stream that was open has just ended (its token
   * expired); events published until it is back are missed, so the first
   * attempt waits 0-100 ms only (tokens expire at scattered times anyway).
   */
  function reconnectLater(quick) {
    if (closed || retryTimer !== null) return;
    var delay = Math.min(BACKOFF_MAX, BACKOFF_BASE * Math.pow(2, attempt));
    delay = quick && attempt === 0 ? Math.random() * QUICK_RECONNECT : delay / 2 + Math.random() * (delay / 2);
    attempt += 1;
    retryTimer = setTimeout(function () {
      retryTimer = null;
      openStream();
    }, delay);
  }

  function connect(EventSource) {
    if (closed) return;
    var options = { withCredentials: true };
    if (config.heartbeatTimeout) options.heartbeatTimeout = config.heartbeatTimeout;
    var es = new EventSource(streamUrl(config.url, sseHub.lastEventId), options);
    source = es;
    sourceLastId = '';
    sseHub.source = es;

    function current() {
      return es === source && !closed;
    }
    function onMessage(event, eventName) {
      if (!current()) return;
      // A message carries an id of its own only when lastEventId changed.
      var id = event.lastEventId !== sourceLastId ? event.lastEventId : '';
      sourceLastId = event.lastEventId;
      alive();
      if (eventName === HEARTBEAT_EVENT) {
        var beat = parseData(event.data);
        if (beat && typeof beat.heartbeat === 'number' && beat.heartbeat > 0) {
          sseHub.heartbeat = beat.heartbeat;
          armWatchdog();
        }
        if (config.events.indexOf(HEARTBEAT_EVENT) === -1) return; // the watchdog's, not the page's
      }
      receive(event.type || eventName, event.data, id, true);
    }

    es.addEventListener('open', function () {
      if (!current()) return;
      // A token stream that opened has a good token: the next expiry starts the backoff afresh.
      // (Without one, only a message resets it, so the watchdog's backoff grows across silent opens.)
      if (config.tokenUrl) attempt = 0;
      notify('open', status(es));
    });
    es.addEventListener('error', function () {
      if (!current()) return;
      notify('error', status(es));
      if (es.readyState === 2)
        disarmWatchdog(); // refused for good (non-200): never retried
      else if (config.tokenUrl) {
        // The stream ended (its token expired, or the server went): the
        // browser would retry with the old token; fetch a new one first.
        es.close();
        reconnectLater(true);
      }
    });
    config.events
      .concat(config.events.indexOf(HEARTBEAT_EVENT) === -1 ? [HEARTBEAT_EVENT] : [])
      .forEach(function (name) {
        es.addEventListener(name, function (event) {
          onMessage(event, name);
        });
      });
    armWatchdog();
  }

  /** Something arrived: the stream is alive; after sse.stale that is sse.live. */
  function alive() {
    attempt = 0;
    silentSince = Date.now();
    if (sseHub.stale) {
      sseHub.stale = false;
      notify('live', { url: source.url, heartbeat: sseHub.heartbeat });
    }
    armWatchdog();
  }

  function armWatchdog() {
    disarmWatchdog();
    if (!sseHub.heartbeat || closed) return;
    watchdogTimer = setTimeout(onSilence, STALE_AFTER_HEARTBEATS * sseHub.heartbeat);
  }

  function disarmWatchdog() {
    if (watchdogTimer !== null) clearTimeout(watchdogTimer);
    watchdogTimer = null;
  }

  /**
   * 2.5 heartbeats without a message: the stream is dead though it looks
   * open (a frozen server, a proxy that stopped forwarding, a half-open TCP
   * connection). Close it and reconnect after a jittered, growing delay, so
   * a fleet of pages that lost the same server do not come back at once.
   */
  function onSilence() {
    watchdogTimer = null;
    if (closed || !source) return;
    if (!sseHub.stale) {
      sseHub.stale = true;
      notify('stale', { url: source.url, heartbeat: sseHub.heartbeat, silentFor: Date.now() - silentSince });
    }
    source.close();
    reconnectLater();
  }

  function failed(err) {
    if (window.console) console.error(err);
    notify('error', { url: config.url, readyState: 2, error: String(err.message || err) });
  }

  /** Holds the stream in this tab (the leader, or a tab that does not share). */
  function lead() {
    if (closed) return;
    sseHub.leader = true;
    silentSince = Date.now();
    openStream();
  }

  // --- Tab sharing: Web Locks elect the leader, BroadcastChannel fans out -----

  var channel = null;
  var releaseLock = null;
  var lockRequest = null;
  /** This tab's name in hello/state messages, so a state reply reaches only the tab that asked. */
  var tabId = Math.random().toString(36).slice(2);

  function canShare() {
    var locks = window.navigator && window.navigator.locks;
    return !!locks && typeof locks.request === 'function' && typeof window.BroadcastChannel === 'function';
  }

  /** Tabs share only when they would open the very same stream: same absolute URL, same event names. */
  function shareKey() {
    var names = config.events.slice().sort().join(',');
    return SHARE_PREFIX + new URL(config.url, document.baseURI).href + ' ' + names;
  }

  function post(message) {
    if (channel) channel.postMessage(message);
  }

  function share() {
    var key = shareKey();
    sseHub.shared = true;
    channel = new window.BroadcastChannel(key);
    channel.onmessage = function (event) {
      onShared(event.data || {});
    };
    // A tab that joins late asks the leader whether the stream is open, and from which id it would resume.
    post({ k: 'hello', from: tabId });
    lockRequest = typeof AbortController === 'function' ? new AbortController() : null;
    var options = lockRequest ? { signal: lockRequest.signal } : {};
    // The lock is held until this tab closes (the browser then grants it to the next tab in line) or close().
    window.navigator.locks
      .request(key, options, function () {
        if (closed) return undefined;
        return new Promise(function (resolve) {
          releaseLock = resolve;
          lead();
        });
      })
      .catch(function (err) {
        if (closed || (err && err.name === 'AbortError')) return;
        failed(err);
      });
  }

  /** A message from another tab sharing this stream. */
  function onShared(m) {
    if (closed) return;
    switch (m.k) {
      case 'hello':
        if (sseHub.leader && source) {
          post({
            k: 'state',
            to: m.from,
            detail: status(source),
            lastEventId: sseHub.lastEventId,
            heartbeat: sseHub.heartbeat,
            stale: sseHub.stale,
          });
        }
        break;
      case 'state':
        if (m.to !== tabId || sseHub.leader) break;
        if (m.lastEventId && !sseHub.lastEventId) sseHub.lastEventId = m.lastEventId;
        sseHub.heartbeat = m.heartbeat;
        sseHub.stale = m.stale;
        if (m.detail.readyState === 1) dispatch(PREFIX + 'open', m.detail);
        break;
      case 'event':
        // Also when this tab has just become the leader: a message the old one
        // sent last may arrive after the hand-over; receive() drops repeats.
        receive(m.name, m.data, m.id, false);
        break;
      case 'open':
      case 'error':
      case 'stale':
      case 'live':
        if (sseHub.leader) break;
        if (m.k === 'stale' || m.k === 'live') sseHub.stale = m.k === 'stale';
        if (m.k === 'live') sseHub.heartbeat = m.detail.heartbeat;
        dispatch(PREFIX + m.k, m.detail);
        break;
      default:
        break;
    }
  }

  // --- Lifecycle ------------------------------------------------------------

  function close() {
    closed = true;
    disarmWatchdog();
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = null;
    if (source) source.close();
    source = null;
    sseHub.source = null;
    sseHub.leader = false;
    if (lockRequest) lockRequest.abort();
    if (releaseLock) releaseLock(); // the next tab in line takes the stream over
    releaseLock = null;
    if (channel) channel.close();
    channel = null;
  }

  function start() {
    config = readConfig(document.body);
    if (!config.url) {
      if (window.console) console.warn('sse-hub: <body> has no sse-data (or data-sse) attribute; no stream opened');
      return;
    }
    sseHub.url = config.url;
    sseHub.events = config.events;
    sseHub.tokenUrl = config.tokenUrl || null;
    if (config.share && canShare()) share();
    else lead();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})(window, document);
