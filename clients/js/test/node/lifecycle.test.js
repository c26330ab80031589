// Fixes from a second review of the client's lifecycle: the token after
// "Token expired", timers left by close(), the backoff against a server
// that closes right after `connected`, a new node epoch after offset 0,
// and a setToken() made while the handshake is being refused.  Real
// realtimed and redis-server, except where a server must misbehave on
// purpose (a `ws` server standing in for one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocketServer } from 'ws';
import { startRedis, startDaemon, mint, nextEvent, waitFor, sleep, waitRedisUp, Resp, loggedClient } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const clientUrl = pathToFileURL(path.join(here, '..', '..', 'src', 'index.js')).href;
const wsUrl = pathToFileURL(path.join(here, '..', '..', 'node_modules', 'ws', 'wrapper.mjs')).href;

let redis;
let d;          // jwt_leeway 0, token_refresh_notice 1s
before(async () => {
  redis = await startRedis();
  d = await startDaemon({ jwt_leeway: '0', token_refresh_notice: '1s' }, { redis });
  await waitRedisUp(d);
});
after(async () => {
  if (d) await d.stop();
  if (redis) await redis.stop();
});

function client(t, url, opts = {}) {
  return loggedClient(t, Object.assign({ url, reconnect: { baseMs: 50, maxMs: 200 } }, opts),
    ['connected', 'disconnected', 'error', 'reconnecting', 'unrecoverable']);
}

// A stand-in server: greet(ws, msg) decides what each connection gets.
async function standIn(t, onConn) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1',
    handleProtocols: (set) => [...set].find((p) => p.startsWith('token-')) || false });
  await new Promise((r) => wss.on('listening', r));
  let conns = 0;
  wss.on('connection', (ws) => { conns++; onConn(ws); });
  t.after(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(r); }));
  return { url: `ws://127.0.0.1:${wss.address().port}/ws`, get conns() { return conns; } };
}

const hello = (ws) => ws.send(JSON.stringify({ type: 'connected', connectionId: 'c', user: null,
  authorizedChannels: [], expiresAt: null, timestamp: new Date().toISOString() }));

test('"Token expired": the reconnect asks getToken, never dials the token that expired', { timeout: 20000 }, async (t) => {
  const fresh = mint({ userId: 'tx' });
  let calls = 0;
  // the second call (on token_expiring) fails: no in-band refresh, so the server closes
  const { c, tw, log } = client(t, d.url, {
    getToken: () => (++calls === 2 ? Promise.reject(new Error('token service down')) : fresh),
  });
  c.on('error', () => {});
  c.connect();
  await waitFor(() => c.connected, 5000, 'connected');
  const short = mint({ userId: 'tx' }, { expiresIn: 1 });
  const ok = nextEvent(c, 'authenticated');
  c.setToken(short);
  await ok;
  await waitFor(() => log.disconnected.some((x) => x.reason === 'Token expired'), 8000, 'Token expired');
  await waitFor(() => log.connected.length === 2, 8000, 'connected again');
  assert.equal(tw.sockets.length, 2, 'no wasted handshake with the expired token');
  assert.deepEqual(tw.sockets[1].protocols, [`token-${fresh}`]);
  assert.equal(calls, 3);
  assert.ok(!log.error.some((e) => /Invalid token/.test(e.message || '')), JSON.stringify(log.error));
});

// A child node process that must exit on its own right after close().
function runChild(script, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`child still alive after ${timeoutMs} ms: ${out}`)); }, timeoutMs);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

test('close() leaves no timer running: a pending getToken, a subscribe retry', { timeout: 30000 }, async (t) => {
  // getToken never answers, its limit is 60 s: only close() can end it
  let r = await runChild(`
    import { RealtimeClient } from ${JSON.stringify(clientUrl)};
    import { WebSocket } from ${JSON.stringify(wsUrl)};
    const c = new RealtimeClient({ url: 'ws://127.0.0.1:9/ws', WebSocket, tokenTimeoutMs: 60000,
      getToken: () => new Promise(() => {}) });
    c.connect();
    setTimeout(() => { c.close(); console.log('closed'); }, 50);
  `);
  assert.equal(r.code, 0);
  assert.match(r.out, /closed/);
  // a subscribe answered "try again later" arms a retry of baseMs 60 s
  const srv = await standIn(t, (ws) => {
    hello(ws);
    ws.on('message', (m) => {
      const msg = JSON.parse(m);
      if (msg.type === 'subscribe') ws.send(JSON.stringify({ type: 'error', message: 'Server busy, try again later',
        request: 'subscribe', channel: msg.channel, timestamp: new Date().toISOString() }));
    });
  });
  r = await runChild(`
    import { RealtimeClient } from ${JSON.stringify(clientUrl)};
    import { WebSocket } from ${JSON.stringify(wsUrl)};
    const c = new RealtimeClient({ url: ${JSON.stringify(srv.url)}, WebSocket, reconnect: { baseMs: 60000, maxMs: 60000 } });
    c.subscribe('apps:x', () => {});
    c.on('error', (e) => { if (/try again/.test(e.message)) { c.close(); console.log('closed'); } });
    c.connect();
  `);
  assert.equal(r.code, 0);
  assert.match(r.out, /closed/);
});

test('a server that closes right after connected: the attempts keep growing (no reset until stableMs)', { timeout: 20000 }, async (t) => {
  const srv = await standIn(t, (ws) => { hello(ws); setTimeout(() => ws.close(1011, 'Replay interrupted'), 5); });
  const { c, log } = client(t, srv.url, { reconnect: { baseMs: 10, maxMs: 50 } });
  c.connect();
  await waitFor(() => log.reconnecting.length >= 5, 10000, 'five reconnects');
  c.close();
  const attempts = log.reconnecting.slice(0, 5).map((r) => r.attempt);
  assert.deepEqual(attempts, [1, 2, 3, 4, 5]);
  // and one that stays up for stableMs starts again from 1
  const srv2 = await standIn(t, (ws) => { hello(ws); setTimeout(() => ws.close(1011, 'Replay interrupted'), 300); });
  const b = client(t, srv2.url, { reconnect: { baseMs: 10, maxMs: 50, stableMs: 100 } });
  b.c.connect();
  await waitFor(() => b.log.reconnecting.length >= 3, 10000, 'three reconnects');
  b.c.close();
  assert.deepEqual(b.log.reconnecting.slice(0, 3).map((r) => r.attempt), [1, 1, 1]);
});

test('a new node epoch after offset 0 is unrecoverable: events were lost while the link was down', { timeout: 30000 }, async (t) => {
  const { c, log } = client(t, d.url, { token: mint({ userId: 'ep' }) });
  const got = [];
  c.subscribe('apps:status', (data, m) => got.push(m));
  c.connect();
  await waitFor(() => c.position('apps:status'), 5000, 'subscribed');
  const before = c.position('apps:status');
  assert.equal(before.offset, 0);
  const r = await Resp.connect(redis.port);
  t.after(() => r.close());
  await r.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
  assert.equal(await r.command('PUBLISH', 'apps:status', '{"n":"lost"}'), 0);
  await waitFor(async () => (await r.command('PUBLISH', 'apps:status', '{"n":"after"}')) > 0, 15000, 'the bridge back');
  await waitFor(() => got.length >= 1, 5000, 'the event after');
  assert.notEqual(got[0].epoch, before.epoch);
  assert.equal(log.unrecoverable.length, 1, JSON.stringify(log.unrecoverable));
  assert.equal(log.unrecoverable[0].channel, 'apps:status');
  await waitRedisUp(d);
});

test('setToken() while the handshake is being refused: the next connect uses that token', { timeout: 20000 }, async (t) => {
  const { c, tw, log } = client(t, d.url, { token: mint({ userId: 'st' }, { expiresIn: -5 }) });
  c.on('error', (e) => { if (/^Invalid token/.test(e.message || '')) c.setToken(mint({ userId: 'st' })); });
  c.connect();
  await waitFor(() => log.connected.length === 1, 8000, 'connected with the new token');
  assert.equal(tw.sockets.length, 2);
  assert.equal(c.user.userId, 'st');
});

test('a setToken() token the server refused too is not tried again', { timeout: 20000 }, async (t) => {
  const bad = mint({ userId: 'st2' }, { expiresIn: -5 });
  const { c, tw, log } = client(t, d.url, { token: bad });
  let once = false;
  c.on('error', (e) => {
    if (/^Invalid token/.test(e.message || '') && !once) { once = true; c.setToken(mint({ userId: 'st2' }, { expiresIn: -9 })); }
  });
  c.connect();
  await waitFor(() => c.state === 'closed', 8000, 'closed');
  await sleep(200);
  assert.equal(tw.sockets.length, 2);
  assert.equal(log.connected.length, 0);
});
