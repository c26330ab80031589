/*
 * A connection after the upgrade: the RFC 6455 decoder's events, the JSON
 * protocol's messages (subscribe, unsubscribe, ping, listChannels, stats)
 * and the per-connection rate limit.
 */
#include <sys/types.h>
#include <sys/uio.h>

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
#include "auth.h"
#include "channel.h"
#include "proto.h"
#include "registry.h"
#include "deflate.h"
#include "utf8.h"
#include "worker_int.h"

#define CONN_WS_PEEK_IOV	16

static void	conn_ws_recheck(struct rt_conn *);


/*
 * A channel with history: the bridge answers with its position (and the
 * replay asked for), then live events follow; without since, the worker
 * answers itself when its stream has told it the position.  A new subscription, or a
 * replay, holds live events until the answer is through; a plain repeat
 * of a live one does not (what came before the answer is older than the
 * position it carries).
 */
static void
conn_ws_subscribe_at(struct rt_conn *c, struct proto_request *r, int fresh)
{
	int	 i = chanidx_find_sub(c, r->pr_channel, r->pr_channel_len);

	if (c->c_subs[i]->s_req != 0) {
		conn_send_error(c, "A subscribe to this channel is still being answered",
		    "subscribe", r->pr_channel);
		return;
	}
	/* the worker's stream may already say where the channel is */
	if (!r->pr_has_since && fanout_position_here(c->c_subs[i]))
		return;
	if (fanout_position(c->c_subs[i], fresh || r->pr_has_since,
	    r->pr_has_since ? r->pr_since_epoch : NULL, r->pr_since_offset) == -1) {
		if (fresh)
			chanidx_unsubscribe_at(c, i);
		STAT_ADD(c->c_worker, rw_positions_full, 1);
		conn_send_error(c, "Server busy, try again later", "subscribe", r->pr_channel);
	}
}

static void
conn_ws_subscribe(struct rt_conn *c, struct proto_request *r)
{
	struct auth_user	 u;
	enum chan_verdict	 v;
	const struct chan_ns	*ns;
	const char		*why = NULL;
	char			*msg;
	size_t			 mlen;
	int			 fresh;

	v = chan_authorize(c->c_worker->w_conf->c_namespaces, r->pr_channel,
	    r->pr_channel_len, conn_auth_user(c, &u), &ns);
	if (v != CHAN_OK) {
		conn_send_error(c, chan_verdict_message(v), "subscribe", r->pr_channel);
		return;
	}
	fresh = chanidx_find_sub(c, r->pr_channel, r->pr_channel_len) == -1;
	if (chanidx_subscribe(c, r->pr_channel, r->pr_channel_len, ns->ns_max_subscribers,
	    &why) == -1) {
		conn_send_error(c, why, "subscribe", r->pr_channel);
		return;
	}
	/* on_demand: "subscribed" once the bridge holds the Redis subscription */
	if (ns->ns_history > 0 || (fresh && config_on_demand(c->c_worker->w_conf)))
		conn_ws_subscribe_at(c, r, fresh);
	else {
		/* with a since, nothing kept: nothing to recover */
		msg = r->pr_has_since ? proto_subscribed_at(r->pr_channel, NULL, 0, 0, NULL, &mlen) :
		    proto_subscribed("subscribed", r->pr_channel, NULL, &mlen);
		conn_send_text(c, msg, mlen);
	}
}

static void
conn_ws_unsubscribe(struct rt_conn *c, struct proto_request *r)
{
	struct auth_user	 u;
	enum chan_verdict	 v;
	char			*msg;
	size_t			 mlen;
	int			 i;

	v = chan_authorize(c->c_worker->w_conf->c_namespaces, r->pr_channel,
	    r->pr_channel_len, conn_auth_user(c, &u), NULL);
	if (v == CHAN_INVALID || v == CHAN_UNKNOWN) {
		conn_send_error(c, chan_verdict_message(v), "unsubscribe", r->pr_channel);
		return;
	}
	if ((i = chanidx_find_sub(c, r->pr_channel, r->pr_channel_len)) != -1)
		chanidx_unsubscribe_at(c, i);
	msg = proto_subscribed("unsubscribed", r->pr_channel, NULL, &mlen);
	conn_send_text(c, msg, mlen);
}

/*
 * auth: a fresh token for this connection (or a first one for an
 * anonymous connection).  A token that fails, or names another user,
 * changes nothing; one that works moves the expiry, may change the role
 * and claims, and every subscription is checked again.
 */
static void
conn_ws_auth(struct rt_conn *c, struct proto_request *r)
{
	struct rt_worker	*w = c->c_worker;
	struct auth_user	 cur, nu;
	const struct auth_user	*old = conn_auth_user(c, &cur);
	struct conn_user	*cu;
	char			 reason[128], msg[192], *reply;
	size_t			 rlen;

	if (conn_verify_token(c, r->pr_token, r->pr_token_len, &nu, reason,
	    sizeof(reason)) == -1) {
		STAT_ADD(w, rw_auth_failures, 1);
		snprintf(msg, sizeof(msg), "Invalid token: %s", reason);
		conn_send_error(c, msg, "auth", NULL);
		return;
	}
	if (nu.u_has_jti && rvk_revoked(w->w_reg->r_revoked, nu.u_jti, time(NULL))) {
		STAT_ADD(w, rw_auth_failures, 1);
		STAT_ADD(w, rw_tokens_revoked, 1);
		conn_send_error(c, "Invalid token: token revoked", "auth", NULL);
		return;
	}
	if (old != NULL && strcmp(old->u_id, nu.u_id) != 0) {
		STAT_ADD(w, rw_auth_failures, 1);
		conn_send_error(c, "Token user mismatch", "auth", NULL);
		return;
	}
	if ((cu = conn_user_new(&nu)) == NULL) {
		conn_send_error(c, "Server busy, try again later", "auth", NULL);
		return;
	}
	if (old == NULL && conn_user_acquire(c, nu.u_id) == -1) {
		free(cu);
		conn_refuse_user(c, "auth");
		return;
	}
	free(c->c_user);
	c->c_user = cu;
	/* token_expiring again only for a new exp: a resent token is no news */
	if (old == NULL || nu.u_exp_ms != cur.u_exp_ms)
		c->c_noticed = 0;
	reg_conn_set_user(w->w_reg, c->c_slot, nu.u_id, nu.u_admin);
	if (old == NULL) {
		STAT_ADD(w, rw_anonymous, -1);
		STAT_ADD(w, rw_authenticated, 1);
	}
	STAT_ADD(w, rw_auth_refreshed, 1);
	reply = proto_authenticated(w->w_conf->c_namespaces, &nu, NULL, &rlen);
	conn_send_text(c, reply, rlen);
	if (old == NULL)
		chanidx_adopt_user(c);
	conn_ws_recheck(c);	/* a request itself: what waits behind it follows */
	conn_schedule(c);
}

static void
conn_ws_channels(struct rt_conn *c)
{
	struct auth_user	 u;
	struct json_object	*subs = json_object_new_array();
	int			 i;

	for (i = 0; i < c->c_nsubs; i++)
		json_object_array_add(subs,
		    json_object_new_string(c->c_subs[i]->s_chan->ch_name));
	conn_send_json(c, proto_channels(c->c_worker->w_conf->c_namespaces,
	    conn_auth_user(c, &u), subs, NULL));
}

/*
 * The namespaces changed (a reload): every subscription the new table no
 * longer allows ends, and the client is told why.
 */
static void
conn_ws_recheck(struct rt_conn *c)
{
	const struct chan_table	*t = c->c_worker->w_conf->c_namespaces;
	const struct auth_user	*user;
	struct auth_user	 u;
	const char		*name;
	int			 i;

	if (c->c_state != CS_OPEN || c->c_route != ROUTE_PROTO || !c->c_counted)
		return;
	user = conn_auth_user(c, &u);
	for (i = c->c_nsubs - 1; i >= 0; i--) {
		name = c->c_subs[i]->s_chan->ch_name;
		if (chan_authorize(t, name, strlen(name), user, NULL) == CHAN_OK)
			continue;
		conn_send_json(c, proto_unsubscribed(name, "not authorized", NULL));
		STAT_ADD(c->c_worker, rw_revoked, 1);
		chanidx_unsubscribe_at(c, i);
	}
}

void
conn_ws_reauthorize(struct rt_conn *c)
{
	conn_ws_recheck(c);
	/* a subscription that ended here may have been what later requests waited for */
	conn_ws_resume(c);
}

/*
 * The stats reply lists at most stats_channels channels, the most
 * subscribed first (a min-heap of the best seen while the registry is
 * scanned): one user's thousands of small channels must not make every
 * stats reply megabytes long.
 */
struct conn_ws_top {
	int64_t	 t_subs;
	char	 t_name[RT_CHANNEL_MAX + 1];
};

struct conn_ws_stats_filter {
	const struct chan_table	*sf_table;
	const struct auth_user	*sf_user;
	struct conn_ws_top	*sf_top;
	int			 sf_n;
	int			 sf_max;
};

static void
conn_ws_top_sift(struct conn_ws_top *h, int n, int i)
{
	struct conn_ws_top	 t;
	int			 m, l;

	for (;;) {
		m = i;
		l = 2 * i + 1;
		if (l < n && h[l].t_subs < h[m].t_subs)
			m = l;
		if (l + 1 < n && h[l + 1].t_subs < h[m].t_subs)
			m = l + 1;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void
conn_ws_stats_add(const char *name, int64_t subscribers, void *arg)
{
	struct conn_ws_stats_filter	*sf = arg;
	struct conn_ws_top		*h = sf->sf_top;
	int				 i;

	/* non-admins see only channels they could subscribe to themselves */
	if ((sf->sf_user == NULL || !sf->sf_user->u_admin) &&
	    chan_authorize(sf->sf_table, name, strlen(name), sf->sf_user, NULL) != CHAN_OK)
		return;
	if (sf->sf_n < sf->sf_max) {
		/* sift up */
		for (i = sf->sf_n++; i > 0 && h[(i - 1) / 2].t_subs > subscribers; i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
	} else if (sf->sf_max > 0 && subscribers > h[0].t_subs)
		i = 0;
	else
		return;
	h[i].t_subs = subscribers;
	snprintf(h[i].t_name, sizeof(h[i].t_name), "%s", name);
	if (i == 0 && sf->sf_n == sf->sf_max)
		conn_ws_top_sift(h, sf->sf_n, 0);
}

static int
conn_ws_top_cmp(const void *a, const void *b)
{
	const struct conn_ws_top	*x = a, *y = b;

	return x->t_subs < y->t_subs ? 1 : x->t_subs > y->t_subs ? -1 :
	    strcmp(x->t_name, y->t_name);
}

static void
conn_ws_stats(struct rt_conn *c)
{
	struct auth_user		 u;
	struct rt_worker		*w = c->c_worker;
	struct proto_stats		 st;
	struct reg_totals		 t;
	struct conn_ws_stats_filter	 sf;
	struct json_object		*by = json_object_new_object();
	int				 i;

	reg_totals(w->w_reg, &t);
	st.ps_total = t.t_connections;
	st.ps_authenticated = t.t_authenticated;
	st.ps_anonymous = t.t_anonymous;
	st.ps_subscriptions = t.t_subscriptions;
	sf.sf_table = w->w_conf->c_namespaces;
	sf.sf_user = conn_auth_user(c, &u);
	sf.sf_n = 0;
	sf.sf_max = w->w_conf->c_stats_channels;
	if ((sf.sf_top = calloc((size_t)sf.sf_max + 1, sizeof(*sf.sf_top))) == NULL)
		sf.sf_max = 0;
	reg_chan_foreach(w->w_reg, conn_ws_stats_add, &sf);
	if (sf.sf_n > 1)
		qsort(sf.sf_top, (size_t)sf.sf_n, sizeof(*sf.sf_top), conn_ws_top_cmp);
	for (i = 0; i < sf.sf_n; i++)
		json_object_object_add(by, sf.sf_top[i].t_name,
		    json_object_new_int64(sf.sf_top[i].t_subs));
	free(sf.sf_top);
	conn_send_json(c, proto_stats(&st, by, NULL));
}

/* Token bucket: max_client_messages_per_sec, client_messages_burst. */
static int
conn_ws_rate_ok(struct rt_conn *c, uint64_t now)
{
	struct rt_config	*conf = c->c_worker->w_conf;

	c->c_tokens += (double)(now - c->c_tokens_at) *
	    conf->c_max_client_messages_per_sec / 1000.0;
	c->c_tokens_at = now;
	if (c->c_tokens > conf->c_client_messages_burst)
		c->c_tokens = conf->c_client_messages_burst;
	if (c->c_tokens < 1.0)
		return 0;
	c->c_tokens -= 1.0;
	return 1;
}

static void
conn_ws_request(struct rt_conn *c, const char *buf, size_t len)
{
	struct proto_request	 r;

	proto_parse(buf, len, &r);
	switch (r.pr_type) {
	case PROTO_SUBSCRIBE:
		conn_ws_subscribe(c, &r);
		break;
	case PROTO_UNSUBSCRIBE:
		conn_ws_unsubscribe(c, &r);
		break;
	case PROTO_PING:
		conn_send_json(c, proto_pong(NULL));
		break;
	case PROTO_LIST_CHANNELS:
		conn_ws_channels(c);
		break;
	case PROTO_STATS:
		conn_ws_stats(c);
		break;
	case PROTO_AUTH:
		conn_ws_auth(c, &r);
		break;
	case PROTO_INVALID:
		conn_send_error(c, r.pr_error, r.pr_request[0] ? r.pr_request : NULL,
		    r.pr_has_channel ? r.pr_channel : NULL);
		break;
	}
}

static int	conn_ws_msg_room(struct rt_conn *, size_t);
static void	conn_ws_msg_full(struct rt_conn *);

/*
 * Replies go out in request order: while the bridge owes c a reply (a
 * subscribe on a channel with history), later requests wait, within
 * max_message_size bytes, counted in the worker's max_message_memory.
 */
static void
conn_ws_defer(struct rt_conn *c, const char *buf, size_t len)
{
	uint32_t	 n = (uint32_t)len;
	size_t		 had = c->c_later != NULL ? evbuffer_get_length(c->c_later) : 0;
	int		 ok;

	if (had + len <= (size_t)c->c_worker->w_conf->c_max_message_size &&
	    !conn_ws_msg_room(c, sizeof(n) + len)) {
		conn_ws_msg_full(c);
		return;
	}
	if (c->c_later == NULL && (c->c_later = evbuffer_new()) == NULL)
		ok = 0;
	else {
		ok = had + len <= (size_t)c->c_worker->w_conf->c_max_message_size &&
		    evbuffer_add(c->c_later, &n, sizeof(n)) == 0 &&
		    evbuffer_add(c->c_later, buf, len) == 0;
		/* what it holds is counted, whole or not */
		STAT_ADD(c->c_worker, rw_message_memory,
		    (int64_t)(evbuffer_get_length(c->c_later) - had));
	}
	if (!ok) {
		STAT_ADD(c->c_worker, rw_rate_limited, 1);
		conn_send_error(c, "Rate limit exceeded", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Rate limit exceeded", 0);
	}
}

/* The bridge answered: the requests that waited, in order, until one waits again. */
void
conn_ws_resume(struct rt_conn *c)
{
	uint32_t	 n;
	char		*buf;

	while (c->c_waiting == 0 && c->c_state == CS_OPEN && c->c_later != NULL &&
	    evbuffer_get_length(c->c_later) >= sizeof(n)) {
		evbuffer_remove(c->c_later, &n, sizeof(n));
		STAT_ADD(c->c_worker, rw_message_memory, -(int64_t)sizeof(n));
		if ((buf = malloc(n ? n : 1)) == NULL) {
			conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
			return;
		}
		evbuffer_remove(c->c_later, buf, n);
		STAT_ADD(c->c_worker, rw_message_memory, -(int64_t)n);
		conn_ws_request(c, buf, n);
		free(buf);
	}
}

static void
conn_ws_message(struct rt_conn *c, const char *buf, size_t len)
{
	STAT_ADD(c->c_worker, rw_messages_in, 1);
	if (conn_output_full(c)) {
		conn_slow(c);
		return;
	}
	if (!conn_ws_rate_ok(c, c->c_last_rx)) {
		STAT_ADD(c->c_worker, rw_rate_limited, 1);
		conn_send_error(c, "Rate limit exceeded", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Rate limit exceeded", 0);
		return;
	}
	if (c->c_waiting > 0 || (c->c_later != NULL && evbuffer_get_length(c->c_later) > 0))
		conn_ws_defer(c, buf, len);
	else
		conn_ws_request(c, buf, len);
}

/* ---- WebSocket frames -------------------------------------------------- */

static void
conn_ws_message_done(struct rt_conn *c, const uint8_t *data, size_t len)
{
	if (c->c_route == ROUTE_ECHO) {
		/* a client that sends and never reads: a slow consumer */
		if (conn_output_full(c))
			conn_slow(c);
		else
			conn_send_message(c, c->c_msg_opcode, data, len);
		return;
	}
	conn_ws_message(c, (const char *)data, len);
}

/*
 * The whole message in c_msg (none: empty), handed on and freed.  It
 * leaves the gauge first: a request that must wait is counted again, as
 * what waits.
 */
static void
conn_ws_message_buffered(struct rt_conn *c)
{
	struct evbuffer	*m = c->c_msg;
	size_t		 n = m != NULL ? evbuffer_get_length(m) : 0;
	const uint8_t	*msg = n > 0 ? evbuffer_pullup(m, -1) : NULL;

	if (m != NULL && c->c_msg_counted)
		STAT_ADD(c->c_worker, rw_message_memory, -(int64_t)n);
	c->c_msg = NULL;
	c->c_msg_counted = 0;
	if (msg == NULL && n > 0)
		conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
	else
		conn_ws_message_done(c, msg != NULL ? msg : (const uint8_t *)"", n);
	if (m != NULL)
		evbuffer_free(m);
}

/*
 * Room for len more bytes of messages being read?  A worker holds at most
 * max_message_memory of them: fragments kept until the last one, inflated
 * output and the inflaters, over all its connections.
 */
static int
conn_ws_msg_room(struct rt_conn *c, size_t len)
{
	struct rt_worker	*w = c->c_worker;
	int64_t			 held;

	held = STAT_GET(w, rw_message_memory) + STAT_GET(w, rw_inflate_memory);
	return held + (int64_t)len <= w->w_conf->c_max_message_memory;
}

/* No room: the connection goes as from a full server (1013), its message with it. */
static void
conn_ws_msg_full(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;

	STAT_ADD(w, rw_message_memory_full, 1);
	log_debug("%s: %s: max_message_memory (%" PRId64 ") reached", __func__,
	    conn_peer(c), w->w_conf->c_max_message_memory);
	conn_inflate_end(c);
	conn_msg_free(c);
	conn_close(c, WS_CLOSE_TRY_AGAIN, "Server full", 1);
}

/* len bytes onto the message being assembled, counted; -1: no memory. */
static int
conn_ws_msg_add(struct rt_conn *c, const uint8_t *p, size_t len)
{
	if (c->c_msg == NULL) {
		if ((c->c_msg = evbuffer_new()) == NULL)
			return -1;
		c->c_msg_counted = 1;
	}
	if (evbuffer_add(c->c_msg, p, len) == -1)
		return -1;
	STAT_ADD(c->c_worker, rw_message_memory, (int64_t)len);
	return 0;
}

/* deflate_sink: an inflated chunk, validated (text) and kept. */
static int
conn_ws_inflated(void *arg, const uint8_t *p, size_t len)
{
	struct rt_conn	*c = arg;

	if (c->c_msg_opcode == WS_OP_TEXT &&
	    (c->c_inflate->ci_utf8 = utf8_feed(c->c_inflate->ci_utf8, p, len)) == UTF8_REJECT)
		return -1;
	if (!conn_ws_msg_room(c, len)) {
		c->c_inflate->ci_full = 1;
		return -1;
	}
	return conn_ws_msg_add(c, p, len);
}

/* The inflater's memory as the gauge sees it, after a call that may have grown it. */
static void
conn_ws_inflate_count(struct rt_conn *c)
{
	struct conn_inflate	*ci = c->c_inflate;
	size_t			 now = deflate_inflater_bytes(ci->ci_di);

	STAT_ADD(c->c_worker, rw_inflate_memory, (int64_t)now - (int64_t)ci->ci_counted);
	ci->ci_counted = now;
}

static int
conn_ws_inflate_start(struct rt_conn *c)
{
	struct conn_inflate	*ci;

	conn_inflate_end(c);
	if ((ci = calloc(1, sizeof(*ci))) == NULL)
		return -1;
	if ((ci->ci_di = deflate_inflater_new((uint64_t)c->c_worker->w_conf->c_max_message_size)) == NULL) {
		free(ci);
		return -1;
	}
	ci->ci_utf8 = UTF8_ACCEPT;
	c->c_inflate = ci;
	conn_ws_inflate_count(c);
	return 0;
}

/* Why an inflate stopped, as the close the client gets. */
static void
conn_ws_inflate_fail(struct rt_conn *c, enum deflate_result r)
{
	struct rt_worker	*w = c->c_worker;
	int			 utf8 = c->c_inflate != NULL && c->c_inflate->ci_utf8 == UTF8_REJECT;

	if (r == DEFLATE_SINK && c->c_inflate != NULL && c->c_inflate->ci_full) {
		conn_ws_msg_full(c);
		return;
	}
	conn_inflate_end(c);
	STAT_ADD(w, rw_protocol_errors, 1);
	if (r == DEFLATE_TOO_BIG) {
		STAT_ADD(w, rw_inflate_too_big, 1);
		conn_close(c, WS_CLOSE_TOO_BIG, "message too big", 1);
	} else if (r == DEFLATE_BAD) {
		STAT_ADD(w, rw_inflate_errors, 1);
		conn_close(c, WS_CLOSE_BAD_DATA, "invalid compressed data", 1);
	} else if (r == DEFLATE_SINK && utf8)
		conn_close(c, WS_CLOSE_BAD_DATA, "invalid UTF-8", 1);
	else
		conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
}

/*
 * A chunk of a compressed message: inflated as it comes, at most
 * max_message_size bytes of output (more: 1009 at once, the rest never
 * inflated), then handed on like a plain one.  The inflater exists from
 * the message's first frame to its last.
 */
static void
conn_ws_inflate(struct rt_conn *c, const struct ws_event *ev)
{
	enum deflate_result	 r;

	if (ev->first && !conn_ws_msg_room(c, ev->len)) {
		conn_ws_msg_full(c);
		return;
	}
	if ((ev->first && conn_ws_inflate_start(c) == -1) || c->c_inflate == NULL) {
		conn_ws_inflate_fail(c, DEFLATE_NOMEM);
		return;
	}
	r = deflate_inflate(c->c_inflate->ci_di, ev->data, ev->len, ev->last,
	    conn_ws_inflated, c);
	conn_ws_inflate_count(c);
	if (r == DEFLATE_OK && ev->last && c->c_msg_opcode == WS_OP_TEXT &&
	    c->c_inflate->ci_utf8 != UTF8_ACCEPT) {
		c->c_inflate->ci_utf8 = UTF8_REJECT;
		r = DEFLATE_SINK;
	}
	if (r != DEFLATE_OK) {
		conn_ws_inflate_fail(c, r);
		return;
	}
	if (!ev->last)
		return;
	conn_inflate_end(c);
	STAT_ADD(c->c_worker, rw_inflated, 1);
	conn_ws_message_buffered(c);
}

static void
conn_ws_data(struct rt_conn *c, const struct ws_event *ev)
{
	if (ev->first) {
		c->c_msg_opcode = (uint8_t)ev->opcode;
		if (c->c_route == ROUTE_PROTO && ev->opcode == WS_OP_BINARY) {
			STAT_ADD(c->c_worker, rw_protocol_errors, 1);
			conn_close(c, WS_CLOSE_UNSUPPORTED, "Binary frames are not supported", 1);
			return;
		}
	}
	if (c->c_state != CS_OPEN)
		return;		/* closing: the rest of a message is ignored */
	if (ev->compressed) {
		conn_ws_inflate(c, ev);
		return;
	}
	if (ev->first && ev->last) {
		conn_ws_message_done(c, ev->data, ev->len);	/* no copy */
		return;
	}
	if (!conn_ws_msg_room(c, ev->len)) {
		conn_ws_msg_full(c);
		return;
	}
	if (conn_ws_msg_add(c, ev->data, ev->len) == -1) {
		conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
		return;
	}
	if (ev->last)
		conn_ws_message_buffered(c);
}

static void
conn_ws_event(struct rt_conn *c, const struct ws_event *ev)
{
	switch (ev->type) {
	case WS_EV_DATA:
		conn_ws_data(c, ev);
		break;
	case WS_EV_PING:
		/* RFC 6455 5.5.2: answered until the peer's Close, ours sent too
		 * (a control frame, which 5.5.1 allows after it) */
		if (c->c_state == CS_CLOSING && !c->c_close_rcvd) {
			if (!conn_output_full(c))
				conn_send_frame(c, WS_OP_PONG, ev->data, ev->len);
			break;
		}
		if (c->c_state != CS_OPEN)
			break;
		/* pings cost replies: flooding them is flooding */
		if (c->c_route == ROUTE_PROTO && !conn_ws_rate_ok(c, c->c_last_rx)) {
			STAT_ADD(c->c_worker, rw_rate_limited, 1);
			conn_send_error(c, "Rate limit exceeded", NULL, NULL);
			conn_close(c, WS_CLOSE_POLICY, "Rate limit exceeded", 0);
			break;
		}
		if (conn_output_full(c))
			conn_slow(c);
		else
			conn_send_frame(c, WS_OP_PONG, ev->data, ev->len);
		break;
	case WS_EV_PONG:
	case WS_EV_NEED_MORE:
		break;
	case WS_EV_CLOSE:
		c->c_close_rcvd = 1;
		if (c->c_state == CS_OPEN) {
			/* echo the peer's code (none -> empty close) */
			conn_close(c, ev->code == WS_CLOSE_NO_STATUS ? 0 : ev->code,
			    NULL, 0);
		} else
			conn_linger(c);
		break;
	case WS_EV_ERROR:
		log_debug("%s: %s: %s (close %u)", __func__, conn_peer(c),
		    ev->reason, ev->code);
		STAT_ADD(c->c_worker, rw_protocol_errors, 1);
		if (ev->code == WS_CLOSE_TOO_BIG)
			STAT_ADD(c->c_worker, rw_too_big, 1);
		if (c->c_state == CS_OPEN)
			conn_close(c, ev->code, ev->reason, 1);
		else
			conn_linger(c);
		break;
	}
}

/* Decode len bytes at p in place; returns the bytes used (fewer once c stops reading). */
size_t
conn_ws_feed(struct rt_conn *c, uint8_t *p, size_t len)
{
	struct ws_event	 ev;
	size_t		 off = 0;

	c->c_last_rx = util_now_ms();
	/* max_message_size as it stands (reloadable) */
	ws_decoder_set_max(&c->c_dec, (uint64_t)c->c_worker->w_conf->c_max_message_size);
	while (c->c_state == CS_OPEN || c->c_state == CS_CLOSING) {
		off += ws_decode(&c->c_dec, p + off, len - off, &ev);
		if (ev.type == WS_EV_NEED_MORE)
			break;
		conn_ws_event(c, &ev);
	}
	return off;
}

/* wss: run the decoder over everything buffered, in place. */
void
conn_ws_input(struct rt_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->c_bev);
	struct evbuffer_iovec	 v[CONN_WS_PEEK_IOV];
	size_t			 used, total;
	int			 n, i;

	while ((n = evbuffer_peek(in, -1, NULL, v, CONN_WS_PEEK_IOV)) > 0) {
		if (n > CONN_WS_PEEK_IOV)
			n = CONN_WS_PEEK_IOV;
		for (i = 0, total = 0; i < n; i++) {
			used = conn_ws_feed(c, v[i].iov_base, v[i].iov_len);
			total += used;
			if (used < v[i].iov_len)
				goto out;
		}
		evbuffer_drain(in, total);
	}
	return;
 out:
	evbuffer_drain(in, total);
	if (c->c_state == CS_LINGER)
		evbuffer_drain(in, evbuffer_get_length(in));
}
