#ifndef RT_DEFLATE_H
#define RT_DEFLATE_H

/*
 * permessage-deflate (RFC 7692): the negotiation and the codec.  No I/O:
 * the negotiation reads a parsed request head, the compressor and the
 * inflater take bytes and hand bytes back.
 *
 * The server always answers server_no_context_takeover (every message is
 * compressed on its own, so one compressed event frame serves every
 * subscriber) and client_no_context_takeover (RFC 7692 7.1.1.2 lets a
 * server ask it of any client): an inflater lives only while a compressed
 * message is read, and an idle connection holds nothing for compression.
 */
#include <stddef.h>
#include <stdint.h>

struct http_request;

#define DEFLATE_BITS_MIN	9	/* zlib's raw deflate cannot do 8 (it makes 9) */
#define DEFLATE_BITS_MAX	15
#define DEFLATE_RESPONSE_MAX	128
#define DEFLATE_TRAILER_LEN	4	/* 00 00 ff ff, removed from each message */

/* One permessage-deflate offer, as parsed. */
struct deflate_offer {
	uint8_t		 do_server_nct;		/* server_no_context_takeover */
	uint8_t		 do_client_nct;		/* client_no_context_takeover */
	uint8_t		 do_server_bits;	/* server_max_window_bits; 0: absent */
	int8_t		 do_client_bits;	/* client_max_window_bits; 0: absent, -1: no value */
};

/*
 * One item of a Sec-WebSocket-Extensions list.  1: a well-formed
 * permessage-deflate offer, in *o; 0: another extension; -1: a
 * permessage-deflate offer that is malformed (an unknown or repeated
 * parameter, a missing or invalid value), which is declined.
 */
int	deflate_offer_parse(const char *item, size_t len, struct deflate_offer *o);

/*
 * Choose among the offers of every Sec-WebSocket-Extensions header, in
 * order: the first that can be honoured while compressing with windows of
 * bits (DEFLATE_BITS_MIN..MAX) wins.  1 with the response's header value
 * in out (DEFLATE_RESPONSE_MAX bytes, NUL-terminated), or 0: no offer
 * accepted, the handshake goes on without the extension.
 */
int	deflate_negotiate(const struct http_request *req, int bits, char *out, size_t outlen);

/*
 * The compressor: raw deflate with windows of dc_bits, each message on its
 * own.  The output buffer keeps DEFLATE_HEADROOM bytes in front of the
 * data, so that a caller can put a frame header there.
 */
#define DEFLATE_HEADROOM	16
struct deflate_ctx {
	void		*dc_z;		/* z_stream; NULL: not set up */
	int		 dc_level;
	int		 dc_bits;
	uint8_t		*dc_buf;
	size_t		 dc_cap;
};

/* 0, or -1 (no memory, invalid level or bits). */
int	deflate_ctx_init(struct deflate_ctx *dc, int level, int bits);
void	deflate_ctx_free(struct deflate_ctx *dc);
/*
 * Compress one message: *out (DEFLATE_HEADROOM bytes writable before it)
 * and *outlen, the trailing 00 00 ff ff removed (RFC 7692 7.2.1); valid
 * until the next call.  0, or -1.
 */
int	deflate_compress(struct deflate_ctx *dc, const void *in, size_t len,
	    uint8_t **out, size_t *outlen);

/* The inflater of one message: made at its first frame, freed at its end. */
enum deflate_result {
	DEFLATE_OK = 0,
	DEFLATE_TOO_BIG = -1,	/* inflated past the limit: 1009 */
	DEFLATE_BAD = -2,	/* not a valid deflate stream: 1007 */
	DEFLATE_NOMEM = -3,
	DEFLATE_SINK = -4,	/* the sink refused a chunk */
};
#define DEFLATE_CHUNK		16384	/* inflated bytes per sink call, at most */

struct deflate_inflater;
/* Each inflated chunk; non-zero stops the message (DEFLATE_SINK). */
typedef int	(*deflate_sink)(void *arg, const uint8_t *p, size_t len);

/* A new inflater for one message of at most max inflated bytes (0: no limit), or NULL. */
struct deflate_inflater *deflate_inflater_new(uint64_t max);
void	deflate_inflater_free(struct deflate_inflater *di);
/*
 * Inflate the message's next len bytes; last: they end the message (the
 * 00 00 ff ff trailer is added here).  Output goes to sink in chunks of at
 * most DEFLATE_CHUNK bytes.  Work is bounded by the input and the limit.
 */
enum deflate_result deflate_inflate(struct deflate_inflater *di, const uint8_t *in,
	    size_t len, int last, deflate_sink sink, void *arg);
/* Inflated bytes so far. */
uint64_t deflate_inflated(const struct deflate_inflater *di);
/* Bytes the inflater holds (itself and zlib's state), for the stats. */
size_t	deflate_inflater_bytes(const struct deflate_inflater *di);

#endif
