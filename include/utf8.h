#ifndef RT_UTF8_H
#define RT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Incremental UTF-8 validator (a DFA in the style of Bjoern Hoehrmann's).
 * Start with UTF8_ACCEPT, feed any number of chunks; a message is valid when
 * the final state is UTF8_ACCEPT.  UTF8_REJECT is sticky and is returned as
 * soon as the first byte that cannot start or continue a valid sequence is
 * seen (fail fast: overlongs, surrogates, > U+10FFFF are rejected at the
 * earliest byte that proves them invalid).
 */
#define UTF8_ACCEPT	0
#define UTF8_REJECT	1

uint32_t utf8_feed(uint32_t state, const uint8_t *buf, size_t len);
/* Whole-buffer convenience: 1 valid, 0 invalid. */
int	 utf8_valid(const uint8_t *buf, size_t len);

#endif
