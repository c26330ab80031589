/*
 * RFC 6455 frame codec.  The decoder is a push parser: it never buffers a
 * data payload (chunks are unmasked in place and handed back as they
 * arrive), only frame headers and control payloads, which are bounded.
 * Every check that can be made on a header byte is made as soon as that
 * byte arrives, so a hostile peer is refused before it sends a payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "utf8.h"
#include "ws.h"

#define WS_FIN		0x80
#define WS_RSV		0x70
#define WS_RSV1		0x40	/* permessage-deflate: the message is compressed */
#define WS_OPMASK	0x0f
#define WS_MASKBIT	0x80
#define WS_LENMASK	0x7f
#define WS_LEN16	126
#define WS_LEN64	127
/*
 * What a compressed message may take on the wire beyond max_message_size
 * (the inflated size is what the limit holds): as much again and 4 KiB,
 * for deflate's worst cases from compliant senders (incompressible bytes
 * at a low memLevel grow ~4%, a sync flush per fragment adds 5+ bytes
 * each).  Its bytes are inflated as they come, never kept.
 */
#define WS_DEFLATE_SLACK(max)	((max) + 4096)

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A real key is 24 base64 characters; anything far longer is junk. */
#define WS_KEY_MAX	128

/*
 * Failures, indexed by wd_failed (0 = not failed), so the sticky error
 * needs one byte of decoder state.  The reasons go into our close frame.
 */
enum ws_err {
	WS_E_NONE,
	WS_E_RSV,
	WS_E_OPCODE,
	WS_E_UNMASKED,
	WS_E_MASKED,
	WS_E_CTL_FRAG,
	WS_E_CTL_LEN,
	WS_E_LEN64,
	WS_E_CONT,
	WS_E_INTERLEAVE,
	WS_E_TOO_BIG,
	WS_E_UTF8,
	WS_E_CLOSE_LEN,
	WS_E_CLOSE_CODE,
	WS_E_CLOSE_UTF8,
	WS_E_NOMEM,
};

static const struct {
	uint16_t	 code;
	const char	*reason;
} ws_errors[] = {
	[WS_E_NONE] =		{ 0, "" },
	[WS_E_RSV] =		{ WS_CLOSE_PROTOCOL, "reserved bits set" },
	[WS_E_OPCODE] =		{ WS_CLOSE_PROTOCOL, "unknown opcode" },
	[WS_E_UNMASKED] =	{ WS_CLOSE_PROTOCOL, "unmasked frame" },
	[WS_E_MASKED] =		{ WS_CLOSE_PROTOCOL, "masked frame" },
	[WS_E_CTL_FRAG] =	{ WS_CLOSE_PROTOCOL, "fragmented control frame" },
	[WS_E_CTL_LEN] =	{ WS_CLOSE_PROTOCOL, "control frame too long" },
	[WS_E_LEN64] =		{ WS_CLOSE_PROTOCOL, "invalid frame length" },
	[WS_E_CONT] =		{ WS_CLOSE_PROTOCOL, "unexpected continuation" },
	[WS_E_INTERLEAVE] =	{ WS_CLOSE_PROTOCOL, "expected continuation" },
	[WS_E_TOO_BIG] =	{ WS_CLOSE_TOO_BIG, "message too big" },
	[WS_E_UTF8] =		{ WS_CLOSE_BAD_DATA, "invalid UTF-8" },
	[WS_E_CLOSE_LEN] =	{ WS_CLOSE_PROTOCOL, "invalid close payload" },
	[WS_E_CLOSE_CODE] =	{ WS_CLOSE_PROTOCOL, "invalid close code" },
	[WS_E_CLOSE_UTF8] =	{ WS_CLOSE_BAD_DATA, "invalid UTF-8 in close reason" },
	[WS_E_NOMEM] =		{ WS_CLOSE_INTERNAL, "out of memory" },
};

static int
ws_is_control(int opcode)
{
	return (opcode & 0x08) != 0;
}

static void
ws_event_clear(struct ws_event *ev, enum ws_ev type)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
}

static void
ws_error_event(const struct ws_decoder *d, struct ws_event *ev)
{
	ws_event_clear(ev, WS_EV_ERROR);
	ev->code = ws_errors[d->wd_failed].code;
	ev->reason = ws_errors[d->wd_failed].reason;
}

/* Returns enum ws_err, so callers can write "if ((e = ...) != WS_E_NONE)". */
static enum ws_err
ws_fail(struct ws_decoder *d, enum ws_err e)
{
	d->wd_failed = e;
	return e;
}

void
ws_decoder_init(struct ws_decoder *d, uint64_t max_message, int server)
{
	memset(d, 0, sizeof(*d));
	d->wd_max_message = max_message;
	d->wd_server = server != 0;
	d->wd_utf8 = UTF8_ACCEPT;
}

/* Bytes of extended length after the first two header bytes. */
static size_t
ws_hdr_extlen(const struct ws_decoder *d)
{
	switch (d->wd_hdr[1] & WS_LENMASK) {
	case WS_LEN16:
		return 2;
	case WS_LEN64:
		return 8;
	default:
		return 0;
	}
}

static size_t
ws_hdr_need(const struct ws_decoder *d)
{
	if (d->wd_hdr_have < 2)
		return 2;
	return 2 + ws_hdr_extlen(d) + ((d->wd_hdr[1] & WS_MASKBIT) ? 4 : 0);
}

static uint64_t
ws_hdr_paylen(const struct ws_decoder *d)
{
	uint64_t	 n = d->wd_hdr[1] & WS_LENMASK;
	size_t		 i, ext = ws_hdr_extlen(d);

	if (ext == 0)
		return n;
	for (n = 0, i = 0; i < ext; i++)
		n = (n << 8) | d->wd_hdr[2 + i];
	return n;
}

/* First byte: flags and opcode, checked against the message in progress. */
static enum ws_err
ws_check_byte0(struct ws_decoder *d)
{
	uint8_t	 b = d->wd_hdr[0], op = b & WS_OPMASK;

	/* RSV1 only on a message's first frame, once negotiated (RFC 7692 6) */
	if ((b & (WS_RSV & ~WS_RSV1)) || ((b & WS_RSV1) && (!d->wd_deflate ||
	    (op != WS_OP_TEXT && op != WS_OP_BINARY))))
		return ws_fail(d, WS_E_RSV);
	switch (op) {
	case WS_OP_CONT:
		if (d->wd_msg_opcode == 0)
			return ws_fail(d, WS_E_CONT);
		break;
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		if (d->wd_msg_opcode != 0)
			return ws_fail(d, WS_E_INTERLEAVE);
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!(b & WS_FIN))
			return ws_fail(d, WS_E_CTL_FRAG);
		break;
	default:
		return ws_fail(d, WS_E_OPCODE);
	}
	return WS_E_NONE;
}

/* Second byte: a client masks, a server does not (RFC 6455 5.1). */
static enum ws_err
ws_check_byte1(struct ws_decoder *d)
{
	uint8_t	 b = d->wd_hdr[1];

	if (d->wd_server && !(b & WS_MASKBIT))
		return ws_fail(d, WS_E_UNMASKED);
	if (!d->wd_server && (b & WS_MASKBIT))
		return ws_fail(d, WS_E_MASKED);
	return WS_E_NONE;
}

/*
 * Complete length: refuse a too-big message before any payload arrives.
 * Lengths are judged by value, so a non-minimal encoding is accepted.
 */
static enum ws_err
ws_check_length(struct ws_decoder *d)
{
	uint64_t	 n = ws_hdr_paylen(d), max = d->wd_max_message;

	if (n >> 63)
		return ws_fail(d, WS_E_LEN64);
	if (ws_is_control(d->wd_hdr[0]))
		return n > WS_CONTROL_MAX ? ws_fail(d, WS_E_CTL_LEN) : WS_E_NONE;
	if (max == 0)
		return WS_E_NONE;
	/* a compressed message is held to max once inflated (the caller's
	 * inflater); on the wire deflate may have grown it (WS_DEFLATE_SLACK) */
	if ((d->wd_hdr[0] & WS_OPMASK) == WS_OP_CONT ? d->wd_msg_rsv1 :
	    (d->wd_hdr[0] & WS_RSV1) != 0)
		max += WS_DEFLATE_SLACK(max);
	/* wd_msg_len > max only after a smaller max was set mid-message */
	if (d->wd_msg_len > max || n > max - d->wd_msg_len)
		return ws_fail(d, WS_E_TOO_BIG);
	return WS_E_NONE;
}

static enum ws_err
ws_check_hdr(struct ws_decoder *d)
{
	size_t	 have = d->wd_hdr_have;

	if (have == 1)
		return ws_check_byte0(d);
	if (have == 2 && ws_check_byte1(d) != WS_E_NONE)
		return d->wd_failed;
	if (have == 2 + ws_hdr_extlen(d))
		return ws_check_length(d);
	return WS_E_NONE;
}

/* The header is complete and checked: set up the frame it announces. */
static void
ws_frame_start(struct ws_decoder *d)
{
	uint8_t	 op = d->wd_hdr[0] & WS_OPMASK;

	d->wd_in_frame = 1;
	d->wd_fin = (d->wd_hdr[0] & WS_FIN) != 0;
	d->wd_opcode = op;
	d->wd_masked = (d->wd_hdr[1] & WS_MASKBIT) != 0;
	if (d->wd_masked)
		memcpy(d->wd_mask, d->wd_hdr + d->wd_hdr_have - 4, 4);
	d->wd_mask_pos = 0;
	d->wd_remaining = ws_hdr_paylen(d);
	d->wd_hdr_have = 0;
	d->wd_ctl_len = 0;
	if (op == WS_OP_TEXT || op == WS_OP_BINARY) {
		d->wd_msg_opcode = op;
		d->wd_msg_started = 0;
		d->wd_msg_len = 0;
		d->wd_utf8 = UTF8_ACCEPT;
		d->wd_msg_rsv1 = (d->wd_hdr[0] & WS_RSV1) != 0;
	}
	if (!ws_is_control(op))
		d->wd_msg_len += d->wd_remaining;
}

/*
 * Take header bytes one at a time (at most 14) so each check runs at the
 * earliest byte.  Returns bytes consumed; the frame has started when
 * wd_in_frame is set, the decoder has failed when wd_failed is.
 */
static size_t
ws_read_header(struct ws_decoder *d, const uint8_t *buf, size_t len)
{
	size_t	 used = 0;

	while (used < len && d->wd_hdr_have < ws_hdr_need(d)) {
		d->wd_hdr[d->wd_hdr_have++] = buf[used++];
		if (ws_check_hdr(d) != WS_E_NONE)
			return used;
	}
	if (d->wd_hdr_have >= 2 && d->wd_hdr_have == ws_hdr_need(d))
		ws_frame_start(d);
	return used;
}

static void
ws_unmask(struct ws_decoder *d, uint8_t *p, size_t n)
{
	if (!d->wd_masked)
		return;
	ws_mask(p, n, d->wd_mask, d->wd_mask_pos);
	d->wd_mask_pos = (d->wd_mask_pos + n) & 3;
}

/*
 * Consume what is available of a data frame's payload and report it as
 * one chunk.  A text chunk is validated before it is reported, so invalid
 * UTF-8 fails the connection even if the rest of the frame never comes.
 */
static size_t
ws_read_data(struct ws_decoder *d, uint8_t *buf, size_t len,
    struct ws_event *ev)
{
	size_t	 n = len;
	int	 last;

	if (n > d->wd_remaining)
		n = d->wd_remaining;
	ws_unmask(d, buf, n);
	/* compressed text is validated once inflated, by the caller */
	if (d->wd_msg_opcode == WS_OP_TEXT && !d->wd_msg_rsv1) {
		d->wd_utf8 = utf8_feed(d->wd_utf8, buf, n);
		if (d->wd_utf8 == UTF8_REJECT) {
			ws_fail(d, WS_E_UTF8);
			return n;
		}
	}
	d->wd_remaining -= n;
	if (d->wd_remaining == 0)
		d->wd_in_frame = 0;
	last = d->wd_remaining == 0 && d->wd_fin;
	if (last && d->wd_msg_opcode == WS_OP_TEXT && !d->wd_msg_rsv1 &&
	    d->wd_utf8 != UTF8_ACCEPT) {
		ws_fail(d, WS_E_UTF8);
		return n;
	}
	/* An empty non-final frame tells the caller nothing. */
	if (n == 0 && !last)
		return 0;
	ws_event_clear(ev, WS_EV_DATA);
	ev->opcode = d->wd_msg_opcode;
	ev->first = !d->wd_msg_started;
	ev->last = last;
	ev->compressed = d->wd_msg_rsv1;
	ev->data = buf;
	ev->len = n;
	d->wd_msg_started = 1;
	if (last) {
		d->wd_msg_opcode = 0;
		d->wd_msg_started = 0;
		d->wd_msg_len = 0;
		d->wd_msg_rsv1 = 0;
	}
	return n;
}

static enum ws_err
ws_parse_close(struct ws_decoder *d, const uint8_t *p, size_t n, struct ws_event *ev)
{
	ev->code = WS_CLOSE_NO_STATUS;
	if (n == 0)
		return WS_E_NONE;
	if (n == 1)
		return ws_fail(d, WS_E_CLOSE_LEN);
	ev->code = (uint16_t)(p[0] << 8 | p[1]);
	if (!ws_close_code_valid(ev->code))
		return ws_fail(d, WS_E_CLOSE_CODE);
	if (!utf8_valid(p + 2, n - 2))
		return ws_fail(d, WS_E_CLOSE_UTF8);
	ev->close_reason = p + 2;
	ev->close_reason_len = n - 2;
	return WS_E_NONE;
}

/*
 * A control payload is small and must be whole.  When all of it is in this
 * buffer it is unmasked in place and reported from there; only a payload
 * split across reads is collected, in a buffer allocated the first time
 * one is (most connections never need it).
 */
static size_t
ws_read_control(struct ws_decoder *d, uint8_t *buf, size_t len, struct ws_event *ev)
{
	const uint8_t	*payload;
	size_t		 n = len, plen;

	if (n > d->wd_remaining)
		n = d->wd_remaining;
	if (d->wd_ctl_len == 0 && n == d->wd_remaining) {
		ws_unmask(d, buf, n);
		payload = buf;
		plen = n;
	} else {
		if (d->wd_ctl == NULL && (d->wd_ctl = malloc(WS_CONTROL_MAX)) == NULL) {
			ws_fail(d, WS_E_NOMEM);	/* ws_decode reports it */
			return 0;
		}
		memcpy(d->wd_ctl + d->wd_ctl_len, buf, n);
		ws_unmask(d, d->wd_ctl + d->wd_ctl_len, n);
		d->wd_ctl_len += n;
		payload = d->wd_ctl;
		plen = d->wd_ctl_len;
	}
	d->wd_remaining -= n;
	if (d->wd_remaining > 0)
		return n;
	d->wd_in_frame = 0;
	ws_event_clear(ev, WS_EV_PING);
	switch (d->wd_opcode) {
	case WS_OP_PING:
		break;
	case WS_OP_PONG:
		ev->type = WS_EV_PONG;
		break;
	default:
		ev->type = WS_EV_CLOSE;
		if (ws_parse_close(d, payload, plen, ev) != WS_E_NONE)
			return n;
		break;
	}
	ev->opcode = d->wd_opcode;
	ev->data = payload;
	ev->len = plen;
	return n;
}

void
ws_decoder_free(struct ws_decoder *d)
{
	free(d->wd_ctl);
	d->wd_ctl = NULL;
}

size_t
ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, struct ws_event *ev)
{
	size_t	 used = 0;

	ws_event_clear(ev, WS_EV_NEED_MORE);
	while (!d->wd_failed && ev->type == WS_EV_NEED_MORE) {
		if (!d->wd_in_frame) {
			if (used == len)
				break;
			used += ws_read_header(d, buf + used, len - used);
			if (!d->wd_in_frame)
				continue;
		}
		/* Empty frames are complete at their header: no input needed. */
		if (used == len && d->wd_remaining > 0)
			break;
		if (ws_is_control(d->wd_opcode))
			used += ws_read_control(d, buf + used, len - used, ev);
		else
			used += ws_read_data(d, buf + used, len - used, ev);
	}
	if (d->wd_failed)
		ws_error_event(d, ev);
	return used;
}

void
ws_decoder_deflate(struct ws_decoder *d, int on)
{
	d->wd_deflate = on != 0;
}

void
ws_decoder_set_max(struct ws_decoder *d, uint64_t max_message)
{
	d->wd_max_message = max_message;
}

size_t
ws_frame_header_rsv1(uint8_t *out, int opcode, uint64_t len)
{
	size_t	 n = ws_frame_header(out, opcode, 1, len);

	out[0] |= WS_RSV1;
	return n;
}

size_t
ws_frame_header(uint8_t *out, int opcode, int fin, uint64_t len)
{
	size_t	 n, i, ext;

	out[0] = (fin ? WS_FIN : 0) | (opcode & WS_OPMASK);
	if (len < WS_LEN16) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= UINT16_MAX) {
		out[1] = WS_LEN16;
		ext = 2;
	} else {
		out[1] = WS_LEN64;
		ext = 8;
	}
	for (i = 0, n = 2 + ext; i < ext; i++)
		out[n - 1 - i] = (uint8_t)(len >> (8 * i));
	return n;
}

size_t
ws_frame_header_masked(uint8_t *out, int opcode, int fin, uint64_t len,
    const uint8_t mask[4])
{
	size_t	 n;

	n = ws_frame_header(out, opcode, fin, len);
	out[1] |= WS_MASKBIT;
	memcpy(out + n, mask, 4);
	return n + 4;
}

/* offset is the payload position of buf[0], so a payload can be masked in pieces. */
void
ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], size_t offset)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		buf[i] ^= mask[(offset + i) & 3];
}

/* Longest prefix of s, at most max bytes, that does not split a UTF-8 sequence. */
static size_t
ws_utf8_prefix(const char *s, size_t max)
{
	size_t	 n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

size_t
ws_close_frame(uint8_t *out, uint16_t code, const char *reason)
{
	size_t	 hlen, rlen = 0;

	if (code == 0)
		return ws_frame_header(out, WS_OP_CLOSE, 1, 0);
	if (reason != NULL)
		rlen = ws_utf8_prefix(reason, WS_CONTROL_MAX - 2);
	hlen = ws_frame_header(out, WS_OP_CLOSE, 1, 2 + rlen);
	out[hlen] = code >> 8;
	out[hlen + 1] = code & 0xff;
	if (rlen > 0)
		memcpy(out + hlen + 2, reason, rlen);
	return hlen + 2 + rlen;
}

int
ws_close_code_valid(unsigned code)
{
	if (code >= 1000 && code <= 1003)
		return 1;
	if (code >= 1007 && code <= 1014)
		return 1;
	return code >= 3000 && code <= 4999;
}

/*
 * A key longer than WS_KEY_MAX or a short out gets an empty string, which
 * no client accepts; http.c refuses such keys before we get here.
 */
void
ws_accept_key(const char *key, size_t keylen, char *out, size_t outlen)
{
	unsigned char	 buf[WS_KEY_MAX + sizeof(WS_GUID)];
	unsigned char	 md[SHA_DIGEST_LENGTH];
	unsigned char	 b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (keylen > WS_KEY_MAX || outlen < sizeof(b64))
		return;
	if (keylen > 0)
		memcpy(buf, key, keylen);
	memcpy(buf + keylen, WS_GUID, sizeof(WS_GUID) - 1);
	if (SHA1(buf, keylen + sizeof(WS_GUID) - 1, md) == NULL)
		return;
	EVP_EncodeBlock(b64, md, sizeof(md));
	memcpy(out, b64, sizeof(b64));
}
