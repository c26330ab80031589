#ifndef RT_REDIS_URL_H
#define RT_REDIS_URL_H

#include <stddef.h>

#define REDIS_HOST_MAX	256
#define REDIS_PASS_MAX	512
#define REDIS_NODES_MAX	16	/* sentinels or cluster seeds in one URL */
#define REDIS_NAME_MAX	128	/* a sentinel's master name */

enum redis_mode {
	REDIS_SINGLE,		/* redis:// or unix: */
	REDIS_SENTINEL,		/* redis-sentinel://h1:p1,h2:p2/MASTER */
	REDIS_CLUSTER		/* redis-cluster://h1:p1,h2:p2 */
};

struct redis_node {
	char	 rn_host[REDIS_HOST_MAX];
	int	 rn_port;
};

/* A parsed redis_url. */
struct redis_url {
	enum redis_mode	 ru_mode;
	int	 ru_unix;			/* 1: ru_host is a socket path */
	char	 ru_host[REDIS_HOST_MAX];
	int	 ru_port;
	char	 ru_user[REDIS_PASS_MAX];	/* "" = none (ACL user) */
	char	 ru_password[REDIS_PASS_MAX];	/* "" = none */
	int	 ru_db;
	/* REDIS_SENTINEL: the sentinels; REDIS_CLUSTER: the seed nodes */
	int	 ru_nnodes;
	struct redis_node ru_nodes[REDIS_NODES_MAX];
	char	 ru_master[REDIS_NAME_MAX];	/* REDIS_SENTINEL */
};

/*
 * redis://[[user]:password@]host[:port][/db], rediss:// is refused (no TLS
 * in Debian 12's hiredis), unix:/path or unix:///path[?db=N],
 * redis-sentinel://[[user]:password@]h1[:p1],h2[:p2]/MASTER[/db] (port
 * 26379 by default; the credentials are the data nodes'),
 * redis-cluster://[[user]:password@]h1[:p1],h2[:p2] (seeds; no db).
 * Pure.  0, or -1 with a reason in err.
 */
int	redis_url_parse(const char *s, struct redis_url *u, char *err, size_t errlen);

#endif
