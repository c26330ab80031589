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
    mine = [Client(d.port, tok) for _ in range(limit)]
    # both workers hold some: a limit per worker would let more in
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
