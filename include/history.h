#ifndef RT_HISTORY_H
#define RT_HISTORY_H

/*
 * Node positions (PROTOCOL.md "Positions and recovery"): per channel, the
 * offset of each event (1, 2, 3 ... with no holes) under an epoch, and the
 * last events' frames for replay.  One table, in the bridge; pure: no I/O,
 * time comes in as an argument.
 *
 * A channel's epoch is the node epoch (hist_reset(), new whenever the
 * node may have missed an event) and the generation of the channel's
 * record: a record dropped to make room and made again restarts its
 * offsets under a new epoch, so an old position can never be taken for a
 * new one.  Kept frames are bounded per channel (count and age, from the
 * namespace) and in all (bytes, oldest dropped first, counted).
 */
#include <stddef.h>
#include <stdint.h>

#define HIST_EPOCH_MAX		32	/* bytes in an epoch string */

struct hist;

struct hist_pos {
	char		 hp_epoch[HIST_EPOCH_MAX + 1];
	uint64_t	 hp_offset;		/* of the newest event; 0: none yet */
};

struct hist_stats {
	int64_t		 hs_memory;		/* bytes held: frames and records */
	int64_t		 hs_events;		/* frames held */
	int64_t		 hs_channels;		/* channel records */
	uint64_t	 hs_evicted;		/* frames dropped for count, age or memory */
	uint64_t	 hs_channels_evicted;	/* records dropped for room (channels, memory) */
};

/*
 * A table holding at most memory bytes and max_channels channel records,
 * under epoch (1 to HIST_EPOCH_MAX - 8 characters).
 */
struct hist *hist_new(int64_t memory, int max_channels, const char *epoch);
void	hist_free(struct hist *h);

/*
 * A count that moves whenever a channel's position changes other than by
 * hist_next() and hist_cluster_next() of its next event (a record dropped
 * or reset, a cluster position set or moved): a reader that follows the
 * positions through the events must forget what it knows when it moves.
 */
uint64_t hist_changes(const struct hist *h);

/* Forget every channel and frame: continuity is lost, a new epoch begins. */
void	hist_reset(struct hist *h, const char *epoch);
/* New limits (a reload); frames over them go at the next append or sweep. */
void	hist_set_limits(struct hist *h, int64_t memory, int max_channels);

/*
 * The channel's current position, its record made when new (a client
 * that subscribes before the first event holds a position the events
 * will continue).  -1 only when out of memory.
 */
int	hist_position(struct hist *h, const char *ch, size_t chlen, struct hist_pos *pos);

/*
 * The next event of ch: its position (offset = newest + 1) in *pos.  Then
 * hist_append() keeps its frame (head then body, one copy): keep frames at most, none older than
 * ttl ms (0: no age limit).  now in ms.  -1 when out of memory.
 */
int	hist_next(struct hist *h, const char *ch, size_t chlen, struct hist_pos *pos);
void	hist_append(struct hist *h, const char *ch, size_t chlen, uint64_t offset,
	    const void *head, size_t hlen, const void *body, size_t blen,
	    int keep, int64_t ttl, uint64_t now);

/*
 * Replay what follows (epoch, since) on ch: 1 when every frame after
 * since is held (emit(), when not NULL, gets each, oldest first; none when since is the
 * newest), 0 when not (another epoch, evicted, expired, in the future),
 * 2 when a cluster record's epoch matches but not every frame is held
 * here (Redis may hold them), with *pos the current position either
 * way.  -1 out of memory.
 */
int	hist_replay(struct hist *h, const char *ch, size_t chlen, const char *epoch,
	    uint64_t since, int64_t ttl, uint64_t now, struct hist_pos *pos,
	    void (*emit)(const void *frame, size_t len, uint64_t offset, void *arg),
	    void *arg);

/*
 * Cluster positions (cluster.h) live in the same records: an envelope's
 * epoch and offset replace the node's.  A record's mode: HIST_NONE (no
 * record, or one no event or answer has placed yet), HIST_NODE (plain
 * events, or Redis said the channel has no cluster position) or
 * HIST_CLUSTER.  A plain event on a cluster record starts node positions
 * again under a new epoch, an envelope on a node record the reverse.
 */
enum { HIST_NONE = 0, HIST_NODE = 1, HIST_CLUSTER = 2 };

int	hist_mode(struct hist *h, const char *ch, size_t chlen);
/* ch has no cluster position: a HIST_NONE record becomes HIST_NODE.  -1 out of memory. */
int	hist_set_node(struct hist *h, const char *ch, size_t chlen);
/*
 * An envelope's event at (epoch, offset): 0 and *pos (then hist_append()
 * keeps its frame), 1 when it is not new (the same epoch, offset not past
 * the newest: dropped), -1 out of memory.
 */
int	hist_cluster_next(struct hist *h, const char *ch, size_t chlen, const char *epoch,
	    uint64_t offset, struct hist_pos *pos);
/*
 * Redis says ch is at (epoch, offset): the record is put there, its frames
 * dropped unless it was there already.  -1 out of memory.
 */
int	hist_cluster_set(struct hist *h, const char *ch, size_t chlen, const char *epoch,
	    uint64_t offset);

/*
 * An event that takes a position but is not kept (over max_event_size): a
 * plain one (epoch NULL) the next offset, an envelope's its own (epoch,
 * offset).  The offsets then show subscribers the hole, every frame before
 * it is dropped (no replay across it can be whole), and the change is
 * counted (hist_changes()).  0, 1 for an envelope that is not new, -1 out
 * of memory.
 */
int	hist_hole(struct hist *h, const char *ch, size_t chlen, const char *epoch,
	    uint64_t offset);

/*
 * ch's events stopped reaching this node for a while (redis_subscribe
 * on_demand: unsubscribed, or its shard moved): its node position cannot
 * be continued, so the record goes and the next one starts a new epoch
 * (counted, hist_changes()).  A cluster position stays: its envelopes
 * come on their own subscription.  1 when a record went.
 */
int	hist_forget(struct hist *h, const char *ch, size_t chlen);

/* Drop frames past their channel's ttl, oldest first (a periodic sweep). */
void	hist_expire(struct hist *h, uint64_t now);

void	hist_stats(const struct hist *h, struct hist_stats *st);

#endif
