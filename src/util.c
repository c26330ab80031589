/*
 * Small helpers shared by every process: timestamps, ids, clocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "realtimed.h"
#include "config.h"
#include "util.h"

/*
 * The date and time part is made once per second (gmtime_r and a format
 * per event were a tenth of the bridge's own work): processes here have
 * one thread.
 */
void
util_timestamp(char *out, size_t outlen, const struct timeval *tv)
{
	/* two seconds kept: now, and another (a token's exp in connected) */
	static struct {
		time_t	 sec;
		char	 head[80];	/* 2026-12-03T15:04:08. */
		size_t	 hlen;
	}		 cache[2] = { { -1, "", 0 }, { -1, "", 0 } };
	static int	 last;
	struct timeval	 now;
	struct tm	 tm;
	const char	*head;
	size_t		 hlen;
	int		 ms, k;

	if (tv == NULL) {
		gettimeofday(&now, NULL);
		tv = &now;
	}
	if (cache[last].sec == tv->tv_sec)
		k = last;
	else if (cache[!last].sec == tv->tv_sec)
		k = !last;
	else {
		k = !last;	/* the one not used last goes */
		if (gmtime_r(&tv->tv_sec, &tm) == NULL) {
			time_t	 zero = 0;	/* past year 2^31: not a date we print */

			gmtime_r(&zero, &tm);
		}
		snprintf(cache[k].head, sizeof(cache[k].head), "%04d-%02d-%02dT%02d:%02d:%02d.",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		cache[k].hlen = strlen(cache[k].head);
		cache[k].sec = tv->tv_sec;
	}
	last = k;
	head = cache[k].head;
	hlen = cache[k].hlen;
	if (outlen < hlen + 5) {
		if (outlen > 0)
			snprintf(out, outlen, "%s", head);
		return;
	}
	ms = (int)(tv->tv_usec / 1000) % 1000;
	memcpy(out, head, hlen);
	out[hlen] = (char)('0' + ms / 100);
	out[hlen + 1] = (char)('0' + ms / 10 % 10);
	out[hlen + 2] = (char)('0' + ms % 10);
	out[hlen + 3] = 'Z';
	out[hlen + 4] = '\0';
}

/*
 * Connection ids come from a pool of OpenSSL randomness filled 64 ids at a
 * time: RAND_bytes() asks getpid() on every call (its fork check), a
 * system call per handshake.  A forked child never hands out its parent's
 * ids: the pool is emptied in the child (pthread_atfork) and cleansed.
 */
#define UTIL_UUID_POOL	64

static unsigned char	util_pool[UTIL_UUID_POOL][16];
static int		util_pool_next = UTIL_UUID_POOL;
static pthread_once_t	util_pool_once = PTHREAD_ONCE_INIT;
static int		util_pool_watched;

static void
util_pool_forked(void)
{
	OPENSSL_cleanse(util_pool, sizeof(util_pool));
	util_pool_next = UTIL_UUID_POOL;
}

static void
util_pool_watch(void)
{
	util_pool_watched = pthread_atfork(NULL, NULL, util_pool_forked) == 0;
}

static int
util_pool_take(unsigned char b[16])
{
	pthread_once(&util_pool_once, util_pool_watch);
	if (!util_pool_watched)		/* no fork hook: never pool */
		return RAND_bytes(b, 16) == 1 ? 0 : -1;
	if (util_pool_next == UTIL_UUID_POOL) {
		if (RAND_bytes(&util_pool[0][0], sizeof(util_pool)) != 1)
			return -1;
		util_pool_next = 0;
	}
	memcpy(b, util_pool[util_pool_next], 16);
	OPENSSL_cleanse(util_pool[util_pool_next], 16);
	util_pool_next++;
	return 0;
}

int
util_uuid4(char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	 b[16];
	int		 i, o;

	if (outlen < RT_UUID_LEN + 1 || util_pool_take(b) == -1)
		return -1;
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* variant 10 */
	for (i = 0, o = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

int64_t
util_wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
util_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
util_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Does addr (4 or 16 bytes) fall in "ADDR[/BITS]"?  -1: bad entry. */
static int
util_cidr_match(const char *entry, const unsigned char *addr, int family)
{
	unsigned char	 net[16];
	char		 host[64], *slash;
	int		 bits, len = family == AF_INET ? 4 : 16, i, nf;
	long		 v;

	snprintf(host, sizeof(host), "%s", entry);
	if ((slash = strchr(host, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, host, net) == 1)
		nf = AF_INET;
	else if (inet_pton(AF_INET6, host, net) == 1)
		nf = AF_INET6;
	else
		return -1;
	bits = nf == AF_INET ? 32 : 128;
	if (slash != NULL) {
		char *end;

		/* digits only: strtol would take " 8", "+8" and "-0" */
		if (*slash < '0' || *slash > '9')
			return -1;
		v = strtol(slash, &end, 10);
		if (*end != '\0' || v > bits)
			return -1;
		bits = (int)v;
	}
	util_cidr_unmap(&nf, net, &bits);
	if (nf != family)
		return 0;
	for (i = 0; i < len && bits > 0; i++, bits -= 8) {
		unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));

		if ((addr[i] & mask) != (net[i] & mask))
			return 0;
	}
	return 1;
}

void
util_cidr_unmap(int *family, unsigned char net[16], int *bits)
{
	const unsigned char	*a = net;

	if (*bits >= 96 && util_addr_unmap(*family, &a) == AF_INET) {
		memmove(net, a, 4);	/* ::ffff:a.b.c.d/(96+n) is a.b.c.d/n */
		*family = AF_INET;
		*bits -= 96;
	}
}

int
util_addr_unmap(int family, const unsigned char **addr)
{
	static const unsigned char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	if (family == AF_INET6 && memcmp(*addr, v4mapped, sizeof(v4mapped)) == 0) {
		*addr += 12;	/* ::ffff:a.b.c.d is an IPv4 peer */
		return AF_INET;
	}
	return family;
}

int
util_addr_in(int family, const unsigned char *addr, const struct rt_strlist *list)
{
	int	 i;

	family = util_addr_unmap(family, &addr);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	for (i = 0; i < list->sl_count; i++)
		if (util_cidr_match(list->sl_items[i], addr, family) == 1)
			return 1;
	return 0;
}

int
util_addr_allowed(const struct sockaddr *sa, const struct rt_strlist *list)
{
	if (sa->sa_family == AF_INET)
		return util_addr_in(AF_INET,
		    (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, list);
	if (sa->sa_family == AF_INET6)
		return util_addr_in(AF_INET6,
		    (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr, list);
	return 0;
}

int
util_cidr_valid(const char *entry)
{
	unsigned char	 any[16] = { 0 };

	return util_cidr_match(entry, any, AF_INET) != -1;
}

int
util_trim_due(size_t free_bytes, size_t last_free, size_t threshold)
{
	size_t	 moved = free_bytes > last_free ? free_bytes - last_free :
		    last_free - free_bytes;

	return free_bytes > threshold && moved >= threshold / 4;
}

uint32_t
util_hash(const char *s, size_t len)
{
	uint32_t	 h = 2166136261u;	/* FNV-1a */
	size_t		 i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* Random bytes for jitter (not secrets): OpenSSL's, or random()'s. */
void
util_random(void *buf, size_t len)
{
	uint8_t	*p = buf;
	size_t	 i;

	if (RAND_bytes(buf, (int)len) == 1)
		return;
	for (i = 0; i < len; i++)
		p[i] = (uint8_t)random();
}
