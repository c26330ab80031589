"""Helpers for the realtimed integration suite: the daemon and redis-server
as child processes (their children in /proc, waiting until they settle),
token minting, a raw HTTP client, a hand-written RFC 6455 client that can
send what no well-behaved library will and the protocol client on top of
it, polling (wait_for), the admin socket and realtimectl (ctl, ctl_json).

Every blocking call here takes a timeout; nothing waits forever.
"""
import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SECRET = "integration-test-secret-0123456789abcdef"
READY_TIMEOUT = 10.0
IO_TIMEOUT = 5.0

WELL_KNOWN = {
    "announcements": ["announcements"],
    "apps": ["apps:created", "apps:updated", "apps:deleted", "apps:deployed",
             "apps:status"],
    "users": ["users:created", "users:updated", "users:deleted"],
    "database": ["database:table_created", "database:table_updated",
                 "database:table_deleted", "database:row_updated"],
    "deployments": ["deployments:started", "deployments:completed",
                    "deployments:failed", "deployments:status"],
    "storage": ["storage:uploaded", "storage:deleted", "storage:updated"],
    "system": ["system:health", "system:metrics", "system:alerts"],
}
AUTHENTICATED_FAMILIES = ["apps", "users", "database", "deployments", "storage"]


def realtimed_bin():
    b = os.environ.get("REALTIMED_BIN")
    if b:
        return b
    return os.path.join(REPO, "src", "realtimed")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_free(port):
    """Nothing is bound to 127.0.0.1:port."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_base(offsets, below=60000):
    """A port B below `below` with B + each offset free: for the scripts in
    scripts/ that take a base port."""
    for _ in range(50):
        b = free_port()
        if b < below and all(port_free(b + i) for i in offsets):
            return b
    raise RuntimeError("no free port range")


# --------------------------------------------------------------------- HTTP

def http_raw(port, data, timeout=IO_TIMEOUT, read_all=True):
    """Send raw bytes, return (status, headers{lower: value}, body, closed).

    Reads the response head, then the body by Content-Length, then (when
    read_all) waits briefly for the server to close.
    """
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        return read_http_response(s, timeout, read_all)
    finally:
        s.close()


def read_http_response(s, timeout=IO_TIMEOUT, read_all=True, buf=b""):
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        chunk = _recv(s, deadline)
        if not chunk:
            raise ConnectionError("EOF before end of response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3})( .*)?$", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key in headers:
            headers[key] += ", " + value.strip()
        else:
            headers[key] = value.strip()
    closed = False
    if status == 101:
        return status, headers, rest, closed
    clen = headers.get("content-length")
    if clen is not None:
        n = int(clen)
        while len(rest) < n:
            chunk = _recv(s, deadline)
            if not chunk:
                closed = True
                break
            rest += chunk
    if read_all:
        try:
            while True:
                chunk = _recv(s, deadline)
                if not chunk:
                    closed = True
                    break
                rest += chunk
        except (socket.timeout, TimeoutError):
            pass
        except ConnectionResetError:
            closed = True
    return status, headers, rest, closed


def _recv(s, deadline, n=65536):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    s.settimeout(left)
    return s.recv(n)


def http_get(port, path, headers=None, timeout=IO_TIMEOUT):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    req = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return http_raw(port, req, timeout)


def health(port, timeout=IO_TIMEOUT):
    status, headers, body, _ = http_get(port, "/health", timeout=timeout)
    return status, headers, json.loads(body.decode())


def health_code(d):
    """d's /health status, or None while it does not answer."""
    try:
        return health(d.port, timeout=2)[0]
    except (OSError, ValueError):
        return None


def bridge_stats(d):
    """The bridge's part of d's admin `stats`."""
    return admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]


# ------------------------------------------------------------------ tokens

def mint(claims=None, key=SECRET, alg="HS256", exp_in=3600, headers=None,
         **kw):
    """A JWT.  Default claims: userId u1, iat now, exp now+exp_in (None: no
    exp).  Keyword arguments are added as claims."""
    now = int(time.time())
    c = {"userId": "u1", "iat": now}
    if exp_in is not None:
        c["exp"] = now + exp_in
    if claims is not None:
        c = dict(claims)
    c.update(kw)
    return jwt.encode(c, key, algorithm=alg, headers=headers)


def forge_token(header, claims, signature=b""):
    """A token built by hand (alg none, keys confusion)."""
    def b64(d):
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    return "%s.%s.%s" % (h, p, b64(signature))


def hs_sign_with(key_bytes, claims, alg="HS256"):
    """HMAC-sign claims with arbitrary key bytes (PyJWT refuses PEM keys as
    HMAC secrets, which is the point of the confusion attack)."""
    import hmac
    def b64(d):
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    header = {"alg": alg, "typ": "JWT"}
    signing_input = "%s.%s" % (
        b64(json.dumps(header, separators=(",", ":")).encode()),
        b64(json.dumps(claims, separators=(",", ":")).encode()))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
              "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key_bytes, signing_input.encode(), digest).digest()
    return signing_input + "." + b64(sig)


# --------------------------------------------------------- raw WebSocket

def client_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """The bytes of one client frame (masked unless mask is false; length
    may claim another payload length than the payload's)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    hdr = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr.append(mbit | n)
    elif n < 65536:
        hdr.append(mbit | 126)
        hdr += struct.pack("!H", n)
    else:
        hdr.append(mbit | 127)
        hdr += struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        hdr += key
        payload = _mask_fast(payload, key)
    return bytes(hdr) + payload


# errors a poll may meet while the daemon (re)starts: retried by wait_for
# when passed as tolerate=
TRANSIENT = (OSError, ConnectionError, ValueError, AssertionError)


def wait_for(pred, timeout=5.0, what="condition", interval=0.05, tolerate=()):
    """Poll pred() until it returns something truthy; return that value.

    An exception of a class in tolerate counts as "not yet" (and is
    reported as the last value if time runs out); any other propagates.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except tolerate as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out (%.1fs) waiting for %s; last: %r"
                                 % (timeout, what, last))
        time.sleep(interval)


class RawWS:
    """A hand-driven WebSocket client: frames are built byte by byte."""

    def __init__(self, port, path="/ws", headers=None, timeout=IO_TIMEOUT,
                 expect=101, sock=None):
        """sock: a connected socket to use (e.g. one that sent a PROXY
        header, or wrapped in TLS), else a new one to 127.0.0.1:port."""
        self.sock = sock or socket.create_connection(("127.0.0.1", port),
                                                     timeout=timeout)
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET %s HTTP/1.1" % path,
            "Host: 127.0.0.1:%d" % port,
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: %s" % self.key,
            "Sec-WebSocket-Version: 13",
        ]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        st, hd, rest, _ = read_http_response(self.sock, timeout,
                                             read_all=False)
        self.status, self.headers = st, hd
        self.buf = rest
        if expect is not None:
            assert st == expect, "handshake answered %d %r" % (st, hd)

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- sending
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0,
                   length=None):
        self.sock.sendall(client_frame(opcode, payload, fin, mask, rsv, length))

    def send_text(self, text, **kw):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text,
                        **kw)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_close(self, code=None, reason=b""):
        payload = b"" if code is None else struct.pack("!H", code) + reason
        self.send_frame(0x8, payload)

    # -- receiving
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            chunk = _recv(self.sock, deadline)
            if not chunk:
                raise EOFError("connection closed by server")
            self.buf += chunk

    def recv_frame(self, timeout=IO_TIMEOUT):
        """(fin, opcode, payload) of the next server frame."""
        fin, rsv, opcode, payload = self.recv_frame_rsv(timeout)
        assert not rsv, "server frame has RSV bits"
        return fin, opcode, payload

    def recv_frame_rsv(self, timeout=IO_TIMEOUT):
        """(fin, rsv bits (0x70 mask), opcode, payload) of the next server
        frame: permessage-deflate sets RSV1 (0x40)."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), "server frame is masked"
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._fill(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._fill(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._fill(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, payload

    def recv_message(self, timeout=IO_TIMEOUT, answer_pings=True):
        """(opcode, payload) of the next data message, reassembled; control
        frames are handled on the way (pings answered, close raises)."""
        deadline = time.monotonic() + timeout
        parts, op = [], None
        while True:
            fin, opcode, payload = self.recv_frame(deadline - time.monotonic())
            if opcode == 0x9:
                if answer_pings:
                    self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                raise ServerClosed(parse_close(payload))
            if op is None:
                op = opcode
            parts.append(payload)
            if fin:
                return op, b"".join(parts)

    def recv_json(self, timeout=IO_TIMEOUT):
        op, payload = self.recv_message(timeout)
        assert op == 0x1, "expected a text frame, got opcode %d" % op
        return json.loads(payload.decode("utf-8"))

    def recv_close(self, timeout=IO_TIMEOUT):
        """Read until the server's close frame: (code, reason, messages seen
        before it).  code None: the TCP connection ended without one."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                fin, opcode, payload = self.recv_frame(
                    deadline - time.monotonic())
            except (EOFError, ConnectionResetError):
                return None, None, seen
            if opcode == 0x8:
                code, reason = parse_close(payload)
                return code, reason, seen
            if opcode in (0x1, 0x2, 0x0):
                seen.append(payload)

    def wait_eof(self, timeout=IO_TIMEOUT):
        """True if the server closes the TCP connection within timeout
        (discarding whatever it sends before)."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        while True:
            try:
                chunk = _recv(self.sock, deadline)
            except (socket.timeout, TimeoutError):
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True


class Client:
    """A protocol client on /ws over RawWS: the `connected` greeting read,
    events seen while waiting for replies kept aside in .events, the
    channels it subscribed to in .subs."""

    def __init__(self, port, token=None, expect_connected=True):
        path = "/ws" if token is None else "/ws?token=" + token
        self.ws = RawWS(port, path)
        self.events = []
        self.notices = []       # token_expiring, unasked
        self.subs = []
        if expect_connected:
            m = self.ws.recv_json()
            assert m["type"] == "connected", m
            self.id = m["connectionId"]
            self.user = m["user"]

    def reply(self, obj, timeout=IO_TIMEOUT):
        """Send obj; the next message that is not an event."""
        self.ws.send_json(obj)
        deadline = time.monotonic() + timeout
        while True:
            m = self.ws.recv_json(max(0.01, deadline - time.monotonic()))
            if m.get("type") == "event":
                self.events.append(m)
                continue
            if m.get("type") == "token_expiring":
                self.notices.append(m)
                continue
            return m

    def subscribe(self, channel):
        m = self.reply({"type": "subscribe", "channel": channel})
        assert m["type"] == "subscribed" and m["channel"] == channel, m
        self.subs.append(channel)
        return m

    def alive(self):
        return self.reply({"type": "ping"})["type"] == "pong"

    def next_event(self, timeout=IO_TIMEOUT):
        """The next event (one kept aside first), within timeout."""
        if self.events:
            return self.events.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            m = self.ws.recv_json(max(0.01, deadline - time.monotonic()))
            if m.get("type") == "event":
                return m

    def events_until(self, n, timeout=10):
        """.events once it holds n events, or when timeout has passed."""
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            m = self.ws.recv_json(max(0.01, deadline - time.monotonic()))
            if m.get("type") == "event":
                self.events.append(m)
        return self.events

    def no_event(self, quiet=0.3):
        """True if no event arrives within `quiet` seconds."""
        if self.events:
            return False
        try:
            m = self.ws.recv_json(quiet)
        except (socket.timeout, TimeoutError):
            return True
        if m.get("type") == "event":
            self.events.append(m)
            return False
        return True

    def expect_close(self, timeout=IO_TIMEOUT, answer=True):
        """(close code, messages before the close); the close answered
        with the same code (1000 for none) unless answer is false.  Code
        None: the connection ended without a close frame."""
        code, _, seen = self.ws.recv_close(timeout)
        if answer and code is not None:
            try:
                self.ws.send_close(code if 1000 <= code <= 4999 and
                                   code not in (1005, 1006) else 1000)
            except OSError:
                pass
        self.ws.close_socket()
        return code, [json.loads(p) for p in seen]

    def close(self):
        try:
            self.ws.send_close(1000)
        except OSError:
            pass
        self.ws.close_socket()


class ServerClosed(Exception):
    def __init__(self, close):
        super().__init__("server sent close %r" % (close,))
        self.code, self.reason = close


def parse_close(payload):
    if len(payload) == 0:
        return None, b""
    if len(payload) == 1:
        return -1, payload
    return struct.unpack("!H", payload[:2])[0], payload[2:]


def _mask_fast(payload, key):
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    a = int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")
    return a.to_bytes(n, "big")


def accept_key(key):
    return base64.b64encode(
        hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


# ------------------------------------------------------- async helpers

def arun(coro, timeout=20):
    """Run a coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv_json(ws, timeout=IO_TIMEOUT):
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str), "expected text, got %r" % (msg[:64],)
    return json.loads(msg)


async def request(ws, obj, timeout=IO_TIMEOUT):
    await ws.send(json.dumps(obj) if not isinstance(obj, str) else obj)
    return await recv_json(ws, timeout)


async def recv_until_closed(ws, timeout=IO_TIMEOUT):
    """Messages received until the server closes; returns (list, code)."""
    import websockets
    got = []
    try:
        while True:
            m = await asyncio.wait_for(ws.recv(), timeout)
            got.append(json.loads(m) if isinstance(m, str) else m)
    except websockets.ConnectionClosed:
        pass
    return got, ws.close_code


# ------------------------------------------- features not built yet

def skip_if_redis_disabled(port):
    """The daemon says so itself when it has no Redis bridge yet."""
    _, _, body, _ = http_get(port, "/health")
    if json.loads(body).get("redis") == "disabled":
        __import__("pytest").skip("daemon reports \"redis\":\"disabled\" although "
                    "redis_url is set: Redis bridge not implemented yet")


def skip_if_single_worker(port, configured):
    _, _, body, _ = http_get(port, "/health")
    if json.loads(body).get("workers") == 1 and configured != 1:
        __import__("pytest").skip("daemon reports 1 worker with workers %d configured: "
                    "multi-process workers not implemented yet" % configured)



# ------------------------------------------------------------- processes

def clean_env(extra=None):
    """os.environ without what realtimed and realtimectl would read
    (JWT_SECRET, REDIS_URL, REALTIMED_* but REALTIMED_BIN), plus extra."""
    e = dict(os.environ)
    e.pop("JWT_SECRET", None)
    e.pop("REDIS_URL", None)
    for k in list(e):
        if k.startswith("REALTIMED_") and k != "REALTIMED_BIN":
            del e[k]
    e.update(extra or {})
    return e


def ppid(pid):
    """The parent PID of pid, from /proc."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        stat = f.read().decode("latin-1")
    # the comm field may hold spaces and parentheses: split after the last ')'
    return int(stat[stat.rindex(")") + 2:].split()[1])


def _title(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        raw = f.read()
    return raw.replace(b"\0", b" ").decode("latin-1").strip()


def children(master_pid):
    """{pid: process title} of the live (non-zombie) children of master."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if ppid(pid) != master_pid:
                continue
            with open("/proc/%d/stat" % pid, "rb") as f:
                state = f.read().decode("latin-1")
            state = state[state.rindex(")") + 2:].split()[0]
            if state == "Z":
                continue
            out[pid] = _title(pid)
        except (OSError, ValueError):
            continue
    return out


def roles(master_pid):
    """{title: pid}, e.g. {"realtimed: bridge": 12, "realtimed: worker 0": 13}."""
    return {t: p for p, t in children(master_pid).items()}


def worker_title(i):
    return "realtimed: worker %d" % i


BRIDGE = "realtimed: bridge"


def expected_titles(nworkers):
    return {BRIDGE} | {worker_title(i) for i in range(nworkers)}


def wait_settled(d, nworkers, redis=True, timeout=10):
    """Wait until d's master has its bridge and nworkers workers, and
    /health reports nworkers workers (and, when redis, Redis up and status
    ok with 200).  Returns the {title: pid} map."""
    want = expected_titles(nworkers)

    def procs_ok():
        r = roles(d.proc.pid)
        return r if set(r) == want else None
    wait_for(procs_ok, timeout, "bridge + %d workers under master %d"
             % (nworkers, d.proc.pid), tolerate=TRANSIENT)

    def health_ok():
        st, _, h = health(d.port, timeout=1)
        if h.get("workers") != nworkers:
            return None
        if redis and (st != 200 or h.get("status") != "ok" or
                      h.get("redis") != "up"):
            return None
        return h
    wait_for(health_ok, timeout, "/health with %d workers%s"
             % (nworkers, " and redis up" if redis else ""),
             tolerate=TRANSIENT)
    return roles(d.proc.pid)


class Daemon:
    """One realtimed child process with its own config file and log."""

    def __init__(self, workdir, name, conf, env=None, args=()):
        self.workdir = workdir
        self.base_name = name
        self.user_conf = dict(conf)
        self.user_env = env
        self.args = list(args)
        self.spawns = 0
        self.deaths = []        # "name: status" of earlier runs that died
        self._spawn()

    def _write_conf(self):
        with open(self.conf_path, "w") as f:
            f.write("# written by tests/integration\n")
            for k, v in self.conf.items():
                if v is None:
                    continue
                f.write("%s %s\n" % (k, v))

    def reconfigure(self, timeout=5, **changes):
        """Change keys of the config file (None drops one), SIGHUP the
        master and wait until it logged the outcome; the log then."""
        self.conf.update(changes)
        self._write_conf()

        def marks():
            t = self.log()
            return t.count("reload complete") + t.count("keeping the old configuration")
        n = marks()
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: marks() > n, timeout, "the reload to finish")
        time.sleep(0.2)     # the children apply it from their control sockets
        return self.log()

    def _spawn(self):
        name = self.base_name if not self.spawns else \
            "%s-respawn%d" % (self.base_name, self.spawns)
        self.spawns += 1
        conf, env, args = self.user_conf, self.user_env, self.args
        self.port = free_port()
        self.name = name
        workdir = self.workdir
        self.conf_path = os.path.join(workdir, "%s.conf" % name)
        self.log_path = os.path.join(workdir, "%s.log" % name)
        c = {
            "listen": "127.0.0.1:%d" % self.port,
            "workers": "1",
            "jwt_algorithm": "HS256",
            "jwt_secret": SECRET,
            "log_level": "debug",
            # private run-time files, not /run/realtimed
            "pidfile": os.path.join(workdir, "%s.pid" % name),
            "admin_socket": os.path.join(workdir, "%s.sock" % name),
            "drain_period": "0",    # tests that measure draining set it
        }
        c.update({k: v for k, v in conf.items()})
        self.conf = c
        self._write_conf()
        e = clean_env(env)
        self.logf = open(self.log_path, "wb")
        binary = realtimed_bin()
        self.proc = subprocess.Popen(
            [binary, "-f", "-d", "-c", self.conf_path] + list(args),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            env=e, cwd=workdir)
        self.url = "ws://127.0.0.1:%d/ws" % self.port

    def alive(self):
        return self.proc.poll() is None

    def respawn(self):
        """Start afresh (new port, new log) after the process died."""
        self.deaths.append("%s (log %s) died with status %s"
                           % (self.name, self.log_path, self.proc.returncode))
        self.logf.close()
        self._spawn()
        return self.wait_ready()

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("realtimed exited with %s during startup:\n%s"
                                   % (self.proc.returncode, self.log()))
            try:
                http_get(self.port, "/health", timeout=1)
                return self
            except (OSError, ConnectionError, AssertionError):
                time.sleep(0.05)
        raise RuntimeError("realtimed not ready within %.0fs:\n%s"
                           % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()
        return self.proc.returncode


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.log_path = os.path.join(workdir, "redis-%d.log" % self.port)
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", workdir],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            cwd=workdir)
        self.url = "redis://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == b"+PONG\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def command(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        try:
            s.sendall(b"".join(parts))
            return s.recv(65536)
        finally:
            s.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()


# ------------------------------------------------------- the admin socket

def admin_raw(path, data, nreplies=1, timeout=5.0):
    """Send raw bytes to the admin socket at path; the first nreplies reply
    lines, parsed.  Each reply must be exactly one JSON object on one line,
    with a boolean "ok"."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while buf.count(b"\n") < nreplies:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    lines = buf.split(b"\n")
    assert len(lines) > nreplies, "expected %d reply lines, got %r" % (nreplies, buf[:300])
    out = [json.loads(l) for l in lines[:nreplies]]
    for o in out:
        assert isinstance(o, dict) and isinstance(o.get("ok"), bool), o
    return out


def admin(path, line, timeout=5.0):
    """One command on the admin socket at path; its JSON reply."""
    return admin_raw(path, line.encode() + b"\n", timeout=timeout)[0]


CTL_TIMEOUT = 15


def ctl_bin():
    """realtimectl, beside the realtimed under test."""
    return os.path.join(os.path.dirname(os.path.abspath(realtimed_bin())),
                        "realtimectl")


def ctl(sock, *args, json_out=False, env=None, prefix=(), binary=None,
        cwd=None, timeout=CTL_TIMEOUT):
    """Run [prefix...] realtimectl [-s sock] [--json] args in clean_env(env):
    (exit status, stdout, stderr).  sock None: no -s; binary: another
    realtimectl than ctl_bin()."""
    argv = list(prefix) + [binary or ctl_bin()]
    if sock is not None:
        argv += ["-s", sock]
    if json_out:
        argv.append("--json")
    argv += list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=clean_env(env), cwd=cwd)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ctl_json(sock, *args, env=None, timeout=CTL_TIMEOUT):
    """realtimectl --json: (exit status, its one output line parsed)."""
    rc, out, err = ctl(sock, *args, json_out=True, env=env, timeout=timeout)
    lines = out.splitlines()
    assert len(lines) == 1, "realtimectl --json printed %r (stderr %r)" % (out, err)
    return rc, json.loads(lines[0])


def ctl_kv(text):
    """realtimectl's "name   value" lines as a dict (a value may hold a
    blank: 1.2 MiB)."""
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def read_line(conn, timeout=5):
    """Bytes from conn up to and with the first newline (or EOF)."""
    conn.settimeout(timeout)
    buf = b""
    while b"\n" not in buf:
        b = conn.recv(65536)
        if not b:
            break
        buf += b
    return buf


def ctl_fake(tmp_path, handler, *args, json_out=False, env=None):
    """realtimectl ARGS against a fake admin socket whose one connection is
    given to handler(conn) in a thread (what it raises is raised here):
    ctl()'s (exit status, stdout, stderr)."""
    path = str(tmp_path / "fake-admin.sock")
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(CTL_TIMEOUT)
    raised = []

    def serve():
        try:
            conn, _ = srv.accept()
            with conn:
                handler(conn)
        except Exception as e:      # re-raised below
            raised.append(e)
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        res = ctl(path, *args, json_out=json_out, env=env)
        th.join(CTL_TIMEOUT)
    finally:
        srv.close()
    assert not th.is_alive(), "the fake admin socket's handler did not finish"
    if raised:
        raise raised[0]
    return res
