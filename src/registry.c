/*
 * The shared-memory registry; see registry.h for the layout.
 */
#include <sys/mman.h>

#include <stdlib.h>
#include <unistd.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "registry.h"
#include "revoke.h"
#include "util.h"

#define ALIGN64(x)	(((x) + 63) & ~(uint64_t)63)

#define REG_COUNT_BYTES	(sizeof(int32_t) * REG_COUNT_KINDS * 2 * REG_COUNT_SLOTS)

static _Atomic int32_t *reg_counts(struct registry *, int, enum reg_count);
static void	reg_chan_rebuild(struct registry *);
static void	reg_conn_count(struct registry *, int, void *);

/* src into dst of size n, cut short if need be, always terminated. */
static void
reg_strlcpy(char *dst, const char *src, size_t n)
{
	size_t	 len = strnlen(src, n - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* c's user id (NULL: anonymous), whole or cut (struct reg_conn). */
static void
reg_user_store(struct reg_conn *c, const char *user)
{
	size_t		 n = user != NULL ? strlen(user) : 0;
	uint32_t	 h;

	memset(c->rc_user, 0, sizeof(c->rc_user));
	c->rc_user_cut = n > REG_USER_MAX;
	if (!c->rc_user_cut) {
		memcpy(c->rc_user, user != NULL ? user : "", n);
		return;
	}
	memcpy(c->rc_user, user, REG_USER_PREFIX);
	h = util_hash(user, n);
	memcpy(c->rc_user + REG_USER_PREFIX + 1, &h, sizeof(h));
}

/*
 * Reading shared anonymous memory maps it into the reader, and pages never
 * written hold zeroes only.  So scans of the connection table visit only
 * the groups of slots ever used (a bit each, set by reg_conn_add), and
 * every scan ends by dropping the pages it read from the scanner's
 * mappings (the bytes stay): an admin listing does not leave the master
 * holding the table.
 */
struct reg_scan {
	uintptr_t	 rs_base;
	size_t		 rs_len;
};

static void
reg_scan_begin(struct reg_scan *sc, const void *start, size_t len)
{
	size_t		 pg = (size_t)sysconf(_SC_PAGESIZE);

	/* whole pages strictly inside the range: neighbours stay mapped */
	sc->rs_base = ((uintptr_t)start + pg - 1) & ~(uintptr_t)(pg - 1);
	sc->rs_len = 0;
	if ((uintptr_t)start + len > sc->rs_base)
		sc->rs_len = ((uintptr_t)start + len - sc->rs_base) & ~(uintptr_t)(pg - 1);
}

static void
reg_scan_end(struct reg_scan *sc)
{
	if (sc->rs_len > 0)
		madvise((void *)sc->rs_base, sc->rs_len, MADV_DONTNEED);
}

static uint8_t *
reg_conn_bits(struct registry *r)
{
	return (uint8_t *)r->r_hdr + r->r_hdr->rh_off_conn_bits;
}

/* Call fn for each slot of the groups ever used (under the lock). */
static void
reg_conn_walk(struct registry *r, void (*fn)(struct registry *, int, void *), void *arg)
{
	uint8_t		*bits = reg_conn_bits(r);
	int		 g, i, ngroups, max = r->r_hdr->rh_max_conns;

	ngroups = (max + REG_CONN_GROUP - 1) / REG_CONN_GROUP;
	for (g = 0; g < ngroups; g++) {
		if (!(bits[g / 8] & (1u << (g % 8))))
			continue;
		for (i = g * REG_CONN_GROUP; i < (g + 1) * REG_CONN_GROUP && i < max; i++)
			fn(r, i, arg);
	}
}

int
reg_create(struct registry *r, int nworkers, int max_conns, int max_chans)
{
	struct reg_header	*h;
	pthread_mutexattr_t	 ma;
	uint64_t		 off, stride;
	int32_t			 slots = 16;
	void			*p;

	if (nworkers < 1 || nworkers > REG_MAX_WORKERS || max_conns < 1 || max_chans < 1)
		return -1;
	while (slots < max_chans + max_chans / 3 + 1)	/* load factor <= 3/4 */
		slots *= 2;
	stride = ALIGN64(sizeof(struct reg_chan) + sizeof(int32_t) * (size_t)nworkers);
	off = ALIGN64(sizeof(struct reg_header));
	r->r_size = off;
	r->r_size += ALIGN64(sizeof(struct reg_worker) * (size_t)nworkers);
	r->r_size += ALIGN64(sizeof(struct reg_conn) * (size_t)max_conns);
	r->r_size += ALIGN64(((size_t)max_conns / REG_CONN_GROUP + 8) / 8);
	r->r_size += ALIGN64(sizeof(struct reg_chan_idx) * (size_t)slots);
	r->r_size += stride * (uint64_t)max_chans;
	r->r_size = ((r->r_size + 4095) & ~(uint64_t)4095) +
	    REG_COUNT_BYTES * (size_t)nworkers;
	p = mmap(NULL, r->r_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	h = r->r_hdr = p;
	h->rh_magic = REGISTRY_MAGIC;
	h->rh_version = REGISTRY_VERSION;
	h->rh_started = (int64_t)time(NULL);
	h->rh_size = r->r_size;
	h->rh_nworkers = nworkers;
	h->rh_max_conns = max_conns;
	h->rh_max_chans = max_chans;
	h->rh_chan_slots = slots;
	h->rh_chan_stride = stride;
	h->rh_off_workers = off;
	h->rh_off_conns = off + ALIGN64(sizeof(struct reg_worker) * (size_t)nworkers);
	h->rh_off_conn_bits = h->rh_off_conns + ALIGN64(sizeof(struct reg_conn) * (size_t)max_conns);
	h->rh_off_chan_idx = h->rh_off_conn_bits + ALIGN64(((size_t)max_conns / REG_CONN_GROUP + 8) / 8);
	h->rh_off_chans = h->rh_off_chan_idx + ALIGN64(sizeof(struct reg_chan_idx) * (size_t)slots);
	h->rh_off_counts = (h->rh_off_chans + stride * (uint64_t)max_chans + 4095) & ~(uint64_t)4095;
	h->rh_chan_free = -1;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&h->rh_lock, &ma) != 0) {
		pthread_mutexattr_destroy(&ma);
		munmap(p, r->r_size);
		return -1;
	}
	pthread_mutexattr_destroy(&ma);
	return 0;
}

int
reg_revocations_create(struct registry *r, uint32_t max)
{
	void	*p;

	r->r_revoked_size = rvk_size(max);
	p = mmap(NULL, r->r_revoked_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r->r_revoked = NULL;
		return -1;
	}
	r->r_revoked = p;
	rvk_init(r->r_revoked, max);
	return 0;
}

void
reg_destroy(struct registry *r)
{
	if (r->r_revoked != NULL) {
		munmap(r->r_revoked, r->r_revoked_size);
		r->r_revoked = NULL;
	}
	if (r->r_hdr == NULL)
		return;
	munmap(r->r_hdr, r->r_size);
	r->r_hdr = NULL;
}

struct reg_worker *
reg_worker(struct registry *r, int w)
{
	return (struct reg_worker *)((char *)r->r_hdr + r->r_hdr->rh_off_workers) + w;
}

struct reg_conn *
reg_conn_slot(struct registry *r, int i)
{
	return (struct reg_conn *)((char *)r->r_hdr + r->r_hdr->rh_off_conns) + i;
}

struct reg_chan *
reg_chan_slot(struct registry *r, int i)
{
	return (struct reg_chan *)((char *)r->r_hdr + r->r_hdr->rh_off_chans +
	    r->r_hdr->rh_chan_stride * (uint64_t)i);
}

struct reg_chan_idx *
reg_chan_bucket(struct registry *r, int i)
{
	return (struct reg_chan_idx *)((char *)r->r_hdr + r->r_hdr->rh_off_chan_idx) + i;
}

void
reg_lock(struct registry *r)
{
	int	 rv = pthread_mutex_lock(&r->r_hdr->rh_lock);

	if (rv == EOWNERDEAD) {
		/*
		 * The owner died mid-change: rebuild what a change touches
		 * from the records (the dead worker's own counts are the
		 * master's reg_worker_clear's), then carry on.
		 */
		reg_chan_rebuild(r);
		r->r_hdr->rh_nconns = 0;
		reg_conn_walk(r, reg_conn_count, NULL);
		atomic_fetch_add(&r->r_hdr->rh_lock_recoveries, 1);
		pthread_mutex_consistent(&r->r_hdr->rh_lock);
	} else if (rv != 0)
		fatalx("registry lock: %s", strerror(rv));
}

void
reg_unlock(struct registry *r)
{
	pthread_mutex_unlock(&r->r_hdr->rh_lock);
}

int
reg_conn_add(struct registry *r, int w, const char *id, const char *user,
    int admin, const char *peer, int64_t started)
{
	struct reg_header	*h = r->r_hdr;
	struct reg_conn		*c;
	int			 i, n, slot = -1;

	reg_lock(r);
	/*
	 * Each worker starts in its own stretch of the table, so its slots
	 * share pages with nobody else's (shared pages count in the RSS of
	 * every process that touched them).
	 */
	if (h->rh_conn_hint[w] == 0)
		h->rh_conn_hint[w] = (int32_t)((int64_t)h->rh_max_conns * w / h->rh_nworkers);
	for (n = 0, i = h->rh_conn_hint[w]; n < h->rh_max_conns; n++, i++) {
		if (i >= h->rh_max_conns)
			i = 0;
		if (!reg_conn_slot(r, i)->rc_used) {
			slot = i;
			break;
		}
	}
	if (slot == -1) {
		reg_unlock(r);
		atomic_fetch_add(&h->rh_conn_table_full, 1);
		return -1;
	}
	c = reg_conn_slot(r, slot);
	memset(c, 0, sizeof(*c));
	c->rc_worker = (int16_t)w;
	c->rc_admin = (uint8_t)admin;
	c->rc_started = started;
	reg_strlcpy(c->rc_id, id, sizeof(c->rc_id));
	reg_user_store(c, user);
	reg_strlcpy(c->rc_peer, peer, sizeof(c->rc_peer));
	c->rc_used = 1;
	reg_conn_bits(r)[slot / REG_CONN_GROUP / 8] |= (uint8_t)(1u << (slot / REG_CONN_GROUP % 8));
	h->rh_nconns++;
	h->rh_conn_hint[w] = slot + 1 < h->rh_max_conns ? slot + 1 : 0;
	reg_unlock(r);
	return slot;
}

void
reg_conn_del(struct registry *r, int slot)
{
	struct reg_conn	*c;

	if (slot < 0 || slot >= r->r_hdr->rh_max_conns)
		return;
	reg_lock(r);
	c = reg_conn_slot(r, slot);
	if (c->rc_used) {
		c->rc_used = 0;
		r->r_hdr->rh_nconns--;
	}
	reg_unlock(r);
}

void
reg_conn_set_user(struct registry *r, int slot, const char *user, int admin)
{
	struct reg_conn	*c;

	if (slot < 0 || slot >= r->r_hdr->rh_max_conns)
		return;
	reg_lock(r);
	c = reg_conn_slot(r, slot);
	if (c->rc_used) {
		reg_user_store(c, user);
		c->rc_admin = (uint8_t)admin;
	}
	reg_unlock(r);
}

void
reg_conn_set_nsubs(struct registry *r, int slot, int nsubs)
{
	if (slot >= 0 && slot < r->r_hdr->rh_max_conns)
		reg_conn_slot(r, slot)->rc_nsubs = nsubs;
}

/* Bucket of name, or -1; *free_bucket gets the first reusable bucket seen. */
static int
reg_chan_find(struct registry *r, const char *name, size_t len, uint32_t hash,
    int *free_bucket)
{
	struct reg_header	*h = r->r_hdr;
	struct reg_chan_idx	*b;
	struct reg_chan		*ch;
	int32_t			 mask = h->rh_chan_slots - 1, i, n;

	if (free_bucket != NULL)
		*free_bucket = -1;
	for (n = 0, i = (int32_t)(hash & (uint32_t)mask); n < h->rh_chan_slots;
	    n++, i = (i + 1) & mask) {
		b = reg_chan_bucket(r, i);
		if (b->ci_rec == REG_IDX_EMPTY) {
			if (free_bucket != NULL && *free_bucket == -1)
				*free_bucket = i;
			return -1;
		}
		if (b->ci_rec == REG_IDX_DELETED) {
			if (free_bucket != NULL && *free_bucket == -1)
				*free_bucket = i;
			continue;
		}
		if (b->ci_hash != hash)
			continue;
		ch = reg_chan_slot(r, (int)(b->ci_rec - 1));
		if (strncmp(ch->ch_name, name, len) == 0 && ch->ch_name[len] == '\0')
			return i;
	}
	return -1;
}

/* A record from the free list or the never-used tail; -1 when none. */
static int
reg_chan_alloc(struct registry *r)
{
	struct reg_header	*h = r->r_hdr;
	int			 i;

	if ((i = h->rh_chan_free) != -1) {
		h->rh_chan_free = reg_chan_slot(r, i)->ch_next_free;
		return i;
	}
	if (h->rh_chan_hiwat < h->rh_max_chans)
		return h->rh_chan_hiwat++;
	return -1;
}

/*
 * Remove the channel at bucket i and free its record.  A tombstone is
 * needed only when a probe chain runs through the bucket; when the next
 * one is empty, it and the tombstones before it become empty again, so
 * churn does not fill the index with tombstones.
 */
static void
reg_chan_remove(struct registry *r, int32_t i)
{
	struct reg_header	*h = r->r_hdr;
	struct reg_chan		*ch;
	int32_t			 mask = h->rh_chan_slots - 1, rec;

	/* the bucket first, then the record: see reg_chan_rebuild() */
	rec = (int32_t)(reg_chan_bucket(r, i)->ci_rec - 1);
	h->rh_nchans--;
	if (reg_chan_bucket(r, (i + 1) & mask)->ci_rec != REG_IDX_EMPTY)
		reg_chan_bucket(r, i)->ci_rec = REG_IDX_DELETED;
	else {
		reg_chan_bucket(r, i)->ci_rec = REG_IDX_EMPTY;
		for (i = (i - 1) & mask; reg_chan_bucket(r, i)->ci_rec == REG_IDX_DELETED;
		    i = (i - 1) & mask)
			reg_chan_bucket(r, i)->ci_rec = REG_IDX_EMPTY;
	}
	ch = reg_chan_slot(r, rec);
	ch->ch_state = REG_CHAN_FREE;
	ch->ch_next_free = h->rh_chan_free;
	h->rh_chan_free = rec;
}

/*
 * After a process died holding the lock: the records are the truth.  Sum
 * each record's counts again, then rebuild the index, the free list and
 * the counters from them, so no half-done change survives (a record on
 * the free list and in the index, one taken but never indexed, a total
 * that missed its last delta).  O(records ever used), and rare.
 */
static void
reg_chan_rebuild(struct registry *r)
{
	struct reg_header	*h = r->r_hdr;
	struct reg_chan		*ch;
	struct reg_chan_idx	*b;
	int32_t			 mask = h->rh_chan_slots - 1, i, j;
	int64_t			 total;
	int			 w;

	memset(reg_chan_bucket(r, 0), 0, sizeof(*b) * (size_t)h->rh_chan_slots);
	h->rh_chan_free = -1;
	h->rh_nchans = 0;
	for (i = h->rh_chan_hiwat - 1; i >= 0; i--) {
		ch = reg_chan_slot(r, i);
		for (w = 0, total = 0; w < h->rh_nworkers; w++) {
			if (ch->ch_counts[w] < 0)
				ch->ch_counts[w] = 0;
			total += ch->ch_counts[w];
		}
		ch->ch_total = total;
		if (ch->ch_state != REG_CHAN_USED || total <= 0 ||
		    memchr(ch->ch_name, '\0', sizeof(ch->ch_name)) == NULL) {
			ch->ch_state = REG_CHAN_FREE;
			ch->ch_next_free = h->rh_chan_free;
			h->rh_chan_free = i;
			continue;
		}
		ch->ch_hash = util_hash(ch->ch_name, strlen(ch->ch_name));
		for (j = (int32_t)(ch->ch_hash & (uint32_t)mask);
		    reg_chan_bucket(r, j)->ci_rec != REG_IDX_EMPTY; j = (j + 1) & mask)
			;
		b = reg_chan_bucket(r, j);
		b->ci_hash = ch->ch_hash;
		b->ci_rec = (uint32_t)i + 1;
		h->rh_nchans++;
	}
}

/* reg_conn_walk: count a used slot. */
static void
reg_conn_count(struct registry *r, int i, void *arg)
{
	(void)arg;
	if (reg_conn_slot(r, i)->rc_used)
		r->r_hdr->rh_nconns++;
}

int
reg_chan_add(struct registry *r, int w, const char *name, size_t len, int delta,
    int64_t limit)
{
	struct reg_header	*h = r->r_hdr;
	struct reg_chan		*ch;
	uint32_t		 hash = util_hash(name, len);
	int			 i, rec, free_bucket;

	if (len > RT_CHANNEL_MAX || w < 0 || w >= h->rh_nworkers)
		return -1;
	reg_lock(r);
	if ((i = reg_chan_find(r, name, len, hash, &free_bucket)) == -1) {
		if (delta < 0 || free_bucket == -1 || h->rh_nchans >= h->rh_max_chans ||
		    (rec = reg_chan_alloc(r)) == -1) {
			reg_unlock(r);
			if (delta > 0)
				atomic_fetch_add(&h->rh_chan_table_full, 1);
			return delta > 0 ? -1 : 0;
		}
		ch = reg_chan_slot(r, rec);
		memset(ch, 0, h->rh_chan_stride);
		memcpy(ch->ch_name, name, len);
		ch->ch_hash = hash;
		ch->ch_state = REG_CHAN_USED;
		i = free_bucket;
		reg_chan_bucket(r, i)->ci_hash = hash;
		reg_chan_bucket(r, i)->ci_rec = (uint32_t)rec + 1;
		h->rh_nchans++;
	}
	ch = reg_chan_slot(r, (int)(reg_chan_bucket(r, i)->ci_rec - 1));
	if (delta > 0 && limit > 0 && ch->ch_total >= limit) {
		reg_unlock(r);
		return -2;
	}
	if (ch->ch_counts[w] + delta >= 0) {
		ch->ch_counts[w] += delta;
		ch->ch_total += delta;
	}
	if (ch->ch_total <= 0)
		reg_chan_remove(r, i);
	reg_unlock(r);
	return 0;
}

int64_t
reg_chan_route(struct registry *r, const char *name, size_t len, uint64_t *mask)
{
	struct reg_chan	*ch;
	int64_t		 total = 0;
	int		 i, w;

	*mask = 0;
	reg_lock(r);
	if ((i = reg_chan_find(r, name, len, util_hash(name, len), NULL)) != -1) {
		ch = reg_chan_slot(r, (int)(reg_chan_bucket(r, i)->ci_rec - 1));
		for (w = 0; w < r->r_hdr->rh_nworkers; w++)
			if (ch->ch_counts[w] > 0)
				*mask |= (uint64_t)1 << w;
		total = ch->ch_total;
	}
	reg_unlock(r);
	return total;
}

/* reg_conn_walk: free slot i if worker *(int *)arg held it. */
static void
reg_conn_forget(struct registry *r, int i, void *arg)
{
	struct reg_conn	*c = reg_conn_slot(r, i);

	if (c->rc_used && c->rc_worker == *(int *)arg) {
		c->rc_used = 0;
		r->r_hdr->rh_nconns--;
	}
}

void
reg_worker_clear(struct registry *r, int w)
{
	struct reg_header	*h = r->r_hdr;
	struct reg_worker	*rw = reg_worker(r, w);
	struct reg_chan		*ch;
	struct reg_scan		 sc;
	int			 i, b;

	reg_lock(r);
	reg_scan_begin(&sc, reg_chan_slot(r, 0), h->rh_chan_stride * (size_t)h->rh_chan_hiwat);
	for (i = 0; i < h->rh_chan_hiwat; i++) {
		ch = reg_chan_slot(r, i);
		if (ch->ch_state != REG_CHAN_USED || ch->ch_counts[w] == 0)
			continue;
		ch->ch_total -= ch->ch_counts[w];
		ch->ch_counts[w] = 0;
		/* (freeing record i while walking the records is safe) */
		if (ch->ch_total <= 0 && (b = reg_chan_find(r, ch->ch_name,
		    strlen(ch->ch_name), ch->ch_hash, NULL)) != -1)
			reg_chan_remove(r, b);
	}
	reg_scan_end(&sc);
	reg_scan_begin(&sc, reg_conn_slot(r, 0), sizeof(struct reg_conn) * (size_t)h->rh_max_conns);
	reg_conn_walk(r, reg_conn_forget, &w);
	reg_scan_end(&sc);
	reg_unlock(r);
	/* zero pages by giving them back (page-aligned region) */
	if (madvise((char *)r->r_hdr + r->r_hdr->rh_off_counts + (size_t)w * REG_COUNT_BYTES,
	    REG_COUNT_BYTES, MADV_REMOVE) == -1)
		for (i = 0; i < REG_COUNT_KINDS * 2 * REG_COUNT_SLOTS; i++)
			atomic_store_explicit(&reg_counts(r, w, 0)[i], 0, memory_order_relaxed);
	atomic_store(&rw->rw_connections, 0);
	atomic_store(&rw->rw_authenticated, 0);
	atomic_store(&rw->rw_anonymous, 0);
	atomic_store(&rw->rw_subscriptions, 0);
	atomic_store(&rw->rw_deflate_conns, 0);
	atomic_store(&rw->rw_inflate_memory, 0);
	atomic_store(&rw->rw_message_memory, 0);
	atomic_store(&rw->rw_token_cache_entries, 0);
	atomic_store(&rw->rw_token_cache_bytes, 0);
	atomic_store(&rw->rw_pending, 0);
	atomic_store(&rw->rw_state, REG_PROC_NONE);
	atomic_store(&rw->rw_pid, 0);
}

void
reg_totals(struct registry *r, struct reg_totals *t)
{
	struct reg_worker	*rw;
	int			 w;

	memset(t, 0, sizeof(*t));
	for (w = 0; w < r->r_hdr->rh_nworkers; w++) {
		rw = reg_worker(r, w);
		t->t_connections += atomic_load(&rw->rw_connections);
		t->t_authenticated += atomic_load(&rw->rw_authenticated);
		t->t_anonymous += atomic_load(&rw->rw_anonymous);
		t->t_subscriptions += atomic_load(&rw->rw_subscriptions);
		if (atomic_load(&rw->rw_state) == REG_PROC_RUNNING)
			t->t_workers++;
	}
	t->t_channels = r->r_hdr->rh_nchans;
}

void
reg_chan_foreach(struct registry *r,
    void (*fn)(const char *, int64_t, void *), void *arg)
{
	struct reg_chan	*ch;
	struct reg_scan	 sc;
	int		 i;

	reg_lock(r);
	reg_scan_begin(&sc, reg_chan_slot(r, 0),
	    r->r_hdr->rh_chan_stride * (size_t)r->r_hdr->rh_chan_hiwat);
	for (i = 0; i < r->r_hdr->rh_chan_hiwat; i++) {
		ch = reg_chan_slot(r, i);
		if (ch->ch_state == REG_CHAN_USED && ch->ch_total > 0)
			fn(ch->ch_name, ch->ch_total, arg);
	}
	reg_scan_end(&sc);
	reg_unlock(r);
}

struct reg_conn_each {
	void	(*fn)(struct reg_conn *, void *);
	void	*arg;
};

static void
reg_conn_each_used(struct registry *r, int i, void *arg)
{
	struct reg_conn_each	*e = arg;

	if (reg_conn_slot(r, i)->rc_used)
		e->fn(reg_conn_slot(r, i), e->arg);
}

void
reg_conn_foreach(struct registry *r, void (*fn)(struct reg_conn *, void *), void *arg)
{
	struct reg_conn_each	 e = { fn, arg };
	struct reg_scan		 sc;

	reg_lock(r);
	reg_scan_begin(&sc, reg_conn_slot(r, 0),
	    sizeof(struct reg_conn) * (size_t)r->r_hdr->rh_max_conns);
	reg_conn_walk(r, reg_conn_each_used, &e);
	reg_scan_end(&sc);
	reg_unlock(r);
}

/* Worker w's counters of one kind. */
static _Atomic int32_t *
reg_counts(struct registry *r, int w, enum reg_count kind)
{
	return (_Atomic int32_t *)((char *)r->r_hdr + r->r_hdr->rh_off_counts +
	    (size_t)w * REG_COUNT_BYTES) + (size_t)kind * 2 * REG_COUNT_SLOTS;
}

static int32_t
reg_count_sum(struct registry *r, enum reg_count kind, uint32_t slot)
{
	int32_t	 n = 0;
	int	 w;

	for (w = 0; w < r->r_hdr->rh_nworkers; w++)
		n += atomic_load_explicit(&reg_counts(r, w, kind)[slot], memory_order_relaxed);
	return n;
}

uint32_t
reg_count_key(const void *key, size_t len)
{
	uint32_t	 h = util_hash(key, len), a, b;

	a = h & (REG_COUNT_SLOTS - 1);
	/* a second index from the other half of the hash, mixed again */
	b = ((h >> 16) ^ (h * 2654435761u)) & (REG_COUNT_SLOTS - 1);
	return (a << 16) | b;
}

int
reg_count_acquire(struct registry *r, enum reg_count kind, int w, uint32_t key, int limit)
{
	_Atomic int32_t	*mine = reg_counts(r, w, kind);
	uint32_t	 a = key >> 16, b = REG_COUNT_SLOTS + (key & 0xffff);
	int32_t		 ca, cb;

	ca = reg_count_sum(r, kind, a);
	cb = reg_count_sum(r, kind, b);
	if ((ca < cb ? ca : cb) >= limit)
		return -1;
	atomic_fetch_add_explicit(&mine[a], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mine[b], 1, memory_order_relaxed);
	return 0;
}

void
reg_count_release(struct registry *r, enum reg_count kind, int w, uint32_t key)
{
	_Atomic int32_t	*mine = reg_counts(r, w, kind);

	atomic_fetch_sub_explicit(&mine[key >> 16], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&mine[REG_COUNT_SLOTS + (key & 0xffff)], 1, memory_order_relaxed);
}

int
reg_admit(struct registry *r, uint64_t now_ns, int rate, int burst, uint64_t *wait_ns)
{
	_Atomic uint64_t	*tat = &r->r_hdr->rh_hs_tat;
	uint64_t		 interval, tolerance, old, t;

	if (rate <= 0)
		return 0;
	interval = 1000000000ull / (uint64_t)rate;
	tolerance = interval * (uint64_t)((burst > 0 ? burst : rate) - 1);
	old = atomic_load_explicit(tat, memory_order_relaxed);
	do {
		t = old > now_ns ? old : now_ns;
		if (t - now_ns > tolerance) {
			*wait_ns = t - now_ns - tolerance;
			return -1;
		}
	} while (!atomic_compare_exchange_weak_explicit(tat, &old, t + interval,
	    memory_order_relaxed, memory_order_relaxed));
	return 0;
}

int
reg_user_match(const struct reg_conn *rc, const char *user)
{
	size_t		 n;
	uint32_t	 h;

	if (!rc->rc_user_cut)
		return strcmp(rc->rc_user, user) == 0;
	if ((n = strlen(user)) <= REG_USER_MAX ||
	    strncmp(rc->rc_user, user, REG_USER_PREFIX) != 0)
		return 0;
	memcpy(&h, rc->rc_user + REG_USER_PREFIX + 1, sizeof(h));
	return h == util_hash(user, n);
}
