"""The manuals name what the daemon shows: every key of realtimectl's
`stats` is described in realtimectl(8), every /metrics family in
realtimed(8), every configuration key in realtimed.conf(5) and in the
sample etc/realtimed.conf.  Real daemon, real redis-server."""
import os
import re

import rtlib

MAN = os.path.join(rtlib.REPO, "man")


def _items(page, macro):
    """The names a manual lists as `.It Cm NAME` / `.It Ic NAME`, also
    `.It Cm A , B`; a metric's labels (`NAME{reason=...}`) cut off."""
    with open(os.path.join(MAN, page)) as f:
        text = f.read()
    out = set()
    for line in re.findall(r"^\.It %s (.*)$" % macro, text, re.M):
        for name in line.split(" , "):
            out.add(re.split(r"[{\s]", name.strip(), 1)[0])
    return out


def _keys(obj, skip=()):
    """Names of a stats object, nested objects' keys too (not lists' items)."""
    out = set()
    for k, v in obj.items():
        if k in skip:
            continue
        out.add(k)
        if isinstance(v, dict):
            out |= _keys(v)
    return out


def test_every_stats_key_and_metric_is_documented(start_daemon):
    r = start_daemon.redis()
    d = start_daemon(conf={"workers": "2", "redis_url": r.url})
    rtlib.wait_settled(d, 2)
    s = rtlib.admin(d.conf["admin_socket"], "stats")["stats"]
    # per-worker and per-process breakdowns repeat the keys above them
    names = _keys(s, skip=("workers", "processes"))
    listed = _items("realtimectl.8", "Cm")
    missing = sorted(n for n in names if n not in listed)
    assert not missing, "stats keys not in realtimectl(8): %s" % missing
    st, _, body, _ = rtlib.http_get(d.port, "/metrics")
    assert st == 200
    families = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.M))
    assert len(families) > 50, families
    listed = _items("realtimed.8", "Cm")
    missing = sorted(f for f in families if f not in listed)
    assert not missing, "metrics not in realtimed(8): %s" % missing


def test_every_config_key_is_documented_and_in_the_sample():
    with open(os.path.join(rtlib.REPO, "src", "config.c")) as f:
        keys = set(re.findall(r'^\t\{ "([a-z0-9_]+)", CT_', f.read(), re.M))
    assert len(keys) > 80, keys
    listed = _items("realtimed.conf.5", "Ic")
    missing = sorted(k for k in keys if k not in listed)
    assert not missing, "keys not in realtimed.conf(5): %s" % missing
    with open(os.path.join(rtlib.REPO, "etc", "realtimed.conf")) as f:
        sample = set(re.findall(r"^#?([a-z0-9_]+)(?:[ \t]|$)", f.read(), re.M))
    missing = sorted(k for k in keys if k not in sample)
    assert not missing, "keys not in etc/realtimed.conf: %s" % missing
