"""Process model, the master's side: a child that sends the master a
message it may not send, or stops taking the master's, is killed and
respawned; a stopped bridge or worker is replaced after bridge_timeout or
worker_timeout, well before child_timeout; a stopped daemon that is
continued as a whole loses no child; a reload is complete only when every
process has applied it, and the log names the one that refused or did not
answer; the listen backlog is the configured one; an empty allowed_origins
on a public listener is warned about at start.

Messages from a child are forged by taking a copy of that child's control
socket with pidfd_getfd(2) (the test is the child's ancestor, so it may),
and writing to it as the child would.  Every wait is bounded.
"""
import asyncio
import ctypes
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

import proclib
import rtlib


def wait_for(pred, timeout, what, **kw):
    """rtlib.wait_for, a failing probe counting as 'not yet'."""
    return rtlib.wait_for(pred, timeout, what, tolerate=rtlib.TRANSIENT, **kw)

SYS_PIDFD_GETFD = 438
IPC_HELLO, IPC_CFG_RELOAD, IPC_CFG_ACK, IPC_EVENT = 1, 100, 102, 300
RELOAD_ACK_MS = 5000


start = proclib.start_settled


def replaced(d, title, old, timeout, why):
    """The new pid of title once it is no longer old."""
    return wait_for(
        lambda: (lambda p: p if p and p != old else None)(
            rtlib.roles(d.proc.pid).get(title)),
        timeout, "%s (pid %d) replaced: %s" % (title, old, why))


def resume(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def log_line(d, pattern, timeout=5):
    """The first log line matching pattern (a regex), waiting for it."""
    rx = re.compile(pattern)

    def find():
        for line in d.log().splitlines():
            if rx.search(line):
                return line
    return wait_for(find, timeout, "a log line matching %r" % pattern)


def serves(d, n=8):
    """n new clients (spread over the workers by the kernel) are greeted."""
    for i in range(n):
        c = rtlib.Client(d.port)
        assert c.alive()
        c.close()
    return True


# ------------------------------------------------ a child's control socket

def control_socket(pid):
    """A copy of child pid's end of its control socket (the only
    SOCK_SEQPACKET socket it holds), as a socket object."""
    seqpacket = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[4] == "0005":
                seqpacket.add(fields[6])
    fds = []
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", link)
        if m and m.group(1) in seqpacket:
            fds.append(int(name))
    assert len(fds) == 1, "pid %d holds SOCK_SEQPACKET fds %r" % (pid, fds)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, fds[0], 0)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, "pidfd_getfd: %s" % os.strerror(e))
    finally:
        os.close(pidfd)
    return socket.socket(fileno=fd)


def forge(pid, mtype, payload=b"", length=None, peerid=0):
    """Send the master one message as child pid would (length: the header's
    claim, when it should lie)."""
    s = control_socket(pid)
    try:
        n = len(payload) if length is None else length
        s.send(struct.pack("=IIII", mtype, n, peerid, pid) + payload)
    finally:
        s.close()


# --------------------------------------------- bad messages to the master

BAD_MESSAGES = {
    # name: (type, payload, claimed length, what the log says)
    "unknown_type": (999, b"", None, r"malformed or unknown message \(type 999, length 0\)"),
    "length_lie": (IPC_HELLO, b"", 64, r"malformed or unknown message \(type 1, length 64\)"),
    "wrong_direction": (IPC_EVENT, b"\0\x01a", None,
                        r"bad message \(type 300, length 3: not expected"),
    "ack_of_nothing": (IPC_CFG_ACK, struct.pack("=II", IPC_CFG_RELOAD, 1), None,
                       r"bad message \(type 102, length 8: acknowledgement of nothing"),
    "second_hello": (IPC_HELLO, b"", None, r"bad message \(type 1, length 0: not expected"),
}


@pytest.mark.parametrize("kind", sorted(BAD_MESSAGES))
def test_bad_message_from_a_worker_gets_it_killed_and_respawned(start_daemon, kind):
    mtype, payload, length, said = BAD_MESSAGES[kind]
    d, r = start(start_daemon, 2)
    title = rtlib.worker_title(1)
    old = rtlib.roles(d.proc.pid)[title]
    forge(old, mtype, payload, length)
    line = log_line(d, r"worker 1 \(pid %d\) sent a " % old)
    assert re.search(said, line), line
    assert line.endswith("killing it"), line
    replaced(d, title, old, 10, "after a bad message")
    rtlib.wait_settled(d, 2)
    assert serves(d)


def test_bad_message_from_the_bridge_gets_it_killed_and_delivery_resumes(start_daemon):
    d, r = start(start_daemon, 1, redis_reconnect_max="1s")
    old = rtlib.roles(d.proc.pid)[rtlib.BRIDGE]
    forge(old, 999)
    log_line(d, r"bridge \(pid %d\) sent a malformed or unknown message "
             r"\(type 999, length 0\): killing it" % old)
    replaced(d, rtlib.BRIDGE, old, 10, "after a bad message")
    rtlib.wait_settled(d, 1)
    c = rtlib.Client(d.port)
    c.subscribe("announcements")
    wait_for(lambda: proclib.publish(r.port, "announcements", "{}") >= 1, 10,
                     "the new bridge subscribed")
    assert c.ws.recv_json()["type"] == "event"
    c.close()


def test_worker_that_stops_reading_its_control_socket_is_killed_master_stays_responsive(
        start_daemon):
    """A stopped worker (worker_timeout far away) sent control messages
    until its queue is full: the master must not block on it, but kill it
    and go on answering the admin socket."""
    d, r = start(start_daemon, 1, worker_timeout="60s", child_timeout="60s")
    c = rtlib.Client(d.port)
    old = rtlib.roles(d.proc.pid)[rtlib.worker_title(0)]
    os.kill(old, signal.SIGSTOP)
    try:
        n = 3000
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(d.conf["admin_socket"])
        s.sendall(("kick %s\n" % c.id).encode() * n)
        buf = b""
        while buf.count(b"\n") < n:
            chunk = s.recv(65536)
            assert chunk, "the admin socket closed after %d replies" % buf.count(b"\n")
            buf += chunk
        s.close()
        # kicked while the registry still had it, refused once it was cleared
        replies = [json.loads(l) for l in buf.splitlines()]
        assert len(replies) == n and replies[0]["kicked"] == 1, replies[:3]
        log_line(d, r"worker 0 \(pid %d\) does not take control message 200 "
                 r"\(Resource temporarily unavailable\): killing it" % old)
        replaced(d, rtlib.worker_title(0), old, 10, "its control socket was full")
    finally:
        resume(old)
        c.ws.close_socket()
    rtlib.wait_settled(d, 1)
    assert serves(d)


# ------------------------------------------------ liveness deadlines

def test_stopped_bridge_is_replaced_after_bridge_timeout_and_delivery_resumes(start_daemon):
    """SIGSTOP the bridge: with the default bridge_timeout (3s) and a
    child_timeout of a minute, only bridge_timeout can explain a new bridge
    within 20 s."""
    d, r = start(start_daemon, 2, child_timeout="60s", redis_reconnect_max="1s")
    old = rtlib.roles(d.proc.pid)[rtlib.BRIDGE]
    ch = "announcements"

    async def main():
        cs = await proclib.open_many(d.port, 8, channel=ch)
        try:
            os.kill(old, signal.SIGSTOP)
            try:
                await asyncio.to_thread(replaced, d, rtlib.BRIDGE, old, 20,
                                        "bridge_timeout")
            finally:
                resume(old)
            line = log_line(d, r"bridge \(pid %d\) silent for \d+ ms" % old)
            assert "(bridge_timeout 3000 ms): killing it" in line, line
            for c in cs:
                t0 = time.monotonic()
                while True:
                    proclib.publish(r.port, ch, json.dumps({"probe": 1}))
                    try:
                        m = await c.recv_json(0.3)
                        assert m["type"] == "event", m
                        break
                    except asyncio.TimeoutError:
                        assert time.monotonic() - t0 < 15, "no event after the respawn"
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 60)
    rtlib.wait_settled(d, 2)


def test_stopped_worker_is_replaced_after_worker_timeout_and_new_clients_served(
        start_daemon):
    """A stopped worker holds its share of the SO_REUSEPORT queue: new
    connections hashed to it hang.  With the default worker_timeout (5s)
    and a child_timeout of a minute, it is replaced within 20 s, and the
    new worker takes over its accept queue."""
    d, r = start(start_daemon, 2, child_timeout="60s")
    title = rtlib.worker_title(1)
    old = rtlib.roles(d.proc.pid)[title]
    os.kill(old, signal.SIGSTOP)
    try:
        replaced(d, title, old, 20, "worker_timeout")
    finally:
        resume(old)
    line = log_line(d, r"worker 1 \(pid %d\) silent for \d+ ms" % old)
    assert "(worker_timeout 5000 ms): killing it" in line, line
    rtlib.wait_settled(d, 2)
    assert serves(d, 16)


def test_daemon_stopped_and_continued_as_a_whole_loses_no_child(start_daemon):
    """Ctrl-Z and fg on a foreground daemon, or a paused VM: the master and
    its children stop together for longer than worker_timeout and
    bridge_timeout.  The master, continued first, must not take its
    children's old ticks for hangs."""
    d, r = start(start_daemon, 2, worker_timeout="1s", bridge_timeout="1s")
    before = rtlib.roles(d.proc.pid)
    pids = [d.proc.pid] + sorted(before.values())
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        time.sleep(3)
    finally:
        for p in pids:
            resume(p)
    time.sleep(3)
    assert rtlib.roles(d.proc.pid) == before
    assert "killing it" not in d.log()
    log_line(d, r"the master was not scheduled for \d+ ms")
    rtlib.wait_settled(d, 2)


# ------------------------------------------------ reload acknowledgements

def hup_and_wait(d, pattern, timeout=15):
    n = len(re.findall(pattern, d.log()))
    os.kill(d.proc.pid, signal.SIGHUP)
    return wait_for(lambda: len(re.findall(pattern, d.log())) > n, timeout,
                            "the reload's outcome (%s)" % pattern)


def test_reload_complete_only_once_every_process_applied_it(start_daemon):
    d, r = start(start_daemon, 1, max_subscriptions="5")
    c = rtlib.Client(d.port, rtlib.mint(userId="u1"))
    with open(d.conf_path, "a") as f:
        f.write("max_subscriptions 1\n")
    hup_and_wait(d, r"reload complete")
    assert "reload complete: 2 processes applied it" in d.log(), d.log()[-2000:]
    # in force as soon as the master says so, without waiting any longer
    c.subscribe("apps:created")
    m = c.reply({"type": "subscribe", "channel": "apps:updated"})
    assert m["type"] == "error" and "Too many subscriptions" in json.dumps(m), m
    c.close()


def test_reload_names_the_worker_that_does_not_answer(start_daemon):
    d, r = start(start_daemon, 2, worker_timeout="60s", child_timeout="60s")
    victim = rtlib.roles(d.proc.pid)[rtlib.worker_title(1)]
    os.kill(victim, signal.SIGSTOP)
    try:
        hup_and_wait(d, r"reload incomplete")
    finally:
        resume(victim)
    assert re.search(r"reload: worker 1 \(pid %d\) did not answer within %d ms"
                     % (victim, RELOAD_ACK_MS), d.log()), d.log()[-2000:]
    assert "reload incomplete: 1 of 3 processes did not apply it" in d.log()
    log_line(d, r"reload: worker 1 \(pid %d\) answered after the deadline \(applied\)"
             % victim)
    # nothing was restarted; the next reload is complete again
    assert rtlib.roles(d.proc.pid)[rtlib.worker_title(1)] == victim
    hup_and_wait(d, r"reload complete: 3 processes")


def test_reload_names_the_worker_that_refuses(start_daemon, keypairs, tmp_path):
    """The worker reads jwt_public_key itself: stop it, reload (the master
    checks the good key), spoil the key file, continue it.  It keeps its
    old settings and says why, and the master logs which worker refused."""
    key = tmp_path / "jwt.pub.pem"
    key.write_bytes(keypairs["rsa"]["public"])
    d, r = start(start_daemon, 1, jwt_algorithm="RS256",
                 jwt_secret=None, jwt_public_key=str(key), worker_timeout="60s",
                 child_timeout="60s")
    victim = rtlib.roles(d.proc.pid)[rtlib.worker_title(0)]
    os.kill(victim, signal.SIGSTOP)
    try:
        n = d.log().count("master_reload_wait: waiting for")
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_for(lambda: d.log().count("master_reload_wait: waiting for") > n,
                         10, "the master to push the reload")
        key.write_text("not a key\n")
    finally:
        resume(victim)
    line = log_line(d, r"reload: worker 0 \(pid %d\) refused the settings: "
                    r"jwt_public_key " % victim, RELOAD_ACK_MS / 1000 + 5)
    assert str(key) in line, line
    log_line(d, r"reload incomplete: 1 of 2 processes did not apply it")
    # the worker still accepts tokens signed for the old key
    tok = rtlib.mint(userId="still", key=keypairs["rsa"]["private"], alg="RS256")
    c = rtlib.Client(d.port, tok)
    assert c.user["userId"] == "still"
    c.close()


# ------------------------------------------------------ listen backlog

def listen_backlogs(port):
    """Send-Q (the backlog) of every socket listening on port."""
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], capture_output=True,
                         timeout=10, check=True).stdout.decode()
    return [int(l.split()[2]) for l in out.splitlines() if l.strip()]


def somaxconn():
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


def test_listen_backlog_is_the_configured_one_on_every_worker_socket(start_daemon):
    d, _ = start(start_daemon, 2, listen_backlog="100")
    assert listen_backlogs(d.port) == [100, 100]


def test_default_listen_backlog_is_4096_or_somaxconn(start_daemon):
    d, _ = start(start_daemon, 2)
    assert listen_backlogs(d.port) == [min(4096, somaxconn())] * 2


def test_listen_backlog_over_somaxconn_is_capped_and_logged(start_daemon):
    cap = somaxconn()
    if cap >= 65535:
        pytest.skip("somaxconn %d: no listen_backlog is larger" % cap)
    d, _ = start(start_daemon, 1, listen_backlog="65535")
    assert listen_backlogs(d.port) == [cap]
    assert "listen_backlog 65535 capped to %d by /proc/sys/net/core/somaxconn" % cap \
        in d.log()


# ------------------------------------------------ allowed_origins warning

ORIGINS_WARNING = "allowed_origins is empty: any origin is accepted"


def start_on(start_daemon, host, **conf):
    port = rtlib.free_port()
    c = {"listen": "%s:%d" % (host, port)}
    c.update(conf)
    d = start_daemon(conf=c, ready=False)
    d.port = port
    return d.wait_ready()


def test_empty_allowed_origins_on_a_public_listener_is_warned_once(start_daemon):
    d = start_on(start_daemon, "0.0.0.0")
    lines = [l for l in d.log().splitlines() if ORIGINS_WARNING in l]
    assert len(lines) == 1, lines
    assert "public listener ws://0.0.0.0:%d" % d.port in lines[0], lines


@pytest.mark.parametrize("host,conf", [
    ("127.0.0.1", {}),
    ("0.0.0.0", {"allowed_origins": "https://app.example"}),
])
def test_no_origins_warning_on_loopback_or_with_allowed_origins(start_daemon, host, conf):
    d = start_on(start_daemon, host, **conf)
    assert ORIGINS_WARNING not in d.log()
