"""Process model, delivery: events PUBLISHed to Redis reach exactly the
subscribed sockets on every worker, in publish order per channel, with the
payload bytes embedded as they are; stats and /health are host-wide sums
over the workers.

Connections are spread over the workers by the kernel (SO_REUSEPORT): the
tests open enough of them (20+) to land on every worker.
"""
import asyncio
import json
import time

import pytest
import websockets

import chaoslib
import proclib
import rtlib
from chaoslib import stats
from proclib import FastWS

WORKERS = [2, 4]


start = proclib.start_settled


async def read_until(c, pred, timeout):
    """Parsed messages of c up to and including the first one for which
    pred(msg) holds."""
    got = []

    async def loop():
        while True:
            m = json.loads(await c.recv_text())
            got.append(m)
            if pred(m):
                return got
    try:
        return await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("timed out after %d messages: %r"
                             % (len(got), got[-5:]))


async def drain_quiet(c, quiet=0.3):
    """Whatever c receives until it has been quiet for `quiet` seconds."""
    got = []
    while True:
        try:
            got.append(json.loads(await asyncio.wait_for(c.recv_text(),
                                                         quiet)))
        except asyncio.TimeoutError:
            return got


def is_sentinel(m):
    return m.get("type") == "event" and m.get("channel") == "apps:updated"


@pytest.mark.parametrize("nworkers", WORKERS)
def test_events_reach_exactly_the_subscribers_in_publish_order(
        start_daemon, nworkers):
    d, r = start(start_daemon, nworkers)
    nsub, nnever, nunsub = 24, 8, 8
    n = nsub + nnever + nunsub

    async def main():
        cs = await proclib.open_many(
            d.port, n, token=lambda i: rtlib.mint(userId="dlv-%d" % i))
        try:
            for i, c in enumerate(cs):
                # everyone: the sentinel channel and their own user channel
                await c.subscribe("apps:updated")
                await c.subscribe("user:dlv-%d" % i)
                # 0..nsub-1 subscribe; the next nunsub subscribe then
                # unsubscribe; the last nnever never subscribe
                if i < nsub + nunsub:
                    await c.subscribe("apps:created")
                if nsub <= i < nsub + nunsub:
                    m = await c.request({"type": "unsubscribe",
                                         "channel": "apps:created"})
                    assert m["type"] == "unsubscribed", m

            def pub():
                for k in range(50):
                    proclib.cli_publish(r.port, "apps:created",
                                        json.dumps({"seq": k}))
                # another user's private channel: only its owner hears it
                proclib.cli_publish(r.port, "user:dlv-0",
                                    json.dumps({"private": "for dlv-0"}))
                # a private channel nobody holds
                proclib.cli_publish(r.port, "user:nobody",
                                    json.dumps({"private": "nobody"}))
                proclib.cli_publish(r.port, "apps:updated",
                                    json.dumps({"sentinel": True}))
            await asyncio.to_thread(pub)

            results = await asyncio.gather(*(
                read_until(c, is_sentinel, 20) for c in cs))
            # per-channel order only is promised: give late ones a moment
            extra = await asyncio.gather(*(drain_quiet(c) for c in cs))
            for i, (got, more) in enumerate(zip(results, extra)):
                msgs = got + more
                assert all(m["type"] == "event" for m in msgs), msgs
                seqs = [m["data"]["seq"] for m in msgs
                        if m["channel"] == "apps:created"]
                private = [m for m in msgs if m["channel"].startswith("user:")]
                sentinels = [m for m in msgs if is_sentinel(m)]
                assert len(sentinels) == 1, (i, sentinels)
                if i < nsub:
                    assert seqs == list(range(50)), \
                        "subscriber %d got apps:created seqs %r" % (i, seqs)
                else:
                    assert seqs == [], \
                        "non-subscriber %d got apps:created %r" % (i, seqs)
                if i == 0:
                    assert [m["data"] for m in private] == \
                        [{"private": "for dlv-0"}], private
                    assert private[0]["channel"] == "user:dlv-0"
                else:
                    assert private == [], \
                        "dlv-%d got another user's events: %r" % (i, private)
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 60)


@pytest.mark.parametrize("nworkers", WORKERS)
def test_fanout_1000_subscribers_1000_events_no_loss_no_duplicates(
        start_daemon, nworkers):
    d, r = start(start_daemon, nworkers)
    nclients, nevents = 1000, 1000
    t0 = time.monotonic()

    async def consume(c):
        """Sequence numbers c receives, until the end marker."""
        seqs = []
        while True:
            payload = await c.recv_text()
            m = proclib.EVENT_SEQ_RE.search(payload)
            if m:
                seqs.append(int(m.group(1)))
            elif b'"end":true' in payload:
                return seqs
            else:
                raise AssertionError("unexpected message %r" % payload[:200])

    async def main():
        token = rtlib.mint(userId="fanout")
        cs = await proclib.open_many(d.port, nclients, token=token,
                                     channel="apps:status", concurrency=50,
                                     timeout=40)
        try:
            st, h = proclib.health_json(d.port)
            assert h["connections"] == nclients, h
            msgs = [("apps:status", '{"seq":%d,"pad":"%s"}' % (k, "x" * 40))
                    for k in range(nevents)]
            msgs.append(("apps:status", '{"end":true}'))
            tasks = [asyncio.ensure_future(consume(c)) for c in cs]
            await asyncio.to_thread(proclib.publish_many, r.port, msgs)
            done, pending = await asyncio.wait(tasks, timeout=40)
            for t in pending:
                t.cancel()
            assert not pending, "%d of %d clients did not get the end marker" \
                % (len(pending), nclients)
            bad = []
            for i, t in enumerate(tasks):
                seqs = t.result()
                if seqs != list(range(nevents)):
                    missing = set(range(nevents)) - set(seqs)
                    bad.append("client %d: %d events, %d missing, %d "
                               "duplicates, in order: %s"
                               % (i, len(seqs), len(missing),
                                  len(seqs) - len(set(seqs)),
                                  seqs == sorted(seqs)))
            assert not bad, "%d clients wrong:\n%s" % (len(bad),
                                                       "\n".join(bad[:10]))
        finally:
            for c in cs:
                c.abort()
    rtlib.arun(main(), 90)
    assert time.monotonic() - t0 < 75


# ------------------------------------------------------------- payloads

VALID_JSON = [
    '{"a": 1,  "b":[1,2]}',
    '  {"padded" :\t"both sides" }\n',
    '[1, 2 ,3]',
    '"just a string"',
    '42',
    '-0.5e-3',
    'true',
    'null',
    '{}',
    '{"unicode":"h\u00e9llo \u2713 \U0001F600","esc":"\\u00e9\\n\\"q\\""}',
    '{"big":123456789012345678901234567890,"f":1.5e300,"dup":1,"dup":2}',
    '{"nested":{"a":[{"b":{"c":[null,true,false,{"d":"e"}]}}]}}',
]

INVALID_JSON = [
    'not json',
    '',
    '{"a":1',
    '{"a":1}}',
    '{"a":1} x',
    "{'single':'quotes'}",
    '[1,2,]',
    'NaN',
    'he said "hi"\\ and left\n\ttab',
    'h\u00e9llo w\u00f6rld \u2713',
    '{"a":01}',
    '"unterminated',
]


async def sub_client(url, channel, token):
    ws = await websockets.connect(url + "?token=" + token, max_size=None,
                                  max_queue=None)
    assert (await rtlib.recv_json(ws))["type"] == "connected"
    m = await rtlib.request(ws, {"type": "subscribe", "channel": channel})
    assert m["type"] == "subscribed", m
    return ws


def test_payloads_embedded_verbatim_invalid_as_string_1mib_intact(
        start_daemon):
    # 1 MiB of payload plus its JSON is over the default max_event_size
    d, r = start(start_daemon, 2, max_event_size="2m")
    big_obj = {"blob": "y" * (1024 * 1024), "n": 7}
    big = json.dumps(big_obj)
    big_invalid = "z" * (1024 * 1024) + " {not json"

    async def main():
        # several clients so that more than one worker serves them
        wss = [await sub_client(d.url, "storage:uploaded",
                                rtlib.mint(userId="pl-%d" % i))
               for i in range(8)]
        try:
            for p in VALID_JSON:
                proclib.publish(r.port, "storage:uploaded", p)
            for p in INVALID_JSON:
                proclib.publish(r.port, "storage:uploaded", p)
            proclib.publish(r.port, "storage:uploaded", big)
            proclib.publish(r.port, "storage:uploaded", big_invalid)
            for ws in wss:
                for p in VALID_JSON:
                    raw = await asyncio.wait_for(ws.recv(), 5)
                    m = json.loads(raw)
                    assert m["type"] == "event", m
                    assert m["channel"] == "storage:uploaded"
                    assert m["data"] == json.loads(p), (p, raw)
                    # the bytes as they are (insignificant whitespace
                    # around the value may be trimmed, none inside)
                    assert p.strip(" \t\r\n") in raw, \
                        "payload %r not embedded verbatim in %r" % (p, raw)
                    assert rtlib.TS_RE.match(m["timestamp"]), m
                for p in INVALID_JSON:
                    raw = await asyncio.wait_for(ws.recv(), 5)
                    m = json.loads(raw)
                    assert m["type"] == "event", m
                    assert m["data"] == p, \
                        "invalid JSON %r delivered as %r" % (p, raw)
                raw = await asyncio.wait_for(ws.recv(), 10)
                assert len(raw) > len(big)
                m = json.loads(raw)
                assert m["data"] == big_obj
                assert big in raw
                raw = await asyncio.wait_for(ws.recv(), 10)
                m = json.loads(raw)
                assert m["data"] == big_invalid
                # and the connection still works afterwards
                m = await rtlib.request(ws, {"type": "ping"})
                assert m["type"] == "pong", m
        finally:
            for ws in wss:
                await ws.close()
    rtlib.arun(main(), 60)


def test_payload_bytes_not_utf8_or_with_control_bytes_stay_valid_text(
        start_daemon):
    """Not valid JSON, so a JSON string; and the frame stays valid UTF-8
    text (a client library fails the connection with 1007 otherwise)."""
    d, r = start(start_daemon, 2)
    cases = [
        (b'bad \xc3\x28 utf8', ("bad ", "( utf8")),
        (b'{"a":"\xff\xfe"}', ('{"a":"', '"}')),
        (b'"\xed\xa0\x80"', ('"', '"')),       # an encoded surrogate
        (b'\x00nul', ("\x00nul", "")),
        (b'{"a":"x\x01y"}', ('{"a":"x\x01y"}', "")),   # raw control byte
    ]

    async def main():
        ws = await sub_client(d.url, "apps:created", rtlib.mint())
        try:
            for p, _ in cases:
                proclib.publish(r.port, "apps:created", p)
            for p, (head, tail) in cases:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert m["type"] == "event", m
                assert isinstance(m["data"], str), (p, m)
                assert m["data"].startswith(head) and \
                    m["data"].endswith(tail), (p, m["data"])
            m = await rtlib.request(ws, {"type": "ping"})
            assert m["type"] == "pong"
        finally:
            await ws.close()
    rtlib.arun(main(), 30)


# ---------------------------------------------------------- stats/health

async def stats_of(c):
    m = await c.request({"type": "stats"})
    assert m["type"] == "stats", m
    return m["data"]


def nonzero(d):
    return {k: v for k, v in d.items() if v}


@pytest.mark.parametrize("nworkers", WORKERS)
def test_stats_and_health_are_host_wide_sums_over_workers(
        start_daemon, nworkers):
    d, r = start(start_daemon, nworkers)
    nanon, nauth = 12, 24
    chans = ["apps:created", "apps:updated", "users:created",
             "database:row_updated", "storage:deleted"]

    async def main():
        admin = await FastWS.connect(d.port, rtlib.mint(userId="adm",
                                                        role="admin"))
        anon = await proclib.open_many(d.port, nanon)
        auth = await proclib.open_many(
            d.port, nauth, token=lambda i: rtlib.mint(userId="st-%d" % i))
        every = [admin] + anon + auth
        try:
            expect = {}

            def add(ch, k=1):
                expect[ch] = expect.get(ch, 0) + k
            for i, c in enumerate(anon):
                if i % 2 == 0:
                    await c.subscribe("announcements")
                    add("announcements")
            for i, c in enumerate(auth):
                for j, ch in enumerate(chans):
                    if (i + j) % 3 == 0:
                        await c.subscribe(ch)
                        add(ch)
                if i % 4 == 0:
                    await c.subscribe("user:st-%d" % i)
                    add("user:st-%d" % i)
                    # subscribing twice does not count twice
                    await c.subscribe("user:st-%d" % i)
            await admin.subscribe("system:alerts")
            add("system:alerts")

            def check(conns, nauthd, expect):
                return {
                    "totalConnections": conns,
                    "authenticatedConnections": nauthd,
                    "anonymousConnections": conns - nauthd,
                    "totalSubscriptions": sum(expect.values()),
                    "connectionsByChannel": dict(expect),
                }

            want = check(1 + nanon + nauth, 1 + nauth, expect)

            def visible(ch, who):
                """May `who` (None: anonymous) subscribe to ch itself?"""
                if who is None:
                    return ch == "announcements"
                if ch.startswith("system:"):
                    return False
                if ch.startswith("user:"):
                    return ch == "user:" + who
                return True
            # every connection (spread over the workers) sees the same sums;
            # connectionsByChannel only for channels it could use itself
            viewers = [(admin, "admin")] + [(c, None) for c in anon[:3]] + \
                [(c, "st-%d" % i) for i, c in enumerate(auth[:6])]
            for c, who in viewers:
                got = dict(await stats_of(c))
                got["connectionsByChannel"] = nonzero(
                    got["connectionsByChannel"])
                w = dict(want)
                if who != "admin":
                    w["connectionsByChannel"] = {
                        k: v for k, v in expect.items() if visible(k, who)}
                assert got == w, who
            st, h = proclib.health_json(d.port)
            assert st == 200, h
            assert (h["connections"], h["authenticated"], h["activeChannels"],
                    h["workers"]) == (1 + nanon + nauth, 1 + nauth,
                                      len(expect), nworkers), h

            # close some of each kind, unsubscribe some: the sums follow
            for c in anon[:4]:
                c.abort()
            for i in range(6):
                auth[i].abort()
            for i, c in enumerate(anon[:4]):
                if i % 2 == 0:
                    add("announcements", -1)
            for i in range(6):
                for j, ch in enumerate(chans):
                    if (i + j) % 3 == 0:
                        add(ch, -1)
                if i % 4 == 0:
                    add("user:st-%d" % i, -1)
            m = await auth[7].request({"type": "unsubscribe",
                                       "channel": chans[2]})
            assert m["type"] == "unsubscribed"
            if (7 + 2) % 3 == 0:
                add(chans[2], -1)
            expect = nonzero(expect)
            conns, nauthd = 1 + nanon - 4 + nauth - 6, 1 + nauth - 6
            want = check(conns, nauthd, expect)
            deadline = time.monotonic() + 5
            while True:
                got = await stats_of(admin)
                got["connectionsByChannel"] = nonzero(
                    got["connectionsByChannel"])
                if got == want or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert got == want
            st, h = proclib.health_json(d.port)
            assert (h["connections"], h["authenticated"], h["activeChannels"],
                    h["workers"]) == (conns, nauthd, len(expect),
                                      nworkers), h
        finally:
            for c in every:
                c.abort()
    rtlib.arun(main(), 60)


def _event_pad(k):
    """The pad of event k: its size and bytes depend on k, so a frame that
    was cut, shifted or swapped with another cannot pass for it."""
    return chr(ord("a") + k % 26) * (1000 + (k * 37) % 2100)


def test_backed_up_subscribers_get_every_byte_in_order(start_daemon):
    """Subscribers that stop reading fall behind by more than the kernel
    buffers hold, so their events wait in the daemon (one copy of each
    frame, shared by all of them) and leave in partial writes as they
    read again: every subscriber gets every event, whole, in order, and
    nobody is closed as a slow consumer (under max_output_buffer)."""
    d, r = start(start_daemon, 2, max_output_buffer="16m")
    ch = "deployments:progress"
    slow = []
    for i in range(12):
        ws = proclib.raw_ws_small_rcvbuf(d.port, rtlib.mint(userId="s%d" % i),
                                         rcvbuf=4096)
        assert ws.recv_json()["type"] == "connected"
        ws.send_json({"type": "subscribe", "channel": ch})
        assert ws.recv_json()["type"] == "subscribed"
        slow.append(ws)
    before = stats(d)["slow_consumer_closes"]
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = min(int(f.read().split()[2]), 16 << 20)
    except (OSError, ValueError, IndexError):
        wmem_max = 4 << 20
    # more than the server's socket buffer can absorb, well under 16m
    total, n = 0, 0
    while total < wmem_max + (3 << 20):
        total += len(_event_pad(n)) + 40
        n += 1
    for k in range(0, n, 64):
        proclib.publish_many(r.port, [
            (ch, '{"seq":%d,"pad":"%s"}' % (j, _event_pad(j)))
            for j in range(k, min(n, k + 64))])
    # now they read; events for others keep being queued meanwhile
    for i, ws in enumerate(slow):
        buf, events = bytes(ws.buf), []
        deadline = time.monotonic() + 60
        while len(events) < n:
            frames, tail = proclib.split_frames(buf)
            assert tail is not None, "subscriber %d: not a frame sequence" % i
            for op, p in frames:
                assert op == 0x1, "subscriber %d: opcode %d after %d events" % (
                    i, op, len(events))
                events.append(p)
            buf = tail
            if len(events) >= n:
                break
            left = deadline - time.monotonic()
            assert left > 0, "subscriber %d: %d of %d events" % (i, len(events), n)
            ws.sock.settimeout(left)
            chunk = ws.sock.recv(1 << 20)
            assert chunk, "subscriber %d: closed after %d events" % (i, len(events))
            buf += chunk
        assert len(events) == n and buf == b"", (i, len(events), len(buf))
        for k, p in enumerate(events):
            m = json.loads(p)
            assert m["type"] == "event" and m["channel"] == ch, m
            assert m["data"] == {"seq": k, "pad": _event_pad(k)}, \
                "subscriber %d: event %d is not the one published" % (i, k)
    assert stats(d)["slow_consumer_closes"] == before
    for ws in slow:
        ws.close_socket()
    print("%d events (%.1f MB) to %d backed-up subscribers" % (n, total / 1e6, len(slow)))


# ------------------------------------------------------- max_event_size

def too_large_lines(d):
    return [l for l in d.log().splitlines() if "over max_event_size" in l]


def test_event_over_max_event_size_is_dropped_counted_and_logged(
        start_daemon):
    d, r = start(start_daemon, 1, max_event_size="64k")
    c = rtlib.Client(d.port, token=rtlib.mint(userId="big"))
    try:
        c.subscribe("apps:created")
        before = stats(d)["bridge"]["events_too_large"]
        big = b'"' + b"x" * (64 * 1024 - 1) + b'"'          # 64k + 1
        at_cap = b'"' + b"y" * (64 * 1024 - 2) + b'"'       # exactly 64k
        # the bridge is Redis' one subscriber either way
        assert proclib.publish(r.port, "apps:created", big) == 1
        assert proclib.publish(r.port, "apps:created", b'{"n":2}') == 1
        assert proclib.publish(r.port, "apps:created", at_cap) == 1
        m = c.ws.recv_json()
        assert m["type"] == "event" and m["data"] == {"n": 2}, m
        m = c.ws.recv_json()
        assert m["type"] == "event" and len(m["data"]) == 64 * 1024 - 2
        assert c.alive()
        assert stats(d)["bridge"]["events_too_large"] == before + 1
        assert chaoslib.metrics(d.port)[
            'realtimed_drops_total{reason="too_large"}'] == before + 1
        rtlib.wait_for(lambda: too_large_lines(d), what="the drop logged")
        line = too_large_lines(d)[0]
        assert "apps:created" in line and str(len(big)) in line, line
        assert "x" * 16 not in d.log()
    finally:
        c.close()


def test_too_large_drops_are_logged_once_a_second_with_a_count(
        start_daemon):
    d, r = start(start_daemon, 1, max_event_size="1k")
    big = b"z" * 2000
    proclib.publish_many(r.port, [("apps:updated", big)] * 5 +
                         [("system:alerts", big + b"!")])
    rtlib.wait_for(lambda: stats(d)["bridge"]["events_too_large"] == 6,
                   what="six drops counted")
    # one line at once, the other five summed up about a second later
    rtlib.wait_for(lambda: len(too_large_lines(d)) == 2, timeout=5,
                   what="the summary line")
    first, summary = too_large_lines(d)
    assert "2000 bytes on apps:updated" in first, first
    assert "5 more events" in summary, summary
    assert "2001 bytes on system:alerts" in summary, summary
    time.sleep(1.2)
    assert len(too_large_lines(d)) == 2
