"""Limits that refuse or close are counted, in `stats` and /metrics
(realtimectl(8), realtimed(8)): max_subscriptions, max_message_size at the
frame, close_timeout, and max_channels when one worker holds every
channel.  Real daemon, real Redis, every wait bounded."""
import struct

import proclib
import rtlib
from rtlib import Client, RawWS, wait_for


def stats(d):
    return rtlib.admin(d.conf["admin_socket"], "stats")["stats"]


def metric(d, name):
    for line in rtlib.http_get(d.port, "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def test_limits_that_refuse_are_counted(start_daemon):
    d, r = proclib.start_quiet(start_daemon, 1, max_subscriptions="3",
                               max_channels="16", max_message_size="1k",
                               close_timeout="300ms")
    # max_subscriptions: 2 of 5 refused
    c = Client(d.port, rtlib.mint(userId="lim"))
    refused = 0
    for i in range(5):
        m = c.reply({"type": "subscribe", "channel": "apps:s%d" % i})
        if m["type"] == "error":
            assert m["message"] == "Too many subscriptions", m
            refused += 1
    assert refused == 2
    assert stats(d)["subscriptions_limited"] == 2
    assert metric(d, "realtimed_subscriptions_limited_total") == 2
    c.close()
    # max_channels with one worker holding them all: 4 of 20 refused, counted
    before = stats(d)["channel_table_full"]
    cs = [Client(d.port, rtlib.mint(userId="ch%d" % i)) for i in range(20)]
    errors = [m for m in (x.reply({"type": "subscribe", "channel": "apps:t%d" % i})
                          for i, x in enumerate(cs)) if m["type"] == "error"]
    assert len(errors) == 4, errors
    assert stats(d)["channel_table_full"] - before == 4
    for x in cs:
        x.close()
    # a frame over max_message_size: 1009, counted as too big
    ws = RawWS(d.port, path="/ws?token=" + rtlib.mint(userId="big"))
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.send_frame(0x1, b"x" * 2000)
        while True:
            _, op, payload = ws.recv_frame()
            if op == 0x8:
                break
        assert struct.unpack("!H", payload[:2])[0] == 1009
    finally:
        ws.close_socket()
    wait_for(lambda: stats(d)["messages_too_big"] == 1, 5, "messages_too_big 1")
    assert metric(d, "realtimed_messages_too_big_total") == 1
    # the server's Close never answered: dropped at close_timeout, counted
    ws = RawWS(d.port, path="/ws?token=not.a.jwt")
    try:
        assert ws.recv_json()["type"] == "error"
        _, op, _ = ws.recv_frame()
        assert op == 0x8
        assert ws.wait_eof(5), "kept past close_timeout"
    finally:
        ws.close_socket()
    wait_for(lambda: stats(d)["close_timeouts"] == 1, 5, "close_timeouts 1")
    assert metric(d, "realtimed_close_timeouts_total") == 1


def test_history_records_pushed_out_are_counted(start_daemon):
    """history_channels 16: subscribes to 40 channels with history make 40
    position records, 24 of which are pushed out for room, counted."""
    d, r = proclib.start_quiet(start_daemon, 1, history_channels="16")
    c = Client(d.port, rtlib.mint(userId="hist"))
    for i in range(40):
        m = c.reply({"type": "subscribe", "channel": "apps:h%d" % i})
        assert m["type"] == "subscribed" and "epoch" in m, m
    c.close()
    # the bridge publishes its history figures on its tick
    b = wait_for(lambda: (lambda b: b if b["history_channels_evicted"] == 24 else None)(
        stats(d)["bridge"]), 5, "24 records counted as pushed out")
    assert b["history_channels"] == 16, b
    assert metric(d, "realtimed_history_channels") == 16
    assert metric(d, "realtimed_history_channels_evicted_total") == 24
