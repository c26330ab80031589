'use strict';
// The product sheet's connection snippets, unchanged but for the URL
// (localhost:8888 -> the test daemon's port).
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');
const { SECRET, startDaemon, nextMessages } = require('./daemon');

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let d;
before(async () => { d = await startDaemon(); });
after(async () => { if (d) await d.stop(); });

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

test('query parameter snippet connects as the token user', { timeout: 10000 }, async () => {
  const token = mint({ userId: 'node-q', email: 'q@example.com', role: 'user' });
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws?token=${token}`);
  const [hello] = await nextMessages(ws, 1);
  assert.strictEqual(hello.type, 'connected');
  assert.match(hello.connectionId, UUID4);
  assert.strictEqual(hello.user.userId, 'node-q');
  assert.strictEqual(hello.user.email, 'q@example.com');
  assert.ok(hello.authorizedChannels.includes('user:node-q'));
  assert.match(hello.timestamp, TS);
  await closeWs(ws);
});

test('Authorization header snippet connects as the token user', { timeout: 10000 }, async () => {
  const token = mint({ userId: 'node-h' });
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws`, {
    headers: {
      'Authorization': `Bearer ${token}`
    }
  });
  const [hello] = await nextMessages(ws, 1);
  assert.strictEqual(hello.type, 'connected');
  assert.strictEqual(hello.user.userId, 'node-h');
  await closeWs(ws);
});

test('token- subprotocol snippet connects and the subprotocol is echoed', { timeout: 10000 }, async () => {
  const token = mint({ userId: 'node-p' });
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws`, [`token-${token}`]);
  const [hello] = await nextMessages(ws, 1);
  assert.strictEqual(hello.type, 'connected');
  assert.strictEqual(hello.user.userId, 'node-p');
  assert.strictEqual(ws.protocol, `token-${token}`);
  await closeWs(ws);
});

test('bad token in subprotocol: handshake succeeds, error then close 1008', { timeout: 10000 }, async () => {
  const token = jwt.sign({ userId: 'x' }, 'wrong-secret', { expiresIn: '1h' });
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws`, [`token-${token}`]);
  const msgs = [];
  ws.on('message', (m) => msgs.push(JSON.parse(m.toString())));
  const code = await new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('close', (c) => resolve(c));
  });
  assert.strictEqual(ws.protocol, `token-${token}`);
  assert.strictEqual(code, 1008);
  assert.strictEqual(msgs.length, 1);
  assert.strictEqual(msgs[0].type, 'error');
  assert.match(msgs[0].message, /^Invalid token: ./);
});

test('sheet quick-test snippet: onopen subscribe gets subscribed', { timeout: 10000 }, async () => {
  const token = mint({ userId: 'node-quick' });
  const received = [];
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws?token=${token}`);
  ws.onmessage = (event) => {
    received.push(JSON.parse(event.data));
  };
  ws.onopen = () => {
    // Subscribe to a channel
    ws.send(JSON.stringify({
      type: 'subscribe',
      channel: 'apps:created'
    }));
  };
  const t0 = Date.now();
  while (received.length < 2 && Date.now() - t0 < 5000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepStrictEqual(received.map((m) => m.type), ['connected', 'subscribed']);
  assert.strictEqual(received[1].channel, 'apps:created');
  await closeWs(ws);
});
