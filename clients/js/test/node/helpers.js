// Test helpers: a private redis-server and realtimed on free loopback ports
// (the approach of tests/integration/node/daemon.js), raw RESP and admin
// socket clients, HS256 tokens from node:crypto, and a WebSocket class that
// records what the client under test does.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { RealtimeClient } from '../../src/index.js';

export const SECRET = 'jsclient-test-secret-0123456789abcdef';
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..', '..', '..');

export function realtimedBin() {
  return process.env.REALTIMED_BIN || path.join(REPO, 'src', 'realtimed');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Poll a condition (for state that has no event); bounded.
export async function waitFor(pred, timeoutMs = 10000, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

// The next `event` of a RealtimeClient that satisfies pred; bounded.
export function nextEvent(client, event, pred = () => true, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`)); }, timeoutMs);
    const off = client.on(event, (arg) => {
      if (!pred(arg)) return;
      clearTimeout(timer);
      off();
      resolve(arg);
    });
  });
}

// ---- tokens ---------------------------------------------------------------

const b64u = (buf) => Buffer.from(buf).toString('base64url');

export function mint(claims, { expiresIn = 3600, secret = SECRET } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = Object.assign({ iat: now }, expiresIn == null ? {} : { exp: now + expiresIn }, claims);
  const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64u(JSON.stringify(body));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${sig}`;
}

// ---- RESP -----------------------------------------------------------------

// A pipelining RESP2 client: command() resolves with the reply (errors as Error objects).
export class Resp {
  static connect(port) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('error', reject);
      sock.once('connect', () => { sock.removeListener('error', reject); resolve(new Resp(sock)); });
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiting = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._drain(); });
    const fail = (err) => { for (const w of this.waiting.splice(0)) w.reject(err || new Error('redis connection closed')); };
    sock.on('error', fail);
    sock.on('close', () => fail());
  }

  command(...args) {
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
      const b = Buffer.from(String(a));
      parts.push(`$${b.length}\r\n`, b, '\r\n');
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))));
    });
  }

  _drain() {
    for (;;) {
      const r = Resp.parse(this.buf, 0);
      if (!r) return;
      this.buf = this.buf.subarray(r.end);
      const w = this.waiting.shift();
      if (w) w.resolve(r.value);
    }
  }

  static parse(buf, i) {
    const nl = buf.indexOf('\r\n', i);
    if (nl === -1) return null;
    const line = buf.toString('utf8', i + 1, nl);
    const next = nl + 2;
    switch (String.fromCharCode(buf[i])) {
    case '+': return { value: line, end: next };
    case '-': return { value: new Error(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let at = next;
      for (let k = 0; k < n; k++) {
        const r = Resp.parse(buf, at);
        if (!r) return null;
        out.push(r.value);
        at = r.end;
      }
      return { value: out, end: at };
    }
    default: throw new Error(`bad RESP byte ${buf[i]}`);
    }
  }

  close() { this.sock.destroy(); }
}

// ---- redis-server ---------------------------------------------------------

export async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-js-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const deadline = Date.now() + 10000;
  let r;
  for (;;) {
    if (exited) throw new Error(`redis-server exited: ${JSON.stringify(exited)}`);
    try {
      r = await Resp.connect(port);
      if (await r.command('PING') === 'PONG') break;
      r.close();
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('redis-server did not start'); }
    await sleep(50);
  }
  return {
    port,
    resp: r,
    async stop() {
      r.close();
      if (!exited) {
        const done = new Promise((res) => proc.once('exit', res));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- realtimed ------------------------------------------------------------

function probe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000 },
      (res) => { res.resume(); resolve(true); });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

// The namespaces of these tests: apps:* keeps a long history for the
// restart test, plain:* keeps none.
export const NAMESPACES = [
  'announcements public history=100',
  'apps:* authenticated history=5000 well_known=created,updated',
  'users:* authenticated history=100 well_known=updated',
  'user:{userId} self history=100',
  'plain:* authenticated',
  'system:* role=admin',
];

// conf: keys; opts.namespaces: namespace lines; opts.redis: a startRedis() result.
export async function startDaemon(conf = {}, opts = {}) {
  const port = opts.port || await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-js-'));
  const settings = Object.assign({
    listen: `127.0.0.1:${port}`,
    workers: '1',
    jwt_algorithm: 'HS256',
    jwt_secret: SECRET,
    drain_period: '0',
    canary_interval: '0',
    pidfile: path.join(dir, 'realtimed.pid'),
    admin_socket: path.join(dir, 'realtimed.sock'),
  }, opts.redis ? { redis_url: `redis://127.0.0.1:${opts.redis.port}` } : {}, conf);
  const lines = Object.entries(settings).map(([k, v]) => `${k} ${v}`);
  for (const ns of opts.namespaces || NAMESPACES) lines.push(`namespace ${ns}`);
  const confPath = path.join(dir, 'realtimed.conf');
  fs.writeFileSync(confPath, lines.join('\n') + '\n');
  const logPath = path.join(dir, 'realtimed.log');
  const d = {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    sock: settings.admin_socket,
    dir,
    proc: null,
    exited: null,
    log: () => { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } },
  };

  d.start = async () => {
    const logFd = fs.openSync(logPath, 'a');
    const env = Object.assign({}, process.env);
    delete env.JWT_SECRET;
    delete env.REDIS_URL;
    const proc = spawn(realtimedBin(), ['-f', '-d', '-c', confPath], { stdio: ['ignore', logFd, logFd], env });
    fs.closeSync(logFd);
    d.proc = proc;
    d.exited = null;
    proc.on('exit', (code, sig) => { if (d.proc === proc) d.exited = { code, sig }; });
    const deadline = Date.now() + 15000;
    for (;;) {
      if (d.exited) throw new Error(`realtimed exited during startup (${JSON.stringify(d.exited)}):\n${d.log().slice(-4000)}`);
      if (await probe(port)) break;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`realtimed not ready within 15 s:\n${d.log().slice(-4000)}`);
      }
      await sleep(30);
    }
  };

  // SIGTERM, wait for the master to exit (SIGKILL after 15 s).
  d.terminate = async () => {
    const proc = d.proc;
    if (!proc || d.exited) return;
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
    await done;
    clearTimeout(t);
  };

  d.restart = async () => { await d.terminate(); await d.start(); };

  d.stop = async () => {
    await d.terminate();
    fs.rmSync(dir, { recursive: true, force: true });
  };

  d.admin = (cmd) => admin(d.sock, cmd);
  d.stats = async () => (await d.admin('stats')).stats;

  await d.start();
  return d;
}

// One admin socket command, one JSON line back.
export function admin(sockPath, cmd, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(sockPath);
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`admin '${cmd}' timed out`)); }, timeoutMs);
    s.on('connect', () => s.write(`${cmd}\n`));
    s.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      s.end();
      try { resolve(JSON.parse(buf.slice(0, nl))); } catch (e) { reject(e); }
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Wait until the bridge loaded the function library (FCALL realtimed_publish).
export async function waitClusterFunction(d, timeoutMs = 15000) {
  await waitFor(async () => {
    try { return (await d.stats()).bridge.cluster_function === 1; } catch { return false; }
  }, timeoutMs, 'bridge.cluster_function = 1');
}

// Wait until the bridge is subscribed to Redis.
export async function waitRedisUp(d, timeoutMs = 15000) {
  await waitFor(async () => {
    try { return (await d.stats()).bridge.redis === 'up'; } catch { return false; }
  }, timeoutMs, 'bridge.redis = up');
}

// ---- a WebSocket that records ---------------------------------------------

// sockets: every socket made, with its url, protocols, time and the
// messages the client sent on it.  dropIncoming(pred): swallow the next
// incoming message that matches (a lost frame, for gap repair);
// duplicateIncoming(pred): hand the next one that matches over twice.
export function trackingWebSocket() {
  const sockets = [];
  const drops = [];
  const dups = [];
  class TrackingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.record = { url: String(url), protocols, t: Date.now(), sent: [], ws: this };
      sockets.push(this.record);
    }

    send(data, ...rest) {
      this.record.sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }

    addEventListener(type, fn, opts) {
      if (type !== 'message') return super.addEventListener(type, fn, opts);
      return super.addEventListener(type, (ev) => {
        let m;
        try { m = JSON.parse(ev.data); } catch { return fn(ev); }
        const i = drops.findIndex((p) => p(m));
        if (i !== -1) { drops.splice(i, 1); return; }
        const j = dups.findIndex((p) => p(m));
        if (j !== -1) { dups.splice(j, 1); fn(ev); }
        return fn(ev);
      }, opts);
    }
  }
  return {
    WebSocket: TrackingWebSocket,
    sockets,
    dropIncoming: (pred) => drops.push(pred),
    duplicateIncoming: (pred) => dups.push(pred),
    sent: () => sockets.flatMap((s) => s.sent),
  };
}

// A RealtimeClient on a recording WebSocket (opts over the defaults), each
// of the named events logged in log[name], closed when test t ends.
export function loggedClient(t, opts, events) {
  const tw = trackingWebSocket();
  const c = new RealtimeClient(Object.assign({ WebSocket: tw.WebSocket }, opts));
  const log = {};
  for (const ev of events) {
    log[ev] = [];
    c.on(ev, (m) => log[ev].push(m));
  }
  t.after(() => c.close());
  return { c, tw, log };
}
