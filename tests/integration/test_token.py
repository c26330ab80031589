"""The token's lifecycle on one connection (PROTOCOL.md "Refreshing the
token"): `connected` carries expiresAt; {"type":"auth"} refreshes the token
in-band (or authenticates an anonymous connection), moves the expiry,
re-checks every subscription; a bad or foreign token changes nothing;
token_expiring comes once per token before exp.  Real daemon, real
clients; every wait bounded."""
import json
import time

import proclib
import rtlib
from rtlib import Client, wait_for


def start(start_daemon, **conf):
    c = {"canary_interval": "0", "jwt_leeway": "0"}
    c.update(conf)
    return proclib.start_settled(start_daemon, 1, **c)


def tok(exp_in=3600, **claims):
    now = int(time.time())
    c = {"userId": "u1", "iat": now - 10, "exp": now + exp_in}
    c.update(claims)
    return rtlib.mint(c)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def exp_of(token):
    import base64
    p = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["exp"]


def auth(c, token):
    return c.reply({"type": "auth", "token": token})


def stat(d, key):
    return rtlib.admin(d.conf["admin_socket"], "stats")["stats"][key]


def test_connected_carries_expires_at(start_daemon):
    d, r = start(start_daemon)
    t = tok()
    c = Client(d.port, t, expect_connected=False)
    m = c.ws.recv_json()
    assert m["type"] == "connected" and m["expiresAt"] == iso(exp_of(t)), m
    a = Client(d.port, None, expect_connected=False)
    m = a.ws.recv_json()
    assert m["type"] == "connected" and m["expiresAt"] is None, m


def test_an_exp_past_the_year_9999_is_9999(start_daemon):
    """exp beyond what a timestamp can say (2^63 - 1, 1e300): the token
    is good until 9999-12-31T23:59:59Z, which expiresAt says, and the
    connection is not closed as expired."""
    d, r = start(start_daemon)
    for exp in (2 ** 63 - 1, 1e300):
        c = Client(d.port, tok(exp=exp), expect_connected=False)
        m = c.ws.recv_json()
        assert m["type"] == "connected" and m["expiresAt"] == "9999-12-31T23:59:59.000Z", m
        assert c.reply({"type": "ping"}, timeout=5)["type"] == "pong"
        time.sleep(0.3)
        assert c.alive()
        c.close()


def test_auth_refresh_moves_the_expiry(start_daemon):
    d, r = start(start_daemon, token_refresh_notice="0")
    c = Client(d.port, tok(exp_in=2))
    c.subscribe("apps:created")
    t2 = tok(exp_in=3600)
    m = auth(c, t2)
    assert m["type"] == "authenticated", m
    assert m["user"]["userId"] == "u1" and m["expiresAt"] == iso(exp_of(t2))
    assert "apps:created" in m["authorizedChannels"] and "user:u1" in m["authorizedChannels"]
    time.sleep(3)		# past the first token's exp
    assert c.alive()
    proclib.publish(r.port, "apps:created", '{"still":true}')
    assert c.next_event()["data"] == {"still": True}
    assert stat(d, "auth_refreshed") == 1


def test_without_refresh_the_token_expires_1008(start_daemon):
    d, r = start(start_daemon, token_refresh_notice="0")
    c = Client(d.port, tok(exp_in=1))
    code, seen = c.expect_close(6)
    assert code == 1008
    assert any(m.get("message") == "Token expired" for m in seen), seen


def test_a_fractional_exp_counts_to_the_millisecond(start_daemon):
    """RFC 7519 NumericDate may be non-integral: exp 3.9 s from now is
    said to the millisecond in expiresAt (connected, authenticated) and
    the connection lives until then, not until the whole second before."""
    d, r = start(start_daemon, token_refresh_notice="0")
    exp = int(time.time()) + 3 + 0.875
    t = tok(exp=exp)
    c = Client(d.port, t, expect_connected=False)
    m = c.ws.recv_json()
    want = iso(int(exp))[:-4] + "875Z"
    assert m["type"] == "connected" and m["expiresAt"] == want, m
    a = auth(c, tok(exp=exp))
    assert a["type"] == "authenticated" and a["expiresAt"] == want, a
    code, seen = c.expect_close(8)
    closed = time.time()
    assert code == 1008 and any(x.get("message") == "Token expired" for x in seen), seen
    assert closed >= exp, (closed, exp)	# truncated, it ended 0.875 s early
    # past it, the handshake refuses the same token
    msgs, code = _refusal(d.port, tok(exp=time.time() - 0.25))
    assert code == 1008 and any("token expired" in x.get("message", "") for x in msgs), msgs


def test_anonymous_authenticates_in_band(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, None)
    assert c.reply({"type": "subscribe", "channel": "apps:created"})["type"] == "error"
    c.subscribe("announcements")
    m = auth(c, tok(userId="late"))
    assert m["type"] == "authenticated" and m["user"]["userId"] == "late", m
    assert "user:late" in m["authorizedChannels"]
    c.subscribe("apps:created")
    c.subscribe("user:late")
    lc = c.reply({"type": "list_channels"})
    assert sorted(lc["subscribedChannels"]) == ["announcements", "apps:created", "user:late"]
    st = rtlib.admin(d.conf["admin_socket"], "stats")["stats"]
    assert (st["authenticated"], st["anonymous"]) == (1, 0), st
    conns = rtlib.admin(d.conf["admin_socket"], "connections")["connections"]
    assert [x["user"] for x in conns] == ["late"], conns
    # and the admin can kick the user it became
    rc, out, err = rtlib.ctl(d.conf["admin_socket"], "kick-user", "late")
    assert rc == 0, err
    code, _ = c.expect_close(5)
    assert code == 1008


def test_a_token_of_another_user_changes_nothing(start_daemon):
    d, r = start(start_daemon)
    t = tok(userId="u1")
    c = Client(d.port, t)
    c.subscribe("user:u1")
    m = auth(c, tok(userId="u2"))
    assert m == {"type": "error", "message": "Token user mismatch", "request": "auth",
                 "timestamp": m["timestamp"]}, m
    assert c.alive()
    assert c.reply({"type": "subscribe", "channel": "user:u2"})["type"] == "error"
    proclib.publish(r.port, "user:u1", '{"mine":1}')
    assert c.next_event()["data"] == {"mine": 1}


def test_a_bad_token_is_an_error_not_a_close(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok())
    before = stat(d, "auth_failures")
    for bad, why in ((rtlib.mint({"userId": "u1", "exp": int(time.time()) + 60},
                                key="wrong-key-0123456789abcdef"),
                      "signature verification failed"),
                     (tok(exp_in=-100), "token expired"), ("x.y.z", None)):
        m = auth(c, bad)
        assert m["type"] == "error" and m["message"].startswith("Invalid token"), m
        if why:
            assert m["message"] == "Invalid token: " + why, m
    for bad in ({"type": "auth"}, {"type": "auth", "token": ""},
                {"type": "auth", "token": 5}, {"type": "auth", "token": "a" * 9000}):
        m = c.reply(bad)
        assert m["type"] == "error", (bad, m)
    assert c.alive()
    assert stat(d, "auth_failures") - before >= 3


def test_a_demoting_token_ends_what_it_no_longer_allows(start_daemon):
    d, r = start(start_daemon)
    c = Client(d.port, tok(userId="boss", role="admin"))
    c.subscribe("system:alerts")
    c.subscribe("apps:created")
    c.ws.send_json({"type": "auth", "token": tok(userId="boss")})
    got = [c.ws.recv_json(), c.ws.recv_json()]
    assert got[0]["type"] == "authenticated" and "role" not in got[0]["user"], got
    assert "system:alerts" not in got[0]["authorizedChannels"]
    assert {k: got[1][k] for k in ("type", "channel", "reason")} == \
        {"type": "unsubscribed", "channel": "system:alerts", "reason": "not authorized"}, got
    proclib.publish(r.port, "system:alerts", '{"x":1}')
    proclib.publish(r.port, "apps:created", '{"y":1}')
    assert c.next_event()["channel"] == "apps:created"
    assert c.no_event(0.3)
    assert c.reply({"type": "subscribe", "channel": "system:alerts"})["type"] == "error"


def test_token_expiring_once_before_exp_and_again_after_a_refresh(start_daemon):
    d, r = start(start_daemon, token_refresh_notice="2s")
    t = tok(exp_in=4)
    c = Client(d.port, t)
    deadline = time.monotonic() + 4
    notices = []
    while time.monotonic() < deadline and not notices:
        m = c.ws.recv_json(max(0.05, deadline - time.monotonic()))
        if m["type"] == "token_expiring":
            notices.append((time.time(), m))
    assert notices, "no token_expiring"
    at, m = notices[0]
    assert m["expiresAt"] == iso(exp_of(t))
    assert exp_of(t) - at <= 2.5, (exp_of(t) - at)
    # the same token again is no news: no second notice
    assert auth(c, t)["type"] == "authenticated"
    try:
        m = c.ws.recv_json(0.5)
        assert m["type"] != "token_expiring", m
    except (TimeoutError, OSError):
        pass
    # a refresh with a new exp re-arms it
    t2 = tok(exp_in=3)		# already inside the window: at once
    m = auth(c, t2)
    assert m["type"] == "authenticated"
    m = c.ws.recv_json(2)
    assert m["type"] == "token_expiring" and m["expiresAt"] == iso(exp_of(t2)), m
    assert stat(d, "token_expiring_sent") == 2


def test_auth_is_rate_limited_like_any_message(start_daemon):
    d, r = start(start_daemon, max_client_messages_per_sec="5", client_messages_burst="5")
    c = Client(d.port, tok())
    for _ in range(10):
        c.ws.send_json({"type": "auth", "token": "x.y.z"})
    code, seen = c.expect_close(5)
    assert code == 1008
    assert any(m.get("message") == "Rate limit exceeded" for m in seen), seen


def _refusal(port, token):
    """A handshake with token that must be refused: (messages, close code)."""
    ws = rtlib.RawWS(port, "/ws?token=" + token)
    try:
        code, reason, seen = ws.recv_close()
        return [json.loads(p) for p in seen], code
    finally:
        ws.close_socket()


def test_the_token_cache_answers_reconnects_but_never_a_revoked_token_or_old_keys(start_daemon):
    """token_cache (on by default): the same token again skips the
    signature work, shows in stats; a revocation still refuses it; a
    reload with a new secret empties the cache and refuses it."""
    import os
    import signal
    d, r = start(start_daemon)
    wait_for(lambda: rtlib.admin(d.conf["admin_socket"], "stats")["stats"]["bridge"]["redis"]
             == "up", 10, "redis up")
    keys = ("token_cache_hits", "token_cache_misses", "token_cache_entries")
    before = {k: stat(d, k) for k in keys}
    t = tok(jti="cache-1")
    for _ in range(4):
        c = Client(d.port, t)
        assert c.user["userId"] == "u1", c.user
        assert c.alive()
        c.ws.close_socket()
    assert stat(d, "token_cache_misses") - before["token_cache_misses"] == 1
    assert stat(d, "token_cache_hits") - before["token_cache_hits"] == 3
    assert stat(d, "token_cache_entries") >= 1
    assert stat(d, "token_cache_bytes") > len(t)

    # revoked while kept: the cache answers, the revocation still refuses
    rep = rtlib.admin(d.conf["admin_socket"], "revoke cache-1 1h")
    assert rep["ok"], rep
    msgs, code = _refusal(d.port, t)
    assert code == 1008, (code, msgs)
    assert msgs and msgs[-1]["message"] == "Invalid token: token revoked", msgs
    assert stat(d, "token_cache_hits") - before["token_cache_hits"] == 4

    # kept, then the secret changes: the reload drops every kept token
    t2 = tok(jti="cache-2")
    Client(d.port, t2).ws.close_socket()
    Client(d.port, t2).ws.close_socket()
    assert stat(d, "token_cache_hits") - before["token_cache_hits"] == 5
    new_secret = "another-secret-for-the-reload-0123456789"
    with open(d.conf_path) as f:
        text = f.read()
    assert "jwt_secret %s\n" % rtlib.SECRET in text
    with open(d.conf_path, "w") as f:
        f.write(text.replace("jwt_secret %s\n" % rtlib.SECRET, "jwt_secret %s\n" % new_secret))
    os.kill(d.proc.pid, signal.SIGHUP)
    wait_for(lambda: stat(d, "token_cache_entries") == 0, 10, "the reload to empty the cache")
    assert stat(d, "token_cache_bytes") == 0
    msgs, code = _refusal(d.port, t2)
    assert code == 1008, (code, msgs)
    assert msgs and msgs[-1]["message"] == "Invalid token: signature verification failed", msgs
    now = int(time.time())
    c = Client(d.port, rtlib.mint({"userId": "u2", "exp": now + 600}, key=new_secret))
    assert c.user["userId"] == "u2" and c.alive()
