"""What hostile clients, faults and limits broke (the hardening issue), each
against the real daemon and a real redis-server on loopback: per-user
subscription quotas, capped stats replies, a worker out of descriptors, TLS
lingering after an error reply, the master killed -9, tokens inside the
leeway, and an event larger than max_output_buffer to a fast reader."""
import os
import signal
import socket
import ssl
import stat
import time

import pytest

import chaoslib
import proclib
import rtlib


def start(start_daemon, workers=1, **conf):
    r = start_daemon.redis()
    c = {"workers": str(workers), "redis_url": r.url}
    c.update({k: str(v) for k, v in conf.items()})
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, workers)
    return d, r


# ------------------------------------------------------------ quotas

def test_one_user_cannot_take_the_channel_table(start_daemon):
    """max_channels_per_user bounds the channels one user holds over all
    its connections; other users keep subscribing, and the refusal is
    counted in stats and /metrics."""
    d, _ = start(start_daemon, workers=2, max_channels_per_user=6,
                 max_subscriptions=5)
    tok = rtlib.mint(userId="greedy")
    a = rtlib.Client(d.port, tok)
    b = rtlib.Client(d.port, tok)
    for i in range(5):
        a.subscribe("apps:junk-a-%d" % i)
    b.subscribe("apps:junk-b-0")
    m = b.reply({"type": "subscribe", "channel": "apps:junk-b-1"})
    assert m["type"] == "error", m
    assert m["message"] == "Too many channels for this user", m
    # a subscription already held costs nothing more (idempotent)
    assert a.reply({"type": "subscribe", "channel": "apps:junk-a-0"})["type"] == "subscribed"
    # others are not affected
    victim = rtlib.Client(d.port, rtlib.mint(userId="victim"))
    victim.subscribe("user:victim")
    victim.subscribe("announcements")
    s = chaoslib.wait_counter(d, "user_limited", 1)
    assert s["user_limited"] == 1, s
    m = chaoslib.metrics(d.port)
    assert m["realtimed_user_limited_total"] == 1, m
    # an unsubscribe, or a closed connection, gives the room back
    assert a.reply({"type": "unsubscribe", "channel": "apps:junk-a-0"})["type"] == "unsubscribed"
    b.subscribe("apps:junk-b-1")
    a.close()
    rtlib.wait_for(lambda: chaoslib.stats(d)["connections"] == 2, 5, "a gone")
    for i in range(2, 5):
        b.subscribe("apps:junk-b-%d" % i)
    m = b.reply({"type": "subscribe", "channel": "apps:junk-b-5"})
    assert m["message"] == "Too many subscriptions", \
        "the per-connection limit still applies first: %r" % m


def test_one_user_on_one_channel_costs_one_channel(start_daemon):
    """Many connections of one user (a shared service token, a user's tabs)
    on one channel count once; handing a channel from one connection to
    another does not make it free."""
    d, _ = start(start_daemon, max_channels_per_user=2)
    tok = rtlib.mint(userId="service")
    many = [rtlib.Client(d.port, tok) for _ in range(30)]
    for c in many:
        c.subscribe("apps:shared")
    a, b = many[0], many[1]
    b.subscribe("apps:x")
    m = b.reply({"type": "subscribe", "channel": "apps:y"})
    assert m.get("message") == "Too many channels for this user", m
    # apps:shared stays counted while any connection of the user holds it
    for c in many[2:]:
        assert c.reply({"type": "unsubscribe", "channel": "apps:shared"})["type"] == "unsubscribed"
    assert a.reply({"type": "unsubscribe", "channel": "apps:shared"})["type"] == "unsubscribed"
    m = a.reply({"type": "subscribe", "channel": "apps:y"})
    assert m.get("message") == "Too many channels for this user", m
    # the last one lets go: the channel is the user's no more
    assert b.reply({"type": "unsubscribe", "channel": "apps:shared"})["type"] == "unsubscribed"
    a.subscribe("apps:y")


def test_stats_reply_lists_the_most_subscribed_channels_only(start_daemon):
    """stats_channels caps connectionsByChannel: the N most subscribed
    channels, most first; the totals still count everything."""
    d, _ = start(start_daemon, stats_channels=2)
    admin = rtlib.Client(d.port, rtlib.mint(userId="ops", role="admin"))
    clients = []
    # apps:c3 has 3 subscribers, apps:c2 two, apps:c1 and apps:c0 one
    for n in range(3):
        c = rtlib.Client(d.port, rtlib.mint(userId="u%d" % n))
        clients.append(c)
        c.subscribe("apps:c3")
        if n < 2:
            c.subscribe("apps:c2")
    clients[0].subscribe("apps:c1")
    clients[1].subscribe("apps:c0")
    m = admin.reply({"type": "stats"})
    assert m["type"] == "stats", m
    by = m["data"]["connectionsByChannel"]
    assert list(by.items()) == [("apps:c3", 3), ("apps:c2", 2)], by
    assert m["data"]["totalSubscriptions"] == 7, m


# --------------------------------------------------- out of descriptors

def _nofile_wrapper(tmp_path, limit):
    w = tmp_path / "realtimed-nofile"
    w.write_text("#!/bin/sh\nexec prlimit --nofile=%d:%d -- %s \"$@\"\n"
                 % (limit, limit, rtlib.realtimed_bin()))
    w.chmod(w.stat().st_mode | stat.S_IXUSR)
    return str(w)


def _upgrade(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    return s


def test_worker_out_of_descriptors_pauses_and_recovers(start_daemon, tmp_path,
                                                       monkeypatch):
    """With fewer descriptors than clients, accept() fails with EMFILE: the
    worker neither spins nor floods its log (one line a second), counts the
    failures, and serves the waiting clients once descriptors free up."""
    monkeypatch.setattr(rtlib, "realtimed_bin",
                        lambda w=_nofile_wrapper(tmp_path, 64): w)
    d, _ = start(start_daemon)
    monkeypatch.undo()      # realtimectl lives beside the real binary
    socks = []
    for _ in range(90):
        try:
            socks.append(_upgrade(d.port))
        except OSError:
            break
    time.sleep(2.5)
    s = chaoslib.wait_counter(d, "accept_errors", 1)
    lines = [ln for ln in d.log().splitlines() if "accept() failed" in ln]
    assert 1 <= len(lines) <= 6, "%d accept() log lines in 2.5 s" % len(lines)
    worker = rtlib.roles(d.proc.pid)["realtimed: worker 0"]
    cpu0 = _cpu_seconds(worker)
    time.sleep(1.0)
    assert _cpu_seconds(worker) - cpu0 < 0.5, "the worker spins on accept()"
    for x in socks:
        x.close()
    # the clients that waited in the listen queue, and new ones, are served
    c = rtlib.wait_for(lambda: _try_client(d.port), 10, "a client served again")
    assert c.alive()
    assert s["accept_errors"] >= 1


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _try_client(port):
    try:
        return rtlib.Client(port, rtlib.mint())
    except (OSError, AssertionError, rtlib.ServerClosed):
        return None


# ----------------------------------------------------------- TLS linger

def test_wss_431_is_read_before_the_close(start_daemon, tmp_path):
    """Over wss a request head over max_header_size gets 431, then
    close_notify, and the server reads on until EOF: a client still sending
    its head is not reset before it gets to read the 431 (the connection
    lingers and drains, as plain connections do)."""
    import tlslib
    pair = tlslib.make_certs(str(tmp_path / "certs"))
    conf = tlslib.tls_conf(pair, max_header_size="8k")
    d, _ = start(start_daemon, **conf)
    tport = tlslib.tls_port(d)
    ctx = tlslib.client_ctx(pair.ca)
    head = (b"GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 16384)
    for attempt in range(10):
        raw = socket.create_connection(("127.0.0.1", tport), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(head)
        # the 431 is on its way; more of the head follows, as a client
        # that does not read while it sends would: it must not make the
        # server's close a reset that destroys the 431 unread
        time.sleep(0.2)
        try:
            for _ in range(3):
                s.sendall(b"b" * 16384)
                time.sleep(0.05)
        except OSError as e:
            pytest.fail("attempt %d: the server reset the connection: %r" % (attempt, e))
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ssl.SSLError, OSError) as e:
            pytest.fail("attempt %d: %r after %r" % (attempt, e, got[:40]))
        finally:
            s.close()
        assert got.startswith(b"HTTP/1.1 431"), (attempt, got[:80])


# ------------------------------------------------------- master -9

def test_master_killed_closes_clients_with_1001(start_daemon, tmp_path):
    """The master killed -9: the workers close every client with 1001
    (browsers would see 1006 for a bare FIN) and exit."""
    r = start_daemon.redis()
    # not the fixture's daemon: this one is meant to die
    d = rtlib.Daemon(str(tmp_path), "killed", {"workers": "2", "redis_url": r.url})
    workers = []
    try:
        d.wait_ready()
        rtlib.wait_settled(d, 2)
        clients = [rtlib.Client(d.port, rtlib.mint(userId="u%d" % i))
                   for i in range(4)]
        workers += [p for t, p in rtlib.roles(d.proc.pid).items() if "worker" in t]
        assert len(workers) == 2, workers
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait(5)
        for c in clients:
            code, reason, _ = c.ws.recv_close(timeout=5)
            assert code == 1001, (code, reason)
        for pid in workers:
            rtlib.wait_for(lambda: _state(pid) == "Z", 10, "worker %d gone" % pid)
    finally:
        if d.alive():
            d.proc.kill()
            d.proc.wait(5)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


# ------------------------------------------------------ token leeway

def test_token_inside_the_leeway_lives_it_out(start_daemon):
    """A token accepted within jwt_leeway after exp is not closed at once
    as expired: it is closed 'Token expired' when the leeway runs out."""
    d, _ = start(start_daemon, jwt_leeway="3s")
    c = rtlib.Client(d.port, rtlib.mint(exp_in=-1))
    t0 = time.monotonic()
    time.sleep(1.0)
    assert c.alive(), "closed inside the leeway"
    code, reason, seen = c.ws.recv_close(timeout=6)
    assert (code, reason) == (1008, b"Token expired"), (code, reason, seen)
    assert any(b'"Token expired"' in m for m in seen), seen
    assert time.monotonic() - t0 >= 1.0


# ------------------------------------------------- one big event

def test_event_over_max_output_buffer_reaches_a_fast_reader(start_daemon):
    """A frame alone is never a slow consumer: an event larger than
    max_output_buffer (under max_event_size) reaches a subscriber with
    nothing queued, which stays open."""
    d, r = start(start_daemon, max_output_buffer="16k")
    c = rtlib.Client(d.port, rtlib.mint())
    c.subscribe("apps:big")
    payload = '{"blob":"%s"}' % ("x" * 100000)
    proclib.publish(r.port, "apps:big", payload)
    m = c.ws.recv_json(timeout=5)
    assert m["type"] == "event" and len(m["data"]["blob"]) == 100000, m["type"]
    assert c.alive()
    assert chaoslib.stats(d)["slow_consumer_closes"] == 0


# ------------------------------------------------------- default limits

def test_default_burst_lets_a_client_take_all_its_subscriptions_at_once(start_daemon):
    """With the default limits, a client that subscribes to
    max_subscriptions channels right after connecting, then pings, is
    served, not closed for flooding (the burst is max_subscriptions + 20)."""
    d, _ = start(start_daemon)
    c = rtlib.Client(d.port, rtlib.mint())
    for i in range(100):
        c.ws.send_json({"type": "subscribe", "channel": "apps:a%d" % i})
    c.ws.send_json({"type": "ping"})
    got = [c.ws.recv_json()["type"] for _ in range(101)]
    assert got == ["subscribed"] * 100 + ["pong"], got[-3:]
    assert "client_messages_burst" not in d.log()


def test_burst_below_max_subscriptions_is_warned_at_load(tmp_path):
    import subprocess
    conf = tmp_path / "r.conf"
    conf.write_text("listen 127.0.0.1:%d\njwt_secret %s\nclient_messages_burst 50\n"
                    % (rtlib.free_port(), rtlib.SECRET))
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(conf)],
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0, out
    assert "client_messages_burst 50 is below max_subscriptions + 20 (120)" in out, out
