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

int
redis_url_parse(const char *s, struct redis_url *u, char *err, size_t errlen)
{
	const char	*p, *at, *slash, *colon, *hostend;
	long		 v;

	memset(u, 0, sizeof(*u));
	u->ru_port = 6379;
	if (strncmp(s, "unix:", 5) == 0)
		return redis_url_unix(s, u, err, errlen);
	if (strncmp(s, "rediss://", 9) == 0) {
		snprintf(err, errlen, "rediss:// (TLS) is not supported by this hiredis");
		return -1;
	}
	if (strncmp(s, "redis://", 8) != 0) {
		snprintf(err, errlen, "expected redis://host:port or unix:/path");
		return -1;
	}
	p = s + 8;
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
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(hostend - p));

		if (close == NULL || redis_url_copy(u->ru_host, sizeof(u->ru_host), p + 1,
		    (size_t)(close - p - 1))) {
			snprintf(err, errlen, "bad IPv6 host");
			return -1;
		}
		colon = close + 1 < hostend && close[1] == ':' ? close + 1 : NULL;
		if (colon == NULL && close + 1 != hostend) {
			snprintf(err, errlen, "bad IPv6 host");
			return -1;
		}
	} else {
		colon = memchr(p, ':', (size_t)(hostend - p));
		if (redis_url_copy(u->ru_host, sizeof(u->ru_host), p,
		    (size_t)((colon ? colon : hostend) - p))) {
			snprintf(err, errlen, "host name too long");
			return -1;
		}
	}
	if (u->ru_host[0] == '\0')
		snprintf(u->ru_host, sizeof(u->ru_host), "127.0.0.1");
	if (colon != NULL) {
		if (redis_url_number(colon + 1, (size_t)(hostend - colon - 1), 65535, &v) || v == 0) {
			snprintf(err, errlen, "bad port");
			return -1;
		}
		u->ru_port = (int)v;
	}
	if (slash != NULL && slash[1] != '\0') {
		if (redis_url_number(slash + 1, strlen(slash + 1), 1 << 20, &v)) {
			snprintf(err, errlen, "bad database number");
			return -1;
		}
		u->ru_db = (int)v;
	}
	return 0;
}
