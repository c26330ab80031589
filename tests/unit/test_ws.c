/*
 * ws.c: the RFC 6455 decoder rules, each fed as one buffer and again in
 * pieces of 1, 2, 3, 5, 7 and 13 bytes (which must give the same
 * messages), plus the encoder and the handshake key.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws.h"

/*
 * check's ck_assert reports every pass to the parent process, which is
 * too slow for per-byte checks on 100 kB streams: complain only on failure.
 */
#define CHECK(e)	do {						\
	if (!(e))							\
		ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #e);	\
} while (0)

/* ---- building client frames ------------------------------------------ */

struct wire {
	uint8_t		*b;
	size_t		 len;
	size_t		 cap;
	unsigned	 nframes;
};

static void
w_raw(struct wire *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2 + 64;
		w->b = realloc(w->b, w->cap);
		CHECK(w->b != NULL);
	}
	if (n > 0)
		memcpy(w->b + w->len, p, n);
	w->len += n;
}

/* A masked client frame; the key changes per frame to catch stale masks. */
static void
w_frame(struct wire *w, int op, int fin, const void *p, size_t n)
{
	uint8_t	 hdr[WS_HEADER_MAX], mask[4];
	size_t	 hlen, i;

	for (i = 0; i < 4; i++)
		mask[i] = (uint8_t)(0x5b + 0x31 * i + 0x47 * w->nframes);
	w->nframes++;
	hlen = ws_frame_header_masked(hdr, op, fin, n, mask);
	w_raw(w, hdr, hlen);
	w_raw(w, p, n);
	ws_mask(w->b + w->len - n, n, mask, 0);
}

static void
w_str(struct wire *w, int op, int fin, const char *s)
{
	w_frame(w, op, fin, s, strlen(s));
}

static void
w_free(struct wire *w)
{
	free(w->b);
	memset(w, 0, sizeof(*w));
}

/* ---- recording what the decoder reports ------------------------------ */

#define MAXEV	256

/* DATA chunks are merged into messages; incomplete messages are dropped. */
struct rev {
	enum ws_ev	 type;
	int		 opcode;
	uint16_t	 code;
	const char	*reason;
	uint8_t		*data;
	size_t		 len;
	size_t		 cap;
	size_t		 chunks;
};

struct rec {
	struct rev	 ev[MAXEV];
	int		 n;
	int		 open;		/* index of the message being built */
};

static void
rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->open = -1;
}

static void
rec_free(struct rec *r)
{
	int	 i;

	for (i = 0; i < r->n; i++)
		free(r->ev[i].data);
	rec_init(r);
}

static struct rev *
rec_new(struct rec *r, enum ws_ev type)
{
	struct rev	*e;

	CHECK(r->n < MAXEV);
	e = &r->ev[r->n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	return e;
}

static void
rev_append(struct rev *e, const uint8_t *p, size_t n)
{
	if (e->len + n + 1 > e->cap) {
		e->cap = (e->len + n + 1) * 2;
		e->data = realloc(e->data, e->cap);
		CHECK(e->data != NULL);
	}
	if (n > 0)
		memcpy(e->data + e->len, p, n);
	e->len += n;
	e->data[e->len] = '\0';
}

static void
rec_data(struct rec *r, const struct ws_event *ev)
{
	struct rev	*e;

	CHECK(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
	if (ev->first) {
		CHECK(r->open < 0);
		r->open = r->n;
		rec_new(r, WS_EV_DATA)->opcode = ev->opcode;
	}
	CHECK(r->open >= 0);
	e = &r->ev[r->open];
	CHECK(e->opcode == ev->opcode);
	rev_append(e, ev->data, ev->len);
	e->chunks++;
	if (ev->last)
		r->open = -1;
}

static void
rec_event(struct rec *r, const struct ws_event *ev)
{
	struct rev	*e;

	if (ev->type == WS_EV_DATA) {
		rec_data(r, ev);
		return;
	}
	e = rec_new(r, ev->type);
	e->opcode = ev->opcode;
	e->code = ev->code;
	e->reason = ev->reason;
	if (ev->type == WS_EV_CLOSE)
		rev_append(e, ev->close_reason, ev->close_reason_len);
	else if (ev->type != WS_EV_ERROR)
		rev_append(e, ev->data, ev->len);
}

/* Drop a message that never completed, so partial deliveries compare equal. */
static void
rec_drop_open(struct rec *r)
{
	int	 i = r->open;

	if (i < 0)
		return;
	free(r->ev[i].data);
	memmove(&r->ev[i], &r->ev[i + 1], (r->n - i - 1) * sizeof(r->ev[0]));
	r->n--;
	r->open = -1;
}

/* After an error, the decoder must repeat it and consume nothing. */
static void
check_sticky(struct ws_decoder *d, const struct ws_event *err)
{
	uint8_t		 more[2] = { 0x81, 0x80 };
	struct ws_event	 ev;

	ck_assert_uint_eq(ws_decode(d, more, sizeof(more), &ev), 0);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, err->code);
	ck_assert_str_eq(ev.reason, err->reason);
	ck_assert_uint_eq(ws_decode(d, NULL, 0, &ev), 0);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
}

/* One piece of input: call ws_decode until it wants more.  0 on error. */
static int
feed_piece(struct ws_decoder *d, uint8_t *p, size_t n, struct rec *r)
{
	struct ws_event	 ev;
	size_t		 used;

	for (;;) {
		used = ws_decode(d, p, n, &ev);
		CHECK(used <= n);
		if (ev.type == WS_EV_DATA)
			CHECK(ev.len == 0 ||
			    (ev.data >= p && ev.data + ev.len <= p + used));
		p += used;
		n -= used;
		if (ev.type == WS_EV_NEED_MORE) {
			CHECK(n == 0);
			return 1;
		}
		rec_event(r, &ev);
		if (ev.type == WS_EV_ERROR) {
			CHECK(ev.code != 0);
			CHECK(ev.reason != NULL);
			check_sticky(d, &ev);
			return 0;
		}
	}
}

/* Decode a copy of the wire (it is unmasked in place) in pieces of step. */
static void
run(const struct wire *w, uint64_t max, int server, size_t step,
    struct rec *r)
{
	struct ws_decoder	 d;
	uint8_t			*buf;
	size_t			 off, n;

	rec_init(r);
	ws_decoder_init(&d, max, server);
	buf = malloc(w->len + 1);
	CHECK(buf != NULL);
	memcpy(buf, w->b, w->len);
	for (off = 0; off < w->len; off += n) {
		n = step == 0 || w->len - off < step ? w->len - off : step;
		if (!feed_piece(&d, buf + off, n, r))
			break;
	}
	rec_drop_open(r);
	free(buf);
	ws_decoder_free(&d);
}

static void
rec_equal(const struct rec *a, const struct rec *b, size_t step)
{
	int	 i;

	ck_assert_msg(a->n == b->n, "step %zu: %d events, whole: %d", step,
	    b->n, a->n);
	for (i = 0; i < a->n; i++) {
		CHECK(a->ev[i].type == b->ev[i].type);
		CHECK(a->ev[i].opcode == b->ev[i].opcode);
		CHECK(a->ev[i].code == b->ev[i].code);
		CHECK(a->ev[i].len == b->ev[i].len);
		if (a->ev[i].len > 0)
			CHECK(memcmp(a->ev[i].data, b->ev[i].data,
			    a->ev[i].len) == 0);
	}
}

/* Whole buffer into r, then every piece size must agree with it. */
static void
run_all(const struct wire *w, uint64_t max, int server, struct rec *r)
{
	static const size_t	 steps[] = { 1, 2, 3, 5, 7, 13 };
	struct rec		 other;
	size_t			 i;

	run(w, max, server, 0, r);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		run(w, max, server, steps[i], &other);
		rec_equal(r, &other, steps[i]);
		rec_free(&other);
	}
}

/* The usual case: server mode, no limit. */
static void
decode(const struct wire *w, struct rec *r)
{
	run_all(w, 0, 1, r);
}

static void
assert_msg(const struct rec *r, int i, int opcode, const void *p, size_t n)
{
	ck_assert_int_gt(r->n, i);
	ck_assert_int_eq(r->ev[i].type, WS_EV_DATA);
	ck_assert_int_eq(r->ev[i].opcode, opcode);
	ck_assert_uint_eq(r->ev[i].len, n);
	if (n > 0)
		ck_assert(memcmp(r->ev[i].data, p, n) == 0);
}

static void
assert_text(const struct rec *r, int i, const char *s)
{
	assert_msg(r, i, WS_OP_TEXT, s, strlen(s));
}

/* Exactly one event, an error with this code. */
static void
assert_only_error(const struct rec *r, uint16_t code)
{
	ck_assert_int_eq(r->n, 1);
	ck_assert_int_eq(r->ev[0].type, WS_EV_ERROR);
	ck_assert_uint_eq(r->ev[0].code, code);
}

static void
assert_last_error(const struct rec *r, uint16_t code)
{
	ck_assert_int_ge(r->n, 1);
	ck_assert_int_eq(r->ev[r->n - 1].type, WS_EV_ERROR);
	ck_assert_uint_eq(r->ev[r->n - 1].code, code);
}

static uint8_t *
pattern(size_t n)
{
	uint8_t	*p = malloc(n + 1);
	size_t	 i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 8));
	return p;
}

/* ---- payload lengths ------------------------------------------------- */

START_TEST(test_len7_text_frame)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_TEXT, 1, "Hello");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 1);
	assert_text(&r, 0, "Hello");
	ck_assert_uint_eq(r.ev[0].chunks, 1);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_len16_binary_frames)
{
	static const size_t	 sizes[] = { 126, 127, 1000, 65535 };
	struct wire		 w = { 0 };
	struct rec		 r;
	uint8_t			*p = pattern(65535);
	size_t			 i;

	for (i = 0; i < 4; i++)
		w_frame(&w, WS_OP_BINARY, 1, p, sizes[i]);
	ck_assert_uint_eq(w.b[1] & 0x7f, 126);
	decode(&w, &r);
	ck_assert_int_eq(r.n, 4);
	for (i = 0; i < 4; i++)
		assert_msg(&r, i, WS_OP_BINARY, p, sizes[i]);
	rec_free(&r);
	w_free(&w);
	free(p);
}
END_TEST

START_TEST(test_len64_binary_frames)
{
	struct wire	 w = { 0 };
	struct rec	 r;
	uint8_t		*p = pattern(70001);

	w_frame(&w, WS_OP_BINARY, 1, p, 65536);
	w_frame(&w, WS_OP_BINARY, 1, p, 70001);
	ck_assert_uint_eq(w.b[1] & 0x7f, 127);
	decode(&w, &r);
	ck_assert_int_eq(r.n, 2);
	assert_msg(&r, 0, WS_OP_BINARY, p, 65536);
	assert_msg(&r, 1, WS_OP_BINARY, p, 70001);
	rec_free(&r);
	w_free(&w);
	free(p);
}
END_TEST

START_TEST(test_nonminimal_lengths_allowed)
{
	static const uint8_t	 len16[] = { 0x81, 0x80 | 126, 0, 5, 0, 0, 0, 0 };
	static const uint8_t	 len64[] = { 0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0,
				    0, 5, 0, 0, 0, 0 };
	struct wire		 w = { 0 };
	struct rec		 r;

	/* zero masks keep the payload readable */
	w_raw(&w, len16, sizeof(len16));
	w_raw(&w, "short", 5);
	w_raw(&w, len64, sizeof(len64));
	w_raw(&w, "words", 5);
	decode(&w, &r);
	ck_assert_int_eq(r.n, 2);
	assert_text(&r, 0, "short");
	assert_text(&r, 1, "words");
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_len64_top_bit_fails_1002)
{
	static const uint8_t	 hdr[] = { 0x82, 0x80 | 127, 0x80, 0, 0, 0, 0,
				    0, 0, 1, 1, 2, 3, 4 };
	struct wire		 w = { 0 };
	struct rec		 r;

	w_raw(&w, hdr, sizeof(hdr));
	run_all(&w, 0, 1, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	/* a limit does not turn it into 1009 */
	run_all(&w, 1000, 1, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	w_free(&w);
}
END_TEST

/* ---- header checks --------------------------------------------------- */

START_TEST(test_unmasked_client_frame_fails_1002)
{
	static const uint8_t	 f[] = { 0x81, 0x02, 'h', 'i' };
	struct wire		 w = { 0 };
	struct rec		 r;
	struct ws_decoder	 d;
	struct ws_event		 ev;
	uint8_t			 b[sizeof(f)];

	w_raw(&w, f, sizeof(f));
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	ck_assert_str_eq(r.ev[0].reason, "unmasked frame");
	rec_free(&r);
	w_free(&w);
	/* refused at the second byte, before any payload */
	memcpy(b, f, sizeof(b));
	ws_decoder_init(&d, 0, 1);
	ck_assert_uint_eq(ws_decode(&d, b, 2, &ev), 2);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_client_mode_takes_unmasked_frames)
{
	static const uint8_t	 f[] = { 0x81, 0x02, 'h', 'i' };
	struct wire		 w = { 0 };
	struct rec		 r;

	w_raw(&w, f, sizeof(f));
	run_all(&w, 0, 0, &r);
	ck_assert_int_eq(r.n, 1);
	assert_text(&r, 0, "hi");
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_client_mode_refuses_masked_frames)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_TEXT, 1, "hi");
	run_all(&w, 0, 0, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	w_free(&w);
}
END_TEST

/* Decode w whole with permessage-deflate negotiated; events into ev (at most n). */
static int
decode_deflate(struct wire *w, struct ws_event *ev, int n)
{
	struct ws_decoder	 d;
	size_t			 off = 0;
	int			 k = 0;

	ws_decoder_init(&d, 1 << 20, 1);
	ws_decoder_deflate(&d, 1);
	while (k < n) {
		off += ws_decode(&d, w->b + off, w->len - off, &ev[k]);
		if (ev[k].type == WS_EV_NEED_MORE)
			break;
		if (ev[k++].type == WS_EV_ERROR)
			break;
	}
	ws_decoder_free(&d);
	return k;
}

/* RFC 7692 6: RSV1 marks a compressed message, on its first frame only. */
START_TEST(test_rsv1_with_deflate)
{
	struct wire		 w = { 0 };
	struct ws_event		 ev[8];
	int			 n;

	/* compressed bytes are not UTF-8: the caller validates after inflating */
	w_frame(&w, WS_OP_TEXT, 0, "\xff\xfe", 2);
	w.b[0] |= 0x40;
	w_frame(&w, WS_OP_CONT, 1, "\x80", 1);
	w_str(&w, WS_OP_TEXT, 1, "plain");
	n = decode_deflate(&w, ev, 8);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(ev[0].type, WS_EV_DATA);
	ck_assert_int_eq(ev[0].compressed, 1);
	ck_assert_int_eq(ev[0].first, 1);
	ck_assert_int_eq(ev[1].compressed, 1);
	ck_assert_int_eq(ev[1].last, 1);
	ck_assert_int_eq(ev[2].compressed, 0);
	w_free(&w);

	/* a plain message is still UTF-8 checked */
	w_frame(&w, WS_OP_TEXT, 1, "\xff", 1);
	n = decode_deflate(&w, ev, 8);
	ck_assert_int_eq(ev[n - 1].type, WS_EV_ERROR);
	ck_assert_int_eq(ev[n - 1].code, WS_CLOSE_BAD_DATA);
	w_free(&w);

	/* RSV1 on a continuation */
	w_frame(&w, WS_OP_TEXT, 0, "ab", 2);
	w.b[0] |= 0x40;
	w_frame(&w, WS_OP_CONT, 1, "c", 1);
	w.b[w.len - 1 - 4 - 2] |= 0x40;
	n = decode_deflate(&w, ev, 8);
	ck_assert_int_eq(ev[n - 1].type, WS_EV_ERROR);
	ck_assert_int_eq(ev[n - 1].code, WS_CLOSE_PROTOCOL);
	w_free(&w);

	/* on a control frame, and RSV2/RSV3 even when negotiated */
	w_str(&w, WS_OP_PING, 1, "x");
	w.b[0] |= 0x40;
	n = decode_deflate(&w, ev, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(ev[0].code, WS_CLOSE_PROTOCOL);
	w_free(&w);
	w_str(&w, WS_OP_TEXT, 1, "x");
	w.b[0] |= 0x60;
	n = decode_deflate(&w, ev, 8);
	ck_assert_int_eq(ev[0].code, WS_CLOSE_PROTOCOL);
	w_free(&w);
	/* binary may be compressed too */
	w_frame(&w, WS_OP_BINARY, 1, "\x01", 1);
	w.b[0] |= 0x40;
	n = decode_deflate(&w, ev, 8);
	ck_assert_int_eq(ev[0].type, WS_EV_DATA);
	ck_assert_int_eq(ev[0].compressed, 1);
	w_free(&w);
}
END_TEST

START_TEST(test_frame_header_rsv1)
{
	uint8_t	 h[WS_HEADER_MAX];

	ck_assert_uint_eq(ws_frame_header_rsv1(h, WS_OP_TEXT, 300), 4);
	ck_assert_uint_eq(h[0], 0xc1);
	ck_assert_uint_eq(h[1], 126);
}
END_TEST

START_TEST(test_reserved_bits_fail_1002)
{
	static const uint8_t	 rsv[] = { 0x40, 0x20, 0x10 };
	struct wire		 w = { 0 };
	struct rec		 r;
	int			 i;

	for (i = 0; i < 3; i++) {
		w_str(&w, WS_OP_TEXT, 1, "x");
		w.b[0] |= rsv[i];
		decode(&w, &r);
		assert_only_error(&r, WS_CLOSE_PROTOCOL);
		ck_assert_str_eq(r.ev[0].reason, "reserved bits set");
		rec_free(&r);
		w_free(&w);
	}
	/* on a control frame too */
	w_str(&w, WS_OP_PING, 1, "x");
	w.b[0] |= 0x40;
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_unknown_opcodes_fail_1002)
{
	static const int	 ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
	struct wire		 w = { 0 };
	struct rec		 r;
	size_t			 i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		w_str(&w, ops[i], 1, "");
		decode(&w, &r);
		assert_only_error(&r, WS_CLOSE_PROTOCOL);
		rec_free(&r);
		w_free(&w);
		/* also in the middle of a fragmented message */
		w_str(&w, WS_OP_TEXT, 0, "a");
		w_str(&w, ops[i], 1, "");
		decode(&w, &r);
		assert_only_error(&r, WS_CLOSE_PROTOCOL);
		rec_free(&r);
		w_free(&w);
	}
}
END_TEST

/* ---- control frames -------------------------------------------------- */

START_TEST(test_ping_pong_reported_with_payload)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_PING, 1, "are you there");
	w_str(&w, WS_OP_PONG, 1, "yes");
	w_str(&w, WS_OP_PING, 1, "");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 3);
	ck_assert_int_eq(r.ev[0].type, WS_EV_PING);
	ck_assert_str_eq((char *)r.ev[0].data, "are you there");
	ck_assert_int_eq(r.ev[1].type, WS_EV_PONG);
	ck_assert_str_eq((char *)r.ev[1].data, "yes");
	ck_assert_int_eq(r.ev[2].type, WS_EV_PING);
	ck_assert_uint_eq(r.ev[2].len, 0);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_control_payload_125_ok)
{
	struct wire	 w = { 0 };
	struct rec	 r;
	uint8_t		*p = pattern(125);

	w_frame(&w, WS_OP_PING, 1, p, 125);
	decode(&w, &r);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.ev[0].type, WS_EV_PING);
	ck_assert_uint_eq(r.ev[0].len, 125);
	ck_assert(memcmp(r.ev[0].data, p, 125) == 0);
	rec_free(&r);
	w_free(&w);
	free(p);
}
END_TEST

START_TEST(test_control_payload_over_125_fails_1002)
{
	static const int	 ops[] = { WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE };
	struct wire		 w = { 0 };
	struct rec		 r;
	uint8_t			*p = pattern(126);
	size_t			 i;

	for (i = 0; i < 3; i++) {
		w_frame(&w, ops[i], 1, p, 126);
		decode(&w, &r);
		assert_only_error(&r, WS_CLOSE_PROTOCOL);
		rec_free(&r);
		w_free(&w);
	}
	free(p);
}
END_TEST

/* The limit is on the value: a 16-bit length of 5 is fine, of 126 not. */
START_TEST(test_control_length_judged_by_value)
{
	static const uint8_t	 ok[] = { 0x89, 0x80 | 126, 0, 5, 0, 0, 0, 0 };
	static const uint8_t	 big[] = { 0x89, 0x80 | 126, 0, 126 };
	struct wire		 w = { 0 };
	struct rec		 r;

	w_raw(&w, ok, sizeof(ok));
	w_raw(&w, "hello", 5);
	decode(&w, &r);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.ev[0].type, WS_EV_PING);
	ck_assert_str_eq((char *)r.ev[0].data, "hello");
	rec_free(&r);
	w_free(&w);
	/* refused at the length, before the mask or payload */
	w_raw(&w, big, sizeof(big));
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	ck_assert_str_eq(r.ev[0].reason, "control frame too long");
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_fragmented_control_fails_1002)
{
	static const int	 ops[] = { WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE };
	struct wire		 w = { 0 };
	struct rec		 r;
	size_t			 i;

	for (i = 0; i < 3; i++) {
		w_str(&w, ops[i], 0, "");
		decode(&w, &r);
		assert_only_error(&r, WS_CLOSE_PROTOCOL);
		rec_free(&r);
		w_free(&w);
	}
}
END_TEST

START_TEST(test_control_between_fragments_reported_in_order)
{
	static const struct { enum ws_ev t; int first, last; const char *s; }
	    want[] = {
		{ WS_EV_DATA, 1, 0, "Hel" },
		{ WS_EV_PING, 0, 0, "p" },
		{ WS_EV_DATA, 0, 0, "lo " },
		{ WS_EV_PONG, 0, 0, "q" },
		{ WS_EV_DATA, 0, 1, "World" },
	};
	struct wire		 w = { 0 };
	struct rec		 r;
	struct ws_decoder	 d;
	struct ws_event		 ev;
	uint8_t			*p;
	size_t			 used, left, i;

	w_str(&w, WS_OP_TEXT, 0, "Hel");
	w_str(&w, WS_OP_PING, 1, "p");
	w_str(&w, WS_OP_CONT, 0, "lo ");
	w_str(&w, WS_OP_PONG, 1, "q");
	w_str(&w, WS_OP_CONT, 1, "World");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 3);
	assert_text(&r, 0, "Hello World");
	ck_assert_int_eq(r.ev[1].type, WS_EV_PING);
	ck_assert_int_eq(r.ev[2].type, WS_EV_PONG);
	rec_free(&r);

	/* the raw order, as the caller sees it */
	ws_decoder_init(&d, 0, 1);
	for (p = w.b, left = w.len, i = 0; i < 5; i++) {
		used = ws_decode(&d, p, left, &ev);
		p += used;
		left -= used;
		ck_assert_int_eq(ev.type, want[i].t);
		ck_assert_uint_eq(ev.len, strlen(want[i].s));
		ck_assert(memcmp(ev.data, want[i].s, ev.len) == 0);
		if (ev.type == WS_EV_DATA) {
			ck_assert_int_eq(ev.first, want[i].first);
			ck_assert_int_eq(ev.last, want[i].last);
			ck_assert_int_eq(ev.opcode, WS_OP_TEXT);
		}
	}
	ck_assert_uint_eq(left, 0);
	ck_assert_uint_eq(ws_decode(&d, p, 0, &ev), 0);
	ck_assert_int_eq(ev.type, WS_EV_NEED_MORE);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

/* ---- fragmentation --------------------------------------------------- */

START_TEST(test_continuation_without_message_fails_1002)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_CONT, 1, "orphan");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	w_free(&w);

	/* the previous message is over: nothing to continue */
	w_str(&w, WS_OP_TEXT, 1, "done");
	w_str(&w, WS_OP_CONT, 0, "more");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 2);
	assert_text(&r, 0, "done");
	assert_last_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_new_message_inside_fragmented_fails_1002)
{
	static const int	 ops[] = { WS_OP_TEXT, WS_OP_BINARY };
	struct wire		 w = { 0 };
	struct rec		 r;
	int			 i, j;

	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++) {
			w_str(&w, ops[i], 0, "first");
			w_str(&w, WS_OP_PING, 1, "");
			w_str(&w, ops[j], 1, "second");
			decode(&w, &r);
			ck_assert_int_eq(r.n, 2);
			ck_assert_int_eq(r.ev[0].type, WS_EV_PING);
			assert_last_error(&r, WS_CLOSE_PROTOCOL);
			rec_free(&r);
			w_free(&w);
		}
}
END_TEST

START_TEST(test_fragmented_binary_reassembles)
{
	struct wire	 w = { 0 };
	struct rec	 r;
	uint8_t		*p = pattern(1000);

	w_frame(&w, WS_OP_BINARY, 0, p, 1);
	w_frame(&w, WS_OP_CONT, 0, p + 1, 200);
	w_frame(&w, WS_OP_CONT, 0, p + 201, 0);
	w_frame(&w, WS_OP_CONT, 1, p + 201, 799);
	w_frame(&w, WS_OP_TEXT, 1, "next", 4);
	decode(&w, &r);
	ck_assert_int_eq(r.n, 2);
	assert_msg(&r, 0, WS_OP_BINARY, p, 1000);
	assert_text(&r, 1, "next");
	rec_free(&r);
	w_free(&w);
	free(p);
}
END_TEST

static void
expect_data(struct ws_decoder *d, uint8_t **p, size_t *left, int first,
    int last, const char *s)
{
	struct ws_event	 ev;
	size_t		 used;

	used = ws_decode(d, *p, *left, &ev);
	*p += used;
	*left -= used;
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert_int_eq(ev.first, first);
	ck_assert_int_eq(ev.last, last);
	ck_assert_uint_eq(ev.len, strlen(s));
	ck_assert(memcmp(ev.data, s, ev.len) == 0);
}

START_TEST(test_empty_fin_frame_gives_empty_last_chunk)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	uint8_t			*p;
	size_t			 left;

	w_str(&w, WS_OP_TEXT, 0, "abc");
	w_str(&w, WS_OP_CONT, 1, "");
	ws_decoder_init(&d, 0, 1);
	p = w.b;
	left = w.len;
	expect_data(&d, &p, &left, 1, 0, "abc");
	expect_data(&d, &p, &left, 0, 1, "");
	ck_assert_uint_eq(left, 0);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_empty_text_message_gives_first_last_chunk)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	struct rec		 r;
	uint8_t			*p;
	size_t			 left;

	w_str(&w, WS_OP_TEXT, 1, "");
	w_str(&w, WS_OP_BINARY, 1, "");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 2);
	assert_text(&r, 0, "");
	assert_msg(&r, 1, WS_OP_BINARY, "", 0);
	rec_free(&r);
	ws_decoder_init(&d, 0, 1);
	p = w.b;
	left = w.len;
	expect_data(&d, &p, &left, 1, 1, "");
	expect_data(&d, &p, &left, 1, 1, "");
	ck_assert_uint_eq(left, 0);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_empty_nonfinal_frames_report_nothing)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	uint8_t			*p;
	size_t			 left;

	w_str(&w, WS_OP_TEXT, 0, "");
	w_str(&w, WS_OP_CONT, 0, "");
	w_str(&w, WS_OP_CONT, 1, "a");
	ws_decoder_init(&d, 0, 1);
	p = w.b;
	left = w.len;
	expect_data(&d, &p, &left, 1, 1, "a");
	ck_assert_uint_eq(left, 0);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

/* ---- partial frames and masking -------------------------------------- */

START_TEST(test_partial_frame_reported_as_it_arrives)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	struct ws_event		 ev;
	uint8_t			*p;
	size_t			 left;

	w_str(&w, WS_OP_TEXT, 1, "0123456789");
	ws_decoder_init(&d, 0, 1);
	p = w.b;
	/* header only: nothing to say */
	ck_assert_uint_eq(ws_decode(&d, p, 6, &ev), 6);
	ck_assert_int_eq(ev.type, WS_EV_NEED_MORE);
	p += 6;
	left = 3;
	expect_data(&d, &p, &left, 1, 0, "012");
	ck_assert_uint_eq(left, 0);
	left = 1;
	expect_data(&d, &p, &left, 0, 0, "3");
	left = 6;
	expect_data(&d, &p, &left, 0, 1, "456789");
	ck_assert_uint_eq(ws_decode(&d, p, 0, &ev), 0);
	ck_assert_int_eq(ev.type, WS_EV_NEED_MORE);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_payload_unmasked_in_place)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	struct ws_event		 ev;

	w_str(&w, WS_OP_BINARY, 1, "in place");
	ws_decoder_init(&d, 0, 1);
	ck_assert_uint_eq(ws_decode(&d, w.b, w.len, &ev), w.len);
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert_ptr_eq(ev.data, w.b + 6);
	ck_assert(memcmp(w.b + 6, "in place", 8) == 0);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

/* Every split of a frame with a distinct mask, at every pair of cut points. */
START_TEST(test_mask_position_kept_across_calls)
{
	struct wire		 w = { 0 };
	struct rec		 r, whole;
	struct ws_decoder	 d;
	uint8_t			*buf;
	size_t			 a, b;

	w_str(&w, WS_OP_TEXT, 1, "abcdefghijklm");
	run(&w, 0, 1, 0, &whole);
	assert_text(&whole, 0, "abcdefghijklm");
	buf = malloc(w.len);
	for (a = 0; a <= w.len; a++)
		for (b = a; b <= w.len; b++) {
			memcpy(buf, w.b, w.len);
			rec_init(&r);
			ws_decoder_init(&d, 0, 1);
			ck_assert(feed_piece(&d, buf, a, &r));
			ck_assert(feed_piece(&d, buf + a, b - a, &r));
			ck_assert(feed_piece(&d, buf + b, w.len - b, &r));
			rec_equal(&whole, &r, a * 100 + b);
			rec_free(&r);
			ws_decoder_free(&d);
		}
	free(buf);
	rec_free(&whole);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

/* ---- max_message ----------------------------------------------------- */

START_TEST(test_message_at_limit_accepted)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_TEXT, 1, "0123456789");
	w_str(&w, WS_OP_BINARY, 0, "01234");
	w_str(&w, WS_OP_PING, 1, "pings do not count");
	w_str(&w, WS_OP_CONT, 1, "56789");
	run_all(&w, 10, 1, &r);
	ck_assert_int_eq(r.n, 3);
	assert_text(&r, 0, "0123456789");
	assert_msg(&r, 1, WS_OP_BINARY, "0123456789", 10);
	ck_assert_int_eq(r.ev[2].type, WS_EV_PING);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_frame_over_limit_fails_1009_at_header)
{
	struct wire		 w = { 0 };
	struct rec		 r;
	struct ws_decoder	 d;
	struct ws_event		 ev;

	w_str(&w, WS_OP_TEXT, 1, "0123456789X");
	run_all(&w, 10, 1, &r);
	assert_only_error(&r, WS_CLOSE_TOO_BIG);
	ck_assert_str_eq(r.ev[0].reason, "message too big");
	rec_free(&r);
	/* decided on the length byte, before the mask or payload */
	ws_decoder_init(&d, 10, 1);
	ck_assert_uint_eq(ws_decode(&d, w.b, 2, &ev), 2);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, WS_CLOSE_TOO_BIG);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_fragments_over_limit_fail_1009)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_BINARY, 0, "012345");
	w_str(&w, WS_OP_CONT, 0, "6789");
	w_str(&w, WS_OP_CONT, 1, "X");
	run_all(&w, 10, 1, &r);
	assert_only_error(&r, WS_CLOSE_TOO_BIG);
	rec_free(&r);
	w_free(&w);
}
END_TEST

/* The header of a frame with the given first byte and length n (unmasked). */
static enum ws_ev
header_verdict(struct ws_decoder *d, uint8_t b0, uint16_t n)
{
	uint8_t			 h[8] = { b0, 0x80 | 126, (uint8_t)(n >> 8), (uint8_t)n };
	struct ws_event		 ev;

	(void)ws_decode(d, h, 4, &ev);	/* all 4, or up to the failing byte */
	return ev.type;
}

/*
 * A compressed message is held to the limit once inflated (by the caller);
 * on the wire it may pass it by the limit again + 4 KiB, as deflate grows
 * incompressible bytes and flushes.  A plain one may not.
 */
START_TEST(test_compressed_message_has_deflate_slack_on_the_wire)
{
	struct ws_decoder	 d;
	uint16_t		 slack = 1000 + 4096;

	ws_decoder_init(&d, 1000, 1);
	ws_decoder_deflate(&d, 1);
	ck_assert_int_eq(header_verdict(&d, 0xc1, 1000 + slack), WS_EV_NEED_MORE);
	ws_decoder_free(&d);
	ws_decoder_init(&d, 1000, 1);
	ws_decoder_deflate(&d, 1);
	ck_assert_int_eq(header_verdict(&d, 0xc1, 1000 + slack + 1), WS_EV_ERROR);
	ws_decoder_free(&d);
	/* plain: the limit itself */
	ws_decoder_init(&d, 1000, 1);
	ws_decoder_deflate(&d, 1);
	ck_assert_int_eq(header_verdict(&d, 0x81, 1001), WS_EV_ERROR);
	ws_decoder_free(&d);
	/* without deflate negotiated RSV1 is a protocol error, not a bigger limit */
	ws_decoder_init(&d, 1000, 1);
	ck_assert_int_eq(header_verdict(&d, 0xc1, 1000), WS_EV_ERROR);
	ws_decoder_free(&d);
}
END_TEST

/*
 * A compressed message of two frames, a bytes then b bytes, decoded with a
 * limit of 1000: the type of the last event (DATA when taken whole).
 */
static enum ws_ev
two_compressed_frames(size_t a, size_t b, uint16_t *code)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	struct ws_event		 ev;
	char			 buf[8192];
	size_t			 off = 0;

	memset(buf, 'x', sizeof(buf));
	w_frame(&w, WS_OP_TEXT, 0, buf, a);
	w.b[0] |= 0x40;
	w_frame(&w, WS_OP_CONT, 1, buf, b);
	ws_decoder_init(&d, 1000, 1);
	ws_decoder_deflate(&d, 1);
	do
		off += ws_decode(&d, w.b + off, w.len - off, &ev);
	while (ev.type != WS_EV_ERROR && !(ev.type == WS_EV_DATA && ev.last) &&
	    off < w.len);
	*code = ev.type == WS_EV_ERROR ? ev.code : 0;
	ws_decoder_free(&d);
	w_free(&w);
	return ev.type;
}

/* The slack holds for the whole of a fragmented compressed message. */
START_TEST(test_compressed_fragments_share_the_slack)
{
	uint16_t	 code;

	/* 600 + 5496 = 1000 + slack: taken (whether it is deflate is the
	 * caller's to find) */
	ck_assert_int_eq(two_compressed_frames(600, 5496, &code), WS_EV_DATA);
	ck_assert_int_eq(two_compressed_frames(600, 5497, &code), WS_EV_ERROR);
	ck_assert_uint_eq(code, WS_CLOSE_TOO_BIG);
}
END_TEST

/* A smaller max set mid-message (a reload) judges the next frame by it. */
START_TEST(test_smaller_max_mid_message_fails_next_frame_1009)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	struct ws_event		 ev;
	size_t			 off = 0, first;

	w_str(&w, WS_OP_TEXT, 0, "0123456789");
	first = w.len;
	w_str(&w, WS_OP_CONT, 1, "X");
	ws_decoder_init(&d, 100, 1);
	while (off < first) {
		off += ws_decode(&d, w.b + off, first - off, &ev);
		ck_assert(ev.type == WS_EV_DATA || ev.type == WS_EV_NEED_MORE);
	}
	ws_decoder_set_max(&d, 5);	/* the message already holds 10 */
	off += ws_decode(&d, w.b + off, w.len - off, &ev);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, WS_CLOSE_TOO_BIG);
	ws_decoder_free(&d);
	/* and a larger one lets a message grow past the old (frames afresh:
	 * decoding unmasks in place) */
	w_free(&w);
	w_str(&w, WS_OP_TEXT, 0, "0123456789");
	w_str(&w, WS_OP_CONT, 1, "X");
	ws_decoder_init(&d, 10, 1);
	for (off = 0; off < first; )
		off += ws_decode(&d, w.b + off, first - off, &ev);
	ws_decoder_set_max(&d, 11);
	do
		off += ws_decode(&d, w.b + off, w.len - off, &ev);
	while (ev.type == WS_EV_NEED_MORE && off < w.len);
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert(ev.last);
	ws_decoder_free(&d);
	w_free(&w);
}
END_TEST

START_TEST(test_huge_declared_length_fails_1009_without_payload)
{
	static const uint8_t	 hdr[] = { 0x82, 0x80 | 127, 0x7f, 0xff, 0xff,
				    0xff, 0xff, 0xff, 0xff, 0xff };
	struct ws_decoder	 d;
	struct ws_event		 ev;
	uint8_t			 b[sizeof(hdr)];
	size_t			 i;

	memcpy(b, hdr, sizeof(b));
	ws_decoder_init(&d, 1 << 20, 1);
	for (i = 0; i < sizeof(b) - 1; i++) {
		ck_assert_uint_eq(ws_decode(&d, b + i, 1, &ev), 1);
		ck_assert_int_eq(ev.type, WS_EV_NEED_MORE);
	}
	ck_assert_uint_eq(ws_decode(&d, b + i, 1, &ev), 1);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, WS_CLOSE_TOO_BIG);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_limit_counts_each_message_afresh)
{
	struct wire	 w = { 0 };
	struct rec	 r;
	int		 i;

	for (i = 0; i < 5; i++) {
		w_str(&w, WS_OP_TEXT, 0, "01234");
		w_str(&w, WS_OP_CONT, 1, "56789");
	}
	run_all(&w, 10, 1, &r);
	ck_assert_int_eq(r.n, 5);
	for (i = 0; i < 5; i++)
		assert_text(&r, i, "0123456789");
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_no_limit_when_zero)
{
	struct wire	 w = { 0 };
	struct rec	 r;
	uint8_t		*p = pattern(100000);

	w_frame(&w, WS_OP_BINARY, 1, p, 100000);
	run_all(&w, 0, 1, &r);
	assert_msg(&r, 0, WS_OP_BINARY, p, 100000);
	rec_free(&r);
	w_free(&w);
	free(p);
}
END_TEST

/* ---- UTF-8 ----------------------------------------------------------- */

START_TEST(test_text_invalid_utf8_fails_1007)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_TEXT, 1, "ab\xed\xa0\x80" "cd");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_BAD_DATA);
	ck_assert_str_eq(r.ev[0].reason, "invalid UTF-8");
	rec_free(&r);
	w_free(&w);
	/* in a continuation frame */
	w_str(&w, WS_OP_TEXT, 0, "\xce\xba\xe1\xbd\xb9");
	w_str(&w, WS_OP_CONT, 1, "\xcf\x83\xc0\xaf");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_BAD_DATA);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_text_invalid_utf8_fails_before_frame_ends)
{
	struct wire		 w = { 0 };
	struct ws_decoder	 d;
	struct ws_event		 ev;
	uint8_t			*p;
	size_t			 left;

	w_str(&w, WS_OP_TEXT, 1, "ab\xf4\x90\x80\x80 and much more text");
	ws_decoder_init(&d, 0, 1);
	p = w.b;
	left = 6 + 3;
	/* F4 may still start a valid sequence */
	expect_data(&d, &p, &left, 1, 0, "ab\xf4");
	/* 90 proves > U+10FFFF: fail now, though the rest is not sent yet */
	ck_assert_uint_le(ws_decode(&d, p, 1, &ev), 1);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, WS_CLOSE_BAD_DATA);
	w_free(&w);
	ws_decoder_free(&d);
}
END_TEST

START_TEST(test_text_utf8_split_across_frames_ok)
{
	static const char	 s[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc"
				    "\xce\xb5\xf0\x9f\x98\x80";
	struct wire		 w = { 0 };
	struct rec		 r;
	size_t			 k, n = sizeof(s) - 1;

	for (k = 0; k <= n; k++) {
		w_frame(&w, WS_OP_TEXT, 0, s, k);
		w_str(&w, WS_OP_PING, 1, "");
		w_frame(&w, WS_OP_CONT, 1, s + k, n - k);
		decode(&w, &r);
		ck_assert_int_eq(r.n, 2);
		/* an empty first frame says nothing: the ping comes first */
		assert_text(&r, k == 0 ? 1 : 0, s);
		rec_free(&r);
		w_free(&w);
	}
}
END_TEST

START_TEST(test_text_ending_mid_sequence_fails_1007)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_TEXT, 1, "price: \xe2\x82");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_BAD_DATA);
	rec_free(&r);
	w_free(&w);
	/* the same, ended by an empty final continuation */
	w_str(&w, WS_OP_TEXT, 0, "price: \xe2\x82");
	w_str(&w, WS_OP_CONT, 1, "");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_BAD_DATA);
	rec_free(&r);
	w_free(&w);
	/* completed by the next frame it is fine */
	w_str(&w, WS_OP_TEXT, 0, "price: \xe2\x82");
	w_str(&w, WS_OP_CONT, 1, "\xac");
	decode(&w, &r);
	assert_text(&r, 0, "price: \xe2\x82\xac");
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_binary_not_validated)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_BINARY, 0, "\xff\xfe\xc0");
	w_str(&w, WS_OP_CONT, 1, "\xed\xa0\x80\xe2");
	w_str(&w, WS_OP_TEXT, 1, "ok");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 2);
	assert_msg(&r, 0, WS_OP_BINARY, "\xff\xfe\xc0\xed\xa0\x80\xe2", 7);
	assert_text(&r, 1, "ok");
	rec_free(&r);
	w_free(&w);
}
END_TEST

/* ---- close frames ---------------------------------------------------- */

static void
w_close(struct wire *w, unsigned code, const char *reason)
{
	uint8_t	 p[WS_CONTROL_MAX];
	size_t	 n = strlen(reason);

	p[0] = code >> 8;
	p[1] = code & 0xff;
	memcpy(p + 2, reason, n);
	w_frame(w, WS_OP_CLOSE, 1, p, 2 + n);
}

START_TEST(test_close_empty_is_1005)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_CLOSE, 1, "");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.ev[0].type, WS_EV_CLOSE);
	ck_assert_uint_eq(r.ev[0].code, WS_CLOSE_NO_STATUS);
	ck_assert_uint_eq(r.ev[0].len, 0);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_close_code_and_reason)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_close(&w, 1001, "bye \xe2\x82\xac");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.ev[0].type, WS_EV_CLOSE);
	ck_assert_uint_eq(r.ev[0].code, 1001);
	ck_assert_str_eq((char *)r.ev[0].data, "bye \xe2\x82\xac");
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_close_between_fragments)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_TEXT, 0, "half");
	w_close(&w, 1000, "");
	decode(&w, &r);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.ev[0].type, WS_EV_CLOSE);
	ck_assert_uint_eq(r.ev[0].code, 1000);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_close_one_byte_payload_fails_1002)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_str(&w, WS_OP_CLOSE, 1, "\x03");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_PROTOCOL);
	rec_free(&r);
	w_free(&w);
}
END_TEST

START_TEST(test_close_invalid_codes_fail_1002)
{
	static const unsigned	 bad[] = { 0, 1, 999, 1004, 1005, 1006, 1015,
				    1016, 1100, 2000, 2999, 5000, 65535 };
	struct wire		 w = { 0 };
	struct rec		 r;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		w_close(&w, bad[i], "why");
		decode(&w, &r);
		assert_only_error(&r, WS_CLOSE_PROTOCOL);
		rec_free(&r);
		w_free(&w);
	}
}
END_TEST

START_TEST(test_close_valid_codes_accepted)
{
	static const unsigned	 good[] = { 1000, 1001, 1002, 1003, 1007, 1008,
				    1009, 1010, 1011, 1012, 1013, 1014, 3000,
				    3999, 4000, 4999 };
	struct wire		 w = { 0 };
	struct rec		 r;
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		w_close(&w, good[i], "");
		decode(&w, &r);
		ck_assert_int_eq(r.n, 1);
		ck_assert_int_eq(r.ev[0].type, WS_EV_CLOSE);
		ck_assert_uint_eq(r.ev[0].code, good[i]);
		rec_free(&r);
		w_free(&w);
	}
}
END_TEST

START_TEST(test_close_code_valid_ranges)
{
	unsigned	 c;
	int		 want;

	for (c = 0; c <= 70000; c++) {
		want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
		    (c >= 3000 && c <= 4999);
		CHECK(ws_close_code_valid(c) == want);
	}
}
END_TEST

START_TEST(test_close_reason_invalid_utf8_fails_1007)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_close(&w, 1000, "bad \xc3\x28");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_BAD_DATA);
	rec_free(&r);
	w_free(&w);
	w_close(&w, 1000, "cut \xe2\x82");
	decode(&w, &r);
	assert_only_error(&r, WS_CLOSE_BAD_DATA);
	rec_free(&r);
	w_free(&w);
}
END_TEST

/* ---- sticky failure -------------------------------------------------- */

START_TEST(test_error_is_sticky)
{
	struct wire		 w = { 0 }, ok = { 0 };
	struct ws_decoder	 d;
	struct ws_event		 ev;

	w_str(&w, WS_OP_CONT, 1, "x");
	w_str(&ok, WS_OP_TEXT, 1, "fine");
	ws_decoder_init(&d, 0, 1);
	ws_decode(&d, w.b, w.len, &ev);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, WS_CLOSE_PROTOCOL);
	ck_assert_str_eq(ev.reason, "unexpected continuation");
	memset(&ev, 0, sizeof(ev));
	ck_assert_uint_eq(ws_decode(&d, ok.b, ok.len, &ev), 0);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.code, WS_CLOSE_PROTOCOL);
	ck_assert_str_eq(ev.reason, "unexpected continuation");
	w_free(&w);
	w_free(&ok);
	ws_decoder_free(&d);
}
END_TEST

/* ---- a long mixed stream --------------------------------------------- */

static uint32_t
prng(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random valid traffic must come out exactly as it went in, at any split. */
START_TEST(test_random_valid_stream_roundtrip)
{
	static const char	 text[] = "plain \xc3\xa9t\xc3\xa9 \xe2\x82\xac"
				    " \xf0\x9f\x98\x80 end";
	struct wire		 w = { 0 };
	struct rec		 r;
	const uint8_t		*src;
	uint8_t			*p = pattern(3000);
	uint32_t		 seed = 0x2545f491;
	size_t			 len[40], off, n, k, nfrag;
	int			 i, j, op[40], npings = 0;

	for (i = 0; i < 40; i++) {
		op[i] = prng(&seed) & 1 ? WS_OP_TEXT : WS_OP_BINARY;
		src = op[i] == WS_OP_TEXT ? (const uint8_t *)text : p;
		len[i] = op[i] == WS_OP_TEXT ? sizeof(text) - 1 :
		    prng(&seed) % 3000;
		nfrag = 1 + prng(&seed) % 4;
		for (off = 0, k = 0; k < nfrag; k++, off += n) {
			n = k + 1 == nfrag ? len[i] - off :
			    prng(&seed) % (len[i] - off + 1);
			w_frame(&w, k == 0 ? op[i] : WS_OP_CONT, k + 1 == nfrag,
			    src + off, n);
			if (prng(&seed) % 3 == 0) {
				w_str(&w, WS_OP_PING, 1, "hb");
				npings++;
			}
		}
	}
	run_all(&w, 0, 1, &r);
	ck_assert_int_eq(r.n, 40 + npings);
	for (i = 0, j = 0; i < r.n; i++) {
		if (r.ev[i].type == WS_EV_PING)
			continue;
		assert_msg(&r, i, op[j], op[j] == WS_OP_TEXT ?
		    (const uint8_t *)text : p, len[j]);
		j++;
	}
	ck_assert_int_eq(j, 40);
	rec_free(&r);
	w_free(&w);
	free(p);
}
END_TEST

/* ---- encoder --------------------------------------------------------- */

START_TEST(test_frame_header_minimal_lengths)
{
	uint8_t	 h[WS_HEADER_MAX];

	ck_assert_uint_eq(ws_frame_header(h, WS_OP_TEXT, 1, 0), 2);
	ck_assert_uint_eq(h[0], 0x81);
	ck_assert_uint_eq(h[1], 0);
	ck_assert_uint_eq(ws_frame_header(h, WS_OP_BINARY, 0, 125), 2);
	ck_assert_uint_eq(h[0], 0x02);
	ck_assert_uint_eq(h[1], 125);
	ck_assert_uint_eq(ws_frame_header(h, WS_OP_TEXT, 1, 126), 4);
	ck_assert_uint_eq(h[1], 126);
	ck_assert_uint_eq(h[2], 0);
	ck_assert_uint_eq(h[3], 126);
	ck_assert_uint_eq(ws_frame_header(h, WS_OP_TEXT, 1, 65535), 4);
	ck_assert_uint_eq(h[2], 0xff);
	ck_assert_uint_eq(h[3], 0xff);
	ck_assert_uint_eq(ws_frame_header(h, WS_OP_CONT, 1, 65536), 10);
	ck_assert_uint_eq(h[0], 0x80);
	ck_assert_uint_eq(h[1], 127);
	ck_assert(memcmp(h + 2, "\0\0\0\0\0\1\0\0", 8) == 0);
	ck_assert_uint_eq(ws_frame_header(h, WS_OP_PONG, 1,
	    0x0102030405060708ULL), 10);
	ck_assert_uint_eq(h[0], 0x8a);
	ck_assert(memcmp(h + 2, "\1\2\3\4\5\6\7\10", 8) == 0);
}
END_TEST

START_TEST(test_frame_header_masked)
{
	static const uint8_t	 mask[4] = { 1, 2, 3, 4 };
	uint8_t			 h[WS_HEADER_MAX];

	ck_assert_uint_eq(ws_frame_header_masked(h, WS_OP_TEXT, 1, 5, mask), 6);
	ck_assert_uint_eq(h[1], 0x85);
	ck_assert(memcmp(h + 2, mask, 4) == 0);
	ck_assert_uint_eq(ws_frame_header_masked(h, WS_OP_TEXT, 1, 300,
	    mask), 8);
	ck_assert_uint_eq(h[1], 0x80 | 126);
	ck_assert(memcmp(h + 4, mask, 4) == 0);
	ck_assert_uint_eq(ws_frame_header_masked(h, WS_OP_TEXT, 1, 1 << 20,
	    mask), 14);
	ck_assert_uint_eq(h[1], 0x80 | 127);
	ck_assert(memcmp(h + 10, mask, 4) == 0);
}
END_TEST

START_TEST(test_mask_in_pieces_matches_whole)
{
	static const uint8_t	 mask[4] = { 0xde, 0xad, 0xbe, 0xef };
	uint8_t			 a[37], b[37];
	size_t			 cut;

	for (cut = 0; cut <= sizeof(a); cut++) {
		memset(a, 'z', sizeof(a));
		memset(b, 'z', sizeof(b));
		ws_mask(a, sizeof(a), mask, 0);
		ws_mask(b, cut, mask, 0);
		ws_mask(b + cut, sizeof(b) - cut, mask, cut);
		ck_assert(memcmp(a, b, sizeof(a)) == 0);
	}
	ck_assert_uint_eq(a[0], 'z' ^ 0xde);
	ck_assert_uint_eq(a[5], 'z' ^ 0xad);
}
END_TEST

START_TEST(test_close_frame_code_zero_is_empty)
{
	uint8_t	 f[2 + WS_CONTROL_MAX];

	ck_assert_uint_eq(ws_close_frame(f, 0, "ignored"), 2);
	ck_assert_uint_eq(f[0], 0x88);
	ck_assert_uint_eq(f[1], 0);
}
END_TEST

/* What we send, a client decoder reads back. */
static void
decode_close(const uint8_t *f, size_t n, uint16_t code, const char *reason)
{
	struct wire	 w = { 0 };
	struct rec	 r;

	w_raw(&w, f, n);
	run_all(&w, 0, 0, &r);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.ev[0].type, WS_EV_CLOSE);
	ck_assert_uint_eq(r.ev[0].code, code);
	ck_assert_str_eq((char *)r.ev[0].data, reason);
	rec_free(&r);
	w_free(&w);
}

START_TEST(test_close_frame_code_and_reason)
{
	uint8_t	 f[2 + WS_CONTROL_MAX];

	ck_assert_uint_eq(ws_close_frame(f, 1008, "Invalid token"), 17);
	ck_assert(memcmp(f, "\x88\x0f\x03\xf0Invalid token", 17) == 0);
	decode_close(f, 17, 1008, "Invalid token");
	ck_assert_uint_eq(ws_close_frame(f, 1000, NULL), 4);
	decode_close(f, 4, 1000, "");
}
END_TEST

START_TEST(test_close_frame_truncates_at_utf8_boundary)
{
	static const char	*unit[] = { "a", "\xc3\xa9", "\xe2\x82\xac",
				    "\xf0\x9f\x98\x80" };
	uint8_t			 f[2 + WS_CONTROL_MAX];
	char			 reason[600], want[128];
	size_t			 i, n, u, ulen;

	for (u = 0; u < 4; u++) {
		ulen = strlen(unit[u]);
		for (i = 0; i < 150; i++) {
			reason[0] = '\0';
			for (n = 0; n < i; n++)
				strcat(reason, unit[u]);
			n = ws_close_frame(f, 1001, reason);
			ck_assert_uint_le(n, 2 + WS_CONTROL_MAX);
			ck_assert_uint_eq(f[1], n - 2);
			ck_assert(utf8_valid(f + 4, n - 4));
			/* as many whole characters as fit in 123 bytes */
			ck_assert_uint_eq(n - 4, (i * ulen <= 123 ? i :
			    123 / ulen) * ulen);
			memcpy(want, f + 4, n - 4);
			want[n - 4] = '\0';
			decode_close(f, n, 1001, want);
		}
	}
}
END_TEST

/* ---- handshake ------------------------------------------------------- */

START_TEST(test_accept_key_rfc6455_example)
{
	static const char	 key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	char			 out[29];

	ws_accept_key(key, sizeof(key) - 1, out, sizeof(out));
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(test_accept_key_short_output_is_empty)
{
	static const char	 key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	char			 out[28];

	memset(out, 'x', sizeof(out));
	ws_accept_key(key, sizeof(key) - 1, out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

static Suite *
ws_suite(void)
{
	Suite	*s = suite_create("ws");
	TCase	*tc;

	tc = tcase_create("lengths");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_len7_text_frame);
	tcase_add_test(tc, test_len16_binary_frames);
	tcase_add_test(tc, test_len64_binary_frames);
	tcase_add_test(tc, test_nonminimal_lengths_allowed);
	tcase_add_test(tc, test_len64_top_bit_fails_1002);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_test(tc, test_unmasked_client_frame_fails_1002);
	tcase_add_test(tc, test_client_mode_takes_unmasked_frames);
	tcase_add_test(tc, test_client_mode_refuses_masked_frames);
	tcase_add_test(tc, test_reserved_bits_fail_1002);
	tcase_add_test(tc, test_unknown_opcodes_fail_1002);
	suite_add_tcase(s, tc);

	tc = tcase_create("control");
	tcase_add_test(tc, test_ping_pong_reported_with_payload);
	tcase_add_test(tc, test_control_payload_125_ok);
	tcase_add_test(tc, test_control_payload_over_125_fails_1002);
	tcase_add_test(tc, test_control_length_judged_by_value);
	tcase_add_test(tc, test_fragmented_control_fails_1002);
	tcase_add_test(tc, test_control_between_fragments_reported_in_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("fragments");
	tcase_add_test(tc, test_continuation_without_message_fails_1002);
	tcase_add_test(tc, test_new_message_inside_fragmented_fails_1002);
	tcase_add_test(tc, test_fragmented_binary_reassembles);
	tcase_add_test(tc, test_empty_fin_frame_gives_empty_last_chunk);
	tcase_add_test(tc, test_empty_text_message_gives_first_last_chunk);
	tcase_add_test(tc, test_empty_nonfinal_frames_report_nothing);
	tcase_add_test(tc, test_partial_frame_reported_as_it_arrives);
	tcase_add_test(tc, test_payload_unmasked_in_place);
	tcase_add_test(tc, test_mask_position_kept_across_calls);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_message_at_limit_accepted);
	tcase_add_test(tc, test_frame_over_limit_fails_1009_at_header);
	tcase_add_test(tc, test_fragments_over_limit_fail_1009);
	tcase_add_test(tc, test_smaller_max_mid_message_fails_next_frame_1009);
	tcase_add_test(tc, test_huge_declared_length_fails_1009_without_payload);
	tcase_add_test(tc, test_limit_counts_each_message_afresh);
	tcase_add_test(tc, test_no_limit_when_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_test(tc, test_text_invalid_utf8_fails_1007);
	tcase_add_test(tc, test_text_invalid_utf8_fails_before_frame_ends);
	tcase_add_test(tc, test_text_utf8_split_across_frames_ok);
	tcase_add_test(tc, test_text_ending_mid_sequence_fails_1007);
	tcase_add_test(tc, test_binary_not_validated);
	suite_add_tcase(s, tc);

	tc = tcase_create("close");
	tcase_add_test(tc, test_close_empty_is_1005);
	tcase_add_test(tc, test_close_code_and_reason);
	tcase_add_test(tc, test_close_between_fragments);
	tcase_add_test(tc, test_close_one_byte_payload_fails_1002);
	tcase_add_test(tc, test_close_invalid_codes_fail_1002);
	tcase_add_test(tc, test_close_valid_codes_accepted);
	tcase_add_test(tc, test_close_code_valid_ranges);
	tcase_add_test(tc, test_close_reason_invalid_utf8_fails_1007);
	tcase_add_test(tc, test_error_is_sticky);
	tcase_add_test(tc, test_random_valid_stream_roundtrip);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoder");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_frame_header_minimal_lengths);
	tcase_add_test(tc, test_frame_header_masked);
	tcase_add_test(tc, test_mask_in_pieces_matches_whole);
	tcase_add_test(tc, test_close_frame_code_zero_is_empty);
	tcase_add_test(tc, test_close_frame_code_and_reason);
	tcase_add_test(tc, test_close_frame_truncates_at_utf8_boundary);
	tcase_add_test(tc, test_accept_key_rfc6455_example);
	tcase_add_test(tc, test_accept_key_short_output_is_empty);
	tcase_add_test(tc, test_rsv1_with_deflate);
	tcase_add_test(tc, test_compressed_message_has_deflate_slack_on_the_wire);
	tcase_add_test(tc, test_compressed_fragments_share_the_slack);
	tcase_add_test(tc, test_frame_header_rsv1);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(ws_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
