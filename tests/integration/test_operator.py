"""Operator correctness: log_file and log_format, SIGUSR1 reopening the log
in every process, stderr when syslog is unreachable, no spurious warning at
a clean stop, `realtimed -t` catching what the start would (file:line), and
a second instance refusing a port that another one listens on.

Daemons a test stops itself are conftest's `own` ones."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import proclib
import rtlib

BIN_TIMEOUT = 15
GOOD_SECRET = rtlib.SECRET

clean_env = rtlib.clean_env
wait_for = rtlib.wait_for


def write_conf(path, lines):
    with open(path, "w") as f:
        f.write("# written by tests/integration/test_operator.py\n")
        for line in lines:
            f.write(line + "\n")


def run_test_mode(path):
    """realtimed -t -c path: (status, stderr)."""
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(path)],
                       capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=BIN_TIMEOUT, env=rtlib.clean_env())
    return p.returncode, p.stderr.decode()


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def json_lines(path):
    return [json.loads(line) for line in read(path).splitlines()]


def settled(d, nworkers=1, redis=True):
    """The bridge and the workers running ({title: pid}), Redis up when asked."""
    if redis:
        return rtlib.wait_settled(d, nworkers)
    want = rtlib.expected_titles(nworkers)
    return wait_for(lambda: set(rtlib.roles(d.proc.pid)) == want and
                    rtlib.roles(d.proc.pid), 10, "the bridge and %d workers" % nworkers)


def pid_alive(pid):
    """Running, not a zombie (a detached master is not our child to reap)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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


# --------------------------------------------------- a port already in use

def _second(tmp_path, port, pidfile_text=None):
    """realtimed -f on port, run to its end: (status, stderr)."""
    conf = tmp_path / "second.conf"
    pidfile = tmp_path / "second.pid"
    if pidfile_text is not None:
        pidfile.write_text(pidfile_text)
    write_conf(conf, ["listen 127.0.0.1:%d" % port, "workers 2",
                      "jwt_secret another-secret-0123456789abcdef0123",
                      "redis_url redis://127.0.0.1:1", "canary_interval 0",
                      "pidfile %s" % pidfile, "admin_socket %s" % (tmp_path / "second.sock")])
    p = subprocess.run([rtlib.realtimed_bin(), "-f", "-c", str(conf)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=BIN_TIMEOUT, env=rtlib.clean_env())
    return p.returncode, p.stderr.decode()


def test_second_instance_on_the_same_port_refuses_to_start(start_daemon, tmp_path):
    d = start_daemon(conf={"workers": "2"})
    settled(d, 2, redis=False)
    rc, err = _second(tmp_path, d.port)
    assert rc == 1, err
    assert "listen 127.0.0.1:%d: the port is in use by another process" % d.port in err, err
    assert "listening on" not in err
    # the first still has the port to itself: every new client is its own
    clients = [rtlib.Client(d.port) for _ in range(20)]
    conns = rtlib.admin(d.conf["admin_socket"], "connections")["connections"]
    assert len(conns) == 20
    for c in clients:
        assert c.alive()
        c.close()


def test_the_refusal_names_a_live_realtimed_in_the_pidfile(start_daemon, tmp_path):
    d = start_daemon()
    rc, err = _second(tmp_path, d.port, pidfile_text="%d\n" % d.proc.pid)
    assert rc == 1, err
    assert "in use by realtimed pid %d (pidfile %s)" % (d.proc.pid, tmp_path / "second.pid") \
        in err, err


def test_a_fifo_as_include_or_secret_file_is_refused_not_waited_on(tmp_path):
    """An include or jwt_secret_file that is a FIFO with no writer would
    hang -t, and the master in a reload: it is no regular file, refused."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for lines in (["include %s" % fifo],
                  ["jwt_secret_file %s" % fifo, "jwt_secret \"\""]):
        conf = tmp_path / "fifo.conf"
        write_conf(conf, ["listen 127.0.0.1:1", "jwt_secret %s" % GOOD_SECRET] + lines)
        rc, err = run_test_mode(conf)
        assert rc == 1, err
        assert "%s: not a regular file" % fifo in err, err


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _with_admin_socket(tmp_path, sock):
    """realtimed -f on a free port with admin_socket sock, run to its end."""
    conf = tmp_path / "third.conf"
    write_conf(conf, ["listen 127.0.0.1:%d" % _free_port(), "workers 1",
                      "jwt_secret another-secret-0123456789abcdef0123",
                      "redis_url redis://127.0.0.1:1", "canary_interval 0",
                      "pidfile %s" % (tmp_path / "third.pid"), "admin_socket %s" % sock])
    p = subprocess.run([rtlib.realtimed_bin(), "-f", "-c", str(conf)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=BIN_TIMEOUT, env=rtlib.clean_env())
    return p.returncode, p.stderr.decode()


def test_an_admin_socket_in_use_or_not_a_socket_is_left_alone(start_daemon, tmp_path):
    """A second daemon (its own port and pidfile) given the first one's
    admin_socket refuses to start and leaves it to the first; a path that
    holds a file is no socket to remove.  A stale socket is replaced."""
    d = start_daemon()
    sock = d.conf["admin_socket"]
    rc, err = _with_admin_socket(tmp_path, sock)
    assert rc == 1, err
    assert "admin_socket %s: in use by another process" % sock in err, err
    assert rtlib.admin(sock, "stats")["ok"] is True       # still the first's
    f = tmp_path / "a-file"
    f.write_text("keep me\n")
    rc, err = _with_admin_socket(tmp_path, f)
    assert rc == 1 and "exists and is not a socket" in err, err
    assert f.read_text() == "keep me\n"
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()                                       # bound, never listened: stale
    d2 = start_daemon(conf={"admin_socket": str(stale)})
    assert rtlib.admin(str(stale), "stats")["ok"] is True
    assert d2.proc.poll() is None


def _bindable(port):
    """bind() without SO_REUSEPORT succeeds: nobody listens on the port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_a_draining_instance_frees_its_port_at_once(own, start_daemon):
    old = own(conf={"drain_period": "3s", "shutdown_timeout": "8s"})
    settled(old, redis=False)
    c = rtlib.Client(old.port)
    old.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in old.log(), 5, "the old instance to begin its stop")
    # nothing listens on the port any more, though the old instance drains on
    wait_for(lambda: _bindable(old.port), 3, "port %d to be free" % old.port)
    # and a new instance binds it, and takes every new client
    new = start_daemon(conf={"listen": "127.0.0.1:%d" % old.port}, name="new", ready=False)
    new.port = old.port
    new.wait_ready()
    assert old.alive(), "the old instance finished draining before the test could look"
    for _ in range(10):
        st, _, h = rtlib.health(old.port, timeout=2)
        assert st in (200, 503) and h["connections"] == 0   # 503: no Redis here
    assert "port is in use" not in new.log()
    # and the old one's client still gets its close
    code, _, _ = c.ws.recv_close(timeout=10)
    assert code == 1001
    c.ws.close_socket()
    assert old.proc.wait(10) == 0


# ------------------------------------------------------------------ log_file

def test_log_file_gets_every_process_and_stderr_nothing(start_daemon, tmp_path):
    r = start_daemon.redis()
    log = tmp_path / "rt.log"
    d = start_daemon(conf={"redis_url": r.url, "log_file": str(log)})
    settled(d)
    text = read(log)
    assert "listening on" in text
    assert "realtimed/bridge[" in text and "subscribed, delivering events" in text
    assert "realtimed/worker0[" in text
    assert "listening on" not in d.log() and "subscribed" not in d.log()
    assert os.stat(log).st_mode & 0o777 == 0o640


def test_log_format_json_is_one_object_per_line(start_daemon, tmp_path):
    r = start_daemon.redis()
    log = tmp_path / "rt.json"
    d = start_daemon(conf={"redis_url": r.url, "log_file": str(log),
                           "log_format": "json"})
    roles = settled(d)
    lines = json_lines(log)
    assert lines
    for o in lines:
        assert set(o) == {"time", "level", "process", "pid", "message"}, o
        assert rtlib.TS_RE.match(o["time"]), o
        assert o["level"] in ("error", "warning", "info", "debug"), o
    pids = {o["process"]: o["pid"] for o in lines}
    assert pids.get("master") == d.proc.pid
    assert pids.get("bridge") == roles[rtlib.BRIDGE]
    assert pids.get("worker 0") == roles[rtlib.worker_title(0)]


def _log_fds(pid, log):
    """The paths this process's descriptors on the log file point to."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith(str(log)):
            out.append(target)
    return out


def test_sigusr1_reopens_the_log_file_in_every_process(start_daemon, tmp_path):
    r = start_daemon.redis()
    log = tmp_path / "rt.log"
    d = start_daemon(conf={"redis_url": r.url, "log_file": str(log),
                           "log_format": "json"})
    pids = [d.proc.pid] + sorted(settled(d).values())
    assert len(pids) == 3
    # logrotate: rename, then the postrotate signal
    os.rename(log, str(log) + ".1")
    for p in pids:
        assert _log_fds(p, log) == [str(log) + ".1"], p
    os.kill(d.proc.pid, signal.SIGUSR1)
    for p in pids:
        wait_for(lambda: _log_fds(p, log) == [str(log)], 5,
                 "process %d to reopen %s" % (p, log))
    assert "SIGUSR1: reopening" in read(str(log) + ".1")
    # every process writes to the new file: the bridge on a Redis outage,
    # the master and the worker on a reload
    r.command("CLIENT", "KILL", "TYPE", "pubsub")
    os.kill(d.proc.pid, signal.SIGHUP)
    wait_for(lambda: {"master", "bridge"} <= {o["process"] for o in json_lines(log)},
             10, "lines from the master and the bridge in the new file")
    c = rtlib.Client(d.port)
    rtlib.admin(d.conf["admin_socket"], "kick %s" % c.id)
    wait_for(lambda: "worker 0" in {o["process"] for o in json_lines(log)}, 5,
             "a line from the worker in the new file")
    c.ws.close_socket()


def test_children_survive_a_stray_sigusr1(start_daemon):
    d = start_daemon()
    roles = settled(d, redis=False)
    worker = roles[rtlib.worker_title(0)]
    os.kill(worker, signal.SIGUSR1)
    time.sleep(0.3)
    assert rtlib.roles(d.proc.pid).get(rtlib.worker_title(0)) == worker
    assert "exited on signal" not in d.log()


def _syslog_reachable():
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.connect("/dev/log")
            return True
        except OSError:
            pass
        finally:
            s.close()
    return False


def test_detached_without_syslog_logs_to_stderr(tmp_path):
    if _syslog_reachable():
        pytest.skip("a syslog daemon listens on /dev/log here")
    port = rtlib.free_port()
    conf, err = tmp_path / "d.conf", tmp_path / "stderr.log"
    pidfile = tmp_path / "d.pid"
    write_conf(conf, ["listen 127.0.0.1:%d" % port, "workers 1",
                      "jwt_secret %s" % GOOD_SECRET, "redis_url redis://127.0.0.1:1",
                      "canary_interval 0", "pidfile %s" % pidfile,
                      "admin_socket %s" % (tmp_path / "d.sock"), "drain_period 0"])
    with open(err, "wb") as f:
        p = subprocess.run([rtlib.realtimed_bin(), "-c", str(conf)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=f, timeout=BIN_TIMEOUT,
                           env=rtlib.clean_env())
    assert p.returncode == 0, read(err)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 5,
             "the pidfile")
    master = int(pidfile.read_text().strip())
    try:
        # logged after detaching
        wait_for(lambda: "listening on" in read(err), 10,
                 "the detached daemon's log on its stderr")
        assert "syslog is unreachable" in read(err)
    finally:
        os.kill(master, signal.SIGTERM)
        wait_for(lambda: not pid_alive(master), 15, "the master to exit")
    assert "realtimed/worker0[" in read(err) and "stopped" in read(err), read(err)


# ---------------------------------------------------------- realtimed -t

def _cert(tmp_path):
    """Any readable regular file will do where only the key is checked."""
    p = tmp_path / "cert.pem"
    p.write_text("-----BEGIN CERTIFICATE-----\n")
    return p


# (lines after "listen 127.0.0.1:18080" and the secret; the bad one is line 4)
T_CASES = [
    (["listen 127.0.0.1:99999"], "listen", "out of range (1 to 65535)"),
    (["listen 127.0.0.1:0"], "listen", "out of range"),
    (["listen nohost"], "listen", "not a number"),
    (["listen nosuchhost.invalid:18080"], "listen", "nosuchhost.invalid"),
    (["listen_tls 127.0.0.1:70000"], "listen_tls", "out of range"),
    (["user nosuchuser-rt"], "user", "no such user"),
    (["group nosuchgroup-rt"], "group", "no such group"),
    (["redis_url http://127.0.0.1:6379"], "redis_url", "expected redis://"),
    (["metrics_allow 10.0.0.0/8 not-an-address"], "metrics_allow", "not-an-address"),
    (["tls_certificate /nonexistent/cert.pem", "listen_tls 127.0.0.1:18443"],
     "tls_certificate", "No such file"),
    (["tls_certificate_key /nonexistent/key.pem", "listen_tls 127.0.0.1:18443",
      "tls_certificate CERT"], "tls_certificate_key", "No such file"),
    (["jwt_public_key /", "jwt_algorithm RS256"], "jwt_public_key", "Is a directory"),
    (["jwt_public_key /nonexistent/jwt.pub", "jwt_algorithm ES256"], "jwt_public_key",
     "No such file"),
    (["jwt_secret_file /nonexistent/secret", "jwt_secret \"\""], "jwt_secret_file",
     "No such file"),
    (["log_file /nonexistent/dir/realtimed.log"], "log_file", "No such file"),
    (["log_format yaml"], "log_format", "not text or json"),
]


@pytest.mark.parametrize("lines,key,why", T_CASES, ids=[c[0][0] for c in T_CASES])
def test_config_test_catches_what_the_start_would(tmp_path, lines, key, why):
    p = tmp_path / "t.conf"
    lines = [l.replace("CERT", str(_cert(tmp_path))) for l in lines]
    write_conf(p, ["listen 127.0.0.1:18080", "jwt_secret %s" % GOOD_SECRET] + lines)
    rc, err = run_test_mode(p)
    assert rc == 1, (rc, err)
    assert "%s:4: %s" % (p, key) in err, err
    assert why in err, err
    assert "successful" not in err


def test_config_test_unreadable_file_as_a_user(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    key = tmp_path / "jwt.pub"
    key.write_text("x")
    key.chmod(0)
    p = tmp_path / "t.conf"
    write_conf(p, ["jwt_algorithm RS256", "jwt_public_key %s" % key])
    rc, err = run_test_mode(p)
    assert rc == 1 and "%s:3: jwt_public_key" % p in err and "Permission denied" in err, err


def test_short_jwt_secret_warns_at_test_and_start(start_daemon, tmp_path):
    p = tmp_path / "t.conf"
    write_conf(p, ["listen 127.0.0.1:18080", "jwt_secret short-secret"])
    rc, err = run_test_mode(p)
    assert rc == 0, err
    assert "%s:3: jwt_secret is 12 bytes" % p in err, err
    assert "successful" in err
    d = start_daemon(conf={"jwt_secret": "short-secret"})
    assert "jwt_secret is 12 bytes" in d.log()
    d2 = start_daemon(conf={}, name="long-secret")
    assert "jwt_secret is" not in d2.log()
