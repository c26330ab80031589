// RealtimeClient (src/index.js) loaded as a plain ES module in headless
// Chromium, against a real realtimed and redis-server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findChromium, mint, redisServerMissing, sleep, startWorld, waitFor } from './harness.js';

const skip = !findChromium()
  ? 'chromium not found (apt-get install chromium, or set CHROMIUM=/path/to/chromium)'
  : redisServerMissing();

describe('browser: RealtimeClient without a bundler', { skip: skip || false, timeout: 60000 }, () => {
  let world;
  before(async () => { world = await startWorld(); }, { timeout: 30000 });
  after(async () => { if (world) await world.stop(); }, { timeout: 30000 });

  // Open the page, wait until the daemon holds its subscription, publish
  // (again every 2 s: delivery is at most once) until the page reports.
  async function receiveOne(userId, transport, channel) {
    const token = mint({ userId });
    const b = world.open('plain.html', { url: world.daemon.url, token, transport, channel });
    try {
      const conn = await waitFor(async () => {
        const dead = b.dead();
        if (dead)
          throw new Error(dead);
        const bad = world.pages.reports.find((r) => r.kind === 'error');
        if (bad)
          throw new Error(`page error: ${bad.message}`);
        const { connections } = await world.daemon.admin('connections');
        return connections.find((c) => c.user === userId && c.subscriptions === 1);
      }, 25000, `a connection of ${userId} with one subscription (reports: ${
        JSON.stringify(world.pages.reports).slice(-800)})`);
      const payload = { from: 'redis', transport };
      const got = world.pages.waitReport((r) => r.kind === 'event' && r.meta &&
        r.meta.channel === channel, 15000, `an event on ${channel}`, b.dead);
      let stop = false;
      got.catch(() => {}).finally(() => { stop = true; });
      (async () => {
        while (!stop) {
          await world.publish(channel, payload).catch(() => {});
          await sleep(2000);
        }
      })();
      const ev = await got;
      await world.pages.waitReport((r) => r.kind === 'ws-close', 10000, 'the socket to close', b.dead);
      return { ev, conn, payload };
    } finally {
      await b.stop();
    }
  }

  test('token as subprotocol: the browser accepts the echoed token-JWT and receives an event', async () => {
    const { ev, payload } = await receiveOne('browser-proto', 'protocol', 'apps:created');
    assert.deepEqual(ev.data, payload);
    assert.equal(ev.meta.channel, 'apps:created');
    assert.ok(Number.isInteger(ev.meta.offset) && ev.meta.offset >= 1, JSON.stringify(ev.meta));
    assert.equal(typeof ev.meta.epoch, 'string');
    assert.match(ev.meta.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(ev.sockets.created, 1);
    assert.match(ev.sockets.protocols[0], /^token-ey/, 'the socket negotiated the token-JWT subprotocol');
    assert.ok(!ev.sockets.urls[0].includes('token='), 'no token in the URL: ' + ev.sockets.urls[0]);
  });

  test('token in the query string: receives an event', async () => {
    const { ev, payload } = await receiveOne('browser-query', 'query', 'apps:updated');
    assert.deepEqual(ev.data, payload);
    assert.equal(ev.meta.channel, 'apps:updated');
    assert.equal(ev.sockets.created, 1);
    assert.ok(ev.sockets.urls[0].includes('token='), ev.sockets.urls[0]);
  });
});
