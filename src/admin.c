/*
 * The admin socket, served by the master (memcached's text protocol, with
 * JSON replies).  Input from it is untrusted: every bad line gets an error.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdint.h>
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
#include "control.h"
#include "stats.h"
#include "channel.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "util.h"

struct admin_client {
	struct admin		*ac_admin;
	struct bufferevent	*ac_bev;
	uint32_t		 ac_reqid;	/* a request in flight (below), 0 none */
	enum admin_cmd		 ac_waiting;	/* ADM_PUBLISH, a control command, ADM_NODES */
	struct json_object	*ac_pending;	/* a control command's reply, to finish */
	int			 ac_reload;	/* waits for the reload's outcome */
	int			 ac_closing;
	int			 ac_eof;	/* the client wrote all it will: answer, then close */
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
	int		 args;		/* -1 optional one, 0 none, 1 one, 2 one + rest,
					   3 one + an optional one */
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
	{ "revoke", ADM_REVOKE, 3, "revoke JTI [UNTIL]" },
	{ "unrevoke", ADM_UNREVOKE, 1, "unrevoke JTI" },
	{ "nodes", ADM_NODES, 0, "nodes" },
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
		if (admin_cmds[i].args == 3)
			req->ar_arg2 = admin_word(&p);
		extra = admin_word(&p);
		if ((admin_cmds[i].args == 0 && req->ar_arg != NULL) ||
		    (admin_cmds[i].args == 3 && req->ar_arg == NULL) ||
		    (admin_cmds[i].args == 1 && req->ar_arg == NULL) || extra != NULL) {
			req->ar_error = "wrong number of arguments (try help)";
			return;
		}
	}
	req->ar_cmd = admin_cmds[i].cmd;
}

int
admin_parse_until(const char *s, int64_t now, int64_t *until)
{
	static const struct { char u; int64_t s; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	struct tm	 tm;
	const char	*end;
	int64_t		 v = 0;
	size_t		 i, n;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[n] - '0');
	}
	if (n > 0 && n <= 12 && s[n] != '\0' && s[n + 1] == '\0') {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[n] == units[i].u && v > 0 && v <= 400LL * 86400 / units[i].s) {
				*until = now + v * units[i].s;
				return 0;
			}
		return -1;
	}
	if (n > 0 && s[n] == '\0') {
		if (n > 12 || v <= now)
			return -1;
		*until = v;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (strcmp(end, "Z") != 0 || (v = (int64_t)timegm(&tm)) <= now)
		return -1;
	*until = v;
	return 0;
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

	if (cl->cl_user != NULL && !reg_user_match(rc, cl->cl_user))
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

/*
 * kick, kick-user, revoke, unrevoke: done here at once; the reply waits
 * for the bridge when the command goes to every node.
 */
static void
admin_control(struct admin_client *ac, const struct admin_request *r)
{
	struct admin		*a = ac->ac_admin;
	struct json_object	*o;
	const char		*why = NULL;
	int64_t			 until = 0, now = (int64_t)time(NULL);
	int			 cmd, local = 0, rv;
	char			 ts[RT_TIMESTAMP_LEN + 1];

	switch (r->ar_cmd) {
	case ADM_KICK:
		cmd = CTL_KICK;
		break;
	case ADM_KICK_USER:
		cmd = CTL_KICK_USER;
		break;
	case ADM_REVOKE:
		cmd = CTL_REVOKE;
		break;
	default:
		cmd = CTL_UNREVOKE;
	}
	if (!ctl_arg_valid(r->ar_arg, strlen(r->ar_arg))) {
		admin_error(ac, "invalid argument (1-255 printable bytes)");
		return;
	}
	if (cmd == CTL_REVOKE && r->ar_arg2 != NULL &&
	    admin_parse_until(r->ar_arg2, now, &until) == -1) {
		admin_error(ac, "invalid UNTIL (a duration such as 2h or 7d, Unix seconds,"
		    " or 2026-01-01T00:00:00Z, in the future)");
		return;
	}
	if (++a->a_next_req == 0)
		a->a_next_req = 1;
	rv = a->a_ops.ao_control(a->a_ops.ao_arg, a->a_next_req, cmd, r->ar_arg, &until,
	    &local, &why);
	if (rv == -1) {
		admin_error(ac, why);
		return;
	}
	if (cmd == CTL_KICK && local == 0 && rv == 0) {
		admin_error(ac, "no such connection");
		return;
	}
	o = admin_ok();
	switch (cmd) {
	case CTL_KICK:
	case CTL_KICK_USER:
		J_INT(o, "kicked", local);
		break;
	case CTL_REVOKE:
		json_object_object_add(o, "jti", json_object_new_string(r->ar_arg));
		{
			struct timeval tv = { (time_t)until, 0 };

			util_timestamp(ts, sizeof(ts), &tv);
		}
		json_object_object_add(o, "until", json_object_new_string(ts));
		break;
	default:
		json_object_object_add(o, "jti", json_object_new_string(r->ar_arg));
		json_object_object_add(o, "removed", json_object_new_boolean(local));
	}
	json_object_object_add(o, "scope", json_object_new_string(rv == 1 ? "cluster" : "node"));
	if (rv == 0) {
		if (why != NULL)
			json_object_object_add(o, "warning", json_object_new_string(why));
		admin_reply(ac, o);
		return;
	}
	ac->ac_reqid = a->a_next_req;
	ac->ac_waiting = r->ar_cmd;
	ac->ac_pending = o;
	/* no more commands from this client until the bridge answers */
	bufferevent_disable(ac->ac_bev, EV_READ);
}

static void
admin_nodes(struct admin_client *ac)
{
	struct admin	*a = ac->ac_admin;

	if (++a->a_next_req == 0)
		a->a_next_req = 1;
	if (a->a_ops.ao_nodes(a->a_ops.ao_arg, a->a_next_req) == -1) {
		admin_error(ac, "the bridge is not running");
		return;
	}
	ac->ac_reqid = a->a_next_req;
	ac->ac_waiting = ADM_NODES;
	bufferevent_disable(ac->ac_bev, EV_READ);
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
	ac->ac_waiting = ADM_PUBLISH;
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

		json_object_object_add(o, "stats", stats_json(a->a_reg));
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
	case ADM_KICK_USER:
	case ADM_REVOKE:
	case ADM_UNREVOKE:
		admin_control(ac, &r);
		break;
	case ADM_NODES:
		admin_nodes(ac);
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
	if (ac->ac_pending != NULL)
		json_object_put(ac->ac_pending);
	bufferevent_free(ac->ac_bev);
	free(ac);
}

/* A line over ADMIN_LINE_MAX is not run: its client is told and closed. */
static void
admin_too_long(struct admin_client *ac)
{
	admin_error(ac, "line too long");
	ac->ac_closing = 1;
	bufferevent_disable(ac->ac_bev, EV_READ);
}

static void
admin_read(struct bufferevent *bev, void *arg)
{
	struct admin_client	*ac = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 n;

	/* a client that sends without reading the replies waits for them */
	while (ac->ac_reqid == 0 && !ac->ac_reload && !ac->ac_closing &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <= ADMIN_OUTPUT_HIGH &&
	    (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (n > ADMIN_LINE_MAX) {
			/* however its bytes were read: not run (realtimectl(8)) */
			free(line);
			admin_too_long(ac);
			return;
		}
		if (memchr(line, '\0', n) != NULL)
			admin_error(ac, "NUL byte in command");
		else
			admin_run(ac, line);
		free(line);
	}
	if (!ac->ac_closing &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > ADMIN_OUTPUT_HIGH) {
		bufferevent_disable(bev, EV_READ);	/* admin_write() reads on */
		return;
	}
	if (evbuffer_get_length(in) > ADMIN_LINE_MAX &&
	    evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF).pos == -1)
		admin_too_long(ac);
}

/* Read commands again, unless the client has said all it will. */
static void
admin_reading(struct admin_client *ac)
{
	if (!ac->ac_eof)
		bufferevent_enable(ac->ac_bev, EV_READ);
}

/*
 * A client that has half-closed is freed once every command it sent is
 * answered and the answers are written; 1: it was.
 */
static int
admin_finished(struct admin_client *ac)
{
	struct evbuffer	*in = bufferevent_get_input(ac->ac_bev);

	if (!ac->ac_eof || ac->ac_reqid != 0 || ac->ac_reload ||
	    evbuffer_get_length(bufferevent_get_output(ac->ac_bev)) > 0 ||
	    (!ac->ac_closing && evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF).pos != -1))
		return 0;
	admin_client_free(ac);
	return 1;
}

static void
admin_write(struct bufferevent *bev, void *arg)
{
	struct admin_client	*ac = arg;

	if (ac->ac_closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		admin_client_free(ac);
		return;
	}
	if (!ac->ac_closing && ac->ac_reqid == 0 && !ac->ac_reload) {
		admin_reading(ac);
		admin_read(bev, ac);	/* replies read: the commands behind them */
	}
	(void)admin_finished(ac);
}

static void
admin_event(struct bufferevent *bev, short what, void *arg)
{
	struct admin_client	*ac = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		/* waiting for its answer is not idle: read on; but replies it
		 * does not read for as long are idle too (BEV_EVENT_WRITING) */
		if (!(what & BEV_EVENT_WRITING) &&
		    (ac->ac_reqid != 0 || ac->ac_reload || ac->ac_pending != NULL ||
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0)) {
			bufferevent_enable(bev, EV_READ);
			return;
		}
		atomic_fetch_add(&ac->ac_admin->a_reg->r_hdr->rh_admin_idle, 1);
		log_debug("admin socket: a client idle for %d s closed", ADMIN_IDLE_SECONDS);
		admin_client_free(ac);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* no more commands: those read are still answered */
		ac->ac_eof = 1;
		bufferevent_disable(bev, EV_READ);
		admin_read(bev, ac);
		(void)admin_finished(ac);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		admin_client_free(ac);
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
		static const char	 full[] = "{\"ok\":false,\"error\":\"too many admin "
					    "clients (" ADMIN_CLIENTS_MAX_S "), try again\"}\n";

		atomic_fetch_add(&a->a_reg->r_hdr->rh_admin_refused, 1);
		log_warnx("admin socket: too many clients (%d), one refused", ADMIN_CLIENTS_MAX);
		/* best effort: a new socket has room for one line */
		if (write(fd, full, sizeof(full) - 1) == -1)
			log_debug("admin socket: refusal: %s", strerror(errno));
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
	{
		/* a client that holds a slot sending nothing, or reading none
		 * of its replies, gives it back */
		struct timeval	 idle = { ADMIN_IDLE_SECONDS, 0 };

		bufferevent_set_timeouts(ac->ac_bev, &idle, &idle);
	}
	/* what waits unread is one longest line and its LF at most */
	bufferevent_setwatermark(ac->ac_bev, EV_READ, 0, ADMIN_LINE_MAX + 1);
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
		admin_reading(ac);
		admin_read(ac->ac_bev, ac);	/* commands that queued meanwhile */
	}
}

/*
 * The client waiting for reqid (a control command for kind ADM_INVALID),
 * no longer waiting; NULL when it went away.
 */
static struct admin_client *
admin_waiting(struct admin *a, uint32_t reqid, enum admin_cmd kind)
{
	struct admin_client	*ac;
	int			 i, control;

	for (i = 0; i < ADMIN_CLIENTS_MAX; i++) {
		if ((ac = a->a_clients[i]) == NULL || ac->ac_reqid != reqid || reqid == 0)
			continue;
		control = ac->ac_waiting != ADM_PUBLISH && ac->ac_waiting != ADM_NODES;
		if (kind == ADM_INVALID ? !control : ac->ac_waiting != kind)
			return NULL;
		ac->ac_reqid = 0;
		ac->ac_waiting = ADM_INVALID;
		return ac;
	}
	return NULL;
}

/* Its request answered: what the client sent meanwhile runs now. */
static void
admin_resume(struct admin_client *ac)
{
	admin_reading(ac);
	admin_read(ac->ac_bev, ac);
}

void
admin_publish_done(struct admin *a, uint32_t reqid, int64_t receivers, int64_t offset,
    const char *error)
{
	struct admin_client	*ac;
	struct json_object	*o;

	if ((ac = admin_waiting(a, reqid, ADM_PUBLISH)) != NULL) {
		if (error != NULL)
			admin_error(ac, error);
		else {
			o = admin_ok();
			J_INT(o, "receivers", receivers);
			if (offset > 0)
				J_INT(o, "offset", offset);
			admin_reply(ac, o);
		}
		admin_resume(ac);
	}
}

void
admin_bridge_gone(struct admin *a)
{
	struct admin_client	*ac;
	int			 i;

	for (i = 0; a != NULL && i < ADMIN_CLIENTS_MAX; i++) {
		if ((ac = a->a_clients[i]) == NULL || ac->ac_reqid == 0)
			continue;
		switch (ac->ac_waiting) {
		case ADM_PUBLISH:
			admin_publish_done(a, ac->ac_reqid, -1, -1, "the bridge went away");
			break;
		case ADM_NODES:
			admin_nodes_done(a, ac->ac_reqid, NULL, 0, "the bridge went away");
			break;
		default:
			admin_control_done(a, ac->ac_reqid, -1,
			    "the bridge went away: this node only");
		}
	}
}

void
admin_control_done(struct admin *a, uint32_t reqid, int64_t nodes, const char *why)
{
	struct admin_client	*ac;
	struct json_object	*o;

	if ((ac = admin_waiting(a, reqid, ADM_INVALID)) == NULL || ac->ac_pending == NULL)
		return;
	o = ac->ac_pending;
	ac->ac_pending = NULL;
	if (why != NULL) {
		json_object_object_add(o, "scope", json_object_new_string("node"));
		json_object_object_add(o, "warning", json_object_new_string(why));
	} else
		J_INT(o, "nodes", nodes);
	admin_reply(ac, o);
	admin_resume(ac);
}

void
admin_nodes_done(struct admin *a, uint32_t reqid, const char *json, size_t len,
    const char *error)
{
	struct admin_client	*ac;
	struct json_object	*o, *arr = NULL;
	struct json_tokener	*tok;

	if ((ac = admin_waiting(a, reqid, ADM_NODES)) == NULL)
		return;
	if (error == NULL && (tok = json_tokener_new()) != NULL) {
		arr = json_tokener_parse_ex(tok, json, (int)len);
		json_tokener_free(tok);
	}
	if (error != NULL)
		admin_error(ac, error);
	else if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		admin_error(ac, "the bridge's node list does not parse");
	} else {
		o = admin_ok();
		json_object_object_add(o, "nodes", arr);
		admin_reply(ac, o);
	}
	admin_resume(ac);
}

/*
 * Whether path may not be bound: 1 (err says why) when a process answers
 * on it or it is no socket; 0 when it is free, a stale socket removed.
 */
static int
admin_path_taken(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat	 st;
	int		 fd, live;

	if (lstat(path, &st) == -1)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "admin_socket %s: exists and is not a socket", path);
		return 1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	if (live) {
		snprintf(err, errlen, "admin_socket %s: in use by another process "
		    "(another realtimed with this admin_socket?)", path);
		return 1;
	}
	unlink(path);
	return 0;
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
	/* a stale socket from a crash goes; one that answers is another
	 * daemon's, and what is no socket is nobody's to remove */
	if (admin_path_taken(path, &sun, err, errlen)) {
		close(fd);
		return NULL;
	}
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
