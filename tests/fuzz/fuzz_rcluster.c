/* libFuzzer: CLUSTER SLOTS replies (RESP bytes), keyslots, MOVED/ASK. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_cluster.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * hiredis 0.14's reader allocates a multi-bulk's element array as soon as it
 * reads the count (1.0 added maxelements): "*3000000000" is a 24 GB calloc
 * inside hiredis, not in our parser.  A reply can hold no more elements than
 * it has bytes, so such inputs are skipped: we fuzz rcluster_map_parse, and
 * Redis is the bridge's trusted peer.
 */
static int
counts_fit(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		unsigned long long	 n = 0;
		size_t			 j;

		if (data[i] != '*')
			continue;
		for (j = i + 1; j < size && data[j] >= '0' && data[j] <= '9'; j++)
			if ((n = n * 10 + (data[j] - '0')) > size)
				return 0;
	}
	return 1;
}

static void
check_map(const struct rcluster_map *m)
{
	int	 holes = 0;

	for (int i = 0; i < RCLUSTER_SLOTS; i++) {
		const struct rcluster_shard *s = rcluster_owner(m, i);

		if (s == NULL) {
			holes++;
			continue;
		}
		if (s->rs_host[0] == '\0' || s->rs_port < 1 || s->rs_port > 65535)
			abort();
	}
	if (holes != m->rm_uncovered || m->rm_nshards > RCLUSTER_SHARDS_MAX)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	redisReader		*rd;
	void			*reply = NULL;
	struct rcluster_map	 m;
	char			 err[256], s[512], host[REDIS_HOST_MAX];
	int			 slot, port, k;

	if (rcluster_keyslot((const char *)data, size) >= RCLUSTER_SLOTS)
		abort();
	if (size < sizeof(s)) {
		memcpy(s, data, size);
		s[size] = '\0';
		k = rcluster_redirect(s, &slot, host, sizeof(host), &port);
		if (k > 0 && (slot < 0 || slot >= RCLUSTER_SLOTS || port < 1 || port > 65535))
			abort();
	}
	if (!counts_fit(data, size) || (rd = redisReaderCreate()) == NULL)
		return 0;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK &&
	    redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
		err[0] = '\0';
		if (rcluster_map_parse(reply, "seed", &m, err, sizeof(err)) == 0) {
			check_map(&m);
			rcluster_map_free(&m);
		} else if (err[0] == '\0')
			abort();
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
	return 0;
}
