/*
 * Control messages (control.c): the signed wire form and its strict
 * reading (every malformed form refused, every changed byte refused as
 * forged, nothing read past the given length), the replay window against
 * a plain model of it, and the signed values of stored revocations.  The
 * MACs the tests expect are computed here with OpenSSL directly, from
 * the definitions in control.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "control.h"
#include "util.h"

/* ---- helpers -------------------------------------------------------- */

#define SECRET		"test-secret-0123456789"
#define PLEN		(sizeof(CTL_PREFIX) - 1)
#define NONCE_HEX	"000102030405060708090a0b0c0d0e0f"

/* The lowercase hex HMAC-SHA256 of d[0..n) under key, into hex[65]. */
static void
ref_mac(const char *key, const void *d, size_t n, char *hex)
{
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;
	size_t		 i;

	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)strlen(key), d, n, md, &mdlen));
	ck_assert_uint_eq(mdlen, 32);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* "rtctl1 MAC JSON" of json[0..jlen) signed under key, into out: its length. */
static size_t
sign_n(const char *key, const char *json, size_t jlen, char *out, size_t outlen)
{
	char	 hex[65];

	ck_assert_uint_lt(PLEN + 65 + jlen, outlen);
	ref_mac(key, json, jlen, hex);
	memcpy(out, CTL_PREFIX, PLEN);
	memcpy(out + PLEN, hex, 64);
	out[PLEN + 64] = ' ';
	memcpy(out + PLEN + 65, json, jlen);
	out[PLEN + 65 + jlen] = '\0';
	return PLEN + 65 + jlen;
}

static size_t
sign(const char *json, char *out, size_t outlen)
{
	return sign_n(SECRET, json, strlen(json), out, outlen);
}

/* Decode a copy of exactly len bytes (a read past it is a heap overflow). */
static int
dec_key(const char *key, const char *p, size_t len, struct ctl_msg *m, const char **why)
{
	char	*c;
	int	 rv;

	ck_assert_ptr_nonnull(c = malloc(len > 0 ? len : 1));
	memcpy(c, p, len);
	*why = NULL;
	rv = ctl_decode(c, len, key, strlen(key), m, why);
	free(c);
	if (rv != CTL_OK)
		ck_assert_ptr_nonnull(*why);
	return rv;
}

static int
dec(const char *p, size_t len, struct ctl_msg *m, const char **why)
{
	return dec_key(SECRET, p, len, m, why);
}

/* JSON signed with the right secret: its verdict and *why. */
static int
dec_json(const char *json, struct ctl_msg *m, const char **why)
{
	char	 buf[4096];
	size_t	 n = sign(json, buf, sizeof(buf));

	return dec(buf, n, m, why);
}

/*
 * The JSON of a valid kick, except for member key: its raw value text
 * val instead, or no such member when val is NULL; extra (raw JSON text,
 * may be "") is added at the end.
 */
static const char *
json_with(const char *key, const char *val, const char *extra)
{
	static char	 out[2048];
	static const char *const def[][2] = {
		{ "ts", "1700000000000" },
		{ "nonce", "\"" NONCE_HEX "\"" },
		{ "node", "\"node-1:8080\"" },
		{ "inst", "\"0123456789abcdef\"" },
		{ "cmd", "\"kick\"" },
		{ "arg", "\"conn-1\"" },
	};
	size_t		 i, n = 0;
	const char	*v;

	out[n++] = '{';
	for (i = 0; i < sizeof(def) / sizeof(def[0]); i++) {
		v = key != NULL && strcmp(key, def[i][0]) == 0 ? val : def[i][1];
		if (v == NULL)
			continue;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s\"%s\":%s",
		    n > 1 ? "," : "", def[i][0], v);
	}
	if (key != NULL && val != NULL && strcmp(key, "until") == 0)
		n += (size_t)snprintf(out + n, sizeof(out) - n, ",\"until\":%s", val);
	snprintf(out + n, sizeof(out) - n, "%s}", extra);
	return out;
}

static void
msg_fill(struct ctl_msg *m, enum ctl_cmd cmd, const char *arg, int64_t until)
{
	size_t	 i;

	memset(m, 0, sizeof(*m));
	m->cm_cmd = cmd;
	m->cm_ts = 1700000000123LL;
	for (i = 0; i < CTL_NONCE_LEN; i++)
		m->cm_nonce[i] = (uint8_t)(0xf0 ^ i * 17);
	snprintf(m->cm_node, sizeof(m->cm_node), "%s", "node-1.example:8080@a_b");
	m->cm_inst = 0xfedcba9876543210ULL;
	snprintf(m->cm_arg, sizeof(m->cm_arg), "%s", arg);
	m->cm_until = until;
}

static void
msg_eq(const struct ctl_msg *a, const struct ctl_msg *b)
{
	ck_assert_int_eq(a->cm_cmd, b->cm_cmd);
	ck_assert_int_eq(a->cm_ts, b->cm_ts);
	ck_assert_mem_eq(a->cm_nonce, b->cm_nonce, CTL_NONCE_LEN);
	ck_assert_str_eq(a->cm_node, b->cm_node);
	ck_assert_uint_eq(a->cm_inst, b->cm_inst);
	ck_assert_str_eq(a->cm_arg, b->cm_arg);
	ck_assert_int_eq(a->cm_until, b->cm_until);
}

/* Encode m, decode that, compare. */
static void
round_trip(const struct ctl_msg *m)
{
	struct ctl_msg	 d;
	char		 buf[CTL_MSG_MAX];
	const char	*why;
	ssize_t		 n;

	n = ctl_encode(m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(buf), (size_t)n);
	memset(&d, 0xa5, sizeof(d));
	ck_assert_msg(dec(buf, (size_t)n, &d, &why) == CTL_OK, "%s: %s", buf, why);
	msg_eq(m, &d);
}

#define OK_JSON(j) do {							\
	struct ctl_msg	 m_;						\
	const char	*w_;						\
	ck_assert_msg(dec_json(j, &m_, &w_) == CTL_OK, "refused (%s): %s", w_, j); \
} while (0)
/* want is NULL when any reason will do */
static int
why_is(const char *got, const char *want)
{
	return want == NULL || strcmp(got, want) == 0;
}

#define BAD_JSON(j, w) do {						\
	struct ctl_msg	 m_;						\
	const char	*w_, *ww_ = (w);				\
	int		 r_ = dec_json(j, &m_, &w_);			\
	ck_assert_msg(r_ == CTL_MALFORMED, "rv %d for %s", r_, j);	\
	ck_assert_msg(why_is(w_, ww_), "why \"%s\", not \"%s\", for %s", \
	    w_, ww_ == NULL ? "" : ww_, j);				\
} while (0)

/* ---- names and fields ------------------------------------------------ */

START_TEST(test_cmd_names_and_parse)
{
	ck_assert_str_eq(ctl_cmd_name(CTL_KICK), "kick");
	ck_assert_str_eq(ctl_cmd_name(CTL_KICK_USER), "kick-user");
	ck_assert_str_eq(ctl_cmd_name(CTL_REVOKE), "revoke");
	ck_assert_str_eq(ctl_cmd_name(CTL_UNREVOKE), "unrevoke");
	ck_assert_ptr_null(ctl_cmd_name(CTL_NONE));
	ck_assert_ptr_null(ctl_cmd_name((enum ctl_cmd)5));
	ck_assert_ptr_null(ctl_cmd_name((enum ctl_cmd)-1));
	ck_assert_int_eq(ctl_cmd_parse("kick"), CTL_KICK);
	ck_assert_int_eq(ctl_cmd_parse("kick-user"), CTL_KICK_USER);
	ck_assert_int_eq(ctl_cmd_parse("revoke"), CTL_REVOKE);
	ck_assert_int_eq(ctl_cmd_parse("unrevoke"), CTL_UNREVOKE);
	ck_assert_int_eq(ctl_cmd_parse("Kick"), CTL_NONE);
	ck_assert_int_eq(ctl_cmd_parse("kick "), CTL_NONE);
	ck_assert_int_eq(ctl_cmd_parse("kic"), CTL_NONE);
	ck_assert_int_eq(ctl_cmd_parse("kick-"), CTL_NONE);
	ck_assert_int_eq(ctl_cmd_parse(""), CTL_NONE);
	ck_assert_int_eq(ctl_cmd_parse(NULL), CTL_NONE);
}
END_TEST

START_TEST(test_arg_valid)
{
	char	 a[CTL_ARG_MAX + 2];

	ck_assert_int_eq(ctl_arg_valid("a", 1), 1);
	ck_assert_int_eq(ctl_arg_valid("conn-\"1\"\\x", 10), 1);
	ck_assert_int_eq(ctl_arg_valid("caf\xc3\xa9", 5), 1);
	ck_assert_int_eq(ctl_arg_valid("\xe6\x97\xa5\xf0\x9f\x98\x80", 7), 1);
	ck_assert_int_eq(ctl_arg_valid("~!{}", 4), 1);
	memset(a, 'x', sizeof(a));
	ck_assert_int_eq(ctl_arg_valid(a, CTL_ARG_MAX), 1);
	ck_assert_int_eq(ctl_arg_valid(a, CTL_ARG_MAX + 1), 0);
	ck_assert_int_eq(ctl_arg_valid("", 0), 0);
	ck_assert_int_eq(ctl_arg_valid(NULL, 0), 0);
	ck_assert_int_eq(ctl_arg_valid("a b", 3), 0);
	ck_assert_int_eq(ctl_arg_valid("a\tb", 3), 0);
	ck_assert_int_eq(ctl_arg_valid("a\nb", 3), 0);
	ck_assert_int_eq(ctl_arg_valid("\x01", 1), 0);
	ck_assert_int_eq(ctl_arg_valid("\x1f", 1), 0);
	ck_assert_int_eq(ctl_arg_valid("a\x7f", 2), 0);
	ck_assert_int_eq(ctl_arg_valid("a\0b", 3), 0);	/* counted, not C string */
	ck_assert_int_eq(ctl_arg_valid("\xff", 1), 0);
	ck_assert_int_eq(ctl_arg_valid("\xc3", 1), 0);	/* truncated */
	ck_assert_int_eq(ctl_arg_valid("\xc0\xaf", 2), 0);	/* overlong */
	ck_assert_int_eq(ctl_arg_valid("\xed\xa0\x80", 3), 0);	/* surrogate */
	ck_assert_int_eq(ctl_arg_valid("\xf4\x90\x80\x80", 4), 0);	/* > U+10FFFF */
	/* only len bytes count */
	ck_assert_int_eq(ctl_arg_valid("ab cd", 2), 1);
}
END_TEST

START_TEST(test_node_valid)
{
	char	 n[CTL_NODE_MAX + 2];

	ck_assert_int_eq(ctl_node_valid("a", 1), 1);
	ck_assert_int_eq(ctl_node_valid("host-1.example.org:8080", 23), 1);
	ck_assert_int_eq(ctl_node_valid("A_z@0:9.-", 9), 1);
	memset(n, 'n', sizeof(n));
	ck_assert_int_eq(ctl_node_valid(n, CTL_NODE_MAX), 1);
	ck_assert_int_eq(ctl_node_valid(n, CTL_NODE_MAX + 1), 0);
	ck_assert_int_eq(ctl_node_valid("", 0), 0);
	ck_assert_int_eq(ctl_node_valid(NULL, 0), 0);
	ck_assert_int_eq(ctl_node_valid("a b", 3), 0);
	ck_assert_int_eq(ctl_node_valid("a/b", 3), 0);
	ck_assert_int_eq(ctl_node_valid("a\"b", 3), 0);
	ck_assert_int_eq(ctl_node_valid("a\\b", 3), 0);
	ck_assert_int_eq(ctl_node_valid("a\0b", 3), 0);
	ck_assert_int_eq(ctl_node_valid("a+", 2), 0);
	ck_assert_int_eq(ctl_node_valid("caf\xc3\xa9", 5), 0);
	ck_assert_int_eq(ctl_node_valid("ab cd", 2), 1);
}
END_TEST

/* ---- encoding and round trips ---------------------------------------- */

START_TEST(test_encode_exact_form)
{
	struct ctl_msg	 m;
	char		 buf[CTL_MSG_MAX], want[CTL_MSG_MAX];
	const char	*json;
	size_t		 i;
	ssize_t		 n;

	memset(&m, 0, sizeof(m));
	m.cm_cmd = CTL_REVOKE;
	m.cm_ts = 1700000000000LL;
	for (i = 0; i < CTL_NONCE_LEN; i++)
		m.cm_nonce[i] = (uint8_t)i;
	strcpy(m.cm_node, "n1:80");
	m.cm_inst = 0x0123456789abcdefULL;
	strcpy(m.cm_arg, "j\"t\\i");
	m.cm_until = 1700003600;
	json = "{\"ts\":1700000000000,\"nonce\":\"" NONCE_HEX "\",\"node\":\"n1:80\","
	    "\"inst\":\"0123456789abcdef\",\"cmd\":\"revoke\",\"arg\":\"j\\\"t\\\\i\","
	    "\"until\":1700003600}";
	sign(json, want, sizeof(want));
	n = ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_str_eq(buf, want);

	/* no until for the others; a small inst keeps its zeros */
	m.cm_cmd = CTL_KICK;
	m.cm_until = 0;
	m.cm_inst = 1;
	strcpy(m.cm_arg, "c");
	json = "{\"ts\":1700000000000,\"nonce\":\"" NONCE_HEX "\",\"node\":\"n1:80\","
	    "\"inst\":\"0000000000000001\",\"cmd\":\"kick\",\"arg\":\"c\"}";
	sign(json, want, sizeof(want));
	n = ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(test_round_trip_every_command)
{
	struct ctl_msg	 m;
	static const char *const args[] = {
		"a", "conn-00000000-0000-4000-8000-000000000000", "q\"u\\o\"te",
		"\\", "\"", "caf\xc3\xa9-\xe6\x97\xa5\xf0\x9f\x98\x80", "a:b,c}{[]",
		"\\u0000", "/slash/",
	};
	enum ctl_cmd	 c;
	size_t		 i;

	for (c = CTL_KICK; c <= CTL_UNREVOKE; c++)
		for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
			msg_fill(&m, c, args[i], c == CTL_REVOKE ? 1767225600 : 0);
			round_trip(&m);
		}
}
END_TEST

START_TEST(test_round_trip_extremes)
{
	struct ctl_msg	 m;
	enum ctl_cmd	 c;

	for (c = CTL_KICK; c <= CTL_UNREVOKE; c++) {
		/* the longest message: 255 quotes escape to 510 bytes */
		msg_fill(&m, c, "", c == CTL_REVOKE ? INT64_MAX : 0);
		memset(m.cm_arg, '"', CTL_ARG_MAX);
		m.cm_arg[CTL_ARG_MAX] = '\0';
		memset(m.cm_node, 'N', CTL_NODE_MAX);
		m.cm_node[CTL_NODE_MAX] = '\0';
		m.cm_ts = INT64_MAX;
		m.cm_inst = UINT64_MAX;
		memset(m.cm_nonce, 0xff, CTL_NONCE_LEN);
		round_trip(&m);
		m.cm_ts = 1;
		m.cm_inst = 0;
		memset(m.cm_nonce, 0, CTL_NONCE_LEN);
		if (c == CTL_REVOKE)
			m.cm_until = 1;
		round_trip(&m);
	}
}
END_TEST

START_TEST(test_encode_refuses_invalid)
{
	struct ctl_msg	 m;
	char		 buf[CTL_MSG_MAX];

#define ENC_BAD() ck_assert_int_eq(ctl_encode(&m, SECRET, strlen(SECRET), buf, \
	sizeof(buf)), -1)
	msg_fill(&m, CTL_NONE, "a", 0);
	ENC_BAD();
	msg_fill(&m, (enum ctl_cmd)5, "a", 0);
	ENC_BAD();
	msg_fill(&m, (enum ctl_cmd)-1, "a", 0);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "", 0);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "a b", 0);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "a\tb", 0);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "a\x7f", 0);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "\xff", 0);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "a", 0);
	memset(m.cm_arg, 'a', sizeof(m.cm_arg));	/* not NUL-ended */
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "a", 0);
	m.cm_node[0] = '\0';
	ENC_BAD();
	strcpy(m.cm_node, "a b");
	ENC_BAD();
	strcpy(m.cm_node, "a\"b");
	ENC_BAD();
	memset(m.cm_node, 'a', sizeof(m.cm_node));	/* not NUL-ended */
	ENC_BAD();
	msg_fill(&m, CTL_REVOKE, "j", 0);
	ENC_BAD();
	msg_fill(&m, CTL_REVOKE, "j", -1);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "c", 5);
	ENC_BAD();
	msg_fill(&m, CTL_UNREVOKE, "j", 5);
	ENC_BAD();
	msg_fill(&m, CTL_KICK, "c", 0);
	m.cm_ts = 0;
	ENC_BAD();
	m.cm_ts = -1;
	ENC_BAD();
	m.cm_ts = 1;
	ck_assert_int_gt(ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf)), 0);
#undef ENC_BAD
}
END_TEST

START_TEST(test_encode_small_buffer)
{
	struct ctl_msg	 m;
	char		 buf[CTL_MSG_MAX], full[CTL_MSG_MAX];
	ssize_t		 n;
	size_t		 len;

	msg_fill(&m, CTL_KICK_USER, "alice", 0);
	n = ctl_encode(&m, SECRET, strlen(SECRET), full, sizeof(full));
	ck_assert_int_gt(n, 0);
	for (len = 0; len <= (size_t)n; len++) {
		memset(buf, 'Z', sizeof(buf));
		ck_assert_int_eq(ctl_encode(&m, SECRET, strlen(SECRET), buf, len), -1);
		ck_assert_int_eq(buf[len], 'Z');	/* nothing past outlen */
	}
	ck_assert_int_eq(ctl_encode(&m, SECRET, strlen(SECRET), buf, (size_t)n + 1), n);
	ck_assert_str_eq(buf, full);
}
END_TEST

/* ---- decoding: MACs ---------------------------------------------------- */

static int
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

START_TEST(test_flipped_bit_anywhere_is_forged)
{
	struct ctl_msg	 m, d;
	char		 buf[CTL_MSG_MAX];
	const char	*why;
	ssize_t		 n;
	size_t		 i;
	int		 bit, rv;

	msg_fill(&m, CTL_REVOKE, "jti-\"1\"", 1767225600);
	n = ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	for (i = 0; i < (size_t)n; i++)
		for (bit = 0; bit < 8; bit++) {
			buf[i] ^= (char)(1 << bit);
			rv = dec(buf, (size_t)n, &d, &why);
			if (i < PLEN)
				ck_assert_int_eq(rv, CTL_MALFORMED);
			else if (i < PLEN + 64 && !is_lower_hex(buf[i]))
				ck_assert_str_eq(why, "bad mac format");
			else if (i == PLEN + 64)
				ck_assert_str_eq(why, "bad mac format");
			else {
				ck_assert_msg(rv == CTL_FORGED, "byte %zu bit %d: %d %s",
				    i, bit, rv, why);
				ck_assert_str_eq(why, "mac mismatch");
			}
			buf[i] ^= (char)(1 << bit);
		}
	ck_assert_int_eq(dec(buf, (size_t)n, &d, &why), CTL_OK);
}
END_TEST

START_TEST(test_wrong_secret_is_forged)
{
	struct ctl_msg	 m, d;
	char		 buf[CTL_MSG_MAX];
	const char	*why;
	ssize_t		 n;

	msg_fill(&m, CTL_KICK_USER, "alice", 0);
	n = ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(dec_key("another-secret", buf, (size_t)n, &d, &why), CTL_FORGED);
	ck_assert_str_eq(why, "mac mismatch");
	ck_assert_int_eq(dec_key("", buf, (size_t)n, &d, &why), CTL_FORGED);
	ck_assert_int_eq(dec_key("test-secret-012345678", buf, (size_t)n, &d, &why),
	    CTL_FORGED);
	ck_assert_int_eq(dec_key(SECRET "0", buf, (size_t)n, &d, &why), CTL_FORGED);
	ck_assert_int_eq(dec_key("Test-secret-0123456789", buf, (size_t)n, &d, &why),
	    CTL_FORGED);
	ck_assert_int_eq(dec(buf, (size_t)n, &d, &why), CTL_OK);

	/* an empty secret is a secret too */
	n = ctl_encode(&m, "", 0, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(ctl_decode(buf, (size_t)n, NULL, 0, &d, &why), CTL_OK);
	ck_assert_int_eq(dec(buf, (size_t)n, &d, &why), CTL_FORGED);
}
END_TEST

START_TEST(test_mac_checked_before_json)
{
	struct ctl_msg	 d;
	char		 buf[256];
	const char	*why;
	const char	*junk = "{not json at all";

	/* junk with a MAC under another key: forged, not malformed */
	snprintf(buf, sizeof(buf), CTL_PREFIX "%064d %s", 0, junk);
	ck_assert_int_eq(dec(buf, strlen(buf), &d, &why), CTL_FORGED);
	ck_assert_str_eq(why, "mac mismatch");
	sign_n("other", junk, strlen(junk), buf, sizeof(buf));
	ck_assert_int_eq(dec(buf, strlen(buf), &d, &why), CTL_FORGED);
	/* the same junk signed right gets to the parser */
	sign(junk, buf, sizeof(buf));
	ck_assert_int_eq(dec(buf, strlen(buf), &d, &why), CTL_MALFORMED);
	ck_assert_str_eq(why, "invalid json");
}
END_TEST

/* ---- decoding: malformed forms ---------------------------------------- */

START_TEST(test_bad_prefix_and_mac_format)
{
	struct ctl_msg	 m, d;
	char		 buf[CTL_MSG_MAX], t[CTL_MSG_MAX];
	const char	*why;
	ssize_t		 n;
	size_t		 i;

	msg_fill(&m, CTL_KICK, "c", 0);
	n = ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_gt(n, 0);

#define DEC_T(len) dec(t, (len), &d, &why)
	ck_assert_int_eq(dec("", 0, &d, &why), CTL_MALFORMED);
	ck_assert_str_eq(why, "not a control message");
	ck_assert_int_eq(dec("rtctl1", 6, &d, &why), CTL_MALFORMED);
	ck_assert_str_eq(why, "not a control message");
	ck_assert_int_eq(dec("not a control message", 21, &d, &why), CTL_MALFORMED);
	ck_assert_str_eq(why, "not a control message");
	for (i = 0; i < PLEN; i++) {
		memcpy(t, buf, (size_t)n);
		t[i] = i == 0 ? 'R' : 'x';
		ck_assert_int_eq(DEC_T((size_t)n), CTL_MALFORMED);
		ck_assert_str_eq(why, "not a control message");
	}
	memcpy(t, buf, (size_t)n);
	t[5] = '2';			/* another version */
	ck_assert_int_eq(DEC_T((size_t)n), CTL_MALFORMED);

	/* uppercase MAC: the same digest, another spelling */
	memcpy(t, buf, (size_t)n);
	for (i = PLEN; i < PLEN + 64; i++)
		if (t[i] >= 'a' && t[i] <= 'f')
			t[i] = (char)(t[i] - 'a' + 'A');
	ck_assert_int_eq(DEC_T((size_t)n), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	/* one uppercase digit */
	memcpy(t, buf, (size_t)n);
	for (i = PLEN; i < PLEN + 64 && !(t[i] >= 'a' && t[i] <= 'f'); i++)
		;
	ck_assert_uint_lt(i, PLEN + 64);
	t[i] = (char)(t[i] - 'a' + 'A');
	ck_assert_int_eq(DEC_T((size_t)n), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	/* 63 digits: the space where a digit should be */
	memcpy(t, buf, PLEN + 63);
	memcpy(t + PLEN + 63, buf + PLEN + 64, (size_t)n - PLEN - 64);
	ck_assert_int_eq(DEC_T((size_t)n - 1), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	/* 65 digits */
	memcpy(t, buf, PLEN + 64);
	t[PLEN + 64] = '0';
	memcpy(t + PLEN + 65, buf + PLEN + 64, (size_t)n - PLEN - 64);
	ck_assert_int_eq(DEC_T((size_t)n + 1), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	/* no space, two spaces, a tab */
	memcpy(t, buf, (size_t)n);
	t[PLEN + 64] = '\t';
	ck_assert_int_eq(DEC_T((size_t)n), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	memcpy(t, buf, PLEN + 65);
	t[PLEN + 65] = ' ';
	memcpy(t + PLEN + 66, buf + PLEN + 65, (size_t)n - PLEN - 65);
	ck_assert_int_eq(DEC_T((size_t)n + 1), CTL_FORGED);	/* " {..." is signed */
	/* the MAC cut short, and nothing after it */
	ck_assert_int_eq(DEC_T(PLEN + 10), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	memcpy(t, buf, (size_t)n);
	ck_assert_int_eq(DEC_T(PLEN + 64), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
	/* a non-hex digit */
	memcpy(t, buf, (size_t)n);
	t[PLEN + 7] = 'g';
	ck_assert_int_eq(DEC_T((size_t)n), CTL_MALFORMED);
	ck_assert_str_eq(why, "bad mac format");
#undef DEC_T
}
END_TEST

START_TEST(test_valid_json_variants)
{
	struct ctl_msg	 m;
	const char	*why;

	OK_JSON(json_with(NULL, NULL, ""));
	/* white space inside, another order: the MAC is over the bytes as sent */
	OK_JSON("{ \"arg\" : \"c\" , \"cmd\":\"kick\",\n\"inst\":\"0123456789abcdef\","
	    "\t\"node\":\"n\",\"nonce\":\"" NONCE_HEX "\",\"ts\":1 }");
	/* until 0 is as good as none for a kick */
	OK_JSON(json_with("until", "0", ""));
	OK_JSON(json_with("until", "-0", ""));
	OK_JSON(json_with("cmd", "\"revoke\"", ",\"until\":1"));
	/* colons and escaped quotes inside strings are not members */
	ck_assert_int_eq(dec_json(json_with("arg", "\"a:b\\\":\\\"c\"", ""), &m, &why), CTL_OK);
	ck_assert_str_eq(m.cm_arg, "a:b\":\"c");
	ck_assert_int_eq(dec_json(json_with("arg", "\"x\\\\\"", ""), &m, &why), CTL_OK);
	ck_assert_str_eq(m.cm_arg, "x\\");
	/* escapes are read */
	ck_assert_int_eq(dec_json(json_with("arg", "\"caf\\u00e9\\/\\ud83d\\ude00\"", ""),
	    &m, &why), CTL_OK);
	ck_assert_str_eq(m.cm_arg, "caf\xc3\xa9/\xf0\x9f\x98\x80");
	ck_assert_int_eq(dec_json(json_with("nonce",
	    "\"\\u003000102030405060708090a0b0c0d0e0f\"", ""),
	    &m, &why), CTL_OK);
	/* the fields */
	ck_assert_int_eq(dec_json(json_with("ts", "9223372036854775807", ""), &m, &why),
	    CTL_OK);
	ck_assert_int_eq(m.cm_ts, INT64_MAX);
	ck_assert_int_eq(dec_json(json_with("inst", "\"ffffffffffffffff\"", ""), &m, &why),
	    CTL_OK);
	ck_assert_uint_eq(m.cm_inst, UINT64_MAX);
	ck_assert_int_eq(dec_json(json_with(NULL, NULL, ""), &m, &why), CTL_OK);
	ck_assert_int_eq(m.cm_cmd, CTL_KICK);
	ck_assert_int_eq(m.cm_ts, 1700000000000LL);
	ck_assert_uint_eq(m.cm_nonce[0], 0x00);
	ck_assert_uint_eq(m.cm_nonce[15], 0x0f);
	ck_assert_str_eq(m.cm_node, "node-1:8080");
	ck_assert_uint_eq(m.cm_inst, 0x0123456789abcdefULL);
	ck_assert_str_eq(m.cm_arg, "conn-1");
	ck_assert_int_eq(m.cm_until, 0);
}
END_TEST

START_TEST(test_trailing_and_leading_bytes)
{
	BAD_JSON(json_with(NULL, NULL, "} "), "invalid json");
	BAD_JSON("{\"ts\":1}x", "invalid json");
	{
		char	 j[2048];

		snprintf(j, sizeof(j), "%s ", json_with(NULL, NULL, ""));
		BAD_JSON(j, "invalid json");
		snprintf(j, sizeof(j), "%s\n", json_with(NULL, NULL, ""));
		BAD_JSON(j, "invalid json");
		snprintf(j, sizeof(j), " %s", json_with(NULL, NULL, ""));
		BAD_JSON(j, "invalid json");
		snprintf(j, sizeof(j), "%s{}", json_with(NULL, NULL, ""));
		BAD_JSON(j, "invalid json");
		snprintf(j, sizeof(j), "%s}", json_with(NULL, NULL, ""));
		BAD_JSON(j, "invalid json");
	}
	{
		/* a NUL after the object, signed */
		struct ctl_msg	 m;
		const char	*why, *j = json_with(NULL, NULL, "");
		char		 jj[2048], buf[4096];
		size_t		 jl = strlen(j), n;

		memcpy(jj, j, jl);
		jj[jl] = '\0';
		n = sign_n(SECRET, jj, jl + 1, buf, sizeof(buf));
		ck_assert_int_eq(dec(buf, n, &m, &why), CTL_MALFORMED);
		/* and a NUL inside a string, raw */
		snprintf(jj, sizeof(jj), "%s", json_with("arg", "\"a_b\"", ""));
		*strchr(jj, '_') = '\0';
		n = sign_n(SECRET, jj, jl, buf, sizeof(buf));
		ck_assert_int_eq(dec(buf, n, &m, &why), CTL_MALFORMED);
	}
	BAD_JSON("", "invalid json");
	BAD_JSON("{", "invalid json");
	BAD_JSON("}", "invalid json");
	BAD_JSON("[1]", "invalid json");
	BAD_JSON("1", "invalid json");
	BAD_JSON("\"x\"", "invalid json");
	BAD_JSON("{}", "missing member");
	BAD_JSON("{\"ts\":1,}", "invalid json");
	BAD_JSON("{'ts':1}", "invalid json");
	BAD_JSON(json_with(NULL, NULL, ",'until':0"), "invalid json");
	BAD_JSON("{ts:1}", "invalid json");
}
END_TEST

START_TEST(test_unknown_duplicate_and_missing_members)
{
	static const char *const keys[] = { "ts", "nonce", "node", "inst", "cmd", "arg" };
	char		 j[2048];
	size_t		 i;

	BAD_JSON(json_with(NULL, NULL, ",\"evil\":1"), "unknown member");
	BAD_JSON(json_with(NULL, NULL, ",\"Ts\":1"), "unknown member");
	BAD_JSON(json_with(NULL, NULL, ",\"\":1"), "unknown member");
	/* json-c would read these keys as "ts" */
	BAD_JSON(json_with("ts", NULL, ",\"ts\\u0000\":1"), "invalid json");
	BAD_JSON(json_with("ts", NULL, ",\"ts\\u0000x\":1"), "invalid json");
	BAD_JSON(json_with(NULL, NULL, ",\"ts\\u0000\":1"), "invalid json");
	/* keys are plain: no escapes */
	BAD_JSON(json_with("ts", NULL, ",\"t\\u0073\":1"), "invalid json");
	BAD_JSON(json_with(NULL, NULL, ",\"ts\":1700000000000"), "duplicate member");
	BAD_JSON(json_with(NULL, NULL, ",\"arg\":\"conn-2\""), "duplicate member");
	BAD_JSON(json_with(NULL, NULL, ",\"until\":0,\"until\":0"), "duplicate member");
	/* the first of two would be refused, the last is fine: still refused */
	BAD_JSON(json_with("ts", "\"x\"", ",\"ts\":5"), "duplicate member");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		BAD_JSON(json_with(keys[i], NULL, ""), "missing member");
		snprintf(j, sizeof(j), "%s", json_with(keys[i], NULL, ",\"until\":0"));
		BAD_JSON(j, "missing member");
	}
}
END_TEST

START_TEST(test_wrong_types)
{
	static const char *const notint[] = {
		"\"5\"", "1.0", "1e3", "1E3", "5.5", "true", "false", "null", "[1]",
		"{\"a\":1}", "NaN", "Infinity", "01", "+1", "0x10", "\"\"", "[]", "{}",
	};
	static const char *const notstr[] = {
		"1", "1.5", "true", "null", "[\"a\"]", "{}", "'a'",
	};
	static const char *const skeys[] = { "nonce", "node", "inst", "cmd", "arg" };
	char		 w[32];
	size_t		 i, k;

	for (i = 0; i < sizeof(notint) / sizeof(notint[0]); i++) {
		BAD_JSON(json_with("ts", notint[i], ""), NULL);
		BAD_JSON(json_with("until", notint[i], ""), NULL);
	}
	/* the ones json-c reads at all are refused for their type */
	BAD_JSON(json_with("ts", "\"5\"", ""), "bad ts");
	BAD_JSON(json_with("ts", "1.0", ""), "bad ts");
	BAD_JSON(json_with("ts", "1e3", ""), "bad ts");
	BAD_JSON(json_with("ts", "true", ""), "bad ts");
	BAD_JSON(json_with("ts", "null", ""), "bad ts");
	BAD_JSON(json_with("until", "\"0\"", ""), "bad until");
	BAD_JSON(json_with("until", "0.0", ""), "bad until");
	for (k = 0; k < sizeof(skeys) / sizeof(skeys[0]); k++) {
		snprintf(w, sizeof(w), "bad %s", skeys[k]);
		for (i = 0; i < sizeof(notstr) / sizeof(notstr[0]); i++)
			BAD_JSON(json_with(skeys[k], notstr[i], ""), NULL);
		BAD_JSON(json_with(skeys[k], "1", ""), w);
		BAD_JSON(json_with(skeys[k], "null", ""), w);
	}
}
END_TEST

START_TEST(test_bad_ts_values)
{
	BAD_JSON(json_with("ts", "0", ""), "bad ts");
	BAD_JSON(json_with("ts", "-0", ""), "bad ts");
	BAD_JSON(json_with("ts", "-1", ""), "bad ts");
	BAD_JSON(json_with("ts", "-9223372036854775808", ""), "bad ts");
	/* past int64_t: json-c would saturate them to INT64_MAX */
	BAD_JSON(json_with("ts", "9223372036854775808", ""), "bad ts");
	BAD_JSON(json_with("ts", "18446744073709551615", ""), "bad ts");
	BAD_JSON(json_with("ts", "99999999999999999999", ""), "bad ts");
	BAD_JSON(json_with("ts", "-9223372036854775809", ""), "bad ts");
	BAD_JSON(json_with("cmd", "\"revoke\"", ",\"until\":9223372036854775808"),
	    "bad until");
	OK_JSON(json_with("ts", "1", ""));
}
END_TEST

START_TEST(test_bad_nonce_and_inst)
{
	BAD_JSON(json_with("nonce", "\"\"", ""), "bad nonce");
	BAD_JSON(json_with("nonce", "\"000102030405060708090a0b0c0d0e0\"", ""), "bad nonce");
	BAD_JSON(json_with("nonce", "\"000102030405060708090a0b0c0d0e0f0\"", ""), "bad nonce");
	BAD_JSON(json_with("nonce", "\"000102030405060708090A0B0C0D0E0F\"", ""), "bad nonce");
	BAD_JSON(json_with("nonce", "\"000102030405060708090a0b0c0d0e0g\"", ""), "bad nonce");
	BAD_JSON(json_with("nonce", "\" 00102030405060708090a0b0c0d0e0f\"", ""), "bad nonce");
	BAD_JSON(json_with("nonce", "\"000102030405060708090a0b0c0d0e\\u0000\"", ""),
	    "bad nonce");
	BAD_JSON(json_with("inst", "\"\"", ""), "bad inst");
	BAD_JSON(json_with("inst", "\"0123456789abcde\"", ""), "bad inst");
	BAD_JSON(json_with("inst", "\"0123456789abcdef0\"", ""), "bad inst");
	BAD_JSON(json_with("inst", "\"0123456789ABCDEF\"", ""), "bad inst");
	BAD_JSON(json_with("inst", "\"-123456789abcdef\"", ""), "bad inst");
	BAD_JSON(json_with("inst", "\"0x23456789abcdef\"", ""), "bad inst");
	BAD_JSON(json_with("inst", "81985529216486895", ""), "bad inst");
}
END_TEST

START_TEST(test_bad_node_and_cmd)
{
	char	 j[256];

	BAD_JSON(json_with("node", "\"\"", ""), "bad node");
	BAD_JSON(json_with("node", "\"a b\"", ""), "bad node");
	BAD_JSON(json_with("node", "\"a/b\"", ""), "bad node");
	BAD_JSON(json_with("node", "\"a\\\"b\"", ""), "bad node");
	BAD_JSON(json_with("node", "\"caf\\u00e9\"", ""), "bad node");
	BAD_JSON(json_with("node", "\"a\\u0000\"", ""), "bad node");
	snprintf(j, sizeof(j), "\"%065d\"", 0);
	BAD_JSON(json_with("node", j, ""), "bad node");
	snprintf(j, sizeof(j), "\"%064d\"", 0);
	OK_JSON(json_with("node", j, ""));

	BAD_JSON(json_with("cmd", "\"\"", ""), "bad cmd");
	BAD_JSON(json_with("cmd", "\"KICK\"", ""), "bad cmd");
	BAD_JSON(json_with("cmd", "\"kick \"", ""), "bad cmd");
	BAD_JSON(json_with("cmd", "\"kick\\u0000\"", ""), "bad cmd");
	BAD_JSON(json_with("cmd", "\"kick\\u0000-user\"", ""), "bad cmd");
	BAD_JSON(json_with("cmd", "\"none\"", ""), "bad cmd");
	OK_JSON(json_with("cmd", "\"kick-user\"", ""));
	OK_JSON(json_with("cmd", "\"unrevoke\"", ""));
}
END_TEST

START_TEST(test_until_rules)
{
	BAD_JSON(json_with("cmd", "\"revoke\"", ""), "bad until");
	BAD_JSON(json_with("cmd", "\"revoke\"", ",\"until\":0"), "bad until");
	BAD_JSON(json_with("cmd", "\"revoke\"", ",\"until\":-1"), "bad until");
	BAD_JSON(json_with("until", "1", ""), "bad until");
	BAD_JSON(json_with("until", "-1", ""), "bad until");
	BAD_JSON(json_with("cmd", "\"kick-user\"", ",\"until\":1767225600"), "bad until");
	BAD_JSON(json_with("cmd", "\"unrevoke\"", ",\"until\":1767225600"), "bad until");
	OK_JSON(json_with("cmd", "\"revoke\"", ",\"until\":1767225600"));
	OK_JSON(json_with("cmd", "\"unrevoke\"", ",\"until\":0"));
	{
		struct ctl_msg	 m;
		const char	*why;

		ck_assert_int_eq(dec_json(json_with("cmd", "\"revoke\"",
		    ",\"until\":1767225600"), &m, &why), CTL_OK);
		ck_assert_int_eq(m.cm_cmd, CTL_REVOKE);
		ck_assert_int_eq(m.cm_until, 1767225600);
	}
}
END_TEST

START_TEST(test_bad_args)
{
	char	 j[1024];

	BAD_JSON(json_with("arg", "\"\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a b\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\tb\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\u0009b\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\nb\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\u001fb\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\u007f\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\u0000\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"\\u0000a\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\\u0020\"", ""), "bad arg");
	BAD_JSON(json_with("arg", "\"a\x01\"", ""), "bad arg");	/* raw */
	BAD_JSON(json_with("arg", "\"a\x7f\"", ""), "bad arg");
	/* invalid UTF-8, raw: json-c refuses it, or we do */
	BAD_JSON(json_with("arg", "\"a\xff\"", ""), NULL);
	BAD_JSON(json_with("arg", "\"a\xc3\"", ""), NULL);
	BAD_JSON(json_with("arg", "\"\xc0\xaf\"", ""), NULL);
	BAD_JSON(json_with("arg", "\"\xed\xa0\x80\"", ""), NULL);
	/* 256 bytes, and 256 bytes from 255 characters */
	j[0] = '"';
	memset(j + 1, 'x', 256);
	strcpy(j + 257, "\"");
	BAD_JSON(json_with("arg", j, ""), "bad arg");
	strcpy(j + 256, "\"");
	OK_JSON(json_with("arg", j, ""));
	strcpy(j + 255, "\\u00e9\"");
	BAD_JSON(json_with("arg", j, ""), "bad arg");
	strcpy(j + 254, "\\u00e9\"");
	OK_JSON(json_with("arg", j, ""));
}
END_TEST

START_TEST(test_too_long)
{
	struct ctl_msg	 m;
	char		 j[2048], buf[4096];
	const char	*base = json_with(NULL, NULL, ""), *why;
	size_t		 pad, n, bl = strlen(base);

	/* padded with white space to exactly CTL_MSG_MAX: taken */
	pad = CTL_MSG_MAX - (PLEN + 65) - bl;
	memcpy(j, base, bl - 1);
	memset(j + bl - 1, ' ', pad);
	strcpy(j + bl - 1 + pad, "}");
	n = sign(j, buf, sizeof(buf));
	ck_assert_uint_eq(n, CTL_MSG_MAX);
	ck_assert_int_eq(dec(buf, n, &m, &why), CTL_OK);
	/* one byte more: refused, MAC good or not */
	memset(j + bl - 1, ' ', pad + 1);
	strcpy(j + bl + pad, "}");
	n = sign(j, buf, sizeof(buf));
	ck_assert_uint_eq(n, CTL_MSG_MAX + 1);
	ck_assert_int_eq(dec(buf, n, &m, &why), CTL_MALFORMED);
	ck_assert_str_eq(why, "too long");
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(dec(buf, sizeof(buf), &m, &why), CTL_MALFORMED);
	ck_assert_str_eq(why, "too long");
}
END_TEST

START_TEST(test_decode_reads_only_len)
{
	struct ctl_msg	 m, d;
	char		 buf[CTL_MSG_MAX + 16];
	const char	*why;
	ssize_t		 n;
	size_t		 len;
	int		 rv;

	msg_fill(&m, CTL_REVOKE, "jti-1", 1767225600);
	n = ctl_encode(&m, SECRET, strlen(SECRET), buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	/* every prefix, each an exact-length copy */
	for (len = 0; len < (size_t)n; len++) {
		rv = dec(buf, len, &d, &why);
		ck_assert_msg(rv == CTL_MALFORMED || rv == CTL_FORGED, "len %zu: %d", len, rv);
	}
	/* bytes after len are not looked at */
	memcpy(buf + n, "garbage", 8);
	ck_assert_int_eq(ctl_decode(buf, (size_t)n, SECRET, strlen(SECRET), &d, &why),
	    CTL_OK);
	msg_eq(&m, &d);
	/* and why may be NULL */
	ck_assert_int_eq(ctl_decode(buf, (size_t)n, SECRET, strlen(SECRET), &d, NULL),
	    CTL_OK);
	ck_assert_int_eq(ctl_decode(buf, (size_t)n - 1, SECRET, strlen(SECRET), &d, NULL),
	    CTL_FORGED);
}
END_TEST

/* ---- the replay window --------------------------------------------------- */

static void
nonce_of(uint8_t *n, uint32_t v)
{
	memset(n, 0, CTL_NONCE_LEN);
	memcpy(n, &v, sizeof(v));
	n[CTL_NONCE_LEN - 1] = 0x5a;
}

START_TEST(test_window_new)
{
	struct ctl_window	*w;

	ck_assert_ptr_null(ctl_window_new(0, 1000));
	ck_assert_ptr_nonnull(w = ctl_window_new(1, 0));
	ck_assert_uint_eq(ctl_window_evicted(w), 0);
	ctl_window_free(w);
	ctl_window_free(NULL);
}
END_TEST

START_TEST(test_window_fresh_then_replayed)
{
	struct ctl_window	*w;
	uint8_t			 a[CTL_NONCE_LEN], b[CTL_NONCE_LEN];
	int64_t			 now = 1700000000000LL;

	ck_assert_ptr_nonnull(w = ctl_window_new(16, 60000));
	nonce_of(a, 1);
	nonce_of(b, 2);
	ck_assert_int_eq(ctl_window_check(w, a, now, now), CTL_OK);
	ck_assert_int_eq(ctl_window_check(w, a, now, now), CTL_REPLAYED);
	/* the nonce is what counts, not the ts nor the clock */
	ck_assert_int_eq(ctl_window_check(w, a, now + 5, now + 10), CTL_REPLAYED);
	ck_assert_int_eq(ctl_window_check(w, b, now, now), CTL_OK);
	ck_assert_int_eq(ctl_window_check(w, b, now - 1, now), CTL_REPLAYED);
	ck_assert_uint_eq(ctl_window_evicted(w), 0);
	ctl_window_free(w);
}
END_TEST

START_TEST(test_window_stale_both_sides)
{
	struct ctl_window	*w;
	uint8_t			 n[CTL_NONCE_LEN];
	int64_t			 now = 1700000000000LL, skew = 60000;
	uint32_t		 v = 0;

	ck_assert_ptr_nonnull(w = ctl_window_new(64, skew));
#define CHK(ts, want) do {						\
	nonce_of(n, ++v);						\
	ck_assert_int_eq(ctl_window_check(w, n, (ts), now), (want));	\
} while (0)
	CHK(now - skew - 1, CTL_STALE);
	CHK(now + skew + 1, CTL_STALE);
	CHK(now - skew, CTL_OK);
	CHK(now + skew, CTL_OK);
	CHK(INT64_MIN, CTL_STALE);
	CHK(INT64_MAX, CTL_STALE);
	CHK(0, CTL_STALE);
	/* a stale ts is stale even for a held nonce, and is not remembered */
	nonce_of(n, 1000);
	ck_assert_int_eq(ctl_window_check(w, n, now - 2 * skew, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, n, now, now), CTL_OK);
	ck_assert_int_eq(ctl_window_check(w, n, now - 2 * skew, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, n, now, now), CTL_REPLAYED);
	ctl_window_free(w);

	/* no skew at all; extreme clocks do not overflow */
	ck_assert_ptr_nonnull(w = ctl_window_new(4, 0));
	now = 5;
	CHK(5, CTL_OK);
	CHK(4, CTL_STALE);
	CHK(6, CTL_STALE);
	ctl_window_free(w);
	ck_assert_ptr_nonnull(w = ctl_window_new(4, INT64_MAX));
	now = INT64_MIN;
	CHK(INT64_MAX, CTL_STALE);	/* 2^64 - 1 away */
	CHK(-1, CTL_OK);
	now = INT64_MAX;
	CHK(0, CTL_OK);
	CHK(INT64_MIN + 1, CTL_STALE);	/* 2^64 - 2 away */
	ctl_window_free(w);
#undef CHK
}
END_TEST

START_TEST(test_window_eviction_raises_floor)
{
	struct ctl_window	*w;
	uint8_t			 a[CTL_NONCE_LEN], b[CTL_NONCE_LEN], c[CTL_NONCE_LEN];
	uint8_t			 d[CTL_NONCE_LEN], e[CTL_NONCE_LEN];
	int64_t			 now = 1000000;

	ck_assert_ptr_nonnull(w = ctl_window_new(2, 1000));
	nonce_of(a, 1);
	nonce_of(b, 2);
	nonce_of(c, 3);
	nonce_of(d, 4);
	nonce_of(e, 5);
	ck_assert_int_eq(ctl_window_check(w, a, now + 100, now), CTL_OK);
	ck_assert_int_eq(ctl_window_check(w, b, now - 100, now), CTL_OK);
	ck_assert_uint_eq(ctl_window_evicted(w), 0);
	/* full: c pushes a out (the first in, though not the oldest ts) */
	ck_assert_int_eq(ctl_window_check(w, c, now, now), CTL_OK);
	ck_assert_uint_eq(ctl_window_evicted(w), 1);
	/* a, b and c are never taken again */
	ck_assert_int_eq(ctl_window_check(w, a, now + 100, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, b, now - 100, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, c, now, now), CTL_STALE);
	/* nor anything at or below the floor (a's ts), fresh nonce or not */
	ck_assert_int_eq(ctl_window_check(w, d, now + 100, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, d, now + 101, now), CTL_OK);
	ck_assert_uint_eq(ctl_window_evicted(w), 2);	/* b out, floor stays */
	ck_assert_int_eq(ctl_window_check(w, e, now + 100, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, e, now + 102, now), CTL_OK);
	ck_assert_uint_eq(ctl_window_evicted(w), 3);	/* c out */
	/* d and e held: replays */
	ck_assert_int_eq(ctl_window_check(w, d, now + 101, now), CTL_REPLAYED);
	ck_assert_int_eq(ctl_window_check(w, e, now + 102, now), CTL_REPLAYED);
	ck_assert_int_eq(ctl_window_check(w, d, now + 500, now), CTL_REPLAYED);
	ck_assert_uint_eq(ctl_window_evicted(w), 3);
	/* a pushes d out: the floor rises to d's ts */
	ck_assert_int_eq(ctl_window_check(w, a, now + 103, now), CTL_OK);
	ck_assert_uint_eq(ctl_window_evicted(w), 4);
	ck_assert_int_eq(ctl_window_check(w, d, now + 101, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, b, now + 101, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, b, now + 102, now), CTL_OK);
	ck_assert_uint_eq(ctl_window_evicted(w), 5);	/* e out, its ts the floor */
	ck_assert_int_eq(ctl_window_check(w, e, now + 102, now), CTL_STALE);
	ck_assert_int_eq(ctl_window_check(w, a, now + 103, now), CTL_REPLAYED);
	ctl_window_free(w);
}
END_TEST

START_TEST(test_window_one_slot)
{
	struct ctl_window	*w;
	uint8_t			 n[CTL_NONCE_LEN];
	uint32_t		 i;

	ck_assert_ptr_nonnull(w = ctl_window_new(1, 10));
	for (i = 0; i < 100; i++) {
		nonce_of(n, i);
		ck_assert_int_eq(ctl_window_check(w, n, 1000 + i, 1000), i <= 10 ?
		    CTL_OK : CTL_STALE);
		if (i <= 10)
			ck_assert_int_eq(ctl_window_check(w, n, 1000 + i, 1000),
			    CTL_REPLAYED);
	}
	ck_assert_uint_eq(ctl_window_evicted(w), 10);
	ctl_window_free(w);
}
END_TEST

/*
 * Nonces whose hash lands on the last slots of a table of 8, so runs
 * wrap around the end; removals must move the right entries back.
 */
START_TEST(test_window_collisions_wrap_around)
{
	struct ctl_window	*w;
	uint8_t			 ns[12][CTL_NONCE_LEN], t[CTL_NONCE_LEN];
	uint32_t		 v, h;
	size_t			 k = 0, i, j;

	for (v = 0; k < 12; v++) {
		nonce_of(t, v);
		h = util_hash((const char *)t, CTL_NONCE_LEN) & 7;
		if (h == 6 || h == 7 || (h == 0 && k % 3 == 2))
			memcpy(ns[k++], t, CTL_NONCE_LEN);
	}
	ck_assert_ptr_nonnull(w = ctl_window_new(4, 1000));
	for (i = 0; i < 12; i++) {
		ck_assert_int_eq(ctl_window_check(w, ns[i], 1000 + (int64_t)i, 1000), CTL_OK);
		/* the last four are held, each earlier one is below the floor */
		for (j = 0; j <= i; j++)
			ck_assert_int_eq(ctl_window_check(w, ns[j], 1000 + (int64_t)j, 1000),
			    j + 4 > i ? CTL_REPLAYED : CTL_STALE);
		/* held even with a newer ts: found after the shifts */
		for (j = i >= 3 ? i - 3 : 0; j <= i; j++)
			ck_assert_int_eq(ctl_window_check(w, ns[j], 1900, 1000), CTL_REPLAYED);
	}
	ck_assert_uint_eq(ctl_window_evicted(w), 8);
	ctl_window_free(w);
}
END_TEST

/* A plain model: the entries in the order they came, a floor, a count. */
struct model {
	size_t		 max, n;
	uint32_t	 id[128];
	int64_t		 ts[128];
	int64_t		 floor, skew;
	uint64_t	 evicted;
};

static int
model_check(struct model *md, uint32_t id, int64_t ts, int64_t now)
{
	size_t	 i;

	if (ts < now - md->skew || ts > now + md->skew || ts <= md->floor)
		return CTL_STALE;
	for (i = 0; i < md->n; i++)
		if (md->id[i] == id)
			return CTL_REPLAYED;
	if (md->n == md->max) {
		if (md->ts[0] > md->floor)
			md->floor = md->ts[0];
		md->evicted++;
		memmove(md->id, md->id + 1, (md->n - 1) * sizeof(md->id[0]));
		memmove(md->ts, md->ts + 1, (md->n - 1) * sizeof(md->ts[0]));
		md->n--;
	}
	md->id[md->n] = id;
	md->ts[md->n++] = ts;
	return CTL_OK;
}

/* xorshift: the same run every time */
static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 16);
}

static void
window_vs_model(size_t max, uint32_t pool, int64_t skew, int ops, uint64_t seed)
{
	struct ctl_window	*w;
	struct model		 md;
	uint8_t			 n[CTL_NONCE_LEN];
	int64_t			 now = 1700000000000LL, ts;
	uint32_t		 id;
	int			 i, got, want, seen[5] = { 0 };

	ck_assert_uint_le(max, 128);
	memset(&md, 0, sizeof(md));
	md.max = max;
	md.skew = skew;
	md.floor = INT64_MIN;
	ck_assert_ptr_nonnull(w = ctl_window_new(max, skew));
	for (i = 0; i < ops; i++) {
		now += rnd(&seed) % 3;
		id = rnd(&seed) % pool;
		/* mostly a little in the past, as sent; some anywhere near */
		if (rnd(&seed) % 5 != 0)
			ts = now - (int64_t)(rnd(&seed) % (uint32_t)skew);
		else
			ts = now + (int64_t)(rnd(&seed) % (uint32_t)(4 * skew + 1)) - 2 * skew;
		nonce_of(n, id * 2654435761u);
		got = ctl_window_check(w, n, ts, now);
		want = model_check(&md, id, ts, now);
		ck_assert_msg(got == want, "op %d (max %zu): id %u ts %lld now %lld: %d, not %d",
		    i, max, id, (long long)ts, (long long)now, got, want);
		ck_assert_uint_eq(ctl_window_evicted(w), md.evicted);
		seen[-got]++;
	}
	/* the run went through every verdict */
	ck_assert_msg(seen[0] > ops / 50 && seen[-CTL_STALE] > ops / 50 &&
	    seen[-CTL_REPLAYED] > ops / 50, "max %zu: %d ok, %d stale, %d replayed",
	    max, seen[0], seen[-CTL_STALE], seen[-CTL_REPLAYED]);
	ck_assert_int_gt(seen[0], ops / 50);
	ck_assert_int_gt(seen[-CTL_STALE], ops / 50);
	ck_assert_int_gt(seen[-CTL_REPLAYED], ops / 50);
	ck_assert_uint_gt(md.evicted, 0);
	ctl_window_free(w);
}

START_TEST(test_window_against_model)
{
	window_vs_model(1, 4, 50, 20000, 1);
	window_vs_model(2, 6, 50, 20000, 2);
	window_vs_model(7, 40, 100, 20000, 3);
	window_vs_model(16, 64, 200, 20000, 4);
	window_vs_model(100, 150, 200, 20000, 5);
	window_vs_model(128, 200, 300, 20000, 6);
}
END_TEST

/* ---- stored revocations ------------------------------------------------ */

/* "UNTIL MAC" of text until (as given, not formatted) signed for jti. */
static size_t
stored_ref(const char *key, const char *jti, const char *until, char *out, size_t outlen)
{
	char	 d[512], hex[65];

	snprintf(d, sizeof(d), "revoke %s %s", jti, until);
	ref_mac(key, d, strlen(d), hex);
	return (size_t)snprintf(out, outlen, "%s %s", until, hex);
}

static int
sdec(const char *key, const char *jti, const char *v, size_t vlen, int64_t *until)
{
	char	*c;
	int	 rv;

	ck_assert_ptr_nonnull(c = malloc(vlen > 0 ? vlen : 1));
	memcpy(c, v, vlen);
	*until = -12345;
	rv = ctl_stored_decode(key, strlen(key), jti, c, vlen, until);
	free(c);
	if (rv != 0)
		ck_assert_int_eq(*until, -12345);
	return rv;
}

START_TEST(test_stored_round_trip)
{
	char		 out[CTL_STORED_MAX], want[256], jti[CTL_ARG_MAX + 1];
	int64_t		 u;
	int		 n;

	n = ctl_stored_encode(SECRET, strlen(SECRET), "jti-1", 1767225600, out, sizeof(out));
	stored_ref(SECRET, "jti-1", "1767225600", want, sizeof(want));
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(sdec(SECRET, "jti-1", out, (size_t)n, &u), 0);
	ck_assert_int_eq(u, 1767225600);

	/* the longest: fits CTL_STORED_MAX */
	memset(jti, 'j', CTL_ARG_MAX);
	jti[CTL_ARG_MAX] = '\0';
	n = ctl_stored_encode(SECRET, strlen(SECRET), jti, INT64_MAX, out, sizeof(out));
	ck_assert_int_eq(n, 19 + 1 + 64);
	ck_assert_int_eq(sdec(SECRET, jti, out, (size_t)n, &u), 0);
	ck_assert_int_eq(u, INT64_MAX);
	n = ctl_stored_encode(SECRET, strlen(SECRET), "caf\xc3\xa9\"\\", 1, out, sizeof(out));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(sdec(SECRET, "caf\xc3\xa9\"\\", out, (size_t)n, &u), 0);
	ck_assert_int_eq(u, 1);
}
END_TEST

START_TEST(test_stored_encode_refuses)
{
	char		 out[CTL_STORED_MAX], full[CTL_STORED_MAX], jti[CTL_ARG_MAX + 2];
	int		 n;
	size_t		 len;

	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "j", 0, out, sizeof(out)), -1);
	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "j", -1, out, sizeof(out)), -1);
	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "", 1, out, sizeof(out)), -1);
	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "a b", 1, out, sizeof(out)), -1);
	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "\xff", 1, out, sizeof(out)), -1);
	memset(jti, 'j', CTL_ARG_MAX + 1);
	jti[CTL_ARG_MAX + 1] = '\0';
	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), jti, 1, out, sizeof(out)), -1);
	n = ctl_stored_encode(SECRET, strlen(SECRET), "j", 42, full, sizeof(full));
	ck_assert_int_eq(n, 2 + 1 + 64);
	for (len = 0; len <= (size_t)n; len++)
		ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "j", 42, out, len), -1);
	ck_assert_int_eq(ctl_stored_encode(SECRET, strlen(SECRET), "j", 42, out,
	    (size_t)n + 1), n);
	ck_assert_str_eq(out, full);
}
END_TEST

START_TEST(test_stored_tampering_refused)
{
	static const char subst[] = "0159afAF g-+\n";
	char		 v[256], t[256];
	size_t		 n, i, k;
	int64_t		 u;

	n = stored_ref(SECRET, "jti-1", "1767225600", v, sizeof(v));
	ck_assert_int_eq(sdec(SECRET, "jti-1", v, n, &u), 0);
	ck_assert_int_eq(u, 1767225600);
	/* any byte changed */
	for (i = 0; i < n; i++)
		for (k = 0; k < sizeof(subst) - 1; k++) {
			if (v[i] == subst[k])
				continue;
			memcpy(t, v, n);
			t[i] = subst[k];
			ck_assert_msg(sdec(SECRET, "jti-1", t, n, &u) == -1,
			    "byte %zu as '%c' taken", i, subst[k]);
		}
	/* every prefix, and one more byte */
	for (i = 0; i < n; i++)
		ck_assert_int_eq(sdec(SECRET, "jti-1", v, i, &u), -1);
	memcpy(t, v, n);
	t[n] = '0';
	ck_assert_int_eq(sdec(SECRET, "jti-1", t, n + 1, &u), -1);
	t[n] = ' ';
	ck_assert_int_eq(sdec(SECRET, "jti-1", t, n + 1, &u), -1);
	/* another jti or secret */
	ck_assert_int_eq(sdec(SECRET, "jti-2", v, n, &u), -1);
	ck_assert_int_eq(sdec(SECRET, "jti-1 ", v, n, &u), -1);
	ck_assert_int_eq(sdec(SECRET, "", v, n, &u), -1);
	ck_assert_int_eq(sdec("other", "jti-1", v, n, &u), -1);
	ck_assert_int_eq(sdec("", "jti-1", v, n, &u), -1);
	/* uppercase MAC */
	memcpy(t, v, n);
	for (i = 11; i < n; i++)
		if (t[i] >= 'a' && t[i] <= 'f')
			t[i] = (char)(t[i] - 'a' + 'A');
	ck_assert_int_eq(sdec(SECRET, "jti-1", t, n, &u), -1);
	/* a value once signed for another jti */
	n = stored_ref(SECRET, "jti-2", "1767225600", t, sizeof(t));
	ck_assert_int_eq(sdec(SECRET, "jti-1", t, n, &u), -1);
	ck_assert_int_eq(sdec(SECRET, "jti-2", t, n, &u), 0);
}
END_TEST

START_TEST(test_stored_strict_until)
{
	static const char *const bad[] = {
		"01767225600", "+1767225600", "-1767225600", "0", "-0", "00", "",
		" 1767225600", "1767225600 ", "1767225600.0", "1e9", "0x10",
		"9223372036854775808", "18446744073709551616", "99999999999999999999",
	};
	char		 v[256];
	size_t		 i, n;
	int64_t		 u;

	/* signed right over the text as written, and still refused */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = stored_ref(SECRET, "jti-1", bad[i], v, sizeof(v));
		ck_assert_msg(sdec(SECRET, "jti-1", v, n, &u) == -1, "\"%s\" taken", v);
	}
	n = stored_ref(SECRET, "jti-1", "9223372036854775807", v, sizeof(v));
	ck_assert_int_eq(sdec(SECRET, "jti-1", v, n, &u), 0);
	ck_assert_int_eq(u, INT64_MAX);
	n = stored_ref(SECRET, "jti-1", "1", v, sizeof(v));
	ck_assert_int_eq(sdec(SECRET, "jti-1", v, n, &u), 0);
	ck_assert_int_eq(u, 1);
	/* a double space, a tab */
	snprintf(v, sizeof(v), "%s", "1767225600  ");
	ck_assert_int_eq(sdec(SECRET, "jti-1", v, strlen(v), &u), -1);
	n = stored_ref(SECRET, "jti-1", "1767225600", v, sizeof(v));
	v[10] = '\t';
	ck_assert_int_eq(sdec(SECRET, "jti-1", v, n, &u), -1);
	ck_assert_int_eq(sdec(SECRET, "jti-1", "", 0, &u), -1);
	ck_assert_int_eq(sdec(SECRET, "jti-1", " ", 1, &u), -1);
}
END_TEST

/* An unrevoke's mark: its own verb under the MAC, never taken for a revocation. */
START_TEST(test_unrevoked_marks)
{
	char	 out[CTL_STORED_MAX], rev[CTL_STORED_MAX];
	int64_t	 until = 0;
	int	 n, r;

	n = ctl_unrevoked_encode(SECRET, strlen(SECRET), "jti-1", 1767225600, out, sizeof(out));
	ck_assert_int_eq(n, 1 + 10 + 1 + 64);
	ck_assert_int_eq(out[0], '~');
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-1", out, (size_t)n,
	    &until), 0);
	ck_assert_int_eq(until, 1767225600);
	/* not a revocation, and a revocation is not a mark */
	ck_assert_int_eq(ctl_stored_decode(SECRET, strlen(SECRET), "jti-1", out, (size_t)n,
	    &until), -1);
	ck_assert_int_eq(ctl_stored_decode(SECRET, strlen(SECRET), "jti-1", out + 1,
	    (size_t)n - 1, &until), -1);
	r = ctl_stored_encode(SECRET, strlen(SECRET), "jti-1", 1767225600, rev, sizeof(rev));
	ck_assert_int_gt(r, 0);
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-1", rev, (size_t)r,
	    &until), -1);
	memmove(rev + 1, rev, (size_t)r + 1);
	rev[0] = '~';
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-1", rev,
	    (size_t)r + 1, &until), -1);
	/* another jti, another secret, a flipped digit */
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-2", out, (size_t)n,
	    &until), -1);
	ck_assert_int_eq(ctl_unrevoked_decode("other-secret-0123", 17, "jti-1", out, (size_t)n,
	    &until), -1);
	out[3] ^= 1;
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-1", out, (size_t)n,
	    &until), -1);
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-1", "~", 1, &until),
	    -1);
	ck_assert_int_eq(ctl_unrevoked_decode(SECRET, strlen(SECRET), "jti-1", "", 0, &until),
	    -1);
	ck_assert_int_eq(ctl_unrevoked_encode(SECRET, strlen(SECRET), "jti-1", 0, out,
	    sizeof(out)), -1);
}
END_TEST

static Suite *
control_suite(void)
{
	Suite	*s = suite_create("control");
	TCase	*tc;

	tc = tcase_create("fields");
	tcase_add_test(tc, test_cmd_names_and_parse);
	tcase_add_test(tc, test_arg_valid);
	tcase_add_test(tc, test_node_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_test(tc, test_encode_exact_form);
	tcase_add_test(tc, test_round_trip_every_command);
	tcase_add_test(tc, test_round_trip_extremes);
	tcase_add_test(tc, test_encode_refuses_invalid);
	tcase_add_test(tc, test_encode_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("mac");
	tcase_add_test(tc, test_flipped_bit_anywhere_is_forged);
	tcase_add_test(tc, test_wrong_secret_is_forged);
	tcase_add_test(tc, test_mac_checked_before_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode");
	tcase_add_test(tc, test_bad_prefix_and_mac_format);
	tcase_add_test(tc, test_valid_json_variants);
	tcase_add_test(tc, test_trailing_and_leading_bytes);
	tcase_add_test(tc, test_unknown_duplicate_and_missing_members);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_bad_ts_values);
	tcase_add_test(tc, test_bad_nonce_and_inst);
	tcase_add_test(tc, test_bad_node_and_cmd);
	tcase_add_test(tc, test_until_rules);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_decode_reads_only_len);
	suite_add_tcase(s, tc);

	tc = tcase_create("window");
	tcase_add_test(tc, test_window_new);
	tcase_add_test(tc, test_window_fresh_then_replayed);
	tcase_add_test(tc, test_window_stale_both_sides);
	tcase_add_test(tc, test_window_eviction_raises_floor);
	tcase_add_test(tc, test_window_one_slot);
	tcase_add_test(tc, test_window_collisions_wrap_around);
	tcase_add_test(tc, test_window_against_model);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("stored");
	tcase_add_test(tc, test_stored_round_trip);
	tcase_add_test(tc, test_unrevoked_marks);
	tcase_add_test(tc, test_stored_encode_refuses);
	tcase_add_test(tc, test_stored_tampering_refused);
	tcase_add_test(tc, test_stored_strict_until);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(control_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
