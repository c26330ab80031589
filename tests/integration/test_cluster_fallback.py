"""Cluster positions when Redis refuses the function library (an older
Redis, or an ACL without FUNCTION): the bridge says so in the log, counts
cluster_function 0, and everything works on node positions; realtimectl
publish falls back to a plain PUBLISH.  Real redis-server (its ACL denies
FUNCTION to the daemon's user), real daemon, real clients."""
import rtlib
from rtlib import Client, wait_for


def test_without_the_function_library_node_positions_and_plain_publish(start_daemon):
    r = start_daemon.redis()
    assert r.command("ACL", "SETUSER", "default", "-function") == b"+OK\r\n"
    d = start_daemon(conf={"workers": "1", "redis_url": r.url, "canary_interval": "0"})
    rtlib.wait_settled(d, 1)
    wait_for(lambda: "FUNCTION LOAD of the realtimed library failed" in d.log(), 10,
             "the bridge's warning")
    sock = d.conf["admin_socket"]
    b = rtlib.admin(sock, "stats")["stats"]["bridge"]
    assert b["cluster_function"] == 0 and b["redis"] == "up", b

    c = Client(d.port, rtlib.mint({"userId": "u1"}))
    m = c.reply({"type": "subscribe", "channel": "apps:created"})
    assert m["type"] == "subscribed" and "-" in m["epoch"] and m["offset"] == 0, m

    # the admin's publish: a plain PUBLISH, a node position, no offset
    rep = rtlib.admin(sock, 'publish apps:created {"n":1}')
    assert rep["ok"] is True and rep["receivers"] >= 1 and "offset" not in rep, rep
    ev = c.next_event()
    assert ev["data"] == {"n": 1} and ev["offset"] == 1 and ev["epoch"] == m["epoch"], ev

    # no library in Redis: a backend's FCALL fails there, not in the daemon
    assert r.command("FCALL", "realtimed_publish", "1", "apps:created", "{}").startswith(b"-")
    # since with a cluster-looking epoch: an honest recovered:false at once
    c2 = Client(d.port, rtlib.mint({"userId": "u2"}))
    m2 = c2.reply({"type": "subscribe", "channel": "apps:created",
                   "since": {"epoch": "cAbCdEf", "offset": 3}})
    assert m2["recovered"] is False and m2["epoch"] == m["epoch"] and m2["offset"] == 1, m2
    b = rtlib.admin(sock, "stats")["stats"]["bridge"]
    assert b["cluster_reads"] == 0 and b["cluster_events"] == 0, b
