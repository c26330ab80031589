/*
 * permessage-deflate (RFC 7692).  The negotiation follows 7.1: an offer
 * with an unknown, repeated or invalid parameter is declined, never the
 * handshake; the first offer that can be honoured wins.  Messages are
 * compressed once each with zlib's raw deflate (no context kept across
 * messages), and client messages are inflated in bounded chunks with a cap
 * on the inflated size, by an inflater that exists only for one message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "http.h"
#include "util.h"
#include "deflate.h"

#define DEFLATE_NAME	"permessage-deflate"

static const uint8_t deflate_trailer[DEFLATE_TRAILER_LEN] = { 0x00, 0x00, 0xff, 0xff };

/* RFC 7230 3.2.6 tchar */
static int
deflate_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
deflate_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Skip OWS from off; the new offset. */
static size_t
deflate_ows(const char *s, size_t n, size_t off)
{
	while (off < n && deflate_is_ows(s[off]))
		off++;
	return off;
}

/* A token at off: its length (0: none). */
static size_t
deflate_token(const char *s, size_t n, size_t off)
{
	size_t	 i;

	for (i = off; i < n && deflate_is_tchar((unsigned char)s[i]); i++)
		;
	return i - off;
}

/*
 * A parameter value at *off, a token or a quoted-string, unescaped into
 * val (at most vmax - 1 bytes, NUL-terminated).  0, or -1 when malformed
 * or too long to be a window size.
 */
static int
deflate_value(const char *s, size_t n, size_t *off, char *val, size_t vmax)
{
	size_t	 i = *off, k = 0, t;

	if (i < n && s[i] == '"') {
		for (i++; i < n && s[i] != '"'; i++) {
			if (s[i] == '\\' && ++i == n)
				return -1;
			if (k + 1 >= vmax)
				return -1;
			val[k++] = s[i];
		}
		if (i == n)
			return -1;
		*off = i + 1;
	} else {
		if ((t = deflate_token(s, n, i)) == 0 || t >= vmax)
			return -1;
		memcpy(val, s + i, t);
		k = t;
		*off = i + t;
	}
	val[k] = '\0';
	return 0;
}

/* A window size, "8" to "15" as RFC 7692 7.1.2's ABNF has it: no sign, no leading 0. */
static int
deflate_bits(const char *v)
{
	if (v[0] >= '8' && v[0] <= '9' && v[1] == '\0')
		return v[0] - '0';
	if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && v[2] == '\0')
		return 10 + v[1] - '0';
	return -1;
}

/* One parameter, name and value (NULL: none); 0, or -1 to decline the offer. */
static int
deflate_param(struct deflate_offer *o, uint8_t *seen, const char *name, size_t nlen,
    const char *val)
{
	static const char *const names[] = { "server_no_context_takeover",
	    "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits" };
	int	 i, bits = 0;

	for (i = 0; i < 4; i++)
		if (strlen(names[i]) == nlen && util_strncaseeq(name, nlen, names[i]))
			break;
	if (i == 4 || (*seen & (1 << i)))
		return -1;	/* unknown, or repeated (7.1: declined) */
	*seen |= (uint8_t)(1 << i);
	if (i < 2 && val != NULL)
		return -1;	/* these have no value */
	if (val != NULL && (bits = deflate_bits(val)) == -1)
		return -1;
	switch (i) {
	case 0:
		o->do_server_nct = 1;
		break;
	case 1:
		o->do_client_nct = 1;
		break;
	case 2:
		if (val == NULL)
			return -1;	/* server_max_window_bits needs a value */
		o->do_server_bits = (uint8_t)bits;
		break;
	default:
		o->do_client_bits = val == NULL ? -1 : (int8_t)bits;
		break;
	}
	return 0;
}

int
deflate_offer_parse(const char *s, size_t n, struct deflate_offer *o)
{
	char	 name[64], val[8];
	size_t	 off, t;
	uint8_t	 seen = 0;
	int	 has_val;

	memset(o, 0, sizeof(*o));
	off = deflate_ows(s, n, 0);
	t = deflate_token(s, n, off);
	if (t != strlen(DEFLATE_NAME) || !util_strncaseeq(s + off, t, DEFLATE_NAME))
		return 0;
	for (off = deflate_ows(s, n, off + t); off < n; ) {
		if (s[off] != ';')
			return -1;
		off = deflate_ows(s, n, off + 1);
		if ((t = deflate_token(s, n, off)) == 0 || t >= sizeof(name))
			return -1;
		memcpy(name, s + off, t);
		name[t] = '\0';
		off = deflate_ows(s, n, off + t);
		has_val = off < n && s[off] == '=';
		if (has_val) {
			off = deflate_ows(s, n, off + 1);
			if (deflate_value(s, n, &off, val, sizeof(val)) == -1)
				return -1;
			off = deflate_ows(s, n, off);
		}
		if (deflate_param(o, &seen, name, t, has_val ? val : NULL) == -1)
			return -1;
	}
	return 1;
}

/*
 * Whether an offer can be honoured compressing with bits: a
 * server_max_window_bits under ours cannot (we do not compress each
 * subscriber's way); the rest always can.  The response, or 0.
 */
static int
deflate_answer(const struct deflate_offer *o, int bits, char *out, size_t outlen)
{
	int	 n;

	if (o->do_server_bits != 0 && o->do_server_bits < bits)
		return 0;
	if (o->do_server_bits != 0)
		n = snprintf(out, outlen, "%s; server_no_context_takeover; "
		    "client_no_context_takeover; server_max_window_bits=%d", DEFLATE_NAME, bits);
	else
		n = snprintf(out, outlen, "%s; server_no_context_takeover; "
		    "client_no_context_takeover", DEFLATE_NAME);
	return n > 0 && (size_t)n < outlen;
}

int
deflate_negotiate(const struct http_request *req, int bits, char *out, size_t outlen)
{
	struct deflate_offer	 o;
	const char		*item;
	size_t			 state = 0, len;

	if (bits < DEFLATE_BITS_MIN || bits > DEFLATE_BITS_MAX)
		return 0;
	while (http_header_next_item(req, "Sec-WebSocket-Extensions", &state, &item, &len))
		if (deflate_offer_parse(item, len, &o) == 1 &&
		    deflate_answer(&o, bits, out, outlen))
			return 1;
	if (outlen > 0)
		out[0] = '\0';
	return 0;
}

/* ---- compressor ------------------------------------------------------------ */

int
deflate_ctx_init(struct deflate_ctx *dc, int level, int bits)
{
	z_stream	*z;

	memset(dc, 0, sizeof(*dc));
	if (level < 1 || level > 9 || bits < DEFLATE_BITS_MIN || bits > DEFLATE_BITS_MAX)
		return -1;
	if ((z = calloc(1, sizeof(*z))) == NULL)
		return -1;
	if (deflateInit2(z, level, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return -1;
	}
	dc->dc_z = z;
	dc->dc_level = level;
	dc->dc_bits = bits;
	return 0;
}

void
deflate_ctx_free(struct deflate_ctx *dc)
{
	if (dc->dc_z != NULL) {
		deflateEnd(dc->dc_z);
		free(dc->dc_z);
	}
	free(dc->dc_buf);
	memset(dc, 0, sizeof(*dc));
}

/* Room for the compressed form of len bytes, and the headroom. */
static int
deflate_room(struct deflate_ctx *dc, size_t len)
{
	size_t	 need = DEFLATE_HEADROOM + deflateBound(dc->dc_z, (uLong)len) + 16;
	uint8_t	*p;

	if (need <= dc->dc_cap)
		return 0;
	if ((p = realloc(dc->dc_buf, need)) == NULL)
		return -1;
	dc->dc_buf = p;
	dc->dc_cap = need;
	return 0;
}

int
deflate_compress(struct deflate_ctx *dc, const void *in, size_t len, uint8_t **out,
    size_t *outlen)
{
	z_stream	*z = dc->dc_z;
	size_t		 n;

	if (z == NULL || len > UINT32_MAX || deflate_room(dc, len) == -1)
		return -1;
	if (deflateReset(z) != Z_OK)
		return -1;
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)len;
	z->next_out = dc->dc_buf + DEFLATE_HEADROOM;
	z->avail_out = (uInt)(dc->dc_cap - DEFLATE_HEADROOM);
	/* deflateBound() leaves room for a sync flush: one call does it all */
	if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0)
		return -1;
	n = dc->dc_cap - DEFLATE_HEADROOM - z->avail_out;
	if (n < DEFLATE_TRAILER_LEN ||
	    memcmp(dc->dc_buf + DEFLATE_HEADROOM + n - DEFLATE_TRAILER_LEN, deflate_trailer,
	    DEFLATE_TRAILER_LEN) != 0)
		return -1;
	*out = dc->dc_buf + DEFLATE_HEADROOM;
	*outlen = n - DEFLATE_TRAILER_LEN;
	return 0;
}

/* ---- inflater -------------------------------------------------------------- */

struct deflate_inflater {
	z_stream	 di_z;
	uint64_t	 di_max;
	uint64_t	 di_out;
	size_t		 di_bytes;	/* zlib's allocations */
	uint8_t		 di_ended;	/* the final block was seen */
	uint8_t		 di_buf[DEFLATE_CHUNK];
};

/* zlib's allocations, counted (with a size word in front to give them back). */
static voidpf
deflate_zalloc(voidpf opaque, uInt items, uInt size)
{
	struct deflate_inflater	*di = opaque;
	size_t			*p, n;

	if (size != 0 && items > (SIZE_MAX - sizeof(size_t)) / size)
		return Z_NULL;
	n = (size_t)items * size;
	if ((p = malloc(sizeof(size_t) + n)) == NULL)
		return Z_NULL;
	p[0] = n;
	di->di_bytes += n;
	return p + 1;
}

static void
deflate_zfree(voidpf opaque, voidpf address)
{
	struct deflate_inflater	*di = opaque;
	size_t			*p = address;

	if (p == NULL)
		return;
	di->di_bytes -= p[-1];
	free(p - 1);
}

struct deflate_inflater *
deflate_inflater_new(uint64_t max)
{
	struct deflate_inflater	*di;

	if ((di = malloc(sizeof(*di))) == NULL)
		return NULL;
	memset(&di->di_z, 0, sizeof(di->di_z));
	di->di_z.zalloc = deflate_zalloc;
	di->di_z.zfree = deflate_zfree;
	di->di_z.opaque = di;
	di->di_max = max;
	di->di_out = 0;
	di->di_bytes = 0;
	di->di_ended = 0;
	/* the largest window: any client window fits it (RFC 7692 7.1.2.2) */
	if (inflateInit2(&di->di_z, -MAX_WBITS) != Z_OK) {
		free(di);
		return NULL;
	}
	return di;
}

void
deflate_inflater_free(struct deflate_inflater *di)
{
	if (di == NULL)
		return;
	inflateEnd(&di->di_z);
	free(di);
}

uint64_t
deflate_inflated(const struct deflate_inflater *di)
{
	return di->di_out;
}

size_t
deflate_inflater_bytes(const struct deflate_inflater *di)
{
	return di == NULL ? 0 : sizeof(*di) + di->di_bytes;
}

/* Hand what di_buf holds to the sink, within the limit. */
static enum deflate_result
deflate_drain(struct deflate_inflater *di, deflate_sink sink, void *arg)
{
	size_t	 n = sizeof(di->di_buf) - di->di_z.avail_out;

	di->di_z.next_out = di->di_buf;
	di->di_z.avail_out = sizeof(di->di_buf);
	if (n == 0)
		return DEFLATE_OK;
	if (di->di_max != 0 && n > di->di_max - di->di_out)
		return DEFLATE_TOO_BIG;
	di->di_out += n;
	return sink(arg, di->di_buf, n) != 0 ? DEFLATE_SINK : DEFLATE_OK;
}

/*
 * More after a final block: RFC 7692 7.2.3.4's own example ends its
 * BFINAL block with a 0x00, the start of the empty stored block our
 * 00 00 ff ff completes, and a sender may put several streams in one
 * message.  What follows is read as a new stream that sees the same
 * window (it may point back into what came before); bytes that are no
 * deflate data still fail it.
 */
static int
deflate_restart(struct deflate_inflater *di)
{
	Bytef	 window[1 << MAX_WBITS];
	uInt	 n = sizeof(window);

	if (inflateGetDictionary(&di->di_z, window, &n) != Z_OK ||
	    inflateReset(&di->di_z) != Z_OK ||
	    (n > 0 && inflateSetDictionary(&di->di_z, window, n) != Z_OK))
		return -1;
	di->di_ended = 0;
	return 0;
}

/*
 * Inflate in[0..len) to the end of that input.  Each round consumes input
 * or fills the whole chunk, which the limit bounds, so the loop ends.
 * trailer: in is the 00 00 ff ff we add, whose bytes may follow a final
 * block: zlib can take a message's last byte while the end of its final
 * block's output is still to come (the chunk was full), and reach that
 * end only on this call.
 */
static enum deflate_result
deflate_run(struct deflate_inflater *di, const uint8_t *in, size_t len, int trailer,
    deflate_sink sink, void *arg)
{
	z_stream		*z = &di->di_z;
	enum deflate_result	 r;
	int			 zr;

	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)len;
	z->next_out = di->di_buf;
	z->avail_out = sizeof(di->di_buf);
	while (z->avail_in > 0) {
		if (di->di_ended && trailer)
			break;			/* RFC 7692 7.2.3.4: BFINAL, then ours */
		if (di->di_ended && deflate_restart(di) == -1)
			return DEFLATE_BAD;
		zr = inflate(z, Z_SYNC_FLUSH);
		if (zr == Z_STREAM_END)
			di->di_ended = 1;
		else if (zr == Z_MEM_ERROR)
			return DEFLATE_NOMEM;
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return DEFLATE_BAD;
		if (z->avail_out == 0 || z->avail_in == 0 || di->di_ended)
			if ((r = deflate_drain(di, sink, arg)) != DEFLATE_OK)
				return r;
		if (zr == Z_BUF_ERROR && z->avail_in > 0 && z->avail_out > 0)
			return DEFLATE_BAD;	/* no progress possible */
	}
	return deflate_drain(di, sink, arg);
}

enum deflate_result
deflate_inflate(struct deflate_inflater *di, const uint8_t *in, size_t len, int last,
    deflate_sink sink, void *arg)
{
	enum deflate_result	 r;
	size_t			 n;
	int			 empty;

	/* zlib counts in uInt: feed a huge frame in pieces */
	while (len > 0) {
		n = len > (1u << 30) ? (1u << 30) : len;
		if ((r = deflate_run(di, in, n, 0, sink, arg)) != DEFLATE_OK)
			return r;
		in += n;
		len -= n;
	}
	if (!last || di->di_ended)
		return DEFLATE_OK;
	empty = di->di_z.total_in == 0;
	if ((r = deflate_run(di, deflate_trailer, sizeof(deflate_trailer), 1, sink,
	    arg)) != DEFLATE_OK || di->di_ended || empty)
		return r;	/* no bytes at all: the empty message, as ever */
	/*
	 * The 00 00 ff ff completes an empty stored block only when the
	 * message ended between blocks: then zlib waits for the next block's
	 * header (data_type 128).  Anywhere else the message was cut short
	 * in a block (its bytes were read as data), and it is invalid.
	 */
	return (di->di_z.data_type & 128) != 0 ? DEFLATE_OK : DEFLATE_BAD;
}
