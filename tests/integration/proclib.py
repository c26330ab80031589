"""Helpers for the process-model tests (test_delivery.py, test_faults.py):
/health as (status, body), the daemon's memory, publishing to Redis over
raw RESP (pipelined), redis-server on a fixed port, and a fast asyncio
WebSocket client for many connections.  The daemon's processes in /proc
and waiting for a settled daemon are rtlib's (roles, wait_settled).

Every wait here is bounded.
"""
import asyncio
import base64
import json
import os
import re
import socket
import struct
import contextlib
import subprocess
import threading
import time

import rtlib


def health_json(port, timeout=2):
    status, _, body = rtlib.health(port, timeout=timeout)
    return status, body


def start_settled(start_daemon, nworkers, **conf):
    """A redis-server and realtimed with nworkers attached to it (conf: more
    keys), once settled: (daemon, redis)."""
    r = start_daemon.redis()
    c = {"workers": str(nworkers), "redis_url": r.url}
    c.update(conf)
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, nworkers)
    return d, r


def rss_kib(pids):
    """Sum of VmRSS (KiB) over pids."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def daemon_rss_kib(d):
    return rss_kib([d.proc.pid] + list(rtlib.children(d.proc.pid)))


# ----------------------------------------------------------------- Redis

def resp_command(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def publish_many(port, messages, timeout=30):
    """PUBLISH every (channel, payload) over one pipelined connection; return
    the list of integer replies (receivers per message)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"".join(resp_command("PUBLISH", ch, p)
                           for ch, p in messages))
        replies = []
        buf = b""
        deadline = time.monotonic() + timeout
        while len(replies) < len(messages):
            while b"\r\n" not in buf:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            if not line.startswith(b":"):
                raise AssertionError("unexpected redis reply %r" % line)
            replies.append(int(line[1:]))
        return replies
    finally:
        s.close()


def publish(port, channel, payload):
    return publish_many(port, [(channel, payload)])[0]


def start_quiet(start_daemon, workers=1, **conf):
    """start_settled with canary_interval 0 (no canary events on the
    channels a test counts) unless conf says otherwise."""
    c = {"canary_interval": "0"}
    c.update(conf)
    return start_settled(start_daemon, workers, **c)


def subscribe(c, channel, since=None):
    """rtlib client c subscribes (with since, if given); the reply."""
    m = {"type": "subscribe", "channel": channel}
    if since is not None:
        m["since"] = since
    return c.reply(m)


def publish_seq(port, channel, a, b):
    """PUBLISH {"n": a} .. {"n": b - 1} to channel, pipelined."""
    return publish_many(port, [(channel, json.dumps({"n": i})) for i in range(a, b)])


def take_events(c, n, timeout=10):
    """The next n events of rtlib client c (fewer if they do not come in
    time), taken."""
    evs = list(c.events_until(n, timeout))
    c.events.clear()
    return evs


@contextlib.contextmanager
def fast_publisher(port, channel, first):
    """PUBLISH {"n": first}, {"n": first + 1}, ... to channel in bursts of 20
    (1000+ events/s) from a thread while the block runs; yields a list whose
    one item is the last n published, final once the block is left."""
    stop = threading.Event()
    sent = [first - 1]

    def run():
        i = first
        while not stop.is_set():
            publish_many(port, [(channel, json.dumps({"n": j}))
                                for j in range(i, i + 20)])
            i += 20
            sent[0] = i - 1
            time.sleep(0.01)
    t = threading.Thread(target=run)
    t.start()
    try:
        yield sent
    finally:
        stop.set()
        t.join(10)


def assert_offsets_after(clients, last, timeout=15):
    """Each (since, client) gets the events at offsets since+1 .. last, each
    once and in order, with data {"n": offset} (as fast_publisher sends)."""
    for since, cl in clients:
        evs = cl.events_until(last - since, timeout)
        offs = [e["offset"] for e in evs]
        assert offs == list(range(since + 1, last + 1)), (since, offs[:5], offs[-5:], last)
        assert [e["data"]["n"] for e in evs] == offs


def cli_publish(port, channel, payload):
    """PUBLISH with redis-cli, as an operator or a shell script would."""
    p = subprocess.run(["redis-cli", "-p", str(port), "PUBLISH", channel,
                        payload], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip())


class PortRedis(rtlib.Redis):
    """rtlib.Redis on a given port (to restart Redis where it was)."""

    def __init__(self, workdir, port):
        self.port = port
        self.log_path = os.path.join(workdir, "redis-%d-%d.log"
                                     % (port, int(time.time() * 1000)))
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", workdir],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            cwd=workdir)
        self.url = "redis://127.0.0.1:%d" % port
        deadline = time.monotonic() + rtlib.READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s"
                                   % self.proc.returncode)
            try:
                if self.command("PING") == b"+PONG\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start on port %d" % port)


# ----------------------------------------------- a lean asyncio client

class Closed(Exception):
    def __init__(self, code=None, reason=b""):
        super().__init__("closed (code %r, reason %r)" % (code, reason))
        self.code, self.reason = code, reason


class FastWS:
    """A minimal asyncio WebSocket client for many connections: raw frames,
    no per-message overhead beyond parsing (server frames are unmasked)."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.buf = bytearray()
        self.hello = None

    @classmethod
    async def connect(cls, port, token=None, timeout=rtlib.IO_TIMEOUT):
        path = "/ws" if token is None else "/ws?token=" + token
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                      "\r\n" % (path, port, key)).encode())
        self = cls(reader, writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                          timeout)
            assert head.startswith(b"HTTP/1.1 101"), head
            self.hello = await self.recv_json(timeout)
            assert self.hello["type"] == "connected", self.hello
        except BaseException:
            # a connect that fails or is cancelled half way leaves no open
            # socket behind (the daemon would count it as a live client)
            writer.transport.abort()
            raise
        return self

    async def _fill(self, n):
        while len(self.buf) < n:
            chunk = await self.r.read(262144)
            if not chunk:
                raise Closed(None)
            self.buf += chunk

    async def recv_frame(self):
        await self._fill(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            await self._fill(4)
            n, off = struct.unpack_from("!H", self.buf, 2)[0], 4
        elif n == 127:
            await self._fill(10)
            n, off = struct.unpack_from("!Q", self.buf, 2)[0], 10
        await self._fill(off + n)
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return b0 & 0x0F, payload

    async def recv_text(self):
        """The next text message (pings answered, close raises Closed)."""
        while True:
            op, payload = await self.recv_frame()
            if op == 0x9:
                self.send_frame(0xA, payload)
                continue
            if op == 0x8:
                code, reason = rtlib.parse_close(payload)
                raise Closed(code, reason)
            if op == 0x1:
                return payload
            if op == 0xA:
                continue
            raise AssertionError("unexpected opcode %d" % op)

    async def recv_json(self, timeout=rtlib.IO_TIMEOUT):
        return json.loads(await asyncio.wait_for(self.recv_text(), timeout))

    def send_frame(self, opcode, payload):
        self.w.write(rtlib.client_frame(opcode, payload))

    def send_json(self, obj):
        self.send_frame(0x1, json.dumps(obj).encode())

    async def request(self, obj, timeout=rtlib.IO_TIMEOUT):
        self.send_json(obj)
        await self.w.drain()
        return await self.recv_json(timeout)

    async def subscribe(self, channel, timeout=rtlib.IO_TIMEOUT):
        m = await self.request({"type": "subscribe", "channel": channel},
                               timeout)
        assert m["type"] == "subscribed" and m["channel"] == channel, m
        return m

    def abort(self):
        try:
            self.w.transport.abort()
        except Exception:
            pass


async def open_many(port, n, token=None, channel=None, concurrency=50,
                    timeout=30):
    """n FastWS connections (subscribed to channel when given), opened with
    bounded concurrency. token: None (anonymous), a string, or f(i)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            tok = token(i) if callable(token) else token
            c = await FastWS.connect(port, tok)
            if channel is not None:
                await c.subscribe(channel)
            return c
    return await asyncio.wait_for(
        asyncio.gather(*(one(i) for i in range(n))), timeout)


EVENT_SEQ_RE = re.compile(rb'"seq":(\d+)')


def raw_ws_small_rcvbuf(port, token=None, rcvbuf=4096, timeout=rtlib.IO_TIMEOUT,
                        endpoint="/ws"):
    """An rtlib.RawWS whose socket got a small SO_RCVBUF before connect()
    (so the kernel cannot absorb much of what the server sends)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    ws = rtlib.RawWS.__new__(rtlib.RawWS)
    ws.sock = s
    ws.key = base64.b64encode(os.urandom(16)).decode()
    path = endpoint if token is None else endpoint + "?token=" + token
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (path, port, ws.key)).encode())
    st, hd, rest, _ = rtlib.read_http_response(s, timeout, read_all=False)
    assert st == 101, (st, hd)
    ws.status, ws.headers, ws.buf = st, hd, rest
    return ws


def read_to_eof(sock, timeout):
    """(bytes, how) read until the peer ends the connection: how is "eof",
    "reset" or "timeout"."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except (socket.timeout, TimeoutError):
            return bytes(data), "timeout"
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


def split_frames(data):
    """Server frames in data: ([(opcode, payload)], trailing bytes of an
    incomplete frame, or None when the stream is not a frame sequence)."""
    frames, off = [], 0
    while off < len(data):
        if len(data) - off < 2:
            return frames, data[off:]
        b0, b1 = data[off], data[off + 1]
        if b1 & 0x80 or b0 & 0x70 or (b0 & 0x0F) not in (0, 1, 2, 8, 9, 10):
            return frames, None
        n, h = b1 & 0x7F, 2
        if n == 126:
            if len(data) - off < 4:
                return frames, data[off:]
            n, h = struct.unpack_from("!H", data, off + 2)[0], 4
        elif n == 127:
            if len(data) - off < 10:
                return frames, data[off:]
            n, h = struct.unpack_from("!Q", data, off + 2)[0], 10
        if len(data) - off < h + n:
            return frames, data[off:]
        frames.append((b0 & 0x0F, bytes(data[off + h:off + h + n])))
        off += h + n
    return frames, b""
