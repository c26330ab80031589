"""/health/live and /health/ready: liveness says whether the processes run,
readiness whether delivery can be vouched for; /health stays what it was."""
import json

import proclib
import rtlib


def _get(port, path):
    st, _, body, _ = rtlib.http_get(port, path)
    return st, json.loads(body.decode())


def test_redis_outage_fails_ready_not_live(start_daemon):
    r = start_daemon.redis()
    d = start_daemon(conf={"workers": "2", "redis_url": r.url,
                           "redis_reconnect_max": "500ms"})
    rtlib.wait_settled(d, 2)
    for path in ("/health", "/health/ready", "/health/live"):
        st, h = _get(d.port, path)
        assert st == 200 and h["status"] == "ok", (path, st, h)
    r.stop()
    st, h = rtlib.wait_for(
        lambda: (lambda x: x if x[0] == 503 else None)(_get(d.port, "/health/ready")),
        10, "/health/ready 503")
    assert h["status"] == "degraded" and h["reason"] == "redis unreachable", h
    st, h = _get(d.port, "/health")
    assert st == 503 and h["reason"] == "redis unreachable", h
    for _ in range(10):     # every worker answers alike
        st, h = _get(d.port, "/health/live")
        assert st == 200 and h["status"] == "ok" and "reason" not in h, h


def test_health_subpaths_are_get_only_and_exact(start_daemon):
    d = start_daemon(conf={"workers": "1", "redis_url": "redis://127.0.0.1:1"})
    st, _, _, _ = rtlib.http_get(d.port, "/health/lives")
    assert st == 404
    st, headers, _, _ = rtlib.http_raw(d.port, b"POST /health/live HTTP/1.1\r\n"
                                       b"Host: x\r\nContent-Length: 0\r\n\r\n")
    assert st == 405 and headers.get("allow") == "GET, HEAD", (st, headers)
