#ifndef RT_OUTQ_H
#define RT_OUTQ_H

/*
 * A plain socket's output queue: references into refcounted blocks, so one
 * event frame built by the bridge is shared by every backed-up subscriber
 * (no copy, no allocation per subscriber beyond the queue's own slots), and
 * written with writev.  A connection with nothing to send has no queue.
 * Pure: the caller owns the socket and the event loop.
 */
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

struct rt_blk {
	uint32_t	 b_refs;
	uint32_t	 b_len;		/* bytes used */
	uint32_t	 b_cap;
	uint8_t		 b_data[];
};

struct outq_ent {
	struct rt_blk	*oe_blk;
	const uint8_t	*oe_p;
	size_t		 oe_len;
};

struct outq {
	size_t		 oq_bytes;
	uint32_t	 oq_head;
	uint32_t	 oq_n;
	uint32_t	 oq_cap;	/* a power of two */
	struct outq_ent	 oq_ent[];
};

struct rt_blk	*blk_new(size_t cap);		/* one reference */
struct rt_blk	*blk_copy(const void *, size_t);
void		 blk_ref(struct rt_blk *);
void		 blk_unref(struct rt_blk *);

/* Both return -1 (ENOMEM) leaving the queue as it was. */
int	 outq_add_ref(struct outq **, struct rt_blk *, const uint8_t *, size_t);
int	 outq_add_copy(struct outq **, const void *, size_t, const void *, size_t);
size_t	 outq_len(const struct outq *);

/*
 * What the queue holds in memory, for limits: its bytes plus a fixed
 * OUTQ_ENT_COST per entry (the slot, the block header and malloc's own),
 * so many tiny entries (pongs to a client that never reads) cannot hold
 * far more than they count.
 */
#define OUTQ_ENT_COST	64
size_t	 outq_cost(const struct outq *);

/*
 * writev until the queue is empty (freed, *q = NULL) or the socket is full.
 * Returns the bytes written, or -1 with errno on a socket error (EAGAIN is
 * not one).
 */
ssize_t	 outq_write(struct outq **, int);
void	 outq_free(struct outq **);

/* writev for a socket: send()/sendmsg(), without SIGPIPE. */
struct iovec;
ssize_t	 outq_sendv(int, const struct iovec *, int);

#endif
