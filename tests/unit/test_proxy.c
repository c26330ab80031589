/* proxy: PROXY v1/v2 headers at every length, Forwarded and X-Forwarded-For walks, trusted blocks. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static struct proxy_hdr	 h;
static const char	*why;

static int
parse(const void *p, size_t len)
{
	return proxy_parse(p, len, &h, &why);
}

/* Every proper prefix of a valid header is NEED: a split header never fails. */
static void
assert_prefixes_need(const uint8_t *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		ck_assert_msg(parse(p, i) == PROXY_NEED, "prefix %zu of %zu: %s", i, len,
		    why ? why : "not NEED");
}

static int
parse_str(const char *s)
{
	return parse(s, strlen(s));
}

/* A v2 header: ver_cmd, fam, then body of blen bytes; the length field says llen. */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen, size_t llen)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(llen >> 8);
	out[15] = (uint8_t)llen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

static const uint8_t v4body[12] = { 192, 0, 2, 1, 198, 51, 100, 7, 0xdd, 0xd5, 0x01, 0xbb };

START_TEST(test_v1_tcp4)
{
	const char	*s = "PROXY TCP4 192.0.2.1 198.51.100.7 56789 443\r\nGET / HTTP/1.1\r\n";
	size_t		 hl = strlen("PROXY TCP4 192.0.2.1 198.51.100.7 56789 443\r\n");

	ck_assert_int_eq(parse_str(s), PROXY_DONE);
	ck_assert_int_eq(h.ph_version, 1);
	ck_assert_uint_eq(h.ph_len, hl);
	ck_assert_int_eq(h.ph_local, 0);
	ck_assert_int_eq(h.ph_src.pa_family, AF_INET);
	ck_assert_int_eq(memcmp(h.ph_src.pa_addr, "\xc0\x00\x02\x01", 4), 0);
	ck_assert_int_eq(memcmp(h.ph_dst.pa_addr, "\xc6\x33\x64\x07", 4), 0);
	ck_assert_uint_eq(h.ph_src.pa_port, 56789);
	ck_assert_uint_eq(h.ph_dst.pa_port, 443);
	assert_prefixes_need((const uint8_t *)s, hl);
	/* the extremes */
	ck_assert_int_eq(parse_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"), PROXY_DONE);
	ck_assert_uint_eq(h.ph_src.pa_port, 0);
	ck_assert_uint_eq(h.ph_dst.pa_port, 65535);
}
END_TEST

START_TEST(test_v1_tcp6_and_unknown)
{
	struct in6_addr	 a;
	const char	*longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	const char	*tcp6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

	ck_assert_int_eq(parse_str("PROXY TCP6 2001:db8::1 ::1 1234 80\r\n"), PROXY_DONE);
	ck_assert_int_eq(h.ph_src.pa_family, AF_INET6);
	inet_pton(AF_INET6, "2001:db8::1", &a);
	ck_assert_int_eq(memcmp(h.ph_src.pa_addr, &a, 16), 0);
	ck_assert_uint_eq(h.ph_src.pa_port, 1234);
	/* an IPv4 client of an IPv6 listener, as inet_ntop() prints it */
	ck_assert_int_eq(parse_str("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:10.0.0.1 1 2\r\n"),
	    PROXY_DONE);
	ck_assert_int_eq(h.ph_src.pa_family, AF_INET6);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &a);
	ck_assert_int_eq(memcmp(h.ph_src.pa_addr, &a, 16), 0);
	ck_assert_int_eq(parse_str("PROXY UNKNOWN\r\n"), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
	ck_assert_uint_eq(h.ph_len, 15);
	/* UNKNOWN: the rest of the line is ignored, up to the limit */
	ck_assert_uint_eq(strlen(longest), PROXY_V1_MAX);
	ck_assert_int_eq(parse_str(longest), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
	ck_assert_uint_eq(h.ph_len, 107);
	assert_prefixes_need((const uint8_t *)longest, strlen(longest));
	ck_assert_uint_eq(strlen(tcp6), 104);
	ck_assert_int_eq(parse_str(tcp6), PROXY_DONE);
	ck_assert_int_eq(parse_str("PROXY UNKNOWN whatever 1 2\r\n"), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
}
END_TEST

START_TEST(test_v1_strict)
{
	static const char *const bad[] = {
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",	/* two spaces */
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",	/* trailing space */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",	/* a field missing */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",	/* one too many */
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",	/* leading zero */
		"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1x 2\r\n",
		"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",	/* octal-looking */
		"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
		"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",	/* family mismatch */
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 ::ffff:1.2.3 ::1 1 2\r\n",	/* a short IPv4 tail */
		"PROXY TCP6 ::ffff:1.2.3.4.5 ::1 1 2\r\n",
		"PROXY TCP6 ::ffff:1.2.3.256 ::1 1 2\r\n",
		"PROXY TCP6 1.2.3.4::1 ::1 1 2\r\n",	/* IPv4 only at the end */
		"PROXY TCP6 ::1::2 ::1 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",	/* LF alone */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",	/* CR alone */
		"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
		"PROXY \r\n",
		"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY\r\n",
		"GET / HTTP/1.1\r\n",
		"\x16\x03\x01\x02\x00",			/* a TLS ClientHello */
	};
	char	 big[200];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_str(bad[i]) == PROXY_BAD, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
	/* garbage is refused at its first byte, before any timeout */
	ck_assert_int_eq(parse("G", 1), PROXY_BAD);
	ck_assert_int_eq(parse("PROXY\x00", 6), PROXY_BAD);
	/* no CRLF within 107 bytes */
	memset(big, 'a', sizeof(big));
	memcpy(big, "PROXY UNKNOWN ", 14);
	ck_assert_int_eq(parse(big, 105), PROXY_NEED);
	ck_assert_int_eq(parse(big, 106), PROXY_BAD);
	big[105] = '\r';
	big[106] = '\n';
	ck_assert_int_eq(parse(big, 107), PROXY_DONE);
	big[105] = 'a';
	big[106] = '\r';
	big[107] = '\n';
	ck_assert_int_eq(parse(big, 108), PROXY_BAD);
}
END_TEST

START_TEST(test_v2_inet)
{
	uint8_t		 b[64];
	size_t		 n = v2(b, 0x21, 0x11, v4body, 12, 12);

	memcpy(b + n, "GET", 3);
	ck_assert_int_eq(parse(b, n + 3), PROXY_DONE);
	ck_assert_int_eq(h.ph_version, 2);
	ck_assert_uint_eq(h.ph_len, 28);
	ck_assert_int_eq(h.ph_src.pa_family, AF_INET);
	ck_assert_int_eq(memcmp(h.ph_src.pa_addr, v4body, 4), 0);
	ck_assert_int_eq(memcmp(h.ph_dst.pa_addr, v4body + 4, 4), 0);
	ck_assert_uint_eq(h.ph_src.pa_port, 56789);
	ck_assert_uint_eq(h.ph_dst.pa_port, 443);
	assert_prefixes_need(b, n);
}
END_TEST

START_TEST(test_v2_inet6_tlvs_crc)
{
	uint8_t		 body[36 + 32], b[128];
	size_t		 n, bl;
	uint32_t	 crc;

	memset(body, 0, sizeof(body));
	body[15] = 1;		/* ::1 */
	body[16] = 0x20;	/* 2001:db8:: */
	body[17] = 0x01;
	body[18] = 0x0d;
	body[19] = 0xb8;
	body[32] = 0x30;
	body[33] = 0x39;	/* 12345 */
	body[35] = 80;
	bl = 36;
	/* an ALPN TLV, a NOOP of length 0, a CRC32C */
	memcpy(body + bl, "\x01\x00\x02h2", 5);
	bl += 5;
	memcpy(body + bl, "\x04\x00\x00", 3);
	bl += 3;
	memcpy(body + bl, "\x03\x00\x04\x00\x00\x00\x00", 7);
	bl += 7;
	n = v2(b, 0x21, 0x21, body, bl, bl);
	crc = proxy_crc32c(b, n);
	b[n - 4] = (uint8_t)(crc >> 24);
	b[n - 3] = (uint8_t)(crc >> 16);
	b[n - 2] = (uint8_t)(crc >> 8);
	b[n - 1] = (uint8_t)crc;
	ck_assert_int_eq(parse(b, n), PROXY_DONE);
	ck_assert_int_eq(h.ph_src.pa_family, AF_INET6);
	ck_assert_int_eq(h.ph_src.pa_addr[15], 1);
	ck_assert_int_eq(h.ph_dst.pa_addr[0], 0x20);
	ck_assert_uint_eq(h.ph_src.pa_port, 12345);
	ck_assert_uint_eq(h.ph_dst.pa_port, 80);
	assert_prefixes_need(b, n);
	/* one bit off: the checksum fails */
	b[16] ^= 1;
	ck_assert_int_eq(parse(b, n), PROXY_BAD);
	ck_assert_str_eq(why, "v2: CRC32C mismatch");
	/* the known answer (RFC 3720 B.4) */
	ck_assert_uint_eq(proxy_crc32c((const uint8_t *)"123456789", 9), 0xe3069283u);
}
END_TEST

START_TEST(test_v2_local_unspec_unix)
{
	uint8_t		 b[512], body[216 + 8];

	/* LOCAL: keep the socket's addresses, whatever the block holds */
	ck_assert_int_eq(parse(b, v2(b, 0x20, 0x00, NULL, 0, 0)), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
	ck_assert_uint_eq(h.ph_len, 16);
	ck_assert_int_eq(parse(b, v2(b, 0x20, 0x11, v4body, 12, 12)), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
	ck_assert_uint_eq(h.ph_len, 28);
	/* PROXY over an unspecified family: accepted, the socket's address */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x00, v4body, 5, 5)), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
	memset(body, 'x', sizeof(body));
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x31, body, 216, 216)), PROXY_DONE);
	ck_assert_int_eq(h.ph_local, 1);
	/* AF_UNIX with a TLV that overruns */
	memcpy(body + 216, "\x05\x00\x09", 3);
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x31, body, 219, 219)), PROXY_BAD);
}
END_TEST

START_TEST(test_v2_refused)
{
	uint8_t		 b[PROXY_MAX + 64], body[64];

	memset(body, 0, sizeof(body));
	ck_assert_int_eq(parse(b, v2(b, 0x11, 0x11, v4body, 12, 12)), PROXY_BAD);	/* version 1 */
	ck_assert_str_eq(why, "v2: version is not 2");
	ck_assert_int_eq(parse(b, v2(b, 0x22, 0x11, v4body, 12, 12)), PROXY_BAD);	/* command 2 */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x41, v4body, 12, 12)), PROXY_BAD);	/* family 4 */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x13, v4body, 12, 12)), PROXY_BAD);	/* protocol 3 */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x12, v4body, 12, 12)), PROXY_BAD);	/* UDP */
	ck_assert_str_eq(why, "v2: not a stream connection");
	/* lying lengths: shorter than the addresses */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, v4body, 12, 11)), PROXY_BAD);
	ck_assert_str_eq(why, "v2: length shorter than the address block");
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x21, body, 36, 12)), PROXY_BAD);
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, v4body, 0, 0)), PROXY_BAD);
	/* refused as soon as the fixed part shows it, not after a timeout */
	ck_assert_int_eq(parse(b, 16), PROXY_BAD);
	/* over the cap */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, v4body, 12, PROXY_V2_LEN_MAX + 1)), PROXY_BAD);
	memset(b + 16, 0, PROXY_V2_LEN_MAX);
	memcpy(b + 16, v4body, 12);
	b[28] = 0x04;	/* one NOOP TLV filling the rest */
	b[29] = (uint8_t)((PROXY_V2_LEN_MAX - 15) >> 8);
	b[30] = (uint8_t)(PROXY_V2_LEN_MAX - 15);
	v2(b, 0x21, 0x11, b + 16, 0, PROXY_V2_LEN_MAX);
	ck_assert_int_eq(parse(b, PROXY_MAX), PROXY_DONE);
	ck_assert_uint_eq(h.ph_len, PROXY_MAX);
	/* length longer than what comes: waits (a lie here ends in the timeout) */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, v4body, 12, 40)), PROXY_NEED);
	/* TLVs: cut short, too long */
	memcpy(body, v4body, 12);
	memcpy(body + 12, "\x01\x00", 2);
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, body, 14, 14)), PROXY_BAD);
	memcpy(body + 12, "\x01\x00\x05hi", 5);
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, body, 17, 17)), PROXY_BAD);
	ck_assert_str_eq(why, "v2: a TLV longer than the header");
	memcpy(body + 12, "\x03\x00\x02hi", 5);		/* a CRC32C of 2 bytes */
	ck_assert_int_eq(parse(b, v2(b, 0x21, 0x11, body, 17, 17)), PROXY_BAD);
	/* a broken signature, at each byte */
	v2(b, 0x21, 0x11, v4body, 12, 12);
	for (size_t i = 0; i < 12; i++) {
		b[i] ^= 0x40;
		ck_assert_int_eq(parse(b, i + 1), PROXY_BAD);
		b[i] ^= 0x40;
	}
}
END_TEST

START_TEST(test_cidr)
{
	struct proxy_cidr	 c[3];
	struct proxy_addr	 a;

	ck_assert_int_eq(proxy_cidr_parse("10.0.0.0/8", &c[0]), 0);
	ck_assert_int_eq(proxy_cidr_parse("2001:db8::/32", &c[1]), 0);
	ck_assert_int_eq(proxy_cidr_parse("192.0.2.7", &c[2]), 0);
	ck_assert_int_eq(proxy_cidr_parse("10.0.0.0/33", &c[0]) == 0, 0);
	ck_assert_int_eq(proxy_cidr_parse("::/129", &c[0]) == 0, 0);
	ck_assert_int_eq(proxy_cidr_parse("10.0.0.0/", &c[0]) == 0, 0);
	ck_assert_int_eq(proxy_cidr_parse("10.0.0.0/+8", &c[0]) == 0, 0);
	ck_assert_int_eq(proxy_cidr_parse("/8", &c[0]) == 0, 0);
	ck_assert_int_eq(proxy_cidr_parse("example.com", &c[0]) == 0, 0);
	ck_assert_int_eq(proxy_cidr_parse("0.0.0.0/0", &c[0]), 0);
	ck_assert_int_eq(proxy_cidr_parse("10.0.0.0/8", &c[0]), 0);
	ck_assert_int_eq(proxy_addr_parse("10.200.3.4", 10, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 3, &a), 1);
	ck_assert_int_eq(proxy_addr_parse("11.0.0.1", 8, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 3, &a), 0);
	ck_assert_int_eq(proxy_addr_parse("2001:db8:1::9", 13, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 3, &a), 1);
	ck_assert_int_eq(proxy_addr_parse("2001:db9::9", 11, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 3, &a), 0);
	/* an IPv4-mapped peer of a dual-stack socket matches its IPv4 block */
	ck_assert_int_eq(proxy_addr_parse("::ffff:192.0.2.7", 16, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 3, &a), 1);
	ck_assert_int_eq(proxy_addr_parse("192.0.2.8", 9, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 3, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 0, &a), 0);
	/* and an IPv4-mapped block is its IPv4 block, for either form of peer */
	ck_assert_int_eq(proxy_cidr_parse("::ffff:10.0.0.0/104", &c[0]), 0);
	ck_assert_int_eq(c[0].pc_family, AF_INET);
	ck_assert_int_eq(c[0].pc_bits, 8);
	ck_assert_int_eq(proxy_cidr_parse("::ffff:127.0.0.2", &c[1]), 0);
	ck_assert_int_eq(c[1].pc_bits, 32);
	ck_assert_int_eq(proxy_addr_parse("10.9.9.9", 8, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 2, &a), 1);
	ck_assert_int_eq(proxy_addr_parse("::ffff:10.9.9.9", 15, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 2, &a), 1);
	ck_assert_int_eq(proxy_addr_parse("127.0.0.2", 9, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 2, &a), 1);
	ck_assert_int_eq(proxy_addr_parse("127.0.0.3", 9, &a), 0);
	ck_assert_int_eq(proxy_cidr_match(c, 2, &a), 0);
}
END_TEST

START_TEST(test_addr_forms)
{
	struct proxy_addr	 a;
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4:", "1.2.3.4:99999",
		"[::1", "[::1]x", "[::1]:", "[1.2.3.4]", "::1::", "host.example", "1.2.3.4 ",
		"unknown", "[::1]:+1",
	};
	size_t	 i;

	ck_assert_int_eq(proxy_addr_parse("1.2.3.4:8080", 12, &a), 0);
	ck_assert_int_eq(a.pa_family, AF_INET);
	ck_assert_uint_eq(a.pa_port, 8080);
	ck_assert_int_eq(proxy_addr_parse("[2001:db8::17]:4711", 19, &a), 0);
	ck_assert_int_eq(a.pa_family, AF_INET6);
	ck_assert_uint_eq(a.pa_port, 4711);
	ck_assert_int_eq(proxy_addr_parse("[::1]", 5, &a), 0);
	ck_assert_uint_eq(a.pa_port, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(proxy_addr_parse(bad[i], strlen(bad[i]), &a) == -1, "took %s", bad[i]);
}
END_TEST

/* items from one comma-separated string (what http_header_next_item gives) */
static int
split(char *s, struct proxy_item *it)
{
	int	 n = 0;
	char	*tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		it[n].pi_p = tok;
		it[n].pi_len = strlen(tok);
		while (it[n].pi_len > 0 && tok[it[n].pi_len - 1] == ' ')
			it[n].pi_len--;
		n++;
	}
	return n;
}

static int
walk(enum proxy_fwd_kind kind, const char *hdr, char *out, size_t outlen)
{
	struct proxy_cidr	 t[2];
	struct proxy_item	 it[40];
	struct proxy_addr	 a;
	char			 copy[1024];
	int			 n, rv;

	proxy_cidr_parse("10.0.0.0/8", &t[0]);
	proxy_cidr_parse("2001:db8::/32", &t[1]);
	snprintf(copy, sizeof(copy), "%s", hdr);
	n = split(copy, it);
	rv = proxy_fwd_client(kind, it, n, 0, t, 2, &a);
	out[0] = '\0';
	if (rv == 1)
		inet_ntop(a.pa_family, a.pa_addr, out, (socklen_t)outlen);
	return rv;
}

START_TEST(test_xff_walk)
{
	char	 s[64];

	ck_assert_int_eq(walk(PROXY_FWD_XFF, "203.0.113.9", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "203.0.113.9");
	/* right to left: trusted hops skipped, the client is the first other one */
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "198.51.100.1, 203.0.113.9, 10.1.1.1", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "203.0.113.9");
	/* what the client wrote on the left is never read */
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "garbage, 203.0.113.9", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "203.0.113.9");
	/* every hop trusted: the leftmost */
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "10.0.0.5, 10.0.0.6", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "10.0.0.5");
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "2001:db8::1, 2001:db9::2", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "2001:db9::2");
	/* malformed where the walk reads: the header is ignored */
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "203.0.113.9, nonsense", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "203.0.113.9, 10.0.0.1, 1.2.3", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "unknown", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_XFF, "", s, sizeof(s)), 0);
}
END_TEST

START_TEST(test_forwarded_walk)
{
	struct proxy_cidr	 t;
	struct proxy_item	 it[2];
	struct proxy_addr	 a;
	char			 s[64];

	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=192.0.2.60;proto=http;by=203.0.113.43",
	    s, sizeof(s)), 1);
	ck_assert_str_eq(s, "192.0.2.60");
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=\"[2001:db9:cafe::17]:4711\"", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "2001:db9:cafe::17");
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "For=\"192.0.2.43:47011\"", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "192.0.2.43");
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=198.51.100.17, for=10.0.0.1; proto=https",
	    s, sizeof(s)), 1);
	ck_assert_str_eq(s, "198.51.100.17");
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=192.0.2.43:_hidden", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=\"192.0.2.43:_hidden\"", s, sizeof(s)), 1);
	ck_assert_str_eq(s, "192.0.2.43");
	/* no address to use: unknown, obfuscated, no for= */
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=unknown", s, sizeof(s)), 0);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=_hidden", s, sizeof(s)), 0);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "proto=https", s, sizeof(s)), 0);
	/* malformed */
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=::1", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=\"::1\"", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=\"[::1]", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=1.2.3.4;for=5.6.7.8", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=1.2.3.4 x", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=\"1.2.\\3.4\"", s, sizeof(s)), -1);
	ck_assert_int_eq(walk(PROXY_FWD_FORWARDED, "for=300.2.3.4", s, sizeof(s)), -1);
	/* the kept hops all trusted but some were cut: unknown client, refused */
	proxy_cidr_parse("10.0.0.0/8", &t);
	it[0].pi_p = it[1].pi_p = "10.0.0.1";
	it[0].pi_len = it[1].pi_len = 8;
	ck_assert_int_eq(proxy_fwd_client(PROXY_FWD_XFF, it, 2, 1, &t, 1, &a), -1);
	ck_assert_int_eq(proxy_fwd_client(PROXY_FWD_XFF, it, 2, 0, &t, 1, &a), 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proxy");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6_and_unknown);
	tcase_add_test(tc, test_v1_strict);
	tcase_add_test(tc, test_v2_inet);
	tcase_add_test(tc, test_v2_inet6_tlvs_crc);
	tcase_add_test(tc, test_v2_local_unspec_unix);
	tcase_add_test(tc, test_v2_refused);
	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_addr_forms);
	tcase_add_test(tc, test_xff_walk);
	tcase_add_test(tc, test_forwarded_walk);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
