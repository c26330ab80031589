"""Operations, the daemon: `realtimed -t` on good and bad files, environment
overrides, jwt_secret_file, detaching with a pidfile, SIGHUP reloads (under
load, live keys, restart-only keys, broken files), SIGTERM (1001 to every
client, drain_period, exit 0) and SIGUSR1.

Tests that stop the daemon themselves use the `own` fixture (conftest.py) instead of
start_daemon (whose teardown insists on sending the SIGTERM itself); it checks
the same things afterwards: exit status 0, no sanitizer report, no crashed
child in the log.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import rtlib
from rtlib import Client, admin, ctl, wait_for, wait_settled

BIN_TIMEOUT = 15


# ------------------------------------------------------------------ helpers

def run_test_mode(path, *flags, env=None):
    """realtimed -t [flags] -c path: (status, stdout, stderr)."""
    p = subprocess.run([rtlib.realtimed_bin(), "-t"] + list(flags) + ["-c", str(path)],
                       capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=BIN_TIMEOUT, env=rtlib.clean_env(env))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def write_conf(path, conf):
    with open(path, "w") as f:
        f.write("# written by tests/integration/test_daemon.py\n")
        for k, v in conf.items():
            if v is not None:
                f.write("%s %s\n" % (k, v))


def rewrite(d, **changes):
    """Change keys of d's config file (None drops one)."""
    c = dict(d.conf)
    c.update(changes)
    d.conf = c
    write_conf(d.conf_path, c)


def _reload_marks(text):
    return text.count("reload complete") + text.count("keeping the old configuration")


def hup(d, timeout=5):
    """SIGHUP the master and wait until it logged the outcome; the log line
    that came of it."""
    before = _reload_marks(d.log())
    os.kill(d.proc.pid, signal.SIGHUP)
    wait_for(lambda: _reload_marks(d.log()) > before, timeout, "the reload to finish")
    time.sleep(0.2)     # the children apply it from their control sockets
    return d.log()


def open_spread(d, n, token=None, sock=None):
    """n clients; with 2+ workers, more until both workers hold some."""
    cs = [Client(d.port, token(i) if token else None) for i in range(n)]
    return cs


def workers_used(sock):
    return {c["worker"] for c in admin(sock, "connections")["connections"]}


# ------------------------------------------------------------ realtimed -t

GOOD = {
    "listen": "127.0.0.1:18080",
    "workers": "2",
    "jwt_secret": '"a secret # with spaces"',
    "max_subscriptions": "7",
    "heartbeat_interval": "15s",
    "max_message_size": "64k",
    "allow_anonymous": "off",
    "allowed_origins": "https://a.example https://b.example",
    "drain_period": "1500ms",
    "log_level": "warning",
}


def test_config_test_accepts_a_good_file(tmp_path):
    p = tmp_path / "good.conf"
    conf = dict(GOOD, pidfile=str(tmp_path / "x.pid"), admin_socket=str(tmp_path / "x.sock"))
    write_conf(p, conf)
    with open(p, "a") as f:
        f.write("\n   # an indented comment\n\t\nmax_channels 1024   # trailing comment\n")
    rc, out, err = run_test_mode(p)
    assert rc == 0, err
    assert "test is successful" in err and str(p) in err
    assert out == ""
    # it only tested: nothing was started or created
    assert not (tmp_path / "x.pid").exists() and not (tmp_path / "x.sock").exists()


BAD = [
    ("bogus_key 1", "bogus_key", "unknown key"),
    ("workers abc", "workers", "not a number"),
    ("workers 3x", "workers", "not a number"),
    ("max_subscriptions 0", "max_subscriptions", "out of range"),
    ("workers 5000", "workers", "out of range"),
    ("workers -1", "workers", "out of range"),
    ("heartbeat_interval 5x", "heartbeat_interval", "not a duration"),
    ("jwt_leeway -5s", "jwt_leeway", "not a duration"),
    ("handshake_timeout 1ms", "handshake_timeout", "out of range"),
    ("allow_anonymous maybe", "allow_anonymous", "not yes or no"),
    ("max_message_size 12q", "max_message_size", "not a size"),
    ("max_message_size 1", "max_message_size", "out of range"),
    ("log_level loud", "log_level", "log_level"),
    ('jwt_secret "unterminated', "jwt_secret", "unterminated"),
    ("drain_period", "drain_period", "missing value"),
]


@pytest.mark.parametrize("line,key,why", BAD, ids=[b[0] for b in BAD])
def test_config_test_names_file_line_and_key_of_a_bad_value(tmp_path, line, key, why):
    p = tmp_path / "bad.conf"
    # the bad line is line 6: comments and blank lines count
    p.write_text("# header\n\nlisten 127.0.0.1:18080\n   # indented\n"
                 "workers 2\n%s\nmax_channels 1024\n" % line)
    rc, out, err = run_test_mode(p)
    assert rc == 1, (rc, out, err)
    assert "%s:6:" % p in err, err
    assert key in err and why in err, err
    assert "successful" not in err


def test_config_test_fails_on_a_missing_file(tmp_path):
    p = tmp_path / "does-not-exist.conf"
    rc, out, err = run_test_mode(p)
    assert rc == 1
    assert str(p) in err and "No such file" in err


@pytest.mark.parametrize("line,key", [
    ("metrics_allow 10.0.0.0/8 not-an-address", "metrics_allow"),
    ("heartbeat_timeout 1s", "heartbeat_timeout"),
    ("jwt_algorithm none", "jwt_algorithm"),
    ("ws_path ws", "ws_path"),
    ("max_message_memory 512k", "max_message_memory"),
])
def test_config_test_names_the_key_of_a_cross_key_error(tmp_path, line, key):
    p = tmp_path / "cross.conf"
    p.write_text("listen 127.0.0.1:18080\nheartbeat_interval 10s\n%s\n" % line)
    rc, out, err = run_test_mode(p)
    assert rc == 1, (rc, out, err)
    assert str(p) in err and key in err, err


# Every key realtimed.conf(5) documents today; the dump may grow, not shrink.
KNOWN_KEYS = """listen workers ws_path echo_path listen_tls tls_certificate
tls_certificate_key tls_protocols tls_ciphers tls_ciphersuites tls_handshake_timeout
tls_session_timeout tls_session_cache_size max_message_size max_header_size
max_output_buffer max_connections max_channels max_subscriptions handshake_timeout
close_timeout max_client_messages_per_sec client_messages_burst heartbeat_interval
heartbeat_timeout jwt_algorithm jwt_secret jwt_public_key jwt_leeway jwt_issuer
jwt_audience allow_anonymous allowed_origins redis_url canary_interval ipc_max_buffer
redis_reconnect_max child_timeout bridge_timeout worker_timeout listen_backlog
shutdown_timeout user group pidfile admin_socket
admin_socket_mode jwt_secret_file metrics_allow drain_period log_level
trusted_proxies proxy_protocol_timeout forwarded_header""".split()


def test_config_dump_shows_every_key_and_hides_secrets(tmp_path):
    p = tmp_path / "dump.conf"
    write_conf(p, GOOD)
    rc, out, err = run_test_mode(p, "-v")
    assert rc == 0, err
    assert "test is successful" in err
    lines = out.splitlines()
    dumped = {}
    namespaces = []
    for l in lines:
        k, _, v = l.partition(" ")
        if k == "namespace":	# repeatable: the table in effect, in order
            namespaces.append(v)
            continue
        assert k not in dumped, "key %s printed twice" % k
        dumped[k] = v
    # no namespace line in the file: the default table, written out
    assert [n.split()[0] for n in namespaces] == [
        "announcements", "apps:*", "users:*", "user:{userId}", "database:*",
        "deployments:*", "storage:*", "system:*"]
    assert all("history=100 history_ttl=300000ms" in n for n in namespaces)
    assert namespaces[3].split()[1] == "self" and namespaces[7].split()[1] == "role=admin"
    missing = set(KNOWN_KEYS) - set(dumped)
    assert not missing, "keys missing from the dump: %s" % sorted(missing)
    assert dumped["jwt_secret"] == "(set)"
    assert "a secret" not in out
    assert dumped["max_subscriptions"] == "7"
    assert dumped["workers"] == "2"
    assert dumped["drain_period"] in ("1500ms", "1500")
    assert dumped["allow_anonymous"] == "no"
    assert dumped["log_level"] == "warning"
    assert dumped["allowed_origins"].split() == ["https://a.example", "https://b.example"]
    assert dumped["max_message_size"] == "65536"
    # the dump is itself a valid configuration
    again = tmp_path / "again.conf"
    again.write_text("\n".join(l if not l.startswith("jwt_secret ") else
                               "jwt_secret " + GOOD["jwt_secret"] for l in lines) + "\n")
    rc, out2, err = run_test_mode(again, "-v")
    assert rc == 0, err
    assert [l for l in out2.splitlines() if not l.startswith("jwt_secret ")] == \
        [l for l in lines if not l.startswith("jwt_secret ")]


def test_config_dump_follows_environment_overrides(tmp_path):
    p = tmp_path / "env.conf"
    write_conf(p, GOOD)
    rc, out, err = run_test_mode(p, "-v", env={
        "REALTIMED_MAX_SUBSCRIPTIONS": "3", "REALTIMED_ALLOW_ANONYMOUS": "yes",
        "JWT_SECRET": "from-the-environment", "REDIS_URL": "redis://10.1.2.3:6380"})
    assert rc == 0, err
    dumped = dict(l.split(" ", 1) for l in out.splitlines())
    assert dumped["max_subscriptions"] == "3"
    assert dumped["allow_anonymous"] == "yes"
    assert dumped["redis_url"] == "redis://10.1.2.3:6380"
    assert dumped["jwt_secret"] == "(set)"
    assert "from-the-environment" not in out


@pytest.mark.parametrize("var,value", [
    ("REALTIMED_WORKERS", "zz"),
    ("REALTIMED_MAX_SUBSCRIPTIONS", "0"),
    ("REALTIMED_ALLOW_ANONYMOUS", "maybe"),
    ("REALTIMED_DRAIN_PERIOD", "soon"),
])
def test_config_test_names_a_bad_environment_override(tmp_path, var, value):
    p = tmp_path / "ok.conf"
    p.write_text("listen 127.0.0.1:18080\n")
    rc, out, err = run_test_mode(p, env={var: value})
    assert rc == 1, (rc, out, err)
    assert var in err, err


def test_jwt_secret_file_missing_fails_the_test(tmp_path):
    p = tmp_path / "sf.conf"
    missing = tmp_path / "no-secret"
    p.write_text("listen 127.0.0.1:18080\njwt_secret_file %s\n" % missing)
    rc, out, err = run_test_mode(p)
    assert rc == 1 and "jwt_secret_file" in err and str(missing) in err, err
    empty = tmp_path / "empty-secret"
    empty.write_text("\n")
    p.write_text("listen 127.0.0.1:18080\njwt_secret_file %s\n" % empty)
    rc, out, err = run_test_mode(p)
    assert rc == 1 and "jwt_secret_file" in err, err


# ----------------------------------------------------- environment overrides

def test_env_max_subscriptions_is_enforced(start_daemon):
    d = start_daemon(conf={"max_subscriptions": "50"},
                     env={"REALTIMED_MAX_SUBSCRIPTIONS": "2"})
    c = Client(d.port, rtlib.mint(userId="env1"))
    c.subscribe("apps:created")
    c.subscribe("apps:updated")
    m = c.reply({"type": "subscribe", "channel": "apps:deleted"})
    assert m["type"] == "error" and "subscriptions" in m["message"].lower(), m
    assert c.alive()
    c.close()


def test_env_jwt_secret_wins_over_the_config_file(start_daemon):
    file_secret = "the-secret-in-the-file-0123456789"
    env_secret = "the-secret-in-the-environment-987654"
    d = start_daemon(conf={"jwt_secret": file_secret}, env={"JWT_SECRET": env_secret})
    c = Client(d.port, rtlib.mint(userId="envy", key=env_secret))
    assert c.alive()
    c.close()
    bad = Client(d.port, rtlib.mint(userId="envy", key=file_secret), expect_connected=False)
    code, seen = bad.expect_close()
    assert code == 1008
    assert seen and seen[0]["type"] == "error" and "Invalid token" in seen[0]["message"]


def test_env_redis_url_wins_over_the_config_file(start_daemon):
    r = start_daemon.redis()
    d = start_daemon(conf={"redis_url": "redis://127.0.0.1:1", "canary_interval": "0"},
                     env={"REDIS_URL": r.url})
    wait_settled(d, 1, redis=True)


def test_jwt_secret_file_supplies_the_secret_and_is_reread_on_reload(start_daemon, tmp_path):
    sf = tmp_path / "jwt.secret"
    sf.write_text("secret-from-a-file-0123456789abcdef\n")
    os.chmod(sf, 0o600)
    d = start_daemon(conf={"jwt_secret": None, "jwt_secret_file": str(sf)})
    c = Client(d.port, rtlib.mint(userId="sf", key="secret-from-a-file-0123456789abcdef"))
    assert c.alive()
    bad = Client(d.port, rtlib.mint(userId="sf", key="secret-from-a-file-0123456789abcdeX"),
                 expect_connected=False)
    assert bad.expect_close()[0] == 1008
    # rotate the secret: new connections need the new one, old ones stay
    sf.write_text("rotated-secret-0123456789abcdef0123\n")
    log = hup(d)
    assert "keeping the old configuration" not in log
    new = Client(d.port, rtlib.mint(userId="sf2", key="rotated-secret-0123456789abcdef0123"))
    assert new.alive()
    old = Client(d.port, rtlib.mint(userId="sf3", key="secret-from-a-file-0123456789abcdef"),
                 expect_connected=False)
    assert old.expect_close()[0] == 1008
    assert c.alive()
    c.close()
    new.close()


# --------------------------------------------------------------- daemon mode

def _daemon_conf(tmp_path, extra=None):
    port = rtlib.free_port()
    conf = {
        "listen": "127.0.0.1:%d" % port, "workers": "1",
        "jwt_secret": rtlib.SECRET, "redis_url": "redis://127.0.0.1:1",
        "pidfile": str(tmp_path / "d.pid"), "admin_socket": str(tmp_path / "d.sock"),
        "drain_period": "0", "log_level": "info",
    }
    conf.update(extra or {})
    return port, conf


def _stop_pid(pid, timeout=15):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _launch_detached(conf_path, cwd):
    return subprocess.run([rtlib.realtimed_bin(), "-c", conf_path], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=BIN_TIMEOUT,
                          env=rtlib.clean_env(), cwd=cwd)


def test_daemon_mode_pidfile_second_instance_and_cleanup(tmp_path):
    port, conf = _daemon_conf(tmp_path)
    cp = tmp_path / "d.conf"
    write_conf(cp, conf)
    t0 = time.monotonic()
    p = _launch_detached(str(cp), str(tmp_path))
    master = None
    try:
        assert p.returncode == 0, p.stderr
        assert time.monotonic() - t0 < 5, "the started process did not return quickly"
        pidfile = tmp_path / "d.pid"
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 5,
                 "the pidfile")
        master = int(pidfile.read_text().strip())
        assert pid_alive(master)
        with open("/proc/%d/cmdline" % master, "rb") as f:
            assert f.read().startswith(b"realtimed: master")
        # detached: no longer our child, in its own session
        assert os.getsid(master) == master or os.getsid(master) != os.getsid(0)
        wait_for(lambda: _health_ok(port), 10, "/health from the detached daemon")
        assert (tmp_path / "d.sock").exists()
        assert admin(str(tmp_path / "d.sock"), "help")["ok"] is True
        # a second instance with the same pidfile refuses, and harms nothing
        p2 = subprocess.run([rtlib.realtimed_bin(), "-f", "-c", str(cp)], capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=BIN_TIMEOUT,
                            env=rtlib.clean_env())
        assert p2.returncode == 1
        err2 = p2.stderr.decode()
        assert "already running" in err2 and str(master) in err2, err2
        p3 = _launch_detached(str(cp), str(tmp_path))
        assert p3.returncode == 1 and b"already running" in p3.stderr
        assert pidfile.read_text().strip() == str(master)
        assert pid_alive(master) and _health_ok(port)
        assert admin(str(tmp_path / "d.sock"), "help")["ok"] is True
        # SIGTERM: the master goes, and takes its pidfile and socket along
        os.kill(master, signal.SIGTERM)
        wait_for(lambda: not pid_alive(master), 15, "the master to exit")
        master = None
        assert not pidfile.exists(), "pidfile left behind"
        assert not (tmp_path / "d.sock").exists(), "admin socket left behind"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if master is not None:
            _stop_pid(master)


def _health_ok(port):
    try:
        st, _, _ = rtlib.health(port, timeout=1)
        return st in (200, 503)
    except (OSError, ValueError, AssertionError):
        return False


def test_daemon_mode_reload_with_a_relative_config_path(tmp_path):
    """`realtimed -c realtimed.conf` from the config's directory, then
    realtimectl reload: the daemon must still find its file (it chdir()s
    to / when it detaches), which shows as the new max_subscriptions
    applying to a client already connected."""
    port, conf = _daemon_conf(tmp_path, {"max_subscriptions": "5"})
    channels = rtlib.WELL_KNOWN["apps"] + rtlib.WELL_KNOWN["users"]
    write_conf(tmp_path / "rel.conf", conf)
    p = _launch_detached("rel.conf", str(tmp_path))
    master = None
    try:
        assert p.returncode == 0, p.stderr
        pidfile = tmp_path / "d.pid"
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 5,
                 "the pidfile")
        master = int(pidfile.read_text().strip())
        wait_for(lambda: _health_ok(port), 10, "/health")
        # max_subscriptions 5: a sixth subscription is refused
        c = Client(port, rtlib.mint(userId="rel"))
        for ch in channels[:5]:
            c.subscribe(ch)
        m = c.reply({"type": "subscribe", "channel": channels[5]})
        assert m["type"] == "error" and "subscriptions" in m["message"].lower(), m
        conf["max_subscriptions"] = "6"
        write_conf(tmp_path / "rel.conf", conf)
        rc, out, err = ctl(str(tmp_path / "d.sock"), "reload")
        assert rc == 0, "realtimectl reload: exit %d: %s" % (rc, err.strip())
        # the file was read again: 6 now, on the open connection too

        def sixth():
            m = c.reply({"type": "subscribe", "channel": channels[5]})
            if m["type"] == "error":
                return None
            assert m["type"] == "subscribed", m
            return m
        wait_for(sixth, 5, "a sixth subscription after the reload")
        m = c.reply({"type": "subscribe", "channel": channels[6]})
        assert m["type"] == "error" and "subscriptions" in m["message"].lower(), m
        c.close()
    finally:
        if master is not None:
            _stop_pid(master)


# --------------------------------------------------------------------- SIGHUP

def _redis_daemon(start_daemon, nworkers=2, **conf):
    r = start_daemon.redis()
    c = {"workers": str(nworkers), "redis_url": r.url, "canary_interval": "0"}
    c.update(conf)
    d = start_daemon(conf=c)
    wait_settled(d, nworkers)
    return d, r


def test_sighup_under_load_loses_no_connection_and_no_event(start_daemon):
    d, r = _redis_daemon(start_daemon, 2)
    sock = d.conf["admin_socket"]
    n_clients, n_events, period = 50, 60, 0.05
    clients = [Client(d.port, rtlib.mint(userId="load-%d" % i)) for i in range(n_clients)]
    for c in clients:
        c.subscribe("apps:status")
    assert workers_used(sock) == {0, 1}
    wait_for(lambda: admin(sock, "stats")["stats"]["subscriptions"] == n_clients, 5,
             "all subscriptions registered")

    errors = []

    def publisher():
        try:
            s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
            f = s.makefile("rb")
            t0 = time.monotonic()
            for i in range(n_events):
                payload = json.dumps({"seq": i})
                s.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$11\r\napps:status\r\n$%d\r\n%s\r\n"
                          % (len(payload), payload.encode()))
                line = f.readline()
                if not line.startswith(b":"):
                    errors.append(line)
                delay = t0 + (i + 1) * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            s.close()
        except Exception as e:      # reported below
            errors.append(repr(e))

    th = threading.Thread(target=publisher)
    th.start()
    try:
        time.sleep(0.6)
        rewrite(d, max_subscriptions="90", client_messages_burst="120")
        log = hup(d)
        assert "reload: max_subscriptions changed" in log
        time.sleep(0.4)
        hup(d)
        time.sleep(0.3)
        rc, out, err = ctl(sock, "reload")
        assert rc == 0, err
    finally:
        th.join(20)
    assert not th.is_alive() and not errors, errors
    for i, c in enumerate(clients):
        evs = c.events_until(n_events, timeout=5)
        seqs = [e["data"]["seq"] for e in evs]
        assert seqs == list(range(n_events)), "client %d got %r" % (i, seqs)
    for c in clients:
        assert c.alive()
    s = admin(sock, "stats")["stats"]
    assert s["connections"] == n_clients and s["subscriptions"] == n_clients
    assert "keeping the old configuration" not in d.log()
    for c in clients:
        c.close()


def test_reload_lowering_max_message_size_holds_for_open_connections(start_daemon):
    """A smaller max_message_size applies to clients already connected,
    also to a message they are partway through: its next frame past the
    new limit is 1009.  A message within the new limit still works."""
    d = start_daemon(conf={"workers": "1", "max_message_size": "64k"})
    wait_settled(d, 1, redis=False)
    ping = b'{"type":"ping","x":"'
    whole = rtlib.RawWS(d.port, "/ws?token=" + rtlib.mint(userId="m1"))
    part = rtlib.RawWS(d.port, "/ws?token=" + rtlib.mint(userId="m2"))
    for ws in (whole, part):
        assert ws.recv_json()["type"] == "connected"
    part.send_frame(0x1, ping + b"a" * 8000, fin=False)	# 8 KB of a message
    whole.send_frame(0x1, ping + b"a" * 8000 + b'"}')
    assert whole.recv_json()["type"] == "pong"
    rewrite(d, max_message_size="4k")
    assert "keeping the old configuration" not in hup(d)
    whole.send_frame(0x1, ping + b"b" * 1000 + b'"}')
    assert whole.recv_json()["type"] == "pong"
    whole.send_frame(0x1, ping + b"b" * 8000 + b'"}')
    assert whole.recv_close(5)[0] == 1009
    part.send_frame(0x0, b'"}')
    assert part.recv_close(5)[0] == 1009
    for ws in (whole, part):
        ws.close_socket()


def _sub_refused_with_undo(c, channel):
    """Subscribing is refused; a success (the reload not applied yet) is
    undone and retried."""
    def refused():
        m = c.reply({"type": "subscribe", "channel": channel})
        if m["type"] == "subscribed":
            c.reply({"type": "unsubscribe", "channel": channel})
            return False
        assert m["type"] == "error", m
        return m
    return wait_for(refused, 5, "the new max_subscriptions on an existing connection")


def test_live_keys_apply_in_every_worker_without_dropping_connections(start_daemon):
    d, _ = _redis_daemon(start_daemon, 2, max_subscriptions="3", allow_anonymous="yes")
    sock = d.conf["admin_socket"]
    # authenticated clients on both workers, two subscriptions each
    auth = []
    for i in range(60):
        c = Client(d.port, rtlib.mint(userId="live-%d" % i))
        c.subscribe("apps:created")
        c.subscribe("apps:updated")
        auth.append(c)
        if i >= 3 and workers_used(sock) == {0, 1}:
            break
    rows = {x["id"]: x["worker"] for x in admin(sock, "connections")["connections"]}
    per_worker = {}
    for c in auth:
        per_worker.setdefault(rows[c.id], c)
    assert set(per_worker) == {0, 1}
    anon = Client(d.port)

    rewrite(d, max_subscriptions="2", allow_anonymous="no")
    log = hup(d)
    assert "reload: max_subscriptions changed" in log
    assert "reload: allow_anonymous changed" in log
    for w, c in per_worker.items():
        m = _sub_refused_with_undo(c, "apps:deleted")
        assert "subscriptions" in m["message"].lower(), (w, m)
    # nobody was dropped, the anonymous one included
    for c in auth + [anon]:
        assert c.alive()
    # new anonymous connections are refused (tried enough to meet both workers)
    for _ in range(12):
        a = Client(d.port, expect_connected=False)
        code, seen = a.expect_close()
        assert code == 1008, (code, seen)
        assert seen and seen[0]["type"] == "error", seen
    # ... authenticated ones are welcome
    Client(d.port, rtlib.mint(userId="late")).close()

    # and back, through realtimectl this time
    rewrite(d, max_subscriptions="3", allow_anonymous="yes")
    rc, out, err = ctl(sock, "reload")
    assert rc == 0, err
    time.sleep(0.2)
    for c in per_worker.values():
        c.subscribe("apps:deleted")
    for _ in range(6):
        Client(d.port).close()
    for c in auth + [anon]:
        c.close()


def test_restart_only_keys_are_logged_and_not_applied(start_daemon):
    d, _ = _redis_daemon(start_daemon, 2)
    sock = d.conf["admin_socket"]
    c = Client(d.port)
    other = rtlib.free_port()
    old_port = d.port
    rewrite(d, workers="3", listen="127.0.0.1:%d" % other, max_connections="500",
            max_channels="512", max_subscriptions="77")
    log = hup(d)
    for key in ("workers", "listen", "max_connections", "max_channels"):
        assert ("reload: %s changed, but takes effect only after a restart" % key) in log, key
    assert "reload: max_subscriptions changed" in log
    assert "reload complete" in log
    # still the old listener and worker count
    _, _, h = rtlib.health(old_port)
    assert h["workers"] == 2
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", other), timeout=1).close()
    assert len(admin(sock, "workers")["workers"]) == 2
    assert c.alive()
    c.close()


BROKEN = [
    "bogus_key 1",
    "max_subscriptions 0",
    'jwt_secret "unterminated',
    "heartbeat_interval soon",
]


def test_bad_config_on_reload_keeps_the_old_settings(start_daemon):
    d, _ = _redis_daemon(start_daemon, 2, max_subscriptions="2")
    sock = d.conf["admin_socket"]
    c = Client(d.port, rtlib.mint(userId="keep"))
    c.subscribe("apps:created")
    good = dict(d.conf)
    for bad in BROKEN:
        lines = ["%s %s" % (k, v) for k, v in dict(good, max_subscriptions="5").items()
                 if v is not None]
        lines.insert(3, bad)
        with open(d.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = hup(d)
        tail = log[log.rfind("reloading"):]
        assert "keeping the old configuration" in tail, tail
        assert "%s:4:" % d.conf_path in tail, tail
        rc, out, err = ctl(sock, "reload")
        assert rc == 1, (bad, rc, out, err)
        assert "%s:4:" % d.conf_path in err, err
        assert c.alive()
    # the old limit (2) is still in force everywhere
    c.subscribe("apps:updated")
    m = c.reply({"type": "subscribe", "channel": "apps:deleted"})
    assert m["type"] == "error", m
    # a missing file is refused the same way
    os.rename(d.conf_path, d.conf_path + ".moved")
    rc, out, err = ctl(sock, "reload")
    assert rc == 1 and d.conf_path in err, err
    os.rename(d.conf_path + ".moved", d.conf_path)
    # a good file again: the daemon still reloads
    rewrite(d, max_subscriptions="3")
    rc, out, err = ctl(sock, "reload")
    assert rc == 0, err
    time.sleep(0.2)
    c.subscribe("apps:deleted")
    assert c.alive()
    c.close()


# --------------------------------------------------------- SIGTERM, SIGUSR1

def test_sigterm_sends_1001_to_every_client_and_exits_0(own, start_daemon):
    r = start_daemon.redis()
    d = own(conf={"workers": "2", "redis_url": r.url, "canary_interval": "0",
                  "shutdown_timeout": "5s"})
    wait_settled(d, 2)
    sock = d.conf["admin_socket"]
    clients = [Client(d.port, rtlib.mint(userId="term-%d" % i) if i % 2 else None)
               for i in range(24)]
    for c in clients[:10]:
        c.subscribe("announcements")
    assert workers_used(sock) == {0, 1}
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    codes = [c.expect_close(timeout=10)[0] for c in clients]
    assert codes == [1001] * len(clients), codes
    rc = d.proc.wait(5 + 2 + 3)
    assert rc == 0, d.log()
    assert time.monotonic() - t0 < 7 + 2
    assert not os.path.exists(d.conf["pidfile"])
    assert not os.path.exists(sock)


def test_sigint_stops_gracefully_too(own):
    d = own(conf={"shutdown_timeout": "3s"})
    c = Client(d.port)
    d.proc.send_signal(signal.SIGINT)
    assert c.expect_close(timeout=6)[0] == 1001
    assert d.proc.wait(8) == 0
    assert not os.path.exists(d.conf["pidfile"])


def _close_times(clients, t0, answer=True, timeout=15):
    out = [None] * len(clients)

    def watch(i, c):
        code, _ = c.expect_close(timeout=timeout, answer=answer)
        out[i] = (code, time.monotonic() - t0)
    ths = [threading.Thread(target=watch, args=(i, c)) for i, c in enumerate(clients)]
    return out, ths


def _check_spread(results, period):
    codes = [r[0] for r in results]
    times = sorted(r[1] for r in results)
    assert codes == [1001] * len(results), codes
    n = len(times)
    busiest = max(sum(1 for t in times if s <= t < s + 0.1) for s in times)
    assert times[-1] - times[0] >= period * 0.5, \
        "closes spread over only %.2fs: %r" % (times[-1] - times[0], times)
    assert busiest <= n // 2, \
        "%d of %d closes within 100 ms: %r" % (busiest, n, [round(t, 2) for t in times])
    assert times[-1] <= period + 1.5, "last close after %.2fs" % times[-1]


@pytest.mark.parametrize("answer", [True, False], ids=["clients-answer-close",
                                                       "clients-silent"])
def test_drain_period_spreads_the_closes(own, answer):
    d = own(conf={"workers": "2", "drain_period": "2s", "shutdown_timeout": "10s",
                  "close_timeout": "5s"})
    wait_settled(d, 2, redis=False)
    clients = [Client(d.port, rtlib.mint(userId="dr-%d" % i) if i % 3 else None)
               for i in range(40)]
    assert workers_used(d.conf["admin_socket"]) == {0, 1}
    t0 = time.monotonic()
    results, ths = _close_times(clients, t0, answer=answer)
    for t in ths:
        t.start()
    d.proc.send_signal(signal.SIGTERM)
    for t in ths:
        t.join(20)
    assert None not in results, results
    _check_spread(results, 2.0)
    assert d.proc.wait(15) == 0, d.log()[-3000:]


def test_sigusr1_does_not_kill_it(start_daemon):
    d, r = _redis_daemon(start_daemon, 2)
    sock = d.conf["admin_socket"]
    c = Client(d.port, rtlib.mint(userId="usr1"))
    c.subscribe("apps:created")
    pids = {w["pid"] for w in admin(sock, "workers")["workers"]}
    for _ in range(3):
        os.kill(d.proc.pid, signal.SIGUSR1)
        time.sleep(0.1)
    time.sleep(0.3)
    assert d.alive()
    assert "SIGUSR1" in d.log()
    assert {w["pid"] for w in admin(sock, "workers")["workers"]} == pids
    assert c.alive()
    r.command("PUBLISH", "apps:created", '{"after":"usr1"}')
    assert c.events_until(1)[0]["data"] == {"after": "usr1"}
    st, _, h = rtlib.health(d.port)
    assert st == 200 and h["connections"] == 1
    c.close()


@pytest.mark.parametrize("drain", ["0", "5s"])
def test_shutdown_timeout_bounds_the_stop_and_every_client_still_gets_1001(own, drain):
    """Clients that never answer the close, a close_timeout longer than
    shutdown_timeout, and (second case) a drain_period longer than it too:
    the daemon still exits 0 within shutdown_timeout (plus the master's
    grace), and no client is dropped without its 1001 -- or it refuses a
    drain_period longer than shutdown_timeout at start."""
    d = own(conf={"workers": "2", "shutdown_timeout": "1s", "close_timeout": "30s",
                  "drain_period": drain}, ready=False)
    wait_for(lambda: not d.alive() or _health_ok(d.port), 10, "start or refusal")
    if not d.alive():
        # refusing a drain_period longer than shutdown_timeout is fine too
        assert drain != "0" and d.proc.returncode == 1, d.log()
        assert "drain_period" in d.log() and "shutdown_timeout" in d.log(), d.log()
        return
    wait_settled(d, 2, redis=False)
    clients = [Client(d.port) for _ in range(20)]
    assert workers_used(d.conf["admin_socket"]) == {0, 1}
    t0 = time.monotonic()
    results, ths = _close_times(clients, t0, answer=False, timeout=10)
    for t in ths:
        t.start()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(10)
    elapsed = time.monotonic() - t0
    for t in ths:
        t.join(12)
    assert rc == 0, d.log()[-3000:]
    assert elapsed < 1 + 2 + 1.5, "the master took %.1fs to exit" % elapsed
    codes = [r[0] for r in results]
    assert codes == [1001] * len(codes), \
        "close codes (None: dropped without a close frame): %r" % codes
