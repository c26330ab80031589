// useRealtime (src/react.js) in headless Chromium, React from its UMD
// builds, against a real realtimed and redis-server. One page for the whole
// file, re-rendering every 20 ms with fresh options and channel arrays; the
// tests run in order, each driving the page one step further.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findChromium, mint, redisServerMissing, sleep, startWorld, waitFor } from './harness.js';

const skip = !findChromium()
  ? 'chromium not found (apt-get install chromium, or set CHROMIUM=/path/to/chromium)'
  : redisServerMissing();
const T = { timeout: 30000 };

// The subscribe/unsubscribe frames the page's sockets sent, as
// "socket:type:channel", in order.
const subFrames = (s) => s.sockets.sent
  .filter((x) => x.msg && (x.msg.type === 'subscribe' || x.msg.type === 'unsubscribe'))
  .map((x) => `${x.socket}:${x.msg.type}:${x.msg.channel}`);

describe('browser: useRealtime', { skip: skip || false, timeout: 120000 }, () => {
  let world;
  let page;
  let connId;

  const state = () => world.ask(page, 'state');
  const until = (pred, what, ms = 20000) =>
    waitFor(async () => { const s = await state(); return pred(s) && s; }, ms, what);
  const connections = async () => (await world.daemon.admin('connections')).connections;
  const stats = async () => (await world.daemon.admin('stats')).stats;
  const untilDaemon = (pred, what, ms = 20000) =>
    waitFor(async () => { const c = await connections(); return pred(c) && c; }, ms, what);
  const rendersPast = async (n) => {
    const r0 = (await state()).commits;
    return until((s) => s.commits >= r0 + n, `${n} more committed renders`);
  };

  before(async () => {
    world = await startWorld();
    page = world.open('react.html', { url: world.daemon.url, token: mint({ userId: 'react-a' }), strict: '1' });
  }, T);
  after(async () => { if (world) await world.stop(); }, T);

  test('one WebSocket across 50+ re-renders (StrictMode) with fresh options and channel arrays', T, async () => {
    const s = await until((x) => x.connected && x.commits >= 60, 'connected and 60 committed renders');
    const conns = await untilDaemon((c) => c.length === 1 && c[0].subscriptions === 2,
      'one connection with 2 subscriptions');
    assert.equal(conns[0].user, 'react-a');
    connId = conns[0].id;
    assert.equal(s.sockets.created, 1, 'WebSocket constructions');
    assert.deepEqual(subFrames(s).sort(), ['0:subscribe:apps:created', '0:subscribe:apps:updated']);
    const s2 = await rendersPast(30);
    assert.equal(s2.sockets.created, 1, 'WebSocket constructions after 30 more renders');
    assert.deepEqual(subFrames(s2), subFrames(s), 'no subscribe/unsubscribe from re-renders');
    const st = await stats();
    assert.equal(st.connections, 1, 'daemon: open connections');
    assert.equal(st.handshake_errors, 0, 'daemon: handshake errors');
    assert.equal(st.auth_failures, 0, 'daemon: auth failures');
    assert.equal((await connections())[0].id, connId, 'same connection');
  });

  test('events of the subscribed channels arrive in events, with their positions', T, async () => {
    await world.publish('apps:created', { n: 'c1' });
    await world.publish('apps:updated', { n: 'u1' });
    const s = await until((x) => x.events.length >= 2, 'two events');
    const [c, u] = s.events;
    assert.equal(c.channel, 'apps:created');
    assert.deepEqual(c.data, { n: 'c1' });
    assert.equal(u.channel, 'apps:updated');
    assert.deepEqual(u.data, { n: 'u1' });
    for (const e of [c, u]) {
      assert.equal(e.offset, 1, JSON.stringify(e));
      assert.equal(typeof e.epoch, 'string');
      assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  test('events keeps only the last maxEvents (20)', T, async () => {
    for (let i = 0; i < 25; i++)
      await world.publish('apps:created', { seq: i });
    const s = await until((x) => x.events.length && x.events.at(-1).data.seq === 24, 'event seq 24');
    assert.equal(s.events.length, 20);
    assert.deepEqual(s.events.map((e) => e.data.seq), Array.from({ length: 20 }, (_, i) => i + 5));
    assert.deepEqual(s.events.map((e) => e.offset), Array.from({ length: 20 }, (_, i) => i + 7));
  });

  test('a changed channel list unsubscribes and subscribes on the same socket', T, async () => {
    await world.ask(page, 'phase', { set: { channels: ['apps:updated', 'apps:deleted'] } });
    await until((x) => subFrames(x).includes('0:subscribe:apps:deleted'), 'subscribe apps:deleted');
    const chans = await waitFor(async () => {
      const { channels } = await world.daemon.admin('channels apps:');
      const names = channels.map((c) => c.channel).sort();
      return names.join() === 'apps:deleted,apps:updated' && channels;
    }, 10000, 'the daemon to list apps:deleted and apps:updated only');
    assert.ok(chans.every((c) => c.subscribers === 1), JSON.stringify(chans));
    const conns = await connections();
    assert.equal(conns.length, 1);
    assert.equal(conns[0].id, connId, 'same connection');
    assert.equal(conns[0].subscriptions, 2);
    const s2 = await rendersPast(20);
    assert.equal(s2.sockets.created, 1);
    const frames = subFrames(s2);
    assert.equal(frames.length, 4, JSON.stringify(frames));
    assert.deepEqual(frames.slice(2).sort(), ['0:subscribe:apps:deleted', '0:unsubscribe:apps:created']);

    await world.publish('apps:created', { gone: true });
    await world.publish('apps:deleted', { d: 1 });
    await until((x) => x.events.some((e) => e.channel === 'apps:deleted'), 'an apps:deleted event');
    await sleep(300);
    const s3 = await state();
    assert.ok(!s3.events.some((e) => e.data && e.data.gone), 'no event of the dropped channel');
  });

  test('send() goes out on the component\'s socket', T, async () => {
    const before_ = (await stats()).messages_in;
    await world.ask(page, 'send', { message: { type: 'ping' } });
    const s = await until((x) => x.sockets.sent.some((m) => m.msg && m.msg.type === 'ping'), 'a ping frame');
    assert.equal(s.sockets.sent.find((m) => m.msg.type === 'ping').socket, 0);
    await waitFor(async () => (await stats()).messages_in > before_, 10000, 'the daemon to count the ping');
  });

  test('a new token value opens one new socket with the new identity', T, async () => {
    await world.ask(page, 'phase', { set: { token: mint({ userId: 'react-b' }) } });
    const conns = await untilDaemon((c) => c.length === 1 && c[0].user === 'react-b' &&
      c[0].subscriptions === 2, 'only a react-b connection, with 2 subscriptions');
    assert.notEqual(conns[0].id, connId);
    const s = await rendersPast(30);
    assert.equal(s.sockets.created, 2, 'WebSocket constructions');
    // the new client resumed both channels where the old one was: nothing lost
    const resumed = s.sockets.sent.filter((x) => x.socket === 1 && x.msg && x.msg.type === 'subscribe');
    assert.equal(resumed.length, 2, JSON.stringify(resumed));
    assert.ok(resumed.every((x) => x.msg.since && typeof x.msg.since.epoch === 'string' &&
      x.msg.since.offset >= 1), JSON.stringify(resumed));
    assert.equal(s.sockets.notClosed, 1, 'sockets not closed');
    assert.equal(s.connected, true);
    assert.equal((await stats()).connections, 1);
  });

  test('getToken as a fresh function each render: one new socket, then none', T, async () => {
    await world.ask(page, 'phase', { set: { token: null, getToken: mint({ userId: 'react-c' }) } });
    await untilDaemon((c) => c.length === 1 && c[0].user === 'react-c' && c[0].subscriptions === 2,
      'only a react-c connection, with 2 subscriptions');
    const s = await rendersPast(30);
    assert.equal(s.sockets.created, 3, 'WebSocket constructions');
    assert.equal(s.sockets.notClosed, 1);
    await world.publish('apps:updated', { via: 'getToken' });
    await until((x) => x.events.some((e) => e.data && e.data.via === 'getToken'), 'an event on the getToken socket');
  });

  test('unmount closes the socket', T, async () => {
    await world.ask(page, 'phase', { set: { mounted: false } });
    await waitFor(async () => (await stats()).connections === 0, 15000, 'no connection at the daemon');
    const s = await until((x) => x.sockets.notClosed === 0, 'every socket closed');
    assert.equal(s.sockets.created, 3);
  });

  test('the positions option: the first subscribe resumes with since', T, async () => {
    await page.stop();
    // any position will do: what matters is the frame (the server answers
    // recovered false for an epoch it never issued)
    page = world.open('react.html', {
      url: world.daemon.url, token: mint({ userId: 'react-p' }), strict: '1',
      positions: JSON.stringify({ 'apps:created': { epoch: 'ep0-1', offset: 7 } }),
    });
    const s = await until((x) => x.connected && subFrames(x).length >= 2, 'connected and subscribed');
    const sent = s.sockets.sent.filter((x) => x.msg && x.msg.type === 'subscribe');
    const created = sent.find((x) => x.msg.channel === 'apps:created');
    const updated = sent.find((x) => x.msg.channel === 'apps:updated');
    assert.deepEqual(created.msg.since, { epoch: 'ep0-1', offset: 7 });
    assert.equal(updated.msg.since, undefined);
  });
});
