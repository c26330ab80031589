#ifndef RT_PROXY_H
#define RT_PROXY_H

/*
 * The client's address behind a load balancer: the PROXY protocol header
 * (haproxy's proxy-protocol.txt, versions 1 and 2) that a proxy_protocol
 * listener reads before anything else, the Forwarded (RFC 7239) and
 * X-Forwarded-For items that trusted_proxies may send, and the CIDR blocks
 * that trust is judged by.  Pure: bytes in, results out.
 */
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX		107	/* the longest v1 line, CRLF included */
#define PROXY_V2_LEN_MAX	2048	/* v2: address block and TLVs */
#define PROXY_MAX		(16 + PROXY_V2_LEN_MAX)	/* the longest header taken */
#define PROXY_FWD_HOPS		32	/* Forwarded / X-Forwarded-For members walked */

/* An address, compact. */
struct proxy_addr {
	uint8_t		 pa_family;	/* AF_INET, AF_INET6; AF_UNSPEC: none */
	uint16_t	 pa_port;	/* 0: none given */
	uint8_t		 pa_addr[16];
};

struct proxy_hdr {
	int		 ph_version;	/* 1 or 2 */
	size_t		 ph_len;	/* the header's bytes */
	/*
	 * 1: keep the socket's own addresses (v2 LOCAL, v1 UNKNOWN, v2 with an
	 * unspecified family or protocol, or AF_UNIX); ph_src/ph_dst unset.
	 */
	int		 ph_local;
	struct proxy_addr ph_src;
	struct proxy_addr ph_dst;
};

enum proxy_result {
	PROXY_NEED = 0,		/* every byte so far belongs to a header not complete yet */
	PROXY_DONE = 1,
	PROXY_BAD = -1,
};

/*
 * The PROXY header at the start of buf, of which len bytes have arrived.
 * PROXY_NEED promises that all len bytes are header, so a reader may take
 * them off the socket without eating what follows.  PROXY_DONE fills h; the
 * bytes after h->ph_len are the connection's own.  PROXY_BAD sets *why
 * (a static string).  Strict: anything the specification does not allow,
 * or a v2 length under its address block or over PROXY_V2_LEN_MAX, is bad.
 */
int	proxy_parse(const uint8_t *buf, size_t len, struct proxy_hdr *h, const char **why);

/* CRC-32C (Castagnoli) of len bytes, as the v2 PP2_TYPE_CRC32C TLV holds it. */
uint32_t proxy_crc32c(const uint8_t *p, size_t len);

/* A trusted block: "ADDR[/BITS]" parsed once. */
struct proxy_cidr {
	uint8_t		 pc_family;
	uint8_t		 pc_bits;
	uint8_t		 pc_net[16];
};

/* "ADDR" or "ADDR/BITS" (IPv4 or IPv6); 0, or -1 when it is neither. */
int	proxy_cidr_parse(const char *s, struct proxy_cidr *out);

/* 1 if a is in one of the n blocks (an IPv4-mapped IPv6 address as IPv4). */
int	proxy_cidr_match(const struct proxy_cidr *blocks, int n, const struct proxy_addr *a);

/* "1.2.3.4", "::1", "[::1]", "[::1]:80" or "1.2.3.4:80": 0, or -1. */
int	proxy_addr_parse(const char *s, size_t len, struct proxy_addr *out);

enum proxy_fwd_kind {
	PROXY_FWD_FORWARDED,	/* RFC 7239 elements: for=...;by=...;proto=... */
	PROXY_FWD_XFF,		/* X-Forwarded-For addresses */
};

struct proxy_item {
	const char	*pi_p;
	size_t		 pi_len;
};

/*
 * The client behind trusted proxies, from the members of one header kind
 * in the order they were sent (items[n - 1] was added by the proxy next to
 * us; cut: earlier members were dropped to keep the last PROXY_FWD_HOPS).
 * Walking right to left, the first address not in the trusted blocks is
 * the client; when every one is trusted, the leftmost.  1: *out is it.
 * 0: the walk met no address it may use (an element without for=, "unknown",
 * an obfuscated identifier): keep the peer's.  -1: a member the walk had to
 * read is malformed (or the trusted hops went past what was kept).
 */
int	proxy_fwd_client(enum proxy_fwd_kind kind, const struct proxy_item *items, int n,
	    int cut, const struct proxy_cidr *trusted, int ntrusted, struct proxy_addr *out);

#endif
