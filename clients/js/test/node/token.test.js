// Token lifecycle against a real realtimed: in-band refresh on
// token_expiring, reconnect after "Token expired", and the closes after
// which the same token must not come back (invalid, revoked).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeClient } from '../../src/index.js';
import {
  startRedis, startDaemon, mint, nextEvent, waitFor, sleep, trackingWebSocket, waitRedisUp,
} from './helpers.js';

const NOTICE_S = 2;
let redis;
let d;
before(async () => {
  redis = await startRedis();
  d = await startDaemon({ jwt_leeway: '0', token_refresh_notice: `${NOTICE_S}s` }, { redis });
  await waitRedisUp(d);
});
after(async () => {
  if (d) await d.stop();
  if (redis) await redis.stop();
});

const publish = (ch, obj) => redis.resp.command('PUBLISH', ch, JSON.stringify(obj));

function client(t, opts = {}) {
  const tw = trackingWebSocket();
  const c = new RealtimeClient(Object.assign({
    url: d.url, WebSocket: tw.WebSocket, reconnect: { baseMs: 100, maxMs: 500 },
  }, opts));
  const log = { connected: [], disconnected: [], error: [], authenticated: [], token_expiring: [], reconnecting: [] };
  for (const ev of Object.keys(log)) c.on(ev, (m) => log[ev].push(m));
  t.after(() => c.close());
  return { c, tw, log };
}

// A getToken that answers from a list (the last one repeats), counting calls.
function tokens(...list) {
  const fn = () => {
    fn.calls++;
    return Promise.resolve(list[Math.min(fn.calls, list.length) - 1]);
  };
  fn.calls = 0;
  return fn;
}

// After the final disconnect: no socket may follow.  Ten times baseMs.
async function assertNoReconnect(tw, n) {
  await sleep(1000);
  assert.equal(tw.sockets.length, n, 'no reconnect attempt');
}

test('token_expiring is answered with a fresh token in-band: same connection, events flow past the old exp', { timeout: 30000 }, async (t) => {
  const short = mint({ userId: 'refresher' }, { expiresIn: NOTICE_S + 1 });
  const long = mint({ userId: 'refresher', fresh: true }, { expiresIn: 3600 });
  const shortExp = JSON.parse(Buffer.from(short.split('.')[1], 'base64url')).exp;
  const getToken = tokens(short, long);
  const { c, tw, log } = client(t, { getToken });
  const got = [];
  c.subscribe('apps:status', (data) => got.push(data));
  const authenticated = nextEvent(c, 'authenticated', () => true, 15000);
  const subscribed = nextEvent(c, 'subscribed');
  c.connect();
  await subscribed;
  const id = c.connectionId;
  const a = await authenticated;
  assert.equal(log.token_expiring.length, 1);
  assert.equal(getToken.calls, 2);
  assert.equal(new Date(a.expiresAt).getTime() > Date.now() + 3000000, true, a.expiresAt);
  assert.deepEqual(tw.sent().find((m) => m.type === 'auth'), { type: 'auth', token: long });
  // past the first token's exp (no leeway): the connection is still the same
  await waitFor(() => Date.now() > shortExp * 1000 + 1500, 10000, 'the old exp to pass');
  await publish('apps:status', { after: 'exp' });
  await waitFor(() => got.length === 1, 10000, 'an event after the old exp');
  assert.equal(c.connectionId, id);
  assert.equal(c.state, 'open');
  assert.equal(tw.sockets.length, 1);
  assert.deepEqual(log.disconnected, []);
});

test('a "Token expired" close calls getToken and reconnects with the new token, resuming', { timeout: 30000 }, async (t) => {
  const short = mint({ userId: 'expirer' }, { expiresIn: NOTICE_S + 1 });
  const long = mint({ userId: 'expirer' }, { expiresIn: 3600 });
  // the refresh on token_expiring gets the same short token: no new exp
  const getToken = tokens(short, short, long);
  const { c, tw, log } = client(t, { getToken });
  const got = [];
  c.subscribe('apps:deployed', (data) => got.push(data.i));
  const subscribed = nextEvent(c, 'subscribed');
  const disconnected = nextEvent(c, 'disconnected', () => true, 15000);
  c.connect();
  await subscribed;
  await publish('apps:deployed', { i: 1 });
  await waitFor(() => got.length === 1, 10000, 'event 1');
  const reconnected = nextEvent(c, 'connected', () => true, 20000);
  const dis = await disconnected;
  assert.deepEqual(dis, { code: 1008, reason: 'Token expired', willReconnect: true });
  await publish('apps:deployed', { i: 2 });
  await reconnected;
  await waitFor(() => got.length === 2, 10000, 'event 2');
  assert.deepEqual(got, [1, 2]);
  assert.equal(getToken.calls, 3);
  assert.equal(tw.sockets.length, 2);
  assert.deepEqual(tw.sockets[1].protocols, [`token-${long}`]);
  assert.ok(log.error.some((e) => e.source === 'server' && e.message === 'Token expired'));
});

test('a "Token expired" close without getToken stops, with an error', { timeout: 30000 }, async (t) => {
  const { c, tw, log } = client(t, { token: mint({ userId: 'noget' }, { expiresIn: NOTICE_S + 1 }) });
  const expiring = nextEvent(c, 'token_expiring', () => true, 15000);
  const disconnected = nextEvent(c, 'disconnected', () => true, 15000);
  c.connect();
  await expiring;
  assert.deepEqual(await disconnected, { code: 1008, reason: 'Token expired', willReconnect: false });
  assert.ok(log.error.some((e) => e.source === 'token'));
  assert.equal(c.state, 'closed');
  await assertNoReconnect(tw, 1);
});

test('an invalid token stops: no reconnect attempt', { timeout: 20000 }, async (t) => {
  const before = (await d.stats()).auth_failures;
  const { c, tw, log } = client(t, { token: mint({ userId: 'forger' }, { secret: 'not-the-secret-of-this-daemon!!!' }) });
  const disconnected = nextEvent(c, 'disconnected');
  c.connect();
  assert.deepEqual(await disconnected, { code: 1008, reason: 'Invalid token', willReconnect: false });
  assert.ok(log.error.some((e) => e.source === 'server' && /^Invalid token: /.test(e.message)));
  assert.deepEqual(log.connected, []);
  await assertNoReconnect(tw, 1);
  assert.equal((await d.stats()).auth_failures - before, 1);
});

test('an invalid token with getToken giving the same token again stops', { timeout: 20000 }, async (t) => {
  const bad = mint({ userId: 'forger2' }, { secret: 'not-the-secret-of-this-daemon!!!' });
  const getToken = tokens(bad);
  const { c, tw } = client(t, { getToken });
  const disconnected = nextEvent(c, 'disconnected');
  c.connect();
  assert.equal((await disconnected).willReconnect, false);
  assert.equal(getToken.calls, 2);
  await assertNoReconnect(tw, 1);
});

test('an invalid token with getToken giving a new valid token reconnects', { timeout: 20000 }, async (t) => {
  const bad = mint({ userId: 'fixed' }, { secret: 'not-the-secret-of-this-daemon!!!' });
  const good = mint({ userId: 'fixed' });
  const getToken = tokens(bad, good);
  const { c, tw, log } = client(t, { getToken });
  const connected = nextEvent(c, 'connected');
  c.connect();
  assert.equal((await connected).user.userId, 'fixed');
  assert.equal(tw.sockets.length, 2);
  assert.equal(log.reconnecting[0].code, 1008);
  assert.equal(log.reconnecting[0].reason, 'Invalid token');
});

test('a revoked token closes the live connection 1008 "Token revoked" and stays closed', { timeout: 20000 }, async (t) => {
  const token = mint({ userId: 'revokee', jti: `jti-${process.pid}-${Date.now()}` });
  const getToken = tokens(token);
  const { c, tw } = client(t, { getToken });
  const connected = nextEvent(c, 'connected');
  c.connect();
  await connected;
  const disconnected = nextEvent(c, 'disconnected');
  const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).jti;
  const rep = await d.admin(`revoke ${jti} 1h`);
  assert.equal(rep.ok, true, JSON.stringify(rep));
  assert.deepEqual(await disconnected, { code: 1008, reason: 'Token revoked', willReconnect: false });
  assert.equal(getToken.calls, 2, 'getToken asked once more, gave the same token');
  await assertNoReconnect(tw, 1);
});

test('the auth transport with an invalid token stops like a handshake token', { timeout: 20000 }, async (t) => {
  const bad = mint({ userId: 'inband-forger' }, { secret: 'not-the-secret-of-this-daemon!!!' });
  const { c, tw, log } = client(t, { token: bad, tokenTransport: 'auth' });
  const disconnected = nextEvent(c, 'disconnected');
  c.connect();
  assert.deepEqual(await disconnected, { code: 1008, reason: 'Invalid token', willReconnect: false });
  assert.ok(log.error.some((e) => e.request === 'auth'));
  assert.deepEqual(log.connected, []);
  await assertNoReconnect(tw, 1);
});

test('setToken with a token the server refuses in-band: the next connect uses the old token', { timeout: 20000 }, async (t) => {
  const good = mint({ userId: 'keeper' });
  const bad = mint({ userId: 'keeper' }, { secret: 'not-the-secret-of-this-daemon!!!' });
  const other = mint({ userId: 'someone-else' });
  const { c, tw, log } = client(t, { token: good });
  const connected = nextEvent(c, 'connected');
  c.connect();
  await connected;
  c.setToken(bad);
  await waitFor(() => log.error.some((e) => e.request === 'auth' && /^Invalid token: /.test(e.message)), 5000, 'the refusal');
  c.setToken(other);
  await waitFor(() => log.error.some((e) => e.request === 'auth' && e.message === 'Token user mismatch'), 5000, 'the mismatch');
  assert.equal(c.state, 'open');
  const again = nextEvent(c, 'connected');
  tw.sockets[0].ws.terminate();             // no close frame: 1006, reconnect
  assert.equal((await again).user.userId, 'keeper');
  assert.equal(tw.sockets.length, 2);
  assert.deepEqual(tw.sockets[1].protocols, [`token-${good}`]);
  assert.deepEqual(log.authenticated, []);
});

test('setToken while connected, with getToken: accepted in-band, and the next connect uses it instead of asking getToken', { timeout: 20000 }, async (t) => {
  const first = mint({ userId: 'setter' });
  const later = mint({ userId: 'setter', v: 2 });
  const getToken = tokens(first);
  const { c, tw, log } = client(t, { getToken });
  const connected = nextEvent(c, 'connected');
  c.connect();
  await connected;
  assert.equal(getToken.calls, 1);
  const auth = nextEvent(c, 'authenticated');
  c.setToken(later);
  await auth;
  assert.deepEqual(tw.sockets[0].sent.filter((m) => m.type === 'auth'), [{ type: 'auth', token: later }]);
  const again = nextEvent(c, 'connected');
  tw.sockets[0].ws.terminate();
  await again;
  assert.equal(getToken.calls, 1, 'getToken not asked: the token setToken gave is used');
  assert.deepEqual(tw.sockets[1].protocols, [`token-${later}`]);
  // the connect after that one asks getToken again, as documented
  const third = nextEvent(c, 'connected');
  tw.sockets[1].ws.terminate();
  await third;
  assert.equal(getToken.calls, 2);
  assert.deepEqual(tw.sockets[2].protocols, [`token-${first}`]);
  assert.equal(log.error.filter((e) => e.source === 'server').length, 0, JSON.stringify(log.error));
});
