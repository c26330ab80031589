/* Output queue: refcounted blocks, coalescing, ring wrap, partial writev. */
#include <sys/types.h>
#include <sys/socket.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outq.h"

/* Non-blocking socketpair; sv[0] writes, sv[1] reads. */
static void
mkpair(int sv[2], int small)
{
	int	 sz = 4096, i;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if (small) {
		ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF,
		    &sz, sizeof(sz)), 0);
		ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF,
		    &sz, sizeof(sz)), 0);
	}
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(fcntl(sv[i], F_SETFL,
		    fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
}

/* Read up to max bytes (all available when max is 0) into buf at *off. */
static size_t
drain(int fd, uint8_t *buf, size_t *off, size_t cap, size_t max)
{
	size_t	 got = 0, want;
	ssize_t	 n;
	uint8_t	 extra;

	for (;;) {
		want = cap - *off;
		if (max != 0 && want > max - got)
			want = max - got;
		if (want == 0)
			break;
		n = read(fd, buf + *off, want);
		if (n == -1) {
			ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
			break;
		}
		ck_assert_int_gt(n, 0);
		*off += (size_t)n;
		got += (size_t)n;
	}
	if (*off == cap) {
		/* everything expected arrived: nothing more may follow */
		errno = 0;
		ck_assert_int_eq(read(fd, &extra, 1), -1);
		ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	}
	return got;
}

/* Deterministic pseudo-random bytes, so a reorder or repeat shows. */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rnd(&seed);
}

/* Write and read until the queue is gone. */
static void
pump(struct outq **q, int sv[2], uint8_t *got, size_t *off, size_t cap)
{
	int	 rounds = 0;
	size_t	 before;
	ssize_t	 n;

	while (*q != NULL) {
		before = outq_len(*q);
		n = outq_write(q, sv[0]);
		ck_assert_int_ge(n, 0);
		ck_assert_uint_eq(outq_len(*q), before - (size_t)n);
		drain(sv[1], got, off, cap, 0);
		ck_assert_int_lt(++rounds, 100000);
	}
	drain(sv[1], got, off, cap, 0);
}

START_TEST(test_blk_refcount)
{
	struct rt_blk	*b;

	b = blk_new(100);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->b_refs, 1);
	ck_assert_uint_eq(b->b_len, 0);
	ck_assert_uint_eq(b->b_cap, 100);
	blk_ref(b);
	ck_assert_uint_eq(b->b_refs, 2);
	blk_unref(b);
	ck_assert_uint_eq(b->b_refs, 1);
	blk_unref(b);			/* freed: ASan would see a leak else */

	b = blk_copy("hello", 5);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->b_refs, 1);
	ck_assert_uint_eq(b->b_len, 5);
	ck_assert_uint_ge(b->b_cap, 5);
	ck_assert_mem_eq(b->b_data, "hello", 5);
	blk_unref(b);

	blk_unref(NULL);		/* harmless */
	ck_assert_ptr_null(blk_new((size_t)UINT32_MAX));
}
END_TEST

START_TEST(test_shared_block_survives_first_free)
{
	struct outq	*q1 = NULL, *q2 = NULL;
	struct rt_blk	*b;
	uint8_t		 got[64];
	size_t		 off = 0;
	int		 sv[2];

	b = blk_copy("event-frame", 11);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(outq_add_ref(&q1, b, b->b_data, 11), 0);
	ck_assert_int_eq(outq_add_ref(&q2, b, b->b_data + 6, 5), 0);
	ck_assert_uint_eq(b->b_refs, 3);
	blk_unref(b);			/* the builder lets go */
	ck_assert_uint_eq(b->b_refs, 2);
	ck_assert_uint_eq(outq_len(q1), 11);
	ck_assert_uint_eq(outq_len(q2), 5);

	outq_free(&q1);
	ck_assert_ptr_null(q1);
	ck_assert_uint_eq(b->b_refs, 1);	/* still alive for q2 */
	outq_free(&q1);			/* twice is harmless */

	mkpair(sv, 0);
	ck_assert_int_eq(outq_write(&q2, sv[0]), 5);
	ck_assert_ptr_null(q2);		/* and the last reference dropped */
	drain(sv[1], got, &off, sizeof(got), 0);
	ck_assert_uint_eq(off, 5);
	ck_assert_mem_eq(got, "frame", 5);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_zero_length_is_noop)
{
	struct outq	*q = NULL;
	struct rt_blk	*b;
	int		 sv[2];

	b = blk_copy("abc", 3);
	ck_assert_int_eq(outq_add_ref(&q, b, b->b_data, 0), 0);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(b->b_refs, 1);
	ck_assert_int_eq(outq_add_copy(&q, "x", 0, "y", 0), 0);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(outq_add_copy(&q, NULL, 0, NULL, 0), 0);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(outq_len(q), 0);

	/* nor do they add an entry to an existing queue */
	ck_assert_int_eq(outq_add_ref(&q, b, b->b_data, 3), 0);
	ck_assert_int_eq(outq_add_ref(&q, b, b->b_data, 0), 0);
	ck_assert_int_eq(outq_add_copy(&q, "x", 0, NULL, 0), 0);
	ck_assert_uint_eq(q->oq_n, 1);
	ck_assert_uint_eq(outq_len(q), 3);
	ck_assert_uint_eq(b->b_refs, 2);
	outq_free(&q);
	ck_assert_uint_eq(b->b_refs, 1);
	blk_unref(b);

	/* writing nothing writes nothing */
	mkpair(sv, 0);
	ck_assert_int_eq(outq_write(&q, sv[0]), 0);
	ck_assert_ptr_null(q);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_copy_two_parts_in_order)
{
	struct outq	*q = NULL;
	uint8_t		 got[64];
	size_t		 off = 0;
	int		 sv[2];

	mkpair(sv, 0);
	ck_assert_int_eq(outq_add_copy(&q, "HEAD:", 5, "body", 4), 0);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(outq_len(q), 9);
	ck_assert_int_eq(outq_add_copy(&q, "only-a", 6, NULL, 0), 0);
	ck_assert_int_eq(outq_add_copy(&q, NULL, 0, "only-b", 6), 0);
	ck_assert_uint_eq(outq_len(q), 21);
	ck_assert_int_eq(outq_write(&q, sv[0]), 21);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(outq_len(q), 0);
	drain(sv[1], got, &off, sizeof(got), 0);
	ck_assert_uint_eq(off, 21);
	ck_assert_mem_eq(got, "HEAD:bodyonly-aonly-b", 21);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_small_copies_coalesce)
{
	struct outq	*q = NULL;
	uint8_t		 want[400], got[400];
	size_t		 off = 0, at = 0, sizes[] = { 1, 30, 7, 100, 2, 50, 60 };
	unsigned	 i;
	int		 sv[2];

	fill(want, sizeof(want), 7);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_int_eq(outq_add_copy(&q, want + at, sizes[i] / 2,
		    want + at + sizes[i] / 2, sizes[i] - sizes[i] / 2), 0);
		at += sizes[i];
		ck_assert_uint_eq(q->oq_n, 1);
		ck_assert_uint_eq(outq_len(q), at);
	}
	ck_assert_uint_eq(at, 250);
	/* does not fit what is left of the 256-byte block: a new entry */
	ck_assert_int_eq(outq_add_copy(&q, want + at, 100, NULL, 0), 0);
	at += 100;
	ck_assert_uint_eq(q->oq_n, 2);
	/* sized exactly (only a first block has slack), so the next is a third */
	ck_assert_int_eq(outq_add_copy(&q, want + at, 50, NULL, 0), 0);
	at += 50;
	ck_assert_uint_eq(q->oq_n, 3);
	ck_assert_uint_eq(outq_len(q), 400);
	/* what the queue holds counts its entries too */
	ck_assert_uint_eq(outq_cost(q), 400 + 3 * OUTQ_ENT_COST);
	ck_assert_uint_eq(outq_cost(NULL), 0);

	mkpair(sv, 0);
	ck_assert_int_eq(outq_write(&q, sv[0]), 400);
	ck_assert_ptr_null(q);
	drain(sv[1], got, &off, sizeof(got), 0);
	ck_assert_uint_eq(off, 400);
	ck_assert_mem_eq(got, want, 400);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_no_append_into_shared_block)
{
	struct outq	*q = NULL;
	struct rt_blk	*b;
	uint8_t		 got[64], sentinel[256];
	size_t		 off = 0;
	int		 sv[2];

	/* a block with plenty of room, still held by its builder */
	b = blk_new(256);
	memset(b->b_data, 0xAA, 256);
	memset(sentinel, 0xAA, sizeof(sentinel));
	memcpy(b->b_data, "0123456789", 10);
	b->b_len = 10;
	ck_assert_int_eq(outq_add_ref(&q, b, b->b_data, 10), 0);
	ck_assert_uint_eq(b->b_refs, 2);
	ck_assert_int_eq(outq_add_copy(&q, "abc", 3, "de", 2), 0);
	ck_assert_uint_eq(q->oq_n, 2);
	ck_assert_uint_eq(b->b_len, 10);
	ck_assert_mem_eq(b->b_data + 10, sentinel, 246);
	ck_assert_uint_eq(outq_len(q), 15);

	mkpair(sv, 0);
	ck_assert_int_eq(outq_write(&q, sv[0]), 15);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(b->b_refs, 1);
	drain(sv[1], got, &off, sizeof(got), 0);
	ck_assert_uint_eq(off, 15);
	ck_assert_mem_eq(got, "0123456789abcde", 15);
	blk_unref(b);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_no_append_after_a_middle_slice)
{
	struct outq	*q = NULL;
	struct rt_blk	*b;
	uint8_t		 got[64];
	size_t		 off = 0;
	int		 sv[2];

	/* the queue is the only holder, but its entry ends mid-block */
	b = blk_new(256);
	memcpy(b->b_data, "0123456789ABCDEFGHIJ", 20);
	b->b_len = 20;
	ck_assert_int_eq(outq_add_ref(&q, b, b->b_data + 2, 6), 0);
	blk_unref(b);
	ck_assert_uint_eq(b->b_refs, 1);
	ck_assert_int_eq(outq_add_copy(&q, "xyz", 3, NULL, 0), 0);
	ck_assert_uint_eq(outq_len(q), 9);

	mkpair(sv, 0);
	ck_assert_int_eq(outq_write(&q, sv[0]), 9);
	ck_assert_ptr_null(q);
	drain(sv[1], got, &off, sizeof(got), 0);
	ck_assert_uint_eq(off, 9);
	ck_assert_mem_eq(got, "234567xyz", 9);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

#define NFRAMES	2000
#define FRAME	200

START_TEST(test_partial_writes_every_byte_once)
{
	struct outq	*q = NULL;
	uint8_t		*want, *got, hdr[16];
	size_t		 off = 0, left, total = NFRAMES * FRAME;
	ssize_t		 n;
	int		 sv[2], i, partial = 0, midframe = 0, rounds = 0;

	want = malloc(total);
	got = malloc(total);
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	for (i = 0; i < NFRAMES; i++) {
		/* a sequence number, then a body unique to the frame */
		snprintf((char *)hdr, sizeof(hdr), "#%06d:", i);
		memcpy(want + (size_t)i * FRAME, hdr, 8);
		fill(want + (size_t)i * FRAME + 8, FRAME - 8, (uint32_t)i + 1);
		ck_assert_int_eq(outq_add_copy(&q, want + (size_t)i * FRAME, 8,
		    want + (size_t)i * FRAME + 8, FRAME - 8), 0);
	}
	ck_assert_uint_eq(outq_len(q), total);
	ck_assert_uint_ge(q->oq_cap, NFRAMES);

	mkpair(sv, 1);
	left = total;
	while (q != NULL) {
		n = outq_write(&q, sv[0]);
		ck_assert_int_ge(n, 0);
		ck_assert_uint_le((size_t)n, left);
		left -= (size_t)n;
		ck_assert_uint_eq(outq_len(q), left);
		if (left > 0) {
			ck_assert_ptr_nonnull(q);
			partial++;
			if (left % FRAME != 0)
				midframe++;
			/* the socket is full: another try writes nothing */
			ck_assert_int_eq(outq_write(&q, sv[0]), 0);
			ck_assert_ptr_nonnull(q);
			ck_assert_uint_eq(outq_len(q), left);
		} else
			ck_assert_ptr_null(q);
		drain(sv[1], got, &off, total, 0);
		ck_assert_uint_eq(off, total - left);
		ck_assert_int_lt(++rounds, 100000);
	}
	drain(sv[1], got, &off, total, 0);
	ck_assert_int_gt(partial, 10);
	ck_assert_int_gt(midframe, 0);
	ck_assert_uint_eq(off, total);
	ck_assert_mem_eq(got, want, total);
	ck_assert_uint_eq(outq_len(q), 0);
	free(want);
	free(got);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

#define ENT	3000
#define RINGMAX	(200 * ENT)

START_TEST(test_ring_wrap_then_growth)
{
	struct outq	*q = NULL;
	uint8_t		*want, *got;
	size_t		 at = 0, off = 0;
	uint32_t	 prev, cap;
	ssize_t		 n;
	int		 sv[2], i, wrapped = 0, rounds;

	want = malloc(RINGMAX);
	got = malloc(RINGMAX);
	fill(want, RINGMAX, 99);
	mkpair(sv, 1);

	/* keep the ring full at its first size while the head goes round */
	for (rounds = 0; rounds < 60; rounds++) {
		while (q == NULL || q->oq_n < q->oq_cap) {
			ck_assert_int_eq(outq_add_copy(&q, want + at, 1000,
			    want + at + 1000, ENT - 1000), 0);
			at += ENT;
		}
		ck_assert_uint_eq(q->oq_cap, 8);
		prev = q->oq_head;
		n = outq_write(&q, sv[0]);
		ck_assert_int_gt(n, 0);
		ck_assert_ptr_nonnull(q);	/* 24000 bytes never fit */
		ck_assert_uint_eq(outq_len(q), at - off - (size_t)n);
		if (q->oq_head < prev)
			wrapped++;
		drain(sv[1], got, &off, RINGMAX, 0);
		ck_assert_uint_eq(off + outq_len(q), at);
		if (wrapped >= 2 && q->oq_head != 0 &&
		    q->oq_head + q->oq_n > q->oq_cap)
			break;
	}
	ck_assert_int_ge(wrapped, 2);
	/* the live entries straddle the end of the array */
	ck_assert_uint_gt(q->oq_head + q->oq_n, q->oq_cap);

	/* now grow it twice while wrapped */
	cap = q->oq_cap;
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(outq_add_copy(&q, want + at, ENT, NULL, 0), 0);
		at += ENT;
	}
	ck_assert_uint_ge(q->oq_cap, cap * 4);
	ck_assert_uint_eq(outq_len(q), at - off);

	/* and wrap the grown ring too, interleaving adds with writes */
	for (rounds = 0; rounds < 40 && at + 3 * ENT <= RINGMAX; rounds++) {
		for (i = 0; i < 3; i++) {
			ck_assert_int_eq(outq_add_copy(&q, want + at, ENT - 1,
			    want + at + ENT - 1, 1), 0);
			at += ENT;
		}
		ck_assert_int_ge(outq_write(&q, sv[0]), 0);
		drain(sv[1], got, &off, RINGMAX, 0);
		ck_assert_uint_eq(off + outq_len(q), at);
	}
	pump(&q, sv, got, &off, RINGMAX);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(off, at);
	ck_assert_mem_eq(got, want, at);
	free(want);
	free(got);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_more_than_one_iov_batch)
{
	struct outq	*q = NULL;
	struct rt_blk	*b;
	uint8_t		 got[2000];
	size_t		 off = 0;
	int		 sv[2], i;

	/* 200 slices of one block: 200 entries, written back to front */
	b = blk_new(2000);
	fill(b->b_data, 2000, 3);
	b->b_len = 2000;
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(outq_add_ref(&q, b,
		    b->b_data + (199 - i) * 10, 10), 0);
	ck_assert_uint_eq(q->oq_n, 200);
	ck_assert_uint_eq(b->b_refs, 201);

	mkpair(sv, 0);
	ck_assert_int_eq(outq_write(&q, sv[0]), 2000);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(b->b_refs, 1);
	drain(sv[1], got, &off, sizeof(got), 0);
	ck_assert_uint_eq(off, 2000);
	for (i = 0; i < 200; i++)
		ck_assert_mem_eq(got + i * 10, b->b_data + (199 - i) * 10, 10);
	blk_unref(b);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_epipe_leaves_queue)
{
	struct outq	*q = NULL;
	struct rt_blk	*b;
	int		 sv[2];

	signal(SIGPIPE, SIG_IGN);
	b = blk_copy("shared", 6);
	ck_assert_int_eq(outq_add_ref(&q, b, b->b_data, 6), 0);
	ck_assert_int_eq(outq_add_copy(&q, "abc", 3, "def", 3), 0);
	mkpair(sv, 0);
	close(sv[1]);
	errno = 0;
	ck_assert_int_eq(outq_write(&q, sv[0]), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(outq_len(q), 12);
	ck_assert_uint_eq(q->oq_n, 2);
	ck_assert_uint_eq(b->b_refs, 2);
	outq_free(&q);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(b->b_refs, 1);
	blk_unref(b);
	close(sv[0]);
}
END_TEST

#define MODEL	(400 * 1024)
#define HELD	64

/*
 * Random adds (copies, split copies, slices of held and released blocks)
 * interleaved with writes and reads of random sizes on a small socket.
 */
START_TEST(test_random_interleaving)
{
	struct outq	*q = NULL;
	struct rt_blk	*held[HELD], *b;
	uint8_t		*want, *got;
	size_t		 at = 0, off = 0, wrote = 0, len, pad, cut;
	uint32_t	 s = 12345 + (uint32_t)_i, op;
	ssize_t		 n;
	int		 sv[2], nheld = 0, i, steps = 0;

	want = malloc(MODEL);
	got = malloc(MODEL);
	fill(want, MODEL, 4242 + (uint32_t)_i);
	mkpair(sv, 1);
	while (at < MODEL) {
		op = rnd(&s) % 10;
		len = rnd(&s) % 4 == 0 ? 3000 : 120;
		len = 1 + rnd(&s) % len;
		if (len > MODEL - at)
			len = MODEL - at;
		if (op < 5) {
			cut = rnd(&s) % (len + 1);
			ck_assert_int_eq(outq_add_copy(&q, want + at, cut,
			    want + at + cut, len - cut), 0);
			at += len;
		} else if (op < 7) {
			pad = rnd(&s) % 64;
			b = blk_new(pad + len + rnd(&s) % 300);
			memcpy(b->b_data + pad, want + at, len);
			b->b_len = (uint32_t)(pad + len);
			ck_assert_int_eq(outq_add_ref(&q, b, b->b_data + pad,
			    len), 0);
			at += len;
			if (nheld < HELD && rnd(&s) % 2)
				held[nheld++] = b;	/* builder keeps it */
			else
				blk_unref(b);
		} else {
			n = outq_write(&q, sv[0]);
			ck_assert_int_ge(n, 0);
			wrote += (size_t)n;
			/* a random amount: the socket stays part full */
			drain(sv[1], got, &off, MODEL, 1 + rnd(&s) % 20000);
			ck_assert_uint_le(off, wrote);
			ck_assert_mem_eq(got, want, off);
		}
		ck_assert_uint_eq(wrote + outq_len(q), at);
		steps++;
	}
	pump(&q, sv, got, &off, MODEL);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(off, MODEL);
	ck_assert_mem_eq(got, want, MODEL);
	ck_assert_int_gt(steps, 500);
	for (i = 0; i < nheld; i++) {
		ck_assert_uint_eq(held[i]->b_refs, 1);
		blk_unref(held[i]);
	}
	free(want);
	free(got);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("outq");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_blk_refcount);
	tcase_add_test(tc, test_shared_block_survives_first_free);
	tcase_add_test(tc, test_zero_length_is_noop);
	tcase_add_test(tc, test_copy_two_parts_in_order);
	tcase_add_test(tc, test_small_copies_coalesce);
	tcase_add_test(tc, test_no_append_into_shared_block);
	tcase_add_test(tc, test_no_append_after_a_middle_slice);
	tcase_add_test(tc, test_partial_writes_every_byte_once);
	tcase_add_test(tc, test_ring_wrap_then_growth);
	tcase_add_test(tc, test_more_than_one_iov_batch);
	tcase_add_test(tc, test_epipe_leaves_queue);
	tcase_add_loop_test(tc, test_random_interleaving, 0, 4);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
