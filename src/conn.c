/*
 * A connection's life: its output (plain: an outq of shared blocks; wss: an
 * OpenSSL bufferevent), the closing handshake, lingering, freeing, and the
 * heartbeat and deadline timers on the worker's wheel.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <json-c/json.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "auth.h"
#include "proto.h"
#include "registry.h"
#include "outq.h"
#include "deflate.h"
#include "worker_int.h"

/*
 * A wss connection is an OpenSSL bufferevent.  A plain one is its socket,
 * one embedded read event and, only while it has bytes waiting, an output
 * queue of shared blocks (outq.h): an idle connection holds no buffers.
 */

int
conn_fd(const struct rt_conn *c)
{
	return c->c_tls ? (int)bufferevent_getfd(c->c_bev) : (int)event_get_fd(&c->c_ev);
}

size_t
conn_outlen(const struct rt_conn *c)
{
	if (c->c_tls)
		return evbuffer_get_length(bufferevent_get_output(c->c_bev));
	return outq_cost(c->c_out);	/* for limits: entries count too */
}

/* A write to a plain socket failed: the socket callback frees c soon. */
void
conn_io_fail(struct rt_conn *c, int err)
{
	if (c->c_io_err)
		return;
	c->c_io_err = 1;
	errno = err;
	log_debug("%s: %s: write: %s", __func__, conn_peer(c), strerror(err));
	outq_free(&c->c_out);
	/* deferred: callers up the stack still hold c */
	event_active(&c->c_ev, EV_WRITE, 0);
}

/* Flush c's queue when this loop turn's callbacks are done. */
void
conn_want_flush(struct rt_conn *c)
{
	if (c->c_wev == NULL || !event_pending(c->c_wev, EV_WRITE, NULL))
		event_active(&c->c_ev, EV_WRITE, 0);
}

/* The socket is full: resume when it has room. */
void
conn_want_room(struct rt_conn *c)
{
	if (c->c_wev == NULL && (c->c_wev = event_new(c->c_worker->w_base, conn_fd(c),
	    EV_WRITE | EV_PERSIST, worker_sock_cb, c)) == NULL) {
		conn_io_fail(c, ENOMEM);
		return;
	}
	if (!event_pending(c->c_wev, EV_WRITE, NULL))
		event_add(c->c_wev, NULL);
}

/* Queue a then b (either may be empty) for the peer. */
void
conn_write2(struct rt_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	if (c->c_tls) {
		struct evbuffer	*out = bufferevent_get_output(c->c_bev);

		if (alen > 0)
			evbuffer_add(out, a, alen);
		if (blen > 0)
			evbuffer_add(out, b, blen);
		return;
	}
	if (c->c_io_err)
		return;
	if (c->c_out == NULL)
		conn_want_flush(c);
	if (outq_add_copy(&c->c_out, a, alen, b, blen) == -1)
		conn_io_fail(c, ENOMEM);
}

void
conn_write(struct rt_conn *c, const void *data, size_t len)
{
	conn_write2(c, data, len, NULL, 0);
}

void
conn_send_frame(struct rt_conn *c, int opcode, const void *data, size_t len)
{
	uint8_t		 hdr[WS_HEADER_MAX];
	size_t		 hlen;

	hlen = ws_frame_header(hdr, opcode, 1, len);
	conn_write2(c, hdr, hlen, data, len);
}

/*
 * A data message, compressed when the connection negotiated
 * permessage-deflate and it is at least compression_min_size (the echo
 * route: RFC 7692 conformance both ways).  Plain when compressing fails.
 */
void
conn_send_message(struct rt_conn *c, int opcode, const void *data, size_t len)
{
	struct rt_worker	*w = c->c_worker;
	struct rt_config	*conf = w->w_conf;
	uint8_t			*z, hdr[WS_HEADER_MAX];
	size_t			 zlen, hlen;

	if (!c->c_deflate || !conf->c_compression || len < (size_t)conf->c_compression_min_size) {
		conn_send_frame(c, opcode, data, len);
		return;
	}
	if (w->w_deflate != NULL && w->w_deflate->dc_level != conf->c_compression_level) {
		deflate_ctx_free(w->w_deflate);		/* a reload changed the level */
		free(w->w_deflate);
		w->w_deflate = NULL;
	}
	if (w->w_deflate == NULL && (w->w_deflate = calloc(1, sizeof(*w->w_deflate))) != NULL &&
	    deflate_ctx_init(w->w_deflate, conf->c_compression_level,
	    conf->c_compression_window_bits) == -1) {
		free(w->w_deflate);
		w->w_deflate = NULL;
	}
	if (w->w_deflate == NULL || deflate_compress(w->w_deflate, data, len, &z, &zlen) == -1) {
		conn_send_frame(c, opcode, data, len);
		return;
	}
	hlen = ws_frame_header_rsv1(hdr, opcode, zlen);
	conn_write2(c, hdr, hlen, z, zlen);
}

/* The requests waiting behind an unanswered one are gone, and leave the gauge. */
void
conn_later_free(struct rt_conn *c)
{
	if (c->c_later == NULL)
		return;
	STAT_ADD(c->c_worker, rw_message_memory, -(int64_t)evbuffer_get_length(c->c_later));
	evbuffer_free(c->c_later);
	c->c_later = NULL;
}

/* c_msg is gone; a WebSocket message's bytes leave the gauge. */
void
conn_msg_free(struct rt_conn *c)
{
	if (c->c_msg == NULL)
		return;
	if (c->c_msg_counted)
		STAT_ADD(c->c_worker, rw_message_memory, -(int64_t)evbuffer_get_length(c->c_msg));
	c->c_msg_counted = 0;
	evbuffer_free(c->c_msg);
	c->c_msg = NULL;
}

/* The inflater of a message is gone: its memory leaves the gauge. */
void
conn_inflate_end(struct rt_conn *c)
{
	if (c->c_inflate == NULL)
		return;
	STAT_ADD(c->c_worker, rw_inflate_memory, -(int64_t)c->c_inflate->ci_counted);
	deflate_inflater_free(c->c_inflate->ci_di);
	free(c->c_inflate);
	c->c_inflate = NULL;
}

/* Replies and pongs obey max_output_buffer like events: a client that asks
 * but never reads is a slow consumer too. */
int
conn_output_full(struct rt_conn *c)
{
	return conn_outlen(c) > (size_t)c->c_worker->w_conf->c_max_output_buffer;
}


void
conn_slow(struct rt_conn *c)
{
	log_debug("%s: %s: slow consumer, output over %lld bytes", __func__, conn_peer(c),
	    (long long)c->c_worker->w_conf->c_max_output_buffer);
	STAT_ADD(c->c_worker, rw_slow_closes, 1);
	conn_close(c, WS_CLOSE_SLOW, "Slow consumer", 1);
}

void
conn_send_json(struct rt_conn *c, struct json_object *obj)
{
	const char	*s;
	size_t		 len;

	if (obj == NULL)
		return;
	s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	conn_send_frame(c, WS_OP_TEXT, s, len);
	STAT_ADD(c->c_worker, rw_messages_out, 1);
	json_object_put(obj);
}

/* A reply made as text (proto.h), freed here; NULL: out of memory, nothing sent. */
void
conn_send_text(struct rt_conn *c, char *s, size_t len)
{
	if (s == NULL)
		return;
	conn_send_frame(c, WS_OP_TEXT, s, len);
	STAT_ADD(c->c_worker, rw_messages_out, 1);
	free(s);
}

void
conn_send_error(struct rt_conn *c, const char *msg, const char *request,
    const char *channel)
{
	conn_send_json(c, proto_error(msg, request, channel, NULL));
}

/* ---- lifecycle --------------------------------------------------------- */

static void
conn_uncount(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;

	if (!c->c_counted)
		return;
	c->c_counted = 0;
	STAT_ADD(w, rw_connections, -1);
	if (c->c_user != NULL)
		STAT_ADD(w, rw_authenticated, -1);
	else
		STAT_ADD(w, rw_anonymous, -1);
	reg_conn_del(w->w_reg, c->c_slot);
	c->c_slot = -1;
}

/*
 * The connection becomes user id's: its user key, and one more of the
 * user's connections host-wide (max_connections_per_user).  -1 when the
 * user has that many already (counted; nothing changed).
 */
int
conn_user_acquire(struct rt_conn *c, const char *id)
{
	struct rt_worker	*w = c->c_worker;
	uint32_t		 key = reg_count_key(id, strlen(id));
	int			 limit = w->w_conf->c_max_connections_per_user;

	if (key == 0)
		key = 1;	/* 0 marks a free entry in a channel's table of users */
	if (limit > 0 && reg_count_acquire(w->w_reg, REG_COUNT_CONNS, w->w_id, key, limit) == -1) {
		STAT_ADD(w, rw_user_conn_limited, 1);
		log_debug("%s: %s: over max_connections_per_user", __func__, conn_peer(c));
		return -1;
	}
	c->c_userkey = key;
	c->c_user_counted = limit > 0;
	return 0;
}

/* Over max_connections_per_user: the error, then 1008. */
void
conn_refuse_user(struct rt_conn *c, const char *request)
{
	conn_send_error(c, "Too many connections", request, NULL);
	conn_close(c, WS_CLOSE_POLICY, "Too many connections", 0);
}

void
conn_free(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;

	conn_uncount(c);
	worker_pending(c, 0);
	conn_pub_cancel(c);
	chanidx_unsubscribe_all(c);
	if (c->c_ip_counted)
		reg_count_release(w->w_reg, REG_COUNT_IP, w->w_id, c->c_ipkey);
	if (c->c_user_counted)
		reg_count_release(w->w_reg, REG_COUNT_CONNS, w->w_id, c->c_userkey);
	wheel_cancel(&w->w_wheel, &c->c_timer);
	TAILQ_REMOVE(&w->w_conns, c, c_link);
	if (c->c_bev != NULL && c->c_tls && c->c_tls_done && !c->c_tls_failed &&
	    !c->c_tls_shut) {
		/*
		 * close_notify, one try: a session freed without it counts as
		 * broken and OpenSSL drops it from the cache (no resumption).
		 */
		SSL	*ssl = bufferevent_openssl_get_ssl(c->c_bev);

		if (ssl != NULL && SSL_shutdown(ssl) < 0)
			ERR_clear_error();
	}
	if (c->c_bev != NULL)
		bufferevent_free(c->c_bev);
	if (!c->c_tls && event_initialized(&c->c_ev)) {
		event_del(&c->c_ev);
		if (c->c_wev != NULL)
			event_free(c->c_wev);
		outq_free(&c->c_out);
		close(event_get_fd(&c->c_ev));
	}
	conn_msg_free(c);
	conn_later_free(c);
	free(c->c_proxy_buf);
	conn_inflate_end(c);
	if (c->c_deflate)
		STAT_ADD(w, rw_deflate_conns, -1);
	ws_decoder_free(&c->c_dec);
	free(c->c_subs);
	free(c->c_user);
	free(c);
}

/*
 * After our last bytes: half-close and read until the peer closes, so the
 * kernel does not answer unread input with a RST that would destroy the
 * close frame or error response before the peer reads it.
 */
void
conn_linger(struct rt_conn *c)
{
	c->c_state = CS_LINGER;
	c->c_deadline = util_now_ms() + (uint64_t)c->c_worker->w_conf->c_close_timeout;
	conn_schedule(c);
	if (!c->c_tls) {
		conn_want_flush(c);	/* ends in conn_drained() */
		return;
	}
	bufferevent_enable(c->c_bev, EV_READ);
	/* deferred: callers up the stack still hold c */
	if (evbuffer_get_length(bufferevent_get_output(c->c_bev)) == 0)
		bufferevent_trigger(c->c_bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * Start the closing handshake.  fail: the connection is failed (protocol
 * error), so frames the peer sends after this are not parsed.
 */
void
conn_close(struct rt_conn *c, uint16_t code, const char *reason, int fail)
{
	uint8_t	 frame[2 + WS_CONTROL_MAX];
	size_t	 n;

	if (c->c_state != CS_OPEN)
		return;
	n = ws_close_frame(frame, code, reason);
	conn_write(c, frame, n);
	/* what it was reading or had waiting is never used now: given back */
	conn_msg_free(c);
	conn_inflate_end(c);
	conn_later_free(c);
	conn_uncount(c);
	conn_pub_cancel(c);
	chanidx_unsubscribe_all(c);
	if (fail || c->c_close_rcvd) {
		conn_linger(c);
		return;
	}
	c->c_state = CS_CLOSING;
	c->c_deadline = util_now_ms() + (uint64_t)c->c_worker->w_conf->c_close_timeout;
	conn_schedule(c);
}

/* ---- timers ------------------------------------------------------------ */

/*
 * Milliseconds the token has left by the wall clock, with jwt_leeway as
 * at the handshake: a token accepted within the leeway lives it out.
 */
static int64_t
conn_token_left(const struct rt_conn *c)
{
	return c->c_user->cu_exp_ms + c->c_worker->w_conf->c_jwt_leeway - util_wall_ms();
}

void
conn_schedule(struct rt_conn *c)
{
	struct rt_config	*conf = c->c_worker->w_conf;
	uint64_t		 next;

	if (c->c_state != CS_OPEN) {
		wheel_schedule(&c->c_worker->w_wheel, &c->c_timer, c->c_deadline);
		return;
	}
	next = c->c_last_ping + (uint64_t)conf->c_heartbeat_interval;
	if (c->c_last_rx + (uint64_t)conf->c_heartbeat_timeout < next)
		next = c->c_last_rx + (uint64_t)conf->c_heartbeat_timeout;
	if (c->c_user != NULL && c->c_user->cu_exp_ms != 0) {
		/* the wall clock decides expiry; map it onto the monotonic one */
		int64_t	 left = conn_token_left(c);

		/* token_expiring first, once per token */
		if (!c->c_noticed && conf->c_token_refresh_notice > 0)
			left -= conf->c_token_refresh_notice;
		if (util_now_ms() + (left > 0 ? (uint64_t)left : 0) < next)
			next = util_now_ms() + (left > 0 ? (uint64_t)left : 0);
	}
	wheel_schedule(&c->c_worker->w_wheel, &c->c_timer, next);
}

static void
conn_timer_open(struct rt_conn *c, uint64_t now)
{
	struct rt_config	*conf = c->c_worker->w_conf;

	if (now >= c->c_last_rx + (uint64_t)conf->c_heartbeat_timeout) {
		log_debug("%s: %s: no frame for %lld ms, dropped", __func__,
		    conn_peer(c), (long long)(now - c->c_last_rx));
		STAT_ADD(c->c_worker, rw_heartbeat_drops, 1);
		conn_free(c);
		return;
	}
	if (c->c_user != NULL && c->c_user->cu_exp_ms != 0 && conn_token_left(c) <= 0) {
		STAT_ADD(c->c_worker, rw_token_expired, 1);
		conn_send_error(c, "Token expired", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Token expired", 0);
		return;
	}
	if (c->c_user != NULL && c->c_user->cu_exp_ms != 0 && !c->c_noticed &&
	    conf->c_token_refresh_notice > 0 &&
	    conn_token_left(c) <= conf->c_token_refresh_notice) {
		c->c_noticed = 1;
		STAT_ADD(c->c_worker, rw_token_notices, 1);
		conn_send_json(c, proto_token_expiring(c->c_user->cu_exp_ms, NULL));
	}
	if (c->c_wev != NULL && c->c_out == NULL) {
		/* idle again: the write event goes until the next backlog */
		event_free(c->c_wev);
		c->c_wev = NULL;
	}
	if (now >= c->c_last_ping + (uint64_t)conf->c_heartbeat_interval) {
		conn_send_frame(c, WS_OP_PING, NULL, 0);
		c->c_last_ping = now;
	}
	conn_schedule(c);
}

void
conn_timer_fire(struct wheel_entry *e, void *arg)
{
	struct rt_conn	*c = (struct rt_conn *)((char *)e - offsetof(struct rt_conn, c_timer));
	uint64_t	 now = *(uint64_t *)arg;

	switch (c->c_state) {
	case CS_HTTP:
		if (c->c_pub != NULL) {
			log_debug("%s: %s: no answer to its publish in time", __func__,
			    conn_peer(c));
			conn_pub_timeout(c);
			break;
		}
		log_debug("%s: %s: %s timeout", __func__, conn_peer(c),
		    c->c_tls && !c->c_tls_done ? "TLS handshake" : "handshake");
		if (c->c_tls && !c->c_tls_done)
			STAT_ADD(c->c_worker, rw_tls_errors, 1);
		STAT_ADD(c->c_worker, rw_handshake_timeouts, 1);
		conn_free(c);
		break;
	case CS_PROXY:
		conn_proxy_timeout(c);
		break;
	case CS_OPEN:
		conn_timer_open(c, now);
		break;
	case CS_CLOSING:
		STAT_ADD(c->c_worker, rw_close_timeouts, 1);
		conn_free(c);
		break;
	case CS_LINGER:
		conn_free(c);
		break;
	}
}

/* What a connection keeps of user (authenticated); NULL out of memory. */
struct conn_user *
conn_user_new(const struct auth_user *user)
{
	struct conn_user	*cu;
	size_t			 idlen = strlen(user->u_id), rlen = strlen(user->u_role);

	if ((cu = malloc(offsetof(struct conn_user, cu_id) + idlen + 1 + rlen + 1 +
	    user->u_claimslen)) == NULL)
		return NULL;
	cu->cu_exp_ms = user->u_exp_ms;
	cu->cu_has_jti = user->u_has_jti != 0;
	memcpy(cu->cu_jti, user->u_jti, sizeof(cu->cu_jti));
	cu->cu_admin = user->u_admin != 0;
	cu->cu_has_role = user->u_has_role != 0;
	cu->cu_claimslen = (uint16_t)user->u_claimslen;
	memcpy(cu->cu_id, user->u_id, idlen + 1);
	memcpy(cu->cu_id + idlen + 1, user->u_role, rlen + 1);
	memcpy(cu->cu_id + idlen + 1 + rlen + 1, user->u_claims, user->u_claimslen);
	return cu;
}

/*
 * auth_verify() with the worker's keys at the time now, counting what the
 * verified-token cache did: 0 verified, -1 refused (reason filled).
 */
int
conn_verify_token(struct rt_conn *c, const char *token, size_t len,
    struct auth_user *user, char *reason, size_t reasonlen)
{
	struct rt_worker	*w = c->c_worker;
	struct auth_cache_stats	 before, after;
	int			 rv;

	auth_cache_stats(w->w_auth, &before);
	rv = auth_verify(w->w_auth, token, len, util_wall_ms(), user, reason, reasonlen);
	auth_cache_stats(w->w_auth, &after);
	if (after.ac_hits != before.ac_hits)
		STAT_ADD(w, rw_token_cache_hits, 1);
	else if (after.ac_misses != before.ac_misses)
		STAT_ADD(w, rw_token_cache_misses, 1);
	if (after.ac_evictions != before.ac_evictions)
		STAT_ADD(w, rw_token_cache_evictions, (int64_t)(after.ac_evictions - before.ac_evictions));
	if (after.ac_entries != before.ac_entries || after.ac_bytes != before.ac_bytes) {
		STAT_ADD(w, rw_token_cache_entries, (int64_t)after.ac_entries - (int64_t)before.ac_entries);
		STAT_ADD(w, rw_token_cache_bytes, (int64_t)after.ac_bytes - (int64_t)before.ac_bytes);
	}
	return rv == -1 ? -1 : 0;
}

/* The policy's view of a connection's user (NULL: anonymous), in tmp. */
const struct auth_user *
conn_auth_user(const struct rt_conn *c, struct auth_user *tmp)
{
	const struct conn_user	*cu = c->c_user;
	const char		*role;

	if (cu == NULL)
		return NULL;
	tmp->u_authenticated = 1;
	tmp->u_admin = cu->cu_admin;
	tmp->u_exp_ms = cu->cu_exp_ms;
	tmp->u_has_jti = cu->cu_has_jti;
	memcpy(tmp->u_jti, cu->cu_jti, sizeof(tmp->u_jti));
	snprintf(tmp->u_id, sizeof(tmp->u_id), "%s", cu->cu_id);
	role = cu->cu_id + strlen(cu->cu_id) + 1;
	tmp->u_has_role = cu->cu_has_role;
	snprintf(tmp->u_role, sizeof(tmp->u_role), "%s", role);
	tmp->u_has_email = 0;
	tmp->u_email[0] = '\0';
	memcpy(tmp->u_claims, role + strlen(role) + 1, cu->cu_claimslen);
	tmp->u_claimslen = cu->cu_claimslen;
	return tmp;
}

/* ---- flushing and draining ---------------------------------------------- */

/*
 * Nothing left to write: a lingering connection half-closes (wss: after
 * close_notify) and reads on until EOF or close_timeout, or ends.
 */
int
conn_drained(struct rt_conn *c)
{
	SSL	*ssl;

	if (c->c_state != CS_LINGER)
		return 0;
	if (c->c_close_rcvd || c->c_rd_eof) {
		/* (c_rd_eof: the peer half-closed: nothing more to read) */
		/* the close handshake is complete: the server closes first */
		conn_free(c);
		return -1;
	}
	if (c->c_tls) {
		if (c->c_tls_shut)
			return 0;
		c->c_tls_shut = 1;
		if (c->c_tls_done && !c->c_tls_failed &&
		    (ssl = bufferevent_openssl_get_ssl(c->c_bev)) != NULL &&
		    SSL_shutdown(ssl) < 0)
			ERR_clear_error();
	}
	shutdown(conn_fd(c), SHUT_WR);
	return 0;
}

/* Write what is queued; -1 when c is gone. */
int
conn_flush(struct rt_conn *c)
{
	if (c->c_out != NULL && outq_write(&c->c_out, conn_fd(c)) == -1) {
		log_debug("%s: %s: write: %s", __func__, conn_peer(c), strerror(errno));
		conn_free(c);
		return -1;
	}
	if (c->c_out != NULL) {
		conn_want_room(c);
		return 0;
	}
	if (c->c_wev != NULL)
		event_del(c->c_wev);
	return conn_drained(c);
}


/* ---- the peer ------------------------------------------------------------- */

/*
 * c's client is at addr (4 or 16 bytes of family), port: the socket's
 * peer or what a PROXY header or a trusted proxy says.  An IPv4 client
 * that came over IPv6 (::ffff:a.b.c.d) is kept as IPv4, so that it is one
 * address for max_connections_per_ip, metrics_allow and the logs however
 * it arrived.
 */
void
conn_peer_put(struct rt_conn *c, int family, const uint8_t *addr, uint16_t port)
{
	memset(c->c_peer_addr, 0, sizeof(c->c_peer_addr));
	family = util_addr_unmap(family, &addr);
	c->c_peer_family = (uint8_t)family;
	c->c_peer_port = port;
	if (family == AF_INET)
		memcpy(c->c_peer_addr, addr, 4);
	else if (family == AF_INET6)
		memcpy(c->c_peer_addr, addr, 16);
}

void
conn_peer_set(struct rt_conn *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		conn_peer_put(c, AF_INET, (const uint8_t *)&sin->sin_addr, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		conn_peer_put(c, AF_INET6, (const uint8_t *)&sin6->sin6_addr,
		    ntohs(sin6->sin6_port));
	} else
		c->c_peer_family = (uint8_t)sa->sa_family;
}

/*
 * max_connections_per_ip for c's address as it stands now (the socket's,
 * a PROXY header's, a trusted proxy's Forwarded): one more connection of
 * it, host-wide, in place of the address counted before, if any.  -1 when
 * it has that many already (counted, logged; the old count stays until
 * c is freed).
 */
int
conn_ip_acquire(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;
	int			 limit = w->w_conf->c_max_connections_per_ip;
	uint32_t		 key;

	if (limit <= 0)
		return 0;
	if (c->c_peer_family == AF_INET)
		key = reg_count_key(c->c_peer_addr, 4);
	else if (c->c_peer_family == AF_INET6)
		key = reg_count_key(c->c_peer_addr, 16);
	else
		return 0;
	if (c->c_ip_counted && c->c_ipkey == key)
		return 0;
	if (reg_count_acquire(w->w_reg, REG_COUNT_IP, w->w_id, key, limit) == -1) {
		STAT_ADD(w, rw_ip_limited, 1);
		log_debug("%s: %s: over max_connections_per_ip", __func__, conn_peer(c));
		return -1;
	}
	if (c->c_ip_counted)
		reg_count_release(w->w_reg, REG_COUNT_IP, w->w_id, c->c_ipkey);
	c->c_ipkey = key;
	c->c_ip_counted = 1;
	return 0;
}

/* "address:port" of the peer, in a static buffer (for one log line). */
const char *
conn_peer(const struct rt_conn *c)
{
	static char	 buf[INET6_ADDRSTRLEN + 8];
	char		 host[INET6_ADDRSTRLEN];

	if (c->c_peer_family == AF_INET) {
		inet_ntop(AF_INET, c->c_peer_addr, host, sizeof(host));
		snprintf(buf, sizeof(buf), "%s:%u", host, c->c_peer_port);
	} else if (c->c_peer_family == AF_INET6) {
		inet_ntop(AF_INET6, c->c_peer_addr, host, sizeof(host));
		snprintf(buf, sizeof(buf), "[%s]:%u", host, c->c_peer_port);
	} else
		snprintf(buf, sizeof(buf), "local");
	return buf;
}

