'use strict';
// Baseline for tests/bench: the realtime service as a team would first write
// it in Node.js (ws + redis + jsonwebtoken, one process), speaking the same
// messages as realtimed (connected / subscribe / subscribed / event / pong /
// error) so tests/bench/rtload drives both.  Not a product: no TLS, no
// admin, no stats beyond what the benchmark needs.
//   PORT=8888 REDIS_URL=redis://127.0.0.1:6379 JWT_SECRET=... node server.js
const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');
const jwt = require('jsonwebtoken');
const { createClient } = require('redis');

const PORT = Number(process.env.PORT || 8888);
const HOST = process.env.HOST || '127.0.0.1';
const SECRET = process.env.JWT_SECRET || 'secret';
const HEARTBEAT_MS = Number(process.env.HEARTBEAT_MS || 30000);
const WELL_KNOWN = {
  'apps:': ['created', 'updated', 'deleted', 'deployed', 'status'],
  'users:': ['created', 'updated', 'deleted'],
  'database:': ['table_created', 'table_updated', 'table_deleted', 'row_updated'],
  'deployments:': ['started', 'completed', 'failed', 'status'],
  'storage:': ['uploaded', 'deleted', 'updated'],
};
const now = () => new Date().toISOString();
const channels = new Map(); // channel -> Set<ws>

function authorized(user) {
  if (!user) return ['announcements'];
  const list = [];
  for (const [p, names] of Object.entries(WELL_KNOWN)) for (const n of names) list.push(p + n);
  if (user.role === 'admin') list.push('system:health', 'system:metrics', 'system:alerts');
  list.push('announcements', `user:${user.userId}`);
  return list;
}

function mayUse(user, ch) {
  if (!/^[A-Za-z0-9_.:@-]{1,200}$/.test(ch)) return 'Unknown channel';
  if (ch === 'announcements') return null;
  if (!user) return 'Not authorized to subscribe to this channel';
  for (const p of Object.keys(WELL_KNOWN)) if (ch.startsWith(p) && ch.length > p.length) return null;
  if (ch.startsWith('user:')) return ch === `user:${user.userId}` || user.role === 'admin' ? null : 'Not authorized to subscribe to this channel';
  if (ch.startsWith('system:')) return user.role === 'admin' ? null : 'Not authorized to subscribe to this channel';
  return 'Unknown channel';
}

function tokenOf(req) {
  const url = new URL(req.url, 'http://x');
  if (url.searchParams.get('token')) return url.searchParams.get('token');
  const a = req.headers.authorization;
  if (a && a.startsWith('Bearer ')) return a.slice(7);
  const p = (req.headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim());
  const t = p.find((s) => s.startsWith('token-'));
  return t ? t.slice(6) : null;
}

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', service: 'realtime', connections: wss.clients.size, timestamp: now() }));
    return;
  }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({
  server,
  path: '/ws',
  handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith('token-')) || false,
});

wss.on('connection', (ws, req) => {
  const send = (o) => ws.send(JSON.stringify({ ...o, timestamp: now() }));
  const token = tokenOf(req);
  let user = null;
  if (token) {
    try {
      const c = jwt.verify(token, SECRET, { algorithms: ['HS256'] });
      user = { userId: String(c.userId || c.sub), email: c.email, role: c.role };
    } catch (e) {
      send({ type: 'error', message: `Invalid token: ${e.message}` });
      ws.close(1008, 'Invalid token');
      return;
    }
  }
  ws.subs = new Set();
  ws.alive = true;
  ws.on('pong', () => { ws.alive = true; });
  ws.on('message', (raw) => {
    ws.alive = true;
    let m;
    try { m = JSON.parse(raw); } catch { send({ type: 'error', message: 'Invalid JSON' }); return; }
    if (m.type === 'subscribe' || m.type === 'unsubscribe') {
      const why = typeof m.channel === 'string' ? mayUse(user, m.channel) : 'Missing channel';
      if (why) { send({ type: 'error', message: why, request: m.type }); return; }
      if (m.type === 'subscribe') {
        if (!channels.has(m.channel)) channels.set(m.channel, new Set());
        channels.get(m.channel).add(ws);
        ws.subs.add(m.channel);
        send({ type: 'subscribed', channel: m.channel });
      } else {
        const s = channels.get(m.channel);
        if (s) { s.delete(ws); if (s.size === 0) channels.delete(m.channel); }
        ws.subs.delete(m.channel);
        send({ type: 'unsubscribed', channel: m.channel });
      }
    } else if (m.type === 'ping') {
      send({ type: 'pong' });
    } else {
      send({ type: 'error', message: 'Unknown message type' });
    }
  });
  ws.on('close', () => {
    for (const ch of ws.subs) {
      const s = channels.get(ch);
      if (s) { s.delete(ws); if (s.size === 0) channels.delete(ch); }
    }
  });
  send({ type: 'connected', connectionId: crypto.randomUUID(), user, authorizedChannels: authorized(user) });
});

setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.alive) { ws.terminate(); continue; }
    ws.alive = false;
    ws.ping();
  }
}, HEARTBEAT_MS);

async function main() {
  const sub = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
  sub.on('error', (e) => console.error('redis:', e.message));
  await sub.connect();
  const deliver = (message, channel) => {
    const set = channels.get(channel);
    if (!set) return;
    let data;
    try { data = JSON.parse(message); } catch { data = message; }
    const frame = JSON.stringify({ type: 'event', channel, data, timestamp: now() });
    for (const ws of set) if (ws.readyState === 1) ws.send(frame);
  };
  for (const p of ['apps:*', 'users:*', 'user:*', 'database:*', 'deployments:*', 'storage:*', 'system:*']) {
    await sub.pSubscribe(p, deliver);
  }
  await sub.subscribe('announcements', deliver);
  server.listen(PORT, HOST, () => console.error(`baseline listening on ${HOST}:${PORT}`));
}
process.on('SIGTERM', () => process.exit(0));
main().catch((e) => { console.error(e); process.exit(1); });
