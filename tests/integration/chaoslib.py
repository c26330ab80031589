"""Helpers for test_abuse.py, test_authz.py and test_chaos.py: the daemon's
counters (admin `stats` through realtimectl, GET /metrics), its processes
and their file descriptors and memory, a check that the daemon still
serves after an abusive client, and a Redis publisher that survives Redis
restarts and records what Redis answered.

Every wait here is bounded.
"""
import asyncio
import os
import socket
import time

import proclib
import rtlib
from proclib import FastWS


# ------------------------------------------------------------ counters

def _ctl_ok(d, command):
    """realtimectl --json COMMAND on d's admin socket: what the reply holds
    under COMMAND (exit status 0 and "ok": true required)."""
    rc, r = rtlib.ctl_json(d.conf["admin_socket"], command, timeout=5)
    assert rc == 0 and r.get("ok") is True, \
        "realtimectl %s: rc %d %r" % (command, rc, r)
    return r[command]


def stats(d):
    """The admin `stats` object (connections, subscriptions, counters)."""
    return _ctl_ok(d, "stats")


def connections(d):
    return _ctl_ok(d, "connections")


def metrics(port):
    """GET /metrics (from 127.0.0.1) -> {"name{labels}": value}."""
    st, _, body, _ = rtlib.http_get(port, "/metrics")
    assert st == 200, (st, body[:200])
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        out[k] = float(v)
    return out


# stats key -> the Prometheus series that must say the same
METRIC_OF = {
    "handshake_timeouts": "realtimed_handshake_timeouts_total",
    "handshake_errors": "realtimed_handshake_errors_total",
    "protocol_errors": "realtimed_protocol_errors_total",
    "rate_limited": "realtimed_rate_limited_total",
    "slow_consumer_closes": "realtimed_slow_consumer_closes_total",
    "ip_limited": "realtimed_ip_limited_total",
    "heartbeat_drops": "realtimed_heartbeat_drops_total",
    "server_full_refusals": "realtimed_server_full_total",
    "pending_connections": "realtimed_pending_connections",
    "pending_connections_full": "realtimed_pending_connections_full_total",
}


def wait_counter(d, name, at_least, timeout=5):
    """Poll admin stats until stats[name] >= at_least; return stats."""
    return rtlib.wait_for(
        lambda: (lambda s: s if s[name] >= at_least else None)(stats(d)),
        timeout, "admin stats %s >= %d" % (name, at_least), interval=0.05,
        tolerate=rtlib.TRANSIENT)


# ----------------------------------------------------------- processes

def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def fd_counts(d):
    """{title: open fds} of the master ("master") and of each child."""
    out = {"master": fd_count(d.proc.pid)}
    for title, pid in rtlib.roles(d.proc.pid).items():
        out[title] = fd_count(pid)
    return out


def rss_by_title(d):
    out = {"master": proclib.rss_kib([d.proc.pid])}
    for title, pid in rtlib.roles(d.proc.pid).items():
        out[title] = proclib.rss_kib([pid])
    return out


# ------------------------------------------------ "it still serves"

async def _client_roundtrip(port, channel, token):
    c = await FastWS.connect(port, token)
    try:
        await c.subscribe(channel)
        m = await c.request({"type": "ping"})
        assert m["type"] == "pong", m
        m = await c.request({"type": "list_channels"})
        assert m["type"] == "channels" and channel in m["subscribedChannels"], m
    finally:
        c.abort()


def assert_serves(d, procs_before, nclients=4):
    """After an abusive client: the same worker and bridge PIDs are alive,
    and fresh clients connect, subscribe and ping (several, so that with
    SO_REUSEPORT they land on every worker with good odds); /health
    answers 200."""
    now = rtlib.roles(d.proc.pid)
    assert now == procs_before, \
        "daemon processes changed: before %r, after %r" % (procs_before, now)
    for pid in procs_before.values():
        os.kill(pid, 0)     # alive (raises if not)

    async def main():
        await asyncio.gather(*(
            _client_roundtrip(d.port, "apps:created",
                              rtlib.mint(userId="after-%d" % i))
            for i in range(nclients)))
    rtlib.arun(main(), 20)
    st, h = proclib.health_json(d.port)
    assert st == 200 and h["status"] == "ok", (st, h)
    assert d.alive()


# ------------------------------------------------------- a publisher

class Publisher:
    """PUBLISH over one RESP connection, reconnecting after failures.
    publish() -> receivers (int), or None when Redis did not answer (the
    command may or may not have been executed)."""

    def __init__(self, port, timeout=1.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def publish(self, channel, payload):
        """(receivers or None, "ok" | "refused" | "unknown")."""
        if self.sock is None:
            try:
                self._connect()
            except OSError:
                return None, "refused"      # not sent: certainly not published
        try:
            self.sock.sendall(proclib.resp_command("PUBLISH", channel, payload))
            deadline = time.monotonic() + self.timeout
            while b"\r\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                self.sock.settimeout(left)
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError("redis closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if not line.startswith(b":"):
                # e.g. -LOADING or -ERR while shutting down: not published
                self.close()
                return None, "refused"
            return int(line[1:]), "ok"
        except (OSError, ConnectionError, socket.timeout):
            self.close()
            return None, "unknown"


def redis_ping(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except OSError:
        return False
    try:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64) == b"+PONG\r\n"
    except OSError:
        return False
    finally:
        s.close()
