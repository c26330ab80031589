"""Authorization is never bypassable: fuzz-style channel names (case
variants, Unicode look-alikes, full-width colons, separators after
"user:<id>", percent-encoding, NUL bytes, very long names, empty suffixes,
other users' ids) for anonymous clients, users, an admin and users whose
role only looks like "admin".  The expected verdict is computed here from
PROTOCOL.md's table alone, not from the daemon's code, and no event
published on a channel a client may not use ever reaches it (checked with a
trailing sentinel event on an allowed channel, while an admin witness is
subscribed to those channels so the daemon does route them).
"""
import asyncio
import json
import time

import pytest

import proclib
import rtlib
from proclib import FastWS

# ------------------------------------------------- PROTOCOL.md, as data

NAME_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                 b"0123456789_.:@-")
# pattern -> who; "prefix:*" means the prefix plus a non-empty suffix
TABLE = [
    ("announcements", "everyone"),
    ("apps:*", "authenticated"),
    ("users:*", "authenticated"),
    ("user:*", "self"),
    ("database:*", "authenticated"),
    ("deployments:*", "authenticated"),
    ("storage:*", "authenticated"),
    ("system:*", "admin"),
]
WELL_KNOWN = {
    "announcements": ["announcements"],
    "apps:*": ["apps:" + s for s in
               "created updated deleted deployed status".split()],
    "users:*": ["users:" + s for s in "created updated deleted".split()],
    "database:*": ["database:" + s for s in
                   "table_created table_updated table_deleted "
                   "row_updated".split()],
    "deployments:*": ["deployments:" + s for s in
                      "started completed failed status".split()],
    "storage:*": ["storage:" + s for s in "uploaded deleted updated".split()],
    "system:*": ["system:" + s for s in "health metrics alerts".split()],
}
DENIED_TEXT = "Not authorized to subscribe to this channel"


def name_valid(name):
    b = name.encode("utf-8", "surrogatepass")
    return 1 <= len(b) <= 200 and all(c in NAME_CHARS for c in b)


def verdict(name, who):
    """"ok", "denied", "unknown" or "invalid" for identity who (None:
    anonymous; else {"id": str, "admin": bool})."""
    if not name_valid(name):
        return "invalid"
    for pattern, rule in TABLE:
        if pattern.endswith(":*"):
            prefix = pattern[:-1]
            if not (name.startswith(prefix) and len(name) > len(prefix)):
                continue
            suffix = name[len(prefix):]
        elif name != pattern:
            continue
        else:
            suffix = None
        if rule == "everyone":
            ok = True
        elif rule == "authenticated":
            ok = who is not None
        elif rule == "admin":
            ok = who is not None and who["admin"]
        else:   # self: that user (byte for byte), or an admin
            ok = who is not None and (who["admin"] or suffix == who["id"])
        return "ok" if ok else "denied"
    return "unknown"


def expected_authorized(who):
    out = {"announcements"}
    for pattern, rule in TABLE:
        if rule == "authenticated" and who is not None or \
                rule == "admin" and who is not None and who["admin"]:
            out.update(WELL_KNOWN[pattern])
    if who is not None and name_valid("user:" + who["id"]):
        out.add("user:" + who["id"])
    return out


# ----------------------------------------------------------- principals

def _claims(**kw):
    now = int(time.time())
    c = {"iat": now, "exp": now + 3600}
    c.update(kw)
    return c


# name -> (claims or None, identity the table applies to)
PRINCIPALS = {
    "anonymous": (None, None),
    "user-u1": (_claims(userId="u1"), {"id": "u1", "admin": False}),
    "user-u2-role-user": (_claims(userId="u2", role="user"),
                          {"id": "u2", "admin": False}),
    "admin": (_claims(userId="adm", role="admin", email="a@b.c"),
              {"id": "adm", "admin": True}),
    "role-Admin": (_claims(userId="u3", role="Admin"),
                   {"id": "u3", "admin": False}),
    "role-admin-space": (_claims(userId="u4", role="admin "),
                         {"id": "u4", "admin": False}),
    "role-ADMIN": (_claims(userId="u5", role="ADMIN"),
                   {"id": "u5", "admin": False}),
    "role-administrator": (_claims(userId="u7", role="administrator"),
                           {"id": "u7", "admin": False}),
    "sub-only": (_claims(sub="s9"), {"id": "s9", "admin": False}),
    "userId-beats-sub": (_claims(userId="u6", sub="adm"),
                         {"id": "u6", "admin": False}),
    "colon-id": (_claims(userId="u1:x"), {"id": "u1:x", "admin": False}),
    "upper-id": (_claims(userId="U1"), {"id": "U1", "admin": False}),
}


def token_of(principal):
    claims = PRINCIPALS[principal][0]
    return None if claims is None else rtlib.mint(claims=claims)


# ----------------------------------------------------------- candidates

CYR = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440",
       "c": "\u0441", "y": "\u0443", "s": "\u0455", "i": "\u0456"}


def _variants(base):
    out = [base, base.upper(), base.capitalize(), base.swapcase(),
           base.title(), base + " ", " " + base, base + "\t", base + "\n",
           base + "\r\n", base + "\x00", "\x00" + base, base + "\u200b",
           base + ".", base + ":", base + "-", base + "@",
           base.replace(":", "\uff1a"), base.replace(":", "\ufe30"),
           base.replace(":", "%3A"), base.replace(":", "%3a"),
           base.replace(":", "::"), base.replace(":", ";"),
           base.replace(":", "/"), base.replace(":", "\u0589"),
           base + "*", base + "/..", base + "/../system:health",
           "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c
                   for c in base)]                     # full-width letters
    for latin, cyr in CYR.items():
        if latin in base:
            out.append(base.replace(latin, cyr, 1))
            out.append(base.replace(latin, cyr))
    return out


def candidates():
    names = []
    for ns in WELL_KNOWN.values():
        names += ns
    for base in ["announcements", "apps:created", "system:health",
                 "system:alerts", "users:created", "user:u1", "user:adm",
                 "storage:deleted"]:
        names += _variants(base)
    for p in ["apps", "users", "user", "database", "deployments", "storage",
              "system", "announcements"]:
        names += [p, p + ":", p + "::", p + ":*", p + ":%", p + ":.",
                  p + ":" + "x" * (199 - len(p)),   # 200 bytes
                  p + ":" + "x" * (200 - len(p))]   # 201 bytes
    for ident in ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "s9", "adm",
                  "U1", "u1:x", "anonymous", "null", "0", "*"]:
        names.append("user:" + ident)
    names += [
        "user:u1:x", "user:u1 ", "user:u1\t", "user:u1/../u2", "user:U1",
        "user:u1:", "user:u1.", "user:u1..", "user:u1@", "user:u1-",
        "user:u1\x00", "user:u1\x00u2", "user:u1\u200b", "user::u1",
        "user:.u1", "user:u1%00", "user%3Au1", "user: u1", "user:\u04311",
        "user:u\u0031", "user:\uff55\uff11", "user:u1\n", "users:u1",
        "users:adm", "useru1", "user", "user:", "USER:u1", "User:u1",
        "user:" + "u" * 195, "user:" + "u" * 196, "user:" + "u1" * 5000,
        "system:", "system:health:x", "system:health ", "system::",
        "apps:", "apps:created:x", "apps:created\x00system:health",
        "announcements\x00", "announcements\x00system:health",
        "announcements:", "announcements:x", "Announcements",
        "", " ", ":", "::", "*", "%", "a" * 100000,
        "\u0430pps:created", "apps\uff1acreated", "syst\u0435m:health",
    ]
    seen, out = set(), []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


CANDIDATES = candidates()


def _expect_self_check():
    """The verdict function itself, on names whose verdict is obvious."""
    u1 = {"id": "u1", "admin": False}
    adm = {"id": "adm", "admin": True}
    assert verdict("announcements", None) == "ok"
    assert verdict("apps:created", None) == "denied"
    assert verdict("apps:created", u1) == "ok"
    assert verdict("\u0430pps:created", u1) == "invalid"
    assert verdict("apps\uff1acreated", u1) == "invalid"
    assert verdict("user:u1", u1) == "ok"
    assert verdict("user:U1", u1) == "denied"
    assert verdict("user:u1:x", u1) == "denied"
    assert verdict("user:u1:x", adm) == "ok"
    assert verdict("user:u1 ", u1) == "invalid"
    assert verdict("user:u1\x00", u1) == "invalid"
    assert verdict("apps:", u1) == "unknown"
    assert verdict("system:", adm) == "unknown"
    assert verdict("system:health", u1) == "denied"
    assert verdict("system:health", adm) == "ok"
    assert verdict("APPS:created", adm) == "unknown"
    assert verdict("apps:" + "x" * 195, u1) == "ok"
    assert verdict("apps:" + "x" * 196, u1) == "invalid"


_expect_self_check()


# -------------------------------------------------------------- daemon

@pytest.fixture(scope="module")
def authz(module_factory):
    r = module_factory.redis()
    d = module_factory(conf={
        "workers": "1", "redis_url": r.url,
        # a fuzzing client sends a few hundred requests at once
        "max_client_messages_per_sec": "100000",
        "client_messages_burst": "100000",
        "max_subscriptions": "1000",
        "max_message_size": "1m",
    })
    rtlib.wait_settled(d, 1)
    return d, r


async def _connect(d, principal):
    c = await FastWS.connect(d.port, token_of(principal))
    return c


async def _requests(c, objs, timeout=10):
    """Send every request (dict, or str: raw JSON text), then read as many
    replies, in order."""
    for o in objs:
        c.send_frame(0x1, (o if isinstance(o, str) else json.dumps(o))
                     .encode())
    await c.w.drain()
    out = []
    for _ in objs:
        out.append(await c.recv_json(timeout))
    return out


def _sub(name):
    return {"type": "subscribe", "channel": name}


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("principal", list(PRINCIPALS))
def test_subscribe_verdicts_follow_the_table(authz, attach, principal):
    d, r = authz
    attach(d)
    who = PRINCIPALS[principal][1]

    async def main():
        c = await _connect(d, principal)
        try:
            hello = c.hello
            if who is None:
                assert hello["user"] is None, hello
            else:
                assert hello["user"]["userId"] == who["id"], hello
                assert (hello["user"].get("role") == "admin") == \
                    who["admin"], hello
            assert set(hello["authorizedChannels"]) == \
                expected_authorized(who), hello["authorizedChannels"]
            replies = await _requests(c, [_sub(n) for n in CANDIDATES])
            wrong = []
            for name, m in zip(CANDIDATES, replies):
                v = verdict(name, who)
                if v == "ok":
                    good = m["type"] == "subscribed" and \
                        m.get("channel") == name
                elif v == "denied":
                    good = m["type"] == "error" and \
                        m.get("message") == DENIED_TEXT
                else:       # unknown or invalid: some error reply
                    good = m["type"] == "error"
                if not good:
                    wrong.append((name[:80], v, m))
            assert not wrong, "%d wrong verdicts for %s, e.g. %r" % (
                len(wrong), principal, wrong[:8])
            oks = {n for n in CANDIDATES if verdict(n, who) == "ok"}
            m = await c.request({"type": "list_channels"})
            assert set(m["subscribedChannels"]) == oks, \
                set(m["subscribedChannels"]) ^ oks
            assert set(m["authorizedChannels"]) == expected_authorized(who)
            # stats: a non-admin sees connectionsByChannel only for channels
            # it could subscribe to itself
            m = await c.request({"type": "stats"})
            leaked = [ch for ch in m["data"]["connectionsByChannel"]
                      if verdict(ch, who) != "ok"]
            assert not leaked, "stats shows %s channels it may not use: %r" \
                % (principal, leaked[:10])
        finally:
            c.abort()
    rtlib.arun(main(), 60)


# requests shaped to confuse the parser or the policy check: none of them
# may leave a subscription the table does not grant
TRICKY = [
    '{"type":"subscribe","channel":"announcements","channel":"system:health"}',
    '{"type":"subscribe","channel":"system:health","channel":"announcements"}',
    '{"type":"subscribe","channel":"apps:created","channel":"user:u2"}',
    '{"type":"subscribe","channel":"user:u2","channel":"apps:created"}',
    '{"type":"subscribe","type":"ping","channel":"system:health"}',
    '{"type":"ping","type":"subscribe","channel":"system:health"}',
    '{"type":"subscribe","channel":"\\u0073ystem:health"}',
    '{"type":"subscribe","channel":"user:\\u0075\\u0032"}',
    '{"type":"subscribe","channel":"system:health\\u0000"}',
    '{"type":"subscribe","channel":"announcements\\u0000system:health"}',
    '{"type":"subscribe","channel":["system:health"]}',
    '{"type":"subscribe","channel":{"name":"system:health"}}',
    '{"type":"subscribe","channels":["system:health"]}',
    '{"type":"subscribe","channel":"system:health","role":"admin"}',
    '{"type":"subscribe","channel":"system:health","user":{"role":"admin"}}',
    '{"type":"subscribe","channel":"system:health","admin":true}',
    '{"type":"SUBSCRIBE","channel":"system:health"}',
    '{"type":"subscribe ","channel":"system:health"}',
    '{"type":"subscribe","channel":null}',
    '{"type":"subscribe","channel":1}',
    '[{"type":"subscribe","channel":"system:health"}]',
    '{"type":"subscribe","channel":"system:health"',
    '{"type":"subscribe","channel":"system:health"}{"x":1}',
    '{"type":"subscribe","channel":"system:health"} ',
    '{"type":"subscribe","channel":"user:u1","channel":"user:u2"}',
]


def _decode_last(raw):
    """The channel a permissive parser could take: every string value of
    a "channel" key (first and last win both considered)."""
    chans = []

    def hook(pairs):
        for k, v in pairs:
            if k == "channel" and isinstance(v, str):
                chans.append(v)
        return dict(pairs)
    try:
        json.loads(raw, object_pairs_hook=hook)
    except ValueError:
        try:
            json.JSONDecoder(object_pairs_hook=hook).raw_decode(raw)
        except ValueError:
            pass
    return chans


@pytest.mark.parametrize("principal", ["anonymous", "user-u1", "role-Admin"])
def test_tricky_requests_never_grant_more(authz, attach, principal):
    d, r = authz
    attach(d)
    who = PRINCIPALS[principal][1]

    async def main():
        c = await _connect(d, principal)
        try:
            replies = await _requests(c, TRICKY)
            for raw, m in zip(TRICKY, replies):
                if m["type"] == "subscribed":
                    ch = m.get("channel")
                    assert verdict(ch, who) == "ok", (raw, m)
                    assert ch in _decode_last(raw), (raw, m)
                else:
                    assert m["type"] in ("error", "pong"), (raw, m)
            m = await c.request({"type": "list_channels"})
            bad = [ch for ch in m["subscribedChannels"]
                   if verdict(ch, who) != "ok"]
            assert not bad, "%s subscribed to %r" % (principal, bad)
        finally:
            c.abort()
    rtlib.arun(main(), 30)


async def _events_until_sentinel(c, sentinel, timeout=15):
    """[(channel, data)] of every event c gets before the sentinel event."""
    got = []

    async def loop():
        while True:
            m = await c.recv_json(timeout)
            if m["type"] != "event":
                continue
            if m["data"] == {"sentinel": sentinel}:
                return got
            got.append((m["channel"], m["data"]))
    return await asyncio.wait_for(loop(), timeout)


def test_no_event_on_a_denied_channel_ever_arrives(authz, attach):
    d, r = authz
    attach(d)
    names = [n for n in CANDIDATES if len(n.encode()) < 4096]
    principals = list(PRINCIPALS)
    admin_who = PRINCIPALS["admin"][1]

    async def main():
        clients = {}
        try:
            # the witness: an admin on every channel an admin may use, so
            # the worker and the bridge do route events on those names
            witness = await _connect(d, "admin")
            wnames = [n for n in names if verdict(n, admin_who) == "ok"]
            rep = await _requests(witness, [_sub(n) for n in wnames])
            assert all(m["type"] == "subscribed" for m in rep)
            for p in principals:
                c = await _connect(d, p)
                clients[p] = c
                # every name, the tricky requests too: what sticks, sticks
                await _requests(c, [_sub("announcements")] +
                                [_sub(n) for n in names] + TRICKY)
            # round 1: an event on every name, then the sentinel
            msgs = [(n.encode("utf-8", "surrogatepass"),
                     json.dumps({"probe": i, "to": n}))
                    for i, n in enumerate(names)]
            msgs.append(("announcements", json.dumps({"sentinel": 1})))
            await asyncio.to_thread(proclib.publish_many, r.port, msgs)
            got_w = await _events_until_sentinel(witness, 1)
            assert sorted(ch for ch, _ in got_w) == sorted(wnames), \
                "the witness did not get exactly its channels' events"
            for p, c in clients.items():
                who = PRINCIPALS[p][1]
                got = await _events_until_sentinel(c, 1)
                denied = [(ch, data) for ch, data in got
                          if verdict(ch, who) != "ok"]
                assert not denied, "%s received events on channels it may " \
                    "not use: %r" % (p, denied[:5])
                crossed = [(ch, data) for ch, data in got
                           if data.get("to") != ch]
                assert not crossed, (p, crossed[:5])
                want = sorted(n for n in names if verdict(n, who) == "ok")
                assert sorted(ch for ch, _ in got) == want, \
                    "%s: events received != its allowed channels" % p
            # round 2: everyone unsubscribes (but from announcements), then
            # nothing but the sentinel may arrive
            for p, c in clients.items():
                rep = await _requests(c, [
                    {"type": "unsubscribe", "channel": n}
                    for n in names if n != "announcements"])
                m = await c.request({"type": "list_channels"})
                assert m["subscribedChannels"] == ["announcements"], (p, m)
            msgs[-1] = ("announcements", json.dumps({"sentinel": 2}))
            msgs = [(ch, data) for ch, data in msgs
                    if ch not in ("announcements", b"announcements")
                    or "sentinel" in data]
            await asyncio.to_thread(proclib.publish_many, r.port, msgs)
            for p, c in clients.items():
                got = await _events_until_sentinel(c, 2)
                assert not got, "%s got events after unsubscribing: %r" % (
                    p, got[:5])
            witness.abort()
        finally:
            for c in clients.values():
                c.abort()
    rtlib.arun(main(), 120)
    rtlib.wait_for(lambda: proclib.health_json(d.port)[1]["connections"]
                   == 0, 5, "every authz client gone",
                   tolerate=rtlib.TRANSIENT)
