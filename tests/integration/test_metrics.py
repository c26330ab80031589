"""Operations, /metrics: Prometheus text exposition (every line a comment or
`name{labels} value`, one TYPE per family, before its samples), served only
to addresses in metrics_allow (a live key), with counters and gauges that
follow what really happens (auth failures, open connections, events in and
out, kicks, HTTP errors).

canary_interval is 0 in these tests so the bridge's own canaries do not move
the event counters.
"""
import re
import socket
import time

import pytest

import rtlib
from rtlib import Client, admin, wait_for, wait_settled

SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*,?)?\})?'
    r' (?P<value>[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|Inf))'
    r'(?: [-+]?[0-9]+)?$')
HELP_RE = re.compile(r"^# HELP (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<text>.*)$")
TYPE_RE = re.compile(
    r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) "
    r"(?P<type>counter|gauge|histogram|summary|untyped)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')

# what admin_metrics() promises (src/admin.c)
FAMILIES = {
    "realtimed_connections": "gauge",
    "realtimed_subscriptions": "gauge",
    "realtimed_channels": "gauge",
    "realtimed_workers": "gauge",
    "realtimed_auth_failures_total": "counter",
    "realtimed_messages_in_total": "counter",
    "realtimed_messages_out_total": "counter",
    "realtimed_events_out_total": "counter",
    "realtimed_event_bytes_out_total": "counter",
    "realtimed_slow_consumer_closes_total": "counter",
    "realtimed_handshake_errors_total": "counter",
    "realtimed_handshake_timeouts_total": "counter",
    "realtimed_heartbeat_drops_total": "counter",
    "realtimed_rate_limited_total": "counter",
    "realtimed_protocol_errors_total": "counter",
    "realtimed_server_full_total": "counter",
    "realtimed_tls_handshakes_total": "counter",
    "realtimed_tls_errors_total": "counter",
    "realtimed_kicked_total": "counter",
    "realtimed_redis_up": "gauge",
    "realtimed_redis_reconnects_total": "counter",
    "realtimed_events_in_total": "counter",
    "realtimed_events_unrouted_total": "counter",
    "realtimed_redis_coalesced_reads_total": "counter",
    "realtimed_drops_total": "counter",
    "realtimed_canary_sent_total": "counter",
    "realtimed_canary_misses_total": "counter",
    "realtimed_table_full_total": "counter",
    "realtimed_worker_connections": "gauge",
    "realtimed_worker_events_out_total": "counter",
}


# ------------------------------------------------------------------ helpers

def get_metrics(port):
    st, hd, body, _ = rtlib.http_get(port, "/metrics")
    assert st == 200, (st, hd, body[:200])
    return hd, body.decode("utf-8")


def parse(text):
    """{(name, frozenset(labels.items())): float} after checking every line."""
    types, helps, samples = {}, set(), {}
    assert text.endswith("\n"), "the exposition must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line == line.strip() and line, "line %d: %r" % (n, line)
        if line.startswith("#"):
            m = HELP_RE.match(line)
            if m:
                assert m.group("name") not in helps, "line %d: second HELP" % n
                assert m.group("text").strip(), "line %d: empty HELP" % n
                helps.add(m.group("name"))
                continue
            m = TYPE_RE.match(line)
            assert m, "line %d is neither HELP nor TYPE: %r" % (n, line)
            name = m.group("name")
            assert name not in types, "line %d: second TYPE for %s" % (n, name)
            assert not any(_family(k[0], types) == name for k in samples), \
                "line %d: TYPE %s after its samples" % (n, name)
            types[name] = m.group("type")
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line %d is not `name{labels} value`: %r" % (n, line)
        name = m.group("name")
        family = _family(name, types)
        assert family in types, "line %d: sample of %s before (or without) its TYPE" % (n, name)
        labels = frozenset(LABEL_RE.findall(m.group("labels") or ""))
        key = (name, labels)
        assert key not in samples, "line %d: duplicate series %r" % (n, line)
        v = float(m.group("value"))
        if types[family] == "histogram":
            assert v >= 0, line
        if types[family] == "counter":
            assert name.endswith("_total"), "counter %s without _total" % name
            assert v >= 0, line
        samples[key] = v
    for name in types:
        assert any(_family(k[0], types) == name for k in samples), \
            "TYPE %s without samples" % name
    return types, samples


def _family(name, types):
    """A histogram's samples are NAME_bucket, NAME_sum and NAME_count."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return name


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, "no series %s%r in %r" % (
        name, labels, sorted(k for k in samples if k[0] == name))
    return samples[key]


def metrics(port):
    return parse(get_metrics(port)[1])[1]


def start(start_daemon, nworkers=2, **conf):
    r = start_daemon.redis()
    c = {"workers": str(nworkers), "redis_url": r.url, "canary_interval": "0"}
    c.update(conf)
    d = start_daemon(conf=c)
    wait_settled(d, nworkers)
    return d, r


def rewrite_and_hup(d, **changes):
    assert "keeping the old configuration" not in d.reconfigure(**changes)


# -------------------------------------------------------------------- format

def test_metrics_is_valid_prometheus_text(start_daemon):
    d, _ = start(start_daemon, 2)
    hd, text = get_metrics(d.port)
    assert hd["content-type"].startswith("text/plain"), hd
    assert "version=0.0.4" in hd["content-type"], hd
    assert int(hd["content-length"]) == len(text.encode())
    types, samples = parse(text)
    for name, typ in FAMILIES.items():
        assert types.get(name) == typ, "%s: TYPE %r, want %s" % (name, types.get(name), typ)
    assert value(samples, "realtimed_workers") == 2
    assert value(samples, "realtimed_redis_up") == 1
    assert {k[1] for k in samples if k[0] == "realtimed_worker_connections"} == \
        {frozenset({("worker", "0")}), frozenset({("worker", "1")})}
    assert {dict(k[1])["kind"] for k in samples if k[0] == "realtimed_connections"} == \
        {"authenticated", "anonymous"}
    assert {dict(k[1])["reason"] for k in samples
            if k[0] == "realtimed_auth_failures_total"} >= \
        {"invalid_token", "token_required", "token_expired"}


def test_metrics_format_holds_with_traffic(start_daemon):
    """Same checks once every counter had a reason to move."""
    d, r = start(start_daemon, 2)
    cs = [Client(d.port, rtlib.mint(userId="fmt-%d" % i)) for i in range(6)]
    for c in cs:
        c.subscribe("apps:created")
    r.command("PUBLISH", "apps:created", '{"x":"a \\" quote"}')
    for c in cs:
        c.next_event()
    bad = rtlib.RawWS(d.port, "/ws?token=garbage")
    bad.recv_close()
    rtlib.http_get(d.port, "/nope")
    types, samples = parse(get_metrics(d.port)[1])
    assert value(samples, "realtimed_events_out_total") >= 6
    for c in cs:
        c.close()


def test_metrics_answers_only_get(start_daemon):
    d = start_daemon()
    req = ("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").encode()
    st, hd, _, _ = rtlib.http_raw(d.port, req)
    assert st == 405 and "GET" in hd.get("allow", ""), (st, hd)


# ------------------------------------------------------------ access control

def test_metrics_refused_outside_metrics_allow(start_daemon):
    d = start_daemon(conf={"metrics_allow": "10.0.0.0/8"})
    st, _, body, _ = rtlib.http_get(d.port, "/metrics")
    assert st == 403
    assert b"realtimed_" not in body
    st, _, _ = rtlib.health(d.port)
    assert st in (200, 503)       # /health is for everyone


@pytest.mark.parametrize("allow", ["127.0.0.0/8", "10.0.0.0/8 127.0.0.1",
                                   "192.168.0.0/16,127.0.0.1/32", "::1 127.0.0.1"])
def test_metrics_served_to_addresses_in_metrics_allow(start_daemon, allow):
    d = start_daemon(conf={"metrics_allow": '"%s"' % allow})
    st, _, body, _ = rtlib.http_get(d.port, "/metrics")
    assert st == 200, (allow, st)
    assert b"realtimed_workers" in body


def test_metrics_allow_is_reloaded_live(start_daemon):
    d = start_daemon(conf={"workers": "2"})
    wait_settled(d, 2, redis=False)
    for _ in range(6):
        assert rtlib.http_get(d.port, "/metrics")[0] == 200
    rewrite_and_hup(d, metrics_allow="10.0.0.0/8")
    # every worker applies it (the kernel spreads the requests)
    for _ in range(12):
        assert rtlib.http_get(d.port, "/metrics")[0] == 403
    rewrite_and_hup(d, metrics_allow="127.0.0.1")
    for _ in range(12):
        assert rtlib.http_get(d.port, "/metrics")[0] == 200


# ------------------------------------------------------------ moving numbers

def test_connection_gauges_follow_open_clients(start_daemon):
    d, _ = start(start_daemon, 2)
    s = metrics(d.port)
    assert value(s, "realtimed_connections", kind="anonymous") == 0
    assert value(s, "realtimed_connections", kind="authenticated") == 0
    anon = [Client(d.port) for _ in range(5)]
    auth = [Client(d.port, rtlib.mint(userId="g-%d" % i)) for i in range(7)]
    for c in auth[:4]:
        c.subscribe("apps:created")
        c.subscribe("user:" + "g-%d" % auth.index(c))
    anon[0].subscribe("announcements")

    def counts():
        s = metrics(d.port)
        return (value(s, "realtimed_connections", kind="anonymous"),
                value(s, "realtimed_connections", kind="authenticated"),
                value(s, "realtimed_subscriptions"), value(s, "realtimed_channels"),
                sum(v for k, v in s.items() if k[0] == "realtimed_worker_connections"))
    wait_for(lambda: counts() == (5, 7, 9, 6, 12), 5, "gauges (5, 7, 9, 6, 12), got %r"
             % (counts(),))
    for c in anon[:2] + auth[:3]:
        c.close()
    wait_for(lambda: counts()[:2] == (3, 4) and counts()[4] == 7, 5,
             "gauges after 5 clients left, got %r" % (counts(),))
    for c in anon[2:] + auth[3:]:
        c.close()
    wait_for(lambda: counts() == (0, 0, 0, 0, 0), 5, "all gauges back to 0")


def test_auth_failure_counters_move(start_daemon):
    d = start_daemon(conf={"workers": "2"})
    s0 = metrics(d.port)
    for tok in ["not.a.jwt", rtlib.mint(key="wrong-secret-wrong-secret-wrong")]:
        ws = rtlib.RawWS(d.port, "/ws?token=" + tok)
        assert ws.recv_close()[0] == 1008
        ws.close_socket()
    expired = rtlib.mint(exp_in=-3600)
    ws = rtlib.RawWS(d.port, "/ws?token=" + expired)
    assert ws.recv_close()[0] == 1008
    ws.close_socket()

    def moved():
        s = metrics(d.port)
        inv = value(s, "realtimed_auth_failures_total", reason="invalid_token") - \
            value(s0, "realtimed_auth_failures_total", reason="invalid_token")
        exp = value(s, "realtimed_auth_failures_total", reason="token_expired") - \
            value(s0, "realtimed_auth_failures_total", reason="token_expired")
        return inv + exp == 3 and inv >= 2
    wait_for(moved, 5, "invalid_token (+ token_expired) to count 3 refusals")
    # token_required once anonymous connections are off
    rewrite_and_hup(d, allow_anonymous="no")
    before = value(metrics(d.port), "realtimed_auth_failures_total", reason="token_required")
    for _ in range(3):
        ws = rtlib.RawWS(d.port, "/ws")
        assert ws.recv_close()[0] == 1008
        ws.close_socket()
    wait_for(lambda: value(metrics(d.port), "realtimed_auth_failures_total",
                           reason="token_required") == before + 3, 5,
             "token_required to count 3")


def test_event_counters_move_after_a_publish(start_daemon):
    d, r = start(start_daemon, 2)
    subs = [Client(d.port, rtlib.mint(userId="ev-%d" % i)) for i in range(8)]
    for c in subs:
        c.subscribe("deployments:completed")
    wait_for(lambda: value(metrics(d.port), "realtimed_subscriptions") == 8, 5, "8 subs")
    s0 = metrics(d.port)
    for i in range(3):
        assert r.command("PUBLISH", "deployments:completed", '{"i":%d}' % i).startswith(b":")
    r.command("PUBLISH", "apps:deleted", '{"nobody":"listens"}')
    for c in subs:
        for i in range(3):
            assert c.next_event()["data"] == {"i": i}

    def delta(name, **labels):
        return value(metrics(d.port), name, **labels) - value(s0, name, **labels)
    wait_for(lambda: delta("realtimed_events_in_total") == 4, 5, "events_in +4")
    wait_for(lambda: delta("realtimed_events_out_total") == 24, 5, "events_out +24")
    assert delta("realtimed_event_bytes_out_total") > 24 * len('{"i":0}')
    assert delta("realtimed_events_unrouted_total") == 1
    s = metrics(d.port)
    per_worker = sum(v for k, v in s.items() if k[0] == "realtimed_worker_events_out_total")
    assert per_worker == value(s, "realtimed_events_out_total")
    # the admin socket's publish counts the same way
    sock = d.conf["admin_socket"]
    assert admin(sock, 'publish deployments:completed {"i":3}')["ok"] is True
    for c in subs:
        assert c.next_event()["data"] == {"i": 3}
    wait_for(lambda: delta("realtimed_events_in_total") == 5, 5, "events_in +5")
    for c in subs:
        c.close()


def test_message_kick_and_http_error_counters_move(start_daemon):
    d, _ = start(start_daemon, 2)
    sock = d.conf["admin_socket"]
    s0 = metrics(d.port)
    c = Client(d.port, rtlib.mint(userId="kicked"))
    for _ in range(5):
        assert c.reply({"type": "ping"})["type"] == "pong"

    def delta(name, **labels):
        return value(metrics(d.port), name, **labels) - value(s0, name, **labels)
    wait_for(lambda: delta("realtimed_messages_in_total") == 5, 5, "messages_in +5")
    assert delta("realtimed_messages_out_total") >= 5
    assert admin(sock, "kick " + c.id)["kicked"] == 1
    assert c.ws.recv_close()[0] == 1008
    wait_for(lambda: delta("realtimed_kicked_total") == 1, 5, "kicked +1")
    for path in ("/nope", "/ws/extra"):
        assert rtlib.http_get(d.port, path)[0] == 404
    assert rtlib.http_get(d.port, "/ws")[0] == 426
    wait_for(lambda: delta("realtimed_handshake_errors_total") >= 3, 5,
             "handshake_errors +3")
    c.ws.close_socket()


def test_metrics_agree_with_admin_stats(start_daemon):
    d, r = start(start_daemon, 2)
    sock = d.conf["admin_socket"]
    cs = [Client(d.port, rtlib.mint(userId="agree-%d" % i) if i % 2 else None)
          for i in range(10)]
    for c in cs:
        c.subscribe("announcements")
    r.command("PUBLISH", "announcements", "{}")
    for c in cs:
        c.next_event()
    time.sleep(0.2)
    st = admin(sock, "stats")["stats"]
    s = metrics(d.port)
    assert value(s, "realtimed_connections", kind="authenticated") == st["authenticated"] == 5
    assert value(s, "realtimed_connections", kind="anonymous") == st["anonymous"] == 5
    assert value(s, "realtimed_subscriptions") == st["subscriptions"] == 10
    assert value(s, "realtimed_channels") == st["channels"] == 1
    assert value(s, "realtimed_events_out_total") == st["events_out"]
    assert value(s, "realtimed_events_in_total") == st["bridge"]["events_in"]
    assert value(s, "realtimed_messages_in_total") == st["messages_in"]
    for c in cs:
        c.close()


def _get6(port, path):
    s = socket.create_connection(("::1", port), timeout=5)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: [::1]:%d\r\n\r\n" % (path, port)).encode())
        return rtlib.read_http_response(s)[0]
    finally:
        s.close()


def _ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_metrics_allow_on_a_dual_stack_listener(start_daemon):
    """On [::]:PORT an IPv4 client arrives as ::ffff:127.0.0.1 and is still
    127.0.0.1 for metrics_allow; ::1 is matched as IPv6."""
    port = rtlib.free_port()
    d = start_daemon(conf={"listen": "[::]:%d" % port, "metrics_allow": "127.0.0.1"},
                     ready=False)
    wait_for(lambda: _try(lambda: rtlib.http_get(port, "/health", timeout=1)), 10,
             "the dual-stack listener")
    assert rtlib.http_get(port, "/metrics")[0] == 200
    assert _get6(port, "/metrics") == 403
    rewrite_and_hup(d, metrics_allow='"::1"')
    assert _get6(port, "/metrics") == 200
    assert rtlib.http_get(port, "/metrics")[0] == 403


def _try(f):
    try:
        f()
        return True
    except (OSError, ConnectionError, AssertionError):
        return False
