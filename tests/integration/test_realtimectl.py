"""realtimectl as an operator runs it: -h and --help, help with a line on
every command and help COMMAND, and human output that shows durations,
times and byte counts for people (10m0s, 2026-12-02T19:40:01Z, 1.2 MiB)
while --json keeps the daemon's numbers.

The exact formats are checked against a fake admin socket that answers
with chosen figures; a real daemon (one worker, Redis) shows that every
command's human output is made of them.
"""
import json
import re
import time

import pytest

import rtlib
from rtlib import Client, admin, ctl, ctl_json, wait_for

DURATION_RE = re.compile(r"^(\d+s|\d+m\d+s|\d+h\d+m|\d+d\d+h)$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
BYTES_RE = re.compile(r"^(\d+ B|\d+\.\d (KiB|MiB|GiB|TiB|PiB|EiB))$")


def utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def table(text):
    """A table as a list of {column: cell}."""
    lines = text.splitlines()
    header = lines[0].split()
    return [dict(zip(header, l.split())) for l in lines[1:]]


def fake(tmp_path, reply, *args, json_out=False, env=None):
    """realtimectl against a fake admin socket that answers its one line
    with reply (a dict, or bytes as they are): (exit status, stdout,
    stderr, the line realtimectl sent)."""
    raw = reply if isinstance(reply, bytes) else json.dumps(reply).encode() + b"\n"
    got = []

    def answer(conn):
        got.append(rtlib.read_line(conn))
        conn.sendall(raw)
    rc, out, err = rtlib.ctl_fake(tmp_path, answer, *args, json_out=json_out, env=env)
    return rc, out, err, got[0] if got else None


def worker(uptime, **kw):
    w = {"id": 0, "pid": 4242, "state": "running", "uptime": uptime,
         "connections": 1, "subscriptions": 2, "events_out": 3,
         "slow_consumer_closes": 0}
    w.update(kw)
    return w


def workers_reply(*ws):
    return {"ok": True, "workers": list(ws),
            "bridge": {"pid": 4241, "state": "running", "redis": "up"}}


def conn(since):
    return {"id": "30e57b79-7cb1-4a67-9772-b8c5e80cf922", "worker": 0,
            "user": "dev-user", "admin": False, "peer": "10.1.2.3:47236",
            "since": since, "subscriptions": 1}


# ------------------------------------------------------------ -h, --help

@pytest.mark.parametrize("opt", ["-h", "--help"])
def test_help_option_prints_usage_on_stdout_and_exits_0(opt, tmp_path):
    missing = str(tmp_path / "no-such.sock")     # never connected to
    rc, out, err = ctl(missing, opt)
    assert rc == 0 and err == "", (rc, out, err)
    assert out.startswith("usage: realtimectl "), out
    assert "help [command]" in out


def test_help_option_wins_over_a_command(tmp_path):
    rc, out, err = ctl(str(tmp_path / "no-such.sock"), "-h", "stats")
    assert rc == 0 and out.startswith("usage: ") and err == ""


@pytest.mark.parametrize("args", [["--no-such-option", "stats"], ["-x"], []])
def test_bad_usage_prints_usage_on_stderr_and_exits_2(args, tmp_path):
    rc, out, err = ctl(str(tmp_path / "no-such.sock"), *args)
    assert rc == 2 and out == "", (rc, out, err)
    assert "usage: realtimectl " in err


# ------------------------------------------------- formats, exactly

@pytest.mark.parametrize("secs,shown", [
    (0, "0s"), (45, "45s"), (59, "59s"), (60, "1m0s"), (600, "10m0s"),
    (3599, "59m59s"), (3600, "1h0m"), (7384, "2h3m"), (86399, "23h59m"),
    (86400, "1d0h"), (3 * 86400 + 4 * 3600 + 59, "3d4h"), (400 * 86400, "400d0h"),
])
def test_workers_uptime_is_shown_as_a_duration(tmp_path, secs, shown):
    rc, out, err, _ = fake(tmp_path, workers_reply(worker(secs)), "workers")
    assert rc == 0, err
    assert table("\n".join(out.splitlines()[:2]))[0]["uptime"] == shown, out


@pytest.mark.parametrize("epoch", [1796229579, 1, 2**31 + 5])
def test_connections_since_is_shown_as_utc_iso8601(tmp_path, epoch):
    # whatever the local time zone
    rc, out, err, _ = fake(tmp_path, {"ok": True, "connections": [conn(epoch)]},
                           "connections", env={"TZ": "JST-9"})
    assert rc == 0, err
    assert table(out)[0]["since"] == utc(epoch), out
    assert TIME_RE.match(utc(epoch))


def test_a_since_of_0_is_shown_as_unknown(tmp_path):
    rc, out, err, _ = fake(tmp_path, {"ok": True, "connections": [conn(0)]}, "connections")
    assert rc == 0 and table(out)[0]["since"] == "-", out


@pytest.mark.parametrize("n,shown", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (1048575, "1.0 MiB"), (1258291, "1.2 MiB"), (5 * 2**30, "5.0 GiB"),
    (3 * 2**40 + 2**39, "3.5 TiB"),
])
def test_stats_bytes_out_is_shown_in_binary_units(tmp_path, n, shown):
    reply = {"ok": True, "stats": {"connections": 3, "events_out": 1024,
                                   "bytes_out": n, "bridge": {"redis": "up"}}}
    rc, out, err, _ = fake(tmp_path, reply, "stats")
    assert rc == 0, err
    got = rtlib.ctl_kv(out)
    assert got["stats.bytes_out"] == shown, out
    # counts stay counts
    assert got["stats.events_out"] == "1024" and got["stats.connections"] == "3", out


def test_name_value_lines_line_up_under_nested_names(tmp_path):
    reply = {"ok": True, "stats": {"connections": 3,
                                   "bridge": {"redis": "up", "redis_reconnects": 0}}}
    rc, out, err, _ = fake(tmp_path, reply, "stats")
    assert rc == 0, err
    cols = {line.index(line.split()[1]) for line in out.splitlines()}
    assert len(cols) == 1, out


def test_tables_have_no_trailing_blanks(tmp_path):
    rc, out, err, _ = fake(tmp_path, workers_reply(worker(600)), "workers")
    assert rc == 0, err
    assert all(l == l.rstrip() for l in out.splitlines()), out


def test_a_value_that_is_not_a_number_is_shown_as_it_is(tmp_path):
    reply = workers_reply(worker("soon\x1b[2J"), worker(None, id=1))
    rc, out, err, _ = fake(tmp_path, reply, "workers")
    assert rc == 0, err
    rows = table("\n".join(out.splitlines()[:3]))
    assert rows[0]["uptime"] == r"soon\e[2J" and rows[1]["uptime"] == "-", out


@pytest.mark.parametrize("cmd,reply", [
    ("workers", workers_reply(worker(600), worker(7384, id=1))),
    ("connections", {"ok": True, "connections": [conn(1796229579)]}),
    ("stats", {"ok": True, "stats": {"bytes_out": 1258291, "connections": 2}}),
])
def test_json_keeps_the_daemons_reply_exactly(tmp_path, cmd, reply):
    raw = json.dumps(reply, separators=(",", ":")).encode() + b"\n"
    rc, out, err, _ = fake(tmp_path, raw, cmd, json_out=True)
    assert rc == 0, err
    assert out.encode() == raw


# ------------------------------------------------------------- help

USAGES = ["help", "stats", "health", "workers", "channels [PREFIX]",
          "connections [USER-ID]", "kick CONNECTION-ID", "kick-user USER-ID",
          "publish CHANNEL JSON", "reload", "revoke JTI [UNTIL]", "unrevoke JTI", "nodes"]


def help_lines(out):
    """help's lines as (usage, description)."""
    rows = []
    for line in out.splitlines():
        parts = re.split(r"\s{2,}", line, maxsplit=1)
        rows.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return rows


def test_help_gives_a_usage_the_daemon_does_not_know_alone(tmp_path):
    rc, out, err, sent = fake(tmp_path, {"ok": True, "commands": ["stats", "frob X"]}, "help")
    assert rc == 0, err
    assert sent == b"help\n"
    assert help_lines(out)[1] == ("frob X", ""), out
    assert help_lines(out)[0][1] != "", out


def test_help_command_asks_the_daemon_for_its_plain_help(tmp_path):
    rc, out, err, sent = fake(tmp_path, {"ok": True, "commands": USAGES}, "help", "kick")
    assert rc == 0, err
    assert sent == b"help\n"
    # kick, not kick-user
    assert out.splitlines()[0] == "usage: realtimectl kick CONNECTION-ID", out


# -------------------------------------------------- against a daemon

@pytest.fixture(scope="module")
def live(module_factory):
    r = module_factory.redis()
    d = module_factory(conf={"workers": "1", "redis_url": r.url, "canary_interval": "0"})
    rtlib.wait_settled(d, 1)
    return d


@pytest.fixture
def sock(live, attach):
    return attach(live).conf["admin_socket"]


def test_help_describes_every_command(sock):
    usages = admin(sock, "help")["commands"]
    assert usages == USAGES
    rc, out, err = ctl(sock, "help")
    assert rc == 0, err
    rows = help_lines(out)
    assert [u for u, _ in rows] == ["help [COMMAND]"] + usages[1:], out
    for usage, line in rows:
        assert line and line[0].isupper(), "%r has no description: %r" % (usage, out)
    assert all(len(l) <= 80 for l in out.splitlines()), out


@pytest.mark.parametrize("cmd", [u.split()[0] for u in USAGES])
def test_help_command_prints_its_usage_and_its_line(sock, cmd):
    rc, out, err = ctl(sock, "help", cmd)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    usage = next(u for u in USAGES if u.split()[0] == cmd)
    if cmd == "help":
        usage = "help [COMMAND]"
    assert lines[0] == "usage: realtimectl " + usage, out
    _, all_out, _ = ctl(sock, "help")
    assert lines[1] in dict(help_lines(all_out)).values(), (out, all_out)


def test_help_for_an_unknown_command_exits_1(sock):
    rc, out, err = ctl(sock, "help", "frobnicate")
    assert rc == 1 and out == "", (rc, out, err)
    assert err == "realtimectl: no such command: frobnicate\n", err
    rc, out, err = ctl(sock, "help", "kick-")       # a prefix is not a command
    assert rc == 1, out


def test_help_command_with_json_keeps_the_daemons_shape(sock):
    rc, j = ctl_json(sock, "help", "kick")
    assert rc == 0 and j == {"ok": True, "commands": ["kick CONNECTION-ID"]}, j
    rc, j = ctl_json(sock, "help", "frobnicate")
    assert rc == 1 and j == {"ok": False, "error": "no such command: frobnicate"}, j
    rc, j = ctl_json(sock, "help")
    assert rc == 0 and j["commands"] == USAGES


def test_workers_shows_uptime_as_a_duration(sock):
    rc, j = ctl_json(sock, "workers")
    assert rc == 0 and isinstance(j["workers"][0]["uptime"], int), j
    rc, out, err = ctl(sock, "workers")
    assert rc == 0, err
    lines = out.splitlines()
    row = table("\n".join(lines[:2]))[0]
    assert DURATION_RE.match(row["uptime"]), out
    assert lines[-1].startswith("bridge: pid "), out


def test_connections_shows_since_as_utc(sock, live):
    c = Client(live.port)
    try:
        rc, j = ctl_json(sock, "connections")
        assert rc == 0, j
        since = {x["id"]: x["since"] for x in j["connections"]}[c.id]
        assert isinstance(since, int) and abs(since - time.time()) < 120, j
        rc, out, err = ctl(sock, "connections", env={"TZ": "JST-9"})
        assert rc == 0, err
        rows = {r["id"]: r for r in table(out)}
        assert rows[c.id]["since"] == utc(since), out
    finally:
        c.close()


def test_stats_shows_bytes_out_in_binary_units(sock, live):
    c = Client(live.port)
    try:
        c.subscribe("announcements")
        rc, out, err = ctl(sock, "publish", "announcements", '{"text":"%s"}' % ("x" * 2000))
        assert rc == 0, err
        assert c.next_event()["channel"] == "announcements"

        def figures():
            _, j = ctl_json(sock, "stats")
            _, out, _ = ctl(sock, "stats")
            _, j2 = ctl_json(sock, "stats")
            return j["stats"]["bytes_out"] == j2["stats"]["bytes_out"] and (j, out)
        j, out = wait_for(figures, 5, "stats to hold still")
        n = j["stats"]["bytes_out"]
        assert n >= 2000, j
        shown = rtlib.ctl_kv(out)["stats.bytes_out"]
        assert BYTES_RE.match(shown), out
        num, unit = shown.split()
        assert unit == "KiB" and abs(float(num) - n / 1024) <= 0.05, (n, shown)
        # the other counters are plain numbers
        assert rtlib.ctl_kv(out)["stats.events_out"] == str(j["stats"]["events_out"]), out
    finally:
        c.close()


def test_health_shows_the_daemons_utc_timestamp(sock):
    rc, out, err = ctl(sock, "health")
    assert rc == 0, err
    got = rtlib.ctl_kv(out)
    assert got["health.status"] == "ok", out
    assert rtlib.TS_RE.match(got["health.timestamp"]), out
