/*
 * A connection before the upgrade: the request head (plain: from reads,
 * wss: from the bufferevent), routes, /health[/live|/ready] and /metrics, the 101 and
 * the greeting that authenticates the client.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <json-c/json.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "http.h"
#include "auth.h"
#include "proto.h"
#include "stats.h"
#include "registry.h"
#include "deflate.h"
#include "worker_int.h"

void
conn_http_error(struct rt_conn *c, int status, const char *extra)
{
	char	 buf[1024], body[128];
	int	 n, blen;

	blen = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	n = http_format_response(buf, sizeof(buf), status, "text/plain", extra,
	    body, (size_t)blen);
	if (n > 0)	/* the body last: a HEAD's answer is the same without it */
		conn_write(c, buf, (size_t)n - (c->c_http_head ? (size_t)blen : 0));
	if (status >= 400)
		STAT_ADD(c->c_worker, rw_handshake_errors, 1);
	log_debug("%s: %s: HTTP %d", __func__, conn_peer(c), status);
	conn_linger(c);
}

/* ---- timers ------------------------------------------------------------ */


/* /health (what /health/ready says), /health/ready, /health/live. */
static void
conn_http_health(struct rt_conn *c, int live)
{
	struct rt_worker	*w = c->c_worker;
	struct json_object	*o;
	char			 buf[2048];
	const char		*body;
	size_t			 blen;
	int			 n, healthy;

	o = live ? stats_live_json(w->w_reg, &healthy) :
	    stats_health_json(w->w_reg, w->w_conf->c_canary_interval, &healthy);
	body = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &blen);
	n = http_format_response(buf, sizeof(buf), healthy ? 200 : 503, "application/json",
	    "Cache-Control: no-store\r\n", body, blen);
	if (n > 0)
		conn_write(c, buf, (size_t)n - (c->c_http_head ? blen : 0));
	json_object_put(o);
	conn_linger(c);
}

/*
 * Prometheus text, for the addresses in metrics_allow only: the client's
 * as the socket or a proxy_protocol listener's header gives it (a
 * balancer's own address would let everyone behind it in).
 */
static void
conn_http_metrics(struct rt_conn *c)
{
	struct evbuffer		*body;
	const uint8_t		*p;
	char			 head[256];
	int			 n;

	if (!util_addr_in(c->c_peer_family, c->c_peer_addr,
	    &c->c_worker->w_conf->c_metrics_allow)) {
		conn_http_error(c, 403, NULL);
		return;
	}
	if ((body = evbuffer_new()) == NULL) {
		conn_http_error(c, 503, NULL);
		return;
	}
	stats_metrics(c->c_worker->w_reg, body);
	n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
	    evbuffer_get_length(body));
	if ((p = evbuffer_pullup(body, -1)) == NULL && evbuffer_get_length(body) > 0) {
		evbuffer_free(body);
		conn_http_error(c, 503, NULL);
		return;
	}
	conn_write2(c, head, (size_t)n, p, c->c_http_head ? 0 : evbuffer_get_length(body));
	evbuffer_free(body);
	conn_linger(c);
}

static int
conn_http_origin_ok(struct rt_conn *c, const struct http_request *req)
{
	const struct rt_strlist	*l = &c->c_worker->w_conf->c_allowed_origins;
	const struct http_header *h;
	int			 i;

	if (l->sl_count == 0 || (h = http_header_get(req, "Origin")) == NULL)
		return 1;	/* origin checks protect browsers, which send one */
	for (i = 0; i < l->sl_count; i++)
		if (strcmp(l->sl_items[i], "*") == 0 ||
		    util_strncaseeq(h->h_value, h->h_value_len, l->sl_items[i]))
			return 1;
	return 0;
}

/*
 * max_handshake_rate, for the whole node: 503 with the whole seconds
 * (at least 1, RFC 9110's Retry-After) until the bucket has room again.
 */
static int
conn_http_throttled(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;
	uint64_t		 wait_ns;
	char			 hdr[64];

	if (reg_admit(w->w_reg, util_now_us() * 1000, w->w_conf->c_max_handshake_rate,
	    w->w_conf->c_max_handshake_burst, &wait_ns) == 0)
		return 0;
	STAT_ADD(w, rw_handshakes_throttled, 1);
	snprintf(hdr, sizeof(hdr), "Retry-After: %llu\r\n",
	    (unsigned long long)(wait_ns / 1000000000ull + 1));
	conn_http_error(c, 503, hdr);
	return 1;
}

static void
conn_http_101(struct rt_conn *c, const struct http_upgrade *up, const struct http_token *tok,
    const char *ext)
{
	char		 accept[64], buf[256];
	int		 n;

	ws_accept_key(up->u_key, up->u_key_len, accept, sizeof(accept));
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n", accept);
	conn_write(c, buf, (size_t)n);
	/* browsers fail a handshake whose offered subprotocol is not echoed */
	if (tok != NULL && tok->t_protocol != NULL) {
		conn_write(c, "Sec-WebSocket-Protocol: ", 24);
		conn_write2(c, tok->t_protocol, tok->t_protocol_len, "\r\n", 2);
	}
	if (ext != NULL && ext[0] != '\0') {
		conn_write(c, "Sec-WebSocket-Extensions: ", 26);
		conn_write2(c, ext, strlen(ext), "\r\n", 2);
	}
	conn_write(c, "\r\n", 2);
}

/* After the 101: authenticate and greet, or refuse with 1008. */
static void
conn_http_greet(struct rt_conn *c, const struct http_token *tok)
{
	struct rt_worker	*w = c->c_worker;
	struct auth_user	 user;
	char			 reason[128], msg[160], *hello;
	size_t			 hlen;

	if (tok->t_source == HTTP_TOKEN_NONE) {
		if (!w->w_conf->c_allow_anonymous) {
			STAT_ADD(w, rw_auth_required, 1);
			conn_send_error(c, "Authentication required", NULL, NULL);
			conn_close(c, WS_CLOSE_POLICY, "Authentication required", 0);
			return;
		}
		auth_anonymous(&user);
	} else if (tok->t_error != NULL || conn_verify_token(c, tok->t_token, tok->t_len,
	    &user, reason, sizeof(reason)) == -1) {
		if (tok->t_error != NULL)
			snprintf(reason, sizeof(reason), "%s", tok->t_error);
		STAT_ADD(w, rw_auth_failures, 1);
		log_debug("%s: %s: invalid token: %s", __func__, conn_peer(c), reason);
		snprintf(msg, sizeof(msg), "Invalid token: %s", reason);
		conn_send_error(c, msg, NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Invalid token", 0);
		return;
	}
	if (user.u_has_jti && rvk_revoked(w->w_reg->r_revoked, user.u_jti, time(NULL))) {
		STAT_ADD(w, rw_auth_failures, 1);
		STAT_ADD(w, rw_tokens_revoked, 1);
		log_debug("%s: %s: revoked token", __func__, conn_peer(c));
		conn_send_error(c, "Invalid token: token revoked", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Token revoked", 0);
		return;
	}
	if (user.u_authenticated && conn_user_acquire(c, user.u_id) == -1) {
		conn_refuse_user(c, NULL);
		return;
	}
	c->c_slot = reg_conn_add(w->w_reg, w->w_id, c->c_id,
	    user.u_authenticated ? user.u_id : NULL, user.u_admin, conn_peer(c), (int64_t)time(NULL));
	if (c->c_slot == -1) {
		/* max_connections, host-wide */
		STAT_ADD(w, rw_full_refusals, 1);
		conn_send_error(c, "Server is full, try again later", NULL, NULL);
		conn_close(c, WS_CLOSE_TRY_AGAIN, "Server full", 0);
		return;
	}
	if (user.u_authenticated) {
		if ((c->c_user = conn_user_new(&user)) == NULL) {
			reg_conn_del(w->w_reg, c->c_slot);
			c->c_slot = -1;
			conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
			return;
		}
		STAT_ADD(w, rw_authenticated, 1);
	} else
		STAT_ADD(w, rw_anonymous, 1);
	STAT_ADD(w, rw_connections, 1);
	c->c_counted = 1;
	hello = proto_connected(c->c_id, w->w_conf->c_namespaces,
	    user.u_authenticated ? &user : NULL, NULL, &hlen);
	conn_send_text(c, hello, hlen);
}

static void
conn_http_upgrade(struct rt_conn *c, const struct http_request *req, int route)
{
	struct http_upgrade	 up;
	struct http_token	*tok = NULL;
	struct rt_config	*conf = c->c_worker->w_conf;
	char			 ext[DEFLATE_RESPONSE_MAX];
	int			 status, deflate = 0;

	if ((status = http_check_upgrade(req, &up)) != 0) {
		conn_http_error(c, status, status == 426 ?
		    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" :
		    status == 405 ? "Allow: GET\r\n" : NULL);
		return;
	}
	if (!conn_http_origin_ok(c, req)) {
		conn_http_error(c, 403, NULL);
		return;
	}
	if (conn_http_throttled(c))
		return;
	if (conn_proxy_forwarded(c, req) == -1)
		return;
	if (route == ROUTE_PROTO) {
		if ((tok = malloc(sizeof(*tok))) == NULL) {
			conn_http_error(c, 503, NULL);
			return;
		}
		http_extract_token(req, tok);
	}
	/* permessage-deflate: a declined or malformed offer only goes without */
	if (conf->c_compression)
		deflate = deflate_negotiate(req, conf->c_compression_window_bits, ext, sizeof(ext));
	conn_http_101(c, &up, tok, deflate ? ext : NULL);
	stats_observe(&c->c_worker->w_rw->rw_handshake, util_now_us() - c->c_last_rx);
	c->c_state = CS_OPEN;
	worker_pending(c, 0);
	c->c_route = (uint8_t)route;
	c->c_last_rx = c->c_last_ping = c->c_tokens_at = util_now_ms();
	c->c_tokens = c->c_worker->w_conf->c_client_messages_burst;
	ws_decoder_init(&c->c_dec, (uint64_t)c->c_worker->w_conf->c_max_message_size, 1);
	if (deflate) {
		ws_decoder_deflate(&c->c_dec, 1);
		c->c_deflate = 1;
		STAT_ADD(c->c_worker, rw_deflate_conns, 1);
	}
	if (route == ROUTE_PROTO)
		conn_http_greet(c, tok);
	free(tok);
	if (c->c_state == CS_OPEN)
		conn_schedule(c);
}

/* A route that takes no body: one announced is refused, as before (400). */
static int
conn_http_no_body(struct rt_conn *c, const struct http_request *req)
{
	if (!req->r_chunked && req->r_content_length == 0)
		return 0;
	conn_http_error(c, 400, NULL);
	return 1;
}

/*
 * Answer a request whose head is parsed, with avail bytes after the head.
 * 1 when done (*used: body bytes taken), 0 while a body is incomplete.
 */
static int
conn_http_route(struct rt_conn *c, const struct http_request *req, const char *body,
    size_t avail, size_t *used)
{
	struct rt_config	*conf = c->c_worker->w_conf;
	const char		*p = req->r_path;
	size_t			 n = req->r_path_len;
	int			 is_get;

	/* HEAD is GET without the body (RFC 9110 9.3.2), for health checks */
	c->c_http_head = req->r_method_len == 4 && memcmp(req->r_method, "HEAD", 4) == 0;
	is_get = c->c_http_head || (req->r_method_len == 3 && memcmp(req->r_method, "GET", 3) == 0);
	*used = 0;
	if (!http_method_known(req)) {
		conn_http_error(c, 501, NULL);	/* RFC 9110 9.1 */
		return 1;
	}
	if (n == 8 && memcmp(p, "/publish", 8) == 0) {
		if (conf->c_publish_api_key[0] == '\0')
			conn_http_error(c, 404, NULL);	/* off: no such endpoint */
		else if (req->r_method_len == 4 && memcmp(req->r_method, "POST", 4) == 0)
			return conn_pub_request(c, req, body, avail, used);
		else {
			STAT_ADD(c->c_worker, rw_publish_rejected, 1);
			conn_http_error(c, 405, "Allow: POST\r\n");
		}
		return 1;
	}
	if (conn_http_no_body(c, req))
		return 1;
	if (n == strlen(conf->c_ws_path) && memcmp(p, conf->c_ws_path, n) == 0)
		conn_http_upgrade(c, req, ROUTE_PROTO);
	else if (conf->c_echo_path[0] != '\0' && n == strlen(conf->c_echo_path) &&
	    memcmp(p, conf->c_echo_path, n) == 0)
		conn_http_upgrade(c, req, ROUTE_ECHO);
	else if ((n == 7 && memcmp(p, "/health", 7) == 0) ||
	    (n == 13 && memcmp(p, "/health/ready", 13) == 0))
		is_get ? conn_http_health(c, 0) : conn_http_error(c, 405, "Allow: GET, HEAD\r\n");
	else if (n == 12 && memcmp(p, "/health/live", 12) == 0)
		is_get ? conn_http_health(c, 1) : conn_http_error(c, 405, "Allow: GET, HEAD\r\n");
	else if (n == 8 && memcmp(p, "/metrics", 8) == 0)
		is_get ? conn_http_metrics(c) : conn_http_error(c, 405, "Allow: GET, HEAD\r\n");
	else
		conn_http_error(c, 404, NULL);
	return 1;
}

/*
 * Parse a request head and answer it.  Returns the bytes it used (head
 * and body); 0 with c still in CS_HTTP means the request is not complete
 * yet.  After a kept-alive answer c is in CS_HTTP again.
 */
static size_t
conn_http_parse(struct rt_conn *c, const char *buf, size_t len)
{
	struct http_request	 req;
	size_t			 max, consumed = 0, used;

	max = (size_t)c->c_worker->w_conf->c_max_header_size;
	switch (http_parse_head(buf, len < max ? len : max, max, &req, &consumed, 1)) {
	case HTTP_PARSE_INCOMPLETE:
		if (len >= max)
			conn_http_error(c, 431, NULL);
		return 0;
	case HTTP_PARSE_TOO_LARGE:
		conn_http_error(c, 431, NULL);
		return 0;
	case HTTP_PARSE_URI_TOO_LONG:
		conn_http_error(c, 414, NULL);
		return 0;
	case HTTP_PARSE_VERSION:
		conn_http_error(c, 505, NULL);
		return 0;
	case HTTP_PARSE_BAD:
		conn_http_error(c, 400, NULL);
		return 0;
	}
	if (!conn_http_route(c, &req, buf + consumed, len - consumed, &used))
		return 0;
	return consumed + used;
}

/* What may wait in a connection's input before its request is whole. */
static size_t
conn_http_bound(const struct rt_conn *c)
{
	const struct rt_config	*conf = c->c_worker->w_conf;

	return (size_t)conf->c_max_header_size + (conf->c_publish_api_key[0] != '\0' ?
	    (size_t)conf->c_max_publish_body : 0);
}

/* wss: requests from the bufferevent's input. */
void
conn_http_input(struct rt_conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->c_bev);
	size_t		 len = evbuffer_get_length(in), bound = conn_http_bound(c), consumed;
	const char	*buf;

	while (c->c_state == CS_HTTP && c->c_pub == NULL && len > 0) {
		if ((buf = (const char *)evbuffer_pullup(in,
		    (ev_ssize_t)(len < bound ? len : bound))) == NULL)
			return;
		consumed = conn_http_parse(c, buf, len < bound ? len : bound);
		/* the request points into the input buffer: drain only now */
		evbuffer_drain(in, consumed);
		len = evbuffer_get_length(in);
		if (consumed == 0)
			break;
	}
	if (c->c_state == CS_HTTP && len > bound) {
		log_debug("%s: %s: %zu bytes waiting, over the bound", __func__, conn_peer(c), len);
		conn_free(c);
		return;
	}
	if ((c->c_state == CS_OPEN || c->c_state == CS_CLOSING) && len > 0)
		conn_ws_input(c);
	else if (c->c_state == CS_LINGER)
		evbuffer_drain(in, evbuffer_get_length(in));
}

/* Plain: keep the len bytes at buf that no request used yet; -1 if they do not fit. */
static int
conn_http_hold(struct rt_conn *c, const uint8_t *buf, size_t len)
{
	if (len > conn_http_bound(c)) {
		log_debug("%s: %s: %zu bytes waiting, over the bound", __func__, conn_peer(c), len);
		conn_free(c);
		return -1;
	}
	if (len == 0)
		return 0;
	if ((c->c_msg = evbuffer_new()) == NULL || evbuffer_add(c->c_msg, buf, len) == -1) {
		conn_http_error(c, 503, NULL);
		return -1;
	}
	return 0;
}

/*
 * Plain: requests from reads.  What is not used yet (a head split over
 * reads, a body still coming, requests behind a publish the bridge has
 * not answered) waits in c_msg, which holds WebSocket messages only after
 * the upgrade.  buf NULL: only what waits there.
 */
void
conn_http_plain(struct rt_conn *c, uint8_t *buf, size_t len)
{
	struct evbuffer	*held = c->c_msg;
	size_t		 used, total = 0;

	if (held != NULL) {
		if (len > 0 && evbuffer_add(held, buf, len) == -1) {
			conn_http_error(c, 503, NULL);
			return;
		}
		len = evbuffer_get_length(held);
		if ((buf = evbuffer_pullup(held, -1)) == NULL && len > 0) {
			conn_http_error(c, 503, NULL);
			return;
		}
	}
	c->c_msg = NULL;
	while (c->c_state == CS_HTTP && c->c_pub == NULL && total < len) {
		if ((used = conn_http_parse(c, (const char *)buf + total, len - total)) == 0)
			break;
		total += used;
	}
	if (c->c_state == CS_HTTP) {
		/* incomplete, or waiting for the bridge: keep the rest */
		(void)conn_http_hold(c, buf + total, len - total);
		if (held != NULL)
			evbuffer_free(held);
		return;
	}
	if ((c->c_state == CS_OPEN || c->c_state == CS_CLOSING) && total < len)
		conn_ws_feed(c, buf + total, len - total);
	if (held != NULL)
		evbuffer_free(held);
}
