"""Process model, faults: a killed worker or bridge is respawned by the
master and the registry follows; a Redis outage degrades /health without
dropping clients and delivery resumes by itself; the canary keeps /health
ok while things are healthy; a subscriber that does not read is closed
(4000) without hurting the others or growing the daemon's memory.

Every wait is bounded; connections are spread over workers by the kernel,
so the tests open enough of them to land on every worker and learn which
worker held which socket only by what drops when one is killed.
"""
import asyncio
import json
import os
import signal
import time

import pytest
import websockets

import proclib
import rtlib
from proclib import Closed

WORKERS = [2, 4]


start = proclib.start_settled


async def next_event(c, timeout):
    """The next event c receives; Closed/ConnectionError when it drops."""
    while True:
        m = json.loads(await asyncio.wait_for(c.recv_text(), timeout))
        if m["type"] == "event":
            return m


async def events_until_end(c, timeout=10):
    """data of every event c receives up to the {"end":true} one, skipping
    {"probe":..} events."""
    out = []

    async def loop():
        while True:
            m = await next_event(c, timeout)
            if m["data"] == {"end": True}:
                return out
            if "probe" not in m["data"]:
                out.append(m["data"])
    return await asyncio.wait_for(loop(), timeout)


async def probe_until_delivered(rport, channel, c, timeout=10):
    """Publish probes until one reaches c (after a restart somewhere in the
    path); seconds it took."""
    t0 = time.monotonic()
    k = 0
    while True:
        proclib.publish(rport, channel, json.dumps({"probe": k}))
        k += 1
        try:
            m = await next_event(c, 0.2)
            assert "probe" in m["data"], m
            return time.monotonic() - t0
        except asyncio.TimeoutError:
            pass
        if time.monotonic() - t0 > timeout:
            raise AssertionError("no event delivered within %.0fs after %d "
                                 "probes" % (timeout, k))


async def all_get_sequence(rport, channel, clients, n=10):
    msgs = [(channel, json.dumps({"seq": k})) for k in range(n)]
    msgs.append((channel, json.dumps({"end": True})))
    await asyncio.to_thread(proclib.publish_many, rport, msgs)
    got = await asyncio.gather(*(events_until_end(c) for c in clients))
    for i, g in enumerate(got):
        assert g == [{"seq": k} for k in range(n)], (i, g)


def host_counts(d):
    st, h = proclib.health_json(d.port)
    return st, (h["connections"], h["authenticated"], h["activeChannels"])


# ------------------------------------------------------------ kill -9

@pytest.mark.parametrize("nworkers", WORKERS)
def test_killed_worker_is_respawned_and_registry_cleared(start_daemon,
                                                         nworkers):
    d, r = start(start_daemon, nworkers)
    procs = rtlib.roles(d.proc.pid)
    victim_title = rtlib.worker_title(0)
    victim = procs[victim_title]
    n = 40
    ch = "apps:deployed"

    async def main():
        cs = await proclib.open_many(
            d.port, n, token=lambda i: rtlib.mint(userId="kw-%d" % i),
            channel=ch)
        try:
            assert host_counts(d) == (200, (n, n, 1))
            os.kill(victim, signal.SIGKILL)

            # the dead worker's sockets end; the others stay
            async def dropped(c):
                try:
                    await asyncio.wait_for(c.recv_text(), 3)
                except (Closed, ConnectionError):
                    return True
                except asyncio.TimeoutError:
                    return False
                raise AssertionError("unexpected message")
            drops = await asyncio.gather(*(dropped(c) for c in cs))
            gone = [c for c, x in zip(cs, drops) if x]
            alive = [c for c, x in zip(cs, drops) if not x]
            assert gone, "no connection was on worker 0 (%d connections)" % n
            assert alive, "every connection was on worker 0"

            # a new worker 0: new PID, same title, same set of processes
            def respawned():
                rl = rtlib.roles(d.proc.pid)
                p = rl.get(victim_title)
                if p and p != victim and \
                        set(rl) == rtlib.expected_titles(nworkers):
                    return rl
            rl = rtlib.wait_for(respawned, 5, "worker 0 respawned",
                                tolerate=rtlib.TRANSIENT)
            for t, p in procs.items():
                if t != victim_title:
                    assert rl[t] == p, "%s changed PID too" % t
            rtlib.wait_settled(d, nworkers)

            # the dead worker's registry entries are gone
            k = len(alive)
            rtlib.wait_for(lambda: host_counts(d) == (200, (k, k, 1)), 5,
                           "/health counting the %d survivors" % k,
                           tolerate=rtlib.TRANSIENT)
            s = await alive[0].request({"type": "stats"})
            assert s["data"]["totalConnections"] == k, s
            assert s["data"]["authenticatedConnections"] == k, s
            assert s["data"]["totalSubscriptions"] == k, s
            assert s["data"]["connectionsByChannel"].get(ch) == k, s

            # the survivors still get events, in order
            await all_get_sequence(r.port, ch, alive)

            # clients that reconnect work, on whatever worker they land
            again = await proclib.open_many(
                d.port, len(gone) + 8,
                token=lambda i: rtlib.mint(userId="kw-re-%d" % i), channel=ch)
            cs.extend(again)
            await all_get_sequence(r.port, ch, alive + again)
            m = k + len(again)
            assert host_counts(d) == (200, (m, m, 1))
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 60)
    assert d.alive()


@pytest.mark.parametrize("nworkers", WORKERS)
def test_worker_killed_mid_stream_others_lose_nothing(start_daemon,
                                                      nworkers):
    """While events stream, kill -9 a worker: the bridge (writing to the
    dead worker's socketpair) survives, and the other workers' subscribers
    get every event, in order."""
    d, r = start(start_daemon, nworkers)
    procs = rtlib.roles(d.proc.pid)
    victim = procs[rtlib.worker_title(0)]
    ch = "users:updated"
    nevents, batch = 2000, 50

    async def consume(c):
        seqs = []
        try:
            while True:
                payload = await c.recv_text()
                m = proclib.EVENT_SEQ_RE.search(payload)
                if m:
                    seqs.append(int(m.group(1)))
                elif b'"end":true' in payload:
                    return seqs, False
        except (Closed, ConnectionError):
            return seqs, True

    def publisher():
        for b in range(nevents // batch):
            proclib.publish_many(r.port, [
                (ch, '{"seq":%d}' % k)
                for k in range(b * batch, (b + 1) * batch)])
            if b == nevents // batch // 4:
                os.kill(victim, signal.SIGKILL)
            time.sleep(0.01)
        proclib.publish(r.port, ch, '{"end":true}')

    async def main():
        cs = await proclib.open_many(
            d.port, 40, token=lambda i: rtlib.mint(userId="ms-%d" % i),
            channel=ch)
        try:
            tasks = [asyncio.ensure_future(consume(c)) for c in cs]
            await asyncio.to_thread(publisher)
            res = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        finally:
            for c in cs:
                c.abort()
        dropped = [s for s, closed in res if closed]
        kept = [s for s, closed in res if not closed]
        assert dropped and kept, (len(dropped), len(kept))
        for seqs in kept:
            assert seqs == list(range(nevents)), \
                "survivor got %d events, first gap at %r" % (
                    len(seqs), next((i for i, v in enumerate(seqs)
                                     if v != i), None))
        for seqs in dropped:    # what they got before, in order
            assert seqs == list(range(len(seqs)))
    rtlib.arun(main(), 60)
    assert rtlib.roles(d.proc.pid)[rtlib.BRIDGE] == \
        procs[rtlib.BRIDGE], "the bridge died with the worker"
    rtlib.wait_settled(d, nworkers)


@pytest.mark.parametrize("nworkers", WORKERS)
def test_killed_worker_crash_loop_still_respawned(start_daemon, nworkers):
    """kill -9 the same worker again as soon as it is back, three times:
    backoff may slow the respawns down, but each one comes back and serves."""
    d, r = start(start_daemon, nworkers)
    title = rtlib.worker_title(nworkers - 1)
    seen = {rtlib.roles(d.proc.pid)[title]}
    for round_ in range(3):
        old = rtlib.roles(d.proc.pid)[title]
        os.kill(old, signal.SIGKILL)
        new = rtlib.wait_for(
            lambda: (lambda p: p if p and p not in seen else None)(
                rtlib.roles(d.proc.pid).get(title)), 15,
            "%s respawned (round %d)" % (title, round_ + 1),
            tolerate=rtlib.TRANSIENT)
        seen.add(new)
    rtlib.wait_settled(d, nworkers, timeout=15)

    async def main():
        cs = await proclib.open_many(
            d.port, 24, token=lambda i: rtlib.mint(userId="cl-%d" % i),
            channel="apps:created")
        try:
            await all_get_sequence(r.port, "apps:created", cs, 5)
            assert host_counts(d) == (200, (24, 24, 1))
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 30)


@pytest.mark.parametrize("nworkers", WORKERS)
def test_killed_bridge_is_respawned_and_delivery_resumes(start_daemon,
                                                         nworkers):
    d, r = start(start_daemon, nworkers, redis_reconnect_max="1s")
    procs = rtlib.roles(d.proc.pid)
    old = procs[rtlib.BRIDGE]
    ch = "deployments:status"

    async def main():
        cs = await proclib.open_many(
            d.port, 24, token=lambda i: rtlib.mint(userId="kb-%d" % i),
            channel=ch)
        try:
            await all_get_sequence(r.port, ch, cs, 3)
            os.kill(old, signal.SIGKILL)

            def respawned():
                rl = rtlib.roles(d.proc.pid)
                p = rl.get(rtlib.BRIDGE)
                if p and p != old and \
                        set(rl) == rtlib.expected_titles(nworkers):
                    return rl
            rl = rtlib.wait_for(respawned, 5, "bridge respawned",
                                tolerate=rtlib.TRANSIENT)
            for t, p in procs.items():
                if t != rtlib.BRIDGE:
                    assert rl[t] == p, "%s changed PID too" % t

            # no client does anything: events flow again by themselves
            await probe_until_delivered(r.port, ch, cs[0], 10)
            await all_get_sequence(r.port, ch, cs)
            rtlib.wait_settled(d, nworkers)
            assert host_counts(d) == (200, (24, 24, 1))
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 60)
    assert d.alive()


# ----------------------------------------------------------- Redis down

@pytest.mark.parametrize("nworkers", WORKERS)
def test_redis_outage_degrades_health_keeps_clients_and_recovers(
        start_daemon, nworkers):
    d, r = start(start_daemon, nworkers, redis_reconnect_max="1s",
                 canary_interval="1s")
    ch = "storage:updated"
    port = r.port

    async def main():
        cs = await proclib.open_many(
            d.port, 20, token=lambda i: rtlib.mint(userId="rd-%d" % i),
            channel=ch)
        try:
            await all_get_sequence(port, ch, cs, 3)
            r.stop()    # SIGTERM to the redis-server PID

            def degraded():
                st, h = proclib.health_json(d.port)
                return (st, h) if st == 503 else None
            st, h = rtlib.wait_for(degraded, 8, "/health 503",
                                   tolerate=rtlib.TRANSIENT)
            assert h["status"] == "degraded", h
            assert h["redis"] == "down", h
            assert isinstance(h.get("reason"), str) and h["reason"], h
            assert h["connections"] == 20, h

            # clients stay connected and served meanwhile
            await asyncio.sleep(1.5)
            for c in cs:
                m = await c.request({"type": "ping"})
                assert m["type"] == "pong", m
            st, h = proclib.health_json(d.port)
            assert (st, h["status"], h["redis"]) == (503, "degraded", "down")

            # Redis back on the same port: no client does anything
            r2 = proclib.PortRedis(start_daemon.workdir, port)
            start_daemon.redises.append(r2)
            rtlib.wait_for(
                lambda: proclib.health_json(d.port)[0] == 200, 10,
                "/health 200 after Redis came back", tolerate=rtlib.TRANSIENT)
            await probe_until_delivered(port, ch, cs[0], 10)
            await all_get_sequence(port, ch, cs)
            st, h = proclib.health_json(d.port)
            assert (st, h["status"], h["redis"], h["connections"]) == \
                (200, "ok", "up", 20), h
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 60)


# --------------------------------------------------------------- canary

@pytest.mark.parametrize("nworkers", WORKERS)
def test_canary_keeps_health_ok_while_healthy(start_daemon, nworkers):
    d, r = start(start_daemon, nworkers, canary_interval="1s")
    ch = "apps:updated"

    async def main():
        cs = await proclib.open_many(
            d.port, 20, token=lambda i: rtlib.mint(userId="cn-%d" % i),
            channel=ch)
        try:
            bad = []
            t0 = time.monotonic()
            k = 0
            while time.monotonic() - t0 < 3.5:
                if k < 20:
                    proclib.publish(r.port, ch, json.dumps({"seq": k}))
                    k += 1
                st, h = await asyncio.to_thread(proclib.health_json, d.port)
                if st != 200 or h["status"] != "ok" or h["redis"] != "up" \
                        or h["workers"] != nworkers:
                    bad.append((round(time.monotonic() - t0, 2), st, h))
                await asyncio.sleep(0.1)
            assert not bad, "/health not ok during healthy operation: %r" \
                % bad[:5]
            # every event published in the window arrived, in order, and
            # nothing else (the canary's private channel never reaches
            # clients)
            proclib.publish(r.port, ch, json.dumps({"end": True}))
            got = await asyncio.gather(*(events_until_end(c) for c in cs))
            for i, g in enumerate(got):
                assert g == [{"seq": j} for j in range(k)], (i, g)
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 30)


@pytest.mark.parametrize("nworkers", WORKERS)
def test_canary_flags_a_stopped_worker_then_recovers(start_daemon, nworkers):
    d, r = start(start_daemon, nworkers, canary_interval="1s",
                 worker_timeout="60s")
    victim = rtlib.roles(d.proc.pid)[rtlib.worker_title(nworkers - 1)]
    os.kill(victim, signal.SIGSTOP)
    try:
        # /health is answered by a running worker (a request that lands on
        # the stopped one's queue times out, and is retried)
        def degraded():
            st, h = proclib.health_json(d.port, timeout=0.5)
            return (st, h) if st == 503 else None
        st, h = rtlib.wait_for(degraded, 10, "/health 503 with a worker "
                               "missing the canary", interval=0.1,
                               tolerate=rtlib.TRANSIENT)
        assert h["status"] == "degraded", h
        assert h["redis"] == "up", h
        assert isinstance(h.get("reason"), str) and h["reason"], h
    finally:
        os.kill(victim, signal.SIGCONT)
    rtlib.wait_for(
        lambda: proclib.health_json(d.port)[0] == 200, 10,
        "/health 200 after the worker resumed", interval=0.1,
        tolerate=rtlib.TRANSIENT)
    assert rtlib.roles(d.proc.pid)[rtlib.worker_title(nworkers - 1)] \
        == victim


@pytest.mark.parametrize("nworkers", WORKERS)
def test_canary_flags_a_stopped_bridge(start_daemon, nworkers):
    """A wedged bridge (SIGSTOP; bridge_timeout long enough that the master
    leaves it alone) delivers nothing, canaries included: every worker
    misses the canary, so /health must say 503 degraded, and 200 again
    once the bridge runs."""
    d, r = start(start_daemon, nworkers, canary_interval="1s",
                 bridge_timeout="60s")
    bridge = rtlib.roles(d.proc.pid)[rtlib.BRIDGE]
    os.kill(bridge, signal.SIGSTOP)
    try:
        def degraded():
            st, h = proclib.health_json(d.port, timeout=1)
            return (st, h) if st == 503 else None
        st, h = rtlib.wait_for(degraded, 6, "/health 503 while the bridge "
                               "is stopped (no canary reaches any worker)",
                               interval=0.1, tolerate=rtlib.TRANSIENT)
        assert h["status"] == "degraded", h
        assert isinstance(h.get("reason"), str) and h["reason"], h
    finally:
        os.kill(bridge, signal.SIGCONT)
    rtlib.wait_for(lambda: proclib.health_json(d.port)[0] == 200, 10,
                   "/health 200 after the bridge resumed", interval=0.1,
                   tolerate=rtlib.TRANSIENT)


@pytest.mark.parametrize("title", ["bridge", "worker"])
def test_wedged_child_killed_after_its_liveness_timeout_and_replaced(start_daemon,
                                                                     title):
    """A child that stops answering (SIGSTOP) is killed by the master after
    bridge_timeout or worker_timeout and respawned; the host then delivers
    again."""
    nworkers = 2
    d, r = start(start_daemon, nworkers, bridge_timeout="1s", worker_timeout="1s",
                 canary_interval="1s", redis_reconnect_max="1s")
    title = rtlib.BRIDGE if title == "bridge" else \
        rtlib.worker_title(nworkers - 1)
    old = rtlib.roles(d.proc.pid)[title]
    admin = d.conf["admin_socket"]
    s0 = rtlib.admin(admin, "stats")["stats"]
    os.kill(old, signal.SIGSTOP)
    try:
        rtlib.wait_for(
            lambda: (lambda p: p and p != old)(
                rtlib.roles(d.proc.pid).get(title)),
            8, "%s (pid %d) replaced" % (title, old), tolerate=rtlib.TRANSIENT)
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    rtlib.wait_settled(d, nworkers, timeout=10)
    # counted: killed as hung, and started again
    s1 = rtlib.admin(admin, "stats")["stats"]
    assert s1["children_killed"] - s0["children_killed"] == 1, (s0, s1)
    assert s1["children_respawned"] - s0["children_respawned"] == 1, (s0, s1)
    m = rtlib.http_get(d.port, "/metrics")[2].decode()
    assert "realtimed_children_killed_total %d" % s1["children_killed"] in m
    # a child that dies on its own is respawned, not counted as killed
    victim = rtlib.roles(d.proc.pid)[rtlib.worker_title(0)]
    os.kill(victim, signal.SIGKILL)
    rtlib.wait_for(lambda: (lambda p: p and p != victim)(
        rtlib.roles(d.proc.pid).get(rtlib.worker_title(0))), 8,
        "worker 0 replaced", tolerate=rtlib.TRANSIENT)
    rtlib.wait_settled(d, nworkers, timeout=10)
    s2 = rtlib.admin(admin, "stats")["stats"]
    assert s2["children_killed"] == s1["children_killed"], (s1, s2)
    assert s2["children_respawned"] - s1["children_respawned"] == 1, (s1, s2)

    async def main():
        cs = await proclib.open_many(
            d.port, 20, token=lambda i: rtlib.mint(userId="wc-%d" % i),
            channel="apps:created")
        try:
            await probe_until_delivered(r.port, "apps:created", cs[0], 10)
            await all_get_sequence(r.port, "apps:created", cs, 5)
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 30)


@pytest.mark.parametrize("nworkers", WORKERS)
def test_hung_redis_degrades_health_then_recovers(start_daemon, nworkers):
    """Redis that keeps its sockets open but answers nothing (SIGSTOP):
    only the canary can tell; /health goes 503, clients stay, and after
    SIGCONT delivery resumes by itself."""
    d, r = start(start_daemon, nworkers, canary_interval="1s",
                 redis_reconnect_max="1s")
    ch = "system:metrics"

    async def main():
        cs = await proclib.open_many(
            d.port, 16, token=lambda i: rtlib.mint(userId="hr-%d" % i,
                                                   role="admin"),
            channel=ch)
        try:
            os.kill(r.proc.pid, signal.SIGSTOP)
            try:
                st, h = await asyncio.to_thread(
                    rtlib.wait_for,
                    lambda: (lambda x: x if x[0] == 503 else None)(
                        proclib.health_json(d.port)),
                    8, "/health 503 with Redis hung", 0.1,
                    tolerate=rtlib.TRANSIENT)
                assert h["status"] == "degraded" and h.get("reason"), h
                for c in cs:
                    m = await c.request({"type": "ping"})
                    assert m["type"] == "pong", m
            finally:
                os.kill(r.proc.pid, signal.SIGCONT)
            await asyncio.to_thread(
                rtlib.wait_for,
                lambda: proclib.health_json(d.port)[0] == 200, 10,
                "/health 200 after Redis resumed", 0.1,
                tolerate=rtlib.TRANSIENT)
            await probe_until_delivered(r.port, ch, cs[0], 10)
            await all_get_sequence(r.port, ch, cs)
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 60)


# -------------------------------------------------------- slow consumer

# the daemon's memory (sum of VmRSS over master + children; the shared
# registry is counted once per process) while one client is slow: it may
# grow by at most this much, and stay under the absolute bound
RSS_GROWTH_BOUND_KIB = 32 * 1024
# AddressSanitizer keeps freed memory in quarantine and adds shadow memory:
# scripts/test.sh marks that run, and the bound (still a bound) grows.
if os.environ.get("REALTIMED_SANITIZED"):
    RSS_GROWTH_BOUND_KIB *= 4
RSS_TOTAL_BOUND_KIB = 256 * 1024


def events_beyond_kernel_buffers(size, max_output):
    """How many events of `size` bytes a non-reading client must be sent
    before the daemon's own output buffer can exceed max_output: the kernel
    first absorbs up to tcp_wmem's maximum on the server side (on loopback
    the send buffer is sized generously at connect time, ~2.6 MB; 50 events
    of 32 KB all fit there and no daemon could see a slow consumer)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 * 1024 * 1024
    wmem_max = min(wmem_max, 16 * 1024 * 1024)
    return (wmem_max + 2 * max_output + 1024 * 1024) // size + 1


def test_a_stopped_workers_queue_stays_within_ipc_max_buffer(start_daemon):
    """A worker that reads nothing (SIGSTOP, worker_timeout long) makes the
    bridge drop its events past ipc_max_buffer: what the bridge holds for
    it stays bounded however many events it misses (the position reset it
    owes is one message, not one per dropped event), and once it runs
    again its client gets events again."""
    d, r = proclib.start_quiet(start_daemon, 1, ipc_max_buffer="64k",
                               worker_timeout="120s")
    ch = "apps:flood"
    c = rtlib.Client(d.port, rtlib.mint(userId="flood"))
    m = proclib.subscribe(c, ch)
    assert m["type"] == "subscribed", m
    roles = rtlib.roles(d.proc.pid)
    worker, bridge = roles[rtlib.worker_title(0)], roles[rtlib.BRIDGE]
    admin = d.conf["admin_socket"]
    drops0 = rtlib.admin(admin, "stats")["stats"]["bridge"]["ipc_drops"]
    os.kill(worker, signal.SIGSTOP)
    try:
        rss0 = proclib.rss_kib([bridge])
        n = 400000
        for b in range(0, n, 100000):
            proclib.publish_many(r.port, [(ch, '{"n":%d}' % i)
                                          for i in range(b, b + 100000)], timeout=60)
        # Redis answered every PUBLISH; the bridge may still be reading them
        # (64k is ~3000 of them: the rest are dropped)
        bs = rtlib.wait_for(lambda: (lambda s: s if s["ipc_drops"] - drops0 >= n - 10000
                                     else None)(rtlib.admin(admin, "stats")["stats"]["bridge"]),
                            60, "the bridge through the flood")
        drops = bs["ipc_drops"] - drops0
        rss1 = proclib.rss_kib([bridge])
    finally:
        os.kill(worker, signal.SIGCONT)
    assert drops > n // 2, drops
    # (ASan's 32 MiB quarantine holds what each event's handling freed)
    bound = 64 * 1024 if os.environ.get("REALTIMED_SANITIZED") else 4096
    assert rss1 - rss0 < bound, "bridge RSS grew %d KiB over %d drops" % (rss1 - rss0, drops)
    assert bs["ipc_buffer_peak"] < 256 * 1024, bs["ipc_buffer_peak"]
    # running again: the queue drains, and new events arrive (one sent
    # while what was queued still drains may be dropped: sent again)
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "no event after the worker resumed"
        proclib.publish(r.port, ch, '{"after":true}')
        try:
            while c.next_event(timeout=0.5)["data"] != {"after": True}:
                pass
            break
        except (TimeoutError, OSError):
            continue
    c.close()


@pytest.mark.parametrize("nworkers", WORKERS)
def test_slow_consumer_closed_4000_others_unaffected_memory_bounded(
        start_daemon, nworkers):
    d, r = start(start_daemon, nworkers, max_output_buffer="64k")
    ch = "database:row_updated"
    size = 32 * 1024
    nevents = events_beyond_kernel_buffers(size, 64 * 1024)
    slow = proclib.raw_ws_small_rcvbuf(d.port, rtlib.mint(userId="slow"))
    hello = slow.recv_json()
    assert hello["type"] == "connected", hello
    slow.send_json({"type": "subscribe", "channel": ch})
    assert slow.recv_json()["type"] == "subscribed"
    rss_before = proclib.daemon_rss_kib(d)

    async def main():
        ws = await websockets.connect(
            d.url + "?token=" + rtlib.mint(userId="fast"), max_size=None,
            max_queue=None)
        try:
            assert (await rtlib.recv_json(ws))["type"] == "connected"
            m = await rtlib.request(ws, {"type": "subscribe", "channel": ch})
            assert m["type"] == "subscribed", m
            # in small batches, each read by the normal client before the
            # next: a 64k limit would make any client "slow" in a burst of
            # megabytes; the one that never reads still piles them all up
            seqs = []
            for b in range(0, nevents, 4):
                msgs = [(ch, json.dumps({"seq": k, "pad": "p" * size}))
                        for k in range(b, min(b + 4, nevents))]
                await asyncio.to_thread(proclib.publish_many, r.port, msgs)
                while len(seqs) < b + len(msgs):
                    m = await rtlib.recv_json(ws, 10)
                    assert m["type"] == "event", m
                    assert len(m["data"]["pad"]) == size
                    seqs.append(m["data"]["seq"])
            assert seqs == list(range(nevents))
            rss_after = proclib.daemon_rss_kib(d)
            # the slow one is gone from the registry; the fast one stays
            rtlib.wait_for(lambda: host_counts(d)[1][0] == 1, 5,
                           "/health counting only the reading client",
                           tolerate=rtlib.TRANSIENT)
            m = await rtlib.request(ws, {"type": "ping"})
            assert m["type"] == "pong", m
            return rss_after
        finally:
            await ws.close()
    rss_after = rtlib.arun(main(), 40)

    # now read what the slow socket got: events, then a 4000 close or EOF
    data, how = proclib.read_to_eof(slow.sock, 10)
    slow.close_socket()
    assert how in ("eof", "reset"), \
        "slow consumer still connected (%d bytes read)" % len(data)
    frames, tail = proclib.split_frames(slow.buf + data)
    assert tail is not None, "slow consumer's byte stream is not a " \
        "sequence of WebSocket frames"
    closes = [rtlib.parse_close(p) for op, p in frames if op == 0x8]
    events = [p for op, p in frames if op == 0x1]
    assert len(events) < nevents, "the slow consumer got everything"
    if closes:
        assert closes[0][0] == 4000, closes
        assert len(closes) == 1 and frames[-1][0] == 0x8, \
            "frames after the close frame"
    assert rss_after - rss_before < RSS_GROWTH_BOUND_KIB, \
        "daemon RSS grew %d KiB (bound %d KiB)" % (
            rss_after - rss_before, RSS_GROWTH_BOUND_KIB)
    assert rss_after < RSS_TOTAL_BOUND_KIB, \
        "daemon RSS %d KiB (bound %d KiB)" % (rss_after, RSS_TOTAL_BOUND_KIB)
    print("slow consumer: %d events, close %r, end %s; RSS %d -> %d KiB"
          % (len(events), closes, how, rss_before, rss_after))
