"""Helpers for the TLS (wss://) tests: development certificates made by
scripts/devcert.sh, daemon configs with a TLS listener next to the plain one
(the harness probes the plain port's /health for readiness), SSL contexts,
certificate fingerprints, openssl s_client runs and a daemon's child PIDs.

Every blocking call takes a timeout.
"""
import asyncio
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import rtlib

DEVCERT = os.path.join(rtlib.REPO, "scripts", "devcert.sh")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


class CertPair:
    """DIR/ca.pem, DIR/server.pem (full chain), DIR/server.key."""

    def __init__(self, d):
        self.dir = d
        self.ca = os.path.join(d, "ca.pem")
        self.cert = os.path.join(d, "server.pem")
        self.key = os.path.join(d, "server.key")

    def fingerprint(self):
        """SHA-256 of the leaf certificate's DER."""
        with open(self.cert) as f:
            pem = f.read()
        first = pem.split("-----END CERTIFICATE-----")[0] + \
            "-----END CERTIFICATE-----\n"
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()

    def copy_to(self, d):
        os.makedirs(d, exist_ok=True)
        for n in ("ca.pem", "server.pem", "server.key"):
            shutil.copyfile(os.path.join(self.dir, n), os.path.join(d, n))
        os.chmod(os.path.join(d, "server.key"), 0o600)
        return CertPair(d)


def make_certs(d, kind="ec"):
    env = dict(os.environ, FORCE="1")
    p = subprocess.run(["sh", DEVCERT, d, kind], env=env, timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError("devcert.sh failed: %s" % p.stdout.decode())
    return CertPair(d)


def tls_conf(pair, tls_port=None, **extra):
    """Config entries for a TLS listener on a free loopback port (the plain
    listener stays on: readiness is probed there)."""
    c = {
        "listen_tls": "127.0.0.1:%d" % (tls_port or rtlib.free_port()),
        "tls_certificate": pair.cert,
        "tls_certificate_key": pair.key,
        "tls_handshake_timeout": "1s",
    }
    c.update({k: str(v) for k, v in extra.items()})
    return c


def tls_port(d):
    return int(d.conf["listen_tls"].rsplit(":", 1)[1])


def wss_url(d, path="/ws", query=""):
    return "wss://127.0.0.1:%d%s%s" % (tls_port(d), path, query)


def client_ctx(*cafiles):
    ctx = ssl.create_default_context(cafile=cafiles[0])
    for ca in cafiles[1:]:
        ctx.load_verify_locations(cafile=ca)
    return ctx


def rewrite_conf(d, **changes):
    """Rewrite d's config file (same format as rtlib.Daemon writes it)."""
    c = dict(d.conf)
    c.update(changes)
    with open(d.conf_path, "w") as f:
        f.write("# rewritten by tests/integration/test_tls.py\n")
        for k, v in c.items():
            if v is None:
                continue
            f.write("%s %s\n" % (k, v))
    d.conf = c


# ------------------------------------------------------------- TLS probes

def peer_fingerprint(port, ctx, timeout=5.0):
    """SHA-256 of the leaf certificate a fresh TLS connection presents."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def wait_fingerprint(port, ctx, want, timeout=10.0):
    """Poll new connections until they present `want`; the last seen."""
    deadline = time.monotonic() + timeout
    seen = None
    while True:
        seen = peer_fingerprint(port, ctx)
        if seen == want or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def https_get(port, path, ctx, timeout=5.0):
    """(status, body) of GET path over TLS."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Connection: close\r\n\r\n" % (path, port)).encode())
            st, hd, body, _ = rtlib.read_http_response(t, timeout)
            return st, hd, body


def s_client(port, *args, stdin_delay=0.3, timeout=10, cafile=None):
    """Run openssl s_client; keeps stdin open for stdin_delay seconds (a
    TLS 1.3 ticket arrives after the handshake).  (rc, output)."""
    cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
           "-servername", "localhost"]
    if cafile:
        cmd += ["-CAfile", cafile]
    cmd += list(args)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        time.sleep(stdin_delay)
        out, _ = p.communicate(b"", timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate(timeout=5)
        raise AssertionError("openssl s_client %r hung:\n%s"
                             % (args, out.decode("latin-1")))
    return p.returncode, out.decode("latin-1")


def negotiated(out):
    """'New, TLSv1.3, Cipher is X' -> ('New', 'TLSv1.3', 'X')."""
    for line in out.splitlines():
        if line.startswith(("New, ", "Reused, ")):
            kind, rest = line.split(", ", 1)
            proto, _, cipher = rest.partition(", Cipher is ")
            return kind, proto, cipher.strip()
    return None, None, None


# -------------------------------------------------------------- processes

def children(pid):
    """PIDs of pid's direct children."""
    kids = set()
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return kids


def wait_children(pid, n, timeout=10.0):
    """The child PIDs once there are at least n of them, stable 0.3 s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        k = children(pid)
        if k != last:
            last, since = k, time.monotonic()
        elif len(k) >= n and time.monotonic() - since >= 0.3:
            return k
        time.sleep(0.05)
    return last


def publish_cli(redis, channel, payload, timeout=5):
    """PUBLISH with redis-cli; the receiver count."""
    p = subprocess.run(["redis-cli", "-p", str(redis.port), "PUBLISH",
                        channel, payload], timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout
    return int(p.stdout.decode().strip() or 0)


async def wait_event(ws, redis, channel, payload_obj, timeout=10.0):
    """Publish payload_obj to channel every 0.2 s (the bridge subscribes
    to Redis asynchronously) until ws gets the event; the event."""
    payload = json.dumps(payload_obj)
    deadline = time.monotonic() + timeout
    while True:
        publish_cli(redis, channel, payload)
        try:
            while True:
                left = min(0.2, deadline - time.monotonic())
                if left <= 0:
                    raise AssertionError("no event on %s within %.0fs"
                                         % (channel, timeout))
                m = json.loads(await asyncio.wait_for(ws.recv(), left))
                if m.get("type") == "event" and m.get("channel") == channel:
                    return m
        except asyncio.TimeoutError:
            if time.monotonic() > deadline:
                raise AssertionError("no event on %s within %.0fs"
                                     % (channel, timeout))
