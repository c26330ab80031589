/*
 * redis_url: the one setting that says where Redis is.  Pure: a string in,
 * a struct out.
 */
#include <stdio.h>
#include <string.h>

#include "redis_url.h"

static int
redis_url_copy(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (len >= dstlen)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int
redis_url_number(const char *s, size_t len, long max, long *out)
{
	long	 v = 0;
	size_t	 i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static int
redis_url_unix(const char *s, struct redis_url *u, char *err, size_t errlen)
{
	const char	*path = s + 5, *q;
	long		 db;

	if (strncmp(path, "//", 2) == 0)
		path += 2;
	if (*path != '/') {
		snprintf(err, errlen, "unix: needs an absolute socket path");
		return -1;
	}
	q = strchr(path, '?');
	if (redis_url_copy(u->ru_host, sizeof(u->ru_host), path, q ? (size_t)(q - path) : strlen(path))) {
		snprintf(err, errlen, "socket path too long");
		return -1;
	}
	if (q != NULL) {
		if (strncmp(q, "?db=", 4) != 0 || redis_url_number(q + 4, strlen(q + 4), 1 << 20, &db)) {
			snprintf(err, errlen, "unix: only ?db=N may follow the path");
			return -1;
		}
		u->ru_db = (int)db;
	}
	u->ru_unix = 1;
	return 0;
}

static int
redis_url_auth(const char *s, size_t len, struct redis_url *u)
{
	const char	*colon = memchr(s, ':', len);

	if (colon == NULL)	/* "password@" as some clients write it */
		return redis_url_copy(u->ru_password, sizeof(u->ru_password), s, len);
	if (redis_url_copy(u->ru_user, sizeof(u->ru_user), s, (size_t)(colon - s)))
		return -1;
	return redis_url_copy(u->ru_password, sizeof(u->ru_password), colon + 1,
	    len - (size_t)(colon - s) - 1);
}

/* host[:port] or [v6addr][:port] in [p, end); an empty host is loopback. */
static int
redis_url_hostport(const char *p, const char *end, char *host, size_t hostlen, int *port,
    char *err, size_t errlen)
{
	const char	*colon;
	long		 v;

	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL || redis_url_copy(host, hostlen, p + 1, (size_t)(close - p - 1))) {
			snprintf(err, errlen, "bad IPv6 host");
			return -1;
		}
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		if (colon == NULL && close + 1 != end) {
			snprintf(err, errlen, "bad IPv6 host");
			return -1;
		}
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		if (redis_url_copy(host, hostlen, p, (size_t)((colon ? colon : end) - p))) {
			snprintf(err, errlen, "host name too long");
			return -1;
		}
	}
	if (host[0] == '\0')
		snprintf(host, hostlen, "127.0.0.1");
	if (colon != NULL) {
		if (redis_url_number(colon + 1, (size_t)(end - colon - 1), 65535, &v) || v == 0) {
			snprintf(err, errlen, "bad port");
			return -1;
		}
		*port = (int)v;
	}
	return 0;
}

/* "h1:p1,h2:p2" in [p, end): the sentinels or the cluster's seeds. */
static int
redis_url_nodes(const char *p, const char *end, int defport, struct redis_url *u,
    char *err, size_t errlen)
{
	const char	*comma;

	for (;;) {
		struct redis_node *n;

		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == p || p == end) {
			snprintf(err, errlen, "empty host in the list");
			return -1;
		}
		if (u->ru_nnodes == REDIS_NODES_MAX) {
			snprintf(err, errlen, "more than %d hosts", REDIS_NODES_MAX);
			return -1;
		}
		n = &u->ru_nodes[u->ru_nnodes++];
		n->rn_port = defport;
		if (redis_url_hostport(p, comma ? comma : end, n->rn_host, sizeof(n->rn_host),
		    &n->rn_port, err, errlen) == -1)
			return -1;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	snprintf(u->ru_host, sizeof(u->ru_host), "%s", u->ru_nodes[0].rn_host);
	u->ru_port = u->ru_nodes[0].rn_port;
	return 0;
}

static int
redis_url_db(const char *s, struct redis_url *u, char *err, size_t errlen)
{
	long	 v;

	if (redis_url_number(s, strlen(s), 1 << 20, &v)) {
		snprintf(err, errlen, "bad database number");
		return -1;
	}
	u->ru_db = (int)v;
	return 0;
}

/* "/MASTER[/db]" after a sentinel list. */
static int
redis_url_master(const char *slash, struct redis_url *u, char *err, size_t errlen)
{
	const char	*name = slash ? slash + 1 : "", *end = strchr(name, '/');
	size_t		 len = end ? (size_t)(end - name) : strlen(name);

	if (len == 0) {
		snprintf(err, errlen, "redis-sentinel:// needs the master's name: /NAME after the hosts");
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f) {
			snprintf(err, errlen, "bad master name");
			return -1;
		}
	if (redis_url_copy(u->ru_master, sizeof(u->ru_master), name, len)) {
		snprintf(err, errlen, "master name too long");
		return -1;
	}
	if (end != NULL && end[1] != '\0')
		return redis_url_db(end + 1, u, err, errlen);
	return 0;
}

static const char *
redis_url_scheme(const char *s, struct redis_url *u, int *defport)
{
	*defport = 6379;
	if (strncmp(s, "redis://", 8) == 0)
		return s + 8;
	if (strncmp(s, "redis-sentinel://", 17) == 0) {
		u->ru_mode = REDIS_SENTINEL;
		*defport = 26379;
		return s + 17;
	}
	if (strncmp(s, "redis-cluster://", 16) == 0) {
		u->ru_mode = REDIS_CLUSTER;
		return s + 16;
	}
	return NULL;
}

int
redis_url_parse(const char *s, struct redis_url *u, char *err, size_t errlen)
{
	const char	*p, *at, *slash, *hostend;
	int		 defport;

	memset(u, 0, sizeof(*u));
	u->ru_port = 6379;
	if (strncmp(s, "unix:", 5) == 0)
		return redis_url_unix(s, u, err, errlen);
	if (strncmp(s, "rediss://", 9) == 0) {
		snprintf(err, errlen, "rediss:// (TLS) is not supported by this hiredis");
		return -1;
	}
	if ((p = redis_url_scheme(s, u, &defport)) == NULL) {
		snprintf(err, errlen, "expected redis://host:port, redis-sentinel://hosts/MASTER,"
		    " redis-cluster://hosts or unix:/path");
		return -1;
	}
	slash = strchr(p, '/');
	hostend = slash ? slash : p + strlen(p);
	at = NULL;
	for (const char *q = p; q < hostend; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		if (redis_url_auth(p, (size_t)(at - p), u) == -1) {
			snprintf(err, errlen, "credentials too long");
			return -1;
		}
		p = at + 1;
	}
	switch (u->ru_mode) {
	case REDIS_SENTINEL:
		if (redis_url_nodes(p, hostend, defport, u, err, errlen) == -1)
			return -1;
		return redis_url_master(slash, u, err, errlen);
	case REDIS_CLUSTER:
		if (redis_url_nodes(p, hostend, defport, u, err, errlen) == -1)
			return -1;
		if (slash != NULL && slash[1] != '\0') {
			snprintf(err, errlen, "redis-cluster:// takes no database (a cluster has only 0)");
			return -1;
		}
		return 0;
	case REDIS_SINGLE:
		break;
	}
	if (redis_url_hostport(p, hostend, u->ru_host, sizeof(u->ru_host), &u->ru_port,
	    err, errlen) == -1)
		return -1;
	if (slash != NULL && slash[1] != '\0')
		return redis_url_db(slash + 1, u, err, errlen);
	return 0;
}
