'use strict';
// permessage-deflate through Node's `ws` (perMessageDeflate): what the
// server answers for each parameter set, compressed echo both ways at
// sizes from 16 B to 256 KB (Autobahn 12.x/13.x-style), fragmented
// compressed messages, and a bomb closed 1009.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { startDaemon } = require('./daemon');

let d;
before(async () => {
  d = await startDaemon({ echo_path: '/echo', max_message_size: '300k', drain_period: '0' });
});
after(async () => { if (d) await d.stop(); });

function open(perMessageDeflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${d.port}/echo`,
      { perMessageDeflate, maxPayload: 4 << 20 });
    ws.once('upgrade', (res) => { ws.answer = res.headers['sec-websocket-extensions']; });
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

function payload(n) {
  const unit = JSON.stringify({ id: 42, name: 'event', status: 'ok', tags: ['a', 'b'] });
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
}

const ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const PARAMS = [
  { threshold: 0 },
  { threshold: 0, clientNoContextTakeover: true },
  { threshold: 0, serverNoContextTakeover: true },
  { threshold: 0, clientMaxWindowBits: 9 },
  { threshold: 0, serverMaxWindowBits: 15, clientMaxWindowBits: 10 },
];
const SIZES = [16, 64, 256, 1024, 4096, 16384, 65536, 262144];

for (const params of PARAMS) {
  test(`compressed echo with ${JSON.stringify(params)}`, { timeout: 20000 }, async () => {
    const ws = await open(params);
    assert.ok(ws.answer.startsWith(ANSWER), ws.answer);
    assert.ok(ws.extensions.startsWith('permessage-deflate'), ws.extensions);
    for (const size of SIZES) {
      const text = payload(size);
      const before = ws._socket.bytesRead;
      ws.send(text);
      const m = await nextMessage(ws);
      assert.strictEqual(m.isBinary, false);
      assert.strictEqual(m.data.toString('utf8'), text);
      // the reply came compressed: far fewer bytes on the wire than its length
      if (size >= 4096) assert.ok(ws._socket.bytesRead - before < size / 4,
        `${size} bytes took ${ws._socket.bytesRead - before} on the wire`);
      const bin = Buffer.from(text);
      ws.send(bin, { binary: true });
      const b = await nextMessage(ws);
      assert.strictEqual(b.isBinary, true);
      assert.ok(Buffer.compare(b.data, bin) === 0);
    }
    // fragmented: compressed across three frames, RSV1 on the first
    const parts = [payload(5000), payload(7000), payload(300)];
    ws.send(parts[0], { fin: false });
    ws.send(parts[1], { fin: false });
    ws.send(parts[2], { fin: true });
    assert.strictEqual((await nextMessage(ws)).data.toString(), parts.join(''));
    ws.close(1000);
    assert.strictEqual((await closed(ws)).code, 1000);
  });
}

test('without perMessageDeflate nothing is negotiated and echo is plain', async () => {
  const ws = await open(false);
  assert.strictEqual(ws.answer, undefined);
  ws.send(payload(10000));
  assert.strictEqual((await nextMessage(ws)).data.toString(), payload(10000));
  ws.close(1000);
  await closed(ws);
});

test('a decompression bomb is closed 1009', { timeout: 20000 }, async () => {
  const ws = await open({ threshold: 0 });
  // 20 MB of one byte: ws compresses it to a few KB
  ws.send(Buffer.alloc(20 << 20, 0x61).toString());
  const c = await closed(ws, 15000);
  assert.strictEqual(c.code, 1009);
});
