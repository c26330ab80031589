"""RFC 6455 framing against the echo endpoint (and /ws where the protocol
endpoint behaves differently): echo of every length class, fragmentation,
control frames, and every violation with its close code."""
import os
import struct
import time

import pytest
import websockets

import rtlib
from rtlib import RawWS, arun

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def _rt(module_factory):
    return module_factory({"echo_path": "/echo", "max_message_size": "1m"})


@pytest.fixture
def rt(_rt, attach):
    return attach(_rt)


def echo(rt):
    return RawWS(rt.port, path="/echo")


def expect_close(ws, code, timeout=5):
    got, reason, _ = ws.recv_close(timeout)
    assert got == code, "expected close %s, got %s (reason %r)" % (
        code, got, reason)
    return reason


# ------------------------------------------------------------------ echo

SIZES = [0, 125, 126, 65535, 65536, MIB]


async def _echo_roundtrip(url, payload):
    async with websockets.connect(url, max_size=None, ping_interval=None,
                                  compression=None, open_timeout=5) as ws:
        await ws.send(payload)
        return await rtlib.asyncio.wait_for(ws.recv(), 10)


@pytest.mark.parametrize("size", SIZES)
def test_echo_text_message_of_size(rt, size):
    text = ("é" * (size // 2) + "x" * (size % 2))
    assert len(text.encode()) == size
    got = arun(_echo_roundtrip("ws://127.0.0.1:%d/echo" % rt.port, text))
    assert got == text


@pytest.mark.parametrize("size", SIZES)
def test_echo_binary_message_of_size(rt, size):
    data = os.urandom(size)
    got = arun(_echo_roundtrip("ws://127.0.0.1:%d/echo" % rt.port, data))
    assert got == data


def test_echo_fragmented_text_is_reassembled(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"Hel", fin=False)
        ws.send_frame(0x0, b"lo ", fin=False)
        ws.send_frame(0x0, b"world", fin=True)
        assert ws.recv_message() == (0x1, b"Hello world")
    finally:
        ws.close_socket()


def test_echo_fragmented_binary_is_reassembled(rt):
    ws = echo(rt)
    try:
        parts = [os.urandom(n) for n in (1, 200, 70000)]
        ws.send_frame(0x2, parts[0], fin=False)
        ws.send_frame(0x0, parts[1], fin=False)
        ws.send_frame(0x0, parts[2], fin=True)
        assert ws.recv_message(timeout=10) == (0x2, b"".join(parts))
    finally:
        ws.close_socket()


def test_fragments_with_empty_frames_are_reassembled(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"", fin=False)
        ws.send_frame(0x0, b"ab", fin=False)
        ws.send_frame(0x0, b"", fin=True)
        assert ws.recv_message() == (0x1, b"ab")
    finally:
        ws.close_socket()


def test_utf8_character_split_across_fragments_is_valid(rt):
    ws = echo(rt)
    try:
        snow = "☃".encode()  # 3 bytes
        ws.send_frame(0x1, b"a" + snow[:1], fin=False)
        ws.send_frame(0x0, snow[1:2], fin=False)
        ws.send_frame(0x0, snow[2:] + b"z", fin=True)
        assert ws.recv_message() == (0x1, b"a" + snow + b"z")
    finally:
        ws.close_socket()


def test_ping_between_fragments_is_answered_first(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"frag", fin=False)
        ws.send_frame(0x9, b"mid")
        ws.send_frame(0x0, b"ment", fin=True)
        fin, op, payload = ws.recv_frame()
        assert (op, payload) == (0xA, b"mid")
        assert ws.recv_message() == (0x1, b"fragment")
    finally:
        ws.close_socket()


@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125))])
def test_ping_is_answered_with_pong_with_same_payload(rt, payload):
    ws = echo(rt)
    try:
        ws.send_frame(0x9, payload)
        fin, op, got = ws.recv_frame()
        assert fin and op == 0xA
        assert got == payload
    finally:
        ws.close_socket()


def test_unsolicited_pong_is_ignored(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0xA, b"unsolicited")
        ws.send_text("still here")
        assert ws.recv_message() == (0x1, b"still here")
    finally:
        ws.close_socket()


def test_websockets_library_ping_gets_pong(rt):
    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % rt.port,
                                      ping_interval=None) as ws:
            waiter = await ws.ping(b"lib")
            await rtlib.asyncio.wait_for(waiter, 5)
    arun(go())


# ----------------------------------------------------------------- close

@pytest.mark.parametrize("code", [1000, 1001, 3000, 4123])
def test_close_echoes_client_code(rt, code):
    ws = echo(rt)
    try:
        ws.send_close(code, b"bye")
        expect_close(ws, code)
        assert ws.wait_eof(5)
    finally:
        ws.close_socket()


def test_close_without_code_is_answered_and_connection_ends(rt):
    ws = echo(rt)
    try:
        ws.send_close()
        code, _, _ = ws.recv_close()
        assert code in (None, 1000)
        assert ws.wait_eof(5)
    finally:
        ws.close_socket()


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016,
                                  2999, 5000, 65535])
def test_invalid_close_code_closes_1002(rt, code):
    ws = echo(rt)
    try:
        ws.send_close(code)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


def test_close_with_one_byte_payload_closes_1002(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x8, b"\x03")
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


def test_close_reason_with_invalid_utf8_closes_1007(rt):
    ws = echo(rt)
    try:
        ws.send_close(1000, b"\xff\xfe")
        expect_close(ws, 1007)
    finally:
        ws.close_socket()


# ---------------------------------------------------- protocol errors 1002

def test_unmasked_client_frame_closes_1002(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"naked", mask=False)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


@pytest.mark.parametrize("rsv", [4, 2, 1])
def test_rsv_bit_closes_1002(rt, rsv):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"rsv", rsv=rsv)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_unknown_opcode_closes_1002(rt, opcode):
    ws = echo(rt)
    try:
        ws.send_frame(opcode, b"x")
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_fragmented_control_frame_closes_1002(rt, opcode):
    ws = echo(rt)
    try:
        ws.send_frame(opcode, b"\x03\xe8" if opcode == 0x8 else b"x",
                      fin=False)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


@pytest.mark.parametrize("opcode", [0x9, 0xA, 0x8])
def test_control_frame_over_125_bytes_closes_1002(rt, opcode):
    ws = echo(rt)
    try:
        payload = ((b"\x03\xe8" if opcode == 0x8 else b"") + b"p" * 126)[:126]
        ws.send_frame(opcode, payload)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


def test_continuation_without_start_closes_1002(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x0, b"orphan", fin=True)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_new_message_inside_fragmented_message_closes_1002(rt, opcode):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"start", fin=False)
        ws.send_frame(opcode, b"again", fin=True)
        expect_close(ws, 1002)
    finally:
        ws.close_socket()


def test_non_minimal_length_encoding_is_accepted_or_closes_1002(rt):
    # RFC 6455 requires minimal encoding of the length; a server may fail
    # the connection (1002) or accept it, but must not hang or crash.
    ws = echo(rt)
    try:
        key = os.urandom(4)
        payload = b"abc"
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        ws.sock.sendall(bytes([0x81, 0x80 | 126]) + struct.pack("!H", 3)
                        + key + masked)
        fin, op, got = ws.recv_frame()
        if op == 0x8:
            assert rtlib.parse_close(got)[0] == 1002
        else:
            assert (op, got) == (0x1, b"abc")
    finally:
        ws.close_socket()


# ------------------------------------------------------------ UTF-8 1007

@pytest.mark.parametrize("payload", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80",
                                     b"\xf4\x90\x80\x80", b"ok\xce"])
def test_invalid_utf8_text_closes_1007(rt, payload):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, payload)
        expect_close(ws, 1007)
    finally:
        ws.close_socket()


def test_invalid_utf8_split_across_fragments_closes_1007(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"abc\xce", fin=False)   # lead byte, valid so far
        ws.send_frame(0x0, b"\x41def", fin=True)    # not a continuation byte
        expect_close(ws, 1007)
    finally:
        ws.close_socket()


def test_truncated_utf8_at_end_of_fragmented_message_closes_1007(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"abc", fin=False)
        ws.send_frame(0x0, b"\xe2\x98", fin=True)
        expect_close(ws, 1007)
    finally:
        ws.close_socket()


def test_invalid_utf8_fails_before_message_completes(rt):
    # the validator runs as bytes arrive: an invalid first fragment fails
    # the connection without waiting for the rest of the message
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"\xff\xff", fin=False)
        expect_close(ws, 1007)
    finally:
        ws.close_socket()


# ----------------------------------------------------------- sizes 1009

def test_oversized_declared_length_closes_1009_without_payload(rt):
    ws = echo(rt)
    try:
        t0 = time.monotonic()
        # header only: 1 MiB + 1 declared, mask key, no payload sent
        ws.sock.sendall(bytes([0x82, 0x80 | 127])
                        + struct.pack("!Q", MIB + 1) + os.urandom(4))
        expect_close(ws, 1009, timeout=3)
        assert time.monotonic() - t0 < 3
    finally:
        ws.close_socket()


def test_huge_declared_length_closes_1009(rt):
    ws = echo(rt)
    try:
        ws.sock.sendall(bytes([0x81, 0x80 | 127])
                        + struct.pack("!Q", 1 << 62) + os.urandom(4))
        code, _, _ = ws.recv_close(3)
        assert code in (1009, 1002)
    finally:
        ws.close_socket()


def test_fragmented_message_over_limit_closes_1009(rt):
    ws = echo(rt)
    try:
        chunk = b"a" * (512 * 1024)
        ws.send_frame(0x1, chunk, fin=False)
        ws.send_frame(0x0, chunk, fin=False)
        # the total now equals the limit; one more byte passes it
        ws.send_frame(0x0, b"a", fin=True)
        expect_close(ws, 1009)
    finally:
        ws.close_socket()


def test_message_of_exactly_max_size_is_accepted(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x2, b"\x00" * MIB)
        op, got = ws.recv_message(timeout=10)
        assert op == 0x2 and len(got) == MIB
    finally:
        ws.close_socket()


# ------------------------------------------------------ /ws specifics

def test_binary_frame_on_ws_closes_1003(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.send_frame(0x2, b"\x00\x01")
        expect_close(ws, 1003)
    finally:
        ws.close_socket()


def test_invalid_utf8_on_ws_closes_1007(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.send_frame(0x1, b'{"type":"\xff"}')
        expect_close(ws, 1007)
    finally:
        ws.close_socket()


def test_ping_frame_on_ws_gets_pong(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.send_frame(0x9, b"ctl")
        fin, op, payload = ws.recv_frame()
        assert (op, payload) == (0xA, b"ctl")
    finally:
        ws.close_socket()


def test_fragmented_json_on_ws_is_understood(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.send_frame(0x1, b'{"ty', fin=False)
        ws.send_frame(0x0, b'pe":"pi', fin=False)
        ws.send_frame(0x0, b'ng"}', fin=True)
        assert ws.recv_json()["type"] == "pong"
    finally:
        ws.close_socket()


def test_close_on_ws_is_echoed(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.send_close(1000, b"done")
        expect_close(ws, 1000)
        assert ws.wait_eof(5)
    finally:
        ws.close_socket()


def test_server_stop_closes_clients_with_1001(start_daemon):
    d = start_daemon()
    ws = RawWS(d.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        d.proc.send_signal(rtlib.signal.SIGTERM)
        code, _, _ = ws.recv_close(5)
        assert code == 1001
    finally:
        ws.close_socket()


def test_frame_sent_byte_by_byte_is_reassembled(rt):
    ws = echo(rt)
    try:
        ws.sock.setsockopt(rtlib.socket.IPPROTO_TCP,
                           rtlib.socket.TCP_NODELAY, 1)
        key = os.urandom(4)
        data = "slow ☃ text".encode()
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        for b in bytes([0x81, 0x80 | len(data)]) + key + masked:
            ws.sock.send(bytes([b]))
        assert ws.recv_message() == (0x1, data)
    finally:
        ws.close_socket()


def test_many_frames_in_one_write_are_all_echoed(rt):
    ws = echo(rt)
    try:
        blob = b""
        for i in range(100):
            data = b"m%03d" % i
            key = os.urandom(4)
            blob += bytes([0x81, 0x84]) + key + bytes(
                b ^ key[j % 4] for j, b in enumerate(data))
        ws.sock.sendall(blob)
        for i in range(100):
            assert ws.recv_message() == (0x1, b"m%03d" % i)
    finally:
        ws.close_socket()


def test_protocol_error_close_is_followed_by_tcp_close(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"x", mask=False)
        expect_close(ws, 1002)
        ws.send_close(1002)
        assert ws.wait_eof(5)
    finally:
        ws.close_socket()


def test_server_closes_tcp_even_if_client_never_answers_close(rt):
    ws = echo(rt)
    try:
        ws.send_frame(0x1, b"x", mask=False)
        expect_close(ws, 1002)
        assert ws.wait_eof(8), "server kept the connection after its close"
    finally:
        ws.close_socket()


def test_ping_after_the_servers_close_is_answered(rt):
    """RFC 6455 5.5.2: a Ping gets its Pong until the peer's Close came;
    the server's own Close does not end that (a Pong is a control frame,
    which 5.5.1 allows after a Close).  Then the client's Close ends it."""
    ws = RawWS(rt.port, path="/ws?token=not.a.jwt")
    try:
        m = ws.recv_json()
        assert m["type"] == "error", m
        _, op, payload = ws.recv_frame()
        assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1008, payload
        ws.send_frame(0x9, b"pp")
        ws.send_text("late")
        _, op, payload = ws.recv_frame()
        assert (op, payload) == (0xA, b"pp")
        ws.send_close(1008)
        assert ws.wait_eof(5), "server kept the connection after both closes"
    finally:
        ws.close_socket()


def test_data_after_close_is_ignored(rt):
    ws = echo(rt)
    try:
        ws.send_close(1000)
        ws.send_text("late")
        code, _, seen = ws.recv_close()
        assert code == 1000
        assert b"late" not in seen
    finally:
        ws.close_socket()
