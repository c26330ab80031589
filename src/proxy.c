/*
 * The PROXY protocol header (haproxy's doc/proxy-protocol.txt, v1 text and
 * v2 binary), the Forwarded / X-Forwarded-For walk and trusted blocks.
 * No I/O: the worker hands in what it has read (conn_proxy.c).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy.h"
#include "util.h"

static const uint8_t proxy_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define PP2_CMD_LOCAL		0x0
#define PP2_CMD_PROXY		0x1
#define PP2_FAM_UNSPEC		0x0
#define PP2_FAM_INET		0x1
#define PP2_FAM_INET6		0x2
#define PP2_FAM_UNIX		0x3
#define PP2_PROTO_UNSPEC	0x0
#define PP2_PROTO_STREAM	0x1
#define PP2_PROTO_DGRAM		0x2
#define PP2_TYPE_CRC32C		0x03

/* ---- small strict parsers --------------------------------------------------- */

/* A decimal 0..max, no sign, no leading zero; -1 otherwise. */
static long
proxy_decimal(const char *p, size_t len, long max)
{
	long	 v = 0;
	size_t	 i;

	if (len == 0 || len > 5 || (len > 1 && p[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Dotted quad, each part 0-255 without leading zeros. */
static int
proxy_ipv4(const char *p, size_t len, uint8_t out[4])
{
	size_t	 i = 0, start;
	int	 part;
	long	 v;

	for (part = 0; part < 4; part++) {
		start = i;
		while (i < len && p[i] != '.')
			i++;
		if (i - start > 3 || (v = proxy_decimal(p + start, i - start, 255)) == -1)
			return -1;
		out[part] = (uint8_t)v;
		if (part < 3) {
			if (i == len)
				return -1;
			i++;	/* the dot */
		}
	}
	return i == len ? 0 : -1;
}

/* IPv6 text; dotted: an embedded IPv4 tail may be given. */
static int
proxy_ipv6(const char *p, size_t len, int dotted, uint8_t out[16])
{
	char	 tmp[INET6_ADDRSTRLEN];
	size_t	 i;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
		    (p[i] >= 'A' && p[i] <= 'F') || p[i] == ':' || (dotted && p[i] == '.')))
			return -1;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/* ---- version 1 ------------------------------------------------------------ */

/* The next field of a v1 line, ending at one space or at the end. */
static int
proxy_v1_field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char	*s = *p;

	if (s >= end)
		return -1;
	*f = s;
	while (s < end && *s != ' ')
		s++;
	*flen = (size_t)(s - *f);
	if (*flen == 0)
		return -1;	/* two spaces, or one at the end */
	*p = s < end ? s + 1 : s;
	if (s < end && s + 1 == end)
		return -1;	/* a trailing space */
	return 0;
}

static int
proxy_v1_addr(const char *f, size_t len, int family, struct proxy_addr *a)
{
	a->pa_family = (uint8_t)family;
	memset(a->pa_addr, 0, sizeof(a->pa_addr));
	/*
	 * The spec writes IPv6 in hex, but balancers print an IPv4 client of
	 * an IPv6 listener with inet_ntop(): ::ffff:192.0.2.7 (as Postfix,
	 * the tail is taken; the peer is then kept as IPv4).
	 */
	return family == AF_INET ? proxy_ipv4(f, len, a->pa_addr) :
	    proxy_ipv6(f, len, 1, a->pa_addr);
}

/* "TCP4 src dst sport dport" or "TCP6 ...", the line without "PROXY " and CRLF. */
static int
proxy_v1_line(const char *p, const char *end, struct proxy_hdr *h, const char **why)
{
	const char	*f[5];
	size_t		 fl[5];
	long		 port;
	int		 i, family;

	if (end - p >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (end - p == 7 || p[7] == ' ')) {
		h->ph_local = 1;	/* the rest of the line is ignored */
		return 0;
	}
	for (i = 0; i < 5; i++)
		if (proxy_v1_field(&p, end, &f[i], &fl[i]) == -1) {
			*why = "v1: not five fields separated by single spaces";
			return -1;
		}
	if (p != end) {
		*why = "v1: more than five fields";
		return -1;
	}
	if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else {
		*why = "v1: protocol is not TCP4, TCP6 or UNKNOWN";
		return -1;
	}
	if (proxy_v1_addr(f[1], fl[1], family, &h->ph_src) == -1 ||
	    proxy_v1_addr(f[2], fl[2], family, &h->ph_dst) == -1) {
		*why = "v1: bad address";
		return -1;
	}
	for (i = 3; i < 5; i++) {
		if ((port = proxy_decimal(f[i], fl[i], 65535)) == -1) {
			*why = "v1: bad port";
			return -1;
		}
		(i == 3 ? &h->ph_src : &h->ph_dst)->pa_port = (uint16_t)port;
	}
	return 0;
}

static int
proxy_v1(const uint8_t *buf, size_t len, struct proxy_hdr *h, const char **why)
{
	size_t	 i, n = len < 6 ? len : 6;

	if (memcmp(buf, "PROXY ", n) != 0) {
		*why = "not a PROXY protocol header";
		return PROXY_BAD;
	}
	/* the CR of the CRLF that ends the line is at most at PROXY_V1_MAX - 2 */
	for (i = 0; i < len && i < PROXY_V1_MAX - 1; i++) {
		if (buf[i] == '\r')
			break;
		if (buf[i] == '\n') {
			*why = "v1: LF without CR";
			return PROXY_BAD;
		}
		if (buf[i] < 0x20 || buf[i] > 0x7e) {
			*why = "v1: a byte that is not printable ASCII";
			return PROXY_BAD;
		}
	}
	if (i == PROXY_V1_MAX - 1) {
		*why = "v1: no CRLF in 107 bytes";
		return PROXY_BAD;
	}
	if (i + 1 >= len)
		return PROXY_NEED;
	if (buf[i + 1] != '\n') {
		*why = "v1: CR without LF";
		return PROXY_BAD;
	}
	if (i < 6) {
		*why = "v1: the line ends early";
		return PROXY_BAD;
	}
	h->ph_version = 1;
	h->ph_len = i + 2;
	if (proxy_v1_line((const char *)buf + 6, (const char *)buf + i, h, why) == -1)
		return PROXY_BAD;
	return PROXY_DONE;
}

/* ---- version 2 ------------------------------------------------------------ */

uint32_t
proxy_crc32c(const uint8_t *p, size_t len)
{
	uint32_t	 crc = 0xffffffffu;
	size_t		 i;
	int		 k;

	for (i = 0; i < len; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* The CRC32C TLV's value at off (4 bytes) against the header with it zeroed. */
static int
proxy_v2_crc_ok(const uint8_t *buf, size_t hlen, size_t off)
{
	uint8_t		 tmp[PROXY_MAX];
	uint32_t	 want;

	memcpy(tmp, buf, hlen);
	want = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 |
	    (uint32_t)buf[off + 2] << 8 | buf[off + 3];
	memset(tmp + off, 0, 4);
	return proxy_crc32c(tmp, hlen) == want;
}

/* TLVs from off to the header's end: each inside it, CRC32C checked. */
static int
proxy_v2_tlvs(const uint8_t *buf, size_t off, size_t hlen, const char **why)
{
	size_t	 tlen;

	while (off < hlen) {
		if (hlen - off < 3) {
			*why = "v2: a TLV cut short";
			return -1;
		}
		tlen = (size_t)buf[off + 1] << 8 | buf[off + 2];
		if (tlen > hlen - off - 3) {
			*why = "v2: a TLV longer than the header";
			return -1;
		}
		if (buf[off] == PP2_TYPE_CRC32C &&
		    (tlen != 4 || !proxy_v2_crc_ok(buf, hlen, off + 3))) {
			*why = "v2: CRC32C mismatch";
			return -1;
		}
		off += 3 + tlen;
	}
	return 0;
}

/* The address block of a PROXY command over TCP: source and destination. */
static void
proxy_v2_addrs(const uint8_t *p, int fam, struct proxy_hdr *h)
{
	size_t	 alen = fam == PP2_FAM_INET ? 4 : 16;

	memset(&h->ph_src, 0, sizeof(h->ph_src));
	memset(&h->ph_dst, 0, sizeof(h->ph_dst));
	h->ph_src.pa_family = h->ph_dst.pa_family = fam == PP2_FAM_INET ? AF_INET : AF_INET6;
	memcpy(h->ph_src.pa_addr, p, alen);
	memcpy(h->ph_dst.pa_addr, p + alen, alen);
	h->ph_src.pa_port = (uint16_t)(p[2 * alen] << 8 | p[2 * alen + 1]);
	h->ph_dst.pa_port = (uint16_t)(p[2 * alen + 2] << 8 | p[2 * alen + 3]);
}

/* The 16 fixed bytes, as far as they have come: NEED, BAD, or DONE with *alen. */
static int
proxy_v2_fixed(const uint8_t *buf, size_t len, size_t *alen, const char **why)
{
	size_t	 n = len < 12 ? len : 12;

	if (memcmp(buf, proxy_v2_sig, n) != 0) {
		*why = "not a PROXY protocol header";
		return PROXY_BAD;
	}
	if (len > 12 && (buf[12] >> 4 != 2 || (buf[12] & 0xf) > PP2_CMD_PROXY)) {
		*why = buf[12] >> 4 != 2 ? "v2: version is not 2" : "v2: unknown command";
		return PROXY_BAD;
	}
	if (len > 13 && ((buf[13] >> 4) > PP2_FAM_UNIX || (buf[13] & 0xf) > PP2_PROTO_DGRAM)) {
		*why = "v2: unknown address family or protocol";
		return PROXY_BAD;
	}
	if (len < 16)
		return PROXY_NEED;
	*alen = (size_t)buf[14] << 8 | buf[15];
	if (*alen > PROXY_V2_LEN_MAX) {
		*why = "v2: header longer than 2048 bytes after the fixed part";
		return PROXY_BAD;
	}
	return PROXY_DONE;
}

static int
proxy_v2(const uint8_t *buf, size_t len, struct proxy_hdr *h, const char **why)
{
	static const size_t blocks[4] = { 0, 12, 36, 216 };
	size_t		 alen = 0, need;
	int		 rv, cmd, fam, proto;

	if ((rv = proxy_v2_fixed(buf, len, &alen, why)) != PROXY_DONE)
		return rv;
	cmd = buf[12] & 0xf;
	fam = buf[13] >> 4;
	proto = buf[13] & 0xf;
	need = cmd == PP2_CMD_PROXY && proto != PP2_PROTO_UNSPEC ? blocks[fam] : 0;
	if (alen < need) {
		/* a length that lies: the addresses would be read past it */
		*why = "v2: length shorter than the address block";
		return PROXY_BAD;
	}
	if (cmd == PP2_CMD_PROXY && proto == PP2_PROTO_DGRAM) {
		*why = "v2: not a stream connection";
		return PROXY_BAD;
	}
	if (len < 16 + alen)
		return PROXY_NEED;
	h->ph_version = 2;
	h->ph_len = 16 + alen;
	/* LOCAL and unspecified blocks are skipped whole: their layout is unknown */
	if (cmd == PP2_CMD_LOCAL || fam == PP2_FAM_UNSPEC || proto == PP2_PROTO_UNSPEC) {
		h->ph_local = 1;
		return PROXY_DONE;
	}
	if (proxy_v2_tlvs(buf, 16 + need, h->ph_len, why) == -1)
		return PROXY_BAD;
	if (fam == PP2_FAM_UNIX)
		h->ph_local = 1;
	else
		proxy_v2_addrs(buf + 16, fam, h);
	return PROXY_DONE;
}

int
proxy_parse(const uint8_t *buf, size_t len, struct proxy_hdr *h, const char **why)
{
	memset(h, 0, sizeof(*h));
	*why = NULL;
	if (len == 0)
		return PROXY_NEED;
	if (buf[0] == 'P')
		return proxy_v1(buf, len, h, why);
	if (buf[0] == proxy_v2_sig[0])
		return proxy_v2(buf, len, h, why);
	*why = "not a PROXY protocol header";
	return PROXY_BAD;
}

/* ---- trusted blocks ---------------------------------------------------------- */

int
proxy_cidr_parse(const char *s, struct proxy_cidr *out)
{
	char		 host[INET6_ADDRSTRLEN];
	const char	*slash = strchr(s, '/');
	size_t		 hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
	long		 bits;
	int		 fam, nbits;

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, out->pc_net) == 1)
		out->pc_family = AF_INET;
	else if (inet_pton(AF_INET6, host, out->pc_net) == 1)
		out->pc_family = AF_INET6;
	else
		return -1;
	out->pc_bits = out->pc_family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		if ((bits = proxy_decimal(slash + 1, strlen(slash + 1), out->pc_bits)) == -1)
			return -1;
		out->pc_bits = (uint8_t)bits;
	}
	fam = out->pc_family;
	nbits = out->pc_bits;
	util_cidr_unmap(&fam, out->pc_net, &nbits);
	out->pc_family = (uint8_t)fam;
	out->pc_bits = (uint8_t)nbits;
	return 0;
}

static int
proxy_cidr_in(const struct proxy_cidr *b, int family, const uint8_t *addr)
{
	int	 i, bits = b->pc_bits;

	if (b->pc_family != family)
		return 0;
	for (i = 0; bits > 0; i++, bits -= 8) {
		uint8_t	 mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if ((addr[i] & mask) != (b->pc_net[i] & mask))
			return 0;
	}
	return 1;
}

int
proxy_cidr_match(const struct proxy_cidr *blocks, int n, const struct proxy_addr *a)
{
	const uint8_t		*addr = a->pa_addr;
	int			 family = util_addr_unmap(a->pa_family, &addr), i;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	for (i = 0; i < n; i++)
		if (proxy_cidr_in(&blocks[i], family, addr))
			return 1;
	return 0;
}

/* ---- Forwarded and X-Forwarded-For ------------------------------------------ */

int
proxy_addr_parse(const char *s, size_t len, struct proxy_addr *out)
{
	const char	*colon, *close;
	long		 port = 0;

	memset(out, 0, sizeof(*out));
	if (len > 0 && s[0] == '[') {
		if ((close = memchr(s, ']', len)) == NULL ||
		    proxy_ipv6(s + 1, (size_t)(close - s - 1), 1, out->pa_addr) == -1)
			return -1;
		if (close + 1 < s + len && (close[1] != ':' ||
		    (port = proxy_decimal(close + 2, (size_t)(s + len - close - 2), 65535)) == -1))
			return -1;
		out->pa_family = AF_INET6;
	} else if (memchr(s, '.', len) != NULL && (colon = memchr(s, ':', len)) != NULL &&
	    memchr(colon + 1, ':', (size_t)(s + len - colon - 1)) == NULL) {
		/* a.b.c.d:port */
		if (proxy_ipv4(s, (size_t)(colon - s), out->pa_addr) == -1 ||
		    (port = proxy_decimal(colon + 1, (size_t)(s + len - colon - 1), 65535)) == -1)
			return -1;
		out->pa_family = AF_INET;
	} else if (proxy_ipv4(s, len, out->pa_addr) == 0)
		out->pa_family = AF_INET;
	else if (proxy_ipv6(s, len, 1, out->pa_addr) == 0)
		out->pa_family = AF_INET6;
	else
		return -1;
	out->pa_port = (uint16_t)port;
	return 0;
}

/* RFC 7230 tchar */
static int
proxy_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* One pair's value: a token, or a quoted-string without escapes (no node needs one). */
static int
proxy_fwd_value(const char **p, const char *end, const char **v, size_t *vlen)
{
	const char	*s = *p;

	if (s < end && *s == '"') {
		*v = ++s;
		while (s < end && *s != '"') {
			if (*s == '\\' || (unsigned char)*s < 0x20)
				return -1;
			s++;
		}
		if (s == end)
			return -1;
		*vlen = (size_t)(s - *v);
		*p = s + 1;
		return 0;
	}
	*v = s;
	while (s < end && proxy_tchar(*s))
		s++;
	*vlen = (size_t)(s - *v);
	*p = s;
	return *vlen > 0 ? 0 : -1;
}

/* for=node: 1 an address, 0 "unknown" or obfuscated, -1 malformed. */
static int
proxy_fwd_node(const char *v, size_t len, struct proxy_addr *out)
{
	const char	*colon;

	if ((len == 7 && strncasecmp(v, "unknown", 7) == 0) || (len > 1 && v[0] == '_'))
		return 0;
	/* an obfuscated port ("1.2.3.4:_x") hides only the port */
	if (len > 0 && v[0] != '[' && (colon = memchr(v, ':', len)) != NULL &&
	    memchr(colon + 1, ':', (size_t)(v + len - colon - 1)) == NULL && colon[1] == '_')
		len = (size_t)(colon - v);
	else if (len > 0 && v[0] == '[' && (colon = memchr(v, ']', len)) != NULL &&
	    colon + 2 < v + len && colon[1] == ':' && colon[2] == '_')
		len = (size_t)(colon - v + 1);
	if (len > 0 && v[0] != '[' && memchr(v, ':', len) != NULL && memchr(v, '.', len) == NULL)
		return -1;	/* RFC 7239 6.1: an IPv6 node is bracketed */
	return proxy_addr_parse(v, len, out) == 0 ? 1 : -1;
}

/* One forwarded-element: pairs split by ';'. 1, 0 or -1 as proxy_fwd_node. */
static int
proxy_fwd_element(const char *p, size_t len, struct proxy_addr *out)
{
	const char	*end = p + len, *name, *v;
	size_t		 nlen, vlen;
	int		 rv = 0, seen = 0;

	while (p < end) {
		for (name = p; p < end && proxy_tchar(*p); p++)
			;
		nlen = (size_t)(p - name);
		if (nlen == 0 || p == end || *p++ != '=' ||
		    proxy_fwd_value(&p, end, &v, &vlen) == -1)
			return -1;
		if (nlen == 3 && strncasecmp(name, "for", 3) == 0) {
			if (seen++)
				return -1;	/* a parameter occurs once per element */
			if ((rv = proxy_fwd_node(v, vlen, out)) == -1)
				return -1;
		}
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p++ != ';')
			return -1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	}
	return rv;
}

int
proxy_fwd_client(enum proxy_fwd_kind kind, const struct proxy_item *items, int n,
    int cut, const struct proxy_cidr *trusted, int ntrusted, struct proxy_addr *out)
{
	struct proxy_addr	 a;
	int			 i, rv;

	if (n <= 0)
		return 0;
	for (i = n - 1; i >= 0; i--) {
		if (kind == PROXY_FWD_XFF)
			rv = proxy_addr_parse(items[i].pi_p, items[i].pi_len, &a) == 0 ? 1 : -1;
		else
			rv = proxy_fwd_element(items[i].pi_p, items[i].pi_len, &a);
		if (rv != 1)
			return rv;
		*out = a;
		if (!proxy_cidr_match(trusted, ntrusted, &a))
			return 1;
	}
	/* every hop trusted: the leftmost is the client, if it was kept */
	return cut ? -1 : 1;
}
