#ifndef RT_BRIDGE_DEMAND_H
#define RT_BRIDGE_DEMAND_H

/*
 * redis_subscribe on_demand: the bridge subscribes to each channel by its
 * exact name when the first subscriber on this host appears, and
 * unsubscribes once nobody on the host has been subscribed for a while,
 * so that the node receives only the events someone on it wants.  The
 * worker's subscribe waits for the bridge's answer (as with history), and
 * the answer waits for Redis' confirmation of the SUBSCRIBE: an event
 * published after "subscribed" is never missed.  Private to the bridge.
 *
 * The table is bounded (redis_subscriptions_max); hiredis 0.14 forgets a
 * channel's callback at an UNSUBSCRIBE's reply, so a channel is never
 * subscribed again before that reply (it waits in BDEM_LEAVING).
 */
#include <stddef.h>
#include <stdint.h>

struct bdem;
struct registry;
struct reg_bridge;

/* A worker's request waiting for the subscription (bridge_answer()'s arguments). */
struct bdem_wait {
	int		 dw_w;
	uint32_t	 dw_req;
	uint8_t		 dw_since;
	uint64_t	 dw_offset;
	uint64_t	 dw_at;		/* ms */
	char		 dw_epoch[64];
};

struct bdem_ops {
	/* SUBSCRIBE (sub 1) or UNSUBSCRIBE (sub 0) names[0..n) on the subscribe connection */
	void	(*do_command)(void *arg, int sub, const char **names, const size_t *lens, int n);
	/* the subscription is there (or cannot be made: full): answer the request */
	void	(*do_answer)(void *arg, const char *ch, size_t chlen, const struct bdem_wait *wt,
		    int refused);
	/*
	 * Redis confirmed a SUBSCRIBE after a time without ch's subscription
	 * (new, left, lost, moved): its events before now did not all come.
	 * Called before the waiting requests are answered.
	 */
	void	(*do_joined)(void *arg, const char *ch, size_t chlen);
	void	*do_arg;
};

struct bdem *bdem_new(struct registry *reg, struct reg_bridge *rb, int64_t max,
	    const struct bdem_ops *ops);
void	bdem_free(struct bdem *d);
/*
 * Worker request for channel ch: answered at once (do_answer) when the
 * subscription is confirmed, else when Redis confirms it.  connected: the
 * subscribe connection is there (or being made) to send SUBSCRIBE on;
 * without one the answer goes at once and the channel waits for
 * bdem_connected().
 */
void	bdem_want(struct bdem *d, const char *ch, size_t chlen, const struct bdem_wait *wt,
	    int connected);
/*
 * Redis' "subscribe" / "unsubscribe" reply for ch.  1 when it was one of
 * ours; *counted set when the ack was part of bdem_connected()'s batch.
 */
int	bdem_ack(struct bdem *d, const char *ch, size_t chlen, int subscribe, int *counted);
/* Is ch subscribed on demand (its messages are events)? */
int	bdem_has(const struct bdem *d, const char *ch, size_t chlen);
/* A new subscribe connection: SUBSCRIBE every channel; how many acks that means. */
int	bdem_connected(struct bdem *d);
/* The subscribe connection is gone: nothing is subscribed. */
void	bdem_lost(struct bdem *d);
/*
 * Cluster mode: each channel is subscribed on one shard connection, its
 * tag.  bdem_tag() records it as the command goes (for a JOINING
 * channel); bdem_reset_if() makes the channels pred says lost NEW again
 * (pred NULL: all, as bdem_lost()), bdem_reset_one() one channel on
 * connection tag (1 when it was subscribed or subscribing); bdem_connected()
 * then subscribes them again.
 */
void	bdem_tag(struct bdem *d, const char *ch, size_t chlen, int32_t tag);
int	bdem_has_tag(const struct bdem *d, const char *ch, size_t chlen, int32_t tag);
void	bdem_reset_if(struct bdem *d, int (*pred)(void *arg, const char *ch, size_t chlen,
	    int32_t tag), void *arg);
int	bdem_reset_one(struct bdem *d, const char *ch, size_t chlen, int32_t tag);
/*
 * Every tick: unsubscribe channels nobody on the host has had for two
 * scans, a slice of the table at a time; answer requests older than
 * wait_ms anyway (Redis is not coming back soon).
 */
void	bdem_tick(struct bdem *d, uint64_t now, uint64_t wait_ms, int connected);
size_t	bdem_count(const struct bdem *d);

#endif
