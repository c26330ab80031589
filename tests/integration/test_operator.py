"""Operator correctness: no spurious warning at a clean stop, and a second
instance refusing a port that another one listens on.

Daemons a test stops itself are conftest's `own` ones."""
import re
import signal
import socket
import subprocess

import proclib
import rtlib

BIN_TIMEOUT = 15

clean_env = rtlib.clean_env
wait_for = rtlib.wait_for


def write_conf(path, lines):
    with open(path, "w") as f:
        f.write("# written by tests/integration/test_operator.py\n")
        for line in lines:
            f.write(line + "\n")


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
                       stdin=subprocess.DEVNULL, timeout=BIN_TIMEOUT, env=clean_env())
    return p.returncode, p.stderr.decode()


def test_second_instance_on_the_same_port_refuses_to_start(start_daemon, tmp_path):
    d = start_daemon(conf={"workers": "2"})
    settled(d, 2, redis=False)
    rc, err = _second(tmp_path, d.port)
    assert rc == 1, err
    assert "listen 127.0.0.1:%d: the port is in use by another process" % d.port in err, err
    assert "listening on" not in err
    # the first still has the port to itself: every new client is its own
    clients = [rtlib.ProtoClient(d.port) for _ in range(20)]
    conns = rtlib.admin_request(d.conf["admin_socket"], "connections")["connections"]
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
    c = rtlib.ProtoClient(old.port)
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
