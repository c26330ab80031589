"""Heartbeat (PROTOCOL.md "Heartbeat and close"): with heartbeat_interval
1s and heartbeat_timeout 2s the server pings every second, drops a client
that has sent nothing for 2 s, and keeps a quiet client that answers."""
import asyncio
import socket
import time

import pytest
import websockets

import rtlib
from rtlib import RawWS, arun

HB = {"heartbeat_interval": "1s", "heartbeat_timeout": "2s"}


@pytest.fixture(scope="module")
def _rt(module_factory):
    return module_factory(HB, name="heartbeat")


@pytest.fixture
def rt(_rt, attach):
    return attach(_rt)


def test_server_sends_pings_every_interval(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        pings = []
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            try:
                fin, op, payload = ws.recv_frame(deadline - time.monotonic())
            except (socket.timeout, TimeoutError):
                break
            if op == 0x9:
                pings.append(time.monotonic())
                ws.send_frame(0xA, payload)
        assert len(pings) >= 2, "got %d pings in 3.5 s" % len(pings)
    finally:
        ws.close_socket()


def test_silent_client_is_dropped_after_timeout(rt):
    ws = RawWS(rt.port)
    try:
        t0 = time.monotonic()
        # read everything (pings included) but never answer anything
        dropped = ws.wait_eof(6)
        elapsed = time.monotonic() - t0
        assert dropped, "silent client still connected after 6 s"
        assert elapsed >= 1.5, "dropped too early (%.1f s)" % elapsed
        assert elapsed <= 4.5, "dropped too late (%.1f s)" % elapsed
    finally:
        ws.close_socket()


def test_client_that_never_reads_is_dropped(rt):
    s = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
    try:
        s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                  .encode())
        time.sleep(5)
        # everything queued is there to read, then the end of the stream
        s.settimeout(2)
        data = b""
        closed = False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except ConnectionResetError:
            closed = True
        except (socket.timeout, TimeoutError):
            pass
        assert data.startswith(b"HTTP/1.1 101")
        assert closed, "client that never answered is still connected"
    finally:
        s.close()


def test_quiet_healthy_client_stays_connected(rt):
    async def go():
        async with websockets.connect(rt.url, ping_interval=None,
                                      open_timeout=5) as ws:
            assert (await rtlib.recv_json(ws))["type"] == "connected"
            await asyncio.sleep(4.5)    # the library answers pings itself
            r = await rtlib.request(ws, {"type": "ping"})
            return r["type"]
    assert arun(go(), timeout=15) == "pong"


def test_client_sending_messages_without_pongs_stays_connected(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.recv_json()["type"] == "connected"
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            ws.send_json({"type": "ping"})
            assert ws.recv_json()["type"] == "pong"
            time.sleep(0.5)
        # recv_json answered server pings: only count the app-level traffic
        # as a check that the connection is still usable
        ws.send_json({"type": "ping"})
        assert ws.recv_json()["type"] == "pong"
    finally:
        ws.close_socket()
