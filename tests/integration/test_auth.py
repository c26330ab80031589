"""JWT authentication at the handshake (PROTOCOL.md "Authentication"):
the three token carriers, every supported algorithm, and every way a
token is refused: upgrade, error "Invalid token: <reason>", close 1008."""
import asyncio
import time

import pytest
import websockets

import rtlib
from rtlib import arun, mint, recv_json, recv_until_closed, RawWS

ISSUER = "https://issuer.example"
AUDIENCE = "realtime-api"


class Outcome:
    def __init__(self, first, code, subprotocol, rest):
        self.first, self.code, self.subprotocol, self.rest = \
            first, code, subprotocol, rest

    @property
    def connected(self):
        return self.first.get("type") == "connected"


async def _handshake(url, headers=None, subprotocols=None, hold=0.0):
    async with websockets.connect(url, extra_headers=headers,
                                  subprotocols=subprotocols,
                                  ping_interval=None, open_timeout=5,
                                  close_timeout=2) as ws:
        first = await recv_json(ws)
        if first.get("type") == "connected" and not hold:
            return Outcome(first, None, ws.subprotocol, [])
        rest, code = await recv_until_closed(ws, timeout=max(hold, 5))
        return Outcome(first, code, ws.subprotocol, rest)


def handshake(url, **kw):
    return arun(_handshake(url, **kw))


def assert_rejected(out, token=None, why=None):
    """why: words of which one must appear in the reason (the reasons of
    include/auth.h), so a token is refused for the right cause."""
    assert out.first["type"] == "error", out.first
    if why:
        words = (why,) if isinstance(why, str) else why
        assert any(w in out.first["message"].lower() for w in words), \
            "reason %r names none of %r" % (out.first["message"], words)
    assert out.first["message"].startswith("Invalid token: "), out.first
    assert len(out.first["message"]) > len("Invalid token: ")
    assert rtlib.TS_RE.match(out.first["timestamp"])
    if token:
        sig = token.split(".")[-1]
        assert token not in out.first["message"]
        assert not sig or sig not in out.first["message"]
    assert out.code == 1008
    assert not any(isinstance(m, dict) and m.get("type") == "connected"
                   for m in out.rest)


@pytest.fixture(scope="module")
def _hs(module_factory):
    return module_factory({"jwt_leeway": "5s"}, name="hs256")


@pytest.fixture
def hs(_hs, attach):
    return attach(_hs)


def q(d, token):
    return d.url + "?token=" + token


# ------------------------------------------------------------- carriers

def test_query_token_connects_as_user(hs):
    out = handshake(q(hs, mint(userId="alice")))
    assert out.connected
    assert out.first["user"]["userId"] == "alice"


def test_bearer_header_token_connects_as_user(hs):
    tok = mint(userId="bob")
    out = handshake(hs.url, headers={"Authorization": "Bearer " + tok})
    assert out.connected
    assert out.first["user"]["userId"] == "bob"


def test_subprotocol_token_connects_and_is_echoed(hs):
    tok = mint(userId="carol")
    out = handshake(hs.url, subprotocols=["token-" + tok])
    assert out.connected
    assert out.first["user"]["userId"] == "carol"
    assert out.subprotocol == "token-" + tok


def test_subprotocol_token_echoed_among_other_offers(hs):
    tok = mint(userId="dave")
    out = handshake(hs.url, subprotocols=["chat", "token-" + tok, "v2"])
    assert out.connected
    assert out.first["user"]["userId"] == "dave"
    assert out.subprotocol == "token-" + tok


def test_query_token_wins_over_header(hs):
    out = handshake(q(hs, mint(userId="from-query")),
                    headers={"Authorization": "Bearer " +
                             mint(userId="from-header")})
    assert out.first["user"]["userId"] == "from-query"


def test_header_token_wins_over_subprotocol_which_is_still_echoed(hs):
    sub = "token-" + mint(userId="from-subprotocol")
    out = handshake(hs.url, headers={"Authorization": "Bearer " +
                                     mint(userId="from-header")},
                    subprotocols=[sub])
    assert out.first["user"]["userId"] == "from-header"
    assert out.subprotocol == sub


def test_query_token_wins_over_subprotocol_which_is_still_echoed(hs):
    sub = "token-" + mint(userId="from-subprotocol")
    out = handshake(q(hs, mint(userId="from-query")), subprotocols=[sub])
    assert out.first["user"]["userId"] == "from-query"
    assert out.subprotocol == sub


def test_bad_subprotocol_token_is_echoed_then_closed_1008(hs):
    sub = "token-" + mint(userId="x", key="wrong-secret")
    out = handshake(hs.url, subprotocols=[sub])
    assert out.subprotocol == sub
    assert_rejected(out)


# --------------------------------------------------------------- claims

def test_user_object_carries_userid_email_role(hs):
    out = handshake(q(hs, mint(userId="u9", email="u9@example.com",
                               role="admin")))
    assert out.first["user"] == {"userId": "u9", "email": "u9@example.com",
                                 "role": "admin"}


def test_sub_claim_used_when_userid_absent(hs):
    tok = mint(claims={"sub": "subject-7", "exp": int(time.time()) + 60})
    out = handshake(q(hs, tok))
    assert out.connected
    assert out.first["user"]["userId"] == "subject-7"


def test_userid_preferred_over_sub(hs):
    out = handshake(q(hs, mint(userId="uid", sub="sid")))
    assert out.first["user"]["userId"] == "uid"


def test_missing_userid_and_sub_closes_1008(hs):
    tok = mint(claims={"email": "x@example.com",
                       "exp": int(time.time()) + 60})
    assert_rejected(handshake(q(hs, tok)), tok, why="userid")


# ----------------------------------------------------------- rejections

def test_expired_token_closes_1008(hs):
    tok = mint(exp_in=-60)
    assert_rejected(handshake(q(hs, tok)), tok, why="expired")


def test_expired_within_leeway_connects(hs):
    out = handshake(q(hs, mint(exp_in=-2)))
    assert out.connected


def test_token_without_exp_connects_by_default(hs):
    out = handshake(q(hs, mint(exp_in=None)))
    assert out.connected


def test_required_exp_missing_closes_1008(start_daemon):
    d = start_daemon({"jwt_require_exp": "yes"})
    tok = mint(exp_in=None)
    out = handshake(q(d, tok))
    assert_rejected(out, tok, why="missing exp")
    assert out.first["message"] == "Invalid token: missing exp claim"
    assert handshake(q(d, mint(exp_in=60))).connected


def test_nbf_in_future_closes_1008(hs):
    tok = mint(nbf=int(time.time()) + 120)
    assert_rejected(handshake(q(hs, tok)), tok, why="not yet valid")


def test_nbf_within_leeway_connects(hs):
    out = handshake(q(hs, mint(nbf=int(time.time()) + 2)))
    assert out.connected


def test_wrong_signature_closes_1008(hs):
    tok = mint(key="not-the-secret")
    assert_rejected(handshake(q(hs, tok)), tok, why="signature")


def test_tampered_payload_closes_1008(hs):
    good = mint(userId="victim").split(".")
    evil = mint(userId="admin1", role="admin").split(".")
    tok = ".".join([good[0], evil[1], good[2]])
    assert_rejected(handshake(q(hs, tok)), tok, why="signature")


def test_alg_none_token_closes_1008(hs):
    tok = rtlib.forge_token({"alg": "none", "typ": "JWT"},
                            {"userId": "u1",
                             "exp": int(time.time()) + 60})
    assert_rejected(handshake(q(hs, tok)), why=("algorithm", "malformed"))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithm_closes_1008(hs, alg):
    tok = mint(alg=alg)
    assert_rejected(handshake(q(hs, tok)), tok, why="algorithm")


@pytest.mark.parametrize("tok", ["abc", "a.b.c", "a.b", "....",
                                 "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"])
def test_malformed_token_closes_1008(hs, tok):
    assert_rejected(handshake(q(hs, tok)))


@pytest.mark.parametrize("value", ["abc%zz", "ab%2", "a%00b.c.d"])
def test_badly_percent_encoded_query_token_closes_1008(hs, value):
    # sent as is: a client library would re-encode the '%'
    ws = RawWS(hs.port, path="/ws?token=" + value)
    try:
        code, reason, seen = ws.recv_close()
        assert code == 1008 and reason == b"Invalid token", (code, reason)
        assert len(seen) == 1
        msg = rtlib.json.loads(seen[0])
        assert msg["type"] == "error"
        assert msg["message"] == "Invalid token: malformed token encoding"
    finally:
        ws.close_socket()


def test_too_long_query_token_closes_1008(start_daemon):
    d = start_daemon({"max_header_size": "16k"})
    ws = RawWS(d.port, path="/ws?token=" + "a" * 8193)
    try:
        code, _, seen = ws.recv_close()
        assert code == 1008
        msg = rtlib.json.loads(seen[0])
        assert msg["message"] == "Invalid token: token too long"
    finally:
        ws.close_socket()


def test_bad_bearer_token_closes_1008(hs):
    tok = mint(key="nope")
    out = handshake(hs.url, headers={"Authorization": "Bearer " + tok})
    assert_rejected(out, tok)


def test_invalid_token_sends_no_connected_message(hs):
    ws = RawWS(hs.port, path="/ws?token=" + mint(exp_in=-100))
    try:
        code, _, seen = ws.recv_close()
        assert code == 1008
        assert len(seen) == 1
        msg = rtlib.json.loads(seen[0])
        assert msg["type"] == "error"
    finally:
        ws.close_socket()


def test_token_never_logged(start_daemon):
    d = start_daemon()
    good = mint(userId="logged")
    bad = mint(userId="logged", key="wrong")
    assert handshake(q(d, good)).connected
    assert_rejected(handshake(q(d, bad)))
    time.sleep(0.2)
    log = d.log()
    for tok in (good, bad):
        assert tok.split(".")[2] not in log


def test_jwt_secret_env_overrides_config(start_daemon):
    d = start_daemon({"jwt_secret": "config-secret"},
                     env={"JWT_SECRET": "env-secret"})
    assert handshake(q(d, mint(key="env-secret"))).connected
    assert_rejected(handshake(q(d, mint(key="config-secret"))))


# ---------------------------------------------------------- expiry live

def test_token_expiry_while_connected_sends_error_and_closes_1008(
        start_daemon):
    d = start_daemon({"jwt_leeway": "0"})
    tok = mint(userId="short", exp_in=2)

    async def go():
        async with websockets.connect(q(d, tok), ping_interval=None,
                                      open_timeout=5) as ws:
            first = await recv_json(ws)
            assert first["type"] == "connected"
            t0 = time.monotonic()
            rest, code = await recv_until_closed(ws, timeout=6)
            return rest, code, time.monotonic() - t0

    rest, code, elapsed = arun(go())
    errors = [m for m in rest if m.get("type") == "error"]
    assert errors and errors[-1]["message"] == "Token expired", rest
    assert code == 1008
    assert elapsed < 5


# ----------------------------------------------------------- anonymous

def test_anonymous_allowed_connects_with_null_user(hs):
    out = handshake(hs.url)
    assert out.connected
    assert out.first["user"] is None


def test_anonymous_refused_gets_error_then_1008(start_daemon):
    d = start_daemon({"allow_anonymous": "no"})
    out = handshake(d.url, hold=1)
    assert out.first["type"] == "error"
    assert isinstance(out.first["message"], str) and out.first["message"]
    assert out.code == 1008
    assert not any(m.get("type") == "connected" for m in out.rest)


def test_anonymous_refused_still_accepts_valid_token(start_daemon):
    d = start_daemon({"allow_anonymous": "no"})
    assert handshake(q(d, mint(userId="ok"))).connected


# ------------------------------------------------------- iss and aud

@pytest.fixture(scope="module")
def _issaud(module_factory):
    return module_factory({"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE},
                          name="issaud")


@pytest.fixture
def issaud(_issaud, attach):
    return attach(_issaud)


def test_matching_issuer_and_audience_connects(issaud):
    assert handshake(q(issaud, mint(iss=ISSUER, aud=AUDIENCE))).connected


def test_audience_list_containing_configured_connects(issaud):
    tok = mint(iss=ISSUER, aud=["other", AUDIENCE])
    assert handshake(q(issaud, tok)).connected


def test_issuer_mismatch_closes_1008(issaud):
    tok = mint(iss="https://evil.example", aud=AUDIENCE)
    assert_rejected(handshake(q(issaud, tok)), tok, why="issuer")


def test_missing_issuer_closes_1008(issaud):
    tok = mint(aud=AUDIENCE)
    assert_rejected(handshake(q(issaud, tok)), tok, why="issuer")


def test_audience_mismatch_closes_1008(issaud):
    tok = mint(iss=ISSUER, aud="someone-else")
    assert_rejected(handshake(q(issaud, tok)), tok, why="audience")


def test_missing_audience_closes_1008(issaud):
    tok = mint(iss=ISSUER)
    assert_rejected(handshake(q(issaud, tok)), tok, why="audience")


# ------------------------------------------------- other algorithms

@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_hmac_config_accepts_its_algorithm(start_daemon, alg):
    d = start_daemon({"jwt_algorithm": alg})
    assert handshake(q(d, mint(alg=alg, userId="h"))).connected


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_hmac_config_rejects_hs256(start_daemon, alg):
    d = start_daemon({"jwt_algorithm": alg})
    assert_rejected(handshake(q(d, mint(alg="HS256"))))


@pytest.fixture(scope="module")
def _rs(module_factory, keypairs):
    return module_factory({"jwt_algorithm": "RS256", "jwt_secret": None,
                           "jwt_public_key": keypairs["rsa"]["public_path"]},
                          name="rs256")


@pytest.fixture
def rs(_rs, attach):
    return attach(_rs)


@pytest.fixture(scope="module")
def _es(module_factory, keypairs):
    return module_factory({"jwt_algorithm": "ES256", "jwt_secret": None,
                           "jwt_public_key": keypairs["ec"]["public_path"]},
                          name="es256")


@pytest.fixture
def es(_es, attach):
    return attach(_es)


def test_rs256_config_accepts_rs256_token(rs, keypairs):
    tok = mint(key=keypairs["rsa"]["private"], alg="RS256", userId="rsa")
    out = handshake(q(rs, tok))
    assert out.connected
    assert out.first["user"]["userId"] == "rsa"


def test_rs256_config_rejects_token_signed_by_other_key(rs, keypairs):
    tok = mint(key=keypairs["rsa_other"]["private"], alg="RS256")
    assert_rejected(handshake(q(rs, tok)), tok, why="signature")


def test_rs256_config_rejects_hs256_signed_with_public_key(rs, keypairs):
    tok = rtlib.hs_sign_with(keypairs["rsa"]["public"],
                             {"userId": "attacker", "role": "admin",
                              "exp": int(time.time()) + 60})
    assert_rejected(handshake(q(rs, tok)), tok, why="algorithm")


def test_rs256_config_rejects_hs256_with_shared_secret(rs):
    assert_rejected(handshake(q(rs, mint())))


def test_rs256_config_rejects_alg_none(rs):
    tok = rtlib.forge_token({"alg": "none"}, {"userId": "u1",
                                             "exp": int(time.time()) + 60})
    assert_rejected(handshake(q(rs, tok)))


def test_rs256_config_rejects_expired_token(rs, keypairs):
    tok = mint(key=keypairs["rsa"]["private"], alg="RS256", exp_in=-120)
    assert_rejected(handshake(q(rs, tok)), tok, why="expired")


def test_es256_config_accepts_es256_token(es, keypairs):
    tok = mint(key=keypairs["ec"]["private"], alg="ES256", userId="ec")
    out = handshake(q(es, tok))
    assert out.connected
    assert out.first["user"]["userId"] == "ec"


def test_es256_config_rejects_token_signed_by_other_key(es, keypairs):
    tok = mint(key=keypairs["ec_other"]["private"], alg="ES256")
    assert_rejected(handshake(q(es, tok)), tok, why="signature")


def test_es256_config_rejects_rs256_token(es, keypairs):
    tok = mint(key=keypairs["rsa"]["private"], alg="RS256")
    assert_rejected(handshake(q(es, tok)), tok, why="algorithm")


def test_es256_config_rejects_hs256_signed_with_public_key(es, keypairs):
    tok = rtlib.hs_sign_with(keypairs["ec"]["public"],
                             {"userId": "attacker",
                              "exp": int(time.time()) + 60})
    assert_rejected(handshake(q(es, tok)), tok)


def test_bearer_scheme_is_case_insensitive(hs):
    # RFC 7235: the auth-scheme token is case-insensitive
    out = handshake(hs.url, headers={"Authorization":
                                     "bearer " + mint(userId="lower")})
    assert out.connected
    assert out.first["user"]["userId"] == "lower"


def test_non_bearer_authorization_is_ignored(hs):
    out = handshake(hs.url, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert out.connected
    assert out.first["user"] is None


def test_client_answering_rejection_close_keeps_daemon_alive(start_daemon):
    # the normal closing handshake: the server closes 1008, the client
    # answers with its own close frame, then the server drops the TCP
    d = start_daemon()
    for _ in range(5):
        ws = RawWS(d.port, path="/ws?token=" + mint(key="wrong"))
        try:
            code, _, seen = ws.recv_close()
            assert code == 1008
            ws.send_close(1008)
            assert ws.wait_eof(5)
        finally:
            ws.close_socket()
    time.sleep(0.1)
    assert d.alive(), "realtimed died after a client answered its close"
    # 503 only says Redis is absent here; an answer proves the worker lives
    assert rtlib.http_get(d.port, "/health")[0] in (200, 503)
