"""Subscribes answered by the worker itself (issue 22): on a channel with
history that already has subscribers in a worker, the events of its stream
from the bridge say where the channel is, so `subscribed` carries that
position without a round trip to the bridge.  The answer must be the one
the bridge would give: the same epoch and offset, every later event and no
earlier one, and a new epoch as soon as the bridge has one (a reset of the
link to Redis, a history record pushed out) even when no event follows.
Real daemon, real redis-server, real clients; every wait bounded."""
import time

import proclib
import rtlib
from rtlib import Client, wait_for


def tok(user="u1"):
    return rtlib.mint({"userId": user})


start = proclib.start_quiet


def sub(c, channel, since=None):
    m = proclib.subscribe(c, channel, since)
    assert m["type"] == "subscribed", m
    return m


def local(d):
    return rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["positions_local"]


def busy(d, r, ch, n=2):
    """n clients on ch (the second one's answer starts the worker's record),
    and two events: the channel's position is (epoch, 2)."""
    cs = [Client(d.port, tok("b%d" % i)) for i in range(n)]
    epoch = [sub(c, ch)["epoch"] for c in cs][0]
    proclib.publish_seq(r.port, ch, 1, 3)
    for c in cs:
        evs = proclib.take_events(c, 2)
        assert [(e["epoch"], e["offset"]) for e in evs] == [(epoch, 1), (epoch, 2)], evs
    return cs, epoch


def test_a_busy_channel_is_answered_in_the_worker_with_the_bridges_position(start_daemon):
    d, r = start(start_daemon)
    ch = "apps:created"
    cs, epoch = busy(d, r, ch)
    before = local(d)
    c = Client(d.port, tok("c"))
    m = sub(c, ch)
    assert (m["epoch"], m["offset"]) == (epoch, 2) and "recovered" not in m, m
    assert local(d) == before + 1
    # the events after it, none before, for the new one and the others
    proclib.publish_seq(r.port, ch, 3, 5)
    for cl in cs + [c]:
        assert [(e["epoch"], e["offset"]) for e in proclib.take_events(cl, 2)] == [(epoch, 3), (epoch, 4)]
        assert cl.no_event(0.2)
    # a repeat of a live subscription answers the newest position too
    m = sub(c, ch)
    assert (m["epoch"], m["offset"]) == (epoch, 4), m
    assert local(d) == before + 2
    # the position given out is one the bridge recovers from
    c.close()
    proclib.publish_seq(r.port, ch, 5, 7)
    c2 = Client(d.port, tok("c"))
    m = sub(c2, ch, {"epoch": epoch, "offset": 4})
    assert m["recovered"] is True and (m["epoch"], m["offset"]) == (epoch, 6), m
    assert [e["offset"] for e in proclib.take_events(c2, 2)] == [5, 6]
    assert local(d) == before + 2	# since is always the bridge's


def test_a_lone_subscriber_and_channels_without_history_ask_nothing_here(start_daemon):
    d, r = start(start_daemon, namespace="apps:* authenticated history=10\n"
                 "namespace plain:* authenticated")
    a = Client(d.port, tok("a"))
    m = sub(a, "apps:one")
    proclib.publish_seq(r.port, "apps:one", 1, 3)
    assert [e["offset"] for e in proclib.take_events(a, 2)] == [1, 2]
    p = [Client(d.port, tok("p%d" % i)) for i in range(3)]
    for c in p:
        m = sub(c, "plain:x")
        assert "epoch" not in m and "offset" not in m, m
    proclib.publish_seq(r.port, "plain:x", 1, 2)
    for c in p:
        assert "offset" not in proclib.take_events(c, 1)[0]
    # the second subscriber of apps:one asks the bridge (the worker kept
    # nothing for a lone one); nothing was answered here
    m = sub(Client(d.port, tok("b")), "apps:one")
    assert m["offset"] == 2, m
    assert local(d) == 0


def test_a_new_epoch_reaches_the_worker_without_an_event(start_daemon):
    """The link to Redis drops: the bridge starts a new epoch.  The worker's
    channel saw no event since, yet a subscribe must not get the old one."""
    d, r = start(start_daemon)
    ch = "apps:created"
    cs, epoch = busy(d, r, ch)
    assert sub(Client(d.port, tok("c")), ch)["epoch"] == epoch
    before = local(d)
    assert before >= 1
    epochs = rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]["epochs"]
    r.command("CLIENT", "KILL", "TYPE", "pubsub")
    wait_for(lambda: rtlib.admin(d.conf["admin_socket"], "stats")["stats"]
             ["bridge"]["epochs"] > epochs, 10, "a new epoch")
    wait_for(lambda: proclib.publish(r.port, "apps:probe", "{}") == 1, 10, "resubscribed")
    m = sub(Client(d.port, tok("d")), ch)
    assert m["epoch"] != epoch and m["offset"] == 0, m
    # answered by the bridge; the next one here again, at the new position
    assert local(d) == before
    m2 = sub(Client(d.port, tok("e")), ch)
    assert (m2["epoch"], m2["offset"]) == (m["epoch"], 0), m2
    assert local(d) == before + 1
    proclib.publish_seq(r.port, ch, 1, 2)
    for c in cs:
        assert [(e["epoch"], e["offset"]) for e in proclib.take_events(c, 1)] == [(m["epoch"], 1)]


def test_a_history_record_pushed_out_reaches_the_worker(start_daemon):
    """history_channels is full: events of other channels push out the
    busy channel's record, and its next position starts a new epoch."""
    d, r = start(start_daemon, history_channels="16")
    ch = "apps:busy"
    cs, epoch = busy(d, r, ch)
    proclib.publish_many(r.port, [("apps:other%d" % i, "{}") for i in range(20)])
    wait_for(lambda: rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]
             ["events_in"] >= 22, 5, "the other events read")
    m = sub(Client(d.port, tok("c")), ch)
    assert m["epoch"] != epoch and m["offset"] == 0, m
    proclib.publish_seq(r.port, ch, 1, 2)
    for c in cs:
        assert [(e["epoch"], e["offset"]) for e in proclib.take_events(c, 1)] == [(m["epoch"], 1)]


def test_subscribes_during_a_fast_publisher_see_every_later_offset_once(start_daemon):
    """1000+ events/s on the channel while clients subscribe without since,
    most answered in the worker: each gets exactly the offsets after the
    one its subscribed carried, in order."""
    d, r = start(start_daemon, workers=2,
                 namespace="apps:* authenticated history=100000 history_ttl=1m")
    ch = "apps:status"
    cs, epoch = busy(d, r, ch, n=4)
    clients = []
    with proclib.fast_publisher(r.port, ch, 3) as sent:
        for k in range(12):
            time.sleep(0.03)
            cl = Client(d.port, tok("r%d" % k))
            m = sub(cl, ch)
            assert m["epoch"] == epoch, m
            clients.append((m["offset"], cl))
        time.sleep(0.3)
    proclib.assert_offsets_after(clients, sent[0])
    assert local(d) >= 6, local(d)
