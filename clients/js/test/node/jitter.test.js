// 200 clients on a 2-worker realtimed all dropped at once (SIGTERM, close
// 1001 "Server shutting down; retry-after=<ms>", <ms> uniform over 0..1 s):
// each waits its retry-after plus its own full jitter, so the attempts are
// spread over about two seconds, not arriving together.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeClient } from '../../src/index.js';
import { startRedis, startDaemon, mint, waitFor, trackingWebSocket, waitRedisUp } from './helpers.js';

const CLIENTS = 200;
const BASE_MS = 1000;
let redis;
let d;
before(async () => {
  redis = await startRedis();
  d = await startDaemon({ workers: '2' }, { redis });
  await waitRedisUp(d);
});
after(async () => {
  if (d) await d.stop();
  if (redis) await redis.stop();
});

test(`${CLIENTS} clients dropped at once reconnect spread over the jitter window`, { timeout: 90000 }, async (t) => {
  const token = mint({ userId: 'herd' });
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const tw = trackingWebSocket();
    const c = new RealtimeClient({ url: d.url, token, WebSocket: tw.WebSocket, reconnect: { baseMs: BASE_MS, maxMs: 4000 } });
    const st = { c, tw, connects: 0, droppedAt: null };
    c.on('connected', () => st.connects++);
    c.on('disconnected', (info) => {
      if (st.droppedAt === null) { st.droppedAt = Date.now(); st.reason = info && info.reason; }
    });
    c.on('error', () => {});
    c.subscribe('apps:created', () => {});
    clients.push(st);
  }
  t.after(() => { for (const s of clients) s.c.close(); });
  for (const s of clients) s.c.connect();
  await waitFor(() => clients.every((s) => s.connects === 1), 30000, 'every client connected');
  const workers = (await d.admin('workers')).workers.filter((w) => w.connections > 0).length;

  const t0 = Date.now();
  await d.terminate();
  await waitFor(() => clients.every((s) => s.tw.sockets.length >= 2), 20000, 'a reconnect attempt of every client');
  await d.start();
  await waitFor(() => clients.every((s) => s.connects === 2), 60000, 'every client connected again');

  const drops = clients.map((s) => s.droppedAt - t0);
  const delays = clients.map((s) => s.tw.sockets[1].t - s.droppedAt).sort((a, b) => a - b);
  // retry-after (0..1 s from the daemon) + full jitter over max(retry-after, BASE_MS)
  const window = 2 * BASE_MS;
  const bins = new Array(10).fill(0);
  for (const x of delays) bins[Math.min(9, Math.floor((x / window) * 10))]++;
  const pct = (p) => Math.round(delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]);
  t.diagnostic(`jitter: ${CLIENTS} clients on ${workers} workers, all dropped within ${Math.max(...drops) - Math.min(...drops)} ms; ` +
    `first attempt after min ${Math.round(delays[0])} p10 ${pct(10)} p50 ${pct(50)} p90 ${pct(90)} max ${Math.round(delays[delays.length - 1])} ms ` +
    `(window ${window} ms); per 10% of the window: ${bins.join(' ')}`);
  assert.equal(workers, 2, 'connections on both workers');
  assert.ok(Math.max(...drops) - Math.min(...drops) < 2000, 'the drop was at once');
  assert.ok(delays[delays.length - 1] <= window + 1000, `no first attempt later than the window: ${delays[delays.length - 1]}`);
  const reasons = clients.map((s) => s.reason || '');
  assert.ok(reasons.every((r) => /^Server shutting down; retry-after=\d+$/.test(r)), `drain reasons: ${reasons.slice(0, 3)}`);
  assert.ok(new Set(reasons).size > CLIENTS / 2, 'retry-after values differ from client to client');
  // the sum of two uniform waits peaks at about 19% per tenth of the window
  for (const [i, n] of bins.entries())
    assert.ok(n <= CLIENTS * 0.3, `bin ${i} holds ${n} of ${CLIENTS} attempts (over 30%)`);
  assert.ok(pct(90) - pct(10) >= window * 0.4, `p10..p90 spans at least 40% of the window: ${pct(10)}..${pct(90)}`);
});
