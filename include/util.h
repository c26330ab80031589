#ifndef RT_UTIL_H
#define RT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <string.h>
#include <strings.h>

/* "2025-11-25T12:00:00.000Z" into out (RT_TIMESTAMP_LEN + 1 bytes). */
void	util_timestamp(char *out, size_t outlen, const struct timeval *tv);
/* Random (CSPRNG) UUID v4 into out (RT_UUID_LEN + 1 bytes). 0 ok, -1 error. */
int	util_uuid4(char *out, size_t outlen);
/* The wall clock in milliseconds since the epoch. */
int64_t util_wall_ms(void);
/* Monotonic clock in milliseconds. */
uint64_t util_now_ms(void);
/* The same clock (one for every process) in microseconds. */
uint64_t util_now_us(void);
/*
 * Case-insensitive compare of a counted string with a C string (inline:
 * b's length folds to a constant when b is a literal, as it mostly is).
 */
static inline int
util_strncaseeq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}
/*
 * 1 if a heap with free_bytes free (mallinfo2 fordblks) is worth a
 * malloc_trim(): more than threshold free, and the free total moved by a
 * quarter of threshold since the last trim (last_free; 0 if none).
 */
int	util_trim_due(size_t free_bytes, size_t last_free, size_t threshold);
/* FNV-1a of len bytes: the one hash of every table (registry, worker index). */
uint32_t util_hash(const char *s, size_t len);

struct sockaddr;
struct rt_strlist;
/*
 * 1 if the peer address is in one of the "ADDR[/BITS]" entries; an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is matched as a.b.c.d.
 * util_addr_in: the address as its family's bytes (4 or 16).
 */
int	util_addr_allowed(const struct sockaddr *sa, const struct rt_strlist *list);
int	util_addr_in(int family, const unsigned char *addr, const struct rt_strlist *list);
/* AF_INET with *addr moved to its last 4 bytes for ::ffff:a.b.c.d, else family. */
int	util_addr_unmap(int family, const unsigned char **addr);
/*
 * A block of IPv4-mapped addresses (::ffff:a.b.c.d/96 and longer) as the
 * IPv4 block it is, since peers are unmapped before they are matched.
 */
void	util_cidr_unmap(int *family, unsigned char net[16], int *bits);
/* 1 if entry is a valid "ADDR[/BITS]". */
int	util_cidr_valid(const char *entry);
/* Random bytes for jitter, not for secrets. */
void	util_random(void *buf, size_t len);

#endif
