"""Cluster positions (PROTOCOL.md "Positions and recovery", "Cluster
positions"): FCALL realtimed_publish gives one position per channel for
every node on one Redis; a client recovers on any node, after a daemon
restart and after a bridge kill, with the events read from Redis.  Real
redis-server, two real daemons, real clients; every wait bounded."""
import json
import os
import signal
import socket
import threading
import time

import proclib
import rtlib
from rtlib import Client, wait_for


def tok(user="u1"):
    return rtlib.mint({"userId": user})


def node(start_daemon, r, **conf):
    c = {"workers": "1", "redis_url": r.url, "canary_interval": "0"}
    c.update(conf)
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, 1)
    wait_for(lambda: bstats(d)["cluster_function"] == 1, 10, "library loaded")
    return d


bstats = rtlib.bridge_stats


def sub(c, ch, since=None):
    m = {"type": "subscribe", "channel": ch}
    if since is not None:
        m["since"] = since
    return c.reply(m)


def fcall(r, ch, data):
    rep = r.command("FCALL", "realtimed_publish", "1", ch, data)
    assert rep.startswith(b":"), rep
    return int(rep[1:].strip())


def fcall_many(r, ch, a, b, pad=None):
    s = __import__("socket").create_connection(("127.0.0.1", r.port), timeout=10)
    data = [{"n": i} if pad is None else {"n": i, "p": pad} for i in range(a, b)]
    try:
        s.sendall(b"".join(proclib.resp_command("FCALL", "realtimed_publish", "1", ch,
                                                json.dumps(x)) for x in data))
        buf = b""
        while buf.count(b"\r\n") < b - a:
            buf += s.recv(65536)
        offs = [int(l[1:]) for l in buf.split(b"\r\n") if l.startswith(b":")]
        assert len(offs) == b - a, buf[:200]
        return offs
    finally:
        s.close()


def events(c, n, timeout=10):
    evs = list(c.events_until(n, timeout))
    c.events.clear()
    return evs


def test_two_nodes_deliver_the_same_positions(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    fcall(r, "apps:created", "{}")		# the channel has a cluster position
    a, b = Client(d1.port, tok()), Client(d2.port, tok())
    ma, mb = sub(a, "apps:created"), sub(b, "apps:created")
    assert (ma["epoch"], ma["offset"]) == (mb["epoch"], mb["offset"]) and ma["offset"] == 1
    assert "-" not in ma["epoch"] and 0 < len(ma["epoch"]) <= 32
    assert fcall_many(r, "apps:created", 2, 7) == [2, 3, 4, 5, 6]
    ea, eb = events(a, 5), events(b, 5)
    key = [(e["offset"], e["epoch"], e["timestamp"], e["data"]) for e in ea]
    assert key == [(e["offset"], e["epoch"], e["timestamp"], e["data"]) for e in eb]
    assert [e["offset"] for e in ea] == [2, 3, 4, 5, 6]
    assert all(e["epoch"] == ma["epoch"] for e in ea)
    assert bstats(d1)["cluster_events"] >= 6 and bstats(d2)["cluster_events"] >= 6


def test_recover_on_the_other_node_then_live(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    fcall(r, "deployments:status", '{"n":0}')
    a = Client(d1.port, tok())
    m = sub(a, "deployments:status")
    epoch = m["epoch"]
    fcall_many(r, "deployments:status", 1, 3)
    assert [e["offset"] for e in events(a, 2)] == [2, 3]
    a.close()
    fcall_many(r, "deployments:status", 3, 8)	# missed: offsets 4..8
    b = Client(d2.port, tok())
    m = sub(b, "deployments:status", {"epoch": epoch, "offset": 3})
    assert m["recovered"] is True and (m["epoch"], m["offset"]) == (epoch, 8), m
    fcall_many(r, "deployments:status", 8, 10)
    evs = events(b, 7)
    assert [e["offset"] for e in evs] == list(range(4, 11)), evs
    assert [e["data"]["n"] for e in evs] == list(range(3, 10))


def test_a_node_that_never_saw_the_channel_gives_redis_position(start_daemon):
    r = start_daemon.redis()
    d1 = node(start_daemon, r)			# loads the library
    for i in range(4):
        fcall(r, "storage:updated", json.dumps({"n": i}))
    epoch = r.command("HGET", "realtimed:{storage:updated}:m", "e").split(b"\r\n")[1].decode()
    d = node(start_daemon, r)			# started after the events: holds nothing
    c = Client(d.port, tok())
    m = sub(c, "storage:updated")
    assert (m["epoch"], m["offset"]) == (epoch, 4), m
    fcall(r, "storage:updated", "{}")
    assert c.next_event()["offset"] == 5
    # and recovery straight from Redis on a node that holds nothing of it
    c2 = Client(d.port, tok("u2"))
    m2 = sub(c2, "storage:updated", {"epoch": epoch, "offset": 1})
    assert m2["recovered"] is True and m2["offset"] == 5
    assert [e["offset"] for e in events(c2, 4)] == [2, 3, 4, 5]
    assert bstats(d)["cluster_reads"] >= 1 and d1.proc.poll() is None


def test_a_since_offset_past_int64_is_in_the_future(start_daemon):
    r = start_daemon.redis()
    node(start_daemon, r)			# loads the library
    for i in range(3):
        fcall(r, "storage:deleted", json.dumps({"n": i}))
    epoch = r.command("HGET", "realtimed:{storage:deleted}:m", "e").split(b"\r\n")[1].decode()
    d = node(start_daemon, r)			# holds nothing: asks Redis
    for user, off in (("u1", 2 ** 64 - 1), ("u2", 2 ** 63), ("u3", 10 ** 30)):
        c = Client(d.port, tok(user))
        m = sub(c, "storage:deleted", {"epoch": epoch, "offset": off})
        assert m["type"] == "subscribed" and m["recovered"] is False, (off, m)
        assert (m["epoch"], m["offset"]) == (epoch, 3), m
        assert c.no_event(0.2)
        c.close()


def test_daemon_restart_cluster_positions_survive(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r)
    fcall(r, "apps:updated", "{}")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:updated")["epoch"]
    c.close()
    d.stop()
    assert d.proc.returncode == 0
    fcall_many(r, "apps:updated", 1, 4)		# published while no node runs
    d.respawn()
    d.deaths.pop()
    rtlib.wait_settled(d, 1)
    c2 = Client(d.port, tok())
    m = sub(c2, "apps:updated", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is True and (m["epoch"], m["offset"]) == (epoch, 4), m
    assert [e["data"]["n"] for e in events(c2, 3)] == [1, 2, 3]


def test_bridge_kill_then_recovery_from_redis(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r)
    fcall(r, "apps:deployed", "{}")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:deployed")["epoch"]
    c.close()
    fcall_many(r, "apps:deployed", 1, 6)
    pid = rtlib.roles(d.proc.pid)[rtlib.BRIDGE]
    os.kill(pid, signal.SIGKILL)
    # asked at once: the new bridge answers once it has Redis, from Redis
    c2 = Client(d.port, tok())
    m = sub(c2, "apps:deployed", {"epoch": epoch, "offset": 2})
    assert m["recovered"] is True and m["offset"] == 6, m
    assert [e["offset"] for e in events(c2, 4)] == [3, 4, 5, 6]
    wait_for(lambda: rtlib.roles(d.proc.pid).get(rtlib.BRIDGE) not in (None, pid), 10)
    d.deaths.clear()


def test_redis_lost_the_history_new_epoch(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r)
    fcall(r, "apps:status", "{}")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:status")["epoch"]
    assert r.command("DEL", "realtimed:{apps:status}:m", "realtimed:{apps:status}:h") == b":2\r\n"
    assert fcall(r, "apps:status", "{}") == 1		# a new history
    ev = c.next_event()
    assert ev["offset"] == 1 and ev["epoch"] != epoch
    c2 = Client(d.port, tok("u2"))
    m = sub(c2, "apps:status", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and (m["epoch"], m["offset"]) == (ev["epoch"], 1), m


NS_SMALL = "\nnamespace ".join(["apps:* authenticated history=3",
                                 "storage:* authenticated history=100 history_ttl=1s"])


def test_eviction_by_count_and_by_ttl(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r, namespace=NS_SMALL)
    fcall(r, "apps:x", "{}")
    epoch = sub(Client(d.port, tok()), "apps:x")["epoch"]
    fcall_many(r, "apps:x", 1, 6)			# offsets 2..6, Redis keeps 4..6
    assert r.command("XLEN", "realtimed:{apps:x}:h") == b":3\r\n"
    d2 = node(start_daemon, r, namespace=NS_SMALL)
    c = Client(d2.port, tok())			# a node holding nothing: Redis answers
    m = sub(c, "apps:x", {"epoch": epoch, "offset": 2})
    assert m["recovered"] is False and m["offset"] == 6, m
    m = sub(c, "apps:x", {"epoch": epoch, "offset": 3})
    assert m["recovered"] is True and [e["offset"] for e in events(c, 3)] == [4, 5, 6]
    fcall(r, "storage:y", "{}")
    c3 = Client(d2.port, tok("u3"))
    ep2 = sub(c3, "storage:y")["epoch"]
    fcall(r, "storage:y", "{}")
    time.sleep(1.3)				# the event ages past history_ttl
    c4 = Client(d.port, tok("u4"))
    m = sub(c4, "storage:y", {"epoch": ep2, "offset": 1})
    assert m["recovered"] is False and m["offset"] == 2, m


def test_event_over_max_event_size_is_a_hole_the_position_goes_on(start_daemon):
    """An FCALL event this node cannot deliver (over max_event_size) still
    took its offset in Redis: live subscribers see the hole, a `since`
    before it is not recovered, and reading it back from Redis must not
    move the channel's position back to it."""
    r = start_daemon.redis()
    d = node(start_daemon, r, max_event_size="1k")
    fcall(r, "apps:bf", '{"n":1}')
    a = Client(d.port, tok())
    epoch = sub(a, "apps:bf")["epoch"]
    b = Client(d.port, tok("u9"))
    sub(b, "apps:bf")		# two here: the worker keeps the position itself
    assert fcall(r, "apps:bf", json.dumps({"n": 2, "p": "x" * 2000})) == 2
    wait_for(lambda: bstats(d)["events_too_large"] == 1, 10, "the big one counted")
    # the position is past the hole at once, as Redis has it
    assert sub(Client(d.port, tok("u8")), "apps:bf")["offset"] == 2
    assert fcall_many(r, "apps:bf", 3, 5) == [3, 4]
    assert [e["offset"] for e in events(a, 2)] == [3, 4]
    wait_for(lambda: bstats(d)["events_too_large"] == 1, 10, "the big one counted")
    # since 1 needs the dropped event: read from Redis, not recovered
    m = sub(Client(d.port, tok("u2")), "apps:bf", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and (m["epoch"], m["offset"]) == (epoch, 4), m
    assert bstats(d)["cluster_reads"] >= 1
    # the position stayed at 4: every since after the hole recovers
    for since, want in ((2, [3, 4]), (3, [4]), (4, [])):
        c = Client(d.port, tok("u3"))
        m = sub(c, "apps:bf", {"epoch": epoch, "offset": since})
        assert m["recovered"] is True and m["offset"] == 4, (since, m)
        if want:
            assert [e["offset"] for e in events(c, len(want))] == want
        c.close()
    assert sub(Client(d.port, tok("u4")), "apps:bf")["offset"] == 4
    assert fcall(r, "apps:bf", '{"n":5}') == 5
    assert [e["offset"] for e in events(a, 1)] == [5]
    c = Client(d.port, tok("u5"))
    m = sub(c, "apps:bf", {"epoch": epoch, "offset": 3})
    assert m["recovered"] is True and [e["offset"] for e in events(c, 2)] == [4, 5]
    # a node that never saw the channel reads it all from Redis the same way
    d2 = node(start_daemon, r, max_event_size="1k")
    m = sub(Client(d2.port, tok()), "apps:bf", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and m["offset"] == 5, m
    c = Client(d2.port, tok("u2"))
    m = sub(c, "apps:bf", {"epoch": epoch, "offset": 2})
    assert m["recovered"] is True and m["offset"] == 5, m
    assert [e["offset"] for e in events(c, 3)] == [3, 4, 5]


def test_replay_meets_live_events_at_1000_per_second(start_daemon):
    r = start_daemon.redis()
    big = "apps:* authenticated history=5000"
    d1, d2 = node(start_daemon, r, namespace=big), node(start_daemon, r, namespace=big)
    fcall(r, "apps:live", "{}")
    epoch = sub(Client(d1.port, tok()), "apps:live")["epoch"]
    fcall_many(r, "apps:live", 1, 60)		# up to offset 60
    stop = threading.Event()
    top = [60]

    def publisher():
        n = 60
        while not stop.is_set() and n < 3000:
            top[0] = fcall_many(r, "apps:live", n, n + 20)[-1]
            n += 20
            time.sleep(0.01)
    t = threading.Thread(target=publisher)
    t.start()
    try:
        time.sleep(0.2)
        c = Client(d2.port, tok("u2"))		# recovers on the other node
        m = sub(c, "apps:live", {"epoch": epoch, "offset": 10})
        assert m["recovered"] is True, m
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(10)
    want = top[0] - 10
    evs = events(c, want, 15)
    offs = [e["offset"] for e in evs]
    assert offs == list(range(11, top[0] + 1)), (offs[:5], offs[-5:], top[0])


def test_envelope_channel_is_not_a_raw_channel(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r)
    c = Client(d.port, tok())
    m = sub(c, "apps:created")
    # a raw event that looks like an envelope is a raw event
    proclib.publish(r.port, "apps:created", 'cAbC 5 1700000000000\n{"x":1}')
    ev = c.next_event()
    assert ev["data"] == 'cAbC 5 1700000000000\n{"x":1}' and "-" in ev["epoch"], ev
    # garbage on the envelope channel: counted, dropped
    proclib.publish(r.port, "realtimed:e:{apps:created}", "not an envelope")
    proclib.publish(r.port, "realtimed:e:{apps:created}", "cAbC x 1\n{}")
    wait_for(lambda: bstats(d)["cluster_malformed"] >= 2, 5, "malformed counted")
    assert c.no_event(0.3)
    assert "ERR realtimed:" in r.command("FCALL", "realtimed_publish", "2", "a:b", "c:d",
                                         "{}").decode()
    assert "invalid channel" in r.command("FCALL", "realtimed_publish", "1", "bad ch",
                                          "{}").decode()
    assert "ERR realtimed:" in r.command("FCALL", "realtimed_publish", "1", "apps:a").decode()
    assert health_ok(d)


def health_ok(d):
    return rtlib.health(d.port)[0] == 200


def test_admin_publish_goes_through_the_function(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r)
    fcall(r, "apps:created", "{}")
    c = Client(d.port, tok())
    m = sub(c, "apps:created")
    rep = rtlib.admin(d.conf["admin_socket"], 'publish apps:created {"via":"admin"}')
    assert rep["ok"] is True and rep["offset"] == 2 and rep["receivers"] >= 1, rep
    ev = c.next_event()
    assert (ev["offset"], ev["epoch"], ev["data"]) == (2, m["epoch"], {"via": "admin"})


def test_replays_waiting_for_one_read_are_given_as_the_worker_has_room(start_daemon):
    """40 clients on a node that holds nothing of a channel ask at once for
    its 60 events of 4 KB (9.6 MB of replays) while Redis is paused: all
    wait behind one read.  When Redis answers they are not all staged for
    the worker at once (a 64k queue): the bridge gives each as the worker
    has room, so what it holds for the worker stays far below the replays'
    total, and every client gets its whole replay, then live events."""
    r = start_daemon.redis()
    ns = "storage:* authenticated history=60"
    node(start_daemon, r, namespace=ns)		# loads the library
    pad = "w" * 4000
    assert fcall_many(r, "storage:big", 1, 61, pad) == list(range(1, 61))
    epoch = r.command("HGET", "realtimed:{storage:big}:m", "e").split(b"\r\n")[1].decode()
    d = node(start_daemon, r, namespace=ns, ipc_max_buffer="64k")	# holds nothing
    cs = [Client(d.port, tok("b%d" % i)) for i in range(40)]
    before = bstats(d)
    os.kill(r.proc.pid, signal.SIGSTOP)
    try:
        for x in cs:
            x.ws.sock.sendall(rtlib.client_frame(0x1, json.dumps(
                {"type": "subscribe", "channel": "storage:big",
                 "since": {"epoch": epoch, "offset": 0}}).encode()))
        time.sleep(0.5)			# every request reaches the bridge
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    for i, x in enumerate(cs):
        m = x.ws.recv_json(20)
        assert m["type"] == "subscribed" and m["recovered"] is True, (i, m)
        evs = proclib.take_events(x, 60, timeout=20)
        assert [e["offset"] for e in evs] == list(range(1, 61)), i
        assert all(e["data"]["p"] == pad for e in evs)
    after = bstats(d)
    assert after["cluster_reads"] == before["cluster_reads"] + 1, after
    assert after["ipc_drops"] == before["ipc_drops"]
    assert after["ipc_request_waits"] > before["ipc_request_waits"], after
    # 64k and one answer (a replay of 240 KB), not 40 of them
    assert 64 * 1024 < after["ipc_buffer_peak"] < 600 * 1024, after
    fcall(r, "storage:big", json.dumps({"n": 61, "p": ""}))
    for x in cs:
        assert x.next_event(10)["offset"] == 61
        x.close()


def test_a_function_load_refused_for_now_is_tried_again(start_daemon):
    """FUNCTION LOAD refused for a passing reason (here NOAUTH: Redis asked
    for a password the node does not have, then no longer did) is tried
    again: realtimed_publish comes back without the connection dropping."""
    r = start_daemon.redis()
    d = node(start_daemon, r)
    assert r.command("CONFIG", "SET", "requirepass", "tmp-pass-0123").startswith(b"+OK")
    try:
        # every connection of the node's goes: they come back unauthenticated
        r.command("AUTH", "tmp-pass-0123")
        s = socket.create_connection(("127.0.0.1", r.port), timeout=2)
        try:
            s.sendall(proclib.resp_command("AUTH", "tmp-pass-0123") +
                      proclib.resp_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") +
                      proclib.resp_command("CLIENT", "KILL", "TYPE", "pubsub"))
            time.sleep(0.3)
            s.recv(4096)
        finally:
            s.close()
        wait_for(lambda: bstats(d)["cluster_function"] == 0, 10, "library refused (NOAUTH)")
        time.sleep(1.5)
    finally:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=2)
        try:
            s.sendall(proclib.resp_command("AUTH", "tmp-pass-0123") +
                      proclib.resp_command("CONFIG", "SET", "requirepass", ""))
            time.sleep(0.3)
            assert b"+OK" in s.recv(4096)
        finally:
            s.close()
    wait_for(lambda: bstats(d)["cluster_function"] == 1, 40, "library loaded again")
    assert b"realtimed" in r.command("FUNCTION", "LIST")
