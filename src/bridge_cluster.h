#ifndef RT_BRIDGE_CLUSTER_H
#define RT_BRIDGE_CLUSTER_H

/*
 * redis-cluster://: the slot map (CLUSTER SLOTS from a seed, each seed in
 * turn), one connection per master shard for the sharded subscriptions
 * (SSUBSCRIBE), and a second one per master for commands: the canary's
 * SPUBLISH and the bridge's keyed commands, each sent to the master
 * serving its key's slot (MOVED and ASK followed once), with the function
 * library loaded on every master.  hiredis 0.14 does not know SSUBSCRIBE as a subscribe
 * command (its async layer would drop or assert on "smessage" pushes), so
 * these connections are plain bufferevents with hiredis' reply reader.
 * Each connection has an id, never reused: a channel is subscribed on the
 * connection whose id it was given.  Private to the bridge.
 */
#include <stddef.h>
#include <stdint.h>

struct bclu;
struct event_base;
struct redis_url;
struct reg_bridge;
struct redisReply;
struct redisAsyncContext;

/*
 * A command's reply, as hiredis gives it (ac is always NULL here); reply
 * NULL: the connection went before the answer (or the bridge is stopping).
 */
typedef void bclu_cb(struct redisAsyncContext *ac, void *reply, void *priv);

struct bclu_ops {
	/* a shard connection is ready (AUTH done), or there is a new map */
	void	(*co_changed)(void *arg);
	/* connection id is gone: what was subscribed on it is not */
	void	(*co_lost)(void *arg, int id);
	/* connection id answered MOVED or ASK for slot: not subscribed there */
	void	(*co_moved)(void *arg, int id, int slot);
	/* a reply or push on connection id (not an error) */
	void	(*co_reply)(void *arg, int id, const struct redisReply *r);
	/* a command connection came or went, or a master loaded the library */
	void	(*co_cmd)(void *arg);
	void	*co_arg;
};

/*
 * canary: every canary_ms (0: never), a canary goes to each shard: SPUBLISH
 * on a second connection to it, on "canary:{N}" in one of its slots,
 * SSUBSCRIBEd on its shard connection; a shard whose last canary did not
 * come back is counted degraded, two in a row make it reconnect.
 */
struct bclu *bclu_new(struct event_base *base, const struct redis_url *u,
	    struct reg_bridge *rb, const struct bclu_ops *ops, const char *canary,
	    uint64_t canary_ms, int cmd_max);
void	bclu_free(struct bclu *c);
/* Read the slot map again soon (coalesced, at most one fetch at a time). */
void	bclu_refresh(struct bclu *c);
/* The ready connection serving ch's slot, or -1. */
int	bclu_owner(const struct bclu *c, const char *ch, size_t len);
/* A command on connection id: 0, or -1 when it is not there. */
int	bclu_send(struct bclu *c, int id, int argc, const char **argv, const size_t *lens);
void	bclu_tick(struct bclu *c, uint64_t now);
/* Masters in the map, and those with a ready connection. */
void	bclu_counts(const struct bclu *c, int *shards, int *ready);
/*
 * A formatted command (cmd, len: RESP) for the master serving key's slot,
 * on its command connection; cb(NULL, reply, priv) when it answers.  At
 * most cmd_max are in flight.  0, or -1 (no master for the slot, or too
 * many in flight: counted) and cb is not called.
 */
int	bclu_command(struct bclu *c, const char *key, size_t keylen, bclu_cb *cb, void *priv,
	    const char *cmd, size_t len);
/* The master serving key's slot has a ready command connection. */
int	bclu_cmd_ready(const struct bclu *c, const char *key, size_t keylen);
/*
 * The formatted FUNCTION LOAD REPLACE of the library: sent now on every
 * command connection, and first on each new one.
 */
int	bclu_set_library(struct bclu *c, const char *cmd, size_t len);
/* 1: every master loaded the library; -1: one refused it; 0: not yet. */
int	bclu_library(const struct bclu *c);

#endif
