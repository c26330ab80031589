"""The HTTP side of realtimed, spoken over raw sockets: status codes, the
upgrade handshake, /health (PROTOCOL.md "Endpoints", "Health")."""
import json
import socket
import time

import pytest

import proclib
import rtlib
from rtlib import http_get, http_raw, RawWS, TS_RE


@pytest.fixture(scope="module")
def _rt(module_factory):
    return module_factory({"max_header_size": "8k",
                           "allowed_origins":
                           "https://a.example https://b.example"})


@pytest.fixture
def rt(_rt, attach):
    return attach(_rt)


def upgrade_request(port, path="/ws", method="GET", version="13", key=None,
                    extra=None, drop=()):
    headers = [
        ("Host", "127.0.0.1:%d" % port),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key or "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", version),
    ]
    headers = [(k, v) for k, v in headers if k not in drop]
    headers += list(extra or [])
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in headers)
    return (head + "\r\n").encode()


def test_unknown_path_returns_404(rt):
    status, _, _, _ = http_get(rt.port, "/nope")
    assert status == 404


def test_root_path_returns_404(rt):
    status, _, _, _ = http_get(rt.port, "/")
    assert status == 404


def test_upgrade_on_unknown_path_returns_404(rt):
    status, _, _, _ = http_raw(rt.port, upgrade_request(rt.port, "/other"))
    assert status == 404


def test_plain_get_on_ws_returns_426(rt):
    status, _, _, _ = http_get(rt.port, "/ws")
    assert status == 426


def test_bad_websocket_version_returns_426_with_version_header(rt):
    status, headers, _, _ = http_raw(rt.port,
                                     upgrade_request(rt.port, version="8"))
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    # whoever sends Upgrade lists it in Connection (RFC 9110 7.8)
    assert headers.get("upgrade") == "websocket"
    assert [t.strip().lower() for t in headers.get("connection").split(",")] == \
        ["upgrade", "close"], headers


def test_post_on_ws_returns_405(rt):
    req = upgrade_request(rt.port, method="POST")
    status, headers, _, _ = http_raw(rt.port, req)
    assert status == 405 and headers.get("allow") == "GET", headers


def test_unknown_method_returns_501(rt):
    """RFC 9110 9.1: a method the server does not know is a 501; a known
    one an endpoint does not take stays a 405 with Allow."""
    for path in ("/ws", "/health", "/nope"):
        req = b"FOO %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()
        status, headers, body, _ = http_raw(rt.port, req)
        assert status == 501, (path, status, headers)
        assert b"Not Implemented" in body
    status, headers, _, _ = http_raw(rt.port, b"PUT /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and headers.get("allow") == "GET, HEAD", headers


def test_http10_without_upgrade_returns_426(rt):
    """PROTOCOL.md: a non-upgrade request to /ws answers 426, HTTP/1.0 too
    (an HTTP/1.0 upgrade is a 400: RFC 6455 4.1 wants 1.1)."""
    status, headers, _, _ = http_raw(rt.port, b"GET /ws HTTP/1.0\r\n\r\n")
    assert status == 426, (status, headers)
    assert headers.get("upgrade") == "websocket"


def test_head_is_get_without_the_body(rt):
    """HEAD /health, /health/live, /metrics: GET's status and headers,
    Content-Length included, and no body (RFC 9110 9.3.2), as a balancer's
    health check (HAProxy's HEAD) expects."""
    for path in ("/health", "/health/live", "/metrics"):
        st, hd, body, _ = http_get(rt.port, path)
        s = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
        try:
            s.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
            got, how = proclib.read_to_eof(s, 5)
            assert how == "eof", how
        finally:
            s.close()
        head, _, rest = got.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        assert status == st, (path, head)
        assert rest == b"", (path, rest[:100])
        lens = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        assert lens and int(lens[0].split(b":")[1]) > 0, head


def test_empty_line_before_the_request_is_ignored(rt):
    st, _, body, _ = http_raw(rt.port, b"\r\nGET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200, body


def test_absolute_form_target_is_served(rt):
    st, _, body, _ = http_raw(rt.port, b"GET http://x/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200, body
    st, _, _, _ = http_raw(rt.port, b"GET /health#f HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 400
    st, _, _, _ = http_raw(rt.port, b"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n")
    assert st == 400


def test_missing_websocket_key_returns_400(rt):
    req = upgrade_request(rt.port, drop=("Sec-WebSocket-Key",))
    status, _, _, _ = http_raw(rt.port, req)
    assert status == 400


@pytest.mark.parametrize("key", ["short", "dGhpcyBpcyAxNyBieXRlcyE=",
                                 "!!!!!!!!!!!!!!!!!!!!!!=="])
def test_invalid_websocket_key_returns_400(rt, key):
    status, _, _, _ = http_raw(rt.port, upgrade_request(rt.port, key=key))
    assert status == 400


@pytest.mark.parametrize("path", ["/ws%zz", "/ws%", "/w%7"])
def test_bad_percent_encoding_in_path_returns_400(rt, path):
    # RFC 3986 2.1 (nginx too): a bad request, not an unknown path
    status, _, _, _ = http_raw(rt.port, upgrade_request(rt.port, path))
    assert status == 400
    status, _, _, _ = http_get(rt.port, "/health" + path[path.index("%"):])
    assert status == 400


@pytest.mark.parametrize("proto", ["token-a b", "chat, {x}", "a/b"])
def test_subprotocol_that_is_no_token_returns_400(rt, proto):
    # RFC 6455 4.1: each offered subprotocol is a token
    req = upgrade_request(rt.port, extra=[("Sec-WebSocket-Protocol", proto)])
    status, _, _, _ = http_raw(rt.port, req)
    assert status == 400


def test_malformed_request_returns_400_and_closes(rt):
    status, _, _, closed = http_raw(rt.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert status == 400
    assert closed


def test_missing_host_returns_400(rt):
    status, _, _, _ = http_raw(rt.port, b"GET /health HTTP/1.1\r\n\r\n")
    assert status == 400


def test_oversized_request_head_returns_431(rt):
    req = ("GET /ws HTTP/1.1\r\nHost: x\r\nX-Filler: %s\r\n\r\n"
           % ("a" * 10000)).encode()
    status, _, _, _ = http_raw(rt.port, req)
    assert status == 431


def test_request_head_just_under_limit_is_served(rt):
    head = "GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: %s\r\n\r\n"
    pad = 8192 - len(head % "") - 64
    status, _, _, _ = http_raw(rt.port, (head % ("a" * pad)).encode())
    assert status in (200, 503)


def test_handshake_returns_correct_accept_key(rt):
    ws = RawWS(rt.port)
    try:
        assert ws.headers.get("sec-websocket-accept") == \
            rtlib.accept_key(ws.key)
        assert ws.headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in ws.headers.get("connection", "").lower()
    finally:
        ws.close_socket()


def test_handshake_accept_key_matches_rfc_example(rt):
    s = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
    try:
        s.sendall(upgrade_request(rt.port, key="dGhlIHNhbXBsZSBub25jZQ=="))
        status, headers, _, _ = rtlib.read_http_response(s, read_all=False)
        assert status == 101
        assert headers["sec-websocket-accept"] == \
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    finally:
        s.close()


def test_handshake_declines_unknown_extensions(rt):
    ws = RawWS(rt.port, headers={
        "Sec-WebSocket-Extensions": "x-webkit-deflate-frame, x-other; a=1"})
    try:
        assert "sec-websocket-extensions" not in ws.headers
    finally:
        ws.close_socket()


def test_handshake_accepts_permessage_deflate(rt):
    # compression is on by default (test_compression.py has the rest)
    ws = RawWS(rt.port, headers={
        "Sec-WebSocket-Extensions":
        "permessage-deflate; client_max_window_bits"})
    try:
        assert ws.headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_no_context_takeover; "
            "client_no_context_takeover")
    finally:
        ws.close_socket()


def test_handshake_without_token_selects_no_subprotocol(rt):
    ws = RawWS(rt.port, headers={"Sec-WebSocket-Protocol": "chat, superchat"})
    try:
        assert "sec-websocket-protocol" not in ws.headers
    finally:
        ws.close_socket()


def test_origin_not_allowed_returns_403(rt):
    req = upgrade_request(rt.port, extra=[("Origin", "https://evil.example")])
    status, _, _, _ = http_raw(rt.port, req)
    assert status == 403


@pytest.mark.parametrize("origin", ["https://a.example", "https://b.example"])
def test_allowed_origin_upgrades(rt, origin):
    ws = RawWS(rt.port, headers={"Origin": origin})
    ws.close_socket()


def test_any_origin_allowed_when_not_configured(start_daemon):
    d = start_daemon()
    ws = RawWS(d.port, headers={"Origin": "https://whatever.example"})
    ws.close_socket()


def test_idle_connection_closed_after_handshake_timeout(start_daemon):
    """A request still incomplete after handshake_timeout is dropped then,
    not before, with nothing sent (or a 408), and counted as a handshake
    timeout; a connection that finished its handshake meanwhile stays."""
    d = start_daemon({"handshake_timeout": "1s"})
    sock = d.conf["admin_socket"]

    def timeouts():
        return rtlib.admin(sock, "stats")["stats"]["handshake_timeouts"]
    assert timeouts() == 0
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        done = rtlib.Client(d.port)     # upgraded well within the timeout
        s.settimeout(4)
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert 0.9 <= elapsed < 4, "closed after %.2fs, handshake_timeout 1s" % elapsed
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data
    rtlib.wait_for(lambda: timeouts() == 1, 2, "handshake_timeouts 1")
    assert "handshake timeout" in d.log()
    assert done.alive(), "an upgraded connection was closed by handshake_timeout"
    done.close()


# ---------------------------------------------------------------- /health

def test_health_reports_ok_json_shape(start_daemon, redis_server):
    d = start_daemon({"redis_url": redis_server.url})
    rtlib.skip_if_redis_disabled(d.port)
    deadline = time.monotonic() + 5
    while True:
        status, headers, body, _ = http_get(d.port, "/health")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200
    assert headers.get("content-type", "").startswith("application/json")
    h = json.loads(body)
    assert h["status"] == "ok"
    assert h["service"] == "realtime"
    assert h["redis"] == "up"
    assert h["workers"] == 1
    for k in ("connections", "authenticated", "activeChannels"):
        assert isinstance(h[k], int) and not isinstance(h[k], bool), k
        assert h[k] == 0, k
    assert TS_RE.match(h["timestamp"]), h["timestamp"]


def test_health_reports_worker_count(start_daemon):
    d = start_daemon({"workers": "2"})
    rtlib.skip_if_single_worker(d.port, 2)
    _, _, body, _ = http_get(d.port, "/health")
    assert json.loads(body)["workers"] == 2


def test_health_degraded_503_while_redis_unreachable(start_daemon):
    d = start_daemon({"redis_url": "redis://127.0.0.1:%d" % rtlib.free_port()})
    rtlib.skip_if_redis_disabled(d.port)
    deadline = time.monotonic() + 5
    while True:
        status, _, body, _ = http_get(d.port, "/health")
        if status == 503 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 503
    h = json.loads(body)
    assert h["status"] == "degraded"
    assert h["redis"] == "down"
    assert h["service"] == "realtime"
    # the log says why, at once, and not at every retry
    rtlib.wait_for(lambda: "cannot connect" in d.log(), 5, "a cannot-connect line")
    time.sleep(1.5)
    assert d.log().count("cannot connect") == 1, d.log()


def _poll_health(port, pred, timeout=3):
    deadline = time.monotonic() + timeout
    while True:
        _, _, body, _ = http_get(port, "/health")
        h = json.loads(body)
        if pred(h) or time.monotonic() > deadline:
            return h
        time.sleep(0.05)


def test_health_ok_200_when_redis_is_up(start_daemon):
    r = start_daemon.redis()
    d = start_daemon(conf={"redis_url": "redis://127.0.0.1:%d" % r.port})
    deadline = time.monotonic() + 10
    while True:
        status, _, body, _ = http_get(d.port, "/health")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    h = json.loads(body)
    assert status == 200
    assert h["status"] == "ok"
    assert h["redis"] == "up"
    assert "reason" not in h
    assert h["service"] == "realtime"
    assert TS_RE.match(h["timestamp"])


def test_health_counts_connections_and_active_channels(start_daemon):
    d = start_daemon()
    anon = RawWS(d.port)
    user = RawWS(d.port + 0, path="/ws?token=" + rtlib.mint(userId="hu1"))
    try:
        assert anon.recv_json()["type"] == "connected"
        assert user.recv_json()["type"] == "connected"
        anon.send_json({"type": "subscribe", "channel": "announcements"})
        assert anon.recv_json()["type"] == "subscribed"
        for ch in ("announcements", "apps:created", "user:hu1"):
            user.send_json({"type": "subscribe", "channel": ch})
            assert user.recv_json()["type"] == "subscribed"
        h = _poll_health(d.port, lambda h: h["connections"] == 2
                         and h["activeChannels"] == 3)
        assert h["connections"] == 2
        assert h["authenticated"] == 1
        assert h["activeChannels"] == 3
    finally:
        anon.close_socket()
        user.close_socket()
    h = _poll_health(d.port, lambda h: h["connections"] == 0
                     and h["activeChannels"] == 0)
    assert h["connections"] == 0
    assert h["activeChannels"] == 0


# ------------------------------------------------- handshake robustness

def test_426_carries_upgrade_websocket_header(rt):
    status, headers, _, _ = http_get(rt.port, "/ws")
    assert status == 426
    assert headers.get("upgrade", "").lower() == "websocket"


def test_http10_upgrade_returns_400(rt):
    req = upgrade_request(rt.port).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    status, _, _, _ = http_raw(rt.port, req)
    assert status == 400


def test_firefox_style_connection_header_upgrades(rt):
    req = upgrade_request(rt.port, drop=("Connection",),
                          extra=[("Connection", "keep-alive, Upgrade")])
    status, headers, _, _ = http_raw(rt.port, req, read_all=False)
    assert status == 101


def test_header_names_and_upgrade_token_are_case_insensitive(rt):
    req = (b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\n"
           b"connection: upgrade\r\nsec-websocket-key: "
           b"dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
    status, headers, _, _ = http_raw(rt.port, req, read_all=False)
    assert status == 101
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_sent_byte_by_byte_upgrades(rt):
    s = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in upgrade_request(rt.port):
            s.send(bytes([b]))
        status, _, rest, _ = rtlib.read_http_response(s, read_all=False)
        assert status == 101
    finally:
        s.close()


def test_first_frame_in_same_packet_as_handshake_is_processed(rt):
    s = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
    try:
        frame = bytes([0x81, 0x80 | 15]) + b"\x00\x00\x00\x00" + \
            b'{"type":"ping"}'
        s.sendall(upgrade_request(rt.port) + frame)
        status, _, rest, _ = rtlib.read_http_response(s, read_all=False)
        assert status == 101
        ws = RawWS.__new__(RawWS)
        ws.sock, ws.buf = s, rest
        assert ws.recv_json()["type"] == "connected"
        assert ws.recv_json()["type"] == "pong"
    finally:
        s.close()


def test_query_token_among_other_parameters_is_found(rt):
    ws = RawWS(rt.port, path="/ws?v=2&token=%s&x=y" % rtlib.mint(userId="qp"))
    try:
        hello = ws.recv_json()
        assert hello["type"] == "connected"
        assert hello["user"]["userId"] == "qp"
    finally:
        ws.close_socket()


def test_health_rejects_post_or_answers_it(rt):
    req = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    status, _, _, _ = http_raw(rt.port, req)
    assert status in (200, 405)


def test_many_connections_in_a_row_do_not_leak(start_daemon):
    d = start_daemon()
    for _ in range(50):
        ws = RawWS(d.port)
        assert ws.recv_json()["type"] == "connected"
        ws.close_socket()
    h = _poll_health(d.port, lambda h: h["connections"] == 0)
    assert h["connections"] == 0
