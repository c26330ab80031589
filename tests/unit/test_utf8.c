/*
 * utf8.c: Markus Kuhn's stress cases / Autobahn 6.x, split feeding, and an
 * exhaustive comparison against a slow reference that knows what "fail
 * fast" means: a prefix is rejected exactly when no continuation of it can
 * be valid.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

struct sample {
	const char	*s;
	size_t		 len;
};
#define S(lit)	{ lit, sizeof(lit) - 1 }

static const struct sample valid[] = {
	S(""),
	S("a"),
	S("Hello, world"),
	S("\x00"),
	S("\x7f"),
	S("\xc2\x80"),				/* U+0080 */
	S("\xdf\xbf"),				/* U+07FF */
	S("\xe0\xa0\x80"),			/* U+0800 */
	S("\xed\x9f\xbf"),			/* U+D7FF */
	S("\xee\x80\x80"),			/* U+E000 */
	S("\xef\xbf\xbd"),			/* U+FFFD */
	S("\xef\xbf\xbf"),			/* U+FFFF */
	S("\xf0\x90\x80\x80"),			/* U+10000 */
	S("\xf4\x8f\xbf\xbf"),			/* U+10FFFF */
	S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),	/* kosme */
	S("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"),
	S("0123456789abcdef\xe2\x82\xac" "0123456789abcdef\xf0\x9f\x98\x80xyz"),
};

/* Complete sequences that are invalid, with where they must be rejected. */
struct bad {
	const char	*s;
	size_t		 len;
	size_t		 reject_at;	/* bytes fed when REJECT first shows */
};
#define B(lit, at)	{ lit, sizeof(lit) - 1, at }

static const struct bad invalid[] = {
	B("\x80", 1),				/* lone continuation */
	B("\xbf", 1),
	B("\x80\xbf\x80", 1),
	B("\xc0\x80", 1),			/* overlong NUL, 2 bytes */
	B("\xc1\xbf", 1),			/* overlong U+007F */
	B("\xe0\x80\x80", 2),			/* overlong NUL, 3 bytes */
	B("\xe0\x9f\xbf", 2),			/* overlong U+07FF */
	B("\xf0\x80\x80\x80", 2),		/* overlong NUL, 4 bytes */
	B("\xf0\x8f\xbf\xbf", 2),		/* overlong U+FFFF */
	B("\xf8\x88\x80\x80\x80", 1),		/* 5-byte form */
	B("\xfc\x84\x80\x80\x80\x80", 1),	/* 6-byte form */
	B("\xed\xa0\x80", 2),			/* U+D800 */
	B("\xed\xad\xbf", 2),			/* U+DB7F */
	B("\xed\xbf\xbf", 2),			/* U+DFFF */
	B("\xed\xa0\x80\xed\xb0\x80", 2),	/* surrogate pair */
	B("\xf4\x90\x80\x80", 2),		/* U+110000 */
	B("\xf5\x80\x80\x80", 1),
	B("\xf7\xbf\xbf\xbf", 1),
	B("\xfe", 1),
	B("\xff", 1),
	B("\xfe\xfe\xff\xff", 1),
	B("\xc2\x41", 2),			/* sequence cut by ASCII */
	B("\xe1\x80\x41", 3),
	B("\xf1\x80\x80\x41", 4),
	B("\xc2\xc2\x80", 2),			/* new lead inside a sequence */
	B("abc\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 16),
	B("0123456789abcdef0123456789\x80", 27),	/* after the ASCII fast path */
	B("0123456789abcdef\xe2\x82\xac" "01234567\xc0\x80", 28),
};

/* Truncated sequences: not valid, but not rejected either. */
static const struct sample truncated[] = {
	S("\xc2"),
	S("\xdf"),
	S("\xe0"),
	S("\xe0\xa0"),
	S("\xe1\x80"),
	S("\xed\x9f"),
	S("\xf0\x90"),
	S("\xf0\x90\x80"),
	S("\xf3\xbf\xbf"),
	S("\xf4\x8f\xbf"),
	S("abc\xe2\x82"),
};

/* Feed s in pieces of size step; returns the final state. */
static uint32_t
feed_pieces(const char *s, size_t len, size_t step)
{
	uint32_t	 st = UTF8_ACCEPT;
	size_t		 off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		st = utf8_feed(st, (const uint8_t *)s + off, n);
	}
	return st;
}

START_TEST(test_valid_sequences_accepted)
{
	size_t	 i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		ck_assert_msg(utf8_valid((const uint8_t *)valid[i].s,
		    valid[i].len), "valid sample %zu", i);
		ck_assert_uint_eq(utf8_feed(UTF8_ACCEPT,
		    (const uint8_t *)valid[i].s, valid[i].len), UTF8_ACCEPT);
	}
}
END_TEST

START_TEST(test_invalid_sequences_rejected)
{
	size_t	 i;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		ck_assert_msg(!utf8_valid((const uint8_t *)invalid[i].s,
		    invalid[i].len), "invalid sample %zu", i);
		ck_assert_uint_eq(utf8_feed(UTF8_ACCEPT,
		    (const uint8_t *)invalid[i].s, invalid[i].len), UTF8_REJECT);
	}
}
END_TEST

/* Reject at the first byte that proves the input bad, not later. */
START_TEST(test_invalid_rejected_at_earliest_byte)
{
	const struct bad	*b;
	uint32_t		 st;
	size_t			 i, k;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		b = &invalid[i];
		for (k = 0; k <= b->len; k++) {
			st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)b->s, k);
			if (k < b->reject_at)
				ck_assert_msg(st != UTF8_REJECT,
				    "sample %zu rejected early at %zu", i, k);
			else
				ck_assert_msg(st == UTF8_REJECT,
				    "sample %zu not rejected at %zu", i, k);
		}
	}
}
END_TEST

START_TEST(test_truncated_sequences_pending)
{
	uint32_t	 st;
	size_t		 i;

	for (i = 0; i < sizeof(truncated) / sizeof(truncated[0]); i++) {
		st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)truncated[i].s,
		    truncated[i].len);
		ck_assert_msg(st != UTF8_ACCEPT && st != UTF8_REJECT,
		    "truncated sample %zu state %u", i, st);
		ck_assert(!utf8_valid((const uint8_t *)truncated[i].s,
		    truncated[i].len));
	}
}
END_TEST

START_TEST(test_valid_split_at_every_position)
{
	const struct sample	*v;
	uint32_t		 st;
	size_t			 i, k, step;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		v = &valid[i];
		for (k = 0; k <= v->len; k++) {
			st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)v->s, k);
			st = utf8_feed(st, (const uint8_t *)v->s + k,
			    v->len - k);
			ck_assert_msg(st == UTF8_ACCEPT, "sample %zu split %zu",
			    i, k);
		}
		for (step = 1; step <= 5; step++)
			ck_assert_uint_eq(feed_pieces(v->s, v->len, step),
			    UTF8_ACCEPT);
	}
}
END_TEST

START_TEST(test_invalid_split_at_every_position)
{
	const struct bad	*b;
	uint32_t		 st;
	size_t			 i, k, step;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		b = &invalid[i];
		for (k = 0; k <= b->len; k++) {
			st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)b->s, k);
			st = utf8_feed(st, (const uint8_t *)b->s + k,
			    b->len - k);
			ck_assert_uint_eq(st, UTF8_REJECT);
		}
		for (step = 1; step <= 5; step++)
			ck_assert_uint_eq(feed_pieces(b->s, b->len, step),
			    UTF8_REJECT);
	}
}
END_TEST

START_TEST(test_reject_is_sticky)
{
	uint32_t	 st;

	st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)"\xff", 1);
	ck_assert_uint_eq(st, UTF8_REJECT);
	ck_assert_uint_eq(utf8_feed(st, (const uint8_t *)"abc", 3), UTF8_REJECT);
	ck_assert_uint_eq(utf8_feed(st, (const uint8_t *)"0123456789abcdef",
	    16), UTF8_REJECT);
	ck_assert_uint_eq(utf8_feed(st, NULL, 0), UTF8_REJECT);
}
END_TEST

START_TEST(test_empty_feed_keeps_state)
{
	uint32_t	 st;

	st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)"\xe2\x82", 2);
	ck_assert_uint_eq(utf8_feed(st, NULL, 0), st);
	ck_assert_uint_eq(utf8_feed(st, (const uint8_t *)"\xac", 1),
	    UTF8_ACCEPT);
	ck_assert(utf8_valid(NULL, 0));
}
END_TEST

/*
 * Reference: 0 valid, 1 no continuation can make it valid, 2 a proper
 * prefix of valid input.  Decodes naively and, for a trailing partial
 * sequence, asks whether the code points it can still become include a
 * legal one.
 */
static int
ref_check(const uint8_t *s, size_t len)
{
	static const uint32_t	 minv[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t		 cp, lo, hi;
	size_t			 i = 0, j, n;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] < 0xc0)
			return 1;
		n = s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : s[i] < 0xf8 ? 4 : 0;
		if (n == 0)
			return 1;
		cp = s[i] & (0x7f >> n);
		for (j = 1; j < n && i + j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 1;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		lo = cp << 6 * (n - j);
		hi = lo | ((1u << 6 * (n - j)) - 1);
		if (lo < minv[n])
			lo = minv[n];
		if (hi > 0x10ffff)
			hi = 0x10ffff;
		if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff))
			return 1;
		if (j < n)
			return 2;
		i += n;
	}
	return 0;
}

static void
cmp_ref(const uint8_t *s, size_t len)
{
	uint32_t	 st = utf8_feed(UTF8_ACCEPT, s, len);
	int		 want = ref_check(s, len);
	int		 got = st == UTF8_ACCEPT ? 0 : st == UTF8_REJECT ? 1 : 2;

	if (got != want)
		ck_abort_msg("len %zu %02x %02x %02x %02x: got %d want %d",
		    len, s[0], len > 1 ? s[1] : 0, len > 2 ? s[2] : 0,
		    len > 3 ? s[3] : 0, got, want);
}

START_TEST(test_all_two_byte_inputs_match_reference)
{
	uint8_t		 s[2];
	unsigned	 a, b;

	for (a = 0; a < 256; a++) {
		s[0] = a;
		cmp_ref(s, 1);
		for (b = 0; b < 256; b++) {
			s[1] = b;
			cmp_ref(s, 2);
		}
	}
}
END_TEST

/* Every boundary of every class, in all combinations up to four bytes. */
START_TEST(test_boundary_inputs_match_reference)
{
	static const uint8_t	 edge[] = {
		0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
		0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0,
		0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
	};
	const size_t		 ne = sizeof(edge);
	uint8_t			 s[4];
	size_t			 a, b, c, d;

	for (a = 0; a < ne; a++)
		for (b = 0; b < ne; b++)
			for (c = 0; c < ne; c++) {
				s[0] = edge[a];
				s[1] = edge[b];
				s[2] = edge[c];
				cmp_ref(s, 3);
				for (d = 0; d < ne; d++) {
					s[3] = edge[d];
					cmp_ref(s, 4);
				}
			}
}
END_TEST

/* All of U+0000..U+10FFFF, encoded by hand, valid or (surrogates) not. */
START_TEST(test_every_code_point)
{
	uint8_t		 s[4];
	uint32_t	 cp;
	size_t		 n;

	for (cp = 0; cp <= 0x10ffff; cp++) {
		if (cp < 0x80) {
			s[0] = cp;
			n = 1;
		} else if (cp < 0x800) {
			s[0] = 0xc0 | cp >> 6;
			s[1] = 0x80 | (cp & 0x3f);
			n = 2;
		} else if (cp < 0x10000) {
			s[0] = 0xe0 | cp >> 12;
			s[1] = 0x80 | (cp >> 6 & 0x3f);
			s[2] = 0x80 | (cp & 0x3f);
			n = 3;
		} else {
			s[0] = 0xf0 | cp >> 18;
			s[1] = 0x80 | (cp >> 12 & 0x3f);
			s[2] = 0x80 | (cp >> 6 & 0x3f);
			s[3] = 0x80 | (cp & 0x3f);
			n = 4;
		}
		if (cp >= 0xd800 && cp <= 0xdfff)
			ck_assert_msg(!utf8_valid(s, n), "U+%04X", cp);
		else if (!utf8_valid(s, n))
			ck_abort_msg("U+%04X rejected", cp);
	}
}
END_TEST

/* The 8-byte ASCII skip must not hide a bad byte at any alignment. */
START_TEST(test_bad_byte_at_every_offset)
{
	uint8_t		 buf[64];
	size_t		 pos, start;

	for (start = 0; start < 8; start++) {
		for (pos = start; pos < sizeof(buf); pos++) {
			memset(buf, 'x', sizeof(buf));
			buf[pos] = 0x80;
			ck_assert_uint_eq(utf8_feed(UTF8_ACCEPT, buf + start,
			    sizeof(buf) - start), UTF8_REJECT);
			buf[pos] = 0xe2;
			ck_assert(!utf8_valid(buf + start, sizeof(buf) - start));
		}
	}
}
END_TEST

static Suite *
utf8_suite(void)
{
	Suite	*s = suite_create("utf8");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_valid_sequences_accepted);
	tcase_add_test(tc, test_invalid_sequences_rejected);
	tcase_add_test(tc, test_invalid_rejected_at_earliest_byte);
	tcase_add_test(tc, test_truncated_sequences_pending);
	tcase_add_test(tc, test_valid_split_at_every_position);
	tcase_add_test(tc, test_invalid_split_at_every_position);
	tcase_add_test(tc, test_reject_is_sticky);
	tcase_add_test(tc, test_empty_feed_keeps_state);
	tcase_add_test(tc, test_all_two_byte_inputs_match_reference);
	tcase_add_test(tc, test_boundary_inputs_match_reference);
	tcase_add_test(tc, test_every_code_point);
	tcase_add_test(tc, test_bad_byte_at_every_offset);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(utf8_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
