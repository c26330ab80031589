'use strict';
// The product sheet's backend publisher snippet (the `redis` npm package,
// createClient({url: process.env.REDIS_URL}), publish('apps:created', ...))
// reaching `ws` subscribers of a two-worker realtimed.  The snippet is the
// sheet's, but for `import` -> `require` and top-level await -> an async
// function (this is a CommonJS node:test file).
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');
const { SECRET, startDaemon, nextMessages, waitFor } = require('./daemon');

const WORKERS = 2;
let d;
let redis;
let redisPort;
let redisDir;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    s.setTimeout(1000);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (b) => { buf += b; if (buf.includes('\r\n')) { s.destroy(); resolve(buf.startsWith('+PONG')); } });
    s.on('error', () => resolve(false));
    s.on('timeout', () => { s.destroy(); resolve(false); });
  });
}

function health(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        try { resolve({ status: res.statusCode, body: JSON.parse(body) }); } catch { resolve(null); }
      });
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => { req.destroy(); resolve(null); });
  });
}

async function until(fn, timeoutMs, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  redisPort = await freePort();
  redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-node-redis-'));
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
  await until(() => redisPing(redisPort), 10000, 'redis-server');
  d = await startDaemon({ workers: String(WORKERS), redis_url: `redis://127.0.0.1:${redisPort}` });
  // the bridge has PSUBSCRIBEd and every worker runs
  await until(async () => {
    const h = await health(d.port);
    return h && h.status === 200 && h.body.redis === 'up' && h.body.workers === WORKERS;
  }, 10000, '/health ok with redis up');
});

after(async () => {
  if (d) await d.stop();
  if (redis && redis.exitCode === null) {
    const done = new Promise((r) => redis.once('exit', r));
    process.kill(redis.pid, 'SIGTERM');
    const t = setTimeout(() => { try { process.kill(redis.pid, 'SIGKILL'); } catch {} }, 5000);
    await done;
    clearTimeout(t);
  }
  if (redisDir) fs.rmSync(redisDir, { recursive: true, force: true });
});

function mint(claims) {
  return jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: '1h' });
}

function closeWs(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.close();
    setTimeout(() => { ws.terminate(); resolve(); }, 2000).unref();
  });
}

// ---- the product sheet's publisher snippet ------------------------------
async function publisherSnippet() {
const { createClient } = require('redis');
const redisPublisher = createClient({
url: process.env.REDIS_URL
});
await redisPublisher.connect();
// Publish an event
await redisPublisher.publish(
'apps:created',
JSON.stringify({
id: 'app-uuid',
name: 'my-new-app',
status: 'pending',
createdAt: new Date().toISOString()
})
);
return redisPublisher;
}
// -------------------------------------------------------------------------

test('the sheet\'s redis publisher snippet reaches ws subscribers on every worker', { timeout: 30000 }, async () => {
  const n = 12; // enough to land on both workers
  const clients = [];
  try {
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws?token=${mint({ userId: `pub-${i}` })}`);
      const [hello] = await nextMessages(ws, 1);
      assert.strictEqual(hello.type, 'connected');
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'apps:created' }));
      const [sub] = await nextMessages(ws, 1);
      assert.deepStrictEqual([sub.type, sub.channel], ['subscribed', 'apps:created']);
      clients.push(ws);
    }
    // an anonymous client on another channel hears nothing of it
    const anon = new WebSocket(`ws://127.0.0.1:${d.port}/ws`);
    const [ahello] = await nextMessages(anon, 1);
    assert.strictEqual(ahello.user, null);
    anon.send(JSON.stringify({ type: 'subscribe', channel: 'announcements' }));
    await nextMessages(anon, 1);
    const anonGot = [];
    anon.on('message', (m) => anonGot.push(JSON.parse(m.toString())));
    clients.push(anon);

    const waits = clients.slice(0, n).map((ws) => nextMessages(ws, 1, 10000));
    const t0 = Date.now();
    process.env.REDIS_URL = `redis://127.0.0.1:${redisPort}`;
    const pub = await publisherSnippet();
    try {
      const got = await Promise.all(waits);
      for (const [ev] of got) {
        assert.strictEqual(ev.type, 'event');
        assert.strictEqual(ev.channel, 'apps:created');
        assert.strictEqual(ev.data.id, 'app-uuid');
        assert.strictEqual(ev.data.name, 'my-new-app');
        assert.strictEqual(ev.data.status, 'pending');
        assert.match(ev.data.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(Math.abs(Date.parse(ev.data.createdAt) - t0) < 10000);
        assert.match(ev.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }
      // one more, through the same client, for the order
      await pub.publish('announcements', JSON.stringify({ end: true }));
      await waitFor(() => anonGot.length >= 1, 5000, 'the announcement');
      assert.deepStrictEqual(anonGot.map((m) => [m.channel, m.data]), [['announcements', { end: true }]]);
    } finally {
      await pub.quit();
    }
  } finally {
    await Promise.all(clients.map(closeWs));
  }
});
