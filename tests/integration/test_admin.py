"""Operations, the admin socket: every command, through the raw Unix socket
and through realtimectl (human tables and --json), against a daemon with two
workers and real clients (anonymous and authenticated, subscribed to a few
channels); the error replies; realtimectl's exit codes; the socket's file
mode and who may connect to it.

Connections are spread over the workers by the kernel (SO_REUSEPORT), so the
population is topped up with idle anonymous clients until the registry shows
both workers holding some.  Every wait is bounded.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

import rtlib
from rtlib import Client, admin, admin_raw, ctl, ctl_json, wait_for, wait_settled


# ------------------------------------------------------------------ helpers

def human_table(text):
    """realtimectl's table: (header columns, rows as lists of cells)."""
    lines = [l for l in text.splitlines() if l.strip()]
    header = lines[0].split()
    rows = [l.split() for l in lines[1:]]
    return header, rows


class Pop:
    """A daemon with 2 workers, a Redis, and a known set of clients."""

    def __init__(self, start_daemon, conf=None):
        self.redis = start_daemon.redis()
        c = {"workers": "2", "redis_url": self.redis.url, "canary_interval": "0"}
        c.update(conf or {})
        self.d = start_daemon(conf=c)
        self.sock = self.d.conf["admin_socket"]
        wait_settled(self.d, 2)
        port = self.d.port
        self.clients = []
        self.anon = [self._add(Client(port)) for _ in range(3)]
        for c in self.anon:
            c.subscribe("announcements")
        self.alice = [self._add(Client(port, rtlib.mint(userId="alice", email="a@x.io")))
                      for _ in range(2)]
        for c in self.alice:
            c.subscribe("apps:created")
            c.subscribe("user:alice")
        self.bob = self._add(Client(port, rtlib.mint(userId="bob")))
        self.bob.subscribe("apps:created")
        self.bob.subscribe("deployments:started")
        self.carol = self._add(Client(port, rtlib.mint(userId="carol", role="admin")))
        self.carol.subscribe("system:alerts")
        self.carol.subscribe("user:alice")   # admins may
        # idle anonymous clients until both workers hold some connections
        self.fillers = []
        for _ in range(60):
            if len(self.workers_used()) >= 2:
                break
            self.fillers.append(self._add(Client(port)))
        assert len(self.workers_used()) == 2, \
            "connections never landed on both workers: %r" % self.conn_rows()

    def _add(self, c):
        self.clients.append(c)
        return c

    def conn_rows(self):
        r = admin(self.sock, "connections")
        assert r["ok"], r
        return r["connections"]

    def workers_used(self):
        return {c["worker"] for c in self.conn_rows()}

    def open_clients(self):
        return [c for c in self.clients if not getattr(c, "gone", False)]

    def expected_channels(self):
        out = {}
        for c in self.open_clients():
            for ch in c.subs:
                out[ch] = out.get(ch, 0) + 1
        return out

    def expected_stats(self):
        open_ = self.open_clients()
        auth = sum(1 for c in open_ if c.user is not None)
        return {"connections": len(open_), "authenticated": auth,
                "anonymous": len(open_) - auth,
                "subscriptions": sum(len(c.subs) for c in open_),
                "channels": len(self.expected_channels()), "workers": 2}

    def stats_match(self):
        s = admin(self.sock, "stats")["stats"]
        want = self.expected_stats()
        return all(s[k] == v for k, v in want.items()) and s

    def publish(self, channel, payload):
        r = self.redis.command("PUBLISH", channel, payload)
        assert r.startswith(b":"), r
        return int(r[1:].strip())

    def close_all(self):
        for c in self.open_clients():
            c.close()


@pytest.fixture
def pop(start_daemon):
    p = Pop(start_daemon)
    yield p
    p.close_all()


@pytest.fixture(scope="module")
def lone(module_factory):
    """One module-wide daemon (1 worker, Redis) for tests that leave no trace."""
    r = module_factory.redis()
    return module_factory(conf={"redis_url": r.url, "canary_interval": "0"})


@pytest.fixture
def pubdir():
    """A directory anyone may traverse (the test tmp dirs are 0700)."""
    d = tempfile.mkdtemp(prefix="rt-adm-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------- commands

ALL_USAGES = ["help", "stats", "health", "workers", "channels [PREFIX]",
              "connections [USER-ID]", "kick CONNECTION-ID", "kick-user USER-ID",
              "publish CHANNEL JSON", "reload", "revoke JTI [UNTIL]", "unrevoke JTI",
              "nodes"]
# realtimectl's help: its own help takes a command (help CMD)
HUMAN_USAGES = ["help [COMMAND]"] + ALL_USAGES[1:]


def human_usages(text):
    """The usages of realtimectl help's "usage  description" lines."""
    return [re.split(r"\s{2,}", l, maxsplit=1)[0] for l in text.splitlines()]


def test_help_lists_every_command(pop):
    r = admin(pop.sock, "help")
    assert r["ok"] is True
    assert r["commands"] == ALL_USAGES
    rc, out, err = ctl(pop.sock, "help")
    assert rc == 0, err
    assert human_usages(out) == HUMAN_USAGES, out
    rc, j = ctl_json(pop.sock, "help")
    assert rc == 0 and j == r


def test_stats_totals_equal_the_real_clients(pop):
    want = pop.expected_stats()
    s = wait_for(pop.stats_match, 5, "stats to match %r" % want)
    assert s["bridge"]["redis"] == "up"
    # after a few protocol messages the message counters are not zero
    assert s["messages_in"] >= want["subscriptions"]
    assert s["messages_out"] >= want["subscriptions"]
    rc, j = ctl_json(pop.sock, "stats")
    assert rc == 0 and j["ok"] is True
    for k, v in want.items():
        assert j["stats"][k] == v, (k, j["stats"])
    rc, out, err = ctl(pop.sock, "stats")
    assert rc == 0, err
    kv = rtlib.ctl_kv(out)
    for k, v in want.items():
        assert kv.get("stats." + k) == str(v), (k, out)
    assert kv.get("stats.bridge.redis") == "up", out
    # a client leaving is reflected
    gone = pop.fillers[0] if pop.fillers else pop.anon[-1]
    gone.close()
    gone.gone = True
    wait_for(pop.stats_match, 5, "stats after one client left")


def test_health_reports_the_host(pop):
    wait_for(pop.stats_match, 5, "stats")
    r = admin(pop.sock, "health")
    assert r["ok"] is True
    h = r["health"]
    want = pop.expected_stats()
    assert h["status"] == "ok" and h["service"] == "realtime"
    assert h["redis"] == "up" and h["workers"] == 2
    assert h["connections"] == want["connections"]
    assert h["authenticated"] == want["authenticated"]
    assert h["activeChannels"] == want["channels"]
    assert rtlib.TS_RE.match(h["timestamp"]), h
    rc, j = ctl_json(pop.sock, "health")
    assert rc == 0 and j["health"]["connections"] == want["connections"]
    rc, out, err = ctl(pop.sock, "health")
    assert rc == 0, err
    kv = rtlib.ctl_kv(out)
    assert kv["health.status"] == "ok" and kv["health.workers"] == "2", out


def test_workers_lists_two_running_workers_with_live_pids(pop):
    wait_for(pop.stats_match, 5, "stats")
    r = admin(pop.sock, "workers")
    assert r["ok"] is True
    ws = r["workers"]
    assert [w["id"] for w in ws] == [0, 1]
    master = pop.d.proc.pid
    pids = set()
    for w in ws:
        assert w["state"] == "running", w
        assert w["pid"] > 0 and w["pid"] != master
        os.kill(w["pid"], 0)                     # exists
        assert rtlib.ppid(w["pid"]) == master, "worker %r is not the master's child" % w
        assert w["uptime"] >= 0
        pids.add(w["pid"])
    assert len(pids) == 2
    assert sum(w["connections"] for w in ws) == len(pop.open_clients())
    assert all(w["connections"] > 0 for w in ws), ws
    assert sum(w["subscriptions"] for w in ws) == pop.expected_stats()["subscriptions"]
    b = r["bridge"]
    assert b["state"] == "running" and b["redis"] == "up"
    assert b["pid"] not in pids and rtlib.ppid(b["pid"]) == master
    # the connections listing agrees on who holds what
    per = {0: 0, 1: 0}
    for c in pop.conn_rows():
        per[c["worker"]] += 1
    assert per == {w["id"]: w["connections"] for w in ws}

    rc, j = ctl_json(pop.sock, "workers")
    assert rc == 0 and {w["pid"] for w in j["workers"]} == pids
    rc, out, err = ctl(pop.sock, "workers")
    assert rc == 0, err
    lines = out.splitlines()
    header, rows = human_table("\n".join(lines[:3]))
    assert header[:3] == ["id", "pid", "state"], out
    assert len(rows) == 2
    assert {int(row[1]) for row in rows} == pids and all(row[2] == "running" for row in rows)
    assert any(l.startswith("bridge: pid %d" % b["pid"]) for l in lines), out


def test_channels_lists_subscriber_counts_and_filters_by_prefix(pop):
    want = pop.expected_channels()
    assert want == {"announcements": 3, "apps:created": 3, "user:alice": 3,
                    "deployments:started": 1, "system:alerts": 1}

    def listing(arg=None):
        r = admin(pop.sock, "channels" + ("" if arg is None else " " + arg))
        assert r["ok"] is True, r
        return {c["channel"]: c["subscribers"] for c in r["channels"]}
    wait_for(lambda: listing() == want, 5, "channels == %r" % want)
    assert listing("apps:") == {"apps:created": 3}
    assert listing("user:") == {"user:alice": 3}
    assert listing("a") == {"announcements": 3, "apps:created": 3}
    assert listing("system:alerts") == {"system:alerts": 1}
    assert listing("nothing-here") == {}

    rc, j = ctl_json(pop.sock, "channels", "apps:")
    assert rc == 0 and j["channels"] == [{"channel": "apps:created", "subscribers": 3}]
    rc, out, err = ctl(pop.sock, "channels")
    assert rc == 0, err
    header, rows = human_table(out)
    assert header == ["channel", "subscribers"], out
    assert {r[0]: int(r[1]) for r in rows} == want
    rc, out, err = ctl(pop.sock, "channels", "deploy")
    assert rc == 0, err
    assert human_table(out)[1] == [["deployments:started", "1"]], out
    # an unsubscribe is reflected
    pop.bob.reply({"type": "unsubscribe", "channel": "deployments:started"})
    pop.bob.subs.remove("deployments:started")
    wait_for(lambda: "deployments:started" not in listing(), 5,
             "the channel to go away after the last unsubscribe")


def test_connections_lists_every_connection_and_filters_by_user(pop):
    rows = pop.conn_rows()
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {c.id for c in pop.clients}
    for c in pop.clients:
        r = by_id[c.id]
        assert r["user"] == (c.user["userId"] if c.user else None), r
        assert r["admin"] is (c is pop.carol), r
        assert r["worker"] in (0, 1)
        assert r["peer"].startswith("127.0.0.1"), r
        assert abs(r["since"] - time.time()) < 120, r
    def nsubs_match():
        rows = {x["id"]: x for x in pop.conn_rows()}
        return all(rows[c.id]["subscriptions"] == len(c.subs) for c in pop.clients)
    wait_for(nsubs_match, 5, "per-connection subscription counts")

    r = admin(pop.sock, "connections alice")
    assert r["ok"] is True
    assert {x["id"] for x in r["connections"]} == {c.id for c in pop.alice}
    assert admin(pop.sock, "connections nobody")["connections"] == []

    rc, j = ctl_json(pop.sock, "connections", "bob")
    assert rc == 0 and [x["id"] for x in j["connections"]] == [pop.bob.id]
    rc, out, err = ctl(pop.sock, "connections")
    assert rc == 0, err
    header, trows = human_table(out)
    assert header[:3] == ["id", "worker", "user"], out
    assert {t[0] for t in trows} == {c.id for c in pop.clients}
    users = {t[0]: t[2] for t in trows}
    assert users[pop.bob.id] == "bob" and users[pop.anon[0].id] == "-"
    rc, out, err = ctl(pop.sock, "connections", "alice")
    assert rc == 0, err
    assert {t[0] for t in human_table(out)[1]} == {c.id for c in pop.alice}


def test_kick_closes_exactly_that_connection(pop):
    victim = pop.alice[0]
    r = admin(pop.sock, "kick " + victim.id)
    assert r == {"ok": True, "kicked": 1, "scope": "node", "warning": "control_secret is not set: this node only"}, r
    code, seen = victim.expect_close()
    assert code == 1008
    assert any(m.get("type") == "error" for m in seen), seen
    victim.gone = True
    # everyone else is still there and still gets events
    for c in pop.open_clients():
        assert c.alive()
    assert pop.publish("apps:created", '{"after":"kick"}') >= 1
    for c in (pop.alice[1], pop.bob):
        ev = c.next_event()
        assert ev["channel"] == "apps:created" and ev["data"] == {"after": "kick"}
    wait_for(pop.stats_match, 5, "stats without the kicked connection")
    assert victim.id not in {x["id"] for x in pop.conn_rows()}
    # kicking it again: gone
    r = admin(pop.sock, "kick " + victim.id)
    assert r["ok"] is False and "no such connection" in r["error"]

    # and through realtimectl
    victim2 = pop.anon[0]
    rc, out, err = ctl(pop.sock, "kick", victim2.id)
    assert rc == 0, err
    assert rtlib.ctl_kv(out).get("kicked") == "1", out
    code, _ = victim2.expect_close()
    assert code == 1008
    victim2.gone = True
    assert pop.bob.alive() and pop.anon[1].alive()
    rc, j = ctl_json(pop.sock, "kick", victim2.id)
    assert rc == 1 and j["ok"] is False
    rc, out, err = ctl(pop.sock, "kick", "00000000-0000-4000-8000-000000000000")
    assert rc == 1 and "no such connection" in err and out == ""


def test_kick_user_closes_all_of_that_users_connections_only(pop):
    r = admin(pop.sock, "kick-user alice")
    assert r == {"ok": True, "kicked": 2, "scope": "node", "warning": "control_secret is not set: this node only"}, r
    for c in pop.alice:
        code, _ = c.expect_close()
        assert code == 1008
        c.gone = True
    for c in pop.open_clients():
        assert c.alive()
    # carol (admin) watches user:alice and stays
    pop.publish("user:alice", '{"n":1}')
    assert pop.carol.next_event()["data"] == {"n": 1}
    pop.publish("apps:created", '{"n":2}')
    assert pop.bob.next_event()["data"] == {"n": 2}
    wait_for(pop.stats_match, 5, "stats without alice")
    assert admin(pop.sock, "connections alice")["connections"] == []
    # a user with no connections: kicked 0, not an error (realtimectl(8):
    # "the number of connections, which may be 0"), and nobody is closed
    r = admin(pop.sock, "kick-user nobody")
    assert r == {"ok": True, "kicked": 0, "scope": "node", "warning": "control_secret is not set: this node only"}, r
    rc, out, err = ctl(pop.sock, "kick-user", "nobody")
    assert rc == 0 and rtlib.ctl_kv(out).get("kicked") == "0", (rc, out, err)
    rc, j = ctl_json(pop.sock, "kick-user", "nobody")
    assert rc == 0 and j == {"ok": True, "kicked": 0, "scope": "node", "warning": "control_secret is not set: this node only"}, j
    for c in pop.open_clients():
        assert c.alive()
    wait_for(pop.stats_match, 5, "stats unchanged by kicking nobody")
    rc, out, err = ctl(pop.sock, "kick-user", "bob")
    assert rc == 0, err
    assert rtlib.ctl_kv(out).get("kicked") == "1", out
    code, _ = pop.bob.expect_close()
    assert code == 1008
    pop.bob.gone = True
    for c in pop.open_clients():
        assert c.alive()
    wait_for(pop.stats_match, 5, "stats without bob")


def test_long_user_ids_with_one_prefix_are_told_apart(lone, attach):
    """The registry keeps a long user id's prefix and a hash of the whole:
    kick-user and `connections USER` count and list that user only, not
    another whose id starts with the same 63 bytes (realtimectl(8))."""
    d = attach(lone)
    base = "x" * 63
    ua, ub = base + "A" * 37, base + "B" * 37
    a = Client(d.port, rtlib.mint(userId=ua))
    b = Client(d.port, rtlib.mint(userId=ub))
    p = Client(d.port, rtlib.mint(userId=base))     # the prefix itself
    try:
        sock = d.conf["admin_socket"]
        wait_for(lambda: len(admin(sock, "connections " + ua)["connections"]) == 1,
                 5, "one connection listed for user A", tolerate=rtlib.TRANSIENT)
        assert [c["id"] for c in admin(sock, "connections " + ua)["connections"]] == [a.id]
        assert [c["id"] for c in admin(sock, "connections " + base)["connections"]] == [p.id]
        r = admin(sock, "kick-user " + base + "C" * 37)
        assert r["ok"] is True and r["kicked"] == 0, r
        assert a.alive() and b.alive() and p.alive()
        r = admin(sock, "kick-user " + ua)
        assert r["ok"] is True and r["kicked"] == 1, r
        code, _ = a.expect_close()
        assert code == 1008
        assert b.alive() and p.alive()
        r = admin(sock, "kick-user " + base)
        assert r["kicked"] == 1, r
        assert p.expect_close()[0] == 1008
        assert b.alive()
    finally:
        for c in (a, b, p):
            c.close()


def test_publish_delivers_to_subscribers(pop):
    r = admin(pop.sock, 'publish apps:created {"via": "admin", "n": [1, 2]}')
    assert r["ok"] is True and r["receivers"] >= 1, r
    for c in pop.alice + [pop.bob]:
        ev = c.next_event()
        assert ev["channel"] == "apps:created"
        assert ev["data"] == {"via": "admin", "n": [1, 2]}
    for c in pop.anon + [pop.carol]:
        assert c.no_event(0.2)

    rc, out, err = ctl(pop.sock, "publish", "announcements", '{"hello": "all"}')
    assert rc == 0, err
    assert int(rtlib.ctl_kv(out)["receivers"]) >= 1, out
    for c in pop.anon:
        assert c.next_event()["data"] == {"hello": "all"}
    assert pop.bob.no_event(0.2)

    rc, j = ctl_json(pop.sock, "publish", "user:alice", "[1,2,3]")
    assert rc == 0 and j["ok"] is True and j["receivers"] >= 1
    for c in pop.alice + [pop.carol]:
        assert c.next_event()["data"] == [1, 2, 3]

    # a large payload (well inside the admin line limit) goes through
    big = json.dumps({"blob": "x" * 100000})
    r = admin(pop.sock, "publish deployments:started " + big)
    assert r["ok"] is True and r["receivers"] >= 1, r
    ev = pop.bob.next_event()
    assert ev["channel"] == "deployments:started" and len(ev["data"]["blob"]) == 100000


def test_reload_answers_ok(pop):
    assert admin(pop.sock, "reload") == {"ok": True}
    rc, out, err = ctl(pop.sock, "reload")
    assert rc == 0 and out.strip() == "ok", (out, err)
    rc, j = ctl_json(pop.sock, "reload")
    assert rc == 0 and j == {"ok": True}
    for c in pop.clients:
        assert c.alive()


def test_several_commands_on_one_connection_answer_in_order(pop):
    replies = admin_raw(pop.sock, b"help\r\nstats\npublish announcements {}\n"
                        b"connections bob\nnope\nhealth\n", nreplies=6)
    assert replies[0]["commands"] == ALL_USAGES   # CRLF accepted
    assert "stats" in replies[1]
    assert replies[2]["ok"] is True and "receivers" in replies[2]
    assert [c["id"] for c in replies[3]["connections"]] == [pop.bob.id]
    assert replies[4]["ok"] is False
    assert replies[5]["health"]["workers"] == 2


def test_a_client_that_does_not_read_its_replies_is_not_read_either(lone, attach):
    """Commands written without reading the replies stop being read once
    256 KiB of replies wait (realtimectl(8) PROTOCOL): the writer blocks,
    the master holds no more, and every command is answered in order once
    the client reads, though it half-closed after its last command."""
    d = attach(lone)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.conf["admin_socket"])
    try:
        s.setblocking(False)
        chunk = b"help\n" * 2000
        sent, deadline = 0, time.monotonic() + 3
        while sent < 16 * 1024 * 1024 and time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                select.select([], [s], [], 0.1)
        # the kernel's buffers and one read, not the 16 MiB offered
        assert sent < 4 * 1024 * 1024, sent
        s.setblocking(True)
        s.settimeout(20)
        if sent % 5:
            s.sendall(b"help\n"[sent % 5:])    # the last line, whole
        # half-closed, as `... | socat` does: every command is still answered,
        # then the daemon closes
        s.shutdown(socket.SHUT_WR)
        want = -(-sent // 5)
        lines, buf, first = 0, b"", None
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            buf += data
            *done, buf = buf.split(b"\n")
            if first is None and done:
                first = json.loads(done[0])
            lines += len(done)
        assert first is not None and first["commands"] == ALL_USAGES
        assert lines == want, (lines, want)
    finally:
        s.close()
    assert admin(d.conf["admin_socket"], "help")["ok"] is True


BAD_LINES = [
    (b"\n", "empty"),
    (b"   \n", "empty"),
    (b"frobnicate\n", "unknown command"),
    (b"STATS\n", "unknown command"),
    (b"stats now\n", "wrong number of arguments"),
    (b"help me\n", "wrong number of arguments"),
    (b"health x\n", "wrong number of arguments"),
    (b"workers 1\n", "wrong number of arguments"),
    (b"reload now\n", "wrong number of arguments"),
    (b"channels a b\n", "wrong number of arguments"),
    (b"connections a b\n", "wrong number of arguments"),
    (b"kick\n", "wrong number of arguments"),
    (b"kick a b\n", "wrong number of arguments"),
    (b"kick-user\n", "wrong number of arguments"),
    (b"kick-user a b\n", "wrong number of arguments"),
    (b"kick 00000000-0000-4000-8000-000000000000\n", "no such connection"),
    (b"kick not-a-uuid\n", "no such connection"),
    (b"publish\n", "usage"),
    (b"publish apps:created\n", "usage"),
    (b"publish apps:created   \n", "usage"),
    (b"publish bad/channel {}\n", "invalid channel name"),
    (b"publish " + b"a" * 201 + b" {}\n", "invalid channel name"),
    (b"publish apps:cr\xc3\xa9ated {}\n", "invalid channel name"),
    (b"publish apps:created {nope\n", "not valid JSON"),
    (b"publish apps:created {\"a\":1} trailing\n", "not valid JSON"),
    (b"publish apps:created \"unterminated\n", "not valid JSON"),
    (b"sta\x00ts\n", "NUL"),
    (b"publish apps:created {\"a\":\"\x00\"}\n", "NUL"),
]


@pytest.mark.parametrize("line,why", BAD_LINES,
                         ids=[repr(l[:24]) for l, _ in BAD_LINES])
def test_bad_command_gets_an_error_and_the_connection_stays_usable(lone, attach, line, why):
    d = attach(lone)
    sock = d.conf["admin_socket"]
    wait_settled(d, 1)
    err, after = admin_raw(sock, line + b"help\n", nreplies=2)
    assert err["ok"] is False and isinstance(err["error"], str), err
    assert set(err) == {"ok", "error"}, err
    assert why.lower() in err["error"].lower(), err
    assert after["ok"] is True and after["commands"] == ALL_USAGES


def test_errors_through_realtimectl_exit_1_with_the_reason_on_stderr(pop):
    cases = [(["frobnicate"], "unknown command"),
             (["stats", "now"], "wrong number"),
             (["kick"], "wrong number"),
             (["publish", "apps:created"], "usage"),
             (["publish", "no/such", "{}"], "invalid channel name"),
             (["publish", "apps:created", "{bad"], "not valid JSON")]
    for args, why in cases:
        rc, out, err = ctl(pop.sock, *args)
        assert rc == 1, (args, rc, out, err)
        assert out == "" and why in err, (args, out, err)
        rc, j = ctl_json(pop.sock, *args)
        assert rc == 1 and j["ok"] is False and why in j["error"], (args, j)
    # nothing was published by the refused commands
    for c in pop.alice + [pop.bob]:
        assert c.no_event(0.2)


def test_publish_while_redis_is_down_is_refused(pop):
    pop.redis.stop()
    wait_for(lambda: admin(pop.sock, "health")["health"]["redis"] == "down", 10,
             "redis down in health")
    r = admin(pop.sock, 'publish apps:created {"a":1}')
    assert r["ok"] is False and r["error"], r
    rc, out, err = ctl(pop.sock, "publish", "apps:created", '{"a":1}')
    assert rc == 1 and err.strip(), (rc, out, err)
    # the admin socket still answers, and no client was dropped
    assert admin(pop.sock, "stats")["ok"] is True
    assert all(c.alive() for c in pop.clients)


def _one_line_reply(path, line):
    """Send line and its newline in one write on a new admin connection;
    the first reply line, parsed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        try:
            s.sendall(line + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        deadline = time.monotonic() + 5
        while b"\n" not in got and time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
        return json.loads(got.split(b"\n")[0])
    finally:
        s.close()


def test_overlong_line_is_refused_and_the_connection_closed(pop):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(pop.sock)
        chunk = b"x" * 65536
        got = b""
        try:
            for _ in range(8):          # 512 KiB, far beyond the limit, no newline
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
        lines = [l for l in got.split(b"\n") if l]
        assert len(lines) == 1, got[:200]
        r = json.loads(lines[0])
        assert r["ok"] is False and "too long" in r["error"], r
    finally:
        s.close()
    # an over-long publish line ending in a newline is not executed either
    line = b'publish apps:created {"blob":"' + b"y" * (400 * 1024) + b'"}'
    r = _one_line_reply(pop.sock, line)
    assert r["ok"] is False and "too long" in r["error"], r
    assert pop.bob.no_event(0.3), "the over-long publish was delivered"
    # the limit is the line's length, however its bytes arrive: 160 KiB is
    # read as a command, one byte more is too long, even with its newline
    # in the same write (the daemon reads 4 KiB at a time)
    limit = 160 * 1024
    for n, too_long in ((limit, False), (limit + 1, True), (limit + 3000, True)):
        line = b"nosuchcommand " + b"z" * (n - 14)
        assert len(line) == n
        r = _one_line_reply(pop.sock, line)
        assert r["ok"] is False, r
        assert ("too long" in r["error"]) is too_long, (n, r)
    # the daemon still serves the admin socket
    assert admin(pop.sock, "help")["ok"] is True


def test_idle_admin_clients_are_closed_and_give_their_places_back(pop):
    """64 clients holding every place sending nothing (or half a line)
    are closed after 30 s idle (realtimectl(8)), counted, and the socket
    serves again: they cannot lock the operator out."""
    time.sleep(0.5)         # the setup's own admin connections gone
    before = rtlib.admin(pop.sock, "stats")["stats"]["admin_idle_closed"]
    held = []
    try:
        # connect until one is refused: every place is held then (the
        # stats request's own connection may still hold one a moment)
        refused = False
        for i in range(80):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            if i == 0:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(pop.sock)
            if i >= 63 and select.select([s], [], [], 0.5)[0]:
                assert b"too many admin clients" in s.recv(4096)
                s.close()
                refused = True
                break
            if i == 0:
                # asks, and reads none of the replies: idle too
                s.sendall(b"stats\n" * 300)
            elif i % 2:
                s.sendall(b"sta")       # a line never ended
            held.append(s)
        assert refused and len(held) >= 63, len(held)
        # each one idle is closed after 30 s: EOF (the one that did not
        # read finds its replies so far, then the EOF)
        deadline = time.monotonic() + 45
        for j, x in enumerate(held):
            x.settimeout(max(0.1, deadline - time.monotonic()))
            if j == 0:
                # by now closed: what it finds is what was sent before,
                # then the EOF, at once (not replies that still flow)
                time.sleep(max(0, deadline - 10 - time.monotonic()))
                x.settimeout(3)
                t0 = time.monotonic()
                while x.recv(65536):
                    assert time.monotonic() - t0 < 3, "the non-reader still open"
                continue
            assert x.recv(4096) == b"", "an idle admin client was answered"
    finally:
        for x in held:
            x.close()
    st = rtlib.admin(pop.sock, "stats")["stats"]
    assert st["admin_idle_closed"] - before >= len(held), st
    assert st["admin_refused"] >= 1, st


def test_many_admin_clients_do_not_wedge_the_socket(pop):
    """Idle admin connections beyond the table size are refused one by one;
    once they go away the socket answers again.

    realtimectl(8): at most 64 clients at a time, any other connection gets
    one error line and is closed at once; those in the table keep being
    served.
    """
    refusal = b'{"ok":false,"error":"too many admin clients (64), try again"}\n'
    table, extra = 64, 16
    # the setup's own admin connections hold slots until the daemon has
    # seen them close
    time.sleep(0.5)
    refusals = pop.d.log().count("admin socket: too many clients (64), one refused")
    held = []
    try:
        for _ in range(table + extra):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(pop.sock)
            held.append(s)
        # the refused ones see EOF (readable, nothing to read); the others
        # have nothing to read and stay open
        deadline = time.monotonic() + 5
        closed = set()
        told = 0
        while len(closed) < extra and time.monotonic() < deadline:
            ready, _, _ = select.select([s for s in held if s not in closed],
                                        [], [], 0.2)
            for s in ready:
                data = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except ConnectionResetError:
                    pass
                assert data in (b"", refusal), "a refused admin client got %r" % data
                told += data == refusal
                closed.add(s)
        time.sleep(0.3)     # any refusal beyond the extra ones would show now
        ready, _, _ = select.select([s for s in held if s not in closed], [], [], 0)
        assert len(closed) == extra and not ready, \
            "%d of %d connections closed, %d more readable (want %d closed)" \
            % (len(closed), len(held), len(ready), extra)
        assert told > 0, "no refused client was told why"
        # refused in the order they came: the first 64 hold the table
        assert closed == set(held[table:])
        # ... and are served while it is full
        for s in held[:table]:
            s.sendall(b"help\n")
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(65536)
                assert chunk, "an admin client in the table was closed"
                line += chunk
            assert json.loads(line)["commands"] == ALL_USAGES
        # one more while it is full: refused too
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(pop.sock)
        held.append(s)
        assert select.select([s], [], [], 2)[0], "a 65th admin client was kept"
        try:
            assert s.recv(4096) in (b"", refusal), "a 65th admin client was answered"
        except ConnectionResetError:
            pass
        wait_for(lambda: pop.d.log().count(
            "admin socket: too many clients (64), one refused") == refusals + extra + 1,
            5, "%d refusals logged" % (extra + 1))
    finally:
        for s in held:
            s.close()
    wait_for(lambda: _try_help(pop.sock), 5, "the admin socket to answer again")


def _try_help(sock):
    try:
        return admin(sock, "help")["ok"] is True
    except (OSError, ValueError, AssertionError, IndexError):
        return False


# ------------------------------------------------------ realtimectl itself

def test_realtimectl_exit_codes(pop, tmp_path):
    # 0: done
    rc, out, err = ctl(pop.sock, "stats")
    assert rc == 0, err
    # 1: the daemon refused
    rc, out, err = ctl(pop.sock, "no-such-command")
    assert rc == 1 and "unknown command" in err
    # 2: usage
    rc, out, err = ctl(pop.sock)
    assert rc == 2 and "usage" in err
    rc, out, err = ctl(pop.sock, "--no-such-option", "stats")
    assert rc == 2 and "usage" in err
    rc, out, err = ctl(None, "-s")
    assert rc == 2
    rc, out, err = ctl(pop.sock, "publish", "apps:created", '{"a":\n1}')
    assert rc == 2 and "newline" in err
    assert pop.bob.no_event(0.2)
    # 3: cannot connect
    missing = str(tmp_path / "no-such.sock")
    rc, out, err = ctl(missing, "stats")
    assert rc == 3 and missing in err
    rc, out, err = ctl(missing, "stats", json_out=True)
    assert rc == 3 and out == ""
    # a path that is not a socket
    notsock = tmp_path / "plain-file"
    notsock.write_text("x")
    rc, out, err = ctl(str(notsock), "stats")
    assert rc == 3
    # the socket from the environment, when -s is not given
    rc, out, err = ctl(None, "help", env={"REALTIMED_SOCKET": pop.sock})
    assert rc == 0 and human_usages(out) == HUMAN_USAGES
    rc, out, err = ctl(None, "help", env={"REALTIMED_SOCKET": missing})
    assert rc == 3


def test_realtimectl_exits_3_when_the_daemon_hangs_up_or_answers_garbage(tmp_path):
    def hang_up(conn):
        assert rtlib.read_line(conn) == b"stats\n"
        conn.close()
    rc, out, err = rtlib.ctl_fake(tmp_path, hang_up, "stats")
    assert rc == 3 and "no reply" in err, (rc, out, err)

    def garbage(conn):
        rtlib.read_line(conn)
        conn.sendall(b"this is not json\n")
        conn.close()
    rc, out, err = rtlib.ctl_fake(tmp_path, garbage, "stats")
    assert rc == 3 and "malformed" in err, (rc, out, err)

    def no_ok(conn):
        rtlib.read_line(conn)
        conn.sendall(b'{"stats":{}}\n')
        conn.close()
    rc, out, err = rtlib.ctl_fake(tmp_path, no_ok, "stats")
    assert rc == 3, (rc, out, err)


def test_realtimectl_survives_a_daemon_that_closes_before_reading(tmp_path):
    """The daemon closes an admin connection without reading it (too many
    admin clients, or a line over the limit): realtimectl must report it
    (exit 3), not die of SIGPIPE in the middle of its write."""
    big = ["x" * 100000] * 10          # a 1 MB command: the write blocks

    def slam(conn):
        conn.close()
    rc, out, err = rtlib.ctl_fake(tmp_path, slam, *["publish", "apps:created"] + big)
    assert rc == 3, "realtimectl exited %s (negative: killed by signal %s); stderr %r" % (
        rc, -rc if rc < 0 else None, err)
    assert err.strip()


def test_realtimectl_publish_over_the_line_limit_fails_cleanly(pop):
    """Against the real daemon: a publish line larger than the admin socket
    accepts is refused with a message and a non-zero status, and nothing is
    delivered."""
    args = ["publish", "apps:created", '{"blob":"' + "y" * 100000] + \
        ["y" * 100000] * 4 + ['"}']
    rc, out, err = ctl(pop.sock, *args)
    assert rc in (1, 3), "realtimectl exited %s (negative: killed by signal %s); stderr %r" % (
        rc, -rc if rc < 0 else None, err)
    assert err.strip(), "no message on stderr"
    assert pop.bob.no_event(0.3)
    assert admin(pop.sock, "help")["ok"] is True


# ------------------------------------------------------ who may connect

def test_admin_socket_mode_is_0660_by_default(start_daemon):
    d = start_daemon()
    st = os.stat(d.conf["admin_socket"])
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)


def test_admin_socket_mode_follows_the_config(start_daemon):
    d = start_daemon(conf={"admin_socket_mode": "0600"})
    st = os.stat(d.conf["admin_socket"])
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


def test_bad_admin_socket_mode_refuses_to_start(start_daemon):
    d = start_daemon(conf={"admin_socket_mode": "0999"}, ready=False)
    d.proc.wait(10)
    assert d.proc.returncode == 1, d.log()
    assert "admin_socket_mode" in d.log()
    start_daemon.started.remove(d)      # it is supposed to be dead
    d.logf.close()


def _unused_id(taken):
    for n in range(54321, 60000):
        if n not in taken:
            try:
                import pwd
                pwd.getpwuid(n)
                continue
            except KeyError:
                pass
            try:
                import grp
                grp.getgrgid(n)
                continue
            except KeyError:
                return n
    raise AssertionError("no free id")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run realtimectl as another user")
def test_user_outside_the_sockets_group_is_refused(start_daemon, pubdir):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv(1) not installed")
    sock = os.path.join(pubdir, "admin.sock")
    d = start_daemon(conf={"admin_socket": sock})
    st = os.stat(sock)
    assert stat.S_IMODE(st.st_mode) == 0o660
    # realtimectl where the unprivileged user can run it
    ctlcopy = os.path.join(pubdir, "realtimectl")
    shutil.copy2(rtlib.ctl_bin(), ctlcopy)
    os.chmod(ctlcopy, 0o755)
    outsider = _unused_id({st.st_uid, st.st_gid, 0})

    def as_ids(uid, gid, *args):
        return ctl(sock, *args, binary=ctlcopy, cwd=pubdir,
                   prefix=["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                           "--clear-groups"])

    # neither the owner nor in the group: refused at connect(), exit 3
    rc, out, err = as_ids(outsider, outsider, "stats")
    assert rc == 3, (rc, out, err)
    assert "Permission denied" in err and out == ""
    rc, out, err = as_ids(outsider, outsider, "kick-user", "anyone")
    assert rc == 3
    # the same unprivileged uid in the socket's group gets in
    rc, out, err = as_ids(outsider, st.st_gid, "health")
    assert rc == 0, (rc, out, err)
    assert rtlib.ctl_kv(out).get("health.service") == "realtime"
    assert d.alive()


# ------------------------------------------- reload, as it completes

def test_realtimectl_reload_names_the_worker_that_did_not_answer(start_daemon):
    d = start_daemon(conf={"workers": "2", "worker_timeout": "60s",
                           "child_timeout": "60s"})
    sock = d.conf["admin_socket"]
    workers = rtlib.wait_for(lambda: (lambda j: j["workers"] if len(j["workers"]) == 2 and
                                      all(w["pid"] for w in j["workers"]) else None)(
        ctl_json(sock, "workers")[1]), 10, "two running workers")
    victim = workers[1]["pid"]
    os.kill(victim, signal.SIGSTOP)
    try:
        rc, out, err = ctl(sock, "reload")
    finally:
        os.kill(victim, signal.SIGCONT)
    assert rc == 1 and out == "", (out, err)
    assert err.strip() == "realtimectl: reload incomplete: worker 1 (pid %d) did not " \
        "answer within 5000 ms" % victim, err
    rc, out, err = ctl(sock, "reload")
    assert rc == 0 and out.strip() == "ok", (out, err)


# ------------------------------------------- what reaches the terminal

def ctl_raw(sock, *args):
    """realtimectl's (exit status, stdout bytes, stderr bytes)."""
    p = subprocess.run([rtlib.ctl_bin(), "-s", sock] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=rtlib.CTL_TIMEOUT, env=rtlib.clean_env())
    return p.returncode, p.stdout, p.stderr


def raw_controls(b):
    """The terminal control bytes in b other than the line ends: C0, DEL
    and the UTF-8 form of C1 (U+0080 to U+009F)."""
    c0 = [x for x in b if (x < 0x20 and x != 0x0A) or x == 0x7F]
    c1 = [ch for ch in b.decode("utf-8", "replace") if 0x80 <= ord(ch) <= 0x9F]
    return c0 + c1


HOSTILE_USER = "ev\x1b]0;owned\x07il\r\nfake-row\t\x7f\\\u009b2J"
HOSTILE_ESCAPED = r"ev\e]0;owned\x07il\r\nfake-row\t\x7f\\\xc2\x9b2J"


def test_realtimectl_escapes_control_characters_from_a_token(start_daemon):
    d = start_daemon(conf={"workers": "1"})
    c = rtlib.Client(d.port, rtlib.mint(userId=HOSTILE_USER))
    try:
        assert c.user["userId"] == HOSTILE_USER
        sock = d.conf["admin_socket"]
        rc, out, err = ctl_raw(sock, "connections")
        assert rc == 0, err
        assert raw_controls(out) == [], out
        lines = out.decode().splitlines()
        assert len(lines) == 2, lines       # the header and one row, not a forged one
        assert HOSTILE_ESCAPED in lines[1], lines
        # --json stays the exact reply
        rc, j = ctl_json(sock, "connections")
        assert rc == 0 and [x["user"] for x in j["connections"]] == [HOSTILE_USER], j
    finally:
        c.close()


def test_realtimectl_escapes_control_characters_in_an_error(start_daemon):
    d = start_daemon(conf={"workers": "1"})
    with open(d.conf_path, "ab") as f:
        f.write(b"max_subscriptions 7\x1b[2J\x9b\n")
    rc, out, err = ctl_raw(d.conf["admin_socket"], "reload")
    assert rc == 1 and out == b"", (out, err)
    assert raw_controls(err) == [], err
    assert err.decode().startswith("realtimectl: "), err
    assert r"'7\e[2J\x9b' is not a number" in err.decode(), err
