/*
 * redis_subscribe on_demand: one Redis subscription per channel someone
 * on this host is subscribed to.  See bridge_demand.h.
 */
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "bridge_demand.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#define BDEM_BUCKETS	1024	/* to start with; doubles with the channels */
#define BDEM_BATCH	256	/* channels in one SUBSCRIBE or UNSUBSCRIBE */
#define BDEM_SCAN	2048	/* buckets looked at per tick */
#define BDEM_EMPTY	2	/* scans without subscribers before unsubscribing */

enum bdem_state {
	BDEM_NEW,		/* not subscribed (no connection yet, or lost) */
	BDEM_JOINING,		/* SUBSCRIBE sent */
	BDEM_JOINED,		/* confirmed: its messages are events */
	BDEM_LEAVING		/* UNSUBSCRIBE sent, its reply awaited */
};

struct bdem_chan {
	struct bdem_chan	*dc_next;	/* in its bucket */
	struct bdem_chan	*dc_wprev;	/* on the waiting list (dc_nwait > 0) */
	struct bdem_chan	*dc_wnext;
	uint32_t		 dc_hash;
	uint8_t			 dc_state;
	uint8_t			 dc_counted;	/* its ack belongs to bdem_connected() */
	uint8_t			 dc_rejoin;	/* wanted again while leaving */
	uint8_t			 dc_empty;	/* scans that found nobody */
	int32_t			 dc_tag;	/* cluster: the connection it is on, -1 */
	struct bdem_wait	*dc_wait;
	uint32_t		 dc_nwait;
	uint32_t		 dc_waitcap;
	size_t			 dc_len;
	char			 dc_name[];
};

struct bdem {
	struct registry		*d_reg;
	struct reg_bridge	*d_rb;
	int64_t			 d_max;
	struct bdem_ops		 d_ops;
	struct bdem_chan	**d_buckets;
	size_t			 d_nbuckets;
	size_t			 d_n;
	size_t			 d_cursor;
	struct bdem_chan	*d_waiting;	/* channels with requests waiting */
	/* the command being gathered */
	int			 d_sub;
	int			 d_nnames;
	const char		*d_names[BDEM_BATCH];
	size_t			 d_lens[BDEM_BATCH];
};

static void
bdem_flush(struct bdem *d)
{
	if (d->d_nnames == 0)
		return;
	d->d_ops.do_command(d->d_ops.do_arg, d->d_sub, d->d_names, d->d_lens, d->d_nnames);
	d->d_nnames = 0;
}

/* Add dc to the SUBSCRIBE (sub 1) or UNSUBSCRIBE being gathered. */
static void
bdem_command(struct bdem *d, struct bdem_chan *dc, int sub)
{
	if (d->d_nnames > 0 && d->d_sub != sub)
		bdem_flush(d);
	d->d_sub = sub;
	d->d_names[d->d_nnames] = dc->dc_name;
	d->d_lens[d->d_nnames++] = dc->dc_len;
	if (d->d_nnames == BDEM_BATCH)
		bdem_flush(d);
	dc->dc_state = sub ? BDEM_JOINING : BDEM_LEAVING;
	atomic_fetch_add(sub ? &d->d_rb->rb_demand_subscribes : &d->d_rb->rb_demand_unsubscribes, 1);
}

static struct bdem_chan *
bdem_find(const struct bdem *d, const char *ch, size_t len, uint32_t h)
{
	struct bdem_chan	*dc;

	for (dc = d->d_buckets[h & (d->d_nbuckets - 1)]; dc != NULL; dc = dc->dc_next)
		if (dc->dc_hash == h && dc->dc_len == len && memcmp(dc->dc_name, ch, len) == 0)
			return dc;
	return NULL;
}

static void
bdem_grow(struct bdem *d)
{
	size_t			 n = d->d_nbuckets * 2, i;
	struct bdem_chan	**nb, *dc, *next;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still right */
	for (i = 0; i < d->d_nbuckets; i++)
		for (dc = d->d_buckets[i]; dc != NULL; dc = next) {
			next = dc->dc_next;
			dc->dc_next = nb[dc->dc_hash & (n - 1)];
			nb[dc->dc_hash & (n - 1)] = dc;
		}
	free(d->d_buckets);
	d->d_buckets = nb;
	d->d_nbuckets = n;
	d->d_cursor = 0;
}

static struct bdem_chan *
bdem_add(struct bdem *d, const char *ch, size_t len, uint32_t h)
{
	struct bdem_chan	*dc;

	if ((int64_t)d->d_n >= d->d_max || (dc = calloc(1, sizeof(*dc) + len + 1)) == NULL)
		return NULL;
	if (d->d_n >= d->d_nbuckets)
		bdem_grow(d);
	memcpy(dc->dc_name, ch, len);
	dc->dc_len = len;
	dc->dc_hash = h;
	dc->dc_state = BDEM_NEW;
	dc->dc_tag = -1;
	dc->dc_next = d->d_buckets[h & (d->d_nbuckets - 1)];
	d->d_buckets[h & (d->d_nbuckets - 1)] = dc;
	d->d_n++;
	atomic_store(&d->d_rb->rb_demand_channels, (int64_t)d->d_n);
	return dc;
}

/* Unlink and free dc, which has no requests waiting. */
static void
bdem_remove(struct bdem *d, struct bdem_chan *dc)
{
	struct bdem_chan	**pp = &d->d_buckets[dc->dc_hash & (d->d_nbuckets - 1)];

	while (*pp != dc)
		pp = &(*pp)->dc_next;
	*pp = dc->dc_next;
	free(dc->dc_wait);
	free(dc);
	d->d_n--;
	atomic_store(&d->d_rb->rb_demand_channels, (int64_t)d->d_n);
}

static int
bdem_wait_add(struct bdem *d, struct bdem_chan *dc, const struct bdem_wait *wt)
{
	struct bdem_wait	*nw;
	uint32_t		 cap;

	if (dc->dc_nwait == dc->dc_waitcap) {
		cap = dc->dc_waitcap ? dc->dc_waitcap * 2 : 2;
		if ((nw = reallocarray(dc->dc_wait, cap, sizeof(*nw))) == NULL)
			return -1;
		dc->dc_wait = nw;
		dc->dc_waitcap = cap;
	}
	if (dc->dc_nwait == 0) {	/* onto the waiting list */
		dc->dc_wprev = NULL;
		dc->dc_wnext = d->d_waiting;
		if (d->d_waiting != NULL)
			d->d_waiting->dc_wprev = dc;
		d->d_waiting = dc;
	}
	dc->dc_wait[dc->dc_nwait++] = *wt;
	return 0;
}

/* Answer every request waiting for dc; off the waiting list. */
static void
bdem_answer_all(struct bdem *d, struct bdem_chan *dc)
{
	struct bdem_wait	*wt = dc->dc_wait;
	uint32_t		 n = dc->dc_nwait, i;

	if (n == 0)
		return;
	if (dc->dc_wprev != NULL)
		dc->dc_wprev->dc_wnext = dc->dc_wnext;
	else
		d->d_waiting = dc->dc_wnext;
	if (dc->dc_wnext != NULL)
		dc->dc_wnext->dc_wprev = dc->dc_wprev;
	/* an answer may want this channel again: the list is taken first */
	dc->dc_wait = NULL;
	dc->dc_nwait = dc->dc_waitcap = 0;
	for (i = 0; i < n; i++)
		d->d_ops.do_answer(d->d_ops.do_arg, dc->dc_name, dc->dc_len, &wt[i], 0);
	free(wt);
}

void
bdem_want(struct bdem *d, const char *ch, size_t chlen, const struct bdem_wait *wt,
    int connected)
{
	uint32_t		 h = util_hash(ch, chlen);
	struct bdem_chan	*dc;

	if ((dc = bdem_find(d, ch, chlen, h)) == NULL &&
	    (dc = bdem_add(d, ch, chlen, h)) == NULL) {
		atomic_fetch_add(&d->d_rb->rb_demand_full, 1);
		d->d_ops.do_answer(d->d_ops.do_arg, ch, chlen, wt, 1);
		return;
	}
	dc->dc_empty = 0;
	/*
	 * Without a connection to Redis (not even one being made), nothing
	 * can be confirmed soon: the answer goes now, as without on_demand,
	 * and the channel is subscribed with the others at the next connect.
	 */
	if (dc->dc_state == BDEM_JOINED || (dc->dc_state == BDEM_NEW && !connected)) {
		d->d_ops.do_answer(d->d_ops.do_arg, ch, chlen, wt, 0);
		return;
	}
	if (bdem_wait_add(d, dc, wt) == -1) {
		atomic_fetch_add(&d->d_rb->rb_demand_full, 1);
		d->d_ops.do_answer(d->d_ops.do_arg, ch, chlen, wt, 1);
		return;
	}
	if (dc->dc_state == BDEM_LEAVING)
		dc->dc_rejoin = 1;	/* SUBSCRIBE after the UNSUBSCRIBE's reply */
	else if (dc->dc_state == BDEM_NEW) {
		bdem_command(d, dc, 1);
		bdem_flush(d);
	}
}

int
bdem_ack(struct bdem *d, const char *ch, size_t chlen, int subscribe, int *counted)
{
	struct bdem_chan	*dc = bdem_find(d, ch, chlen, util_hash(ch, chlen));

	*counted = 0;
	if (dc == NULL)
		return 0;
	if (subscribe) {
		if (dc->dc_state != BDEM_JOINING)
			return 1;
		dc->dc_state = BDEM_JOINED;
		*counted = dc->dc_counted;
		dc->dc_counted = 0;
		d->d_ops.do_joined(d->d_ops.do_arg, dc->dc_name, dc->dc_len);
		bdem_answer_all(d, dc);
		return 1;
	}
	if (dc->dc_state != BDEM_LEAVING)
		return 1;
	if (dc->dc_rejoin || dc->dc_nwait > 0) {
		dc->dc_rejoin = 0;
		bdem_command(d, dc, 1);
		bdem_flush(d);
	} else
		bdem_remove(d, dc);
	return 1;
}

int
bdem_has(const struct bdem *d, const char *ch, size_t chlen)
{
	const struct bdem_chan	*dc = bdem_find(d, ch, chlen, util_hash(ch, chlen));

	return dc != NULL && dc->dc_state == BDEM_JOINED;
}

int
bdem_connected(struct bdem *d)
{
	struct bdem_chan	*dc;
	size_t			 i;
	int			 n = 0;

	for (i = 0; i < d->d_nbuckets; i++)
		for (dc = d->d_buckets[i]; dc != NULL; dc = dc->dc_next)
			if (dc->dc_state == BDEM_NEW) {
				dc->dc_counted = 1;
				bdem_command(d, dc, 1);
				n++;
			}
	bdem_flush(d);
	return n;
}

/* dc's subscription is gone (its connection, or Redis moved it). */
static void
bdem_lost_chan(struct bdem *d, struct bdem_chan *dc)
{
	if (dc->dc_state == BDEM_LEAVING && !dc->dc_rejoin && dc->dc_nwait == 0) {
		bdem_remove(d, dc);
		return;
	}
	dc->dc_state = BDEM_NEW;
	dc->dc_counted = dc->dc_rejoin = 0;
	dc->dc_tag = -1;
}

void
bdem_lost(struct bdem *d)
{
	d->d_nnames = 0;	/* the connection is gone */
	bdem_reset_if(d, NULL, NULL);
}

void
bdem_reset_if(struct bdem *d, int (*pred)(void *, const char *, size_t, int32_t), void *arg)
{
	struct bdem_chan	*dc, *next;
	size_t			 i;

	bdem_flush(d);
	for (i = 0; i < d->d_nbuckets; i++)
		for (dc = d->d_buckets[i]; dc != NULL; dc = next) {
			next = dc->dc_next;
			if (dc->dc_state != BDEM_NEW && (pred == NULL ||
			    pred(arg, dc->dc_name, dc->dc_len, dc->dc_tag)))
				bdem_lost_chan(d, dc);
		}
}

int
bdem_reset_one(struct bdem *d, const char *ch, size_t chlen, int32_t tag)
{
	struct bdem_chan	*dc = bdem_find(d, ch, chlen, util_hash(ch, chlen));

	if (dc == NULL || dc->dc_tag != tag ||
	    (dc->dc_state != BDEM_JOINED && dc->dc_state != BDEM_JOINING))
		return 0;
	bdem_lost_chan(d, dc);
	return 1;
}

void
bdem_tag(struct bdem *d, const char *ch, size_t chlen, int32_t tag)
{
	struct bdem_chan	*dc = bdem_find(d, ch, chlen, util_hash(ch, chlen));

	if (dc != NULL && dc->dc_state == BDEM_JOINING)
		dc->dc_tag = tag;
}

int
bdem_has_tag(const struct bdem *d, const char *ch, size_t chlen, int32_t tag)
{
	const struct bdem_chan	*dc = bdem_find(d, ch, chlen, util_hash(ch, chlen));

	return dc != NULL && dc->dc_state == BDEM_JOINED && dc->dc_tag == tag;
}

/* One channel of the scan: still wanted by someone on this host? */
static void
bdem_scan_one(struct bdem *d, struct bdem_chan *dc, int connected)
{
	uint64_t	 mask;

	if (dc->dc_nwait > 0 || (dc->dc_state != BDEM_JOINED && dc->dc_state != BDEM_NEW))
		return;
	if (reg_chan_route(d->d_reg, dc->dc_name, dc->dc_len, &mask) > 0) {
		dc->dc_empty = 0;
		return;
	}
	if (++dc->dc_empty < BDEM_EMPTY)
		return;
	if (dc->dc_state == BDEM_JOINED && connected)
		bdem_command(d, dc, 0);
	else if (dc->dc_state == BDEM_NEW)
		bdem_remove(d, dc);
}

void
bdem_tick(struct bdem *d, uint64_t now, uint64_t wait_ms, int connected)
{
	struct bdem_chan	*dc, *next;
	size_t			 i, end;

	for (dc = d->d_waiting; dc != NULL; dc = next) {
		next = dc->dc_wnext;
		if (now > dc->dc_wait[0].dw_at + wait_ms)
			bdem_answer_all(d, dc);	/* subscribed when Redis is back */
	}
	end = d->d_cursor + (d->d_nbuckets < BDEM_SCAN ? d->d_nbuckets : BDEM_SCAN);
	for (i = d->d_cursor; i < end; i++)
		for (dc = d->d_buckets[i & (d->d_nbuckets - 1)]; dc != NULL; dc = next) {
			next = dc->dc_next;
			bdem_scan_one(d, dc, connected);
		}
	d->d_cursor = end & (d->d_nbuckets - 1);
	bdem_flush(d);
}

size_t
bdem_count(const struct bdem *d)
{
	return d->d_n;
}

/* A new bridge: every channel the host's connections are subscribed to. */
static void
bdem_seed_one(const char *name, int64_t subscribers, void *arg)
{
	struct bdem	*d = arg;
	size_t		 len = strlen(name);
	uint32_t	 h = util_hash(name, len);

	if (subscribers > 0 && bdem_find(d, name, len, h) == NULL &&
	    bdem_add(d, name, len, h) == NULL)
		atomic_fetch_add(&d->d_rb->rb_demand_full, 1);
}

struct bdem *
bdem_new(struct registry *reg, struct reg_bridge *rb, int64_t max, const struct bdem_ops *ops)
{
	struct bdem	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->d_reg = reg;
	d->d_rb = rb;
	d->d_max = max;
	d->d_ops = *ops;
	d->d_nbuckets = BDEM_BUCKETS;
	if ((d->d_buckets = calloc(d->d_nbuckets, sizeof(*d->d_buckets))) == NULL) {
		free(d);
		return NULL;
	}
	atomic_store(&rb->rb_demand_channels, 0);
	reg_chan_foreach(reg, bdem_seed_one, d);
	return d;
}

void
bdem_free(struct bdem *d)
{
	struct bdem_chan	*dc, *next;
	size_t			 i;

	if (d == NULL)
		return;
	for (i = 0; i < d->d_nbuckets; i++)
		for (dc = d->d_buckets[i]; dc != NULL; dc = next) {
			next = dc->dc_next;
			free(dc->dc_wait);
			free(dc);
		}
	free(d->d_buckets);
	free(d);
}
