"""A bounded chaos soak (RT_CHAOS_SECONDS, default 60 s; RT_CHAOS_SEED to
replay a schedule): 3 workers + Redis; 20 stable clients on 4 channels get
sequence-numbered events published at a steady 100/s, while other
connections churn (clean closes, aborts, health checks, bad tokens,
garbage, half-sent heads), random workers and the bridge are SIGKILLed
and Redis is restarted on its port (SIGTERM to its PID, then started again).

Every kill/restart is recorded with its time.  The stable clients keep
their position on each channel (the last epoch and offset they got) and,
after any disconnect, resubscribe with "since" that position (PROTOCOL.md
"Positions and recovery").  Node positions live in the bridge, so:
  - after a worker kill the resubscribe must answer recovered:true and
    replay exactly what the client missed: a worker kill costs no event;
  - recovered:false only when the epoch changed since the client's last
    event (a bridge kill or a Redis restart in between; or, per protocol,
    more than HISTORY events behind); recovered:true across an epoch
    change fails.
A client's stream on a channel is cut into chains: a chain starts at a
`subscribed` without recovery and runs on through every recovered:true.
What a chain may lose is accounted by reason:
  - no-bridge: Redis answered PUBLISH with 0 receivers (no bridge was
    subscribed: the bridge was respawning or reconnecting);
  - bridge-kill / redis-restart: published within SLACK of a bridge kill
    or a Redis stop, up to SLACK after the host was up again;
  - "<cause> (unrecovered gap)": after the client's last event, before the
    recovered:false its epoch change justified.
Anything else missing (above all anything the bridge held when it
answered recovered:true), any duplicate, any event out of order, an
offset hole or repeat within an epoch, two events under one (epoch,
offset) fails.

After the soak: the registry counts equal the open clients, then 0 when
they are gone; no file descriptor leak in the master or the children
(baseline + FD_SLACK); memory bounded (RSS_* below).
"""
import asyncio
import json
import os
import random
import signal
import threading
import time

import pytest

import chaoslib
import proclib
import rtlib
from proclib import FastWS, Closed

# under the sanitizers everything runs a few times slower: a shorter soak
# still puts every fault through the instrumented daemon
SOAK = float(os.environ.get("RT_CHAOS_SECONDS",
                            "30" if os.environ.get("REALTIMED_SANITIZED") else "60"))
NWORKERS = 3
CHANNELS = ["apps:status", "deployments:status", "storage:updated",
            "announcements"]
RATE = 100              # events per second, over all channels
NSTABLE = 20
SLACK = 0.5             # seconds around a kill/restart where loss is allowed
HISTORY = 100           # history=N of the default table on every family
QUIET_TAIL = 6.0        # no chaos in the soak's last seconds
FD_SLACK = 3
# memory: the whole daemon (sum of VmRSS over master + children) may grow
# by at most RSS_TOTAL_GROWTH_KIB over the soak, and any process that lived
# through the whole soak by at most RSS_PROC_GROWTH_KIB
RSS_TOTAL_GROWTH_KIB = 64 * 1024
RSS_PROC_GROWTH_KIB = 32 * 1024
# AddressSanitizer's quarantine (32 MiB a process in scripts/test.sh) and
# shadow memory: still bounded, by more
if os.environ.get("REALTIMED_SANITIZED"):
    RSS_TOTAL_GROWTH_KIB = 256 * 1024
    RSS_PROC_GROWTH_KIB = 96 * 1024


class Clock:
    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self):
        return time.monotonic() - self.t0


# ------------------------------------------------------------- publisher

def publisher(rport, clock, stop, log):
    """RATE events/s round-robin over CHANNELS; every attempt is logged as
    [ch, seq, t_start, t_end, receivers, status]."""
    pub = chaoslib.Publisher(rport, timeout=1.0)
    seqs = {ch: 0 for ch in CHANNELS}
    k = 0
    next_t = clock()
    try:
        while not stop.is_set():
            ch = CHANNELS[k % len(CHANNELS)]
            k += 1
            seq = seqs[ch]
            seqs[ch] += 1
            t0 = clock()
            n, status = pub.publish(ch, '{"seq":%d,"ch":"%s"}' % (seq, ch))
            log.append((ch, seq, t0, clock(), n, status))
            next_t += 1.0 / RATE
            delay = next_t - clock()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                next_t = clock()        # fell behind (Redis down): resync
    finally:
        pub.close()


# ----------------------------------------------------------------- chaos

def chaos(d, rport, workdir, factory, clock, stop, timeline, seed, until):
    """Kill a worker, kill the bridge or restart Redis every few seconds
    until `until` (clock time); every action goes into timeline as a dict."""
    rnd = random.Random(seed)
    plan = ["worker", "bridge", "redis"]
    rnd.shuffle(plan)
    last_kill = {}          # title -> clock time (avoid the crash-loop backoff)
    redis = factory.redises[0]
    i = 0
    time.sleep(3.0)         # warm-up
    while not stop.is_set() and clock() < until:
        kind = plan[i % len(plan)] if i < 3 else \
            rnd.choice(["worker", "worker", "bridge", "redis"])
        i += 1
        roles = rtlib.roles(d.proc.pid)
        if kind == "worker":
            cands = [w for w in range(NWORKERS)
                     if clock() - last_kill.get(rtlib.worker_title(w), -99)
                     > 6]
            if not cands:
                stop.wait(0.2)
                continue
            w = rnd.choice(cands)
            title = rtlib.worker_title(w)
            pid = roles.get(title)
            if pid is None:
                stop.wait(0.2)
                continue
            ev = {"kind": "worker-kill", "worker": w, "pid": pid,
                  "t": clock()}
            os.kill(pid, signal.SIGKILL)
            last_kill[title] = ev["t"]
            ev["t_ready"] = _wait_role(d, title, pid, clock)
            timeline.append(ev)
        elif kind == "bridge":
            if clock() - last_kill.get(rtlib.BRIDGE, -99) <= 6:
                stop.wait(0.2)
                continue
            pid = roles.get(rtlib.BRIDGE)
            if pid is None:
                stop.wait(0.2)
                continue
            ev = {"kind": "bridge-kill", "pid": pid, "t": clock()}
            os.kill(pid, signal.SIGKILL)
            last_kill[rtlib.BRIDGE] = ev["t"]
            _wait_role(d, rtlib.BRIDGE, pid, clock)
            ev["t_ready"] = _wait_redis_up(d, clock)
            timeline.append(ev)
        else:
            ev = {"kind": "redis-restart", "pid": redis.proc.pid,
                  "t": clock()}
            redis.stop()                    # SIGTERM to its PID, waited for
            ev["t_down"] = clock()
            time.sleep(1.0 + rnd.random())
            redis = proclib.PortRedis(workdir, rport)
            factory.redises.append(redis)
            ev["t_started"] = clock()
            ev["t_ready"] = _wait_redis_up(d, clock)
            timeline.append(ev)
        stop.wait(rnd.uniform(2.0, 4.0))


def _wait_role(d, title, old_pid, clock, timeout=10):
    def new():
        p = rtlib.roles(d.proc.pid).get(title)
        return p if p and p != old_pid else None
    rtlib.wait_for(new, timeout, "%s respawned after SIGKILL of %d"
                   % (title, old_pid), interval=0.02, tolerate=rtlib.TRANSIENT)
    return clock()


def _wait_redis_up(d, clock, timeout=15):
    rtlib.wait_for(
        lambda: chaoslib.stats(d)["bridge"]["redis"] == "up", timeout,
        "the bridge subscribed to Redis again", interval=0.02,
        tolerate=rtlib.TRANSIENT)
    return clock()


# --------------------------------------------------------------- clients

class StableClient:
    """A client that keeps its position: the last (epoch, offset) it got on
    each channel (or the position a `subscribed` without recovery gave),
    and resubscribes with since = that position after any disconnect.

    Per session, per channel: "evs" [(seq, epoch, offset, t)] in arrival
    order, "answers" (every `subscribed`, with what was asked and the index
    into evs at its arrival); "events" the seqs alone."""

    def __init__(self, i, d, clock):
        self.i = i
        self.d = d
        self.clock = clock
        self.chans = [CHANNELS[i % 4], CHANNELS[(i + 1) % 4]]
        self.token = rtlib.mint(userId="stable-%d" % i, exp_in=7200)
        self.sessions = []
        self.conn = None
        self.ends = set()
        # ch -> {"epoch", "offset", "seq" (None: from an answer), "t"}
        self.pos = {}
        self.dead = {ch: set() for ch in self.chans}    # superseded epochs

    def _event(self, s, m):
        data, ch = m["data"], m["channel"]
        if data.get("end"):
            self.ends.add(ch)
            return
        if data.get("ch") != ch or ch not in self.chans:
            s["bad"].append(m)
            return
        ep, off = m.get("epoch"), m.get("offset")
        if not isinstance(ep, str) or not isinstance(off, int):
            s["bad"].append(m)      # every channel here has history
            return
        t = self.clock()
        s["events"][ch].append(data["seq"])
        s["evs"][ch].append((data["seq"], ep, off, t))
        p = self.pos.get(ch)
        if ep in self.dead[ch]:
            return                  # the tail of a cut replay: no position
        if p is not None and p["epoch"] != ep:
            self.dead[ch].add(p["epoch"])   # a new epoch, live
        elif p is not None and off <= p["offset"]:
            return                  # not newer (a violation, see account())
        self.pos[ch] = {"epoch": ep, "offset": off, "seq": data["seq"],
                        "t": t}

    def _answer(self, s, m):
        ch = m.get("channel")
        req = s["req"].get(ch)
        if req is None:
            raise AssertionError("subscribed never asked for: %r" % m)
        a = dict(req)
        a.update(t=self.clock(), re=bool(s["answers"][ch]),
                 recovered=m.get("recovered"), epoch=m.get("epoch"),
                 offset=m.get("offset"), idx=len(s["evs"][ch]))
        s["answers"][ch].append(a)
        s["ack"].setdefault(ch, a["t"])
        if not isinstance(a["epoch"], str) or not isinstance(a["offset"], int):
            s["bad"].append(m)
            return
        if a["recovered"] is not True:
            # no replay: the answer is the position
            p = self.pos.get(ch)
            if p is not None and p["epoch"] != a["epoch"]:
                self.dead[ch].add(p["epoch"])
            self.pos[ch] = {"epoch": a["epoch"], "offset": a["offset"],
                            "seq": None, "t": a["t"]}

    def _msg(self, s, m):
        t = m.get("type")
        if t == "event":
            self._event(s, m)
        elif t == "subscribed":
            self._answer(s, m)
        else:
            s["other"].append(m)

    async def run(self):
        while True:
            if asyncio.current_task().cancelling():	# a lost cancel: see churn()
                raise asyncio.CancelledError()
            try:
                c = await FastWS.connect(self.d.port, self.token, timeout=3)
            except (OSError, ConnectionError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError, AssertionError, Closed):
                if asyncio.current_task().cancelling():	# see churn()
                    raise asyncio.CancelledError()
                await asyncio.sleep(0.1)
                continue
            s = {"id": c.hello["connectionId"], "t_connect": self.clock(),
                 "ack": {}, "events": {ch: [] for ch in self.chans},
                 "evs": {ch: [] for ch in self.chans},
                 "answers": {ch: [] for ch in self.chans}, "req": {},
                 "end": None, "why": None, "worker": None, "bad": [],
                 "other": []}
            self.sessions.append(s)
            self.conn = c
            try:
                for ch in self.chans:
                    msg = {"type": "subscribe", "channel": ch}
                    p = self.pos.get(ch)
                    since = None
                    if p is not None:
                        since = {"epoch": p["epoch"], "offset": p["offset"]}
                        msg["since"] = since
                    s["req"][ch] = {"t_sent": self.clock(), "since": since,
                                    "last": dict(p) if p else None}
                    c.send_json(msg)
                    await c.w.drain()
                    while ch not in s["ack"]:
                        m = json.loads(await asyncio.wait_for(
                            c.recv_text(), 5))
                        self._msg(s, m)
                        if m.get("type") not in ("event", "subscribed"):
                            raise AssertionError("subscribe: %r" % m)
                while True:
                    self._msg(s, json.loads(await c.recv_text()))
            except (Closed, ConnectionError, OSError,
                    asyncio.IncompleteReadError, AssertionError,
                    asyncio.TimeoutError) as e:
                if asyncio.current_task().cancelling():	# see churn()
                    c.abort()
                    raise asyncio.CancelledError()
                s["end"] = self.clock()
                s["why"] = repr(e)[:120]
                self.conn = None
                c.abort()
                await asyncio.sleep(0.05)


async def churn(d, clock, stats, rnd):
    """One churning connection after another, of assorted kinds."""
    kinds = ["ws-close", "ws-abort", "ws-anon", "health", "bad-token",
             "garbage", "half-head"]
    while True:
        kind = rnd.choice(kinds)
        ok = False
        try:
            ok = await asyncio.wait_for(_churn_one(d, kind, rnd), 5)
        except (OSError, ConnectionError, asyncio.TimeoutError,
                asyncio.IncompleteReadError, AssertionError, Closed,
                ValueError):
            # Python 3.11's wait_for can turn a cancel that meets its own
            # timeout into TimeoutError: the cancel must still end us
            if asyncio.current_task().cancelling():
                raise asyncio.CancelledError()
            ok = False
        # ... and 3.11's wait_for can also return the result of a churn that
        # ended just as the cancel came, losing the cancel (bpo-42130): the
        # task still says it is being cancelled, so end here, never loop on
        if asyncio.current_task().cancelling():
            raise asyncio.CancelledError()
        st = stats.setdefault(kind, [0, 0])
        st[0 if ok else 1] += 1
        await asyncio.sleep(rnd.uniform(0.01, 0.06))


async def _churn_one(d, kind, rnd):
    port = d.port
    if kind in ("ws-close", "ws-abort", "ws-anon"):
        tok = None if kind == "ws-anon" else \
            rtlib.mint(userId="churn-%d" % rnd.randrange(1000))
        c = await FastWS.connect(port, tok, timeout=3)
        try:
            ch = "announcements" if tok is None else rnd.choice(CHANNELS)
            await c.subscribe(ch)
            m = await c.request({"type": "ping"})
            while m["type"] != "pong":      # events may come first
                m = await c.recv_json()
            if kind == "ws-close":
                c.send_frame(0x8, b"\x03\xe8")
                await c.w.drain()
                try:
                    while True:
                        await asyncio.wait_for(c.recv_text(), 3)
                except Closed as e:
                    return e.code == 1000
            return True
        finally:
            c.abort()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == "health":
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            return head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503"))
        if kind == "bad-token":
            writer.write(("GET /ws?token=not.a.jwt HTTP/1.1\r\nHost: x\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                return False
            data = await reader.read(4096)
            return b"Invalid token" in data
        if kind == "garbage":
            writer.write(b"\x16\x03\x01\x00\xc4\x01\x00garbage\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            return head.startswith(b"HTTP/1.1 400")
        # half-head: a request head cut short, then gone
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgr")
        await writer.drain()
        await asyncio.sleep(rnd.uniform(0.05, 0.3))
        return True
    finally:
        writer.transport.abort()


# ------------------------------------------------------------ accounting

def _session_kills(cl, wkills, violations):
    """s["kill"]: the worker kill that ended session s (None: it did not
    end, or nothing explains its end: a violation)."""
    for si, s in enumerate(cl.sessions):
        s["kill"] = None
        if s["bad"]:
            violations.append("client %d: events on the wrong channel, "
                              "crossed or without a position: %r"
                              % (cl.i, s["bad"][:3]))
        if s["end"] is None:
            continue
        # why did it end? only a kill of its own worker explains it
        ks = [e for e in wkills if e["t"] <= s["end"] + 0.05
              and s["end"] - e["t"] < 3.0 and
              (s["worker"] is None or e["worker"] == s["worker"])]
        if not ks:
            violations.append(
                "client %d session %d (worker %r) ended at %.2fs with "
                "no kill of its worker: %s" % (
                    cl.i, si, s["worker"], s["end"], s["why"]))
        else:
            s["kill"] = ks[-1]


def _chains(cl, ch, epoch_changes, soak_end, stats, posmap, violations):
    """Walk one client's stream on ch across its sessions, checking every
    answer and event, and cut it into chains: a chain starts at a
    `subscribed` without recovery (the first one, or recovered:false) and
    runs on through every resubscribe answered recovered:true.  Within a
    chain nothing may be lost but what the bridge/Redis windows explain."""
    chains = []
    cur = [None]
    last = {"seq": None}            # client-wide, for order and duplicates

    def V(msg, *args):
        if len(violations) < 400:
            violations.append(("client %d %s: " % (cl.i, ch)) + msg % args)

    def new_chain(a, si, brk):
        prev = cur[0]
        if prev is not None:
            prev["close"] = a["t"]
            prev["break"] = brk
        c = {"start": a["t"], "close": None, "break": None, "got": [],
             "links": [], "sessions": {si}, "prev": prev, "prev_si": si,
             "next": (a["epoch"], a["offset"] + 1), "first": a}
        chains.append(c)
        cur[0] = c

    def answer(a, si):
        since, p = a["since"], a["last"]
        if a["re"]:
            stats["reanswers"] += 1
        cause = "re-answer" if a["re"] else "first" if si == 0 else \
            "worker-kill" if cl.sessions[si - 1]["kill"] else "reconnect"
        rec = a["recovered"]
        where = "session %d answer at %.3fs (asked %.3fs, since %r, last " \
            "event seq %r at %.3fs): recovered %r epoch %r offset %r" % (
                si, a["t"], a["t_sent"], since, p and p["seq"],
                p["t"] if p else -1, rec, a["epoch"], a["offset"])
        if since is None:
            if rec is not None:
                V("no since, but %s", where)
            new_chain(a, si, None)
            return
        if rec is True:
            stats["recoveries"]["true/" + cause] = \
                stats["recoveries"].get("true/" + cause, 0) + 1
            if a["epoch"] != since["epoch"] or a["offset"] < since["offset"]:
                V("recovered:true to another epoch or an older offset: %s",
                  where)
            gone = [e for e in epoch_changes if e["t"] > p["t"] and
                    e["t_ready"] < a["t_sent"]]
            if gone:
                V("recovered:true though the epoch changed since its last "
                  "event (%s at %.2fs, ready %.2fs): %s", gone[0]["kind"],
                  gone[0]["t"], gone[0]["t_ready"], where)
            if cur[0] is None:
                V("recovered:true with nothing to continue: %s", where)
                new_chain(a, si, None)
                return
            cur[0]["links"].append({"a": a, "si": si, "last": p})
            cur[0]["sessions"].add(si)
            return
        # recovered false (or a subscribed without "recovered": wrong)
        if rec is not False:
            V("since given, answer without recovered: %s", where)
        if a["epoch"] != since["epoch"]:
            why = [e for e in epoch_changes if e["t"] <= a["t"] and
                   e["t_ready"] >= p["t"] - SLACK]
            if why:
                brk = why[0]["kind"]
            else:
                brk = "UNEXPLAINED"
                V("recovered:false with a new epoch but no bridge kill or "
                  "Redis restart since its last event: %s", where)
        elif a["offset"] - since["offset"] > HISTORY:
            brk = "evicted"     # the protocol's answer: more than kept
        else:
            brk = "UNEXPLAINED"
            V("recovered:false in the same epoch with the events still "
              "kept: %s", where)
        key = "false/%s/%s" % (cause, brk)
        stats["recoveries"][key] = stats["recoveries"].get(key, 0) + 1
        new_chain(a, si, {"cause": brk, "last": p, "t": a["t"]})

    def event(ev, si):
        seq, ep, off, t = ev
        c = cur[0]
        if c is None:
            V("session %d: seq %d before any subscribed", si, seq)
            return
        # a cut replay's tail (old epoch) after a re-answer: the old chain's
        pc = c["prev"]
        if pc is not None and c["prev_si"] == si and not c["got"] and \
                pc["next"][0] == ep and ep != c["next"][0]:
            c = pc
        if last["seq"] is not None and seq <= last["seq"]:
            V("session %d: seq %d (offset %d) after %d (duplicate or out of "
              "order)", si, seq, off, last["seq"])
        last["seq"] = max(seq, last["seq"] if last["seq"] is not None
                          else seq)
        nep, noff = c["next"]
        if ep == nep and off != noff:
            V("session %d: seq %d has offset %d, expected %d in epoch %s "
              "(%s)", si, seq, off, noff, ep,
              "a hole" if off > noff else "a repeat")
        c["next"] = (ep, off + 1)
        k = (ch, ep, off)
        if posmap.setdefault(k, seq) != seq:
            V("session %d: offset %d of epoch %s carried seq %d here, seq %d "
              "elsewhere (a wrong replay)", si, off, ep, seq, posmap[k])
        if c["links"]:
            lk = c["links"][-1]
            if lk["si"] == si and ep == lk["a"]["since"]["epoch"] and \
                    lk["a"]["since"]["offset"] < off <= lk["a"]["offset"]:
                stats["replayed"] += 1
        c["got"].append(seq)
        c["sessions"].add(si)

    for si, s in enumerate(cl.sessions):
        evs, k = s["evs"][ch], 0
        for a in s["answers"][ch]:
            while k < a["idx"]:
                event(evs[k], si)
                k += 1
            answer(a, si)
        while k < len(evs):
            event(evs[k], si)
            k += 1
    for c in chains:
        if c["close"] is None:
            c["close"] = soak_end
    return chains


def account(clients, log, timeline, soak_end):
    """Per chain class: published (events a chain had to get), delivered,
    lost by reason; recovery counts; and the list of violations."""
    bridge_w = [(e["t"] - SLACK, e["t_ready"] + SLACK) for e in timeline
                if e["kind"] == "bridge-kill"]
    redis_w = [(e["t"] - SLACK, e["t_ready"] + SLACK) for e in timeline
               if e["kind"] == "redis-restart"]
    wkills = [e for e in timeline if e["kind"] == "worker-kill"]
    epoch_changes = [e for e in timeline
                     if e["kind"] in ("bridge-kill", "redis-restart")]
    by_ch = {ch: [] for ch in CHANNELS}
    for rec in log:
        by_ch[rec[0]].append(rec)
    published = {(ch, seq): rec for ch, recs in by_ch.items()
                 for rec in recs for seq in [rec[1]]}
    report = {}
    stats = {"recoveries": {}, "replayed": 0, "reanswers": 0}
    posmap = {}
    violations = []

    def in_any(ws, t0, t1):
        return any(a <= t1 and t0 <= b for a, b in ws)

    for cl in clients:
        _session_kills(cl, wkills, violations)
        for ch in cl.chans:
            for s in cl.sessions:
                for seq in s["events"][ch]:
                    rec = published.get((ch, seq))
                    if rec is None or rec[5] == "refused":
                        violations.append("client %d: got %s seq %d that was "
                                          "never published" % (cl.i, ch, seq))
                        break
            for c in _chains(cl, ch, epoch_changes, soak_end, stats, posmap,
                             violations):
                klass = ("recovered" if c["links"] else "unbroken") + \
                    (", then false" if c["break"] else "")
                r = report.setdefault(klass, {"chains": 0, "clients": set(),
                                              "published": 0, "delivered": 0,
                                              "lost": {}})
                r["chains"] += 1
                r["clients"].add(cl.i)
                gotset = set(c["got"])
                brk = c["break"]
                for rec in by_ch[ch]:
                    _, seq, t0, t1, n, status = rec
                    if t0 < c["start"] or t1 > c["close"] or \
                            status == "refused":
                        continue
                    r["published"] += 1
                    if seq in gotset:
                        r["delivered"] += 1
                        continue
                    # held by the bridge before a recovered:true answer,
                    # after the last event the client had: must be there
                    strict = [lk for lk in c["links"]
                              if status == "ok" and n and t1 <= lk["a"]["t"]
                              and (seq > lk["last"]["seq"]
                                   if lk["last"]["seq"] is not None
                                   else t0 >= lk["last"]["t"])]
                    if strict:
                        a = strict[0]["a"]
                        reason = "AFTER-RECOVERED-TRUE"
                        violations.append(
                            "client %d %s: seq %d published at %.3fs, after "
                            "its last event (seq %r, since %r), lost though "
                            "the resubscribe of session %d answered "
                            "recovered:true at %.3fs (offset %r)" % (
                                cl.i, ch, seq, t0, strict[0]["last"]["seq"],
                                a["since"], strict[0]["si"], a["t"],
                                a["offset"]))
                    elif status == "unknown":
                        reason = "redis-restart"
                    elif n == 0:
                        reason = "no-bridge"
                    elif in_any(bridge_w, t0, t1):
                        reason = "bridge-kill"
                    elif in_any(redis_w, t0, t1):
                        reason = "redis-restart"
                    elif brk is not None and brk["cause"] != "UNEXPLAINED" \
                            and (seq > brk["last"]["seq"]
                                 if brk["last"]["seq"] is not None
                                 else t0 >= brk["last"]["t"]):
                        # after its last event, before recovered:false
                        reason = brk["cause"] + " (unrecovered gap)"
                    else:
                        reason = "UNEXPECTED"
                        if len(violations) < 400:
                            violations.append(
                                "client %d %s: seq %d published at %.3fs (%r "
                                "receivers) never arrived (chain %.3fs.."
                                "%.3fs, sessions %r)" % (cl.i, ch, seq, t0, n,
                                                  c["start"], c["close"],
                                                  sorted(c["sessions"])))
                    r["lost"][reason] = r["lost"].get(reason, 0) + 1
        # a client of a killed worker came back and got events again
        for si, s in enumerate(cl.sessions[:-1]):
            later = cl.sessions[si + 1:]
            if not any(sum(len(v) for v in x["events"].values()) for x in
                       later):
                violations.append("client %d never received an event after "
                                  "its session %d ended" % (cl.i, si))
    return report, stats, violations


# ------------------------------------------------------------------ test

def test_chaos_soak(start_daemon):
    seed = int(os.environ.get("RT_CHAOS_SEED", str(int(time.time()))))
    print("chaos: seed %d, %.0fs, %d workers, %d stable clients, %d events/s"
          % (seed, SOAK, NWORKERS, NSTABLE, RATE))
    r = start_daemon.redis()
    rport = r.port
    d = start_daemon(conf={
        "workers": str(NWORKERS), "redis_url": r.url,
        "redis_reconnect_max": "500ms", "canary_interval": "1s",
        "child_timeout": "10s"})
    base_roles = rtlib.wait_settled(d, NWORKERS)
    time.sleep(0.5)
    fd0 = chaoslib.fd_counts(d)
    rss0 = chaoslib.rss_by_title(d)
    pid0 = {"master": d.proc.pid}
    pid0.update(base_roles)
    clock = Clock()
    stop_pub = threading.Event()
    stop_chaos = threading.Event()
    log, timeline = [], []
    churn_stats = {}

    async def map_workers(clients):
        """Which worker holds each stable client's current session."""
        conns = await asyncio.to_thread(chaoslib.connections, d)
        where = {c["id"]: c["worker"] for c in conns}
        for cl in clients:
            for s in cl.sessions:
                if s["worker"] is None and s["id"] in where:
                    s["worker"] = where[s["id"]]

    async def main():
        clients = [StableClient(i, d, clock) for i in range(NSTABLE)]
        tasks = [asyncio.ensure_future(c.run()) for c in clients]
        # every stable client subscribed before the first event
        t_wait = time.monotonic()
        while not all(c.sessions and len(c.sessions[-1]["ack"]) == 2
                      for c in clients):
            assert time.monotonic() - t_wait < 15, "stable clients not up"
            await asyncio.sleep(0.05)
        await map_workers(clients)
        workers_used = {c.sessions[-1]["worker"] for c in clients}
        rnd = random.Random(seed + 1)
        churners = [asyncio.ensure_future(churn(d, clock, churn_stats,
                                                random.Random(seed + 10 + k)))
                    for k in range(4)]
        pub = asyncio.ensure_future(asyncio.to_thread(
            publisher, rport, clock, stop_pub, log))
        ch_th = asyncio.ensure_future(asyncio.to_thread(
            chaos, d, rport, start_daemon.workdir, start_daemon, clock,
            stop_chaos, timeline, seed, SOAK - QUIET_TAIL))
        t_end = clock() + SOAK
        try:
            while clock() < t_end:
                await asyncio.sleep(0.25)
                await map_workers(clients)
                if pub.done() or (ch_th.done() and
                                  ch_th.exception() is not None):
                    break
        finally:
            stop_chaos.set()
            stop_pub.set()
            await asyncio.wait([pub, ch_th], timeout=30)
            for t in churners:
                t.cancel()
        if ch_th.done():
            ch_th.result()      # the chaos thread's own failure, if any
        pub.result()
        soak_end = clock()
        print("chaos: soak over at %.2fs, checking delivery" % soak_end)
        await map_workers(clients)
        # let in-flight events land, then prove every client is live: an
        # end marker on each channel reaches every client's current session
        await asyncio.sleep(1.0)
        t_wait = time.monotonic()
        ender = chaoslib.Publisher(rport)
        try:
            while not all(set(c.chans) <= c.ends for c in clients):
                assert time.monotonic() - t_wait < 15, \
                    "end markers not received by %r" % [
                        c.i for c in clients if not set(c.chans) <= c.ends]
                for ch in CHANNELS:
                    await asyncio.to_thread(ender.publish, ch,
                                            '{"end":true}')
                await asyncio.sleep(0.3)
        finally:
            ender.close()
        report, rstats, violations = account(clients, log, timeline,
                                             soak_end)
        print("chaos: end markers in at %.2fs" % clock())

        # registry == reality with the stable clients open (churn is over;
        # lingering churn connections and killed workers' slots must clear)
        seen = {}

        def counts_match():
            s = chaoslib.stats(d)
            st, h = proclib.health_json(d.port)
            conns = chaoslib.connections(d)
            got = (s["connections"], s["authenticated"], s["subscriptions"],
                   s["channels"], h["connections"], h["authenticated"],
                   h["activeChannels"], len(conns))
            seen.update(got=got, conns=conns)
            return True if got == want else None
        want = (NSTABLE, NSTABLE, 2 * NSTABLE, len(CHANNELS), NSTABLE,
                NSTABLE, len(CHANNELS), NSTABLE)
        counts_err = None
        try:
            await asyncio.to_thread(
                rtlib.wait_for, counts_match, 10,
                "registry counting exactly the %d stable clients" % NSTABLE,
                tolerate=rtlib.TRANSIENT)
        except AssertionError as e:
            # (stats connections, authenticated, subscriptions, channels;
            # /health connections, authenticated, activeChannels; admin
            # `connections` entries), and the entries that are no stable
            # client's current session
            live = {c.sessions[-1]["id"] for c in clients}
            counts_err = "%s: got %r, want %r; not a current stable " \
                "session: %r" % (e, seen.get("got"), want, [
                    x for x in seen.get("conns", []) if x.get("id") not in
                    live][:10])
        # stable clients leave
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *churners, return_exceptions=True)
        for c in clients:
            if c.conn is not None:
                c.conn.abort()
        return (clients, report, rstats, violations, workers_used, soak_end,
                counts_err)

    clients, report, rstats, violations, workers_used, soak_end, \
        counts_err = rtlib.arun(main(), SOAK + 240)

    # ------------------------------------------------------------ report
    npub = sum(1 for x in log if x[5] == "ok")
    print("chaos timeline (s): " + "; ".join(
        "%.2f %s%s ready %.2f" % (
            e["t"], e["kind"],
            " w%d" % e["worker"] if "worker" in e else "", e["t_ready"])
        for e in timeline))
    print("chaos publisher: %d attempts, %d published (%d with 0 receivers),"
          " %d refused (Redis down), %d uncertain" % (
              len(log), npub, sum(1 for x in log if x[4] == 0),
              sum(1 for x in log if x[5] == "refused"),
              sum(1 for x in log if x[5] == "unknown")))
    lost = {}
    for klass, r in sorted(report.items()):
        print("chaos report: %-22s chains %3d (clients %2d)  published "
              "%6d  delivered %6d  lost %d %r" % (
                  klass, r["chains"], len(r["clients"]), r["published"],
                  r["delivered"], r["published"] - r["delivered"],
                  r["lost"]))
        for k, v in r["lost"].items():
            lost[k] = lost.get(k, 0) + v
    print("chaos recoveries (answer/cause[/why false]): %r" % dict(
        sorted(rstats["recoveries"].items())))
    print("chaos events replayed %d; second answers (a bridge gone during "
          "a replay) %d; events lost by reason %r" % (
              rstats["replayed"], rstats["reanswers"], lost))
    others = [m for c in clients for s in c.sessions for m in s["other"]]
    if others:
        print("chaos other messages to stable clients: %d, first %r"
              % (len(others), others[:3]))
    print("chaos clients: %d never disconnected, %d reconnected (%d "
          "reconnections); first sessions on workers %r" % (
              sum(1 for c in clients if len(c.sessions) == 1),
              sum(1 for c in clients if len(c.sessions) > 1),
              sum(len(c.sessions) - 1 for c in clients),
              sorted(workers_used, key=str)))
    print("chaos churn (ok, failed): %r" % churn_stats)
    print("chaos bridge counters: %r" % chaoslib.stats(d)["bridge"])
    for v in violations[:40]:
        print("chaos VIOLATION: " + v)
    if counts_err is not None:
        print("chaos REGISTRY: " + counts_err)

    # ------------------------------------------------------- assertions
    kinds = {e["kind"] for e in timeline}
    if SOAK >= 30:
        assert kinds == {"worker-kill", "bridge-kill", "redis-restart"}, \
            "the schedule missed some chaos: %r" % timeline
    assert not violations, "%d violations:\n%s" % (
        len(violations), "\n".join(violations[:40]))
    assert counts_err is None, counts_err
    # every worker kill: some stable clients dropped (and came back, see
    # account()), and clients of the other workers stayed connected
    for e in timeline:
        if e["kind"] != "worker-kill":
            continue
        live = [(c.i, s) for c in clients for s in c.sessions
                if s["t_connect"] < e["t"] - 0.5 and
                (s["end"] is None or s["end"] > e["t"] - 0.5)]
        dropped = [i for i, s in live
                   if s["end"] is not None and s["end"] < e["t"] + 3]
        # a client of another worker "kept" its connection unless only
        # that worker's own later kill (soon after this one) ended it
        def ended_by_its_own_kill(s, e=e):
            return s["end"] is not None and s["worker"] is not None and any(
                x["kind"] == "worker-kill" and x is not e and
                x["worker"] == s["worker"] and e["t"] < x["t"] <= s["end"] + 0.5
                for x in timeline)
        kept = [i for i, s in live if s["end"] is None or
                s["end"] >= e["t"] + 3 or ended_by_its_own_kill(s)]
        assert kept, "worker %d killed at %.2fs: no client kept its " \
            "connection" % (e["worker"], e["t"])
        assert all(s["worker"] != e["worker"] for i, s in live
                   if i in kept and s["worker"] is not None), \
            "a client of killed worker %d stayed connected" % e["worker"]
        print("chaos: worker %d killed at %.2fs: %d stable clients dropped, "
              "%d kept" % (e["worker"], e["t"], len(dropped), len(kept)))
    assert any(s["end"] is None and s["kill"] is None
               for c in clients for s in c.sessions)
    # worker kills cost nothing: every resubscribe after one recovered
    # unless an epoch change explains it (checked in account()), and no
    # loss is put down to them
    nkilled = sum(1 for c in clients for s in c.sessions if s["kill"])
    ntrue = sum(v for k, v in rstats["recoveries"].items()
                if k.startswith("true/worker-kill"))
    assert nkilled == 0 or ntrue > 0, (nkilled, rstats)
    assert not any(k.startswith("worker-kill") or k.startswith("UNEXP") or
                   k.startswith("AFTER") for k in lost), lost
    total = sum(r["published"] for r in report.values())
    delivered = sum(r["delivered"] for r in report.values())
    assert delivered >= 0.5 * total, (delivered, total)
    ok = sum(v[0] for v in churn_stats.values())
    bad = sum(v[1] for v in churn_stats.values())
    assert ok + bad > 0 and ok >= 0.8 * (ok + bad), churn_stats

    # --------------------------------------- after: registry, fds, memory
    rtlib.wait_for(
        lambda: (lambda s, h: s["connections"] == 0 and
                 s["subscriptions"] == 0 and s["channels"] == 0 and
                 h[1]["connections"] == 0 and h[1]["activeChannels"] == 0)(
            chaoslib.stats(d), proclib.health_json(d.port)),
        10, "registry back to 0 once every client is gone",
        tolerate=rtlib.TRANSIENT)
    roles = rtlib.wait_settled(d, NWORKERS)
    st, h = proclib.health_json(d.port)
    assert st == 200 and h["status"] == "ok" and h["redis"] == "up", h

    def fds_back():
        now = chaoslib.fd_counts(d)
        over = {t: (fd0.get(t), n) for t, n in now.items()
                if fd0.get(t) is None or n is None or n > fd0[t] + FD_SLACK}
        return now if not over else None
    try:
        fd1 = rtlib.wait_for(fds_back, 10, "fd counts back to baseline",
                             tolerate=rtlib.TRANSIENT)
    except AssertionError:
        raise AssertionError("fd leak: baseline %r, now %r" % (
            fd0, chaoslib.fd_counts(d)))
    rss1 = chaoslib.rss_by_title(d)
    print("chaos fds: baseline %r, after %r" % (fd0, fd1))
    print("chaos RSS KiB: baseline %r (total %d), after %r (total %d)" % (
        rss0, sum(rss0.values()), rss1, sum(rss1.values())))
    growth = sum(rss1.values()) - sum(rss0.values())
    assert growth <= RSS_TOTAL_GROWTH_KIB, \
        "daemon RSS grew %d KiB (bound %d)" % (growth, RSS_TOTAL_GROWTH_KIB)
    pid1 = {"master": d.proc.pid}
    pid1.update(roles)
    for t, pid in pid1.items():
        if pid0.get(t) == pid:      # lived through the whole soak
            g = rss1[t] - rss0[t]
            assert g <= RSS_PROC_GROWTH_KIB, \
                "%s (pid %d) RSS grew %d KiB" % (t, pid, g)


def test_ip_slots_and_registry_freed_when_workers_are_killed(start_daemon):
    """max_connections_per_ip is counted in the shared registry: the slots
    of connections a SIGKILLed worker held must be freed with it, or the
    address is locked out after a few crashes."""
    r = start_daemon.redis()
    d = start_daemon(conf={"workers": "2", "redis_url": r.url,
                           "max_connections_per_ip": "10"})
    rtlib.wait_settled(d, 2)

    async def main():
        for rnd in range(3):
            cs = await proclib.open_many(
                d.port, 10, token=lambda i: rtlib.mint(userId="ip-%d" % i),
                channel="apps:created")
            try:
                s = await asyncio.to_thread(chaoslib.stats, d)
                assert s["connections"] == 10 and s["subscriptions"] == 10, s
                holders = {c["worker"] for c in await asyncio.to_thread(
                    chaoslib.connections, d)}
                roles = rtlib.roles(d.proc.pid)
                for w in holders:
                    os.kill(roles[rtlib.worker_title(w)], signal.SIGKILL)
                await asyncio.to_thread(rtlib.wait_settled, d, 2)
                await asyncio.to_thread(
                    rtlib.wait_for,
                    lambda: chaoslib.stats(d)["connections"] == 0, 5,
                    "the killed workers' connections cleared (round %d)"
                    % rnd, tolerate=rtlib.TRANSIENT)
                s = await asyncio.to_thread(chaoslib.stats, d)
                assert s["subscriptions"] == 0 and s["channels"] == 0, s
            finally:
                for c in cs:
                    c.abort()
            await asyncio.sleep(0.2)
    rtlib.arun(main(), 90)
    # all 10 slots of the address are free again
    async def last():
        cs = await proclib.open_many(
            d.port, 10, token=lambda i: rtlib.mint(userId="ip-after-%d" % i))
        for c in cs:
            c.abort()
    rtlib.arun(last(), 20)
