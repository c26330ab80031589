/*
 * Control across nodes, the bridge's side: see bridge_ctl.h.  Everything
 * here runs in the bridge's event loop; Redis replies come back through
 * hiredis callbacks, each with a small request of its own (freed there:
 * hiredis calls every callback, with a NULL reply when the connection
 * goes).
 */
#include <sys/types.h>

#include <errno.h>
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

#define BCTL_UNREVOKED_MAX	64	/* unrevokes remembered while a reload runs */
#define BCTL_LOG_MS		10000	/* one line per kind of refusal this often */
#define BCTL_KEY_MAX		(RT_CHANNEL_MAX + 16)

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
	redisAsyncContext	*bc_cmd;
	uint64_t		 bc_gen;	/* bumped per command connection */
	uint64_t		 bc_inst;	/* ours: our own messages come back */
	struct ctl_window	*bc_window;
	struct bctl_pending	*bc_pend;
	size_t			 bc_npend;
	int			 bc_syncing;	/* the reload's HGETALL is in flight */
	int			 bc_sync_again;
	int			 bc_nunrevoked;
	char			*bc_unrevoked[BCTL_UNREVOKED_MAX];
	uint64_t		 bc_node_at;	/* ms: register again then */
	uint64_t		 bc_logged[BCTL_LOG_KINDS];
	char			 bc_key_revoked[BCTL_KEY_MAX];
	char			 bc_key_nodes[BCTL_KEY_MAX];
	char			 bc_host[256];
};

/* A command's reply is for bc, while bc_gen is still gen. */
struct bctl_req {
	struct bctl		*br_bc;
	uint64_t		 br_gen;
	uint32_t		 br_reqid;
};

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

	if ((r = malloc(sizeof(*r))) == NULL)
		fatal("malloc");
	r->br_bc = bc;
	r->br_gen = bc->bc_gen;
	r->br_reqid = reqid;
	return r;
}

static void
bctl_reply_error(struct bctl *bc, uint32_t type, uint32_t reqid, const char *why)
{
	if (reqid != 0)
		ipc_send(bc->bc_master_fd, type, reqid, why, strlen(why), -1);
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
	else if (rq->br_reqid != 0) {
		n = (int64_t)reply->integer;
		ipc_send(rq->br_bc->bc_master_fd, IPC_CTL_CONTROL_REPLY, rq->br_reqid, &n,
		    sizeof(n), -1);
	}
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
 * Sign and publish one command (and store a revocation's change) on the
 * command connection; the master's request reqid (0: none) is answered
 * with how many bridges heard it.  -1 when it cannot be encoded.
 */
static int
bctl_publish(struct bctl *bc, int cmd, const char *arg, int64_t until, uint32_t reqid)
{
	struct ctl_msg	 m;
	char		 out[CTL_MSG_MAX], stored[CTL_STORED_MAX];
	const char	*secret;
	size_t		 slen;
	ssize_t		 n;
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
	if ((n = ctl_encode(&m, secret, slen, out, sizeof(out))) == -1 ||
	    (cmd == CTL_REVOKE && (sn = ctl_stored_encode(secret, slen, arg, until, stored,
	    sizeof(stored))) == -1)) {
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid, "cannot encode the command");
		return -1;
	}
	if (cmd == CTL_REVOKE) {
		redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "HSET %s %s %b",
		    bc->bc_key_revoked, arg, stored, (size_t)sn);
		/* the hash lives as long as its last revocation */
		redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "EXPIREAT %s %lld NX",
		    bc->bc_key_revoked, (long long)until);
		redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "EXPIREAT %s %lld GT",
		    bc->bc_key_revoked, (long long)until);
	} else if (cmd == CTL_UNREVOKE)
		redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "HDEL %s %s",
		    bc->bc_key_revoked, arg);
	redisAsyncCommand(bc->bc_cmd, bctl_on_publish, bctl_req(bc, reqid), "PUBLISH %s %b",
	    bc->bc_conf->c_control_channel, out, (size_t)n);
	atomic_fetch_add(&bc->bc_rb->rb_control_sent, 1);
	return 0;
}

/* While a reload of the revocations runs, an unrevoke must not come back. */
static void
bctl_unrevoked_during_sync(struct bctl *bc, const char *jti)
{
	if (!bc->bc_syncing)
		return;
	if (bc->bc_nunrevoked == BCTL_UNREVOKED_MAX ||
	    (bc->bc_unrevoked[bc->bc_nunrevoked] = strdup(jti)) == NULL) {
		bc->bc_sync_again = 1;		/* read them all again afterwards */
		return;
	}
	bc->bc_nunrevoked++;
}

/* A revocation made while the reload runs must survive its end. */
static void
bctl_revoked_during_sync(struct bctl *bc, const char *jti, int64_t until)
{
	uint8_t			 msg[1 + sizeof(struct ipc_sync_entry)];
	struct ipc_sync_entry	 e;

	if (!bc->bc_syncing)
		return;
	rvk_digest(jti, strlen(jti), e.se_digest);
	e.se_until = until;
	msg[0] = IPC_SYNC_ENTRIES;
	memcpy(msg + 1, &e, sizeof(e));
	ipc_send(bc->bc_master_fd, IPC_CTL_SYNC, 0, msg, sizeof(msg), -1);
}

/* The admin's command, carried out on this node already: to every node. */
static void
bctl_control(struct bctl *bc, uint32_t reqid, const char *buf, size_t len)
{
	struct ipc_control	 ic;
	struct bctl_pending	*p;
	char			 arg[IPC_CONTROL_MAX];
	size_t			 slen;

	if (ipc_control_decode((const uint8_t *)buf, len, &ic, arg) == -1 ||
	    ctl_cmd_name(ic.ic_cmd) == NULL)
		fatalx("%s: a malformed control command from the master", __func__);
	if (bctl_secret(bc, &slen) == NULL || slen == 0) {
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "control_secret is not set: this node only");
		return;
	}
	if (ic.ic_cmd == CTL_UNREVOKE)
		bctl_unrevoked_during_sync(bc, arg);
	else if (ic.ic_cmd == CTL_REVOKE)
		bctl_revoked_during_sync(bc, arg, ic.ic_until);
	if (bc->bc_cmd != NULL) {
		bctl_publish(bc, ic.ic_cmd, arg, ic.ic_until, reqid);
		return;
	}
	if (ic.ic_cmd == CTL_KICK || ic.ic_cmd == CTL_KICK_USER) {
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "redis is down: this node only");
		return;
	}
	/* a revocation is kept until Redis is back, then stored and sent */
	if (bc->bc_npend >= (size_t)bc->bc_conf->c_control_queue) {
		atomic_fetch_add(&bc->bc_rb->rb_control_dropped, 1);
		bctl_reply_error(bc, IPC_CTL_CONTROL_REPLY, reqid,
		    "redis is down and control_queue is full: this node only");
		return;
	}
	p = &bc->bc_pend[bc->bc_npend++];
	p->bp_cmd = ic.ic_cmd;
	p->bp_until = ic.ic_until;
	memcpy(p->bp_arg, arg, ic.ic_len + 1);		/* ic_len <= CTL_ARG_MAX */
	atomic_store(&bc->bc_rb->rb_control_queued, (int64_t)bc->bc_npend);
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
	int		 rv;

	secret = bctl_secret(bc, &slen);
	if (slen == 0) {
		atomic_fetch_add(&bc->bc_rb->rb_control_ignored, 1);
		bctl_log(bc, BCTL_LOG_IGNORED, "%s: a control message ignored: %s",
		    "control_secret is not set");
		return;
	}
	if ((rv = ctl_decode(data, len, secret, slen, &m, &why)) != CTL_OK) {
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
	if (m.cm_cmd == CTL_UNREVOKE)
		bctl_unrevoked_during_sync(bc, m.cm_arg);
	if ((n = ipc_control_encode(msg, m.cm_cmd, 0, m.cm_until, m.cm_arg,
	    strlen(m.cm_arg))) == 0)
		return;
	log_info("control: %s %s from node %s", ctl_cmd_name(m.cm_cmd), m.cm_arg, m.cm_node);
	atomic_fetch_add(&bc->bc_rb->rb_control_applied, 1);
	ipc_send(bc->bc_master_fd, IPC_CTL_APPLY, 0, msg, n, -1);
}

/* ---- reading the revocations back --------------------------------------------- */

static int
bctl_was_unrevoked(const struct bctl *bc, const char *jti)
{
	int	 i;

	for (i = 0; i < bc->bc_nunrevoked; i++)
		if (strcmp(bc->bc_unrevoked[i], jti) == 0)
			return 1;
	return 0;
}

static void
bctl_sync_phase(struct bctl *bc, uint8_t phase)
{
	ipc_send(bc->bc_master_fd, IPC_CTL_SYNC, 0, &phase, 1, -1);
}

static void
bctl_sync_done(struct bctl *bc, uint8_t phase)
{
	int	 i;

	bctl_sync_phase(bc, phase);
	for (i = 0; i < bc->bc_nunrevoked; i++)
		free(bc->bc_unrevoked[i]);
	bc->bc_nunrevoked = 0;
	bc->bc_syncing = 0;
	if (bc->bc_sync_again && bc->bc_cmd != NULL) {
		bc->bc_sync_again = 0;
		bctl_sync(bc);
	}
}

static void
bctl_on_sync(redisAsyncContext *ac, void *r, void *priv)
{
	struct bctl_req		*rq = priv;
	struct bctl		*bc = rq->br_bc;
	redisReply		*reply = r, *k, *v;
	uint8_t			*msg;
	struct ipc_sync_entry	 e;
	const char		*secret;
	size_t			 i, slen, n = 0, loaded = 0, bad = 0;
	int64_t			 until, now = (int64_t)time(NULL);

	(void)ac;
	if (rq->br_gen != bc->bc_gen || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_warnx("redis: HGETALL %s: %s", bc->bc_key_revoked, reply->str);
		if (rq->br_gen == bc->bc_gen)
			bctl_sync_done(bc, IPC_SYNC_ABORT);
		free(rq);
		return;
	}
	free(rq);
	if ((msg = malloc(1 + IPC_SYNC_BATCH * sizeof(e))) == NULL)
		fatal("malloc");
	msg[0] = IPC_SYNC_ENTRIES;
	secret = bctl_secret(bc, &slen);
	for (i = 0; i + 1 < reply->elements; i += 2) {
		k = reply->element[i];
		v = reply->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (!ctl_arg_valid(k->str, k->len) ||
		    ctl_stored_decode(secret, slen, k->str, v->str, v->len, &until) == -1) {
			bad++;
			continue;
		}
		if (until <= now) {
			/* ended: make room (the hash itself expires with the last) */
			redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "HDEL %s %b",
			    bc->bc_key_revoked, k->str, k->len);
			continue;
		}
		if (bctl_was_unrevoked(bc, k->str))
			continue;
		rvk_digest(k->str, k->len, e.se_digest);
		e.se_until = until;
		memcpy(msg + 1 + n * sizeof(e), &e, sizeof(e));
		loaded++;
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
	bctl_sync_done(bc, IPC_SYNC_END);
}

/*
 * Read every stored revocation: what this node missed while it was away
 * (or before it started).  The master starts a new generation now, so
 * that what arrives while the read is in flight is kept.
 */
static void
bctl_sync(struct bctl *bc)
{
	size_t	 slen;

	if (bc->bc_cmd == NULL || bc->bc_syncing || (bctl_secret(bc, &slen), slen == 0))
		return;
	bc->bc_syncing = 1;
	bctl_sync_phase(bc, IPC_SYNC_BEGIN);
	redisAsyncCommand(bc->bc_cmd, bctl_on_sync, bctl_req(bc, 0), "HGETALL %s",
	    bc->bc_key_revoked);
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
	size_t			 len, slen;
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
	json_object_object_add(o, "control", json_object_new_boolean(
	    (bctl_secret(bc, &slen), slen > 0)));
	json_object_object_add(o, "expires", json_object_new_int64(bctl_wall_ms() + ttl));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "HSET %s %s %b", bc->bc_key_nodes,
	    bc->bc_conf->c_node_id, s, len);
	/* the hash outlives its nodes by one ttl at most */
	redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "PEXPIRE %s %lld", bc->bc_key_nodes,
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
			if (bc->bc_cmd != NULL)
				redisAsyncCommand(bc->bc_cmd, bctl_on_reply, NULL, "HDEL %s %b",
			    bc->bc_key_nodes, k->str, k->len);
			continue;
		}
		json_object_array_add(arr, o);
	}
	json_object_array_sort(arr, bctl_node_cmp);
	s = json_object_to_json_string_length(arr, JSON_C_TO_STRING_PLAIN, &len);
	if (len > IPC_CTL_MAX)
		bctl_reply_error(bc, IPC_CTL_NODES_REPLY, rq->br_reqid, "too many nodes to list");
	else
		ipc_send(bc->bc_master_fd, IPC_CTL_NODES_REPLY, rq->br_reqid, s, len, -1);
	json_object_put(arr);
	free(rq);
}

/* ---- the bridge's calls ----------------------------------------------------------- */

void
bctl_request(struct bctl *bc, const struct ipc_hdr *hdr, const char *buf)
{
	if (hdr->type == IPC_CTL_CONTROL) {
		bctl_control(bc, hdr->peerid, buf, hdr->len);
		return;
	}
	if (bc->bc_cmd == NULL) {
		bctl_reply_error(bc, IPC_CTL_NODES_REPLY, hdr->peerid, "redis is down");
		return;
	}
	redisAsyncCommand(bc->bc_cmd, bctl_on_nodes, bctl_req(bc, hdr->peerid), "HGETALL %s",
	    bc->bc_key_nodes);
}

void
bctl_set_cmd(struct bctl *bc, redisAsyncContext *cmd)
{
	size_t	 i, slen;

	bc->bc_cmd = cmd;
	bc->bc_gen++;
	if (cmd == NULL) {
		if (bc->bc_syncing)
			bctl_sync_done(bc, IPC_SYNC_ABORT);
		return;
	}
	/* what waited for Redis goes first, so that the reload reads it back */
	if ((bctl_secret(bc, &slen), slen > 0)) {
		for (i = 0; i < bc->bc_npend; i++)
			bctl_publish(bc, bc->bc_pend[i].bp_cmd, bc->bc_pend[i].bp_arg,
			    bc->bc_pend[i].bp_until, 0);
		bc->bc_npend = 0;
		atomic_store(&bc->bc_rb->rb_control_queued, 0);
	}
	bctl_sync(bc);
	bctl_register(bc, util_now_ms());
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
	if (bc->bc_cmd != NULL && now >= bc->bc_node_at)
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
	for (i = 0; i < bc->bc_nunrevoked; i++)
		free(bc->bc_unrevoked[i]);
	ctl_window_free(bc->bc_window);
	free(bc->bc_pend);
	free(bc);
}
