"""redis_url redis-sentinel://h1,h2,h3/MASTER: the bridge asks the sentinels
for the master, checks ROLE, follows +switch-master, and delivery resumes
after a failover without clients reconnecting.  Real redis-server and
redis-sentinel (Debian) started by scripts/redis-sentinel.sh on loopback
ports; every wait bounded."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

import proclib
import rtlib
from rtlib import Client, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "redis-sentinel.sh")
CHANNEL = "apps:created"

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v redis-sentinel"],
                   capture_output=True).returncode != 0,
    reason="redis-sentinel (Debian package redis-sentinel) not installed")


def _base():
    return rtlib.free_port_base((1, 10, 11, 12))    # the replica and three sentinels


def cmd(port, *args, password=None, timeout=2):
    """One command over RESP; the first reply line (or a bulk's body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if password:
            s.sendall(proclib.resp_command("AUTH", password))
            assert s.recv(100).startswith(b"+OK")
        s.sendall(proclib.resp_command(*args))
        return s.recv(65536)
    finally:
        s.close()


class Topology:
    """Master, replica, three sentinels (scripts/redis-sentinel.sh)."""

    def __init__(self, workdir, redis_password="", sentinel_password=""):
        self.dir = os.path.join(workdir, "sentinel")
        self.base = _base()
        self.rpass, self.spass = redis_password, sentinel_password
        env = dict(os.environ, REDIS_PASSWORD=redis_password,
                   SENTINEL_PASSWORD=sentinel_password)
        p = subprocess.run(["sh", SCRIPT, "start", self.dir, str(self.base)],
                           capture_output=True, text=True, timeout=90, env=env)
        if p.returncode != 0:
            self.stop()
            raise RuntimeError("redis-sentinel.sh: %s %s" % (p.stdout, p.stderr))
        self.url = p.stdout.split()[-1]
        self.sentinels = [self.base + 10, self.base + 11, self.base + 12]

    def master_port(self):
        for s in self.sentinels:
            try:
                r = cmd(s, "SENTINEL", "get-master-addr-by-name", "mymaster",
                        password=self.spass)
            except OSError:
                continue
            parts = r.split(b"\r\n")
            if len(parts) >= 5:
                return int(parts[4])
        return None

    def pid(self, port):
        with open(os.path.join(self.dir, "redis-%d.pid" % port)) as f:
            return int(f.read())

    def stop(self):
        subprocess.run(["sh", SCRIPT, "stop", self.dir], timeout=30)


@pytest.fixture
def topology(tmp_path):
    made = []

    def make(**kw):
        t = Topology(str(tmp_path), **kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.stop()


bstats = rtlib.bridge_stats


health_code = rtlib.health_code


def daemon(start_daemon, url, **conf):
    c = {"workers": "1", "redis_url": url, "canary_interval": "500ms"}
    c.update(conf)
    return start_daemon(conf=c, ready=True)


class Publisher(threading.Thread):
    """PUBLISH seq 0, 1, 2 ... every 10 ms to whichever node the sentinels
    name the master; records the seqs Redis took (receivers > 0)."""

    def __init__(self, topo):
        super().__init__(daemon=True)
        self.topo, self.stop_at, self.taken, self.seq = topo, None, [], 0
        self.halt = threading.Event()

    def run(self):
        port = self.topo.master_port()
        while not self.halt.is_set():
            data = json.dumps({"seq": self.seq})
            try:
                r = cmd(port, "PUBLISH", CHANNEL, data, password=self.topo.rpass,
                        timeout=0.5)
                if r.startswith(b":") and int(r[1:]) > 0:
                    self.taken.append(self.seq)
            except (OSError, AssertionError, ValueError):
                port = self.topo.master_port() or port
            self.seq += 1
            time.sleep(0.01)


def seqs(events):
    return [e["data"]["seq"] for e in events]


def test_kill9_of_the_master_delivery_resumes_on_the_same_socket(start_daemon, topology):
    t = topology()
    d = daemon(start_daemon, t.url)
    wait_for(lambda: health_code(d) == 200, 10, "healthy through the sentinels")
    assert "sentinel: master mymaster is at 127.0.0.1:%d" % t.base in d.log()
    c = Client(d.port, rtlib.mint())
    c.subscribe(CHANNEL)
    pub = Publisher(t)
    pub.start()
    try:
        wait_for(lambda: len(pub.taken) >= 20, 10, "events before the failover")
        old = t.base
        os.kill(t.pid(old), 9)
        killed_at = pub.seq
        wait_for(lambda: t.master_port() not in (None, old), 20, "sentinels promote the replica")
        wait_for(lambda: health_code(d) == 200 and bstats(d)["redis"] == "up", 15,
                 "healthy again on the new master")
        resumed_at = pub.seq
        wait_for(lambda: len([x for x in pub.taken if x > resumed_at]) >= 50, 10,
                 "publishes taken by the new master")
    finally:
        pub.halt.set()
        pub.join(5)
    got = seqs(c.events_until(len(pub.taken), timeout=10))
    # the same socket throughout: no reconnect, in order, never twice
    assert c.alive()
    assert got == sorted(set(got)), "out of order or duplicated"
    taken = set(pub.taken)
    # everything Redis took for us was delivered (the bridge was subscribed)
    assert taken <= set(got) | set(range(killed_at - 5, killed_at + 1)), \
        sorted(taken - set(got))[:20]
    before = [s for s in got if s < killed_at]
    after = [s for s in got if s > resumed_at]
    assert len(before) >= 20 and len(after) >= 50, (len(before), len(after))
    # the loss is the failover window: what no master took
    lost = pub.seq - len(pub.taken)
    log = d.log()
    assert "moved to 127.0.0.1:%d" % t.master_port() in log or \
        "master mymaster is at 127.0.0.1:%d" % t.master_port() in log
    s = bstats(d)
    assert s["redis_reconnects"] >= 1
    print("failover: %d publishes not taken by any master, %d delivered"
          % (lost, len(got)))


def test_manual_failover_with_passwords_follows_switch_master(start_daemon, topology):
    t = topology(redis_password="data-pass-0123456789",
                 sentinel_password="sentinel-pass-0123")
    d = daemon(start_daemon, t.url, redis_sentinel_password=t.spass)
    wait_for(lambda: health_code(d) == 200, 10, "healthy with both passwords")
    c = Client(d.port, rtlib.mint())
    c.subscribe(CHANNEL)
    assert cmd(t.base, "PUBLISH", CHANNEL, '{"seq":1}', password=t.rpass) == b":1\r\n"
    assert seqs([c.next_event()]) == [1]
    # a failover asked of a sentinel: the old master is alive, so only
    # +switch-master moves the bridge promptly
    assert cmd(t.sentinels[0], "SENTINEL", "FAILOVER", "mymaster",
               password=t.spass).startswith(b"+OK")
    wait_for(lambda: bstats(d)["redis_failovers"] >= 1, 15, "+switch-master followed")
    new = t.master_port()
    assert new == t.base + 1
    assert "sentinel: master mymaster moved to 127.0.0.1:%d" % new in d.log()
    wait_for(lambda: health_code(d) == 200, 10, "healthy on the new master")
    wait_for(lambda: cmd(new, "PUBLISH", CHANNEL, '{"seq":2}', password=t.rpass) == b":1\r\n",
             10, "bridge subscribed on the new master")
    assert seqs([c.next_event()]) == [2]
    assert c.alive()


def test_first_sentinel_down_the_failover_watch_uses_the_next(start_daemon, topology):
    """The first sentinel of the URL is down from the start: the bridge
    asks and watches +switch-master on the others, so a failover moves it
    at once (counted in redis_failovers), not ~10 s later when Sentinel
    kills the old master's clients."""
    t = topology()
    with open(os.path.join(t.dir, "sentinel-%d.pid" % t.sentinels[0])) as f:
        os.kill(int(f.read()), 15)
    wait_for(lambda: _refused(t.sentinels[0]), 10, "the first sentinel down")
    d = daemon(start_daemon, t.url)
    wait_for(lambda: health_code(d) == 200, 15, "healthy with sentinel 1 down")
    c = Client(d.port, rtlib.mint())
    c.subscribe(CHANNEL)
    old = t.master_port()
    assert cmd(old, "PUBLISH", CHANNEL, '{"seq":1}') == b":1\r\n"
    assert seqs([c.next_event()]) == [1]
    time.sleep(1.5)     # a watch attempt on the dead one, then the next
    assert cmd(t.sentinels[1], "SENTINEL", "FAILOVER", "mymaster").startswith(b"+OK")
    wait_for(lambda: bstats(d)["redis_failovers"] >= 1, 8, "+switch-master followed")
    new = t.master_port()
    assert new != old
    wait_for(lambda: cmd(new, "PUBLISH", CHANNEL, '{"seq":2}') == b":1\r\n",
             10, "bridge subscribed on the new master")
    assert seqs([c.next_event()]) == [2]
    assert bstats(d)["sentinel_errors"] >= 1


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except OSError:
        return True


def test_wrong_passwords_are_clear_and_do_not_crash_loop(start_daemon, topology):
    t = topology(redis_password="data-pass-0123456789",
                 sentinel_password="sentinel-pass-0123")
    url = t.url.replace(t.rpass, "wrong-password")
    bad_data = daemon(start_daemon, url, redis_sentinel_password=t.spass)
    bad_sentinel = daemon(start_daemon, t.url, redis_sentinel_password="wrong")
    no_sentinel_pass = daemon(start_daemon, t.url)
    pids = {}
    for dm in (bad_data, bad_sentinel, no_sentinel_pass):
        pids[dm.name] = rtlib.roles(dm.proc.pid)
    wait_for(lambda: "redis AUTH failed" in bad_data.log(), 10, "data AUTH failure logged")
    wait_for(lambda: "sentinel AUTH failed" in bad_sentinel.log(), 10,
             "sentinel AUTH failure logged")
    wait_for(lambda: "no sentinel gave the address of master mymaster" in
             no_sentinel_pass.log(), 10, "sentinels refusing without a password")
    time.sleep(1.5)     # a crash loop would show as new children meanwhile
    for dm in (bad_data, bad_sentinel, no_sentinel_pass):
        assert health_code(dm) == 503, dm.name
        assert rtlib.roles(dm.proc.pid) == pids[dm.name], dm.name
        assert bstats(dm)["redis"] == "down"
        assert "wrong-password" not in dm.log()
    assert bstats(bad_sentinel)["sentinel_errors"] >= 1


def test_bad_sentinel_urls_are_refused_by_t(tmp_path):
    for url, why in (("redis-sentinel://h1,h2", "master"),
                     ("redis-sentinel://h1,,h2/m", "empty"),
                     ("redis-cluster://h1:7000/0", "takes no database")):
        conf = tmp_path / "x.conf"
        conf.write_text("redis_url %s\njwt_algorithm HS256\njwt_secret %s\n"
                        % (url, rtlib.SECRET))
        p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(conf)],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode != 0, url
        assert why in p.stderr + p.stdout, (url, p.stderr)
        assert "x.conf:1" in p.stderr + p.stdout, p.stderr
