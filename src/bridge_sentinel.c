/*
 * The bridge's Sentinel client: where the master is, and when it moves.
 * See bridge_sentinel.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "realtimed.h"
#include "bridge_ev.h"
#include "bridge_sentinel.h"
#include "log.h"
#include "redis_url.h"
#include "registry.h"
#include "util.h"

#define BSEN_ASK_MS	2000	/* a sentinel that takes longer is skipped */
#define BSEN_WATCH_MS	1000	/* between +switch-master subscription attempts */
#define BSEN_SWITCH	"+switch-master"

struct bsen {
	struct event_base	*s_base;
	const struct redis_url	*s_url;
	const char		*s_password;
	struct reg_bridge	*s_rb;
	struct bsen_cb		 s_cb;
	int			 s_first;	/* the sentinel that answered last */
	/* the question in flight */
	redisAsyncContext	*s_ask;
	int			 s_asking;
	int			 s_ask_node;
	int			 s_ask_tried;
	uint64_t		 s_ask_at;
	/* the +switch-master subscription */
	redisAsyncContext	*s_watch;
	int			 s_watch_node;
	uint64_t		 s_watch_at;	/* ms, the last attempt */
};

static void	bsen_ask_next(struct bsen *);

static const struct redis_node *
bsen_node(const struct bsen *s, int i)
{
	return &s->s_url->ru_nodes[i % s->s_url->ru_nnodes];
}

static void
bsen_error(struct bsen *s, int i, const char *what)
{
	const struct redis_node	*n = bsen_node(s, i);

	atomic_fetch_add(&s->s_rb->rb_sentinel_errors, 1);
	log_warnx("sentinel %s:%d: %s", n->rn_host, n->rn_port, what);
}

static void
bsen_on_connect(const redisAsyncContext *ac, int status)
{
	struct bsen	*s = ac->data;

	if (status == REDIS_OK)
		return;
	/* hiredis frees ac */
	if (ac == s->s_ask) {
		s->s_ask = NULL;
		bsen_error(s, s->s_ask_node, ac->errstr);
		bsen_ask_next(s);
	} else if (ac == s->s_watch) {
		/* the next attempt goes to the next sentinel: one that is down
		 * must not keep the failover watch from starting at all */
		s->s_watch = NULL;
		bsen_error(s, s->s_watch_node, ac->errstr);
		s->s_watch_node++;
	}
}

static void
bsen_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct bsen	*s = ac->data;

	(void)status;
	if (ac == s->s_ask) {
		s->s_ask = NULL;
		bsen_error(s, s->s_ask_node, "connection lost");
		bsen_ask_next(s);
	} else if (ac == s->s_watch) {
		s->s_watch = NULL;
		s->s_watch_node++;
	}
}

/* What follows AUTH on the connection fails too: the callers act on that. */
static void
bsen_on_auth(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply	*reply = r;

	(void)ac;
	(void)priv;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		log_warnx("sentinel AUTH failed: %s (redis_sentinel_password)", reply->str);
}

static int
bsen_port(const char *s, size_t len)
{
	int	 v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}

static redisAsyncContext *
bsen_open(struct bsen *s, int i)
{
	const struct redis_node	*n = bsen_node(s, i);
	redisAsyncContext	*ac;

	if ((ac = redisAsyncConnect(n->rn_host, n->rn_port)) == NULL)
		return NULL;
	if (ac->err) {
		bsen_error(s, i, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = s;
	if (brev_attach(ac, s->s_base) == -1) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, bsen_on_connect);
	redisAsyncSetDisconnectCallback(ac, bsen_on_disconnect);
	if (s->s_password[0] != '\0')
		redisAsyncCommand(ac, bsen_on_auth, s, "AUTH %s", s->s_password);
	return ac;
}

/* Done with the question's context; ac may be inside its own callback. */
static void
bsen_ask_close(struct bsen *s)
{
	redisAsyncContext	*ac = s->s_ask;

	s->s_ask = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);
}

static void
bsen_on_addr(redisAsyncContext *ac, void *r, void *priv)
{
	struct bsen	*s = priv;
	redisReply	*reply = r;
	char		 host[REDIS_HOST_MAX];
	int		 port = -1;

	if (reply == NULL || ac != s->s_ask)
		return;
	if (reply->type == REDIS_REPLY_NIL || (reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 0)) {
		bsen_error(s, s->s_ask_node, "does not know the master (its sentinel monitor name?)");
	} else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING ||
	    reply->element[0]->len == 0 || reply->element[0]->len >= sizeof(host) ||
	    (port = bsen_port(reply->element[1]->str, reply->element[1]->len)) == -1) {
		bsen_error(s, s->s_ask_node, reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "unexpected answer to SENTINEL get-master-addr-by-name");
	} else {
		memcpy(host, reply->element[0]->str, reply->element[0]->len);
		host[reply->element[0]->len] = '\0';
		s->s_first = s->s_ask_node % s->s_url->ru_nnodes;
		s->s_asking = 0;
		bsen_ask_close(s);
		s->s_cb.sc_found(s->s_cb.sc_arg, host, port);
		return;
	}
	bsen_ask_close(s);
	bsen_ask_next(s);
}

/* The next sentinel in turn, or the answer that none knew. */
static void
bsen_ask_next(struct bsen *s)
{
	while (s->s_ask_tried < s->s_url->ru_nnodes) {
		s->s_ask_node = s->s_first + s->s_ask_tried++;
		if ((s->s_ask = bsen_open(s, s->s_ask_node)) == NULL)
			continue;
		s->s_ask_at = util_now_ms();
		log_debug("%s: asking sentinel %s:%d", __func__, bsen_node(s, s->s_ask_node)->rn_host,
		    bsen_node(s, s->s_ask_node)->rn_port);
		redisAsyncCommand(s->s_ask, bsen_on_addr, s,
		    "SENTINEL get-master-addr-by-name %s", s->s_url->ru_master);
		return;
	}
	s->s_asking = 0;
	s->s_cb.sc_found(s->s_cb.sc_arg, NULL, 0);
}

void
bsen_resolve(struct bsen *s)
{
	if (s->s_asking) {
		log_debug("%s: already asking", __func__);
		return;
	}
	s->s_asking = 1;
	s->s_ask_tried = 0;
	bsen_ask_next(s);
}

/*
 * "+switch-master" messages: "NAME OLDIP OLDPORT NEWIP NEWPORT".  Other
 * masters the sentinels watch are not ours.
 */
static void
bsen_on_switch(redisAsyncContext *ac, void *r, void *priv)
{
	struct bsen	*s = priv;
	redisReply	*reply = r;
	char		 name[REDIS_NAME_MAX], host[REDIS_HOST_MAX], msg[1024];
	int		 port;

	if (reply == NULL || ac != s->s_watch)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		bsen_error(s, s->s_watch_node, reply->str);
		s->s_watch = NULL;
		s->s_watch_node++;
		redisAsyncFree(ac);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[0]->str, "message") != 0 ||
	    reply->element[2]->type != REDIS_REPLY_STRING ||
	    reply->element[2]->len >= sizeof(msg))
		return;		/* the subscribe confirmation */
	memcpy(msg, reply->element[2]->str, reply->element[2]->len);
	msg[reply->element[2]->len] = '\0';
	if (sscanf(msg, "%127s %*s %*s %255s %d", name, host, &port) != 3 ||
	    port < 1 || port > 65535) {
		log_warnx("sentinel: malformed %s message ignored", BSEN_SWITCH);
		return;
	}
	if (strcmp(name, s->s_url->ru_master) != 0)
		return;
	s->s_cb.sc_moved(s->s_cb.sc_arg, host, port);
}

static void
bsen_watch(struct bsen *s, uint64_t now)
{
	if (s->s_watch != NULL || now < s->s_watch_at + BSEN_WATCH_MS)
		return;
	s->s_watch_at = now;
	if ((s->s_watch = bsen_open(s, s->s_watch_node)) == NULL) {
		s->s_watch_node++;
		return;
	}
	redisAsyncCommand(s->s_watch, bsen_on_switch, s, "SUBSCRIBE %s", BSEN_SWITCH);
}

void
bsen_tick(struct bsen *s, uint64_t now)
{
	if (s->s_ask != NULL && now > s->s_ask_at + BSEN_ASK_MS) {
		bsen_error(s, s->s_ask_node, "no answer");
		bsen_ask_close(s);
		bsen_ask_next(s);
	}
	bsen_watch(s, now);
}

struct bsen *
bsen_new(struct event_base *base, const struct redis_url *url, const char *password,
    struct reg_bridge *rb, const struct bsen_cb *cb)
{
	struct bsen	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->s_base = base;
	s->s_url = url;
	s->s_password = password;
	s->s_rb = rb;
	s->s_cb = *cb;
	return s;
}

void
bsen_free(struct bsen *s)
{
	redisAsyncContext	*ac;

	if (s == NULL)
		return;
	if ((ac = s->s_ask) != NULL) {
		s->s_ask = NULL;
		redisAsyncFree(ac);
	}
	if ((ac = s->s_watch) != NULL) {
		s->s_watch = NULL;
		redisAsyncFree(ac);
	}
	free(s);
}
