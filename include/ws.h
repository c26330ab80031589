#ifndef RT_WS_H
#define RT_WS_H

/*
 * RFC 6455 frame codec.  No I/O: the decoder consumes bytes the caller hands
 * it and reports events; the encoder writes frame headers into arrays.
 */
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT	= 0x0,
	WS_OP_TEXT	= 0x1,
	WS_OP_BINARY	= 0x2,
	WS_OP_CLOSE	= 0x8,
	WS_OP_PING	= 0x9,
	WS_OP_PONG	= 0xA,
};

/* Close codes (RFC 6455 7.4.1, plus ours from PROTOCOL.md). */
#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_GOING_AWAY	1001
#define WS_CLOSE_PROTOCOL	1002
#define WS_CLOSE_UNSUPPORTED	1003
#define WS_CLOSE_NO_STATUS	1005	/* never sent: "no code in the close frame" */
#define WS_CLOSE_ABNORMAL	1006	/* never sent */
#define WS_CLOSE_BAD_DATA	1007
#define WS_CLOSE_POLICY		1008
#define WS_CLOSE_TOO_BIG	1009
#define WS_CLOSE_INTERNAL	1011
#define WS_CLOSE_TRY_AGAIN	1013
#define WS_CLOSE_SLOW		4000

#define WS_CONTROL_MAX		125
#define WS_HEADER_MAX		14	/* 2 + 8 length + 4 mask */

enum ws_ev {
	WS_EV_NEED_MORE,	/* every byte handed in was consumed, no event */
	WS_EV_DATA,		/* a chunk of a text/binary message (unmasked) */
	WS_EV_PING,		/* complete ping; payload in data/len */
	WS_EV_PONG,		/* complete pong */
	WS_EV_CLOSE,		/* complete, valid close frame; code (1005 if none) */
	WS_EV_ERROR,		/* protocol violation: fail with code/reason */
};

struct ws_event {
	enum ws_ev	 type;
	int		 opcode;	/* DATA: WS_OP_TEXT or WS_OP_BINARY */
	int		 first;		/* DATA: chunk starts the message */
	int		 last;		/* DATA: chunk ends the message */
	int		 compressed;	/* DATA: the message had RSV1 (deflate) */
	const uint8_t	*data;		/* DATA chunk / control payload */
	size_t		 len;
	uint16_t	 code;		/* CLOSE: peer's code; ERROR: code to send */
	const char	*reason;	/* ERROR: static text for the close frame */
	const uint8_t	*close_reason;	/* CLOSE: peer's reason (valid UTF-8) */
	size_t		 close_reason_len;
};

/*
 * Decoder state: one per connection, all fields private to ws.c.  A text
 * message's UTF-8 is validated as its bytes arrive, across frames, and a
 * message whose running total would pass max_message fails with 1009 at
 * the frame header, before any of it is buffered.
 */
struct ws_decoder {
	/* (widest first: no padding between the fields, 72 bytes, not 88) */
	uint64_t	 wd_max_message;	/* 0 = unlimited */
	uint64_t	 wd_remaining;		/* of the frame being consumed */
	uint64_t	 wd_msg_len;		/* of the message being assembled */
	/* a control frame payload split across reads (allocated on demand) */
	uint8_t		*wd_ctl;
	uint32_t	 wd_utf8;		/* the message's UTF-8 state */
	/* frame header being assembled */
	uint8_t		 wd_hdr[WS_HEADER_MAX];
	uint8_t		 wd_hdr_have;
	/* frame being consumed */
	uint8_t		 wd_in_frame;
	uint8_t		 wd_fin;
	uint8_t		 wd_opcode;
	uint8_t		 wd_masked;
	uint8_t		 wd_mask[4];
	uint8_t		 wd_mask_pos;
	/* message being assembled (data frames) */
	uint8_t		 wd_msg_opcode;		/* 0 = none in progress */
	uint8_t		 wd_msg_started;	/* first chunk reported */
	uint8_t		 wd_deflate;		/* permessage-deflate negotiated */
	uint8_t		 wd_msg_rsv1;		/* the message is compressed */
	uint8_t		 wd_ctl_len;
	uint8_t		 wd_failed;		/* sticky after WS_EV_ERROR */
	uint8_t		 wd_server;		/* 1: client frames must be masked */
};

void	ws_decoder_init(struct ws_decoder *d, uint64_t max_message, int server);
/*
 * permessage-deflate negotiated: RSV1 is then allowed on the first frame
 * of a data message (it marks it compressed, DATA events say so, and the
 * caller validates UTF-8 after inflating); anywhere else it stays 1002.
 */
void	ws_decoder_deflate(struct ws_decoder *d, int on);
/*
 * A new largest message (a reload): the next frame is judged by it, and
 * a message already longer fails at that frame.
 */
void	ws_decoder_set_max(struct ws_decoder *d, uint64_t max_message);
/* Release what the decoder allocated (a split control frame's buffer). */
void	ws_decoder_free(struct ws_decoder *d);

/*
 * Consume bytes from buf (len bytes; unmasked in place, hence not const)
 * until one event is ready or the input is used up.  Returns the number of
 * bytes consumed and fills ev.  Call again with the rest of the buffer while
 * ev->type != WS_EV_NEED_MORE.  DATA chunks point into buf; control
 * payloads point into buf or into the decoder, valid until the next call.  After WS_EV_ERROR every call returns
 * the same error and consumes nothing.
 */
size_t	ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, struct ws_event *ev);

/*
 * Write an unmasked server frame header for a payload of len bytes into
 * out (WS_HEADER_MAX bytes); returns the header length (2, 4 or 10).
 */
size_t	ws_frame_header(uint8_t *out, int opcode, int fin, uint64_t len);

/* A final frame's header with RSV1 set: a compressed message. */
size_t	ws_frame_header_rsv1(uint8_t *out, int opcode, uint64_t len);

/*
 * Write a masked (client) frame header; mask is the 4-byte key that the
 * caller applies to the payload with ws_mask().  Returns header length.
 */
size_t	ws_frame_header_masked(uint8_t *out, int opcode, int fin, uint64_t len,
	    const uint8_t mask[4]);
void	ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], size_t offset);

/*
 * A complete close frame (header + code + reason, reason truncated so the
 * payload stays <= 125 bytes at a UTF-8 boundary) into out (2 + 125 bytes).
 * code 0 means an empty close payload.  Returns the frame length.
 */
size_t	ws_close_frame(uint8_t *out, uint16_t code, const char *reason);

/* 1 if a code may appear in a close frame on the wire (RFC 6455 7.4). */
int	ws_close_code_valid(unsigned code);

/*
 * Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)) into out
 * (at least 29 bytes, NUL-terminated).
 */
void	ws_accept_key(const char *key, size_t keylen, char *out, size_t outlen);

#endif
