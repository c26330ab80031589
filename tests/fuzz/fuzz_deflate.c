/*
 * libFuzzer target for src/deflate.c: the permessage-deflate negotiation
 * and the inflate path with its cap.
 *
 * Input: one configuration byte (bits 0-1: the inflate limit, bits 2-4:
 * the piece size, bits 5-7: our window bits), then an extension header
 * value up to the first newline, then the bytes handed to an inflater as
 * one client message.  Invariants: a negotiation answers a NUL-terminated
 * permessage-deflate response or nothing; an inflater never hands on more
 * than its limit, in chunks of at most DEFLATE_CHUNK, and the same stream
 * gives the same result whole and in pieces; what the compressor makes
 * inflates back to its input, and so does zlib's Z_FINISH (a final block,
 * RFC 7692 7.2.3.4) of the input repeated past an inflate chunk.  Any
 * broken invariant abort()s.
 *
 * Build: see tests/fuzz/run (src/deflate.c src/http.c ... -lz).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "deflate.h"
#include "http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(e)	do { if (!(e)) abort(); } while (0)

static const uint64_t	 limits[4] = { 0, 1, 4096, 1 << 20 };
static const size_t	 steps[8] = { 0, 1, 2, 3, 7, 64, 1000, 65536 };

struct out {
	uint64_t	 len;
	uint64_t	 hash;
	uint8_t		*keep;		/* the first keepcap bytes */
	size_t		 keepcap;
};

static int
sink(void *arg, const uint8_t *p, size_t n)
{
	struct out	*o = arg;
	size_t		 i;

	CHECK(n > 0 && n <= DEFLATE_CHUNK);
	for (i = 0; i < n; i++) {
		if (o->len + i < o->keepcap)
			o->keep[o->len + i] = p[i];
		o->hash = (o->hash ^ p[i]) * 1099511628211ULL;
	}
	o->len += n;
	return 0;
}

static enum deflate_result
run(const uint8_t *p, size_t n, size_t step, uint64_t max, struct out *o)
{
	struct deflate_inflater	*di = deflate_inflater_new(max);
	enum deflate_result	 r = DEFLATE_OK;
	size_t			 off = 0, k;

	CHECK(di != NULL);
	do {
		k = step == 0 || n - off < step ? n - off : step;
		r = deflate_inflate(di, p + off, k, off + k == n, sink, o);
		off += k;
	} while (r == DEFLATE_OK && off < n);
	CHECK(max == 0 || o->len <= max);
	CHECK(deflate_inflated(di) == o->len);
	deflate_inflater_free(di);
	return r;
}

static void
negotiate(const uint8_t *p, size_t n, int bits)
{
	struct http_request	 req;
	struct deflate_offer	 o;
	char			 head[2048], out[DEFLATE_RESPONSE_MAX];
	size_t			 used;
	int			 len;

	(void)deflate_offer_parse((const char *)p, n, &o);
	len = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Extensions: %.*s\r\n\r\n", (int)(n > 1900 ? 1900 : n), p);
	if (len <= 0 || memchr(p, '\0', n) != NULL ||
	    http_parse_request(head, (size_t)len, sizeof(head), &req, &used) != HTTP_PARSE_DONE)
		return;
	if (deflate_negotiate(&req, bits, out, sizeof(out)) == 1) {
		CHECK(strlen(out) < sizeof(out));
		static const char want[] = "permessage-deflate; "
		    "server_no_context_takeover; client_no_context_takeover";

		CHECK(strncmp(out, want, sizeof(want) - 1) == 0);
	} else
		CHECK(out[0] == '\0');
}

/* What we compress inflates back to it. */
static void
round_trip(const uint8_t *p, size_t n, int bits)
{
	struct deflate_ctx	 dc;
	struct out		 o = { 0 };
	uint8_t			*z;
	size_t			 zlen;

	if (n > 65536)
		n = 65536;
	CHECK(deflate_ctx_init(&dc, 1 + (int)(n % 9), bits) == 0);
	CHECK(deflate_compress(&dc, p, n, &z, &zlen) == 0);
	o.keep = malloc(n + 1);
	o.keepcap = n;
	CHECK(run(z, zlen, 0, n, &o) == DEFLATE_OK);
	CHECK(o.len == n && memcmp(o.keep, p, n) == 0);
	free(o.keep);
	deflate_ctx_free(&dc);
}

/*
 * The input repeated to a little under or over DEFLATE_CHUNK, ended with
 * a final block the way some clients do: it inflates back whole and in
 * pieces (the trailer we add follows the final block).
 */
static void
final_block(const uint8_t *p, size_t n, size_t step)
{
	static uint8_t		 in[DEFLATE_CHUNK + 1024], z[2 * sizeof(in)];
	struct out		 o = { 0 };
	z_stream		 zs;
	size_t			 len, i, zlen;

	if (n == 0)
		return;
	len = DEFLATE_CHUNK - 64 + (p[0] * 131 + n) % 1024;
	for (i = 0; i < len; i++)
		in[i] = p[i % n];
	memset(&zs, 0, sizeof(zs));
	CHECK(deflateInit2(&zs, 1 + (int)(n % 9), Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	zs.next_in = in;
	zs.avail_in = (uInt)len;
	zs.next_out = z;
	zs.avail_out = sizeof(z);
	CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	zlen = sizeof(z) - zs.avail_out;
	deflateEnd(&zs);
	CHECK(run(z, zlen, 0, 0, &o) == DEFLATE_OK && o.len == len);
	o.len = 0;
	CHECK(run(z, zlen, step, 0, &o) == DEFLATE_OK && o.len == len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t		*nl, *msg;
	struct out		 a = { 0 }, b = { 0 };
	enum deflate_result	 ra, rb;
	uint64_t		 max;
	size_t			 hlen, mlen, step;
	int			 bits;

	if (size < 1)
		return 0;
	max = limits[data[0] & 3];
	step = steps[(data[0] >> 2) & 7];
	bits = 9 + ((data[0] >> 5) % 7);
	data++;
	size--;
	nl = memchr(data, '\n', size);
	hlen = nl != NULL ? (size_t)(nl - data) : size;
	msg = nl != NULL ? nl + 1 : data + size;
	mlen = size - (size_t)(msg - data);
	negotiate(data, hlen, bits);
	ra = run(msg, mlen, 0, max, &a);
	rb = run(msg, mlen, step, max, &b);
	/* pieces change nothing for a whole stream; a limit hit stops both */
	if (ra == DEFLATE_OK && rb == DEFLATE_OK)
		CHECK(a.len == b.len && a.hash == b.hash);
	/* without a limit, not even whether the stream is valid */
	if (max == 0)
		CHECK(ra == rb);
	round_trip(msg, mlen, bits);
	final_block(msg, mlen, step);
	return 0;
}
