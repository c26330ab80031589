/*
 * Node positions and kept frames (history.c): offsets per channel, epochs
 * (node epoch and record generation), replay (in order, all or nothing),
 * eviction by count, age and memory, holes, the channel-record LRU, the
 * sweep, limits and stats, a randomized comparison with a model, and
 * cluster records (hist_cluster_next, hist_cluster_set, the modes, 2 from
 * hist_replay).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "realtimed.h"
#include "history.h"

/* ---- helpers -------------------------------------------------------- */

#define BIG	((int64_t)1 << 30)

/* What a replay emitted. */
#define GOT_MAX	64
struct got {
	int		 n;
	uint64_t	 off[GOT_MAX];
	char		*frame[GOT_MAX];
	size_t		 len[GOT_MAX];
};

static void
got_emit(const void *frame, size_t len, uint64_t offset, void *arg)
{
	struct got	*g = arg;

	ck_assert_int_lt(g->n, GOT_MAX);
	g->off[g->n] = offset;
	g->len[g->n] = len;
	ck_assert_ptr_nonnull(g->frame[g->n] = malloc(len + 1));
	memcpy(g->frame[g->n], frame, len);
	g->frame[g->n][len] = '\0';
	g->n++;
}

static void
got_clear(struct got *g)
{
	int	 i;

	for (i = 0; i < g->n; i++)
		free(g->frame[i]);
	g->n = 0;
}

#define S(s)	(s), strlen(s)

/* The frame of event off on ch: "<ch>#<off>" (head "<ch>", body "#<off>"). */
static void
frame_of(char *out, size_t outlen, const char *ch, uint64_t off)
{
	snprintf(out, outlen, "%s#%llu", ch, (unsigned long long)off);
}

/* The next event of ch, kept (keep, ttl) at now; its offset. */
static uint64_t
pub(struct hist *h, const char *ch, int keep, int64_t ttl, uint64_t now)
{
	struct hist_pos	 pos;
	char		 body[32];

	ck_assert_int_eq(hist_next(h, S(ch), &pos), 0);
	snprintf(body, sizeof(body), "#%llu", (unsigned long long)pos.hp_offset);
	hist_append(h, S(ch), pos.hp_offset, ch, strlen(ch), body, strlen(body),
	    keep, ttl, now);
	return pos.hp_offset;
}

static void
epoch_of(struct hist *h, const char *ch, char *epoch)
{
	struct hist_pos	 pos;

	ck_assert_int_eq(hist_position(h, S(ch), &pos), 0);
	strcpy(epoch, pos.hp_epoch);
}

/*
 * Replay ch from (epoch, since) at now with ttl: expect rv, and when 1, the
 * frames since+1 .. newest of ch, in order.  *pos is the current position.
 */
static void
replay_expect(struct hist *h, const char *ch, const char *epoch, uint64_t since,
    int64_t ttl, uint64_t now, int want)
{
	struct hist_pos	 pos;
	struct got	 g = { 0 };
	char		 f[64];
	uint64_t	 o;
	int		 rv, i;

	rv = hist_replay(h, S(ch), epoch, since, ttl, now, &pos, got_emit, &g);
	ck_assert_msg(rv == want, "replay %s since %s/%llu at %llu: got %d, want %d",
	    ch, epoch, (unsigned long long)since, (unsigned long long)now, rv, want);
	if (rv == 1) {
		ck_assert_msg((uint64_t)g.n == pos.hp_offset - since,
		    "replay %s since %llu: %d frames, newest %llu", ch,
		    (unsigned long long)since, g.n, (unsigned long long)pos.hp_offset);
		for (i = 0, o = since + 1; i < g.n; i++, o++) {
			ck_assert_uint_eq(g.off[i], o);
			frame_of(f, sizeof(f), ch, o);
			ck_assert_str_eq(g.frame[i], f);
			ck_assert_uint_eq(g.len[i], strlen(f));
		}
	} else
		ck_assert_int_eq(g.n, 0);
	got_clear(&g);
}

static struct hist_stats
stats(struct hist *h)
{
	struct hist_stats	 st;

	hist_stats(h, &st);
	return st;
}

/* ---- offsets and epochs --------------------------------------------------- */

START_TEST(test_offsets_per_channel)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 ea[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "node1"));
	ck_assert_uint_eq(pub(h, "a", 10, 0, 0), 1);
	ck_assert_uint_eq(pub(h, "a", 10, 0, 0), 2);
	ck_assert_uint_eq(pub(h, "b", 10, 0, 0), 1);
	ck_assert_uint_eq(pub(h, "a", 10, 0, 0), 3);
	ck_assert_uint_eq(pub(h, "b", 10, 0, 0), 2);
	ck_assert_uint_eq(pub(h, "c", 10, 0, 0), 1);
	/* position: the newest offset, no advance */
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 3);
	strcpy(ea, pos.hp_epoch);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 3);
	ck_assert_str_eq(pos.hp_epoch, ea);
	/* next gives newest + 1 under the same epoch */
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 4);
	ck_assert_str_eq(pos.hp_epoch, ea);
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 2);
	/* channel names are compared by bytes and length */
	ck_assert_int_eq(hist_position(h, "ab", 1, &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 4);
	ck_assert_int_eq(hist_position(h, "ab", 2, &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 0);
	ck_assert_int_eq(stats(h).hs_channels, 4);
	hist_free(h);
}
END_TEST

START_TEST(test_position_makes_record_events_continue)
{
	struct hist	*h;
	struct hist_pos	 pos, first;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	ck_assert_int_eq(stats(h).hs_channels, 0);
	ck_assert_int_eq(hist_position(h, S("fresh"), &first), 0);
	ck_assert_uint_eq(first.hp_offset, 0);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	ck_assert_int_gt(stats(h).hs_memory, 0);
	/* the events continue the position the subscriber holds */
	ck_assert_int_eq(hist_next(h, S("fresh"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 1);
	ck_assert_str_eq(pos.hp_epoch, first.hp_epoch);
	hist_append(h, S("fresh"), 1, "fresh", 5, "#1", 2, 5, 0, 0);
	replay_expect(h, "fresh", first.hp_epoch, 0, 0, 0, 1);
	replay_expect(h, "fresh", first.hp_epoch, 1, 0, 0, 1);
	/* a replay on an unknown channel makes its record too */
	replay_expect(h, "other", "n-zzz", 0, 0, 0, 0);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	/* a name longer than a channel can be: no record */
	{
		char	 long_name[RT_CHANNEL_MAX + 2];

		memset(long_name, 'x', sizeof(long_name));
		ck_assert_int_eq(hist_position(h, long_name, RT_CHANNEL_MAX + 1, &pos), -1);
		ck_assert_int_eq(hist_position(h, long_name, RT_CHANNEL_MAX, &pos), 0);
	}
	hist_free(h);
}
END_TEST

/* node epoch, '-', then the generation in [0-9a-z]; at most 32 characters */
static void
check_epoch_form(const char *epoch, const char *node)
{
	size_t	 n = strlen(node), i;

	ck_assert_uint_le(strlen(epoch), HIST_EPOCH_MAX);
	ck_assert_msg(strncmp(epoch, node, n) == 0 && epoch[n] == '-',
	    "epoch %s of node %s", epoch, node);
	ck_assert_uint_gt(strlen(epoch), n + 1);
	for (i = n + 1; epoch[i] != '\0'; i++)
		ck_assert_msg((epoch[i] >= '0' && epoch[i] <= '9') ||
		    (epoch[i] >= 'a' && epoch[i] <= 'z'), "epoch %s", epoch);
}

START_TEST(test_epoch_format_and_reset)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 ea[HIST_EPOCH_MAX + 1], eb[HIST_EPOCH_MAX + 1];
	char		 ea2[HIST_EPOCH_MAX + 1], eb2[HIST_EPOCH_MAX + 1];
	const char	*node24 = "abcdefghijklmnopqrstuvwx";	/* HIST_EPOCH_MAX - 8 */
	int		 i;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "k3J9x2aQ"));
	pub(h, "a", 5, 0, 0);
	pub(h, "a", 5, 0, 0);
	pub(h, "b", 5, 0, 0);
	epoch_of(h, "a", ea);
	epoch_of(h, "b", eb);
	check_epoch_form(ea, "k3J9x2aQ");
	check_epoch_form(eb, "k3J9x2aQ");
	/* each record its own generation */
	ck_assert_str_ne(ea, eb);
	/* reset: every channel gets a new epoch, offsets start again at 1 */
	hist_reset(h, "Zq0");
	ck_assert_int_eq(stats(h).hs_channels, 0);
	ck_assert_int_eq(stats(h).hs_events, 0);
	ck_assert_int_eq(stats(h).hs_memory, 0);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 0);
	ck_assert_uint_eq(pub(h, "a", 5, 0, 0), 1);
	ck_assert_uint_eq(pub(h, "b", 5, 0, 0), 1);
	epoch_of(h, "a", ea2);
	epoch_of(h, "b", eb2);
	check_epoch_form(ea2, "Zq0");
	check_epoch_form(eb2, "Zq0");
	ck_assert_str_ne(ea2, ea);
	ck_assert_str_ne(eb2, eb);
	ck_assert_str_ne(ea2, eb2);
	/* the old positions answer 0, the new ones replay */
	replay_expect(h, "a", ea, 0, 0, 0, 0);
	replay_expect(h, "a", ea, 1, 0, 0, 0);
	replay_expect(h, "b", eb, 1, 0, 0, 0);
	replay_expect(h, "a", ea2, 0, 0, 0, 1);
	/* even a reset under the same node epoch makes new epochs */
	hist_reset(h, "Zq0");
	epoch_of(h, "a", ea);
	check_epoch_form(ea, "Zq0");
	ck_assert_str_ne(ea, ea2);
	replay_expect(h, "a", ea2, 0, 0, 0, 0);
	replay_expect(h, "a", ea2, 1, 0, 0, 0);
	hist_free(h);

	/* the longest node epoch still leaves room for the generation */
	ck_assert_ptr_nonnull(h = hist_new(BIG, 4, node24));
	for (i = 0; i < 2000; i++) {
		char	 ch[16];

		snprintf(ch, sizeof(ch), "c%d", i);
		epoch_of(h, ch, ea);
		check_epoch_form(ea, node24);
		if (i > 0)
			ck_assert_str_ne(ea, eb);
		strcpy(eb, ea);
	}
	hist_reset(h, node24);
	epoch_of(h, "c0", ea);
	check_epoch_form(ea, node24);
	hist_free(h);
}
END_TEST

/* ---- replay --------------------------------------------------------------- */

START_TEST(test_replay_basic)
{
	struct hist	*h;
	struct hist_pos	 pos;
	struct got	 g = { 0 };
	char		 e[HIST_EPOCH_MAX + 1], eb[HIST_EPOCH_MAX + 1];
	int		 i;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	for (i = 0; i < 5; i++)
		pub(h, "a", 10, 0, 0);
	pub(h, "b", 10, 0, 0);
	epoch_of(h, "a", e);
	epoch_of(h, "b", eb);
	/* since == newest: 1, nothing emitted, the position is the newest */
	ck_assert_int_eq(hist_replay(h, S("a"), e, 5, 0, 0, &pos, got_emit, &g), 1);
	ck_assert_int_eq(g.n, 0);
	ck_assert_uint_eq(pos.hp_offset, 5);
	ck_assert_str_eq(pos.hp_epoch, e);
	/* in range: exactly since+1 .. newest, in order */
	for (i = 0; i <= 5; i++)
		replay_expect(h, "a", e, (uint64_t)i, 0, 0, 1);
	/* emit NULL: still the answer */
	ck_assert_int_eq(hist_replay(h, S("a"), e, 2, 0, 0, &pos, NULL, NULL), 1);
	ck_assert_uint_eq(pos.hp_offset, 5);
	/* another epoch: 0, with the current position */
	ck_assert_int_eq(hist_replay(h, S("a"), eb, 2, 0, 0, &pos, got_emit, &g), 0);
	ck_assert_int_eq(g.n, 0);
	ck_assert_uint_eq(pos.hp_offset, 5);
	ck_assert_str_eq(pos.hp_epoch, e);
	replay_expect(h, "a", "n", 2, 0, 0, 0);
	replay_expect(h, "a", "", 0, 0, 0, 0);
	replay_expect(h, "a", "-", 5, 0, 0, 0);
	/* in the future: 0 */
	ck_assert_int_eq(hist_replay(h, S("a"), e, 6, 0, 0, &pos, got_emit, &g), 0);
	ck_assert_int_eq(g.n, 0);
	ck_assert_uint_eq(pos.hp_offset, 5);
	replay_expect(h, "a", e, UINT64_MAX, 0, 0, 0);
	/* the other channel's frames are its own */
	replay_expect(h, "b", eb, 0, 0, 0, 1);
	/* a replay takes nothing away */
	replay_expect(h, "a", e, 0, 0, 0, 1);
	ck_assert_int_eq(stats(h).hs_events, 6);
	hist_free(h);
}
END_TEST

START_TEST(test_replay_evicted_by_count)
{
	struct hist	*h;
	char		 e[HIST_EPOCH_MAX + 1];
	int		 i;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	for (i = 0; i < 5; i++)
		pub(h, "a", 3, 0, 0);
	epoch_of(h, "a", e);
	/* 3, 4, 5 kept */
	ck_assert_int_eq(stats(h).hs_events, 3);
	ck_assert_uint_eq(stats(h).hs_evicted, 2);
	replay_expect(h, "a", e, 0, 0, 0, 0);
	replay_expect(h, "a", e, 1, 0, 0, 0);
	replay_expect(h, "a", e, 2, 0, 0, 1);	/* the boundary: 3 .. 5 */
	replay_expect(h, "a", e, 3, 0, 0, 1);
	replay_expect(h, "a", e, 4, 0, 0, 1);
	replay_expect(h, "a", e, 5, 0, 0, 1);
	/* keep 1 */
	for (i = 0; i < 4; i++)
		pub(h, "b", 1, 0, 0);
	epoch_of(h, "b", e);
	ck_assert_int_eq(stats(h).hs_events, 4);
	replay_expect(h, "b", e, 2, 0, 0, 0);
	replay_expect(h, "b", e, 3, 0, 0, 1);
	replay_expect(h, "b", e, 4, 0, 0, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_replay_ttl)
{
	struct hist	*h;
	char		 e[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	pub(h, "a", 10, 1500, 1000);
	pub(h, "a", 10, 1500, 2000);
	epoch_of(h, "a", e);
	replay_expect(h, "a", e, 0, 1500, 2000, 1);
	replay_expect(h, "a", e, 0, 1500, 2500, 1);	/* exactly ttl old: kept */
	replay_expect(h, "a", e, 0, 1500, 2501, 0);	/* 1 expired */
	replay_expect(h, "a", e, 1, 1500, 2501, 1);
	replay_expect(h, "a", e, 1, 1500, 3500, 1);
	replay_expect(h, "a", e, 1, 1500, 3501, 0);	/* 2 expired */
	replay_expect(h, "a", e, 2, 1500, 3501, 1);	/* since the newest: nothing to miss */
	ck_assert_int_eq(stats(h).hs_events, 0);
	ck_assert_uint_eq(stats(h).hs_evicted, 2);
	/* ttl 0: no age limit */
	pub(h, "b", 10, 0, 0);
	epoch_of(h, "b", e);
	replay_expect(h, "b", e, 0, 0, (uint64_t)1 << 50, 1);
	/* an append drops the channel's expired frames */
	pub(h, "c", 10, 100, 0);
	pub(h, "c", 10, 100, 50);
	ck_assert_int_eq(stats(h).hs_events, 3);
	pub(h, "c", 10, 100, 120);		/* 1 is 120 old */
	ck_assert_int_eq(stats(h).hs_events, 3);
	epoch_of(h, "c", e);
	replay_expect(h, "c", e, 0, 100, 120, 0);
	replay_expect(h, "c", e, 1, 100, 120, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_memory_budget_oldest_first)
{
	struct hist	*h;
	struct hist_stats st;
	char		 ea[HIST_EPOCH_MAX + 1], eb[HIST_EPOCH_MAX + 1];
	int64_t		 recs, d, limit;

	/* records of a and b, and the cost of a frame like pub()'s */
	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	epoch_of(h, "a", ea);
	epoch_of(h, "b", eb);
	recs = stats(h).hs_memory;
	pub(h, "a", 100, 0, 0);
	d = stats(h).hs_memory - recs;
	ck_assert_int_gt(d, (int64_t)strlen("a#1"));
	hist_free(h);

	/* room for the records and 3 frames */
	limit = recs + 3 * d;
	ck_assert_ptr_nonnull(h = hist_new(limit, 100, "n"));
	epoch_of(h, "a", ea);
	epoch_of(h, "b", eb);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	pub(h, "a", 100, 0, 0);		/* a1 */
	pub(h, "b", 100, 0, 0);		/* b1 */
	pub(h, "a", 100, 0, 0);		/* a2 */
	st = stats(h);
	ck_assert_int_eq(st.hs_memory, limit);
	ck_assert_int_eq(st.hs_events, 3);
	ck_assert_uint_eq(st.hs_evicted, 0);
	pub(h, "b", 100, 0, 0);		/* b2: a1 goes */
	st = stats(h);
	ck_assert_int_le(st.hs_memory, limit);
	ck_assert_int_eq(st.hs_events, 3);
	ck_assert_uint_eq(st.hs_evicted, 1);
	replay_expect(h, "a", ea, 0, 0, 0, 0);
	replay_expect(h, "a", ea, 1, 0, 0, 1);
	replay_expect(h, "b", eb, 0, 0, 0, 1);
	pub(h, "a", 100, 0, 0);		/* a3: b1 goes */
	st = stats(h);
	ck_assert_int_le(st.hs_memory, limit);
	ck_assert_int_eq(st.hs_events, 3);
	ck_assert_uint_eq(st.hs_evicted, 2);
	replay_expect(h, "b", eb, 0, 0, 0, 0);
	replay_expect(h, "b", eb, 1, 0, 0, 1);
	replay_expect(h, "a", ea, 1, 0, 0, 1);	/* a2, a3 */
	pub(h, "a", 100, 0, 0);		/* a4: a2 goes */
	pub(h, "a", 100, 0, 0);		/* a5: b2 goes */
	st = stats(h);
	ck_assert_int_le(st.hs_memory, limit);
	ck_assert_int_eq(st.hs_events, 3);
	ck_assert_uint_eq(st.hs_evicted, 4);
	replay_expect(h, "a", ea, 1, 0, 0, 0);
	replay_expect(h, "a", ea, 2, 0, 0, 1);
	replay_expect(h, "b", eb, 1, 0, 0, 0);
	replay_expect(h, "b", eb, 2, 0, 0, 1);	/* nothing missed */
	hist_free(h);
}
END_TEST

START_TEST(test_frame_larger_than_budget)
{
	struct hist	*h;
	struct hist_stats st;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1], *big;
	int64_t		 limit = 64 * 1024;

	ck_assert_ptr_nonnull(h = hist_new(limit, 100, "n"));
	pub(h, "a", 100, 0, 0);
	pub(h, "a", 100, 0, 0);
	pub(h, "b", 100, 0, 0);
	epoch_of(h, "a", e);
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 3);
	/* a3: more than the whole budget */
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 3);
	ck_assert_ptr_nonnull(big = malloc((size_t)limit));
	memset(big, 'B', (size_t)limit);
	hist_append(h, S("a"), 3, "a", 1, big, (size_t)limit, 100, 0, 0);
	free(big);
	st = stats(h);
	ck_assert_int_le(st.hs_memory, limit);
	ck_assert_int_eq(st.hs_events, 1);		/* b1 only */
	ck_assert_uint_eq(st.hs_evicted, 3);		/* a1, a2, a3 */
	/* from before it: 0; from it: 1, nothing to send */
	replay_expect(h, "a", e, 0, 0, 0, 0);
	replay_expect(h, "a", e, 1, 0, 0, 0);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 3, 0, 0, 1);
	/* the other channel is untouched */
	epoch_of(h, "b", e);
	replay_expect(h, "b", e, 0, 0, 0, 1);
	/* the next event is kept again */
	epoch_of(h, "a", e);
	ck_assert_uint_eq(pub(h, "a", 100, 0, 0), 4);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 3, 0, 0, 1);
	hist_free(h);
}
END_TEST

/* hist_next twice, only the second appended: nothing replays across the hole. */
START_TEST(test_hole_positioned_not_appended)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);	/* 1: never appended */
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 2);
	hist_append(h, S("a"), 2, "a", 1, "#2", 2, 10, 0, 0);
	strcpy(e, pos.hp_epoch);
	replay_expect(h, "a", e, 0, 0, 0, 0);
	replay_expect(h, "a", e, 1, 0, 0, 1);
	replay_expect(h, "a", e, 2, 0, 0, 1);
	/* kept frames, then a hole, then a kept frame */
	pub(h, "a", 10, 0, 0);					/* 3 */
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);	/* 4: never appended */
	ck_assert_uint_eq(pub(h, "a", 10, 0, 0), 5);
	replay_expect(h, "a", e, 1, 0, 0, 0);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 3, 0, 0, 0);
	replay_expect(h, "a", e, 4, 0, 0, 1);
	/* an append of an offset not the newest is not kept */
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);	/* 6 */
	hist_append(h, S("a"), 5, "a", 1, "#5", 2, 10, 0, 0);
	hist_append(h, S("a"), 7, "a", 1, "#7", 2, 10, 0, 0);
	hist_append(h, S("a"), 6, "a", 1, "#6", 2, 10, 0, 0);
	replay_expect(h, "a", e, 4, 0, 0, 1);			/* 5, 6 */
	/* an append on a channel without a record is ignored */
	hist_append(h, S("none"), 1, "none", 4, "#1", 2, 10, 0, 0);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	ck_assert_int_eq(stats(h).hs_events, 2);
	hist_free(h);
}
END_TEST

/*
 * The newest event was positioned but (not yet, or never) appended: a
 * replay from before it must not answer 1 with the frames up to the one
 * before (a client would miss the newest).
 */
START_TEST(test_hole_at_the_newest)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	pub(h, "a", 10, 0, 0);					/* 1 */
	pub(h, "a", 10, 0, 0);					/* 2 */
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);	/* 3: not appended */
	strcpy(e, pos.hp_epoch);
	replay_expect(h, "a", e, 3, 0, 0, 1);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 1, 0, 0, 0);
	replay_expect(h, "a", e, 0, 0, 0, 0);
	/* the same with keep <= 0 at the append (nothing kept) */
	pub(h, "b", 10, 0, 0);					/* 1 */
	ck_assert_int_eq(hist_next(h, S("b"), &pos), 0);	/* 2 */
	hist_append(h, S("b"), 2, "b", 1, "#2", 2, 0, 0, 0);
	strcpy(e, pos.hp_epoch);
	replay_expect(h, "b", e, 2, 0, 0, 1);
	replay_expect(h, "b", e, 1, 0, 0, 0);
	replay_expect(h, "b", e, 0, 0, 0, 0);
	hist_free(h);
}
END_TEST

/* ---- channel records -------------------------------------------------------- */

START_TEST(test_channel_lru)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 ea[HIST_EPOCH_MAX + 1], eb[HIST_EPOCH_MAX + 1];
	char		 eb2[HIST_EPOCH_MAX + 1], ec[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 2, "n"));
	pub(h, "a", 10, 0, 0);
	pub(h, "a", 10, 0, 0);
	pub(h, "b", 10, 0, 0);
	pub(h, "b", 10, 0, 0);
	pub(h, "b", 10, 0, 0);
	epoch_of(h, "b", eb);
	epoch_of(h, "a", ea);		/* a look is not a use: only events are */
	pub(h, "a", 10, 0, 0);		/* a is now the most recently used */
	ck_assert_int_eq(stats(h).hs_channels, 2);
	ck_assert_int_eq(stats(h).hs_events, 6);
	ck_assert_uint_eq(stats(h).hs_channels_evicted, 0);
	/* c: b (least recently published) goes, with its frames, counted */
	pub(h, "c", 10, 0, 0);
	epoch_of(h, "c", ec);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	ck_assert_int_eq(stats(h).hs_events, 4);
	ck_assert_uint_eq(stats(h).hs_evicted, 3);
	ck_assert_uint_eq(stats(h).hs_channels_evicted, 1);
	/* a is untouched */
	replay_expect(h, "a", ea, 0, 0, 0, 1);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 3);
	ck_assert_str_eq(pos.hp_epoch, ea);
	/* b made again by a subscribe: a (published before c) goes; b has
	 * offset 0 and a NEW epoch */
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 0);
	strcpy(eb2, pos.hp_epoch);
	ck_assert_str_ne(eb2, eb);
	ck_assert_str_ne(eb2, ea);
	ck_assert_str_ne(eb2, ec);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	ck_assert_uint_eq(stats(h).hs_channels_evicted, 2);
	replay_expect(h, "c", ec, 0, 0, 0, 1);	/* c, with events, stays */
	/* records made by subscribes sit at the cold end: making d pushes
	 * out b (no events), never c */
	ck_assert_int_eq(hist_position(h, S("d"), &pos), 0);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	replay_expect(h, "c", ec, 0, 0, 0, 1);
	/* the old positions of b answer 0, never b's later frames */
	pub(h, "b", 10, 0, 0);
	pub(h, "b", 10, 0, 0);
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	ck_assert_str_ne(pos.hp_epoch, eb);
	ck_assert_str_ne(pos.hp_epoch, eb2);
	ck_assert_uint_eq(pos.hp_offset, 2);
	replay_expect(h, "b", eb, 0, 0, 0, 0);
	replay_expect(h, "b", eb, 1, 0, 0, 0);
	replay_expect(h, "b", eb2, 0, 0, 0, 0);
	replay_expect(h, "b", pos.hp_epoch, 0, 0, 0, 1);
	hist_free(h);
}
END_TEST

/*
 * hist_changes() moves when a position changes without its channel's next
 * event (the workers then forget what their stream told them), and only
 * then: events and the records subscribes make leave it.
 */
static int	cpub(struct hist *, const char *, const char *, uint64_t, int, int64_t,
		    uint64_t);

START_TEST(test_changes_count)
{
	struct hist	*h;
	struct hist_pos	 pos;
	uint64_t	 n;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 2, "n"));
	n = hist_changes(h);
	pub(h, "a", 10, 0, 0);
	pub(h, "a", 10, 0, 0);
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);	/* made for a subscribe */
	ck_assert_int_eq(hist_set_node(h, S("b")), 0);
	ck_assert_uint_eq(hist_changes(h), n);
	/* c pushes a record out */
	pub(h, "c", 10, 0, 0);
	ck_assert_uint_gt(hist_changes(h), n);
	n = hist_changes(h);
	/* a cluster position set from Redis, then moved by an envelope of
	 * another epoch; its next envelope is an event */
	ck_assert_int_eq(hist_cluster_set(h, S("c"), "cE1", 5), 0);
	ck_assert_uint_gt(hist_changes(h), n);
	n = hist_changes(h);
	ck_assert_int_eq(hist_cluster_set(h, S("c"), "cE1", 5), 0);	/* where it is */
	ck_assert_uint_eq(hist_changes(h), n);
	ck_assert_int_eq(cpub(h, "c", "cE1", 6, 10, 0, 0), 0);
	ck_assert_uint_eq(hist_changes(h), n);
	ck_assert_int_eq(cpub(h, "c", "cE2", 1, 10, 0, 0), 0);
	ck_assert_uint_gt(hist_changes(h), n);
	n = hist_changes(h);
	/* a plain PUBLISH on the cluster record: node positions again */
	pub(h, "c", 10, 0, 0);
	ck_assert_uint_gt(hist_changes(h), n);
	n = hist_changes(h);
	/* a reset, even of an empty table */
	hist_reset(h, "m");
	ck_assert_uint_gt(hist_changes(h), n);
	n = hist_changes(h);
	hist_reset(h, "o");
	ck_assert_uint_gt(hist_changes(h), n);
	hist_free(h);
}
END_TEST

START_TEST(test_expire_sweep)
{
	struct hist	*h;
	struct hist_stats st;
	char		 e[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	pub(h, "a", 10, 1000, 0);
	pub(h, "b", 10, 1000, 100);
	pub(h, "a", 10, 1000, 200);
	pub(h, "b", 10, 1000, 900);
	hist_expire(h, 1000);			/* nothing over 1000 old */
	ck_assert_int_eq(stats(h).hs_events, 4);
	hist_expire(h, 1150);			/* a1, b1 */
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 2);
	ck_assert_uint_eq(st.hs_evicted, 2);
	epoch_of(h, "a", e);
	replay_expect(h, "a", e, 0, 1000, 1150, 0);
	replay_expect(h, "a", e, 1, 1000, 1150, 1);
	hist_expire(h, 1899);			/* b2 (900) stays */
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 1);
	ck_assert_uint_eq(st.hs_evicted, 3);
	epoch_of(h, "b", e);
	replay_expect(h, "b", e, 1, 1000, 1899, 1);
	hist_expire(h, 5000);
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 0);
	ck_assert_uint_eq(st.hs_evicted, 4);
	/* records stay: the positions go on */
	ck_assert_int_eq(st.hs_channels, 2);
	ck_assert_uint_eq(pub(h, "a", 10, 1000, 5000), 3);
	/* frames without an age limit are not swept */
	pub(h, "z", 10, 0, 5000);
	hist_expire(h, (uint64_t)1 << 40);
	ck_assert_int_eq(stats(h).hs_events, 1);
	/* a frame with a longer ttl behind one without: ok to stay (memory only) */
	hist_free(h);
}
END_TEST

START_TEST(test_set_limits)
{
	struct hist	*h;
	struct hist_stats st;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];
	int64_t		 limit;
	int		 i;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 10, "n"));
	for (i = 0; i < 10; i++)
		pub(h, "a", 100, 0, 0);
	pub(h, "b", 100, 0, 0);
	pub(h, "c", 100, 0, 0);
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 12);
	/* less memory: what is over goes at the next append, oldest first */
	limit = st.hs_memory / 2;
	hist_set_limits(h, limit, 10);
	ck_assert_int_eq(stats(h).hs_events, 12);
	ck_assert_uint_eq(pub(h, "c", 100, 0, 0), 2);
	st = stats(h);
	ck_assert_int_le(st.hs_memory, limit);
	ck_assert_int_lt(st.hs_events, 13);
	ck_assert_int_gt(st.hs_events, 0);
	ck_assert_uint_eq(st.hs_evicted, (uint64_t)(13 - st.hs_events));
	epoch_of(h, "a", e);
	replay_expect(h, "a", e, 0, 0, 0, 0);
	replay_expect(h, "a", e, 10, 0, 0, 1);
	epoch_of(h, "c", e);
	replay_expect(h, "c", e, 1, 0, 0, 1);		/* the newest stays */
	/* fewer channels: the least recently used go when a record is made */
	hist_set_limits(h, BIG, 1);
	ck_assert_int_eq(stats(h).hs_channels, 1);	/* at once */
	pub(h, "d", 100, 0, 0);
	st = stats(h);
	ck_assert_int_eq(st.hs_channels, 1);
	ck_assert_int_eq(st.hs_events, 1);
	ck_assert_int_eq(hist_position(h, S("d"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 1);
	/* 0 or less: one record */
	hist_set_limits(h, BIG, 0);
	pub(h, "e", 100, 0, 0);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	epoch_of(h, "e", e);
	replay_expect(h, "e", e, 0, 0, 0, 1);
	hist_set_limits(h, BIG, -5);
	pub(h, "e", 100, 0, 0);
	replay_expect(h, "e", e, 0, 0, 0, 1);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	/* more: records are kept again */
	hist_set_limits(h, BIG, 3);
	pub(h, "f", 100, 0, 0);
	pub(h, "g", 100, 0, 0);
	ck_assert_int_eq(stats(h).hs_channels, 3);
	replay_expect(h, "e", e, 0, 0, 0, 1);
	hist_free(h);
}
END_TEST

/* history.h: "frames over them go at the next append or sweep" */
START_TEST(test_set_limits_then_sweep)
{
	struct hist	*h;
	int64_t		 limit;
	int		 i;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 10, "n"));
	for (i = 0; i < 10; i++)
		pub(h, "a", 100, 0, 0);
	limit = stats(h).hs_memory / 2;
	hist_set_limits(h, limit, 10);
	hist_expire(h, 0);
	ck_assert_int_le(stats(h).hs_memory, limit);
	ck_assert_int_lt(stats(h).hs_events, 10);
	hist_free(h);
}
END_TEST

START_TEST(test_stats_consistent)
{
	struct hist	*h;
	struct hist_stats st;
	struct hist_pos	 pos;
	int64_t		 recs;
	int		 i;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	st = stats(h);
	ck_assert_int_eq(st.hs_memory, 0);
	ck_assert_int_eq(st.hs_events, 0);
	ck_assert_int_eq(st.hs_channels, 0);
	ck_assert_uint_eq(st.hs_evicted, 0);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	recs = stats(h).hs_memory;
	ck_assert_int_gt(recs, 0);
	for (i = 0; i < 7; i++)
		pub(h, i % 2 ? "a" : "b", 3, 0, 0);
	st = stats(h);
	ck_assert_int_eq(st.hs_channels, 2);
	ck_assert_int_eq(st.hs_events, 6);		/* 3 each */
	ck_assert_uint_eq(st.hs_evicted, 1);		/* b1 */
	ck_assert_int_gt(st.hs_memory, recs);
	/* what a replay sends is what is held */
	{
		struct got	 g = { 0 };

		char		 e[HIST_EPOCH_MAX + 1];

		epoch_of(h, "b", e);
		ck_assert_int_eq(hist_replay(h, S("a"), e, 0, 0, 0, &pos, NULL, NULL), 0);
		epoch_of(h, "a", e);
		ck_assert_int_eq(hist_replay(h, S("a"), e, 0, 0, 0, &pos, got_emit, &g), 1);
		ck_assert_int_eq(g.n, 3);
		got_clear(&g);
		epoch_of(h, "b", e);
		ck_assert_int_eq(hist_replay(h, S("b"), e, 1, 0, 0, &pos, got_emit, &g), 1);
		ck_assert_int_eq(g.n, 3);
		got_clear(&g);
	}
	/* frames gone: back to the records' memory */
	hist_expire(h, 0);
	hist_set_limits(h, recs, 100);
	pub(h, "a", 3, 0, 0);
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 0);
	ck_assert_int_eq(st.hs_memory, recs);
	ck_assert_uint_eq(st.hs_evicted, 1 + 6 + 1);
	hist_reset(h, "m");
	st = stats(h);
	ck_assert_int_eq(st.hs_memory, 0);
	ck_assert_int_eq(st.hs_channels, 0);
	ck_assert_int_eq(st.hs_events, 0);
	hist_free(h);
	hist_free(NULL);
}
END_TEST

/* ---- randomized, against a model ------------------------------------------ */

#define M_NCH		24
#define M_KEEPMAX	8
#define M_EPOCHS	4096

struct m_chan {
	int		 present;
	char		 epoch[HIST_EPOCH_MAX + 1];
	uint64_t	 last;
	int64_t		 used;			/* LRU tick; below 0: made cold */
	int		 keep;
	uint64_t	 top;			/* the newest kept frame's offset */
	int		 n;			/* kept frames: top-n+1 .. top */
	uint64_t	 at[M_KEEPMAX];		/* at[i]: of offset top-n+1+i */
	int		 nold;			/* epochs this channel had before */
	char		 old[8][HIST_EPOCH_MAX + 1];
};

struct model {
	struct hist	*h;
	struct m_chan	 ch[M_NCH];
	int		 nrec, maxrec;
	int64_t		 tick, cold;
	uint64_t	 now;
	int64_t		 ttl;
	int		 exact;			/* memory never short */
	int64_t		 limit;
	int		 nepochs;
	char		 (*epochs)[HIST_EPOCH_MAX + 1];
	char		 node[16];
	unsigned	 seed, seed0;
	int		 step;
};

static unsigned
m_rand(struct model *m)
{
	m->seed = m->seed * 1103515245u + 12345u;
	return (m->seed >> 16) & 0x7fff;
}

static void
m_name(char *out, int i)
{
	snprintf(out, 16, "ch:%d", i);
}

/* The frame of (ch, epoch, off): its bytes name them, its length varies. */
static size_t
m_frame(char *out, size_t outlen, int i, const char *epoch, uint64_t off)
{
	int	 n, pad = (int)((off * 37 + (uint64_t)i * 11) % 300);

	n = snprintf(out, outlen, "F|%d|%s|%llu|", i, epoch, (unsigned long long)off);
	memset(out + n, 'a' + (int)(off % 26), (size_t)pad);
	out[n + pad] = '\0';
	return (size_t)n + pad;
}

/*
 * c's record in the model, made as hist would (the LRU one going): an
 * event makes it the most recently used, a look (position, replay) does
 * not, and a record a look makes goes in at the cold end.
 */
static void
m_touch(struct model *m, int i, const struct hist_pos *pos, int event)
{
	struct m_chan	*c = &m->ch[i];
	int		 j, lru;

	if (!c->present) {
		while (m->nrec >= m->maxrec) {
			lru = -1;
			for (j = 0; j < M_NCH; j++)
				if (m->ch[j].present && (lru == -1 ||
				    m->ch[j].used < m->ch[lru].used))
					lru = j;
			ck_assert_int_ge(lru, 0);
			m->ch[lru].present = 0;
			m->nrec--;
		}
		c->present = 1;
		c->last = 0;
		c->top = 0;
		c->n = 0;
		m->nrec++;
		/* a new record: an epoch never seen before */
		check_epoch_form(pos->hp_epoch, m->node);
		for (j = 0; j < m->nepochs; j++)
			ck_assert_msg(strcmp(m->epochs[j], pos->hp_epoch) != 0,
			    "epoch %s given twice", pos->hp_epoch);
		ck_assert_int_lt(m->nepochs, M_EPOCHS);
		strcpy(m->epochs[m->nepochs++], pos->hp_epoch);
		strcpy(c->epoch, pos->hp_epoch);
		if (c->nold < 8)
			strcpy(c->old[c->nold++], pos->hp_epoch);
		c->used = --m->cold;
	}
	if (event)
		c->used = ++m->tick;
	ck_assert_str_eq(pos->hp_epoch, c->epoch);
}

/* Frames of c not older than ttl at now: from offset *first. */
static int
m_live(const struct model *m, const struct m_chan *c, uint64_t *first)
{
	int	 i;

	for (i = 0; i < c->n; i++)
		if (m->ttl <= 0 || m->now - c->at[i] <= (uint64_t)m->ttl)
			break;
	*first = c->top - (uint64_t)c->n + 1 + (uint64_t)i;
	return c->n - i;
}

static void
m_publish(struct model *m, int i)
{
	struct m_chan	*c = &m->ch[i];
	struct hist_pos	 pos;
	char		 name[16], f[512];
	size_t		 len, hlen;
	uint64_t	 want;

	m_name(name, i);
	want = c->present ? c->last + 1 : 1;
	ck_assert_int_eq(hist_next(m->h, S(name), &pos), 0);
	m_touch(m, i, &pos, 1);
	ck_assert_uint_eq(pos.hp_offset, want);
	c->last = want;
	if (m_rand(m) % 20 == 0)
		return;		/* positioned, never kept: a hole */
	len = m_frame(f, sizeof(f), i, pos.hp_epoch, pos.hp_offset);
	hlen = m_rand(m) % (len + 1);
	hist_append(m->h, S(name), pos.hp_offset, f, hlen, f + hlen, len - hlen,
	    c->keep, m->ttl, m->now);
	if (c->n > 0 && c->top + 1 != want)
		c->n = 0;	/* nothing before a hole can be replayed */
	if (c->n == c->keep) {
		memmove(c->at, c->at + 1, sizeof(c->at[0]) * (size_t)(c->n - 1));
		c->n--;
	}
	c->at[c->n++] = m->now;
	c->top = want;
	if (!m->exact)
		ck_assert_int_le(stats(m->h).hs_memory, m->limit);
}

static void
m_position(struct model *m, int i)
{
	struct hist_pos	 pos;
	char		 name[16];

	m_name(name, i);
	ck_assert_int_eq(hist_position(m->h, S(name), &pos), 0);
	m_touch(m, i, &pos, 0);
	ck_assert_uint_eq(pos.hp_offset, m->ch[i].last);
}

static void
m_replay(struct model *m, int i)
{
	struct m_chan	*c = &m->ch[i];
	struct hist_pos	 pos;
	struct got	 g = { 0 };
	char		 name[16], epoch[HIST_EPOCH_MAX + 1], f[512];
	uint64_t	 since, first = 0, o;
	int		 want, rv, k, r = (int)(m_rand(m) % 10);

	m_name(name, i);
	/* the current epoch mostly, else an old one or a stranger */
	if (c->present && r < 7)
		strcpy(epoch, c->epoch);
	else if (c->nold > 0 && r < 9)
		strcpy(epoch, c->old[m_rand(m) % (unsigned)c->nold]);
	else
		snprintf(epoch, sizeof(epoch), "%s-Q%u", m->node, m_rand(m) % 5);
	since = c->present ? (uint64_t)(m_rand(m) % (unsigned)(c->last + 3)) : m_rand(m) % 3;
	if (c->present && since > 0 && m_rand(m) % 3 == 0)
		since = c->last - (since % (c->last + 1));
	/* the model's answer */
	if (!c->present || strcmp(epoch, c->epoch) != 0 || since > c->last)
		want = 0;
	else if (since == c->last)
		want = 1;
	else
		/* the newest must be held, and all back to since + 1 */
		want = m_live(m, c, &first) > 0 && c->top == c->last &&
		    first <= since + 1;
	rv = hist_replay(m->h, S(name), epoch, since, m->ttl, m->now, &pos, got_emit, &g);
	m_touch(m, i, &pos, 0);
	ck_assert_uint_eq(pos.hp_offset, c->last);
	if (m->exact)
		ck_assert_msg(rv == want, "seed %u step %d: replay %s since %s/%llu (newest "
		    "%llu, %d kept from %llu to %llu): got %d, want %d", m->seed0, m->step,
		    name, epoch,
		    (unsigned long long)since, (unsigned long long)c->last, c->n,
		    (unsigned long long)first, (unsigned long long)c->top, rv, want);
	else	/* memory may be short: never a replay the model would refuse */
		ck_assert_msg(rv == 0 || want == 1, "seed %u step %d: replay %s since %s/%llu "
		    "(newest %llu, %d kept to %llu): got %d, want %d", m->seed0, m->step,
		    name, epoch,
		    (unsigned long long)since, (unsigned long long)c->last, c->n,
		    (unsigned long long)c->top, rv, want);
	if (rv == 1) {
		ck_assert_uint_eq((uint64_t)g.n, c->last - since);
		for (k = 0, o = since + 1; k < g.n; k++, o++) {
			size_t	 len = m_frame(f, sizeof(f), i, c->epoch, o);

			ck_assert_uint_eq(g.off[k], o);
			ck_assert_uint_eq(g.len[k], len);
			ck_assert_msg(memcmp(g.frame[k], f, len) == 0, "frame %s/%llu",
			    name, (unsigned long long)o);
		}
	} else
		ck_assert_int_eq(g.n, 0);
	got_clear(&g);
}

static void
m_check_stats(struct model *m, int swept)
{
	struct hist_stats st;
	uint64_t	 first;
	int64_t		 live = 0, held = 0;
	int		 i;

	hist_stats(m->h, &st);
	ck_assert_int_eq(st.hs_channels, m->nrec);
	for (i = 0; i < M_NCH; i++)
		if (m->ch[i].present) {
			live += m_live(m, &m->ch[i], &first);
			held += m->ch[i].n;
		}
	if (m->exact) {
		/* expired frames may wait for the sweep */
		ck_assert_int_ge(st.hs_events, live);
		ck_assert_int_le(st.hs_events, held);
		if (swept)
			ck_assert_int_eq(st.hs_events, live);
	} else
		ck_assert_int_le(st.hs_events, held);
}

static void
m_run(unsigned seed, int64_t ttl, int64_t limit, int maxrec, int steps)
{
	struct model	*m;
	int		 step, i, r;

	ck_assert_ptr_nonnull(m = calloc(1, sizeof(*m)));
	ck_assert_ptr_nonnull(m->epochs = calloc(M_EPOCHS, sizeof(*m->epochs)));
	m->seed = m->seed0 = seed;
	m->ttl = ttl;
	m->limit = limit;
	m->exact = limit >= BIG;
	m->maxrec = maxrec;
	m->now = 1000;
	strcpy(m->node, "N0");
	for (i = 0; i < M_NCH; i++)
		m->ch[i].keep = 1 + (int)(m_rand(m) % M_KEEPMAX);
	ck_assert_ptr_nonnull(m->h = hist_new(limit, maxrec, m->node));
	for (step = 0; step < steps; step++) {
		m->step = step;
		/* a few channels busy, the rest now and then */
		i = m_rand(m) % 4 ? (int)(m_rand(m) % 6) : (int)(m_rand(m) % M_NCH);
		r = (int)(m_rand(m) % 1000);
		m->now += m_rand(m) % 4 == 0 ? m_rand(m) % 200 : 0;
		if (r < 520)
			m_publish(m, i);
		else if (r < 620)
			m_position(m, i);
		else if (r < 980)
			m_replay(m, i);
		else if (r < 997) {
			hist_expire(m->h, m->now);
			m_check_stats(m, 1);
			continue;
		} else {
			snprintf(m->node, sizeof(m->node), "N%d", step);
			hist_reset(m->h, m->node);
			for (i = 0; i < M_NCH; i++)
				m->ch[i].present = 0;
			m->nrec = 0;
		}
		m_check_stats(m, 0);
	}
	hist_free(m->h);
	free(m->epochs);
	free(m);
}

START_TEST(test_random_model_exact)
{
	m_run(12345, 0, BIG, 10, 6000);		/* no age limit */
	m_run(777, 2000, BIG, 16, 6000);	/* with one */
	m_run(4242, 500, BIG, M_NCH, 6000);	/* every record fits */
}
END_TEST

START_TEST(test_random_model_memory)
{
	m_run(99, 0, 6000, 12, 6000);
	m_run(31337, 3000, 12000, 20, 6000);
}
END_TEST

/* ---- cluster records ---------------------------------------------------------- */

/*
 * An envelope's event off under epoch on ch (hist_cluster_next()), kept
 * (keep, ttl) at now with pub()'s frame "<ch>#<off>" when new: the rv.
 */
static int
cpub(struct hist *h, const char *ch, const char *epoch, uint64_t off, int keep,
    int64_t ttl, uint64_t now)
{
	struct hist_pos	 pos;
	char		 body[32];
	int		 rv;

	rv = hist_cluster_next(h, S(ch), epoch, off, &pos);
	ck_assert_msg(rv == 0 || rv == 1, "hist_cluster_next %s %s/%llu: %d", ch, epoch,
	    (unsigned long long)off, rv);
	if (rv == 0) {
		ck_assert_str_eq(pos.hp_epoch, epoch);
		ck_assert_uint_eq(pos.hp_offset, off);
		snprintf(body, sizeof(body), "#%llu", (unsigned long long)off);
		hist_append(h, S(ch), off, ch, strlen(ch), body, strlen(body), keep, ttl, now);
	}
	return rv;
}

/* ch's current position is (epoch, off). */
static void
pos_expect(struct hist *h, const char *ch, const char *epoch, uint64_t off)
{
	struct hist_pos	 pos;

	ck_assert_int_eq(hist_position(h, S(ch), &pos), 0);
	ck_assert_str_eq(pos.hp_epoch, epoch);
	ck_assert_uint_eq(pos.hp_offset, off);
}

START_TEST(test_cluster_contiguous)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];
	const char	*e32 = "c0123456789ABCDEFGHIJKLMNOPQRSTu";	/* HIST_EPOCH_MAX */
	uint64_t	 o;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	/* the first envelope places the record where Redis is: offset 5 */
	ck_assert_int_eq(cpub(h, "a", "cE1", 5, 10, 0, 0), 0);
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_CLUSTER);
	ck_assert_int_eq(cpub(h, "a", "cE1", 6, 10, 0, 0), 0);
	ck_assert_int_eq(cpub(h, "a", "cE1", 7, 10, 0, 0), 0);
	pos_expect(h, "a", "cE1", 7);
	ck_assert_int_eq(stats(h).hs_events, 3);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	/* every frame after since is held: 1, exactly those, in order */
	for (o = 4; o <= 7; o++)
		replay_expect(h, "a", "cE1", o, 0, 0, 1);
	/* from before the oldest held: 2 (Redis may hold them), nothing emitted */
	replay_expect(h, "a", "cE1", 3, 0, 0, 2);
	replay_expect(h, "a", "cE1", 0, 0, 0, 2);
	ck_assert_int_eq(hist_replay(h, S("a"), "cE1", 1, 0, 0, &pos, NULL, NULL), 2);
	ck_assert_str_eq(pos.hp_epoch, "cE1");
	ck_assert_uint_eq(pos.hp_offset, 7);
	/* in the future, another epoch, a node epoch: 0 */
	replay_expect(h, "a", "cE1", 8, 0, 0, 0);
	replay_expect(h, "a", "cE1", UINT64_MAX, 0, 0, 0);
	replay_expect(h, "a", "cE2", 5, 0, 0, 0);
	replay_expect(h, "a", "cE", 5, 0, 0, 0);
	replay_expect(h, "a", "cE1x", 5, 0, 0, 0);
	replay_expect(h, "a", "", 5, 0, 0, 0);
	replay_expect(h, "a", "n-1", 5, 0, 0, 0);
	/* a replay takes nothing away */
	ck_assert_int_eq(stats(h).hs_events, 3);
	/* kept by count as node frames are */
	for (o = 8; o <= 20; o++)
		ck_assert_int_eq(cpub(h, "a", "cE1", o, 10, 0, 0), 0);
	ck_assert_int_eq(stats(h).hs_events, 10);
	replay_expect(h, "a", "cE1", 10, 0, 0, 1);	/* 11 .. 20 */
	replay_expect(h, "a", "cE1", 9, 0, 0, 2);
	/* and by age: expired frames are Redis's to give (2) */
	ck_assert_int_eq(cpub(h, "t", "cT", 1, 10, 100, 1000), 0);
	ck_assert_int_eq(cpub(h, "t", "cT", 2, 10, 100, 1050), 0);
	replay_expect(h, "t", "cT", 0, 100, 1100, 1);
	replay_expect(h, "t", "cT", 0, 100, 1101, 2);
	replay_expect(h, "t", "cT", 1, 100, 1101, 1);
	replay_expect(h, "t", "cT", 1, 100, 1151, 2);
	replay_expect(h, "t", "cT", 2, 100, 1151, 1);	/* the newest: nothing missed */
	/* the other channels are their own */
	ck_assert_int_eq(cpub(h, "b", "cE1", 1, 10, 0, 0), 0);
	pos_expect(h, "b", "cE1", 1);
	pos_expect(h, "a", "cE1", 20);
	replay_expect(h, "b", "cE1", 0, 0, 0, 1);
	/* the longest epoch, whole */
	ck_assert_uint_eq(strlen(e32), HIST_EPOCH_MAX);
	ck_assert_int_eq(cpub(h, "l", e32, 3, 10, 0, 0), 0);
	epoch_of(h, "l", e);
	ck_assert_str_eq(e, e32);
	replay_expect(h, "l", e32, 2, 0, 0, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_duplicate)
{
	struct hist	*h;
	struct hist_pos	 pos;
	struct hist_stats st;
	uint64_t	 o;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	for (o = 1; o <= 3; o++)
		ck_assert_int_eq(cpub(h, "a", "cE1", o, 10, 0, 0), 0);
	st = stats(h);
	/* the same epoch, not past the newest: 1 (not new), nothing changes */
	for (o = 0; o <= 3; o++) {
		ck_assert_int_eq(hist_cluster_next(h, S("a"), "cE1", o, &pos), 1);
		pos_expect(h, "a", "cE1", 3);
	}
	ck_assert_int_eq(hist_cluster_next(h, S("a"), "cE1", 2, &pos), 1);
	ck_assert_int_eq(stats(h).hs_events, st.hs_events);
	ck_assert_int_eq(stats(h).hs_memory, st.hs_memory);
	ck_assert_uint_eq(stats(h).hs_evicted, st.hs_evicted);
	replay_expect(h, "a", "cE1", 0, 0, 0, 1);
	/* an append of an offset not the newest is not kept */
	hist_append(h, S("a"), 2, "a", 1, "#2", 2, 10, 0, 0);
	ck_assert_int_eq(stats(h).hs_events, 3);
	replay_expect(h, "a", "cE1", 0, 0, 0, 1);
	/* the next one continues */
	ck_assert_int_eq(cpub(h, "a", "cE1", 4, 10, 0, 0), 0);
	replay_expect(h, "a", "cE1", 0, 0, 0, 1);
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_CLUSTER);
	/* the same offset on another channel, or under another epoch, is new */
	ck_assert_int_eq(cpub(h, "b", "cE1", 4, 10, 0, 0), 0);
	ck_assert_int_eq(cpub(h, "b", "cE1", 4, 10, 0, 0), 1);
	ck_assert_int_eq(cpub(h, "b", "cE2", 4, 10, 0, 0), 0);
	pos_expect(h, "b", "cE2", 4);
	pos_expect(h, "a", "cE1", 4);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_gap)
{
	struct hist	*h;
	struct hist_pos	 pos;
	uint64_t	 o;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	for (o = 1; o <= 3; o++)
		ck_assert_int_eq(cpub(h, "a", "cE1", o, 10, 0, 0), 0);
	/* 4 and 5 never heard: 6 is taken, the frames before the gap go */
	ck_assert_int_eq(cpub(h, "a", "cE1", 6, 10, 0, 0), 0);
	pos_expect(h, "a", "cE1", 6);
	ck_assert_int_eq(stats(h).hs_events, 1);
	ck_assert_uint_eq(stats(h).hs_evicted, 3);
	replay_expect(h, "a", "cE1", 6, 0, 0, 1);
	replay_expect(h, "a", "cE1", 5, 0, 0, 1);
	replay_expect(h, "a", "cE1", 4, 0, 0, 2);
	replay_expect(h, "a", "cE1", 3, 0, 0, 2);
	replay_expect(h, "a", "cE1", 1, 0, 0, 2);
	replay_expect(h, "a", "cE1", 0, 0, 0, 2);
	ck_assert_int_eq(cpub(h, "a", "cE1", 7, 10, 0, 0), 0);
	replay_expect(h, "a", "cE1", 5, 0, 0, 1);	/* 6, 7 */
	replay_expect(h, "a", "cE1", 4, 0, 0, 2);
	/* a gap not (yet) appended: the frames stay, but a replay across it is 2 */
	ck_assert_int_eq(hist_cluster_next(h, S("a"), "cE1", 9, &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 9);
	ck_assert_int_eq(stats(h).hs_events, 2);
	replay_expect(h, "a", "cE1", 9, 0, 0, 1);
	replay_expect(h, "a", "cE1", 8, 0, 0, 2);
	replay_expect(h, "a", "cE1", 7, 0, 0, 2);
	replay_expect(h, "a", "cE1", 5, 0, 0, 2);
	/* the next appended: what came before can no longer be replayed whole */
	ck_assert_int_eq(cpub(h, "a", "cE1", 10, 10, 0, 0), 0);
	ck_assert_int_eq(stats(h).hs_events, 1);
	replay_expect(h, "a", "cE1", 9, 0, 0, 1);
	replay_expect(h, "a", "cE1", 8, 0, 0, 2);
	/* a gap of one, appended with keep <= 0: nothing kept, 2 from before */
	ck_assert_int_eq(cpub(h, "a", "cE1", 12, 0, 0, 0), 0);
	replay_expect(h, "a", "cE1", 12, 0, 0, 1);
	replay_expect(h, "a", "cE1", 11, 0, 0, 2);
	replay_expect(h, "a", "cE1", 9, 0, 0, 2);
	hist_free(h);
}
END_TEST

/*
 * hist_hole(): an event dropped (over max_event_size) takes its offset;
 * the frames before it go, the change is counted, and the next event
 * carries on after it.
 */
START_TEST(test_hole_of_an_event_not_kept)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];
	uint64_t	 changes;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	pub(h, "a", 10, 0, 0);					/* 1 */
	pub(h, "a", 10, 0, 0);					/* 2 */
	changes = hist_changes(h);
	ck_assert_int_eq(hist_hole(h, S("a"), NULL, 0), 0);	/* 3 */
	ck_assert_uint_gt(hist_changes(h), changes);
	ck_assert_int_eq(stats(h).hs_events, 0);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 3);
	strcpy(e, pos.hp_epoch);
	replay_expect(h, "a", e, 3, 0, 0, 1);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 0, 0, 0, 0);
	ck_assert_uint_eq(pub(h, "a", 10, 0, 0), 4);
	replay_expect(h, "a", e, 3, 0, 0, 1);			/* 4 */
	replay_expect(h, "a", e, 2, 0, 0, 0);
	/* a channel without a record gets one, at offset 1 */
	ck_assert_int_eq(hist_hole(h, S("b"), NULL, 0), 0);
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 1);
	/* an envelope's: its own offset, once */
	ck_assert_int_eq(cpub(h, "c", "cE1", 1, 10, 0, 0), 0);
	ck_assert_int_eq(hist_hole(h, S("c"), "cE1", 2), 0);
	pos_expect(h, "c", "cE1", 2);
	ck_assert_int_eq(hist_hole(h, S("c"), "cE1", 2), 1);
	replay_expect(h, "c", "cE1", 2, 0, 0, 1);
	replay_expect(h, "c", "cE1", 1, 0, 0, 2);		/* Redis may say */
	ck_assert_int_eq(cpub(h, "c", "cE1", 3, 10, 0, 0), 0);
	replay_expect(h, "c", "cE1", 2, 0, 0, 1);
	hist_free(h);
}
END_TEST

/*
 * hist_forget(): a channel whose events stopped coming for a while loses
 * its node record: the next position is a new epoch, a since from before
 * is no replay, and the change is counted.  Cluster records stay.
 */
START_TEST(test_forget_node_record)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];
	uint64_t	 changes;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	pub(h, "a", 10, 0, 0);
	pub(h, "a", 10, 0, 0);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	strcpy(e, pos.hp_epoch);
	replay_expect(h, "a", e, 1, 0, 0, 1);
	changes = hist_changes(h);
	ck_assert_int_eq(hist_forget(h, S("a")), 1);
	ck_assert_uint_gt(hist_changes(h), changes);
	ck_assert_int_eq(stats(h).hs_events, 0);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 1, 0, 0, 0);
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_str_ne(pos.hp_epoch, e);
	ck_assert_uint_eq(pos.hp_offset, 0);
	ck_assert_uint_eq(pub(h, "a", 10, 0, 0), 1);
	/* a record no event placed yet (a subscribe's) goes too */
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	strcpy(e, pos.hp_epoch);
	ck_assert_int_eq(hist_forget(h, S("b")), 1);
	ck_assert_int_eq(hist_position(h, S("b"), &pos), 0);
	ck_assert_str_ne(pos.hp_epoch, e);
	/* no record: nothing to do, nothing counted */
	changes = hist_changes(h);
	ck_assert_int_eq(hist_forget(h, S("none")), 0);
	ck_assert_uint_eq(hist_changes(h), changes);
	/* a cluster position stays, with its frames */
	ck_assert_int_eq(cpub(h, "c", "cE1", 1, 10, 0, 0), 0);
	ck_assert_int_eq(cpub(h, "c", "cE1", 2, 10, 0, 0), 0);
	ck_assert_int_eq(hist_forget(h, S("c")), 0);
	pos_expect(h, "c", "cE1", 2);
	replay_expect(h, "c", "cE1", 1, 0, 0, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_epoch_change)
{
	struct hist	*h;
	struct hist_pos	 pos;
	struct hist_stats st;
	int64_t		 recs;
	uint64_t	 o;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	recs = stats(h).hs_memory;
	for (o = 1; o <= 3; o++)
		ck_assert_int_eq(cpub(h, "a", "cE1", o, 10, 0, 0), 0);
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 3);
	/* Redis lost the channel's keys: a new epoch, the old frames go */
	ck_assert_int_eq(hist_cluster_next(h, S("a"), "cE2", 10, &pos), 0);
	ck_assert_str_eq(pos.hp_epoch, "cE2");
	ck_assert_uint_eq(pos.hp_offset, 10);
	ck_assert_int_eq(stats(h).hs_events, 0);
	ck_assert_uint_eq(stats(h).hs_evicted, st.hs_evicted + 3);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	hist_append(h, S("a"), 10, "a", 1, "#10", 3, 10, 0, 0);
	ck_assert_int_eq(stats(h).hs_events, 1);
	pos_expect(h, "a", "cE2", 10);
	/* the old positions answer 0, never the new frames */
	for (o = 0; o <= 10; o++)
		replay_expect(h, "a", "cE1", o, 0, 0, 0);
	replay_expect(h, "a", "cE2", 10, 0, 0, 1);
	replay_expect(h, "a", "cE2", 9, 0, 0, 1);
	replay_expect(h, "a", "cE2", 8, 0, 0, 2);
	replay_expect(h, "a", "cE2", 0, 0, 0, 2);
	/* offsets are not compared across epochs: lower, or the same, is new */
	ck_assert_int_eq(cpub(h, "a", "cE3", 1, 10, 0, 0), 0);
	pos_expect(h, "a", "cE3", 1);
	ck_assert_int_eq(stats(h).hs_events, 1);
	replay_expect(h, "a", "cE3", 0, 0, 0, 1);
	replay_expect(h, "a", "cE2", 9, 0, 0, 0);
	ck_assert_int_eq(cpub(h, "a", "cE4", 1, 10, 0, 0), 0);
	pos_expect(h, "a", "cE4", 1);
	replay_expect(h, "a", "cE3", 0, 0, 0, 0);
	replay_expect(h, "a", "cE4", 0, 0, 0, 1);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	ck_assert_int_eq(stats(h).hs_events, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_set)
{
	struct hist	*h;
	struct hist_stats st;
	int64_t		 recs;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	/* no record yet: made, placed where Redis says */
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_NONE);
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cE1", 5), 0);
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_CLUSTER);
	pos_expect(h, "a", "cE1", 5);
	recs = stats(h).hs_memory;
	ck_assert_int_eq(stats(h).hs_channels, 1);
	ck_assert_int_eq(stats(h).hs_events, 0);
	replay_expect(h, "a", "cE1", 5, 0, 0, 1);
	replay_expect(h, "a", "cE1", 4, 0, 0, 2);
	replay_expect(h, "a", "cE1", 0, 0, 0, 2);
	replay_expect(h, "a", "cE1", 6, 0, 0, 0);
	/* the envelopes continue it */
	ck_assert_int_eq(cpub(h, "a", "cE1", 5, 10, 0, 0), 1);
	ck_assert_int_eq(cpub(h, "a", "cE1", 6, 10, 0, 0), 0);
	ck_assert_int_eq(cpub(h, "a", "cE1", 7, 10, 0, 0), 0);
	replay_expect(h, "a", "cE1", 5, 0, 0, 1);
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 2);
	/* there already: nothing changes */
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cE1", 7), 0);
	ck_assert_int_eq(stats(h).hs_events, 2);
	ck_assert_int_eq(stats(h).hs_memory, st.hs_memory);
	ck_assert_uint_eq(stats(h).hs_evicted, st.hs_evicted);
	pos_expect(h, "a", "cE1", 7);
	replay_expect(h, "a", "cE1", 5, 0, 0, 1);
	/* ahead, the same epoch: moved, the frames dropped */
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cE1", 9), 0);
	pos_expect(h, "a", "cE1", 9);
	ck_assert_int_eq(stats(h).hs_events, 0);
	ck_assert_uint_eq(stats(h).hs_evicted, st.hs_evicted + 2);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	replay_expect(h, "a", "cE1", 9, 0, 0, 1);
	replay_expect(h, "a", "cE1", 7, 0, 0, 2);
	/* behind: Redis is the authority, moved back */
	ck_assert_int_eq(cpub(h, "a", "cE1", 10, 10, 0, 0), 0);
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cE1", 4), 0);
	pos_expect(h, "a", "cE1", 4);
	ck_assert_int_eq(stats(h).hs_events, 0);
	replay_expect(h, "a", "cE1", 9, 0, 0, 0);
	ck_assert_int_eq(cpub(h, "a", "cE1", 5, 10, 0, 0), 0);
	replay_expect(h, "a", "cE1", 4, 0, 0, 1);
	/* another epoch, the same offset: moved */
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cE2", 5), 0);
	pos_expect(h, "a", "cE2", 5);
	ck_assert_int_eq(stats(h).hs_events, 0);
	replay_expect(h, "a", "cE1", 4, 0, 0, 0);
	replay_expect(h, "a", "cE2", 5, 0, 0, 1);
	/* a node record with frames: becomes a cluster record, frames dropped */
	ck_assert_uint_eq(pub(h, "n", 10, 0, 0), 1);
	ck_assert_uint_eq(pub(h, "n", 10, 0, 0), 2);
	ck_assert_int_eq(hist_mode(h, S("n")), HIST_NODE);
	ck_assert_int_eq(stats(h).hs_events, 2);
	ck_assert_int_eq(hist_cluster_set(h, S("n"), "cN", 2), 0);
	ck_assert_int_eq(hist_mode(h, S("n")), HIST_CLUSTER);
	pos_expect(h, "n", "cN", 2);
	ck_assert_int_eq(stats(h).hs_events, 0);
	replay_expect(h, "n", "cN", 1, 0, 0, 2);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_modes)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 en[HIST_EPOCH_MAX + 1], en2[HIST_EPOCH_MAX + 1];
	char		 e[HIST_EPOCH_MAX + 1];

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	/* no record: NONE, and asking makes none */
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NONE);
	ck_assert_int_eq(stats(h).hs_channels, 0);
	/* a record made by a subscribe is NONE until an event or answer places it */
	epoch_of(h, "x", en);
	check_epoch_form(en, "n");
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NONE);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	/* NONE -> NODE: Redis has no cluster position; the position stays */
	ck_assert_int_eq(hist_set_node(h, S("x")), 0);
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NODE);
	pos_expect(h, "x", en, 0);
	ck_assert_int_eq(hist_set_node(h, S("x")), 0);
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NODE);
	/* on a channel without a record: made, NODE */
	ck_assert_int_eq(hist_set_node(h, S("y")), 0);
	ck_assert_int_eq(hist_mode(h, S("y")), HIST_NODE);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	/* a plain event on a NONE record: NODE */
	epoch_of(h, "z", e);
	ck_assert_int_eq(hist_mode(h, S("z")), HIST_NONE);
	ck_assert_uint_eq(pub(h, "z", 10, 0, 0), 1);
	ck_assert_int_eq(hist_mode(h, S("z")), HIST_NODE);
	pos_expect(h, "z", e, 1);

	/* NODE -> CLUSTER by an envelope: the node frames go */
	ck_assert_uint_eq(pub(h, "x", 10, 0, 0), 1);
	ck_assert_uint_eq(pub(h, "x", 10, 0, 0), 2);
	replay_expect(h, "x", en, 0, 0, 0, 1);
	ck_assert_int_eq(hist_cluster_next(h, S("x"), "cE1", 50, &pos), 0);
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_CLUSTER);
	ck_assert_str_eq(pos.hp_epoch, "cE1");
	ck_assert_uint_eq(pos.hp_offset, 50);
	ck_assert_int_eq(stats(h).hs_events, 1);	/* z's */
	hist_append(h, S("x"), 50, "x", 1, "#50", 3, 10, 0, 0);
	replay_expect(h, "x", en, 0, 0, 0, 0);
	replay_expect(h, "x", en, 2, 0, 0, 0);
	replay_expect(h, "x", "cE1", 49, 0, 0, 1);
	/* hist_set_node does not undo a cluster record */
	ck_assert_int_eq(hist_set_node(h, S("x")), 0);
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_CLUSTER);
	pos_expect(h, "x", "cE1", 50);

	/* CLUSTER -> NODE by a plain event: offsets again from 1, a new epoch */
	ck_assert_int_eq(hist_next(h, S("x"), &pos), 0);
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NODE);
	ck_assert_uint_eq(pos.hp_offset, 1);
	strcpy(en2, pos.hp_epoch);
	check_epoch_form(en2, "n");
	ck_assert_str_ne(en2, en);
	ck_assert_int_eq(stats(h).hs_events, 1);	/* z's: x's cluster frame went */
	hist_append(h, S("x"), 1, "x", 1, "#1", 2, 10, 0, 0);
	ck_assert_uint_eq(pub(h, "x", 10, 0, 0), 2);
	pos_expect(h, "x", en2, 2);
	/* the cluster position and the first node one answer 0 (a node record: never 2) */
	replay_expect(h, "x", "cE1", 50, 0, 0, 0);
	replay_expect(h, "x", "cE1", 49, 0, 0, 0);
	replay_expect(h, "x", "cE1", 1, 0, 0, 0);
	replay_expect(h, "x", en, 1, 0, 0, 0);
	replay_expect(h, "x", en2, 0, 0, 0, 1);
	/* and back: the same cluster epoch again is a move, not a duplicate */
	ck_assert_int_eq(hist_cluster_next(h, S("x"), "cE1", 50, &pos), 0);
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_CLUSTER);
	pos_expect(h, "x", "cE1", 50);
	replay_expect(h, "x", en2, 0, 0, 0, 0);
	replay_expect(h, "x", "cE1", 49, 0, 0, 2);
	/* a later plain event: a node epoch new again */
	ck_assert_uint_eq(pub(h, "x", 10, 0, 0), 1);
	epoch_of(h, "x", e);
	ck_assert_str_ne(e, en2);
	ck_assert_str_ne(e, en);

	/* a reset forgets every mode */
	hist_reset(h, "m");
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NONE);
	ck_assert_int_eq(hist_mode(h, S("y")), HIST_NONE);
	ck_assert_int_eq(hist_mode(h, S("z")), HIST_NONE);
	ck_assert_int_eq(stats(h).hs_channels, 0);
	epoch_of(h, "x", e);
	check_epoch_form(e, "m");
	ck_assert_int_eq(hist_mode(h, S("x")), HIST_NONE);
	hist_free(h);
}
END_TEST

/* hist_replay's 2 is a cluster record's only. */
START_TEST(test_cluster_replay_two_only_for_cluster)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[HIST_EPOCH_MAX + 1];
	uint64_t	 o;

	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	/* node records: evicted by count, a hole at the newest, a fresh one */
	for (o = 1; o <= 5; o++)
		pub(h, "a", 2, 0, 0);
	epoch_of(h, "a", e);
	replay_expect(h, "a", e, 0, 0, 0, 0);
	replay_expect(h, "a", e, 2, 0, 0, 0);
	replay_expect(h, "a", e, 3, 0, 0, 1);
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);		/* 6, not kept */
	replay_expect(h, "a", e, 5, 0, 0, 0);
	replay_expect(h, "a", e, 6, 0, 0, 1);
	ck_assert_int_eq(hist_set_node(h, S("a")), 0);
	replay_expect(h, "a", e, 5, 0, 0, 0);
	epoch_of(h, "f", e);
	replay_expect(h, "f", e, 0, 0, 0, 1);
	replay_expect(h, "f", "cF", 0, 0, 0, 0);	/* NONE: a cluster epoch is a stranger */
	replay_expect(h, "a", "cF", 0, 0, 0, 0);
	/* the same on a cluster record: 2, with the epoch right and since not ahead */
	for (o = 1; o <= 5; o++)
		ck_assert_int_eq(cpub(h, "c", "cC", o, 2, 0, 0), 0);
	replay_expect(h, "c", "cC", 0, 0, 0, 2);
	replay_expect(h, "c", "cC", 2, 0, 0, 2);
	replay_expect(h, "c", "cC", 3, 0, 0, 1);
	replay_expect(h, "c", "cC", 5, 0, 0, 1);
	replay_expect(h, "c", "cC", 6, 0, 0, 0);
	replay_expect(h, "c", "cD", 2, 0, 0, 0);
	replay_expect(h, "c", "cD", 5, 0, 0, 0);
	epoch_of(h, "a", e);
	replay_expect(h, "c", e, 2, 0, 0, 0);
	ck_assert_int_eq(hist_cluster_next(h, S("c"), "cC", 6, &pos), 0);	/* not kept */
	replay_expect(h, "c", "cC", 5, 0, 0, 2);
	replay_expect(h, "c", "cC", 6, 0, 0, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_memory)
{
	struct hist	*h;
	struct hist_stats st;
	struct hist_pos	 pos;
	int64_t		 recs, d, limit;
	uint64_t	 o;
	int		 i;

	/* a cluster record costs what a node record does; frames as pub()'s */
	ck_assert_ptr_nonnull(h = hist_new(BIG, 100, "n"));
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	recs = stats(h).hs_memory;
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cA", 0), 0);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	ck_assert_int_eq(cpub(h, "a", "cA", 1, 100, 0, 0), 0);
	d = stats(h).hs_memory - recs;
	ck_assert_int_gt(d, (int64_t)strlen("a#1"));
	for (o = 2; o <= 5; o++)
		ck_assert_int_eq(cpub(h, "a", "cA", o, 100, 0, 0), 0);
	ck_assert_int_eq(stats(h).hs_memory, recs + 5 * d);
	/* frames dropped by a move, a new epoch or a plain event: all returned */
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cA", 9), 0);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	for (o = 10; o <= 12; o++)
		ck_assert_int_eq(cpub(h, "a", "cA", o, 100, 0, 0), 0);
	ck_assert_int_eq(hist_cluster_next(h, S("a"), "cB", 1, &pos), 0);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	hist_append(h, S("a"), 1, "a", 1, "#1", 2, 100, 0, 0);
	ck_assert_int_eq(stats(h).hs_memory, recs + d);
	ck_assert_int_eq(hist_next(h, S("a"), &pos), 0);
	ck_assert_int_eq(stats(h).hs_memory, recs);
	ck_assert_int_eq(stats(h).hs_events, 0);
	hist_free(h);

	/* the budget holds for cluster frames too, oldest first */
	limit = recs + 3 * d;
	ck_assert_ptr_nonnull(h = hist_new(limit, 100, "n"));
	for (o = 1; o <= 5; o++) {
		ck_assert_int_eq(cpub(h, "a", "cA", o, 100, 0, 0), 0);
		ck_assert_int_le(stats(h).hs_memory, limit);
	}
	st = stats(h);
	ck_assert_int_eq(st.hs_events, 3);
	ck_assert_uint_eq(st.hs_evicted, 2);
	replay_expect(h, "a", "cA", 2, 0, 0, 1);
	replay_expect(h, "a", "cA", 1, 0, 0, 2);
	hist_free(h);

	/* many records of each mode; a reset returns every byte */
	ck_assert_ptr_nonnull(h = hist_new(BIG, 1000, "n"));
	for (i = 0; i < 300; i++) {
		char	 ch[16];

		snprintf(ch, sizeof(ch), "ch%d", i);
		switch (i % 4) {
		case 0:
			for (o = 1; o <= 3; o++)
				ck_assert_int_eq(cpub(h, ch, "cX", o, 2, 0, 0), 0);
			break;
		case 1:
			ck_assert_int_eq(hist_cluster_set(h, S(ch), "cY", (uint64_t)i), 0);
			ck_assert_int_eq(cpub(h, ch, "cY", (uint64_t)i + 1, 2, 0, 0), 0);
			break;
		case 2:
			pub(h, ch, 2, 0, 0);
			ck_assert_int_eq(cpub(h, ch, "cZ", 7, 2, 0, 0), 0);
			pub(h, ch, 2, 0, 0);
			break;
		default:
			ck_assert_int_eq(hist_set_node(h, S(ch)), 0);
			break;
		}
	}
	st = stats(h);
	ck_assert_int_eq(st.hs_channels, 300);
	ck_assert_int_eq(st.hs_events, 75 * 2 + 75 + 75);
	ck_assert_int_gt(st.hs_memory, 0);
	ck_assert_int_eq(hist_mode(h, S("ch0")), HIST_CLUSTER);
	ck_assert_int_eq(hist_mode(h, S("ch1")), HIST_CLUSTER);
	ck_assert_int_eq(hist_mode(h, S("ch2")), HIST_NODE);
	ck_assert_int_eq(hist_mode(h, S("ch3")), HIST_NODE);
	hist_reset(h, "n2");
	st = stats(h);
	ck_assert_int_eq(st.hs_memory, 0);
	ck_assert_int_eq(st.hs_events, 0);
	ck_assert_int_eq(st.hs_channels, 0);
	ck_assert_int_eq(hist_mode(h, S("ch0")), HIST_NONE);
	/* and works as new after */
	ck_assert_int_eq(cpub(h, "ch0", "cX", 4, 2, 0, 0), 0);
	pos_expect(h, "ch0", "cX", 4);
	ck_assert_int_eq(stats(h).hs_channels, 1);
	hist_free(h);
}
END_TEST

START_TEST(test_cluster_lru)
{
	struct hist	*h;
	struct hist_pos	 pos;

	/* an envelope is an event: it makes its record recently used */
	ck_assert_ptr_nonnull(h = hist_new(BIG, 2, "n"));
	ck_assert_int_eq(cpub(h, "a", "cA", 1, 10, 0, 0), 0);
	ck_assert_int_eq(cpub(h, "b", "cB", 1, 10, 0, 0), 0);
	ck_assert_int_eq(cpub(h, "a", "cA", 2, 10, 0, 0), 0);
	pub(h, "c", 10, 0, 0);			/* b goes */
	ck_assert_int_eq(hist_mode(h, S("b")), HIST_NONE);
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_CLUSTER);
	ck_assert_int_eq(stats(h).hs_channels, 2);
	ck_assert_int_eq(stats(h).hs_events, 3);
	/* an answer is not: set on a, then a new record pushes a out */
	ck_assert_int_eq(hist_cluster_set(h, S("a"), "cA", 2), 0);
	pub(h, "d", 10, 0, 0);			/* a (used before c) goes */
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_NONE);
	ck_assert_int_eq(hist_mode(h, S("c")), HIST_NODE);
	/* a's record made again: its cluster position forgotten, a node one */
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_uint_eq(pos.hp_offset, 0);
	check_epoch_form(pos.hp_epoch, "n");
	replay_expect(h, "a", "cA", 2, 0, 0, 0);
	ck_assert_int_eq(hist_mode(h, S("a")), HIST_NONE);
	/* the next envelope places it again; only its own frame is held */
	ck_assert_int_eq(cpub(h, "a", "cA", 3, 10, 0, 0), 0);
	replay_expect(h, "a", "cA", 2, 0, 0, 1);
	replay_expect(h, "a", "cA", 1, 0, 0, 2);
	hist_free(h);
}
END_TEST

static Suite *
history_suite(void)
{
	Suite	*s = suite_create("history");
	TCase	*tc;

	tc = tcase_create("positions");
	tcase_add_test(tc, test_offsets_per_channel);
	tcase_add_test(tc, test_position_makes_record_events_continue);
	tcase_add_test(tc, test_epoch_format_and_reset);
	suite_add_tcase(s, tc);

	tc = tcase_create("replay");
	tcase_add_test(tc, test_replay_basic);
	tcase_add_test(tc, test_replay_evicted_by_count);
	tcase_add_test(tc, test_replay_ttl);
	tcase_add_test(tc, test_memory_budget_oldest_first);
	tcase_add_test(tc, test_frame_larger_than_budget);
	tcase_add_test(tc, test_hole_positioned_not_appended);
	tcase_add_test(tc, test_hole_at_the_newest);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, test_channel_lru);
	tcase_add_test(tc, test_changes_count);
	tcase_add_test(tc, test_expire_sweep);
	tcase_add_test(tc, test_set_limits);
	tcase_add_test(tc, test_set_limits_then_sweep);
	tcase_add_test(tc, test_stats_consistent);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_random_model_exact);
	tcase_add_test(tc, test_random_model_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("cluster");
	tcase_add_test(tc, test_cluster_contiguous);
	tcase_add_test(tc, test_cluster_duplicate);
	tcase_add_test(tc, test_cluster_gap);
	tcase_add_test(tc, test_hole_of_an_event_not_kept);
	tcase_add_test(tc, test_forget_node_record);
	tcase_add_test(tc, test_cluster_epoch_change);
	tcase_add_test(tc, test_cluster_set);
	tcase_add_test(tc, test_cluster_modes);
	tcase_add_test(tc, test_cluster_replay_two_only_for_cluster);
	tcase_add_test(tc, test_cluster_memory);
	tcase_add_test(tc, test_cluster_lru);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(history_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
