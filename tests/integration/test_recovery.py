"""Node positions and recovery (PROTOCOL.md "Positions and recovery"):
events on channels with history carry offset and epoch, `subscribed`
carries the position, and `subscribe` with `since` replays what was
missed, then live events, with no gap and no duplicate.  Real daemon, real
redis-server, real clients; every wait bounded."""
import json
import os
import signal
import time

import proclib
import rtlib
from rtlib import Client, wait_for


def tok(**claims):
    c = {"userId": "u1"}
    c.update(claims)
    return rtlib.mint(c)


start = proclib.start_quiet
sub = proclib.subscribe


def test_events_carry_offset_and_epoch_and_subscribed_the_position(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    m = sub(c, "apps:created")
    assert m["type"] == "subscribed" and m["offset"] == 0, m
    epoch = m["epoch"]
    assert isinstance(epoch, str) and 0 < len(epoch) <= 32
    assert "recovered" not in m
    proclib.publish_seq(r.port, "apps:created", 1, 4)
    evs = proclib.take_events(c, 3)
    assert [e["offset"] for e in evs] == [1, 2, 3]
    assert all(e["epoch"] == epoch for e in evs)
    assert [e["data"]["n"] for e in evs] == [1, 2, 3]
    # a second client sees the newest position at once
    c2 = Client(d.port, tok(userId="u2"))
    m2 = sub(c2, "apps:created")
    assert (m2["epoch"], m2["offset"]) == (epoch, 3)


def test_since_replays_what_was_missed_then_live(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    m = sub(c, "deployments:status")
    epoch = m["epoch"]
    proclib.publish_seq(r.port, "deployments:status", 1, 3)
    assert [e["offset"] for e in proclib.take_events(c, 2)] == [1, 2]
    c.close()
    proclib.publish_seq(r.port, "deployments:status", 3, 8)	# missed: offsets 3..7
    c = Client(d.port, tok())
    m = sub(c, "deployments:status", {"epoch": epoch, "offset": 2})
    assert m["type"] == "subscribed" and m["recovered"] is True, m
    assert (m["epoch"], m["offset"]) == (epoch, 7)
    proclib.publish_seq(r.port, "deployments:status", 8, 10)
    evs = proclib.take_events(c, 7)
    assert [e["offset"] for e in evs] == [3, 4, 5, 6, 7, 8, 9]
    assert [e["data"]["n"] for e in evs] == [3, 4, 5, 6, 7, 8, 9]
    assert c.no_event(0.3)


def test_since_unrecoverable_answers_false_with_the_current_position(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    epoch = sub(c, "apps:updated")["epoch"]
    proclib.publish_seq(r.port, "apps:updated", 1, 3)
    proclib.take_events(c, 2)
    for since in ({"epoch": "nope", "offset": 1}, {"epoch": epoch, "offset": 99},
                  {"epoch": "", "offset": 0}, {"epoch": "x" * 300, "offset": 1},
                  # past int64, past uint64: still integers in the future
                  {"epoch": epoch, "offset": 2 ** 63}, {"epoch": epoch, "offset": 2 ** 64 - 1},
                  {"epoch": epoch, "offset": 10 ** 30}):
        c2 = Client(d.port, tok(userId="u9"))
        m = sub(c2, "apps:updated", since)
        assert m["type"] == "subscribed" and m["recovered"] is False, (since, m)
        assert (m["epoch"], m["offset"]) == (epoch, 2), m
        assert c2.no_event(0.2)
        c2.close()


def test_since_evicted_by_count_is_unrecoverable(start_daemon):
    d, r = start(start_daemon, namespace="apps:* authenticated history=3")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:x")["epoch"]
    proclib.publish_seq(r.port, "apps:x", 1, 7)
    proclib.take_events(c, 6)
    c2 = Client(d.port, tok())
    assert sub(c2, "apps:x", {"epoch": epoch, "offset": 2})["recovered"] is False
    c3 = Client(d.port, tok())
    m = sub(c3, "apps:x", {"epoch": epoch, "offset": 3})
    assert m["recovered"] is True
    assert [e["offset"] for e in proclib.take_events(c3, 3)] == [4, 5, 6]


def test_since_expired_by_ttl_is_unrecoverable(start_daemon):
    d, r = start(start_daemon, namespace="apps:* authenticated history=100 history_ttl=300ms")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:x")["epoch"]
    proclib.publish_seq(r.port, "apps:x", 1, 3)
    proclib.take_events(c, 2)
    time.sleep(0.6)
    c2 = Client(d.port, tok())
    m = sub(c2, "apps:x", {"epoch": epoch, "offset": 0})
    assert m["recovered"] is False and m["offset"] == 2, m
    # the newest position is still recoverable: nothing to replay
    c3 = Client(d.port, tok())
    assert sub(c3, "apps:x", {"epoch": epoch, "offset": 2})["recovered"] is True


def test_event_over_max_event_size_takes_its_offset_a_hole(start_daemon):
    """A plain PUBLISH dropped at max_event_size still takes its offset:
    subscribers see the hole (1, then 3), a subscribe after it has the
    position past it (even one a worker would answer from its own
    stream), and a since from before it is not recovered."""
    d, r = start(start_daemon, max_event_size="1k")
    a, b = Client(d.port, tok()), Client(d.port, tok(userId="u2"))
    epoch = sub(a, "apps:deployed")["epoch"]
    sub(b, "apps:deployed")	# two here: the worker keeps the position itself
    proclib.publish_seq(r.port, "apps:deployed", 1, 2)
    assert [e["offset"] for e in proclib.take_events(a, 1)] == [1]
    proclib.take_events(b, 1)
    proclib.publish(r.port, "apps:deployed", json.dumps({"n": 2, "p": "x" * 2000}))
    wait_for(lambda: rtlib.bridge_stats(d)["events_too_large"] == 1, 10, "the drop")
    c = Client(d.port, tok(userId="u3"))
    m = sub(c, "apps:deployed")
    assert (m["epoch"], m["offset"]) == (epoch, 2), m
    m = sub(Client(d.port, tok(userId="u4")), "apps:deployed", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and m["offset"] == 2, m
    m = sub(Client(d.port, tok(userId="u5")), "apps:deployed", {"epoch": epoch, "offset": 2})
    assert m["recovered"] is True and m["offset"] == 2, m
    proclib.publish_seq(r.port, "apps:deployed", 3, 4)
    assert [e["offset"] for e in proclib.take_events(a, 1)] == [3]
    assert [e["offset"] for e in proclib.take_events(c, 1)] == [3]
    e = Client(d.port, tok(userId="u6"))
    m = sub(e, "apps:deployed", {"epoch": epoch, "offset": 2})
    assert m["recovered"] is True and [x["offset"] for x in proclib.take_events(e, 1)] == [3]
    m = sub(Client(d.port, tok(userId="u7")), "apps:deployed", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and m["offset"] == 3, m


def test_since_on_a_channel_without_history_is_false(start_daemon):
    d, r = start(start_daemon, namespace="apps:* authenticated")
    c = Client(d.port, tok())
    m = sub(c, "apps:x")
    assert m["type"] == "subscribed" and "epoch" not in m and "offset" not in m
    proclib.publish(r.port, "apps:x", '{"a":1}')
    e = c.next_event()
    assert "offset" not in e and "epoch" not in e
    m = sub(Client(d.port, tok()), "apps:x", {"epoch": "e", "offset": 1})
    assert m["type"] == "subscribed" and m["recovered"] is False


def test_malformed_since_is_an_error(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    for since in (5, "x", [], {"epoch": 1, "offset": 1}, {"epoch": "e"},
                  {"epoch": "e", "offset": -1}, {"epoch": "e", "offset": 1.5},
                  {"epoch": "e", "offset": "1"}, {"offset": 1}):
        m = sub(c, "apps:created", since)
        assert m["type"] == "error", (since, m)
    # null is no since
    m = sub(c, "apps:created", None)
    assert m["type"] == "subscribed" and "recovered" not in m
    c.ws.send_json({"type": "subscribe", "channel": "apps:created", "since": None})
    m = c.reply({"type": "ping"})
    assert m["type"] in ("subscribed", "pong")


def test_gap_repair_on_a_live_subscription(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    epoch = sub(c, "storage:uploaded")["epoch"]
    proclib.publish_seq(r.port, "storage:uploaded", 1, 6)
    proclib.take_events(c, 5)
    m = sub(c, "storage:uploaded", {"epoch": epoch, "offset": 2})
    assert m["recovered"] is True and m["offset"] == 5
    assert [e["offset"] for e in proclib.take_events(c, 3)] == [3, 4, 5]
    proclib.publish_seq(r.port, "storage:uploaded", 6, 7)
    assert [e["offset"] for e in proclib.take_events(c, 1)] == [6]
    assert c.no_event(0.3)


def test_replay_during_a_fast_publisher_has_no_gap_and_no_duplicate(start_daemon):
    """1000+ events/s keep arriving while clients recover: each sees every
    offset exactly once, in order."""
    d, r = start(start_daemon, workers=2,
                 namespace="apps:* authenticated history=100000 history_ttl=1m")
    ch = "apps:status"
    c = Client(d.port, tok())
    epoch = sub(c, ch)["epoch"]
    proclib.publish_seq(r.port, ch, 1, 51)
    proclib.take_events(c, 50)
    clients = []
    with proclib.fast_publisher(r.port, ch, 51) as sent:
        for k in range(6):
            time.sleep(0.05)
            cl = Client(d.port, tok(userId="r%d" % k))
            m = sub(cl, ch, {"epoch": epoch, "offset": 40 + k})
            assert m["recovered"] is True, m
            clients.append((40 + k, cl))
        time.sleep(0.3)
    proclib.assert_offsets_after(clients, sent[0])


def test_redis_reconnect_changes_the_epoch(start_daemon):
    """The bridge's subscription drops (events may be missed): a new epoch."""
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    epoch = sub(c, "apps:created")["epoch"]
    proclib.publish(r.port, "apps:created", "{}")
    c.next_event()
    before = rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]["epochs"]
    r.command("CLIENT", "KILL", "TYPE", "pubsub")
    wait_for(lambda: rtlib.admin(d.conf["admin_socket"], "stats")["stats"]
             ["bridge"]["epochs"] > before, 10, "a new epoch")
    wait_for(lambda: proclib.publish(r.port, "apps:probe", "{}") == 1, 10, "resubscribed")
    c2 = Client(d.port, tok())
    m = sub(c2, "apps:created", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and m["epoch"] != epoch and m["offset"] == 0, m


def test_worker_kill_keeps_node_positions(start_daemon):
    d, r = start(start_daemon, workers=2)
    c = Client(d.port, tok())
    epoch = sub(c, "apps:deleted")["epoch"]
    proclib.publish_seq(r.port, "apps:deleted", 1, 4)
    proclib.take_events(c, 3)
    for title, pid in rtlib.roles(d.proc.pid).items():
        if "worker" in title:
            os.kill(pid, signal.SIGKILL)
    rtlib.wait_settled(d, 2)
    proclib.publish_seq(r.port, "apps:deleted", 4, 6)
    c2 = Client(d.port, tok())
    m = sub(c2, "apps:deleted", {"epoch": epoch, "offset": 3})
    assert m["recovered"] is True and m["offset"] == 5, m
    assert [e["offset"] for e in proclib.take_events(c2, 2)] == [4, 5]


def test_daemon_restart_node_positions_answer_false(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    epoch = sub(c, "apps:created")["epoch"]
    proclib.publish(r.port, "apps:created", "{}")
    c.next_event()
    d.stop()
    assert d.proc.returncode == 0
    d.respawn()
    d.deaths.pop()	# a clean stop we asked for, not a death
    rtlib.wait_settled(d, 1)
    c2 = Client(d.port, tok())
    m = sub(c2, "apps:created", {"epoch": epoch, "offset": 1})
    assert m["recovered"] is False and m["epoch"] != epoch, m


def test_history_stats_and_metrics(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    epoch = sub(c, "apps:created")["epoch"]
    proclib.publish_seq(r.port, "apps:created", 1, 4)
    proclib.take_events(c, 3)
    sub(Client(d.port, tok()), "apps:created", {"epoch": epoch, "offset": 1})
    sub(Client(d.port, tok()), "apps:created", {"epoch": "zz", "offset": 1})
    def bridge():
        return rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]
    wait_for(lambda: bridge()["history_events"] == 3, 3, "history published")
    b = bridge()
    assert b["recoveries_ok"] == 1 and b["recoveries_unrecoverable"] == 1, b
    assert b["history_memory"] > 0


def test_replies_stay_in_request_order_behind_a_position(start_daemon):
    """subscribe waits for the bridge's answer; what was sent after it is
    answered after it, even pipelined in one write."""
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    msgs = [{"type": "subscribe", "channel": "apps:created"}, {"type": "ping"},
            {"type": "subscribe", "channel": "apps:updated"},
            {"type": "unsubscribe", "channel": "apps:created"},
            {"type": "list_channels"}]
    c.ws.sock.sendall(b"".join(rtlib.client_frame(0x1, json.dumps(m).encode())
                               for m in msgs))
    got = [c.ws.recv_json() for _ in msgs]
    assert [(m["type"], m.get("channel")) for m in got] == [
        ("subscribed", "apps:created"), ("pong", None), ("subscribed", "apps:updated"),
        ("unsubscribed", "apps:created"), ("channels", None)], got
    assert got[4]["subscribedChannels"] == ["apps:updated"]


def test_bridge_killed_during_a_replay_never_gives_a_wrong_replay(start_daemon):
    """A kill -9 of the bridge while it answers a since: the client either
    got the whole replay first, or its connection ends 1011 "Replay
    interrupted" after a true prefix (it reconnects and asks again with
    what it has), or the next bridge answers recovered false under a new
    epoch.  Never a cut replay passed off as whole."""
    d, r = start(start_daemon, namespace="apps:* authenticated history=5000",
                 max_output_buffer="64m")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:big")["epoch"]
    payload = "x" * 2000
    proclib.publish_many(r.port, [("apps:big", json.dumps({"n": i, "p": payload}))
                                  for i in range(1, 3001)])
    assert len(proclib.take_events(c, 3000, 20)) == 3000
    bridge = rtlib.roles(d.proc.pid)[rtlib.BRIDGE]
    c2 = Client(d.port, tok())
    c2.ws.send_json({"type": "subscribe", "channel": "apps:big",
                     "since": {"epoch": epoch, "offset": 0}})
    os.kill(bridge, signal.SIGKILL)
    answer, replayed, closed = None, [], None
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            m = c2.ws.recv_json(max(0.05, deadline - time.monotonic()))
            if m["type"] == "subscribed":
                assert answer is None, ("answered twice", answer, m)
                answer = m
                if m["recovered"] is False:
                    break
            elif m["type"] == "event":
                assert answer is not None, "an event before the answer"
                replayed.append(m)
                if len(replayed) == 3000:
                    break
    except rtlib.ServerClosed as e:
        closed = (e.code, e.reason)
    assert answer is not None, (closed, len(replayed))
    offs = [e["offset"] for e in replayed]
    assert offs == list(range(1, len(offs) + 1)), offs[:5]
    if answer["recovered"] is False:
        assert answer["epoch"] != epoch and not replayed
    elif len(replayed) < 3000:
        assert closed is not None and closed[0] == 1011, (closed, len(replayed))
        assert b"Replay interrupted" in closed[1]
    rtlib.wait_settled(d, 1)
    # whatever happened, a fresh since now says false under the new epoch
    c3 = Client(d.port, tok())
    m = sub(c3, "apps:big", {"epoch": epoch, "offset": 3000})
    assert m["recovered"] is False and m["epoch"] != epoch, m


def test_a_replay_over_the_output_limit_is_a_slow_consumer(start_daemon):
    """8 MB replayed to a client that does not read: more than the kernel's
    socket buffers and max_output_buffer together, so it ends 4000."""
    d, r = start(start_daemon, namespace="apps:* authenticated history=4000",
                 max_output_buffer="256k")
    c = Client(d.port, tok())
    epoch = sub(c, "apps:x")["epoch"]
    c.close()
    payload = "y" * 2000
    for a in range(1, 4001, 500):
        proclib.publish_many(r.port, [("apps:x", json.dumps({"n": i, "p": payload}))
                                      for i in range(a, a + 500)])
    wait_for(lambda: rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]
             ["history_events"] == 4000, 10, "4000 events kept")
    c2 = Client(d.port, tok())
    c2.ws.send_json({"type": "subscribe", "channel": "apps:x",
                     "since": {"epoch": epoch, "offset": 0}})
    wait_for(lambda: chaos_slow(d) >= 1, 10, "slow consumer counted")
    code, seen = c2.expect_close(20)
    assert code in (4000, None), (code, len(seen))
    # what did arrive was the replay's start, in order
    offs = [m["offset"] for m in seen if m.get("type") == "event"]
    assert offs == list(range(1, len(offs) + 1)) and len(offs) < 4000


def chaos_slow(d):
    return rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["slow_consumer_closes"]


def _kept_history(start_daemon, channel, n, pad):
    """A daemon with a 64k worker queue whose channel keeps n events, each
    padded with pad; (daemon, redis, its admin socket, the channel's epoch)."""
    d, r = start(start_daemon, namespace="apps:* authenticated history=%d" % n,
                 ipc_max_buffer="64k")
    c = Client(d.port, tok())
    epoch = sub(c, channel)["epoch"]
    c.close()
    proclib.publish_many(r.port, [(channel, json.dumps({"n": i, "p": pad}))
                                  for i in range(1, n + 1)])
    admin = d.conf["admin_socket"]
    wait_for(lambda: rtlib.admin(admin, "stats")["stats"]["bridge"]
             ["history_events"] == n, 10, "%d events kept" % n)
    return d, r, admin, epoch


def test_replays_past_ipc_max_buffer_wait_and_arrive_whole(start_daemon):
    """40 clients ask at once for 60 events of 4 KB each: 9.6 MB of replays
    through a worker queue of 64k.  Answers are never dropped: the bridge
    stops answering that worker until it has read its queue down, counts
    the wait, and every client gets its whole replay, then live events."""
    pad = "z" * 4000
    d, r, admin, epoch = _kept_history(start_daemon, "apps:r", 60, pad)
    before = rtlib.admin(admin, "stats")["stats"]["bridge"]
    cs = [Client(d.port, tok(userId="r%d" % i)) for i in range(40)]
    for x in cs:
        x.ws.send_json({"type": "subscribe", "channel": "apps:r",
                        "since": {"epoch": epoch, "offset": 0}})
    for x in cs:
        m = x.ws.recv_json(20)
        assert m["type"] == "subscribed" and m["recovered"] is True, m
        evs = proclib.take_events(x, 60, timeout=20)
        assert [e["offset"] for e in evs] == list(range(1, 61))
        assert all(e["data"]["p"] == pad for e in evs)
    after = rtlib.admin(admin, "stats")["stats"]["bridge"]
    assert after["ipc_drops"] == before["ipc_drops"]
    assert after["ipc_request_waits"] > before["ipc_request_waits"], after
    proclib.publish_seq(r.port, "apps:r", 61, 62)
    for x in cs:
        e = x.next_event(10)
        assert (e["offset"], e["data"]["n"]) == (61, 61), e
        x.close()


def _message_memory(d):
    return rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["message_memory"]


def test_requests_behind_a_position_count_in_max_message_memory(start_daemon):
    """Requests that wait behind a subscribe the bridge has not answered are
    held by the worker: they count in message_memory while they wait, are
    given back once answered, and a worker already holding
    max_message_memory closes the client that would pass it 1013."""
    d, r = start(start_daemon, max_message_size="2k", max_message_memory="2k")
    frame = rtlib.client_frame
    c = Client(d.port, tok())
    msgs = [{"type": "subscribe", "channel": "apps:a%d" % i} for i in range(3)]
    msgs += [{"type": "ping", "pad": "p" * 300}] * 3
    c.ws.sock.sendall(b"".join(frame(0x1, json.dumps(m).encode()) for m in msgs))
    got = [c.ws.recv_json() for _ in msgs]
    assert [m["type"] for m in got] == ["subscribed"] * 3 + ["pong"] * 3, got
    assert _message_memory(d) == 0
    # another client holds 1500 bytes of a fragmented message ...
    a = rtlib.RawWS(d.port, path="/ws?token=" + tok(userId="a"))
    a.recv_json()
    a.send_frame(0x1, b'{"type":"ping","pad":"' + b"q" * 1478, fin=False)
    wait_for(lambda: _message_memory(d) == 1500, 5, "1500 bytes held")
    # ... so a ping of 600 waiting behind a subscribe has no room
    b = Client(d.port, tok(userId="b"))
    b.ws.sock.sendall(frame(0x1, json.dumps({"type": "subscribe", "channel": "apps:b"}).encode())
                      + frame(0x1, json.dumps({"type": "ping", "pad": "p" * 600}).encode()))
    code, seen = b.expect_close(10)
    assert code == 1013, (code, seen)
    assert _message_memory(d) == 1500
    # the fragmented message still completes
    a.send_frame(0x0, b'"}', fin=True)
    assert a.recv_json()["type"] == "pong"
    assert _message_memory(d) == 0
    a.close_socket()
    c.close()


def test_replays_staged_past_ipc_max_buffer_in_one_pass_all_arrive(start_daemon):
    """Replays of ~25 KB each, asked by 30 clients at once through a 64k
    worker queue: the bridge stages several in one pass and goes over the
    mark with nothing yet in libevent's hands.  It must go on by itself
    once they are written, not wait for the worker's next request."""
    pad = "s" * 1000
    d, r, admin, epoch = _kept_history(start_daemon, "apps:s", 25, pad)
    cs = [Client(d.port, tok(userId="s%d" % i)) for i in range(30)]
    frames = [rtlib.client_frame(0x1, json.dumps(
        {"type": "subscribe", "channel": "apps:s",
         "since": {"epoch": epoch, "offset": 0}}).encode()) for _ in cs]
    for x, f in zip(cs, frames):
        x.ws.sock.sendall(f)
    for i, x in enumerate(cs):
        m = x.ws.recv_json(10)
        assert m["type"] == "subscribed" and m["recovered"] is True, (i, m)
        evs = proclib.take_events(x, 25, timeout=10)
        assert [e["offset"] for e in evs] == list(range(1, 26)), i
    for x in cs:
        x.close()


def test_a_fragmented_request_waiting_behind_a_subscribe_counts_once(start_daemon):
    """max_message_memory equal to max_message_size: a fragmented 1500-byte
    ping that must wait behind a subscribe is held once (as what waits, no
    longer as fragments), so it fits and is answered in order."""
    d, r = start(start_daemon, max_message_size="2k", max_message_memory="2k")
    c = Client(d.port, tok())
    ping = json.dumps({"type": "ping", "pad": "f" * 1470}).encode()
    assert 1400 < len(ping) < 2048
    c.ws.sock.sendall(
        rtlib.client_frame(0x1, json.dumps({"type": "subscribe", "channel": "apps:f"}).encode())
        + rtlib.client_frame(0x1, ping[:700], fin=False)
        + rtlib.client_frame(0x0, ping[700:], fin=True))
    got = [c.ws.recv_json() for _ in range(2)]
    assert [m["type"] for m in got] == ["subscribed", "pong"], got
    assert _message_memory(d) == 0
    c.close()
