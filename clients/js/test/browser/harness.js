// What the browser tests share: a private redis-server and realtimed on free
// loopback ports (the way tests/integration/node/daemon.js does it), a
// static http server for the pages, headless Chromium driven by nothing but
// its command line, and a page <-> test channel over that http server.
//
// The page talks to the test with two requests: POST /report (a JSON
// object: {kind: ...}) and GET /cmd?after=N (the commands queued by the test
// since N, polled). Every process started here is stopped by its PID.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SECRET = 'browser-test-secret-0123456789abcdef';
const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PKG = path.resolve(HERE, '..', '..');          // clients/js
const REPO = path.resolve(PKG, '..', '..');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function findChromium() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium',
    '/usr/bin/chromium-browser'].filter(Boolean);
  return candidates.find((p) => {
    try { fs.accessSync(p, fs.constants.X_OK); return true; } catch { return false; }
  }) || null;
}

export function redisServerMissing() {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return r.error ? 'redis-server not found (apt-get install redis-server)' : null;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last)
      return last;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function stopChild(proc, exited, group = false) {
  if (exited())
    return Promise.resolve();
  const done = new Promise((r) => proc.once('exit', r));
  const kill = (sig) => {
    try { process.kill(group ? -proc.pid : proc.pid, sig); } catch { /* gone */ }
  };
  kill(group ? 'SIGKILL' : 'SIGTERM');
  const t = setTimeout(() => kill('SIGKILL'), 5000);
  return done.then(() => clearTimeout(t));
}

function spawnLogged(cmd, args, logPath, opts = {}) {
  const fd = fs.openSync(logPath, 'w');
  const proc = spawn(cmd, args, Object.assign({ stdio: ['ignore', fd, fd] }, opts));
  fs.closeSync(fd);
  let exit = null;
  proc.on('exit', (code, sig) => { exit = { code, sig }; });
  proc.on('error', (e) => { exit = { error: String(e) }; });
  return { proc, exited: () => exit };
}

// ---------------------------------------------------------------- Redis

// One RESP command on a fresh connection; resolves with the raw reply.
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
      const b = Buffer.from(String(a));
      parts.push(`$${b.length}\r\n`, b, '\r\n');
    }
    const s = net.createConnection({ host: '127.0.0.1', port });
    let buf = '';
    s.setTimeout(3000, () => s.destroy(new Error('redis: no reply within 3 s')));
    s.on('connect', () => s.write(Buffer.concat(parts.map((p) => Buffer.from(p)))));
    s.on('data', (d) => {
      buf += d;
      if (buf.endsWith('\r\n')) {
        s.end();
        resolve(buf);
      }
    });
    s.on('error', reject);
  });
}

// PUBLISH channel payload; resolves with the number of Redis receivers.
export async function publish(port, channel, data) {
  const reply = await redisCommand(port, 'PUBLISH', channel, JSON.stringify(data));
  if (!reply.startsWith(':'))
    throw new Error(`PUBLISH answered ${JSON.stringify(reply)}`);
  return Number(reply.slice(1));
}

async function startRedis(dir) {
  const port = await freePort();
  const r = spawnLogged('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir], path.join(dir, 'redis.log'), { cwd: dir });
  await waitFor(async () => {
    if (r.exited())
      throw new Error(`redis-server exited: ${fs.readFileSync(path.join(dir, 'redis.log'), 'utf8')}`);
    return redisCommand(port, 'PING').then((x) => x === '+PONG\r\n', () => false);
  }, 10000, 'redis-server to answer PING');
  return { port, url: `redis://127.0.0.1:${port}`, stop: () => stopChild(r.proc, r.exited) };
}

// -------------------------------------------------------------- realtimed

function healthOf(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { try { resolve(JSON.parse(body)); } catch { resolve(null); } });
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => { req.destroy(); resolve(null); });
  });
}

// One admin command over the unix socket; resolves with the reply line parsed.
export function admin(sockPath, command) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sockPath);
    let buf = '';
    s.setTimeout(5000, () => s.destroy(new Error(`admin ${command}: no reply within 5 s`)));
    s.on('connect', () => s.write(command + '\n'));
    s.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        s.end();
        try {
          const r = JSON.parse(buf.slice(0, nl));
          if (r.ok !== true)
            reject(new Error(`admin ${command}: ${buf.slice(0, nl)}`));
          resolve(r);
        } catch (e) {
          reject(e);
        }
      }
    });
    s.on('error', reject);
  });
}

async function startRealtimed(dir, redisUrl) {
  const bin = process.env.REALTIMED_BIN || path.join(REPO, 'src', 'realtimed');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`realtimed binary ${bin} not found: build it or set REALTIMED_BIN`);
  }
  const port = await freePort();
  const sock = path.join(dir, 'realtimed.sock');
  const settings = {
    listen: `127.0.0.1:${port}`,
    workers: '1',
    jwt_algorithm: 'HS256',
    jwt_secret: SECRET,
    redis_url: redisUrl,
    log_level: 'debug',
    pidfile: path.join(dir, 'realtimed.pid'),
    admin_socket: sock,
  };
  const confPath = path.join(dir, 'realtimed.conf');
  fs.writeFileSync(confPath, Object.entries(settings).map(([k, v]) => `${k} ${v}`).join('\n') + '\n');
  const env = Object.assign({}, process.env);
  delete env.JWT_SECRET;
  delete env.REDIS_URL;
  const logPath = path.join(dir, 'realtimed.log');
  const d = spawnLogged(bin, ['-f', '-d', '-c', confPath], logPath, { env });
  const log = () => { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } };
  await waitFor(async () => {
    if (d.exited())
      throw new Error(`realtimed exited during startup (${JSON.stringify(d.exited())}):\n${log()}`);
    const h = await healthOf(port);
    return h && h.redis === 'up' && h.status === 'ok';
  }, 15000, 'realtimed /health with redis up');
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    log,
    admin: (cmd) => admin(sock, cmd),
    stop: () => stopChild(d.proc, d.exited),
  };
}

// ------------------------------------------------------------------ JWT

const b64url = (x) => Buffer.from(x).toString('base64url');

export function mint(claims, secret = SECRET) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(Object.assign({ iat: now, exp: now + 3600 }, claims)));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// ---------------------------------------------------------- page server

const SERVED = ['/src/', '/test/browser/', '/node_modules/react/umd/', '/node_modules/react-dom/umd/'];
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html',
  '.json': 'application/json', '.map': 'application/json' };

function startPageServer() {
  const reports = [];
  const commands = [];
  let waiters = [];
  const notify = () => { for (const w of waiters) w(); };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const send = (code, type, body) => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method === 'POST' && u.pathname === '/report') {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        try { reports.push(JSON.parse(body)); } catch { reports.push({ kind: 'bad-report', body }); }
        notify();
        send(204, 'text/plain', '');
      });
      return;
    }
    if (req.method === 'GET' && u.pathname === '/cmd') {
      const after = Number(u.searchParams.get('after')) || 0;
      send(200, 'application/json', JSON.stringify(commands.slice(after)));
      return;
    }
    if (req.method === 'GET' && u.pathname === '/favicon.ico')
      return send(204, 'text/plain', '');
    const file = path.normalize(decodeURIComponent(u.pathname));
    if (req.method !== 'GET' || !SERVED.some((p) => file.startsWith(p)))
      return send(404, 'text/plain', 'not served');
    fs.readFile(path.join(PKG, file), (err, data) => {
      if (err)
        return send(404, 'text/plain', 'no such file');
      send(200, (TYPES[path.extname(file)] || 'application/octet-stream') + '; charset=utf-8', data);
    });
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        origin: `http://127.0.0.1:${port}`,
        reports,
        // Resolve with the first report matching pred (reports of kind
        // 'error' from the page fail the wait at once).
        waitReport(pred, timeoutMs, what, alive = () => null) {
          return new Promise((res, rej) => {
            const check = () => {
              const bad = reports.find((r) => r.kind === 'error');
              if (bad)
                return done(rej, new Error(`page error while waiting for ${what}: ${bad.message}`));
              const hit = reports.find(pred);
              if (hit)
                return done(res, hit);
              const dead = alive();
              if (dead)
                return done(rej, new Error(`${dead} while waiting for ${what}`));
              return undefined;
            };
            const timer = setTimeout(() => done(rej,
              new Error(`timed out after ${timeoutMs} ms waiting for ${what}; reports: ` +
                JSON.stringify(reports).slice(-1500))), timeoutMs);
            const poll = setInterval(check, 200);
            function done(f, v) {
              clearTimeout(timer);
              clearInterval(poll);
              waiters = waiters.filter((w) => w !== check);
              f(v);
            }
            waiters.push(check);
            check();
          });
        },
        // A new page: forget the last one's reports and commands.
        reset() {
          reports.length = 0;
          commands.length = 0;
        },
        command(obj) {
          const id = commands.length + 1;
          commands.push(Object.assign({ id }, obj));
          return id;
        },
        close: () => new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

// ------------------------------------------------------------- Chromium

function startChromium(binary, url, dir) {
  const profile = fs.mkdtempSync(path.join(dir, 'chromium-'));
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-extensions', '--disable-quic', '--no-default-browser-check',
    '--user-data-dir=' + profile, url];
  const logPath = path.join(dir, 'chromium.log');
  // Its own process group: the renderer and GPU processes go with it.
  const c = spawnLogged(binary, args, logPath, { detached: true });
  const log = () => { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } };
  return {
    pid: c.proc.pid,
    dead: () => (c.exited() ? `chromium exited (${JSON.stringify(c.exited())}):\n${log().slice(-3000)}` : null),
    log,
    stop: () => stopChild(c.proc, c.exited, true),
  };
}

// ------------------------------------------------------------ the world

// Redis + realtimed + page server; open(page, params) starts Chromium on it.
export async function startWorld() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-browser-'));
  const stops = [];
  try {
    const redis = await startRedis(dir);
    stops.push(redis.stop);
    const daemon = await startRealtimed(dir, redis.url);
    stops.push(daemon.stop);
    const pages = await startPageServer();
    stops.push(pages.close);
    const browsers = [];
    return {
      dir, redis, daemon, pages,
      publish: (channel, data) => publish(redis.port, channel, data),
      // A command to the page; resolves with its reply's value.
      async ask(browser, op, args = {}, timeoutMs = 10000) {
        const id = pages.command(Object.assign({ op }, args));
        const r = await pages.waitReport((x) => x.kind === 'reply' && x.id === id,
          timeoutMs, `the page's reply to ${op}`, browser.dead);
        return r.value;
      },
      open(page, params) {
        const q = new URLSearchParams(params).toString();
        pages.reset();
        const b = startChromium(findChromium(), `${pages.origin}/test/browser/${page}?${q}`, dir);
        browsers.push(b);
        return b;
      },
      async stop() {
        for (const b of browsers.splice(0))
          await b.stop();
        for (const s of stops.reverse())
          await s().catch(() => {});
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const s of stops.reverse())
      await s().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
