"""Fixtures: a private realtimed (and redis-server when asked) on free
loopback ports per test or per module, stopped by PID with SIGTERM; their
logs are attached to the report of any test that fails."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rtlib  # noqa: E402


def _tail(text, n=200):
    lines = text.splitlines()
    if len(lines) > n:
        lines = ["... (%d lines cut)" % (len(lines) - n)] + lines[-n:]
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in getattr(item, "_realtimed_procs", []):
            rep.sections.append(("realtimed log %s" % d.log_path,
                                 _tail(d.log())))


# The master exits 0 even when a child died, so look at what it logged:
# sanitizer reports (a child's LeakSanitizer exit shows as status 23) and
# children that died other than by the tests' own SIGKILL.
_BAD_LOG = re.compile(
    r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|"
    r"exited on signal (?!9;)\d+|exited with status [1-9]")


def _sanitizer_or_crash(text):
    m = _BAD_LOG.search(text)
    if not m:
        return None
    line_start = text.rfind("\n", 0, m.start()) + 1
    line_end = text.find("\n", m.end())
    return text[line_start:line_end if line_end != -1 else None]


def _register(item, d):
    if not hasattr(item, "_realtimed_procs"):
        item._realtimed_procs = []
    item._realtimed_procs.append(d)


def _check_binary():
    b = rtlib.realtimed_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail("realtimed binary %r not found: build it or set "
                    "REALTIMED_BIN" % b, pytrace=False)


class _Factory:
    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []
        self.redises = []
        self.item = None

    def redis(self):
        r = rtlib.Redis(self.workdir)
        self.redises.append(r)
        return r

    def __call__(self, conf=None, env=None, name=None, ready=True):
        """Start realtimed with conf (key -> value; None drops a default)."""
        _check_binary()
        name = name or "realtimed-%d" % len(self.started)
        d = rtlib.Daemon(self.workdir, name, conf or {}, env=env)
        self.started.append(d)
        if self.item is not None:
            _register(self.item, d)
        if ready:
            d.wait_ready()
        return d

    def stop_all(self):
        """Stop everything; a daemon that died early or did not exit 0 on
        SIGTERM (a sanitizer report, a leak) fails the test."""
        problems = []
        for d in self.started:
            problems += d.deaths
            if not d.alive():
                problems.append("%s died with status %s before SIGTERM"
                                % (d.name, d.proc.returncode))
            rc = d.stop()
            if rc != 0 and not problems:
                problems.append("%s exited with status %s on SIGTERM"
                                % (d.name, rc))
            bad = _sanitizer_or_crash(d.log())
            if bad:
                problems.append("%s: %s" % (d.name, bad))
            if problems:
                problems.append(_tail(d.log(), 60))
        for r in self.redises:
            r.stop()
        return problems


@pytest.fixture
def start_daemon(request, tmp_path):
    """start_daemon(conf={...}, env={...}) -> a ready rtlib.Daemon."""
    f = _Factory(str(tmp_path))
    f.item = request.node
    yield f
    problems = f.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_factory(tmp_path_factory):
    f = _Factory(str(tmp_path_factory.mktemp("rt")))
    yield f
    problems = f.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def attach(request):
    """Use a module-scoped daemon in the current test: respawn it if an
    earlier test killed it, attach its log to this test's report, and fail
    this test if the daemon dies during it."""
    used = []

    def _a(d):
        if not d.alive():
            d.respawn()
        _register(request.node, d)
        used.append(d)
        return d
    yield _a
    for d in used:
        try:
            d.proc.wait(0.02)   # a crash may trail the last reply a little
        except subprocess.TimeoutExpired:
            pass
        if not d.alive():
            pytest.fail("realtimed (%s) died during this test with status "
                        "%s:\n%s" % (d.name, d.proc.returncode,
                                      _tail(d.log(), 60)), pytrace=False)


@pytest.fixture
def own(request, tmp_path):
    """own(conf, env) -> a ready rtlib.Daemon that the test may stop itself
    (start_daemon's teardown insists on sending the SIGTERM).  Afterwards:
    exit status 0 if it was still running, no sanitizer report, no crashed
    child in its log."""
    made = []

    def make(conf=None, env=None, name=None, ready=True):
        d = rtlib.Daemon(str(tmp_path), name or "own-%d" % len(made), conf or {}, env=env)
        made.append(d)
        _register(request.node, d)
        if ready:
            d.wait_ready()
        return d
    yield make
    problems = []
    for d in made:
        if d.alive():
            rc = d.stop()
            if rc != 0:
                problems.append("%s exited with status %s on SIGTERM" % (d.name, rc))
        else:
            d.logf.close()
        bad = _sanitizer_or_crash(d.log())
        if bad:
            problems.append("%s: %s" % (d.name, bad))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def clients():
    """clients(c) -> c: the rtlib clients a test opened, their sockets closed after it."""
    opened = []

    def track(c):
        opened.append(c)
        return c
    yield track
    for c in opened:
        c.close_socket()


@pytest.fixture
def redis_server(start_daemon):
    return start_daemon.redis()


@pytest.fixture(scope="session")
def keypairs():
    """RSA and EC P-256 key pairs as PEM files in a temp dir."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    d = tempfile.mkdtemp(prefix="rt-keys-")
    out = {"dir": d}

    def save(name, priv):
        pub = priv.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        prv = priv.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        path = os.path.join(d, name + ".pub.pem")
        with open(path, "wb") as fh:
            fh.write(pub)
        out[name] = {"private": prv, "public": pub, "public_path": path}

    save("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    save("rsa_other",
         rsa.generate_private_key(public_exponent=65537, key_size=2048))
    save("ec", ec.generate_private_key(ec.SECP256R1()))
    save("ec_other", ec.generate_private_key(ec.SECP256R1()))
    yield out
    shutil.rmtree(d, ignore_errors=True)
