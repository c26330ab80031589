"""A bounded chaos soak of cluster positions (RT_CHAOS_SECONDS, default 30 s,
15 s under the sanitizers; RT_CHAOS_SEED to replay a schedule).

One redis-server, two realtimed nodes (2 workers each) on it.  A publisher
thread calls FCALL realtimed_publish with sequence-numbered payloads at
RATE events/s over CHANNELS (pipelined over a raw RESP socket) and records
the offset Redis returned for every seq.  NCLIENTS stable clients, spread
over both nodes, keep per channel the (epoch, last contiguous offset) they
have, and:
  - after any disconnect reconnect to a random node (either must do) and
    subscribe with since = that position;
  - on an offset jump within the epoch (a bridge kill: the connection
    stays, but what Redis published while no bridge was subscribed never
    came live) send `subscribe` with since on the same connection (gap
    repair) and dedupe by offset: the replay re-sends what follows since,
    which may repeat what came live between the repair and its answer.
Meanwhile a chaos thread, every 1-3 s, SIGKILLs a worker of a random node,
SIGKILLs the bridge of a random node, SIGKILLs both at once (the worker's
clients then come back, half of them to the same node, while its bridge is
being respawned), or restarts a whole node (SIGTERM, then started again on
a new port, waited until settled); RT_CHAOS_KINDS (comma-separated among
worker, bridge, worker+bridge, restart) narrows the schedule.  Redis itself is
never touched: it keeps every history (HISTORY events a channel, 4 s at
RATE / len(CHANNELS) a second), so nothing may be lost.

At the end (publisher and chaos stopped) every client has up to END_WAIT
seconds to catch up to the last published offset of each of its channels,
with gap repair where it is behind.  Then, for every client and channel,
from its first subscribed position:
  missing   offsets in (first, last published] never delivered: must be 0;
  dup-bad   an offset delivered twice on one connection outside the replay
            window of a gap repair (since, answer offset]: must be 0;
  rec-false any recovered:false (or an answer without a cluster epoch) to a
            since: must be 0 (those more than HISTORY behind are listed
            apart, as explained, but the design keeps clients close);
  epochs    any epoch but the channel's one: must be 0;
  wrong     an offset carrying another seq than the one FCALL returned it
            for: must be 0.
After the soak both nodes are alive and answer /health 200 with Redis up.
"""
import asyncio
import json
import os
import random
import re
import signal
import socket
import threading
import time

import proclib
import rtlib
from proclib import FastWS, Closed

SOAK = float(os.environ.get(
    "RT_CHAOS_SECONDS", "15" if os.environ.get("REALTIMED_SANITIZED") else "30"))
NWORKERS = 2
NNODES = 2
CHANNELS = ["apps:status", "deployments:status", "storage:updated",
            "users:updated"]
RATE = 100              # events/s over all channels: 25/s a channel
BATCH = len(CHANNELS)   # one FCALL per channel per pipelined batch
NCLIENTS = 10
HISTORY = 100           # history=N of the default namespace table
END_WAIT = 10.0         # bound on the catch-up after the soak
ANSWER_TIMEOUT = 8.0    # a subscribe unanswered this long is a failure
SAME_KILL_GAP = 5.5     # per node and process: no crash-loop backoff
# the chaos: SIGKILL a worker, the bridge, or both at once (a worker's
# clients then come back while the bridge is respawning), of one node; or
# restart a whole node
KINDS = os.environ.get("RT_CHAOS_KINDS",
                       "worker,bridge,worker+bridge,restart").split(",")

CONF = {"workers": str(NWORKERS), "redis_reconnect_max": "500ms",
        "canary_interval": "1s", "child_timeout": "10s"}

# what conftest.py looks for in a log (a sanitizer report, a crashed child
# but for the SIGKILLs this test sends itself)
_BAD_LOG = re.compile(
    r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|"
    r"exited on signal (?!9;)\d+|exited with status [1-9]")


class Clock:
    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self):
        return time.monotonic() - self.t0


# ------------------------------------------------------------- publisher

class FcallPublisher:
    """FCALL realtimed_publish, pipelined over one RESP connection."""

    def __init__(self, port, timeout=3.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply from redis")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def publish_many(self, items):
        """items [(channel, payload)] -> [offset (int) or error text]."""
        self.sock.sendall(b"".join(
            proclib.resp_command("FCALL", "realtimed_publish", "1", ch, p)
            for ch, p in items))
        deadline = time.monotonic() + self.timeout
        out = []
        for _ in items:
            line = self._line(deadline)
            out.append(int(line[1:]) if line.startswith(b":")
                       else line.decode("latin-1"))
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def publisher(rport, clock, stop, pub, errors):
    """RATE events/s; pub[ch][seq] = offset returned by FCALL."""
    p = FcallPublisher(rport)
    seq = 0
    next_t = clock()
    try:
        while not stop.is_set():
            items = []
            for ch in CHANNELS:
                items.append((ch, '{"seq":%d,"ch":"%s"}' % (seq, ch)))
            try:
                res = p.publish_many(items)
            except (OSError, ConnectionError) as e:
                errors.append("seq %d: %r" % (seq, e))
                p.close()
                p = FcallPublisher(rport)
                res = ["no reply"] * len(items)
            for (ch, _), r in zip(items, res):
                if isinstance(r, int):
                    pub[ch][seq] = r
                else:
                    errors.append("%s seq %d: %s" % (ch, seq, r))
            seq += 1
            next_t += BATCH / RATE
            delay = next_t - clock()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                errors.append("publisher fell %.1fs behind" % -delay)
                next_t = clock()
    finally:
        p.close()


# ----------------------------------------------------------------- chaos

def _settle(d, timeout=10):
    return rtlib.wait_settled(d, NWORKERS, timeout=timeout)


def _wait_new_role(d, title, old_pid, timeout=10):
    def new():
        p = rtlib.roles(d.proc.pid).get(title)
        return p if p and p != old_pid else None
    rtlib.wait_for(new, timeout, "%s respawned after SIGKILL of %d"
                   % (title, old_pid), interval=0.02, tolerate=rtlib.TRANSIENT)


def chaos(nodes, clock, stop, timeline, problems, rnd, until):
    plan = list(KINDS)
    rnd.shuffle(plan)
    weights = [k for k in KINDS for _ in range(1 if k == "restart" else 2)]
    last = {}           # (node, title) -> clock time of the last kill
    i = 0
    stop.wait(2.0)      # warm-up: everyone subscribed, events flowing
    while not stop.is_set() and clock() < until:
        kind = plan[i] if i < len(plan) else rnd.choice(weights)
        i += 1
        n = rnd.randrange(len(nodes))
        if kind != "restart":
            titles = []
            if "worker" in kind:
                titles.append(rtlib.worker_title(rnd.randrange(NWORKERS)))
            if "bridge" in kind:
                titles.append(rtlib.BRIDGE)

            def fresh(n):
                return all(clock() - last.get((n, t), -99) >= SAME_KILL_GAP
                           for t in titles)
            if not fresh(n):
                n = 1 - n       # the other node then (its own backoff)
                if not fresh(n):
                    stop.wait(0.2)
                    continue
            d = nodes[n]
            roles = rtlib.roles(d.proc.pid)
            pids = [roles.get(t) for t in titles]
            if None in pids:
                stop.wait(0.2)
                continue
            ev = {"kind": kind + "-kill", "node": n,
                  "title": "+".join(t.split(": ")[1] for t in titles),
                  "pid": pids, "t": clock()}
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            for t, pid in zip(titles, pids):
                last[(n, t)] = ev["t"]
                _wait_new_role(d, t, pid)
            _settle(d)
            ev["t_ready"] = clock()
        else:
            d = nodes[n]
            ev = {"kind": "restart", "node": n, "pid": d.proc.pid,
                  "old_port": d.port, "t": clock()}
            rc = d.stop()
            ev["t_down"] = clock()
            bad = _BAD_LOG.search(d.log())
            if rc != 0 or bad:
                problems.append("node %d (%s) on SIGTERM: status %s%s" % (
                    n, d.log_path, rc, "; log: " + bad.group(0) if bad else ""))
            d.respawn()
            # a restart we asked for is no death: conftest would report it
            if rc == 0 and d.deaths:
                d.deaths.pop()
            _settle(d)
            ev["port"] = d.port
            ev["t_ready"] = clock()
            # the fresh master's children start their backoff afresh
            for key in [k for k in last if k[0] == n]:
                del last[key]
        timeline.append(ev)
        stop.wait(rnd.uniform(1.0, 3.0))


# --------------------------------------------------------------- clients

class ChanState:
    def __init__(self):
        self.epoch = None
        self.first = None       # offset of the first subscribed answer
        self.last = None        # the last contiguous offset delivered
        self.got = {}           # offset -> seq (first delivery)


class Counts(dict):
    def add(self, k, n=1):
        self[k] = self.get(k, 0) + n


class StableClient:
    def __init__(self, i, nodes, clock, counts, seed):
        self.i = i
        self.nodes = nodes
        self.clock = clock
        self.c = counts
        self.rnd = random.Random(seed * 1000 + i)
        self.chans = [CHANNELS[i % len(CHANNELS)],
                      CHANNELS[(i + 1) % len(CHANNELS)]]
        self.st = {ch: ChanState() for ch in self.chans}
        self.token = rtlib.mint(userId="cluster-%d" % i, exp_in=7200)
        self.sessions = []      # {"node", "t", "end", "why"}
        self.conn = None
        self.cs = None          # the current connection's state
        self.force = set()      # channels to repair now (end of the soak)
        self.stopping = False
        self.notes = []         # failures, with their detail

    def note(self, kind, msg):
        self.c.add(kind)
        if len(self.notes) < 50:
            self.notes.append("%s: client %d %s" % (kind, self.i, msg))

    # ------------------------------------------------------ the stream
    def _send_sub(self, c, cs, ch, kind):
        st = self.st[ch]
        msg = {"type": "subscribe", "channel": ch}
        since = None
        if st.epoch is not None:
            since = st.last
            msg["since"] = {"epoch": st.epoch, "offset": since}
        cs["pending"][ch] = {"since": since, "t": self.clock(), "kind": kind}
        c.send_json(msg)
        self.c.add("subscribe/" + kind)

    def _answer(self, c, cs, m):
        ch = m.get("channel")
        p = cs["pending"].pop(ch, None)
        if ch not in self.st or p is None:
            self.note("unasked-answer", "%r" % m)
            return
        st = self.st[ch]
        ep, a, rec = m.get("epoch"), m.get("offset"), m.get("recovered")
        where = "%s %s on node %d at %.2fs (asked %.2fs, since %r): " \
            "recovered %r epoch %r offset %r" % (
                ch, p["kind"], cs["node"], self.clock(), p["t"], p["since"],
                rec, ep, a)
        if not isinstance(ep, str) or "-" in ep or not isinstance(a, int):
            # no position, or a node position on a cluster channel
            self.note("answer-without-cluster-epoch", where)
            if p["since"] is not None:
                self.c.add("recovered-false/unexplained")
            return
        if p["since"] is None:
            if rec is not None:
                self.note("protocol", "recovered without since: " + where)
            st.epoch, st.first, st.last = ep, a, a
            return
        if ep != st.epoch:
            self.note("epoch-change", where)
        if rec is True:
            self.c.add("recovered-true/" + p["kind"])
            if a < p["since"]:
                self.note("protocol", "recovered:true behind since: " + where)
            # the replay re-sends (since, a]: what already came live on
            # this connection in that range may come once more
            cs["allowed"][ch] = {o for o in cs["seen"][ch]
                                 if p["since"] < o <= a}
            cs["replay"][ch] = (p["since"], a)
            return
        if a - p["since"] > HISTORY:
            self.note("recovered-false/evicted", where)
        else:
            self.note("recovered-false/unexplained", where)
        # the protocol says: reload by other means; the accounting goes on
        # from there (what was skipped counts as missing)
        if ep == st.epoch and a > st.last:
            st.last = a
            while st.last + 1 in st.got:
                st.last += 1

    def _event(self, c, cs, m):
        ch, ep, o = m.get("channel"), m.get("epoch"), m.get("offset")
        data = m.get("data") or {}
        if ch not in self.st or data.get("ch") != ch or \
                not isinstance(o, int) or not isinstance(ep, str):
            self.note("bad-event", "%r" % m)
            return
        st = self.st[ch]
        self.c.add("received")
        if st.epoch is None:
            self.note("protocol", "event before subscribed: %r" % m)
            return
        if ep != st.epoch:
            self.note("epoch-change", "%s event offset %d epoch %s, had %s "
                      "(node %d)" % (ch, o, ep, st.epoch, cs["node"]))
            return
        if o in cs["seen"][ch]:
            if o in cs["allowed"][ch]:
                cs["allowed"][ch].discard(o)
                self.c.add("dup-in-repair-window")
            else:
                self.note("dup-bad", "%s offset %d twice on session %d "
                          "(node %d), replay window %r" % (
                              ch, o, len(self.sessions) - 1, cs["node"],
                              cs["replay"].get(ch)))
            return
        cs["seen"][ch].add(o)
        if o in st.got:
            self.c.add("dup-across-connections")
            if st.got[o] != data.get("seq"):
                self.note("wrong", "%s offset %d seq %r, earlier seq %r" % (
                    ch, o, data.get("seq"), st.got[o]))
            return
        st.got[o] = data.get("seq")
        self.c.add("delivered")
        if o == st.last + 1:
            st.last = o
            while st.last + 1 in st.got:
                st.last += 1
        elif o <= st.last:
            self.note("old-event", "%s offset %d, last %d, first %d" % (
                ch, o, st.last, st.first))
        elif ch not in cs["pending"]:
            # a hole within the epoch: repair on this very connection
            self.c.add("gaps")
            self.c.add("gap-events", o - st.last - 1)
            self._send_sub(c, cs, ch, "repair")

    def _msg(self, c, cs, m):
        t = m.get("type")
        if t == "event":
            self._event(c, cs, m)
        elif t == "subscribed":
            self._answer(c, cs, m)
        elif t == "error" and m.get("channel") in cs["pending"]:
            p = cs["pending"].pop(m["channel"])
            self.note("error-answer", "%r to %r" % (m, p))
            cs["retry"][m["channel"]] = self.clock() + 0.2
        else:
            self.note("other-message", "%r" % m)

    # ------------------------------------------------------ the session
    async def run(self):
        first = True
        while not self.stopping:
            n = self.i % NNODES if first else self.rnd.randrange(NNODES)
            d = self.nodes[n]
            try:
                c = await FastWS.connect(d.port, self.token, timeout=2)
            except (OSError, ConnectionError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError, AssertionError, Closed,
                    ValueError):
                self.c.add("connect-failed")
                await asyncio.sleep(self.rnd.uniform(0.02, 0.1))
                continue
            kind = "first" if first else "reconnect"
            first = False
            sess = {"node": n, "t": self.clock(), "end": None, "why": None}
            self.sessions.append(sess)
            self.c.add("sessions/node%d" % n)
            cs = {"node": n, "pending": {}, "retry": {},
                  "seen": {ch: set() for ch in self.chans},
                  "allowed": {ch: set() for ch in self.chans},
                  "replay": {}}
            self.conn, self.cs = c, cs
            try:
                for ch in self.chans:
                    self._send_sub(c, cs, ch, kind)
                await c.w.drain()
                while not self.stopping:
                    try:
                        raw = await asyncio.wait_for(c.recv_text(), 0.25)
                    except asyncio.TimeoutError:
                        raw = None
                    if raw is not None:
                        self._msg(c, cs, json.loads(raw))
                    now = self.clock()
                    for ch, p in list(cs["pending"].items()):
                        if now - p["t"] > ANSWER_TIMEOUT:
                            self.note("answer-timeout", "%s %r on node %d"
                                      % (ch, p, n))
                            raise ConnectionError("answer timeout")
                    for ch, t in list(cs["retry"].items()):
                        if now >= t and ch not in cs["pending"]:
                            del cs["retry"][ch]
                            self._send_sub(c, cs, ch, "repair")
                    for ch in list(self.force):
                        self.force.discard(ch)
                        if ch not in cs["pending"]:
                            self._send_sub(c, cs, ch, "end-repair")
                    await c.w.drain()
            except (Closed, ConnectionError, OSError,
                    asyncio.IncompleteReadError) as e:
                sess["why"] = "close %r %r" % (e.code, e.reason) \
                    if isinstance(e, Closed) else type(e).__name__
                self.c.add("disconnect/" + (
                    "close %r" % e.code if isinstance(e, Closed) else
                    type(e).__name__))
            finally:
                sess["end"] = self.clock()
                self.conn = self.cs = None
                c.abort()
            if not self.stopping:
                await asyncio.sleep(self.rnd.uniform(0.0, 0.05))


# ------------------------------------------------------------------ test

def _prime(r):
    """One event per channel before anyone subscribes: the channels' epochs
    exist in Redis, so the first subscribed already carries them."""
    for ch in CHANNELS:
        rep = r.command("FCALL", "realtimed_publish", "1", ch,
                        '{"seq":-1,"ch":"%s","prime":true}' % ch)
        assert rep.startswith(b":"), rep


def test_chaos_soak_cluster_positions(start_daemon):
    seed = int(os.environ.get("RT_CHAOS_SEED", str(int(time.time()))))
    t_wall = time.monotonic()
    print("\ncluster chaos: seed %d, %.0fs, %d nodes x %d workers, %d "
          "clients, %d events/s on %d channels" % (
              seed, SOAK, NNODES, NWORKERS, NCLIENTS, RATE, len(CHANNELS)))
    r = start_daemon.redis()
    conf = dict(CONF, redis_url=r.url)
    nodes = [start_daemon(conf=dict(conf), name="node%d" % k)
             for k in range(NNODES)]
    for d in nodes:
        _settle(d)
    rtlib.wait_for(lambda: all(
        proclib.health_json(d.port)[1].get("redis") == "up" for d in nodes),
        10, "both nodes up", tolerate=rtlib.TRANSIENT)
    # the library is in Redis (either node loaded it)
    rtlib.wait_for(lambda: r.command("FUNCTION", "LIST", "LIBRARYNAME",
                                     "realtimed").find(b"realtimed_publish")
                   >= 0, 10, "the realtimed function library in Redis")
    _prime(r)

    clock = Clock()
    counts = Counts()
    pub = {ch: {} for ch in CHANNELS}
    pub_errors, timeline, problems = [], [], []
    stop_pub, stop_chaos = threading.Event(), threading.Event()

    async def main():
        clients = [StableClient(i, nodes, clock, counts, seed)
                   for i in range(NCLIENTS)]
        tasks = [asyncio.ensure_future(c.run()) for c in clients]
        t0 = time.monotonic()
        while not all(s.epoch is not None for c in clients
                      for s in c.st.values()):
            assert time.monotonic() - t0 < 10, "clients not subscribed"
            for t in tasks:
                if t.done():
                    t.result()
            await asyncio.sleep(0.05)
        pth = asyncio.ensure_future(asyncio.to_thread(
            publisher, r.port, clock, stop_pub, pub, pub_errors))
        cth = asyncio.ensure_future(asyncio.to_thread(
            chaos, nodes, clock, stop_chaos, timeline, problems,
            random.Random(seed), SOAK))
        t_end = clock() + SOAK
        try:
            while clock() < t_end and not pth.done() and not cth.done():
                await asyncio.sleep(0.2)
        finally:
            stop_chaos.set()
            stop_pub.set()
            await asyncio.wait([pth, cth], timeout=25)
        soak_end = clock()
        cth.result()
        pth.result()
        head = {ch: max(pub[ch].values()) for ch in CHANNELS}
        # catch-up: everyone to the last published offset, repairing
        behind_since = {}
        t_catch = clock()
        while clock() - t_catch < END_WAIT:
            behind = [(c, ch) for c in clients for ch in c.chans
                      if c.st[ch].last < head[ch]]
            if not behind:
                break
            now = clock()
            for c, ch in behind:
                key = (c.i, ch, c.st[ch].last)
                t = behind_since.setdefault(key, now)
                # no progress for a while: its live tail is not coming
                if now - t > 0.7 and c.cs is not None and \
                        ch not in c.cs["pending"]:
                    c.force.add(ch)
                    behind_since[key] = now
            await asyncio.sleep(0.1)
        t_caught = clock() - t_catch
        for c in clients:
            c.stopping = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in clients:
            if c.conn is not None:
                c.conn.abort()
        return clients, head, soak_end, t_caught

    clients, head, soak_end, t_caught = rtlib.arun(main(), SOAK + 60)

    # ------------------------------------------------------------ account
    missing, wrong, examples = 0, 0, []
    delivered = 0
    for c in clients:
        for ch in c.chans:
            st = c.st[ch]
            want = set(range(st.first + 1, head[ch] + 1))
            lost = sorted(want - set(st.got))
            extra = sorted(set(st.got) - want)
            missing += len(lost)
            delivered += len(want) - len(lost)
            if lost and len(examples) < 20:
                examples.append("client %d %s: %d missing (first %d, last "
                                "contiguous %d, head %d): %s" % (
                                    c.i, ch, len(lost), st.first, st.last,
                                    head[ch], lost[:12]))
            if extra:
                counts.add("beyond-head", len(extra))
                examples.append("client %d %s: offsets beyond the head %d: "
                                "%r" % (c.i, ch, head[ch], extra[:5]))
            byoff = {o: s for s, o in pub[ch].items()}
            for o, s in st.got.items():
                if o in byoff and byoff[o] != s:
                    wrong += 1
                    if len(examples) < 20:
                        examples.append("client %d %s: offset %d carried seq "
                                        "%r, FCALL gave it to seq %r" % (
                                            c.i, ch, o, s, byoff[o]))
    npub = sum(len(v) for v in pub.values())
    kinds = Counts()
    for e in timeline:
        kinds.add(e["kind"])
    print("cluster chaos timeline (s): " + "; ".join(
        "%.2f %s node%d%s ready %.2f" % (
            e["t"], e["kind"], e["node"],
            " " + e["title"] if "title" in e else "",
            e["t_ready"]) for e in timeline))
    print("cluster chaos: soak over at %.2fs, caught up in %.2fs; published "
          "%d (%d FCALL errors), heads %r" % (
              soak_end, t_caught, npub, len(pub_errors), head))
    print("cluster chaos: actions %r" % dict(kinds))
    print("cluster chaos: delivered %d of %d owed, missing %d, wrong %d" % (
        delivered, delivered + missing, missing, wrong))
    print("cluster chaos counts: %r" % dict(sorted(counts.items())))
    print("cluster chaos sessions: %d (%d reconnections)" % (
        sum(len(c.sessions) for c in clients),
        sum(len(c.sessions) - 1 for c in clients)))
    for d in nodes:
        print("cluster chaos node %s bridge: %r" % (
            d.name, {k: v for k, v in rtlib.admin(
                d.conf["admin_socket"], "stats")["stats"]["bridge"].items()
                if k.startswith(("cluster", "recover", "redis", "epochs"))}))
    notes = [n for c in clients for n in c.notes]
    for n in notes[:40]:
        print("cluster chaos NOTE " + n)
    for x in examples:
        print("cluster chaos MISSING " + x)
    for x in pub_errors[:10]:
        print("cluster chaos FCALL ERROR " + x)

    # ------------------------------------------------------- assertions
    assert not pub_errors, pub_errors[:10]
    assert not problems, problems
    if SOAK >= 30:
        assert set(kinds) == {k if k == "restart" else k + "-kill"
                              for k in KINDS}, \
            "the schedule missed some chaos: %r" % timeline
    bad = {k: counts.get(k, 0) for k in (
        "dup-bad", "epoch-change", "recovered-false/unexplained",
        "recovered-false/evicted", "answer-without-cluster-epoch",
        "answer-timeout", "bad-event", "protocol", "unasked-answer",
        "error-answer", "old-event", "beyond-head", "wrong")}
    bad["missing"] = missing
    bad["wrong"] += wrong
    assert not any(bad.values()), "cluster positions failed: %r\n%s" % (
        {k: v for k, v in bad.items() if v}, "\n".join(notes[:20] + examples))
    assert all(counts.get("sessions/node%d" % n, 0) > 0
               for n in range(NNODES)), counts
    # both nodes alive and settled
    for d in nodes:
        assert d.alive(), d.name
        _settle(d)
        st, h = proclib.health_json(d.port)
        assert st == 200 and h["status"] == "ok" and h["redis"] == "up", h
    print("cluster chaos: wall %.1fs" % (time.monotonic() - t_wall))
