'use strict';
// Node's `ws` client over wss:// with the development CA (scripts/devcert.sh)
// trusted through the `ca` option: connect with a token, get `connected`,
// subscribe, receive an event PUBLISHed to a private redis-server.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');
const { SECRET, startDaemon, nextMessages } = require('./daemon');

const REPO = path.resolve(__dirname, '..', '..', '..');

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startRedis(dir) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      if (execFileSync('redis-cli', ['-p', String(port), 'PING'],
        { timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString().trim() === 'PONG') break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('redis-server did not start'); }
    await sleep(50);
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    publish: (channel, payload) => execFileSync('redis-cli',
      ['-p', String(port), 'PUBLISH', channel, payload], { timeout: 5000 }),
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', resolve);
      proc.kill('SIGTERM');
    }),
  };
}

let dir; let redis; let daemon; let tlsPort; let ca;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-node-tls-'));
  execFileSync('sh', [path.join(REPO, 'scripts', 'devcert.sh'), path.join(dir, 'certs'), 'ec'],
    { env: Object.assign({}, process.env, { FORCE: '1' }), timeout: 60000 });
  ca = fs.readFileSync(path.join(dir, 'certs', 'ca.pem'));
  redis = await startRedis(dir);
  tlsPort = await freePort();
  daemon = await startDaemon({
    listen_tls: `127.0.0.1:${tlsPort}`,
    tls_certificate: path.join(dir, 'certs', 'server.pem'),
    tls_certificate_key: path.join(dir, 'certs', 'server.key'),
    tls_handshake_timeout: '1s',
    redis_url: redis.url,
    pidfile: path.join(dir, 'realtimed.pid'),
  });
});

after(async () => {
  if (daemon) await daemon.stop();
  if (redis) await redis.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function open(url, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const t = setTimeout(() => { ws.terminate(); reject(new Error('open timed out')); }, 5000);
    ws.once('open', () => { clearTimeout(t); resolve(ws); });
    ws.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

test('ws over wss: token, connected, subscribe, a published event', async () => {
  const token = jwt.sign({ userId: 'node-tls' }, SECRET, { algorithm: 'HS256', expiresIn: 3600 });
  const ws = new WebSocket(`wss://localhost:${tlsPort}/ws?token=${token}`, { ca });
  // collect from the start: `connected` may come with the handshake's bytes
  const connected = nextMessages(ws, 1, 5000);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  try {
    assert.strictEqual(ws._socket.getPeerCertificate().subject.CN, 'localhost');
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(ws._socket.getProtocol()));
    const [c] = await connected;
    assert.strictEqual(c.type, 'connected');
    assert.strictEqual(c.user.userId, 'node-tls');
    assert.ok(c.authorizedChannels.includes('apps:created'));

    const sub = nextMessages(ws, 1);
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'apps:created' }));
    const [s] = await sub;
    assert.deepStrictEqual([s.type, s.channel], ['subscribed', 'apps:created']);

    // the bridge subscribes to Redis asynchronously: publish until it lands
    const payload = JSON.stringify({ id: 42, from: 'node' });
    let ev = null;
    const deadline = Date.now() + 10000;
    while (!ev && Date.now() < deadline) {
      const wait = nextMessages(ws, 1, 300).catch(() => null);
      redis.publish('apps:created', payload);
      const got = await wait;
      if (got && got[0].type === 'event') ev = got[0];
    }
    assert.ok(ev, 'no event within 10 s');
    assert.strictEqual(ev.channel, 'apps:created');
    assert.deepStrictEqual(ev.data, { id: 42, from: 'node' });
  } finally {
    ws.close();
  }
});

test('ws over wss: an untrusted certificate is refused by the client', async () => {
  await assert.rejects(open(`wss://localhost:${tlsPort}/ws`, {}),
    (e) => /self[- ]signed|unable to (get|verify)|certificate/i.test(String(e.message || e.code)));
});
