"""redis_coalesce: events that come from Redis closer together than the
hold wait in the bridge's socket and are read together.  Whatever the hold
does, every event arrives, once, in publish order and intact; a lone event
after a quiet spell is read when it comes (no hold); a hold that gathers
more than one read's worth (16 KB) still loses nothing; 0 turns it off.
The counter redis_coalesced_reads says what happened: the tests judge by
it, never by time."""
import json
import socket
import time

import rtlib
from proclib import start_settled
from rtlib import Client, bridge_stats

CHANNEL = "deployments:coalesce"


class Publisher:
    """One connection to Redis sending PUBLISH commands one at a time."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.s.makefile("rb")

    def publish(self, channel, payload):
        args = [b"PUBLISH", channel.encode(), payload.encode()]
        self.s.sendall(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        line = self.f.readline()
        assert line.startswith(b":"), line
        return int(line[1:])

    def close(self):
        self.f.close()
        self.s.close()


def stream(d, r, n, gap, payload=lambda i: json.dumps({"i": i})):
    """A subscriber, then n events `gap` seconds apart; the events it got."""
    c = Client(d.port, rtlib.mint(userId="coalesce"))
    c.subscribe(CHANNEL)
    p = Publisher(r.port)
    try:
        assert p.publish(CHANNEL, '{"warmup":1}') == 1      # the bridge
        assert c.next_event()["data"] == {"warmup": 1}
        for i in range(n):
            p.publish(CHANNEL, payload(i))
            time.sleep(gap)
    finally:
        p.close()
    got = [e["data"] for e in c.events_until(n, timeout=15)]
    c.close()
    return got


def coalesced(d):
    return bridge_stats(d)["redis_coalesced_reads"]


def test_a_steady_stream_is_read_in_holds_and_arrives_whole_in_order(start_daemon):
    d, r = start_settled(start_daemon, 1, redis_coalesce="50ms")
    got = stream(d, r, 60, 0.001)
    assert got == [{"i": i} for i in range(60)]
    holds = coalesced(d)
    # 60 events over ~60+ ms with a 50 ms hold: gathered, not one read each
    assert 1 <= holds < 60, holds


def test_a_lone_event_after_a_quiet_spell_is_not_held(start_daemon):
    d, r = start_settled(start_daemon, 1, redis_coalesce="100ms")
    c = Client(d.port, rtlib.mint(userId="lone"))
    c.subscribe(CHANNEL)
    p = Publisher(r.port)
    try:
        assert p.publish(CHANNEL, '{"warmup":1}') == 1
        assert c.next_event()["data"] == {"warmup": 1}
        time.sleep(0.3)         # quiet: longer than the hold since the last read
        before = coalesced(d)   # (the subscription replies at start may have been held)
        p.publish(CHANNEL, '{"lone":1}')
        assert c.next_event()["data"] == {"lone": 1}
        time.sleep(0.2)         # a hold begun by it would have ended
    finally:
        p.close()
    assert coalesced(d) == before
    c.close()


def test_a_hold_that_gathers_more_than_one_read_loses_nothing(start_daemon):
    d, r = start_settled(start_daemon, 1, redis_coalesce="100ms")
    big = "x" * 20000           # each event alone is more than one 16 KB read
    got = stream(d, r, 30, 0.001, payload=lambda i: json.dumps({"i": i, "pad": big}))
    assert [g["i"] for g in got] == list(range(30))
    assert all(g["pad"] == big for g in got)


def test_zero_turns_it_off(start_daemon):
    d, r = start_settled(start_daemon, 1, redis_coalesce="0")
    got = stream(d, r, 40, 0.001)
    assert got == [{"i": i} for i in range(40)]
    assert coalesced(d) == 0
