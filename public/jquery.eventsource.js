/*!
 * sse-hub: jquery.eventsource.js, the `$.eventsource` plugin API that
 * tornado-sse pages load (docs/browser.md), over the native EventSource.
 *
 *   $.eventsource({ label, url, data, dataType, open, message, error,
 *                   events, withCredentials, heartbeatTimeout });
 *   $.eventsource('close', label);    // or '*' / no label: close every stream
 *   $.eventsource('streams', label);  // the open streams, or one by label
 *   $.eventsource.close(label); $.eventsource.streams(label);
 *
 * Callbacks run with `this` = the EventSource (which carries `.label`):
 *   open(event)
 *   message(data, { data: [data], lastEventId }, event)
 *   error(event)      on every error: event.target.readyState 0 = reconnecting,
 *                     2 = closed for good
 * `dataType: 'text'` passes the raw string; otherwise (`'json'`, the default)
 * the data is parsed as JSON where it can be, else passed as the raw string.
 * Invariant: works with jQuery 3 and 4, so it uses none of the helpers jQuery
 * 4 removed ($.trim, $.isArray, $.parseJSON, $.type, $.isFunction, ...).
 */
(function (window, document) {
  'use strict';

  var jQuery = window.jQuery;
  if (typeof jQuery !== 'function') {
    throw new Error('jquery.eventsource.js: load jQuery before this script');
  }

  var POLYFILL_FILE = 'eventsource-polyfill.js';
  // Captured now: document.currentScript is only set while this file runs.
  var polyfillUrl = siblingUrl(POLYFILL_FILE);

  function noop() {}

  var defaults = {
    label: null,
    url: null,
    data: null,
    dataType: 'json',
    events: [],
    withCredentials: false,
    heartbeatTimeout: undefined,
    open: noop,
    message: noop,
    error: noop,
  };

  /** label → { label, url, options, stream, lastEventId } */
  var streams = {};

  // --- EventSource: native, or the npm polyfill from the same mount -------

  function siblingUrl(file) {
    var script = document.currentScript;
    var src = script && script.src;
    if (!src) return file;
    return new URL(file, src).href;
  }

  /** Same loader and shared promise as sse.js: the polyfill loads once per page. */
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

  // --- Opening a stream --------------------------------------------------------

  function decode(data, dataType) {
    if (dataType === 'text') return data;
    try {
      return JSON.parse(data);
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- ES2017 has no optional catch binding
    } catch (notJson) {
      return data;
    }
  }

  function urlWithData(url, data) {
    if (data === null || data === undefined || data === '') return url;
    var query = typeof data === 'string' ? data : jQuery.param(data);
    return url + (url.indexOf('?') === -1 ? '?' : '&') + query;
  }

  function openStream(EventSource, entry) {
    var options = entry.options;
    var init = { withCredentials: Boolean(options.withCredentials) };
    if (options.heartbeatTimeout) init.heartbeatTimeout = options.heartbeatTimeout;
    var source = new EventSource(entry.url, init);
    source.label = entry.label;
    entry.stream = source;

    function live() {
      return streams[entry.label] === entry;
    }
    source.addEventListener('open', function (event) {
      if (live()) options.open.call(source, event);
    });
    source.addEventListener('error', function (event) {
      if (live()) options.error.call(source, event);
    });
    eventNames(options.events).forEach(function (name) {
      source.addEventListener(name, function (event) {
        if (!live()) return;
        var data = decode(event.data, options.dataType);
        entry.lastEventId = event.lastEventId;
        options.message.call(source, data, { data: [data], lastEventId: event.lastEventId }, event);
      });
    });
  }

  function eventNames(extra) {
    var names = ['message'];
    var list = typeof extra === 'string' ? extra.split(',') : Array.isArray(extra) ? extra : [];
    list.forEach(function (name) {
      name = String(name).trim();
      if (name && name !== 'open' && name !== 'error' && names.indexOf(name) === -1) names.push(name);
    });
    return names;
  }

  function create(settings) {
    if (!jQuery.isPlainObject(settings)) {
      throw new TypeError('$.eventsource: pass an options object, or "close" / "streams"');
    }
    if (typeof settings.url !== 'string' || settings.url === '') {
      throw new SyntaxError('$.eventsource: Not enough arguments: Must provide a url');
    }
    var options = jQuery.extend({}, defaults, settings);
    ['open', 'message', 'error'].forEach(function (name) {
      if (typeof options[name] !== 'function') options[name] = noop;
    });
    var url = urlWithData(options.url, options.data);
    var label = options.label || url;
    options.label = label;
    if (streams[label]) closeOne(label); // a label names one stream: reopening replaces it

    var entry = { label: label, url: url, options: options, stream: null, lastEventId: '' };
    streams[label] = entry;
    whenEventSource(polyfillUrl).then(
      function (EventSource) {
        if (streams[label] === entry) openStream(EventSource, entry);
      },
      function (err) {
        if (window.console) console.error(err);
        if (streams[label] === entry) options.error.call(null, err);
      },
    );
    return streams;
  }

  // --- Commands ----------------------------------------------------------

  function closeOne(label) {
    var entry = streams[label];
    if (!entry) return;
    delete streams[label];
    if (entry.stream) entry.stream.close();
  }

  var commands = {
    /** Closes the stream with this label, or all of them for '*'; returns the streams left. */
    close: function (label) {
      if (label === '*') Object.keys(streams).forEach(closeOne);
      else closeOne(label);
      return streams;
    },
    /** Every stream by label for '*', else the one with this label (or {}). */
    streams: function (label) {
      if (label === '*') return streams;
      return streams[label] || {};
    },
  };

  function eventsource(options) {
    if (typeof options === 'string') {
      var command = commands[options];
      if (!command) throw new TypeError('$.eventsource: unknown command "' + options + '"; use "close" or "streams"');
      var label = arguments[1];
      return command(label === undefined || label === null || label === '' ? '*' : String(label));
    }
    return create(options);
  }

  eventsource.close = function (label) {
    return eventsource('close', label);
  };
  eventsource.streams = function (label) {
    return eventsource('streams', label);
  };

  jQuery.eventsource = eventsource;
})(window, document);
