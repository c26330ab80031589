// Closes that mean "later": 1013 "Server full" (max_connections 1) and
// 1008 "Rate limit exceeded" from a real realtimed, and the retry-after
// the close reason may carry (the daemon sends none today, so a small
// ws server stands in for it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { startRedis, startDaemon, mint, nextEvent, waitRedisUp, sleep, loggedClient } from './helpers.js';

let redis;
let d;
before(async () => {
  redis = await startRedis();
  d = await startDaemon({ max_connections: '1' }, { redis });
  await waitRedisUp(d);
});
after(async () => {
  if (d) await d.stop();
  if (redis) await redis.stop();
});

function client(t, url, opts = {}) {
  return loggedClient(t, Object.assign({ url, reconnect: { baseMs: 200, maxMs: 1000 } }, opts),
    ['connected', 'disconnected', 'error', 'reconnecting']);
}

test('1013 "Server full" is retried with backoff until there is room', { timeout: 30000 }, async (t) => {
  const a = client(t, d.url, { token: mint({ userId: 'first' }) });
  const aUp = nextEvent(a.c, 'connected');
  a.c.connect();
  await aUp;
  const b = client(t, d.url, { token: mint({ userId: 'second' }) });
  const full = nextEvent(b.c, 'reconnecting', (r) => r.code === 1013);
  b.c.connect();
  const r = await full;
  assert.equal(r.reason, 'Server full');
  assert.ok(b.log.error.some((e) => e.source === 'server' && e.message === 'Server is full, try again later'));
  const bUp = nextEvent(b.c, 'connected', () => true, 20000);
  a.c.close();
  assert.equal((await bUp).user.userId, 'second');
  assert.ok(b.tw.sockets.length >= 2);
  assert.ok(b.log.reconnecting.every((x, i) => x.attempt === i + 1), 'attempts count up while refused');
  assert.deepEqual(b.log.disconnected, [], 'never connected, never final: no disconnected event');
});

test('1008 "Rate limit exceeded" reconnects after a longer backoff', { timeout: 30000 }, async (t) => {
  const { c, tw, log } = client(t, d.url, { token: mint({ userId: 'flooder' }) });
  const up = nextEvent(c, 'connected');
  c.connect();
  await up;
  const n = tw.sockets.length;              // 1, or more if the last test's slot was still taken
  const dis = nextEvent(c, 'disconnected');
  const again = nextEvent(c, 'connected', () => true, 20000);
  for (let i = 0; i < 300; i++) c.send({ type: 'ping' });
  assert.deepEqual(await dis, { code: 1008, reason: 'Rate limit exceeded', willReconnect: true });
  await again;
  const delay = log.reconnecting.find((r) => r.reason === 'Rate limit exceeded').delayMs;
  assert.ok(delay >= 200, `at least baseMs: ${delay}`);
  assert.ok(tw.sockets.length > n);
});

// A stand-in server: closes the first connection with code/reason, greets the next.
async function closingServer(t, code, reason) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const seen = [];
  wss.on('connection', (ws) => {
    seen.push(Date.now());
    ws.send(JSON.stringify({ type: 'connected', connectionId: `c${seen.length}`, user: null, authorizedChannels: [] }));
    if (seen.length === 1) setTimeout(() => ws.close(code, reason), 20);
  });
  t.after(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(r); }));
  return { url: `ws://127.0.0.1:${wss.address().port}/ws`, seen };
}

for (const [code, reason] of [[1013, 'Server full; retry-after=1200'], [1001, 'Server shutting down; retry-after=1200']]) {
  test(`close ${code} "${reason}" waits at least the retry-after`, { timeout: 20000 }, async (t) => {
    const srv = await closingServer(t, code, reason);
    const { c, log } = client(t, srv.url, { reconnect: { baseMs: 50, maxMs: 5000 } });
    const dis = nextEvent(c, 'disconnected');
    c.connect();
    const closedAt = (await dis, Date.now());
    const back = nextEvent(c, 'connected', (s) => s.connectionId === 'c2', 10000);
    await back;
    const waited = srv.seen[1] - closedAt;
    assert.ok(waited >= 1150, `reconnected after ${waited} ms`);
    assert.ok(log.reconnecting[0].delayMs >= 1200 && log.reconnecting[0].delayMs <= 2400, String(log.reconnecting[0].delayMs));
  });
}

test('a close 1000 from the server stays closed', { timeout: 20000 }, async (t) => {
  const srv = await closingServer(t, 1000, '');
  const { c, tw } = client(t, srv.url, { reconnect: { baseMs: 50 } });
  const dis = nextEvent(c, 'disconnected');
  c.connect();
  assert.deepEqual(await dis, { code: 1000, reason: '', willReconnect: false });
  await sleep(500);
  assert.equal(tw.sockets.length, 1);
  assert.equal(srv.seen.length, 1);
});
