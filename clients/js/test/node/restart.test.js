// A daemon restart (SIGTERM, start again on the same port and Redis) while
// events flow: cluster positions recover every event exactly once, node
// positions report what can not be recovered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeClient } from '../../src/index.js';
import {
  startRedis, startDaemon, mint, nextEvent, waitFor, sleep, trackingWebSocket, waitClusterFunction, Resp,
} from './helpers.js';

let redis;
let d;
before(async () => {
  redis = await startRedis();
  d = await startDaemon({}, { redis });
  await waitClusterFunction(d);
});
after(async () => {
  if (d) await d.stop();
  if (redis) await redis.stop();
});

function client(t, opts = {}) {
  const tw = trackingWebSocket();
  const c = new RealtimeClient(Object.assign({
    url: d.url, WebSocket: tw.WebSocket, reconnect: { baseMs: 200, maxMs: 1000 },
  }, opts));
  const log = { connected: [], disconnected: [], recovered: [], unrecoverable: [] };
  for (const ev of Object.keys(log)) c.on(ev, (m) => log[ev].push(m));
  c.on('error', () => {});
  t.after(() => c.close());
  return { c, tw, log };
}

// FCALL realtimed_publish at `rate` events/s on its own RESP connection,
// n = 1, 2, 3 ... until stop(); resolves with the offsets FCALL returned.
async function fcallStream(channel, rate) {
  const r = await Resp.connect(redis.port);
  const offsets = [];
  let n = 0;
  let stopped = false;
  const t0 = Date.now();
  const done = (async () => {
    while (!stopped) {
      const due = Math.floor(((Date.now() - t0) * rate) / 1000);
      const batch = [];
      while (n < due) {
        n++;
        batch.push(r.command('FCALL', 'realtimed_publish', '1', channel, JSON.stringify({ n })));
      }
      for (const v of await Promise.all(batch)) {
        if (typeof v !== 'number') throw new Error(`FCALL answered ${v}`);
        offsets.push(v);
      }
      await sleep(10);
    }
    r.close();
    return offsets;
  })();
  return { stop: () => { stopped = true; return done; }, count: () => n };
}

test('restart during a 200 events/s FCALL stream: every event exactly once, in order', { timeout: 60000 }, async (t) => {
  const { c, tw, log } = client(t, { token: mint({ userId: 'streamer' }) });
  const got = [];
  c.subscribe('apps:created', (data, meta) => got.push({ n: data.n, offset: meta.offset, epoch: meta.epoch }));
  const subscribed = nextEvent(c, 'subscribed', (m) => m.channel === 'apps:created');
  c.connect();
  await subscribed;

  const stream = await fcallStream('apps:created', 200);
  await waitFor(() => got.length >= 200, 15000, '200 events before the restart');
  const firstId = c.connectionId;
  const disconnected = nextEvent(c, 'disconnected');
  const recovered = nextEvent(c, 'recovered', (m) => m.channel === 'apps:created', 30000);
  await d.terminate();
  const dis = await disconnected;
  assert.equal(dis.code, 1001);
  assert.match(dis.reason, /^Server shutting down/);
  assert.equal(dis.willReconnect, true);
  await sleep(300);                         // events pile up in Redis while no daemon runs
  await d.start();
  const rec = await recovered;
  const atStart = stream.count();
  await waitFor(() => got.length >= atStart + 200, 30000, '200 events after the restart');
  const offsets = await stream.stop();
  const total = offsets.length;
  await waitFor(() => got.length >= total, 15000, `all ${total} events (have ${got.length})`);
  await sleep(200);                         // a duplicate would arrive right behind

  assert.notEqual(c.connectionId, firstId);
  assert.equal(log.connected.length, 2);
  assert.equal(log.unrecoverable.length, 0, JSON.stringify(log.unrecoverable));
  assert.ok(rec.since.offset < rec.offset, `something was replayed: ${JSON.stringify(rec)}`);
  assert.equal(got.length, total, 'no duplicate');
  assert.deepEqual(got.map((e) => e.n), Array.from({ length: total }, (_, i) => i + 1), 'every event once, in order');
  const base = got[0].offset - 1;
  assert.deepEqual(got.map((e) => e.offset - base), got.map((e) => e.n));
  assert.deepEqual(offsets.map((o) => o - base), offsets.map((_, i) => i + 1), 'FCALL offsets');
  assert.equal(new Set(got.map((e) => e.epoch)).size, 1, 'one epoch across the restart');
  t.diagnostic(`${total} events, restart recovered from offset ${rec.since.offset} to ${rec.offset}, ${tw.sockets.length} sockets`);
});

test('restart with node positions (plain PUBLISH): the lost history is reported unrecoverable', { timeout: 30000 }, async (t) => {
  const { c, tw, log } = client(t, { token: mint({ userId: 'nodepos' }) });
  const got = [];
  c.subscribe('users:updated', (data, meta) => got.push({ data, meta }));
  const subscribed = nextEvent(c, 'subscribed', (m) => m.channel === 'users:updated');
  c.connect();
  const s = await subscribed;
  await redis.resp.command('PUBLISH', 'users:updated', '{"i":1}');
  await waitFor(() => got.length === 1, 10000, 'first event');
  const unrecoverable = nextEvent(c, 'unrecoverable', (m) => m.channel === 'users:updated', 20000);
  await d.restart();
  const u = await unrecoverable;
  assert.notEqual(u.epoch, s.epoch);
  assert.equal(typeof u.offset, 'number');
  assert.equal(log.recovered.length, 0);
  const subs = tw.sent().filter((m) => m.type === 'subscribe');
  assert.equal(subs.length, 2);
  const since = subs[1].since;
  assert.deepEqual(since, { epoch: s.epoch, offset: s.offset + 1 });
  // live events of the new epoch flow on
  await redis.resp.command('PUBLISH', 'users:updated', '{"i":2}');
  await waitFor(() => got.length === 2, 10000, 'event after the restart');
  assert.equal(got[1].meta.epoch, u.epoch);
  assert.equal(got[1].meta.offset, u.offset + 1);
});
