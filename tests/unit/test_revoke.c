/*
 * The revocation table (revoke.c): the digest, sizes, add, update,
 * lookup and removal, colliding digests and tombstones, expiry, a full
 * table (refused, counted, made room by expired entries), the rebuild,
 * full reloads (sync), a randomized comparison with a model, and readers
 * that take no lock while the writer works: a forked process on a
 * MAP_SHARED table, as the workers read the master's, and a thread.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "realtimed.h"
#include "revoke.h"

/* ---- helpers -------------------------------------------------------- */

#define FAR	((int64_t)1 << 40)

/*
 * check records every passing ck_assert (a write(2) each): the loops of
 * millions of checks test quietly and fail loudly.
 */
#define CHECK(cond, ...)	do {					\
	if (!(cond))							\
		ck_abort_msg(__VA_ARGS__);				\
} while (0)
#define CHECK_EQ(a, b)	do {					\
	int64_t	 a_ = (int64_t)(a), b_ = (int64_t)(b);			\
	CHECK(a_ == b_, "%s == %s: %lld, %lld", #a, #b, (long long)a_,	\
	    (long long)b_);						\
} while (0)

/* A table of max entries in malloc'd memory full of junk. */
static struct rvk_table *
tbl_new(uint32_t max)
{
	struct rvk_table	*t;
	size_t			 sz = rvk_size(max);

	ck_assert_uint_gt(sz, sizeof(*t));
	ck_assert_ptr_nonnull(t = malloc(sz));
	memset(t, 0xa5, sz);
	rvk_init(t, max);
	return t;
}

/* The digest of the jti "jti-<i>". */
static void
key(int i, uint8_t d[RVK_DIGEST])
{
	char	 jti[32];

	snprintf(jti, sizeof(jti), "jti-%d", i);
	rvk_digest(jti, strlen(jti), d);
}

/*
 * A digest made to start its probe at slot start (the hash is the first
 * 8 bytes, as the host reads them), told apart by tail.
 */
static void
crafted(uint8_t d[RVK_DIGEST], uint64_t start, uint64_t tail)
{
	memcpy(d, &start, sizeof(start));
	memcpy(d + 8, &tail, sizeof(tail));
}

/*
 * What the table holds agrees with its counters: live entries and
 * tombstones counted, no digest twice, every live entry found by a
 * reader, the writer out of its section.
 */
static void
tbl_check(const struct rvk_table *t)
{
	const struct rvk_entry	*e, *f;
	uint32_t		 i, j, used = 0, tombs = 0;

	CHECK_EQ(atomic_load(&t->rt_seq) & 1, 0);
	for (i = 0; i < t->rt_slots; i++) {
		e = &t->rt_e[i];
		if (e->re_until == -1) {
			tombs++;
			continue;
		}
		if (e->re_until == 0)
			continue;
		CHECK(e->re_until > 0, "slot %u: until %lld", i, (long long)e->re_until);
		used++;
		CHECK_EQ(rvk_revoked(t, e->re_digest, e->re_until - 1), 1);
		for (j = i + 1; j < t->rt_slots; j++) {
			f = &t->rt_e[j];
			if (f->re_until > 0)
				CHECK(memcmp(e->re_digest, f->re_digest,
				    RVK_DIGEST) != 0, "slots %u, %u: one digest", i, j);
		}
	}
	CHECK_EQ(used, t->rt_used);
	CHECK_EQ(tombs, t->rt_tombs);
	CHECK(t->rt_used <= t->rt_max, "used %u, max %u", t->rt_used, t->rt_max);
	CHECK(t->rt_tombs <= t->rt_slots / 4, "tombs %u, slots %u", t->rt_tombs,
	    t->rt_slots);
	CHECK_EQ(rvk_count(t), t->rt_used);
}

static double
mono(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- digest, sizes ---------------------------------------------------- */

START_TEST(test_digest_is_sha256_prefix)
{
	static const uint8_t	 abc[RVK_DIGEST] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23 };
	static const uint8_t	 empty[RVK_DIGEST] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
		0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24 };
	uint8_t			 d[RVK_DIGEST + 1];

	d[RVK_DIGEST] = 0x5a;
	rvk_digest("abc", 3, d);
	ck_assert_mem_eq(d, abc, RVK_DIGEST);
	ck_assert_uint_eq(d[RVK_DIGEST], 0x5a);	/* 16 bytes, no more */
	rvk_digest("", 0, d);
	ck_assert_mem_eq(d, empty, RVK_DIGEST);
	/* the length, not a NUL, ends the jti */
	rvk_digest("abcdef", 3, d);
	ck_assert_mem_eq(d, abc, RVK_DIGEST);
}
END_TEST

START_TEST(test_size_slots_power_of_two_twice_max)
{
	static const struct {
		uint32_t	 max, slots;
	} c[] = {
		{ 0, 8 }, { 1, 8 }, { 4, 8 }, { 5, 16 }, { 8, 16 }, { 9, 32 },
		{ 100000, 262144 }, { 131072, 262144 }, { 131073, 524288 },
		{ 1U << 24, 1U << 25 },
	};
	struct rvk_table	*t;
	size_t			 i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ck_assert_uint_eq(rvk_size(c[i].max), sizeof(struct rvk_table) +
		    (size_t)c[i].slots * sizeof(struct rvk_entry));
		if (c[i].max > 200000)
			continue;
		t = tbl_new(c[i].max);
		ck_assert_uint_eq(t->rt_slots, c[i].slots);
		ck_assert_uint_eq(t->rt_max, c[i].max);
		ck_assert_int_eq(rvk_count(t), 0);
		tbl_check(t);
		free(t);
	}
	ck_assert_uint_eq(rvk_size(1U << 26), sizeof(struct rvk_table) +
	    ((size_t)1 << 27) * sizeof(struct rvk_entry));
	/* past the ceiling: no size, so that the mapping fails */
	ck_assert_uint_eq(rvk_size((1U << 26) + 1), 0);
	ck_assert_uint_eq(rvk_size(UINT32_MAX), 0);
	ck_assert_uint_eq(sizeof(struct rvk_entry), 32);
}
END_TEST

START_TEST(test_init_over_junk_is_empty)
{
	struct rvk_table	*t = tbl_new(16);
	uint8_t			 d[RVK_DIGEST];
	uint32_t		 i;

	for (i = 0; i < t->rt_slots; i++)
		ck_assert_int_eq(t->rt_e[i].re_until, 0);
	memset(d, 0xa5, sizeof(d));	/* the junk's own pattern */
	ck_assert_int_eq(rvk_revoked(t, d, 0), 0);
	ck_assert_int_eq(atomic_load(&t->rt_full), 0);
	ck_assert_uint_eq(t->rt_gen, 0);
	free(t);
}
END_TEST

/* ---- add, update, delete --------------------------------------------- */

START_TEST(test_add_lookup_update_delete)
{
	struct rvk_table	*t = tbl_new(16);
	uint8_t			 a[RVK_DIGEST], b[RVK_DIGEST], c[RVK_DIGEST];

	key(1, a);
	key(2, b);
	key(3, c);
	ck_assert_int_eq(rvk_revoked(t, a, 100), 0);
	ck_assert_int_eq(rvk_add(t, a, 200, 100), 0);
	ck_assert_int_eq(rvk_add(t, b, 300, 100), 0);
	ck_assert_int_eq(rvk_count(t), 2);
	ck_assert_int_eq(rvk_revoked(t, a, 100), 1);
	ck_assert_int_eq(rvk_revoked(t, b, 100), 1);
	ck_assert_int_eq(rvk_revoked(t, c, 100), 0);
	tbl_check(t);

	/* an update: one entry, the new until (shorter or longer) */
	ck_assert_int_eq(rvk_add(t, a, 150, 100), 0);
	ck_assert_int_eq(rvk_count(t), 2);
	ck_assert_int_eq(rvk_revoked(t, a, 149), 1);
	ck_assert_int_eq(rvk_revoked(t, a, 150), 0);
	ck_assert_int_eq(rvk_add(t, a, 500, 100), 0);
	ck_assert_int_eq(rvk_revoked(t, a, 499), 1);
	ck_assert_int_eq(rvk_count(t), 2);
	tbl_check(t);

	ck_assert_int_eq(rvk_del(t, a), 1);
	ck_assert_int_eq(rvk_del(t, a), 0);
	ck_assert_int_eq(rvk_del(t, c), 0);
	ck_assert_int_eq(rvk_revoked(t, a, 100), 0);
	ck_assert_int_eq(rvk_revoked(t, b, 100), 1);
	ck_assert_int_eq(rvk_count(t), 1);
	tbl_check(t);
	ck_assert_int_eq(rvk_add(t, a, 200, 100), 0);
	ck_assert_int_eq(rvk_revoked(t, a, 100), 1);
	ck_assert_int_eq(rvk_count(t), 2);
	tbl_check(t);
	free(t);
}
END_TEST

START_TEST(test_until_not_after_now_adds_nothing)
{
	struct rvk_table	*t = tbl_new(16);
	uint8_t			 a[RVK_DIGEST], b[RVK_DIGEST];

	key(1, a);
	key(2, b);
	ck_assert_int_eq(rvk_add(t, a, 100, 100), 0);
	ck_assert_int_eq(rvk_add(t, a, 99, 100), 0);
	ck_assert_int_eq(rvk_count(t), 0);
	ck_assert_int_eq(rvk_revoked(t, a, 50), 0);
	/* the marks of empty and removed slots are no untils, whatever now */
	ck_assert_int_eq(rvk_add(t, a, 0, -10), 0);
	ck_assert_int_eq(rvk_add(t, a, -1, -10), 0);
	ck_assert_int_eq(rvk_count(t), 0);
	tbl_check(t);
	/* an until already passed ends a revocation held */
	ck_assert_int_eq(rvk_add(t, b, 300, 100), 0);
	ck_assert_int_eq(rvk_add(t, b, 100, 100), 0);
	ck_assert_int_eq(rvk_revoked(t, b, 50), 0);
	ck_assert_int_eq(rvk_count(t), 0);
	tbl_check(t);
	free(t);
}
END_TEST

/*
 * Digests that start at the same slot, at the last ones (the probe wraps
 * to slot 0): each found past the others, past tombstones, a removed one
 * not found though its neighbours are, its tombstone reused.
 */
START_TEST(test_colliding_digests_probe_past_tombstones)
{
	struct rvk_table	*t = tbl_new(8);	/* 16 slots */
	uint8_t			 d[6][RVK_DIGEST], x[RVK_DIGEST];
	int			 i;

	ck_assert_uint_eq(t->rt_slots, 16);
	for (i = 0; i < 6; i++) {
		crafted(d[i], 14 + 16 * (uint64_t)i, (uint64_t)i);
		ck_assert_int_eq(rvk_add(t, d[i], 100, 0), 0);
	}
	crafted(x, 14, 99);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(rvk_revoked(t, d[i], 0), 1);
	ck_assert_int_eq(rvk_revoked(t, x, 0), 0);
	/* they took 14, 15, 0, 1, 2, 3 */
	ck_assert_mem_eq(t->rt_e[15].re_digest, d[1], RVK_DIGEST);
	ck_assert_mem_eq(t->rt_e[0].re_digest, d[2], RVK_DIGEST);
	ck_assert_mem_eq(t->rt_e[3].re_digest, d[5], RVK_DIGEST);
	tbl_check(t);

	ck_assert_int_eq(rvk_del(t, d[1]), 1);
	ck_assert_int_eq(rvk_del(t, d[3]), 1);
	ck_assert_int_eq(t->rt_e[15].re_until, -1);
	ck_assert_int_eq(rvk_revoked(t, d[1], 0), 0);
	ck_assert_int_eq(rvk_revoked(t, d[3], 0), 0);
	for (i = 0; i < 6; i++)
		if (i != 1 && i != 3)
			ck_assert_int_eq(rvk_revoked(t, d[i], 0), 1);
	tbl_check(t);

	/* an update past a tombstone stays where it is: no second copy */
	ck_assert_int_eq(rvk_add(t, d[5], 200, 0), 0);
	ck_assert_mem_eq(t->rt_e[3].re_digest, d[5], RVK_DIGEST);
	ck_assert_int_eq(t->rt_e[3].re_until, 200);
	ck_assert_int_eq(rvk_count(t), 4);
	tbl_check(t);
	/* a new one takes the first tombstone of its path */
	ck_assert_int_eq(rvk_add(t, x, 100, 0), 0);
	ck_assert_mem_eq(t->rt_e[15].re_digest, x, RVK_DIGEST);
	ck_assert_uint_eq(t->rt_tombs, 1);
	tbl_check(t);
	free(t);
}
END_TEST

/* ---- time ------------------------------------------------------------ */

START_TEST(test_expiry_by_time)
{
	struct rvk_table	*t = tbl_new(16);
	uint8_t			 d[4][RVK_DIGEST];
	int			 i;

	for (i = 0; i < 4; i++) {
		key(i, d[i]);
		ck_assert_int_eq(rvk_add(t, d[i], 110 + 10 * i, 100), 0);
	}
	/* revoked while now < until; not at until */
	ck_assert_int_eq(rvk_revoked(t, d[0], 109), 1);
	ck_assert_int_eq(rvk_revoked(t, d[0], 110), 0);
	ck_assert_int_eq(rvk_revoked(t, d[1], 110), 1);
	/* expired entries are held until swept */
	ck_assert_int_eq(rvk_count(t), 4);
	ck_assert_uint_eq(rvk_expire(t, 109), 0);
	ck_assert_uint_eq(rvk_expire(t, 120), 2);
	ck_assert_int_eq(rvk_count(t), 2);
	ck_assert_int_eq(rvk_revoked(t, d[0], 0), 0);
	ck_assert_int_eq(rvk_revoked(t, d[1], 0), 0);
	ck_assert_int_eq(rvk_revoked(t, d[2], 120), 1);
	ck_assert_int_eq(rvk_revoked(t, d[3], 120), 1);
	tbl_check(t);
	ck_assert_uint_eq(rvk_expire(t, 120), 0);
	ck_assert_uint_eq(rvk_expire(t, 1000), 2);
	ck_assert_int_eq(rvk_count(t), 0);
	tbl_check(t);
	free(t);
}
END_TEST

START_TEST(test_full_refused_and_counted)
{
	struct rvk_table	*t = tbl_new(4);
	uint8_t			 d[6][RVK_DIGEST];
	int			 i;

	for (i = 0; i < 6; i++)
		key(i, d[i]);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(rvk_add(t, d[i], 200, 100), 0);
	ck_assert_int_eq(rvk_add(t, d[4], 200, 100), -1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 1);
	ck_assert_int_eq(rvk_add(t, d[5], 200, 100), -1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 2);
	ck_assert_int_eq(rvk_revoked(t, d[4], 100), 0);
	ck_assert_int_eq(rvk_count(t), 4);
	/* updates still go in */
	ck_assert_int_eq(rvk_add(t, d[0], 300, 100), 0);
	ck_assert_int_eq(rvk_revoked(t, d[0], 250), 1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 2);
	tbl_check(t);
	/* a removal makes room */
	ck_assert_int_eq(rvk_del(t, d[1]), 1);
	ck_assert_int_eq(rvk_add(t, d[4], 200, 100), 0);
	ck_assert_int_eq(rvk_revoked(t, d[4], 100), 1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 2);
	tbl_check(t);
	free(t);

	/* max 0: every add refused */
	t = tbl_new(0);
	ck_assert_int_eq(rvk_add(t, d[0], 200, 100), -1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 1);
	ck_assert_int_eq(rvk_revoked(t, d[0], 100), 0);
	free(t);
}
END_TEST

START_TEST(test_full_table_drops_expired_to_make_room)
{
	struct rvk_table	*t = tbl_new(4);
	uint8_t			 d[6][RVK_DIGEST];
	int			 i;

	for (i = 0; i < 6; i++)
		key(i, d[i]);
	ck_assert_int_eq(rvk_add(t, d[0], 120, 100), 0);
	ck_assert_int_eq(rvk_add(t, d[1], 130, 100), 0);
	ck_assert_int_eq(rvk_add(t, d[2], 500, 100), 0);
	ck_assert_int_eq(rvk_add(t, d[3], 500, 100), 0);
	/* nothing expired at 110 */
	ck_assert_int_eq(rvk_add(t, d[4], 500, 110), -1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 1);
	/* at 125 d[0] has: it goes, d[4] comes in */
	ck_assert_int_eq(rvk_add(t, d[4], 500, 125), 0);
	ck_assert_int_eq(atomic_load(&t->rt_full), 1);
	ck_assert_int_eq(rvk_count(t), 4);
	ck_assert_int_eq(rvk_revoked(t, d[0], 0), 0);
	ck_assert_int_eq(rvk_revoked(t, d[1], 125), 1);
	ck_assert_int_eq(rvk_revoked(t, d[4], 125), 1);
	tbl_check(t);
	ck_assert_int_eq(rvk_add(t, d[5], 500, 125), -1);
	ck_assert_int_eq(atomic_load(&t->rt_full), 2);
	free(t);
}
END_TEST

/* ---- rebuild --------------------------------------------------------- */

/*
 * Many adds and removals of passing keys among ones that stay: the
 * tombstones pile up and the table is rebuilt (seen as tombstones
 * dropping by more than the one an insert reuses), and every entry that
 * should be there is found after every step, none that should not.
 */
START_TEST(test_rebuild_keeps_live_entries)
{
	struct rvk_table	*t = tbl_new(64);	/* 128 slots */
	uint8_t			 d[RVK_DIGEST];
	uint32_t		 tombs;
	int			 i, j, rebuilds = 0, in[16];

	for (i = 0; i < 32; i++) {
		key(i, d);
		CHECK_EQ(rvk_add(t, d, FAR, 0), 0);
	}
	memset(in, 0, sizeof(in));
	for (i = 0; i < 20000; i++) {
		/* 16 passing keys at a time, each a fresh jti */
		j = 1000 + i;
		key(j, d);
		CHECK_EQ(rvk_add(t, d, FAR, 0), 0);
		in[i % 16] = j;
		if (i >= 15) {
			key(in[(i + 1) % 16], d);
			tombs = t->rt_tombs;
			CHECK_EQ(rvk_del(t, d), 1);
			if (t->rt_tombs < tombs)
				rebuilds++;
			CHECK_EQ(rvk_revoked(t, d, 0), 0);
		}
		if (i % 97 != 0)
			continue;
		for (j = 0; j < 32; j++) {
			key(j, d);
			CHECK_EQ(rvk_revoked(t, d, 0), 1);
		}
		tbl_check(t);
	}
	ck_assert_int_gt(rebuilds, 10);
	CHECK_EQ(rvk_count(t), 32 + 15);
	for (j = 0; j < 32; j++) {
		key(j, d);
		CHECK_EQ(rvk_revoked(t, d, 0), 1);
	}
	for (j = 0; j < 15; j++) {
		key(in[(19999 - j) % 16], d);
		CHECK_EQ(rvk_revoked(t, d, 0), 1);
	}
	for (j = 1000; j < 1000 + 20000 - 15; j++) {
		key(j, d);
		CHECK_EQ(rvk_revoked(t, d, 0), 0);
	}
	tbl_check(t);
	free(t);
}
END_TEST

/* A sweep leaving many tombstones rebuilds too. */
START_TEST(test_expire_rebuilds)
{
	struct rvk_table	*t = tbl_new(64);
	uint8_t			 d[RVK_DIGEST];
	int			 i;

	for (i = 0; i < 64; i++) {
		key(i, d);
		ck_assert_int_eq(rvk_add(t, d, i < 48 ? 10 : FAR, 0), 0);
	}
	ck_assert_uint_eq(rvk_expire(t, 10), 48);
	ck_assert_uint_eq(t->rt_tombs, 0);
	ck_assert_int_eq(rvk_count(t), 16);
	for (i = 0; i < 64; i++) {
		key(i, d);
		ck_assert_int_eq(rvk_revoked(t, d, 10), i >= 48);
	}
	tbl_check(t);
	free(t);
}
END_TEST

/* ---- sync ------------------------------------------------------------ */

START_TEST(test_sync_drops_entries_not_readded)
{
	struct rvk_table	*t = tbl_new(16);
	uint8_t			 d[6][RVK_DIGEST];
	int			 i;

	for (i = 0; i < 6; i++)
		key(i, d[i]);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(rvk_add(t, d[i], 200, 100), 0);
	/* nothing read: nothing kept */
	rvk_sync_begin(t);
	ck_assert_int_eq(rvk_add(t, d[0], 200, 100), 0);	/* the same */
	ck_assert_int_eq(rvk_add(t, d[1], 400, 100), 0);	/* a new until */
	ck_assert_int_eq(rvk_add(t, d[4], 200, 100), 0);	/* a new one */
	ck_assert_int_eq(rvk_add(t, d[5], 90, 100), 0);		/* over already */
	/* lookups meanwhile see the old entries too */
	ck_assert_int_eq(rvk_revoked(t, d[2], 100), 1);
	ck_assert_uint_eq(rvk_sync_end(t), 2);
	ck_assert_int_eq(rvk_count(t), 3);
	ck_assert_int_eq(rvk_revoked(t, d[0], 100), 1);
	ck_assert_int_eq(rvk_revoked(t, d[1], 300), 1);
	ck_assert_int_eq(rvk_revoked(t, d[2], 100), 0);
	ck_assert_int_eq(rvk_revoked(t, d[3], 100), 0);
	ck_assert_int_eq(rvk_revoked(t, d[4], 100), 1);
	ck_assert_int_eq(rvk_revoked(t, d[5], 0), 0);
	tbl_check(t);
	/* ends without a begin drop nothing more */
	ck_assert_uint_eq(rvk_sync_end(t), 0);
	/* adds after the reload carry its generation: kept by its end */
	ck_assert_int_eq(rvk_add(t, d[2], 200, 100), 0);
	ck_assert_uint_eq(rvk_sync_end(t), 0);
	/* an empty reload drops them all */
	rvk_sync_begin(t);
	ck_assert_uint_eq(rvk_sync_end(t), 4);
	ck_assert_int_eq(rvk_count(t), 0);
	tbl_check(t);
	free(t);
}
END_TEST

/* ---- a model --------------------------------------------------------- */

#define MKEYS	64
#define MMAX	32

struct model {
	int		 m_in[MKEYS];
	int64_t		 m_until[MKEYS];
	uint32_t	 m_gen[MKEYS];
	uint32_t	 m_curgen;
	int		 m_used;
	int64_t		 m_full;
};

static uint32_t
model_expire(struct model *m, int64_t now)
{
	uint32_t	 n = 0;
	int		 k;

	for (k = 0; k < MKEYS; k++)
		if (m->m_in[k] && m->m_until[k] <= now) {
			m->m_in[k] = 0;
			m->m_used--;
			n++;
		}
	return n;
}

static int
model_add(struct model *m, int k, int64_t until, int64_t now, int *maderoom)
{
	if (until <= now || until <= 0) {
		if (m->m_in[k]) {
			m->m_in[k] = 0;
			m->m_used--;
		}
		return 0;
	}
	if (!m->m_in[k]) {
		if (m->m_used >= MMAX) {
			if (model_expire(m, now) == 0) {
				m->m_full++;
				return -1;
			}
			(*maderoom)++;
		}
		m->m_in[k] = 1;
		m->m_used++;
	}
	m->m_until[k] = until;
	m->m_gen[k] = m->m_curgen;
	return 0;
}

static uint32_t
model_sync_end(struct model *m)
{
	uint32_t	 n = 0;
	int		 k;

	for (k = 0; k < MKEYS; k++)
		if (m->m_in[k] && m->m_gen[k] != m->m_curgen) {
			m->m_in[k] = 0;
			m->m_used--;
			n++;
		}
	return n;
}

/*
 * 200,000 random adds, updates, removals, sweeps, reloads and clock
 * steps over 64 keys in a table of 32, half of them real digests and half
 * made to start at four slots (two wrapping), compared with a plain array
 * after every step.
 */
START_TEST(test_random_model)
{
	struct rvk_table	*t = tbl_new(MMAX);
	struct model		 m;
	uint8_t			 d[MKEYS][RVK_DIGEST];
	int64_t			 now = 1000, until;
	uint32_t		 tombs;
	int			 i, k, r, full = 0, maderoom = 0, rebuilds = 0, syncs = 0;

	memset(&m, 0, sizeof(m));
	srandom(7);
	for (k = 0; k < MKEYS; k++)
		if (k < MKEYS / 2)
			key(k, d[k]);
		else
			crafted(d[k], (uint64_t)(k % 4 < 2 ? k % 4 : MMAX * 2 - 4 + k % 4) +
			    ((uint64_t)k << 32), (uint64_t)k);
	for (i = 0; i < 200000; i++) {
		k = (int)(random() % MKEYS);
		r = (int)(random() % 100);
		tombs = t->rt_tombs;
		if (r < 55) {
			until = now + (int64_t)(random() % 44) - 3;
			CHECK_EQ(rvk_add(t, d[k], until, now),
			    model_add(&m, k, until, now, &maderoom));
		} else if (r < 63) {
			CHECK_EQ(rvk_del(t, d[k]), m.m_in[k]);
			if (m.m_in[k]) {
				m.m_in[k] = 0;
				m.m_used--;
			}
		} else if (r < 66) {
			CHECK_EQ(rvk_expire(t, now), model_expire(&m, now));
		} else if (r < 68) {
			rvk_sync_begin(t);
			m.m_curgen++;
		} else if (r < 70) {
			CHECK_EQ(rvk_sync_end(t), model_sync_end(&m));
			syncs++;
		} else
			now += random() % 3;
		if (t->rt_tombs + 1 < tombs)
			rebuilds++;
		CHECK_EQ(rvk_count(t), m.m_used);
		CHECK_EQ(atomic_load(&t->rt_full), m.m_full);
		for (k = 0; k < MKEYS; k++)
			CHECK_EQ(rvk_revoked(t, d[k], now),
			    m.m_in[k] && m.m_until[k] > now);
		if (i % 16 == 0)
			tbl_check(t);
	}
	full = (int)m.m_full;
	/* every path was taken, many times */
	ck_assert_int_gt(full, 300);
	ck_assert_int_gt(maderoom, 1000);
	ck_assert_int_gt(rebuilds, 500);
	ck_assert_int_gt(syncs, 1000);
	free(t);
}
END_TEST

/* ---- readers without a lock ----------------------------------------- */

#define CMAX		128	/* 256 slots */
#define CSTAY		64	/* always revoked */
#define CNEVER		64	/* never added */
#define CPASS		128	/* come and go */
#define CREBUILDS	2000	/* the writer's least, while the reader reads */
#define CREAD_S		0.5	/* the writer's least */
#define CLIMIT_S	30	/* a machine too busy, or a hang */

/* Shared by the writer and the reader: a mapping, or one process's memory. */
struct conc_ctl {
	_Atomic int	 cc_done;	/* the writer has done its share */
	_Atomic int64_t	 cc_reads;
};

struct conc {
	struct rvk_table	*c_t;
	struct conc_ctl		*c_ctl;
	uint8_t			 c_stay[CSTAY][RVK_DIGEST];
	uint8_t			 c_never[CNEVER][RVK_DIGEST];
	uint8_t			 c_pass[CPASS][RVK_DIGEST];
};

static void
conc_keys(struct conc *c)
{
	int	 i;

	/*
	 * Half the stayers in one run from slot 0, looked up along a long
	 * probe, at the slots a rebuild clears first: a reader that took a
	 * look begun before the writer's section for a finished one would
	 * miss them.
	 */
	for (i = 0; i < CSTAY; i++)
		if (i % 2 == 0)
			key(i, c->c_stay[i]);
		else
			crafted(c->c_stay[i], (uint64_t)CMAX * 2 * (uint64_t)i,
			    (uint64_t)i);
	for (i = 0; i < CNEVER; i++)
		key(100000 + i, c->c_never[i]);
	for (i = 0; i < CPASS; i++)
		key(200000 + i, c->c_pass[i]);
}

/*
 * Until the writer is done: the keys that stay always found, the others
 * never, the count within what the writer can hold.  0, or what went
 * wrong.
 */
static int
conc_read(struct conc *c)
{
	double	 limit = mono() + CLIMIT_S;
	int64_t	 n;
	int	 i;

	while (!atomic_load(&c->c_ctl->cc_done) && mono() < limit) {
		for (i = 0; i < CSTAY; i++)
			if (rvk_revoked(c->c_t, c->c_stay[i], 0) != 1)
				return 1;
		for (i = 0; i < CNEVER; i++)
			if (rvk_revoked(c->c_t, c->c_never[i], 0) != 0)
				return 2;
		n = rvk_count(c->c_t);
		if (n < CSTAY || n > CMAX)
			return 3;
		atomic_fetch_add_explicit(&c->c_ctl->cc_reads, CSTAY + CNEVER,
		    memory_order_relaxed);
	}
	return 0;
}

/*
 * One step of the writer: a passing key added or removed at random, or
 * the clock moving and sweeping, or a reload that keeps the stayers; the
 * table small enough to fill, and rebuilt over and over.  1 if it was
 * rebuilt.
 */
static int
conc_write_step(struct conc *c, int64_t *now, int step)
{
	struct rvk_table	*t = c->c_t;
	uint32_t		 tombs = t->rt_tombs;
	int			 i, k = (int)(random() % CPASS);

	if (step % 5000 == 0) {
		rvk_sync_begin(t);
		for (i = 0; i < CSTAY; i++)
			CHECK_EQ(rvk_add(t, c->c_stay[i], FAR, *now), 0);
		for (i = 0; i < CPASS; i += 3)
			rvk_add(t, c->c_pass[i], *now + 3, *now);
		rvk_sync_end(t);
	} else if (step % 32 == 0) {
		(*now)++;
		rvk_expire(t, *now);
	} else if (random() % 3 != 0)
		rvk_add(t, c->c_pass[k], *now + 1 + random() % 8, *now);
	else
		rvk_del(t, c->c_pass[k]);
	return t->rt_tombs + 1 < tombs;
}

/*
 * Write for CREAD_S seconds, CREBUILDS rebuilds and 100,000 reads at
 * least (a busy machine takes longer), then tell the reader.
 */
static void
conc_write(struct conc *c)
{
	double	 start = mono(), t = 0;
	int64_t	 now = 1, reads = 0, full;
	int	 step, rebuilds = 0;

	for (step = 1; t < CLIMIT_S; step++) {
		rebuilds += conc_write_step(c, &now, step);
		if (step % 1024 != 0)
			continue;
		t = mono() - start;
		reads = atomic_load(&c->c_ctl->cc_reads);
		if (t >= CREAD_S && rebuilds >= CREBUILDS && reads >= 100000)
			break;
	}
	atomic_store(&c->c_ctl->cc_done, 1);
	full = atomic_load(&c->c_t->rt_full);
	ck_assert_int_ge(rebuilds, CREBUILDS);
	ck_assert_int_ge(reads, 100000);
	ck_assert_int_gt(full, 0);
	tbl_check(c->c_t);
}

static void
conc_setup(struct conc *c, struct rvk_table *t, struct conc_ctl *ctl)
{
	int	 i;

	memset(c, 0, sizeof(*c));
	memset(ctl, 0, sizeof(*ctl));
	c->c_t = t;
	c->c_ctl = ctl;
	rvk_init(t, CMAX);
	conc_keys(c);
	for (i = 0; i < CSTAY; i++)
		ck_assert_int_eq(rvk_add(t, c->c_stay[i], FAR, 1), 0);
	srandom(11);
}

START_TEST(test_reader_process_never_sees_a_half_change)
{
	struct conc		 c;
	struct conc_ctl		*ctl;
	struct rvk_table	*t;
	size_t			 sz = rvk_size(CMAX);
	pid_t			 pid;
	int			 status;

	t = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(t, MAP_FAILED);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(ctl, MAP_FAILED);
	conc_setup(&c, t, ctl);
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0)
		_exit(conc_read(&c));
	conc_write(&c);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "reader: %s",
	    WEXITSTATUS(status) == 1 ? "a revocation that stays was missed" :
	    WEXITSTATUS(status) == 2 ? "a digest never added was found" :
	    "a count out of range");
	munmap(ctl, sizeof(*ctl));
	munmap(t, sz);
}
END_TEST

static void *
conc_thread(void *arg)
{
	return (void *)(intptr_t)conc_read(arg);
}

/* The same with a thread (which ThreadSanitizer can watch). */
START_TEST(test_reader_thread_never_sees_a_half_change)
{
	struct conc		 c;
	struct conc_ctl		 ctl;
	struct rvk_table	*t;
	pthread_t		 th;
	void			*rv;

	ck_assert_ptr_nonnull(t = malloc(rvk_size(CMAX)));
	conc_setup(&c, t, &ctl);
	ck_assert_int_eq(pthread_create(&th, NULL, conc_thread, &c), 0);
	conc_write(&c);
	ck_assert_int_eq(pthread_join(th, &rv), 0);
	ck_assert_int_eq((intptr_t)rv, 0);
	free(t);
}
END_TEST

static Suite *
revoke_suite(void)
{
	Suite	*s = suite_create("revoke");
	TCase	*tc;

	tc = tcase_create("basics");
	tcase_add_test(tc, test_digest_is_sha256_prefix);
	tcase_add_test(tc, test_size_slots_power_of_two_twice_max);
	tcase_add_test(tc, test_init_over_junk_is_empty);
	tcase_add_test(tc, test_add_lookup_update_delete);
	tcase_add_test(tc, test_until_not_after_now_adds_nothing);
	tcase_add_test(tc, test_colliding_digests_probe_past_tombstones);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_expiry_by_time);
	tcase_add_test(tc, test_full_refused_and_counted);
	tcase_add_test(tc, test_full_table_drops_expired_to_make_room);
	tcase_add_test(tc, test_expire_rebuilds);
	tcase_add_test(tc, test_sync_drops_entries_not_readded);
	suite_add_tcase(s, tc);

	tc = tcase_create("churn");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_rebuild_keeps_live_entries);
	tcase_add_test(tc, test_random_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reader_process_never_sees_a_half_change);
	tcase_add_test(tc, test_reader_thread_never_sees_a_half_change);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(revoke_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
