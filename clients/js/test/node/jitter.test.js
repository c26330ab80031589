// 200 clients on a 2-worker realtimed all dropped at once (SIGTERM, close
// 1001): their reconnect attempts must be spread by the full jitter, not
// arrive together.
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
    c.on('disconnected', () => { if (st.droppedAt === null) st.droppedAt = Date.now(); });
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
  const window = BASE_MS;
  const bins = new Array(10).fill(0);
  for (const x of delays) bins[Math.min(9, Math.floor((x / window) * 10))]++;
  const pct = (p) => Math.round(delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]);
  t.diagnostic(`jitter: ${CLIENTS} clients on ${workers} workers, all dropped within ${Math.max(...drops) - Math.min(...drops)} ms; ` +
    `first attempt after min ${Math.round(delays[0])} p10 ${pct(10)} p50 ${pct(50)} p90 ${pct(90)} max ${Math.round(delays[delays.length - 1])} ms ` +
    `(window ${window} ms); per 10% of the window: ${bins.join(' ')}`);
  assert.equal(workers, 2, 'connections on both workers');
  assert.ok(Math.max(...drops) - Math.min(...drops) < 2000, 'the drop was at once');
  assert.ok(delays[delays.length - 1] <= window + 1000, `no first attempt later than the window: ${delays[delays.length - 1]}`);
  for (const [i, n] of bins.entries())
    assert.ok(n <= CLIENTS * 0.25, `bin ${i} holds ${n} of ${CLIENTS} attempts (over 25%)`);
  assert.ok(pct(90) - pct(10) >= window * 0.5, `p10..p90 spans at least half the window: ${pct(10)}..${pct(90)}`);
});
