// realtimed-client: the official JavaScript client of realtimed.
//
// One WebSocket per client, shared by every subscription.  It reconnects
// with full jitter, resumes every channel with `since` so that no event is
// lost or seen twice when the server still holds it, repairs gaps on a live
// subscription, refreshes the token in-band on `token_expiring`, and follows
// the close-code table of PROTOCOL.md.  No runtime dependencies: the
// WebSocket class is the `WebSocket` option or globalThis.WebSocket.

const DEFAULT_RECONNECT = { baseMs: 500, maxMs: 30000, maxAttempts: Infinity, stableMs: 5000 };
const TRANSPORTS = ['protocol', 'query', 'auth'];
const OPEN = 1;

// 1008 reasons after which the same token can never work again
const TOKEN_REFUSED = new Set([
  'Invalid token', 'Token revoked', 'Disconnected by an administrator', 'Authentication required',
]);
// `error` texts answering an auth that are a verdict on its token
const TOKEN_VERDICT = /^Invalid token|revoked|Token user mismatch/;

// Longer backoff, in doublings, after a rate limit close
const RATE_LIMIT_EXTRA = 3;

function retryAfterMs(reason) {
  const m = /retry-after=(\d+)/i.exec(reason || '');
  return m ? Number(m[1]) : null;
}

function withToken(url, token) {
  const hash = url.indexOf('#');
  const base = hash === -1 ? url : url.slice(0, hash);
  const frag = hash === -1 ? '' : url.slice(hash);
  const sep = base.includes('?') ? '&' : '?';
  return `${base}${sep}token=${encodeURIComponent(token)}${frag}`;
}

function hasPosition(sub) {
  return typeof sub.epoch === 'string' && typeof sub.offset === 'number';
}

export class RealtimeClient {
  constructor(options) {
    if (!options || typeof options.url !== 'string' || options.url === '')
      throw new TypeError('RealtimeClient: options.url is required');
    const transport = options.tokenTransport ?? 'protocol';
    if (!TRANSPORTS.includes(transport))
      throw new TypeError(`RealtimeClient: tokenTransport must be one of ${TRANSPORTS.join(', ')}`);
    if (options.getToken != null && typeof options.getToken !== 'function')
      throw new TypeError('RealtimeClient: getToken must be a function');
    this.url = options.url;
    this._token = options.token ?? null;
    this._getToken = options.getToken ?? null;
    this._WebSocket = options.WebSocket ?? null;
    this._reconnectOpts = options.reconnect ?? {};
    this._transport = transport;
    this._pauseWhenHidden = Boolean(options.pauseWhenHidden);
    this._connectTimeoutMs = options.connectTimeoutMs ?? 20000;
    this._tokenTimeoutMs = options.tokenTimeoutMs ?? 30000;
    // channel -> {epoch, offset}: where to resume channels subscribed later
    this._seed = new Map(options.positions instanceof Map ? options.positions
      : Object.entries(options.positions ?? {}));
    this._slowResumes = 0;           // 4000s in a row while a since was being answered

    this._subs = new Map();          // channel -> subscription state
    this._listeners = new Map();     // event -> Set of functions
    this._ws = null;
    this._gen = 0;                   // bumps on every socket: late events of old ones are ignored
    this._state = 'idle';
    this._wanted = false;            // connect() called and not close()d
    this._paused = false;            // closed because the page is hidden
    this._attempt = 0;
    this._timer = null;
    this._connectTimer = null;
    this._session = null;
    this._usedToken = null;          // the token the current connection stands on
    this._tokenNext = this._token != null;  // the next connect uses _token, not getToken
    this._authQueue = [];            // in-band auths not answered yet: {token, prev, next}
    this._tokenTimers = new Set();   // getToken() time limits running
    this._stableTimer = null;        // a connection counts as good once it outlives it
    this._visHandler = null;
  }

  // ---- public API ----------------------------------------------------

  get state() { return this._state; }
  get connected() { return this._state === 'open'; }
  get socket() { return this._ws; }
  get attempt() { return this._attempt; }
  get session() { return this._session; }
  get connectionId() { return this._session ? this._session.connectionId : null; }
  get user() { return this._session ? this._session.user : null; }

  connect() {
    if (this._wanted) return;
    this._wanted = true;
    this._paused = false;
    this._attempt = 0;
    this._watchVisibility();
    if (this._pauseWhenHidden && typeof document !== 'undefined' && document.hidden) {
      this._paused = true;
      this._state = 'paused';
      return;
    }
    this._open(undefined);
  }

  close() {
    const wasOpen = this._state === 'open';
    this._wanted = false;
    this._paused = false;
    this._unwatchVisibility();
    this._clearAllTimers();
    this._detach(1000, '');
    for (const sub of this._subs.values()) sub.state = 'idle';
    this._state = 'closed';
    if (wasOpen)
      this._emit('disconnected', { code: 1000, reason: '', willReconnect: false });
  }

  subscribe(channel, handler) {
    if (typeof channel !== 'string' || channel === '')
      throw new TypeError('subscribe: channel must be a non-empty string');
    if (typeof handler !== 'function')
      throw new TypeError('subscribe: handler must be a function');
    let sub = this._subs.get(channel);
    if (!sub) {
      sub = { channel, handlers: new Set(), epoch: null, offset: null, state: 'idle', since: false, retry: null };
      const seed = this._seed.get(channel);
      if (seed && typeof seed.epoch === 'string' && typeof seed.offset === 'number') {
        sub.epoch = seed.epoch;
        sub.offset = seed.offset;
      }
      this._seed.delete(channel);
      this._subs.set(channel, sub);
      if (this._state === 'open') this._sendSubscribe(sub);
    } else if (this._state === 'open' && (sub.state === 'refused' || sub.state === 'idle') && !sub.retry) {
      // refused earlier, or ended by the server: the caller asks again
      this._sendSubscribe(sub);
    }
    const entry = { fn: handler };
    sub.handlers.add(entry);
    return {
      channel,
      unsubscribe: () => this._removeHandler(sub, entry),
    };
  }

  /** The last position seen on a channel, or null. */
  position(channel) {
    const sub = this._subs.get(channel);
    return sub && hasPosition(sub) ? { epoch: sub.epoch, offset: sub.offset } : null;
  }

  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('on: listener must be a function');
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    const set = this._listeners.get(event);
    if (set) set.delete(fn);
  }

  send(message) {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(typeof message === 'string' ? message : JSON.stringify(message));
    return true;
  }

  /**
   * A new token: sent in-band now when connected, and used for the next
   * connect (instead of calling getToken).  One the server refuses in-band
   * is forgotten: the connection, and the next connect, keep the old one.
   */
  setToken(token) {
    if (typeof token !== 'string' || token === '') throw new TypeError('setToken: token must be a non-empty string');
    this._sendAuth(token, true);
  }

  // Adopt token; when connected, send it in-band and remember what to go
  // back to if the server refuses it (its answers come in order).
  _sendAuth(token, next) {
    const entry = { token, prev: this._token, next: this._tokenNext };
    this._token = token;
    if (next) this._tokenNext = true;
    if (this._state === 'open' && this.send({ type: 'auth', token })) this._authQueue.push(entry);
  }

  // The server's answer to the oldest in-band auth of this connection.
  // refused: a verdict on the token (other errors, a rate limit, are not).
  _authAnswered(ok, refused) {
    const entry = this._authQueue.shift();
    if (!entry) return;
    if (ok) {
      this._usedToken = entry.token;
    } else if (refused && this._token === entry.token) {
      this._token = entry.prev;
      this._tokenNext = entry.next;
    }
  }

  // ---- connecting ----------------------------------------------------

  _reconnectOpt(name) {
    const v = this._reconnectOpts[name];
    return v == null ? DEFAULT_RECONNECT[name] : v;
  }

  _clearTimers() {
    if (this._timer) clearTimeout(this._timer);
    if (this._connectTimer) clearTimeout(this._connectTimer);
    if (this._stableTimer) clearTimeout(this._stableTimer);
    this._timer = this._connectTimer = this._stableTimer = null;
  }

  // Stopped for good: no timer of ours may keep running (nor keep node alive).
  _clearAllTimers() {
    this._clearTimers();
    for (const t of this._tokenTimers) clearTimeout(t);
    this._tokenTimers.clear();
    for (const sub of this._subs.values()) {
      if (sub.retry) clearTimeout(sub.retry);
      sub.retry = null;
    }
  }

  // Forget the current socket (its late events are ignored) and close it.
  _detach(code, reason) {
    const ws = this._ws;
    this._gen++;
    this._ws = null;
    if (!ws) return;
    try {
      if (ws.readyState === OPEN) ws.close(code, reason);
      else ws.close();
    } catch { /* closing a socket that never opened may throw */ }
  }

  // Start one connection attempt; token === undefined means "find one".
  _open(token) {
    this._clearTimers();
    const gen = ++this._gen;
    this._state = 'connecting';
    if (token !== undefined) return this._dial(gen, token);
    const given = this._tokenNext;
    this._tokenNext = false;
    if (!this._getToken || (given && this._token != null)) return this._dial(gen, this._token);
    this._callGetToken().then((t) => {
      if (gen !== this._gen || !this._wanted) return;
      this._token = t;
      this._dial(gen, t);
    }, (err) => {
      if (gen !== this._gen || !this._wanted) return;
      this._emitError({ source: 'token', message: `getToken failed: ${err && err.message || err}`, error: err });
      this._retry({ code: 1006, reason: 'getToken failed' }, this._backoff(0), false);
    });
  }

  // getToken() may answer synchronously: keep that synchronous, so that
  // connect() has a socket at once (the product sheet's usage relies on it).
  _callGetToken() {
    let r;
    try {
      r = this._getToken();
    } catch (err) {
      return { then: (_ok, fail) => fail(err) };
    }
    // a string, or null/undefined/'' for "no token" (connect anonymously)
    const check = (t) => {
      if (t == null || t === '') return { ok: null };
      return typeof t === 'string' ? { ok: t } : { err: new TypeError('getToken must give a string') };
    };
    if (!r || typeof r.then !== 'function') {
      const c = check(r);
      return { then: (ok, fail) => ('err' in c ? fail(c.err) : ok(c.ok)) };
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._tokenTimers.delete(timer);
        reject(new Error('getToken timed out'));
      }, this._tokenTimeoutMs);
      this._tokenTimers.add(timer);
      const done = () => { clearTimeout(timer); this._tokenTimers.delete(timer); };
      r.then((t) => {
        done();
        const c = check(t);
        if ('err' in c) reject(c.err);
        else resolve(c.ok);
      }, (e) => { done(); reject(e); });
    });
  }

  _dial(gen, token) {
    const WS = this._WebSocket || globalThis.WebSocket;
    if (typeof WS !== 'function') {
      this._emitError({ source: 'transport', message: 'No WebSocket implementation: pass the WebSocket option' });
      return this._stop({ code: 1006, reason: 'No WebSocket' });
    }
    this._usedToken = token || null;
    this._authQueue = [];
    let url = this.url;
    let protocols;
    if (token) {
      if (this._transport === 'query') url = withToken(url, token);
      else if (this._transport === 'protocol') protocols = [`token-${token}`];
    }
    let ws;
    try {
      ws = protocols ? new WS(url, protocols) : new WS(url);
    } catch (err) {
      this._emitError({ source: 'transport', message: `Cannot open WebSocket: ${err && err.message}`, error: err });
      return this._stop({ code: 1006, reason: 'Cannot open WebSocket' });
    }
    this._ws = ws;
    this._connectTimer = setTimeout(() => {
      if (gen !== this._gen) return;
      this._emitError({ source: 'transport', message: 'Connection timed out' });
      this._detach(1000, '');
      this._onClose({ code: 1006, reason: 'Connection timed out' });
    }, this._connectTimeoutMs);
    const listen = (type, fn) => {
      const wrapped = (ev) => { if (gen === this._gen) fn(ev); };
      if (typeof ws.addEventListener === 'function') ws.addEventListener(type, wrapped);
      else ws[`on${type}`] = wrapped;
    };
    listen('message', (ev) => this._onMessage(ev.data));
    listen('error', (ev) => {
      this._emitError({ source: 'transport', message: (ev && ev.message) || 'WebSocket error', error: ev && ev.error });
    });
    listen('close', (ev) => {
      this._ws = null;
      this._gen++;
      this._onClose({ code: ev.code, reason: ev.reason || '' });
    });
  }

  // After `connected` (or `authenticated`, for tokenTransport 'auth').
  _ready(session) {
    if (this._connectTimer) clearTimeout(this._connectTimer);
    this._connectTimer = null;
    this._session = session;
    this._state = 'open';
    // the attempts start again once this connection proves good: one the
    // server closes at once (a replay interrupted, a full server) backs off
    if (this._stableTimer) clearTimeout(this._stableTimer);
    this._stableTimer = setTimeout(() => {
      this._stableTimer = null;
      if (this._state === 'open') this._attempt = 0;
    }, this._reconnectOpt('stableMs'));
    for (const sub of this._subs.values()) {
      if (sub.retry) clearTimeout(sub.retry);
      sub.retry = null;
      this._sendSubscribe(sub);
    }
    this._emit('connected', session);
  }

  // ---- closing and reconnecting --------------------------------------

  _backoff(extra) {
    const base = this._reconnectOpt('baseMs');
    const cap = Math.min(this._reconnectOpt('maxMs'), base * 2 ** (this._attempt + extra));
    return Math.random() * cap;
  }

  _delayFor(code, reason) {
    const ra = retryAfterMs(reason);
    if (ra != null) {
      const spread = Math.min(this._reconnectOpt('maxMs'), Math.max(ra, this._reconnectOpt('baseMs') * 2 ** this._attempt));
      return ra + Math.random() * spread;
    }
    if (code === 1008 && reason === 'Rate limit exceeded')
      return this._reconnectOpt('baseMs') + this._backoff(RATE_LIMIT_EXTRA);
    // each connect resets the attempts: a 4000 loop backs off on its own count
    if (code === 4000) return this._backoff(this._slowResumes);
    return this._backoff(0);
  }

  _onClose(info) {
    if (this._connectTimer) clearTimeout(this._connectTimer);
    if (this._stableTimer) clearTimeout(this._stableTimer);
    this._connectTimer = this._stableTimer = null;
    const wasOpen = this._state === 'open';
    const { code, reason } = info;
    // A replay too large for the server's output limit is refused with
    // 4000 before anything is sent, and would be refused again on every
    // reconnect: the second time in a row, those channels start afresh.
    const resuming = [...this._subs.values()].filter((s) => s.state === 'pending' && s.since);
    if (code === 4000 && resuming.length > 0 && ++this._slowResumes >= 2) {
      this._slowResumes = 0;
      for (const sub of resuming) {
        const lost = { channel: sub.channel, epoch: sub.epoch, offset: sub.offset, reason: 'replay too large' };
        sub.epoch = sub.offset = null;
        this._emit('unrecoverable', lost);
      }
    }
    for (const sub of this._subs.values()) {
      if (sub.retry) clearTimeout(sub.retry);
      sub.retry = null;
      sub.state = 'idle';
    }
    if (!this._wanted) {
      this._state = 'closed';
      if (wasOpen) this._emit('disconnected', { code, reason, willReconnect: false });
      return;
    }
    if (this._paused) {
      this._state = 'paused';
      if (wasOpen) this._emit('disconnected', { code, reason, willReconnect: true });
      return;
    }
    if (code === 1000) return this._stop(info, wasOpen);
    if (code === 1008 && reason === 'Token expired') {
      if (!this._getToken) {
        this._emitError({ source: 'token', message: 'Token expired and no getToken to refresh it' });
        return this._stop(info, wasOpen);
      }
      this._tokenNext = false;      // not the token that just expired: _open() calls getToken
      return this._retry(info, this._backoff(0), wasOpen);
    }
    if (code === 1008 && TOKEN_REFUSED.has(reason)) return this._retryWithNewToken(info, wasOpen);
    return this._retry(info, this._delayFor(code, reason), wasOpen);
  }

  // This token can not work again: only a different one from getToken may.
  _retryWithNewToken(info, wasOpen) {
    // setToken() gave another one meanwhile: that one is worth a try
    if (this._tokenNext && this._token != null && this._token !== this._usedToken) {
      this._tokenNext = false;
      return this._retry(info, this._backoff(0), wasOpen, this._token);
    }
    if (!this._getToken) return this._stop(info, wasOpen);
    this._state = 'waiting';
    const gen = ++this._gen;
    this._callGetToken().then((t) => {
      if (gen !== this._gen || !this._wanted) return;
      if (t === this._usedToken) return this._stop(info, wasOpen);
      this._token = t;
      this._retry(info, this._backoff(0), wasOpen, t);
    }, (err) => {
      if (gen !== this._gen || !this._wanted) return;
      this._emitError({ source: 'token', message: `getToken failed: ${err && err.message || err}`, error: err });
      this._stop(info, wasOpen);
    });
  }

  _retry(info, delay, wasOpen, token) {
    if (this._attempt >= this._reconnectOpt('maxAttempts')) {
      this._emitError({ source: 'reconnect', message: 'Max reconnection attempts reached' });
      return this._stop(info, wasOpen);
    }
    this._attempt++;
    this._state = 'waiting';
    if (wasOpen) this._emit('disconnected', { code: info.code, reason: info.reason, willReconnect: true });
    this._emit('reconnecting', { attempt: this._attempt, delayMs: delay, code: info.code, reason: info.reason });
    if (!this._wanted || this._state !== 'waiting') return;   // a listener closed or reconnected us
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this._wanted && !this._paused) this._open(token);
    }, delay);
  }

  _stop(info, wasOpen) {
    this._wanted = false;
    this._unwatchVisibility();
    this._clearAllTimers();
    this._state = 'closed';
    this._emit('disconnected', { code: info.code, reason: info.reason, willReconnect: false });
  }

  // ---- page visibility -----------------------------------------------

  _watchVisibility() {
    if (!this._pauseWhenHidden || this._visHandler || typeof document === 'undefined'
        || typeof document.addEventListener !== 'function') return;
    this._visHandler = () => this._onVisibility();
    document.addEventListener('visibilitychange', this._visHandler);
  }

  _unwatchVisibility() {
    if (!this._visHandler) return;
    document.removeEventListener('visibilitychange', this._visHandler);
    this._visHandler = null;
  }

  _onVisibility() {
    if (!this._wanted) return;
    if (document.hidden && !this._paused) {
      this._paused = true;
      const wasOpen = this._state === 'open';
      this._clearTimers();
      this._detach(1000, '');
      for (const sub of this._subs.values()) sub.state = 'idle';
      this._state = 'paused';
      if (wasOpen) this._emit('disconnected', { code: 1000, reason: 'Page hidden', willReconnect: true });
    } else if (!document.hidden && this._paused) {
      this._paused = false;
      this._attempt = 0;
      this._open(undefined);
    }
  }

  // ---- messages ------------------------------------------------------

  _onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : String(raw));
    } catch (err) {
      return this._emitError({ source: 'protocol', message: 'Invalid JSON from the server', error: err });
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
    case 'connected': return this._onConnected(msg);
    case 'authenticated': return this._onAuthenticated(msg);
    case 'subscribed': return this._onSubscribed(msg);
    case 'unsubscribed': return this._onUnsubscribed(msg);
    case 'event': return this._onEvent(msg);
    case 'error': return this._onError(msg);
    case 'token_expiring': return this._onTokenExpiring(msg);
    default:
      this._emit('message', msg);
    }
  }

  _onConnected(msg) {
    this._emit('message', msg);
    if (this._transport === 'auth' && this._usedToken) {
      this._state = 'authenticating';
      this._session = msg;
      this.send({ type: 'auth', token: this._usedToken });
      return;
    }
    this._ready(msg);
  }

  _onAuthenticated(msg) {
    this._emit('message', msg);
    const s = this._session || {};
    const session = Object.assign({}, s, {
      user: msg.user, authorizedChannels: msg.authorizedChannels, expiresAt: msg.expiresAt,
    });
    if (this._state === 'authenticating') return this._ready(session);
    if (this._state === 'open') this._authAnswered(true);
    const wasAnonymous = !s.user;
    this._session = session;
    // channels refused (or ended) before may be allowed now: an anonymous
    // connection that authenticated may use any; otherwise those listed
    const listed = new Set(Array.isArray(msg.authorizedChannels) ? msg.authorizedChannels : []);
    if (this._state === 'open') {
      for (const sub of this._subs.values()) {
        if ((sub.state === 'refused' || sub.state === 'idle') && !sub.retry
            && (wasAnonymous || listed.has(sub.channel)))
          this._sendSubscribe(sub);
      }
    }
    this._emit('authenticated', msg);
  }

  _onError(msg) {
    this._emit('message', msg);
    this._emitError({ source: 'server', message: msg.message, request: msg.request, channel: msg.channel, data: msg });
    if (msg.request === 'auth' && this._state === 'authenticating') {
      // tokenTransport 'auth': the first token was refused, as at a handshake;
      // anything else ("Too many connections", "Server busy, try again
      // later", a rate limit) is no verdict on the token: back off and retry
      this._detach(1000, '');
      this._state = 'connecting';
      const m = msg.message || '';
      if (TOKEN_VERDICT.test(m))
        return this._onClose({ code: 1008, reason: /revoked/.test(m) ? 'Token revoked' : 'Invalid token' });
      return this._onClose({ code: 1013, reason: m });
    }
    if (msg.request === 'auth' && this._state === 'open')
      this._authAnswered(false, TOKEN_VERDICT.test(msg.message || ''));
    if (msg.request === 'subscribe' && typeof msg.channel === 'string') {
      const sub = this._subs.get(msg.channel);
      if (!sub || sub.state !== 'pending') return;
      sub.state = 'refused';
      if (/try again later/i.test(msg.message || '')) {
        const gen = this._gen;
        sub.retry = setTimeout(() => {
          sub.retry = null;
          if (gen === this._gen && this._state === 'open' && this._subs.get(sub.channel) === sub)
            this._sendSubscribe(sub);
        }, this._reconnectOpt('baseMs') + Math.random() * this._reconnectOpt('baseMs'));
      }
    }
  }

  _onTokenExpiring(msg) {
    this._emit('message', msg);
    this._emit('token_expiring', msg);
    if (!this._getToken) return;
    const gen = this._gen;
    this._callGetToken().then((t) => {
      if (gen !== this._gen || this._state !== 'open' || !t) return;
      this._sendAuth(t, false);
    }, (err) => {
      this._emitError({ source: 'token', message: `getToken failed: ${err && err.message || err}`, error: err });
    });
  }

  // ---- subscriptions and positions -----------------------------------

  _sendSubscribe(sub) {
    const m = { type: 'subscribe', channel: sub.channel };
    sub.since = hasPosition(sub);
    if (sub.since) m.since = { epoch: sub.epoch, offset: sub.offset };
    sub.state = 'pending';
    this.send(m);
  }

  _removeHandler(sub, entry) {
    if (!sub.handlers.delete(entry) || sub.handlers.size > 0) return;
    if (this._subs.get(sub.channel) !== sub) return;
    this._subs.delete(sub.channel);
    if (sub.retry) clearTimeout(sub.retry);
    if (this._state === 'open' && sub.state !== 'idle')
      this.send({ type: 'unsubscribe', channel: sub.channel });
  }

  _onSubscribed(msg) {
    this._emit('message', msg);
    const sub = this._subs.get(msg.channel);
    if (!sub || sub.state !== 'pending') return;
    sub.state = 'active';
    const pos = typeof msg.epoch === 'string' && typeof msg.offset === 'number';
    const info = { channel: sub.channel, epoch: pos ? msg.epoch : null, offset: pos ? msg.offset : null };
    if (msg.recovered === true) {
      this._slowResumes = 0;
      // the replay of what we missed follows, then live events
      this._emit('subscribed', Object.assign({ recovered: true }, info));
      this._emit('recovered', Object.assign({ since: { epoch: sub.epoch, offset: sub.offset } }, info));
      return;
    }
    if (pos) {
      sub.epoch = msg.epoch;
      sub.offset = msg.offset;
    } else {
      sub.epoch = sub.offset = null;
    }
    this._emit('subscribed', Object.assign({ recovered: msg.recovered === false ? false : null }, info));
    if (msg.recovered === false && sub.since) this._emit('unrecoverable', info);
  }

  _onUnsubscribed(msg) {
    this._emit('message', msg);
    const sub = this._subs.get(msg.channel);
    if (sub && msg.reason) {
      // the server ended it (the token no longer allows it); keep the handlers
      sub.state = 'idle';
    }
    this._emit('unsubscribed', { channel: msg.channel, reason: msg.reason ?? null });
  }

  _onEvent(msg) {
    const sub = this._subs.get(msg.channel);
    if (!sub) return this._emit('message', msg);
    if (sub.state === 'idle' || sub.state === 'refused') return;
    // before the answer to a plain subscribe: leftovers of an older subscription
    if (sub.state === 'pending' && !sub.since) return;
    const pos = typeof msg.epoch === 'string' && typeof msg.offset === 'number';
    if (pos && !this._accept(sub, msg)) return;
    this._emit('message', msg);
    const meta = {
      channel: msg.channel, offset: pos ? msg.offset : null, epoch: pos ? msg.epoch : null,
      timestamp: msg.timestamp,
    };
    for (const entry of [...sub.handlers]) {
      try {
        entry.fn(msg.data, meta);
      } catch (err) {
        this._emitError({ source: 'handler', message: `subscription handler threw: ${err && err.message}`, channel: msg.channel, error: err });
      }
    }
  }

  // Dedupe within an epoch and repair gaps; true when the event is delivered.
  _accept(sub, msg) {
    if (!hasPosition(sub)) {
      sub.epoch = msg.epoch;
      sub.offset = msg.offset;
      return true;
    }
    if (msg.epoch !== sub.epoch) {
      if (sub.state === 'pending') return false;    // the answer to our since settles it
      // A new history began under us.  One case misses nothing: a
      // channel's first FCALL (a cluster epoch, no '-', at offset 1) after
      // a subscribe that got a node position (realtimed's node epochs have
      // a '-') with no event yet.  Any other new epoch may hide lost
      // events (a node's new epoch follows its link to Redis dropping):
      // what the old history still had for us is gone.
      const fresh = sub.offset === 0 && msg.offset === 1 &&
        sub.epoch.includes('-') && !msg.epoch.includes('-');
      sub.epoch = msg.epoch;
      sub.offset = msg.offset;
      if (!fresh) this._emit('unrecoverable', { channel: sub.channel, epoch: msg.epoch, offset: msg.offset - 1 });
      return true;
    }
    if (msg.offset <= sub.offset) return false;
    if (msg.offset === sub.offset + 1) {
      sub.offset = msg.offset;
      return true;
    }
    // a hole: ask for what is missing on this connection, drop until it comes
    if (sub.state === 'active') this._sendSubscribe(sub);
    return false;
  }

  // ---- events --------------------------------------------------------

  _emit(event, arg) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(arg);
      } catch (err) {
        if (event !== 'error') this._emitError({ source: 'handler', message: `'${event}' listener threw: ${err && err.message}`, error: err });
        else console.error(err);
      }
    }
  }

  _emitError(err) {
    const set = this._listeners.get('error');
    if (!set || set.size === 0) {
      if (err.source !== 'transport' && err.source !== 'server' && err.source !== 'reconnect')
        console.error('realtimed-client:', err.message);
      return;
    }
    this._emit('error', err);
  }
}

// ---- the product sheet's class, on the core ---------------------------

/**
 * The product sheet's RealtimeClient shape: constructor(token, url),
 * connect(), subscribe(channel), unsubscribe(channel), send(message),
 * disconnect(), handleMessage(message) called for every message, `ws` the
 * current socket.  It resumes, dedupes and refreshes like RealtimeClient.
 */
export class RealtimeClientCompat {
  constructor(token, url = 'ws://localhost:8888/ws', options = {}) {
    this.token = token;
    this.url = url;
    this.maxReconnectAttempts = 5;
    this.reconnectDelay = 1000;
    this._log = options.logger ?? console;
    this._subs = new Map();    // channel -> [subscription]
    const self = this;
    this._core = new RealtimeClient({
      url,
      getToken: () => self.token,
      WebSocket: options.WebSocket,
      tokenTransport: options.tokenTransport ?? 'protocol',
      pauseWhenHidden: options.pauseWhenHidden,
      reconnect: {
        get baseMs() { return self.reconnectDelay; },
        get maxMs() { return options.maxReconnectDelay ?? 30000; },
        get maxAttempts() { return self.maxReconnectAttempts; },
      },
    });
    this._core.on('message', (m) => this.handleMessage(m));
    this._core.on('connected', () => this._log.log('WebSocket connected'));
    this._core.on('disconnected', () => this._log.log('WebSocket closed'));
    this._core.on('reconnecting', (r) => this._log.log(`Reconnecting in ${Math.round(r.delayMs)}ms (attempt ${r.attempt})`));
    this._core.on('error', (e) => {
      if (e.source === 'reconnect') this._log.error(e.message);
      else if (e.source !== 'server') this._log.error('WebSocket error:', e.error || e.message);
    });
  }

  get ws() { return this._core.socket; }
  get reconnectAttempts() { return this._core.attempt; }
  get client() { return this._core; }

  connect() {
    this._core.url = this.url;
    this._core.connect();
  }

  handleMessage(message) {
    const log = this._log;
    log.log('Received:', message);
    switch (message.type) {
    case 'connected':
      log.log('Connection ID:', message.connectionId);
      log.log('Authorized channels:', message.authorizedChannels);
      break;
    case 'subscribed':
      log.log(`Subscribed to ${message.channel}`);
      break;
    case 'event':
      log.log(`Event on ${message.channel}:`, message.data);
      break;
    case 'error':
      log.error('Server error:', message.message);
      break;
    case 'pong':
      log.log('Pong received');
      break;
    }
  }

  subscribe(channel, handler) {
    const fn = typeof handler === 'function'
      ? (data, meta) => handler(data, Object.assign({ type: 'event', data }, meta))
      : () => {};
    const s = this._core.subscribe(channel, fn);
    if (!this._subs.has(channel)) this._subs.set(channel, []);
    this._subs.get(channel).push(s);
    return s;
  }

  unsubscribe(channel) {
    const list = this._subs.get(channel);
    this._subs.delete(channel);
    if (list) for (const s of list) s.unsubscribe();
    else this._core.send({ type: 'unsubscribe', channel });
  }

  send(data) {
    if (!this._core.send(data)) this._log.error('WebSocket is not open');
  }

  disconnect() {
    this._core.close();
  }
}

export default RealtimeClient;
