/*
 * The revocation table.  See revoke.h.  Pure: no I/O, no clock; the
 * writer may malloc (for a rebuild) and a reader may yield the CPU.
 *
 * Readers run in other processes and take no lock.  The writer makes
 * rt_seq odd, changes entries, makes it even again; a reader notes
 * rt_seq, looks, and looks again if rt_seq was odd or has changed.  A
 * reader therefore reads entries while they are written (a data race
 * the sequence counter makes harmless): it copies each entry into a
 * local, and nothing it reads from an entry chooses a slot, so a torn
 * copy can give a wrong answer, which the counter then discards, but
 * never a read out of the table nor a probe without end.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "realtimed.h"
#include "revoke.h"

/*
 * The most entries a table takes: 2^27 slots of 32 bytes, 4 GiB.  Far
 * above max_revocations' ceiling, and low enough that no slot count or
 * size can overflow on a 64-bit size_t; rvk_size() checks a 32-bit one.
 */
#define RVK_MAX_ENTRIES	(1U << 26)
#define RVK_MIN_SLOTS	8U

#define RVK_EMPTY	0
#define RVK_TOMB	(-1)

/*
 * A reader that finds the writer at work spins a little (the writer
 * changes an entry in nanoseconds), then yields the CPU (a rebuild takes
 * longer, and on one CPU the writer needs it).  A writer that died in
 * the middle would hold rt_seq odd for ever: after RVK_TRIES looks a
 * reader takes its answer unconfirmed rather than hang a worker.
 */
#define RVK_SPINS	128
#define RVK_TRIES	(1 << 18)

static uint32_t	rvk_slots(uint32_t);
static uint32_t	rvk_start(const uint8_t [RVK_DIGEST], uint32_t);
static int	rvk_find(const struct rvk_table *, const uint8_t [RVK_DIGEST],
		    uint32_t *);
static void	rvk_put(struct rvk_table *, uint32_t, const uint8_t [RVK_DIGEST],
		    int64_t, uint32_t);
static void	rvk_tomb(struct rvk_table *, uint32_t);
static void	rvk_rebuild(struct rvk_table *);
static void	rvk_write_begin(struct rvk_table *);
static void	rvk_write_end(struct rvk_table *);
static int	rvk_lookup(const struct rvk_table *, uint32_t,
		    const uint8_t [RVK_DIGEST], int64_t);
static void	rvk_relax(int);

/* The smallest power of two >= 2 * max and >= RVK_MIN_SLOTS; 0: too many. */
static uint32_t
rvk_slots(uint32_t max)
{
	uint32_t	 slots = RVK_MIN_SLOTS;

	if (max > RVK_MAX_ENTRIES)
		return 0;
	while (slots < 2 * max)		/* 2 * max <= 2^27: no overflow */
		slots <<= 1;
	return slots;
}

/*
 * Bytes for a table of max entries; 0 when max is above RVK_MAX_ENTRIES
 * or the size does not fit a size_t (mmap() of 0 bytes then fails).
 */
size_t
rvk_size(uint32_t max)
{
	uint32_t	 slots;

	if ((slots = rvk_slots(max)) == 0)
		return 0;
#if SIZE_MAX <= UINT32_MAX
	if (slots > (SIZE_MAX - sizeof(struct rvk_table)) / sizeof(struct rvk_entry))
		return 0;
#endif
	return sizeof(struct rvk_table) + (size_t)slots * sizeof(struct rvk_entry);
}

void
rvk_init(struct rvk_table *t, uint32_t max)
{
	/* never more than rvk_size() gave room for */
	if (max > RVK_MAX_ENTRIES)
		max = RVK_MAX_ENTRIES;
	memset(t, 0, rvk_size(max));
	atomic_init(&t->rt_seq, 0);
	atomic_init(&t->rt_full, 0);
	atomic_init(&t->rt_count, 0);
	t->rt_slots = rvk_slots(max);
	t->rt_max = max;
}

/*
 * OpenSSL 3's SHA256() looks the algorithm up at every call, half the
 * cost of the digest of a jti: the first call fetches it for the life of
 * the process (tests/bench/bench_revoke).
 */
void
rvk_digest(const char *jti, size_t len, uint8_t out[RVK_DIGEST])
{
	uint8_t			 md[SHA256_DIGEST_LENGTH];
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	static _Atomic(EVP_MD *) sha256;
	EVP_MD			*m, *none = NULL;

	if ((m = atomic_load_explicit(&sha256, memory_order_acquire)) == NULL &&
	    (m = EVP_MD_fetch(NULL, "SHA256", NULL)) != NULL &&
	    !atomic_compare_exchange_strong(&sha256, &none, m)) {
		EVP_MD_free(m);		/* another thread's came first */
		m = none;
	}
	if (m == NULL || EVP_Digest(jti, len, md, NULL, m, NULL) != 1)
#endif
		SHA256((const unsigned char *)jti, len, md);
	memcpy(out, md, RVK_DIGEST);
}

/* The digest is SHA-256, uniform already: its first bytes are the hash. */
static uint32_t
rvk_start(const uint8_t d[RVK_DIGEST], uint32_t mask)
{
	uint64_t	 h;

	memcpy(&h, d, sizeof(h));
	return (uint32_t)h & mask;
}

/* ---- writer --------------------------------------------------------- */

static void
rvk_write_begin(struct rvk_table *t)
{
	atomic_fetch_add_explicit(&t->rt_seq, 1, memory_order_relaxed);
	/* the odd count must be visible before any entry changes */
	atomic_thread_fence(memory_order_release);
}

static void
rvk_write_end(struct rvk_table *t)
{
	/* every entry change visible before the even count */
	atomic_fetch_add_explicit(&t->rt_seq, 1, memory_order_release);
	atomic_store_explicit(&t->rt_count, t->rt_used, memory_order_relaxed);
}

/*
 * The slot of d in *at (1), or 0 and in *at the first tombstone or empty
 * slot of its probe path, where it would go (UINT32_MAX: none).  The
 * writer's own view: no sequence counter.
 */
static int
rvk_find(const struct rvk_table *t, const uint8_t d[RVK_DIGEST], uint32_t *at)
{
	const struct rvk_entry	*e;
	uint32_t		 mask = t->rt_slots - 1, i, n;

	*at = UINT32_MAX;
	i = rvk_start(d, mask);
	for (n = 0; n < t->rt_slots; n++, i = (i + 1) & mask) {
		e = &t->rt_e[i];
		if (e->re_until == RVK_EMPTY) {
			if (*at == UINT32_MAX)
				*at = i;
			break;
		}
		if (e->re_until == RVK_TOMB) {
			if (*at == UINT32_MAX)
				*at = i;
			continue;
		}
		if (memcmp(e->re_digest, d, RVK_DIGEST) == 0) {
			*at = i;
			return 1;
		}
	}
	return 0;
}

/* Fill slot i, a tombstone or empty, inside a write section. */
static void
rvk_put(struct rvk_table *t, uint32_t i, const uint8_t d[RVK_DIGEST], int64_t until,
    uint32_t gen)
{
	struct rvk_entry	*e = &t->rt_e[i];

	if (e->re_until == RVK_TOMB)
		t->rt_tombs--;
	memcpy(e->re_digest, d, RVK_DIGEST);
	e->re_gen = gen;
	e->re_pad = 0;
	e->re_until = until;
	t->rt_used++;
}

/* Empty a live slot, inside a write section. */
static void
rvk_tomb(struct rvk_table *t, uint32_t i)
{
	t->rt_e[i].re_until = RVK_TOMB;
	t->rt_used--;
	t->rt_tombs++;
}

/*
 * Tombstones make every miss probe further: past a quarter of the slots,
 * put the live entries back from scratch, inside the caller's write
 * section (readers wait for it; they would miss entries meanwhile).
 * Without memory for the copy the tombstones stay: slower, still right.
 */
static void
rvk_rebuild(struct rvk_table *t)
{
	struct rvk_entry	*live;
	uint32_t		 i, j, n = 0, mask = t->rt_slots - 1;

	if (t->rt_tombs <= t->rt_slots / 4)
		return;
	if ((live = reallocarray(NULL, t->rt_used + 1, sizeof(*live))) == NULL)
		return;
	for (i = 0; i < t->rt_slots && n < t->rt_used; i++)
		if (t->rt_e[i].re_until != RVK_EMPTY && t->rt_e[i].re_until != RVK_TOMB)
			live[n++] = t->rt_e[i];
	memset(t->rt_e, 0, (size_t)t->rt_slots * sizeof(t->rt_e[0]));
	for (j = 0; j < n; j++) {
		i = rvk_start(live[j].re_digest, mask);
		while (t->rt_e[i].re_until != RVK_EMPTY)
			i = (i + 1) & mask;
		t->rt_e[i] = live[j];
	}
	t->rt_tombs = 0;
	free(live);
}

/*
 * An until at or before now revokes nothing: there is nothing to add,
 * and an entry held for d ends (the new until says so).  That keeps
 * until > 0, clear of the empty and tombstone marks, whatever now is.
 */
int
rvk_add(struct rvk_table *t, const uint8_t d[RVK_DIGEST], int64_t until,
    int64_t now)
{
	struct rvk_entry	*e;
	uint32_t		 i;

	if (until <= now || until <= 0) {
		rvk_del(t, d);
		return 0;
	}
	if (rvk_find(t, d, &i)) {
		e = &t->rt_e[i];
		if (e->re_until == until && e->re_gen == t->rt_gen)
			return 0;
		rvk_write_begin(t);
		e->re_until = until;
		e->re_gen = t->rt_gen;
		rvk_write_end(t);
		return 0;
	}
	if (t->rt_used >= t->rt_max) {
		rvk_expire(t, now);
		if (t->rt_used >= t->rt_max) {
			atomic_fetch_add_explicit(&t->rt_full, 1, memory_order_relaxed);
			return -1;
		}
		/* the sweep may have rebuilt: the free slot found has moved */
		rvk_find(t, d, &i);
	}
	/* used < max <= slots / 2: some slot on the path is free */
	if (i == UINT32_MAX) {
		atomic_fetch_add_explicit(&t->rt_full, 1, memory_order_relaxed);
		return -1;
	}
	rvk_write_begin(t);
	rvk_put(t, i, d, until, t->rt_gen);
	rvk_write_end(t);
	return 0;
}

int
rvk_del(struct rvk_table *t, const uint8_t d[RVK_DIGEST])
{
	uint32_t	 i;

	if (!rvk_find(t, d, &i))
		return 0;
	rvk_write_begin(t);
	rvk_tomb(t, i);
	rvk_rebuild(t);
	rvk_write_end(t);
	return 1;
}

/*
 * Drop every live entry drop() picks, then rebuild if the tombstones
 * piled up; how many.  Each removal is its own short write section, so
 * that a sweep of a big table holds readers back no longer than one entry
 * (or the rebuild).
 */
static uint32_t
rvk_drop_if(struct rvk_table *t, int (*drop)(const struct rvk_table *,
    const struct rvk_entry *, int64_t), int64_t now)
{
	const struct rvk_entry	*e;
	uint32_t		 i, n = 0;

	for (i = 0; i < t->rt_slots; i++) {
		e = &t->rt_e[i];
		if (e->re_until == RVK_EMPTY || e->re_until == RVK_TOMB || !drop(t, e, now))
			continue;
		rvk_write_begin(t);
		rvk_tomb(t, i);
		rvk_write_end(t);
		n++;
	}
	if (t->rt_tombs > t->rt_slots / 4) {
		rvk_write_begin(t);
		rvk_rebuild(t);
		rvk_write_end(t);
	}
	return n;
}

static int
rvk_ended(const struct rvk_table *t, const struct rvk_entry *e, int64_t now)
{
	(void)t;
	return e->re_until <= now;
}

static int
rvk_stale_gen(const struct rvk_table *t, const struct rvk_entry *e, int64_t now)
{
	(void)now;
	return e->re_gen != t->rt_gen;
}

uint32_t
rvk_expire(struct rvk_table *t, int64_t now)
{
	return rvk_drop_if(t, rvk_ended, now);
}

void
rvk_sync_begin(struct rvk_table *t)
{
	t->rt_gen++;
}

uint32_t
rvk_sync_end(struct rvk_table *t)
{
	return rvk_drop_if(t, rvk_stale_gen, 0);
}

/* ---- readers -------------------------------------------------------- */

/*
 * One look, which may race the writer.  The slot index comes from d and
 * the count of probes only, both masked by slots: whatever an entry
 * holds, at most slots probes, all inside the table.
 */
static int
rvk_lookup(const struct rvk_table *t, uint32_t slots, const uint8_t d[RVK_DIGEST],
    int64_t now)
{
	struct rvk_entry	 e;
	uint32_t		 mask = slots - 1, i, n;

	i = rvk_start(d, mask);
	for (n = 0; n < slots; n++, i = (i + 1) & mask) {
		memcpy(&e, &t->rt_e[i], sizeof(e));
		if (e.re_until == RVK_EMPTY)
			return 0;
		if (e.re_until != RVK_TOMB && memcmp(e.re_digest, d, RVK_DIGEST) == 0)
			return e.re_until > now;
	}
	return 0;
}

static void
rvk_relax(int tries)
{
	if (tries < RVK_SPINS) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield");
#endif
		return;
	}
	sched_yield();
}

int
rvk_revoked(const struct rvk_table *t, const uint8_t d[RVK_DIGEST], int64_t now)
{
	uint64_t		 s1, s2;
	uint32_t		 slots = t->rt_slots;	/* set before the fork, fixed */
	int			 r, tries;

	for (tries = 0;; tries++) {
		s1 = atomic_load_explicit(&t->rt_seq, memory_order_acquire);
		if ((s1 & 1) && tries < RVK_TRIES) {
			rvk_relax(tries);
			continue;
		}
		r = rvk_lookup(t, slots, d, now);
		/* the entries read before rt_seq is read again */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&t->rt_seq, memory_order_relaxed);
		if ((s1 == s2 && (s1 & 1) == 0) || tries >= RVK_TRIES)
			return r;
	}
}

int64_t
rvk_count(const struct rvk_table *t)
{
	return atomic_load_explicit(&t->rt_count, memory_order_relaxed);
}
