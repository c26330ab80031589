/*
 * Unit tests for src/deflate.c: the RFC 7692 negotiation (every parameter,
 * alone and combined, every invalid form, several offers and headers) and
 * the codec (compress once, inflate whole and in pieces, the cap, bombs,
 * broken streams, memory counted and given back).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "deflate.h"
#include "http.h"

#define ANSWER	"permessage-deflate; server_no_context_takeover; client_no_context_takeover"
#define ANSWER15	ANSWER "; server_max_window_bits=15"

static struct http_request	req;

/* Negotiate over a request whose extension headers are lines (CRLF each). */
static int
nego(const char *lines, int bits, char *out)
{
	static char	buf[8192];
	size_t		used;

	snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", lines);
	ck_assert_int_eq(http_parse_request(buf, strlen(buf), sizeof(buf), &req, &used),
	    HTTP_PARSE_DONE);
	return deflate_negotiate(&req, bits, out, DEFLATE_RESPONSE_MAX);
}

static int
offer(const char *s, struct deflate_offer *o)
{
	return deflate_offer_parse(s, strlen(s), o);
}

START_TEST(test_offer_plain)
{
	struct deflate_offer	 o;

	ck_assert_int_eq(offer("permessage-deflate", &o), 1);
	ck_assert_int_eq(o.do_server_nct + o.do_client_nct + o.do_server_bits, 0);
	ck_assert_int_eq(o.do_client_bits, 0);
	ck_assert_int_eq(offer("  PerMessage-Deflate  ", &o), 1);
	ck_assert_int_eq(offer("x-webkit-deflate-frame", &o), 0);
	ck_assert_int_eq(offer("permessage-deflatex", &o), 0);
	ck_assert_int_eq(offer("", &o), 0);
}
END_TEST

/* Every parameter alone, with the forms RFC 7692 7.1 allows. */
START_TEST(test_offer_each_parameter)
{
	struct deflate_offer	 o;

	ck_assert_int_eq(offer("permessage-deflate; server_no_context_takeover", &o), 1);
	ck_assert_int_eq(o.do_server_nct, 1);
	ck_assert_int_eq(offer("permessage-deflate;client_no_context_takeover", &o), 1);
	ck_assert_int_eq(o.do_client_nct, 1);
	ck_assert_int_eq(offer("permessage-deflate; server_max_window_bits=10", &o), 1);
	ck_assert_int_eq(o.do_server_bits, 10);
	ck_assert_int_eq(offer("permessage-deflate; server_max_window_bits = \"12\"", &o), 1);
	ck_assert_int_eq(o.do_server_bits, 12);
	ck_assert_int_eq(offer("permessage-deflate; client_max_window_bits", &o), 1);
	ck_assert_int_eq(o.do_client_bits, -1);
	ck_assert_int_eq(offer("permessage-deflate; client_max_window_bits=8", &o), 1);
	ck_assert_int_eq(o.do_client_bits, 8);
	ck_assert_int_eq(offer("permessage-deflate; client_max_window_bits=\"1\\5\"", &o), 1);
	ck_assert_int_eq(o.do_client_bits, 15);
}
END_TEST

/* Malformed: declined (-1), whatever else the offer says. */
START_TEST(test_offer_invalid)
{
	static const char *const bad[] = {
		"permessage-deflate; client_max_window_bits=7",
		"permessage-deflate; client_max_window_bits=16",
		"permessage-deflate; client_max_window_bits=abc",
		"permessage-deflate; client_max_window_bits=010",
		"permessage-deflate; client_max_window_bits=+9",
		"permessage-deflate; client_max_window_bits=",
		"permessage-deflate; client_max_window_bits=\"9",
		"permessage-deflate; server_max_window_bits",
		"permessage-deflate; server_max_window_bits=16",
		"permessage-deflate; server_max_window_bits=7",
		"permessage-deflate; server_max_window_bits=1",
		"permessage-deflate; server_max_window_bits=99999999999",
		"permessage-deflate; server_no_context_takeover=1",
		"permessage-deflate; client_no_context_takeover=\"\"",
		"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
		"permessage-deflate; client_max_window_bits; client_max_window_bits=9",
		"permessage-deflate; unknown",
		"permessage-deflate; x=1",
		"permessage-deflate;",
		"permessage-deflate; ;",
		"permessage-deflate junk",
		"permessage-deflate; client_max_window_bits=9 junk",
		"permessage-deflate; server_max_window_bits=\"1\"5",
	};
	struct deflate_offer	 o;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(offer(bad[i], &o) == -1, "accepted: %s", bad[i]);
}
END_TEST

/*
 * Every combination of the four parameters (absent or present, window
 * sizes 8..15 for each): accepted exactly when server_max_window_bits is
 * absent or at least ours, with the right answer.
 */
START_TEST(test_negotiate_every_combination)
{
	char	 line[256], out[DEFLATE_RESPONSE_MAX];
	int	 snct, cnct, sb, cb, bits, rv;

	for (bits = 9; bits <= 15; bits += 6)
	for (snct = 0; snct < 2; snct++)
	for (cnct = 0; cnct < 2; cnct++)
	for (sb = 7; sb <= 15; sb++)		/* 7: absent */
	for (cb = 6; cb <= 15; cb++) {		/* 6: absent, 7: no value */
		int n = snprintf(line, sizeof(line), "Sec-WebSocket-Extensions: permessage-deflate");

		if (snct)
			n += snprintf(line + n, sizeof(line) - n, "; server_no_context_takeover");
		if (cnct)
			n += snprintf(line + n, sizeof(line) - n, "; client_no_context_takeover");
		if (sb >= 8)
			n += snprintf(line + n, sizeof(line) - n, "; server_max_window_bits=%d", sb);
		if (cb == 7)
			n += snprintf(line + n, sizeof(line) - n, "; client_max_window_bits");
		else if (cb >= 8)
			n += snprintf(line + n, sizeof(line) - n, "; client_max_window_bits=%d", cb);
		snprintf(line + n, sizeof(line) - n, "\r\n");
		rv = nego(line, bits, out);
		if (sb >= 8 && sb < bits) {
			ck_assert_msg(rv == 0, "accepted %s", line);
			ck_assert_str_eq(out, "");
			continue;
		}
		ck_assert_msg(rv == 1, "declined %s", line);
		if (sb >= 8) {
			char want[DEFLATE_RESPONSE_MAX];

			snprintf(want, sizeof(want), ANSWER "; server_max_window_bits=%d", bits);
			ck_assert_str_eq(out, want);
		} else
			ck_assert_str_eq(out, ANSWER);
	}
}
END_TEST

START_TEST(test_negotiate_first_acceptable_wins)
{
	char	 out[DEFLATE_RESPONSE_MAX];

	/* none */
	ck_assert_int_eq(nego("", 15, out), 0);
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: foo, bar; x=1\r\n", 15, out), 0);
	/* an unknown parameter declines that offer, the next is taken */
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: permessage-deflate; foo, "
	    "permessage-deflate; server_max_window_bits=15\r\n", 15, out), 1);
	ck_assert_str_eq(out, ANSWER15);
	/* a window we cannot honour (under ours), then one we can */
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: permessage-deflate; "
	    "server_max_window_bits=9, permessage-deflate\r\n", 15, out), 1);
	ck_assert_str_eq(out, ANSWER);
	/* across several headers */
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: x-other\r\n"
	    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=99\r\n"
	    "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"15\"\r\n",
	    15, out), 1);
	ck_assert_str_eq(out, ANSWER15);
	/* a quoted comma stays inside its parameter: that offer is malformed */
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: permessage-deflate; "
	    "client_max_window_bits=\"9,permessage-deflate\"\r\n", 15, out), 0);
	/* every offer malformed */
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: permessage-deflate; "
	    "client_max_window_bits=16, permessage-deflate; server_max_window_bits\r\n",
	    15, out), 0);
	/* our own bits out of range: nothing is accepted */
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: permessage-deflate\r\n", 8, out), 0);
	ck_assert_int_eq(nego("Sec-WebSocket-Extensions: permessage-deflate\r\n", 16, out), 0);
}
END_TEST

/* ---- codec ------------------------------------------------------------ */

struct sink {
	uint8_t	*buf;
	size_t	 len;
	size_t	 cap;
	size_t	 calls;
	int	 refuse;
};

static int
sink_add(void *arg, const uint8_t *p, size_t n)
{
	struct sink	*s = arg;

	ck_assert_uint_le(n, DEFLATE_CHUNK);
	ck_assert_uint_gt(n, 0);
	s->calls++;
	if (s->refuse)
		return -1;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
		ck_assert_ptr_nonnull(s->buf);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static uint8_t *
sample(size_t n)
{
	uint8_t	*p = malloc(n ? n : 1);
	size_t	 i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)("{\"id\":42,\"name\":\"event\"}"[i % 24] + (i / 997) % 3);
	return p;
}

/* Inflate z (whole, or in pieces of step bytes) with limit max. */
static enum deflate_result
inflate_all(const uint8_t *z, size_t zlen, size_t step, uint64_t max, struct sink *s)
{
	struct deflate_inflater	*di = deflate_inflater_new(max);
	enum deflate_result	 r = DEFLATE_OK;
	size_t			 off = 0, n;

	ck_assert_ptr_nonnull(di);
	do {
		n = step == 0 || zlen - off < step ? zlen - off : step;
		r = deflate_inflate(di, z + off, n, off + n == zlen, sink_add, s);
		off += n;
	} while (r == DEFLATE_OK && off < zlen);
	ck_assert_uint_gt(deflate_inflater_bytes(di), 0);
	deflate_inflater_free(di);
	return r;
}

START_TEST(test_compress_round_trip)
{
	static const size_t	 sizes[] = { 0, 1, 16, 255, 256, 2048, 65536, 262144, 1 << 20 };
	struct deflate_ctx	 dc;
	struct sink		 s;
	uint8_t			*in, *z, *copy;
	size_t			 i, zlen;

	ck_assert_int_eq(deflate_ctx_init(&dc, 6, 15), 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		in = sample(sizes[i]);
		ck_assert_int_eq(deflate_compress(&dc, in, sizes[i], &z, &zlen), 0);
		/* headroom for a frame header, and no trailer */
		memset(z - DEFLATE_HEADROOM, 0xaa, DEFLATE_HEADROOM);
		ck_assert(zlen < DEFLATE_TRAILER_LEN ||
		    memcmp(z + zlen - 4, "\x00\x00\xff\xff", 4) != 0);
		if (sizes[i] >= 2048)
			ck_assert_uint_lt(zlen, sizes[i] / 4);
		copy = malloc(zlen + 1);
		memcpy(copy, z, zlen);
		memset(&s, 0, sizeof(s));
		ck_assert_int_eq(inflate_all(copy, zlen, 0, 0, &s), DEFLATE_OK);
		ck_assert_uint_eq(s.len, sizes[i]);
		ck_assert(sizes[i] == 0 || memcmp(s.buf, in, sizes[i]) == 0);
		/* in pieces of 1 and 7 bytes: the same */
		s.len = 0;
		ck_assert_int_eq(inflate_all(copy, zlen, 7, 0, &s), DEFLATE_OK);
		ck_assert_uint_eq(s.len, sizes[i]);
		if (sizes[i] <= 65536) {
			s.len = 0;
			ck_assert_int_eq(inflate_all(copy, zlen, 1, 0, &s), DEFLATE_OK);
			ck_assert_uint_eq(s.len, sizes[i]);
		}
		free(s.buf);
		free(copy);
		free(in);
	}
	deflate_ctx_free(&dc);
	/* each message on its own: the same input gives the same bytes */
	ck_assert_int_eq(deflate_ctx_init(&dc, 1, 9), 0);
	in = sample(4096);
	ck_assert_int_eq(deflate_compress(&dc, in, 4096, &z, &zlen), 0);
	copy = malloc(zlen);
	memcpy(copy, z, zlen);
	ck_assert_int_eq(deflate_compress(&dc, in, 4096, &z, &i), 0);
	ck_assert_uint_eq(i, zlen);
	ck_assert_int_eq(memcmp(z, copy, zlen), 0);
	free(copy);
	free(in);
	deflate_ctx_free(&dc);
	ck_assert_int_eq(deflate_ctx_init(&dc, 0, 15), -1);
	ck_assert_int_eq(deflate_ctx_init(&dc, 10, 15), -1);
	ck_assert_int_eq(deflate_ctx_init(&dc, 6, 8), -1);
	deflate_ctx_free(&dc);
}
END_TEST

/* zlib's own output with a BFINAL block (another client's way): fine too. */
START_TEST(test_inflate_final_block)
{
	uint8_t		 z[256];
	uLongf		 zlen = sizeof(z);
	z_stream	 zs;
	struct sink	 s;

	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)"hello hello hello";
	zs.avail_in = 17;
	zs.next_out = z;
	zs.avail_out = sizeof(z);
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	zlen = sizeof(z) - zs.avail_out;
	deflateEnd(&zs);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(inflate_all(z, zlen, 0, 0, &s), DEFLATE_OK);
	ck_assert_uint_eq(s.len, 17);
	/*
	 * After a final block a new stream may start (RFC 7692 7.2.3.4:
	 * 0x00, the empty stored block our 00 00 ff ff completes), but bytes
	 * that are no deflate data (0x07: the reserved block type) still fail.
	 */
	z[zlen] = 0x00;
	s.len = 0;
	ck_assert_int_eq(inflate_all(z, zlen + 1, 0, 0, &s), DEFLATE_OK);
	ck_assert_uint_eq(s.len, 17);
	z[zlen] = 0x07;
	s.len = 0;
	ck_assert_int_eq(inflate_all(z, zlen + 1, 0, 0, &s), DEFLATE_BAD);
	free(s.buf);
}
END_TEST

/*
 * A message ending in a final block (Z_FINISH, RFC 7692 7.2.3.4) whose
 * output passes a chunk boundary near its end: zlib takes the last byte
 * while output is still to come, and reaches the block's end only with
 * the 00 00 ff ff we add, which is then no "bytes after the final block".
 * Whole, in pieces, and with the message's last frame empty.
 */
START_TEST(test_inflate_final_block_at_chunk_end)
{
	static uint8_t		 in[3 * DEFLATE_CHUNK], z[3 * DEFLATE_CHUNK];
	struct deflate_inflater	*di;
	struct sink		 s;
	z_stream		 zs;
	size_t			 n, i, zlen = 0, base;
	int			 kind;

	memset(&s, 0, sizeof(s));
	for (base = DEFLATE_CHUNK; base <= 2 * DEFLATE_CHUNK; base += DEFLATE_CHUNK)
	for (kind = 0; kind < 2; kind++)
	for (n = base - 64; n < base + 640; n++) {
		for (i = 0; i < n; i++)
			in[i] = kind ? (uint8_t)"abcdefgh"[(i * 7 / 13) % 8] : 'a';
		memset(&zs, 0, sizeof(zs));
		ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
		    Z_OK);
		zs.next_in = in;
		zs.avail_in = (uInt)n;
		zs.next_out = z;
		zs.avail_out = sizeof(z);
		ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
		zlen = sizeof(z) - zs.avail_out;
		deflateEnd(&zs);
		s.len = 0;
		ck_assert_msg(inflate_all(z, zlen, 0, 0, &s) == DEFLATE_OK, "n=%zu kind=%d", n, kind);
		ck_assert_uint_eq(s.len, n);
		ck_assert_int_eq(memcmp(s.buf, in, n), 0);
		s.len = 0;
		ck_assert_msg(inflate_all(z, zlen, 7, 0, &s) == DEFLATE_OK, "n=%zu kind=%d", n, kind);
		ck_assert_uint_eq(s.len, n);
		/* the data in one frame, then an empty final frame */
		s.len = 0;
		ck_assert_ptr_nonnull(di = deflate_inflater_new(n));
		ck_assert_int_eq(deflate_inflate(di, z, zlen, 0, sink_add, &s), DEFLATE_OK);
		ck_assert_int_eq(deflate_inflate(di, z, 0, 1, sink_add, &s), DEFLATE_OK);
		ck_assert_uint_eq(s.len, n);
		deflate_inflater_free(di);
	}
	/* bytes of the client's own after a final block that are no deflate data stay invalid */
	s.len = 0;
	z[zlen] = 0x07;
	ck_assert_int_eq(inflate_all(z, zlen + 1, 0, 0, &s), DEFLATE_BAD);
	free(s.buf);
}
END_TEST

/* A bomb: a few KB that inflate to 64 MB stop at the limit, early. */
START_TEST(test_inflate_bomb_stops_at_limit)
{
	struct deflate_ctx	 dc;
	struct sink		 s;
	uint8_t			*in, *z;
	size_t			 n = 64u << 20, zlen;

	in = calloc(1, n);
	ck_assert_int_eq(deflate_ctx_init(&dc, 9, 15), 0);
	ck_assert_int_eq(deflate_compress(&dc, in, n, &z, &zlen), 0);
	ck_assert_uint_lt(zlen, 128 * 1024);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(inflate_all(z, zlen, 0, 100000, &s), DEFLATE_TOO_BIG);
	ck_assert_uint_le(s.len, 100000);
	/* no more than the limit was handed on, in bounded calls */
	ck_assert_uint_le(s.calls, 100000 / DEFLATE_CHUNK + 1);
	/* in pieces too */
	s.len = 0;
	ck_assert_int_eq(inflate_all(z, zlen, 333, 100000, &s), DEFLATE_TOO_BIG);
	ck_assert_uint_le(s.len, 100000);
	/* exactly at the limit is fine */
	ck_assert_int_eq(deflate_compress(&dc, in, 100000, &z, &zlen), 0);
	s.len = 0;
	ck_assert_int_eq(inflate_all(z, zlen, 0, 100000, &s), DEFLATE_OK);
	ck_assert_uint_eq(s.len, 100000);
	s.len = 0;
	ck_assert_int_eq(inflate_all(z, zlen, 0, 99999, &s), DEFLATE_TOO_BIG);
	free(s.buf);
	free(in);
	deflate_ctx_free(&dc);
}
END_TEST

/*
 * A message cut short inside a block (its last bytes lost) is invalid,
 * not the text its first bytes inflate to: what the 00 00 ff ff we add
 * then completes is no empty stored block.
 */
START_TEST(test_inflate_truncated_message_bad)
{
	struct deflate_ctx	 dc;
	struct sink		 s;
	uint8_t			*in, *z, *copy;
	size_t			 zlen, k, n;
	static const size_t	 sizes[] = { 24, 300, 5000 };

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(deflate_ctx_init(&dc, 6, 15), 0);
	for (n = 0; n < sizeof(sizes) / sizeof(*sizes); n++) {
		in = sample(sizes[n]);
		ck_assert_int_eq(deflate_compress(&dc, in, sizes[n], &z, &zlen), 0);
		copy = malloc(zlen);
		memcpy(copy, z, zlen);
		s.len = 0;
		ck_assert_int_eq(inflate_all(copy, zlen, 0, 0, &s), DEFLATE_OK);
		for (k = 1; k <= 4 && k < zlen; k++) {
			s.len = 0;
			ck_assert_msg(inflate_all(copy, zlen - k, 0, 0, &s) == DEFLATE_BAD,
			    "%zu bytes cut %zu short: %zu bytes out", zlen, k, s.len);
			s.len = 0;
			ck_assert_msg(inflate_all(copy, zlen - k, 3, 0, &s) == DEFLATE_BAD,
			    "%zu bytes cut %zu short, in pieces", zlen, k);
		}
		free(copy);
		free(in);
	}
	/* the empty message: an empty stored block only, or no bytes at all */
	s.len = 0;
	ck_assert_int_eq(inflate_all((const uint8_t *)"\x00", 1, 0, 0, &s), DEFLATE_OK);
	ck_assert_int_eq(inflate_all((const uint8_t *)"", 0, 0, 0, &s), DEFLATE_OK);
	ck_assert_uint_eq(s.len, 0);
	deflate_ctx_free(&dc);
	free(s.buf);
}
END_TEST

START_TEST(test_inflate_garbage_and_sink_refusal)
{
	static const uint8_t	 junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x12 };
	struct deflate_ctx	 dc;
	struct sink		 s;
	uint8_t			*z;
	size_t			 zlen;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(inflate_all(junk, sizeof(junk), 0, 0, &s), DEFLATE_BAD);
	ck_assert_int_eq(inflate_all(junk, 1, 0, 0, &s), DEFLATE_BAD);
	ck_assert_int_eq(deflate_ctx_init(&dc, 6, 15), 0);
	ck_assert_int_eq(deflate_compress(&dc, "some text to inflate", 20, &z, &zlen), 0);
	s.refuse = 1;
	ck_assert_int_eq(inflate_all(z, zlen, 0, 0, &s), DEFLATE_SINK);
	deflate_ctx_free(&dc);
	free(s.buf);
}
END_TEST

static Suite *
deflate_suite(void)
{
	Suite	*s = suite_create("deflate");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_offer_plain);
	tcase_add_test(tc, test_offer_each_parameter);
	tcase_add_test(tc, test_offer_invalid);
	tcase_add_test(tc, test_negotiate_every_combination);
	tcase_add_test(tc, test_negotiate_first_acceptable_wins);
	tcase_add_test(tc, test_compress_round_trip);
	tcase_add_test(tc, test_inflate_final_block);
	tcase_add_test(tc, test_inflate_final_block_at_chunk_end);
	tcase_add_test(tc, test_inflate_bomb_stops_at_limit);
	tcase_add_test(tc, test_inflate_truncated_message_bad);
	tcase_add_test(tc, test_inflate_garbage_and_sink_refusal);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(deflate_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
