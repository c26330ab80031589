/* Shared registry: tables, limits, clearing a dead worker, robust lock. */
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

static struct registry	 reg;

static void
setup(void)
{
	ck_assert_int_eq(reg_create(&reg, 4, 8, 16), 0);
}

static void
teardown(void)
{
	reg_destroy(&reg);
}

START_TEST(test_layout_is_versioned)
{
	ck_assert_uint_eq(reg.r_hdr->rh_magic, REGISTRY_MAGIC);
	ck_assert_uint_eq(reg.r_hdr->rh_version, REGISTRY_VERSION);
	ck_assert_int_eq(reg.r_hdr->rh_nworkers, 4);
	/* sections do not overlap and stay inside the mapping */
	ck_assert_uint_lt(reg.r_hdr->rh_off_workers, reg.r_hdr->rh_off_conns);
	ck_assert_uint_lt(reg.r_hdr->rh_off_conns, reg.r_hdr->rh_off_chan_idx);
	ck_assert_uint_le(reg.r_hdr->rh_off_chan_idx +
	    sizeof(struct reg_chan_idx) * (uint64_t)reg.r_hdr->rh_chan_slots,
	    reg.r_hdr->rh_off_chans);
	ck_assert_uint_le(reg.r_hdr->rh_off_chans +
	    reg.r_hdr->rh_chan_stride * (uint64_t)reg.r_hdr->rh_max_chans, reg.r_hdr->rh_off_counts);
	ck_assert_int_ge(reg.r_hdr->rh_chan_slots, 16 + 16 / 3);
}
END_TEST

START_TEST(test_bad_sizes_refused)
{
	struct registry	 r;

	ck_assert_int_eq(reg_create(&r, 0, 8, 8), -1);
	ck_assert_int_eq(reg_create(&r, REG_MAX_WORKERS + 1, 8, 8), -1);
	ck_assert_int_eq(reg_create(&r, 1, 0, 8), -1);
}
END_TEST

START_TEST(test_channel_counts_route_and_delete)
{
	uint64_t	 mask;

	ck_assert_int_eq(reg_chan_add(&reg, 0, "apps:created", 12, 1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 2, "apps:created", 12, 1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 2, "apps:created", 12, 1, 0), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:created", 12, &mask), 3);
	ck_assert_uint_eq(mask, (1u << 0) | (1u << 2));
	ck_assert_int_eq(reg.r_hdr->rh_nchans, 1);
	/* a prefix or a longer name is another channel */
	ck_assert_int_eq(reg_chan_route(&reg, "apps:create", 11, &mask), 0);
	ck_assert_uint_eq(mask, 0);
	ck_assert_int_eq(reg_chan_add(&reg, 0, "apps:created", 12, -1, 0), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:created", 12, &mask), 2);
	ck_assert_uint_eq(mask, 1u << 2);
	ck_assert_int_eq(reg_chan_add(&reg, 2, "apps:created", 12, -1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 2, "apps:created", 12, -1, 0), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:created", 12, &mask), 0);
	ck_assert_int_eq(reg.r_hdr->rh_nchans, 0);
	/* a decrement of an unknown channel is harmless */
	ck_assert_int_eq(reg_chan_add(&reg, 1, "nope", 4, -1, 0), 0);
	ck_assert_int_eq(reg.r_hdr->rh_nchans, 0);
}
END_TEST

START_TEST(test_channel_table_full_is_counted)
{
	char		 name[32];
	uint64_t	 mask;
	int		 i;

	for (i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "apps:c%d", i);
		ck_assert_int_eq(reg_chan_add(&reg, 1, name, strlen(name), 1, 0), 0);
	}
	ck_assert_int_eq(reg_chan_add(&reg, 1, "apps:one-too-many", 17, 1, 0), -1);
	ck_assert_int_eq(reg.r_hdr->rh_chan_table_full, 1);
	/* existing channels still count, and every one still routes */
	ck_assert_int_eq(reg_chan_add(&reg, 3, "apps:c5", 7, 1, 0), 0);
	for (i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "apps:c%d", i);
		ck_assert_int_ge(reg_chan_route(&reg, name, strlen(name), &mask), 1);
	}
	/* deleting frees room (tombstones are reused) */
	ck_assert_int_eq(reg_chan_add(&reg, 1, "apps:c0", 7, -1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 1, "apps:one-too-many", 17, 1, 0), 0);
}
END_TEST

START_TEST(test_churn_keeps_lookups_right)
{
	char		 name[32];
	uint64_t	 mask;
	int		 i, round;

	for (round = 0; round < 50; round++) {
		for (i = 0; i < 12; i++) {
			snprintf(name, sizeof(name), "user:%d-%d", round, i);
			ck_assert_int_eq(reg_chan_add(&reg, i % 4, name, strlen(name), 1, 0), 0);
		}
		for (i = 0; i < 12; i++) {
			snprintf(name, sizeof(name), "user:%d-%d", round, i);
			ck_assert_int_eq(reg_chan_route(&reg, name, strlen(name), &mask), 1);
			ck_assert_uint_eq(mask, 1u << (i % 4));
			ck_assert_int_eq(reg_chan_add(&reg, i % 4, name, strlen(name), -1, 0), 0);
		}
	}
	ck_assert_int_eq(reg.r_hdr->rh_nchans, 0);
	/* churn leaves no tombstones behind once every channel is gone */
	for (i = 0; i < reg.r_hdr->rh_chan_slots; i++)
		ck_assert_uint_eq(reg_chan_bucket(&reg, i)->ci_rec, REG_IDX_EMPTY);
	/* freed records are reused: the records in use stay dense */
	ck_assert_int_le(reg.r_hdr->rh_chan_hiwat, 12);
}
END_TEST

START_TEST(test_connection_table)
{
	int	 slots[8], i;

	for (i = 0; i < 8; i++) {
		slots[i] = reg_conn_add(&reg, i % 4, "id", i ? "u1" : NULL, 0, "127.0.0.1:1", 0);
		ck_assert_int_ge(slots[i], 0);
	}
	ck_assert_int_eq(reg_conn_add(&reg, 0, "id", NULL, 0, "p", 0), -1);
	ck_assert_int_eq(reg.r_hdr->rh_conn_table_full, 1);
	ck_assert_str_eq(reg_conn_slot(&reg, slots[0])->rc_user, "");
	ck_assert_str_eq(reg_conn_slot(&reg, slots[1])->rc_user, "u1");
	reg_conn_del(&reg, slots[3]);
	reg_conn_del(&reg, slots[3]);	/* twice is harmless */
	ck_assert_int_eq(reg.r_hdr->rh_nconns, 7);
	ck_assert_int_eq(reg_conn_add(&reg, 1, "id2", NULL, 0, "p", 0), slots[3]);
}
END_TEST

/*
 * Long user ids keep a prefix and a hash of the whole in the table: they
 * match their owner only, not another long id with the same prefix, nor
 * the prefix itself.  Ids up to REG_USER_MAX bytes are kept whole.
 */
START_TEST(test_long_user_ids)
{
	char			 longid[RT_USERID_MAX + 1], other[RT_USERID_MAX + 1];
	char			 max[REG_USER_MAX + 1], prefix[REG_USER_MAX + 1];
	const struct reg_conn	*rc;
	int			 slot, s2, s3;

	memset(longid, 'u', RT_USERID_MAX);
	longid[RT_USERID_MAX] = '\0';
	memcpy(other, longid, sizeof(other));
	other[RT_USERID_MAX - 1] = 'v';		/* differs after the prefix */
	slot = reg_conn_add(&reg, 0, "id", longid, 0, "p", 0);
	ck_assert_int_ge(slot, 0);
	rc = reg_conn_slot(&reg, slot);
	ck_assert_uint_eq(strlen(rc->rc_user), REG_USER_PREFIX);	/* listings: the prefix */
	ck_assert_int_eq(reg_user_match(rc, longid), 1);
	ck_assert_int_eq(reg_user_match(rc, other), 0);
	memcpy(prefix, longid, REG_USER_MAX);
	prefix[REG_USER_MAX] = '\0';
	ck_assert_int_eq(reg_user_match(rc, prefix), 0);
	prefix[REG_USER_PREFIX] = '\0';
	ck_assert_int_eq(reg_user_match(rc, prefix), 0);
	longid[REG_USER_MAX + 1] = '\0';			/* 64 bytes: cut too */
	ck_assert_int_eq(reg_user_match(rc, longid), 0);
	ck_assert_int_ge(s2 = reg_conn_add(&reg, 0, "id2", longid, 0, "p", 0), 0);
	ck_assert_int_eq(reg_user_match(reg_conn_slot(&reg, s2), longid), 1);
	ck_assert_int_eq(reg_user_match(reg_conn_slot(&reg, s2), other), 0);
	/* exactly REG_USER_MAX bytes: whole, matched exactly */
	memset(max, 'm', REG_USER_MAX);
	max[REG_USER_MAX] = '\0';
	ck_assert_int_ge(s3 = reg_conn_add(&reg, 0, "id3", max, 0, "p", 0), 0);
	rc = reg_conn_slot(&reg, s3);
	ck_assert_str_eq(rc->rc_user, max);
	ck_assert_int_eq(reg_user_match(rc, max), 1);
	max[REG_USER_MAX - 1] = '\0';
	ck_assert_int_eq(reg_user_match(rc, max), 0);
	/* set again (an in-band auth): short now */
	reg_conn_set_user(&reg, slot, "short", 0);
	rc = reg_conn_slot(&reg, slot);
	ck_assert_int_eq(reg_user_match(rc, "short"), 1);
	ck_assert_int_eq(reg_user_match(rc, "shorter"), 0);
	ck_assert_int_eq(reg_user_match(rc, other), 0);
	reg_conn_set_user(&reg, slot, NULL, 0);
	ck_assert_int_eq(reg_user_match(reg_conn_slot(&reg, slot), "x"), 0);
	ck_assert_str_eq(reg_conn_slot(&reg, slot)->rc_user, "");
}
END_TEST

START_TEST(test_handshake_bucket_is_a_gcra)
{
	uint64_t	 t = 1000000000000ull, wait = 0;
	int		 i, ok = 0;

	/* 0: no limit */
	ck_assert_int_eq(reg_admit(&reg, t, 0, 0, &wait), 0);
	/* 10/s, burst 5: five at once, the sixth waits 100 ms */
	for (i = 0; i < 8; i++)
		ok += reg_admit(&reg, t, 10, 5, &wait) == 0;
	ck_assert_int_eq(ok, 5);
	ck_assert_uint_eq(wait, 100000000ull);
	ck_assert_int_eq(reg_admit(&reg, t + 99999999ull, 10, 5, &wait), -1);
	ck_assert_int_eq(reg_admit(&reg, t + 100000000ull, 10, 5, &wait), 0);
	/* idle a second: the burst again, never more */
	for (i = 0, ok = 0; i < 30; i++)
		ok += reg_admit(&reg, t + 1100000000ull, 10, 5, &wait) == 0;
	ck_assert_int_eq(ok, 5);
	/* burst 0 is one second's worth */
	for (i = 0, ok = 0; i < 30; i++)
		ok += reg_admit(&reg, t + 100000000000ull, 10, 0, &wait) == 0;
	ck_assert_int_eq(ok, 10);
	ck_assert(wait >= 1 && wait <= 100000000ull);
}
END_TEST

START_TEST(test_worker_clear_forgets_only_that_worker)
{
	uint64_t	 mask;
	int		 i;

	ck_assert_int_eq(reg_chan_add(&reg, 1, "apps:a", 6, 1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 1, "apps:b", 6, 1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 2, "apps:b", 6, 1, 0), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_ge(reg_conn_add(&reg, i % 2 ? 1 : 2, "id", NULL, 0, "p", 0), 0);
	atomic_store(&reg_worker(&reg, 1)->rw_connections, 2);
	atomic_store(&reg_worker(&reg, 2)->rw_connections, 2);
	reg_worker_clear(&reg, 1);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:a", 6, &mask), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:b", 6, &mask), 1);
	ck_assert_uint_eq(mask, 1u << 2);
	ck_assert_int_eq(reg.r_hdr->rh_nchans, 1);
	ck_assert_int_eq(reg.r_hdr->rh_nconns, 2);
	ck_assert_int_eq(atomic_load(&reg_worker(&reg, 1)->rw_connections), 0);
	ck_assert_int_eq(atomic_load(&reg_worker(&reg, 2)->rw_connections), 2);
}
END_TEST

/* A process that dies holding the lock must not wedge everyone else. */
START_TEST(test_writer_dying_with_the_lock)
{
	pid_t	 pid;
	int	 status, p[2];
	char	 c;
	uint64_t mask;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		reg_lock(&reg);
		/* half a change: the count written, then death */
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);	/* a child that died early reads as EOF, not a hang */
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* each of these takes the lock; none may hang */
	ck_assert_int_eq(reg_chan_add(&reg, 0, "apps:x", 6, 1, 0), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:x", 6, &mask), 1);
	ck_assert_int_ge(reg_conn_add(&reg, 0, "id", NULL, 0, "p", 0), 0);
	ck_assert_int_eq(atomic_load(&reg.r_hdr->rh_lock_recoveries), 1);
	close(p[0]);
}
END_TEST

/*
 * A writer killed in the middle of removing a channel (its record already
 * on the free list, its bucket still pointing at it) or of adding one (a
 * record taken, never indexed; a count without its total): the next
 * locker rebuilds the channel table from the records.
 */
START_TEST(test_half_done_channel_changes_repaired)
{
	struct reg_header	*h = reg.r_hdr;
	struct reg_chan		*ch;
	uint64_t		 mask;
	pid_t			 pid;
	int			 status, rec, i, b;
	char			 name[32];

	ck_assert_int_eq(reg_chan_add(&reg, 1, "apps:kept", 9, 1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 2, "apps:gone", 9, 1, 0), 0);
	ck_assert_int_eq(reg_chan_add(&reg, 3, "apps:total", 10, 1, 0), 0);
	if ((pid = fork()) == 0) {
		reg_lock(&reg);
		/* apps:gone: record freed, bucket left */
		for (i = 0; i < h->rh_chan_hiwat; i++) {
			ch = reg_chan_slot(&reg, i);
			if (strcmp(ch->ch_name, "apps:gone") == 0) {
				ch->ch_counts[2] = 0;
				ch->ch_total = 0;
				ch->ch_state = REG_CHAN_FREE;
				ch->ch_next_free = h->rh_chan_free;
				h->rh_chan_free = i;
			}
			/* apps:total: the count moved, the total did not */
			if (strcmp(ch->ch_name, "apps:total") == 0)
				ch->ch_counts[0] = 4;
		}
		/* a record taken for a new channel, never indexed */
		rec = h->rh_chan_hiwat++;
		ch = reg_chan_slot(&reg, rec);
		memcpy(ch->ch_name, "apps:half", 10);
		ch->ch_state = REG_CHAN_USED;
		_exit(0);	/* holding the lock */
	}
	waitpid(pid, &status, 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:kept", 9, &mask), 1);
	ck_assert_uint_eq(mask, 1u << 1);
	ck_assert_int_eq(atomic_load(&h->rh_lock_recoveries), 1);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:gone", 9, &mask), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:half", 9, &mask), 0);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:total", 10, &mask), 5);
	ck_assert_int_eq(h->rh_nchans, 2);
	/* new channels reuse the freed records without disturbing the old */
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "apps:new%d", i);
		ck_assert_int_eq(reg_chan_add(&reg, 0, name, strlen(name), 1, 0), 0);
	}
	ck_assert_int_eq(reg_chan_route(&reg, "apps:kept", 9, &mask), 1);
	ck_assert_int_eq(reg_chan_route(&reg, "apps:total", 10, &mask), 5);
	ck_assert_int_eq(h->rh_nchans, 12);
	for (i = 0, b = 0; i < h->rh_chan_slots; i++)
		b += reg_chan_bucket(&reg, i)->ci_rec != REG_IDX_EMPTY &&
		    reg_chan_bucket(&reg, i)->ci_rec != REG_IDX_DELETED;
	ck_assert_int_eq(b, 12);
}
END_TEST

/* A forked child sees the parent's registry and its writes come back. */
START_TEST(test_shared_across_fork)
{
	pid_t		 pid;
	int		 status;
	uint64_t	 mask;

	if ((pid = fork()) == 0) {
		reg_chan_add(&reg, 3, "system:alerts", 13, 1, 0);
		atomic_fetch_add(&reg_worker(&reg, 3)->rw_connections, 5);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ck_assert_int_eq(reg_chan_route(&reg, "system:alerts", 13, &mask), 1);
	ck_assert_uint_eq(mask, 1u << 3);
	ck_assert_int_eq(atomic_load(&reg_worker(&reg, 3)->rw_connections), 5);
}
END_TEST

struct seen {
	int	 n;
	int64_t	 total;
};


static void
count_chan(const char *name, int64_t subs, void *arg)
{
	struct seen	*s = arg;

	(void)name;
	s->n++;
	s->total += subs;
}

static void
count_conn(struct reg_conn *c, void *arg)
{
	(*(int *)arg)++;
	(void)c;
}

/* Pages of [p, p + len) mapped in this process (pagemap "present" bits). */
static long
pages_mapped(const void *p, size_t len)
{
	long		 pg = sysconf(_SC_PAGESIZE), n = 0, i, npages;
	uintptr_t	 a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
	uint64_t	 e;
	FILE		*fp;

	npages = (long)(((uintptr_t)p + len - a + (size_t)pg - 1) / (size_t)pg);
	if ((fp = fopen("/proc/self/pagemap", "rb")) == NULL)
		return -1;
	for (i = 0; i < npages; i++) {
		if (fseek(fp, (long)((a / (size_t)pg + (size_t)i) * 8), SEEK_SET) != 0 ||
		    fread(&e, sizeof(e), 1, fp) != 1) {
			fclose(fp);
			return -1;
		}
		n += (e >> 63) & 1;
	}
	fclose(fp);
	return n;
}

/*
 * A scan leaves the scanner without the pages it looked at (its RSS), and
 * the bytes stay for everyone; channels live in dense records, so a process
 * that counts a few channels maps a few record pages, not one per channel.
 */
START_TEST(test_scans_keep_data_and_drop_pages)
{
	struct registry	 r;
	struct seen	 s = { 0, 0 };
	char		 name[32];
	int		 i, n = 0, slot;
	long		 before, after;
	pid_t		 pid;
	int		 status;

	ck_assert_int_eq(reg_create(&r, 2, 20000, 20000), 0);
	/* another process writes, as a worker would */
	if ((pid = fork()) == 0) {
		for (i = 0; i < 5000; i++) {
			snprintf(name, sizeof(name), "user:%d", i);
			if (reg_chan_add(&r, 1, name, strlen(name), 1, 0) != 0 ||
			    reg_conn_add(&r, 1, "id", "u", 0, "p", 0) < 0)
				_exit(1);
		}
		/* 5000 channels of ~256-byte records: ~320 pages, not 5000 */
		_exit(pages_mapped(reg_chan_slot(&r, 0), r.r_hdr->rh_chan_stride *
		    (size_t)r.r_hdr->rh_max_chans) > 400 ? 2 : 0);
	}
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	reg_conn_foreach(&r, count_conn, &n);
	ck_assert_int_eq(n, 5000);
	reg_chan_foreach(&r, count_chan, &s);
	ck_assert_int_eq(s.n, 5000);
	/* the scans unmapped what they read (but the two edge pages) */
	before = pages_mapped(reg_conn_slot(&r, 0), sizeof(struct reg_conn) * 20000);
	ck_assert_int_le(before, 2);
	/* and nothing was lost */
	n = 0;
	reg_conn_foreach(&r, count_conn, &n);
	ck_assert_int_eq(n, 5000);
	slot = reg_conn_add(&r, 0, "id", "v", 0, "p", 0);
	ck_assert_int_ge(slot, 0);
	ck_assert_str_eq(reg_conn_slot(&r, slot)->rc_user, "v");
	after = pages_mapped(reg_conn_slot(&r, 0), sizeof(struct reg_conn) * 20000);
	ck_assert_int_ge(after, 1);
	reg_destroy(&r);
}
END_TEST

START_TEST(test_totals_and_foreach)
{
	struct reg_totals	 t;
	struct seen		 s = { 0, 0 };

	atomic_store(&reg_worker(&reg, 0)->rw_connections, 3);
	atomic_store(&reg_worker(&reg, 0)->rw_anonymous, 1);
	atomic_store(&reg_worker(&reg, 0)->rw_authenticated, 2);
	atomic_store(&reg_worker(&reg, 0)->rw_state, REG_PROC_RUNNING);
	atomic_store(&reg_worker(&reg, 3)->rw_connections, 4);
	atomic_store(&reg_worker(&reg, 3)->rw_authenticated, 4);
	atomic_store(&reg_worker(&reg, 3)->rw_state, REG_PROC_RUNNING);
	reg_chan_add(&reg, 0, "announcements", 13, 1, 0);
	reg_chan_add(&reg, 3, "announcements", 13, 1, 0);
	reg_chan_add(&reg, 3, "apps:created", 12, 1, 0);
	reg_totals(&reg, &t);
	ck_assert_int_eq(t.t_connections, 7);
	ck_assert_int_eq(t.t_authenticated, 6);
	ck_assert_int_eq(t.t_anonymous, 1);
	ck_assert_int_eq(t.t_channels, 2);
	ck_assert_int_eq(t.t_workers, 2);
	reg_chan_foreach(&reg, count_chan, &s);
	ck_assert_int_eq(s.n, 2);
	ck_assert_int_eq(s.total, 3);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("registry");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_layout_is_versioned);
	tcase_add_test(tc, test_bad_sizes_refused);
	tcase_add_test(tc, test_channel_counts_route_and_delete);
	tcase_add_test(tc, test_channel_table_full_is_counted);
	tcase_add_test(tc, test_churn_keeps_lookups_right);
	tcase_add_test(tc, test_connection_table);
	tcase_add_test(tc, test_worker_clear_forgets_only_that_worker);
	tcase_add_test(tc, test_handshake_bucket_is_a_gcra);
	tcase_add_test(tc, test_long_user_ids);
	tcase_add_test(tc, test_writer_dying_with_the_lock);
	tcase_add_test(tc, test_half_done_channel_changes_repaired);
	tcase_add_test(tc, test_shared_across_fork);
	tcase_add_test(tc, test_totals_and_foreach);
	tcase_add_test(tc, test_scans_keep_data_and_drop_pages);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
