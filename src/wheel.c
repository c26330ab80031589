/*
 * Hashed timing wheel; see wheel.h.
 */
#include <stddef.h>

#include "wheel.h"

void
wheel_init(struct wheel *w, uint64_t tick_ms, uint64_t now_ms)
{
	int	 i;

	w->w_tick_ms = tick_ms ? tick_ms : 1;
	w->w_now = now_ms / w->w_tick_ms;
	w->w_count = 0;
	TAILQ_INIT(&w->w_pending);
	for (i = 0; i < WHEEL_SLOTS; i++)
		TAILQ_INIT(&w->w_slots[i]);
}

void
wheel_cancel(struct wheel *w, struct wheel_entry *e)
{
	if (e->we_list == NULL)
		return;
	TAILQ_REMOVE(e->we_list, e, we_link);
	e->we_list = NULL;
	w->w_count--;
}

void
wheel_schedule(struct wheel *w, struct wheel_entry *e, uint64_t deadline_ms)
{
	uint64_t	 tick;

	wheel_cancel(w, e);
	/* round up: never fire early */
	tick = (deadline_ms + w->w_tick_ms - 1) / w->w_tick_ms;
	if (tick <= w->w_now)
		tick = w->w_now + 1;
	e->we_deadline = tick;
	e->we_list = &w->w_slots[tick % WHEEL_SLOTS];
	TAILQ_INSERT_TAIL(e->we_list, e, we_link);
	w->w_count++;
}

/* Move the due entries of one slot to the pending list. */
static void
wheel_collect(struct wheel *w, struct wheel_list *slot, uint64_t now)
{
	struct wheel_entry	*e, *next;

	for (e = TAILQ_FIRST(slot); e != NULL; e = next) {
		next = TAILQ_NEXT(e, we_link);
		if (e->we_deadline > now)
			continue;	/* a later lap of the wheel */
		TAILQ_REMOVE(slot, e, we_link);
		TAILQ_INSERT_TAIL(&w->w_pending, e, we_link);
		e->we_list = &w->w_pending;
	}
}

unsigned
wheel_advance(struct wheel *w, uint64_t now_ms,
    void (*fire)(struct wheel_entry *, void *), void *arg)
{
	struct wheel_entry	*e;
	uint64_t		 now = now_ms / w->w_tick_ms, t, last;
	unsigned		 fired = 0;

	if (now <= w->w_now)
		return 0;
	/* one lap covers every slot, however long we slept */
	last = now - w->w_now > WHEEL_SLOTS ? w->w_now + WHEEL_SLOTS : now;
	for (t = w->w_now + 1; t <= last; t++)
		wheel_collect(w, &w->w_slots[t % WHEEL_SLOTS], now);
	w->w_now = now;
	while ((e = TAILQ_FIRST(&w->w_pending)) != NULL) {
		wheel_cancel(w, e);
		fired++;
		fire(e, arg);
	}
	return fired;
}
