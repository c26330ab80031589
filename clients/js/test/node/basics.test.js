// The client against a real realtimed: subscriptions, handlers, token
// transports, gap repair and resume on one node, the Compat class.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeClient, RealtimeClientCompat } from '../../src/index.js';
import {
  startRedis, startDaemon, mint, nextEvent, waitFor, sleep, trackingWebSocket, waitClusterFunction,
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

const publish = (ch, obj) => redis.resp.command('PUBLISH', ch, JSON.stringify(obj));
const fcall = (ch, obj) => redis.resp.command('FCALL', 'realtimed_publish', '1', ch, JSON.stringify(obj));

function client(t, opts = {}) {
  const tw = trackingWebSocket();
  const c = new RealtimeClient(Object.assign({
    url: d.url, WebSocket: tw.WebSocket, reconnect: { baseMs: 100, maxMs: 1000 },
  }, opts));
  const errors = [];
  c.on('error', (e) => errors.push(e));
  t.after(() => c.close());
  return { c, tw, errors };
}

// Collect what a handler receives; until(n) waits for n of them.
function collector() {
  const got = [];
  let wake = null;
  const fn = (data, meta) => { got.push({ data, meta }); if (wake) wake(); };
  fn.got = got;
  fn.until = (n, timeoutMs = 10000) => waitFor(() => got.length >= n, timeoutMs, `${n} events (have ${got.length})`);
  return fn;
}

test('subscriptions made before connect are sent once connected', { timeout: 20000 }, async (t) => {
  const { c, tw } = client(t, { token: mint({ userId: 'early' }) });
  const h = collector();
  c.subscribe('apps:created', h);
  const subscribed = nextEvent(c, 'subscribed', (m) => m.channel === 'apps:created');
  const connected = nextEvent(c, 'connected');
  c.connect();
  const session = await connected;
  assert.equal(session.user.userId, 'early');
  const s = await subscribed;
  assert.equal(typeof s.epoch, 'string');
  assert.equal(s.offset, 0);
  await fcall('apps:created', { n: 1 });
  await h.until(1);
  assert.deepEqual(h.got[0].data, { n: 1 });
  assert.equal(h.got[0].meta.channel, 'apps:created');
  assert.equal(h.got[0].meta.offset, 1);
  assert.equal(typeof h.got[0].meta.epoch, 'string');
  assert.match(h.got[0].meta.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(tw.sent(), [{ type: 'subscribe', channel: 'apps:created' }]);
});

test('several handlers on one channel share one server subscription; unsubscribe stops delivery', { timeout: 20000 }, async (t) => {
  const { c, tw } = client(t, { token: mint({ userId: 'many' }) });
  const a = collector();
  const b = collector();
  const barrier = collector();
  const subA = c.subscribe('apps:updated', a);
  const subB = c.subscribe('apps:updated', b);
  c.subscribe('users:updated', barrier);
  const ready = Promise.all([
    nextEvent(c, 'subscribed', (m) => m.channel === 'apps:updated'),
    nextEvent(c, 'subscribed', (m) => m.channel === 'users:updated'),
  ]);
  c.connect();
  await ready;
  for (let i = 1; i <= 3; i++) await publish('apps:updated', { i });
  await a.until(3);
  await b.until(3);
  assert.deepEqual(a.got.map((e) => e.data.i), [1, 2, 3]);
  assert.deepEqual(b.got.map((e) => e.data.i), [1, 2, 3]);
  assert.equal(tw.sent().filter((m) => m.type === 'subscribe' && m.channel === 'apps:updated').length, 1);

  subA.unsubscribe();
  subA.unsubscribe();                       // idempotent
  await publish('apps:updated', { i: 4 });
  await b.until(4);
  assert.equal(a.got.length, 3);
  assert.equal(tw.sent().filter((m) => m.type === 'unsubscribe').length, 0, 'one handler left: no unsubscribe yet');

  const unsubscribed = nextEvent(c, 'unsubscribed', (m) => m.channel === 'apps:updated');
  subB.unsubscribe();
  await unsubscribed;
  assert.deepEqual(tw.sent().filter((m) => m.type === 'unsubscribe'), [{ type: 'unsubscribe', channel: 'apps:updated' }]);
  const raw = [];
  c.on('message', (m) => { if (m.type === 'event') raw.push(m); });
  await publish('apps:updated', { i: 5 });
  await publish('users:updated', { barrier: true });
  await barrier.until(1);
  assert.equal(b.got.length, 4);
  assert.deepEqual(raw.map((m) => m.channel), ['users:updated'], 'no event after unsubscribe');
});

test('the protocol transport (default) sends the token as a subprotocol, never in the URL', { timeout: 20000 }, async (t) => {
  const token = mint({ userId: 'proto' });
  const { c, tw } = client(t, { token });
  const connected = nextEvent(c, 'connected');
  c.connect();
  assert.equal((await connected).user.userId, 'proto');
  assert.equal(tw.sockets.length, 1);
  assert.ok(!tw.sockets[0].url.includes(token) && !tw.sockets[0].url.includes('token'), tw.sockets[0].url);
  assert.deepEqual(tw.sockets[0].protocols, [`token-${token}`]);
  assert.equal(tw.sockets[0].ws.protocol, `token-${token}`, 'the server echoes the subprotocol');
});

test('the auth transport connects anonymously and authenticates in-band before subscribing', { timeout: 20000 }, async (t) => {
  const token = mint({ userId: 'inband' });
  const { c, tw, errors } = client(t, { token, tokenTransport: 'auth' });
  const h = collector();
  c.subscribe('apps:deployed', h);
  const connected = nextEvent(c, 'connected');
  const subscribed = nextEvent(c, 'subscribed', (m) => m.channel === 'apps:deployed');
  c.connect();
  const session = await connected;
  assert.equal(session.user.userId, 'inband');
  assert.ok(session.authorizedChannels.includes('user:inband'));
  await subscribed;
  assert.equal(tw.sockets[0].url, d.url);
  assert.equal(tw.sockets[0].protocols, undefined);
  assert.deepEqual(tw.sent()[0], { type: 'auth', token });
  assert.deepEqual(tw.sent()[1], { type: 'subscribe', channel: 'apps:deployed' });
  assert.deepEqual(errors, []);
});

test('the query transport puts the token in the query string', { timeout: 20000 }, async (t) => {
  const token = mint({ userId: 'query' });
  const { c, tw } = client(t, { token, tokenTransport: 'query', url: `${d.url}?x=1` });
  const connected = nextEvent(c, 'connected');
  c.connect();
  assert.equal((await connected).user.userId, 'query');
  assert.equal(tw.sockets[0].url, `${d.url}?x=1&token=${token}`);
});

test('a server error reply is emitted as an error event', { timeout: 20000 }, async (t) => {
  const { c } = client(t, { token: mint({ userId: 'plainuser' }) });
  c.subscribe('system:health', () => assert.fail('no event expected'));
  const err = nextEvent(c, 'error', (e) => e.source === 'server');
  c.connect();
  const e = await err;
  assert.equal(e.message, 'Not authorized to subscribe to this channel');
  assert.equal(e.channel, 'system:health');
  assert.equal(e.request, 'subscribe');
  const pong = nextEvent(c, 'message', (m) => m.type === 'pong');
  assert.equal(c.send({ type: 'ping' }), true);
  await pong;
});

test('a gap on a live subscription is repaired with since on the same connection', { timeout: 20000 }, async (t) => {
  const { c, tw } = client(t, { token: mint({ userId: 'gappy' }) });
  const h = collector();
  c.subscribe('apps:status', h);
  const subscribed = nextEvent(c, 'subscribed', (m) => m.channel === 'apps:status');
  c.connect();
  const s = await subscribed;
  // the frame of offset 3 is lost on the way
  tw.dropIncoming((m) => m.type === 'event' && m.channel === 'apps:status' && m.offset === s.offset + 3);
  const recovered = nextEvent(c, 'recovered', (m) => m.channel === 'apps:status');
  for (let i = 1; i <= 6; i++) await publish('apps:status', { i });
  const r = await recovered;
  assert.deepEqual(r.since, { epoch: s.epoch, offset: s.offset + 2 });
  await h.until(6);
  for (let i = 7; i <= 8; i++) await publish('apps:status', { i });
  await h.until(8);
  assert.deepEqual(h.got.map((e) => e.data.i), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(h.got.map((e) => e.meta.offset), [1, 2, 3, 4, 5, 6, 7, 8].map((n) => s.offset + n));
  assert.equal(tw.sockets.length, 1, 'repaired without reconnecting');
  assert.deepEqual(tw.sent().filter((m) => m.type === 'subscribe').map((m) => m.since ?? null),
    [null, { epoch: s.epoch, offset: s.offset + 2 }]);
});

test('an event frame seen twice is delivered once', { timeout: 20000 }, async (t) => {
  const { c, tw } = client(t, { token: mint({ userId: 'twice' }) });
  const h = collector();
  c.subscribe('apps:twice', h);
  const subscribed = nextEvent(c, 'subscribed');
  c.connect();
  const s = await subscribed;
  tw.duplicateIncoming((m) => m.type === 'event' && m.offset === s.offset + 2);
  const raw = [];
  c.on('message', (m) => { if (m.type === 'event') raw.push(m.offset); });
  for (let i = 1; i <= 3; i++) await publish('apps:twice', { i });
  await h.until(3);
  await publish('apps:twice', { i: 4 });
  await h.until(4);
  assert.deepEqual(h.got.map((e) => e.data.i), [1, 2, 3, 4]);
  assert.deepEqual(raw, [1, 2, 3, 4].map((n) => s.offset + n));
  assert.equal(tw.sent().length, 1, 'a duplicate is no gap: no repair');
});

test('a dropped connection resumes with since and gets what it missed once (node positions)', { timeout: 20000 }, async (t) => {
  const { c, tw } = client(t, { token: mint({ userId: 'resume' }) });
  const h = collector();
  c.subscribe('users:updated', h);
  const subscribed = nextEvent(c, 'subscribed', (m) => m.channel === 'users:updated');
  c.connect();
  const s = await subscribed;
  for (let i = 1; i <= 3; i++) await publish('users:updated', { i });
  await h.until(3);
  const disconnected = nextEvent(c, 'disconnected');
  const recovered = nextEvent(c, 'recovered', (m) => m.channel === 'users:updated');
  tw.sockets[0].ws.terminate();             // no close frame: 1006
  const dis = await disconnected;
  assert.equal(dis.code, 1006);
  assert.equal(dis.willReconnect, true);
  for (let i = 4; i <= 5; i++) await publish('users:updated', { i });
  const r = await recovered;
  assert.equal(r.epoch, s.epoch);
  await h.until(5);
  await publish('users:updated', { i: 6 });
  await h.until(6);
  assert.deepEqual(h.got.map((e) => e.data.i), [1, 2, 3, 4, 5, 6]);
  assert.equal(tw.sockets.length, 2);
  const resub = tw.sockets[1].sent.find((m) => m.type === 'subscribe');
  assert.deepEqual(resub.since, { epoch: s.epoch, offset: s.offset + 3 });
});

test('close() closes with 1000 and does not reconnect', { timeout: 20000 }, async (t) => {
  const { c, tw } = client(t, { token: mint({ userId: 'closer' }) });
  const connected = nextEvent(c, 'connected');
  c.connect();
  await connected;
  const serverSide = new Promise((r) => tw.sockets[0].ws.once('close', (code) => r(code)));
  const disconnected = nextEvent(c, 'disconnected');
  c.close();
  assert.deepEqual(await disconnected, { code: 1000, reason: '', willReconnect: false });
  assert.equal(await serverSide, 1000);
  assert.equal(c.state, 'closed');
  await sleep(500);                         // five times baseMs: a reconnect would have happened
  assert.equal(tw.sockets.length, 1);
});

test('RealtimeClientCompat keeps the product sheet shape on the core', { timeout: 20000 }, async (t) => {
  const tw = trackingWebSocket();
  const quiet = { log() {}, error() {} };
  const client = new RealtimeClientCompat(mint({ userId: 'sheet-user' }), d.url, { WebSocket: tw.WebSocket, logger: quiet });
  t.after(() => client.disconnect());
  assert.equal(client.maxReconnectAttempts, 5);
  assert.equal(client.reconnectDelay, 1000);
  assert.equal(client.ws, null);
  const received = [];
  const orig = client.handleMessage.bind(client);
  client.handleMessage = (m) => { received.push(m); orig(m); };
  const events = [];
  client.connect();
  assert.ok(client.ws, 'connect() makes the socket at once');
  // the sheet's usage: subscribe from ws.onopen
  client.ws.onopen = () => client.subscribe('apps:created', (data, message) => events.push([data, message]));
  await waitFor(() => received.find((m) => m.type === 'subscribed'), 10000, 'subscribed');
  assert.equal(received[0].type, 'connected');
  assert.equal(received[0].user.userId, 'sheet-user');
  assert.ok(!tw.sockets[0].url.includes('token='));

  await fcall('apps:created', { id: 'app-1' });
  await waitFor(() => events.length === 1, 10000, 'event');
  assert.deepEqual(events[0][0], { id: 'app-1' });
  assert.equal(events[0][1].type, 'event');
  assert.equal(events[0][1].channel, 'apps:created');
  assert.deepEqual(events[0][1].data, { id: 'app-1' });
  assert.ok(received.some((m) => m.type === 'event' && m.data.id === 'app-1'));

  client.send({ type: 'ping' });
  await waitFor(() => received.some((m) => m.type === 'pong'), 10000, 'pong');
  client.unsubscribe('apps:created');
  await waitFor(() => received.some((m) => m.type === 'unsubscribed'), 10000, 'unsubscribed');
  client.unsubscribe('apps:deleted');       // never subscribed: the sheet still sends it
  await waitFor(() => received.some((m) => m.type === 'unsubscribed' && m.channel === 'apps:deleted'), 10000, 'unsubscribed 2');

  client.disconnect();
  assert.equal(client.client.state, 'closed');
  const errs = [];
  client._log = { log() {}, error: (...a) => errs.push(a.join(' ')) };
  client.send({ type: 'ping' });
  assert.deepEqual(errs, ['WebSocket is not open']);
  await sleep(300);
  assert.equal(tw.sockets.length, 1);
});

test('pauseWhenHidden closes while the page is hidden and resumes with since when visible', { timeout: 20000 }, async (t) => {
  const had = Object.prototype.hasOwnProperty.call(globalThis, 'document');
  const doc = new EventTarget();
  doc.hidden = false;
  globalThis.document = doc;
  t.after(() => { if (!had) delete globalThis.document; });
  const setHidden = (h) => { doc.hidden = h; doc.dispatchEvent(new Event('visibilitychange')); };

  const { c, tw } = client(t, { token: mint({ userId: 'tabber' }), pauseWhenHidden: true });
  const got = [];
  c.subscribe('apps:created', (data) => got.push(data.tab));
  const subscribed = nextEvent(c, 'subscribed');
  c.connect();
  await subscribed;
  await fcall('apps:created', { tab: 1 });
  await waitFor(() => got.length === 1, 10000, 'event 1');
  const serverSide = new Promise((r) => tw.sockets[0].ws.once('close', (code) => r(code)));
  const dis = nextEvent(c, 'disconnected');
  setHidden(true);
  assert.deepEqual(await dis, { code: 1000, reason: 'Page hidden', willReconnect: true });
  assert.equal(await serverSide, 1000);
  assert.equal(c.state, 'paused');
  await fcall('apps:created', { tab: 2 });
  await sleep(300);
  assert.equal(tw.sockets.length, 1, 'no reconnect while hidden');
  const recovered = nextEvent(c, 'recovered');
  setHidden(false);
  await recovered;
  await waitFor(() => got.length === 2, 10000, 'event 2, missed while hidden');
  assert.deepEqual(got, [1, 2]);
  assert.equal(tw.sockets.length, 2);
  c.close();
  setHidden(true);
  setHidden(false);
  assert.equal(tw.sockets.length, 2, 'close() stops watching the page');
});
