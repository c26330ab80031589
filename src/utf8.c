/*
 * Incremental UTF-8 validation (RFC 3629) for WebSocket text messages,
 * which arrive in arbitrary pieces: the state carries a partial sequence
 * from one call to the next.
 *
 * Rather than a byte-at-a-time decode, a byte is mapped to a class and the
 * class drives a small DFA.  The classes split the continuation range
 * (80-8F, 90-9F, A0-BF) so that the states after E0, ED, F0 and F4 can
 * reject overlongs, surrogates and code points above U+10FFFF at their
 * second byte, which is what makes the validator fail fast.
 */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* Byte classes. */
enum {
	C_ASCII,	/* 00-7F */
	C_CONT1,	/* 80-8F */
	C_CONT2,	/* 90-9F */
	C_CONT3,	/* A0-BF */
	C_LEAD2,	/* C2-DF */
	C_E0,		/* E0: second byte A0-BF (else overlong) */
	C_LEAD3,	/* E1-EC, EE-EF */
	C_ED,		/* ED: second byte 80-9F (else surrogate) */
	C_F0,		/* F0: second byte 90-BF (else overlong) */
	C_LEAD4,	/* F1-F3 */
	C_F4,		/* F4: second byte 80-8F (else > U+10FFFF) */
	C_BAD,		/* C0, C1, F5-FF: never valid */
	C_NCLASS
};

/* States; ACCEPT and REJECT are the public values 0 and 1. */
enum {
	S_ACCEPT = UTF8_ACCEPT,
	S_REJECT = UTF8_REJECT,
	S_NEED1,	/* one continuation byte left */
	S_NEED2,	/* two left */
	S_E0,		/* after E0 */
	S_ED,		/* after ED */
	S_NEED3,	/* three left */
	S_F0,		/* after F0 */
	S_F4,		/* after F4 */
	S_NSTATE
};

static const uint8_t utf8_class[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 10 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 20 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 30 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 40 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 50 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 60 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 70 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 80 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,	/* 90 */
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,	/* a0 */
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,	/* b0 */
	11, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,	/* c0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,	/* d0 */
	5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 6, 6,	/* e0 */
	8, 9, 9, 9, 10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, /* f0 */
};

#define R	S_REJECT
static const uint8_t utf8_next[S_NSTATE][C_NCLASS] = {
	/*		ASCII	80-8F	90-9F	A0-BF	C2-DF	E0	E1-EF	ED	F0	F1-F3	F4	bad */
	[S_ACCEPT] = {	S_ACCEPT, R,	R,	R,	S_NEED1, S_E0,	S_NEED2, S_ED,	S_F0,	S_NEED3, S_F4,	R },
	[S_REJECT] = {	R,	R,	R,	R,	R,	R,	R,	R,	R,	R,	R,	R },
	[S_NEED1] = {	R,	S_ACCEPT, S_ACCEPT, S_ACCEPT, R, R,	R,	R,	R,	R,	R,	R },
	[S_NEED2] = {	R,	S_NEED1, S_NEED1, S_NEED1, R,	R,	R,	R,	R,	R,	R,	R },
	[S_E0] = {	R,	R,	R,	S_NEED1, R,	R,	R,	R,	R,	R,	R,	R },
	[S_ED] = {	R,	S_NEED1, S_NEED1, R,	R,	R,	R,	R,	R,	R,	R,	R },
	[S_NEED3] = {	R,	S_NEED2, S_NEED2, S_NEED2, R,	R,	R,	R,	R,	R,	R,	R },
	[S_F0] = {	R,	R,	S_NEED2, S_NEED2, R,	R,	R,	R,	R,	R,	R,	R },
	[S_F4] = {	R,	S_NEED2, R,	R,	R,	R,	R,	R,	R,	R,	R,	R },
};
#undef R

/*
 * Chat and JSON payloads are mostly ASCII: between sequences, skip eight
 * bytes at a time while none has its top bit set.
 */
static size_t
utf8_ascii_run(const uint8_t *buf, size_t len)
{
	uint64_t	 w;
	size_t		 i = 0;

	while (len - i >= sizeof(w)) {
		memcpy(&w, buf + i, sizeof(w));
		if (w & 0x8080808080808080ULL)
			break;
		i += sizeof(w);
	}
	return i;
}

uint32_t
utf8_feed(uint32_t state, const uint8_t *buf, size_t len)
{
	size_t	 i = 0;

	if (state >= S_NSTATE)
		return UTF8_REJECT;
	while (i < len) {
		if (state == S_ACCEPT)
			i += utf8_ascii_run(buf + i, len - i);
		if (i == len)
			break;
		state = utf8_next[state][utf8_class[buf[i++]]];
		if (state == S_REJECT)
			break;
	}
	return state;
}

int
utf8_valid(const uint8_t *buf, size_t len)
{
	return utf8_feed(UTF8_ACCEPT, buf, len) == UTF8_ACCEPT;
}
