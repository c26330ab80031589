// Loaded by the test pages with a classic <script>, before anything else.
// window.rt: the page's query parameters, report() to the test, commands
// from the test, and window.WebSocket wrapped to count what the client does.
// Does nothing outside a browser (node --test may pick this file up).
(function () {
  'use strict';
  if (typeof window === 'undefined')
    return;
  var params = {};
  new URLSearchParams(location.search).forEach(function (v, k) { params[k] = v; });

  function report(obj) {
    return fetch('/report', { method: 'POST', body: JSON.stringify(obj) })
      .catch(function () { /* the test is gone */ });
  }
  window.addEventListener('error', function (e) {
    report({ kind: 'error', message: String(e.message) + ' at ' + e.filename + ':' + e.lineno });
  });
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    report({ kind: 'error', message: 'unhandled rejection: ' + String(r && r.stack || r) });
  });

  // Every socket the page opens, whoever opens it.
  var Native = window.WebSocket;
  var sockets = [];
  var sent = [];
  class CountingWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      sockets.push(this);
      this.addEventListener('close', function (e) {
        report({ kind: 'ws-close', code: e.code, reason: e.reason });
      });
    }
    send(data) {
      var i = sockets.indexOf(this);
      try { sent.push({ socket: i, msg: JSON.parse(data) }); } catch (e) { sent.push({ socket: i, raw: String(data) }); }
      return super.send(data);
    }
  }
  window.WebSocket = CountingWebSocket;

  function sockState() {
    return {
      created: sockets.length,
      open: sockets.filter(function (s) { return s.readyState === 1; }).length,
      notClosed: sockets.filter(function (s) { return s.readyState !== 3; }).length,
      urls: sockets.map(function (s) { return s.url; }),
      protocols: sockets.map(function (s) { return s.protocol; }),
      sent: sent.slice(),
    };
  }

  // Commands queued by the test, polled; handler(cmd) returns the reply.
  function onCommand(handler) {
    var after = 0;
    function poll() {
      fetch('/cmd?after=' + after).then(function (r) { return r.json(); }).then(function (list) {
        list.forEach(function (cmd) {
          after = cmd.id;
          Promise.resolve().then(function () { return handler(cmd); }).then(function (value) {
            report({ kind: 'reply', id: cmd.id, value: value === undefined ? null : value });
          }, function (err) {
            report({ kind: 'error', message: 'command ' + cmd.op + ': ' + String(err && err.stack || err) });
          });
        });
      }).catch(function () {}).then(function () { setTimeout(poll, 50); });
    }
    poll();
  }

  window.rt = { params: params, report: report, onCommand: onCommand,
    sockState: sockState, WebSocket: CountingWebSocket };
})();
