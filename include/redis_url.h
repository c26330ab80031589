#ifndef RT_REDIS_URL_H
#define RT_REDIS_URL_H

#include <stddef.h>

#define REDIS_HOST_MAX	256
#define REDIS_PASS_MAX	512

/* A parsed redis_url. */
struct redis_url {
	int	 ru_unix;			/* 1: ru_host is a socket path */
	char	 ru_host[REDIS_HOST_MAX];
	int	 ru_port;
	char	 ru_user[REDIS_PASS_MAX];	/* "" = none (ACL user) */
	char	 ru_password[REDIS_PASS_MAX];	/* "" = none */
	int	 ru_db;
};

/*
 * redis://[[user]:password@]host[:port][/db], rediss:// is refused (no TLS
 * in Debian 12's hiredis), unix:/path or unix:///path[?db=N].  Pure.
 * 0, or -1 with a reason in err.
 */
int	redis_url_parse(const char *s, struct redis_url *u, char *err, size_t errlen);

#endif
