/*
 * Worker process: owns client connections on one event_base.  Accepts on the
 * listening sockets, parses the HTTP upgrade, runs the RFC 6455 codec and the
 * JSON protocol, and keeps the channel -> subscribers index.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <json-c/json.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "wheel.h"
#include "ws.h"
#include "http.h"
#include "auth.h"
#include "channel.h"
#include "proto.h"
#include "admin.h"
#include "ipc.h"
#include "registry.h"
#include "tls.h"
#include "outq.h"
#include "worker.h"

#define STAT_ADD(w, f, n)	atomic_fetch_add_explicit(&(w)->w_rw->f, (n), memory_order_relaxed)
#define STAT_GET(w, f)		atomic_load_explicit(&(w)->w_rw->f, memory_order_relaxed)

#define WORKER_TICK_MS		100
#define WORKER_PEEK_IOV		16
#define WORKER_BRIDGE_WAIT_MS	1000
#define WORKER_TRIM_MS		5000
#define WORKER_TRIM_FREE	(4 * 1024 * 1024)
#define WORKER_READ_MAX		(64 * 1024)	/* one read() of a plain socket */

enum conn_state {
	CS_HTTP,	/* reading the request head */
	CS_OPEN,	/* WebSocket open */
	CS_CLOSING,	/* close frame sent, waiting for the peer's */
	CS_LINGER,	/* our last bytes flushing, then discard until EOF */
};

enum conn_route { ROUTE_PROTO, ROUTE_ECHO };

struct rt_chan;

struct rt_sub {
	struct rt_conn	*s_conn;
	struct rt_chan	*s_chan;
	size_t		 s_idx;		/* position in s_chan->ch_subs */
};

struct rt_chan {
	struct rt_chan	*ch_next;	/* hash chain */
	uint32_t	 ch_hash;
	struct rt_sub	**ch_subs;
	size_t		 ch_nsubs;
	size_t		 ch_cap;
	char		 ch_name[];
};

/* An event frame of the bridge batch being delivered. */
struct worker_frame {
	const uint8_t	*wf_p;		/* into the bridge's input */
	uint32_t	 wf_len;
	struct rt_blk	*wf_blk;	/* a copy, made once when a frame must wait */
};

struct worker_pend {
	uint32_t	 wp_frame;	/* index in w_frames */
	uint32_t	 wp_next;	/* UINT32_MAX: last of its connection */
};

/* What a connection keeps of its token: a few bytes, not a struct auth_user. */
struct conn_user {
	time_t		 cu_exp;	/* 0: none */
	uint8_t		 cu_admin;
	char		 cu_id[];
};

struct rt_conn {
	TAILQ_ENTRY(rt_conn)	 c_link;
	struct wheel_entry	 c_timer;
	struct rt_worker	*c_worker;
	struct bufferevent	*c_bev;		/* wss only */
	struct event		 c_ev;		/* plain: readable, or output to flush */
	struct event		*c_wev;		/* plain: waiting for room to write */
	struct outq		*c_out;		/* plain: bytes waiting; NULL: none */
	struct evbuffer		*c_msg;		/* message being assembled */
	struct conn_user	*c_user;	/* NULL: anonymous */
	struct rt_sub		**c_subs;
	int			 c_nsubs;
	int			 c_subcap;
	uint8_t			 c_state;
	uint8_t			 c_route;
	uint8_t			 c_tls;		/* wss: an OpenSSL bufferevent */
	uint8_t			 c_tls_done;	/* TLS handshake complete */
	uint8_t			 c_tls_failed;	/* a TLS error: the session is not reusable */
	uint8_t			 c_close_rcvd;
	uint8_t			 c_counted;	/* in the open-connection counters */
	uint8_t			 c_io_err;	/* plain: a write failed, free soon */
	int32_t			 c_slot;	/* registry connection slot, -1 none */
	uint32_t		 c_ipkey;	/* per-address counters held */
	uint32_t		 c_pend_batch;	/* frames pending in batch w_batch */
	uint32_t		 c_pend_first;	/* index in w_pend */
	uint32_t		 c_pend_last;
	uint32_t		 c_pend_bytes;
	uint8_t			 c_ip_counted;
	uint16_t		 c_msg_opcode;
	uint64_t		 c_last_rx;	/* ms, monotonic */
	uint64_t		 c_last_ping;
	uint64_t		 c_deadline;	/* handshake / close deadline */
	double			 c_tokens;	/* rate limit bucket */
	uint64_t		 c_tokens_at;
	struct ws_decoder	 c_dec;
	char			 c_id[RT_UUID_LEN + 1];
	uint8_t			 c_peer_family;	/* the peer, compact: */
	uint16_t		 c_peer_port;	/* formatted only to log */
	uint8_t			 c_peer_addr[16];
};
TAILQ_HEAD(conn_list, rt_conn);

struct rt_worker {
	struct rt_config	*w_conf;
	int			 w_id;
	struct event_base	*w_base;
	struct evconnlistener	*w_listeners[8];
	int			 w_nlisteners;
	struct event		*w_tick;
	struct event		*w_sigterm;
	struct wheel		 w_wheel;
	struct conn_list	 w_conns;
	struct auth_ctx		*w_auth;
	struct rt_chan		**w_chans;	/* hash buckets */
	size_t			 w_nbuckets;
	int			 w_stopping;
	uint64_t		 w_stop_deadline;
	int64_t			 w_nchans;	/* local channels */
	int64_t			 w_drain_total;	/* open when the stop began */
	uint64_t		 w_drain_start;
	int			 w_accepting;
	uint64_t		 w_trimmed;
	/* event frames for plain sockets whose output was empty, sent with
	 * one sendmsg per connection at the end of a bridge read */
	uint32_t		 w_batch;
	struct worker_frame	*w_frames;
	uint32_t		 w_nframes;
	uint32_t		 w_framecap;
	struct worker_pend	*w_pend;
	uint32_t		 w_npend;
	uint32_t		 w_pendcap;
	struct rt_conn		**w_pconns;
	uint32_t		 w_npconns;
	uint32_t		 w_pconncap;
	uint64_t		 w_started;
	struct registry		*w_reg;
	struct reg_worker	*w_rw;		/* our counters, shared */
	int			 w_master_fd;
	struct event		*w_master_ev;
	struct bufferevent	*w_bridge;
	SSL_CTX			*w_ssl_ctx;	/* this generation's; NULL: no TLS */
};

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_sock_cb(evutil_socket_t, short, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_schedule(struct rt_conn *);
static void	conn_unsubscribe_all(struct rt_conn *);
static void	worker_drain(struct rt_worker *, uint64_t);
static const char *conn_peer(const struct rt_conn *);
static void	worker_accepting(struct rt_worker *, const char *);
static void	worker_ip_limit(struct rt_worker *, struct rt_conn *, const struct sockaddr *);

/* ---- channel index --------------------------------------------------- */

static uint32_t
worker_hash(const char *s, size_t len)
{
	uint32_t	 h = 2166136261u;	/* FNV-1a */
	size_t		 i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static struct rt_chan *
worker_chan_find(struct rt_worker *w, const char *name, size_t len, uint32_t h)
{
	struct rt_chan	*ch;

	for (ch = w->w_chans[h & (w->w_nbuckets - 1)]; ch != NULL; ch = ch->ch_next)
		if (ch->ch_hash == h && strncmp(ch->ch_name, name, len) == 0 &&
		    ch->ch_name[len] == '\0')
			return ch;
	return NULL;
}

static void
worker_chan_grow(struct rt_worker *w)
{
	struct rt_chan	**nb, *ch, *next;
	size_t		 n = w->w_nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < w->w_nbuckets; i++)
		for (ch = w->w_chans[i]; ch != NULL; ch = next) {
			next = ch->ch_next;
			ch->ch_next = nb[ch->ch_hash & (n - 1)];
			nb[ch->ch_hash & (n - 1)] = ch;
		}
	free(w->w_chans);
	w->w_chans = nb;
	w->w_nbuckets = n;
}

static struct rt_chan *
worker_chan_get(struct rt_worker *w, const char *name, size_t len)
{
	uint32_t	 h = worker_hash(name, len);
	struct rt_chan	*ch;

	if ((ch = worker_chan_find(w, name, len, h)) != NULL)
		return ch;
	if (w->w_nchans >= w->w_conf->c_max_channels)
		return NULL;
	if ((ch = calloc(1, sizeof(*ch) + len + 1)) == NULL)
		return NULL;
	memcpy(ch->ch_name, name, len);
	ch->ch_hash = h;
	ch->ch_next = w->w_chans[h & (w->w_nbuckets - 1)];
	w->w_chans[h & (w->w_nbuckets - 1)] = ch;
	if ((size_t)++w->w_nchans > w->w_nbuckets)
		worker_chan_grow(w);
	return ch;
}

static void
worker_chan_release(struct rt_worker *w, struct rt_chan *ch)
{
	struct rt_chan	**pp;

	if (ch->ch_nsubs > 0)
		return;
	for (pp = &w->w_chans[ch->ch_hash & (w->w_nbuckets - 1)]; *pp != ch;
	    pp = &(*pp)->ch_next)
		;
	*pp = ch->ch_next;
	free(ch->ch_subs);
	free(ch);
	w->w_nchans--;
}

/* ---- socket I/O ---------------------------------------------------------- */

/*
 * A wss connection is an OpenSSL bufferevent.  A plain one is its socket,
 * one embedded read event and, only while it has bytes waiting, an output
 * queue of shared blocks (outq.h): an idle connection holds no buffers.
 */

static int
conn_fd(const struct rt_conn *c)
{
	return c->c_tls ? (int)bufferevent_getfd(c->c_bev) : (int)event_get_fd(&c->c_ev);
}

static size_t
conn_outlen(const struct rt_conn *c)
{
	if (c->c_tls)
		return evbuffer_get_length(bufferevent_get_output(c->c_bev));
	return outq_cost(c->c_out);	/* for limits: entries count too */
}

/* A write to a plain socket failed: the socket callback frees c soon. */
static void
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
static void
conn_want_flush(struct rt_conn *c)
{
	if (c->c_wev == NULL || !event_pending(c->c_wev, EV_WRITE, NULL))
		event_active(&c->c_ev, EV_WRITE, 0);
}

/* The socket is full: resume when it has room. */
static void
conn_want_room(struct rt_conn *c)
{
	if (c->c_wev == NULL && (c->c_wev = event_new(c->c_worker->w_base, conn_fd(c),
	    EV_WRITE | EV_PERSIST, conn_sock_cb, c)) == NULL) {
		conn_io_fail(c, ENOMEM);
		return;
	}
	if (!event_pending(c->c_wev, EV_WRITE, NULL))
		event_add(c->c_wev, NULL);
}

/* Queue a then b (either may be empty) for the peer. */
static void
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

static void
conn_write(struct rt_conn *c, const void *data, size_t len)
{
	conn_write2(c, data, len, NULL, 0);
}

static void
conn_send_frame(struct rt_conn *c, int opcode, const void *data, size_t len)
{
	uint8_t		 hdr[WS_HEADER_MAX];
	size_t		 hlen;

	hlen = ws_frame_header(hdr, opcode, 1, len);
	conn_write2(c, hdr, hlen, data, len);
}

/* Replies and pongs obey max_output_buffer like events: a client that asks
 * but never reads is a slow consumer too. */
static int
conn_output_full(struct rt_conn *c)
{
	return conn_outlen(c) > (size_t)c->c_worker->w_conf->c_max_output_buffer;
}

static void	conn_close(struct rt_conn *, uint16_t, const char *, int);

static void
conn_slow(struct rt_conn *c)
{
	log_debug("%s: %s: slow consumer, output over %lld bytes", __func__, conn_peer(c),
	    (long long)c->c_worker->w_conf->c_max_output_buffer);
	STAT_ADD(c->c_worker, rw_slow_closes, 1);
	conn_close(c, WS_CLOSE_SLOW, "Slow consumer", 1);
}

static void
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

static void
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

static void
conn_free(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;

	conn_uncount(c);
	conn_unsubscribe_all(c);
	if (c->c_ip_counted)
		reg_ip_release(w->w_reg, w->w_id, c->c_ipkey);
	wheel_cancel(&w->w_wheel, &c->c_timer);
	TAILQ_REMOVE(&w->w_conns, c, c_link);
	if (c->c_bev != NULL && c->c_tls && c->c_tls_done && !c->c_tls_failed) {
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
	if (c->c_msg != NULL)
		evbuffer_free(c->c_msg);
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
static void
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
static void
conn_close(struct rt_conn *c, uint16_t code, const char *reason, int fail)
{
	uint8_t	 frame[2 + WS_CONTROL_MAX];
	size_t	 n;

	if (c->c_state != CS_OPEN)
		return;
	n = ws_close_frame(frame, code, reason);
	conn_write(c, frame, n);
	conn_uncount(c);
	conn_unsubscribe_all(c);
	if (fail || c->c_close_rcvd) {
		conn_linger(c);
		return;
	}
	c->c_state = CS_CLOSING;
	c->c_deadline = util_now_ms() + (uint64_t)c->c_worker->w_conf->c_close_timeout;
	conn_schedule(c);
}

static void
conn_http_error(struct rt_conn *c, int status, const char *extra)
{
	char	 buf[1024], body[128];
	int	 n, blen;

	blen = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	n = http_format_response(buf, sizeof(buf), status, "text/plain", extra,
	    body, (size_t)blen);
	if (n > 0)
		conn_write(c, buf, (size_t)n);
	if (status >= 400)
		STAT_ADD(c->c_worker, rw_handshake_errors, 1);
	log_debug("%s: %s: HTTP %d", __func__, conn_peer(c), status);
	conn_linger(c);
}

/* ---- timers ------------------------------------------------------------ */

static void
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
	if (c->c_user != NULL && c->c_user->cu_exp != 0) {
		/* the wall clock decides expiry; map it onto the monotonic one */
		int64_t	 left = ((int64_t)c->c_user->cu_exp - (int64_t)time(NULL)) * 1000;
		uint64_t at = util_now_ms() + (left > 0 ? (uint64_t)left : 0);

		if (at < next)
			next = at;
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
	if (c->c_user != NULL && c->c_user->cu_exp != 0 &&
	    time(NULL) >= c->c_user->cu_exp) {
		STAT_ADD(c->c_worker, rw_token_expired, 1);
		conn_send_error(c, "Token expired", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Token expired", 0);
		return;
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

static void
conn_timer_fire(struct wheel_entry *e, void *arg)
{
	struct rt_conn	*c = (struct rt_conn *)((char *)e - offsetof(struct rt_conn, c_timer));
	uint64_t	 now = *(uint64_t *)arg;

	switch (c->c_state) {
	case CS_HTTP:
		log_debug("%s: %s: %s timeout", __func__, conn_peer(c),
		    c->c_tls && !c->c_tls_done ? "TLS handshake" : "handshake");
		if (c->c_tls && !c->c_tls_done)
			STAT_ADD(c->c_worker, rw_tls_errors, 1);
		STAT_ADD(c->c_worker, rw_handshake_timeouts, 1);
		conn_free(c);
		break;
	case CS_OPEN:
		conn_timer_open(c, now);
		break;
	case CS_CLOSING:
	case CS_LINGER:
		conn_free(c);
		break;
	}
}

/*
 * A connect storm leaves the heap full of freed handshake buffers that
 * glibc keeps: give whole free pages back, so idle connections cost what
 * they hold, not what their handshakes once held.
 */
static void
worker_trim(struct rt_worker *w)
{
	struct mallinfo2	 mi = mallinfo2();

	(void)w;
	if (mi.fordblks > WORKER_TRIM_FREE)
		malloc_trim(64 * 1024);
}

static void
worker_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_worker	*w = arg;
	uint64_t		 now = util_now_ms();

	(void)fd;
	(void)ev;
	atomic_store(&w->w_rw->rw_tick, now);
	if (now - w->w_trimmed >= WORKER_TRIM_MS) {
		worker_trim(w);
		w->w_trimmed = now;
	}
	if (!w->w_accepting && now - w->w_started >= WORKER_BRIDGE_WAIT_MS)
		worker_accepting(w, "no bridge yet");
	wheel_advance(&w->w_wheel, now, conn_timer_fire, &now);
	if (w->w_stopping) {
		worker_drain(w, now);
		if (TAILQ_EMPTY(&w->w_conns) || now >= w->w_stop_deadline)
			event_base_loopexit(w->w_base, NULL);
	}
}

/* The policy's view of a connection's user (NULL: anonymous), in tmp. */
static const struct auth_user *
conn_auth_user(const struct rt_conn *c, struct auth_user *tmp)
{
	if (c->c_user == NULL)
		return NULL;
	auth_anonymous(tmp);
	tmp->u_authenticated = 1;
	tmp->u_admin = c->c_user->cu_admin;
	tmp->u_exp = c->c_user->cu_exp;
	snprintf(tmp->u_id, sizeof(tmp->u_id), "%s", c->c_user->cu_id);
	return tmp;
}

/* ---- subscriptions ------------------------------------------------------- */

static int
conn_find_sub(struct rt_conn *c, const char *name, size_t len)
{
	int	 i;

	for (i = 0; i < c->c_nsubs; i++)
		if (strncmp(c->c_subs[i]->s_chan->ch_name, name, len) == 0 &&
		    c->c_subs[i]->s_chan->ch_name[len] == '\0')
			return i;
	return -1;
}

static int
chan_add_sub(struct rt_chan *ch, struct rt_sub *s)
{
	struct rt_sub	**n;

	if (ch->ch_nsubs == ch->ch_cap) {
		size_t cap = ch->ch_cap ? ch->ch_cap * 2 : 4;

		if ((n = reallocarray(ch->ch_subs, cap, sizeof(*n))) == NULL)
			return -1;
		ch->ch_subs = n;
		ch->ch_cap = cap;
	}
	s->s_idx = ch->ch_nsubs;
	ch->ch_subs[ch->ch_nsubs++] = s;
	return 0;
}

static void
chan_del_sub(struct rt_chan *ch, struct rt_sub *s)
{
	struct rt_sub	*last = ch->ch_subs[--ch->ch_nsubs];

	ch->ch_subs[s->s_idx] = last;
	last->s_idx = s->s_idx;
}

/* 0 subscribed, -1 with *why set. */
static int
conn_subscribe(struct rt_conn *c, const char *name, size_t len, const char **why)
{
	struct rt_worker	*w = c->c_worker;
	struct rt_chan		*ch;
	struct rt_sub		*s, **n;

	if (conn_find_sub(c, name, len) != -1)
		return 0;	/* idempotent */
	if (c->c_nsubs >= w->w_conf->c_max_subscriptions) {
		*why = "Too many subscriptions";
		return -1;
	}
	if (c->c_nsubs == c->c_subcap) {
		int cap = c->c_subcap ? c->c_subcap * 2 : 4;

		if ((n = reallocarray(c->c_subs, (size_t)cap, sizeof(*n))) == NULL)
			goto full;
		c->c_subs = n;
		c->c_subcap = cap;
	}
	if ((ch = worker_chan_get(w, name, len)) == NULL)
		goto full;
	if ((s = calloc(1, sizeof(*s))) == NULL || chan_add_sub(ch, s) == -1) {
		free(s);
		worker_chan_release(w, ch);
		goto full;
	}
	if (reg_chan_add(w->w_reg, w->w_id, name, len, 1) == -1) {
		chan_del_sub(ch, s);
		free(s);
		worker_chan_release(w, ch);
		goto full;
	}
	s->s_conn = c;
	s->s_chan = ch;
	c->c_subs[c->c_nsubs++] = s;
	STAT_ADD(w, rw_subscriptions, 1);
	reg_conn_set_nsubs(w->w_reg, c->c_slot, c->c_nsubs);
	return 0;
 full:
	*why = "Server channel table is full, try again later";
	return -1;
}

static void
conn_unsubscribe_at(struct rt_conn *c, int i)
{
	struct rt_sub	*s = c->c_subs[i];
	struct rt_chan	*ch = s->s_chan;

	chan_del_sub(ch, s);
	c->c_subs[i] = c->c_subs[--c->c_nsubs];
	STAT_ADD(c->c_worker, rw_subscriptions, -1);
	reg_chan_add(c->c_worker->w_reg, c->c_worker->w_id, ch->ch_name,
	    strlen(ch->ch_name), -1);
	reg_conn_set_nsubs(c->c_worker->w_reg, c->c_slot, c->c_nsubs);
	free(s);
	worker_chan_release(c->c_worker, ch);
}

static void
conn_unsubscribe_all(struct rt_conn *c)
{
	while (c->c_nsubs > 0)
		conn_unsubscribe_at(c, c->c_nsubs - 1);
}

/* ---- protocol messages ------------------------------------------------- */

static void
conn_proto_subscribe(struct rt_conn *c, struct proto_request *r)
{
	struct auth_user	 u;
	enum chan_verdict	 v;
	const char		*why = NULL;

	v = chan_authorize(r->pr_channel, r->pr_channel_len, conn_auth_user(c, &u));
	if (v != CHAN_OK) {
		conn_send_error(c, chan_verdict_message(v), "subscribe", r->pr_channel);
		return;
	}
	if (conn_subscribe(c, r->pr_channel, r->pr_channel_len, &why) == -1) {
		conn_send_error(c, why, "subscribe", r->pr_channel);
		return;
	}
	conn_send_json(c, proto_subscribed("subscribed", r->pr_channel, NULL));
}

static void
conn_proto_unsubscribe(struct rt_conn *c, struct proto_request *r)
{
	struct auth_user	 u;
	enum chan_verdict	 v;
	int			 i;

	v = chan_authorize(r->pr_channel, r->pr_channel_len, conn_auth_user(c, &u));
	if (v == CHAN_INVALID || v == CHAN_UNKNOWN) {
		conn_send_error(c, chan_verdict_message(v), "unsubscribe", r->pr_channel);
		return;
	}
	if ((i = conn_find_sub(c, r->pr_channel, r->pr_channel_len)) != -1)
		conn_unsubscribe_at(c, i);
	conn_send_json(c, proto_subscribed("unsubscribed", r->pr_channel, NULL));
}

static void
conn_proto_channels(struct rt_conn *c)
{
	struct auth_user	 u;
	struct json_object	*subs = json_object_new_array();
	int			 i;

	for (i = 0; i < c->c_nsubs; i++)
		json_object_array_add(subs,
		    json_object_new_string(c->c_subs[i]->s_chan->ch_name));
	conn_send_json(c, proto_channels(conn_auth_user(c, &u), subs, NULL));
}

struct stats_filter {
	const struct auth_user	*sf_user;
	struct json_object	*sf_obj;
};

static void
stats_add_channel(const char *name, int64_t subscribers, void *arg)
{
	struct stats_filter	*sf = arg;

	/* non-admins see only channels they could subscribe to themselves */
	if ((sf->sf_user == NULL || !sf->sf_user->u_admin) &&
	    chan_authorize(name, strlen(name), sf->sf_user) != CHAN_OK)
		return;
	json_object_object_add(sf->sf_obj, name, json_object_new_int64(subscribers));
}

static void
conn_proto_stats(struct rt_conn *c)
{
	struct auth_user	 u;
	struct rt_worker	*w = c->c_worker;
	struct proto_stats	 st;
	struct reg_totals	 t;
	struct stats_filter	 sf;

	reg_totals(w->w_reg, &t);
	st.ps_total = t.t_connections;
	st.ps_authenticated = t.t_authenticated;
	st.ps_anonymous = t.t_anonymous;
	st.ps_subscriptions = t.t_subscriptions;
	sf.sf_user = conn_auth_user(c, &u);
	sf.sf_obj = json_object_new_object();
	reg_chan_foreach(w->w_reg, stats_add_channel, &sf);
	conn_send_json(c, proto_stats(&st, sf.sf_obj, NULL));
}

/* Token bucket: max_client_messages_per_sec, client_messages_burst. */
static int
conn_rate_ok(struct rt_conn *c, uint64_t now)
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
conn_proto_message(struct rt_conn *c, const char *buf, size_t len)
{
	struct proto_request	 r;

	STAT_ADD(c->c_worker, rw_messages_in, 1);
	if (conn_output_full(c)) {
		conn_slow(c);
		return;
	}
	if (!conn_rate_ok(c, c->c_last_rx)) {
		STAT_ADD(c->c_worker, rw_rate_limited, 1);
		conn_send_error(c, "Rate limit exceeded", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Rate limit exceeded", 0);
		return;
	}
	proto_parse(buf, len, &r);
	switch (r.pr_type) {
	case PROTO_SUBSCRIBE:
		conn_proto_subscribe(c, &r);
		break;
	case PROTO_UNSUBSCRIBE:
		conn_proto_unsubscribe(c, &r);
		break;
	case PROTO_PING:
		conn_send_json(c, proto_pong(NULL));
		break;
	case PROTO_LIST_CHANNELS:
		conn_proto_channels(c);
		break;
	case PROTO_STATS:
		conn_proto_stats(c);
		break;
	case PROTO_INVALID:
		conn_send_error(c, r.pr_error, r.pr_request[0] ? r.pr_request : NULL,
		    r.pr_has_channel ? r.pr_channel : NULL);
		break;
	}
}

/* ---- WebSocket frames -------------------------------------------------- */

static void
conn_message_done(struct rt_conn *c, const uint8_t *data, size_t len)
{
	if (c->c_route == ROUTE_ECHO) {
		conn_send_frame(c, c->c_msg_opcode, data, len);
		return;
	}
	conn_proto_message(c, (const char *)data, len);
}

static void
conn_ws_data(struct rt_conn *c, const struct ws_event *ev)
{
	if (ev->first) {
		c->c_msg_opcode = (uint16_t)ev->opcode;
		if (c->c_route == ROUTE_PROTO && ev->opcode == WS_OP_BINARY) {
			STAT_ADD(c->c_worker, rw_protocol_errors, 1);
			conn_close(c, WS_CLOSE_UNSUPPORTED, "Binary frames are not supported", 1);
			return;
		}
	}
	if (c->c_state != CS_OPEN)
		return;		/* closing: the rest of a message is ignored */
	if (ev->first && ev->last) {
		conn_message_done(c, ev->data, ev->len);	/* no copy */
		return;
	}
	if (c->c_msg == NULL && (c->c_msg = evbuffer_new()) == NULL) {
		conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
		return;
	}
	if (evbuffer_add(c->c_msg, ev->data, ev->len) == -1) {
		conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
		return;
	}
	if (ev->last) {
		size_t		 n = evbuffer_get_length(c->c_msg);
		const uint8_t	*msg = evbuffer_pullup(c->c_msg, -1);

		if (msg == NULL)
			conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
		else
			conn_message_done(c, msg, n);
		evbuffer_free(c->c_msg);
		c->c_msg = NULL;
	}
}

static void
conn_ws_event(struct rt_conn *c, const struct ws_event *ev)
{
	switch (ev->type) {
	case WS_EV_DATA:
		conn_ws_data(c, ev);
		break;
	case WS_EV_PING:
		if (c->c_state != CS_OPEN)
			break;
		/* pings cost replies: flooding them is flooding */
		if (c->c_route == ROUTE_PROTO && !conn_rate_ok(c, c->c_last_rx)) {
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
		if (c->c_state == CS_OPEN)
			conn_close(c, ev->code, ev->reason, 1);
		else
			conn_linger(c);
		break;
	}
}

/* Decode len bytes at p in place; returns the bytes used (fewer once c stops reading). */
static size_t
conn_ws_feed(struct rt_conn *c, uint8_t *p, size_t len)
{
	struct ws_event	 ev;
	size_t		 off = 0;

	c->c_last_rx = util_now_ms();
	while (c->c_state == CS_OPEN || c->c_state == CS_CLOSING) {
		off += ws_decode(&c->c_dec, p + off, len - off, &ev);
		if (ev.type == WS_EV_NEED_MORE)
			break;
		conn_ws_event(c, &ev);
	}
	return off;
}

/* wss: run the decoder over everything buffered, in place. */
static void
conn_ws_input(struct rt_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->c_bev);
	struct evbuffer_iovec	 v[WORKER_PEEK_IOV];
	size_t			 used, total;
	int			 n, i;

	while ((n = evbuffer_peek(in, -1, NULL, v, WORKER_PEEK_IOV)) > 0) {
		if (n > WORKER_PEEK_IOV)
			n = WORKER_PEEK_IOV;
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

/* ---- HTTP and the upgrade ---------------------------------------------- */

static void
conn_health(struct rt_conn *c)
{
	struct rt_worker	*w = c->c_worker;
	struct json_object	*o;
	char			 buf[2048];
	const char		*body;
	size_t			 blen;
	int			 n, healthy;

	o = admin_health_json(w->w_reg, w->w_conf->c_canary_interval, &healthy);
	body = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &blen);
	n = http_format_response(buf, sizeof(buf), healthy ? 200 : 503, "application/json",
	    "Cache-Control: no-store\r\n", body, blen);
	if (n > 0)
		conn_write(c, buf, (size_t)n);
	json_object_put(o);
	conn_linger(c);
}

/* Prometheus text, for the addresses in metrics_allow only. */
static void
conn_metrics(struct rt_conn *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	struct evbuffer		*body;
	const uint8_t		*p;
	char			 head[256];
	int			 n;

	if (getpeername(conn_fd(c), (struct sockaddr *)&ss, &sslen) == -1 ||
	    !util_addr_allowed((struct sockaddr *)&ss, &c->c_worker->w_conf->c_metrics_allow)) {
		conn_http_error(c, 403, NULL);
		return;
	}
	if ((body = evbuffer_new()) == NULL) {
		conn_http_error(c, 503, NULL);
		return;
	}
	admin_metrics(c->c_worker->w_reg, body);
	n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
	    evbuffer_get_length(body));
	if ((p = evbuffer_pullup(body, -1)) == NULL && evbuffer_get_length(body) > 0) {
		evbuffer_free(body);
		conn_http_error(c, 503, NULL);
		return;
	}
	conn_write2(c, head, (size_t)n, p, evbuffer_get_length(body));
	evbuffer_free(body);
	conn_linger(c);
}

static int
conn_origin_ok(struct rt_conn *c, const struct http_request *req)
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

static void
conn_send_101(struct rt_conn *c, const struct http_upgrade *up, const struct auth_token *tok)
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
	conn_write(c, "\r\n", 2);
}

/* After the 101: authenticate and greet, or refuse with 1008. */
static void
conn_greet(struct rt_conn *c, const struct auth_token *tok)
{
	struct rt_worker	*w = c->c_worker;
	struct auth_user	 user;
	char			 reason[128], msg[160];

	if (tok->t_source == AUTH_SRC_NONE) {
		if (!w->w_conf->c_allow_anonymous) {
			STAT_ADD(w, rw_auth_required, 1);
			conn_send_error(c, "Authentication required", NULL, NULL);
			conn_close(c, WS_CLOSE_POLICY, "Authentication required", 0);
			return;
		}
		auth_anonymous(&user);
	} else if (tok->t_too_long || auth_verify(w->w_auth, tok->t_token, tok->t_len,
	    time(NULL), &user, reason, sizeof(reason)) == -1) {
		if (tok->t_too_long)
			snprintf(reason, sizeof(reason), "token too long");
		STAT_ADD(w, rw_auth_failures, 1);
		log_debug("%s: %s: invalid token: %s", __func__, conn_peer(c), reason);
		snprintf(msg, sizeof(msg), "Invalid token: %s", reason);
		conn_send_error(c, msg, NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Invalid token", 0);
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
		if ((c->c_user = malloc(sizeof(*c->c_user) + strlen(user.u_id) + 1)) == NULL) {
			reg_conn_del(w->w_reg, c->c_slot);
			c->c_slot = -1;
			conn_close(c, WS_CLOSE_INTERNAL, "Out of memory", 1);
			return;
		}
		c->c_user->cu_exp = user.u_exp;
		c->c_user->cu_admin = (uint8_t)user.u_admin;
		memcpy(c->c_user->cu_id, user.u_id, strlen(user.u_id) + 1);
		STAT_ADD(w, rw_authenticated, 1);
	} else
		STAT_ADD(w, rw_anonymous, 1);
	STAT_ADD(w, rw_connections, 1);
	c->c_counted = 1;
	conn_send_json(c, proto_connected(c->c_id, user.u_authenticated ? &user : NULL, NULL));
}

static void
conn_upgrade(struct rt_conn *c, const struct http_request *req, int route)
{
	struct http_upgrade	 up;
	struct auth_token	*tok = NULL;
	int			 status;

	if ((status = http_check_upgrade(req, &up)) != 0) {
		conn_http_error(c, status, status == 426 ?
		    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" : NULL);
		return;
	}
	if (!conn_origin_ok(c, req)) {
		conn_http_error(c, 403, NULL);
		return;
	}
	if (route == ROUTE_PROTO) {
		if ((tok = malloc(sizeof(*tok))) == NULL) {
			conn_http_error(c, 503, NULL);
			return;
		}
		auth_extract_token(req, tok);
	}
	conn_send_101(c, &up, tok);
	c->c_state = CS_OPEN;
	c->c_route = (uint8_t)route;
	c->c_last_rx = c->c_last_ping = c->c_tokens_at = util_now_ms();
	c->c_tokens = c->c_worker->w_conf->c_client_messages_burst;
	ws_decoder_init(&c->c_dec, (uint64_t)c->c_worker->w_conf->c_max_message_size, 1);
	if (route == ROUTE_PROTO)
		conn_greet(c, tok);
	free(tok);
	if (c->c_state == CS_OPEN)
		conn_schedule(c);
}

static void
conn_route(struct rt_conn *c, const struct http_request *req)
{
	struct rt_config	*conf = c->c_worker->w_conf;
	const char		*p = req->r_path;
	size_t			 n = req->r_path_len;
	int			 is_get = req->r_method_len == 3 &&
				    memcmp(req->r_method, "GET", 3) == 0;

	if (n == strlen(conf->c_ws_path) && memcmp(p, conf->c_ws_path, n) == 0)
		conn_upgrade(c, req, ROUTE_PROTO);
	else if (conf->c_echo_path[0] != '\0' && n == strlen(conf->c_echo_path) &&
	    memcmp(p, conf->c_echo_path, n) == 0)
		conn_upgrade(c, req, ROUTE_ECHO);
	else if (n == 7 && memcmp(p, "/health", 7) == 0)
		is_get ? conn_health(c) : conn_http_error(c, 405, "Allow: GET\r\n");
	else if (n == 8 && memcmp(p, "/metrics", 8) == 0)
		is_get ? conn_metrics(c) : conn_http_error(c, 405, "Allow: GET\r\n");
	else
		conn_http_error(c, 404, NULL);
}

/*
 * Parse a request head and answer it.  Returns the bytes it used; 0 with
 * c still in CS_HTTP means the head is not complete yet.
 */
static size_t
conn_http_parse(struct rt_conn *c, const char *buf, size_t len)
{
	struct http_request	 req;
	size_t			 max, consumed = 0;

	max = (size_t)c->c_worker->w_conf->c_max_header_size;
	switch (http_parse_request(buf, len < max ? len : max, max, &req, &consumed)) {
	case HTTP_PARSE_INCOMPLETE:
		if (len >= max)
			conn_http_error(c, 431, NULL);
		return 0;
	case HTTP_PARSE_TOO_LARGE:
		conn_http_error(c, 431, NULL);
		return 0;
	case HTTP_PARSE_VERSION:
		conn_http_error(c, 505, NULL);
		return 0;
	case HTTP_PARSE_BAD:
		conn_http_error(c, 400, NULL);
		return 0;
	}
	conn_route(c, &req);
	return consumed;
}

/* wss: the head from the bufferevent's input. */
static void
conn_http_input(struct rt_conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->c_bev);
	size_t		 len = evbuffer_get_length(in), max, consumed;
	const char	*buf;

	max = (size_t)c->c_worker->w_conf->c_max_header_size;
	if ((buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)(len < max ? len : max))) == NULL)
		return;
	consumed = conn_http_parse(c, buf, len);
	/* the request points into the input buffer: drain only now */
	evbuffer_drain(in, consumed);
	if ((c->c_state == CS_OPEN || c->c_state == CS_CLOSING) &&
	    evbuffer_get_length(in) > 0)
		conn_ws_input(c);
	else if (c->c_state == CS_LINGER)
		evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * Plain: the head from one read.  A head split over reads waits in c_msg
 * (which holds WebSocket messages only after the upgrade).
 */
static void
conn_http_plain(struct rt_conn *c, uint8_t *buf, size_t len)
{
	struct evbuffer	*held = c->c_msg;
	size_t		 used;

	if (held != NULL) {
		if (evbuffer_add(held, buf, len) == -1) {
			conn_http_error(c, 503, NULL);
			return;
		}
		len = evbuffer_get_length(held);
		if ((buf = evbuffer_pullup(held, -1)) == NULL) {
			conn_http_error(c, 503, NULL);
			return;
		}
	}
	used = conn_http_parse(c, (const char *)buf, len);
	if (c->c_state == CS_HTTP) {
		/* incomplete, and under max_header_size */
		if (held == NULL && ((c->c_msg = evbuffer_new()) == NULL ||
		    evbuffer_add(c->c_msg, buf, len) == -1))
			conn_http_error(c, 503, NULL);
		return;
	}
	c->c_msg = NULL;	/* the decoder's from now on */
	if ((c->c_state == CS_OPEN || c->c_state == CS_CLOSING) && used < len)
		conn_ws_feed(c, buf + used, len - used);
	if (held != NULL)
		evbuffer_free(held);
}

/* ---- plain socket callback ---------------------------------------------- */

/* Nothing left to write: a lingering connection half-closes, or ends. */
static int
conn_drained(struct rt_conn *c)
{
	if (c->c_state != CS_LINGER)
		return 0;
	if (c->c_close_rcvd) {
		/* the close handshake is complete: the server closes first */
		conn_free(c);
		return -1;
	}
	shutdown(conn_fd(c), SHUT_WR);
	return 0;
}

/* Write what is queued; -1 when c is gone. */
static int
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

static void
conn_sock_read(struct rt_conn *c)
{
	static uint8_t	 buf[WORKER_READ_MAX];
	ssize_t		 n;

	if ((n = read(conn_fd(c), buf, sizeof(buf))) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("%s: %s: socket error: %s", __func__, conn_peer(c), strerror(errno));
		conn_free(c);
		return;
	}
	if (n == 0) {
		log_debug("%s: %s: closed by peer", __func__, conn_peer(c));
		conn_free(c);
		return;
	}
	switch (c->c_state) {
	case CS_HTTP:
		conn_http_plain(c, buf, (size_t)n);
		break;
	case CS_OPEN:
	case CS_CLOSING:
		conn_ws_feed(c, buf, (size_t)n);
		break;
	case CS_LINGER:
		break;	/* discarded */
	}
}

static void
conn_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt_conn	*c = arg;

	(void)fd;
	if (c->c_io_err) {
		conn_free(c);
		return;
	}
	if ((what & EV_WRITE) && conn_flush(c) == -1)
		return;
	if (what & EV_READ)
		conn_sock_read(c);
}

/* ---- bufferevent callbacks (wss) ---------------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct rt_conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	switch (c->c_state) {
	case CS_HTTP:
		conn_http_input(c);
		break;
	case CS_OPEN:
	case CS_CLOSING:
		conn_ws_input(c);
		break;
	case CS_LINGER:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct rt_conn	*c = arg;

	(void)bev;
	/*
	 * Freeing the bufferevent sends close_notify and closes: a TLS
	 * half-close would skip it.
	 */
	if (c->c_state == CS_LINGER && conn_outlen(c) == 0)
		conn_free(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct rt_conn	*c = arg;

	char		 buf[256];
	unsigned long	 e;

	if (what & BEV_EVENT_CONNECTED) {
		/* TLS is up: the request head gets its own deadline now */
		c->c_tls_done = 1;
		STAT_ADD(c->c_worker, rw_tls_handshakes, 1);
		c->c_deadline = util_now_ms() + (uint64_t)c->c_worker->w_conf->c_handshake_timeout;
		conn_schedule(c);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		c->c_tls_failed = 1;
	if ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (!c->c_tls_done)
			STAT_ADD(c->c_worker, rw_tls_errors, 1);
		log_debug("%s: %s: TLS: %s", __func__, conn_peer(c),
		    tls_error_string(e, buf, sizeof(buf)));
		while (bufferevent_get_openssl_error(bev) != 0)
			;
	} else if (!c->c_tls_done) {
		STAT_ADD(c->c_worker, rw_tls_errors, 1);
		log_debug("%s: %s: closed during the TLS handshake", __func__, conn_peer(c));
	} else
		log_debug("%s: %s: %s", __func__, conn_peer(c),
		    (what & BEV_EVENT_EOF) ? "closed by peer" : "socket error");
	conn_free(c);
}

static void
conn_peer_set(struct rt_conn *c, const struct sockaddr *sa)
{
	c->c_peer_family = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		memcpy(c->c_peer_addr, &sin->sin_addr, 4);
		c->c_peer_port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		memcpy(c->c_peer_addr, &sin6->sin6_addr, 16);
		c->c_peer_port = ntohs(sin6->sin6_port);
	}
}

/* "address:port" of the peer, in a static buffer (for one log line). */
static const char *
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

static void
worker_accept_conn(struct rt_worker *w, evutil_socket_t fd, struct sockaddr *sa, int tls)
{
	struct rt_conn		*c;
	SSL			*ssl;
	uint64_t		 timeout;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	if (tls) {
		if ((ssl = SSL_new(w->w_ssl_ctx)) == NULL)
			goto fail;
		c->c_bev = bufferevent_openssl_socket_new(w->w_base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->c_bev == NULL)
			goto fail;
		/* clients rarely send close_notify; EOF is EOF */
		bufferevent_openssl_set_allow_dirty_shutdown(c->c_bev, 1);
		c->c_tls = 1;
	} else if (event_assign(&c->c_ev, w->w_base, fd, EV_READ | EV_PERSIST,
	    conn_sock_cb, c) == -1)
		goto fail;
	c->c_worker = w;
	c->c_state = CS_HTTP;
	c->c_slot = -1;
	conn_peer_set(c, sa);
	if (util_uuid4(c->c_id, sizeof(c->c_id)) == -1)
		fatalx("%s: no randomness for connection ids", __func__);
	TAILQ_INSERT_TAIL(&w->w_conns, c, c_link);
	timeout = (uint64_t)(tls ? w->w_conf->c_tls_handshake_timeout :
	    w->w_conf->c_handshake_timeout);
	c->c_deadline = util_now_ms() + timeout;
	wheel_schedule(&w->w_wheel, &c->c_timer, c->c_deadline);
	if (tls) {
		bufferevent_setcb(c->c_bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
		bufferevent_enable(c->c_bev, EV_READ | EV_WRITE);
	} else
		event_add(&c->c_ev, NULL);
	worker_ip_limit(w, c, sa);
	return;
 fail:
	log_warnx("%s: out of memory, connection dropped", __func__);
	/* (an SSL that bufferevent_openssl_socket_new() refused is its to free) */
	if (c == NULL || c->c_bev == NULL)
		close(fd);
	else
		bufferevent_free(c->c_bev);
	free(c);
}

/* max_connections_per_ip: count this address, or refuse with 503. */
static void
worker_ip_limit(struct rt_worker *w, struct rt_conn *c, const struct sockaddr *sa)
{
	const void	*addr;
	size_t		 len;
	int		 limit = w->w_conf->c_max_connections_per_ip;

	if (limit <= 0)
		return;
	if (sa->sa_family == AF_INET) {
		addr = &((const struct sockaddr_in *)sa)->sin_addr;
		len = 4;
	} else if (sa->sa_family == AF_INET6) {
		addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		len = 16;
	} else
		return;
	if (reg_ip_acquire(w->w_reg, w->w_id, addr, len, limit, &c->c_ipkey) == 0) {
		c->c_ip_counted = 1;
		return;
	}
	STAT_ADD(w, rw_ip_limited, 1);
	log_debug("%s: %s: over max_connections_per_ip", __func__, conn_peer(c));
	conn_http_error(c, 503, "Retry-After: 10\r\n");
}

static void
worker_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	(void)salen;
	worker_accept_conn(arg, fd, sa, 0);
}

static void
worker_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	(void)salen;
	worker_accept_conn(arg, fd, sa, 1);
}

static void
worker_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and friends: log and keep listening; the tick retries */
	log_warn("%s: accept() failed", __func__);
}

/* ---- events from the bridge, messages from the master ------------------ */

#define WORKER_PEND_MAX		65536	/* frames pending before a forced flush */
#define WORKER_WRITEV_MAX	64

/* Frame i of the batch as a shared block: copied once, for every subscriber. */
static struct rt_blk *
worker_frame_blk(struct rt_worker *w, uint32_t i)
{
	struct worker_frame	*f = &w->w_frames[i];

	if (f->wf_blk == NULL)
		f->wf_blk = blk_copy(f->wf_p, f->wf_len);
	return f->wf_blk;
}

/* Queue the bytes of frame i from off on c, sharing the frame's block. */
static void
conn_queue_frame(struct rt_conn *c, uint32_t i, size_t off)
{
	struct rt_worker	*w = c->c_worker;
	struct rt_blk		*b;

	if (c->c_io_err)
		return;
	if ((b = worker_frame_blk(w, i)) == NULL ||
	    outq_add_ref(&c->c_out, b, b->b_data + off, w->w_frames[i].wf_len - off) == -1)
		conn_io_fail(c, ENOMEM);
}

/*
 * Send a connection's pending frames with one sendmsg, straight from the
 * bridge's batch block: no copy, no epoll round trip.  What the socket
 * does not take waits in its queue, sharing the frames' blocks.
 */
static void
worker_flush_conn(struct rt_worker *w, struct rt_conn *c)
{
	struct iovec	 iov[WORKER_WRITEV_MAX];
	uint32_t	 e = c->c_pend_first, f, fr[WORKER_WRITEV_MAX];
	ssize_t		 n;
	size_t		 want;
	int		 cnt, fd = conn_fd(c), blocked = 0;

	while (e != UINT32_MAX) {
		for (cnt = 0, want = 0, f = e; f != UINT32_MAX && cnt < WORKER_WRITEV_MAX;
		    f = w->w_pend[f].wp_next, cnt++) {
			fr[cnt] = w->w_pend[f].wp_frame;
			iov[cnt].iov_base = (void *)(uintptr_t)w->w_frames[fr[cnt]].wf_p;
			iov[cnt].iov_len = w->w_frames[fr[cnt]].wf_len;
			want += iov[cnt].iov_len;
		}
		n = blocked ? 0 : outq_sendv(fd, iov, cnt);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				conn_io_fail(c, errno);
			n = 0;
		}
		if ((size_t)n < want)
			blocked = 1;
		/* the unwritten tail of this group, then the rest, to the queue */
		for (cnt = 0; e != f; e = w->w_pend[e].wp_next, cnt++) {
			if ((size_t)n >= iov[cnt].iov_len) {
				n -= (ssize_t)iov[cnt].iov_len;
				continue;
			}
			conn_queue_frame(c, fr[cnt], (size_t)n);
			n = 0;
		}
	}
	c->c_pend_batch = 0;
	c->c_pend_bytes = 0;
	if (c->c_out != NULL)
		conn_want_room(c);
}

static void
worker_flush(struct rt_worker *w)
{
	uint32_t	 i;

	for (i = 0; i < w->w_npconns; i++)
		if (w->w_pconns[i]->c_pend_batch == w->w_batch)
			worker_flush_conn(w, w->w_pconns[i]);
	/* queues hold their own references to the frames they share */
	for (i = 0; i < w->w_nframes; i++)
		blk_unref(w->w_frames[i].wf_blk);
	w->w_nframes = 0;
	w->w_npend = 0;
	w->w_npconns = 0;
	/* a new batch: nobody is pending in it */
	if (++w->w_batch == 0)
		w->w_batch = 1;
}

/*
 * Room for element n of the array at *(void **)arrp, whose capacity is
 * *cap (doubling, from first); -1 when it cannot grow.
 */
static int
worker_grow(void *arrp, uint32_t *cap, uint32_t n, size_t size, uint32_t first)
{
	void		**arr = arrp, *p;
	uint32_t	 c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : first;
	if (c <= *cap || (p = reallocarray(*arr, c, size)) == NULL)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

/* Remember an event frame of this batch; its index, or -1. */
static int64_t
worker_frame_add(struct rt_worker *w, const uint8_t *frame, size_t flen)
{
	struct worker_frame	*f;

	if (worker_grow(&w->w_frames, &w->w_framecap, w->w_nframes, sizeof(*f), 256) == -1)
		return -1;
	f = &w->w_frames[w->w_nframes];
	f->wf_p = frame;
	f->wf_len = (uint32_t)flen;
	f->wf_blk = NULL;
	return w->w_nframes++;
}

/* Remember frame i for c; -1 when the arrays cannot grow. */
static int
worker_pend(struct rt_worker *w, struct rt_conn *c, uint32_t i)
{
	struct worker_pend	*e;

	if (worker_grow(&w->w_pend, &w->w_pendcap, w->w_npend, sizeof(*e), 1024) == -1)
		return -1;
	if (c->c_pend_batch != w->w_batch) {
		if (worker_grow(&w->w_pconns, &w->w_pconncap, w->w_npconns,
		    sizeof(*w->w_pconns), 256) == -1)
			return -1;
		w->w_pconns[w->w_npconns++] = c;
		c->c_pend_batch = w->w_batch;
		c->c_pend_first = w->w_npend;
		c->c_pend_bytes = 0;
	} else
		w->w_pend[c->c_pend_last].wp_next = w->w_npend;
	e = &w->w_pend[w->w_npend];
	e->wp_frame = i;
	e->wp_next = UINT32_MAX;
	c->c_pend_last = w->w_npend++;
	c->c_pend_bytes += w->w_frames[i].wf_len;
	return 0;
}

/*
 * Deliver one event frame to every subscriber.  The bytes arrive complete
 * from the bridge.  A plain socket with nothing queued gets the frame at
 * the end of this batch by sendmsg (coalesced with the batch's other
 * frames for it); a plain socket with bytes waiting queues a reference to
 * the frame's one shared copy; wss copies it into the bufferevent.  A
 * subscriber over max_output_buffer is a slow consumer, closed with 4000
 * after the loop (closing edits the channel's subscriber array).
 */
static void
worker_event(struct rt_worker *w, const uint8_t *p, size_t len)
{
	struct rt_chan	*ch;
	struct rt_conn	*c, **slow = NULL;
	const char	*name;
	const uint8_t	*frame;
	size_t		 chlen, flen, i, olen, nslow = 0;
	size_t		 max = (size_t)w->w_conf->c_max_output_buffer;
	int64_t		 fi;

	if (ipc_event_split(p, len, &name, &chlen, &frame, &flen) == -1)
		fatalx("%s: malformed event from the bridge", __func__);
	if ((ch = worker_chan_find(w, name, chlen, worker_hash(name, chlen))) == NULL)
		return;
	if (w->w_npend + ch->ch_nsubs > WORKER_PEND_MAX)
		worker_flush(w);
	fi = worker_frame_add(w, frame, flen);
	for (i = 0; i < ch->ch_nsubs; i++) {
		c = ch->ch_subs[i]->s_conn;
		if (c->c_state != CS_OPEN || c->c_io_err)
			continue;
		olen = conn_outlen(c);
		if (c->c_pend_batch == w->w_batch)
			olen += c->c_pend_bytes;
		if (olen + flen > max) {
			struct rt_conn **n = reallocarray(slow, nslow + 1, sizeof(*n));

			if (n != NULL) {
				slow = n;
				slow[nslow++] = c;
			}
			continue;
		}
		if (c->c_tls)
			evbuffer_add(bufferevent_get_output(c->c_bev), frame, flen);
		else if (fi == -1)
			conn_io_fail(c, ENOMEM);
		else if (c->c_pend_batch == w->w_batch || c->c_out == NULL) {
			/* behind its other frames of this batch, or the first */
			if (worker_pend(w, c, (uint32_t)fi) == -1)
				conn_io_fail(c, ENOMEM);
		} else
			conn_queue_frame(c, (uint32_t)fi, 0);
		STAT_ADD(w, rw_events_out, 1);
		STAT_ADD(w, rw_bytes_out, (int64_t)flen);
	}
	for (i = 0; i < nslow; i++) {
		slow[i]->c_pend_batch = 0;	/* its pending frames are dropped */
		conn_slow(slow[i]);
	}
	free(slow);
}

/*
 * Take clients only once the bridge holds our socket, so that no
 * subscription is acknowledged while its events would still be dropped;
 * after WORKER_BRIDGE_WAIT_MS without a bridge, take them anyway.
 */
static void
worker_accepting(struct rt_worker *w, const char *why)
{
	int	 i;

	if (w->w_accepting || w->w_stopping)
		return;
	w->w_accepting = 1;
	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_enable(w->w_listeners[i]);
	log_debug("worker %d accepting: %s", w->w_id, why);
}

static void
worker_bridge_read(struct bufferevent *bev, void *arg)
{
	struct rt_worker	*w = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct ipc_hdr		 hdr;
	uint8_t			 raw[sizeof(hdr)];
	const uint8_t		*p, *m;
	uint64_t		 seq;
	size_t			 len, off = 0;
	int			 rv;

	len = evbuffer_get_length(in);
	if (len < sizeof(hdr))
		return;
	evbuffer_copyout(in, raw, sizeof(raw));
	if ((rv = ipc_parse(raw, len, &hdr)) == IPC_PARSE_NEED_MORE)
		return;		/* no whole message yet: no pullup either */
	/* one contiguous block for the batch: frames leave straight from it */
	if ((p = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL) {
		log_warnx("%s: out of memory; the events wait for the next read", __func__);
		return;
	}
	while (len - off >= sizeof(hdr)) {
		if ((rv = ipc_parse(p + off, len - off, &hdr)) == IPC_PARSE_NEED_MORE)
			break;
		if (rv == IPC_PARSE_BAD)
			fatalx("%s: malformed message from the bridge", __func__);
		m = p + off + sizeof(hdr);
		switch (hdr.type) {
		case IPC_EVENT:
			worker_event(w, m, hdr.len);
			break;
		case IPC_HELLO:
			worker_accepting(w, "the bridge is connected");
			break;
		case IPC_CANARY:
			if (hdr.len != sizeof(seq))
				fatalx("%s: malformed canary", __func__);
			memcpy(&seq, m, sizeof(seq));
			atomic_store(&w->w_rw->rw_canary_seq, seq);
			atomic_store(&w->w_rw->rw_canary_seen, util_now_ms());
			break;
		default:
			fatalx("%s: unexpected message %u from the bridge", __func__, hdr.type);
		}
		off += sizeof(hdr) + hdr.len;
	}
	worker_flush(w);
	evbuffer_drain(in, off);
}

static void
worker_bridge_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_worker	*w = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("%s: the bridge went away", __func__);
		bufferevent_free(w->w_bridge);
		w->w_bridge = NULL;
	}
}

static void
worker_attach_bridge(struct rt_worker *w, int fd)
{
	if (fd == -1)
		fatalx("%s: no socket from the master", __func__);
	if (w->w_bridge != NULL)
		bufferevent_free(w->w_bridge);
	evutil_make_socket_nonblocking(fd);
	if ((w->w_bridge = bufferevent_socket_new(w->w_base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("%s: bufferevent_socket_new() failed", __func__);
	bufferevent_setcb(w->w_bridge, worker_bridge_read, NULL, worker_bridge_event, w);
	bufferevent_enable(w->w_bridge, EV_READ);
}

static void	worker_stop(evutil_socket_t, short, void *);

/* A new certificate the master read and validated: new connections use it. */
static int
worker_tls_reload(struct rt_worker *w, const char *p, size_t len, char *err, size_t errlen)
{
	struct tls_pem	 pem;
	SSL_CTX		*ctx;
	uint32_t	 certlen;

	if (len < sizeof(certlen))
		fatalx("%s: malformed TLS message from the master", __func__);
	memcpy(&certlen, p, sizeof(certlen));
	if (certlen > len - sizeof(certlen))
		fatalx("%s: malformed TLS message from the master", __func__);
	pem.tp_cert = (char *)(uintptr_t)(p + sizeof(certlen));
	pem.tp_certlen = certlen;
	pem.tp_key = (char *)(uintptr_t)(p + sizeof(certlen) + certlen);
	pem.tp_keylen = len - sizeof(certlen) - certlen;
	if ((ctx = tls_ctx_new(w->w_conf, &pem, err, errlen)) == NULL) {
		log_warnx("TLS reload: %s; keeping the old certificate", err);
		return -1;
	}
	/* established connections hold their own reference to the old one */
	if (w->w_ssl_ctx != NULL)
		SSL_CTX_free(w->w_ssl_ctx);
	w->w_ssl_ctx = ctx;
	OPENSSL_cleanse((void *)(uintptr_t)pem.tp_key, pem.tp_keylen);
	log_debug("%s: new TLS certificate in use", __func__);
	return 0;
}

/* The admin closes a connection, or all of a user's. */
static void
worker_kick(struct rt_worker *w, int by_user, const char *p, size_t len)
{
	struct rt_conn	*c, *next;

	for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state != CS_OPEN || !c->c_counted)
			continue;
		if (by_user ? (c->c_user == NULL || strlen(c->c_user->cu_id) != len ||
		    memcmp(c->c_user->cu_id, p, len) != 0) :
		    (len != RT_UUID_LEN || memcmp(c->c_id, p, len) != 0))
			continue;
		log_info("%s: connection %s closed by an administrator", conn_peer(c), c->c_id);
		STAT_ADD(w, rw_kicked, 1);
		conn_send_error(c, "Disconnected by an administrator", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Disconnected by an administrator", 0);
	}
}

/* New settings from the master: apply what may change live. */
static int
worker_reload(struct rt_worker *w, const char *p, size_t len, char *err, size_t errlen)
{
	struct rt_config	 nc;
	struct auth_ctx		*auth;

	config_from_master(&nc, w->w_conf->c_file, p, len);
	if ((auth = auth_new(&nc, err, errlen)) == NULL) {
		log_warnx("reload: %s; keeping the old JWT settings", err);
		config_free(&nc);
		return -1;
	}
	config_merge_reloadable(w->w_conf, &nc, 0);
	auth_free(w->w_auth);
	w->w_auth = auth;
	log_setlevel(w->w_conf->c_log_level);
	config_free(&nc);
	return 0;
}

static void
worker_dispatch_master(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_worker	*w = arg;
	struct ipc_hdr		 hdr;
	static char		 buf[IPC_CTL_MAX];
	char			 err[512];
	ssize_t			 n;
	int			 rfd;

	(void)ev;
	while ((n = ipc_recv(fd, &hdr, buf, sizeof(buf), &rfd)) > 0) {
		switch (hdr.type) {
		case IPC_BRIDGE_FD:
			worker_attach_bridge(w, rfd);
			break;
		case IPC_SHUTDOWN:
			if (rfd != -1)
				close(rfd);
			worker_stop(SIGTERM, 0, w);
			break;
		case IPC_CFG_TLS:
			ipc_cfg_ack(fd, &hdr,
			    worker_tls_reload(w, buf, hdr.len, err, sizeof(err)), err);
			break;
		case IPC_CFG_RELOAD:
			ipc_cfg_ack(fd, &hdr,
			    worker_reload(w, buf, hdr.len, err, sizeof(err)), err);
			break;
		case IPC_CTL_KICK:
		case IPC_CTL_KICK_USER:
			worker_kick(w, hdr.type == IPC_CTL_KICK_USER, buf, hdr.len);
			break;
		default:
			fatalx("%s: unexpected message %u from the master", __func__, hdr.type);
		}
	}
	if (n == 0) {
		/* the master died: nobody supervises us, so leave now */
		log_warnx("the master went away: exiting");
		event_del(w->w_master_ev);
		event_base_loopexit(w->w_base, NULL);
	} else if (errno != EAGAIN)
		fatal("%s: control socket", __func__);
}

/* ---- start and stop ------------------------------------------------------ */

/*
 * Close open connections with 1001, spread evenly over drain_period, so a
 * host's clients do not all reconnect to the next node in the same second.
 */
static void
worker_drain(struct rt_worker *w, uint64_t now)
{
	struct rt_conn	*c, *next;
	uint64_t	 period = (uint64_t)w->w_conf->c_drain_period, elapsed;
	int64_t		 due, closed;

	elapsed = now - w->w_drain_start;
	if (period == 0 || elapsed >= period)
		due = w->w_drain_total;
	else
		due = (int64_t)((uint64_t)w->w_drain_total * (elapsed + WORKER_TICK_MS) / period);
	closed = w->w_drain_total - (int64_t)STAT_GET(w, rw_connections);
	for (c = TAILQ_FIRST(&w->w_conns); c != NULL && closed < due; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state != CS_OPEN)
			continue;
		conn_close(c, WS_CLOSE_GOING_AWAY, "Server shutting down", 0);
		closed++;
	}
	/* late arrivals: connections that were still upgrading */
	if (due >= w->w_drain_total)
		for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
			next = TAILQ_NEXT(c, c_link);
			if (c->c_state == CS_OPEN)
				conn_close(c, WS_CLOSE_GOING_AWAY, "Server shutting down", 0);
		}
}

static void
worker_stop(evutil_socket_t sig, short ev, void *arg)
{
	struct rt_worker	*w = arg;
	struct rt_conn		*c, *next;
	int			 i;

	(void)ev;
	if (w->w_stopping)
		return;
	log_info("stopping (%d): closing %lld connections", (int)sig,
	    (long long)STAT_GET(w, rw_connections));
	w->w_stopping = 1;
	atomic_store(&w->w_rw->rw_state, REG_PROC_STOPPING);
	w->w_stop_deadline = util_now_ms() + (uint64_t)w->w_conf->c_shutdown_timeout;
	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_disable(w->w_listeners[i]);
	for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state == CS_HTTP)
			conn_free(c);
	}
	w->w_drain_total = (int64_t)STAT_GET(w, rw_connections);
	w->w_drain_start = util_now_ms();
	worker_drain(w, w->w_drain_start);
}

static void
worker_listen(struct rt_worker *w, int fd, evconnlistener_cb cb)
{
	struct evconnlistener	*l;

	if ((l = evconnlistener_new(w->w_base, cb, w, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_DISABLED, 0, fd)) == NULL)
		fatalx("evconnlistener_new() failed");
	evconnlistener_set_error_cb(l, worker_accept_error);
	w->w_listeners[w->w_nlisteners++] = l;
}

static void
worker_cleanup(struct rt_worker *w)
{
	struct rt_conn	*c;
	int		 i;

	while ((c = TAILQ_FIRST(&w->w_conns)) != NULL)
		conn_free(c);
	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_free(w->w_listeners[i]);
	if (w->w_tick != NULL)
		event_free(w->w_tick);
	if (w->w_sigterm != NULL)
		event_free(w->w_sigterm);
	if (w->w_master_ev != NULL)
		event_free(w->w_master_ev);
	if (w->w_bridge != NULL)
		bufferevent_free(w->w_bridge);
	free(w->w_pend);
	free(w->w_pconns);
	free(w->w_frames);
	auth_free(w->w_auth);
	if (w->w_ssl_ctx != NULL)
		SSL_CTX_free(w->w_ssl_ctx);
	free(w->w_chans);
	if (w->w_base != NULL)
		event_base_free(w->w_base);
}

int
worker_run(struct rt_config *conf, struct registry *reg, int worker_id, int master_fd,
    int plain_fd, int tls_fd, SSL_CTX *ssl_ctx)
{
	struct rt_worker	 w;
	struct timeval		 tick = { 0, WORKER_TICK_MS * 1000 };
	char			 err[512];

	memset(&w, 0, sizeof(w));
	w.w_conf = conf;
	w.w_id = worker_id;
	w.w_reg = reg;
	w.w_started = util_now_ms();
	w.w_batch = 1;
	w.w_rw = reg_worker(reg, worker_id);
	w.w_master_fd = master_fd;
	TAILQ_INIT(&w.w_conns);
	wheel_init(&w.w_wheel, WORKER_TICK_MS, util_now_ms());
	w.w_nbuckets = 1024;
	if ((w.w_chans = calloc(w.w_nbuckets, sizeof(*w.w_chans))) == NULL)
		fatal("calloc");
	if ((w.w_auth = auth_new(conf, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		worker_cleanup(&w);
		return -1;
	}
	if ((w.w_base = event_base_new()) == NULL)
		fatalx("event_base_new() failed");
	w.w_ssl_ctx = ssl_ctx;
	if (plain_fd != -1)
		worker_listen(&w, plain_fd, worker_accept);
	if (tls_fd != -1 && ssl_ctx != NULL)
		worker_listen(&w, tls_fd, worker_accept_tls);
	w.w_tick = event_new(w.w_base, -1, EV_PERSIST, worker_tick, &w);
	event_add(w.w_tick, &tick);
	w.w_sigterm = evsignal_new(w.w_base, SIGTERM, worker_stop, &w);
	event_add(w.w_sigterm, NULL);
	w.w_master_ev = event_new(w.w_base, master_fd, EV_READ | EV_PERSIST,
	    worker_dispatch_master, &w);
	event_add(w.w_master_ev, NULL);
	atomic_store(&w.w_rw->rw_pid, (int32_t)getpid());
	atomic_store(&w.w_rw->rw_started, (uint64_t)time(NULL));
	atomic_store(&w.w_rw->rw_tick, util_now_ms());
	atomic_store(&w.w_rw->rw_state, REG_PROC_RUNNING);
	ipc_send(master_fd, IPC_HELLO, (uint32_t)worker_id, NULL, 0, -1);
	log_debug("worker %d ready", worker_id);
	event_base_dispatch(w.w_base);
	atomic_store(&w.w_rw->rw_state, REG_PROC_STOPPING);
	worker_cleanup(&w);
	log_debug("worker %d stopped", worker_id);
	close(master_fd);
	return 0;
}
