/*
 * Control across nodes, the bridge's side: see bridge_ctl.h.  Everything
 * here runs in the bridge's event loop; Redis replies come back through
 * hiredis callbacks, each with a small request of its own (freed there:
 * hiredis calls every callback, with a NULL reply when the connection
 * goes).
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <json-c/json.h>
#include <openssl/rand.h>

#include "realtimed.h"
#include "bridge_ctl.h"
#include "config.h"
#include "control.h"
#include "ipc.h"
#include "log.h"
#include "registry.h"
#include "revoke.h"
#include "util.h"

#define BCTL_TOUCHED_MAX	64	/* jtis changed while a reload runs */
#define BCTL_LOG_MS		10000	/* one line per kind of refusal this often */
#define BCTL_KEY_MAX		(RT_CHANNEL_MAX + 16)
#define BCTL_SYNC_PAGE		1000	/* revocations read at a time (HSCAN COUNT) */

/* A revocation (or its undoing) Redis has not stored yet. */
struct bctl_pending {
	uint8_t		 bp_cmd;
	int64_t		 bp_until;
	char		 bp_arg[CTL_ARG_MAX + 1];
};

enum { BCTL_LOG_IGNORED, BCTL_LOG_FORGED, BCTL_LOG_STALE, BCTL_LOG_REPLAYED,
	BCTL_LOG_BAD_STORED, BCTL_LOG_KINDS };

struct bctl {
	struct rt_config	*bc_conf;
	struct registry		*bc_reg;
	struct reg_bridge	*bc_rb;
	int			 bc_master_fd;
	bctl_send_fn		*bc_send;	/* Redis is there, else NULL */
	void			*bc_send_arg;
	uint64_t		 bc_gen;	/* bumped per command connection */
	uint64_t		 bc_inst;	/* ours: our own messages come back */
	struct ctl_window	*bc_window;
	struct bctl_pending	*bc_pend;
	size_t			 bc_npend;
	int			 bc_syncing;	/* the revocations are being read (HSCAN) */
	int			 bc_sync_again;
	int			 bc_sync_dirty;	/* too much changed meanwhile: read again */
	int			 bc_ntouched;
	char			*bc_touched[BCTL_TOUCHED_MAX];
	uint64_t		 bc_node_at;	/* ms: register again then */
	uint64_t		 bc_logged[BCTL_LOG_KINDS];
	char			 bc_key_revoked[BCTL_KEY_MAX];
	char			 bc_key_nodes[BCTL_KEY_MAX];
	char			 bc_host[256];
};

/*
 * A command's reply is for bc, while bc_gen is still gen; a revocation's
 * store keeps what it stores, to queue it again if the connection goes.
 */
struct bctl_req {
	struct bctl		*br_bc;
	uint64_t		 br_gen;
	uint32_t		 br_reqid;
	uint8_t			 br_cmd;
	int64_t			 br_until;
	char			 br_arg[CTL_ARG_MAX + 1];
};

/*
 * Store a revocation or an unrevoke's mark, and let the hash live as long
 * as its longest entry (Redis 2.6+: no EXPIRE options needed).
 */
static const char bctl_store_lua[] =
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
	"local want = tonumber(ARGV[3]) - tonumber(ARGV[4]) "
	"if redis.call('TTL', KEYS[1]) < want then redis.call('EXPIRE', KEYS[1], want) end "
	"return 1";
/* Drop an ended entry, unless another node wrote the field meanwhile. */
static const char bctl_drop_lua[] =
	"if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
	"return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0";

static void	bctl_sync(struct bctl *);

static int64_t
bctl_wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
bctl_secret(const struct bctl *bc, size_t *len)
{
	*len = strlen(bc->bc_conf->c_control_secret);
	return bc->bc_conf->c_control_secret;
}

static int
bctl_enabled(const struct bctl *bc)
{
	return bc->bc_conf->c_control_secret[0] != '\0';
}

/* A refusal of kind k: counted by the caller, a log line now and then. */
static void
bctl_log(struct bctl *bc, int k, const char *fmt, const char *why)
{
	uint64_t	 now = util_now_ms();

	if (bc->bc_logged[k] != 0 && now - bc->bc_logged[k] < BCTL_LOG_MS)
		return;
	bc->bc_logged[k] = now;
	log_warnx(fmt, bc->bc_conf->c_control_channel, why);
}

static struct bctl_req *
bctl_req(struct bctl *bc, uint32_t reqid)
{
	struct bctl_req	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->br_bc = bc;
	r->br_gen = bc->bc_gen;
	r->br_reqid = reqid;
	return r;
}

/*
 * A command on key (NULL: any node); -1 when it was not sent (the
 * connection is going, no master for the key): then priv is the caller's
 * to free.
 */
static int
bctl_cmd(struct bctl *bc, const char *key, redisCallbackFn *fn, void *priv, const char *fmt,
    ...)
{
	va_list	 ap;
	int	 rv;

	if (bc->bc_send == NULL)
		return -1;
	va_start(ap, fmt);
	rv = bc->bc_send(bc->bc_send_arg, key, fn, priv, fmt, ap);
	va_end(ap);
	return rv;
}

/* Answers to the master: 'N' and an int64, 'J' and JSON, or 'E' and a reason. */
static void
bctl_answer(struct bctl *bc, uint32_t type, uint32_t reqid, char kind, const void *p,
    size_t len)
{
	char	*msg;

	if (reqid == 0)
		return;
	if (len > IPC_CTL_MAX - 1) {
		bctl_answer(bc, type, reqid, 'E', "the answer is too long", 22);
		return;
	}
	if ((msg = malloc(1 + len)) == NULL)
		fatal("malloc");
	msg[0] = kind;
	memcpy(msg + 1, p, len);
	if (ipc_send(bc->bc_master_fd, type, reqid, msg, 1 + len, -1) == -1 && kind != 'E')
		bctl_answer(bc, type, reqid, 'E', "the answer did not fit the master's socket",
		    42);
	free(msg);
}

static void
bctl_reply_error(struct bctl *bc, uint32_t type, uint32_t reqid, const char *why)
{
	bctl_answer(bc, type, reqid, 'E', why, strlen(why));
}

/* A revocation (or unrevoke) for Redis later; 0, or -1 when control_queue is full. */
static int
bctl_queue(struct bctl *bc, int cmd, const char *arg, int64_t until)
{
	struct bctl_pending	*p;

	if (bc->bc_npend >= (size_t)bc->bc_conf->c_control_queue) {
		atomic_fetch_add(&bc->bc_rb->rb_control_dropped, 1);
		return -1;
	}
	p = &bc->bc_pend[bc->bc_npend++];
	p->bp_cmd = (uint8_t)cmd;
	p->bp_until = until;
	snprintf(p->bp_arg, sizeof(p->bp_arg), "%s", arg);
	atomic_store(&bc->bc_rb->rb_control_queued, (int64_t)bc->bc_npend);
	return 0;
}

/* ---- publishing ---------------------------------------------------------------- */

static void
bctl_on_publish(redisAsyncContext *ac, void *r, void *priv)
{
	struct bctl_req	*rq = priv;
	redisReply	*reply = r;
	int64_t		 n;

	(void)ac;
	if (reply == NULL)
		bctl_reply_error(rq->br_bc, IPC_CTL_CONTROL_REPLY, rq->br_reqid,
		    "redis connection lost: this node only");
	else if (reply->type != REDIS_REPLY_INTEGER)
		bctl_reply_error(rq->br_bc, IPC_CTL_CONTROL_REPLY, rq->br_reqid,
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply from redis");
	else {
		n = (int64_t)reply->integer;
		bctl_answer(rq->br_bc, IPC_CTL_CONTROL_REPLY, rq->br_reqid, 'N', &n, sizeof(n));
	}
	free(rq);
}

/* A revocation's store: lost with the connection, it waits for the next. */
static void
bctl_on_store(redisAsyncContext *ac, void *r, void *priv)
{
	struct bctl_req	*rq = priv;
	redisReply	*reply = r;

	(void)ac;
	if (reply == NULL)
		bctl_queue(rq->br_bc, rq->br_cmd, rq->br_arg, rq->br_until);
	else if (reply->type == REDIS_REPLY_ERROR)
		log_warnx("redis: storing a revocation in %s: %s", rq->br_bc->bc_key_revoked,
		    reply->str);
	free(rq);
}

static void
bctl_on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply	*reply = r;

	(void)ac;
	(void)priv;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		log_warnx("redis: control: %s", reply->str);
}

/*
 * Sign and publish one command, storing a revocation's change first; the
 * master's request reqid (0: none) is answered with how many bridges
 * heard it.  With no connection a revocation waits in the queue.
 */
static void
bctl_publish(struct bctl *bc, int cmd, const char *arg, int64_t until, uint32_t reqid)
{
	struct ctl_msg	 m;
	struct bctl_req	*rq;
	char		 out[CTL_MSG_MAX], stored[CTL_STORED_MAX];
	const char	*secret;
	size_t		 slen;
	ssize_t		 n;
	int64_t		 now = (int64_t)time(NULL), keep = until;
	int		 sn = 0;

	memset(&m, 0, sizeof(m));
	m.cm_cmd = cmd;
	m.cm_ts = bctl_wall_ms();
	if (RAND_bytes(m.cm_nonce, sizeof(m.cm_nonce)) != 1)
		fatalx("%s: no randomness", __func__);
	snprintf(m.cm_node, sizeof(m.cm_node), "%s", bc->bc_conf->c_node_id);
	m.cm_inst = bc->bc_inst;
	snprintf(m.cm_arg, sizeof(m.cm_arg), "%s", arg);
	m.cm_until = cmd == CTL_REVOKE ? until : 0;
	secret = bctl_secret(bc, &slen);
	/* an unrevoke's mark outlasts the revocations it ends */
	if (cmd == CTL_UNREVOKE)
		keep = now + bc->bc_conf->c_revocation_ttl / 1000;
	if ((n = ctl_encode(&m, secret, slen, out, sizeof(out))) == -1 ||
	    (cmd == CTL_REVOKE && (sn = ctl_stored_encode(secret, slen, arg, until, stored,
	    sizeof(stored))) == -1) ||
	    (cmd == CTL_UNREVOKE && (sn = ctl_unrevoked_encode(secret, slen, arg, keep, stored,
	    sizeof(stored))) == -1)) {
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid, "cannot encode the command");
		return;
	}
	if (cmd == CTL_REVOKE || cmd == CTL_UNREVOKE) {
		rq = bctl_req(bc, 0);
		rq->br_cmd = (uint8_t)cmd;
		rq->br_until = until;
		snprintf(rq->br_arg, sizeof(rq->br_arg), "%s", arg);
		if (bctl_cmd(bc, bc->bc_key_revoked, bctl_on_store, rq,
		    "EVAL %s 1 %s %s %b %lld %lld",
		    bctl_store_lua, bc->bc_key_revoked, arg, stored, (size_t)sn,
		    (long long)keep, (long long)now) == -1) {
			free(rq);
			if (bctl_queue(bc, cmd, arg, until) == -1)
				bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
				    "redis is down and control_queue is full: this node only");
			else
				bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
				    "redis is down: this node now, the other nodes when it is back");
			return;
		}
	}
	rq = bctl_req(bc, reqid);
	if (bctl_cmd(bc, NULL, bctl_on_publish, rq, "PUBLISH %s %b", bc->bc_conf->c_control_channel,
	    out, (size_t)n) == -1) {
		free(rq);
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid, "redis is down: this node only");
		return;
	}
	atomic_fetch_add(&bc->bc_rb->rb_control_sent, 1);
}

/*
 * A jti changed while the revocations are read back: what the read brings
 * for it is older than what the master holds, and is skipped.
 */
static void
bctl_touch(struct bctl *bc, const char *jti)
{
	if (!bc->bc_syncing)
		return;
	if (bc->bc_ntouched == BCTL_TOUCHED_MAX ||
	    (bc->bc_touched[bc->bc_ntouched] = strdup(jti)) == NULL) {
		bc->bc_sync_dirty = 1;		/* read it all again */
		return;
	}
	bc->bc_ntouched++;
}

static int
bctl_touched(const struct bctl *bc, const char *jti)
{
	int	 i;

	for (i = 0; i < bc->bc_ntouched; i++)
		if (strcmp(bc->bc_touched[i], jti) == 0)
			return 1;
	return 0;
}

/*
 * The master's own revoke or unrevoke, once more, behind whatever this
 * bridge sent it before: a read of the revocations that the master took
 * in between must not have the last word.
 */
static void
bctl_echo(struct bctl *bc, int cmd, const char *jti, int64_t until)
{
	uint8_t			 msg[1 + sizeof(struct ipc_sync_entry)];
	struct ipc_sync_entry	 e;

	rvk_digest(jti, strlen(jti), e.se_digest);
	e.se_until = cmd == CTL_REVOKE ? until : 0;
	msg[0] = IPC_SYNC_ENTRIES;
	memcpy(msg + 1, &e, sizeof(e));
	ipc_send(bc->bc_master_fd, IPC_CTL_SYNC, 0, msg, sizeof(msg), -1);
}

/* The admin's command, carried out on this node already: to every node. */
static void
bctl_control(struct bctl *bc, uint32_t reqid, const char *buf, size_t len)
{
	struct ipc_control	 ic;
	char			 arg[IPC_CONTROL_MAX];

	if (ipc_control_decode((const uint8_t *)buf, len, &ic, arg) == -1 ||
	    ctl_cmd_name(ic.ic_cmd) == NULL)
		fatalx("%s: a malformed control command from the master", __func__);
	if (!bctl_enabled(bc)) {
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "control_secret is not set: this node only");
		return;
	}
	if (ic.ic_cmd == CTL_REVOKE || ic.ic_cmd == CTL_UNREVOKE) {
		bctl_touch(bc, arg);
		bctl_echo(bc, ic.ic_cmd, arg, ic.ic_until);
	}
	if (bc->bc_send != NULL) {
		bctl_publish(bc, ic.ic_cmd, arg, ic.ic_until, reqid);
		return;
	}
	if (ic.ic_cmd == CTL_KICK || ic.ic_cmd == CTL_KICK_USER)
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "redis is down: this node only");
	/* a revocation is kept until Redis is back, then stored and sent */
	else if (bctl_queue(bc, ic.ic_cmd, arg, ic.ic_until) == -1)
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "redis is down and control_queue is full: this node only");
	else
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "redis is down: this node now, the other nodes when it is back");
}

/* ---- what other nodes send ----------------------------------------------------- */

void
bctl_message(struct bctl *bc, const char *data, size_t len)
{
	struct ctl_msg	 m;
	uint8_t		 msg[IPC_CONTROL_MAX];
	const char	*secret, *why = "malformed";
	size_t		 slen, n;

	secret = bctl_secret(bc, &slen);
	if (slen == 0) {
		atomic_fetch_add(&bc->bc_rb->rb_control_ignored, 1);
		bctl_log(bc, BCTL_LOG_IGNORED, "%s: a control message ignored: %s",
		    "control_secret is not set");
		return;
	}
	if (ctl_decode(data, len, secret, slen, &m, &why) != CTL_OK) {
		atomic_fetch_add(&bc->bc_rb->rb_control_forged, 1);
		bctl_log(bc, BCTL_LOG_FORGED, "%s: a control message dropped: %s", why);
		return;
	}
	switch (ctl_window_check(bc->bc_window, m.cm_nonce, m.cm_ts, bctl_wall_ms())) {
	case CTL_STALE:
		atomic_fetch_add(&bc->bc_rb->rb_control_stale, 1);
		bctl_log(bc, BCTL_LOG_STALE, "%s: a control message dropped: %s",
		    "stale (check the clocks, control_max_skew)");
		return;
	case CTL_REPLAYED:
		atomic_fetch_add(&bc->bc_rb->rb_control_replayed, 1);
		bctl_log(bc, BCTL_LOG_REPLAYED, "%s: a control message dropped: %s",
		    "replayed");
		return;
	}
	if (m.cm_inst == bc->bc_inst)
		return;			/* ours: the master did it already */
	if (m.cm_cmd == CTL_REVOKE || m.cm_cmd == CTL_UNREVOKE)
		bctl_touch(bc, m.cm_arg);
	if ((n = ipc_control_encode(msg, m.cm_cmd, 0, m.cm_until, m.cm_arg,
	    strlen(m.cm_arg))) == 0)
		return;
	log_info("control: %s %s from node %s", ctl_cmd_name(m.cm_cmd), m.cm_arg, m.cm_node);
	atomic_fetch_add(&bc->bc_rb->rb_control_applied, 1);
	ipc_send(bc->bc_master_fd, IPC_CTL_APPLY, 0, msg, n, -1);
}

/* ---- reading the revocations back --------------------------------------------- */

static void
bctl_sync_phase(struct bctl *bc, uint8_t phase)
{
	ipc_send(bc->bc_master_fd, IPC_CTL_SYNC, 0, &phase, 1, -1);
}

static void
bctl_sync_done(struct bctl *bc, uint8_t phase)
{
	int	 i, again = bc->bc_sync_again || bc->bc_sync_dirty;

	bctl_sync_phase(bc, phase);
	for (i = 0; i < bc->bc_ntouched; i++)
		free(bc->bc_touched[i]);
	bc->bc_ntouched = 0;
	bc->bc_syncing = 0;
	bc->bc_sync_again = bc->bc_sync_dirty = 0;
	if (again && bc->bc_send != NULL && phase != IPC_SYNC_ABORT)
		bctl_sync(bc);
}

/* An ended entry (a revocation past its until, an old unrevoke's mark). */
static void
bctl_drop(struct bctl *bc, const redisReply *k, const redisReply *v)
{
	bctl_cmd(bc, bc->bc_key_revoked, bctl_on_reply, NULL, "EVAL %s 1 %s %b %b", bctl_drop_lua,
	    bc->bc_key_revoked, k->str, k->len, v->str, v->len);
}

static void	bctl_on_sync(redisAsyncContext *, void *, void *);

/* The next page of the stored revocations, from cursor: 0, or -1 when not asked. */
static int
bctl_sync_ask(struct bctl *bc, const char *cursor)
{
	struct bctl_req	*rq = bctl_req(bc, 0);

	if (bctl_cmd(bc, bc->bc_key_revoked, bctl_on_sync, rq, "HSCAN %s %s COUNT %d",
	    bc->bc_key_revoked, cursor, BCTL_SYNC_PAGE) == -1) {
		free(rq);
		return -1;
	}
	return 0;
}

/*
 * What Redis holds for each jti is the last word on it: a revocation (its
 * until) or an unrevoke's mark (an entry of until 0: the master drops
 * it).  A jti Redis does not name, or names with a value we cannot check,
 * stays as the master holds it.  Read a page at a time (HSCAN: every
 * entry there from start to end comes at least once; the master takes
 * each as it comes, so a page twice is no harm), so that neither Redis
 * nor the bridge has a whole large table in one reply.
 */
static void
bctl_on_sync(redisAsyncContext *ac, void *r, void *priv)
{
	struct bctl_req		*rq = priv;
	struct bctl		*bc = rq->br_bc;
	redisReply		*reply = r, *k, *v, *page;
	uint8_t			*msg;
	struct ipc_sync_entry	 e;
	const char		*secret;
	char			 cursor[32];
	size_t			 i, slen, n = 0, loaded = 0, bad = 0;
	int64_t			 until, now = (int64_t)time(NULL);
	int			 revoked;

	(void)ac;
	if (rq->br_gen != bc->bc_gen || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[0]->len >= sizeof(cursor) ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY || bc->bc_sync_dirty) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_warnx("redis: HSCAN %s: %s", bc->bc_key_revoked, reply->str);
		else if (reply != NULL && rq->br_gen == bc->bc_gen && !bc->bc_sync_dirty)
			log_warnx("redis: HSCAN %s: an answer of another shape", bc->bc_key_revoked);
		if (rq->br_gen == bc->bc_gen && bc->bc_syncing) {
			if (bc->bc_sync_dirty && reply != NULL) {
				bctl_sync_done(bc, IPC_SYNC_END);	/* and again */
			} else
				bctl_sync_done(bc, IPC_SYNC_ABORT);
		}
		free(rq);
		return;
	}
	free(rq);
	memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
	cursor[reply->element[0]->len] = '\0';
	page = reply->element[1];
	if ((msg = malloc(1 + IPC_SYNC_BATCH * sizeof(e))) == NULL)
		fatal("malloc");
	msg[0] = IPC_SYNC_ENTRIES;
	secret = bctl_secret(bc, &slen);
	for (i = 0; i + 1 < page->elements; i += 2) {
		k = page->element[i];
		v = page->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		revoked = 1;
		if (!ctl_arg_valid(k->str, k->len) ||
		    (ctl_stored_decode(secret, slen, k->str, v->str, v->len, &until) == -1 &&
		    (revoked = 0, ctl_unrevoked_decode(secret, slen, k->str, v->str, v->len,
		    &until)) == -1)) {
			bad++;
			continue;
		}
		if (until <= now) {
			/* ended: the master's copy ends by itself, a mark has done its work */
			bctl_drop(bc, k, v);
			continue;
		}
		if (bctl_touched(bc, k->str))
			continue;
		rvk_digest(k->str, k->len, e.se_digest);
		e.se_until = revoked ? until : 0;
		memcpy(msg + 1 + n * sizeof(e), &e, sizeof(e));
		loaded += revoked;
		if (++n == IPC_SYNC_BATCH) {
			ipc_send(bc->bc_master_fd, IPC_CTL_SYNC, 0, msg, 1 + n * sizeof(e), -1);
			n = 0;
		}
	}
	if (n > 0)
		ipc_send(bc->bc_master_fd, IPC_CTL_SYNC, 0, msg, 1 + n * sizeof(e), -1);
	free(msg);
	atomic_fetch_add(&bc->bc_rb->rb_revocations_loaded, (int64_t)loaded);
	if (bad > 0) {
		atomic_fetch_add(&bc->bc_rb->rb_revocations_bad, (int64_t)bad);
		bctl_log(bc, BCTL_LOG_BAD_STORED, "%s:revoked: %s", "stored revocations"
		    " with a wrong MAC ignored (another control_secret?)");
	}
	if (strcmp(cursor, "0") == 0)
		bctl_sync_done(bc, IPC_SYNC_END);
	else if (bctl_sync_ask(bc, cursor) == -1)
		bctl_sync_done(bc, IPC_SYNC_ABORT);	/* read again on the next connection */
}

/*
 * Read every stored revocation: what this node missed while it was away
 * (or before it started).
 */
static void
bctl_sync(struct bctl *bc)
{
	if (bc->bc_send == NULL || bc->bc_syncing || !bctl_enabled(bc))
		return;
	if (bctl_sync_ask(bc, "0") == -1)
		return;
	bc->bc_syncing = 1;
	bctl_sync_phase(bc, IPC_SYNC_BEGIN);
}

/* ---- the node registry ----------------------------------------------------------- */

static void
bctl_register(struct bctl *bc, uint64_t now)
{
	struct json_object	*o = json_object_new_object();
	struct reg_totals	 t;
	struct timeval		 tv = { (time_t)bc->bc_reg->r_hdr->rh_started, 0 };
	char			 ts[RT_TIMESTAMP_LEN + 1];
	const char		*s;
	size_t			 len;
	int64_t			 ttl = bc->bc_conf->c_node_ttl;

	bc->bc_node_at = now + (uint64_t)ttl / 3;
	reg_totals(bc->bc_reg, &t);
	util_timestamp(ts, sizeof(ts), &tv);
	json_object_object_add(o, "id", json_object_new_string(bc->bc_conf->c_node_id));
	json_object_object_add(o, "host", json_object_new_string(bc->bc_host));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "started", json_object_new_string(ts));
	json_object_object_add(o, "pid", json_object_new_int64((int64_t)getppid()));
	json_object_object_add(o, "workers", json_object_new_int64(t.t_workers));
	json_object_object_add(o, "connections", json_object_new_int64(t.t_connections));
	json_object_object_add(o, "control", json_object_new_boolean(bctl_enabled(bc)));
	json_object_object_add(o, "expires", json_object_new_int64(bctl_wall_ms() + ttl));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	bctl_cmd(bc, bc->bc_key_nodes, bctl_on_reply, NULL, "HSET %s %s %b", bc->bc_key_nodes,
	    bc->bc_conf->c_node_id, s, len);
	/* the hash outlives its nodes by one ttl at most */
	bctl_cmd(bc, bc->bc_key_nodes, bctl_on_reply, NULL, "PEXPIRE %s %lld", bc->bc_key_nodes,
	    (long long)(2 * ttl));
	json_object_put(o);
	atomic_store(&bc->bc_rb->rb_node_seen, now);
}

static int
bctl_node_cmp(const void *a, const void *b)
{
	struct json_object	*x = *(struct json_object *const *)a;
	struct json_object	*y = *(struct json_object *const *)b;
	struct json_object	*ix, *iy;

	json_object_object_get_ex(x, "id", &ix);
	json_object_object_get_ex(y, "id", &iy);
	return strcmp(json_object_get_string(ix), json_object_get_string(iy));
}

static void
bctl_on_nodes(redisAsyncContext *ac, void *r, void *priv)
{
	struct bctl_req		*rq = priv;
	struct bctl		*bc = rq->br_bc;
	redisReply		*reply = r, *k, *v;
	struct json_object	*arr = json_object_new_array(), *o, *ex, *id;
	const char		*s;
	size_t			 i, len;
	int64_t			 now = bctl_wall_ms();

	(void)ac;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		bctl_reply_error(bc, IPC_CTL_NODES_REPLY, rq->br_reqid, reply == NULL ?
		    "redis connection lost" : reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "unexpected reply from redis");
		json_object_put(arr);
		free(rq);
		return;
	}
	for (i = 0; i + 1 < reply->elements; i += 2) {
		k = reply->element[i];
		v = reply->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		o = json_tokener_parse(v->str);
		if (o == NULL || !json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "expires", &ex) ||
		    !json_object_is_type(ex, json_type_int) ||
		    !json_object_object_get_ex(o, "id", &id) ||
		    !json_object_is_type(id, json_type_string) ||
		    json_object_get_int64(ex) <= now) {
			/* gone (or not ours): its ttl passed without a refresh */
			json_object_put(o);
			bctl_cmd(bc, bc->bc_key_nodes, bctl_on_reply, NULL, "HDEL %s %b",
			    bc->bc_key_nodes, k->str, k->len);
			continue;
		}
		json_object_array_add(arr, o);
	}
	json_object_array_sort(arr, bctl_node_cmp);
	s = json_object_to_json_string_length(arr, JSON_C_TO_STRING_PLAIN, &len);
	bctl_answer(bc, IPC_CTL_NODES_REPLY, rq->br_reqid, 'J', s, len);
	json_object_put(arr);
	free(rq);
}

/* ---- the bridge's calls ----------------------------------------------------------- */

void
bctl_request(struct bctl *bc, const struct ipc_hdr *hdr, const char *buf)
{
	struct bctl_req	*rq;

	if (hdr->type == IPC_CTL_CONTROL) {
		bctl_control(bc, hdr->peerid, buf, hdr->len);
		return;
	}
	rq = bctl_req(bc, hdr->peerid);
	if (bctl_cmd(bc, bc->bc_key_nodes, bctl_on_nodes, rq, "HGETALL %s",
	    bc->bc_key_nodes) == -1) {
		free(rq);
		bctl_reply_error(bc, IPC_CTL_NODES_REPLY, hdr->peerid, "redis is down");
	}
}

void
bctl_set_cmd(struct bctl *bc, bctl_send_fn *send, void *arg)
{
	struct bctl_pending	*p;
	size_t			 i, n = bc->bc_npend;

	bc->bc_send = send;
	bc->bc_send_arg = arg;
	bc->bc_gen++;
	if (send == NULL) {
		if (bc->bc_syncing)
			bctl_sync_done(bc, IPC_SYNC_ABORT);
		return;
	}
	/*
	 * What waited for Redis goes first, so that the reload reads it back
	 * (from a copy: what fails again queues itself anew).
	 */
	if (bctl_enabled(bc) && n > 0) {
		if ((p = reallocarray(NULL, n, sizeof(*p))) == NULL)
			fatal("reallocarray");
		memcpy(p, bc->bc_pend, n * sizeof(*p));
		bc->bc_npend = 0;
		atomic_store(&bc->bc_rb->rb_control_queued, 0);
		for (i = 0; i < n; i++)
			bctl_publish(bc, p[i].bp_cmd, p[i].bp_arg, p[i].bp_until, 0);
		free(p);
	}
	bctl_sync(bc);
	bctl_register(bc, util_now_ms());
}

void
bctl_keys(const struct bctl *bc, const char **revoked, const char **nodes)
{
	*revoked = bc->bc_key_revoked;
	*nodes = bc->bc_key_nodes;
}

void
bctl_secret_changed(struct bctl *bc)
{
	if (bc->bc_syncing)
		bc->bc_sync_again = 1;
	else
		bctl_sync(bc);
	bc->bc_node_at = 0;		/* "control" in the node registry */
}

void
bctl_tick(struct bctl *bc, uint64_t now)
{
	if (bc->bc_send != NULL && now >= bc->bc_node_at)
		bctl_register(bc, now);
}

struct bctl *
bctl_new(struct rt_config *conf, struct registry *reg, int master_fd)
{
	struct bctl	*bc;

	if ((bc = calloc(1, sizeof(*bc))) == NULL)
		return NULL;
	bc->bc_conf = conf;
	bc->bc_reg = reg;
	bc->bc_rb = &reg->r_hdr->rh_bridge;
	bc->bc_master_fd = master_fd;
	if (RAND_bytes((unsigned char *)&bc->bc_inst, sizeof(bc->bc_inst)) != 1)
		fatalx("%s: no randomness", __func__);
	if ((bc->bc_window = ctl_window_new((size_t)conf->c_control_nonces,
	    conf->c_control_max_skew)) == NULL ||
	    (conf->c_control_queue > 0 && (bc->bc_pend = calloc((size_t)conf->c_control_queue,
	    sizeof(*bc->bc_pend))) == NULL)) {
		ctl_window_free(bc->bc_window);
		free(bc);
		return NULL;
	}
	snprintf(bc->bc_key_revoked, sizeof(bc->bc_key_revoked), "%s:revoked",
	    conf->c_control_channel);
	snprintf(bc->bc_key_nodes, sizeof(bc->bc_key_nodes), "%s:nodes",
	    conf->c_control_channel);
	if (gethostname(bc->bc_host, sizeof(bc->bc_host)) == -1)
		snprintf(bc->bc_host, sizeof(bc->bc_host), "unknown");
	bc->bc_host[sizeof(bc->bc_host) - 1] = '\0';
	atomic_store(&bc->bc_rb->rb_control_queued, 0);
	return bc;
}

void
bctl_free(struct bctl *bc)
{
	int	 i;

	if (bc == NULL)
		return;
	for (i = 0; i < bc->bc_ntouched; i++)
		free(bc->bc_touched[i]);
	ctl_window_free(bc->bc_window);
	free(bc->bc_pend);
	free(bc);
}
