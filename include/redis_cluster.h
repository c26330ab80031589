#ifndef RT_REDIS_CLUSTER_H
#define RT_REDIS_CLUSTER_H

/*
 * Redis Cluster's key space, as its specification defines it: CRC16
 * (XMODEM) of the key or of its hash tag, modulo 16384 slots; the slot map
 * read from CLUSTER SLOTS; MOVED/ASK redirections.  hiredis 0.14 has no
 * cluster support.  Pure: replies in, tables out.
 */
#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"

#define RCLUSTER_SLOTS		16384
#define RCLUSTER_SHARDS_MAX	1024	/* masters in one map */
#define RCLUSTER_ID_MAX		41	/* a node id: 40 hex digits */

struct redisReply;

struct rcluster_shard {
	char		 rs_host[REDIS_HOST_MAX];
	int		 rs_port;
	char		 rs_id[RCLUSTER_ID_MAX];	/* "" when not given */
	int		 rs_replicas;
};

/* Which master serves each slot. */
struct rcluster_map {
	int			 rm_nshards;
	struct rcluster_shard	*rm_shards;		/* rm_nshards of them */
	int16_t			 rm_owner[RCLUSTER_SLOTS];	/* shard index, -1: none */
	int			 rm_uncovered;		/* slots nobody serves */
};

uint16_t rcluster_crc16(const char *buf, size_t len);
/* The slot of a key (or a channel, for SPUBLISH/SSUBSCRIBE). */
int	rcluster_keyslot(const char *key, size_t len);
/*
 * The map from a CLUSTER SLOTS reply (Redis 3 to 7 forms); host "" or
 * "?" in a node entry means "the address this reply came from", given as
 * from_host.  0, or -1 with a reason in err (the map is then empty).
 */
int	rcluster_map_parse(const struct redisReply *r, const char *from_host,
	    struct rcluster_map *m, char *err, size_t errlen);
void	rcluster_map_free(struct rcluster_map *m);
/* The shard serving slot, or NULL. */
const struct rcluster_shard *rcluster_owner(const struct rcluster_map *m, int slot);
/*
 * An error reply "MOVED 3999 127.0.0.1:6381" or "ASK 3999 host:port":
 * 1 (MOVED), 2 (ASK) with slot, host and port set, 0 for another error,
 * -1 for a malformed redirection.
 */
int	rcluster_redirect(const char *err, int *slot, char *host, size_t hostlen, int *port);

#endif
