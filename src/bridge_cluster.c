/*
 * The bridge's Redis Cluster client: the slot map, one connection per
 * master for the sharded subscriptions, one per master for commands (a
 * queue of the replies to come on each).  See bridge_cluster.h.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <hiredis/hiredis.h>

#include "realtimed.h"
#include "bridge_cluster.h"
#include "log.h"
#include "redis_cluster.h"
#include "redis_url.h"
#include "registry.h"
#include "util.h"

#define BCLU_SUSPECTS		16	/* nodes remembered as missing canaries */
#define BCLU_FETCH_MS		2000	/* a node slower to give the map is skipped */
#define BCLU_CONNECT_MS		3000	/* a shard slower to connect is dropped */
#define BCLU_BACKOFF_MIN	100	/* ms between map fetches, doubling on failures */
#define BCLU_BACKOFF_MAX	2000
#define BCLU_READ_MAX		(64 * 1024)	/* bytes fed to the reader at a time */
#define BCLU_CANARY_MAX		128
#define BCLU_REREAD_MS		5000	/* the map is read again this often */
#define BCLU_SETTLE_MS		500	/* ... and this often for BCLU_REREAD_MS after a change */
#define BCLU_TAG_TRIES		1000000	/* hash tags tried for a shard's canary */

/* What a command connection's next reply answers. */
enum { BCLU_RQ_AUTH, BCLU_RQ_LOAD, BCLU_RQ_CANARY, BCLU_RQ_ASKING, BCLU_RQ_CMD };

static const char bclu_asking[] = "*1\r\n$6\r\nASKING\r\n";

/* A command sent (or, redirected to a node not in the map yet, to send). */
struct bclu_req {
	struct bclu_req		*rq_next;
	int			 rq_kind;
	int			 rq_slot;
	int			 rq_redirected;	/* MOVED or ASK followed already */
	bclu_cb			*rq_cb;
	void			*rq_priv;
	size_t			 rq_len;
	char			*rq_cmd;	/* BCLU_RQ_CMD: kept for a redirection */
};

struct bclu_conn {
	struct bclu		*cc_c;
	int			 cc_id;
	int			 cc_map;	/* fetching the map, not a shard */
	int			 cc_pub;	/* a shard's command connection (and canary) */
	int			 cc_lib;	/* the library: 0 not yet, 1 loaded, -1 refused */
	struct bclu_req		*cc_head;	/* cc_pub: the replies to come, in order */
	struct bclu_req		**cc_tail;
	int			 cc_auth;	/* AUTH's reply still to come */
	int			 cc_ready;
	uint64_t		 cc_at;		/* ms, opened */
	char			 cc_host[REDIS_HOST_MAX];
	int			 cc_port;
	struct bufferevent	*cc_bev;
	redisReader		*cc_rd;
	/* a shard's canary: its channel (in one of the shard's slots), seqs */
	char			 cc_canary[BCLU_CANARY_MAX];
	uint64_t		 cc_canary_sent;
	uint64_t		 cc_canary_seen;
	int			 cc_canary_missed;	/* in a row */
};

struct bclu {
	struct event_base	*c_base;
	const struct redis_url	*c_url;
	struct reg_bridge	*c_rb;
	struct bclu_ops		 c_ops;
	struct rcluster_map	 c_map;
	int			 c_have_map;
	struct bclu_conn	**c_shard;	/* c_map.rm_nshards, NULL: not connected */
	struct bclu_conn	**c_pub;	/* c_map.rm_nshards, commands (and canaries) */
	char			*c_lib;		/* FUNCTION LOAD REPLACE, formatted; NULL: none */
	size_t			 c_liblen;
	int			 c_ncmd;	/* commands in flight */
	int			 c_cmd_max;
	struct bclu_req		*c_retry;	/* MOVED to a node not in the map: after the next */
	char			 c_canary[64];	/* the canaries' prefix; "": none */
	uint64_t		 c_canary_iv;	/* ms */
	uint64_t		 c_canary_at;
	uint64_t		 c_read_at;	/* ms, the last map applied */
	uint64_t		 c_settle_until;	/* ms, reading often until then */
	int			 c_gen;		/* the last connection id given */
	struct bclu_conn	*c_fetch;	/* the map fetch in flight */
	int			 c_cand;	/* the node it asks */
	int			 c_tried;	/* nodes asked in this round */
	int			 c_want;	/* a fetch is wanted */
	uint64_t		 c_next;	/* ms, no fetch before */
	uint64_t		 c_backoff;
	int			 c_stopping;
	struct event		*c_timer;	/* the next fetch */
	/*
	 * Nodes whose shard connection went for missing its canaries: the
	 * next one to them starts as missing one too, until a canary comes
	 * back, so that /health does not call a hung node well in between.
	 */
	struct {
		char	 sp_host[REDIS_HOST_MAX];
		int	 sp_port;
	}			 c_suspect[BCLU_SUSPECTS];
	int			 c_nsuspect;
};

static void	bclu_conn_close(struct bclu_conn *, int);
static void	bclu_suspect_take(struct bclu_conn *);
static void	bclu_schedule(struct bclu *, uint64_t);
static struct bclu_conn *bclu_conn_open(struct bclu *, const char *, int, int);
static void	bclu_canary_listen(struct bclu_conn *);

static void
bclu_conn_send(struct bclu_conn *cc, int argc, const char **argv, const size_t *lens)
{
	char	*cmd;
	int	 len;

	if ((len = redisFormatCommandArgv(&cmd, argc, argv, lens)) < 0) {
		log_warnx("%s: out of memory", __func__);
		return;
	}
	bufferevent_write(cc->cc_bev, cmd, (size_t)len);
	redisFreeCommand(cmd);
}

/* Bytes on command connection cc, whose reply rq's kind (and callback) awaits. */
static void
bclu_cmd_write(struct bclu_conn *cc, struct bclu_req *rq, const char *cmd, size_t len)
{
	rq->rq_next = NULL;
	*cc->cc_tail = rq;
	cc->cc_tail = &rq->rq_next;
	bufferevent_write(cc->cc_bev, cmd, len);
}

/* An internal command (AUTH, the library, a canary, ASKING): 0, or -1 when out of memory. */
static int
bclu_cmd_internal(struct bclu_conn *cc, int kind, const char *cmd, size_t len)
{
	struct bclu_req	*rq;

	if ((rq = calloc(1, sizeof(*rq))) == NULL) {
		log_warnx("%s: out of memory", __func__);
		return -1;
	}
	rq->rq_kind = kind;
	if (kind == BCLU_RQ_AUTH)	/* written already by bclu_conn_auth() */
		len = 0;
	bclu_cmd_write(cc, rq, cmd, len);
	return 0;
}

static void
bclu_req_free(struct bclu_req *rq)
{
	free(rq->rq_cmd);
	free(rq);
}

/* Commands whose answer will not come: their callbacks get NULL. */
static void
bclu_fail(struct bclu *c, struct bclu_req *rq)
{
	struct bclu_req	*next;

	for (; rq != NULL; rq = next) {
		next = rq->rq_next;
		if (rq->rq_kind == BCLU_RQ_CMD) {
			c->c_ncmd--;
			atomic_fetch_add(&c->c_rb->rb_rcluster_commands_failed, 1);
			if (rq->rq_cb != NULL)
				rq->rq_cb(NULL, NULL, rq->rq_priv);
		}
		bclu_req_free(rq);
	}
}

static void
bclu_conn_auth(struct bclu_conn *cc)
{
	const struct redis_url	*u = cc->cc_c->c_url;
	const char		*argv[3] = { "AUTH", u->ru_user, u->ru_password };
	size_t			 lens[3] = { 4, strlen(u->ru_user), strlen(u->ru_password) };

	if (u->ru_password[0] == '\0') {
		/*
		 * A shard's subscription is ready once the node answers, not
		 * once TCP connects: a node that hangs still completes that
		 * from its backlog, and would look ready between canaries.
		 */
		if (!cc->cc_map && !cc->cc_pub) {
			static const char	*ping[1] = { "PING" };
			static const size_t	 plen[1] = { 4 };

			bclu_conn_send(cc, 1, ping, plen);
			cc->cc_auth = 1;
		}
		return;
	}
	if (u->ru_user[0] != '\0')
		bclu_conn_send(cc, 3, argv, lens);
	else {
		argv[1] = argv[2];
		lens[1] = lens[2];
		bclu_conn_send(cc, 2, argv, lens);
	}
	cc->cc_auth = 1;
	if (cc->cc_pub)
		(void)bclu_cmd_internal(cc, BCLU_RQ_AUTH, "", 0);
}

/* The connection of conns (n) to shard rs's node, taken out; NULL when none. */
static struct bclu_conn *
bclu_take(struct bclu_conn **conns, int n, const struct rcluster_shard *rs)
{
	struct bclu_conn	*cc;
	int			 j;

	for (j = 0; j < n; j++)
		if ((cc = conns[j]) != NULL && cc->cc_port == rs->rs_port &&
		    strcmp(cc->cc_host, rs->rs_host) == 0) {
			conns[j] = NULL;
			return cc;
		}
	return NULL;
}

/* A new map: shard connections follow it; those to a master no more are closed. */
static void
bclu_apply(struct bclu *c, struct rcluster_map *m)
{
	struct bclu_conn	**ns, **np, **op;
	int			 i, j, nop;

	ns = calloc((size_t)m->rm_nshards + 1, sizeof(*ns));
	np = calloc((size_t)m->rm_nshards + 1, sizeof(*np));
	if (ns == NULL || np == NULL) {
		log_warnx("%s: out of memory", __func__);
		free(ns);
		free(np);
		rcluster_map_free(m);
		return;
	}
	nop = c->c_have_map ? c->c_map.rm_nshards : 0;
	for (i = 0; i < m->rm_nshards; i++) {
		ns[i] = bclu_take(c->c_shard, nop, &m->rm_shards[i]);
		np[i] = bclu_take(c->c_pub, nop, &m->rm_shards[i]);	/* its commands go on */
	}
	for (j = 0; c->c_have_map && j < c->c_map.rm_nshards; j++)
		if (c->c_shard[j] != NULL)
			bclu_conn_close(c->c_shard[j], 1);
	/* a master no more: its commands fail once the new map is in place */
	op = c->c_pub;
	if (c->c_have_map)
		rcluster_map_free(&c->c_map);
	free(c->c_shard);
	c->c_map = *m;
	c->c_shard = ns;
	c->c_pub = np;
	/* a kept connection whose canary's slot moved: a channel in its slots now */
	for (i = 0; i < c->c_map.rm_nshards; i++)
		if (ns[i] != NULL && ns[i]->cc_ready && ns[i]->cc_canary[0] != '\0' &&
		    c->c_map.rm_owner[rcluster_keyslot(ns[i]->cc_canary,
		    strlen(ns[i]->cc_canary))] != i)
			bclu_canary_listen(ns[i]);
	c->c_have_map = 1;
	for (j = 0; j < nop; j++)
		if (op[j] != NULL)
			bclu_conn_close(op[j], 0);
	free(op);
	c->c_read_at = util_now_ms();
	atomic_fetch_add(&c->c_rb->rb_rcluster_refreshes, 1);
	atomic_store(&c->c_rb->rb_rcluster_shards, c->c_map.rm_nshards);
	if (c->c_map.rm_uncovered > 0)
		log_warnx("redis cluster: %d slots have no master", c->c_map.rm_uncovered);
}

/* Connections to the masters of the map that have none. */
static void
bclu_connect_shards(struct bclu *c)
{
	int	 i;

	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++) {
		if (c->c_shard[i] == NULL)
			c->c_shard[i] = bclu_conn_open(c, c->c_map.rm_shards[i].rs_host,
			    c->c_map.rm_shards[i].rs_port, 0);
		if (c->c_pub[i] == NULL)
			c->c_pub[i] = bclu_conn_open(c, c->c_map.rm_shards[i].rs_host,
			    c->c_map.rm_shards[i].rs_port, 2);
	}
}

/* The commands MOVED to a node that was not in the map: to the new map's owner. */
static void
bclu_retry(struct bclu *c)
{
	struct bclu_req	*rq = c->c_retry, *next, *fail = NULL;
	int		 i;

	c->c_retry = NULL;
	for (; rq != NULL; rq = next) {
		next = rq->rq_next;
		if ((i = c->c_map.rm_owner[rq->rq_slot]) >= 0 && c->c_pub[i] != NULL)
			bclu_cmd_write(c->c_pub[i], rq, rq->rq_cmd, rq->rq_len);
		else {
			rq->rq_next = fail;
			fail = rq;
		}
	}
	bclu_fail(c, fail);
}

/* The map fetch's reply: 1 when cc is closed (always, but for AUTH's "OK"). */
static int
bclu_fetch_reply(struct bclu_conn *cc, redisReply *r)
{
	struct bclu		*c = cc->cc_c;
	struct rcluster_map	 m;
	char			 err[256];

	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("redis cluster node %s:%d: %s%s", cc->cc_host, cc->cc_port,
		    cc->cc_auth ? "AUTH failed: " : "CLUSTER SLOTS refused: ", r->str);
		bclu_conn_close(cc, 0);
		return 1;
	}
	if (cc->cc_auth) {
		cc->cc_auth = 0;
		return 0;
	}
	if (rcluster_map_parse(r, cc->cc_host, &m, err, sizeof(err)) == -1) {
		log_warnx("redis cluster node %s:%d: CLUSTER SLOTS: %s", cc->cc_host,
		    cc->cc_port, err);
		bclu_conn_close(cc, 0);
		return 1;
	}
	c->c_fetch = NULL;
	c->c_tried = 0;		/* c_cand answered: asked first next time */
	bclu_conn_close(cc, 0);
	bclu_apply(c, &m);
	bclu_connect_shards(c);
	bclu_retry(c);
	c->c_ops.co_changed(c->c_ops.co_arg);
	c->c_ops.co_cmd(c->c_ops.co_arg);
	return 1;
}

/* The shard's own canary (an smessage or the ssubscribe of its channel): 1 when it is. */
static int
bclu_canary_seen(struct bclu_conn *cc, const redisReply *r)
{
	redisReply	**e = r->element;
	size_t		 n = strlen(cc->cc_canary);
	char		 buf[32];

	if (n == 0 || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING ||
	    e[1]->len != n || memcmp(e[1]->str, cc->cc_canary, n) != 0)
		return 0;
	if (strcmp(e[0]->str, "smessage") == 0 && e[2]->type == REDIS_REPLY_STRING &&
	    e[2]->len < sizeof(buf)) {
		memcpy(buf, e[2]->str, e[2]->len);
		buf[e[2]->len] = '\0';
		if (strtoull(buf, NULL, 10) >= cc->cc_canary_seen)
			cc->cc_canary_seen = strtoull(buf, NULL, 10);
		cc->cc_canary_missed = 0;
	}
	return 1;
}

/* A canary channel in one of shard i's slots: its name in out, or "" when none found. */
static void
bclu_canary_name(const struct bclu *c, int i, char *out, size_t outlen)
{
	int	 k, len;

	out[0] = '\0';
	for (k = 0; c->c_canary[0] != '\0' && k < BCLU_TAG_TRIES; k++) {
		len = snprintf(out, outlen, "%s:{%d}", c->c_canary, k);
		if (len > 0 && (size_t)len < outlen &&
		    c->c_map.rm_owner[rcluster_keyslot(out, (size_t)len)] == i)
			return;
	}
	out[0] = '\0';
}

/* The shard connection is ready: it listens to its canary. */
static void
bclu_canary_listen(struct bclu_conn *cc)
{
	struct bclu	*c = cc->cc_c;
	const char	*argv[2] = { "SSUBSCRIBE", cc->cc_canary };
	size_t		 lens[2] = { 10, 0 };
	int		 i;

	for (i = 0; i < c->c_map.rm_nshards; i++)
		if (c->c_shard[i] == cc)
			bclu_canary_name(c, i, cc->cc_canary, sizeof(cc->cc_canary));
	if ((lens[1] = strlen(cc->cc_canary)) > 0)
		bclu_conn_send(cc, 2, argv, lens);
}

static void
bclu_shard_reply(struct bclu_conn *cc, redisReply *r)
{
	struct bclu	*c = cc->cc_c;
	char		 host[REDIS_HOST_MAX];
	int		 slot, port, rv;

	if (r->type == REDIS_REPLY_ERROR && cc->cc_auth) {
		log_warnx("redis cluster node %s:%d: %s failed: %s", cc->cc_host,
		    cc->cc_port, cc->cc_c->c_url->ru_password[0] != '\0' ? "AUTH" : "PING",
		    r->str);
		bclu_conn_close(cc, 1);
		return;
	}
	if (cc->cc_auth) {
		cc->cc_auth = 0;
		cc->cc_ready = 1;
		bclu_canary_listen(cc);
		c->c_ops.co_changed(c->c_ops.co_arg);
		return;
	}
	if (r->type != REDIS_REPLY_ERROR) {
		if (!bclu_canary_seen(cc, r))
			c->c_ops.co_reply(c->c_ops.co_arg, cc->cc_id, r);
		return;
	}
	rv = rcluster_redirect(r->str, &slot, host, sizeof(host), &port);
	if (rv == 1 || rv == 2) {
		atomic_fetch_add(&c->c_rb->rb_rcluster_moved, 1);
		c->c_ops.co_moved(c->c_ops.co_arg, cc->cc_id, slot);
		bclu_refresh(c);	/* a SSUBSCRIBE for a slot that moved */
	} else
		log_warnx("redis cluster node %s:%d: %s", cc->cc_host, cc->cc_port, r->str);
}

static int
bclu_conn_live(const struct bclu *c, int id)
{
	int	 i;

	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++)
		if ((c->c_shard[i] != NULL && c->c_shard[i]->cc_id == id) ||
		    (c->c_pub[i] != NULL && c->c_pub[i]->cc_id == id))
			return 1;
	return 0;
}

/* The command connection to host:port, or NULL. */
static struct bclu_conn *
bclu_pub_at(const struct bclu *c, const char *host, int port)
{
	int	 i;

	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++)
		if (c->c_pub[i] != NULL && c->c_pub[i]->cc_port == port &&
		    strcmp(c->c_pub[i]->cc_host, host) == 0)
			return c->c_pub[i];
	return NULL;
}

/*
 * A command's MOVED or ASK: followed once, to the node named (MOVED to a
 * node not in the map: after the next map; the map is read again anyway).
 * 0 when followed, -1 when the error goes to the callback.
 */
static int
bclu_redirect(struct bclu *c, struct bclu_req *rq, const char *err)
{
	struct bclu_conn	*to;
	char			 host[REDIS_HOST_MAX];
	int			 slot, port, rv;

	if ((rv = rcluster_redirect(err, &slot, host, sizeof(host), &port)) != 1 && rv != 2)
		return -1;
	atomic_fetch_add(&c->c_rb->rb_rcluster_moved, 1);
	if (rv == 1)
		bclu_refresh(c);
	if (rq->rq_redirected)
		return -1;
	rq->rq_redirected = 1;
	if ((to = bclu_pub_at(c, host, port)) == NULL) {
		if (rv == 2)
			return -1;
		rq->rq_next = c->c_retry;
		c->c_retry = rq;
		return 0;
	}
	if (rv == 2 && bclu_cmd_internal(to, BCLU_RQ_ASKING, bclu_asking,
	    sizeof(bclu_asking) - 1) == -1)
		return -1;
	bclu_cmd_write(to, rq, rq->rq_cmd, rq->rq_len);
	return 0;
}

/* The reply to one of bclu's own commands on cc (kind). */
static void
bclu_cmd_own(struct bclu_conn *cc, int kind, const redisReply *r)
{
	struct bclu	*c = cc->cc_c;
	char		 host[REDIS_HOST_MAX];
	int		 err = r->type == REDIS_REPLY_ERROR, slot, port;

	if (kind == BCLU_RQ_AUTH && err) {
		log_warnx("redis cluster node %s:%d: AUTH failed: %s", cc->cc_host,
		    cc->cc_port, r->str);
		bclu_conn_close(cc, 0);
		return;
	}
	if (kind == BCLU_RQ_AUTH) {
		cc->cc_auth = 0;
		cc->cc_ready = 1;
	} else if (kind == BCLU_RQ_LOAD)
		cc->cc_lib = err ? -1 : 1;
	if (err)
		log_warnx("redis cluster node %s:%d: %s: %s", cc->cc_host, cc->cc_port,
		    kind == BCLU_RQ_LOAD ? "FUNCTION LOAD" : kind == BCLU_RQ_CANARY ?
		    "canary" : "ASKING", r->str);
	if (err && rcluster_redirect(r->str, &slot, host, sizeof(host), &port) > 0)
		bclu_refresh(c);	/* the canary's slot moved */
	if (kind == BCLU_RQ_AUTH || kind == BCLU_RQ_LOAD)
		c->c_ops.co_cmd(c->c_ops.co_arg);
}

/* A reply on command connection cc: to what its queue says it answers. */
static void
bclu_cmd_reply(struct bclu_conn *cc, redisReply *r)
{
	struct bclu	*c = cc->cc_c;
	struct bclu_req	*rq = cc->cc_head;
	int		 kind;

	if (rq == NULL) {
		log_warnx("redis cluster node %s:%d: a reply to nothing asked", cc->cc_host,
		    cc->cc_port);
		bclu_conn_close(cc, 1);
		return;
	}
	if ((cc->cc_head = rq->rq_next) == NULL)
		cc->cc_tail = &cc->cc_head;
	if ((kind = rq->rq_kind) != BCLU_RQ_CMD) {
		bclu_req_free(rq);
		bclu_cmd_own(cc, kind, r);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR && bclu_redirect(c, rq, r->str) == 0)
		return;
	c->c_ncmd--;
	if (rq->rq_cb != NULL)
		rq->rq_cb(NULL, r, rq->rq_priv);
	bclu_req_free(rq);
}

static void
bclu_conn_read(struct bufferevent *bev, void *arg)
{
	struct bclu_conn	*cc = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct bclu		*c = cc->cc_c;
	int			 id = cc->cc_id, map = cc->cc_map, closed;
	size_t			 n;
	void			*r;

	while ((n = evbuffer_get_length(in)) > 0) {
		if (n > BCLU_READ_MAX)
			n = BCLU_READ_MAX;
		if (redisReaderFeed(cc->cc_rd, (const char *)evbuffer_pullup(in, (ssize_t)n),
		    n) != REDIS_OK) {
			bclu_conn_close(cc, 1);
			return;
		}
		evbuffer_drain(in, n);
		for (;;) {
			r = NULL;
			if (redisReaderGetReply(cc->cc_rd, &r) != REDIS_OK) {
				log_warnx("redis cluster node %s:%d: protocol error",
				    cc->cc_host, cc->cc_port);
				bclu_conn_close(cc, 1);
				return;
			}
			if (r == NULL)
				break;
			if (cc->cc_pub) {
				bclu_cmd_reply(cc, r);
				freeReplyObject(r);
				if (!bclu_conn_live(c, id))	/* the reply closed it */
					return;
				continue;
			}
			if (map) {
				closed = bclu_fetch_reply(cc, r);
				freeReplyObject(r);
				if (closed)
					return;
				continue;
			}
			bclu_shard_reply(cc, r);
			freeReplyObject(r);
			if (!bclu_conn_live(c, id))	/* the reply closed it */
				return;
		}
	}
}

static void
bclu_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct bclu_conn	*cc = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (!cc->cc_map && !cc->cc_pub && !cc->cc_auth) {
			cc->cc_ready = 1;
			bclu_canary_listen(cc);
			cc->cc_c->c_ops.co_changed(cc->cc_c->c_ops.co_arg);
		} else if (cc->cc_pub && !cc->cc_auth) {
			cc->cc_ready = 1;
			cc->cc_c->c_ops.co_cmd(cc->cc_c->c_ops.co_arg);
		}
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warnx("redis cluster node %s:%d: %s", cc->cc_host, cc->cc_port,
		    what & BEV_EVENT_EOF ? "connection closed" : "connection failed");
		bclu_conn_close(cc, 1);
	}
}

static struct bclu_conn *
bclu_conn_open(struct bclu *c, const char *host, int port, int map)
{
	struct bclu_conn	*cc;

	if ((cc = calloc(1, sizeof(*cc))) == NULL)
		return NULL;
	cc->cc_c = c;
	cc->cc_map = map == 1;
	cc->cc_pub = map == 2;
	cc->cc_id = map == 1 ? -1 : ++c->c_gen;
	cc->cc_tail = &cc->cc_head;
	cc->cc_at = util_now_ms();
	snprintf(cc->cc_host, sizeof(cc->cc_host), "%s", host);
	cc->cc_port = port;
	if ((cc->cc_rd = redisReaderCreate()) == NULL ||
	    (cc->cc_bev = bufferevent_socket_new(c->c_base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		if (cc->cc_rd != NULL)
			redisReaderFree(cc->cc_rd);
		free(cc);
		return NULL;
	}
	bufferevent_setcb(cc->cc_bev, bclu_conn_read, NULL, bclu_conn_event, cc);
	bufferevent_enable(cc->cc_bev, EV_READ | EV_WRITE);
	if (map == 0)
		bclu_suspect_take(cc);
	bclu_conn_auth(cc);
	if (map == 2 && c->c_lib != NULL)
		(void)bclu_cmd_internal(cc, BCLU_RQ_LOAD, c->c_lib, c->c_liblen);
	if (map == 1) {
		const char	*argv[2] = { "CLUSTER", "SLOTS" };
		size_t		 lens[2] = { 7, 5 };

		bclu_conn_send(cc, 2, argv, lens);
	}
	if (bufferevent_socket_connect_hostname(cc->cc_bev, NULL, AF_UNSPEC, host, port) != 0) {
		bufferevent_free(cc->cc_bev);
		redisReaderFree(cc->cc_rd);
		free(cc);
		return NULL;
	}
	return cc;
}

/*
 * Close cc.  A shard's: what was subscribed on it is lost (told when
 * tell), and the map is read again; a map fetch's: the next node is asked.
 */
static void
bclu_conn_close(struct bclu_conn *cc, int tell)
{
	struct bclu	*c = cc->cc_c;
	struct bclu_req	*lost = cc->cc_head;
	int		 i, id = cc->cc_id, map = cc->cc_map, pub = cc->cc_pub;

	if (pub) {
		for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++)
			if (c->c_pub[i] == cc)
				c->c_pub[i] = NULL;
		id = -1;
	} else if (map) {
		if (c->c_fetch == cc) {	/* failed: the next node */
			c->c_fetch = NULL;
			c->c_cand++;
			c->c_tried++;
			c->c_want = 1;
			c->c_next = 0;	/* from the timer: cc is still in use */
			bclu_schedule(c, util_now_ms());
		}
	} else {
		for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++)
			if (c->c_shard[i] == cc)
				c->c_shard[i] = NULL;
		if (!c->c_stopping)
			atomic_fetch_add(&c->c_rb->rb_rcluster_reconnects, 1);
		if (!cc->cc_ready)	/* not there yet (a failover): ask less often */
			c->c_backoff = c->c_backoff * 2 > BCLU_BACKOFF_MAX ?
			    BCLU_BACKOFF_MAX : c->c_backoff * 2;
		if (!cc->cc_ready)
			id = -1;	/* nothing was subscribed on it */
	}
	bufferevent_free(cc->cc_bev);
	redisReaderFree(cc->cc_rd);
	free(cc);
	if (pub) {
		/* their answers will not come; a new connection after the next map */
		bclu_fail(c, lost);
		if (!c->c_stopping)
			c->c_ops.co_cmd(c->c_ops.co_arg);
		if (tell && !c->c_stopping)
			bclu_refresh(c);
		return;
	}
	if (!map && tell && !c->c_stopping) {
		if (id >= 0)
			c->c_ops.co_lost(c->c_ops.co_arg, id);
		bclu_refresh(c);
	}
}

/* The node asked for the map: a seed, then the masters last known. */
static void
bclu_candidate(const struct bclu *c, int i, const char **host, int *port)
{
	int	 n = c->c_url->ru_nnodes + (c->c_have_map ? c->c_map.rm_nshards : 0);

	i %= n;
	if (i < c->c_url->ru_nnodes) {
		*host = c->c_url->ru_nodes[i].rn_host;
		*port = c->c_url->ru_nodes[i].rn_port;
	} else {
		*host = c->c_map.rm_shards[i - c->c_url->ru_nnodes].rs_host;
		*port = c->c_map.rm_shards[i - c->c_url->ru_nnodes].rs_port;
	}
}

static void
bclu_schedule(struct bclu *c, uint64_t now)
{
	struct timeval	 tv = { 0, 0 };
	uint64_t	 wait = c->c_next > now ? c->c_next - now : 0;

	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	if (!evtimer_pending(c->c_timer, NULL))
		evtimer_add(c->c_timer, &tv);
}

/* Ask the next node for the map, when one is wanted and none is asked. */
static void
bclu_fetch_next(struct bclu *c, uint64_t now)
{
	const char	*host;
	int		 port, n;

	if (!c->c_want || c->c_fetch != NULL || c->c_stopping)
		return;
	if (now < c->c_next) {
		bclu_schedule(c, now);
		return;
	}
	n = c->c_url->ru_nnodes + (c->c_have_map ? c->c_map.rm_nshards : 0);
	if (c->c_tried >= n) {	/* a round without an answer: wait */
		log_warnx("redis cluster: no node gave the slot map, retrying");
		c->c_tried = 0;
		c->c_backoff = c->c_backoff * 2 > BCLU_BACKOFF_MAX ? BCLU_BACKOFF_MAX :
		    c->c_backoff * 2;
		c->c_next = now + c->c_backoff;
		bclu_schedule(c, now);
		return;
	}
	bclu_candidate(c, c->c_cand, &host, &port);
	c->c_want = 0;
	c->c_next = now + c->c_backoff;
	if ((c->c_fetch = bclu_conn_open(c, host, port, 1)) == NULL) {
		c->c_cand++;
		c->c_tried++;
		c->c_want = 1;
		bclu_schedule(c, now);
	}
}

static void
bclu_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	bclu_fetch_next(arg, util_now_ms());
}

void
bclu_refresh(struct bclu *c)
{
	if (c->c_stopping)
		return;
	/*
	 * A node asked right after a failover may still give the old map
	 * (and a demoted master still serves SSUBSCRIBE as a replica): read
	 * it again often for a while.
	 */
	c->c_settle_until = util_now_ms() + BCLU_REREAD_MS;
	c->c_want = 1;
	bclu_schedule(c, util_now_ms());
}

int
bclu_owner(const struct bclu *c, const char *ch, size_t len)
{
	const struct bclu_conn	*cc;
	int			 i;

	if (!c->c_have_map || (i = c->c_map.rm_owner[rcluster_keyslot(ch, len)]) < 0 ||
	    (cc = c->c_shard[i]) == NULL || !cc->cc_ready)
		return -1;
	return cc->cc_id;
}

int
bclu_send(struct bclu *c, int id, int argc, const char **argv, const size_t *lens)
{
	int	 i;

	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++)
		if (c->c_shard[i] != NULL && c->c_shard[i]->cc_id == id) {
			bclu_conn_send(c->c_shard[i], argc, argv, lens);
			return 0;
		}
	return -1;
}

static void
bclu_canary_send(struct bclu_conn *cc, int argc, const char **argv, const size_t *lens)
{
	char	*cmd;
	int	 len;

	if ((len = redisFormatCommandArgv(&cmd, argc, argv, lens)) < 0) {
		log_warnx("%s: out of memory", __func__);
		return;
	}
	(void)bclu_cmd_internal(cc, BCLU_RQ_CANARY, cmd, (size_t)len);
	redisFreeCommand(cmd);
}

/* One shard's canary: missed? then the next one, on its command connection. */
static void
bclu_canary_one(struct bclu *c, int i)
{
	struct bclu_conn	*cc = c->c_shard[i];
	const char		*argv[3] = { "SPUBLISH", cc->cc_canary, NULL };
	size_t			 lens[3] = { 8, strlen(cc->cc_canary), 0 };
	char			 seq[32];

	if (lens[1] == 0)
		return;
	if (c->c_pub[i] == NULL) {
		c->c_pub[i] = bclu_conn_open(c, cc->cc_host, cc->cc_port, 2);
		return;		/* the first one next time */
	}
	if (cc->cc_canary_sent > cc->cc_canary_seen) {
		atomic_fetch_add(&c->c_rb->rb_canary_misses, 1);
		log_warnx("redis cluster node %s:%d: canary %llu did not come back",
		    cc->cc_host, cc->cc_port, (unsigned long long)cc->cc_canary_sent);
		if (++cc->cc_canary_missed >= 2) {
			log_warnx("redis cluster node %s:%d: shard subscription lost events:"
			    " reconnecting", cc->cc_host, cc->cc_port);
			if (c->c_nsuspect < BCLU_SUSPECTS) {
				snprintf(c->c_suspect[c->c_nsuspect].sp_host,
				    sizeof(c->c_suspect[0].sp_host), "%s", cc->cc_host);
				c->c_suspect[c->c_nsuspect++].sp_port = cc->cc_port;
			}
			bclu_conn_close(cc, 1);
			return;
		}
	}
	cc->cc_canary_sent++;
	lens[2] = (size_t)snprintf(seq, sizeof(seq), "%llu",
	    (unsigned long long)cc->cc_canary_sent);
	argv[2] = seq;
	log_debug("%s: canary %s to %s:%d on %s", __func__, seq, cc->cc_host, cc->cc_port,
	    cc->cc_canary);
	bclu_canary_send(c->c_pub[i], 3, argv, lens);
}

/* A new shard connection to a node that went for missing canaries: unconfirmed. */
static void
bclu_suspect_take(struct bclu_conn *cc)
{
	struct bclu	*c = cc->cc_c;
	int		 i;

	for (i = 0; i < c->c_nsuspect; i++)
		if (c->c_suspect[i].sp_port == cc->cc_port &&
		    strcmp(c->c_suspect[i].sp_host, cc->cc_host) == 0) {
			cc->cc_canary_missed = 1;
			c->c_suspect[i] = c->c_suspect[--c->c_nsuspect];
			return;
		}
}

static void
bclu_canary_tick(struct bclu *c, uint64_t now)
{
	int	 i;

	if (c->c_canary_iv == 0 || !c->c_have_map || now - c->c_canary_at < c->c_canary_iv)
		return;
	c->c_canary_at = now;
	for (i = 0; i < c->c_map.rm_nshards; i++)
		if (c->c_shard[i] != NULL && c->c_shard[i]->cc_ready)
			bclu_canary_one(c, i);
}

void
bclu_tick(struct bclu *c, uint64_t now)
{
	struct bclu_conn	*cc;
	int			 i, ready = 0, missed = 0;

	if (c->c_fetch != NULL && now - c->c_fetch->cc_at > BCLU_FETCH_MS) {
		log_warnx("redis cluster node %s:%d: no slot map in %d ms",
		    c->c_fetch->cc_host, c->c_fetch->cc_port, BCLU_FETCH_MS);
		bclu_conn_close(c->c_fetch, 0);
	}
	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++) {
		if ((cc = c->c_shard[i]) != NULL && !cc->cc_ready &&
		    now - cc->cc_at > BCLU_CONNECT_MS) {
			log_warnx("redis cluster node %s:%d: not ready in %d ms",
			    cc->cc_host, cc->cc_port, BCLU_CONNECT_MS);
			bclu_conn_close(cc, 1);
			continue;
		}
		if ((cc = c->c_pub[i]) != NULL && !cc->cc_ready &&
		    now - cc->cc_at > BCLU_CONNECT_MS) {
			log_warnx("redis cluster node %s:%d: command connection not ready in %d ms",
			    cc->cc_host, cc->cc_port, BCLU_CONNECT_MS);
			bclu_conn_close(cc, 1);
		}
		ready += c->c_shard[i] != NULL && c->c_shard[i]->cc_ready;
	}
	bclu_canary_tick(c, now);
	/* after the canaries, which may have closed one: counted as it stands */
	for (ready = 0, i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++) {
		ready += c->c_shard[i] != NULL && c->c_shard[i]->cc_ready;
		missed += c->c_shard[i] != NULL && c->c_shard[i]->cc_canary_missed > 0;
	}
	atomic_store(&c->c_rb->rb_rcluster_canary_missed, missed);
	if (c->c_have_map && ready == c->c_map.rm_nshards && c->c_map.rm_uncovered == 0)
		c->c_backoff = BCLU_BACKOFF_MIN;
	else if (c->c_fetch == NULL && !c->c_want) {	/* keep looking until whole */
		c->c_backoff = c->c_backoff * 2 > BCLU_BACKOFF_MAX ? BCLU_BACKOFF_MAX :
		    c->c_backoff * 2;
		bclu_refresh(c);
	}
	if (c->c_fetch == NULL && !c->c_want && c->c_have_map &&
	    now - c->c_read_at >= (now < c->c_settle_until ? BCLU_SETTLE_MS : BCLU_REREAD_MS)) {
		c->c_want = 1;		/* not bclu_refresh(): no new settling */
		bclu_schedule(c, now);
	}
	atomic_store(&c->c_rb->rb_rcluster_ready, ready);
}

void
bclu_counts(const struct bclu *c, int *shards, int *ready)
{
	int	 i;

	*shards = c->c_have_map ? c->c_map.rm_nshards : 0;
	*ready = 0;
	for (i = 0; i < *shards; i++)
		*ready += c->c_shard[i] != NULL && c->c_shard[i]->cc_ready;
}

int
bclu_command(struct bclu *c, const char *key, size_t keylen, bclu_cb *cb, void *priv,
    const char *cmd, size_t len)
{
	struct bclu_req	*rq;
	int		 slot = rcluster_keyslot(key, keylen), i;

	if (c->c_stopping || !c->c_have_map || (i = c->c_map.rm_owner[slot]) < 0 ||
	    c->c_pub[i] == NULL || c->c_ncmd >= c->c_cmd_max ||
	    (rq = calloc(1, sizeof(*rq))) == NULL) {
		atomic_fetch_add(&c->c_rb->rb_rcluster_commands_failed, 1);
		return -1;
	}
	if ((rq->rq_cmd = malloc(len)) == NULL) {
		free(rq);
		atomic_fetch_add(&c->c_rb->rb_rcluster_commands_failed, 1);
		return -1;
	}
	memcpy(rq->rq_cmd, cmd, len);
	rq->rq_len = len;
	rq->rq_kind = BCLU_RQ_CMD;
	rq->rq_slot = slot;
	rq->rq_cb = cb;
	rq->rq_priv = priv;
	c->c_ncmd++;
	atomic_fetch_add(&c->c_rb->rb_rcluster_commands, 1);
	bclu_cmd_write(c->c_pub[i], rq, rq->rq_cmd, len);
	return 0;
}

int
bclu_cmd_ready(const struct bclu *c, const char *key, size_t keylen)
{
	int	 i;

	return c->c_have_map && (i = c->c_map.rm_owner[rcluster_keyslot(key, keylen)]) >= 0 &&
	    c->c_pub[i] != NULL && c->c_pub[i]->cc_ready;
}

int
bclu_set_library(struct bclu *c, const char *cmd, size_t len)
{
	char	*lib;
	int	 i;

	if ((lib = malloc(len)) == NULL)
		return -1;
	memcpy(lib, cmd, len);
	free(c->c_lib);
	c->c_lib = lib;
	c->c_liblen = len;
	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++)
		if (c->c_pub[i] != NULL) {
			c->c_pub[i]->cc_lib = 0;
			(void)bclu_cmd_internal(c->c_pub[i], BCLU_RQ_LOAD, c->c_lib, c->c_liblen);
		}
	return 0;
}

int
bclu_library(const struct bclu *c)
{
	int	 i, rv = 1;

	if (!c->c_have_map || c->c_map.rm_nshards == 0 || c->c_lib == NULL)
		return 0;
	for (i = 0; i < c->c_map.rm_nshards; i++) {
		if (c->c_pub[i] != NULL && c->c_pub[i]->cc_lib == -1)
			return -1;
		if (c->c_pub[i] == NULL || c->c_pub[i]->cc_lib != 1)
			rv = 0;
	}
	return rv;
}

struct bclu *
bclu_new(struct event_base *base, const struct redis_url *u, struct reg_bridge *rb,
    const struct bclu_ops *ops, const char *canary, uint64_t canary_ms, int cmd_max)
{
	struct bclu	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->c_base = base;
	c->c_url = u;
	c->c_rb = rb;
	c->c_ops = *ops;
	c->c_backoff = BCLU_BACKOFF_MIN;
	snprintf(c->c_canary, sizeof(c->c_canary), "%s", canary_ms > 0 ? canary : "");
	c->c_canary_iv = canary_ms;
	c->c_cmd_max = cmd_max;
	if ((c->c_timer = evtimer_new(base, bclu_timer, c)) == NULL) {
		free(c);
		return NULL;
	}
	bclu_refresh(c);
	return c;
}

void
bclu_free(struct bclu *c)
{
	int	 i;

	if (c == NULL)
		return;
	c->c_stopping = 1;
	if (c->c_fetch != NULL) {
		struct bclu_conn *cc = c->c_fetch;

		c->c_fetch = NULL;
		bclu_conn_close(cc, 0);
	}
	for (i = 0; c->c_have_map && i < c->c_map.rm_nshards; i++) {
		if (c->c_shard[i] != NULL)
			bclu_conn_close(c->c_shard[i], 0);
		if (c->c_pub[i] != NULL)
			bclu_conn_close(c->c_pub[i], 0);
	}
	bclu_fail(c, c->c_retry);
	if (c->c_have_map)
		rcluster_map_free(&c->c_map);
	free(c->c_shard);
	free(c->c_pub);
	free(c->c_lib);
	event_free(c->c_timer);
	free(c);
}
