"""Channel namespaces from the configuration (PROTOCOL.md "Channel
namespaces"), end to end: a real daemon with an operator's namespace table,
a real redis-server, real WebSocket clients, and what those clients get.

- a multi-tenant table: `connected.authorizedChannels` in the order of the
  three passes, subscribe verdicts for one's own org, another org, an
  admin, role= namespaces; the bridge subscribes to Redis from the table
  (an event on a family the table does not name reaches no one);
- no namespace line: PROTOCOL.md's default table, unchanged;
- max_subscribers, host-wide over two workers ("Channel is full", counted);
- a reload that changes the table: subscriptions no longer allowed end
  with an `unsubscribed` ("not authorized"), the others keep their events,
  a new namespace starts delivering, and a numbered sequence published
  across the reload arrives with no gap and no duplicate;
- `realtimed -t` errors (FILE:LINE: namespace: ...) and the shadowing
  warning, a reload with a bad line keeping the old table, `-t -v` printing
  the effective table.

Every wait is bounded.
"""
import os
import signal
import socket
import subprocess
import threading
import time

import chaoslib
import proclib
import rtlib
from rtlib import Client, wait_for

BIN_TIMEOUT = 15
DENIED = "Not authorized to subscribe to this channel"
UNKNOWN = "Unknown channel"
FULL = "Channel is full"

MULTI_TENANT = [
    "announcements public",
    "status:page authenticated",
    "org:{orgId}:admin role=admin,owner",
    "org:{orgId}:* authenticated well_known=chat,billing",
    "user:{userId} self",
    "team:{teamId}.{userId} self",
    "billing:* role=billing,admin well_known=invoices",
    "ops:alerts role=admin",
]


# ------------------------------------------------------------------ helpers

def ns_value(lines):
    """The value of a "namespace" key in rtlib.Daemon's conf dict that
    writes one namespace line per item."""
    return "\nnamespace ".join(lines)


def start(start_daemon, lines, workers=1, **conf):
    c = {"canary_interval": "0"}
    if lines is not None:
        c["namespace"] = ns_value(lines)
    c.update(conf)
    return proclib.start_settled(start_daemon, workers, **c)


def write_daemon_conf(d):
    with open(d.conf_path, "w") as f:
        f.write("# written by tests/integration/test_namespaces.py\n")
        for k, v in d.conf.items():
            if v is not None:
                f.write("%s %s\n" % (k, v))


def rewrite_namespaces(d, lines):
    d.conf = dict(d.conf)
    d.conf["namespace"] = ns_value(lines)
    write_daemon_conf(d)


def conf_line_of(path, text):
    """The 1-based number of the line of file path that is exactly text."""
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if line.rstrip("\n") == text:
                return i
    raise AssertionError("%r not in %s" % (text, path))


def _reload_marks(text):
    return text.count("reload complete") + text.count("keeping the old configuration")


def hup(d, timeout=5):
    """SIGHUP the master; wait until it logged the outcome."""
    before = _reload_marks(d.log())
    os.kill(d.proc.pid, signal.SIGHUP)
    wait_for(lambda: _reload_marks(d.log()) > before, timeout, "the reload to finish")
    return d.log()


def tok(**claims):
    return rtlib.mint(claims=dict(claims, iat=int(time.time()),
                                  exp=int(time.time()) + 3600))


def next_message(c, pred, timeout=5, what="a message"):
    """Read c's messages until one satisfies pred (returned); events met
    on the way are kept in c.events, other messages in c.other."""
    if not hasattr(c, "other"):
        c.other = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %s; events %r, other %r"
                                 % (what, c.events[-5:], c.other[-5:]))
        try:
            m = c.ws.recv_json(left)
        except (socket.timeout, TimeoutError):
            continue
        if pred(m):
            return m
        if m.get("type") == "event":
            c.events.append(m)
        else:
            c.other.append(m)


def events_until_sentinel(c, key, timeout=8):
    """[(channel, data)] of c's events (those kept already first) before the
    event whose data is {"sentinel": key}, but receivers()'s probes;
    c.events is emptied."""
    next_message(c, lambda m: m.get("type") == "event" and
                 m.get("data") == {"sentinel": key}, timeout,
                 "sentinel %r" % (key,))
    got = [(e["channel"], e["data"]) for e in c.events
           if e["data"] != PROBE]
    c.events = []
    return got


def sub_reply(c, channel):
    return c.reply({"type": "subscribe", "channel": channel})


def verdict_of(m, channel):
    """"ok", "denied", "unknown", "invalid", "full" or the raw reply."""
    if m.get("type") == "subscribed" and m.get("channel") == channel:
        return "ok"
    if m.get("type") == "error":
        return {DENIED: "denied", UNKNOWN: "unknown", FULL: "full",
                "Missing or invalid channel": "invalid"}.get(m.get("message"), m)
    return m


def worker_of(d):
    """{connection id: worker index} from the admin socket."""
    rows = rtlib.admin(d.conf["admin_socket"], "connections")["connections"]
    return {r["id"]: r["worker"] for r in rows}


PROBE = {"probe": True}     # events_until_sentinel() leaves these out


def receivers(r, channel):
    """Redis's count of subscriptions a PUBLISH on channel reached (the
    bridge's: nobody else subscribes to this Redis)."""
    return proclib.publish(r.port, channel, '{"probe":true}')


def run_test_mode(path, *flags):
    p = subprocess.run([rtlib.realtimed_bin(), "-t"] + list(flags) + ["-c", str(path)],
                       capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=BIN_TIMEOUT, env=rtlib.clean_env())
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def write_conf(path, lines):
    with open(path, "w") as f:
        f.write("# written by tests/integration/test_namespaces.py\n")
        for line in lines:
            f.write(line + "\n")


BASE = ["listen 127.0.0.1:18080", "jwt_secret %s" % rtlib.SECRET]   # lines 2, 3


# ----------------------------------------------------- a multi-tenant table

def test_multi_tenant_table_lists_grants_and_routes(start_daemon):
    d, r = start(start_daemon, MULTI_TENANT)
    # the bridge subscribed to Redis from the table, each name once
    bridge = {
        "announcements": 1, "status:page": 1, "ops:alerts": 1,
        "org:o1:chat": 1, "org:o1:admin": 1, "org:x": 1, "user:u1": 1,
        "team:t1.u1": 1, "billing:x": 1, "billing:invoices": 1,
        # families the table does not name
        "apps:created": 0, "users:created": 0, "system:health": 0,
        "foo:bar": 0, "status:pages": 0, "ops:other": 0, "announcement": 0,
    }
    got = {ch: receivers(r, ch) for ch in bridge}
    assert got == bridge, {ch: (got[ch], n) for ch, n in bridge.items() if got[ch] != n}

    anon = Client(d.port)
    u1 = Client(d.port, tok(userId="u1", orgId="o1", teamId="t1"))
    u2 = Client(d.port, tok(userId="u2", orgId="o2", role="owner"))
    adm = Client(d.port, tok(userId="adm", orgId="o1", role="admin"))
    bil = Client(d.port, tok(userId="b1", orgId="o3", role="billing"))
    clients = {"anon": anon, "u1": u1, "u2": u2, "adm": adm, "bil": bil}

    # connected.authorizedChannels: well_known names of '*' namespaces,
    # then exact names, then claim patterns, each pass in table order
    want = {
        "anon": ["announcements"],
        "u1": ["org:o1:chat", "org:o1:billing", "announcements", "status:page",
               "user:u1", "team:t1.u1"],
        "u2": ["org:o2:chat", "org:o2:billing", "announcements", "status:page",
               "org:o2:admin", "user:u2"],
        "adm": ["org:o1:chat", "org:o1:billing", "billing:invoices",
                "announcements", "status:page", "ops:alerts", "org:o1:admin",
                "user:adm"],
        "bil": ["org:o3:chat", "org:o3:billing", "billing:invoices",
                "announcements", "status:page", "user:b1"],
    }
    for name, c in clients.items():
        m = c.reply({"type": "list_channels"})
        assert m["authorizedChannels"] == want[name], (name, m)
    # the greeting says the same (a fresh connection, read here)
    ws = rtlib.RawWS(d.port, "/ws?token=" + tok(userId="u1", orgId="o1", teamId="t1"))
    hello = ws.recv_json()
    ws.close_socket()
    assert hello["type"] == "connected" and hello["authorizedChannels"] == want["u1"], hello

    verdicts = [
        ("anon", "announcements", "ok"), ("anon", "status:page", "denied"),
        ("anon", "org:o1:chat", "denied"), ("anon", "user:u1", "denied"),
        ("anon", "foo:bar", "unknown"),
        ("u1", "org:o1:chat", "ok"), ("u1", "org:o1:billing", "ok"),
        ("u1", "org:o1:anything", "ok"), ("u1", "org:o2:chat", "denied"),
        ("u1", "org:o1:admin", "denied"), ("u1", "user:u1", "ok"),
        ("u1", "user:u2", "denied"), ("u1", "team:t1.u1", "ok"),
        ("u1", "team:t2.u1", "denied"), ("u1", "team:t1.u2", "denied"),
        ("u1", "billing:x", "denied"), ("u1", "ops:alerts", "denied"),
        ("u1", "status:page", "ok"), ("u1", "foo:bar", "unknown"),
        ("u1", "apps:created", "unknown"), ("u1", "system:health", "unknown"),
        ("u1", "org:", "unknown"), ("u1", "org:o1", "unknown"),
        ("u1", "org:o1:", "unknown"), ("u1", "org:*:chat", "invalid"),
        ("u2", "org:o2:admin", "ok"), ("u2", "org:o1:admin", "denied"),
        ("u2", "org:o2:chat", "ok"), ("u2", "org:o1:chat", "denied"),
        ("adm", "org:o9:admin", "ok"), ("adm", "org:o2:chat", "ok"),
        ("adm", "billing:x", "ok"), ("adm", "ops:alerts", "ok"),
        ("adm", "user:u1", "ok"), ("adm", "team:t1.u1", "ok"),
        ("adm", "foo:bar", "unknown"),
        ("bil", "billing:x", "ok"), ("bil", "billing:invoices", "ok"),
        ("bil", "org:o3:chat", "ok"), ("bil", "org:o1:chat", "denied"),
        ("bil", "ops:alerts", "denied"), ("bil", "org:o3:admin", "denied"),
    ]
    wrong = [(who, ch, v, m) for who, ch, v in verdicts
             for m in [sub_reply(clients[who], ch)] if verdict_of(m, ch) != v]
    assert not wrong, wrong
    # what each keeps for the events below
    for who, ch in [("u1", "org:o1:other"), ("u2", "org:o2:other")]:
        assert verdict_of(sub_reply(clients[who], ch), ch) == "ok"
    keep = {"anon": {"announcements"},
            "u1": {"org:o1:chat", "org:o1:other", "announcements"},
            "u2": {"org:o2:chat", "org:o2:other", "announcements"},
            "adm": {"org:o1:chat", "org:o2:chat", "billing:x", "announcements"},
            "bil": {"billing:x", "announcements"}}
    for who, c in clients.items():
        subs = set(c.reply({"type": "list_channels"})["subscribedChannels"])
        for ch in subs - keep[who]:
            assert c.reply({"type": "unsubscribe", "channel": ch})["type"] == "unsubscribed"
        for ch in keep[who] - subs:
            assert verdict_of(sub_reply(c, ch), ch) == "ok", (who, ch)
        assert set(c.reply({"type": "list_channels"})["subscribedChannels"]) == keep[who]

    # events as an operator publishes them: redis-cli, then raw RESP
    assert proclib.cli_publish(r.port, "org:o1:chat", '{"n":1}') == 1
    assert proclib.cli_publish(r.port, "org:o2:chat", '{"n":2}') == 1
    assert proclib.publish(r.port, "billing:x", '{"n":3}') == 1
    assert proclib.cli_publish(r.port, "apps:created", '{"n":4}') == 0
    assert proclib.publish(r.port, "org:o1:chat:x", '{"n":5}') == 1
    assert proclib.publish(r.port, "announcements", '{"sentinel":1}') == 1
    expect = {
        "anon": [],
        "u1": [("org:o1:chat", {"n": 1})],
        "u2": [("org:o2:chat", {"n": 2})],
        "adm": [("org:o1:chat", {"n": 1}), ("org:o2:chat", {"n": 2}),
                ("billing:x", {"n": 3})],
        "bil": [("billing:x", {"n": 3})],
    }
    for who, c in clients.items():
        assert events_until_sentinel(c, 1) == expect[who], who
    for c in clients.values():
        c.close()


# ----------------------------------------------------- the default table

def test_no_namespace_line_keeps_the_protocol_table(start_daemon):
    d, r = start(start_daemon, None)
    W = rtlib.WELL_KNOWN
    auth = W["apps"] + W["users"] + W["database"] + W["deployments"] + W["storage"]
    anon = Client(d.port)
    ws = rtlib.RawWS(d.port)
    assert ws.recv_json()["authorizedChannels"] == ["announcements"]
    ws.close_socket()
    for token, want in [
            (tok(userId="u1"), auth + ["announcements", "user:u1"]),
            (tok(userId="u1", role="user"), auth + ["announcements", "user:u1"]),
            (tok(userId="adm", role="admin"),
             auth + W["system"] + ["announcements", "user:adm"])]:
        ws = rtlib.RawWS(d.port, "/ws?token=" + token)
        hello = ws.recv_json()
        ws.close_socket()
        assert hello["type"] == "connected" and hello["authorizedChannels"] == want, hello
    u1 = Client(d.port, tok(userId="u1"))
    adm = Client(d.port, tok(userId="adm", role="admin"))
    for c, ch, v in [(anon, "announcements", "ok"), (anon, "apps:created", "denied"),
                     (anon, "foo:bar", "unknown"), (u1, "foo:bar", "unknown"),
                     (u1, "apps:anything", "ok"), (u1, "user:u1", "ok"),
                     (u1, "user:u2", "denied"), (u1, "system:health", "denied"),
                     (adm, "system:health", "ok"), (adm, "user:u2", "ok"),
                     (adm, "foo:bar", "unknown"), (u1, "org:o1:chat", "unknown")]:
        m = sub_reply(c, ch)
        assert verdict_of(m, ch) == v, (ch, v, m)
    assert receivers(r, "apps:created") == 1 and receivers(r, "foo:bar") == 0
    assert proclib.cli_publish(r.port, "apps:anything", '{"x":1}') == 1
    m = next_message(u1, lambda m: m.get("type") == "event")
    assert (m["channel"], m["data"]) == ("apps:anything", {"x": 1})
    for c in (anon, u1, adm):
        c.close()


# ------------------------------------------------------ max_subscribers

def test_max_subscribers_is_host_wide_and_counted(start_daemon):
    d, r = start(start_daemon, ["announcements public",
                                "room:* authenticated max_subscribers=2",
                                "free:* authenticated"], workers=2)
    rtlib.skip_if_single_worker(d.port, 2)
    # clients until each worker holds two
    pool = []
    for i in range(60):
        pool.append(Client(d.port, tok(userId="r%d" % i)))
        if i >= 2:
            wmap = worker_of(d)
            byw = {}
            for c in pool:
                byw.setdefault(wmap[c.id], []).append(c)
            if len(byw) == 2 and all(len(cs) >= 2 for cs in byw.values()):
                break
    else:
        raise AssertionError("60 connections did not spread over both workers")
    a0, a1 = byw[0][:2]         # worker 0
    b0, b1 = byw[1][:2]         # worker 1
    for c in (a0, a1, b0, b1):
        c.subscribe("free:sentinel")
    full_seen = 0

    def expect_full(c, ch):
        nonlocal full_seen
        m = sub_reply(c, ch)
        assert verdict_of(m, ch) == "full", m
        full_seen += 1

    a0.subscribe("room:1")
    a1.subscribe("room:1")
    expect_full(b0, "room:1")           # the third, on the other worker
    expect_full(b1, "room:1")
    assert sub_reply(a0, "room:1")["type"] == "subscribed"     # idempotent
    expect_full(b0, "room:1")
    b0.subscribe("room:2")              # another channel of the namespace
    for c in (a0, a1, b1):
        c.subscribe("free:unlimited")   # no limit there
    # an unsubscribe gives the place back at once
    assert a0.reply({"type": "unsubscribe", "channel": "room:1"})["type"] == "unsubscribed"
    b0.subscribe("room:1")
    expect_full(b1, "room:1")
    # and so does a connection that ends
    a1.close()

    def b1_in():
        nonlocal full_seen
        m = sub_reply(b1, "room:1")
        if verdict_of(m, "room:1") == "full":
            full_seen += 1
            return False
        assert m["type"] == "subscribed", m
        return True
    wait_for(b1_in, 5, "room:1 to have room after a subscriber's connection ended")
    expect_full(a0, "room:1")
    # only the two subscribers get room:1's events
    assert proclib.publish(r.port, "room:1", '{"n":1}') == 1
    assert proclib.publish(r.port, "free:sentinel", '{"sentinel":1}') == 1
    assert events_until_sentinel(b0, 1) == [("room:1", {"n": 1})]
    assert events_until_sentinel(b1, 1) == [("room:1", {"n": 1})]
    assert events_until_sentinel(a0, 1) == []
    # counted: admin stats and /metrics
    s = chaoslib.wait_counter(d, "channel_full", full_seen)
    assert s["channel_full"] == full_seen, (s, full_seen)
    m = chaoslib.metrics(d.port)
    assert m.get("realtimed_channel_full_total") == full_seen, \
        {k: v for k, v in m.items() if "full" in k}
    for c in pool:
        c.close()


# ---------------------------------------------------------------- reload

RELOAD_BEFORE = ["announcements public", "apps:* authenticated",
                 "feed:main authenticated", "billing:* authenticated"]
RELOAD_AFTER = ["announcements public", "apps:* authenticated",
                "feed:* authenticated", "billing:* role=billing",
                "news:* authenticated"]


def _spread(d, make, n_min=2, limit=40):
    """Clients from make(i) until both workers hold at least one (and
    n_min in all)."""
    cs = []
    for i in range(limit):
        cs.append(make(i))
        if len(cs) >= n_min and len({worker_of(d)[c.id] for c in cs}) == 2:
            return cs
    raise AssertionError("%d connections did not spread over both workers" % limit)


def test_reload_reauthorizes_and_resubscribes_without_a_gap(start_daemon):
    d, r = start(start_daemon, RELOAD_BEFORE, workers=2)
    rtlib.skip_if_single_worker(d.port, 2)
    plain = _spread(d, lambda i: Client(d.port, tok(userId="p%d" % i)))
    paying = _spread(d, lambda i: Client(d.port, tok(userId="q%d" % i, role="billing")))
    everyone = plain + paying
    for c in everyone:
        for ch in ("apps:seq", "feed:main", "billing:x", "announcements"):
            c.subscribe(ch)
    assert verdict_of(sub_reply(plain[0], "news:a"), "news:a") == "unknown"
    assert receivers(r, "news:a") == 0

    n = 150
    errors = []

    def publisher():
        try:
            for i in range(n):
                proclib.publish_many(r.port, [("apps:seq", '{"seq":%d}' % i),
                                              ("feed:main", '{"seq":%d}' % i)])
                time.sleep(0.012)
        except Exception as e:      # reported below
            errors.append(repr(e))
    th = threading.Thread(target=publisher)
    th.start()
    try:
        time.sleep(0.3)
        rewrite_namespaces(d, RELOAD_AFTER)
        log = hup(d)
        assert "reload: namespaces changed" in log, log[-2000:]
        assert "keeping the old configuration" not in log
        wait_for(lambda: receivers(r, "news:a") == 1, 5,
                 "the bridge to subscribe to the new namespace")
        assert th.is_alive(), "the sequence ended before the bridge resubscribed"
        # those no longer allowed are told, while the events flow
        for c in plain:
            m = next_message(c, lambda m: m.get("type") == "unsubscribed", 5,
                             "the revocation of billing:x")
            assert set(m) == {"type", "channel", "reason", "timestamp"}, m
            assert (m["channel"], m["reason"]) == ("billing:x", "not authorized"), m
            assert rtlib.TS_RE.match(m["timestamp"]), m
    finally:
        th.join(20)
    assert not th.is_alive() and not errors, errors
    proclib.publish(r.port, "announcements", '{"sentinel":1}')
    for c in everyone:
        got = events_until_sentinel(c, 1)
        for ch in ("apps:seq", "feed:main"):
            seqs = [data["seq"] for gch, data in got if gch == ch]
            assert seqs == list(range(n)), \
                "%s on %s: missing %r, extra/duplicate %r" % (
                    c.id, ch, sorted(set(range(n)) - set(seqs)),
                    [s for s in seqs if seqs.count(s) > 1 or s not in range(n)][:10])
        assert not [m for m in getattr(c, "other", []) if m.get("type") != "pong"], \
            (c in paying, c.other)
    # billing:x now needs role=billing
    proclib.publish(r.port, "billing:x", '{"after":1}')
    proclib.publish(r.port, "announcements", '{"sentinel":2}')
    for c in plain:
        assert events_until_sentinel(c, 2) == [], c.id
        m = c.reply({"type": "list_channels"})
        assert sorted(m["subscribedChannels"]) == ["announcements", "apps:seq", "feed:main"], m
        assert verdict_of(sub_reply(c, "billing:x"), "billing:x") == "denied"
    for c in paying:
        assert events_until_sentinel(c, 2) == [("billing:x", {"after": 1})], c.id
        m = c.reply({"type": "list_channels"})
        assert "billing:x" in m["subscribedChannels"], m
    # the bridge follows the new table: feed:* once (the SUBSCRIBE to
    # feed:main dropped), news:* added
    wait_for(lambda: receivers(r, "feed:main") == 1 and receivers(r, "news:a") == 1,
             5, "the bridge on the new subscriptions")
    assert receivers(r, "feed:other") == 1
    for c in everyone:
        c.subscribe("news:a")
    assert proclib.cli_publish(r.port, "news:a", '{"fresh":1}') == 1
    proclib.publish(r.port, "announcements", '{"sentinel":3}')
    for c in everyone:
        assert events_until_sentinel(c, 3) == [("news:a", {"fresh": 1})], c.id
    s = chaoslib.wait_counter(d, "subscriptions_revoked", len(plain))
    assert s["subscriptions_revoked"] == len(plain), s
    m = chaoslib.metrics(d.port)
    assert m.get("realtimed_subscriptions_revoked_total") == len(plain)
    for c in everyone:
        c.close()


def test_reload_with_a_bad_namespace_line_keeps_the_old_table(start_daemon):
    lines = ["announcements public", "apps:* authenticated", "apps:created public"]
    d, r = start(start_daemon, lines)
    # the shadowed line is a warning at load, the daemon runs
    shadow = "%s:%d: namespace 'apps:created' can never match: 'apps:*' (%s:%d) " \
        "comes first and matches every name it does" % (
            d.conf_path, conf_line_of(d.conf_path, "namespace apps:created public"),
            d.conf_path, conf_line_of(d.conf_path, "namespace apps:* authenticated"))
    assert shadow in d.log(), d.log()[-3000:]
    u = Client(d.port, tok(userId="u1"))
    u.subscribe("apps:x")
    # the new file would revoke apps:x (role=admin), but a line is bad
    rewrite_namespaces(d, ["announcements public", "apps:* role=admin",
                           "billing:* sometimes"])
    bad = conf_line_of(d.conf_path, "namespace billing:* sometimes")
    log = hup(d)
    assert "keeping the old configuration" in log, log[-2000:]
    want = "%s:%d: namespace: unknown WHO 'sometimes'" % (d.conf_path, bad)
    assert want in log, log[-2000:]
    rc, out, err = rtlib.ctl(d.conf["admin_socket"], "reload")
    assert rc != 0, (rc, out, err)
    assert want in out + err, (out, err)
    # the old table is still the one: nothing revoked, events flow
    time.sleep(0.2)
    assert proclib.publish(r.port, "apps:x", '{"still":1}') == 1
    m = next_message(u, lambda m: m.get("type") in ("event", "unsubscribed"))
    assert m["type"] == "event" and m["data"] == {"still": 1}, m
    assert u.reply({"type": "list_channels"})["subscribedChannels"] == ["apps:x"]
    u.subscribe("apps:y")
    assert verdict_of(sub_reply(u, "billing:x"), "billing:x") == "unknown"
    u.close()


# --------------------------------------------------------- realtimed -t

def test_config_test_names_file_and_line_of_a_bad_namespace(tmp_path):
    p = tmp_path / "ns.conf"
    cases = [
        (["namespace foo$ public"], "bad character '$'"),
        (["namespace apps:* nobody"], "unknown WHO 'nobody'"),
        (["namespace apps:* public foo=1"], "unknown option 'foo=1'"),
        (["namespace x:{bad-claim} self"], "'{bad-claim}' is not a claim name"),
        (["namespace x:{a}* self"], "must be followed by a name character"),
        (["namespace a:*:b public"], "'*' may only end it"),
        (["namespace a:b self"], "self needs a {claim}"),
        (["namespace a:b public well_known=x"], "well_known needs a pattern ending in '*'"),
        (["namespace a:* public history=1 history=2"], "history given twice"),
        (["namespace a:* public max_subscribers=-1"], "max_subscribers"),
        (["namespace a:{userId} public"], "anonymous connections have no claims"),
        (["namespace apps:*"], "expected PATTERN WHO"),
        (["namespace apps:* public", "namespace apps:* authenticated"],
         "namespace 'apps:*' is already declared at %s:4" % p),
    ]
    for extra, why in cases:
        write_conf(p, BASE + extra)
        rc, out, err = run_test_mode(p)
        bad_line = 3 + len(extra)
        assert rc != 0, (extra, rc, err)
        assert "%s:%d: namespace: " % (p, bad_line) in err, (extra, err)
        assert why in err, (extra, err)
        assert "successful" not in err, (extra, err)


def test_config_test_warns_about_a_shadowed_namespace(tmp_path):
    p = tmp_path / "shadow.conf"
    write_conf(p, BASE + ["namespace apps:* authenticated", "namespace apps:created public",
                          "namespace user:{userId} self", "namespace user:{userId}x self",
                          "namespace users:* authenticated"])
    rc, out, err = run_test_mode(p)
    assert rc == 0, err
    assert "%s:5: namespace 'apps:created' can never match: 'apps:*' (%s:4) comes first " \
        "and matches every name it does" % (p, p) in err, err
    # the shape decides: user:{userId} takes "user:abcx" whole
    assert "%s:7: namespace 'user:{userId}x' can never match: 'user:{userId}' (%s:6)" \
        % (p, p) in err, err
    assert "successful" in err
    assert "%s:8" % p not in err, err         # users:* is not shadowed


DEFAULT_DUMP = [
    "namespace announcements public history=100 history_ttl=300000ms",
    "namespace apps:* authenticated history=100 history_ttl=300000ms "
    "well_known=created,updated,deleted,deployed,status",
    "namespace users:* authenticated history=100 history_ttl=300000ms "
    "well_known=created,updated,deleted",
    "namespace user:{userId} self history=100 history_ttl=300000ms",
    "namespace database:* authenticated history=100 history_ttl=300000ms "
    "well_known=table_created,table_updated,table_deleted,row_updated",
    "namespace deployments:* authenticated history=100 history_ttl=300000ms "
    "well_known=started,completed,failed,status",
    "namespace storage:* authenticated history=100 history_ttl=300000ms "
    "well_known=uploaded,deleted,updated",
    "namespace system:* role=admin history=100 history_ttl=300000ms "
    "well_known=health,metrics,alerts",
]


def test_config_test_verbose_prints_the_effective_table(tmp_path):
    p = tmp_path / "dump.conf"
    write_conf(p, BASE + [
        "namespace announcements   public",
        "namespace org:{orgId}:*\tauthenticated well_known=chat,billing",
        "namespace billing:* role=billing,admin well_known=invoices max_subscribers=3 "
        "history_ttl=1m history=5",
        "namespace user:{userId} self history=10",
    ])
    rc, out, err = run_test_mode(p, "-v")
    assert rc == 0, err
    dumped = [l for l in out.splitlines() if l.startswith("namespace ")]
    want = [
        "namespace announcements public",
        "namespace org:{orgId}:* authenticated well_known=chat,billing",
        "namespace billing:* role=billing,admin history=5 history_ttl=60000ms "
        "max_subscribers=3 well_known=invoices",
        "namespace user:{userId} self history=10",
    ]
    assert dumped == want, out
    # read back, the dump is the same table
    again = tmp_path / "again.conf"
    write_conf(again, BASE + dumped)
    rc, out2, err = run_test_mode(again, "-v")
    assert rc == 0, err
    assert [l for l in out2.splitlines() if l.startswith("namespace ")] == want
    # no namespace line: the default table
    none = tmp_path / "none.conf"
    write_conf(none, BASE)
    rc, out3, err = run_test_mode(none, "-v")
    assert rc == 0, err
    assert [l for l in out3.splitlines() if l.startswith("namespace ")] == DEFAULT_DUMP, out3
