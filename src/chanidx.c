/*
 * The worker's channel index: channel name -> the local connections
 * subscribed to it, and the registry column that tells the bridge to send
 * this worker the channel's events.
 */
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "config.h"
#include "util.h"
#include "registry.h"
#include "worker_int.h"

#define CHANIDX_BUCKETS		1024	/* to start with; doubles with the channels */

int
chanidx_init(struct rt_worker *w)
{
	w->w_nbuckets = CHANIDX_BUCKETS;
	if ((w->w_chans = calloc(w->w_nbuckets, sizeof(*w->w_chans))) == NULL)
		return -1;
	return 0;
}

static struct rt_chan *
chanidx_lookup(struct rt_worker *w, const char *name, size_t len, uint32_t h)
{
	struct rt_chan	*ch;

	for (ch = w->w_chans[h & (w->w_nbuckets - 1)]; ch != NULL; ch = ch->ch_next)
		if (ch->ch_hash == h && strncmp(ch->ch_name, name, len) == 0 &&
		    ch->ch_name[len] == '\0')
			return ch;
	return NULL;
}

struct rt_chan *
chanidx_find(struct rt_worker *w, const char *name, size_t len)
{
	return chanidx_lookup(w, name, len, util_hash(name, len));
}

static void
chanidx_grow(struct rt_worker *w)
{
	struct rt_chan	**nb, *ch, *next;
	size_t		 n = w->w_nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < w->w_nbuckets; i++)
		for (ch = w->w_chans[i]; ch != NULL; ch = next) {
			next = ch->ch_next;
			ch->ch_next = nb[ch->ch_hash & (n - 1)];
			nb[ch->ch_hash & (n - 1)] = ch;
		}
	free(w->w_chans);
	w->w_chans = nb;
	w->w_nbuckets = n;
}

static struct rt_chan *
chanidx_get(struct rt_worker *w, const char *name, size_t len)
{
	uint32_t	 h = util_hash(name, len);
	struct rt_chan	*ch;

	if ((ch = chanidx_lookup(w, name, len, h)) != NULL)
		return ch;
	if (w->w_nchans >= w->w_conf->c_max_channels) {
		/* (the registry counts its own refusals; this one is the worker's) */
		atomic_fetch_add(&w->w_reg->r_hdr->rh_chan_table_full, 1);
		return NULL;
	}
	if ((ch = calloc(1, sizeof(*ch) + len + 1)) == NULL)
		return NULL;
	memcpy(ch->ch_name, name, len);
	ch->ch_hash = h;
	ch->ch_next = w->w_chans[h & (w->w_nbuckets - 1)];
	w->w_chans[h & (w->w_nbuckets - 1)] = ch;
	if ((size_t)++w->w_nchans > w->w_nbuckets)
		chanidx_grow(w);
	return ch;
}

static void
chanidx_release(struct rt_worker *w, struct rt_chan *ch)
{
	struct rt_chan	**pp;

	if (ch->ch_nsubs > 0)
		return;
	for (pp = &w->w_chans[ch->ch_hash & (w->w_nbuckets - 1)]; *pp != ch;
	    pp = &(*pp)->ch_next)
		;
	*pp = ch->ch_next;
	free(ch->ch_subs);
	free(ch->ch_who);
	free(ch->ch_pos);
	free(ch);
	w->w_nchans--;
}

static int
chanidx_add_sub(struct rt_chan *ch, struct rt_sub *s)
{
	struct rt_sub	**n;

	if (ch->ch_nsubs >= INT32_MAX)
		return -1;	/* s_idx's 31 bits (max_connections keeps far below) */
	if (ch->ch_nsubs == ch->ch_cap) {
		size_t cap = ch->ch_cap ? ch->ch_cap * 2 : 4;

		if ((n = reallocarray(ch->ch_subs, cap, sizeof(*n))) == NULL)
			return -1;
		ch->ch_subs = n;
		ch->ch_cap = cap;
	}
	s->s_idx = ch->ch_nsubs;
	ch->ch_subs[ch->ch_nsubs++] = s;
	return 0;
}

static void
chanidx_del_sub(struct rt_chan *ch, struct rt_sub *s)
{
	struct rt_sub	*last = ch->ch_subs[--ch->ch_nsubs];

	ch->ch_subs[s->s_idx] = last;
	last->s_idx = s->s_idx;
}

/*
 * max_channels_per_user: the channels one user id holds on this host,
 * counted once per worker where it subscribes to them.  0 is a 64th of
 * max_channels (at least one connection's max_subscriptions), so that no
 * user can fill the channel table for everyone else.
 */
static int
chanidx_user_limit(const struct rt_config *conf)
{
	int	 n = conf->c_max_channels / 64;

	if (conf->c_max_channels_per_user > 0)
		return conf->c_max_channels_per_user;
	return n > conf->c_max_subscriptions ? n : conf->c_max_subscriptions;
}

/* c's subscription to name, or -1. */
int
chanidx_find_sub(struct rt_conn *c, const char *name, size_t len)
{
	int	 i;

	for (i = 0; i < c->c_nsubs; i++)
		if (strncmp(c->c_subs[i]->s_chan->ch_name, name, len) == 0 &&
		    c->c_subs[i]->s_chan->ch_name[len] == '\0')
			return i;
	return -1;
}

static uint32_t
chanidx_who_slot(const struct rt_chan *ch, uint32_t key)
{
	return (key * 2654435761u) & (ch->ch_whocap - 1);
}

static struct rt_chanwho *
chanidx_who_find(struct rt_chan *ch, uint32_t key)
{
	uint32_t	 i;

	if (ch->ch_whocap == 0)
		return NULL;
	for (i = chanidx_who_slot(ch, key); ch->ch_who[i].cw_key != 0;
	    i = (i + 1) & (ch->ch_whocap - 1))
		if (ch->ch_who[i].cw_key == key)
			return &ch->ch_who[i];
	return NULL;
}

/* A new entry for key (not present), n 1; -1 when the table cannot grow. */
static int
chanidx_who_add(struct rt_chan *ch, uint32_t key)
{
	struct rt_chanwho	*old = ch->ch_who, *nw;
	uint32_t		 oldcap = ch->ch_whocap, cap, i, j;

	if ((ch->ch_nwho + 1) * 4 > oldcap * 3) {	/* load factor <= 3/4 */
		cap = oldcap ? oldcap * 2 : 4;
		if ((nw = calloc(cap, sizeof(*nw))) == NULL)
			return -1;
		ch->ch_who = nw;
		ch->ch_whocap = cap;
		for (i = 0; i < oldcap; i++) {
			if (old[i].cw_key == 0)
				continue;
			for (j = chanidx_who_slot(ch, old[i].cw_key); nw[j].cw_key != 0;
			    j = (j + 1) & (cap - 1))
				;
			nw[j] = old[i];
		}
		free(old);
	}
	for (i = chanidx_who_slot(ch, key); ch->ch_who[i].cw_key != 0;
	    i = (i + 1) & (ch->ch_whocap - 1))
		;
	ch->ch_who[i].cw_key = key;
	ch->ch_who[i].cw_n = 1;
	ch->ch_nwho++;
	return 0;
}

/* Remove the entry at e, shifting back what its probe sequence displaced. */
static void
chanidx_who_del(struct rt_chan *ch, struct rt_chanwho *e)
{
	uint32_t	 mask = ch->ch_whocap - 1, i = (uint32_t)(e - ch->ch_who), j, k;

	ch->ch_who[i].cw_key = 0;
	ch->ch_nwho--;
	for (j = (i + 1) & mask; ch->ch_who[j].cw_key != 0; j = (j + 1) & mask) {
		k = chanidx_who_slot(ch, ch->ch_who[j].cw_key);
		/* leave it when its home slot lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		ch->ch_who[i] = ch->ch_who[j];
		ch->ch_who[j].cw_key = 0;
		i = j;
	}
}

/*
 * c's user takes ch: the first of its subscriptions to ch on this worker
 * counts against max_channels_per_user (host-wide), the others are free,
 * so that many connections of one user on one channel cost one channel.
 * 0; -1 over the limit; -2 out of memory.
 */
static int
chanidx_who_take(struct rt_conn *c, struct rt_chan *ch)
{
	struct rt_worker	*w = c->c_worker;
	struct rt_chanwho	*e;

	if (c->c_user == NULL)
		return 0;	/* anonymous: the channel policy bounds them */
	if ((e = chanidx_who_find(ch, c->c_userkey)) != NULL) {
		e->cw_n++;
		return 0;
	}
	if (reg_count_acquire(w->w_reg, REG_COUNT_USER, w->w_id, c->c_userkey,
	    chanidx_user_limit(w->w_conf)) == -1)
		return -1;
	if (chanidx_who_add(ch, c->c_userkey) == -1) {
		reg_count_release(w->w_reg, REG_COUNT_USER, w->w_id, c->c_userkey);
		return -2;
	}
	return 0;
}

/* Undo chanidx_who_take(). */
static void
chanidx_who_put(struct rt_conn *c, struct rt_chan *ch)
{
	struct rt_chanwho	*e;

	if (c->c_user == NULL || (e = chanidx_who_find(ch, c->c_userkey)) == NULL)
		return;
	if (--e->cw_n > 0)
		return;
	chanidx_who_del(ch, e);
	reg_count_release(c->c_worker->w_reg, REG_COUNT_USER, c->c_worker->w_id,
	    c->c_userkey);
}

/* 0 subscribed, -1 with *why set.  limit: subscribers on this node, 0: none. */
int
chanidx_subscribe(struct rt_conn *c, const char *name, size_t len, int64_t limit,
    const char **why)
{
	struct rt_worker	*w = c->c_worker;
	struct rt_chan		*ch;
	struct rt_sub		*s, **n;
	int			 rv;

	if (chanidx_find_sub(c, name, len) != -1)
		return 0;	/* idempotent */
	if (c->c_nsubs >= w->w_conf->c_max_subscriptions) {
		STAT_ADD(w, rw_subs_limited, 1);
		*why = "Too many subscriptions";
		return -1;
	}
	if (c->c_nsubs == c->c_subcap) {
		int cap = c->c_subcap ? c->c_subcap * 2 : 4;

		if ((n = reallocarray(c->c_subs, (size_t)cap, sizeof(*n))) == NULL)
			goto full;
		c->c_subs = n;
		c->c_subcap = cap;
	}
	if ((ch = chanidx_get(w, name, len)) == NULL)
		goto full;
	if ((rv = chanidx_who_take(c, ch)) != 0) {
		chanidx_release(w, ch);
		if (rv == -2)
			goto full;
		STAT_ADD(w, rw_user_limited, 1);
		*why = "Too many channels for this user";
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || chanidx_add_sub(ch, s) == -1) {
		free(s);
		goto undo;
	}
	if ((rv = reg_chan_add(w->w_reg, w->w_id, name, len, 1, limit)) != 0) {
		chanidx_del_sub(ch, s);
		free(s);
		if (rv == -2) {
			STAT_ADD(w, rw_channel_full, 1);
			*why = "Channel is full";
			goto release;
		}
		goto undo;
	}
	s->s_conn = c;
	s->s_chan = ch;
	c->c_subs[c->c_nsubs++] = s;
	STAT_ADD(w, rw_subscriptions, 1);
	reg_conn_set_nsubs(w->w_reg, c->c_slot, c->c_nsubs);
	return 0;
 undo:
	*why = "Server channel table is full, try again later";
 release:
	chanidx_who_put(c, ch);
	chanidx_release(w, ch);
	return -1;
 full:
	*why = "Server channel table is full, try again later";
	return -1;
}

void
chanidx_unsubscribe_at(struct rt_conn *c, int i)
{
	struct rt_sub	*s = c->c_subs[i];
	struct rt_chan	*ch = s->s_chan;

	fanout_position_cancel(s);
	chanidx_del_sub(ch, s);
	chanidx_who_put(c, ch);
	c->c_subs[i] = c->c_subs[--c->c_nsubs];
	STAT_ADD(c->c_worker, rw_subscriptions, -1);
	reg_chan_add(c->c_worker->w_reg, c->c_worker->w_id, ch->ch_name,
	    strlen(ch->ch_name), -1, 0);
	reg_conn_set_nsubs(c->c_worker->w_reg, c->c_slot, c->c_nsubs);
	free(s);
	chanidx_release(c->c_worker, ch);
}

/*
 * An anonymous connection authenticated (auth): its subscriptions now
 * count against its user's max_channels_per_user; those over it end.
 */
void
chanidx_adopt_user(struct rt_conn *c)
{
	struct rt_chan	*ch;
	int		 i;

	for (i = c->c_nsubs - 1; i >= 0; i--) {
		ch = c->c_subs[i]->s_chan;
		if (chanidx_who_take(c, ch) == 0)
			continue;
		STAT_ADD(c->c_worker, rw_user_limited, 1);
		conn_send_json(c, proto_unsubscribed(ch->ch_name, "too many channels", NULL));
		/* the user holds no count for it here: nothing is given back */
		chanidx_unsubscribe_at(c, i);
	}
}

void
chanidx_unsubscribe_all(struct rt_conn *c)
{
	while (c->c_nsubs > 0)
		chanidx_unsubscribe_at(c, c->c_nsubs - 1);
}
