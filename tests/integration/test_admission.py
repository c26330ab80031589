"""Admission control and drain: max_handshake_rate (503 + Retry-After,
node-wide over the workers), max_connections_per_user (error + 1008
"Too many connections", host-wide, released on close and when a worker
dies, in-band auth too), and the 1001 drain's retry-after reasons.

Counters are read from admin `stats` and /metrics.  Loopback only; every
wait is bounded; nothing asserts speed."""
import re
import signal
import socket
import threading
import time

import chaoslib
import rtlib
from chaoslib import stats
from rtlib import Client, RawWS

NWORKERS = 2


def start(start_daemon, **conf):
    r = start_daemon.redis()
    c = {"workers": str(NWORKERS), "redis_url": r.url, "canary_interval": "0"}
    c.update({k: str(v) for k, v in conf.items()})
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, NWORKERS)
    return d


def workers_used(d):
    return {c["worker"] for c in chaoslib.connections(d)}


def metric(d, series):
    return chaoslib.metrics(d.port).get(series, 0)


# ------------------------------------------------------- max_handshake_rate

def test_handshake_rate_answers_503_with_retry_after_and_counts(start_daemon):
    # a burst of 5 and 1 per second: of 20 upgrades in a moment, about 5
    # pass; the rest get 503 with whole seconds to wait
    d = start(start_daemon, max_handshake_rate=1, max_handshake_burst=5)
    socks, answers = [], []
    try:
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            socks.append(s)
            s.sendall(rtlib_upgrade(d.port, i))
        for s in socks:
            st, hd, _, _ = rtlib.read_http_response(s, 5, read_all=False)
            answers.append((st, hd))
    finally:
        for s in socks:
            s.close()
    n101 = sum(1 for st, _ in answers if st == 101)
    n503 = [hd for st, hd in answers if st == 503]
    assert n101 + len(n503) == 20, [st for st, _ in answers]
    # the bucket is the node's, not a worker's: at most the burst and what
    # refilled meanwhile (1/s), whatever the worker
    assert 1 <= n101 <= 7, n101
    assert len(n503) >= 13
    for hd in n503:
        assert re.fullmatch(r"[1-9][0-9]*", hd["retry-after"]), hd
    s = stats(d)
    assert s["handshakes_throttled"] == len(n503), s
    assert metric(d, "realtimed_handshakes_throttled_total") == len(n503)
    # /health is not a handshake: never throttled
    for _ in range(5):
        assert rtlib.http_get(d.port, "/health")[0] == 200


def rtlib_upgrade(port, i):
    import base64
    import os
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (port, key)).encode()


def test_handshake_rate_zero_is_unlimited(start_daemon):
    d = start(start_daemon)
    clients = [Client(d.port) for _ in range(30)]
    assert stats(d)["handshakes_throttled"] == 0
    for c in clients:
        c.close()


# ------------------------------------------------- max_connections_per_user

def refused(port, token):
    """A connection over the limit: the error, then 1008 and its reason."""
    ws = RawWS(port, "/ws?token=" + token)
    code, reason, seen = ws.recv_close()
    ws.close_socket()
    assert code == 1008 and reason == b"Too many connections", (code, reason, seen)
    assert len(seen) == 1 and b'"type":"error"' in seen[0] and \
        b'"message":"Too many connections"' in seen[0], seen
    return True


def test_connections_per_user_host_wide_and_released_on_close(start_daemon):
    limit = 10
    d = start(start_daemon, max_connections_per_user=limit)
    tok = rtlib.mint(userId="many")
    # both workers hold some: a limit per worker would let more in.  The
    # kernel picks the worker; on a loaded machine ten may land on one.
    for _ in range(10):
        mine = [Client(d.port, tok) for _ in range(limit)]
        if workers_used(d) == {0, 1}:
            break
        for c in mine:
            c.close()
        rtlib.wait_for(lambda: stats(d)["connections"] == 0, 5, "all closed",
                       tolerate=rtlib.TRANSIENT)
    assert workers_used(d) == {0, 1}
    for _ in range(4):
        refused(d.port, tok)
    other = Client(d.port, rtlib.mint(userId="someone-else"))
    anon = Client(d.port)
    s = stats(d)
    assert s["user_connections_limited"] == 4, s
    assert metric(d, "realtimed_user_connections_limited_total") == 4
    # three closed: three more fit, then the limit again
    for c in mine[:3]:
        c.close()
    rtlib.wait_for(lambda: stats(d)["connections"] == limit - 3 + 2, 5,
                   "the closed connections gone", tolerate=rtlib.TRANSIENT)
    again = [Client(d.port, tok) for _ in range(3)]
    refused(d.port, tok)
    for c in mine[3:] + again + [other, anon]:
        assert c.alive()
        c.close()


def test_connections_per_user_counts_in_band_auth(start_daemon):
    d = start(start_daemon, max_connections_per_user=2)
    tok = rtlib.mint(userId="later")
    held = [Client(d.port, tok) for _ in range(2)]
    c = Client(d.port)      # anonymous, then auth
    c.ws.send_json({"type": "auth", "token": tok})
    code, reason, seen = c.ws.recv_close()
    assert code == 1008 and reason == b"Too many connections", (code, reason)
    assert any(b'"message":"Too many connections"' in p for p in seen), seen
    c.ws.close_socket()
    held[0].close()
    rtlib.wait_for(lambda: stats(d)["connections"] == 1, 5, "one closed",
                   tolerate=rtlib.TRANSIENT)
    c = Client(d.port)
    m = c.reply({"type": "auth", "token": tok})
    assert m["type"] == "authenticated", m
    refused(d.port, tok)
    assert stats(d)["user_connections_limited"] == 2
    for x in (c, held[1]):
        x.close()


def test_connections_per_user_released_when_a_worker_dies(start_daemon):
    limit = 10
    d = start(start_daemon, max_connections_per_user=limit)
    tok = rtlib.mint(userId="crash")
    mine = [Client(d.port, tok) for _ in range(limit)]
    by_worker = {}
    for c in chaoslib.connections(d):
        by_worker.setdefault(c["worker"], 0)
        by_worker[c["worker"]] += 1
    assert set(by_worker) == {0, 1}, by_worker
    refused(d.port, tok)
    procs = rtlib.roles(d.proc.pid)
    victim = procs[rtlib.worker_title(0)]
    import os
    os.kill(victim, signal.SIGKILL)
    rtlib.wait_settled(d, NWORKERS)
    rtlib.wait_for(lambda: stats(d)["connections"] == by_worker[1], 10,
                   "worker 0's connections forgotten", tolerate=rtlib.TRANSIENT)
    # exactly worker 0's share is free again, host-wide
    fresh = [Client(d.port, tok) for _ in range(by_worker[0])]
    refused(d.port, tok)
    for c in fresh:
        c.close()
    for c in mine:
        c.ws.close_socket()


# ------------------------------------------------------------------ drain

def test_drain_closes_carry_retry_after_spread_in_time(own, start_daemon):
    r = start_daemon.redis()
    d = own(conf={"workers": "2", "redis_url": r.url, "canary_interval": "0",
                  "drain_period": "2s", "shutdown_timeout": "5s"})
    rtlib.wait_settled(d, 2)
    clients = [Client(d.port) for _ in range(40)]
    out = [None] * len(clients)
    t0 = time.monotonic()

    def watch(i, c):
        code, reason, _ = c.ws.recv_close(timeout=10)
        out[i] = (code, reason, time.monotonic() - t0)
        c.ws.close_socket()
    ths = [threading.Thread(target=watch, args=(i, c)) for i, c in enumerate(clients)]
    for t in ths:
        t.start()
    d.proc.send_signal(signal.SIGTERM)
    for t in ths:
        t.join(15)
    assert d.proc.wait(10) == 0
    ras = []
    for code, reason, _ in out:
        assert code == 1001, out
        m = re.fullmatch(rb"Server shutting down; retry-after=(\d+)", reason)
        assert m, reason
        assert len(reason) <= 123
        ras.append(int(m.group(1)))
    # uniform over [0, max(1 s, drain_period)]
    assert all(0 <= v <= 2000 for v in ras), ras
    assert len(set(ras)) >= 30, ras
    assert min(ras) < 700 and max(ras) > 1300, ras
    times = sorted(t for _, _, t in out)
    assert times[-1] - times[0] >= 1.0, times
    busiest = max(sum(1 for t in times if s <= t < s + 0.25) for s in times)
    assert busiest <= len(times) // 2, times


# ------------------------------------------------------- a reconnect storm

async def _ws_open(port, path="/ws"):
    """(status, headers, reader, writer) of one upgrade, raw asyncio."""
    import asyncio
    import base64
    import os
    r, w = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
             % (path, key)).encode())
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hd = {k.strip().lower(): v.strip() for k, _, v in
          (line.partition(":") for line in lines[1:] if line)}
    return int(lines[0].split()[1]), hd, r, w


async def _ws_close_frame(r):
    """Read server frames until the close: (code, reason)."""
    import struct
    while True:
        b0, b1 = await r.readexactly(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", await r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await r.readexactly(8))[0]
        payload = await r.readexactly(n)
        if b0 & 0x0f == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def test_reconnect_storm_to_a_rate_limited_node(own, start_daemon):
    """300 clients on node A; A's SIGTERM drains them over 1 s with
    retry-after; they reconnect to node B (max_handshake_rate 60/s, burst
    20) honouring retry-after and Retry-After with jitter.  B's accepts per
    second stay within the bucket, some 503s carried Retry-After, and every
    client is back within drain + backoff."""
    import asyncio
    import random
    r = start_daemon.redis()
    common = {"workers": "2", "redis_url": r.url, "canary_interval": "0"}
    a = own(conf=dict(common, drain_period="1s", shutdown_timeout="5s"))
    b = start_daemon(conf=dict(common, max_handshake_rate="60", max_handshake_burst="20"))
    rtlib.wait_settled(a, 2)
    rtlib.wait_settled(b, 2)
    n, rate, burst = 300, 60, 20
    accepts, refusals, back = [], [], []

    async def client(st):
        status, _, rd, wr = await _ws_open(a.port)
        assert status == 101
        st.append(1)
        code, reason = await asyncio.wait_for(_ws_close_frame(rd), 15)
        wr.close()
        assert code == 1001
        m = re.search(r"retry-after=(\d+)", reason)
        await asyncio.sleep(int(m.group(1)) / 1000 + random.random() * 0.5)
        while True:
            status, hd, rd, wr = await _ws_open(b.port)
            if status == 101:
                accepts.append(time.monotonic())
                back.append(wr)
                return
            assert status == 503, status
            refusals.append(hd.get("retry-after"))
            wr.close()
            await asyncio.sleep(int(hd["retry-after"]) + random.random() * 2)

    async def run():
        started = []
        tasks = [asyncio.ensure_future(client(started)) for _ in range(n)]
        while len(started) < n:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*tasks), 40)
        for wr in back:
            wr.close()
        assert a.proc.wait(10) == 0
        return t0

    t0 = rtlib.arun(run(), timeout=60)
    assert len(accepts) == n
    # the accept curve at B, per 100 ms since A's SIGTERM (pytest -s shows it)
    curve = [0] * (int((max(accepts) - t0) * 10) + 1)
    for t in accepts:
        curve[int((t - t0) * 10)] += 1
    print("storm: B accepts per 100 ms from SIGTERM:", curve,
          "503s:", len(refusals), "all back after %.2fs" % (max(accepts) - t0))
    # bounded by the bucket: in any 1 s window at most rate + burst (+ slack
    # for the window edges)
    ts = sorted(accepts)
    busiest = max(sum(1 for t in ts if s <= t < s + 1.0) for s in ts)
    assert busiest <= rate + burst + 5, busiest
    assert refusals and all(re.fullmatch(r"[1-9][0-9]*", v or "") for v in refusals)
    assert stats(b)["handshakes_throttled"] == len(refusals)
    # back within drain (1 s) + retry-after window (1 s) + n / rate and the backoff
    assert ts[-1] - t0 <= 1 + 1 + n / rate + 10, ts[-1] - t0
