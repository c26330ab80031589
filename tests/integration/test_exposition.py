"""GET /metrics as Prometheus reads it: promtool-clean, with the build,
start time, per-process resource series and the histograms; and every
series the contrib/ dashboard and alert rules use exists."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import chaoslib
import proclib
import rtlib

CONTRIB = os.path.join(rtlib.REPO, "contrib")
PROMTOOL = shutil.which("promtool")


def _metrics_text(port):
    st, _, body, _ = rtlib.http_get(port, "/metrics")
    assert st == 200
    return body.decode()


@pytest.fixture
def served(start_daemon):
    r = start_daemon.redis()
    d = start_daemon(conf={"workers": "2", "redis_url": r.url})
    rtlib.wait_settled(d, 2)
    clients = [rtlib.Client(d.port, rtlib.mint(userId="u%d" % i)) for i in range(3)]
    for c in clients:
        c.subscribe("apps:created")
    proclib.publish(r.port, "apps:created", '{"id":1}')
    for c in clients:
        assert c.ws.recv_json()["type"] == "event"
    return d


def test_exposition_is_promtool_clean(served):
    assert PROMTOOL, "promtool (Debian package prometheus) is not installed"
    text = _metrics_text(served.port)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        (p.returncode, p.stdout, p.stderr)


def test_build_start_and_process_series(served):
    m = chaoslib.metrics(served.port)
    assert m['realtimed_build_info{version="%s"}' % _version()] == 1
    assert abs(m["realtimed_start_time_seconds"] - time.time()) < 120
    m = rtlib.wait_for(lambda: (lambda x: x if all(
        x.get('realtimed_process_resident_memory_bytes{process="%s"}' % p, 0) > 0
        for p in ("master", "bridge", "worker 0", "worker 1")) else None)(
            chaoslib.metrics(served.port)), 10, "every process sampled")
    for p in ("master", "bridge", "worker 0", "worker 1"):
        assert m['realtimed_process_open_fds{process="%s"}' % p] >= 3, p
        assert 'realtimed_process_cpu_seconds_total{process="%s"}' % p in m, p
    # the renamed byte counter, and the old name for one more release
    assert m["realtimed_event_out_bytes_total"] == m["realtimed_event_bytes_out_total"] > 0


def test_handshake_histogram_counts_every_upgrade(served):
    m = chaoslib.metrics(served.port)
    n = m["realtimed_handshake_duration_seconds_count"]
    assert n == 3, m
    assert m['realtimed_handshake_duration_seconds_bucket{le="+Inf"}'] == 3
    assert 0 < m["realtimed_handshake_duration_seconds_sum"] < 3 * 10
    buckets = sorted((float(k.split('"')[1]), v) for k, v in m.items()
                     if k.startswith("realtimed_handshake_duration_seconds_bucket")
                     and "+Inf" not in k)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets), "not cumulative"


def _version():
    p = subprocess.run([rtlib.realtimed_bin(), "-v"], capture_output=True, timeout=10)
    return re.search(r"\d+\.\d+\.\d+", (p.stdout + p.stderr).decode()).group(0)


def _names_used():
    with open(os.path.join(CONTRIB, "grafana-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    with open(os.path.join(CONTRIB, "prometheus-alerts.yml")) as f:
        exprs += re.findall(r"^\s*expr:\s*(.+)$", f.read(), re.M)
    names = set()
    for e in exprs:
        names.update(re.findall(r"\brealtimed_[a-z_]+", e))
    return names


def test_contrib_dashboard_and_alerts_use_only_served_series(served):
    served_names = set()
    for line in _metrics_text(served.port).splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            served_names.add(name)
            if kind == "histogram":
                served_names.update(name + s for s in ("_bucket", "_sum", "_count"))
    used = _names_used()
    assert len(used) >= 10, used
    assert used <= served_names, sorted(used - served_names)


def test_contrib_alert_rules_are_valid():
    assert PROMTOOL, "promtool (Debian package prometheus) is not installed"
    p = subprocess.run([PROMTOOL, "check", "rules",
                        os.path.join(CONTRIB, "prometheus-alerts.yml")],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_delivery_histogram_counts_each_event_on_each_worker(served):
    """One observation per event per worker that had subscribers: the
    count equals the bridge's routed events."""
    m = chaoslib.metrics(served.port)
    routed = chaoslib.stats(served)["bridge"]["events_routed"]
    assert routed >= 1
    assert m["realtimed_delivery_latency_seconds_count"] == routed, m
    assert m['realtimed_delivery_latency_seconds_bucket{le="+Inf"}'] == routed
    # loopback delivery takes well under a second
    assert m['realtimed_delivery_latency_seconds_bucket{le="1"}'] == routed
