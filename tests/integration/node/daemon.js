'use strict';
// Start a private realtimed on a free loopback port for a node:test file,
// the way conftest.py does for pytest: temp config, -f -d -c, wait for
// /health, SIGTERM by PID at the end.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const SECRET = 'integration-test-secret-0123456789abcdef';
const REPO = path.resolve(__dirname, '..', '..', '..');

function realtimedBin() {
  return process.env.REALTIMED_BIN || path.join(REPO, 'src', 'realtimed');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function probe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000 },
      (res) => { res.resume(); resolve(true); });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

async function startDaemon(conf = {}, opts = {}) {
  const port = opts.port || await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-node-'));
  const settings = Object.assign({
    listen: `127.0.0.1:${port}`,
    workers: '1',
    jwt_algorithm: 'HS256',
    jwt_secret: SECRET,
    log_level: 'debug',
    pidfile: path.join(dir, 'realtimed.pid'),
    admin_socket: path.join(dir, 'realtimed.sock'),
  }, conf);
  const confPath = path.join(dir, 'realtimed.conf');
  fs.writeFileSync(confPath, Object.entries(settings)
    .map(([k, v]) => `${k} ${v}`).join('\n') + '\n');
  const logPath = path.join(dir, 'realtimed.log');
  const logFd = fs.openSync(logPath, 'w');
  const env = Object.assign({}, process.env);
  delete env.JWT_SECRET;
  delete env.REDIS_URL;
  const proc = spawn(realtimedBin(), ['-f', '-d', '-c', confPath],
    { stdio: ['ignore', logFd, logFd], env });
  fs.closeSync(logFd);
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const log = () => { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } };

  const deadline = Date.now() + 10000;
  for (;;) {
    if (exited) throw new Error(`realtimed exited during startup (${JSON.stringify(exited)}):\n${log()}`);
    if (await probe(port)) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`realtimed not ready within 10 s:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  async function stop() {
    if (!exited) {
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { port, url: `ws://127.0.0.1:${port}/ws`, stop, log, proc };
}

// Resolve with the next `count` parsed messages of a ws client.
function nextMessages(ws, count, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => {
      ws.removeListener('message', onMessage);
      reject(new Error(`timed out after ${got.length}/${count} messages: ${JSON.stringify(got)}`));
    }, timeoutMs);
    function onMessage(data) {
      got.push(JSON.parse(data.toString()));
      if (got.length === count) {
        clearTimeout(timer);
        ws.removeListener('message', onMessage);
        resolve(got);
      }
    }
    ws.on('message', onMessage);
  });
}

function waitFor(pred, timeoutMs = 5000, what = 'condition') {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    (function poll() {
      const v = pred();
      if (v) return resolve(v);
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 20);
    })();
  });
}

module.exports = { SECRET, startDaemon, nextMessages, waitFor };
