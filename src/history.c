/*
 * Node positions and the frames kept for replay.  See history.h.  Pure.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "history.h"
#include "util.h"

struct hist_chan;

struct hist_ent {
	TAILQ_ENTRY(hist_ent)	 e_all;		/* every channel's, oldest first */
	struct hist_ent		*e_next;	/* the channel's next newer */
	struct hist_chan	*e_chan;
	uint64_t		 e_offset;
	uint64_t		 e_at;		/* ms */
	uint32_t		 e_len;
	uint8_t			 e_frame[];
};

struct hist_chan {
	struct hist_chan	*c_hnext;	/* hash chain */
	TAILQ_ENTRY(hist_chan)	 c_lru;		/* least recently used first */
	struct hist_ent		*c_head;	/* oldest kept */
	struct hist_ent		*c_tail;	/* newest kept */
	uint64_t		 c_last;	/* offset of the newest event, 0: none */
	uint64_t		 c_gen;		/* names the epoch */
	int64_t			 c_ttl;		/* ms, as last appended; 0: none */
	uint32_t		 c_n;
	uint32_t		 c_hash;
	uint16_t		 c_len;
	uint8_t			 c_mode;	/* HIST_NONE, HIST_NODE, HIST_CLUSTER */
	char			 c_epoch[HIST_EPOCH_MAX + 1];	/* HIST_CLUSTER's */
	char			 c_name[];
};

TAILQ_HEAD(hist_ents, hist_ent);
TAILQ_HEAD(hist_chans, hist_chan);

struct hist {
	struct hist_chan	**h_buckets;
	size_t			 h_nbuckets;	/* a power of two */
	struct hist_ents	 h_all;
	struct hist_chans	 h_lru;
	int64_t			 h_memory;
	int64_t			 h_limit;
	int64_t			 h_events;
	int			 h_nchans;
	int			 h_maxchans;
	uint64_t		 h_gen;
	uint64_t		 h_evicted;
	uint64_t		 h_chans_evicted;	/* records pushed out for room */
	uint64_t		 h_changes;	/* hist_changes() */
	char			 h_epoch[HIST_EPOCH_MAX + 1];
};

static void	hist_chan_free(struct hist *, struct hist_chan *);

#define HIST_ENT_COST(len)	((int64_t)(sizeof(struct hist_ent) + (len)))
#define HIST_CHAN_COST(len)	((int64_t)(sizeof(struct hist_chan) + (len) + 1 + sizeof(void *)))

struct hist *
hist_new(int64_t memory, int max_channels, const char *epoch)
{
	struct hist	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->h_nbuckets = 1024;
	if ((h->h_buckets = calloc(h->h_nbuckets, sizeof(*h->h_buckets))) == NULL) {
		free(h);
		return NULL;
	}
	TAILQ_INIT(&h->h_all);
	TAILQ_INIT(&h->h_lru);
	hist_set_limits(h, memory, max_channels);
	snprintf(h->h_epoch, sizeof(h->h_epoch) - 8, "%s", epoch);
	return h;
}

void
hist_set_limits(struct hist *h, int64_t memory, int max_channels)
{
	h->h_limit = memory;
	h->h_maxchans = max_channels > 0 ? max_channels : 1;
	while (h->h_nchans > h->h_maxchans && !TAILQ_EMPTY(&h->h_lru)) {
		hist_chan_free(h, TAILQ_FIRST(&h->h_lru));
		h->h_chans_evicted++;
	}
}

/* ---- frames --------------------------------------------------------------- */

/* Drop c's oldest frame. */
static void
hist_drop_head(struct hist *h, struct hist_chan *c)
{
	struct hist_ent	*e = c->c_head;

	c->c_head = e->e_next;
	if (c->c_head == NULL)
		c->c_tail = NULL;
	c->c_n--;
	TAILQ_REMOVE(&h->h_all, e, e_all);
	h->h_memory -= HIST_ENT_COST(e->e_len);
	h->h_events--;
	free(e);
}

/* c's frames go: they cannot be continued. */
static void
hist_chan_clear(struct hist *h, struct hist_chan *c)
{
	while (c->c_head != NULL) {
		hist_drop_head(h, c);
		h->h_evicted++;
	}
}

static void
hist_trim(struct hist *h, struct hist_chan *c, int keep, int64_t ttl, uint64_t now)
{
	while (c->c_head != NULL && (c->c_n > (uint32_t)(keep < 0 ? 0 : keep) ||
	    (ttl > 0 && now - c->c_head->e_at > (uint64_t)ttl))) {
		hist_drop_head(h, c);
		h->h_evicted++;
	}
}

/* ---- channel records ----------------------------------------------------- */

static struct hist_chan **
hist_slot(struct hist *h, const char *ch, size_t chlen, uint32_t hash)
{
	struct hist_chan	**p = &h->h_buckets[hash & (h->h_nbuckets - 1)];

	while (*p != NULL && ((*p)->c_hash != hash || (*p)->c_len != chlen ||
	    memcmp((*p)->c_name, ch, chlen) != 0))
		p = &(*p)->c_hnext;
	return p;
}

static void
hist_chan_free(struct hist *h, struct hist_chan *c)
{
	struct hist_chan	**p = hist_slot(h, c->c_name, c->c_len, c->c_hash);

	hist_chan_clear(h, c);
	h->h_changes++;
	*p = c->c_hnext;
	TAILQ_REMOVE(&h->h_lru, c, c_lru);
	h->h_memory -= HIST_CHAN_COST(c->c_len);
	h->h_nchans--;
	free(c);
}

static void
hist_grow(struct hist *h)
{
	struct hist_chan	**nb, *c, *next;
	size_t			 n = h->h_nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < h->h_nbuckets; i++)
		for (c = h->h_buckets[i]; c != NULL; c = next) {
			next = c->c_hnext;
			c->c_hnext = nb[c->c_hash & (n - 1)];
			nb[c->c_hash & (n - 1)] = c;
		}
	free(h->h_buckets);
	h->h_buckets = nb;
	h->h_nbuckets = n;
}

/*
 * ch's record, made when new (the least recently used one goes when
 * full).  Only events make a record recently used (event): a record made
 * or read for a subscribe goes in at the cold end, so that subscribes to
 * many quiet channels cannot push out the histories of busy ones.
 */
static struct hist_chan *
hist_chan_get(struct hist *h, const char *ch, size_t chlen, int event)
{
	uint32_t		 hash = util_hash(ch, chlen);
	struct hist_chan	**p = hist_slot(h, ch, chlen, hash), *c;

	if ((c = *p) != NULL) {
		if (event) {
			TAILQ_REMOVE(&h->h_lru, c, c_lru);
			TAILQ_INSERT_TAIL(&h->h_lru, c, c_lru);
		}
		return c;
	}
	if (chlen > RT_CHANNEL_MAX)
		return NULL;
	while (h->h_nchans >= h->h_maxchans && !TAILQ_EMPTY(&h->h_lru)) {
		hist_chan_free(h, TAILQ_FIRST(&h->h_lru));
		h->h_chans_evicted++;
	}
	if ((size_t)h->h_nchans >= h->h_nbuckets)
		hist_grow(h);
	/* the chain may have changed under p: freed, or rehashed */
	p = hist_slot(h, ch, chlen, hash);
	if ((c = calloc(1, sizeof(*c) + chlen + 1)) == NULL)
		return NULL;
	memcpy(c->c_name, ch, chlen);
	c->c_len = (uint16_t)chlen;
	c->c_hash = hash;
	c->c_gen = ++h->h_gen;
	*p = c;
	if (event)
		TAILQ_INSERT_TAIL(&h->h_lru, c, c_lru);
	else
		TAILQ_INSERT_HEAD(&h->h_lru, c, c_lru);
	h->h_memory += HIST_CHAN_COST(chlen);
	h->h_nchans++;
	return c;
}

static void
hist_pos_of(const struct hist *h, const struct hist_chan *c, struct hist_pos *pos)
{
	static const char	 digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char			 g[16];
	uint64_t		 v = c->c_gen;
	int			 n = 0, i;

	if (c->c_mode == HIST_CLUSTER) {
		memcpy(pos->hp_epoch, c->c_epoch, sizeof(pos->hp_epoch));
		pos->hp_offset = c->c_last;
		return;
	}
	do {
		g[n++] = digits[v % 36];
		v /= 36;
	} while (v > 0 && n < (int)sizeof(g));
	i = snprintf(pos->hp_epoch, sizeof(pos->hp_epoch), "%s-", h->h_epoch);
	while (n > 0 && i < (int)sizeof(pos->hp_epoch) - 1)
		pos->hp_epoch[i++] = g[--n];
	pos->hp_epoch[i] = '\0';
	pos->hp_offset = c->c_last;
}

/*
 * Within the budget: the oldest frames of any channel go first, then, if
 * the records alone are over it, the least recently used records (not
 * keep's).
 */
static void
hist_fit(struct hist *h, const struct hist_chan *keep)
{
	struct hist_chan	*c;

	while (h->h_memory > h->h_limit && !TAILQ_EMPTY(&h->h_all)) {
		hist_drop_head(h, TAILQ_FIRST(&h->h_all)->e_chan);
		h->h_evicted++;
	}
	while (h->h_memory > h->h_limit && (c = TAILQ_FIRST(&h->h_lru)) != NULL && c != keep) {
		hist_chan_free(h, c);
		h->h_chans_evicted++;
	}
}

/* ---- the interface ---------------------------------------------------------- */

void
hist_reset(struct hist *h, const char *epoch)
{
	while (!TAILQ_EMPTY(&h->h_lru))
		hist_chan_free(h, TAILQ_FIRST(&h->h_lru));
	h->h_changes++;
	snprintf(h->h_epoch, sizeof(h->h_epoch) - 8, "%s", epoch);
}

void
hist_free(struct hist *h)
{
	if (h == NULL)
		return;
	while (!TAILQ_EMPTY(&h->h_lru))
		hist_chan_free(h, TAILQ_FIRST(&h->h_lru));
	free(h->h_buckets);
	free(h);
}

int
hist_position(struct hist *h, const char *ch, size_t chlen, struct hist_pos *pos)
{
	struct hist_chan	*c;

	if ((c = hist_chan_get(h, ch, chlen, 0)) == NULL)
		return -1;
	hist_pos_of(h, c, pos);
	return 0;
}

int
hist_next(struct hist *h, const char *ch, size_t chlen, struct hist_pos *pos)
{
	struct hist_chan	*c;

	if ((c = hist_chan_get(h, ch, chlen, 1)) == NULL)
		return -1;
	if (c->c_mode == HIST_CLUSTER) {
		/* a plain PUBLISH on a cluster channel: node positions again */
		hist_chan_clear(h, c);
		c->c_gen = ++h->h_gen;
		c->c_last = 0;
		h->h_changes++;
	}
	c->c_mode = HIST_NODE;
	c->c_last++;
	hist_pos_of(h, c, pos);
	return 0;
}

int
hist_forget(struct hist *h, const char *ch, size_t chlen)
{
	struct hist_chan	*c = *hist_slot(h, ch, chlen, util_hash(ch, chlen));

	if (c == NULL || c->c_mode == HIST_CLUSTER)
		return 0;
	hist_chan_free(h, c);
	return 1;
}

int
hist_mode(struct hist *h, const char *ch, size_t chlen)
{
	struct hist_chan	*c = *hist_slot(h, ch, chlen, util_hash(ch, chlen));

	return c != NULL ? c->c_mode : HIST_NONE;
}

int
hist_set_node(struct hist *h, const char *ch, size_t chlen)
{
	struct hist_chan	*c;

	if ((c = hist_chan_get(h, ch, chlen, 0)) == NULL)
		return -1;
	if (c->c_mode == HIST_NONE)
		c->c_mode = HIST_NODE;
	return 0;
}

static int
hist_cluster_at(const struct hist_chan *c, const char *epoch)
{
	return c->c_mode == HIST_CLUSTER && strcmp(c->c_epoch, epoch) == 0;
}

/* c becomes a cluster record at (epoch, offset), its frames dropped. */
static void
hist_cluster_move(struct hist *h, struct hist_chan *c, const char *epoch, uint64_t offset)
{
	hist_chan_clear(h, c);
	h->h_changes++;
	c->c_mode = HIST_CLUSTER;
	snprintf(c->c_epoch, sizeof(c->c_epoch), "%s", epoch);
	c->c_last = offset;
}

int
hist_cluster_next(struct hist *h, const char *ch, size_t chlen, const char *epoch,
    uint64_t offset, struct hist_pos *pos)
{
	struct hist_chan	*c;

	if ((c = hist_chan_get(h, ch, chlen, 1)) == NULL)
		return -1;
	if (hist_cluster_at(c, epoch)) {
		if (offset <= c->c_last)
			return 1;
		/* a gap drops the frames before it at hist_append() */
		c->c_last = offset;
	} else
		hist_cluster_move(h, c, epoch, offset);
	hist_pos_of(h, c, pos);
	return 0;
}

int
hist_cluster_set(struct hist *h, const char *ch, size_t chlen, const char *epoch,
    uint64_t offset)
{
	struct hist_chan	*c;

	if ((c = hist_chan_get(h, ch, chlen, 0)) == NULL)
		return -1;
	if (!hist_cluster_at(c, epoch) || c->c_last != offset)
		hist_cluster_move(h, c, epoch, offset);
	return 0;
}

int
hist_hole(struct hist *h, const char *ch, size_t chlen, const char *epoch, uint64_t offset)
{
	struct hist_chan	*c;
	struct hist_pos		 pos;
	int			 rv;

	rv = epoch == NULL ? hist_next(h, ch, chlen, &pos) :
	    hist_cluster_next(h, ch, chlen, epoch, offset, &pos);
	if (rv != 0 || (c = hist_chan_get(h, ch, chlen, 0)) == NULL)
		return rv;
	while (c->c_head != NULL) {
		hist_drop_head(h, c);
		h->h_evicted++;
	}
	h->h_changes++;
	return 0;
}

void
hist_append(struct hist *h, const char *ch, size_t chlen, uint64_t offset,
    const void *head, size_t hlen, const void *body, size_t blen,
    int keep, int64_t ttl, uint64_t now)
{
	struct hist_chan	*c = *hist_slot(h, ch, chlen, util_hash(ch, chlen));
	struct hist_ent		*e;
	size_t			 len = hlen + blen;

	/* only the newest event of a live record can be kept: no holes */
	if (c == NULL || offset != c->c_last || keep <= 0)
		return;
	c->c_ttl = ttl;
	/* an event that was positioned but not kept: what came before it
	 * can no longer be replayed whole */
	while (c->c_tail != NULL && c->c_tail->e_offset + 1 != offset && c->c_head != NULL) {
		hist_drop_head(h, c);
		h->h_evicted++;
	}
	if (HIST_ENT_COST(len) > h->h_limit || len > UINT32_MAX ||
	    (e = malloc(sizeof(*e) + len)) == NULL) {
		/* not kept: what came before can no longer be replayed whole */
		while (c->c_head != NULL) {
			hist_drop_head(h, c);
			h->h_evicted++;
		}
		h->h_evicted++;
		return;
	}
	memcpy(e->e_frame, head, hlen);
	if (blen > 0)
		memcpy(e->e_frame + hlen, body, blen);
	e->e_len = (uint32_t)len;
	e->e_offset = offset;
	e->e_at = now;
	e->e_chan = c;
	e->e_next = NULL;
	if (c->c_tail != NULL)
		c->c_tail->e_next = e;
	else
		c->c_head = e;
	c->c_tail = e;
	c->c_n++;
	TAILQ_INSERT_TAIL(&h->h_all, e, e_all);
	h->h_memory += HIST_ENT_COST(len);
	h->h_events++;
	hist_trim(h, c, keep, ttl, now);
	hist_fit(h, c);
}

int
hist_replay(struct hist *h, const char *ch, size_t chlen, const char *epoch,
    uint64_t since, int64_t ttl, uint64_t now, struct hist_pos *pos,
    void (*emit)(const void *, size_t, uint64_t, void *), void *arg)
{
	struct hist_chan	*c;
	struct hist_ent		*e;

	if ((c = hist_chan_get(h, ch, chlen, 0)) == NULL)
		return -1;
	hist_pos_of(h, c, pos);
	if (strcmp(epoch, pos->hp_epoch) != 0 || since > c->c_last)
		return 0;
	if (since == c->c_last)
		return 1;
	hist_trim(h, c, (int)c->c_n, ttl, now);
	/* every frame from since + 1 to the newest, the newest included */
	if (c->c_head == NULL || c->c_head->e_offset > since + 1 ||
	    c->c_tail->e_offset != c->c_last)
		return c->c_mode == HIST_CLUSTER ? 2 : 0;	/* Redis may hold them */
	for (e = c->c_head; emit != NULL && e != NULL; e = e->e_next)
		if (e->e_offset > since)
			emit(e->e_frame, e->e_len, e->e_offset, arg);
	return 1;
}

void
hist_expire(struct hist *h, uint64_t now)
{
	struct hist_ent	*e;

	/* oldest first; a frame with a longer ttl ahead stops the sweep (the
	 * replay checks ages itself, this only returns memory) */
	while ((e = TAILQ_FIRST(&h->h_all)) != NULL && e->e_chan->c_ttl > 0 &&
	    now - e->e_at > (uint64_t)e->e_chan->c_ttl) {
		hist_drop_head(h, e->e_chan);
		h->h_evicted++;
	}
	hist_fit(h, NULL);	/* and a budget lowered by a reload */
}

uint64_t
hist_changes(const struct hist *h)
{
	return h->h_changes;
}

void
hist_stats(const struct hist *h, struct hist_stats *st)
{
	st->hs_memory = h->h_memory;
	st->hs_events = h->h_events;
	st->hs_channels = h->h_nchans;
	st->hs_evicted = h->h_evicted;
	st->hs_channels_evicted = h->h_chans_evicted;
}
