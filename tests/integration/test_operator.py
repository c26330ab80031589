"""Operator correctness: no spurious warning at a clean stop.

Daemons a test stops itself are conftest's `own` ones."""
import re

import proclib
import rtlib

wait_for = rtlib.wait_for


def settled(d, nworkers=1, redis=True):
    """The bridge and the workers running ({title: pid}), Redis up when asked."""
    if redis:
        return proclib.wait_settled(d, nworkers)
    want = proclib.expected_titles(nworkers)
    return wait_for(lambda: set(proclib.roles(d.proc.pid)) == want and
                    proclib.roles(d.proc.pid), 10, "the bridge and %d workers" % nworkers)


# ------------------------------------------------------------ a clean stop

def test_clean_stop_logs_no_redis_down_warning(own, start_daemon):
    r = start_daemon.redis()
    d = own(conf={"redis_url": r.url})
    settled(d)
    assert d.stop() == 0
    text = d.log()
    assert "stopped" in text
    assert not re.search(r"redis .*down, reconnecting", text), text[-3000:]


def test_redis_outage_still_warns(start_daemon):
    r = start_daemon.redis()
    d = start_daemon(conf={"redis_url": r.url, "canary_interval": "0"})
    settled(d)
    r.command("CLIENT", "KILL", "TYPE", "pubsub")
    wait_for(lambda: re.search(r"redis .*down, reconnecting", d.log()), 5,
             "the bridge to warn that Redis went away")
