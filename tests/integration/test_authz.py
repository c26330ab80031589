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


# =========================================== a configured namespace table
#
# The same questions against an operator's multi-tenant table (PROTOCOL.md
# "Channel namespaces"): a small model of the rules, written from the
# contract (shape first, the first namespace whose shape matches decides,
# then WHO, then every {claim} part equal to the caller's own claim, admin
# any), decides what the daemon must answer.  Claim values that look like
# pattern syntax ("o1:x", "*"), empty ones, integers and other JSON types
# must never widen what a pattern grants.

NS_LINES = [
    "announcements public",
    "status:page authenticated",
    "org:{orgId}:admin role=admin,owner",
    "org:{orgId}:* authenticated well_known=chat,billing",
    "user:{userId} self",
    "team:{teamId}.{userId} self",
    "billing:* role=billing,admin well_known=invoices",
    "ops:alerts role=admin",
    "pub:* public well_known=news,weather",
]


def ns_compile(pattern):
    """[("lit", s) | ("claim", name, following char or None) | ("star",)]"""
    parts, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            parts.append(("star",))
            i += 1
        elif ch == "{":
            j = pattern.index("}", i)
            parts.append(("claim", pattern[i + 1:j],
                          pattern[j + 1] if j + 1 < len(pattern) else None))
            i = j + 1
        else:
            j = i
            while j < len(pattern) and pattern[j] not in "*{":
                j += 1
            parts.append(("lit", pattern[i:j]))
            i = j
    return parts


def ns_parse(lines):
    """[(parts, who, roles, well_known)] of "PATTERN WHO [options]" lines."""
    table = []
    for line in lines:
        words = line.split()
        who, roles, wk = words[1], [], []
        if who.startswith("role="):
            who, roles = "role", who[5:].split(",")
        for opt in words[2:]:
            k, _, v = opt.partition("=")
            if k == "well_known":
                wk = v.split(",")
        table.append((ns_compile(words[0]), who, roles, wk))
    return table


def ns_shape(parts, name):
    """The (claim, value) captures if name has the pattern's shape, else
    None: '*' takes the rest (1+), a {claim} 1+ characters up to the first
    occurrence of the character after it (or the rest)."""
    pos, caps = 0, []
    for p in parts:
        if p[0] == "lit":
            if not name.startswith(p[1], pos):
                return None
            pos += len(p[1])
        elif p[0] == "star":
            if pos >= len(name):
                return None
            pos = len(name)
        else:
            if pos >= len(name):
                return None
            end = len(name) if p[2] is None else name.find(p[2], pos)
            if end <= pos:
                return None
            caps.append((p[1], name[pos:end]))
            pos = end
    return caps if pos == len(name) else None


def ns_identity(claims):
    """What the rules see of a token's claims (None: anonymous): the role,
    admin (role exactly "admin"), and the claims kept: userId (the userId
    claim, else sub), other claims when a string of 1-200 bytes without
    NUL or an integer (in decimal); any other value is not kept."""
    if claims is None:
        return None

    def kept(v):
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str) and 1 <= len(v.encode()) <= 200 and \
                "\x00" not in v:
            return v
        return None
    uid = claims.get("userId")
    if uid is None:
        uid = claims.get("sub")
    kc = {k: kept(v) for k, v in claims.items() if k not in ("userId", "sub")}
    kc = {k: v for k, v in kc.items() if v is not None}
    kc["userId"] = str(uid) if not isinstance(uid, str) else uid
    role = claims.get("role")
    return {"id": kc["userId"], "role": role, "admin": role == "admin",
            "claims": kc}


def _ns_who_ok(entry, who):
    _, rule, roles, _ = entry
    if rule == "public":
        return True
    if who is None:
        return False
    if rule == "role":
        return who["role"] in roles
    return True     # authenticated, self


def ns_decide(table, name, who):
    """(verdict, index of the deciding namespace or None)."""
    if not name_valid(name):
        return "invalid", None
    for i, entry in enumerate(table):
        caps = ns_shape(entry[0], name)
        if caps is None:
            continue
        if not _ns_who_ok(entry, who):
            return "denied", i
        if caps and not (who is not None and who["admin"]):
            if who is None or any(who["claims"].get(c) != v for c, v in caps):
                return "denied", i
        return "ok", i
    return "unknown", None


def ns_verdict(table, name, who):
    return ns_decide(table, name, who)[0]


def ns_authorized(table, who):
    """authorizedChannels, in order: the well_known names of '*'
    namespaces, then exact names, then claim patterns, each filled with the
    caller's own claims; a name is listed only if it is authorized and
    belongs to that namespace."""
    out = []

    def fill(parts, suffix):
        s = ""
        for p in parts:
            if p[0] == "lit":
                s += p[1]
            elif p[0] == "star":
                if suffix is None:
                    return None
                s += suffix
            else:
                v = None if who is None else who["claims"].get(p[1])
                if v is None:
                    return None
                s += v
        return s

    def one(i, name):
        if name is not None and ns_decide(table, name, who) == ("ok", i):
            out.append(name)
    for npass in range(3):
        for i, entry in enumerate(table):
            parts, _, _, wk = entry
            star = any(p[0] == "star" for p in parts)
            claim = any(p[0] == "claim" for p in parts)
            if not _ns_who_ok(entry, who):
                continue
            if npass == 0 and star:
                for suffix in wk:
                    one(i, fill(parts, suffix))
            elif npass > 0 and not star and claim == (npass == 2):
                one(i, fill(parts, None))
    return out


NS_TABLE = ns_parse(NS_LINES)
# the default table, as the contract writes it
DEFAULT_TABLE = ns_parse([
    "announcements public",
    "apps:* authenticated well_known=" + ",".join(
        n[5:] for n in WELL_KNOWN["apps:*"]),
    "users:* authenticated well_known=created,updated,deleted",
    "user:{userId} self",
    "database:* authenticated well_known=table_created,table_updated,"
    "table_deleted,row_updated",
    "deployments:* authenticated well_known=started,completed,failed,status",
    "storage:* authenticated well_known=uploaded,deleted,updated",
    "system:* role=admin well_known=health,metrics,alerts",
])


# name -> token claims (None: anonymous)
NS_PRINCIPALS = {
    "anonymous": None,
    "u1-o1-t1": _claims(userId="u1", orgId="o1", teamId="t1"),
    "u2-o2-owner": _claims(userId="u2", orgId="o2", role="owner"),
    "admin-o1": _claims(userId="adm", orgId="o1", role="admin"),
    "admin-no-org": _claims(userId="adm2", role="admin"),
    "billing-o3": _claims(userId="b1", orgId="o3", role="billing"),
    "org-colon": _claims(userId="u3", orgId="o1:x", teamId="t1.x"),
    "org-star": _claims(userId="u4", orgId="*", teamId="*"),
    "org-empty": _claims(userId="u5", orgId="", teamId=""),
    "org-int": _claims(userId=42, orgId=123, teamId=7),
    "org-negative": _claims(sub="s6", orgId=-7),
    "org-bool": _claims(userId="u7", orgId=True, teamId=False),
    "org-float": _claims(userId="u8", orgId=1.5),
    "org-list": _claims(userId="u9", orgId=["o1"], teamId={"t": "t1"}),
    "org-null": _claims(userId="u10", orgId=None),
    "org-space": _claims(userId="u11", orgId="o1 ", teamId=" t1"),
    "org-nul": _claims(userId="u12", orgId="o1\x00o2"),
    "org-long": _claims(userId="u13", orgId="x" * 201),
    "org-190": _claims(userId="u14", orgId="x" * 190),
    "org-wrong-case": _claims(userId="u15", orgid="o1", OrgId="o2"),
    "role-Owner": _claims(userId="u16", orgId="o1", role="Owner"),
    "role-owner-admin": _claims(userId="u17", orgId="o1",
                                role="owner,admin"),
    "role-Admin": _claims(userId="u18", orgId="o2", role="Admin"),
    "role-billing-space": _claims(userId="u19", role="billing "),
    "user-dotted": _claims(userId="a.b", teamId="t1"),
    "user-colon": _claims(userId="u1:x", orgId="o1"),
    "org-is-admin": _claims(userId="u20", orgId="admin"),
    "org-is-o1.x": _claims(userId="u21", orgId="o1.x", teamId="t2"),
}


def _ns_candidates():
    import random
    names = []
    orgs = ["o1", "o2", "o3", "o1:x", "*", "123", "-7", "x", "O1", "o1 ",
            "", "o1.x", "admin", "chat", "1.5", "True", "true", "x" * 190,
            "o1\x00", "{orgId}"]
    for org in orgs:
        names.append("org:" + org)
        names.append("org:%s:" % org)
        for suffix in ["chat", "billing", "admin", "admin:x", "x", "*", "",
                       ":", "o1", "admin ", "Admin", "chat:admin"]:
            names.append("org:%s:%s" % (org, suffix))
    names += ["org", "org:", "ORG:o1:chat", "Org:o1:chat", "org::chat",
              "org:o1::admin", "org:o1:admin:", "org:o1:\uff1aadmin",
              "org\uff1ao1:chat", "org:o1%3Aadmin", "org:o1:adm\u0456n"]
    for uid in ["u1", "u2", "adm", "adm2", "b1", "u3", "u4", "42", "s6",
                "a.b", "u1:x", "U1", "*", "", "u1 ", "u1:", "u1.", "u20"]:
        names.append("user:" + uid)
    for team in ["t1", "t2", "t1.x", "*", "", "7", "T1"]:
        for uid in ["u1", "u2", "a.b", "x.u1", "", "42", "u3", "u4", "*",
                    "u1.", ".u1"]:
            names.append("team:%s.%s" % (team, uid))
    names += ["team:t1", "team:t1.", "team:.u1", "team:", "team", "team:.",
              "team:t1..u1", "team:t1.u1.", "team:t1:u1"]
    names += ["billing:x", "billing:", "billing", "billing:invoices",
              "billing:*", "Billing:x", "billing::", "billing:invoices ",
              "status:page", "status:page:x", "status:", "status:Page",
              "ops:alerts", "ops:alerts:x", "ops:", "ops:other",
              "pub:news", "pub:weather", "pub:", "pub:x", "pub",
              "announcements", "announcements:x", "Announcements",
              "apps:created", "system:health", "users:created", "user",
              "", " ", ":", "*", "a" * 100000]
    for base in ["org:o1:chat", "org:o1:admin", "user:u1", "team:t1.u1",
                 "billing:x", "status:page", "ops:alerts"]:
        names += _variants(base)
    rnd = random.Random(1309)
    tokens = ["org", ":", "o1", "o2", ".", "*", "admin", "chat", "team",
              "user", "u1", "t1", "billing", "ops", "alerts", "status",
              "page", "pub", "@", "-", "_", "x", "announcements", "123",
              "a.b", "o1:x", "t1.u1", "news"]
    families = ["org:", "org:o1:", "org:o2:", "user:", "team:", "team:t1.",
                "billing:", "pub:", "status:", "ops:", ""]
    for _ in range(400):
        names.append(rnd.choice(families) + "".join(
            rnd.choice(tokens) for _ in range(rnd.randint(1, 5))))
    seen, out = set(), []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


NS_CANDIDATES = _ns_candidates()


def _ns_self_check():
    """The model on names whose verdict is obvious."""
    w = {p: ns_identity(c) for p, c in NS_PRINCIPALS.items()}
    v = lambda name, p: ns_verdict(NS_TABLE, name, w[p])  # noqa: E731
    assert v("announcements", "anonymous") == "ok"
    assert v("pub:news", "anonymous") == "ok"
    assert v("org:o1:chat", "anonymous") == "denied"
    assert v("org:o1:chat", "u1-o1-t1") == "ok"
    assert v("org:o1:anything", "u1-o1-t1") == "ok"
    assert v("org:o2:chat", "u1-o1-t1") == "denied"
    assert v("org:o1:admin", "u1-o1-t1") == "denied"
    assert v("org:o2:admin", "u2-o2-owner") == "ok"
    assert v("org:o1:admin", "u2-o2-owner") == "denied"
    assert v("org:o9:admin", "admin-o1") == "ok"
    assert v("org:o9:admin", "role-owner-admin") == "denied"
    assert v("org:o1:x:chat", "org-colon") == "denied"
    assert v("org:o1:chat", "org-colon") == "denied"
    assert v("org:*:chat", "org-star") == "invalid"    # '*' is no name char
    assert v("org:o1:chat", "org-star") == "denied"
    assert v("org:123:chat", "org-int") == "ok"
    assert v("user:42", "org-int") == "ok"
    assert v("team:7.42", "org-int") == "ok"
    assert v("org:-7:chat", "org-negative") == "ok"
    assert v("org:True:chat", "org-bool") == "denied"
    assert v("org:1.5:chat", "org-float") == "denied"
    assert v("team:t1.a.b", "user-dotted") == "ok"
    assert v("team:t1.x.u3", "org-colon") == "denied"
    assert v("team:t1.u1", "u1-o1-t1") == "ok"
    assert v("team:t2.u1", "u1-o1-t1") == "denied"
    assert v("billing:x", "u1-o1-t1") == "denied"
    assert v("billing:x", "billing-o3") == "ok"
    assert v("billing:x", "admin-no-org") == "ok"
    assert v("billing:x", "role-billing-space") == "denied"
    assert v("ops:alerts", "role-Admin") == "denied"
    assert v("apps:created", "admin-o1") == "unknown"
    assert v("org:", "admin-o1") == "unknown"
    assert v("org:o1:", "admin-o1") == "unknown"
    assert v("org:o1", "admin-o1") == "unknown"
    assert v("org::chat", "admin-o1") == "unknown"
    assert ns_authorized(NS_TABLE, w["anonymous"]) == [
        "pub:news", "pub:weather", "announcements"]
    assert ns_authorized(NS_TABLE, w["u1-o1-t1"]) == [
        "org:o1:chat", "org:o1:billing", "pub:news", "pub:weather",
        "announcements", "status:page", "user:u1", "team:t1.u1"]
    assert ns_authorized(NS_TABLE, w["admin-o1"]) == [
        "org:o1:chat", "org:o1:billing", "billing:invoices", "pub:news",
        "pub:weather", "announcements", "status:page", "ops:alerts",
        "org:o1:admin", "user:adm"]
    assert ns_authorized(NS_TABLE, w["org-colon"]) == [
        "pub:news", "pub:weather", "announcements", "status:page", "user:u3"]
    # the general model, on the default table, says what the model of
    # PROTOCOL.md's fixed table (above) says
    for p, (claims, who) in PRINCIPALS.items():
        nw = ns_identity(claims)
        for name in CANDIDATES:
            assert ns_verdict(DEFAULT_TABLE, name, nw) == verdict(name, who), \
                (p, name)
        assert set(ns_authorized(DEFAULT_TABLE, nw)) == \
            expected_authorized(who), p


_ns_self_check()


@pytest.fixture(scope="module")
def nsauthz(module_factory):
    r = module_factory.redis()
    d = module_factory(name="ns-authz", conf={
        "workers": "1", "redis_url": r.url,
        "max_client_messages_per_sec": "100000",
        "client_messages_burst": "100000",
        "max_subscriptions": "2000",
        "max_message_size": "1m",
        "namespace": "\nnamespace ".join(NS_LINES),
    })
    rtlib.wait_settled(d, 1)
    return d, r


def _ns_token(principal):
    claims = NS_PRINCIPALS[principal]
    return None if claims is None else rtlib.mint(claims=claims)


def _ns_reply_ok(name, v, m):
    if v == "ok":
        return m["type"] == "subscribed" and m.get("channel") == name
    if m["type"] != "error":
        return False
    if v == "denied":
        return m.get("message") == DENIED_TEXT
    if v == "unknown":
        return m.get("message") == "Unknown channel"
    return True         # invalid: some error (a NUL, a huge name...)


@pytest.mark.parametrize("principal", list(NS_PRINCIPALS))
def test_namespace_table_verdicts_follow_the_rules(nsauthz, attach, principal):
    d, r = nsauthz
    attach(d)
    who = ns_identity(NS_PRINCIPALS[principal])
    want_list = ns_authorized(NS_TABLE, who)

    async def main():
        c = await FastWS.connect(d.port, _ns_token(principal))
        try:
            hello = c.hello
            if who is None:
                assert hello["user"] is None, hello
            else:
                assert hello["user"]["userId"] == who["id"], hello
            # exact content and order (the three passes)
            assert hello["authorizedChannels"] == want_list, \
                (principal, hello["authorizedChannels"], want_list)
            replies = await _requests(c, [_sub(n) for n in NS_CANDIDATES],
                                      timeout=15)
            wrong = []
            for name, m in zip(NS_CANDIDATES, replies):
                v = ns_verdict(NS_TABLE, name, who)
                if not _ns_reply_ok(name, v, m):
                    wrong.append((name[:80], v, m))
            assert not wrong, "%d wrong verdicts for %s, e.g. %r" % (
                len(wrong), principal, wrong[:8])
            oks = {n for n in NS_CANDIDATES
                   if ns_verdict(NS_TABLE, n, who) == "ok"}
            m = await c.request({"type": "list_channels"})
            assert set(m["subscribedChannels"]) == oks, \
                set(m["subscribedChannels"]) ^ oks
            assert m["authorizedChannels"] == want_list, m
            m = await c.request({"type": "stats"})
            leaked = [ch for ch in m["data"]["connectionsByChannel"]
                      if ns_verdict(NS_TABLE, ch, who) != "ok"]
            assert not leaked, "stats shows %s channels it may not use: %r" \
                % (principal, leaked[:10])
        finally:
            c.abort()
    rtlib.arun(main(), 60)


NS_TRICKY = [
    '{"type":"subscribe","channel":"org:o1:chat","channel":"org:o2:chat"}',
    '{"type":"subscribe","channel":"org:o2:chat","channel":"org:o1:chat"}',
    '{"type":"subscribe","channel":"org:o\\u0032:chat"}',
    '{"type":"subscribe","channel":"org:o1:\\u0061dmin"}',
    '{"type":"subscribe","channel":"org:o1\\u003aadmin"}',
    '{"type":"subscribe","channel":"org:o1:chat\\u0000org:o2:chat"}',
    '{"type":"subscribe","channel":"org:o2:chat","orgId":"o2"}',
    '{"type":"subscribe","channel":"org:o2:chat","user":{"orgId":"o2"}}',
    '{"type":"subscribe","channel":"billing:x","role":"billing"}',
    '{"type":"subscribe","channel":"team:t2.u1","teamId":"t2"}',
    '{"type":"subscribe","channel":"org:{orgId}:chat"}',
    '{"type":"subscribe","channel":"org:*:chat"}',
    '{"type":"subscribe","channel":["org:o2:chat"]}',
    '{"type":"subscribe","channel":"user:u1","channel":"user:u2"}',
]


@pytest.mark.parametrize("principal",
                         ["anonymous", "u1-o1-t1", "org-colon", "org-star",
                          "role-owner-admin"])
def test_namespace_table_tricky_requests_never_grant_more(nsauthz, attach,
                                                          principal):
    d, r = nsauthz
    attach(d)
    who = ns_identity(NS_PRINCIPALS[principal])

    async def main():
        c = await FastWS.connect(d.port, _ns_token(principal))
        try:
            replies = await _requests(c, NS_TRICKY)
            for raw, m in zip(NS_TRICKY, replies):
                if m["type"] == "subscribed":
                    ch = m.get("channel")
                    assert ns_verdict(NS_TABLE, ch, who) == "ok", (raw, m)
                    assert ch in _decode_last(raw), (raw, m)
                else:
                    assert m["type"] == "error", (raw, m)
            m = await c.request({"type": "list_channels"})
            bad = [ch for ch in m["subscribedChannels"]
                   if ns_verdict(NS_TABLE, ch, who) != "ok"]
            assert not bad, "%s subscribed to %r" % (principal, bad)
        finally:
            c.abort()
    rtlib.arun(main(), 30)


def test_namespace_table_no_event_on_a_denied_channel(nsauthz, attach):
    """Events on every candidate name (an admin witness subscribed to all it
    may use, so they are routed): each client gets exactly the events of
    the names the rules grant it."""
    d, r = nsauthz
    attach(d)
    names = [n for n in NS_CANDIDATES if len(n.encode()) < 4096]
    admin_who = ns_identity(NS_PRINCIPALS["admin-o1"])

    async def main():
        clients = {}
        try:
            witness = await FastWS.connect(d.port, _ns_token("admin-o1"))
            wnames = [n for n in names
                      if ns_verdict(NS_TABLE, n, admin_who) == "ok"]
            rep = await _requests(witness, [_sub(n) for n in wnames])
            assert all(m["type"] == "subscribed" for m in rep)
            for p in NS_PRINCIPALS:
                c = await FastWS.connect(d.port, _ns_token(p))
                clients[p] = c
                await _requests(c, [_sub("announcements")] +
                                [_sub(n) for n in names] + NS_TRICKY)
            msgs = [(n.encode("utf-8", "surrogatepass"),
                     json.dumps({"probe": i, "to": n}))
                    for i, n in enumerate(names)]
            msgs.append(("announcements", json.dumps({"sentinel": 1})))
            await asyncio.to_thread(proclib.publish_many, r.port, msgs)
            got_w = await _events_until_sentinel(witness, 1)
            assert sorted(ch for ch, _ in got_w) == sorted(wnames)
            for p, c in clients.items():
                who = ns_identity(NS_PRINCIPALS[p])
                got = await _events_until_sentinel(c, 1)
                denied = [(ch, data) for ch, data in got
                          if ns_verdict(NS_TABLE, ch, who) != "ok"]
                assert not denied, "%s received events on channels it may " \
                    "not use: %r" % (p, denied[:5])
                crossed = [(ch, data) for ch, data in got
                           if data.get("to") != ch]
                assert not crossed, (p, crossed[:5])
                want = sorted(n for n in names
                              if ns_verdict(NS_TABLE, n, who) == "ok")
                assert sorted(ch for ch, _ in got) == want, \
                    "%s: events received != its allowed channels" % p
            witness.abort()
        finally:
            for c in clients.values():
                c.abort()
    rtlib.arun(main(), 120)
    rtlib.wait_for(lambda: proclib.health_json(d.port)[1]["connections"]
                   == 0, 5, "every namespace authz client gone",
                   tolerate=rtlib.TRANSIENT)
