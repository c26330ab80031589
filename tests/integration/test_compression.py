"""permessage-deflate (PROTOCOL.md "Compression", RFC 7692): what the
handshake answers, events compressed once by the bridge and shared by
every compressed subscriber, plain and compressed subscribers side by
side, client messages inflated with a cap (bombs refused 1009), RSV1 where
it is a protocol error, and compressed echo on /echo at Autobahn 12.x/13.x
sizes and parameter sets with Python websockets (which compresses by
default)."""
import asyncio
import json
import os
import socket
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import \
    ClientPerMessageDeflateFactory

import rtlib
import tlslib
from chaoslib import stats
from rtlib import RawWS, ServerClosed, mint

EXT = "permessage-deflate"
ANSWER = ("permessage-deflate; server_no_context_takeover; "
          "client_no_context_takeover")
TRAILER = b"\x00\x00\xff\xff"


def inflate(payload):
    """A server message's payload, inflated as RFC 7692 7.2.2 says."""
    d = zlib.decompressobj(-15)
    return d.decompress(payload + TRAILER) + d.flush()


def deflate(data):
    """A message compressed on its own, trailer removed (RFC 7692 7.2.1)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TRAILER)
    return out[:-4]


def publish(r, channel, obj):
    r.command("PUBLISH", channel, json.dumps(obj))


def big_event(n, tag):
    """JSON data of about n bytes, compressible like real events."""
    items = [{"id": i, "name": "item-%d" % i, "status": "ok", "tag": tag}
             for i in range(max(1, n // 55))]
    return {"items": items}


class DeflateWS(RawWS):
    """A raw client that offers permessage-deflate (or what offer says)."""

    def __init__(self, port, offer=EXT, path=None, **kw):
        if path is None:
            path = "/ws?token=" + mint(userId="z1")
        headers = {"Sec-WebSocket-Extensions": offer} if offer else {}
        super().__init__(port, path=path, headers=headers, **kw)

    def recv_msg(self, timeout=rtlib.IO_TIMEOUT):
        """(compressed, payload inflated) of the next data message."""
        while True:
            fin, rsv, op, payload = self.recv_frame_rsv(timeout)
            if op == 0x8:
                raise ServerClosed(rtlib.parse_close(payload))
            if op in (0x9, 0xA):
                assert not rsv, "RSV on a control frame"
                continue
            assert fin, "server events are single frames"
            assert rsv in (0, 0x40), "RSV2/RSV3 set"
            return bool(rsv), inflate(payload) if rsv else payload

    def recv_obj(self, timeout=rtlib.IO_TIMEOUT):
        z, p = self.recv_msg(timeout)
        return z, json.loads(p)

    def send_compressed(self, data, fragments=1, opcode=0x1):
        z = deflate(data)
        step = max(1, -(-len(z) // fragments))
        parts = [z[i:i + step] for i in range(0, len(z), step)] or [b""]
        for i, part in enumerate(parts):
            self.send_frame(opcode if i == 0 else 0x0, part,
                            fin=i == len(parts) - 1, rsv=4 if i == 0 else 0)


@pytest.fixture(scope="module")
def _rt(module_factory):
    r = module_factory.redis()
    d = module_factory({"workers": "2", "redis_url": r.url,
                        "echo_path": "/echo", "max_message_size": "300k",
                        "allow_anonymous": "yes"})
    rtlib.wait_settled(d, 2)
    d.redis = r
    return d


@pytest.fixture
def rt(_rt, attach):
    return attach(_rt)


def rt_url(d, user):
    return d.url + "?token=" + mint(userId=user)


def subscribed(c, channel):
    c.send_json({"type": "subscribe", "channel": channel})
    z, m = c.recv_obj()
    assert m["type"] == "subscribed", m
    return z


# ------------------------------------------------------------ negotiation

@pytest.mark.parametrize("offer,answer", [
    (EXT, ANSWER),
    ("permessage-deflate; client_max_window_bits", ANSWER),
    ("permessage-deflate; client_no_context_takeover; "
     "server_no_context_takeover", ANSWER),
    ("permessage-deflate; server_max_window_bits=15",
     ANSWER + "; server_max_window_bits=15"),
    ("permessage-deflate; server_max_window_bits=\"15\"",
     ANSWER + "; server_max_window_bits=15"),
    # what cannot be honoured is declined, the next offer wins
    ("permessage-deflate; server_max_window_bits=10, permessage-deflate",
     ANSWER),
    ("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=12",
     ANSWER),
    # malformed offers are declined, never the handshake
    ("permessage-deflate; client_max_window_bits=16", None),
    ("permessage-deflate; client_max_window_bits=7", None),
    ("permessage-deflate; server_max_window_bits=abc", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; server_no_context_takeover; "
     "server_no_context_takeover", None),
    ("permessage-deflate; foo=1", None),
    ("permessage-deflate; server_max_window_bits=8", None),
    ("x-unknown", None),
])
def test_offer_is_answered_or_declined(rt, clients, offer, answer):
    c = clients(DeflateWS(rt.port, offer))
    assert c.headers.get("sec-websocket-extensions") == answer, c.headers
    z, hello = c.recv_obj()
    assert hello["type"] == "connected" and not z


def test_offers_in_several_headers_first_acceptable_wins(rt, clients):
    c = clients(RawWS(rt.port, headers={
        "Sec-WebSocket-Extensions": "permessage-deflate; bogus",
        "Sec-WebSocket-extensions": "permessage-deflate; "
                                    "server_max_window_bits=15"}))
    assert c.headers["sec-websocket-extensions"] == \
        ANSWER + "; server_max_window_bits=15"


def test_compression_off_declines(start_daemon):
    d = start_daemon({"compression": "off"})
    c = DeflateWS(d.port)
    try:
        assert "sec-websocket-extensions" not in c.headers
    finally:
        c.close_socket()


# ------------------------------------------------------------ outbound

def test_event_compressed_once_for_every_compressed_subscriber(rt, clients):
    before = stats(rt)["bridge"]["events_compressed"]
    zs = [clients(DeflateWS(rt.port)) for _ in range(8)]
    plain = [clients(DeflateWS(rt.port, offer=None)) for _ in range(4)]
    for c in zs + plain:
        c.recv_obj()
        subscribed(c, "apps:created")
    data = [big_event(2048, i) for i in range(3)]
    for d in data:
        publish(rt.redis, "apps:created", d)
    for c in zs:
        for d in data:
            z, m = c.recv_obj()
            assert z, "a compressed subscriber got a plain 2 KB event"
            assert m["type"] == "event" and m["data"] == d
    for c in plain:
        for d in data:
            z, m = c.recv_obj()
            assert not z and m["data"] == d
    st = stats(rt)
    # once per event on this node, not once per subscriber (8 of them)
    assert st["bridge"]["events_compressed"] - before == 3, st["bridge"]
    assert st["events_out_compressed"] >= 24
    assert st["bridge"]["compress_bytes_out"] < \
        st["bridge"]["compress_bytes_in"] / 3


def test_wss_event_compressed_once_before_encryption(start_daemon,
                                                     tmp_path):
    """Over wss:// too the bridge compresses an event once for every
    compressed subscriber of every worker (before each connection's TLS),
    and plain wss subscribers get the plain frame."""
    pair = tlslib.make_certs(str(tmp_path / "certs"), "ec")
    r = start_daemon.redis()
    conf = tlslib.tls_conf(pair, workers="2", redis_url=r.url,
                           allow_anonymous="yes")
    d = start_daemon(conf=conf)
    rtlib.wait_settled(d, 2)
    ctx = tlslib.client_ctx(pair.ca)
    port = tlslib.tls_port(d)

    def wss(offer):
        s = socket.create_connection(("127.0.0.1", port),
                                     timeout=rtlib.IO_TIMEOUT)
        return DeflateWS(port, offer, sock=ctx.wrap_socket(
            s, server_hostname="127.0.0.1"))

    zs = [wss(EXT) for _ in range(6)]
    plain = [wss(None) for _ in range(3)]
    try:
        for c in zs:
            assert c.headers.get("sec-websocket-extensions") == ANSWER
        for c in zs + plain:
            c.recv_obj()
            subscribed(c, "apps:created")
        st = stats(d)
        before = (st["bridge"]["events_compressed"],
                  st["events_out_compressed"])
        data = [big_event(3000, i) for i in range(4)]
        for ev in data:
            publish(r, "apps:created", ev)
        for c in zs:
            for ev in data:
                z, m = c.recv_obj()
                assert z and m["data"] == ev
        for c in plain:
            for ev in data:
                z, m = c.recv_obj()
                assert not z and m["data"] == ev
        st = stats(d)
        assert st["bridge"]["events_compressed"] - before[0] == 4, \
            st["bridge"]
        assert st["events_out_compressed"] - before[1] == 4 * 6, st
    finally:
        for c in zs + plain:
            c.close_socket()


def test_small_event_stays_plain(rt, clients):
    c = clients(DeflateWS(rt.port))
    c.recv_obj()
    subscribed(c, "apps:updated")
    publish(rt.redis, "apps:updated", {"small": True})
    z, m = c.recv_obj()
    assert not z and m["data"] == {"small": True}


def test_replies_stay_plain(rt, clients):
    c = clients(DeflateWS(rt.port))
    c.recv_obj()
    c.send_json({"type": "ping"})
    z, m = c.recv_obj()
    assert m["type"] == "pong" and not z


def test_python_websockets_receives_compressed_events(rt):
    async def run():
        async with websockets.connect(rt.url + "?token=" + mint(userId="p1"),
                                      ping_interval=None,
                                      max_size=None) as ws:
            assert ws.response_headers["Sec-WebSocket-Extensions"] == ANSWER
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "subscribe",
                                      "channel": "apps:deleted"}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            data = big_event(8000, "py")
            publish(rt.redis, "apps:deleted", data)
            m = json.loads(await ws.recv())
            assert m["data"] == data
    rtlib.arun(run())


# ------------------------------------------------------------ inbound

def test_compressed_subscribe_is_inflated(rt, clients):
    c = clients(DeflateWS(rt.port))
    c.recv_obj()
    before = stats(rt)["messages_inflated"]
    c.send_compressed(json.dumps({"type": "subscribe",
                                  "channel": "apps:created"}).encode())
    z, m = c.recv_obj()
    assert m["type"] == "subscribed", m
    # fragmented: RSV1 on the first frame only
    c.send_compressed(json.dumps({"type": "ping", "pad": "x" * 3000}).encode(),
                      fragments=4)
    z, m = c.recv_obj()
    assert m["type"] == "pong", m
    st = stats(rt)
    assert st["messages_inflated"] - before == 2
    assert st["inflate_memory"] == 0     # nothing kept between messages


def expect_close(c, code):
    with pytest.raises(ServerClosed) as e:
        while True:
            c.recv_msg()
    assert e.value.code == code, (e.value.code, e.value.reason)
    return e.value


def test_ping_between_compressed_fragments(rt, clients):
    """A control frame may come between the fragments of a compressed
    message (RFC 6455 5.4); the message is inflated whole after it."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    data = payload_of(6000, 3).encode()
    z = deflate(data)
    half = len(z) // 2
    c.send_frame(0x1, z[:half], fin=False, rsv=4)
    c.send_frame(0x9, b"mid")
    c.send_frame(0x0, z[half:], fin=True)
    fin, rsv, op, payload = c.recv_frame_rsv()
    assert (op, rsv, payload) == (0xA, 0, b"mid")
    zflag, p = c.recv_msg()
    assert zflag and p == data


def test_client_keeping_its_context_anyway_closes_1007(rt, clients):
    """The server answered client_no_context_takeover: a client whose
    second message points back into its first breaks the contract, and
    its message cannot be inflated on its own (1007), no more."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = payload_of(2000, 4).encode()
    z1 = co.compress(first) + co.flush(zlib.Z_SYNC_FLUSH)
    c.send_frame(0x1, z1[:-4], rsv=4)
    assert c.recv_msg() == (True, first)
    z2 = co.compress(first) + co.flush(zlib.Z_SYNC_FLUSH)   # back-references
    c.send_frame(0x1, z2[:-4], rsv=4)
    expect_close(c, 1007)
    assert stats(rt)["inflate_memory"] == 0


def test_decompression_bomb_closes_1009(rt, clients):
    c = clients(DeflateWS(rt.port))
    c.recv_obj()
    before = stats(rt)["inflate_too_big"]
    bomb = b'{"type":"ping","pad":"' + b"a" * (50 * 1024 * 1024)
    z = deflate(bomb)
    assert len(z) < 100 * 1024      # small input, huge output
    c.send_frame(0x1, z, rsv=4)
    expect_close(c, 1009)
    assert stats(rt)["inflate_too_big"] - before == 1
    assert stats(rt)["inflate_memory"] == 0


def test_fragmented_bomb_closes_1009(rt, clients):
    c = clients(DeflateWS(rt.port, path="/echo"))
    z = deflate(b"\x00" * (20 * 1024 * 1024))
    step = len(z) // 8
    c.send_frame(0x2, z[:step], fin=False, rsv=4)
    for i in range(1, 8):
        c.send_frame(0x0, z[i * step:(i + 1) * step], fin=False)
    c.send_frame(0x0, z[8 * step:], fin=True)
    expect_close(c, 1009)


def stored(data):
    """data as deflate stored blocks (zlib level 0): a little larger than
    data itself, as a client's deflate makes incompressible bytes."""
    c = zlib.compressobj(0, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TRAILER)
    return out[:-4]


def test_limit_is_on_the_inflated_size_not_the_wire(rt, clients):
    """max_message_size (300k here) holds a compressed message's inflated
    bytes: one of exactly 300k whose deflate is larger on the wire is
    taken; one byte more inflated is 1009."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    data = b"x" * (300 * 1024)
    z = stored(data)
    assert len(z) > len(data)
    c.send_frame(0x2, z, rsv=4)
    zflag, p = c.recv_msg()
    assert p == data
    c.send_frame(0x2, stored(data + b"x"), rsv=4)
    expect_close(c, 1009)


def test_a_flush_per_fragment_of_incompressible_bytes_is_taken(rt, clients):
    """A compliant sender may sync-flush every fragment (RFC 7692 7.2.1) or
    deflate at a low memory level: incompressible bytes then grow on the
    wire by more than zlib's one-shot bound.  A message of exactly the
    limit once inflated is still taken; one byte more is still 1009."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    data = os.urandom(300 * 1024)
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    n = 64
    step = len(data) // n
    parts = [co.compress(data[i * step:(i + 1) * step]) + co.flush(zlib.Z_SYNC_FLUSH)
             for i in range(n)]
    parts[-1] = parts[-1][:-4]
    assert sum(len(p) for p in parts) > len(data) + len(data) // 1024 + 64
    for i, p in enumerate(parts):
        c.send_frame(0x2 if i == 0 else 0x0, p, fin=i == n - 1,
                     rsv=4 if i == 0 else 0)
    zflag, p = c.recv_msg()
    assert p == data
    lo = zlib.compressobj(6, zlib.DEFLATED, -15, 1)      # memLevel 1
    z = lo.compress(data) + lo.flush(zlib.Z_SYNC_FLUSH)
    assert len(z) - 4 > len(data) + len(data) // 1024 + 64
    c.send_frame(0x2, z[:-4], rsv=4)
    assert c.recv_msg()[1] == data
    c.send_frame(0x2, stored(data + b"x"), rsv=4)
    expect_close(c, 1009)


def test_invalid_deflate_data_closes_1007(rt, clients):
    c = clients(DeflateWS(rt.port))
    c.recv_obj()
    c.send_frame(0x1, b"\xff\xff\xff\xff\xff", rsv=4)
    expect_close(c, 1007)


def test_truncated_deflate_data_closes_1007(rt, clients):
    """A compressed message that lost its last byte is invalid deflate
    data (RFC 7692 7.2.2), not the text its first bytes inflate to."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    data = payload_of(300, 5).encode()
    z = deflate(data)
    c.send_frame(0x1, z, rsv=4)
    assert c.recv_msg() == (True, data)
    c.send_frame(0x1, z[:-1], rsv=4)
    expect_close(c, 1007)


def test_compressed_invalid_utf8_closes_1007(rt, clients):
    c = clients(DeflateWS(rt.port))
    c.recv_obj()
    c.send_compressed(b'{"type":"ping","x":"\xc3\x28"}')
    expect_close(c, 1007)


@pytest.mark.parametrize("what", ["not negotiated", "continuation", "ping",
                                  "rsv2"])
def test_rsv1_where_not_allowed_closes_1002(rt, clients, what):
    c = clients(DeflateWS(rt.port, offer=None if what == "not negotiated"
                          else EXT))
    c.recv_obj()
    z = deflate(b'{"type":"ping"}')
    if what == "not negotiated":
        c.send_frame(0x1, z, rsv=4)
    elif what == "continuation":
        c.send_frame(0x1, z[:3], fin=False, rsv=4)
        c.send_frame(0x0, z[3:], rsv=4)
    elif what == "ping":
        c.send_frame(0x9, b"hi", rsv=4)
    else:
        c.send_frame(0x1, z, rsv=6)
    expect_close(c, 1002)


# ------------------------------------------------- Autobahn 12.x / 13.x

SIZES = [16, 64, 256, 1024, 4096, 16384, 65536, 131072, 262144]
PARAMS = [
    {},                                                     # 12.x
    {"client_no_context_takeover": True},                   # 13.2
    {"server_no_context_takeover": True},                   # 13.3
    {"client_max_window_bits": 9},                          # 13.4
    {"client_max_window_bits": 15},
    {"server_max_window_bits": 15, "client_max_window_bits": 9},   # 13.6
    {"client_max_window_bits": True,
     "client_no_context_takeover": True},                   # 13.7
]


def payload_of(n, i):
    text = json.dumps(big_event(n, i))
    return (text * (n // len(text) + 1))[:n]


@pytest.mark.parametrize("params", PARAMS,
                         ids=lambda p: ",".join(sorted(p)) or "default")
def test_compressed_echo_at_every_size(rt, params):
    async def run():
        ext = ClientPerMessageDeflateFactory(**params)
        async with websockets.connect(
                "ws://127.0.0.1:%d/echo" % rt.port, extensions=[ext],
                compression=None, ping_interval=None,
                max_size=None) as ws:
            assert ws.response_headers["Sec-WebSocket-Extensions"]\
                .startswith(ANSWER)
            for i, n in enumerate(SIZES):
                msg = payload_of(n, i)
                await ws.send(msg)
                assert await ws.recv() == msg, n
                b = msg.encode()
                await ws.send(b)
                assert await ws.recv() == b, n
            # fragmented (RSV1 on the first fragment only)
            parts = [payload_of(3000, j) for j in range(5)]
            await ws.send(iter(parts))
            assert await ws.recv() == "".join(parts)
    rtlib.arun(run(), timeout=30)


@pytest.mark.parametrize("offer,bits", [(9, 9), (12, 9), (15, 12)])
def test_server_window_honoured_by_compression_window_bits(start_daemon,
                                                           offer, bits):
    """compression_window_bits smaller than 15: an offer whose
    server_max_window_bits is at least it is answered with ours, and what
    the server sends inflates with that window (a client inflating with
    exactly the answered window, as Python websockets does, fails on any
    longer back-reference)."""
    r = start_daemon.redis()
    d = start_daemon({"echo_path": "/echo", "max_message_size": "300k",
                      "redis_url": r.url,
                      "compression_window_bits": str(bits)})
    rtlib.wait_settled(d, 1)

    def ext():
        return [ClientPerMessageDeflateFactory(server_max_window_bits=offer)]

    async def run():
        async with websockets.connect(
                "ws://127.0.0.1:%d/echo" % d.port, extensions=ext(),
                compression=None, ping_interval=None,
                max_size=None) as ws:
            assert ws.response_headers["Sec-WebSocket-Extensions"] == \
                ANSWER + "; server_max_window_bits=%d" % bits
            for i, n in enumerate(SIZES):
                msg = payload_of(n, i)
                await ws.send(msg)
                assert await ws.recv() == msg, n
        # events: the bridge compresses with the same window
        async with websockets.connect(
                rt_url(d, "w1"), extensions=ext(), compression=None,
                ping_interval=None, max_size=None) as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "subscribe",
                                      "channel": "apps:created"}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            data = big_event(60000, "w")
            publish(r, "apps:created", data)
            assert json.loads(await ws.recv())["data"] == data
        assert stats(d)["bridge"]["events_compressed"] == 1
    rtlib.arun(run(), timeout=30)


def test_message_ending_in_a_final_block_is_inflated(rt, clients):
    """RFC 7692 7.2.3.4: a client may end a message with BFINAL set
    (zlib's Z_FINISH); the 00 00 ff ff the server adds then follows the
    final block.  Sizes just past the server's 16 KB inflate chunk end
    the final block's output after its last input byte: still valid."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    for n in (100, 16387, 16394, 16700, 32790):
        data = (b"a" if n % 2 else b"ab") * (n // (1 if n % 2 else 2))
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        c.send_frame(0x2, co.compress(data) + co.flush(), rsv=4)
        z, p = c.recv_msg()
        assert p == data, n


def test_more_after_a_final_block_is_inflated(rt, clients):
    """RFC 7692 7.2.3.4's example itself: "Hello" as a BFINAL block and a
    0x00 (the start of an empty stored block), in one frame and with the
    0x00 in a continuation; two Z_FINISH streams in one message, the second
    pointing back into the first; garbage after a final block is 1007."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    c.send_frame(0x1, bytes([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]), rsv=4)
    assert c.recv_msg()[1] == b"Hello"
    c.send_frame(0x1, bytes([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), rsv=4, fin=False)
    c.send_frame(0x0, b"\x00")
    assert c.recv_msg()[1] == b"Hello"
    first = b"realtime events " * 8
    a = zlib.compressobj(6, zlib.DEFLATED, -15)
    sa = a.compress(first) + a.flush()
    b = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=first)
    sb = b.compress(first + b"!") + b.flush()
    c.send_frame(0x2, sa + sb, rsv=4)
    assert c.recv_msg()[1] == first + first + b"!"
    c.send_frame(0x1, bytes([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff, 0xfe, 0x01]),
                 rsv=4)
    code, _, _ = c.recv_close(5)
    assert code == 1007


def test_echo_reply_is_compressed_on_the_wire(rt, clients):
    c = clients(DeflateWS(rt.port, path="/echo"))
    data = payload_of(5000, 1).encode()
    c.send_compressed(data)
    z, p = c.recv_msg()
    assert z and p == data
    c.send_frame(0x1, data)         # a plain message is fine too
    z, p = c.recv_msg()
    assert z and p == data


# ------------------------------------------------- replay (since)

def test_replay_to_a_compressed_subscriber_then_live(start_daemon):
    """History keeps plain frames: replayed events reach a compressed
    subscriber plain (RSV1 is per message), live ones compressed, with no
    gap and nothing twice."""
    r = start_daemon.redis()
    d = start_daemon({"redis_url": r.url,
                      "namespace": "apps:* authenticated history=50"})
    rtlib.wait_settled(d, 1)
    c = DeflateWS(d.port)
    try:
        c.recv_obj()
        c.send_json({"type": "subscribe", "channel": "apps:created"})
        z, m = c.recv_obj()
        epoch = m["epoch"]
        c.close_socket()
        for i in range(5):
            publish(r, "apps:created", big_event(2048, i))
        c = DeflateWS(d.port)
        c.recv_obj()
        c.send_json({"type": "subscribe", "channel": "apps:created",
                     "since": {"epoch": epoch, "offset": 2}})
        z, m = c.recv_obj()
        assert m["type"] == "subscribed" and m["recovered"] is True, m
        got = [c.recv_obj() for _ in range(3)]
        assert [m["offset"] for _, m in got] == [3, 4, 5]
        assert [m["data"]["items"][0]["tag"] for _, m in got] == [2, 3, 4]
        publish(r, "apps:created", big_event(2048, 5))
        z, m = c.recv_obj()
        assert z and m["offset"] == 6 and m["data"] == big_event(2048, 5)
    finally:
        c.close_socket()


# ------------------------------------------------- max_message_memory

def _held(d):
    st = stats(d)
    return st["message_memory"], st["inflate_memory"]


def test_stalled_fragments_are_bounded_by_max_message_memory(start_daemon):
    """Clients that stop in the middle of fragmented messages hold at most
    max_message_memory of one worker, together: the client whose fragment
    would pass it is closed 1013, the others finish their messages, and
    nothing is left counted once they are done."""
    d = start_daemon({"workers": "1", "echo_path": "/echo",
                      "max_message_size": "64k", "max_message_memory": "128k"})
    a, b, c = (RawWS(d.port, path="/echo") for _ in range(3))
    try:
        a.send_frame(0x1, b"a" * 60000, fin=False)
        b.send_frame(0x1, b"b" * 60000, fin=False)
        rtlib.wait_for(lambda: _held(d) == (120000, 0), what="120000 held")
        before = stats(d)["message_memory_full"]
        c.send_frame(0x1, b"c" * 20000, fin=False)     # 140000 > 128k
        with pytest.raises(ServerClosed) as e:
            c.recv_message()
        assert (e.value.code, e.value.reason) == (1013, b"Server full")
        st = stats(d)
        assert st["message_memory_full"] - before == 1
        assert st["message_memory"] == 120000           # c's bytes not kept
        # the two below the bound are untouched
        a.send_frame(0x0, b"A" * 10, fin=True)
        assert a.recv_message() == (0x1, b"a" * 60000 + b"A" * 10)
        rtlib.wait_for(lambda: _held(d) == (60000, 0), what="b's 60000 held")
        # room again: a new client's fragment is taken
        e2 = RawWS(d.port, path="/echo")
        try:
            e2.send_frame(0x2, b"e" * 20000, fin=False)
            e2.send_frame(0x0, b"E", fin=True)
            assert e2.recv_message() == (0x2, b"e" * 20000 + b"E")
        finally:
            e2.close_socket()
        b.close_socket()                # a stalled client that goes away
        rtlib.wait_for(lambda: _held(d) == (0, 0), what="nothing held")
    finally:
        for x in (a, b, c):
            x.close_socket()


def test_stalled_compressed_messages_are_bounded_too(start_daemon):
    """A compressed message stalled after its first frame holds an inflater
    and what it inflated; they count against max_message_memory like plain
    fragments, and are given back when the message ends or the client goes."""
    d = start_daemon({"workers": "1", "echo_path": "/echo",
                      "max_message_size": "64k", "max_message_memory": "256k"})
    data = payload_of(60000, 7).encode()
    z = deflate(data)
    half = len(z) // 2
    held, closed = [], None
    try:
        for i in range(12):
            c = DeflateWS(d.port, path="/echo")
            held.append(c)
            c.send_frame(0x1, z[:half], fin=False, rsv=4)
            try:
                fin, rsv, op, payload = c.recv_frame_rsv(timeout=0.5)
            except socket.timeout:
                continue                # still held: no answer yet
            assert op == 0x8, (op, payload)
            assert rtlib.parse_close(payload) == (1013, b"Server full")
            closed = c
            break
        assert closed is not None, "12 stalled messages never hit 256k"
        assert len(held) >= 3, len(held)    # 256k holds a few of them
        held.remove(closed)
        closed.close_socket()
        st = stats(d)
        assert st["message_memory_full"] >= 1
        total = st["message_memory"] + st["inflate_memory"]
        # the bound, give or take the one inflater that started within it
        assert st["inflate_memory"] > 0 and 128 * 1024 < total <= 320 * 1024, st
        # the others go; what they held is given back, and the first
        # message, stalled all along, finishes and is echoed whole
        first = held.pop(0)
        one = total / (len(held) + 1)
        for c in held:
            c.close_socket()
        held = [first]
        rtlib.wait_for(lambda: sum(_held(d)) <= one, what="one message held")
        first.send_frame(0x0, z[half:], fin=True)
        assert first.recv_msg() == (True, data)
        assert _held(d) == (0, 0)
    finally:
        for c in held:
            c.close_socket()


@pytest.mark.parametrize("frames", [
    [b""],                      # no deflate data at all
    [b"\x00"],                  # an empty stored block, unfinished
    [b"\x02\x00"],              # an empty final fixed block
    [b"", b"", b""],            # fragmented, every fragment empty
], ids=["empty", "stored", "final", "fragments"])
def test_empty_compressed_message_is_an_empty_message(rt, clients, frames):
    """A compressed message that inflates to nothing is an empty message
    (echoed empty), and nothing stays held."""
    c = clients(DeflateWS(rt.port, path="/echo"))
    for i, f in enumerate(frames):
        c.send_frame(0x1 if i == 0 else 0x0, f, fin=i == len(frames) - 1,
                     rsv=4 if i == 0 else 0)
    assert c.recv_msg() == (False, b"")
    c.send_compressed(b"after")
    assert c.recv_msg()[1] == b"after"
    assert stats(rt)["message_memory"] == 0
