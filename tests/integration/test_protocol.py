"""The JSON protocol on /ws (PROTOCOL.md "Messages", "Channels and who may
use them"): message shapes, subscribe/unsubscribe, list_channels, stats,
every error reply, and the authorization table."""
import json
import time

import pytest

import rtlib
from rtlib import RawWS, TS_RE, UUID4_RE, WELL_KNOWN, mint

NOT_AUTHORIZED = "Not authorized to subscribe to this channel"
MAX_SUBS = 3


class Client(RawWS):
    def __init__(self, port, token=None, **kw):
        path = "/ws" if token is None else "/ws?token=" + token
        super().__init__(port, path=path, **kw)
        self.hello = self.recv_json()

    def req(self, obj, timeout=rtlib.IO_TIMEOUT):
        if isinstance(obj, (bytes, str)):
            self.send_text(obj)
        else:
            self.send_json(obj)
        msg = self.recv_json(timeout)
        assert TS_RE.match(msg.get("timestamp", "")), msg
        return msg

    def assert_open(self):
        assert self.req({"type": "ping"})["type"] == "pong"


def anon(port):
    return Client(port)


def user(port, uid="u1", **claims):
    return Client(port, mint(userId=uid, **claims))


def admin(port, uid="a1"):
    return Client(port, mint(userId=uid, role="admin"))


def authenticated_channels():
    out = []
    for fam in rtlib.AUTHENTICATED_FAMILIES:
        out += WELL_KNOWN[fam]
    return out


@pytest.fixture(scope="module")
def _rt(module_factory):
    return module_factory({"max_subscriptions": str(MAX_SUBS)})


@pytest.fixture
def rt(_rt, attach):
    return attach(_rt)


# ------------------------------------------------------------- connected

def test_connected_message_shape_for_user(rt, clients):
    c = clients(user(rt.port, "u1", email="u1@example.com", role="member"))
    m = c.hello
    assert m["type"] == "connected"
    assert UUID4_RE.match(m["connectionId"]), m["connectionId"]
    assert m["user"] == {"userId": "u1", "email": "u1@example.com",
                         "role": "member"}
    assert TS_RE.match(m["timestamp"]), m["timestamp"]
    chans = m["authorizedChannels"]
    assert len(chans) == len(set(chans))
    assert set(chans) == set(["announcements"] + authenticated_channels()
                             + ["user:u1"])


def test_connected_message_for_user_without_email_or_role(rt, clients):
    c = clients(user(rt.port, "plain"))
    assert c.hello["user"]["userId"] == "plain"
    assert c.hello["user"].get("role") in (None, "user", "")
    assert not any(ch.startswith("system:")
                   for ch in c.hello["authorizedChannels"])


def test_connected_message_for_admin_lists_system_channels(rt, clients):
    c = clients(admin(rt.port, "boss"))
    chans = c.hello["authorizedChannels"]
    assert len(chans) == len(set(chans))
    assert set(chans) == set(["announcements"] + authenticated_channels()
                             + WELL_KNOWN["system"] + ["user:boss"])
    assert c.hello["user"]["role"] == "admin"


def test_connected_message_for_anonymous(rt, clients):
    c = clients(anon(rt.port))
    m = c.hello
    assert m["type"] == "connected"
    assert UUID4_RE.match(m["connectionId"])
    assert m["user"] is None
    assert m["authorizedChannels"] == ["announcements"]
    assert TS_RE.match(m["timestamp"])


def test_connection_ids_are_unique(rt, clients):
    ids = {clients(anon(rt.port)).hello["connectionId"] for _ in range(10)}
    assert len(ids) == 10


# ------------------------------------------------- subscribe / unsubscribe

def test_subscribe_replies_subscribed(rt, clients):
    c = clients(user(rt.port))
    r = c.req({"type": "subscribe", "channel": "apps:created"})
    assert r["type"] == "subscribed"
    assert r["channel"] == "apps:created"


def test_subscribe_twice_replies_subscribed_again(rt, clients):
    c = clients(user(rt.port))
    for _ in range(2):
        r = c.req({"type": "subscribe", "channel": "apps:created"})
        assert (r["type"], r["channel"]) == ("subscribed", "apps:created")
    r = c.req({"type": "list_channels"})
    assert r["subscribedChannels"] == ["apps:created"]


def test_unsubscribe_replies_unsubscribed(rt, clients):
    c = clients(user(rt.port))
    c.req({"type": "subscribe", "channel": "apps:created"})
    r = c.req({"type": "unsubscribe", "channel": "apps:created"})
    assert (r["type"], r["channel"]) == ("unsubscribed", "apps:created")
    assert c.req({"type": "list_channels"})["subscribedChannels"] == []


def test_unsubscribe_when_not_subscribed_replies_unsubscribed(rt, clients):
    c = clients(user(rt.port))
    r = c.req({"type": "unsubscribe", "channel": "users:created"})
    assert (r["type"], r["channel"]) == ("unsubscribed", "users:created")


def test_unsubscribe_twice_replies_unsubscribed_again(rt, clients):
    c = clients(anon(rt.port))
    c.req({"type": "subscribe", "channel": "announcements"})
    for _ in range(2):
        r = c.req({"type": "unsubscribe", "channel": "announcements"})
        assert r["type"] == "unsubscribed"


def test_extra_fields_are_ignored(rt, clients):
    c = clients(anon(rt.port))
    r = c.req({"type": "subscribe", "channel": "announcements", "x": [1]})
    assert r["type"] == "subscribed"


# ------------------------------------------------------------- ping etc

def test_ping_replies_pong(rt, clients):
    c = clients(anon(rt.port))
    r = c.req({"type": "ping"})
    assert r["type"] == "pong"
    assert set(r) >= {"type", "timestamp"}


def test_pipelined_requests_are_answered_in_order(rt, clients):
    c = clients(user(rt.port))
    frames = b""
    import os
    import struct
    msgs = [{"type": "ping"},
            {"type": "subscribe", "channel": "apps:created"},
            {"type": "list_channels"}]
    for m in msgs:
        data = json.dumps(m).encode()
        key = os.urandom(4)
        frames += bytes([0x81, 0x80 | len(data)]) + key + bytes(
            b ^ key[i % 4] for i, b in enumerate(data))
    c.sock.sendall(frames)
    got = [c.recv_json()["type"] for _ in msgs]
    assert got == ["pong", "subscribed", "channels"]


def test_list_channels_for_anonymous(rt, clients):
    c = clients(anon(rt.port))
    r = c.req({"type": "list_channels"})
    assert r["type"] == "channels"
    assert r["authorizedChannels"] == ["announcements"]
    assert r["subscribedChannels"] == []


def test_list_channels_shows_authorized_and_subscribed(rt, clients):
    c = clients(user(rt.port, "lc"))
    for ch in ("apps:created", "user:lc", "announcements"):
        assert c.req({"type": "subscribe", "channel": ch})["type"] == \
            "subscribed"
    c.req({"type": "unsubscribe", "channel": "announcements"})
    r = c.req({"type": "list_channels"})
    assert r["type"] == "channels"
    assert set(r["authorizedChannels"]) == set(c.hello["authorizedChannels"])
    assert sorted(r["subscribedChannels"]) == ["apps:created", "user:lc"]


def test_subscriptions_do_not_outlive_the_connection(rt, clients):
    c = user(rt.port, "gone")
    c.req({"type": "subscribe", "channel": "apps:created"})
    c.close_socket()
    c2 = clients(user(rt.port, "gone"))
    assert c2.req({"type": "list_channels"})["subscribedChannels"] == []


# ---------------------------------------------------------------- errors

ERROR_CASES = {
    "invalid_json": '{"type":',
    "empty_message": '',
    "not_json_at_all": 'ping',
    "array": '[{"type":"ping"}]',
    "string": '"ping"',
    "number": '42',
    "null": 'null',
    "missing_type": '{}',
    "missing_type_with_channel": '{"channel":"announcements"}',
    "numeric_type": '{"type":1}',
    "null_type": '{"type":null}',
    "array_type": '{"type":["ping"]}',
    "unknown_type": '{"type":"publish","channel":"announcements"}',
    "uppercase_type": '{"type":"PING"}',
    "subscribe_missing_channel": '{"type":"subscribe"}',
    "unsubscribe_missing_channel": '{"type":"unsubscribe"}',
    "subscribe_numeric_channel": '{"type":"subscribe","channel":5}',
    "subscribe_null_channel": '{"type":"subscribe","channel":null}',
    "subscribe_empty_channel": '{"type":"subscribe","channel":""}',
    "subscribe_channel_with_space":
        '{"type":"subscribe","channel":"apps: created"}',
    "subscribe_channel_with_slash":
        '{"type":"subscribe","channel":"apps/created"}',
    "subscribe_channel_non_ascii":
        '{"type":"subscribe","channel":"apps:cr\u00e9ated"}',
    "subscribe_channel_201_bytes":
        '{"type":"subscribe","channel":"apps:%s"}' % ("a" * 196),
    "subscribe_unknown_family": '{"type":"subscribe","channel":"foo:bar"}',
    "subscribe_family_without_name": '{"type":"subscribe","channel":"apps"}',
    "subscribe_wrong_case_family":
        '{"type":"subscribe","channel":"Announcements"}',
    "unsubscribe_unknown_family":
        '{"type":"unsubscribe","channel":"nope:x"}',
}


@pytest.mark.parametrize("payload", list(ERROR_CASES.values()),
                         ids=list(ERROR_CASES.keys()))
def test_bad_request_gets_error_and_connection_stays_open(rt, clients,
                                                          payload):
    c = clients(user(rt.port))
    r = c.req(payload)
    assert r["type"] == "error", r
    assert isinstance(r["message"], str) and r["message"], r
    assert r["message"] != NOT_AUTHORIZED
    c.assert_open()


def test_error_reply_names_request_when_it_adds_one(rt, clients):
    c = clients(user(rt.port))
    r = c.req({"type": "subscribe", "channel": "foo:bar"})
    assert r["type"] == "error"
    if "request" in r:
        assert r["request"] == "subscribe"
    if "channel" in r:
        assert r["channel"] == "foo:bar"


def test_channel_of_200_bytes_is_valid_name(rt, clients):
    c = clients(user(rt.port))
    ch = "apps:" + "a" * 195
    assert len(ch) == 200
    r = c.req({"type": "subscribe", "channel": ch})
    assert r["type"] == "subscribed"


def test_not_authorized_error_text(rt, clients):
    c = clients(anon(rt.port))
    r = c.req({"type": "subscribe", "channel": "apps:created"})
    assert r["type"] == "error"
    assert r["message"] == NOT_AUTHORIZED
    c.assert_open()


def test_too_many_subscriptions_gets_error(rt, clients):
    c = clients(user(rt.port))
    chans = ["apps:created", "apps:updated", "apps:deleted"]
    for ch in chans[:MAX_SUBS]:
        assert c.req({"type": "subscribe", "channel": ch})["type"] == \
            "subscribed"
    r = c.req({"type": "subscribe", "channel": "users:created"})
    assert r["type"] == "error"
    assert r["message"] and r["message"] != NOT_AUTHORIZED
    c.assert_open()
    sub = c.req({"type": "list_channels"})["subscribedChannels"]
    assert sorted(sub) == sorted(chans)


def test_resubscribe_at_subscription_limit_is_still_subscribed(rt, clients):
    c = clients(user(rt.port))
    for ch in ["apps:created", "apps:updated", "apps:deleted"]:
        c.req({"type": "subscribe", "channel": ch})
    r = c.req({"type": "subscribe", "channel": "apps:created"})
    assert r["type"] == "subscribed"


def test_unsubscribe_frees_a_subscription_slot(rt, clients):
    c = clients(user(rt.port))
    for ch in ["apps:created", "apps:updated", "apps:deleted"]:
        c.req({"type": "subscribe", "channel": ch})
    c.req({"type": "unsubscribe", "channel": "apps:deleted"})
    r = c.req({"type": "subscribe", "channel": "users:created"})
    assert r["type"] == "subscribed"


# -------------------------------------------------- authorization table

def _row(channel, anon_ok, user_ok, admin_ok):
    return [(channel, "anonymous", anon_ok), (channel, "user", user_ok),
            (channel, "admin", admin_ok)]


AUTH_TABLE = []
AUTH_TABLE += _row("announcements", True, True, True)
for _fam in rtlib.AUTHENTICATED_FAMILIES:
    for _ch in WELL_KNOWN[_fam]:
        AUTH_TABLE += _row(_ch, False, True, True)
AUTH_TABLE += _row("apps:custom-name_1.x@y", False, True, True)
for _ch in WELL_KNOWN["system"]:
    AUTH_TABLE += _row(_ch, False, False, True)
AUTH_TABLE += _row("user:u1", False, True, True)     # the user's own
AUTH_TABLE += _row("user:u2", False, False, True)    # someone else's
AUTH_TABLE += _row("user:U1", False, False, True)    # ids are case-sensitive


@pytest.mark.parametrize("channel,who,allowed", AUTH_TABLE,
                         ids=["%s-%s-%s" % (c, w, "allowed" if a else "denied")
                              for c, w, a in AUTH_TABLE])
def test_authorization_table(rt, clients, channel, who, allowed):
    c = clients({"anonymous": lambda: anon(rt.port),
                 "user": lambda: user(rt.port, "u1"),
                 "admin": lambda: admin(rt.port, "a1")}[who]())
    r = c.req({"type": "subscribe", "channel": channel})
    if allowed:
        assert r["type"] == "subscribed", r
        assert r["channel"] == channel
    else:
        assert r["type"] == "error", r
        assert r["message"] == NOT_AUTHORIZED
        c.assert_open()


def test_user_role_other_than_admin_is_not_privileged(rt, clients):
    c = clients(user(rt.port, "u5", role="superuser"))
    r = c.req({"type": "subscribe", "channel": "system:alerts"})
    assert r["message"] == NOT_AUTHORIZED
    r = c.req({"type": "subscribe", "channel": "user:u6"})
    assert r["message"] == NOT_AUTHORIZED


# ----------------------------------------------------------------- stats

def _stats(c):
    r = c.req({"type": "stats"})
    assert r["type"] == "stats"
    return r["data"]


def _poll_stats(c, pred, timeout=3):
    deadline = time.monotonic() + timeout
    while True:
        d = _stats(c)
        if pred(d) or time.monotonic() > deadline:
            return d
        time.sleep(0.05)


def _nonzero(by):
    return {k: v for k, v in by.items() if v}


def test_stats_shape(start_daemon):
    d = start_daemon()
    c = anon(d.port)
    try:
        r = c.req({"type": "stats"})
        assert r["type"] == "stats"
        assert TS_RE.match(r["timestamp"])
        data = r["data"]
        for k in ("totalConnections", "authenticatedConnections",
                  "anonymousConnections", "totalSubscriptions"):
            assert isinstance(data[k], int) and not isinstance(data[k], bool)
        assert isinstance(data["connectionsByChannel"], dict)
        assert data["totalConnections"] == 1
        assert data["anonymousConnections"] == 1
        assert data["authenticatedConnections"] == 0
        assert data["totalSubscriptions"] == 0
    finally:
        c.close_socket()


SUBS = {
    "admin": ["system:health", "apps:created", "user:a1"],
    "u1": ["apps:created", "user:u1", "announcements"],
    "u2": ["users:updated"],
    "anon": ["announcements"],
}
ALL_BY_CHANNEL = {"system:health": 1, "apps:created": 2, "user:a1": 1,
                  "user:u1": 1, "announcements": 2, "users:updated": 1}


@pytest.fixture
def populated(start_daemon):
    d = start_daemon()
    cs = {"admin": admin(d.port, "a1"), "u1": user(d.port, "u1"),
          "u2": user(d.port, "u2"), "anon": anon(d.port)}
    for who, chans in SUBS.items():
        for ch in chans:
            assert cs[who].req({"type": "subscribe", "channel": ch})[
                "type"] == "subscribed"
    yield d, cs
    for c in cs.values():
        c.close_socket()


def _expected_totals(data):
    return (data["totalConnections"], data["authenticatedConnections"],
            data["anonymousConnections"], data["totalSubscriptions"])


def test_stats_counts_with_several_clients(populated):
    d, cs = populated
    data = _poll_stats(cs["admin"],
                       lambda x: _expected_totals(x) == (4, 3, 1, 8))
    assert _expected_totals(data) == (4, 3, 1, 8)


def test_stats_admin_sees_every_channel(populated):
    d, cs = populated
    data = _poll_stats(cs["admin"], lambda x: _nonzero(
        x["connectionsByChannel"]) == ALL_BY_CHANNEL)
    assert _nonzero(data["connectionsByChannel"]) == ALL_BY_CHANNEL


def test_stats_user_sees_only_channels_it_may_subscribe(populated):
    d, cs = populated
    want = {k: v for k, v in ALL_BY_CHANNEL.items()
            if k not in ("system:health", "user:a1")}
    data = _poll_stats(cs["u1"], lambda x: _nonzero(
        x["connectionsByChannel"]) == want)
    assert _nonzero(data["connectionsByChannel"]) == want
    assert "system:health" not in data["connectionsByChannel"]
    assert "user:a1" not in data["connectionsByChannel"]
    assert _expected_totals(data) == (4, 3, 1, 8)


def test_stats_other_user_does_not_see_private_user_channels(populated):
    d, cs = populated
    data = _stats(cs["u2"])
    by = data["connectionsByChannel"]
    assert "user:u1" not in by and "user:a1" not in by
    assert "system:health" not in by


def test_stats_anonymous_sees_only_announcements(populated):
    d, cs = populated
    data = _stats(cs["anon"])
    assert set(_nonzero(data["connectionsByChannel"])) <= {"announcements"}
    assert data["connectionsByChannel"].get("announcements") == 2
    assert _expected_totals(data) == (4, 3, 1, 8)


def test_stats_follow_unsubscribe_and_disconnect(populated):
    d, cs = populated
    cs["u1"].req({"type": "unsubscribe", "channel": "apps:created"})
    cs["u2"].close_socket()
    data = _poll_stats(cs["admin"],
                       lambda x: _expected_totals(x) == (3, 2, 1, 6))
    assert _expected_totals(data) == (3, 2, 1, 6)
    by = _nonzero(data["connectionsByChannel"])
    assert by.get("apps:created") == 1
    assert "users:updated" not in by


def test_stats_are_cluster_wide_across_workers(start_daemon):
    d = start_daemon({"workers": "2"})
    rtlib.skip_if_single_worker(d.port, 2)
    cs = [user(d.port, "w%d" % i) for i in range(4)] + [anon(d.port)]
    try:
        for c in cs:
            c.req({"type": "subscribe", "channel": "announcements"})
        for c in cs:
            data = _poll_stats(c, lambda x: _expected_totals(x) ==
                               (5, 4, 1, 5))
            assert _expected_totals(data) == (5, 4, 1, 5)
            assert data["connectionsByChannel"]["announcements"] == 5
    finally:
        for c in cs:
            c.close_socket()
