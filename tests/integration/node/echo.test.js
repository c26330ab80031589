'use strict';
// The RFC 6455 engine through Node's `ws`, a second independent client
// library: echo of every length class, fragmentation, ping/pong, and the
// close codes a peer must see for bad input.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const WebSocket = require('ws');
const { startDaemon } = require('./daemon');

let d;
before(async () => {
  d = await startDaemon({ echo_path: '/echo', max_message_size: '2m', drain_period: '0' });
});
after(async () => { if (d) await d.stop(); });

function open(path = '/echo') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${d.port}${path}`, { maxPayload: 4 << 20 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message')), timeoutMs);
    ws.once('message', (data, isBinary) => { clearTimeout(t); resolve({ data, isBinary }); });
  });
}

function closed(ws, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('not closed')), timeoutMs);
    ws.once('close', (code, reason) => { clearTimeout(t); resolve({ code, reason: reason.toString() }); });
  });
}

for (const size of [0, 125, 126, 65535, 65536, 1 << 20]) {
  test(`echoes a ${size}-byte text message`, { timeout: 15000 }, async () => {
    const ws = await open();
    const text = 'é'.repeat(size >> 1) + (size & 1 ? 'x' : '');
    ws.send(text);
    const m = await nextMessage(ws);
    assert.strictEqual(m.isBinary, false);
    assert.strictEqual(m.data.toString('utf8'), text);
    ws.close(1000);
    assert.strictEqual((await closed(ws)).code, 1000);
  });

  test(`echoes a ${size}-byte binary message`, { timeout: 15000 }, async () => {
    const ws = await open();
    const bytes = crypto.randomBytes(size);
    ws.send(bytes, { binary: true });
    const m = await nextMessage(ws);
    assert.strictEqual(m.isBinary, true);
    assert.ok(Buffer.compare(m.data, bytes) === 0);
    ws.close(1000);
    await closed(ws);
  });
}

test('reassembles a message sent in fragments', { timeout: 10000 }, async () => {
  const ws = await open();
  ws.send('frag', { fin: false });
  ws.send('ment', { fin: false });
  ws.send('ed', { fin: true });
  assert.strictEqual((await nextMessage(ws)).data.toString(), 'fragmented');
  ws.close();
  await closed(ws);
});

test('answers a ping with a pong carrying the same payload', { timeout: 10000 }, async () => {
  const ws = await open();
  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('are you there'));
  assert.strictEqual((await pong).toString(), 'are you there');
  ws.close();
  await closed(ws);
});

test('echoes the close code the client sends', { timeout: 10000 }, async () => {
  const ws = await open();
  ws.close(4321, 'bye');
  assert.strictEqual((await closed(ws)).code, 4321);
});

test('invalid UTF-8 in a text message closes 1007', { timeout: 10000 }, async () => {
  const ws = await open();
  const done = closed(ws);
  ws.on('error', () => {});
  ws.send(Buffer.from([0x68, 0xc3, 0x28]), { binary: false });
  assert.strictEqual((await done).code, 1007);
});

test('a message over max_message_size closes 1009', { timeout: 10000 }, async () => {
  const ws = await open();
  const done = closed(ws);
  ws.on('error', () => {});
  ws.send(Buffer.alloc((2 << 20) + 1), { binary: true });
  assert.strictEqual((await done).code, 1009);
});

test('a binary frame on /ws closes 1003', { timeout: 10000 }, async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws`);
  // the greeting can arrive in the same read as the handshake: listen first
  const hello = nextMessage(ws);
  assert.strictEqual(JSON.parse((await hello).data).type, 'connected');
  const done = closed(ws);
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  assert.strictEqual((await done).code, 1003);
});
