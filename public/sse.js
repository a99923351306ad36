/*!
 * sse-hub: sse.js, the page side of SPEC §5. No dependencies, no build step.
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
 */
(function (window, document) {
  'use strict';

  if (window.sseHub && window.sseHub.version) return; // loaded twice: keep the first

  var PREFIX = 'sse.';
  var POLYFILL_FILE = 'eventsource-polyfill.js';
  // Captured now: document.currentScript is only set while this file runs.
  var polyfillUrl = siblingUrl(POLYFILL_FILE);

  // --- The public handle -------------------------------------------------

  var sseHub = {
    version: 1,
    /** The EventSource (native or polyfill); null until connected or after close(). */
    source: null,
    /** The stream URL read from <body>. */
    url: null,
    /** Names listened for on the EventSource (`message` + sse-events). */
    events: [],
    /** Closes the stream for good; no more sse.* events are dispatched. */
    close: close,
  };
  var closed = false;
  window.sseHub = sseHub;

  // --- Configuration from <body> -----------------------------------------

  function readConfig(body) {
    var url = body.getAttribute('sse-data') || body.getAttribute('data-sse');
    var timeout = Number(body.getAttribute('sse-heartbeat-timeout'));
    return {
      url: url ? url.trim() : '',
      events: eventNames(body.getAttribute('sse-events')),
      heartbeatTimeout: timeout > 0 ? timeout : undefined,
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

  // --- The connection --------------------------------------------------------

  function connect(EventSource, config) {
    if (closed) return;
    var options = { withCredentials: true };
    if (config.heartbeatTimeout) options.heartbeatTimeout = config.heartbeatTimeout;
    var source = new EventSource(config.url, options);
    sseHub.source = source;

    source.addEventListener('open', function () {
      if (!closed) dispatch(PREFIX + 'open', status(source));
    });
    source.addEventListener('error', function () {
      if (!closed) dispatch(PREFIX + 'error', status(source));
    });
    config.events.forEach(function (eventName) {
      source.addEventListener(eventName, function (event) {
        if (closed) return;
        var msg = parseData(event.data);
        dispatch(nameFor(event.type || eventName, msg), msg);
      });
    });
  }

  function close() {
    closed = true;
    if (sseHub.source) sseHub.source.close();
    sseHub.source = null;
  }

  function start() {
    var config = readConfig(document.body);
    if (!config.url) {
      if (window.console) console.warn('sse-hub: <body> has no sse-data (or data-sse) attribute; no stream opened');
      return;
    }
    sseHub.url = config.url;
    sseHub.events = config.events;
    whenEventSource(polyfillUrl).then(
      function (EventSource) {
        connect(EventSource, config);
      },
      function (err) {
        if (window.console) console.error(err);
        dispatch(PREFIX + 'error', { url: config.url, readyState: 2, error: String(err.message || err) });
      },
    );
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})(window, document);
