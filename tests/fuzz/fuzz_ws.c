/*
 * libFuzzer target for the RFC 6455 decoder.
 *
 * Input: one configuration byte, then the byte stream.  The configuration
 * picks the limit (bits 0-1), client mode (bit 2) and the seed of the
 * piece sizes (bits 3-7).  The stream is decoded twice, whole and in
 * pieces; both runs must obey the decoder's contract and report the same
 * messages, control frames and error.  Any broken invariant abort()s.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *     src/utf8.c src/ws.c tests/fuzz/fuzz_ws.c -lcrypto
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(e)	do { if (!(e)) abort(); } while (0)

static const uint64_t	 limits[4] = { 0, 125, 4096, 1 << 20 };

struct run {
	uint64_t	 max;
	uint8_t		*msg;		/* message being assembled */
	size_t		 msglen;
	size_t		 msgcap;
	int		 open_op;	/* opcode of that message, 0 if none */
	uint32_t	 utf8;
	uint64_t	 hash;		/* of everything completed, in order */
	uint16_t	 errcode;
};

static void
hash_bytes(struct run *r, const void *p, size_t n)
{
	const uint8_t	*b = p;
	size_t		 i;

	for (i = 0; i < n; i++)
		r->hash = (r->hash ^ b[i]) * 0x100000001b3ULL;
}

static void
hash_event(struct run *r, int type, unsigned code, const void *p, size_t n)
{
	uint8_t	 h[8] = { (uint8_t)type, (uint8_t)(code >> 8), (uint8_t)code,
		    (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
		    (uint8_t)n, 0xa5 };

	hash_bytes(r, h, sizeof(h));
	if (n > 0)
		hash_bytes(r, p, n);
}

static void
msg_append(struct run *r, const uint8_t *p, size_t n)
{
	if (r->msglen + n > r->msgcap) {
		r->msgcap = (r->msglen + n) * 2;
		r->msg = realloc(r->msg, r->msgcap);
		CHECK(r->msg != NULL);
	}
	if (n > 0)
		memcpy(r->msg + r->msglen, p, n);
	r->msglen += n;
}

static void
on_data(struct run *r, const struct ws_event *ev)
{
	CHECK(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
	CHECK(ev->first == (r->open_op == 0));
	if (ev->first) {
		r->open_op = ev->opcode;
		r->msglen = 0;
		r->utf8 = UTF8_ACCEPT;
	}
	CHECK(ev->opcode == r->open_op);
	msg_append(r, ev->data, ev->len);
	CHECK(r->max == 0 || r->msglen <= r->max);
	if (ev->opcode == WS_OP_TEXT) {
		/* fail fast: no reported chunk may be already hopeless */
		r->utf8 = utf8_feed(r->utf8, ev->data, ev->len);
		CHECK(r->utf8 != UTF8_REJECT);
	}
	if (!ev->last)
		return;
	if (ev->opcode == WS_OP_TEXT)
		CHECK(r->utf8 == UTF8_ACCEPT && utf8_valid(r->msg, r->msglen));
	hash_event(r, 0x10 | ev->opcode, 0, r->msg, r->msglen);
	r->open_op = 0;
}

static void
on_control(struct run *r, const struct ws_event *ev)
{
	CHECK(ev->len <= WS_CONTROL_MAX);
	CHECK(ev->len == 0 || ev->data != NULL);
	if (ev->type == WS_EV_CLOSE) {
		if (ev->len == 0)
			CHECK(ev->code == WS_CLOSE_NO_STATUS);
		else {
			CHECK(ev->len >= 2 && ws_close_code_valid(ev->code));
			CHECK(ev->close_reason_len == ev->len - 2);
			CHECK(utf8_valid(ev->close_reason,
			    ev->close_reason_len));
		}
	}
	hash_event(r, ev->type, ev->code, ev->data, ev->len);
}

static void
on_error(struct run *r, struct ws_decoder *d, const struct ws_event *ev,
    uint8_t *rest, size_t left)
{
	struct ws_event	 again;

	CHECK(ev->code == WS_CLOSE_PROTOCOL || ev->code == WS_CLOSE_BAD_DATA ||
	    ev->code == WS_CLOSE_TOO_BIG);
	CHECK(ev->reason != NULL && strlen(ev->reason) <= WS_CONTROL_MAX - 2);
	/* sticky: nothing more is consumed, the same error comes back */
	CHECK(ws_decode(d, rest, left, &again) == 0);
	CHECK(again.type == WS_EV_ERROR && again.code == ev->code);
	CHECK(again.reason == ev->reason);
	r->errcode = ev->code;
	hash_event(r, WS_EV_ERROR, ev->code, NULL, 0);
}

/* One piece of input, decoded to the end.  Returns 0 once failed. */
static int
feed(struct run *r, struct ws_decoder *d, uint8_t *p, size_t left)
{
	struct ws_event	 ev;
	size_t		 used;

	for (;;) {
		used = ws_decode(d, p, left, &ev);
		CHECK(used <= left);
		if (ev.type == WS_EV_NEED_MORE) {
			CHECK(used == left);
			return 1;
		}
		if (ev.type == WS_EV_ERROR) {
			on_error(r, d, &ev, p + used, left - used);
			return 0;
		}
		/* every event but a repeated error eats input: no livelock */
		CHECK(used > 0);
		if (ev.type == WS_EV_DATA) {
			CHECK(ev.len == 0 ||
			    (ev.data >= p && ev.data + ev.len <= p + used));
			on_data(r, &ev);
		} else {
			CHECK(ev.type == WS_EV_PING || ev.type == WS_EV_PONG ||
			    ev.type == WS_EV_CLOSE);
			on_control(r, &ev);
		}
		p += used;
		left -= used;
	}
}

static uint32_t
next_piece(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	if ((*s & 3) == 0)
		return 1 + (*s >> 8) % 512;
	return 1 + (*s >> 8) % 8;
}

/* seed 0: the whole stream at once. */
static void
decode(struct run *r, uint8_t cfg, uint32_t seed, const uint8_t *data,
    size_t size)
{
	struct ws_decoder	 d;
	uint8_t			*buf;
	size_t			 off, n;

	memset(r, 0, sizeof(*r));
	r->max = limits[cfg & 3];
	ws_decoder_init(&d, r->max, !(cfg & 4));
	buf = malloc(size + 1);
	CHECK(buf != NULL);
	memcpy(buf, data, size);
	for (off = 0; off < size; off += n) {
		n = seed == 0 ? size - off : next_piece(&seed);
		if (n > size - off)
			n = size - off;
		if (!feed(r, &d, buf + off, n))
			break;
	}
	free(buf);
	free(r->msg);
	ws_decoder_free(&d);
}

/* Whatever we put in a close frame, a client reads back intact. */
static void
check_close_frame(const uint8_t *data, size_t size)
{
	struct ws_decoder	 d;
	struct ws_event		 ev;
	uint8_t			 f[2 + WS_CONTROL_MAX];
	char			 reason[256];
	size_t			 rlen, n = size < sizeof(reason) ? size :
				    sizeof(reason) - 1;

	memcpy(reason, data, n);
	reason[n] = '\0';
	rlen = strlen(reason);
	if (!utf8_valid((const uint8_t *)reason, rlen))
		return;
	n = ws_close_frame(f, WS_CLOSE_NORMAL, reason);
	CHECK(n >= 4 && n <= sizeof(f));
	ws_decoder_init(&d, 0, 0);
	CHECK(ws_decode(&d, f, n, &ev) == n);
	CHECK(ev.type == WS_EV_CLOSE && ev.code == WS_CLOSE_NORMAL);
	CHECK(ev.close_reason_len <= WS_CONTROL_MAX - 2);
	CHECK(ev.close_reason_len == 0 ||
	    memcmp(ev.close_reason, reason, ev.close_reason_len) == 0);
	/* cut short only where the next character would not fit */
	if (ev.close_reason_len < rlen)
		CHECK(ev.close_reason_len + 4 > WS_CONTROL_MAX - 2);
	ws_decoder_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run	 whole, pieces;
	uint8_t		 cfg;

	if (size < 1)
		return 0;
	cfg = data[0];
	data++;
	size--;
	decode(&whole, cfg, 0, data, size);
	decode(&pieces, cfg, 0x9e3779b9u ^ (cfg >> 3) ^ (uint32_t)size,
	    data, size);
	CHECK(whole.hash == pieces.hash);
	CHECK(whole.errcode == pieces.errcode);
	check_close_frame(data, size);
	return 0;
}
