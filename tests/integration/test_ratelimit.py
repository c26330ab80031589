"""Per-connection message rate limit: past max_client_messages_per_sec
beyond the burst the server sends an error and closes with 1008."""
import json
import os
import socket

import pytest

from rtlib import RawWS

RATE = {"max_client_messages_per_sec": "5", "client_messages_burst": "10"}


@pytest.fixture(scope="module")
def _rt(module_factory):
    return module_factory(RATE, name="ratelimit")


@pytest.fixture
def rt(_rt, attach):
    return attach(_rt)


def _frame(obj):
    data = json.dumps(obj).encode()
    key = os.urandom(4)
    return bytes([0x81, 0x80 | len(data)]) + key + bytes(
        b ^ key[i % 4] for i, b in enumerate(data))


def test_flood_gets_error_then_close_1008(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        try:
            ws.sock.sendall(_frame({"type": "ping"}) * 60)
        except (BrokenPipeError, ConnectionResetError):
            pass
        code, reason, seen = ws.recv_close(5)
        msgs = [json.loads(m) for m in seen]
        types = [m["type"] for m in msgs]
        assert code == 1008, (code, reason, types)
        assert "error" in types
        assert types[-1] == "error"
        assert types.count("pong") <= 11 + 1, types
    finally:
        ws.close_socket()


def test_burst_within_limit_is_served(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        ws.sock.sendall(_frame({"type": "ping"}) * 8)
        for _ in range(8):
            assert ws.recv_json()["type"] == "pong"
        ws.sock.settimeout(0.5)
        try:
            extra = ws.recv_frame(0.5)
        except (socket.timeout, TimeoutError):
            extra = None
        assert extra is None or extra[1] == 0x9
    finally:
        ws.close_socket()


def test_steady_rate_under_limit_is_served(rt):
    import time
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        for _ in range(15):
            ws.send_json({"type": "ping"})
            assert ws.recv_json()["type"] == "pong"
            time.sleep(0.25)    # 4/s, under the 5/s rate
    finally:
        ws.close_socket()
