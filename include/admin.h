#ifndef RT_ADMIN_H
#define RT_ADMIN_H

/*
 * The admin socket: a Unix stream socket served by the master.  One command
 * per line, one JSON object per reply line ({"ok":true,...} or
 * {"ok":false,"error":"..."}).  See realtimectl(8).
 */
#include <stddef.h>
#include <stdint.h>

#define ADMIN_LINE_MAX		(160 * 1024)	/* publish carries a payload */
#define ADMIN_CLIENTS_MAX	64
#define ADMIN_STR_(x)		#x
#define ADMIN_STR(x)		ADMIN_STR_(x)
#define ADMIN_CLIENTS_MAX_S	ADMIN_STR(ADMIN_CLIENTS_MAX)	/* the same, in text */
/* a client with no request waiting that sends nothing this long is closed */
#define ADMIN_IDLE_SECONDS	30
#define ADMIN_OUTPUT_HIGH	(256 * 1024)	/* replies unread: read no more commands */

struct event_base;
struct registry;
struct json_object;

enum admin_cmd {
	ADM_INVALID = 0,
	ADM_HELP,
	ADM_STATS,
	ADM_HEALTH,
	ADM_WORKERS,
	ADM_CHANNELS,		/* [prefix] */
	ADM_CONNECTIONS,	/* [user ID] */
	ADM_KICK,		/* CONNECTION-ID */
	ADM_KICK_USER,		/* USER-ID */
	ADM_PUBLISH,		/* CHANNEL JSON */
	ADM_RELOAD,
	ADM_REVOKE,		/* JTI [UNTIL] */
	ADM_UNREVOKE,		/* JTI */
	ADM_NODES,
};

struct admin_request {
	enum admin_cmd	 ar_cmd;
	const char	*ar_arg;	/* first argument, NUL-terminated, or NULL */
	const char	*ar_arg2;	/* revoke: UNTIL, or NULL */
	const char	*ar_rest;	/* publish: the payload (rest of the line) */
	size_t		 ar_rest_len;
	const char	*ar_error;	/* ADM_INVALID: why */
};

/* Parse one command line in place (pure).  Always fills req. */
void	admin_parse(char *line, struct admin_request *req);
/*
 * revoke's UNTIL (pure): a duration from now ("90s", "30m", "12h", "7d"),
 * Unix seconds ("1767225600") or an ISO 8601 UTC time
 * ("2026-01-01T00:00:00Z", fractions allowed).  0 with *until (Unix s,
 * after now), or -1.
 */
int	admin_parse_until(const char *s, int64_t now, int64_t *until);

/* What the admin server asks of the master. */
struct admin_ops {
	void	*ao_arg;
	/*
	 * reload: -1 with err (nothing changed), 0 done, or 1 while the
	 * processes apply it: then admin_reload_done() gives the outcome
	 */
	int	(*ao_reload)(void *arg, char *err, size_t errlen);
	/* publish via the bridge; reply later with admin_publish_done(reqid) */
	int	(*ao_publish)(void *arg, uint32_t reqid, const char *channel,
		    const char *json, size_t len);
	/* the health object (as /health serves it), new reference */
	struct json_object *(*ao_health)(void *arg);
	/*
	 * kick, kick-user, revoke, unrevoke (enum ctl_cmd) with its argument:
	 * carried out on this node at once (*local: connections closed; for
	 * unrevoke, 1 when it was held), then, with control_secret set, sent
	 * to every node: 1, and admin_control_done(reqid) follows.  0 when
	 * it stays on this node (*why says why), -1 with *why on failure.
	 */
	int	(*ao_control)(void *arg, uint32_t reqid, int cmd, const char *carg,
		    int64_t *until, int *local, const char **why);
	/* the node registry via the bridge: -1, or admin_nodes_done(reqid) follows */
	int	(*ao_nodes)(void *arg, uint32_t reqid);
};

struct admin;

/* Listen on path with mode and owner (-1 = keep); NULL with err. */
struct admin *admin_open(struct event_base *base, struct registry *reg,
	    const struct admin_ops *ops, const char *path, const char *mode,
	    int uid, int gid, char *err, size_t errlen);
void	admin_close(struct admin *a);
void	admin_free_in_child(struct admin *a);
/* Every process answered the reload in flight: error NULL when all applied it. */
void	admin_reload_done(struct admin *a, const char *error);
/*
 * The bridge answered publish reqid: receivers >= 0 and the offset that
 * realtimed_publish gave it (> 0 on a channel with history), or -1 with error.
 */
void	admin_publish_done(struct admin *a, uint32_t reqid, int64_t receivers,
	    int64_t offset, const char *error);

/*
 * The bridge published control request reqid: nodes = how many nodes'
 * bridges heard it (ours included), or -1 with why (it stayed here).
 */
void	admin_control_done(struct admin *a, uint32_t reqid, int64_t nodes,
	    const char *why);
/* The bridge died: whatever waits for it is answered now. */
void	admin_bridge_gone(struct admin *a);
/* The node registry for reqid: a JSON array's text, or NULL with error. */
void	admin_nodes_done(struct admin *a, uint32_t reqid, const char *json, size_t len,
	    const char *error);

#endif
