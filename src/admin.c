/*
 * The admin socket, served by the master (memcached's text protocol, with
 * JSON replies).  Input from it is untrusted: every bad line gets an error.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "admin.h"
#include "channel.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "util.h"

struct admin_client {
	struct admin		*ac_admin;
	struct bufferevent	*ac_bev;
	uint32_t		 ac_reqid;	/* publish in flight, 0 none */
	int			 ac_reload;	/* waits for the reload's outcome */
	int			 ac_closing;
};

struct admin {
	struct event_base	*a_base;
	struct registry		*a_reg;
	struct admin_ops	 a_ops;
	struct evconnlistener	*a_listener;
	char			 a_path[108];
	struct admin_client	*a_clients[ADMIN_CLIENTS_MAX];
	uint32_t		 a_next_req;
};

static const struct {
	const char	*name;
	enum admin_cmd	 cmd;
	int		 args;		/* -1 optional one, 0 none, 1 one, 2 one + rest */
	const char	*usage;
} admin_cmds[] = {
	{ "help", ADM_HELP, 0, "help" },
	{ "stats", ADM_STATS, 0, "stats" },
	{ "health", ADM_HEALTH, 0, "health" },
	{ "workers", ADM_WORKERS, 0, "workers" },
	{ "channels", ADM_CHANNELS, -1, "channels [PREFIX]" },
	{ "connections", ADM_CONNECTIONS, -1, "connections [USER-ID]" },
	{ "kick", ADM_KICK, 1, "kick CONNECTION-ID" },
	{ "kick-user", ADM_KICK_USER, 1, "kick-user USER-ID" },
	{ "publish", ADM_PUBLISH, 2, "publish CHANNEL JSON" },
	{ "reload", ADM_RELOAD, 0, "reload" },
};
#define NCMDS	(sizeof(admin_cmds) / sizeof(admin_cmds[0]))

/* ---- parsing (pure) ------------------------------------------------------ */

static char *
admin_word(char **p)
{
	char	*w;

	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (**p == '\0')
		return NULL;
	w = *p;
	while (**p != '\0' && **p != ' ' && **p != '\t')
		(*p)++;
	if (**p != '\0')
		*(*p)++ = '\0';
	return w;
}

void
admin_parse(char *line, struct admin_request *req)
{
	char	*p = line, *name, *extra;
	size_t	 i, n = strlen(line);

	memset(req, 0, sizeof(*req));
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if ((name = admin_word(&p)) == NULL) {
		req->ar_error = "empty command (try help)";
		return;
	}
	for (i = 0; i < NCMDS; i++)
		if (strcmp(name, admin_cmds[i].name) == 0)
			break;
	if (i == NCMDS) {
		req->ar_error = "unknown command (try help)";
		return;
	}
	req->ar_arg = admin_word(&p);
	if (admin_cmds[i].args == 2) {
		while (*p == ' ' || *p == '\t')
			p++;
		req->ar_rest = p;
		req->ar_rest_len = strlen(p);
		if (req->ar_arg == NULL || req->ar_rest_len == 0) {
			req->ar_error = "usage: publish CHANNEL JSON";
			return;
		}
	} else {
		extra = admin_word(&p);
		if ((admin_cmds[i].args == 0 && req->ar_arg != NULL) ||
		    (admin_cmds[i].args == 1 && req->ar_arg == NULL) || extra != NULL) {
			req->ar_error = "wrong number of arguments (try help)";
			return;
		}
	}
	req->ar_cmd = admin_cmds[i].cmd;
}

/* ---- replies ----------------------------------------------------------------- */

static void
admin_reply(struct admin_client *ac, struct json_object *o)
{
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	bufferevent_write(ac->ac_bev, s, len);
	bufferevent_write(ac->ac_bev, "\n", 1);
	json_object_put(o);
}

static struct json_object *
admin_ok(void)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static void
admin_error(struct admin_client *ac, const char *msg)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	admin_reply(ac, o);
}

#define J_INT(o, k, v)	json_object_object_add((o), (k), json_object_new_int64((int64_t)(v)))

static const char *
admin_state_name(int s)
{
	switch (s) {
	case REG_PROC_STARTING:
		return "starting";
	case REG_PROC_RUNNING:
		return "running";
	case REG_PROC_STOPPING:
		return "stopping";
	}
	return "down";
}

struct json_object *
admin_stats_json(struct registry *reg)
{
	struct json_object	*o = json_object_new_object(), *b;
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;
	struct reg_worker	*rw;
	struct reg_totals	 t;
	int64_t			 sum[16];
	int			 w;

	memset(sum, 0, sizeof(sum));
	reg_totals(reg, &t);
	for (w = 0; w < reg->r_hdr->rh_nworkers; w++) {
		rw = reg_worker(reg, w);
		sum[0] += atomic_load(&rw->rw_messages_in);
		sum[1] += atomic_load(&rw->rw_messages_out);
		sum[2] += atomic_load(&rw->rw_events_out);
		sum[3] += atomic_load(&rw->rw_bytes_out);
		sum[4] += atomic_load(&rw->rw_slow_closes);
		sum[5] += atomic_load(&rw->rw_auth_failures);
		sum[6] += atomic_load(&rw->rw_handshake_errors);
		sum[7] += atomic_load(&rw->rw_handshake_timeouts);
		sum[8] += atomic_load(&rw->rw_heartbeat_drops);
		sum[9] += atomic_load(&rw->rw_rate_limited);
		sum[10] += atomic_load(&rw->rw_protocol_errors);
		sum[11] += atomic_load(&rw->rw_full_refusals);
		sum[12] += atomic_load(&rw->rw_tls_handshakes);
		sum[13] += atomic_load(&rw->rw_tls_errors);
		sum[14] += atomic_load(&rw->rw_ip_limited);
	}
	J_INT(o, "connections", t.t_connections);
	J_INT(o, "authenticated", t.t_authenticated);
	J_INT(o, "anonymous", t.t_anonymous);
	J_INT(o, "subscriptions", t.t_subscriptions);
	J_INT(o, "channels", t.t_channels);
	J_INT(o, "workers", t.t_workers);
	J_INT(o, "messages_in", sum[0]);
	J_INT(o, "messages_out", sum[1]);
	J_INT(o, "events_out", sum[2]);
	J_INT(o, "bytes_out", sum[3]);
	J_INT(o, "slow_consumer_closes", sum[4]);
	J_INT(o, "auth_failures", sum[5]);
	J_INT(o, "handshake_errors", sum[6]);
	J_INT(o, "handshake_timeouts", sum[7]);
	J_INT(o, "heartbeat_drops", sum[8]);
	J_INT(o, "rate_limited", sum[9]);
	J_INT(o, "protocol_errors", sum[10]);
	J_INT(o, "server_full_refusals", sum[11]);
	J_INT(o, "tls_handshakes", sum[12]);
	J_INT(o, "tls_errors", sum[13]);
	J_INT(o, "ip_limited", sum[14]);
	J_INT(o, "connection_table_full", atomic_load(&reg->r_hdr->rh_conn_table_full));
	J_INT(o, "channel_table_full", atomic_load(&reg->r_hdr->rh_chan_table_full));
	b = json_object_new_object();
	json_object_object_add(b, "redis", json_object_new_string(
	    atomic_load(&rb->rb_redis_up) ? "up" : "down"));
	J_INT(b, "redis_reconnects", atomic_load(&rb->rb_redis_reconnects));
	J_INT(b, "events_in", atomic_load(&rb->rb_events_in));
	J_INT(b, "events_routed", atomic_load(&rb->rb_events_routed));
	J_INT(b, "events_unrouted", atomic_load(&rb->rb_events_unrouted));
	J_INT(b, "ipc_drops", atomic_load(&rb->rb_ipc_drops));
	J_INT(b, "canary_sent", atomic_load(&rb->rb_canary_sent));
	J_INT(b, "canary_misses", atomic_load(&rb->rb_canary_misses));
	json_object_object_add(o, "bridge", b);
	return o;
}

/* Why the host cannot prove delivery right now, or NULL. */
static const char *
admin_degraded(struct registry *reg, int64_t canary_interval, char *buf, size_t len)
{
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;
	struct reg_worker	*rw;
	uint64_t		 sent = atomic_load(&rb->rb_canary_sent);
	int			 i;

	uint64_t		 now = util_now_ms(), at, tick;

	if (!atomic_load(&rb->rb_redis_up))
		return "redis unreachable";
	/* a stalled bridge stops counting: judge it by its own clock too */
	tick = atomic_load(&rb->rb_tick);
	if (tick != 0 && now > tick && now - tick > 3000)
		return "bridge not responding";
	if (canary_interval == 0 || sent < 2)
		return NULL;
	at = atomic_load(&rb->rb_canary_sent_at);
	if (at != 0 && now > at && now - at > 2 * (uint64_t)canary_interval + 1000) {
		snprintf(buf, len, "no canary published for %llu ms",
		    (unsigned long long)(now - at));
		return buf;
	}
	/* one interval of slack: the canary before the last must be in */
	for (i = 0; i < reg->r_hdr->rh_nworkers; i++) {
		rw = reg_worker(reg, i);
		if (atomic_load(&rw->rw_state) != REG_PROC_RUNNING)
			continue;
		if (atomic_load(&rw->rw_canary_seq) + 1 < sent) {
			snprintf(buf, len, "canary from redis not received by worker %d", i);
			return buf;
		}
	}
	return NULL;
}

struct json_object *
admin_health_json(struct registry *reg, int64_t canary_interval, int *healthy)
{
	struct json_object	*o = json_object_new_object();
	struct reg_totals	 t;
	char			 ts[32], why[128];
	const char		*reason;

	reg_totals(reg, &t);
	reason = admin_degraded(reg, canary_interval, why, sizeof(why));
	util_timestamp(ts, sizeof(ts), NULL);
	json_object_object_add(o, "status", json_object_new_string(reason ? "degraded" : "ok"));
	json_object_object_add(o, "service", json_object_new_string("realtime"));
	J_INT(o, "connections", t.t_connections);
	J_INT(o, "authenticated", t.t_authenticated);
	J_INT(o, "activeChannels", t.t_channels);
	json_object_object_add(o, "redis", json_object_new_string(
	    atomic_load(&reg->r_hdr->rh_bridge.rb_redis_up) ? "up" : "down"));
	J_INT(o, "workers", t.t_workers);
	if (reason != NULL)
		json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	*healthy = reason == NULL;
	return o;
}

static void
admin_workers(struct admin_client *ac)
{
	struct registry		*reg = ac->ac_admin->a_reg;
	struct json_object	*o = admin_ok(), *arr = json_object_new_array(), *w, *b;
	struct reg_worker	*rw;
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;
	time_t			 now = time(NULL);
	int			 i;

	for (i = 0; i < reg->r_hdr->rh_nworkers; i++) {
		rw = reg_worker(reg, i);
		w = json_object_new_object();
		J_INT(w, "id", i);
		J_INT(w, "pid", atomic_load(&rw->rw_pid));
		json_object_object_add(w, "state",
		    json_object_new_string(admin_state_name(atomic_load(&rw->rw_state))));
		J_INT(w, "uptime", atomic_load(&rw->rw_started) ?
		    now - (time_t)atomic_load(&rw->rw_started) : 0);
		J_INT(w, "connections", atomic_load(&rw->rw_connections));
		J_INT(w, "subscriptions", atomic_load(&rw->rw_subscriptions));
		J_INT(w, "events_out", atomic_load(&rw->rw_events_out));
		J_INT(w, "slow_consumer_closes", atomic_load(&rw->rw_slow_closes));
		json_object_array_add(arr, w);
	}
	json_object_object_add(o, "workers", arr);
	b = json_object_new_object();
	J_INT(b, "pid", atomic_load(&rb->rb_pid));
	json_object_object_add(b, "state",
	    json_object_new_string(admin_state_name(atomic_load(&rb->rb_state))));
	json_object_object_add(b, "redis", json_object_new_string(
	    atomic_load(&rb->rb_redis_up) ? "up" : "down"));
	json_object_object_add(o, "bridge", b);
	admin_reply(ac, o);
}

struct chan_list {
	const char		*cl_prefix;
	struct json_object	*cl_arr;
};

static void
admin_chan_add(const char *name, int64_t subs, void *arg)
{
	struct chan_list	*cl = arg;
	struct json_object	*c;

	if (cl->cl_prefix != NULL && strncmp(name, cl->cl_prefix, strlen(cl->cl_prefix)) != 0)
		return;
	c = json_object_new_object();
	json_object_object_add(c, "channel", json_object_new_string(name));
	J_INT(c, "subscribers", subs);
	json_object_array_add(cl->cl_arr, c);
}

static void
admin_channels(struct admin_client *ac, const char *prefix)
{
	struct json_object	*o = admin_ok();
	struct chan_list	 cl = { prefix, json_object_new_array() };

	reg_chan_foreach(ac->ac_admin->a_reg, admin_chan_add, &cl);
	json_object_object_add(o, "channels", cl.cl_arr);
	admin_reply(ac, o);
}

struct conn_list {
	const char		*cl_user;
	struct json_object	*cl_arr;
};

static void
admin_conn_add(struct reg_conn *rc, void *arg)
{
	struct conn_list	*cl = arg;
	struct json_object	*c;

	if (cl->cl_user != NULL && !reg_user_match(rc->rc_user, cl->cl_user))
		return;
	c = json_object_new_object();
	json_object_object_add(c, "id", json_object_new_string(rc->rc_id));
	J_INT(c, "worker", rc->rc_worker);
	json_object_object_add(c, "user", rc->rc_user[0] ?
	    json_object_new_string(rc->rc_user) : NULL);
	json_object_object_add(c, "admin", json_object_new_boolean(rc->rc_admin));
	json_object_object_add(c, "peer", json_object_new_string(rc->rc_peer));
	J_INT(c, "since", rc->rc_started);
	J_INT(c, "subscriptions", rc->rc_nsubs);
	json_object_array_add(cl->cl_arr, c);
}

static void
admin_connections(struct admin_client *ac, const char *user)
{
	struct json_object	*o = admin_ok();
	struct conn_list	 cl = { user, json_object_new_array() };

	reg_conn_foreach(ac->ac_admin->a_reg, admin_conn_add, &cl);
	json_object_object_add(o, "connections", cl.cl_arr);
	admin_reply(ac, o);
}

static void
admin_help(struct admin_client *ac)
{
	struct json_object	*o = admin_ok(), *arr = json_object_new_array();
	size_t			 i;

	for (i = 0; i < NCMDS; i++)
		json_object_array_add(arr, json_object_new_string(admin_cmds[i].usage));
	json_object_object_add(o, "commands", arr);
	admin_reply(ac, o);
}

static void
admin_kick(struct admin_client *ac, const char *id, const char *user)
{
	struct json_object	*o;
	int			 n;

	n = ac->ac_admin->a_ops.ao_kick(ac->ac_admin->a_ops.ao_arg, id, user);
	if (n == 0 && id != NULL) {
		admin_error(ac, "no such connection");
		return;
	}
	o = admin_ok();
	J_INT(o, "kicked", n);
	admin_reply(ac, o);
}

static void
admin_publish(struct admin_client *ac, const struct admin_request *r)
{
	struct admin	*a = ac->ac_admin;

	if (!chan_name_valid(r->ar_arg, strlen(r->ar_arg))) {
		admin_error(ac, "invalid channel name");
		return;
	}
	if (!proto_json_valid(r->ar_rest, r->ar_rest_len)) {
		admin_error(ac, "payload is not valid JSON");
		return;
	}
	if (++a->a_next_req == 0)
		a->a_next_req = 1;
	if (a->a_ops.ao_publish(a->a_ops.ao_arg, a->a_next_req, r->ar_arg, r->ar_rest,
	    r->ar_rest_len) == -1) {
		admin_error(ac, "the bridge is not running");
		return;
	}
	ac->ac_reqid = a->a_next_req;
	/* no more commands from this client until the bridge answers */
	bufferevent_disable(ac->ac_bev, EV_READ);
}

/* The reply waits until every process has applied the new settings. */
static void
admin_reload(struct admin_client *ac)
{
	struct admin	*a = ac->ac_admin;
	char		 err[512];

	switch (a->a_ops.ao_reload(a->a_ops.ao_arg, err, sizeof(err))) {
	case -1:
		admin_error(ac, err);
		break;
	case 0:
		admin_reply(ac, admin_ok());
		break;
	default:
		/* no more commands from this client until then */
		ac->ac_reload = 1;
		bufferevent_disable(ac->ac_bev, EV_READ);
	}
}

static void
admin_run(struct admin_client *ac, char *line)
{
	struct admin_request	 r;
	struct admin		*a = ac->ac_admin;

	admin_parse(line, &r);
	switch (r.ar_cmd) {
	case ADM_INVALID:
		admin_error(ac, r.ar_error);
		break;
	case ADM_HELP:
		admin_help(ac);
		break;
	case ADM_STATS: {
		struct json_object *o = admin_ok();

		json_object_object_add(o, "stats", admin_stats_json(a->a_reg));
		admin_reply(ac, o);
		break;
	}
	case ADM_HEALTH: {
		struct json_object *o = admin_ok();

		json_object_object_add(o, "health", a->a_ops.ao_health(a->a_ops.ao_arg));
		admin_reply(ac, o);
		break;
	}
	case ADM_WORKERS:
		admin_workers(ac);
		break;
	case ADM_CHANNELS:
		admin_channels(ac, r.ar_arg);
		break;
	case ADM_CONNECTIONS:
		admin_connections(ac, r.ar_arg);
		break;
	case ADM_KICK:
		admin_kick(ac, r.ar_arg, NULL);
		break;
	case ADM_KICK_USER:
		admin_kick(ac, NULL, r.ar_arg);
		break;
	case ADM_PUBLISH:
		admin_publish(ac, &r);
		break;
	case ADM_RELOAD:
		admin_reload(ac);
		break;
	}
}

/* ---- connections --------------------------------------------------------- */

static void
admin_client_free(struct admin_client *ac)
{
	struct admin	*a = ac->ac_admin;
	int		 i;

	for (i = 0; i < ADMIN_CLIENTS_MAX; i++)
		if (a->a_clients[i] == ac)
			a->a_clients[i] = NULL;
	bufferevent_free(ac->ac_bev);
	free(ac);
}

static void
admin_read(struct bufferevent *bev, void *arg)
{
	struct admin_client	*ac = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 n;

	while (ac->ac_reqid == 0 && !ac->ac_reload && !ac->ac_closing &&
	    (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (memchr(line, '\0', n) != NULL)
			admin_error(ac, "NUL byte in command");
		else
			admin_run(ac, line);
		free(line);
	}
	if (evbuffer_get_length(in) > ADMIN_LINE_MAX) {
		admin_error(ac, "line too long");
		ac->ac_closing = 1;
		bufferevent_disable(bev, EV_READ);
	}
}

static void
admin_write(struct bufferevent *bev, void *arg)
{
	struct admin_client	*ac = arg;

	if (ac->ac_closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		admin_client_free(ac);
}

static void
admin_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		admin_client_free(arg);
}

static void
admin_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct admin		*a = arg;
	struct admin_client	*ac;
	int			 i;

	(void)l;
	(void)sa;
	(void)salen;
	for (i = 0; i < ADMIN_CLIENTS_MAX && a->a_clients[i] != NULL; i++)
		;
	if (i == ADMIN_CLIENTS_MAX || (ac = calloc(1, sizeof(*ac))) == NULL) {
		log_warnx("admin socket: too many clients, one refused");
		close(fd);
		return;
	}
	if ((ac->ac_bev = bufferevent_socket_new(a->a_base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(ac);
		close(fd);
		return;
	}
	ac->ac_admin = a;
	a->a_clients[i] = ac;
	bufferevent_setcb(ac->ac_bev, admin_read, admin_write, admin_event, ac);
	bufferevent_enable(ac->ac_bev, EV_READ | EV_WRITE);
}

void
admin_reload_done(struct admin *a, const char *error)
{
	struct admin_client	*ac;
	int			 i;

	for (i = 0; a != NULL && i < ADMIN_CLIENTS_MAX; i++) {
		if ((ac = a->a_clients[i]) == NULL || !ac->ac_reload)
			continue;
		ac->ac_reload = 0;
		if (error != NULL)
			admin_error(ac, error);
		else
			admin_reply(ac, admin_ok());
		bufferevent_enable(ac->ac_bev, EV_READ);
		admin_read(ac->ac_bev, ac);	/* commands that queued meanwhile */
	}
}

void
admin_publish_done(struct admin *a, uint32_t reqid, int64_t receivers, const char *error)
{
	struct admin_client	*ac;
	struct json_object	*o;
	int			 i;

	for (i = 0; i < ADMIN_CLIENTS_MAX; i++) {
		if ((ac = a->a_clients[i]) == NULL || ac->ac_reqid != reqid)
			continue;
		ac->ac_reqid = 0;
		if (error != NULL)
			admin_error(ac, error);
		else {
			o = admin_ok();
			J_INT(o, "receivers", receivers);
			admin_reply(ac, o);
		}
		bufferevent_enable(ac->ac_bev, EV_READ);
		admin_read(ac->ac_bev, ac);	/* commands that queued meanwhile */
		return;
	}
}

struct admin *
admin_open(struct event_base *base, struct registry *reg, const struct admin_ops *ops,
    const char *path, const char *mode, int uid, int gid, char *err, size_t errlen)
{
	struct admin		*a;
	struct sockaddr_un	 sun;
	char			*end;
	long			 m;
	int			 fd;

	m = strtol(mode, &end, 8);
	if (*mode == '\0' || *end != '\0' || m < 0 || m > 0777) {
		snprintf(err, errlen, "admin_socket_mode %s: not an octal mode", mode);
		return NULL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "admin_socket %s: path too long", path);
		return NULL;
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "admin_socket: socket(): %s", strerror(errno));
		return NULL;
	}
	/* a stale socket from a crash; the pidfile lock proved we are alone */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, (mode_t)m) == -1 ||
	    ((uid != -1 || gid != -1) && chown(path, (uid_t)uid, (gid_t)gid) == -1) ||
	    listen(fd, 16) == -1) {
		snprintf(err, errlen, "admin_socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		fatal("calloc");
	a->a_base = base;
	a->a_reg = reg;
	a->a_ops = *ops;
	snprintf(a->a_path, sizeof(a->a_path), "%s", path);
	a->a_listener = evconnlistener_new(base, admin_accept, a, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (a->a_listener == NULL)
		fatalx("evconnlistener_new() failed");
	return a;
}

void
admin_close(struct admin *a)
{
	int	 i;

	if (a == NULL)
		return;
	for (i = 0; i < ADMIN_CLIENTS_MAX; i++)
		if (a->a_clients[i] != NULL)
			admin_client_free(a->a_clients[i]);
	evconnlistener_free(a->a_listener);
	unlink(a->a_path);
	free(a);
}

/* In a freshly forked child: let go of everything, but leave the socket file. */
void
admin_free_in_child(struct admin *a)
{
	int	 i;

	if (a == NULL)
		return;
	for (i = 0; i < ADMIN_CLIENTS_MAX; i++)
		if (a->a_clients[i] != NULL)
			admin_client_free(a->a_clients[i]);
	evconnlistener_free(a->a_listener);
	free(a);
}

/* ---- /metrics ------------------------------------------------------------- */

struct metric {
	const char	*m_name;
	const char	*m_type;
	const char	*m_help;
	size_t		 m_off;		/* in struct reg_worker */
};

#define WOFF(f)	offsetof(struct reg_worker, f)

static const struct metric worker_metrics[] = {
	{ "realtimed_messages_in_total", "counter", "Client messages received.", WOFF(rw_messages_in) },
	{ "realtimed_messages_out_total", "counter", "Protocol replies sent.", WOFF(rw_messages_out) },
	{ "realtimed_events_out_total", "counter", "Event frames queued to subscribers.", WOFF(rw_events_out) },
	{ "realtimed_event_bytes_out_total", "counter", "Bytes of event frames queued.", WOFF(rw_bytes_out) },
	{ "realtimed_slow_consumer_closes_total", "counter", "Connections closed 4000 (output buffer limit).", WOFF(rw_slow_closes) },
	{ "realtimed_handshake_errors_total", "counter", "HTTP requests answered with an error status.", WOFF(rw_handshake_errors) },
	{ "realtimed_handshake_timeouts_total", "counter", "Connections that did not finish the handshake in time.", WOFF(rw_handshake_timeouts) },
	{ "realtimed_heartbeat_drops_total", "counter", "Connections dropped for silence.", WOFF(rw_heartbeat_drops) },
	{ "realtimed_rate_limited_total", "counter", "Connections closed 1008 for flooding.", WOFF(rw_rate_limited) },
	{ "realtimed_protocol_errors_total", "counter", "Connections failed for RFC 6455 violations.", WOFF(rw_protocol_errors) },
	{ "realtimed_server_full_total", "counter", "Connections refused 1013 (max_connections).", WOFF(rw_full_refusals) },
	{ "realtimed_tls_handshakes_total", "counter", "Completed TLS handshakes.", WOFF(rw_tls_handshakes) },
	{ "realtimed_tls_errors_total", "counter", "Failed or timed-out TLS handshakes.", WOFF(rw_tls_errors) },
	{ "realtimed_kicked_total", "counter", "Connections closed by an administrator.", WOFF(rw_kicked) },
	{ "realtimed_ip_limited_total", "counter", "Connections refused 503 (max_connections_per_ip).", WOFF(rw_ip_limited) },
};

static int64_t
metric_sum(struct registry *reg, size_t off)
{
	int64_t	 sum = 0;
	int	 w;

	for (w = 0; w < reg->r_hdr->rh_nworkers; w++)
		sum += atomic_load((_Atomic int64_t *)((char *)reg_worker(reg, w) + off));
	return sum;
}

static void
metric_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
admin_metrics_bridge(struct registry *reg, struct evbuffer *out)
{
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;

	metric_head(out, "realtimed_redis_up", "gauge", "1 while the bridge is subscribed to Redis.");
	evbuffer_add_printf(out, "realtimed_redis_up %d\n", (int)atomic_load(&rb->rb_redis_up));
	metric_head(out, "realtimed_redis_reconnects_total", "counter", "Redis connections lost.");
	evbuffer_add_printf(out, "realtimed_redis_reconnects_total %lld\n",
	    (long long)atomic_load(&rb->rb_redis_reconnects));
	metric_head(out, "realtimed_events_in_total", "counter", "Messages received from Redis.");
	evbuffer_add_printf(out, "realtimed_events_in_total %lld\n",
	    (long long)atomic_load(&rb->rb_events_in));
	metric_head(out, "realtimed_events_unrouted_total", "counter",
	    "Redis messages on channels nobody here subscribes to.");
	evbuffer_add_printf(out, "realtimed_events_unrouted_total %lld\n",
	    (long long)atomic_load(&rb->rb_events_unrouted));
	metric_head(out, "realtimed_drops_total", "counter", "Events dropped, by reason.");
	evbuffer_add_printf(out, "realtimed_drops_total{reason=\"ipc_high_water\"} %lld\n",
	    (long long)atomic_load(&rb->rb_ipc_drops));
	evbuffer_add_printf(out, "realtimed_drops_total{reason=\"slow_consumer\"} %lld\n",
	    (long long)metric_sum(reg, WOFF(rw_slow_closes)));
	metric_head(out, "realtimed_canary_sent_total", "counter", "Delivery canaries published.");
	evbuffer_add_printf(out, "realtimed_canary_sent_total %lld\n",
	    (long long)atomic_load(&rb->rb_canary_sent));
	metric_head(out, "realtimed_canary_misses_total", "counter",
	    "Canaries that did not come back from Redis in time.");
	evbuffer_add_printf(out, "realtimed_canary_misses_total %lld\n",
	    (long long)atomic_load(&rb->rb_canary_misses));
	metric_head(out, "realtimed_table_full_total", "counter", "Registry table refusals.");
	evbuffer_add_printf(out, "realtimed_table_full_total{table=\"connections\"} %lld\n",
	    (long long)atomic_load(&reg->r_hdr->rh_conn_table_full));
	evbuffer_add_printf(out, "realtimed_table_full_total{table=\"channels\"} %lld\n",
	    (long long)atomic_load(&reg->r_hdr->rh_chan_table_full));
}

void
admin_metrics(struct registry *reg, struct evbuffer *out)
{
	struct reg_totals	 t;
	struct reg_worker	*rw;
	size_t			 i;
	int			 w;

	reg_totals(reg, &t);
	metric_head(out, "realtimed_connections", "gauge", "Open WebSocket connections, by kind.");
	evbuffer_add_printf(out, "realtimed_connections{kind=\"authenticated\"} %lld\n",
	    (long long)t.t_authenticated);
	evbuffer_add_printf(out, "realtimed_connections{kind=\"anonymous\"} %lld\n",
	    (long long)t.t_anonymous);
	metric_head(out, "realtimed_subscriptions", "gauge", "Channel subscriptions.");
	evbuffer_add_printf(out, "realtimed_subscriptions %lld\n", (long long)t.t_subscriptions);
	metric_head(out, "realtimed_channels", "gauge", "Channels with at least one subscriber.");
	evbuffer_add_printf(out, "realtimed_channels %lld\n", (long long)t.t_channels);
	metric_head(out, "realtimed_workers", "gauge", "Running worker processes.");
	evbuffer_add_printf(out, "realtimed_workers %d\n", t.t_workers);
	metric_head(out, "realtimed_auth_failures_total", "counter", "Refused authentications, by reason.");
	evbuffer_add_printf(out, "realtimed_auth_failures_total{reason=\"invalid_token\"} %lld\n",
	    (long long)metric_sum(reg, WOFF(rw_auth_failures)));
	evbuffer_add_printf(out, "realtimed_auth_failures_total{reason=\"token_required\"} %lld\n",
	    (long long)metric_sum(reg, WOFF(rw_auth_required)));
	evbuffer_add_printf(out, "realtimed_auth_failures_total{reason=\"token_expired\"} %lld\n",
	    (long long)metric_sum(reg, WOFF(rw_token_expired)));
	for (i = 0; i < sizeof(worker_metrics) / sizeof(worker_metrics[0]); i++) {
		metric_head(out, worker_metrics[i].m_name, worker_metrics[i].m_type,
		    worker_metrics[i].m_help);
		evbuffer_add_printf(out, "%s %lld\n", worker_metrics[i].m_name,
		    (long long)metric_sum(reg, worker_metrics[i].m_off));
	}
	admin_metrics_bridge(reg, out);
	metric_head(out, "realtimed_worker_connections", "gauge", "Open connections per worker.");
	for (w = 0; w < reg->r_hdr->rh_nworkers; w++) {
		rw = reg_worker(reg, w);
		evbuffer_add_printf(out, "realtimed_worker_connections{worker=\"%d\"} %lld\n", w,
		    (long long)atomic_load(&rw->rw_connections));
	}
	metric_head(out, "realtimed_worker_events_out_total", "counter", "Event frames queued per worker.");
	for (w = 0; w < reg->r_hdr->rh_nworkers; w++)
		evbuffer_add_printf(out, "realtimed_worker_events_out_total{worker=\"%d\"} %lld\n", w,
		    (long long)atomic_load(&reg_worker(reg, w)->rw_events_out));
}
