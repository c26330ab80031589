"""Behind a load balancer: `listen ... proxy_protocol` (PROXY v1 and v2 read
before HTTP and before TLS), `proxy_protocol_timeout`, and `trusted_proxies`
for Forwarded / X-Forwarded-For on upgrades.  The address a header gives
must reach the admin `connections` listing and max_connections_per_ip;
malformed, truncated, lying and missing headers close the connection and
are counted (admin stats and /metrics).

The daemons here have no Redis: connections, listings and counters do not
need one.  Loopback only; every wait is bounded; nothing asserts speed."""
import os
import socket
import struct
import subprocess
import time

import pytest

import chaoslib
import rtlib
import tlslib
from chaoslib import stats
from rtlib import RawWS

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PER_IP = 2


def v1(src, dst="127.0.0.1", sport=40000, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src=None, dst=None, sport=40000, dport=80, local=False, length=None, tlv=b""):
    """A v2 header; src None with local: LOCAL.  length: a lying length."""
    if local:
        body, fam = b"", 0x00
    elif ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + \
            socket.inet_pton(socket.AF_INET6, dst or "::1") + struct.pack("!HH", sport, dport)
        fam = 0x21
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst or "127.0.0.1") + \
            struct.pack("!HH", sport, dport)
        fam = 0x11
    body += tlv
    return V2_SIG + bytes([0x20 if local else 0x21, fam]) + \
        struct.pack("!H", len(body) if length is None else length) + body


def http_via(port, header, request=b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n",
             timeout=5):
    """header then request on one connection -> (status or None, bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(header + request)
        try:
            st, _, body, _ = rtlib.read_http_response(s, timeout)
            return st, body
        except (ConnectionError, AssertionError, OSError, ValueError) as e:
            return None, repr(e).encode()
    finally:
        s.close()


def ws_via(port, header, headers=None, expect=101, wrap=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(header)
    if wrap is not None:
        s = wrap(s)
    return RawWS(port, headers=headers, expect=expect, sock=s)


def peers(d):
    return sorted(c["peer"] for c in chaoslib.connections(d))


def closed_without_answer(port, data, then_close=False, timeout=5):
    """Send data; True when the daemon closes the connection with no reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if then_close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                return got == b""
            if not chunk:
                return got == b""
            got += chunk
        return False
    finally:
        s.close()


def port_of(spec):
    return int(spec.split()[0].rsplit(":", 1)[1])


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tlslib.make_certs(str(tmp_path_factory.mktemp("proxy-certs")), "ec")


@pytest.fixture(scope="module")
def lb(module_factory, certs):
    """Both listeners proxy_protocol; 10.0.0.0/8 and 2001:db8:ffff::/48 trusted."""
    plain, tls = rtlib.free_port(), rtlib.free_port()
    d = module_factory(conf={
        "listen": "127.0.0.1:%d proxy_protocol" % plain,
        "listen_tls": "127.0.0.1:%d proxy_protocol" % tls,
        "tls_certificate": certs.cert,
        "tls_certificate_key": certs.key,
        "proxy_protocol_timeout": "500ms",
        "trusted_proxies": "10.0.0.0/8 2001:db8:ffff::/48",
        "max_connections_per_ip": str(PER_IP),
    }, ready=False)
    d.port = port_of(d.conf["listen"])   # the harness's probe cannot speak PROXY
    d.tls_port = port_of(d.conf["listen_tls"])
    rtlib.wait_for(lambda: http_via(d.port, v1("192.0.2.1"))[0] is not None, 10,
                   "the proxy_protocol listener answers", tolerate=rtlib.TRANSIENT)
    return d


def metrics_via_proxy(d):
    st, raw = http_via(d.port, v1("127.0.0.1"), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200, raw[:200]
    out = {}
    for line in raw.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


# ---------------------------------------------------------- valid headers

@pytest.mark.parametrize("header, peer", [
    (v1("203.0.113.10", sport=4711), "203.0.113.10:4711"),
    (v1("2001:db8::10", dst="::1", sport=4712), "[2001:db8::10]:4712"),
    (v2("203.0.113.11", sport=4713), "203.0.113.11:4713"),
    (v2("2001:db8::11", sport=4714), "[2001:db8::11]:4714"),
    # a TLV after the addresses is skipped
    (v2("203.0.113.12", sport=4715, tlv=b"\x04\x00\x03abc"), "203.0.113.12:4715"),
], ids=["v1-tcp4", "v1-tcp6", "v2-tcp4", "v2-tcp6", "v2-tlv"])
def test_proxied_address_is_the_connections_peer(lb, attach, header, peer):
    attach(lb)
    before = stats(lb)["proxy_accepted"]
    ws = ws_via(lb.port, header)
    try:
        assert ws.recv_json()["type"] == "connected"
        assert peer in peers(lb)
        assert stats(lb)["proxy_accepted"] == before + 1
    finally:
        ws.close_socket()


def test_v2_local_and_v1_unknown_keep_the_socket_address(lb, attach):
    attach(lb)
    for header in (v2(local=True), b"PROXY UNKNOWN\r\n",
                   b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"):
        ws = ws_via(lb.port, header)
        try:
            ws.recv_json()
            mine = "127.0.0.1:%d" % ws.sock.getsockname()[1]
            assert mine in peers(lb), (header, peers(lb))
        finally:
            ws.close_socket()


def test_header_and_request_in_one_segment_and_split_byte_by_byte(lb, attach):
    attach(lb)
    hdr = v2("198.51.100.40", sport=1234)
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    try:
        for i in range(len(hdr)):      # the header a byte at a time
            s.sendall(hdr[i:i + 1])
            time.sleep(0.002)
        ws = RawWS(lb.port, sock=s)
        ws.recv_json()
        assert "198.51.100.40:1234" in peers(lb)
    finally:
        s.close()


# ------------------------------------------------ max_connections_per_ip

def test_per_ip_limit_applies_to_the_proxied_address(lb, attach):
    attach(lb)
    held = []
    try:
        for i in range(PER_IP):
            held.append(ws_via(lb.port, v2("198.51.100.1", sport=5000 + i)))
        # the same proxied address is over the limit, though the socket is 127.0.0.1 ...
        r = ws_via(lb.port, v2("198.51.100.1", sport=5999), expect=None)
        assert r.status == 503, r.status
        r.close_socket()
        # the log line names the proxied client, not the balancer's 127.0.0.1
        rtlib.wait_for(lambda: "198.51.100.1:5999: over max_connections_per_ip" in lb.log(), 5,
                       "the refusal logged with the proxied address")
        # ... and other proxied addresses from the same 127.0.0.1 are not limited with it
        for i in range(PER_IP):
            held.append(ws_via(lb.port, v1("198.51.100.2", sport=6000 + i)))
        assert len([p for p in peers(lb) if p.startswith("198.51.100.")]) == 2 * PER_IP
    finally:
        for ws in held:
            ws.close_socket()
    # released on close: the address may connect again
    rtlib.wait_for(lambda: not any(p.startswith("198.51.100.1:") for p in peers(lb)), 5,
                   "the connections are gone", tolerate=rtlib.TRANSIENT)
    rtlib.wait_for(lambda: ws_via(lb.port, v2("198.51.100.1"), expect=None).status == 101,
                   5, "198.51.100.1 connects again", tolerate=rtlib.TRANSIENT)


def test_an_ipv4_mapped_address_is_the_same_client_as_its_ipv4(lb, attach):
    """A header giving ::ffff:192.0.2.9 is 192.0.2.9: listed so, and counted
    with it for max_connections_per_ip."""
    attach(lb)
    held = []
    try:
        held.append(ws_via(lb.port, v1("192.0.2.9", sport=7000)))
        # v1 as a balancer prints it for an IPv4 client of its IPv6 listener
        held.append(ws_via(lb.port, v1("::ffff:192.0.2.9", dst="::ffff:10.0.0.1", sport=7001)))
        assert "192.0.2.9:7001" in peers(lb), peers(lb)
        r = ws_via(lb.port, v2("::ffff:192.0.2.9", sport=7002), expect=None)
        assert r.status == 503, r.status
        r.close_socket()
        r = ws_via(lb.port, v2("192.0.2.9", sport=7003), expect=None)
        assert r.status == 503, r.status
        r.close_socket()
    finally:
        for ws in held:
            ws.close_socket()


@pytest.mark.parametrize("header, status", [
    (v1("192.0.2.1"), 403),                        # the client is not allowed ...
    (v2("198.51.100.3"), 403),                     # ... though the balancer (127.0.0.1) is
    (v1("127.0.0.1"), 200),
    (v2("::ffff:127.0.0.1", dst="::1"), 200),      # IPv4-mapped: 127.0.0.1
    (v2("::1"), 200),
    (v2(local=True), 200),                         # LOCAL: the socket's own address
])
def test_metrics_allow_judges_the_client_a_header_gives(lb, header, status):
    st, raw = http_via(lb.port, header, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == status, raw[:200]


# ------------------------------------------------------------ bad headers

@pytest.mark.parametrize("data, then_close", [
    (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", False),        # no header at all
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", False),                 # LF without CR
    (b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", False),             # bad address
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", False),     # a ClientHello
    (v2("1.2.3.4", length=4), False),                             # length under the addresses
    (v2("1.2.3.4", length=4000), False),                          # length over the cap
    (v2("1.2.3.4")[:20], True),                                   # truncated, then EOF
    (v1("1.2.3.4")[:12], True),                                   # truncated v1
    (v2("1.2.3.4", length=200), True),                            # lying: longer than sent
    (bytes([0x0d, 0x0a, 0x0d, 0x0a, 0, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
            0x31, 0x11, 0, 12]) + b"\x00" * 12, False),           # version 3
], ids=["plain-http", "lf", "bad-addr", "tls-hello", "v2-short-len", "v2-huge-len",
        "v2-truncated", "v1-truncated", "v2-lying-len", "v2-version"])
def test_bad_header_is_closed_and_counted(lb, attach, data, then_close):
    attach(lb)
    before = stats(lb)["proxy_rejected"]
    assert closed_without_answer(lb.port, data, then_close)
    chaoslib.wait_counter(lb, "proxy_rejected", before + 1)


def test_header_never_sent_times_out_and_is_counted(lb, attach):
    attach(lb)
    before = stats(lb)["proxy_timeouts"]
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    try:
        s.sendall(v2("1.2.3.4")[:10])   # a start, then silence
        t0 = time.monotonic()
        assert s.recv(10) == b""
        assert time.monotonic() - t0 < 4    # proxy_protocol_timeout 500ms, not the 10 s handshake one
    finally:
        s.close()
    chaoslib.wait_counter(lb, "proxy_timeouts", before + 1)
    m = metrics_via_proxy(lb)
    assert m["realtimed_proxy_timeouts_total"] >= before + 1
    assert m["realtimed_proxy_rejected_total"] == stats(lb)["proxy_rejected"]
    assert m["realtimed_proxy_accepted_total"] >= 1


def test_refusals_are_not_a_log_flood(lb, attach):
    attach(lb)
    n0 = lb.log().count("PROXY protocol: closed")
    for _ in range(20):
        closed_without_answer(lb.port, b"garbage\r\n\r\n")
    # one warning line per worker per 10 s at most (debug lines aside)
    assert lb.log().count("PROXY protocol: closed") - n0 <= 2


# ------------------------------------------------------------------ wss

def test_wss_listener_reads_the_header_before_tls(lb, attach, certs):
    attach(lb)
    ctx = tlslib.client_ctx(certs.ca)

    def wrap(s):
        return ctx.wrap_socket(s, server_hostname="127.0.0.1")
    ws = ws_via(lb.tls_port, v2("203.0.113.77", sport=443), wrap=wrap)
    try:
        assert ws.recv_json()["type"] == "connected"
        assert "203.0.113.77:443" in peers(lb)
    finally:
        ws.close_socket()
    # TLS without the header first is refused before any TLS answer
    before = stats(lb)["proxy_rejected"]
    s = socket.create_connection(("127.0.0.1", lb.tls_port), timeout=5)
    try:
        with pytest.raises((ConnectionError, OSError)):
            t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            t.recv(1)
    finally:
        s.close()
    chaoslib.wait_counter(lb, "proxy_rejected", before + 1)


# ------------------------------------------ Forwarded / X-Forwarded-For

def test_xff_from_a_trusted_proxy_is_used_and_limited(lb, attach):
    attach(lb)
    before = stats(lb)["forwarded_used"]
    held = []
    try:
        # the balancer at 10.1.2.3 (trusted) says: client 198.51.100.50, via 10.7.7.7
        for i in range(PER_IP):
            held.append(ws_via(lb.port, v2("10.1.2.3", sport=7000 + i),
                               headers={"X-Forwarded-For": "198.51.100.50, 10.7.7.7"}))
        assert peers(lb).count("198.51.100.50:0") == PER_IP, peers(lb)
        assert not any(p.startswith("10.") for p in peers(lb))
        assert stats(lb)["forwarded_used"] == before + PER_IP
        # the limit follows the forwarded address at upgrade time
        r = ws_via(lb.port, v2("10.1.2.4"), expect=None,
                   headers={"X-Forwarded-For": "198.51.100.50"})
        assert r.status == 503, r.status
        r.close_socket()
    finally:
        for ws in held:
            ws.close_socket()


def test_a_quote_in_xff_cannot_hide_the_client_behind_its_proxy(lb, attach):
    """X-Forwarded-For holds addresses, split at every comma (as nginx
    does): a '"' the client sent cannot swallow the address the proxy
    appended, so the client is still the one limited, not the proxy."""
    attach(lb)
    held = []
    try:
        for i in range(PER_IP):
            ws = ws_via(lb.port, v2("10.1.2.3", sport=7200 + i),
                        headers={"X-Forwarded-For": '", 198.51.100.80'})
            held.append(ws)
        assert peers(lb).count("198.51.100.80:0") == PER_IP, peers(lb)
        r = ws_via(lb.port, v2("10.1.2.3", sport=7299), expect=None,
                   headers={"X-Forwarded-For": '"x, 198.51.100.80'})
        assert r.status == 503, r.status
        r.close_socket()
        # another client behind the same proxy is not affected
        ok = ws_via(lb.port, v2("10.1.2.3", sport=7298),
                    headers={"X-Forwarded-For": '"198.51.100.81'})
        held.append(ok)
        assert "10.1.2.3:7298" in peers(lb), peers(lb)
    finally:
        for ws in held:
            ws.close_socket()


def test_a_trusted_proxys_handshakes_in_flight_are_not_its_clients_limit(lb, attach):
    """A trusted proxy's own address is not counted at the accept: many of
    its clients' handshakes at once (more than max_connections_per_ip)
    leave a forwarded client its own places."""
    attach(lb)
    pending = []
    try:
        for i in range(PER_IP + 2):
            s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
            s.sendall(v2("10.1.2.6", sport=7300 + i) + b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            pending.append(s)
        time.sleep(0.2)
        ws = ws_via(lb.port, v2("10.1.2.6", sport=7399),
                    headers={"X-Forwarded-For": "198.51.100.90"})
        try:
            assert "198.51.100.90:0" in peers(lb), peers(lb)
        finally:
            ws.close_socket()
    finally:
        for s in pending:
            s.close()


def test_forwarded_from_a_trusted_ipv6_proxy(start_daemon):
    plain = rtlib.free_port()
    d = start_daemon(conf={"listen": "127.0.0.1:%d proxy_protocol" % plain,
                           "trusted_proxies": "2001:db8:ffff::/48",
                           "forwarded_header": "forwarded"}, ready=False)
    d.port = plain      # the harness's probe cannot speak PROXY
    rtlib.wait_for(lambda: http_via(d.port, v1("192.0.2.1"))[0] is not None, 10,
                   "the proxy_protocol listener answers", tolerate=rtlib.TRANSIENT)
    ws = ws_via(d.port, v2("2001:db8:ffff::1"),
                headers={"Forwarded": 'for="[2001:db8::99]:4711";proto=https',
                         "X-Forwarded-For": "198.51.100.77"})
    try:
        ws.recv_json()
        assert "[2001:db8::99]:4711" in peers(d), peers(d)
        assert not any(p.startswith("198.51.100.77") for p in peers(d))
    finally:
        ws.close_socket()


def test_only_the_configured_header_is_believed(lb, attach):
    """By default X-Forwarded-For: a Forwarded the client forged, which the
    proxy passed on untouched, does not choose the client's address."""
    attach(lb)
    ws = ws_via(lb.port, v2("10.1.2.9", sport=7100),
                headers={"Forwarded": "for=203.0.113.66",
                         "X-Forwarded-For": "203.0.113.66, 198.51.100.70"})
    try:
        ws.recv_json()
        p = peers(lb)
        assert "198.51.100.70:0" in p, p
        assert not any(x.startswith("203.0.113.66") for x in p), p
    finally:
        ws.close_socket()


def test_forwarded_headers_of_untrusted_peers_are_ignored(lb, attach):
    attach(lb)
    before = stats(lb)["forwarded_used"]
    ws = ws_via(lb.port, v2("192.0.2.200", sport=8000),
                headers={"X-Forwarded-For": "198.51.100.60",
                         "Forwarded": "for=198.51.100.61"})
    try:
        ws.recv_json()
        p = peers(lb)
        assert "192.0.2.200:8000" in p, p
        assert not any(x.startswith("198.51.100.6") for x in p)
        assert stats(lb)["forwarded_used"] == before
    finally:
        ws.close_socket()


def test_malformed_xff_from_a_trusted_proxy_keeps_the_peer(lb, attach):
    attach(lb)
    before = stats(lb)["forwarded_invalid"]
    ws = ws_via(lb.port, v2("10.3.3.3", sport=9000),
                headers={"X-Forwarded-For": "not-an-address"})
    try:
        ws.recv_json()
        assert "10.3.3.3:9000" in peers(lb)
        assert stats(lb)["forwarded_invalid"] == before + 1
    finally:
        ws.close_socket()


# ---------------------------------------- a plain listener, no PROXY

def test_plain_listener_without_proxy_protocol_is_unaffected(start_daemon):
    d = start_daemon(conf={"trusted_proxies": "127.0.0.0/8"})
    ws = RawWS(d.port)
    ws.recv_json()
    assert any(p.startswith("127.0.0.1:") for p in peers(d))
    ws.close_socket()
    # a PROXY header there is just a bad request line
    st, _ = http_via(d.port, v1("1.2.3.4"))
    assert st == 400
    # 127.0.0.1 is trusted here: its X-Forwarded-For is honoured
    ws = RawWS(d.port, headers={"X-Forwarded-For": "203.0.113.99"})
    ws.recv_json()
    assert "203.0.113.99:0" in peers(d)
    ws.close_socket()
    s = stats(d)
    assert s["proxy_accepted"] == 0 and s["proxy_rejected"] == 0
    assert s["forwarded_used"] == 1


def test_untrusted_plain_peer_xff_is_ignored(start_daemon):
    d = start_daemon(conf={"trusted_proxies": "10.0.0.0/8"})
    ws = RawWS(d.port, headers={"X-Forwarded-For": "203.0.113.98"})
    ws.recv_json()
    p = peers(d)
    assert not any(x.startswith("203.0.113.98") for x in p), p
    assert any(x.startswith("127.0.0.1:") for x in p), p
    ws.close_socket()
    assert stats(d)["forwarded_used"] == 0


# ------------------------------------------------------------ realtimed -t

@pytest.mark.parametrize("line, why", [
    ("trusted_proxies 10.0.0.0/33", "trusted_proxies: '10.0.0.0/33' is not an address"),
    ("trusted_proxies 10.0.0.0/8 example.com", "'example.com' is not an address"),
    ("trusted_proxies ::1/129", "'::1/129'"),
    ("listen 127.0.0.1:8888 proxy", "unknown or repeated listener option 'proxy'"),
    ("listen 127.0.0.1:8888 proxy_protocol proxy_protocol", "repeated listener option"),
    ("listen_tls 127.0.0.1:8443 ssl", "listener option 'ssl'"),
    ("proxy_protocol_timeout 50ms", "out of range"),
    ("forwarded_header x-real-ip", "'x-real-ip' is not x-forwarded-for or forwarded"),
])
def test_config_test_refuses_bad_values_naming_file_and_line(tmp_path, line, why):
    f = tmp_path / "bad.conf"
    f.write_text("jwt_secret %s\nworkers 1\n%s\n" % (rtlib.SECRET, line))
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(f)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode != 0
    assert "%s:3:" % f in p.stderr and why in p.stderr, p.stderr


def test_config_test_accepts_proxy_protocol_and_dumps_it(tmp_path):
    f = tmp_path / "ok.conf"
    f.write_text("jwt_secret %s\nlisten 127.0.0.1:%d proxy_protocol\n"
                 "trusted_proxies 10.0.0.0/8 fd00::/8 192.0.2.1\n"
                 % (rtlib.SECRET, rtlib.free_port()))
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(f)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-v", "-c", str(f)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert '"127.0.0.1:' in p.stdout and ' proxy_protocol"' in p.stdout, p.stdout
    assert "trusted_proxies 10.0.0.0/8 fd00::/8 192.0.2.1" in p.stdout, p.stdout
