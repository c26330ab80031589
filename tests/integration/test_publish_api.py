"""POST /publish: the key (Bearer, 401 counted), the body (single and
batch, 400 with the reason, 413, 411, 415, 422), keep-alive, delivery to a
real WebSocket subscriber with cluster positions (the function library),
405, 404 when no key is set, 503 when Redis is down.  Loopback only."""
import json
import os
import signal
import socket
import time

import chaoslib
import rtlib
from chaoslib import stats
from rtlib import Client

KEY = "k" * 8 + "-publish-key-0123"


def start(start_daemon, **conf):
    r = start_daemon.redis()
    c = {"workers": "2", "redis_url": r.url, "canary_interval": "0",
         "publish_api_key": KEY, "max_publish_body": "4k",
         "max_publish_batch": "5",
         "namespace": "apps:* authenticated history=100"}
    c.update({k: None if v is None else str(v) for k, v in conf.items()})
    d = start_daemon(conf=c)
    rtlib.wait_settled(d, 2)
    return d, r


def request(body, key=KEY, method="POST", path="/publish", headers=None,
            close=True):
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: x"]
    if key is not None:
        lines.append("Authorization: Bearer %s" % key)
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def post(d, body, **kw):
    st, hd, b, _ = rtlib.http_raw(d.port, request(body, **kw), read_all=False)
    return st, hd, (json.loads(b) if b and hd.get("content-type") ==
                    "application/json" else b)


def test_publish_is_delivered_with_its_position(start_daemon):
    d, _ = start(start_daemon)
    sub = Client(d.port, rtlib.mint(userId="reader"))
    sub.subscribe("apps:created")
    st, hd, b = post(d, '{"channel": "apps:created", "data": {"id": 7, "n": 1e400}}')
    assert st == 200, (st, b)
    assert b == {"offset": 1, "receivers": 1}, b
    ev = sub.next_event()
    # the data's bytes as sent, never re-serialized (1e400 is no double)
    assert ev["channel"] == "apps:created" and ev["offset"] == 1, ev
    assert ev["data"]["id"] == 7
    st, _, b = post(d, {"channel": "apps:created", "data": "two"})
    assert (st, b["offset"]) == (200, 2)
    assert sub.next_event()["data"] == "two"
    s = stats(d)
    assert s["publish_requests"] == 2 and s["publish_events"] == 2, s
    sub.close()


def test_batch_answers_per_item(start_daemon):
    d, _ = start(start_daemon)
    sub = Client(d.port, rtlib.mint(userId="reader"))
    sub.subscribe("apps:b")
    items = [{"channel": "apps:b", "data": i} for i in range(3)]
    items.insert(1, {"channel": "nope:x", "data": 0})
    items.append({"channel": "bad name!", "data": 0})
    st, _, b = post(d, items)
    assert st == 200, (st, b)
    assert b == [{"offset": 1, "receivers": 1}, {"error": "unknown channel"},
                 {"offset": 2, "receivers": 1}, {"offset": 3, "receivers": 1},
                 {"error": "invalid channel name"}], b
    assert [e["data"] for e in sub.events_until(3)] == [0, 1, 2]
    # more than max_publish_batch: the whole batch is refused
    st, _, b = post(d, [{"channel": "apps:b", "data": 0}] * 6)
    assert st == 400 and "too many" in b["error"], (st, b)
    sub.close()


def test_keep_alive_serves_several_requests_on_one_connection(start_daemon):
    d, _ = start(start_daemon)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        # pipelined: the second waits behind the first's bridge answer
        s.sendall(request({"channel": "apps:k", "data": 1}, close=False) +
                  request({"channel": "apps:k", "data": 2}, close=False))
        buf = b""
        for want in (1, 2):
            st, hd, rest, _ = rtlib.read_http_response(s, 5, read_all=False, buf=buf)
            n = int(hd["content-length"])
            assert st == 200 and "connection" not in hd, (st, hd)
            assert json.loads(rest[:n])["offset"] == want
            buf = rest[n:]
        s.sendall(request("{bad", close=False))
        st, hd, rest, _ = rtlib.read_http_response(s, 5, read_all=False, buf=buf)
        assert st == 400 and json.loads(rest)["error"] == "invalid JSON"
        s.sendall(request({"channel": "apps:k", "data": 3}))
        st, hd, rest, closed = rtlib.read_http_response(s, 5)
        assert st == 200 and hd["connection"] == "close" and closed
        assert json.loads(rest)["offset"] == 3
    finally:
        s.close()


def test_expect_100_continue_gets_continue_then_the_answer(start_daemon):
    """curl sends "Expect: 100-continue" for bodies over 1 KB and waits
    (a second) for "100 Continue" before the body (RFC 9110 10.1.1).  An
    expectation we cannot meet is 417; a CRLF after a body is no request."""
    d, _ = start(start_daemon)
    body = json.dumps({"channel": "apps:c", "data": "x" * 1500}).encode()
    head = request(body, close=False, headers={"Expect": "100-continue"})[:-len(body)]
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        s.sendall(head)
        s.settimeout(2)
        got = s.recv(4096)
        assert got == b"HTTP/1.1 100 Continue\r\n\r\n", got
        s.sendall(body + b"\r\n")
        st, hd, rest, _ = rtlib.read_http_response(s, 5, read_all=False)
        assert st == 200 and json.loads(rest[:int(hd["content-length"])])["offset"] == 1
        buf = rest[int(hd["content-length"]):]
        # the stray CRLF is skipped: the next request on the connection is served
        s.sendall(request({"channel": "apps:c", "data": 2}))
        st, hd, rest, _ = rtlib.read_http_response(s, 5, buf=buf)
        assert st == 200 and json.loads(rest)["offset"] == 2, (st, rest)
    finally:
        s.close()
    st, _, b = post(d, {"channel": "apps:c", "data": 3}, headers={"Expect": "something"})
    assert st == 417, (st, b)
    # "Bearer" and more than one space before the key (RFC 9110 11.4: 1*SP)
    raw = request({"channel": "apps:c", "data": 4}, key=None,
                  headers={"Authorization": "Bearer   " + KEY})
    st, _, b, _ = rtlib.http_raw(d.port, raw, read_all=False)
    assert st == 200, (st, b)


def test_key_is_required_and_refusals_are_counted(start_daemon):
    d, _ = start(start_daemon)
    errors0 = stats(d)["handshake_errors"]
    body = {"channel": "apps:x", "data": 1}
    for kw in ({"key": None}, {"key": KEY + "x"}, {"key": KEY[:-1]},
               {"key": None, "headers": {"Authorization": "Basic " + KEY}}):
        st, hd, b = post(d, body, **kw)
        assert st == 401, (kw, st)
        assert hd["www-authenticate"].startswith("Bearer"), hd
        assert "error" in b
    s = stats(d)
    assert s["publish_unauthorized"] == 4 and s["publish_events"] == 0, s
    assert chaoslib.metrics(d.port)["realtimed_publish_unauthorized_total"] == 4
    # every HTTP error status counts in handshake_errors, /publish's too
    assert s["handshake_errors"] - errors0 == 4, s
    assert post(d, "{bad")[0] == 400
    assert post(d, None, method="GET")[0] == 405
    assert stats(d)["handshake_errors"] - errors0 == 6


def test_bad_bodies_get_the_reason(start_daemon):
    d, _ = start(start_daemon)
    cases = [
        ("{bad", 400, "invalid JSON"),
        ("", 400, "empty body"),
        ("42", 400, "not an object or an array"),
        ("[]", 400, "empty batch"),
        ("[1]", 400, "an item is not an object"),
        ({"data": 1}, 400, "missing channel"),
        ({"channel": "apps:x"}, 400, "missing data"),
        ({"channel": "apps:x", "data": 1, "extra": 2}, 400, "unknown member (channel and data only)"),
        ({"channel": 5, "data": 1}, 400, "channel is not a string"),
        ('{"channel":"apps:x","channel":"apps:y","data":1}', 400, "channel given twice"),
        ({"channel": "nope:x", "data": 1}, 422, "unknown channel"),
        ({"channel": "a b", "data": 1}, 422, "invalid channel name"),
        ({"channel": "", "data": 1}, 422, "invalid channel name"),
    ]
    for body, status, why in cases:
        st, _, b = post(d, body)
        assert (st, b) == (status, {"error": why}), (body, st, b)
    st, _, b = post(d, {"channel": "apps:x", "data": "y" * 5000})
    assert st == 413, st
    # a Content-Length of any length is a number: a huge one is too large
    huge = ("POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Length: 99999999999999999999\r\n\r\n" % KEY).encode()
    st, hd, b, _ = rtlib.http_raw(d.port, huge, read_all=False)
    assert st == 413 and hd.get("content-type") == "application/json", (st, hd, b)
    st, _, _ = post(d, {"channel": "apps:x", "data": 1},
                    headers={"Content-Type": "text/plain"})
    assert st == 415
    st, _, _ = post(d, {"channel": "apps:x", "data": 1},
                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert st == 200
    # OWS before ";" may be a tab (RFC 9110 8.3.1)
    st, _, _ = post(d, {"channel": "apps:x", "data": 1},
                    headers={"Content-Type": "application/json\t;charset=utf-8"})
    assert st == 200
    # Content-Type is a singleton: two are a malformed request
    two = ("POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Type: text/plain\r\n"
           "Content-Length: 2\r\nConnection: close\r\n\r\n{}" % KEY).encode()
    assert rtlib.http_raw(d.port, two, read_all=False)[0] == 400
    chunked = ("POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n0\r\n\r\n" % KEY).encode()
    assert rtlib.http_raw(d.port, chunked, read_all=False)[0] == 411
    nolen = ("POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Connection: close\r\n\r\n" % KEY).encode()
    assert rtlib.http_raw(d.port, nolen, read_all=False)[0] == 411
    st, hd, _ = post(d, None, method="GET")
    assert st == 405 and hd["allow"] == "POST"
    # other paths still take no body
    assert post(d, "x", path="/health")[0] == 400
    s = stats(d)
    assert s["publish_rejected"] >= len(cases) + 4 and s["publish_events"] == 2, s


def test_a_half_closed_client_still_gets_its_answer(start_daemon):
    """A client that half-closes (SHUT_WR) after its request, as `nc -N`
    does, is answered once Redis took the event, then closed (RFC 9112
    9.6): else it cannot know its event went out, and sends it again."""
    d, _ = start(start_daemon)
    sub = Client(d.port, rtlib.mint(userId="reader"))
    sub.subscribe("apps:created")
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        try:
            s.sendall(request({"channel": "apps:created", "data": {"half": i}},
                              close=i != 1))      # kept alive or not: closed after
            s.shutdown(socket.SHUT_WR)
            st, hd, body, closed = rtlib.read_http_response(s, 5, read_all=True)
        finally:
            s.close()
        assert st == 200, (st, hd, body)
        assert json.loads(body)["receivers"] == 1, body
        assert closed
        assert sub.next_event()["data"] == {"half": i}
    assert stats(d)["publish_events"] == 3


def test_a_hung_redis_gets_a_503_within_redis_timeout(start_daemon):
    """Redis stopped (SIGSTOP: the link open, no answer): a publish is
    answered 503 with Retry-After once redis_timeout (and a second) has
    passed since the request, not dropped without a word at
    handshake_timeout, counted as failed, not as a handshake timeout."""
    d, r = start(start_daemon, redis_timeout="1s", handshake_timeout="30s")
    before = stats(d)
    os.kill(r.proc.pid, signal.SIGSTOP)
    try:
        st, hd, b = post(d, {"channel": "apps:created", "data": "hung"})
        batch = post(d, [{"channel": "apps:created", "data": 1}, {"channel": "nope:x", "data": 2}])
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    assert st == 503 and hd.get("retry-after") == "1", (st, hd, b)
    assert "did not answer in time" in b["error"], b
    # a batch answers 200 item by item: the timed-out one and the refused one
    assert batch[0] == 200, batch
    assert "did not answer in time" in batch[2][0]["error"], batch
    assert batch[2][1] == {"error": "unknown channel"}, batch
    after = stats(d)
    assert after["publish_failed"] >= before["publish_failed"] + 2, after
    assert after["handshake_timeouts"] == before["handshake_timeouts"], after
    # and once Redis answers again, publishes go through
    rtlib.wait_for(lambda: post(d, {"channel": "apps:created", "data": "back"})[0] == 200,
                   10, "publishing again")


def test_no_key_means_no_endpoint(start_daemon):
    d, _ = start(start_daemon, publish_api_key=None)
    assert post(d, {"channel": "apps:x", "data": 1})[0] == 404


def test_redis_down_answers_503(start_daemon):
    d, r = start(start_daemon)
    r.stop()
    rtlib.wait_for(lambda: rtlib.health(d.port, timeout=1)[0] == 503, 10,
                   "redis down in /health", tolerate=rtlib.TRANSIENT)
    st, hd, b = post(d, {"channel": "apps:x", "data": 1})
    assert st == 503 and hd["retry-after"] == "1" and b == {"error": "redis is down"}
    st, _, b = post(d, [{"channel": "apps:x", "data": 1}])
    assert st == 503, (st, b)
    # a batch with one valid item among invalid ones: still worth a retry
    st, _, b = post(d, [{"channel": "nope:x", "data": 1},
                        {"channel": "apps:x", "data": 1}])
    assert st == 503, (st, b)
    assert stats(d)["publish_failed"] == 3
    # a batch of invalid items only: answered item by item, as with Redis
    # up (a retry would not help it), and nothing counted as failed
    st, _, b = post(d, [{"channel": "nope:x", "data": 1}, {"channel": "a b", "data": 2}])
    assert (st, b) == (200, [{"error": "unknown channel"},
                             {"error": "invalid channel name"}]), (st, b)
    assert stats(d)["publish_failed"] == 3


def test_short_key_is_a_config_error(tmp_path):
    import subprocess
    conf = tmp_path / "r.conf"
    conf.write_text("listen 127.0.0.1:1\njwt_secret x\npublish_api_key short\n")
    p = subprocess.run([rtlib.realtimed_bin(), "-t", "-c", str(conf)],
                       capture_output=True, text=True, env=rtlib.clean_env())
    assert p.returncode != 0
    assert "%s:3: publish_api_key: at least 16 bytes" % conf in p.stderr + p.stdout
