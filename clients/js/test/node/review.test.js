// Fixes from a review of the client against PROTOCOL.md, each against a
// real realtimed: a replay too large for the server's output limit, a
// refused subscription asked again after the connection authenticated,
// "auth" answers that are no verdict on the token, and resuming from an
// earlier client's positions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startDaemon, mint, nextEvent, waitFor, waitRedisUp, Resp, loggedClient } from './helpers.js';

let redis;
let small;      // max_output_buffer 8k: a replay of 200 events does not fit
let limited;    // max_connections_per_user 1
before(async () => {
  redis = await startRedis();
  small = await startDaemon({ max_output_buffer: '8k' }, { redis });
  limited = await startDaemon({ max_connections_per_user: '1' }, { redis });
  await waitRedisUp(small);
  await waitRedisUp(limited);
});
after(async () => {
  for (const d of [small, limited]) if (d) await d.stop();
  if (redis) await redis.stop();
});

function client(t, url, opts = {}) {
  return loggedClient(t, Object.assign({ url, reconnect: { baseMs: 100, maxMs: 2000 } }, opts),
    ['connected', 'disconnected', 'error', 'reconnecting', 'unrecoverable', 'subscribed']);
}

async function publish(channel, n, size = 200) {
  const r = await Resp.connect(redis.port);
  const pad = 'p'.repeat(size);
  await Promise.all(Array.from({ length: n }, (_, i) => r.command('PUBLISH', channel, JSON.stringify({ i, pad }))));
  r.close();
}

test('a replay too large for the output limit: after two 4000s the channel starts afresh, unrecoverable', { timeout: 40000 }, async (t) => {
  const { c, tw, log } = client(t, small.url, { token: mint({ userId: 'big' }) });
  const got = [];
  c.subscribe('apps:created', (data) => got.push(data.i));
  const up = nextEvent(c, 'subscribed');
  c.connect();
  await up;
  await publish('apps:created', 1);
  await waitFor(() => got.length === 1, 5000, 'the first event');
  // missed while away: 200 events of ~220 bytes, over 8k
  tw.sockets[tw.sockets.length - 1].ws.terminate();
  await publish('apps:created', 200);
  const lost = await nextEvent(c, 'unrecoverable', () => true, 30000);
  assert.equal(lost.channel, 'apps:created');
  assert.equal(lost.reason, 'replay too large');
  assert.equal(lost.offset, 1);
  // then a plain subscribe, and live events again
  await waitFor(() => c.state === 'open' && log.subscribed.length >= 2, 15000, 'subscribed afresh');
  const last = tw.sockets[tw.sockets.length - 1].sent.filter((m) => m.type === 'subscribe');
  assert.ok(last.length >= 1 && last.every((m) => m.since === undefined), JSON.stringify(last));
  await publish('apps:created', 1);
  await waitFor(() => got.length === 2, 5000, 'a live event after starting afresh');
  assert.ok(tw.sockets.length <= 6, `${tw.sockets.length} sockets: no reconnect storm`);
});

test('a subscription refused while anonymous is sent again once the connection authenticates', { timeout: 20000 }, async (t) => {
  const { c, tw, log } = client(t, small.url, { token: null });
  const got = [];
  c.on('error', () => {});
  c.subscribe('apps:created', (data) => got.push(data));
  const up = nextEvent(c, 'connected');
  c.connect();
  await up;
  await waitFor(() => log.error.some((e) => e.channel === 'apps:created'), 5000, 'the refusal');
  const auth = nextEvent(c, 'authenticated');
  c.setToken(mint({ userId: 'later' }));
  await auth;
  await waitFor(() => log.subscribed.some((s) => s.channel === 'apps:created'), 5000, 'subscribed after auth');
  await publish('apps:created', 1, 10);
  await waitFor(() => got.length === 1, 5000, 'the event');
  // and subscribe() on a refused channel asks again
  const again = tw.sockets[tw.sockets.length - 1].sent.filter((m) => m.type === 'subscribe').length;
  assert.ok(again >= 2, 'one subscribe before auth, one after');
});

test('tokenTransport auth: "Too many connections" is no verdict on the token, the client retries', { timeout: 30000 }, async (t) => {
  const first = client(t, limited.url, { token: mint({ userId: 'solo' }) });
  const up1 = nextEvent(first.c, 'connected');
  first.c.connect();
  await up1;
  const second = client(t, limited.url, { tokenTransport: 'auth', getToken: () => mint({ userId: 'solo' }) });
  second.c.on('error', () => {});
  second.c.connect();
  await waitFor(() => second.log.reconnecting.length >= 1, 10000, 'a retry');
  assert.ok(second.log.disconnected.every((x) => x.willReconnect !== false), JSON.stringify(second.log.disconnected));
  assert.notEqual(second.c.state, 'closed');
  const up2 = nextEvent(second.c, 'connected', () => true, 20000);
  first.c.close();
  assert.equal((await up2).user.userId, 'solo');
});

test('positions: a new client resumes channels where an earlier one was', { timeout: 20000 }, async (t) => {
  const a = client(t, small.url, { token: mint({ userId: 'p1' }) });
  a.c.subscribe('apps:updated', () => {});
  const up = nextEvent(a.c, 'subscribed');
  a.c.connect();
  await up;
  await publish('apps:updated', 3, 10);
  await waitFor(() => a.c.position('apps:updated')?.offset === 3, 5000, 'three events');
  const pos = a.c.position('apps:updated');
  a.c.close();
  await publish('apps:updated', 2, 10);       // missed by nobody: the next client recovers them
  const b = client(t, small.url, { token: mint({ userId: 'p1' }), positions: { 'apps:updated': pos } });
  const got = [];
  b.c.subscribe('apps:updated', (data, meta) => got.push(meta.offset));
  const rec = nextEvent(b.c, 'recovered');
  b.c.connect();
  await rec;
  await waitFor(() => got.length === 2, 5000, 'the two missed events');
  assert.deepEqual(got, [4, 5]);
  assert.deepEqual(b.tw.sockets[0].sent.find((m) => m.type === 'subscribe').since, pos);
});
