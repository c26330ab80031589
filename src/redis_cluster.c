/*
 * Redis Cluster's key space: slots, the slot map, redirections.  See
 * redis_cluster.h and the Redis Cluster specification ("Keys distribution
 * model", "Hash tags", "Redirection and resharding").  Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_cluster.h"

/* CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection. */
uint16_t
rcluster_crc16(const char *buf, size_t len)
{
	uint16_t	 crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((uint8_t)buf[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
	}
	return crc;
}

/*
 * Only the part between the first '{' and the first '}' after it is
 * hashed, when that part is not empty.
 */
int
rcluster_keyslot(const char *key, size_t len)
{
	const char	*open = memchr(key, '{', len), *close;

	if (open != NULL) {
		size_t rest = len - (size_t)(open - key) - 1;

		close = memchr(open + 1, '}', rest);
		if (close != NULL && close > open + 1)
			return rcluster_crc16(open + 1, (size_t)(close - open - 1)) &
			    (RCLUSTER_SLOTS - 1);
	}
	return rcluster_crc16(key, len) & (RCLUSTER_SLOTS - 1);
}

static int
rcluster_int(const redisReply *r, long long lo, long long hi, long long *out)
{
	if (r->type != REDIS_REPLY_INTEGER || r->integer < lo || r->integer > hi)
		return -1;
	*out = r->integer;
	return 0;
}

/* A node entry: [host, port, id?, ...]. */
static int
rcluster_node(const redisReply *n, const char *from_host, struct rcluster_shard *s)
{
	long long	 port;
	const char	*host;
	size_t		 hlen;

	if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
	    n->element[0]->type != REDIS_REPLY_STRING ||
	    rcluster_int(n->element[1], 1, 65535, &port) == -1)
		return -1;
	host = n->element[0]->str;
	hlen = n->element[0]->len;
	if (hlen == 0 || (hlen == 1 && host[0] == '?')) {
		host = from_host;
		hlen = strlen(from_host);
	}
	if (hlen == 0 || hlen >= sizeof(s->rs_host) || memchr(host, '\0', hlen) != NULL)
		return -1;
	memcpy(s->rs_host, host, hlen);
	s->rs_host[hlen] = '\0';
	s->rs_port = (int)port;
	s->rs_id[0] = '\0';
	if (n->elements >= 3 && n->element[2]->type == REDIS_REPLY_STRING &&
	    n->element[2]->len < sizeof(s->rs_id)) {
		memcpy(s->rs_id, n->element[2]->str, n->element[2]->len);
		s->rs_id[n->element[2]->len] = '\0';
	}
	return 0;
}

/* The shard with the master's address, added when new. */
static int
rcluster_shard_of(struct rcluster_map *m, const struct rcluster_shard *s, size_t cap)
{
	for (int i = 0; i < m->rm_nshards; i++)
		if (m->rm_shards[i].rs_port == s->rs_port &&
		    strcmp(m->rm_shards[i].rs_host, s->rs_host) == 0)
			return i;
	if ((size_t)m->rm_nshards == cap)
		return -1;
	m->rm_shards[m->rm_nshards] = *s;
	return m->rm_nshards++;
}

static int
rcluster_range(struct rcluster_map *m, const redisReply *e, const char *from_host,
    size_t cap, char *err, size_t errlen)
{
	struct rcluster_shard	 s;
	long long		 lo, hi;
	int			 idx;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
	    rcluster_int(e->element[0], 0, RCLUSTER_SLOTS - 1, &lo) == -1 ||
	    rcluster_int(e->element[1], lo, RCLUSTER_SLOTS - 1, &hi) == -1) {
		snprintf(err, errlen, "CLUSTER SLOTS: bad slot range");
		return -1;
	}
	if (rcluster_node(e->element[2], from_host, &s) == -1) {
		snprintf(err, errlen, "CLUSTER SLOTS: bad master entry for slots %lld-%lld", lo, hi);
		return -1;
	}
	s.rs_replicas = (int)e->elements - 3;
	if ((idx = rcluster_shard_of(m, &s, cap)) == -1) {
		snprintf(err, errlen, "CLUSTER SLOTS: more than %d masters", RCLUSTER_SHARDS_MAX);
		return -1;
	}
	for (long long slot = lo; slot <= hi; slot++) {
		if (m->rm_owner[slot] != -1 && m->rm_owner[slot] != idx) {
			snprintf(err, errlen, "CLUSTER SLOTS: slot %lld has two masters", slot);
			return -1;
		}
		m->rm_owner[slot] = (int16_t)idx;
	}
	return 0;
}

int
rcluster_map_parse(const redisReply *r, const char *from_host, struct rcluster_map *m,
    char *err, size_t errlen)
{
	size_t	 cap;

	memset(m, 0, sizeof(*m));
	for (int i = 0; i < RCLUSTER_SLOTS; i++)
		m->rm_owner[i] = -1;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "CLUSTER SLOTS: %s", r != NULL && r->type == REDIS_REPLY_ERROR ?
		    r->str : "not an array");
		return -1;
	}
	cap = r->elements < RCLUSTER_SHARDS_MAX ? r->elements : RCLUSTER_SHARDS_MAX;
	if (cap > 0 && (m->rm_shards = calloc(cap, sizeof(*m->rm_shards))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->elements; i++)
		if (rcluster_range(m, r->element[i], from_host, cap, err, errlen) == -1) {
			rcluster_map_free(m);
			return -1;
		}
	for (int i = 0; i < RCLUSTER_SLOTS; i++)
		if (m->rm_owner[i] == -1)
			m->rm_uncovered++;
	return 0;
}

void
rcluster_map_free(struct rcluster_map *m)
{
	free(m->rm_shards);
	m->rm_shards = NULL;
	m->rm_nshards = 0;
	for (int i = 0; i < RCLUSTER_SLOTS; i++)
		m->rm_owner[i] = -1;
	m->rm_uncovered = RCLUSTER_SLOTS;
}

const struct rcluster_shard *
rcluster_owner(const struct rcluster_map *m, int slot)
{
	if (slot < 0 || slot >= RCLUSTER_SLOTS || m->rm_owner[slot] < 0)
		return NULL;
	return &m->rm_shards[m->rm_owner[slot]];
}

int
rcluster_redirect(const char *err, int *slot, char *host, size_t hostlen, int *port)
{
	const char	*p, *colon;
	int		 kind;
	long		 v = 0;
	size_t		 hl;

	if (strncmp(err, "MOVED ", 6) == 0)
		kind = 1, p = err + 6;
	else if (strncmp(err, "ASK ", 4) == 0)
		kind = 2, p = err + 4;
	else
		return 0;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((v = v * 10 + (*p - '0')) >= RCLUSTER_SLOTS)
			return -1;
	if (*p++ != ' ' || (colon = strrchr(p, ':')) == NULL)
		return -1;
	*slot = (int)v;
	/* "[::1]:7000" or "::1:7000" (Redis writes IPv6 bare) or "host:7000" */
	hl = (size_t)(colon - p);
	if (hl >= 2 && p[0] == '[' && p[hl - 1] == ']')
		p++, hl -= 2;
	if (hl >= hostlen)
		return -1;
	memcpy(host, p, hl);
	host[hl] = '\0';
	for (v = 0, p = colon + 1; *p >= '0' && *p <= '9' && v <= 65535; p++)
		v = v * 10 + (*p - '0');
	if (*p != '\0' || v < 1 || v > 65535 || p == colon + 1)
		return -1;
	*port = (int)v;
	return kind;
}
