/*
 * The bridge: the only process that talks to Redis.  It subscribes to the
 * channel families, builds each event's WebSocket frame once, and writes it
 * to the workers that have subscribers.  A canary published on a private
 * channel proves the whole path Redis -> bridge -> every worker.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <openssl/rand.h>

#include "realtimed.h"
#include "bridge.h"
#include "bridge_cluster.h"
#include "bridge_ctl.h"
#include "bridge_demand.h"
#include "bridge_ev.h"
#include "bridge_out.h"
#include "bridge_sentinel.h"
#include "channel.h"
#include "cluster.h"
#include "config.h"
#include "deflate.h"
#include "history.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "redis_cluster.h"
#include "redis_url.h"
#include "registry.h"
#include "stats.h"
#include "util.h"
#include "ws.h"

#define BRIDGE_TICK_MS		250
#define BRIDGE_LOG_EVERY_MS	1000	/* one "too large" line a second at most */

/*
 * A position read from Redis in flight (cluster positions): for worker
 * br_w's request br_req.  The answer comes on the reply channel, after
 * every envelope published before the read: the bridge answers the
 * worker at that point of its event stream.
 */
struct bridge_wait {
	int		 wt_w;
	uint32_t	 wt_req;
	uint8_t		 wt_since;
	uint64_t	 wt_offset;
	char		 wt_epoch[HIST_EPOCH_MAX + 1];
};

/* A request that came while the bridge was connecting to Redis. */
struct bridge_park {
	struct bridge_wait pk_wt;
	uint64_t	 pk_at;		/* ms */
	size_t		 pk_chlen;
	int		 pk_ask;	/* deferred (r_later): bridge_answer()'s ask */
	char		 pk_ch[RT_CHANNEL_MAX + 1];
};
#define BRIDGE_PARK_MAX		65536

struct bridge_read {
	struct rt_bridge *rd_b;
	uint32_t	 rd_tag;	/* slot | generation << 16; 0: free */
	int		 rd_pending;	/* the FCALL's own reply still to come: not free */
	/* requests on the same channel meanwhile: answered after this one */
	struct bridge_wait *rd_wait;
	size_t		 rd_nwait;
	size_t		 rd_waitcap;
	int		 rd_w;
	uint32_t	 rd_req;
	uint8_t		 rd_since;
	uint64_t	 rd_offset;
	uint64_t	 rd_at;		/* ms, asked */
	char		 rd_epoch[HIST_EPOCH_MAX + 1];
	size_t		 rd_chlen;
	char		 rd_ch[RT_CHANNEL_MAX + 1];
};

/* The Redis subscriptions of a namespace table (chan_redis_subscriptions()). */
struct bridge_subs {
	int		 bs_n;
	char		*bs_name[CHAN_NS_MAX];
	uint8_t		 bs_pattern[CHAN_NS_MAX];
};

struct rt_bridge {
	struct rt_config	*b_conf;
	struct registry		*b_reg;
	struct reg_bridge	*b_rb;
	struct event_base	*b_base;
	struct redis_url	 b_url;
	redisAsyncContext	*b_sub;		/* SUBSCRIBE connection */
	redisAsyncContext	*b_cmd;		/* PUBLISH connection (canary) */
	int			 b_sub_acks;	/* subscriptions confirmed */
	int			 b_sub_expect;	/* acks that mean subscribed */
	/*
	 * Messages count only through b_active's subscriptions.  A reload
	 * subscribes what the new table adds first; at the ack of the last
	 * one (b_switch_acks), b_next becomes b_active and what it dropped is
	 * unsubscribed: no message is lost or delivered twice at the seam.
	 */
	struct bridge_subs	 b_active;
	struct bridge_subs	 b_next;
	int			 b_switch_acks;
	uint64_t		 b_sub_started;	/* ms, connect attempt */
	uint64_t		 b_backoff;
	uint64_t		 b_retry_at;
	struct bufferevent	*b_workers[REG_MAX_WORKERS];	/* writes, and their errors */
	struct bridge_wrd {			/* reads: bridge_worker_readable() */
		struct rt_bridge	*r_b;
		int			 r_w;
		struct event		*r_ev;
		struct evbuffer		*r_in;	/* read, not yet handled */
		int			 r_waiting;	/* over ipc_max_buffer: not answered */
		int			 r_reading;	/* r_ev in epoll */
		/* answers due while over ipc_max_buffer, in order */
		struct bridge_park	*r_later;
		size_t			 r_nlater;
		size_t			 r_latercap;
	}			 b_wrd[REG_MAX_WORKERS];
	struct bout		*b_out;		/* what goes to them, per loop pass */
	int			 b_master_fd;
	struct event		*b_master_ev;
	struct event		*b_tick;
	char			 b_canary[64];	/* private channel name */
	char			 b_reply[64];	/* private: answers of realtimed_read */
	int			 b_fn_ok;	/* the function library is loaded */
	uint64_t		 b_fn_logged;	/* ms, the last "cannot use it" line */
	int			 b_fn_failed;	/* FUNCTION LOAD refused (Redis < 7) */
	uint64_t		 b_fn_retry_at;	/* ms: load again (a passing refusal), 0 never */
	uint64_t		 b_fn_retry_ms;	/* ... after this long, doubling */
	int			 b_cmd_up;	/* b_cmd connected */
	int			 b_ctl_up;	/* control's commands may go (bctl_set_cmd()) */
	struct bridge_park	*b_park;	/* requests waiting for Redis */
	size_t			 b_npark;
	size_t			 b_parkcap;
	struct bridge_read	*b_reads;	/* position_reads slots */
	int			 b_nreads;
	uint32_t		 b_readgen;
	uint64_t		 b_canary_sent;
	uint64_t		 b_canary_seen;
	uint64_t		 b_canary_at;
	int			 b_canary_missed;	/* in a row */
	int			 b_stopping;
	char			*b_json;	/* the event being built, reused */
	size_t			 b_jsoncap;
	struct deflate_ctx	 b_deflate;	/* compresses each event once; dc_z NULL: not yet */
	struct hist		*b_hist;	/* node positions */
	uint64_t		 b_hist_told;	/* hist_changes() the workers know of */
	/* a position reset for the worker that found its queue full: sent
	 * once there is room (or ahead of an answer), one however many holes */
	uint8_t			 b_reset_owed[REG_MAX_WORKERS];
	struct bctl		*b_ctl;		/* control across nodes */
	struct bsen		*b_sen;		/* redis-sentinel:// */
	struct bdem		*b_dem;		/* redis_subscribe on_demand */
	struct bclu		*b_clu;		/* redis-cluster:// shards */
	int			 b_seed;	/* cluster: the node b_sub, b_cmd go to */
	int			 b_master_known;	/* b_url holds the sentinels' answer */
	int			 b_master_seen;	/* ... and held one before */
	uint64_t		 b_connfail_logged;	/* ms, the last "cannot connect" line */
	uint64_t		 b_big_logged_at;	/* ms, the last "too large" line */
	uint64_t		 b_big_unlogged;	/* drops since, not in a line yet */
	size_t			 b_big_len;		/* the last of those */
	char			 b_big_chan[RT_CHANNEL_MAX + 64];
};

static void	bridge_connect(struct rt_bridge *);
static void	bridge_on_message(redisAsyncContext *, void *, void *);
static void	bridge_drop(struct rt_bridge *, redisAsyncContext *);
static void	bridge_new_epoch(struct rt_bridge *);
static void	bridge_reads_flush(struct rt_bridge *, uint64_t);
static void	bridge_load_library(struct rt_bridge *);
static void	bridge_read_answer(struct rt_bridge *, const char *, size_t);
static void	bridge_unpark(struct rt_bridge *, int);
static void	bridge_answer_send(struct rt_bridge *, int, uint32_t, const char *, size_t, int,
		    const struct hist_pos *);
static int	bridge_worker_full(struct rt_bridge *, int);
static int	bridge_later(struct rt_bridge *, int, uint32_t, const char *, size_t, int,
		    const char *, uint64_t, int);
static void	bridge_answer(struct rt_bridge *, int, uint32_t, const char *, size_t, int,
		    const char *, uint64_t, int);
static void	bridge_ctl_update(struct rt_bridge *);
static void	bridge_fn_warn(struct rt_bridge *, const char *, const char *);

/* ---- subscriptions ---------------------------------------------------------- */

static void
bridge_subs_free(struct bridge_subs *s)
{
	int	 i;

	for (i = 0; i < s->bs_n; i++)
		free(s->bs_name[i]);
	s->bs_n = 0;
}

static void
bridge_subs_add(const char *name, int pattern, void *arg)
{
	struct bridge_subs	*s = arg;

	if (s->bs_n == CHAN_NS_MAX)
		fatalx("%s: more subscriptions than namespaces", __func__);
	if ((s->bs_name[s->bs_n] = strdup(name)) == NULL)
		fatal("strdup");
	s->bs_pattern[s->bs_n++] = (uint8_t)pattern;
}

static void
bridge_subs_build(struct rt_bridge *b, struct bridge_subs *s)
{
	bridge_subs_free(s);
	/* on_demand: channel by channel instead; a cluster does both */
	if (b->b_dem == NULL || b->b_clu != NULL)
		chan_redis_subscriptions(b->b_conf->c_namespaces, bridge_subs_add, s);
}

static int
bridge_subs_has(const struct bridge_subs *s, const char *name, size_t len, int pattern)
{
	int	 i;

	for (i = 0; i < s->bs_n; i++)
		if (s->bs_pattern[i] == pattern && strlen(s->bs_name[i]) == len &&
		    memcmp(s->bs_name[i], name, len) == 0)
			return 1;
	return 0;
}

static void
bridge_sub_command(struct rt_bridge *b, int subscribe, const char *name, int pattern)
{
	redisAsyncCommand(b->b_sub, bridge_on_message, b, "%s%s %s",
	    pattern ? "P" : "", subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", name);
}

/* The new table's subscriptions are all confirmed: they carry the messages now. */
static void
bridge_switch_finish(struct rt_bridge *b)
{
	int	 i;

	for (i = 0; i < b->b_active.bs_n; i++)
		if (!bridge_subs_has(&b->b_next, b->b_active.bs_name[i],
		    strlen(b->b_active.bs_name[i]), b->b_active.bs_pattern[i]))
			bridge_sub_command(b, 0, b->b_active.bs_name[i],
			    b->b_active.bs_pattern[i]);
	bridge_subs_free(&b->b_active);
	b->b_active = b->b_next;
	b->b_next.bs_n = 0;
	log_info("redis: subscribed to the new namespaces (%d subscriptions)",
	    b->b_active.bs_n);
}

/* A reload changed the namespaces: follow them without a gap. */
static void
bridge_resubscribe(struct rt_bridge *b)
{
	int	 i;

	if (b->b_sub == NULL)
		return;		/* bridge_connect() reads the new table */
	if (!atomic_load(&b->b_rb->rb_redis_up) || b->b_switch_acks > 0) {
		/* still subscribing: start again from the new table */
		log_info("redis: namespaces changed while subscribing: resubscribing");
		bridge_drop(b, b->b_sub);
		return;
	}
	bridge_subs_build(b, &b->b_next);
	for (i = 0; i < b->b_next.bs_n; i++)
		if (!bridge_subs_has(&b->b_active, b->b_next.bs_name[i],
		    strlen(b->b_next.bs_name[i]), b->b_next.bs_pattern[i])) {
			bridge_sub_command(b, 1, b->b_next.bs_name[i], b->b_next.bs_pattern[i]);
			b->b_switch_acks++;
		}
	if (b->b_switch_acks == 0)
		bridge_switch_finish(b);
}

/* ---- state ----------------------------------------------------------------- */

static void
bridge_set_up(struct rt_bridge *b, int up)
{
	if (atomic_load(&b->b_rb->rb_redis_up) == up)
		return;
	atomic_store(&b->b_rb->rb_redis_up, up);
	atomic_store(&b->b_rb->rb_redis_since, util_now_ms());
	/* subscribed at last: positions given while subscribing promised too much */
	if (up)
		bridge_new_epoch(b);
	if (up)
		log_info("redis %s:%d: subscribed, delivering events",
		    b->b_url.ru_host, b->b_url.ru_port);
	if (up) {
		/* canaries sent on the connection that went are not missed ones */
		b->b_canary_seen = b->b_canary_sent;
		b->b_connfail_logged = 0;
		bridge_unpark(b, 0);
	} else if (!b->b_stopping)	/* we hung up ourselves */
		log_warnx("redis %s:%d: down, reconnecting", b->b_url.ru_host,
		    b->b_url.ru_port);
}

static void
bridge_schedule_retry(struct rt_bridge *b)
{
	uint64_t	 max = (uint64_t)b->b_conf->c_redis_reconnect_max;

	/* both connections of one attempt fail together: one doubling */
	if (b->b_retry_at != 0)
		return;
	b->b_backoff = b->b_backoff == 0 ? 100 : b->b_backoff * 2;
	if (b->b_backoff > max)
		b->b_backoff = max;
	b->b_retry_at = util_now_ms() + b->b_backoff;
}

/* Forget a context (freed by hiredis or by us) and plan a reconnect. */
static void
bridge_lost(struct rt_bridge *b, const redisAsyncContext *ac)
{
	if (ac == b->b_sub) {
		b->b_sub = NULL;
		b->b_sub_expect = 0;
		b->b_switch_acks = 0;
		bridge_subs_free(&b->b_next);
		if (b->b_dem != NULL)
			bdem_lost(b->b_dem);
		bridge_new_epoch(b);	/* what Redis publishes now is missed */
		bridge_set_up(b, 0);
		bridge_reads_flush(b, 0);	/* their answers will not come */
	} else if (ac == b->b_cmd) {
		b->b_cmd = NULL;
		b->b_cmd_up = 0;
		bridge_ctl_update(b);
		if (b->b_clu == NULL) {	/* a cluster's library is on its masters */
			b->b_fn_ok = 0;
			atomic_store(&b->b_rb->rb_cluster_function, 0);
		}
	} else
		return;
	b->b_master_known = 0;	/* the master may have moved: ask the sentinels */
	if (!b->b_stopping)
		bridge_schedule_retry(b);
}

static void
bridge_drop(struct rt_bridge *b, redisAsyncContext *ac)
{
	if (ac == NULL)
		return;
	bridge_lost(b, ac);
	redisAsyncFree(ac);
}

static void
bridge_on_connect(const redisAsyncContext *ac, int status)
{
	struct rt_bridge	*b = ac->data;

	if (status != REDIS_OK) {
		uint64_t	 now = util_now_ms();

		/* said at once (a Redis down at start was not), then every 5 min */
		if (b->b_connfail_logged == 0 || now - b->b_connfail_logged >= 300000) {
			b->b_connfail_logged = now;
			log_warnx("redis %s:%d: cannot connect: %s; trying again (up to every %lld ms)",
			    b->b_url.ru_host, b->b_url.ru_port, ac->errstr,
			    (long long)b->b_conf->c_redis_reconnect_max);
		} else
			log_debug("%s: redis connect failed: %s", __func__, ac->errstr);
		bridge_lost(b, ac);	/* hiredis frees it */
		return;
	}
	log_debug("%s: connected to redis", __func__);
	/* control's commands go on it once it is there (after AUTH, queued first) */
	if (ac == b->b_cmd) {
		b->b_cmd_up = 1;
		bridge_ctl_update(b);
	}
}

/*
 * A command for Redis, as redisAsyncCommand() takes it: on b_cmd, or in
 * a cluster, when it has a key, to the master serving the key's slot
 * (fn is then called with ac NULL).  0, or -1 when it was not sent.
 */
static int
bridge_vcommand(struct rt_bridge *b, const char *key, size_t keylen, redisCallbackFn *fn,
    void *priv, const char *fmt, va_list ap)
{
	char	*cmd;
	int	 len, rv;

	if (b->b_clu == NULL || key == NULL)
		return b->b_cmd != NULL && redisvAsyncCommand(b->b_cmd, fn, priv, fmt, ap) ==
		    REDIS_OK ? 0 : -1;
	if ((len = redisvFormatCommand(&cmd, fmt, ap)) < 0)
		return -1;
	rv = bclu_command(b->b_clu, key, keylen, fn, priv, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return rv;
}

static int
bridge_command(struct rt_bridge *b, const char *key, size_t keylen, redisCallbackFn *fn,
    void *priv, const char *fmt, ...)
{
	va_list	 ap;
	int	 rv;

	va_start(ap, fmt);
	rv = bridge_vcommand(b, key, keylen, fn, priv, fmt, ap);
	va_end(ap);
	return rv;
}

/* Control's commands (bctl_send_fn). */
static int
bridge_ctl_send(void *arg, const char *key, redisCallbackFn *fn, void *priv, const char *fmt,
    va_list ap)
{
	return bridge_vcommand(arg, key, key != NULL ? strlen(key) : 0, fn, priv, fmt, ap);
}

/*
 * Control may send when b_cmd is connected and, in a cluster, the
 * command connections to the masters of its keys are ready (another
 * shard away does not stop it): each (re)start of that reads the
 * revocations back and sends what waited.
 */
static void
bridge_ctl_update(struct rt_bridge *b)
{
	const char	*rk, *nk;
	int		 up;

	bctl_keys(b->b_ctl, &rk, &nk);
	up = b->b_cmd_up && !b->b_stopping && (b->b_clu == NULL ||
	    (bclu_cmd_ready(b->b_clu, rk, strlen(rk)) && bclu_cmd_ready(b->b_clu, nk, strlen(nk))));

	if (up == b->b_ctl_up)
		return;
	b->b_ctl_up = up;
	bctl_set_cmd(b->b_ctl, up ? bridge_ctl_send : NULL, b);
}

static void
bridge_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rt_bridge	*b = ac->data;

	if (status != REDIS_OK)
		log_debug("%s: redis connection lost: %s", __func__, ac->errstr);
	bridge_lost(b, ac);
	atomic_fetch_add(&b->b_rb->rb_redis_reconnects, 1);
}

static void
bridge_on_auth(redisAsyncContext *ac, void *r, void *priv)
{
	struct rt_bridge	*b = priv;
	redisReply		*reply = r;

	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		log_warnx("redis AUTH failed: %s", reply->str);
		bridge_drop(b, ac);
	}
}

/* ---- events ---------------------------------------------------------------- */

/*
 * One message to worker w.  Events over the high-water mark are dropped
 * (a stuck worker must not grow the bridge without bound; the offsets
 * show its clients the gap); answers to a worker's request always go, so
 * that it never waits forever, and the worker_timeout bounds a stuck one.
 */
/*
 * Worker w is to forget the positions it learnt from its stream so far:
 * now, or (its queue over ipc_max_buffer) owed until it has room, which
 * bounds the queue of a stuck worker however many events it misses.
 * always: now (ahead of an answer, which always goes).
 */
static void
bridge_pos_reset(struct rt_bridge *b, int w, int always)
{
	struct ipc_hdr	 h;

	if (!always && bout_pending(b->b_out, w) > (size_t)b->b_conf->c_ipc_max_buffer) {
		b->b_reset_owed[w] = 1;
		return;
	}
	b->b_reset_owed[w] = 0;
	ipc_hdr_init(&h, IPC_POS_RESET, 0, (uint32_t)w);
	evbuffer_add(bout_stage(b->b_out, w), &h, sizeof(h));
}

/*
 * Workers answer a subscribe from the positions their stream carried
 * (events, answers).  A position that changed without an event is told
 * to every worker before anything else is written to any of them.
 */
static void
bridge_pos_sync(struct rt_bridge *b)
{
	uint64_t	 n = hist_changes(b->b_hist);
	int		 w;

	if (n == b->b_hist_told)
		return;
	b->b_hist_told = n;
	for (w = 0; w < b->b_reg->r_hdr->rh_nworkers; w++)
		if (b->b_workers[w] != NULL)
			bridge_pos_reset(b, w, 0);
}

static void
bridge_write3(struct rt_bridge *b, int w, uint32_t type, uint32_t peerid, int always,
    const void *a, size_t alen, const void *c, size_t clen, const void *d, size_t dlen)
{
	struct evbuffer	*out;
	struct ipc_hdr	 h;
	int64_t		 held;

	if (b->b_workers[w] == NULL) {
		atomic_fetch_add(&b->b_rb->rb_ipc_drops, 1);
		return;
	}
	bridge_pos_sync(b);
	if (b->b_reset_owed[w])
		bridge_pos_reset(b, w, always);	/* before what follows the hole */
	if (!always && bout_pending(b->b_out, w) > (size_t)b->b_conf->c_ipc_max_buffer) {
		atomic_fetch_add(&b->b_rb->rb_ipc_drops, 1);
		/* a hole in w's stream: what it knows of positions is behind */
		if (type == IPC_EVENT)
			b->b_reset_owed[w] = 1;
		return;
	}
	out = bout_stage(b->b_out, w);
	ipc_hdr_init(&h, type, (uint32_t)(alen + clen + dlen), peerid);
	evbuffer_add(out, &h, sizeof(h));
	evbuffer_add(out, a, alen);
	if (clen > 0)
		evbuffer_add(out, c, clen);
	if (dlen > 0)
		evbuffer_add(out, d, dlen);
	held = (int64_t)bout_pending(b->b_out, w);
	if (held > atomic_load_explicit(&b->b_rb->rb_ipc_buffer_peak, memory_order_relaxed))
		atomic_store_explicit(&b->b_rb->rb_ipc_buffer_peak, held, memory_order_relaxed);
}

static void
bridge_write(struct rt_bridge *b, int w, uint32_t type, uint32_t peerid, int always,
    const void *a, size_t alen, const void *c, size_t clen)
{
	bridge_write3(b, w, type, peerid, always, a, alen, c, clen, NULL, 0);
}

static void
bridge_send(struct rt_bridge *b, int w, uint32_t type, const void *a, size_t alen,
    const void *c, size_t clen)
{
	bridge_write(b, w, type, (uint32_t)w, 0, a, alen, c, clen);
}

/*
 * Room for an event of need bytes.  The buffer only grows: it is as large
 * as the largest event so far, which max_event_size bounds.
 */
static int
bridge_json_grow(struct rt_bridge *b, size_t need)
{
	size_t	 cap = b->b_jsoncap;
	char	*p;

	while (cap < need)
		cap = cap < 4096 ? 4096 : cap * 2;
	if ((p = realloc(b->b_json, cap)) == NULL) {
		log_warnx("%s: no memory for an event of %zu bytes", __func__, need);
		return -1;
	}
	b->b_json = p;
	b->b_jsoncap = cap;
	return 0;
}

/* A channel name from Redis, fit for the log. */
static void
bridge_chan_name(char *out, size_t outlen, const char *ch, size_t chlen)
{
	if (chan_name_valid(ch, chlen))
		snprintf(out, outlen, "%.*s", (int)chlen, ch);
	else
		snprintf(out, outlen, "(an invalid name of %zu bytes)", chlen);
}

/*
 * An event over max_event_size: counted, dropped before a frame is built,
 * and logged at most once a second; the drops in between are summed up in
 * the next line, or by the tick once the second is over.
 */
static void
bridge_too_large(struct rt_bridge *b, const char *ch, size_t chlen, size_t len)
{
	uint64_t	 now = util_now_ms();
	char		 name[RT_CHANNEL_MAX + 64], more[64] = "";

	atomic_fetch_add(&b->b_rb->rb_events_too_large, 1);
	if (now - b->b_big_logged_at < BRIDGE_LOG_EVERY_MS) {
		b->b_big_unlogged++;
		b->b_big_len = len;
		bridge_chan_name(b->b_big_chan, sizeof(b->b_big_chan), ch, chlen);
		return;
	}
	bridge_chan_name(name, sizeof(name), ch, chlen);
	if (b->b_big_unlogged > 0)
		snprintf(more, sizeof(more), " (and %llu more since the last report)",
		    (unsigned long long)b->b_big_unlogged);
	log_warnx("event of %zu bytes on %s is over max_event_size (%lld): dropped%s",
	    len, name, (long long)b->b_conf->c_max_event_size, more);
	b->b_big_logged_at = now;
	b->b_big_unlogged = 0;
}

static void
bridge_too_large_report(struct rt_bridge *b, uint64_t now)
{
	if (b->b_big_unlogged == 0 || now - b->b_big_logged_at < BRIDGE_LOG_EVERY_MS)
		return;
	log_warnx("%llu more events over max_event_size (%lld) dropped, the last of"
	    " %zu bytes on %s", (unsigned long long)b->b_big_unlogged,
	    (long long)b->b_conf->c_max_event_size, b->b_big_len, b->b_big_chan);
	b->b_big_logged_at = now;
	b->b_big_unlogged = 0;
}

/*
 * The event's JSON in b_json (its position when pos is not NULL, its
 * timestamp at ms when not 0); its length, or 0.
 */
static size_t
bridge_build(struct rt_bridge *b, const char *ch, size_t chlen, const char *data,
    size_t len, const struct hist_pos *pos, uint64_t at)
{
	const char	*epoch = pos != NULL ? pos->hp_epoch : NULL;
	uint64_t	 offset = pos != NULL ? pos->hp_offset : 0;
	struct timeval	 tv, *tvp = NULL;
	size_t		 jlen;

	if (at != 0) {
		tv.tv_sec = (time_t)(at / 1000);
		tv.tv_usec = (suseconds_t)(at % 1000) * 1000;
		tvp = &tv;
	}
	jlen = proto_event_at(b->b_json, b->b_jsoncap, ch, chlen, data, len, tvp, epoch, offset);
	if (jlen > b->b_jsoncap) {
		if (bridge_json_grow(b, jlen) == -1)
			return 0;
		jlen = proto_event_at(b->b_json, b->b_jsoncap, ch, chlen, data, len, tvp,
		    epoch, offset);
	}
	return jlen;
}

/* 1 when a worker of mask has a connection that negotiated permessage-deflate. */
static int
bridge_deflate_wanted(struct rt_bridge *b, uint64_t mask)
{
	int	 w;

	for (w = 0; w < b->b_reg->r_hdr->rh_nworkers; w++)
		if ((mask & ((uint64_t)1 << w)) &&
		    atomic_load(&reg_worker(b->b_reg, w)->rw_deflate_conns) > 0)
			return 1;
	return 0;
}

/*
 * The event's compressed frame (RSV1, raw deflate, 00 00 ff ff removed),
 * built once for every worker: *zlen bytes, or NULL (compression off, a
 * small event, nobody to read it, or a failure: plain only).
 */
static const uint8_t *
bridge_compress(struct rt_bridge *b, size_t jlen, uint64_t mask, size_t *zlen)
{
	struct rt_config	*conf = b->b_conf;
	uint8_t			*z, hdr[WS_HEADER_MAX];
	size_t			 n, hlen;

	if (!conf->c_compression || jlen < (size_t)conf->c_compression_min_size ||
	    !bridge_deflate_wanted(b, mask))
		return NULL;
	if (b->b_deflate.dc_z != NULL && b->b_deflate.dc_level != conf->c_compression_level)
		deflate_ctx_free(&b->b_deflate);	/* a reload changed the level */
	if ((b->b_deflate.dc_z == NULL && deflate_ctx_init(&b->b_deflate,
	    conf->c_compression_level, conf->c_compression_window_bits) == -1) ||
	    deflate_compress(&b->b_deflate, b->b_json, jlen, &z, &n) == -1) {
		atomic_fetch_add(&b->b_rb->rb_compress_errors, 1);
		return NULL;
	}
	hlen = ws_frame_header_rsv1(hdr, WS_OP_TEXT, n);
	memcpy(z - hlen, hdr, hlen);	/* DEFLATE_HEADROOM > WS_HEADER_MAX */
	atomic_fetch_add(&b->b_rb->rb_compressed, 1);
	atomic_fetch_add(&b->b_rb->rb_compress_in, (int64_t)jlen);
	atomic_fetch_add(&b->b_rb->rb_compress_out, (int64_t)n);
	*zlen = hlen + n;
	return z - hlen;
}

/*
 * Deliver one event of ns's channel ch, at pos (kept for replay) when
 * not NULL; at (ms, from Redis) when not 0, else now.  The plain frame
 * and, when some subscriber negotiated permessage-deflate, the compressed
 * one are built once whatever the number of subscribers; a worker gets the
 * compressed one only when it has such a connection.
 */
static void
bridge_deliver(struct rt_bridge *b, const char *ch, size_t chlen, const char *data,
    size_t len, const struct chan_ns *ns, const struct hist_pos *pos, uint64_t at)
{
	uint64_t		 received_us = util_now_us(), now = util_now_ms();
	uint8_t			 pre[IPC_EVENT_PREFIX_MAX + WS_HEADER_MAX];
	uint8_t			 zpre[IPC_EVENT_PREFIX_MAX + WS_HEADER_MAX];
	const uint8_t		*zf;
	size_t			 plen, hlen, jlen, zlen = 0;
	uint64_t		 mask = 0;
	int			 w;
	int64_t			 subscribers;

	subscribers = ns != NULL ? reg_chan_route(b->b_reg, ch, chlen, &mask) : 0;
	if (pos == NULL && (subscribers == 0 || mask == 0)) {
		atomic_fetch_add(&b->b_rb->rb_events_unrouted, 1);
		return;
	}
	if ((jlen = bridge_build(b, ch, chlen, data, len, pos, at)) == 0)
		return;
	plen = ipc_event_prefix(pre, received_us, ch, chlen, pos != NULL ? pos->hp_epoch : NULL,
	    pos != NULL ? pos->hp_offset : 0, 0);
	hlen = ws_frame_header(pre + plen, WS_OP_TEXT, 1, jlen);
	/* history keeps the plain frame: a replay is valid for any subscriber */
	if (pos != NULL)
		hist_append(b->b_hist, ch, chlen, pos->hp_offset, pre + plen, hlen, b->b_json,
		    jlen, ns->ns_history, ns->ns_history_ttl, at != 0 && at < now ? at : now);
	if (subscribers == 0 || mask == 0) {
		atomic_fetch_add(&b->b_rb->rb_events_unrouted, 1);
		return;
	}
	if ((zf = bridge_compress(b, jlen, mask, &zlen)) != NULL) {
		ipc_event_prefix(zpre, received_us, ch, chlen, pos != NULL ? pos->hp_epoch : NULL,
		    pos != NULL ? pos->hp_offset : 0, zlen);
		memcpy(zpre + plen, pre + plen, hlen);
	}
	plen += hlen;
	for (w = 0; w < b->b_reg->r_hdr->rh_nworkers; w++) {
		if (!(mask & ((uint64_t)1 << w)))
			continue;
		if (zf != NULL && atomic_load(&reg_worker(b->b_reg, w)->rw_deflate_conns) > 0)
			bridge_write3(b, w, IPC_EVENT, (uint32_t)w, 0, zpre, plen, b->b_json, jlen,
			    zf, zlen);
		else
			bridge_send(b, w, IPC_EVENT, pre, plen, b->b_json, jlen);
		atomic_fetch_add(&b->b_rb->rb_events_routed, 1);
	}
}

/* An event that Redis gives or not; 0 when it may go on. */
static int
bridge_event_in(struct rt_bridge *b, const char *ch, size_t chlen, size_t len)
{
	atomic_fetch_add(&b->b_rb->rb_events_in, 1);
	if (len > (uint64_t)b->b_conf->c_max_event_size) {
		bridge_too_large(b, ch, chlen, len);
		return -1;
	}
	return 0;
}

/*
 * An event dropped at max_event_size on a channel with history still
 * takes its position (epoch NULL: the node's next; an envelope's: its
 * own), so that subscribers see the hole in the offsets and a since from
 * before it answers recovered false, never a replay that misses it.
 */
static void
bridge_hole(struct rt_bridge *b, const char *ch, size_t chlen, const char *epoch,
    uint64_t offset)
{
	const struct chan_ns	*ns;

	if (chan_name_valid(ch, chlen) &&
	    (ns = chan_match(b->b_conf->c_namespaces, ch, chlen)) != NULL &&
	    ns->ns_history > 0 && hist_hole(b->b_hist, ch, chlen, epoch, offset) == 0)
		bridge_pos_sync(b);	/* workers forget the position they hold */
}

/* A plain PUBLISH: node positions where the namespace has history. */
static void
bridge_route(struct rt_bridge *b, const char *ch, size_t chlen, const char *data, size_t len)
{
	const struct chan_ns	*ns = NULL;
	struct hist_pos		 pos;
	int			 positioned = 0;

	if (bridge_event_in(b, ch, chlen, len) == -1) {
		bridge_hole(b, ch, chlen, NULL, 0);
		return;
	}
	if (chan_name_valid(ch, chlen) &&
	    (ns = chan_match(b->b_conf->c_namespaces, ch, chlen)) != NULL &&
	    ns->ns_history > 0 && hist_next(b->b_hist, ch, chlen, &pos) == 0)
		positioned = 1;
	bridge_deliver(b, ch, chlen, data, len, ns, positioned ? &pos : NULL, 0);
	bridge_pos_sync(b);	/* a record made for it may have pushed one out */
}

/*
 * An envelope of realtimed_publish: the event at the position Redis gave
 * it.  One already delivered (an answer from Redis brought it first) goes
 * no further.  A namespace without history here (the library came from a
 * node with other namespace lines) gets it as a plain event.
 */
static void
bridge_envelope(struct rt_bridge *b, const char *rch, size_t rchlen, const char *msg,
    size_t len)
{
	struct cluster_event	 ev;
	const struct chan_ns	*ns;
	struct hist_pos		 pos;
	int			 rv = -1;

	if (cluster_envelope_parse(rch, rchlen, msg, len, &ev) == -1) {
		atomic_fetch_add(&b->b_rb->rb_cluster_bad, 1);
		return;
	}
	if (bridge_event_in(b, ev.ce_channel, ev.ce_chlen, ev.ce_len) == -1) {
		bridge_hole(b, ev.ce_channel, ev.ce_chlen, ev.ce_epoch, ev.ce_offset);
		return;
	}
	atomic_fetch_add(&b->b_rb->rb_cluster_events, 1);
	ns = chan_match(b->b_conf->c_namespaces, ev.ce_channel, ev.ce_chlen);
	if (ns != NULL && ns->ns_history > 0 &&
	    (rv = hist_cluster_next(b->b_hist, ev.ce_channel, ev.ce_chlen, ev.ce_epoch,
	    ev.ce_offset, &pos)) == 1)
		return;
	bridge_deliver(b, ev.ce_channel, ev.ce_chlen, ev.ce_data, ev.ce_len, ns,
	    rv == 0 ? &pos : NULL, ev.ce_at);
	bridge_pos_sync(b);
}

static void
bridge_canary_seen(struct rt_bridge *b, const char *data, size_t len)
{
	char		 buf[32];
	uint64_t	 seq;
	int		 w;

	if (len == 0 || len >= sizeof(buf))
		return;
	memcpy(buf, data, len);
	buf[len] = '\0';
	seq = strtoull(buf, NULL, 10);
	if (seq > b->b_canary_seen)
		b->b_canary_seen = seq;
	b->b_canary_missed = 0;
	for (w = 0; w < b->b_reg->r_hdr->rh_nworkers; w++)
		bridge_send(b, w, IPC_CANARY, &seq, sizeof(seq), NULL, 0);
}

/* ---- on_demand subscriptions --------------------------------------------- */

/* One of the bridge's own channels, never a client's on_demand one. */
static int
bridge_private(const struct rt_bridge *b, const char *ch, size_t chlen)
{
	return (strlen(b->b_canary) == chlen && memcmp(b->b_canary, ch, chlen) == 0) ||
	    (strlen(b->b_reply) == chlen && memcmp(b->b_reply, ch, chlen) == 0) ||
	    (strlen(b->b_conf->c_control_channel) == chlen &&
	    memcmp(b->b_conf->c_control_channel, ch, chlen) == 0);
}

/* A (un)subscribe reply for an on_demand channel: 1 when it was one. */
static int
bridge_demand_ack(struct rt_bridge *b, const redisReply *reply)
{
	redisReply	**e = reply->element;
	int		 sub, counted;

	sub = strcmp(e[0]->str, "subscribe") == 0;
	if ((!sub && strcmp(e[0]->str, "unsubscribe") != 0) || e[1]->type != REDIS_REPLY_STRING ||
	    bridge_private(b, e[1]->str, e[1]->len) ||
	    !bdem_ack(b->b_dem, e[1]->str, e[1]->len, sub, &counted))
		return 0;
	if (counted && ++b->b_sub_acks == b->b_sub_expect) {
		b->b_backoff = 0;
		bridge_set_up(b, 1);
	}
	return 1;
}

/*
 * Cluster mode: each channel on the shard serving its slot, one a
 * command (those of one SSUBSCRIBE must share a slot).  A channel whose
 * shard is not connected is left subscribing: bridge_cluster_changed()
 * starts it again when the shard is there.
 */
static void
bridge_cluster_command(struct rt_bridge *b, int sub, const char **names, const size_t *lens,
    int n)
{
	const char	*argv[2];
	size_t		 argl[2];
	int		 i, id;

	argv[0] = sub ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
	argl[0] = strlen(argv[0]);
	for (i = 0; i < n; i++) {
		id = bclu_owner(b->b_clu, names[i], lens[i]);
		argv[1] = names[i];
		argl[1] = lens[i];
		if (id >= 0 && bclu_send(b->b_clu, id, 2, argv, argl) == 0 && sub)
			bdem_tag(b->b_dem, names[i], lens[i], id);
	}
}

static void
bridge_demand_command(void *arg, int sub, const char **names, const size_t *lens, int n)
{
	struct rt_bridge	*b = arg;
	const char		*argv[1 + 256];
	size_t			 argl[1 + 256];

	if (b->b_clu != NULL) {
		bridge_cluster_command(b, sub, names, lens, n);
		return;
	}
	if (b->b_sub == NULL || n > 256)
		return;
	argv[0] = sub ? "SUBSCRIBE" : "UNSUBSCRIBE";
	argl[0] = strlen(argv[0]);
	memcpy(argv + 1, names, (size_t)n * sizeof(*names));
	memcpy(argl + 1, lens, (size_t)n * sizeof(*lens));
	redisAsyncCommandArgv(b->b_sub, bridge_on_message, b, n + 1, argv, argl);
}

static void
bridge_demand_answer(void *arg, const char *ch, size_t chlen, const struct bdem_wait *wt,
    int refused)
{
	struct rt_bridge	*b = arg;
	struct hist_pos		 none;

	if (refused) {
		none.hp_epoch[0] = '\0';
		none.hp_offset = 0;
		bridge_answer_send(b, wt->dw_w, wt->dw_req, ch, chlen, IPC_POS_REFUSED, &none);
		bridge_write(b, wt->dw_w, IPC_POS_END, wt->dw_req, 1, NULL, 0, NULL, 0);
		return;
	}
	bridge_answer(b, wt->dw_w, wt->dw_req, ch, chlen, wt->dw_since, wt->dw_epoch,
	    wt->dw_offset, 1);
}

/*
 * What this node knew of ch's node positions is from before a time its
 * events did not come (PROTOCOL.md: the epoch changes when events may
 * have been missed): the next position is in a new epoch, and a since
 * from before it is answered recovered:false, never a replay with a hole.
 */
static void
bridge_demand_joined(void *arg, const char *ch, size_t chlen)
{
	struct rt_bridge	*b = arg;

	if (b->b_hist != NULL && hist_forget(b->b_hist, ch, chlen))
		log_debug("%s: %.*s: subscribed again: node position starts anew", __func__,
		    (int)chlen, ch);
}

/* ---- cluster: the shards' subscriptions ---------------------------------- */

struct bridge_pred {
	struct rt_bridge	*bp_b;
	int			 bp_id;
	int			 bp_slot;
};

/* Subscribed (or subscribing) elsewhere than on the shard serving it now? */
static int
bridge_cluster_misplaced(void *arg, const char *ch, size_t chlen, int32_t tag)
{
	struct bridge_pred	*p = arg;

	return tag != bclu_owner(p->bp_b->b_clu, ch, chlen);
}

static int
bridge_cluster_on(void *arg, const char *ch, size_t chlen, int32_t tag)
{
	struct bridge_pred	*p = arg;

	return tag == p->bp_id && (p->bp_slot < 0 || rcluster_keyslot(ch, chlen) == p->bp_slot);
}

/* A new map or a shard ready: every channel on the shard that serves it. */
static void
bridge_cluster_changed(void *arg)
{
	struct rt_bridge	*b = arg;
	struct bridge_pred	 p = { b, -1, -1 };

	bdem_reset_if(b->b_dem, bridge_cluster_misplaced, &p);
	bdem_connected(b->b_dem);
}

static void
bridge_cluster_lost(void *arg, int id)
{
	struct rt_bridge	*b = arg;
	struct bridge_pred	 p = { b, id, -1 };

	bdem_reset_if(b->b_dem, bridge_cluster_on, &p);
	bridge_new_epoch(b);	/* what the shard publishes now is missed */
}

static void
bridge_cluster_moved(void *arg, int id, int slot)
{
	struct rt_bridge	*b = arg;
	struct bridge_pred	 p = { b, id, slot };

	bdem_reset_if(b->b_dem, bridge_cluster_on, &p);
}

/* A shard's ssubscribe, sunsubscribe or smessage. */
static void
bridge_cluster_reply(void *arg, int id, const redisReply *r)
{
	struct rt_bridge	*b = arg;
	redisReply		**e = r->element;
	int			 counted;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || e[0]->type != REDIS_REPLY_STRING ||
	    e[1]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(e[0]->str, "smessage") == 0 && e[2]->type == REDIS_REPLY_STRING) {
		if (bdem_has_tag(b->b_dem, e[1]->str, e[1]->len, id))
			bridge_route(b, e[1]->str, e[1]->len, e[2]->str, e[2]->len);
	} else if (strcmp(e[0]->str, "ssubscribe") == 0)
		bdem_ack(b->b_dem, e[1]->str, e[1]->len, 1, &counted);
	else if (strcmp(e[0]->str, "sunsubscribe") == 0) {
		if (bdem_reset_one(b->b_dem, e[1]->str, e[1]->len, id)) {
			/* Redis's own: the slot moved (failover, migration) */
			atomic_fetch_add(&b->b_rb->rb_rcluster_resubscribes, 1);
			bridge_new_epoch(b);
			bclu_refresh(b->b_clu);
		} else
			bdem_ack(b->b_dem, e[1]->str, e[1]->len, 0, &counted);
	}
}

/*
 * The masters' command connections or their library changed: cluster
 * positions once every master has the library; control while the
 * masters of its keys are there.
 */
static void
bridge_cluster_cmd(void *arg)
{
	struct rt_bridge	*b = arg;
	int			 lib = bclu_library(b->b_clu);

	if (lib == 1 && !b->b_fn_ok)
		log_info("redis cluster: function library realtimed loaded on every master"
		    " (realtimed_publish)");
	if (lib == -1 && !b->b_fn_failed) {
		b->b_fn_logged = 0;
		bridge_fn_warn(b, "FUNCTION LOAD of the realtimed library failed on a master",
		    "cluster positions are off until it is loaded");
	}
	/*
	 * Loaded once on every master, it stays so: a new command connection
	 * (a master back, or promoted) loads it before any other command, and
	 * a master away answers nothing anyway.
	 */
	if (lib != 0) {
		b->b_fn_ok = lib == 1;
		b->b_fn_failed = lib == -1;
	}
	atomic_store(&b->b_rb->rb_cluster_function, b->b_fn_ok);
	if (lib != 0)
		bridge_unpark(b, lib == -1);
	bridge_ctl_update(b);
}

static void
bridge_on_message(redisAsyncContext *ac, void *r, void *priv)
{
	struct rt_bridge	*b = priv;
	redisReply		*reply = r, **e;
	size_t			 n;

	(void)ac;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;
	e = reply->element;
	n = reply->elements;
	if (e[0]->type != REDIS_REPLY_STRING)
		return;
	if (b->b_dem != NULL && b->b_clu == NULL && bridge_demand_ack(b, reply))
		return;
	if (!strcmp(e[0]->str, "subscribe") || !strcmp(e[0]->str, "psubscribe")) {
		if (b->b_switch_acks > 0) {
			if (--b->b_switch_acks == 0)
				bridge_switch_finish(b);
			return;
		}
		if (++b->b_sub_acks == b->b_sub_expect) {
			b->b_backoff = 0;
			bridge_set_up(b, 1);
		}
		return;
	}
	if (!strcmp(e[0]->str, "message") && n == 3 && e[1]->type == REDIS_REPLY_STRING &&
	    e[2]->type == REDIS_REPLY_STRING) {
		if (strcmp(e[1]->str, b->b_canary) == 0)
			bridge_canary_seen(b, e[2]->str, e[2]->len);
		else if (strcmp(e[1]->str, b->b_conf->c_control_channel) == 0)
			bctl_message(b->b_ctl, e[2]->str, e[2]->len);
		else if (strcmp(e[1]->str, b->b_reply) == 0)
			bridge_read_answer(b, e[2]->str, e[2]->len);
		else if (bridge_subs_has(&b->b_active, e[1]->str, e[1]->len, 0) ||
		    (b->b_dem != NULL && b->b_clu == NULL &&
		    bdem_has(b->b_dem, e[1]->str, e[1]->len)))
			bridge_route(b, e[1]->str, e[1]->len, e[2]->str, e[2]->len);
	} else if (!strcmp(e[0]->str, "pmessage") && n == 4 &&
	    e[1]->type == REDIS_REPLY_STRING && e[2]->type == REDIS_REPLY_STRING &&
	    e[3]->type == REDIS_REPLY_STRING) {
		if (strcmp(e[1]->str, CLUSTER_ENVELOPES) == 0)
			bridge_envelope(b, e[2]->str, e[2]->len, e[3]->str, e[3]->len);
		/* our own channels, under a namespace pattern such as "*" */
		else if (strcmp(e[2]->str, b->b_canary) != 0 &&
		    strcmp(e[2]->str, b->b_reply) != 0 &&
		    strcmp(e[2]->str, b->b_conf->c_control_channel) != 0 &&
		    strncmp(e[2]->str, CLUSTER_ENV_PREFIX, sizeof(CLUSTER_ENV_PREFIX) - 1) != 0 &&
		    bridge_subs_has(&b->b_active, e[1]->str, e[1]->len, 1))
			bridge_route(b, e[2]->str, e[2]->len, e[3]->str, e[3]->len);
	}
}

/* ---- positions ---------------------------------------------------------------- */

/*
 * A new node epoch: the subscription is new, so events may have been
 * missed since the last one; every position starts again.
 */
static void
bridge_new_epoch(struct rt_bridge *b)
{
	static const char	 digits[] =
	    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned char		 r[8];
	char			 epoch[sizeof(r) + 1];
	size_t			 i;

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("%s: RAND_bytes() failed", __func__);
	for (i = 0; i < sizeof(r); i++)
		epoch[i] = digits[r[i] % 62];
	epoch[i] = '\0';
	hist_reset(b->b_hist, epoch);
	bridge_pos_sync(b);
	atomic_fetch_add(&b->b_rb->rb_epochs, 1);
	log_debug("%s: node epoch %s", __func__, epoch);
}

static void
bridge_publish_history(struct rt_bridge *b)
{
	struct hist_stats	 st;

	hist_stats(b->b_hist, &st);
	atomic_store(&b->b_rb->rb_history_memory, st.hs_memory);
	atomic_store(&b->b_rb->rb_history_events, st.hs_events);
	atomic_store(&b->b_rb->rb_history_channels, st.hs_channels);
	atomic_store(&b->b_rb->rb_history_evicted, (int64_t)st.hs_evicted);
	atomic_store(&b->b_rb->rb_history_chans_evicted, (int64_t)st.hs_channels_evicted);
}

struct bridge_replay {
	struct rt_bridge	*br_b;
	int			 br_w;
	uint32_t		 br_req;
};

static void
bridge_replay_size(const void *frame, size_t len, uint64_t offset, void *arg)
{
	(void)frame;
	(void)offset;
	*(uint64_t *)arg += len;
}

static void
bridge_replay_one(const void *frame, size_t len, uint64_t offset, void *arg)
{
	struct bridge_replay	*r = arg;

	(void)offset;
	bridge_write(r->br_b, r->br_w, IPC_REPLAY, r->br_req, 1, frame, len, NULL, 0);
}

/* An event read from Redis kept for replay, as bridge_deliver() keeps a live one. */
static int
bridge_keep(struct rt_bridge *b, const char *ch, size_t chlen, const struct chan_ns *ns,
    const struct cluster_event *ev, const struct hist_pos *pos)
{
	uint8_t		 head[WS_HEADER_MAX];
	size_t		 jlen, hlen;
	uint64_t	 now = util_now_ms();

	if (ev->ce_len > (uint64_t)b->b_conf->c_max_event_size ||
	    (jlen = bridge_build(b, ch, chlen, ev->ce_data, ev->ce_len, pos, ev->ce_at)) == 0)
		return -1;
	hlen = ws_frame_header(head, WS_OP_TEXT, 1, jlen);
	hist_append(b->b_hist, ch, chlen, pos->hp_offset, head, hlen, b->b_json, jlen,
	    ns->ns_history, ns->ns_history_ttl, ev->ce_at < now ? ev->ce_at : now);
	return 0;
}

/* The answer to worker w's request req, then the end of its piece of the stream. */
static void
bridge_answer_send(struct rt_bridge *b, int w, uint32_t req, const char *ch, size_t chlen,
    int flag, const struct hist_pos *pos)
{
	struct ipc_pos	 ans;
	uint8_t		 buf[IPC_POS_MAX];

	ans.ip_flag = (uint8_t)flag;
	ans.ip_offset = pos->hp_offset;
	ans.ip_epoch = pos->hp_epoch;
	ans.ip_epochlen = strlen(pos->hp_epoch);
	ans.ip_channel = ch;
	ans.ip_chlen = chlen;
	bridge_write(b, w, IPC_POS, req, 1, buf, ipc_pos_encode(buf, &ans), NULL, 0);
}

/* May a position be read from Redis now? */
static int
bridge_can_read(const struct rt_bridge *b)
{
	return b->b_fn_ok && b->b_cmd != NULL && b->b_sub != NULL &&
	    atomic_load(&b->b_rb->rb_redis_up);
}

static int	bridge_read_ask(struct rt_bridge *, int, uint32_t, const char *, size_t, int,
		    const char *, uint64_t);

static void
bridge_wait_set(struct bridge_wait *wt, int w, uint32_t req, int since, const char *epoch,
    uint64_t offset)
{
	wt->wt_w = w;
	wt->wt_req = req;
	wt->wt_since = (uint8_t)since;
	wt->wt_offset = offset;
	snprintf(wt->wt_epoch, sizeof(wt->wt_epoch), "%s", epoch);
}

/* A request kept at the end of a list of them, at most max long: 0, or -1. */
static int
bridge_park_add(struct bridge_park **list, size_t *n, size_t *cap, size_t max, int w,
    uint32_t req, const char *ch, size_t chlen, int since, const char *epoch,
    uint64_t offset, int ask)
{
	struct bridge_park	*pk;
	size_t			 ncap;

	if (*n == *cap) {
		ncap = *cap ? *cap * 2 : 64;
		if (ncap > max || (pk = reallocarray(*list, ncap, sizeof(*pk))) == NULL)
			return -1;
		*list = pk;
		*cap = ncap;
	}
	pk = &(*list)[(*n)++];
	bridge_wait_set(&pk->pk_wt, w, req, since, epoch, offset);
	pk->pk_at = util_now_ms();
	pk->pk_ask = ask;
	memcpy(pk->pk_ch, ch, chlen);
	pk->pk_ch[chlen] = '\0';
	pk->pk_chlen = chlen;
	return 0;
}

/*
 * A request that comes while the bridge is still connecting to Redis
 * (a new bridge, a reconnect in progress, the library being loaded)
 * waits for it, at most redis_timeout: answered now, it could give
 * only a position the first subscription to Redis ends at once.  0 when
 * parked; -1 when it is to be answered now (Redis is there, or not
 * coming soon, or it cannot wait).
 */
static int
bridge_park(struct rt_bridge *b, int w, uint32_t req, const char *ch, size_t chlen,
    int since, const char *epoch, uint64_t offset)
{
	if (bridge_can_read(b) || b->b_fn_failed || b->b_sub == NULL || b->b_cmd == NULL ||
	    b->b_stopping)
		return -1;
	if (bridge_park_add(&b->b_park, &b->b_npark, &b->b_parkcap, BRIDGE_PARK_MAX, w, req,
	    ch, chlen, since, epoch, offset, 1) == -1) {
		atomic_fetch_add(&b->b_rb->rb_redis_waits_full, 1);
		return -1;
	}
	return 0;
}

/*
 * Redis is there (or will not be soon: force): the parked requests are
 * answered, in the order they came.  The list is taken first: an
 * answer may park again.
 */
static void
bridge_unpark(struct rt_bridge *b, int force)
{
	struct bridge_park	*pk = b->b_park;
	size_t			 n = b->b_npark, i;

	if (n == 0 || (!force && !bridge_can_read(b)))
		return;
	b->b_park = NULL;
	b->b_npark = b->b_parkcap = 0;
	for (i = 0; i < n; i++)
		bridge_answer(b, pk[i].pk_wt.wt_w, pk[i].pk_wt.wt_req, pk[i].pk_ch,
		    pk[i].pk_chlen, pk[i].pk_wt.wt_since, pk[i].pk_wt.wt_epoch,
		    pk[i].pk_wt.wt_offset, !force);
	free(pk);
}

/* Parked longer than redis_timeout: answered without Redis. */
static void
bridge_unpark_old(struct rt_bridge *b, uint64_t now)
{
	if (b->b_npark > 0 && now - b->b_park[0].pk_at > (uint64_t)b->b_conf->c_redis_timeout)
		bridge_unpark(b, 1);
}

/*
 * Worker w asks where channel ch is (request req), with since for a
 * replay of what follows (epoch, offset): the answer, the replayed frames
 * and the end go out in one piece of its event stream.  With ask, a
 * channel this node knows nothing of yet, or a cluster position whose
 * events are in Redis only, is read from Redis first (the answer then
 * comes from bridge_read_answer()).
 */
static void
bridge_answer_now(struct rt_bridge *b, int w, uint32_t req, const char *ch, size_t chlen,
    int since, const char *epoch, uint64_t offset, int ask)
{
	const struct chan_ns	*ns;
	struct bridge_replay	 r = { b, w, req };
	struct hist_pos		 pos;
	int64_t			 ttl;
	uint64_t		 now = util_now_ms(), bytes = 0;
	int			 rv = 0, flag;

	ns = chan_match(b->b_conf->c_namespaces, ch, chlen);
	ttl = ns != NULL ? ns->ns_history_ttl : 0;
	if (ns == NULL || ns->ns_history == 0) {
		/* the worker's table had history, ours (reloaded) has not */
		flag = since ? IPC_POS_UNRECOVERED : IPC_POS_PLAIN;
		pos.hp_epoch[0] = '\0';
		pos.hp_offset = 0;
	} else if (ask && bridge_park(b, w, req, ch, chlen, since, epoch, offset) == 0) {
		return;		/* answered once Redis is there */
	} else if (since) {
		rv = hist_replay(b->b_hist, ch, chlen, epoch, offset, ttl, now, &pos,
		    bridge_replay_size, &bytes);
		if (ask && (rv == 2 || hist_mode(b->b_hist, ch, chlen) == HIST_NONE) &&
		    bridge_read_ask(b, w, req, ch, chlen, since, epoch, offset) == 0)
			return;
		flag = rv == 1 ? IPC_POS_RECOVERED : IPC_POS_UNRECOVERED;
		/* more than the client may hold: a slow consumer, nothing shipped */
		if (rv == 1 && bytes > (uint64_t)b->b_conf->c_max_output_buffer)
			flag = IPC_POS_TOO_LARGE;
		atomic_fetch_add(rv == 1 ? &b->b_rb->rb_recovered : &b->b_rb->rb_unrecovered, 1);
	} else {
		if (ask && hist_mode(b->b_hist, ch, chlen) == HIST_NONE &&
		    bridge_read_ask(b, w, req, ch, chlen, 0, "", 0) == 0)
			return;
		rv = hist_position(b->b_hist, ch, chlen, &pos);
		flag = IPC_POS_PLAIN;
	}
	if (rv == -1) {
		pos.hp_epoch[0] = '\0';	/* out of memory: no position to give */
		pos.hp_offset = 0;
	}
	bridge_answer_send(b, w, req, ch, chlen, flag, &pos);
	if (flag == IPC_POS_RECOVERED)
		hist_replay(b->b_hist, ch, chlen, epoch, offset, ttl, now, &pos,
		    bridge_replay_one, &r);
	bridge_write(b, w, IPC_POS_END, req, 1, NULL, 0, NULL, 0);
}

/*
 * The same, unless w has no room or answers already wait for it: then
 * later, after those, as if asked then (a replay is a copy).
 */
static void
bridge_answer(struct rt_bridge *b, int w, uint32_t req, const char *ch, size_t chlen,
    int since, const char *epoch, uint64_t offset, int ask)
{
	if ((b->b_wrd[w].r_nlater > 0 || bridge_worker_full(b, w)) &&
	    bridge_later(b, w, req, ch, chlen, since, epoch, offset, ask) == 0)
		return;
	bridge_answer_now(b, w, req, ch, chlen, since, epoch, offset, ask);
}

static void
bridge_position(struct rt_bridge *b, int w, uint32_t req, const struct ipc_pos *rq)
{
	char	 ch[RT_CHANNEL_MAX + 1], epoch[HIST_EPOCH_MAX + 1];

	memcpy(ch, rq->ip_channel, rq->ip_chlen);
	ch[rq->ip_chlen] = '\0';
	/* an epoch too long to be ours matches none */
	snprintf(epoch, sizeof(epoch), "%.*s", rq->ip_epochlen > HIST_EPOCH_MAX ? 0 :
	    (int)rq->ip_epochlen, rq->ip_epoch);
	if (b->b_dem != NULL) {
		struct bdem_wait wt = { w, req, rq->ip_flag != 0, rq->ip_offset, util_now_ms(), "" };

		snprintf(wt.dw_epoch, sizeof(wt.dw_epoch), "%s", epoch);
		if (bridge_private(b, ch, rq->ip_chlen))
			bridge_demand_answer(b, ch, rq->ip_chlen, &wt, 1);
		else	/* answered once Redis confirms the subscription */
			bdem_want(b->b_dem, ch, rq->ip_chlen, &wt, b->b_clu != NULL ?
			    bclu_owner(b->b_clu, ch, rq->ip_chlen) >= 0 : b->b_sub != NULL);
		return;
	}
	bridge_answer(b, w, req, ch, rq->ip_chlen, rq->ip_flag != 0, epoch, rq->ip_offset, 1);
}

/* ---- positions read from Redis (cluster positions) ------------------------ */

#define BRIDGE_READ_SLOT(tag)	((tag) & 0xffff)

static void
bridge_on_read(redisAsyncContext *, void *, void *);

/* A request behind rd's read: 0, or -1 when out of memory. */
static int
bridge_read_wait(struct bridge_read *rd, int w, uint32_t req, int since, const char *epoch,
    uint64_t offset)
{
	struct bridge_wait	*wt;
	size_t			 cap;

	if (rd->rd_nwait == rd->rd_waitcap) {
		cap = rd->rd_waitcap ? rd->rd_waitcap * 2 : 16;
		if ((wt = reallocarray(rd->rd_wait, cap, sizeof(*wt))) == NULL)
			return -1;
		rd->rd_wait = wt;
		rd->rd_waitcap = cap;
	}
	bridge_wait_set(&rd->rd_wait[rd->rd_nwait++], w, req, since, epoch, offset);
	return 0;
}

/*
 * rd is answered (ask: from Redis; else it failed): the requests that
 * waited for it, answered now as if they had just come (one may start
 * the next read, so the slot is left first).
 */
static void
bridge_read_waiters(struct rt_bridge *b, struct bridge_read *rd, int ask)
{
	struct bridge_wait	*wt = rd->rd_wait;
	size_t			 n = rd->rd_nwait, i, chlen = rd->rd_chlen;
	char			 ch[RT_CHANNEL_MAX + 1];

	memcpy(ch, rd->rd_ch, chlen + 1);
	rd->rd_wait = NULL;
	rd->rd_nwait = rd->rd_waitcap = 0;
	for (i = 0; i < n; i++)
		bridge_answer(b, wt[i].wt_w, wt[i].wt_req, ch, chlen, wt[i].wt_since,
		    wt[i].wt_epoch, wt[i].wt_offset, ask);
	free(wt);
}

/* Ask Redis where ch is: 0, or -1 when it cannot be asked (answer here). */
static int
bridge_read_ask(struct rt_bridge *b, int w, uint32_t req, const char *ch, size_t chlen,
    int since, const char *epoch, uint64_t offset)
{
	struct bridge_read	*rd = NULL;
	char			 num[24], max[24], tag[16];
	int			 i;

	if (!bridge_can_read(b))
		return -1;
	/* one read per channel at a time: the others wait for its answer,
	 * which will most often let the node answer them itself */
	for (i = 0; i < b->b_nreads; i++)
		if (b->b_reads[i].rd_tag != 0 && b->b_reads[i].rd_chlen == chlen &&
		    memcmp(b->b_reads[i].rd_ch, ch, chlen) == 0)
			return bridge_read_wait(&b->b_reads[i], w, req, since, epoch, offset);
	for (i = 0; i < b->b_nreads && rd == NULL; i++)
		if (b->b_reads[i].rd_tag == 0 && !b->b_reads[i].rd_pending)
			rd = &b->b_reads[i];
	if (rd == NULL) {
		atomic_fetch_add(&b->b_rb->rb_cluster_reads_full, 1);
		return -1;
	}
	if (++b->b_readgen >= 0x10000)
		b->b_readgen = 1;
	rd->rd_tag = (b->b_readgen << 16) | (uint32_t)(rd - b->b_reads);
	rd->rd_w = w;
	rd->rd_req = req;
	rd->rd_since = (uint8_t)since;
	rd->rd_offset = offset;
	rd->rd_at = util_now_ms();
	snprintf(rd->rd_epoch, sizeof(rd->rd_epoch), "%s", since ? epoch : "");
	memcpy(rd->rd_ch, ch, chlen);
	rd->rd_ch[chlen] = '\0';
	rd->rd_chlen = chlen;
	snprintf(tag, sizeof(tag), "%u", rd->rd_tag);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)offset);
	snprintf(max, sizeof(max), "%lld", (long long)b->b_conf->c_max_output_buffer);
	/* the channel is the key: its keys, realtimed:{CH}:m and :h, share its slot */
	if (bridge_command(b, ch, chlen, bridge_on_read, rd,
	    "FCALL realtimed_read 1 %b %s %s %b %s %s", ch, chlen, b->b_reply, tag,
	    rd->rd_epoch, strlen(rd->rd_epoch), num, max) == -1) {
		rd->rd_tag = 0;
		return -1;
	}
	rd->rd_b = b;
	rd->rd_pending = 1;
	atomic_fetch_add(&b->b_rb->rb_cluster_reads, 1);
	return 0;
}

/* The read in slot tag, or NULL when it is over. */
static struct bridge_read *
bridge_read_find(struct rt_bridge *b, uint32_t tag)
{
	uint32_t	 i = BRIDGE_READ_SLOT(tag);

	if (tag == 0 || i >= (uint32_t)b->b_nreads || b->b_reads[i].rd_tag != tag)
		return NULL;
	return &b->b_reads[i];
}

/* No answer from Redis for rd: the node's own answer, now. */
static void
bridge_read_fail(struct rt_bridge *b, struct bridge_read *rd)
{
	rd->rd_tag = 0;
	atomic_fetch_add(&b->b_rb->rb_cluster_reads_failed, 1);
	bridge_answer(b, rd->rd_w, rd->rd_req, rd->rd_ch, rd->rd_chlen, rd->rd_since,
	    rd->rd_epoch, rd->rd_offset, 0);
	bridge_read_waiters(b, rd, 0);
}

/* Reads asked before older (ms; 0: all) get the node's answer. */
static void
bridge_reads_flush(struct rt_bridge *b, uint64_t older)
{
	int	 i;

	for (i = 0; i < b->b_nreads; i++)
		if (b->b_reads[i].rd_tag != 0 && (older == 0 || b->b_reads[i].rd_at < older))
			bridge_read_fail(b, &b->b_reads[i]);
}

static void
bridge_fn_warn(struct rt_bridge *b, const char *what, const char *why)
{
	uint64_t	 now = util_now_ms();

	if (now - b->b_fn_logged < BRIDGE_LOG_EVERY_MS * 60)
		return;
	b->b_fn_logged = now;
	log_warnx("redis: %s: %s", what, why);
}

/*
 * The command's reply: an error means no answer will be published.  The
 * slot stays taken until it comes, so rd is still this read's (or over).
 */
static void
bridge_on_read(redisAsyncContext *ac, void *r, void *priv)
{
	struct bridge_read	*rd = priv;
	struct rt_bridge	*b = rd->rd_b;
	redisReply		*reply = r;

	(void)ac;
	rd->rd_pending = 0;
	if (rd->rd_tag == 0 || (reply != NULL && reply->type == REDIS_REPLY_INTEGER))
		return;
	bridge_fn_warn(b, "realtimed_read", reply == NULL ? "connection lost" :
	    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	bridge_read_fail(b, rd);
}

/*
 * realtimed_read's answer, at its place in the subscription's stream:
 * every envelope published before the read has been delivered, none
 * after.  The node's record of the channel is put where Redis says (with
 * the replayed events kept), then answered from as usual.
 */
static void
bridge_read_answer(struct rt_bridge *b, const char *msg, size_t len)
{
	struct cluster_answer	 a;
	struct cluster_event	 ev;
	struct bridge_read	*rd;
	const struct chan_ns	*ns;
	struct hist_pos		 pos;
	uint64_t		 next;
	int			 rv;

	if (cluster_answer_parse(msg, len, &a) == -1) {
		atomic_fetch_add(&b->b_rb->rb_cluster_bad, 1);
		return;
	}
	if ((rd = bridge_read_find(b, a.ca_tag)) == NULL)
		return;		/* answered already (timed out) */
	rd->rd_tag = 0;
	ns = chan_match(b->b_conf->c_namespaces, rd->rd_ch, rd->rd_chlen);
	if (ns == NULL || ns->ns_history == 0 || a.ca_status == CLUSTER_NONE) {
		if (ns != NULL && ns->ns_history > 0)
			hist_set_node(b->b_hist, rd->rd_ch, rd->rd_chlen);
	} else if (a.ca_status == CLUSTER_TOO_LARGE) {
		snprintf(pos.hp_epoch, sizeof(pos.hp_epoch), "%s", a.ca_epoch);
		pos.hp_offset = a.ca_offset;
		atomic_fetch_add(&b->b_rb->rb_recovered, 1);
		bridge_answer_send(b, rd->rd_w, rd->rd_req, rd->rd_ch, rd->rd_chlen,
		    IPC_POS_TOO_LARGE, &pos);
		bridge_write(b, rd->rd_w, IPC_POS_END, rd->rd_req, 1, NULL, 0, NULL, 0);
		bridge_read_waiters(b, rd, 1);
		return;
	} else if (a.ca_status != CLUSTER_RECOVERED)
		hist_cluster_set(b->b_hist, rd->rd_ch, rd->rd_chlen, a.ca_epoch, a.ca_offset);
	else if (hist_cluster_set(b->b_hist, rd->rd_ch, rd->rd_chlen, a.ca_epoch,
	    rd->rd_offset) == 0) {
		/* what follows since, kept here as if it had come live; one
		 * not kept (over max_event_size) is a hole, as it was live */
		next = rd->rd_offset + 1;
		while ((rv = cluster_answer_next(&a, &ev)) == 1 && ev.ce_offset == next &&
		    next <= a.ca_offset) {
			if (hist_cluster_next(b->b_hist, rd->rd_ch, rd->rd_chlen, a.ca_epoch,
			    ev.ce_offset, &pos) != 0)
				break;
			(void)bridge_keep(b, rd->rd_ch, rd->rd_chlen, ns, &ev, &pos);
			next++;
		}
		if (rv == -1)
			atomic_fetch_add(&b->b_rb->rb_cluster_bad, 1);
		/* the position is Redis's newest, whatever could be kept */
		hist_cluster_set(b->b_hist, rd->rd_ch, rd->rd_chlen, a.ca_epoch, a.ca_offset);
	}
	bridge_answer(b, rd->rd_w, rd->rd_req, rd->rd_ch, rd->rd_chlen, rd->rd_since,
	    rd->rd_epoch, rd->rd_offset, 0);
	bridge_read_waiters(b, rd, 1);
}
/* ---- connections ----------------------------------------------------------- */

static redisAsyncContext *
bridge_open(struct rt_bridge *b)
{
	redisAsyncContext	*ac;

	if (b->b_url.ru_unix)
		ac = redisAsyncConnectUnix(b->b_url.ru_host);
	else
		ac = redisAsyncConnect(b->b_url.ru_host, b->b_url.ru_port);
	if (ac == NULL)
		return NULL;
	if (ac->err) {
		log_debug("%s: %s", __func__, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = b;
	/* a peer gone without a word (a partition) is found in seconds, not hours */
	if (!b->b_url.ru_unix)
		(void)redisEnableKeepAlive(&ac->c);
	if (brev_attach(ac, b->b_base) == -1) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, bridge_on_connect);
	redisAsyncSetDisconnectCallback(ac, bridge_on_disconnect);
	if (b->b_url.ru_password[0] != '\0') {
		if (b->b_url.ru_user[0] != '\0')
			redisAsyncCommand(ac, bridge_on_auth, b, "AUTH %s %s",
			    b->b_url.ru_user, b->b_url.ru_password);
		else
			redisAsyncCommand(ac, bridge_on_auth, b, "AUTH %s",
			    b->b_url.ru_password);
	}
	return ac;
}

static void
bridge_on_load(redisAsyncContext *ac, void *r, void *priv)
{
	struct rt_bridge	*b = ac->data;
	redisReply		*reply = r;

	(void)priv;
	if (reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		/*
		 * A Redis without functions says so for good; one loading its
		 * data, not yet authenticated, busy or read-only for a moment
		 * says it for now: loaded again, 1 s on, doubling to 30 s.
		 */
		int	 lasting = strncasecmp(reply->str, "ERR unknown command", 19) == 0;

		b->b_fn_logged = 0;
		bridge_fn_warn(b, lasting ? "FUNCTION LOAD of the realtimed library failed "
		    "(cluster positions and realtimed_publish are off; Redis 7 or later has "
		    "them)" : "FUNCTION LOAD of the realtimed library failed for now (cluster "
		    "positions and realtimed_publish are off until it is loaded; tried again)",
		    reply->str);
		b->b_fn_failed = 1;
		if (!lasting) {
			b->b_fn_retry_ms = b->b_fn_retry_ms == 0 ? 1000 :
			    b->b_fn_retry_ms * 2 > 30000 ? 30000 : b->b_fn_retry_ms * 2;
			b->b_fn_retry_at = util_now_ms() + b->b_fn_retry_ms;
		}
		bridge_unpark(b, 1);
		return;
	}
	b->b_fn_retry_at = b->b_fn_retry_ms = 0;
	if (!b->b_fn_ok)
		log_info("redis: function library realtimed loaded (realtimed_publish)");
	b->b_fn_ok = 1;
	b->b_fn_failed = 0;
	atomic_store(&b->b_rb->rb_cluster_function, 1);
	bridge_unpark(b, 0);
}

/*
 * The function library from our namespace table, on the command
 * connection (at connect, and when a reload changes the namespaces):
 * commands queued behind it on that connection find it loaded.
 */
static void
bridge_load_library(struct rt_bridge *b)
{
	char	*lib;

	char	*cmd;
	int	 len;

	if (b->b_cmd == NULL && b->b_clu == NULL)
		return;
	if ((lib = cluster_library(b->b_conf->c_namespaces, PACKAGE_VERSION)) == NULL) {
		log_warnx("%s: out of memory", __func__);
		return;
	}
	if (b->b_clu == NULL) {
		redisAsyncCommand(b->b_cmd, bridge_on_load, NULL, "FUNCTION LOAD REPLACE %s", lib);
		free(lib);
		return;
	}
	/* FUNCTION LOAD is per node: on every master, and each new one */
	if ((len = redisFormatCommand(&cmd, "FUNCTION LOAD REPLACE %s", lib)) < 0 ||
	    bclu_set_library(b->b_clu, cmd, (size_t)len) == -1)
		log_warnx("%s: out of memory", __func__);
	if (len >= 0)
		redisFreeCommand(cmd);
	free(lib);
	bridge_cluster_cmd(b);
}

/* One subscription of the channel table's (or the canary's). */
static void
bridge_subscribe(struct rt_bridge *b, const char *name, int pattern)
{
	bridge_sub_command(b, 1, name, pattern);
	b->b_sub_expect++;
}

/*
 * Sentinel mode: the address the sentinels gave must be the master's
 * (a demoted master still answers for a while): ROLE says.
 */
static void
bridge_on_role(redisAsyncContext *ac, void *r, void *priv)
{
	struct rt_bridge	*b = priv;
	redisReply		*reply = r;

	if (reply == NULL || ac != b->b_cmd || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements == 0 || reply->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[0]->str, "master") == 0)
		return;
	log_warnx("redis %s:%d is a %s, not the master: asking the sentinels again",
	    b->b_url.ru_host, b->b_url.ru_port, reply->element[0]->str);
	atomic_fetch_add(&b->b_rb->rb_sentinel_errors, 1);
	bridge_drop(b, b->b_sub);
	bridge_drop(b, b->b_cmd);
}

static void
bridge_master_at(struct rt_bridge *b, const char *host, int port)
{
	if (strcmp(b->b_url.ru_host, host) != 0 || b->b_url.ru_port != port) {
		log_info("sentinel: master %s is at %s:%d", b->b_url.ru_master, host, port);
		/* a move, however it was learnt (+switch-master, or asking) */
		if (b->b_master_seen)
			atomic_fetch_add(&b->b_rb->rb_redis_failovers, 1);
	}
	b->b_master_seen = 1;
	snprintf(b->b_url.ru_host, sizeof(b->b_url.ru_host), "%s", host);
	b->b_url.ru_port = port;
}

/* The sentinels' answer to bsen_resolve(). */
static void
bridge_sentinel_found(void *arg, const char *host, int port)
{
	struct rt_bridge	*b = arg;

	if (b->b_stopping)
		return;
	if (host == NULL) {
		log_warnx("sentinel: no sentinel gave the address of master %s",
		    b->b_url.ru_master);
		bridge_schedule_retry(b);
		return;
	}
	bridge_master_at(b, host, port);
	b->b_master_known = 1;
	bridge_connect(b);
}

/* +switch-master: leave the old master now, not when it times out. */
static void
bridge_sentinel_moved(void *arg, const char *host, int port)
{
	struct rt_bridge	*b = arg;

	if (b->b_stopping)
		return;
	log_warnx("sentinel: master %s moved to %s:%d, reconnecting", b->b_url.ru_master,
	    host, port);
	bridge_drop(b, b->b_sub);
	bridge_drop(b, b->b_cmd);
	bridge_master_at(b, host, port);
	b->b_master_known = 1;
	b->b_backoff = 0;
	bridge_connect(b);
}

static void
bridge_connect(struct rt_bridge *b)
{
	int	 i;

	b->b_retry_at = 0;
	if (b->b_sen != NULL && !b->b_master_known) {
		bsen_resolve(b->b_sen);		/* bridge_sentinel_found() goes on */
		return;
	}
	if (b->b_clu != NULL && !b->b_master_known) {
		/* any node hears every PUBLISH: the next seed after a failure */
		const struct redis_node *rn = &b->b_url.ru_nodes[b->b_seed++ % b->b_url.ru_nnodes];

		snprintf(b->b_url.ru_host, sizeof(b->b_url.ru_host), "%s", rn->rn_host);
		b->b_url.ru_port = rn->rn_port;
		b->b_master_known = 1;
	}
	if (b->b_sub == NULL && (b->b_sub = bridge_open(b)) != NULL) {
		brev_hold(b->b_sub, (unsigned)b->b_conf->c_redis_coalesce, &b->b_rb->rb_redis_coalesced);
		b->b_sub_started = util_now_ms();
		b->b_sub_acks = 0;
		b->b_sub_expect = 0;
		bridge_subs_build(b, &b->b_active);
		for (i = 0; i < b->b_active.bs_n; i++)
			bridge_subscribe(b, b->b_active.bs_name[i], b->b_active.bs_pattern[i]);
		if (b->b_conf->c_canary_interval > 0)
			bridge_subscribe(b, b->b_canary, 0);
		/* cluster positions: every channel's envelopes, our answers */
		bridge_subscribe(b, CLUSTER_ENVELOPES, 1);
		bridge_subscribe(b, b->b_reply, 0);
		/* admin commands from the other nodes */
		bridge_subscribe(b, b->b_conf->c_control_channel, 0);
		if (b->b_dem != NULL && b->b_clu == NULL)	/* up once these are confirmed too */
			b->b_sub_expect += bdem_connected(b->b_dem);
	}
	/* the command connection: canaries, the admin's publish, positions */
	if (b->b_cmd == NULL && (b->b_cmd = bridge_open(b)) != NULL) {
		if (b->b_sen != NULL)
			redisAsyncCommand(b->b_cmd, bridge_on_role, b, "ROLE");
		if (b->b_clu == NULL)	/* a cluster's: on its masters, bclu_set_library() */
			bridge_load_library(b);
	}
	if (b->b_sub == NULL || b->b_cmd == NULL)
		bridge_schedule_retry(b);
}

static void
bridge_canary(struct rt_bridge *b, uint64_t now)
{
	uint64_t	 iv = (uint64_t)b->b_conf->c_canary_interval;

	if (iv == 0 || b->b_cmd == NULL || !atomic_load(&b->b_rb->rb_redis_up) ||
	    now - b->b_canary_at < iv)
		return;
	if (b->b_canary_sent > b->b_canary_seen) {
		atomic_fetch_add(&b->b_rb->rb_canary_misses, 1);
		log_warnx("canary %llu did not come back from redis within %llu ms",
		    (unsigned long long)b->b_canary_sent, (unsigned long long)iv);
		if (++b->b_canary_missed >= 2) {
			/*
			 * A wedged subscription, or a command connection that no
			 * longer reaches Redis (the canary goes out on it): start
			 * both again.
			 */
			log_warnx("redis subscription lost events: reconnecting");
			b->b_canary_missed = 0;
			bridge_drop(b, b->b_sub);
			bridge_drop(b, b->b_cmd);
			return;
		}
	}
	b->b_canary_at = now;
	b->b_canary_sent++;
	atomic_store(&b->b_rb->rb_canary_sent, b->b_canary_sent);
	atomic_store(&b->b_rb->rb_canary_sent_at, now);
	redisAsyncCommand(b->b_cmd, NULL, NULL, "PUBLISH %s %llu", b->b_canary,
	    (unsigned long long)b->b_canary_sent);
}

static void
bridge_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_bridge	*b = arg;
	uint64_t		 now = util_now_ms();
	uint64_t		 timeout = (uint64_t)b->b_conf->c_redis_timeout;

	(void)fd;
	(void)ev;
	atomic_store(&b->b_rb->rb_tick, now);
	stats_sample(&b->b_rb->rb_usage, now);
	if (b->b_stopping)
		return;
	if (b->b_sub != NULL && !atomic_load(&b->b_rb->rb_redis_up) &&
	    now - b->b_sub_started > timeout) {
		log_warnx("redis %s:%d: not ready in %llu ms (redis_timeout)", b->b_url.ru_host,
		    b->b_url.ru_port, (unsigned long long)timeout);
		bridge_drop(b, b->b_sub);
	}
	if (b->b_retry_at != 0 && now >= b->b_retry_at)
		bridge_connect(b);
	if (b->b_fn_retry_at != 0 && now >= b->b_fn_retry_at && b->b_cmd_up) {
		b->b_fn_retry_at = 0;
		bridge_load_library(b);
	}
	bridge_canary(b, now);
	bridge_too_large_report(b, now);
	if (now > timeout)
		bridge_reads_flush(b, now - timeout);	/* Redis did not answer */
	bridge_unpark_old(b, now);
	hist_expire(b->b_hist, now);
	bridge_pos_sync(b);
	bridge_publish_history(b);
	bctl_tick(b->b_ctl, now);
	if (b->b_sen != NULL)
		bsen_tick(b->b_sen, now);
	if (b->b_clu != NULL)
		bclu_tick(b->b_clu, now);
	if (b->b_dem != NULL)
		bdem_tick(b->b_dem, now, timeout, b->b_sub != NULL);
}

/* ---- workers and the master --------------------------------------------- */

/* Worker w's connection is over (it exited, or is being replaced). */
static void
bridge_worker_close(struct rt_bridge *b, int w)
{
	if (b->b_workers[w] == NULL)
		return;
	if (b->b_out != NULL)
		bout_set(b->b_out, w, NULL);
	event_free(b->b_wrd[w].r_ev);
	b->b_wrd[w].r_ev = NULL;
	evbuffer_free(b->b_wrd[w].r_in);
	b->b_wrd[w].r_in = NULL;
	free(b->b_wrd[w].r_later);
	b->b_wrd[w].r_later = NULL;
	b->b_wrd[w].r_nlater = b->b_wrd[w].r_latercap = 0;
	b->b_wrd[w].r_reading = 0;
	bufferevent_free(b->b_workers[w]);	/* closes the socket */
	b->b_workers[w] = NULL;
}

static void
bridge_worker_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_bridge	*b = arg;
	int			 w;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	for (w = 0; w < REG_MAX_WORKERS; w++)
		if (b->b_workers[w] == bev) {
			log_debug("%s: worker %d went away", __func__, w);
			bridge_worker_close(b, w);
		}
}

/*
 * Worker w's queue is over ipc_max_buffer: what its socket has not taken,
 * what this pass staged included (one read may hold hundreds of
 * requests, each answered with a replay, and replays are copies).  1,
 * and its output draining below half the mark calls
 * bridge_worker_requests() again; 0 when there is room.
 */
static int
bridge_worker_full(struct rt_bridge *b, int w)
{
	struct bufferevent	*bev = b->b_workers[w];
	size_t			 max = (size_t)b->b_conf->c_ipc_max_buffer;

	if (bev == NULL || bout_pending(b->b_out, w) <= max)
		return 0;
	/*
	 * Over by what this pass staged: written now, as the pass's end
	 * would, so that what the socket does not take is in the
	 * bufferevent, whose draining calls us again (a stage the socket
	 * takes whole would not).
	 */
	if (evbuffer_get_length(bufferevent_get_output(bev)) <= max / 2) {
		bout_flush(b->b_out);
		if (bout_pending(b->b_out, w) <= max)
			return 0;
	}
	bufferevent_setwatermark(bev, EV_WRITE, max / 2, 0);
	if (!b->b_wrd[w].r_waiting) {
		b->b_wrd[w].r_waiting = 1;
		atomic_fetch_add(&b->b_rb->rb_ipc_request_waits, 1);
	}
	return 1;
}

/*
 * An answer for worker w while it is over ipc_max_buffer (one that waited
 * for Redis, for a read or for a subscription, answered with the others
 * that waited with it): kept, and given when w has room, as if the
 * request had come then.  0, or -1 when it must be answered now.
 */
static int
bridge_later(struct rt_bridge *b, int w, uint32_t req, const char *ch, size_t chlen,
    int since, const char *epoch, uint64_t offset, int ask)
{
	struct bridge_wrd	*r = &b->b_wrd[w];

	return bridge_park_add(&r->r_later, &r->r_nlater, &r->r_latercap, SIZE_MAX, w, req,
	    ch, chlen, since, epoch, offset, ask);
}

/* Worker w's socket is read (on), or not while w has no room (off). */
static void
bridge_worker_reading(struct rt_bridge *b, int w, int on)
{
	struct bridge_wrd	*r = &b->b_wrd[w];

	if (r->r_ev == NULL || r->r_reading == on)
		return;
	if (on)
		event_add(r->r_ev, NULL);
	else
		event_del(r->r_ev);
	r->r_reading = on;
}

static void	bridge_publish(struct rt_bridge *, int, uint32_t, const char *, size_t);

/*
 * The answers kept for w (bridge_later()), in order, while it has room.
 * 0, or -1 when it is full again and some are still kept.
 */
static int
bridge_worker_later(struct rt_bridge *b, int w)
{
	struct bridge_wrd	*r = &b->b_wrd[w];
	struct bridge_park	 pk;
	size_t			 i;

	if (r->r_nlater == 0)
		return 0;
	for (i = 0; i < r->r_nlater && b->b_workers[w] != NULL; i++) {
		if (bridge_worker_full(b, w))
			break;
		pk = r->r_later[i];
		bridge_answer_now(b, w, pk.pk_wt.wt_req, pk.pk_ch, pk.pk_chlen,
		    pk.pk_wt.wt_since, pk.pk_wt.wt_epoch, pk.pk_wt.wt_offset, pk.pk_ask);
	}
	if (b->b_workers[w] == NULL)
		return -1;	/* gone meanwhile: r_later freed */
	memmove(r->r_later, r->r_later + i, (r->r_nlater - i) * sizeof(*r->r_later));
	r->r_nlater -= i;
	if (r->r_nlater > 0)
		return -1;
	if (r->r_latercap > 64) {	/* a storm's list: not kept for the next one */
		free(r->r_later);
		r->r_later = NULL;
		r->r_latercap = 0;
	}
	return 0;
}

/*
 * Requests from a worker: positions, and POST /publish items.  A worker
 * that does not read what we send it gets no more answers until it has,
 * and its requests wait in its socket: we read no more of them.
 */
static void
bridge_worker_requests(struct rt_bridge *b, int w)
{
	struct evbuffer		*in = b->b_wrd[w].r_in;
	struct ipc_hdr		 hdr;
	struct ipc_pos		 rq;
	uint8_t			 raw[sizeof(hdr)];
	const uint8_t		*p;
	size_t			 len;
	int			 rv;

	if (bridge_worker_later(b, w) == -1) {
		bridge_worker_reading(b, w, 0);
		return;
	}
	while ((len = evbuffer_get_length(in)) >= sizeof(hdr)) {
		if (bridge_worker_full(b, w)) {
			bridge_worker_reading(b, w, 0);
			return;
		}
		evbuffer_copyout(in, raw, sizeof(raw));
		rv = ipc_parse(raw, len, &hdr);
		if (rv == IPC_PARSE_BAD || (hdr.type == IPC_POS_REQ && hdr.len > IPC_POS_MAX) ||
		    (hdr.type == IPC_PUB_REQ && hdr.len > IPC_PUB_MAX) ||
		    (hdr.type != IPC_POS_REQ && hdr.type != IPC_PUB_REQ))
			fatalx("%s: malformed message from worker %d", __func__, w);
		if (rv == IPC_PARSE_NEED_MORE)
			break;
		if (hdr.type == IPC_PUB_REQ) {
			if ((p = evbuffer_pullup(in, (ev_ssize_t)(sizeof(hdr) + hdr.len))) == NULL)
				fatalx("%s: out of memory", __func__);
			bridge_publish(b, w, hdr.peerid, (const char *)p + sizeof(hdr), hdr.len);
			evbuffer_drain(in, sizeof(hdr) + hdr.len);
			continue;
		}
		if ((p = evbuffer_pullup(in, (ev_ssize_t)(sizeof(hdr) + hdr.len))) == NULL ||
		    ipc_pos_decode(p + sizeof(hdr), hdr.len, &rq) == -1)
			fatalx("%s: malformed message from worker %d", __func__, w);
		/* the events Redis sent before this question count in its answer */
		if (b->b_sub != NULL)
			brev_release(b->b_sub);
		bridge_position(b, w, hdr.peerid, &rq);
		evbuffer_drain(in, sizeof(hdr) + hdr.len);
	}
	b->b_wrd[w].r_waiting = 0;
	bridge_worker_reading(b, w, 1);
}

/*
 * A worker's socket is readable.  Read with plain read() into the
 * bufferevent's input: a bufferevent asks the kernel how much is waiting
 * (FIONREAD) before every read, one more system call per request.
 */
#define BRIDGE_WORKER_READ	(16 * 1024)

static void
bridge_worker_readable(evutil_socket_t fd, short what, void *arg)
{
	struct bridge_wrd	*r = arg;
	struct evbuffer		*in = r->r_in;
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	(void)what;
	if (evbuffer_reserve_space(in, BRIDGE_WORKER_READ, &v, 1) < 1)
		fatalx("%s: out of memory", __func__);
	n = read(fd, v.iov_base, v.iov_len);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		log_debug("%s: worker %d went away", __func__, r->r_w);
		bridge_worker_close(r->r_b, r->r_w);
		return;
	}
	v.iov_len = (size_t)n;
	if (evbuffer_commit_space(in, &v, 1) == -1)
		fatalx("%s: evbuffer_commit_space() failed", __func__);
	bridge_worker_requests(r->r_b, r->r_w);
}

/* A worker's output drained below the low mark: its waiting requests. */
static void
bridge_worker_write(struct bufferevent *bev, void *arg)
{
	struct rt_bridge	*b = arg;
	int			 w;

	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	for (w = 0; w < REG_MAX_WORKERS; w++)
		if (b->b_workers[w] == bev)
			bridge_worker_requests(b, w);
}

static void
bridge_attach_worker(struct rt_bridge *b, uint32_t w, int fd)
{
	if (w >= (uint32_t)b->b_reg->r_hdr->rh_nworkers || fd == -1)
		fatalx("%s: bad worker socket from the master", __func__);
	bridge_worker_close(b, (int)w);
	evutil_make_socket_nonblocking(fd);
	b->b_reset_owed[w] = 0;		/* a new worker has learnt nothing yet */
	b->b_workers[w] = bufferevent_socket_new(b->b_base, fd, BEV_OPT_CLOSE_ON_FREE);
	b->b_wrd[w].r_b = b;
	b->b_wrd[w].r_w = (int)w;
	b->b_wrd[w].r_waiting = 0;
	b->b_wrd[w].r_ev = event_new(b->b_base, fd, EV_READ | EV_PERSIST,
	    bridge_worker_readable, &b->b_wrd[w]);
	b->b_wrd[w].r_in = evbuffer_new();
	if (b->b_workers[w] == NULL || b->b_wrd[w].r_ev == NULL || b->b_wrd[w].r_in == NULL)
		fatalx("%s: out of memory", __func__);
	/* the bufferevent only writes; reads are bridge_worker_readable()'s */
	bufferevent_setcb(b->b_workers[w], NULL, bridge_worker_write, bridge_worker_event, b);
	event_add(b->b_wrd[w].r_ev, NULL);
	b->b_wrd[w].r_reading = 1;
	bout_set(b->b_out, (int)w, b->b_workers[w]);
	/* events for this worker now have a way in: it may take clients */
	bridge_send(b, (int)w, IPC_HELLO, "", 0, NULL, 0);
}

static void
bridge_stop(struct rt_bridge *b)
{
	b->b_stopping = 1;
	event_base_loopexit(b->b_base, NULL);
}

/* Who asked for a publish: the master (admin), or worker w (POST /publish). */
struct bridge_pubreq {
	struct rt_bridge *pq_b;
	int		 pq_worker;	/* -1: the master */
	uint32_t	 pq_id;
};

/* receivers, and the offset (-1: a plain PUBLISH, 0: none) */
static void
bridge_publish_reply(struct rt_bridge *b, const struct bridge_pubreq *pq, int64_t n,
    int64_t offset, const char *error)
{
	int64_t	 v[2] = { n, offset };

	if (pq->pq_worker >= 0) {
		/* always: a waiting HTTP client must get its answer */
		if (error != NULL)
			bridge_write(b, pq->pq_worker, IPC_PUB_REPLY, pq->pq_id, 1, error,
			    strlen(error), NULL, 0);
		else
			bridge_write(b, pq->pq_worker, IPC_PUB_REPLY, pq->pq_id, 1, v, sizeof(v),
			    NULL, 0);
	} else if (error != NULL)
		ipc_send(b->b_master_fd, IPC_CTL_PUBLISH_REPLY, pq->pq_id, error, strlen(error), -1);
	else
		ipc_send(b->b_master_fd, IPC_CTL_PUBLISH_REPLY, pq->pq_id, v, sizeof(v), -1);
}

static void
bridge_on_publish(redisAsyncContext *ac, void *r, void *priv)
{
	struct bridge_pubreq	*pq = priv;
	struct rt_bridge	*b = pq->pq_b;
	redisReply		*reply = r;

	(void)ac;
	if (reply == NULL)
		bridge_publish_reply(b, pq, 0, 0, "redis connection lost");
	else if (reply->type == REDIS_REPLY_INTEGER)
		bridge_publish_reply(b, pq, (int64_t)reply->integer, -1, NULL);
	else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER &&
	    reply->element[1]->type == REDIS_REPLY_INTEGER)
		bridge_publish_reply(b, pq, (int64_t)reply->element[1]->integer,
		    (int64_t)reply->element[0]->integer, NULL);
	else
		bridge_publish_reply(b, pq, 0, 0, reply->type == REDIS_REPLY_ERROR ?
		    reply->str : "unexpected reply from redis");
	free(pq);
}

/*
 * The admin's publish and POST /publish (worker >= 0): to Redis like any
 * backend, so every node hears it.
 */
static void
bridge_publish(struct rt_bridge *b, int worker, uint32_t reqid, const char *p, size_t len)
{
	struct bridge_pubreq	 stop = { b, worker, reqid }, *pq;
	int			 rv;
	uint16_t		 chlen;

	if (len < sizeof(chlen))
		fatalx("%s: malformed publish", __func__);
	memcpy(&chlen, p, sizeof(chlen));
	if (chlen == 0 || chlen > len - sizeof(chlen))
		fatalx("%s: malformed publish", __func__);
	if (b->b_cmd == NULL || !atomic_load(&b->b_rb->rb_redis_up)) {
		bridge_publish_reply(b, &stop, 0, 0, "redis is down");
		return;
	}
	if ((pq = malloc(sizeof(*pq))) == NULL) {
		bridge_publish_reply(b, &stop, 0, 0, "out of memory");
		return;
	}
	*pq = stop;
	/* through the function (cluster positions) when Redis has it; in a
	 * cluster on the channel's master, a PUBLISH on any node */
	if (b->b_fn_ok)
		rv = bridge_command(b, p + sizeof(chlen), chlen, bridge_on_publish, pq,
		    "FCALL realtimed_publish_count 1 %b %b", p + sizeof(chlen), (size_t)chlen,
		    p + sizeof(chlen) + chlen, len - sizeof(chlen) - chlen);
	else
		rv = bridge_command(b, NULL, 0, bridge_on_publish, pq,
		    "PUBLISH %b %b", p + sizeof(chlen), (size_t)chlen,
		    p + sizeof(chlen) + chlen, len - sizeof(chlen) - chlen);
	if (rv == -1) {
		free(pq);
		bridge_publish_reply(b, &stop, 0, 0, "redis is down");
	}
}

static void
bridge_reload(struct rt_bridge *b, const char *p, size_t len)
{
	struct rt_config	 nc;
	int			 nschanged, secretchanged;

	config_from_master(&nc, b->b_conf->c_file, p, len);
	nschanged = !chan_table_equal(b->b_conf->c_namespaces, nc.c_namespaces);
	secretchanged = strcmp(b->b_conf->c_control_secret, nc.c_control_secret) != 0;
	config_merge_reloadable(b->b_conf, &nc, 0);
	if (secretchanged)
		bctl_secret_changed(b->b_ctl);
	hist_set_limits(b->b_hist, b->b_conf->c_history_memory, b->b_conf->c_history_channels);
	log_setlevel(b->b_conf->c_log_level);
	config_free(&nc);
	if (nschanged) {
		/* a namespace's history may have been off, or its channels not
		 * subscribed, for a while: no position may promise across it */
		bridge_new_epoch(b);
		bridge_resubscribe(b);
		bridge_load_library(b);
	}
}

static void
bridge_dispatch_master(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_bridge	*b = arg;
	struct ipc_hdr		 hdr;
	static char		 buf[IPC_CTL_MAX];
	ssize_t			 n;
	int			 rfd;

	(void)ev;
	while ((n = ipc_recv(fd, &hdr, buf, sizeof(buf), &rfd)) > 0) {
		switch (hdr.type) {
		case IPC_WORKER_FD:
			bridge_attach_worker(b, hdr.peerid, rfd);
			break;
		case IPC_CFG_RELOAD:
			bridge_reload(b, buf, hdr.len);
			ipc_cfg_ack(fd, &hdr, 0, NULL);
			break;
		case IPC_CTL_PUBLISH:
			bridge_publish(b, -1, hdr.peerid, buf, hdr.len);
			break;
		case IPC_CTL_CONTROL:
		case IPC_CTL_NODES:
			bctl_request(b->b_ctl, &hdr, buf);
			break;
		case IPC_LOG_REOPEN:
			log_reopen();
			break;
		case IPC_SHUTDOWN:
			if (rfd != -1)
				close(rfd);
			bridge_stop(b);
			break;
		default:
			fatalx("%s: unexpected message %u from the master", __func__, hdr.type);
		}
	}
	if (n == 0) {
		log_warnx("the master went away: exiting");
		bridge_stop(b);
	} else if (errno != EAGAIN)
		fatal("%s: control socket", __func__);
}

static void
bridge_canary_name(struct rt_bridge *b)
{
	unsigned char	 r[8];
	int		 i, n;

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("%s: no randomness", __func__);
	n = snprintf(b->b_canary, sizeof(b->b_canary), "__realtimed:canary:");
	for (i = 0; i < 8; i++)
		n += snprintf(b->b_canary + n, sizeof(b->b_canary) - (size_t)n, "%02x", r[i]);
	snprintf(b->b_reply, sizeof(b->b_reply), "__realtimed:reply:%s",
	    b->b_canary + sizeof("__realtimed:canary:") - 1);
}

static void
bridge_cleanup(struct rt_bridge *b)
{
	int	 w;

	b->b_stopping = 1;
	if (b->b_sub != NULL)
		bridge_drop(b, b->b_sub);
	if (b->b_cmd != NULL)
		bridge_drop(b, b->b_cmd);
	bclu_free(b->b_clu);	/* its commands' callbacks, while what they use is there */
	b->b_clu = NULL;
	if (b->b_out != NULL)
		bout_flush(b->b_out);
	for (w = 0; w < REG_MAX_WORKERS; w++)
		bridge_worker_close(b, w);
	bout_free(b->b_out);
	if (b->b_master_ev != NULL)
		event_free(b->b_master_ev);
	if (b->b_tick != NULL)
		event_free(b->b_tick);
	free(b->b_json);
	deflate_ctx_free(&b->b_deflate);
	for (w = 0; w < b->b_nreads; w++)
		free(b->b_reads[w].rd_wait);
	free(b->b_reads);
	free(b->b_park);
	bridge_subs_free(&b->b_active);
	bridge_subs_free(&b->b_next);
	hist_free(b->b_hist);
	bctl_free(b->b_ctl);
	bsen_free(b->b_sen);
	bdem_free(b->b_dem);
	if (b->b_base != NULL)
		event_base_free(b->b_base);
}

int
bridge_run(struct rt_config *conf, struct registry *reg, int master_fd)
{
	struct rt_bridge	 b;
	struct timeval		 tick = { 0, BRIDGE_TICK_MS * 1000 };
	char			 err[256];

	memset(&b, 0, sizeof(b));
	b.b_conf = conf;
	b.b_reg = reg;
	b.b_rb = &reg->r_hdr->rh_bridge;
	b.b_master_fd = master_fd;
	if (redis_url_parse(conf->c_redis_url, &b.b_url, err, sizeof(err)) == -1)
		fatalx("redis_url: %s", err);
	bridge_canary_name(&b);
	if ((b.b_hist = hist_new(conf->c_history_memory, conf->c_history_channels, "-")) == NULL)
		fatalx("%s: out of memory", __func__);
	bridge_new_epoch(&b);
	if ((b.b_ctl = bctl_new(conf, reg, master_fd)) == NULL)
		fatalx("%s: out of memory", __func__);
	b.b_nreads = conf->c_position_reads;
	if ((b.b_reads = calloc((size_t)b.b_nreads, sizeof(*b.b_reads))) == NULL)
		fatalx("%s: out of memory", __func__);
	atomic_store(&b.b_rb->rb_cluster_function, 0);
	atomic_store(&b.b_rb->rb_pid, (int32_t)getpid());
	atomic_store(&b.b_rb->rb_redis_up, 0);
	atomic_store(&b.b_rb->rb_tick, util_now_ms());
	/* the sequence goes on across respawns, so workers' figures stay comparable */
	b.b_canary_sent = b.b_canary_seen = atomic_load(&b.b_rb->rb_canary_sent);
	/* redis_coalesce's holds keep their own clock (bridge_ev.c) */
	if ((b.b_base = event_base_new()) == NULL)
		fatalx("%s: out of memory", __func__);
	b.b_out = bout_new(b.b_base, REG_MAX_WORKERS);
	b.b_master_ev = event_new(b.b_base, master_fd, EV_READ | EV_PERSIST,
	    bridge_dispatch_master, &b);
	event_add(b.b_master_ev, NULL);
	if (config_on_demand(conf)) {
		struct bdem_ops ops = { bridge_demand_command, bridge_demand_answer,
		    bridge_demand_joined, &b };

		if ((b.b_dem = bdem_new(reg, b.b_rb, conf->c_redis_subscriptions_max, &ops)) == NULL)
			fatalx("%s: out of memory", __func__);
	}
	if (b.b_url.ru_mode == REDIS_CLUSTER) {
		struct bclu_ops cops = { bridge_cluster_changed, bridge_cluster_lost,
		    bridge_cluster_moved, bridge_cluster_reply, bridge_cluster_cmd, &b };
		struct bdem_ops ops = { bridge_demand_command, bridge_demand_answer,
		    bridge_demand_joined, &b };

		/* sharded pub/sub is per channel: on demand whatever redis_subscribe says */
		if (b.b_dem == NULL && (b.b_dem = bdem_new(reg, b.b_rb,
		    conf->c_redis_subscriptions_max, &ops)) == NULL)
			fatalx("%s: out of memory", __func__);
		if ((b.b_clu = bclu_new(b.b_base, &b.b_url, b.b_rb, &cops, b.b_canary,
		    (uint64_t)conf->c_canary_interval, conf->c_redis_cluster_commands)) == NULL)
			fatalx("%s: out of memory", __func__);
		bridge_load_library(&b);
	}
	if (b.b_url.ru_mode == REDIS_SENTINEL) {
		struct bsen_cb cb = { bridge_sentinel_found, bridge_sentinel_moved, &b };

		if ((b.b_sen = bsen_new(b.b_base, &b.b_url, conf->c_redis_sentinel_password,
		    b.b_rb, &cb)) == NULL)
			fatalx("%s: out of memory", __func__);
	}
	b.b_tick = event_new(b.b_base, -1, EV_PERSIST, bridge_tick, &b);
	event_add(b.b_tick, &tick);
	atomic_store(&b.b_rb->rb_state, REG_PROC_RUNNING);
	ipc_send(master_fd, IPC_HELLO, 0, NULL, 0, -1);
	bridge_connect(&b);
	event_base_dispatch(b.b_base);
	atomic_store(&b.b_rb->rb_state, REG_PROC_STOPPING);
	bridge_cleanup(&b);
	close(master_fd);
	return 0;
}
