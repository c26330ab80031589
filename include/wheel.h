#ifndef RT_WHEEL_H
#define RT_WHEEL_H

/*
 * A hashed timing wheel: one libevent timer per worker drives every
 * connection's deadline (handshake, heartbeat, token expiry, close), so an
 * idle connection costs a list link, not a timer.  Pure: the caller passes
 * the clock in.
 */
#include <stdint.h>
#include <sys/queue.h>

#define WHEEL_SLOTS	512

struct wheel_entry;
TAILQ_HEAD(wheel_list, wheel_entry);

struct wheel_entry {
	TAILQ_ENTRY(wheel_entry) we_link;
	struct wheel_list	*we_list;	/* NULL when not scheduled */
	uint64_t		 we_deadline;	/* in ticks */
};

struct wheel {
	uint64_t		 w_tick_ms;
	uint64_t		 w_now;		/* last processed tick */
	uint64_t		 w_count;	/* scheduled entries */
	struct wheel_list	 w_pending;	/* expired, not yet fired */
	struct wheel_list	 w_slots[WHEEL_SLOTS];
};

void	wheel_init(struct wheel *w, uint64_t tick_ms, uint64_t now_ms);
/* (Re)schedule e to fire at the first tick at or after deadline_ms. */
void	wheel_schedule(struct wheel *w, struct wheel_entry *e, uint64_t deadline_ms);
void	wheel_cancel(struct wheel *w, struct wheel_entry *e);
/*
 * Advance the clock to now_ms, firing every entry whose deadline passed.
 * fire() may reschedule or cancel any entry, free its own, and schedule
 * new ones.  Returns the number fired.
 */
unsigned wheel_advance(struct wheel *w, uint64_t now_ms,
	    void (*fire)(struct wheel_entry *e, void *arg), void *arg);

#endif
