#ifndef RT_CLUSTER_H
#define RT_CLUSTER_H

/*
 * Cluster positions (PROTOCOL.md "Positions and recovery"): the Redis
 * function library "realtimed" that assigns a channel's offsets, keeps
 * its history in Redis and publishes envelopes; and the parsers of what
 * the bridge hears back.  Pure: no I/O.
 *
 * Keys, with the channel as the hash tag (one slot per channel):
 *   realtimed:{CH}:m   hash: e = the epoch, o = the newest offset
 *   realtimed:{CH}:h   stream: id OFFSET-1, fields t (ms) and d (payload)
 * Envelopes go out on realtimed:e:{CH} as "EPOCH OFFSET MS\n" + payload:
 * '{' is not a channel character, so no channel a backend publishes raw
 * events on is an envelope channel, and no raw payload is taken for one.
 */
#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define CLUSTER_ENVELOPES	"realtimed:e:{*}"	/* the bridge's PSUBSCRIBE */
#define CLUSTER_ENV_PREFIX	"realtimed:e:{"

struct chan_table;

/*
 * The library's Lua source for FUNCTION LOAD REPLACE, with the history
 * and history_ttl of t's namespaces (first match wins, as chan_match()).
 * malloc'd, NUL-ended; NULL when out of memory.
 */
char	*cluster_library(const struct chan_table *t, const char *version);

/* A positioned event: an envelope, or one event of an answer. */
struct cluster_event {
	const char	*ce_channel;	/* envelopes only */
	size_t		 ce_chlen;
	char		 ce_epoch[HIST_EPOCH_MAX + 1];
	uint64_t	 ce_offset;
	uint64_t	 ce_at;		/* ms, when the function ran */
	const char	*ce_data;
	size_t		 ce_len;
};

/*
 * An envelope heard on Redis channel rch: 0 and *ev, or -1 when it is
 * not one (another channel, an invalid channel name, a malformed head).
 */
int	cluster_envelope_parse(const char *rch, size_t rchlen, const char *msg, size_t len,
	    struct cluster_event *ev);

/*
 * realtimed_read's answer, published on the bridge's reply channel:
 * "TAG STATUS EPOCH OFFSET\n" then, for R, each event as
 * "OFFSET MS LEN\n" + LEN bytes.
 */
enum { CLUSTER_NONE = 'N', CLUSTER_POSITION = 'P', CLUSTER_RECOVERED = 'R',
	CLUSTER_UNRECOVERED = 'U', CLUSTER_TOO_LARGE = 'B' };

struct cluster_answer {
	uint32_t	 ca_tag;
	int		 ca_status;
	char		 ca_epoch[HIST_EPOCH_MAX + 1];	/* "" for CLUSTER_NONE */
	uint64_t	 ca_offset;
	const char	*ca_next;	/* the events not read yet */
	size_t		 ca_left;
};

/* 0, or -1 when malformed. */
int	cluster_answer_parse(const char *msg, size_t len, struct cluster_answer *a);
/* The answer's next event: 1, 0 after the last, -1 when malformed. */
int	cluster_answer_next(struct cluster_answer *a, struct cluster_event *ev);

/* 1 if epoch has the form of a cluster epoch (node epochs hold a '-'). */
int	cluster_epoch_is(const char *epoch);

#endif
