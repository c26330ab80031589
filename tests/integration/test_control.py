"""Control across nodes (PROTOCOL.md "Revocation and control across
nodes"; realtimectl(8) CONTROL ACROSS NODES): kick, kick-user, revoke and
unrevoke act on every node attached to one Redis when control_secret is
set; forged, stale and replayed control messages do nothing; revocations
are stored in Redis and survive node restarts; the node registry lists the
live nodes.  Real redis-server, two real daemons, real sockets; every wait
bounded."""
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import time

import proclib
import rtlib
from rtlib import Client, RawWS, wait_for

SECRET = "control-secret-0123456789"
CC = "realtimed:control"


def node(start_daemon, r, **conf):
    c = {"workers": "1", "redis_url": r.url, "canary_interval": "0",
         "control_secret": SECRET, "node_ttl": "3s"}
    c.update(conf)
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, 1)
    # subscribed to the control channel (and, with a secret, read the revocations)
    wait_for(lambda: bstats(d)["redis"] == "up", 10, "redis up")
    return d


def stats(d):
    return rtlib.admin(d.conf["admin_socket"], "stats")["stats"]


def bstats(d):
    return stats(d)["bridge"]


def adm(d, line):
    return rtlib.admin(d.conf["admin_socket"], line)


def tok(user="u1", jti=None, **kw):
    c = {"userId": user, "exp": int(time.time()) + 3600}
    if jti is not None:
        c["jti"] = jti
    c.update(kw)
    return rtlib.mint(c)


def closed(c, timeout=5):
    """(code, reason, messages before the close) of a Client."""
    code, reason, seen = c.ws.recv_close(timeout)
    c.ws.close_socket()
    return code, reason.decode() if reason is not None else None, [json.loads(p) for p in seen]


def refused(port, token):
    """A handshake with token: (the error message, close code, reason)."""
    ws = RawWS(port, "/ws?token=" + token)
    try:
        code, reason, seen = ws.recv_close()
        msgs = [json.loads(p) for p in seen]
        return msgs, code, reason.decode() if reason is not None else None
    finally:
        ws.close_socket()


def accepted(port, token):
    c = Client(port, token)
    ok = c.alive()
    c.close()
    return ok


def signed(cmd, arg, until=0, ts=None, nonce=None, secret=SECRET, node_id="tester:1",
           inst="0123456789abcdef", extra=None):
    body = {"ts": int(time.time() * 1000) if ts is None else ts,
            "nonce": nonce or os.urandom(16).hex(), "node": node_id, "inst": inst,
            "cmd": cmd, "arg": arg}
    if cmd == "revoke":
        body["until"] = until
    if extra:
        body.update(extra)
    j = json.dumps(body, separators=(",", ":"))
    mac = hmac.new(secret.encode(), j.encode(), hashlib.sha256).hexdigest()
    return "rtctl1 %s %s" % (mac, j)


# ------------------------------------------------------------ kick, kick-user

def test_kick_reaches_a_connection_on_the_other_node(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    victim, other = Client(d2.port, tok("alice")), Client(d2.port, tok("bob"))
    rep = adm(d1, "kick " + victim.id)
    assert rep["ok"] is True and rep["scope"] == "cluster" and rep["kicked"] == 0, rep
    assert rep["nodes"] == 2, rep		# both bridges heard it
    code, reason, seen = closed(victim)
    assert (code, reason) == (1008, "Disconnected by an administrator"), (code, reason)
    assert seen and seen[-1]["message"] == "Disconnected by an administrator"
    assert other.alive()
    wait_for(lambda: bstats(d2)["control_applied"] >= 1, 5, "applied on d2")
    assert bstats(d1)["control_sent"] >= 1 and bstats(d1)["control_applied"] == 0


def test_kick_user_closes_the_users_connections_on_every_node(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    a1, a2 = Client(d1.port, tok("alice")), Client(d2.port, tok("alice"))
    b2 = Client(d2.port, tok("bob"))
    rep = adm(d2, "kick-user alice")
    assert rep["ok"] and rep["kicked"] == 1 and rep["scope"] == "cluster", rep
    for c in (a1, a2):
        code, reason, _ = closed(c)
        assert (code, reason) == (1008, "Disconnected by an administrator")
    assert b2.alive()
    wait_for(lambda: stats(d1)["connections"] == 0, 5, "alice gone from d1")


def test_without_a_secret_commands_stay_on_the_node_and_say_so(start_daemon):
    r = start_daemon.redis()
    d1 = node(start_daemon, r, control_secret="")
    d2 = node(start_daemon, r, control_secret="")
    a2 = Client(d2.port, tok("alice"))
    rep = adm(d1, "kick-user alice")
    assert rep["scope"] == "node" and "control_secret" in rep["warning"], rep
    assert rep["kicked"] == 0
    rep = adm(d1, "kick 00000000-0000-4000-8000-000000000000")
    assert rep["ok"] is False and rep["error"] == "no such connection", rep
    # a correctly signed message is not taken without a secret to check it
    assert proclib.publish(r.port, CC, signed("kick-user", "alice")) == 2
    wait_for(lambda: bstats(d2)["control_ignored"] >= 1, 5, "ignored")
    assert a2.alive()


# ------------------------------------------------------------- forgeries

def test_forged_stale_and_replayed_messages_do_nothing(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    victims = [Client(d1.port, tok("mallory")), Client(d2.port, tok("mallory"))]

    def bad(msg, counter, n):
        before = [bstats(d)[counter] for d in (d1, d2)]
        assert proclib.publish(r.port, CC, msg) == 2
        wait_for(lambda: all(bstats(d)[counter] >= b + n for d, b in zip((d1, d2), before)),
                 5, counter)

    bad("not a control message", "control_forged", 1)
    bad(signed("kick-user", "mallory", secret="another-secret-123456"), "control_forged", 1)
    good = signed("kick-user", "mallory")
    bad(good.replace("mallory", "mallorx"), "control_forged", 1)	# MAC no longer fits
    bad(signed("kick-user", "mallory", extra={"evil": 1}), "control_forged", 1)
    bad(signed("kick-user", "mallory", ts=int(time.time() * 1000) - 120000),
        "control_stale", 1)
    bad(signed("kick-user", "mallory", ts=int(time.time() * 1000) + 120000),
        "control_stale", 1)
    bad(signed("revoke", "x", until=0), "control_forged", 1)
    for c in victims:
        assert c.alive()
    assert stats(d1)["connections"] == 1 and stats(d2)["connections"] == 1
    # the genuine one works once ...
    assert proclib.publish(r.port, CC, good) == 2
    for c in victims:
        code, reason, _ = closed(c)
        assert (code, reason) == (1008, "Disconnected by an administrator")
    # ... and replayed, does nothing to mallory's new connections
    again = [Client(d1.port, tok("mallory")), Client(d2.port, tok("mallory"))]
    bad(good, "control_replayed", 1)
    for c in again:
        assert c.alive()
    log = d2.log()
    assert SECRET not in log and "control message dropped" in log


# ------------------------------------------------------------- revocation

def test_revoke_refuses_the_token_everywhere_and_closes_its_connections(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    bad_tok, good_tok = tok("u1", jti="leaked-1"), tok("u1", jti="fine-2")
    live2 = Client(d2.port, bad_tok)
    live1 = Client(d1.port, bad_tok)
    keep = Client(d2.port, good_tok)
    nojti = Client(d2.port, tok("u1"))
    rep = adm(d1, "revoke leaked-1 2h")
    assert rep["ok"] and rep["jti"] == "leaked-1" and rep["scope"] == "cluster", rep
    assert rep["nodes"] == 2 and rep["until"].endswith("Z")
    for c in (live1, live2):
        code, reason, seen = closed(c)
        assert (code, reason) == (1008, "Token revoked"), (code, reason)
        assert seen[-1]["type"] == "error" and seen[-1]["message"] == "Token revoked"
    assert keep.alive() and nojti.alive()
    for d in (d1, d2):
        msgs, code, reason = refused(d.port, bad_tok)
        assert msgs[-1]["message"] == "Invalid token: token revoked", msgs
        assert (code, reason) == (1008, "Token revoked")
        assert not any(m["type"] == "connected" for m in msgs)
    # auth with it: refused, the connection keeps what it had
    m = keep.reply({"type": "auth", "token": bad_tok})
    assert m["type"] == "error" and m["message"] == "Invalid token: token revoked", m
    assert keep.alive()
    assert stats(d2)["tokens_revoked"] >= 3 and stats(d2)["revocations"] == 1
    assert r.command("HEXISTS", CC + ":revoked", "leaked-1") == b":1\r\n"
    # unrevoke: accepted again on both
    rep = adm(d2, "unrevoke leaked-1")
    assert rep["ok"] and rep["removed"] is True and rep["scope"] == "cluster", rep
    wait_for(lambda: stats(d1)["revocations"] == 0, 5, "unrevoked on d1")
    assert accepted(d1.port, bad_tok) and accepted(d2.port, bad_tok)
    # Redis keeps the unrevoke's mark, for nodes that missed it
    assert r.command("HGET", CC + ":revoked", "leaked-1").split(b"\r\n")[1].startswith(b"~")


def test_revocation_survives_restarts_and_reaches_late_nodes(start_daemon):
    r = start_daemon.redis()
    d1 = node(start_daemon, r)
    bad_tok = tok("u9", jti="old-token")
    assert adm(d1, "revoke old-token")["scope"] == "cluster"
    # a node that starts later reads it from Redis
    d2 = node(start_daemon, r)
    wait_for(lambda: stats(d2)["revocations"] == 1, 5, "loaded on d2")
    assert refused(d2.port, bad_tok)[1:] == (1008, "Token revoked")
    assert bstats(d2)["revocations_loaded"] == 1
    # and the node that revoked it, restarted, still refuses it
    d1.stop()
    d1.respawn()
    d1.deaths.pop()
    rtlib.wait_settled(d1, 1)
    wait_for(lambda: stats(d1)["revocations"] == 1, 5, "loaded again on d1")
    assert refused(d1.port, bad_tok)[1:] == (1008, "Token revoked")
    # a stored value nobody signed is not taken
    r.command("HSET", CC + ":revoked", "forged-jti", "9999999999 " + "0" * 64)
    d3 = node(start_daemon, r)
    wait_for(lambda: bstats(d3)["revocations_bad"] == 1, 5, "bad stored value counted")
    assert stats(d3)["revocations"] == 1
    assert accepted(d3.port, tok("u9", jti="forged-jti"))


def test_a_late_node_reads_every_stored_revocation_page_by_page(start_daemon):
    """2,500 revocations stored in Redis (more than one page of the read):
    a node that starts later holds every one of them, and refuses them."""
    r = start_daemon.redis()
    until = int(time.time()) + 3600
    entries = []
    for i in range(2500):
        jti = "stored-%04d" % i
        mac = hmac.new(SECRET.encode(), ("revoke %s %d" % (jti, until)).encode(),
                       hashlib.sha256).hexdigest()
        entries += [jti, "%d %s" % (until, mac)]
    s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
    try:
        s.sendall(b"".join(proclib.resp_command("HSET", CC + ":revoked", *entries[i:i + 200])
                           for i in range(0, len(entries), 200)))
        buf = b""
        while buf.count(b"\r\n") < len(entries) // 200:
            buf += s.recv(65536)
    finally:
        s.close()
    assert r.command("HLEN", CC + ":revoked") == b":2500\r\n"
    d = node(start_daemon, r)
    wait_for(lambda: stats(d)["revocations"] == 2500, 10, "all 2,500 loaded")
    assert bstats(d)["revocations_loaded"] >= 2500
    for jti in ("stored-0000", "stored-1234", "stored-2499"):
        assert refused(d.port, tok("u7", jti=jti))[1:] == (1008, "Token revoked")
    assert accepted(d.port, tok("u7", jti="stored-2500"))
    assert "HSCAN" not in d.log()		# no error, no answer of another shape
    # read in pages, not in one reply of the whole table
    stats_text = r.command("INFO", "commandstats").decode()
    calls = re.search(r"cmdstat_hscan:calls=(\d+)", stats_text)
    assert calls and int(calls.group(1)) >= 3, stats_text


def test_an_unrevoke_a_node_missed_is_read_back_from_redis(start_daemon):
    """d2's bridge is frozen while d1 unrevokes, then killed: the message is
    lost with its connection, and the new bridge finds the unrevoke's mark."""
    import signal
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r)
    t = tok("u1", jti="came-back")
    adm(d1, "revoke came-back 1h")
    wait_for(lambda: stats(d2)["revocations"] == 1, 5, "revoked on d2")
    bridge = rtlib.roles(d2.proc.pid)[rtlib.BRIDGE]
    os.kill(bridge, signal.SIGSTOP)
    try:
        rep = adm(d1, "unrevoke came-back")
        assert rep["ok"] and rep["scope"] == "cluster", rep
    finally:
        os.kill(bridge, signal.SIGKILL)
    assert stats(d2)["revocations"] == 1		# the master still holds it
    assert r.command("HGET", CC + ":revoked", "came-back").split(b"\r\n")[1].startswith(b"~")
    wait_for(lambda: rtlib.roles(d2.proc.pid).get(rtlib.BRIDGE) not in (None, bridge), 10,
             "a new bridge")
    wait_for(lambda: stats(d2)["revocations"] == 0, 10, "the unrevoke read back")
    assert accepted(d2.port, t)
    d2.deaths.clear()


def test_revocation_until_ends_it(start_daemon):
    r = start_daemon.redis()
    d = node(start_daemon, r)
    t = tok("u1", jti="short")
    rep = adm(d, "revoke short 2s")
    assert rep["ok"], rep
    assert refused(d.port, t)[1:] == (1008, "Token revoked")
    time.sleep(2.2)
    assert accepted(d.port, t)
    for bad in ("revoke short 0s", "revoke short yesterday", "revoke short 1000",
                "revoke short 2020-01-01T00:00:00Z", "revoke", "unrevoke",
                "revoke a b c"):
        rep = adm(d, bad)
        assert rep["ok"] is False, (bad, rep)


def test_revocation_made_while_redis_is_down_reaches_the_others(start_daemon, tmp_path):
    port = rtlib.free_port()

    def redis_up():
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None,
                 10, "redis", tolerate=(OSError,))
        return p

    class R:
        url = "redis://127.0.0.1:%d" % port
    rp = redis_up()
    try:
        d1, d2 = node(start_daemon, R), node(start_daemon, R)
        rp.terminate()
        rp.wait(5)
        wait_for(lambda: bstats(d1)["redis"] == "down" and bstats(d2)["redis"] == "down",
                 10, "redis down")
        t = tok("u1", jti="while-down")
        rep = adm(d1, "revoke while-down 1h")
        assert rep["ok"] and rep["scope"] == "node" and "redis is down" in rep["warning"], rep
        assert bstats(d1)["control_queued"] == 1
        assert refused(d1.port, t)[1:] == (1008, "Token revoked")
        assert accepted(d2.port, t)			# d2 could not know yet
        rp = redis_up()				# an empty Redis: nothing stored
        wait_for(lambda: stats(d2)["revocations"] == 1, 15, "reached d2")
        assert refused(d2.port, t)[1:] == (1008, "Token revoked")
        assert bstats(d1)["control_queued"] == 0
        # and it is stored for nodes that come later
        wait_for(lambda: b"while-down" in rtlib_redis(port, "HKEYS", CC + ":revoked"),
                 5, "stored")
    finally:
        rp.terminate()
        rp.wait(5)


def rtlib_redis(port, *args):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        s.sendall(proclib.resp_command(*args))
        return s.recv(65536)
    finally:
        s.close()


# ------------------------------------------------------------- node registry

def test_nodes_lists_the_live_nodes_and_forgets_a_dead_one(start_daemon):
    r = start_daemon.redis()
    d1, d2 = node(start_daemon, r), node(start_daemon, r, control_secret="")
    c = Client(d2.port, tok())

    def listed(d):
        rep = adm(d, "nodes")
        assert rep["ok"], rep
        return {n["id"]: n for n in rep["nodes"]}

    def ids():
        return set(listed(d1))

    def entry(d, of):
        return [v for k, v in listed(d).items() if k.endswith(":%d" % of.port)]

    wait_for(lambda: len(ids()) == 2, 5, "two nodes")
    # refreshed every node_ttl / 3: the connection shows within a second
    wait_for(lambda: entry(d1, d2)[0]["connections"] == 1, 5, "d2's connection listed")
    n = listed(d1)
    two = entry(d1, d2)
    assert len(two) == 1, n
    e = two[0]
    assert e["connections"] == 1 and e["workers"] == 1 and e["control"] is False, e
    assert e["host"] == socket.gethostname() and e["started"].endswith("Z")
    assert e["expires"] > time.time() * 1000
    one = [v for k, v in n.items() if k.endswith(":%d" % d1.port)][0]
    assert one["control"] is True
    rc, out, err = rtlib.ctl(d1.conf["admin_socket"], "nodes")
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["id", "host", "version"], out
    assert len(out.splitlines()) == 3, out
    rc, j = rtlib.ctl_json(d1.conf["admin_socket"], "nodes")
    assert rc == 0 and len(j["nodes"]) == 2
    c.close()
    # a node that dies is gone within node_ttl (3 s here)
    kids = list(rtlib.children(d2.proc.pid))
    os.kill(d2.proc.pid, 9)		# its children leave when they see it gone
    d2.proc.wait(5)
    wait_for(lambda: len(ids()) == 1, 8, "the dead node gone")
    wait_for(lambda: not any(os.path.exists("/proc/%d" % k) for k in kids), 10,
             "d2's children gone")
    d2.respawn()			# for the fixture's clean stop
    d2.deaths.clear()


def test_bad_control_settings_are_configuration_errors(tmp_path):
    for line, key in (("node_id bad id!", b"node_id"), ("control_secret short", b"control_secret"),
                      ("control_channel bad channel", b"control_channel"),
                      ("max_revocations 1", b"max_revocations")):
        f = tmp_path / "bad.conf"
        f.write_text(line + "\n")
        rc = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(f)], capture_output=True,
                            env=rtlib.clean_env(), timeout=10)
        assert rc.returncode != 0 and key in rc.stderr, (line, rc)
