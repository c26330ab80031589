"""TLS (wss://): clients over the TLS listener (auth by each method,
subscribe, Redis events, big messages), protocol versions, ALPN, session
resumption, junk on the TLS port, startup with a bad key pair, certificate
reload on SIGHUP under load, and a headless Chromium client.

Every daemon here keeps its plain listener too: the harness probes the plain
port's /health for readiness.
"""
import asyncio
import hashlib
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import websockets

import chaoslib
import rtlib
import tlslib

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Two unrelated CA + server pairs (EC and RSA) and a third pair whose
    key serves as 'the key of another certificate'."""
    d = str(tmp_path_factory.mktemp("tls-certs"))
    return {
        "a": tlslib.make_certs(os.path.join(d, "a"), "ec"),
        "b": tlslib.make_certs(os.path.join(d, "b"), "rsa"),
        "c": tlslib.make_certs(os.path.join(d, "c"), "ec"),
    }


def start_tls(start_daemon, pair, redis=None, **conf):
    c = tlslib.tls_conf(pair, **conf)
    if redis is not None:
        c["redis_url"] = redis.url
    return start_daemon(conf=c)


def ctx_for(*pairs):
    return tlslib.client_ctx(*[p.ca for p in pairs])


async def connect(url, ctx, **kw):
    return await websockets.connect(url, ssl=ctx, open_timeout=5,
                                    close_timeout=2, **kw)


async def expect_connected(ws, user="u1"):
    m = await rtlib.recv_json(ws)
    assert m["type"] == "connected", m
    assert m["user"]["userId"] == user, m
    return m


async def subscribe(ws, channel):
    m = await rtlib.request(ws, {"type": "subscribe", "channel": channel})
    # the channel's position (history) comes too: epoch and offset
    assert {k: v for k, v in m.items() if k not in ("epoch", "offset")} == \
        {"type": "subscribed", "channel": channel, "timestamp": m.get("timestamp")}, m
    assert isinstance(m.get("epoch", ""), str) and m.get("offset", 0) >= 0, m
    return m


# ------------------------------------------------- clients over wss://

def test_health_answers_over_https_on_the_tls_port(start_daemon, certs):
    d = start_tls(start_daemon, certs["a"])
    st, hd, body = tlslib.https_get(tlslib.tls_port(d), "/health",
                                    ctx_for(certs["a"]))
    assert st in (200, 503), (st, body)
    h = json.loads(body)
    assert h["service"] == "realtime" and "connections" in h, h


def test_wss_query_token_connects_subscribes_and_gets_a_redis_event(
        start_daemon, certs):
    r = start_daemon.redis()
    d = start_tls(start_daemon, certs["a"], redis=r)
    tok = rtlib.mint(userId="tls-q")

    async def main():
        ws = await connect(tlslib.wss_url(d, query="?token=" + tok),
                           ctx_for(certs["a"]))
        try:
            c = await expect_connected(ws, "tls-q")
            assert "user:tls-q" in c["authorizedChannels"], c
            await subscribe(ws, "apps:created")
            ev = await tlslib.wait_event(ws, r, "apps:created",
                                         {"id": 7, "via": "tls"})
            assert ev["data"] == {"id": 7, "via": "tls"}, ev
            assert rtlib.TS_RE.match(ev["timestamp"]), ev
        finally:
            await ws.close()
    rtlib.arun(main())


def test_wss_bearer_header_authenticates(start_daemon, certs):
    d = start_tls(start_daemon, certs["a"])
    tok = rtlib.mint(userId="tls-bearer")

    async def main():
        ws = await connect(tlslib.wss_url(d), ctx_for(certs["a"]),
                           extra_headers={"Authorization": "Bearer " + tok})
        try:
            await expect_connected(ws, "tls-bearer")
            await subscribe(ws, "users:created")
            m = await rtlib.request(ws, {"type": "ping"})
            assert m["type"] == "pong", m
        finally:
            await ws.close()
    rtlib.arun(main())


def test_wss_token_subprotocol_authenticates_and_is_echoed(
        start_daemon, certs):
    d = start_tls(start_daemon, certs["a"])
    tok = rtlib.mint(userId="tls-sub")
    proto = "token-" + tok

    async def main():
        ws = await connect(tlslib.wss_url(d), ctx_for(certs["a"]),
                           subprotocols=[proto])
        try:
            assert ws.subprotocol == proto
            await expect_connected(ws, "tls-sub")
            await subscribe(ws, "user:tls-sub")
        finally:
            await ws.close()
    rtlib.arun(main())


def test_wss_echo_endpoint_carries_1mib_messages_both_ways(
        start_daemon, certs):
    d = start_tls(start_daemon, certs["a"], echo_path="/echo",
                  max_message_size="2m")
    text = "".join(chr(0x41 + i % 26) for i in range(1 << 20))
    blob = os.urandom(1 << 20)

    async def main():
        ws = await connect(tlslib.wss_url(d, "/echo"), ctx_for(certs["a"]),
                           max_size=4 << 20)
        try:
            await ws.send(text)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(got, str) and len(got) == len(text)
            assert got == text
            await ws.send(blob)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(got, bytes) and len(got) == len(blob)
            assert hashlib.sha256(got).digest() == \
                hashlib.sha256(blob).digest()
        finally:
            await ws.close()
    rtlib.arun(main(), timeout=30)


# ------------------------------------------------- openssl s_client

@pytest.fixture
def tls_default(start_daemon, certs):
    return start_tls(start_daemon, certs["a"], workers="2")


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_tls10_and_tls11_are_refused(tls_default, certs, flag):
    # SECLEVEL=0: make sure it is the server, not the client, refusing
    rc, out = tlslib.s_client(tlslib.tls_port(tls_default), flag,
                              "-cipher", "DEFAULT@SECLEVEL=0",
                              cafile=certs["a"].ca)
    kind, proto, cipher = tlslib.negotiated(out)
    assert rc != 0, out
    assert cipher in (None, "(NONE)") and proto in (None, "(NONE)"), out


@pytest.mark.parametrize("flag,proto", [("-tls1_2", "TLSv1.2"),
                                        ("-tls1_3", "TLSv1.3")])
def test_tls12_and_tls13_are_accepted_with_a_verified_chain(
        tls_default, certs, flag, proto):
    rc, out = tlslib.s_client(tlslib.tls_port(tls_default), flag,
                              "-verify_return_error", cafile=certs["a"].ca)
    kind, got, cipher = tlslib.negotiated(out)
    assert (kind, got) == ("New", proto), out
    assert "Verify return code: 0 (ok)" in out, out


def test_alpn_http11_is_answered(tls_default, certs):
    rc, out = tlslib.s_client(tlslib.tls_port(tls_default),
                              "-alpn", "http/1.1", cafile=certs["a"].ca)
    assert "ALPN protocol: http/1.1" in out, out


@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
def test_session_ticket_resumption_across_workers(tls_default, certs,
                                                  tmp_path, flag):
    """Tickets are shared by the workers: every resumption attempt (they
    land on either worker) is 'Reused'."""
    port = tlslib.tls_port(tls_default)
    sess = str(tmp_path / "sess.pem")
    rc, out = tlslib.s_client(port, flag, "-sess_out", sess,
                              stdin_delay=0.5, cafile=certs["a"].ca)
    assert tlslib.negotiated(out)[0] == "New", out
    assert os.path.getsize(sess) > 0
    for i in range(6):
        rc, out = tlslib.s_client(port, flag, "-sess_in", sess,
                                  cafile=certs["a"].ca)
        assert tlslib.negotiated(out)[0] == "Reused", \
            "attempt %d not resumed:\n%s" % (i, out)


def test_tls12_session_id_resumption_without_tickets(start_daemon, certs,
                                                     tmp_path):
    """TLS 1.2 session ids (no ticket extension), one worker: the
    server-side session cache resumes the session."""
    d = start_tls(start_daemon, certs["a"], workers="1")
    port = tlslib.tls_port(d)
    sess = str(tmp_path / "sess.pem")
    rc, out = tlslib.s_client(port, "-tls1_2", "-no_ticket",
                              "-sess_out", sess, cafile=certs["a"].ca)
    assert tlslib.negotiated(out)[0] == "New", out
    for i in range(2):
        rc, out = tlslib.s_client(port, "-tls1_2", "-no_ticket",
                                  "-sess_in", sess, cafile=certs["a"].ca)
        assert tlslib.negotiated(out)[0] == "Reused", \
            "attempt %d not resumed:\n%s" % (i, out)


def test_tls13_only_server_refuses_tls12(start_daemon, certs):
    d = start_tls(start_daemon, certs["a"], tls_protocols="TLSv1.3")
    port = tlslib.tls_port(d)
    rc, out = tlslib.s_client(port, "-tls1_2", cafile=certs["a"].ca)
    assert rc != 0 and tlslib.negotiated(out)[1] in (None, "(NONE)"), out
    rc, out = tlslib.s_client(port, "-tls1_3", cafile=certs["a"].ca)
    assert tlslib.negotiated(out)[:2] == ("New", "TLSv1.3"), out


# ------------------------------------------------- junk on the TLS port

def read_to_eof(sock, timeout):
    """(True, seconds) when the server closes within timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True, time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True, time.monotonic() - t0
    return False, time.monotonic() - t0


def assert_worker_fine(d, pair, kids_before):
    """A normal wss client still connects; no child was replaced."""
    async def main():
        ws = await connect(tlslib.wss_url(d, query="?token=" +
                                          rtlib.mint(userId="after")),
                           ctx_for(pair))
        try:
            await expect_connected(ws, "after")
        finally:
            await ws.close()
    for _ in range(4):      # several: land on every worker
        rtlib.arun(main())
    assert d.alive()
    assert tlslib.children(d.proc.pid) == kids_before, \
        "daemon children changed (a worker died?)"


JUNK = {
    "garbage": b"\x00\xffthis is not TLS\r\n" + bytes(range(256)) * 4,
    "plain_http": b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "upgrade": (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket"
                b"\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
}


@pytest.mark.parametrize("what", sorted(JUNK))
def test_non_tls_bytes_on_the_tls_port_are_closed_cleanly(
        start_daemon, certs, what):
    d = start_tls(start_daemon, certs["a"], workers="2",
                  tls_handshake_timeout="5s")
    kids = tlslib.wait_children(d.proc.pid, 2)
    port = tlslib.tls_port(d)
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(JUNK[what])
            closed, took = read_to_eof(s, 4)
            assert closed, "TLS port kept a %s connection open %.1fs" \
                % (what, took)
    assert_worker_fine(d, certs["a"], kids)


def test_plain_http_on_the_tls_port_is_told_so(start_daemon, certs):
    """As nginx does: a plain HTTP request on the TLS port gets a plain 400
    that says why, not a bare reset."""
    d = start_tls(start_daemon, certs["a"], workers="1")
    port = tlslib.tls_port(d)
    for what in ("plain_http", "upgrade"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(JUNK[what])
            got = b""
            while True:
                try:
                    b = s.recv(4096)
                except ConnectionResetError:
                    break
                if not b:
                    break
                got += b
        assert got.startswith(b"HTTP/1.1 400 "), (what, got)
        assert got.endswith(b"plain HTTP request came to the TLS port\n"), got
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(JUNK["garbage"])
        closed, _ = read_to_eof(s, 4)
        assert closed


def test_stalled_handshake_is_closed_after_tls_handshake_timeout(
        start_daemon, certs):
    d = start_tls(start_daemon, certs["a"], workers="1",
                  tls_handshake_timeout="1s", handshake_timeout="10s")
    kids = tlslib.wait_children(d.proc.pid, 1)
    port = tlslib.tls_port(d)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5)
             for _ in range(3)]
    try:
        results = [read_to_eof(s, 4.0) for s in socks]
    finally:
        for s in socks:
            s.close()
    for closed, took in results:
        assert closed, "stalled TLS handshake still open after %.1fs" % took
    # the first one waited the whole timeout; the others were checked after
    assert 0.7 <= results[0][1] <= 2.8, results
    assert_worker_fine(d, certs["a"], kids)


def test_stalled_partial_client_hello_is_closed_too(start_daemon, certs):
    d = start_tls(start_daemon, certs["a"], workers="1",
                  tls_handshake_timeout="1s", handshake_timeout="10s")
    kids = tlslib.wait_children(d.proc.pid, 1)
    with socket.create_connection(("127.0.0.1", tlslib.tls_port(d)),
                                  timeout=5) as s:
        # a handshake record header announcing 512 bytes, then 5 of them
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")
        closed, took = read_to_eof(s, 4.0)
    assert closed and 0.7 <= took <= 2.8, (closed, took)
    assert_worker_fine(d, certs["a"], kids)


# ------------------------------------------------- startup with a bad key

def _bad_key_setup(certs, case):
    """(config path, expected message regex, run-as uid or None)."""
    # not under pytest's 0700 tmp dir: an unprivileged run must read it
    d = tempfile.mkdtemp(prefix="rt-tls-badkey-")
    os.chmod(d, 0o755)
    a = certs["a"]
    cert = os.path.join(d, "server.pem")
    shutil.copyfile(a.cert, cert)
    os.chmod(cert, 0o644)
    uid = None
    if case == "missing":
        key = os.path.join(d, "missing.key")
        want = re.escape(key) + r".*(No such file|not found|missing)"
    elif case == "unreadable":
        key = os.path.join(d, "server.key")
        shutil.copyfile(a.key, key)
        os.chmod(key, 0)
        want = re.escape(key) + r".*(Permission denied|not readable|cannot)"
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root and no setpriv(1) to drop "
                            "privileges: a 0000 key is readable by root")
            uid = 65534
            os.chown(d, uid, uid)       # its pidfile goes here
    elif case == "encrypted":   # a passphrase-protected PEM key
        key = os.path.join(d, "enc.key")
        subprocess.run(["openssl", "pkey", "-in", a.key, "-aes256", "-passout",
                        "pass:secret", "-out", key], check=True)
        os.chmod(key, 0o644)
        want = re.escape(key) + r".*encrypted.*passphrase is not supported"
    else:   # mismatched: the key of another certificate (EC like a's, or RSA)
        key = os.path.join(d, "other.key")
        other = certs["c"] if case == "mismatched_same_type" else certs["b"]
        shutil.copyfile(other.key, key)
        os.chmod(key, 0o644)
        want = r"(?i)(does not match|mismatch)"
    conf = os.path.join(d, "realtimed.conf")
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1:%d\n" % rtlib.free_port())
        f.write("listen_tls 127.0.0.1:%d\n" % rtlib.free_port())
        f.write("workers 1\njwt_algorithm HS256\njwt_secret %s\n"
                % rtlib.SECRET)
        f.write("tls_certificate %s\ntls_certificate_key %s\n" % (cert, key))
        f.write("pidfile %s\n" % os.path.join(d, "realtimed.pid"))
    os.chmod(conf, 0o644)
    return d, conf, want, uid


@pytest.mark.parametrize("mode", ["run", "test"])
# (a terminal on stdin matters only to a passphrase prompt)
@pytest.mark.parametrize("case, tty", [
    ("missing", False), ("unreadable", False), ("mismatched_same_type", False),
    ("mismatched_other_type", False), ("encrypted", False), ("encrypted", True)],
    ids=["missing", "unreadable", "mismatched_same_type", "mismatched_other_type",
         "encrypted", "encrypted_tty"])
def test_startup_with_a_bad_key_fails_with_exit_1_and_says_why(
        certs, case, tty, mode):
    d, conf, want, uid = _bad_key_setup(certs, case)
    master = slave = None
    try:
        cmd = [rtlib.realtimed_bin()]
        cmd += ["-f", "-d", "-c", conf] if mode == "run" else ["-t", "-c", conf]
        if uid is not None:
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                   "--clear-groups"] + cmd
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("REALTIMED_") and k not in
               ("JWT_SECRET", "REDIS_URL")}
        if tty:
            # stdin a terminal: OpenSSL's own prompt would wait on it forever
            master, slave = pty.openpty()
        p = subprocess.Popen(cmd, stdin=slave if tty else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env=env, cwd=d)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=5)
            pytest.fail("realtimed %s kept running with a %s key:\n%s"
                        % (mode, case, out.decode("utf-8", "replace")))
        text = out.decode("utf-8", "replace")
        assert p.returncode == 1, (p.returncode, text)
        assert re.search(want, text), "no clear message (%s) in:\n%s" \
            % (want, text)
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        shutil.rmtree(d, ignore_errors=True)


def test_a_certificate_over_what_a_reload_carries_is_refused_at_start(certs, tmp_path):
    """The certificate and key together may take 196604 bytes, what one
    reload message carries to the workers: more is refused by -t (and at
    start), not taken at start and then refused by every reload."""
    a = certs["a"]
    with open(a.cert) as f:
        pem = f.read()
    for pad, ok in ((150 * 1024, True), (200 * 1024, False)):
        cert = str(tmp_path / ("big-%d.pem" % pad))
        with open(cert, "w") as f:
            f.write(("# padding, outside any PEM block\n" * (pad // 34)) + pem)
        conf = str(tmp_path / "realtimed.conf")
        with open(conf, "w") as f:
            f.write("listen_tls 127.0.0.1:%d\njwt_secret %s\n"
                    "tls_certificate %s\ntls_certificate_key %s\n"
                    % (rtlib.free_port(), rtlib.SECRET, cert, a.key))
        p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", conf],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        text = (p.stdout + p.stderr).decode("utf-8", "replace")
        if ok:
            assert p.returncode == 0, text
        else:
            assert p.returncode == 1 and "over 196604" in text, text


def test_a_bad_cipher_setting_is_named_not_the_certificate(certs, tmp_path):
    a = certs["a"]
    conf = str(tmp_path / "realtimed.conf")
    with open(conf, "w") as f:
        f.write("listen_tls 127.0.0.1:%d\njwt_secret %s\ntls_certificate %s\n"
                "tls_certificate_key %s\ntls_ciphersuites TLS_NO_SUCH_SUITE\n"
                % (rtlib.free_port(), rtlib.SECRET, a.cert, a.key))
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", conf],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    line = [l for l in text.splitlines() if "tls_ciphersuites" in l]
    assert p.returncode == 1 and line, text
    assert a.cert not in line[0], line[0]


# ------------------------------------------------- certificate reload

NCLIENTS = 200
CHANNEL = "deployments:status"


def test_certificate_reload_under_load_keeps_clients_and_serves_new_cert(
        start_daemon, certs, tmp_path):
    a, b = certs["a"], certs["b"]
    r = start_daemon.redis()
    d = start_tls(start_daemon, a, redis=r, workers="2",
                  max_connections_per_ip="1000")
    port = tlslib.tls_port(d)
    master = d.proc.pid
    kids = tlslib.wait_children(master, 2)
    both = ctx_for(a, b)
    assert tlslib.peer_fingerprint(port, both) == a.fingerprint()

    async def main():
        ctx = ctx_for(a)
        url = tlslib.wss_url(d)
        sem = asyncio.Semaphore(20)

        async def one(i):
            async with sem:
                ws = await connect(url + "?token=" + rtlib.mint(
                    userId="load-%d" % i), ctx)
                await expect_connected(ws, "load-%d" % i)
                await subscribe(ws, CHANNEL)
                return ws
        clients = await asyncio.gather(*[one(i) for i in range(NCLIENTS)])
        seen = [[] for _ in clients]
        warm = [0] * len(clients)
        closed = [None] * len(clients)

        async def reader(i, ws):
            try:
                async for m in ws:
                    m = json.loads(m)
                    if m.get("type") != "event":
                        continue
                    n = m["data"]["n"]
                    if n < 0:
                        warm[i] += 1
                    else:
                        seen[i].append(n)
            except websockets.ConnectionClosed as e:
                closed[i] = "closed %s %s" % (e.code, e.reason)
            else:
                closed[i] = "closed %s" % ws.close_code

        readers = [asyncio.ensure_future(reader(i, ws))
                   for i, ws in enumerate(clients)]
        loop = asyncio.get_running_loop()

        def pub(n):
            return loop.run_in_executor(None, r.command, "PUBLISH", CHANNEL,
                                        json.dumps({"n": n}))
        try:
            # the bridge subscribes to Redis asynchronously: warm up first
            t0 = time.monotonic()
            while not all(warm):
                assert time.monotonic() - t0 < 15, \
                    "%d/%d clients never got a warm-up event" \
                    % (warm.count(0), len(warm))
                await pub(-1)
                await asyncio.sleep(0.2)
            total = 60          # 3 s at 50 ms
            for n in range(total):
                await pub(n)
                if n == 20:
                    tlslib.rewrite_conf(d, tls_certificate=b.cert,
                                        tls_certificate_key=b.key)
                    os.kill(master, signal.SIGHUP)
                await asyncio.sleep(0.05)
            t0 = time.monotonic()
            while any(len(s) < total for s in seen) and \
                    time.monotonic() - t0 < 10:
                assert not any(closed), [c for c in closed if c][:5]
                await asyncio.sleep(0.1)
            want = list(range(total))
            bad = [(i, s[:3], len(s)) for i, s in enumerate(seen)
                   if s != want]
            assert not bad, "%d clients missed or reordered events: %r" \
                % (len(bad), bad[:5])
            assert not any(closed), [c for c in closed if c][:5]
            # the established connections still talk
            for ws in clients[:10]:
                await ws.send(json.dumps({"type": "ping"}))
        finally:
            for ws in clients:
                await ws.close()
            for t in readers:
                t.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    rtlib.arun(main(), timeout=90)
    # new connections (every worker) present the new certificate
    assert tlslib.wait_fingerprint(port, both, b.fingerprint()) == \
        b.fingerprint()
    for _ in range(8):
        assert tlslib.peer_fingerprint(port, both) == b.fingerprint()
    # the new chain verifies with only the new CA
    assert tlslib.peer_fingerprint(port, ctx_for(b)) == b.fingerprint()
    assert tlslib.children(master) == kids, "workers were replaced"


@pytest.mark.parametrize("bad", ["garbage", "mismatched_key", "missing"])
def test_reload_with_a_bad_certificate_keeps_serving_the_current_one(
        start_daemon, certs, tmp_path, bad):
    a, b = certs["a"], certs["b"]
    live = a.copy_to(str(tmp_path / "live"))
    d = start_tls(start_daemon, live, workers="2")
    port = tlslib.tls_port(d)
    master = d.proc.pid
    both = ctx_for(a, b)
    kids = tlslib.wait_children(master, 2)
    # a good reload by overwriting the files in place: b is served
    b.copy_to(live.dir)
    os.kill(master, signal.SIGHUP)
    assert tlslib.wait_fingerprint(port, both, b.fingerprint()) == \
        b.fingerprint()

    # an established wss connection through the bad reload
    async def hold():
        ws = await connect(tlslib.wss_url(d, query="?token=" +
                                          rtlib.mint(userId="keep")),
                           ctx_for(b))
        await expect_connected(ws, "keep")
        return ws
    loop = asyncio.new_event_loop()
    try:
        ws = loop.run_until_complete(asyncio.wait_for(hold(), 10))
        logsize = len(d.log())
        if bad == "garbage":
            with open(live.cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nnot a cert\n"
                        "-----END CERTIFICATE-----\n")
        elif bad == "mismatched_key":
            shutil.copyfile(a.cert, live.cert)   # b's key stays: mismatch
        else:
            tlslib.rewrite_conf(d, tls_certificate=live.cert + ".missing")
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "keeping the old configuration" not in d.log()[logsize:]:
            assert time.monotonic() < deadline, \
                "no 'keeping the old configuration' in the log:\n%s" \
                % d.log()[logsize:]
            time.sleep(0.05)
        time.sleep(0.3)
        for _ in range(8):
            assert tlslib.peer_fingerprint(port, both) == b.fingerprint()
        m = loop.run_until_complete(rtlib.request(ws, {"type": "ping"}))
        assert m["type"] == "pong", m
        loop.run_until_complete(ws.close())
    finally:
        loop.close()
    assert d.alive() and tlslib.children(master) == kids


# ------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_DIR = os.path.join(HERE, "browser")


class PageServer:
    """The browser page over http on a free loopback port (the daemon only
    serves /health and /ws).  The page POSTs its outcome to /result; its
    <img src="/hold"> is answered only then, so the load event, and with it
    --dump-dom, waits for the outcome."""

    def __init__(self, page_html):
        import http.server
        import threading
        self.result = None
        self.got = threading.Event()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, ctype, body):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/page.html":
                    self._send(200, "text/html; charset=utf-8",
                               page_html.encode())
                elif self.path == "/hold":
                    outer.got.wait(40)
                    self._send(200, "image/gif", GIF)
                else:
                    self._send(404, "text/plain", b"no")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                if self.path == "/result":
                    outer.result = self.rfile.read(n).decode()
                    outer.got.set()
                    self._send(204, "text/plain", b"")
                else:
                    self._send(404, "text/plain", b"no")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.got.set()
        self.httpd.shutdown()
        self.httpd.server_close()


GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!"
       b"\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00"
       b"\x00\x02\x02D\x01\x00;")


def chromium_page_event(d, r, channel, data):
    """Headless Chromium's own WebSocket connects to d over wss://,
    subscribes to channel while data is published to Redis until the page
    reports: the page's result (its messages, the last the event)."""
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium; "
                    "/usr/bin/chromium)")
    url = "wss://localhost:%d/ws?token=%s" % (tlslib.tls_port(d),
                                              rtlib.mint(userId="browser"))
    with open(os.path.join(BROWSER_DIR, "page.html")) as f:
        page = f.read().replace("__WS_URL__", json.dumps(url)) \
                       .replace("__CHANNEL__", json.dumps(channel))
    srv = PageServer(page)
    profile = tempfile.mkdtemp(prefix="rt-chromium-")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage",
           "--ignore-certificate-errors", "--user-data-dir=" + profile,
           "--dump-dom", "http://127.0.0.1:%d/page.html" % srv.port]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    out = err = b""
    try:
        # publish until the page reports (it connects and subscribes first)
        payload = json.dumps(data)
        deadline = time.monotonic() + 45
        while not srv.got.is_set() and p.poll() is None and \
                time.monotonic() < deadline:
            tlslib.publish_cli(r, channel, payload)
            srv.got.wait(0.25)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            out2, err2 = p.communicate(timeout=10)
            out, err = out + out2, err + err2
        srv.close()
        shutil.rmtree(profile, ignore_errors=True)
    why = "\nchromium stderr:\n%s" % err.decode("utf-8", "replace")[-3000:]
    assert srv.result is not None, "the page never reported" + why
    res = json.loads(srv.result)
    assert res["status"] == "GOT-EVENT", res
    types = [m["type"] for m in res["messages"]]
    assert types[:2] == ["connected", "subscribed"], res
    ev = res["messages"][-1]
    assert ev["type"] == "event" and ev["channel"] == channel, res
    assert ev["data"] == data, res
    assert res["messages"][0]["user"]["userId"] == "browser", res
    # and the DOM Chromium dumped says the same
    dom = out.decode("utf-8", "replace")
    assert "GOT-EVENT" in dom, "dumped DOM:\n%s%s" % (dom[-2000:], why)
    return res


def test_headless_chromium_receives_an_event_over_wss(start_daemon, certs):
    r = start_daemon.redis()
    d = start_tls(start_daemon, certs["a"], redis=r)
    chromium_page_event(d, r, "apps:deployed", {"from": "redis", "n": 1})


def test_headless_chromium_receives_a_compressed_event_over_wss(start_daemon,
                                                                certs):
    """Chromium offers permessage-deflate: a 4 KB event reaches it
    compressed (once, by the bridge; then encrypted), and it inflates it."""
    r = start_daemon.redis()
    d = start_tls(start_daemon, certs["a"], redis=r)
    data = {"items": [{"id": i, "name": "item-%d" % i, "status": "ok"}
                      for i in range(120)]}
    assert len(json.dumps(data)) > 4000
    chromium_page_event(d, r, "apps:deployed", data)
    st = chaoslib.stats(d)
    assert st["events_out_compressed"] >= 1, st
    assert st["bridge"]["events_compressed"] >= 1, st["bridge"]
