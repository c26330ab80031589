"""redis_subscribe on_demand: the bridge subscribes to each channel by name
when the first subscriber on the host appears and unsubscribes when the
last one has left, so Redis sends this node only what someone on it wants;
"subscribed" comes once Redis has confirmed the subscription.  Real
redis-server (PUBSUB CHANNELS shows what the bridge holds), real daemons,
every wait bounded."""
import os
import signal

import rtlib
from rtlib import Client, wait_for

TOKEN = None


def tok(user="od"):
    return rtlib.mint({"userId": user})


def start(start_daemon, workers=2, **conf):
    r = start_daemon.redis()
    c = {"workers": str(workers), "redis_url": r.url, "redis_subscribe": "on_demand",
         "canary_interval": "500ms",
         "namespace": "apps:* authenticated\nnamespace user:{userId} self history=100"}
    c.update(conf)
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, workers)
    return d, r


def channels(r):
    """PUBSUB CHANNELS: the exact-name subscriptions Redis holds."""
    rep = r.command("PUBSUB", "CHANNELS").split(b"\r\n")
    return {x.decode() for x in rep[2::2] if x}


def numsub(r, ch):
    rep = r.command("PUBSUB", "NUMSUB", ch).split(b"\r\n")
    return int(rep[3][1:])


bstats = rtlib.bridge_stats


def publish(r, ch, data):
    rep = r.command("PUBLISH", ch, data)
    assert rep.startswith(b":"), rep
    return int(rep[1:].strip())


def on_worker(d, i, user="od"):
    """A client on worker i (connections go round the workers' accepts)."""
    for _ in range(40):
        c = Client(d.port, tok(user))
        ws = rtlib.admin(d.conf["admin_socket"], "connections")
        mine = [x for x in ws["connections"] if x["id"] == c.id]
        if mine and mine[0]["worker"] == i:
            return c
        c.close()
    raise AssertionError("no connection landed on worker %d" % i)


def test_only_wanted_channels_are_subscribed_and_left_when_empty(start_daemon):
    d, r = start(start_daemon)
    assert not any(x.startswith("apps:") for x in channels(r))
    a, b = on_worker(d, 0), on_worker(d, 1)
    a.subscribe("apps:one")
    b.subscribe("apps:one")
    assert "apps:one" in channels(r)
    assert numsub(r, "apps:one") == 1          # one bridge, however many clients
    assert publish(r, "apps:one", '{"n":1}') == 1
    assert a.next_event()["data"] == {"n": 1}
    assert b.next_event()["data"] == {"n": 1}
    # nobody wants apps:two: Redis does not send it here at all
    assert publish(r, "apps:two", '{"n":2}') == 0
    assert a.reply({"type": "unsubscribe", "channel": "apps:one"})["type"] == "unsubscribed"
    assert publish(r, "apps:one", '{"n":3}') == 1          # b still there
    assert b.next_event()["data"] == {"n": 3}
    assert a.no_event(0.3)
    b.close()
    wait_for(lambda: "apps:one" not in channels(r), 10, "unsubscribed once empty")
    s = bstats(d)
    assert s["redis_channels"] == 0
    assert s["redis_subscribes"] >= 1 and s["redis_unsubscribes"] >= 1
    # wanted again: subscribed again
    a.subscribe("apps:one")
    assert publish(r, "apps:one", '{"n":4}') == 1
    assert a.next_event()["data"] == {"n": 4}
    m = rtlib.http_get(d.port, "/metrics")[2].decode()
    assert 'realtimed_redis_subscriptions_total{op="unsubscribe"}' in m
    assert "realtimed_redis_channels 1" in m


def test_an_event_right_after_subscribed_is_never_missed(start_daemon):
    d, r = start(start_daemon, workers=1)
    c = Client(d.port, tok())
    for i in range(60):
        ch = "apps:fresh-%d" % i
        c.subscribe(ch)
        # the Redis subscription is there before the answer
        assert publish(r, ch, '{"i":%d}' % i) == 1, ch
        assert c.next_event()["data"] == {"i": i}
    # and with history (the answer carries the position)
    m = c.reply({"type": "subscribe", "channel": "user:od"})
    assert m["type"] == "subscribed" and "offset" in m, m
    assert publish(r, "user:od", '{"h":1}') == 1
    ev = c.next_event()
    assert ev["data"] == {"h": 1} and ev["offset"] == m["offset"] + 1


def test_events_missed_while_unsubscribed_are_never_recovered(start_daemon):
    """Once the last subscriber left, the node no longer hears the channel:
    what is published then never reaches it.  Subscribed again, the channel
    is in a new epoch (PROTOCOL.md: events may have been missed), so a
    since from before is recovered:false, never recovered:true without the
    missed events, and no offset is given to two events."""
    d, r = start(start_daemon, workers=1)
    ch = "user:od"                              # history=100
    c = Client(d.port, tok())
    m = c.reply({"type": "subscribe", "channel": ch})
    epoch = m["epoch"]
    for i in range(1, 4):
        assert publish(r, ch, '{"n":%d}' % i) == 1
    evs = [c.next_event() for _ in range(3)]
    assert [e["offset"] for e in evs] == [1, 2, 3]
    assert {e["epoch"] for e in evs} == {epoch}
    c.close()
    wait_for(lambda: ch not in channels(r), 10, "unsubscribed once empty")
    for i in range(4, 7):
        assert publish(r, ch, '{"n":%d}' % i) == 0     # nobody hears these
    c = Client(d.port, tok())
    m = c.reply({"type": "subscribe", "channel": ch,
                 "since": {"epoch": epoch, "offset": 3}})
    assert m["type"] == "subscribed", m
    assert m["recovered"] is False and m["epoch"] != epoch, m
    assert publish(r, ch, '{"n":7}') == 1
    ev = c.next_event()
    assert ev["data"] == {"n": 7} and ev["epoch"] == m["epoch"], ev
    assert ev["offset"] == m["offset"] + 1, (m, ev)
    # a plain subscribe elsewhere gets the new position, not the old one
    c2 = Client(d.port, tok())
    m2 = c2.reply({"type": "subscribe", "channel": ch})
    assert (m2["epoch"], m2["offset"]) == (ev["epoch"], ev["offset"]), m2


def test_resubscribed_after_losing_redis_and_after_a_bridge_restart(start_daemon):
    d, r = start(start_daemon)
    a, b = on_worker(d, 0), on_worker(d, 1)
    a.subscribe("apps:x")
    b.subscribe("apps:y")
    # the subscribe connection dropped by Redis: every channel again
    r.command("CLIENT", "KILL", "TYPE", "pubsub")
    wait_for(lambda: {"apps:x", "apps:y"} <= channels(r) and
             rtlib.health(d.port)[0] == 200, 10, "resubscribed after the kill")
    assert publish(r, "apps:x", '{"k":1}') == 1
    assert a.next_event()["data"] == {"k": 1}
    # a new bridge knows the host's channels from the shared registry
    bridge = rtlib.roles(d.proc.pid)["realtimed: bridge"]
    os.kill(bridge, signal.SIGKILL)
    wait_for(lambda: rtlib.roles(d.proc.pid).get("realtimed: bridge") not in (None, bridge) and
             rtlib.health(d.port)[0] == 200 and {"apps:x", "apps:y"} <= channels(r),
             15, "a new bridge, subscribed to what the clients hold")
    assert publish(r, "apps:y", '{"k":2}') == 1
    assert b.next_event()["data"] == {"k": 2}
    assert a.alive() and b.alive()


def test_redis_subscriptions_max_refuses_and_counts(start_daemon):
    d, r = start(start_daemon, workers=1, redis_subscriptions_max="16")
    c = Client(d.port, tok())
    for i in range(16):
        c.subscribe("apps:n%d" % i)
    m = c.reply({"type": "subscribe", "channel": "apps:over"})
    assert m["type"] == "error" and m["message"] == "Server busy, try again later", m
    assert "apps:over" not in channels(r)
    assert bstats(d)["redis_subscriptions_full"] == 1
    # the refused one is not held: after room is made it can be had
    assert c.reply({"type": "unsubscribe", "channel": "apps:n0"})["type"] == "unsubscribed"
    wait_for(lambda: "apps:n0" not in channels(r), 10, "room made")
    c.subscribe("apps:over")
    assert publish(r, "apps:over", '{"ok":1}') == 1
    assert c.next_event()["data"] == {"ok": 1}
    assert c.alive()


def test_bad_redis_subscribe_is_refused_by_t(tmp_path):
    import subprocess
    conf = tmp_path / "x.conf"
    conf.write_text("jwt_algorithm HS256\njwt_secret %s\nredis_subscribe sometimes\n"
                    % rtlib.SECRET)
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "x.conf:3" in p.stderr and "patterns or on_demand" in p.stderr, p.stderr


def test_subscribed_while_redis_is_down_then_delivered_when_it_comes(start_daemon, tmp_path):
    import subprocess
    import time
    port = rtlib.free_port()
    d = start_daemon(conf={"workers": "1", "redis_url": "redis://127.0.0.1:%d" % port,
                           "redis_subscribe": "on_demand", "redis_reconnect_max": "200ms",
                           "namespace": "apps:* authenticated"})
    c = Client(d.port, tok())
    t0 = time.monotonic()
    c.subscribe("apps:early")       # no Redis: answered now, not after a wait
    assert time.monotonic() - t0 < 2
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: rtlib.health(d.port)[0] == 200, 10, "subscribed once Redis is there")
        s = socket_publish(port, "apps:early", '{"late":1}')
        assert s == 1
        assert c.next_event()["data"] == {"late": 1}
    finally:
        p.terminate()
        p.wait(5)


def socket_publish(port, ch, data):
    import socket
    import proclib
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        s.sendall(proclib.resp_command("PUBLISH", ch, data))
        return int(s.recv(100)[1:].strip())
    finally:
        s.close()
