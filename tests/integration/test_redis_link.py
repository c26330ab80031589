"""The bridge's two Redis connections (subscriptions, commands) when one of
them stops reaching Redis without closing (a partition, a stuck middlebox):
the canary goes out on the command connection, so missing it twice must
start both again, and /health comes back without anyone's help.  A real
redis-server behind a small TCP relay that can freeze one connection."""
import socket
import threading
import time

import rtlib
from rtlib import Client, wait_for


class Listener(threading.Thread):
    """Takes connections on a free loopback port (port); accepted counts
    them, take(sock) is given each."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0
        self.conns = []

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted += 1
            self.take(c)


class Relay(Listener):
    """127.0.0.1:port -> Redis.  freeze() turns the open connections whose
    client's first bytes contained `mark` into black holes (bytes both
    ways dropped, sockets left open); later connections are not touched."""

    def __init__(self, redis_port, mark):
        super().__init__()
        self.redis_port, self.mark = redis_port, mark   # conns: (client, upstream, state)

    def take(self, c):
        u = socket.create_connection(("127.0.0.1", self.redis_port))
        state = {"marked": None, "frozen": False}
        self.conns.append((c, u, state))
        threading.Thread(target=self.pipe, args=(c, u, state, True), daemon=True).start()
        threading.Thread(target=self.pipe, args=(u, c, state, False), daemon=True).start()

    def freeze(self):
        n = 0
        for _, _, st in self.conns:
            if st["marked"]:
                st["frozen"] = True
                n += 1
        return n

    def pipe(self, a, b, state, upstream):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if upstream and state["marked"] is None:
                state["marked"] = self.mark in data
            if state["frozen"]:
                continue
            try:
                b.sendall(data)
            except OSError:
                return

    def close(self):
        self.lsock.close()
        for c, u, _ in self.conns:
            for s in (c, u):
                try:
                    s.close()
                except OSError:
                    pass


def test_a_frozen_command_connection_is_replaced(start_daemon):
    r = start_daemon.redis()
    relay = Relay(r.port, b"FUNCTION")    # the command connection loads the library first
    relay.start()
    try:
        d = start_daemon(conf={"workers": "1", "canary_interval": "500ms",
                               "redis_url": "redis://127.0.0.1:%d" % relay.port,
                               "redis_reconnect_max": "500ms"})
        rtlib.wait_settled(d, 1)
        c = Client(d.port, rtlib.mint(role="admin"))
        c.subscribe("system:metrics")
        first = relay.accepted
        assert relay.freeze() == 1
        # the canary cannot get out: degraded, then both connections anew
        wait_for(lambda: rtlib.health(d.port, timeout=2)[0] == 503, 10,
                 "/health 503 while the canary cannot be published")
        wait_for(lambda: sum(1 for _, _, st in relay.conns if st["marked"]) >= 2, 10,
                 "a new command connection")
        assert relay.accepted >= first + 2
        assert "redis subscription lost events: reconnecting" in d.log()
        wait_for(lambda: rtlib.health(d.port, timeout=2)[0] == 200, 10,
                 "/health 200 on the new connections")
        assert c.alive()
        assert r.command("PUBLISH", "system:metrics", '{"n":1}') == b":1\r\n"
        assert c.next_event()["data"] == {"n": 1}
    finally:
        relay.close()


class Silent(Listener):
    """Takes connections and never answers: a Redis that hangs before it
    is ready."""

    def take(self, c):
        self.conns.append(c)

    def close(self):
        self.lsock.close()
        for c in self.conns:
            c.close()


def test_redis_timeout_gives_up_a_connection_and_answers_waiting_subscribes(start_daemon):
    """redis_timeout: a Redis connection not ready within it is made again,
    and a subscribe waiting for Redis (history: its position) is answered
    without Redis after that long, not after the default 5 s.  A reload
    changes it."""
    silent = Silent()
    silent.start()
    try:
        d = start_daemon(conf={"workers": "1", "canary_interval": "0",
                               "redis_url": "redis://127.0.0.1:%d" % silent.port,
                               "redis_timeout": "1s", "redis_reconnect_max": "100ms"})
        rtlib.wait_settled(d, 1, redis=False)
        wait_for(lambda: "not ready in 1000 ms (redis_timeout)" in d.log(), 4,
                 "the first connection given up after 1 s")
        wait_for(lambda: silent.accepted >= 4, 4, "connections made again")
        c = Client(d.port, rtlib.mint(userId="t1"))
        # into an attempt (the backoff is 100 ms): the subscribe waits for it
        gone = d.log().count("not ready in")
        wait_for(lambda: d.log().count("not ready in") > gone, 4, "an attempt given up")
        time.sleep(0.3)
        t0 = time.monotonic()
        m = c.reply({"type": "subscribe", "channel": "apps:created"}, timeout=10)
        took = time.monotonic() - t0
        assert m["type"] == "subscribed" and m["offset"] == 0, m
        assert 0.2 < took < 3.5, "answered after %.2f s" % took
        log = d.reconfigure(redis_timeout="2s")
        assert "keeping the old configuration" not in log
        wait_for(lambda: "not ready in 2000 ms (redis_timeout)" in d.log(), 6,
                 "the reloaded redis_timeout")
        c.close()
    finally:
        silent.close()
