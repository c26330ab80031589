/*
 * Client message parsing, reply builders, the event writer and the JSON
 * validator behind it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <check.h>
#include <json-c/json.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"
#include "proto.h"

#define TS	"\"timestamp\":\"2025-11-25T12:00:00.123Z\""

static const struct timeval	 tv = { 1764072000, 123456 };

/* ---- proto_parse ---------------------------------------------------- */

static struct proto_request	 req;

static void
parse(const char *s)
{
	proto_parse(s, strlen(s), &req);
}

static void
expect_error(const char *msg, const char *error, const char *request)
{
	parse(msg);
	ck_assert_msg(req.pr_type == PROTO_INVALID, "accepted %s", msg);
	ck_assert_ptr_nonnull(req.pr_error);
	ck_assert_msg(strcmp(req.pr_error, error) == 0, "%s: got \"%s\"", msg,
	    req.pr_error);
	ck_assert_msg(strcmp(req.pr_request, request) == 0,
	    "%s: request \"%s\"", msg, req.pr_request);
}

START_TEST(test_parse_simple_types)
{
	parse("{\"type\":\"ping\"}");
	ck_assert_int_eq(req.pr_type, PROTO_PING);
	ck_assert_ptr_null(req.pr_error);
	ck_assert_str_eq(req.pr_request, "ping");
	parse("{\"type\":\"list_channels\"}");
	ck_assert_int_eq(req.pr_type, PROTO_LIST_CHANNELS);
	parse(" \n{ \"type\" : \"stats\" , \"extra\": [1, {\"x\":null}] }\r\n");
	ck_assert_int_eq(req.pr_type, PROTO_STATS);
	/* other fields, even a bad channel, do not matter to ping */
	parse("{\"channel\":5,\"type\":\"ping\"}");
	ck_assert_int_eq(req.pr_type, PROTO_PING);
}
END_TEST

START_TEST(test_parse_subscribe_and_unsubscribe)
{
	parse("{\"type\":\"subscribe\",\"channel\":\"apps:created\"}");
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_str_eq(req.pr_channel, "apps:created");
	ck_assert_uint_eq(req.pr_channel_len, 12);
	ck_assert_str_eq(req.pr_request, "subscribe");
	parse("{\"channel\":\"user:u1\",\"type\":\"unsubscribe\"}");
	ck_assert_int_eq(req.pr_type, PROTO_UNSUBSCRIBE);
	ck_assert_str_eq(req.pr_channel, "user:u1");
	/* unknown families parse fine: policy is channel.c's */
	parse("{\"type\":\"subscribe\",\"channel\":\"nope\"}");
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_str_eq(req.pr_channel, "nope");
	/* escapes are decoded before the name is judged */
	parse("{\"type\":\"subscribe\",\"channel\":\"apps\\u003acreated\"}");
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_str_eq(req.pr_channel, "apps:created");
}
END_TEST

START_TEST(test_parse_invalid_json)
{
	const char	*bad[] = { "", " ", "{", "}", "{\"type\":\"ping\"",
	    "{\"type\":\"ping\"}x", "{\"type\":\"ping\"}{}",
	    "{'type':'ping'}", "{type:\"ping\"}", "{\"type\":\"ping\",}",
	    "[1,]", "nul", "{\"type\":\"ping\"} //", "/* */{}", "\xef\xbb\xbf{}",
	    "{\"type\":\"p\x01ng\"}", "{\"a\":01}", "{\"a\":NaN}",
	    "{\"type\":\"\xff\"}" };
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], "Invalid JSON", "");
	proto_parse(NULL, 0, &req);
	ck_assert_str_eq(req.pr_error, "Invalid JSON");
	/* the length counts: a NUL inside is not the end */
	proto_parse("{}\0{}", 5, &req);
	ck_assert_str_eq(req.pr_error, "Invalid JSON");
}
END_TEST

START_TEST(test_parse_non_object)
{
	const char	*bad[] = { "[]", "[{\"type\":\"ping\"}]", "1", "-0.5e3",
	    "\"ping\"", "null", "true", " false " };
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], "Message must be a JSON object", "");
}
END_TEST

START_TEST(test_parse_missing_or_invalid_type)
{
	const char	*bad[] = { "{}", "{\"Type\":\"ping\"}",
	    "{\"type\":null}", "{\"type\":1}", "{\"type\":[\"ping\"]}",
	    "{\"type\":{}}", "{\"type\":true}" };
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], "Missing or invalid type", "");
}
END_TEST

START_TEST(test_parse_unknown_type_is_named)
{
	expect_error("{\"type\":\"publish\"}", "Unknown message type", "publish");
	expect_error("{\"type\":\"PING\"}", "Unknown message type", "PING");
	expect_error("{\"type\":\"\"}", "Unknown message type", "");
	expect_error("{\"type\":\"ping \"}", "Unknown message type", "ping ");
	/* too long to name whole: not named at all */
	expect_error("{\"type\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}",
	    "Unknown message type", "");
	expect_error("{\"type\":\"pi\\u0000ng\"}", "Unknown message type", "");
}
END_TEST

START_TEST(test_parse_bad_channel)
{
	char	 msg[512];

	expect_error("{\"type\":\"subscribe\"}", "Missing or invalid channel",
	    "subscribe");
	ck_assert(!req.pr_has_channel);
	expect_error("{\"type\":\"unsubscribe\"}", "Missing or invalid channel",
	    "unsubscribe");
	expect_error("{\"type\":\"subscribe\",\"channel\":null}",
	    "Missing or invalid channel", "subscribe");
	expect_error("{\"type\":\"subscribe\",\"channel\":7}",
	    "Missing or invalid channel", "subscribe");
	expect_error("{\"type\":\"subscribe\",\"channel\":[\"apps:created\"]}",
	    "Missing or invalid channel", "subscribe");
	expect_error("{\"type\":\"subscribe\",\"channel\":\"\"}",
	    "Missing or invalid channel", "subscribe");
	ck_assert(!req.pr_has_channel);
	/* a bad but echoable name is kept to say which one */
	expect_error("{\"type\":\"subscribe\",\"channel\":\"apps:a b\"}",
	    "Missing or invalid channel", "subscribe");
	ck_assert(req.pr_has_channel);
	ck_assert_str_eq(req.pr_channel, "apps:a b");
	expect_error("{\"type\":\"unsubscribe\",\"channel\":\"x\\u0000y\"}",
	    "Missing or invalid channel", "unsubscribe");
	ck_assert(!req.pr_has_channel);

	memset(msg, 0, sizeof(msg));
	strcpy(msg, "{\"type\":\"subscribe\",\"channel\":\"apps:");
	memset(msg + strlen(msg), 'a', RT_CHANNEL_MAX - 5);
	strcat(msg, "\"}");
	parse(msg);
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_uint_eq(req.pr_channel_len, RT_CHANNEL_MAX);
	msg[strlen(msg) - 2] = '\0';
	strcat(msg, "a\"}");
	expect_error(msg, "Missing or invalid channel", "subscribe");
	ck_assert(!req.pr_has_channel);
}
END_TEST

START_TEST(test_parse_deep_nesting_is_refused_quietly)
{
	char	*msg;
	size_t	 n = 5000, i, off;

	ck_assert_ptr_nonnull(msg = malloc(2 * n + 64));
	off = (size_t)sprintf(msg, "{\"type\":\"ping\",\"x\":");
	for (i = 0; i < n; i++)
		msg[off++] = '[';
	for (i = 0; i < n; i++)
		msg[off++] = ']';
	msg[off++] = '}';
	msg[off] = '\0';
	parse(msg);
	ck_assert_str_eq(req.pr_error, "Invalid JSON");
	free(msg);
}
END_TEST

/* ---- since ----------------------------------------------------------- */

#define SUB	"{\"type\":\"subscribe\",\"channel\":\"apps:created\""

/* A subscribe with since (the JSON text after "since":) is refused. */
static void
expect_bad_since(const char *since)
{
	char	 msg[512];

	snprintf(msg, sizeof(msg), SUB ",\"since\":%s}", since);
	parse(msg);
	ck_assert_msg(req.pr_type == PROTO_INVALID, "accepted since %s", since);
	ck_assert_ptr_nonnull(req.pr_error);
	ck_assert_msg(strncmp(req.pr_error, "Invalid since", 13) == 0,
	    "since %s: \"%s\"", since, req.pr_error);
	ck_assert_str_eq(req.pr_request, "subscribe");
	ck_assert(req.pr_has_channel);
	ck_assert_str_eq(req.pr_channel, "apps:created");
}

/* A subscribe with since is accepted: its epoch and offset. */
static void
expect_since(const char *since, const char *epoch, uint64_t offset)
{
	char	 msg[512];

	snprintf(msg, sizeof(msg), SUB ",\"since\":%s}", since);
	parse(msg);
	ck_assert_msg(req.pr_type == PROTO_SUBSCRIBE, "since %s: %s", since,
	    req.pr_error != NULL ? req.pr_error : "?");
	ck_assert_ptr_null(req.pr_error);
	ck_assert_str_eq(req.pr_channel, "apps:created");
	ck_assert_int_eq(req.pr_has_since, 1);
	ck_assert_str_eq(req.pr_since_epoch, epoch);
	ck_assert_uint_eq(req.pr_since_offset, offset);
}

START_TEST(test_parse_since_absent_or_null)
{
	parse(SUB "}");
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_int_eq(req.pr_has_since, 0);
	parse(SUB ",\"since\":null}");
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_ptr_null(req.pr_error);
	ck_assert_int_eq(req.pr_has_since, 0);
	/* "Since" is another field */
	parse(SUB ",\"Since\":5}");
	ck_assert_int_eq(req.pr_type, PROTO_SUBSCRIBE);
	ck_assert_int_eq(req.pr_has_since, 0);
	/* a previous parse leaves nothing behind */
	expect_since("{\"epoch\":\"k3J9x2aQ\",\"offset\":42}", "k3J9x2aQ", 42);
	parse(SUB "}");
	ck_assert_int_eq(req.pr_has_since, 0);
	ck_assert_uint_eq(req.pr_since_offset, 0);
}
END_TEST

START_TEST(test_parse_since_valid)
{
	char	 since[128];

	expect_since("{\"epoch\":\"k3J9x2aQ\",\"offset\":42}", "k3J9x2aQ", 42);
	expect_since("{\"offset\":0,\"epoch\":\"n-1\"}", "n-1", 0);
	expect_since(" { \"epoch\" : \"n-1\" , \"offset\" : 7 , \"x\":[1] } ", "n-1", 7);
	expect_since("{\"epoch\":\"n\\u002d1\",\"offset\":-0}", "n-1", 0);
	expect_since("{\"epoch\":\"n-1\",\"offset\":9223372036854775807}", "n-1",
	    (uint64_t)INT64_MAX);
	/* past int64 and past uint64 are still non-negative integers: in the
	 * future, so recovered false (2^64-1 is json-c's ceiling) */
	expect_since("{\"epoch\":\"n-1\",\"offset\":9223372036854775808}", "n-1",
	    (uint64_t)INT64_MAX + 1);
	expect_since("{\"epoch\":\"n-1\",\"offset\":18446744073709551615}", "n-1",
	    UINT64_MAX);
	expect_since("{\"epoch\":\"n-1\",\"offset\":18446744073709551616}", "n-1",
	    UINT64_MAX);
	expect_since("{\"epoch\":\"n-1\",\"offset\":99999999999999999999999999}", "n-1",
	    UINT64_MAX);
	/* 32 bytes: the longest epoch we issue, kept whole */
	snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"offset\":3}",
	    "abcdefghijklmnopqrstuvwx-0123456");
	expect_since(since, "abcdefghijklmnopqrstuvwx-0123456", 3);
	/* since goes with the channel: the channel's errors first */
	expect_error("{\"type\":\"subscribe\",\"since\":5}", "Missing or invalid channel",
	    "subscribe");
}
END_TEST

START_TEST(test_parse_since_malformed)
{
	const char	*bad[] = {
		/* not an object */
		"5", "\"k3J9x2aQ\"", "[]", "[\"n-1\",4]", "true", "false", "0",
		/* epoch missing or not a string */
		"{}", "{\"offset\":1}", "{\"epoch\":null,\"offset\":1}",
		"{\"epoch\":5,\"offset\":1}", "{\"epoch\":[\"n\"],\"offset\":1}",
		"{\"epoch\":{},\"offset\":1}", "{\"epoch\":true,\"offset\":1}",
		"{\"Epoch\":\"n-1\",\"offset\":1}",
		/* offset missing or not a non-negative integer */
		"{\"epoch\":\"n-1\"}", "{\"epoch\":\"n-1\",\"offset\":null}",
		"{\"epoch\":\"n-1\",\"offset\":-1}",
		"{\"epoch\":\"n-1\",\"offset\":-9223372036854775808}",
		"{\"epoch\":\"n-1\",\"offset\":1.5}", "{\"epoch\":\"n-1\",\"offset\":1.0}",
		"{\"epoch\":\"n-1\",\"offset\":1e3}", "{\"epoch\":\"n-1\",\"offset\":-0.0}",
		"{\"epoch\":\"n-1\",\"offset\":\"42\"}", "{\"epoch\":\"n-1\",\"offset\":true}",
		"{\"epoch\":\"n-1\",\"offset\":[42]}", "{\"epoch\":\"n-1\",\"offset\":{}}",
		"{\"epoch\":\"n-1\",\"offset\":-99999999999999999999999999}",
	};
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_since(bad[i]);
}
END_TEST

/* An epoch we could never have issued is a since that matches nothing. */
START_TEST(test_parse_since_foreign_epoch)
{
	char	 since[256];

	/* empty */
	expect_since("{\"epoch\":\"\",\"offset\":3}", "-", 3);
	/* 33 bytes */
	snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"offset\":3}",
	    "abcdefghijklmnopqrstuvwx-01234567");
	expect_since(since, "-", 3);
	/* far longer */
	snprintf(since, sizeof(since), "{\"epoch\":\"%0200d\",\"offset\":9}", 0);
	expect_since(since, "-", 9);
	/* a NUL inside */
	expect_since("{\"epoch\":\"n-1\\u0000x\",\"offset\":1}", "-", 1);
	/* the foreign form is never one hist gives: node epoch, '-', generation */
	ck_assert_uint_lt(strlen(req.pr_since_epoch), 2);
}
END_TEST

/* ---- proto_json_valid ----------------------------------------------- */

static const char *const json_good[] = {
	"0", "-0", "1", "-1", "123", "0.5", "-0.5", "1e5", "1E5", "1e+5",
	"1e-5", "1.25E-10", "\"\"", "\"abc\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
	"\"\\u0000\\uABCD\\uabcd\"", "\"\\ud800\"", "\"\xc3\xa9\"",
	"\"\xe2\x82\xac\"", "\"\xf0\x9f\x98\x80\"", "\"\xef\xbf\xbf\"",
	"\"\xf4\x8f\xbf\xbf\"", "\"\x7f\"", "true", "false", "null", "[]", "{}",
	"[1,2,3]", "{\"a\":1}", "{\"a\":{\"b\":[true,false,null]}}",
	" \t\r\n[ 1 , { \"k\" : \"v\" } ] \t\r\n", "[[],{},[{}]]",
	"{\"\":\"\"}", "{\"a\":1,\"a\":2}",
};

static const char *const json_bad[] = {
	"", " ", "01", "-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "0x10",
	"-01", "Infinity", "NaN", "--1", "1 2", "\"", "\"abc", "\"\\x\"",
	"\"\\u12\"", "\"\\u12G4\"", "\"\t\"", "\"\n\"", "\"\x01\"",
	"\"\x80\"", "\"\xc0\x80\"", "\"\xc1\xbf\"", "\"\xe0\x80\x80\"",
	"\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xf4\x90\x80\x80\"",
	"\"\xe2\x82\"", "\"\xff\"", "tru", "truee", "nul", "True", "[", "]",
	"[1,]", "[,1]", "[1 2]", "{", "}", "{\"a\"}", "{\"a\":}", "{a:1}",
	"{\"a\":1,}", "{,}", "{\"a\" 1}", "[}", "{]", "[1]]", "{}}",
	"\x0b" "1", "1\x0b", "\xc2\xa0" "1", "'a'", "[1]x", "\xef\xbb\xbf[]",
	"{\"a\":1}{}", "[\"a\",]", "{1:2}", "{null:1}",
};

START_TEST(test_json_valid_accepts)
{
	const char	*s = json_good[_i];

	ck_assert_msg(proto_json_valid(s, strlen(s)), "refused %s", s);
}
END_TEST

START_TEST(test_json_valid_refuses)
{
	const char	*s = json_bad[_i];

	ck_assert_msg(!proto_json_valid(s, strlen(s)), "accepted %s", s);
}
END_TEST

START_TEST(test_json_valid_counts_length_not_nul)
{
	ck_assert(proto_json_valid("[1]xyz", 3));
	ck_assert(!proto_json_valid("[1]\0", 4));
	ck_assert(!proto_json_valid("\"a\0b\"", 5));
	ck_assert(!proto_json_valid(NULL, 0));
	ck_assert(!proto_json_valid("[1]", 2));
}
END_TEST

static char *
nested(size_t depth, int objects)
{
	char	*s, *p;
	size_t	 i;

	ck_assert_ptr_nonnull(s = malloc(depth * 6 + 8));
	p = s;
	for (i = 0; i < depth; i++) {
		if (objects && i % 2 == 1)
			p += sprintf(p, "{\"k\":");
		else
			*p++ = '[';
	}
	*p++ = '1';
	for (i = depth; i-- > 0;)
		*p++ = objects && i % 2 == 1 ? '}' : ']';
	*p = '\0';
	return s;
}

START_TEST(test_json_valid_depth_limit)
{
	char	*s;

	s = nested(1024, 0);
	ck_assert(proto_json_valid(s, strlen(s)));
	free(s);
	s = nested(1025, 0);
	ck_assert(!proto_json_valid(s, strlen(s)));
	free(s);
	s = nested(1024, 1);
	ck_assert(proto_json_valid(s, strlen(s)));
	free(s);
	s = nested(1025, 1);
	ck_assert(!proto_json_valid(s, strlen(s)));
	free(s);
	/* very deep input costs no stack */
	s = nested(1000000, 0);
	ck_assert(!proto_json_valid(s, strlen(s)));
	free(s);
}
END_TEST

START_TEST(test_json_valid_closers_must_match_openers)
{
	ck_assert(proto_json_valid("[{\"a\":[{}]}]", 12));
	ck_assert(!proto_json_valid("[{\"a\":[{}}]]", 12));
	ck_assert(!proto_json_valid("{\"a\":[1}]", 9));
}
END_TEST

/* ---- reply builders ------------------------------------------------- */

static struct chan_table	*deftab;	/* the default namespace table */

static void
setup_table(void)
{
	ck_assert_ptr_nonnull(deftab = chan_table_default());
}

static void
teardown_table(void)
{
	chan_table_free(deftab);
	deftab = NULL;
}

static void
expect_json(struct json_object *o, const char *want)
{
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN), want);
	json_object_put(o);
}

/*
 * A reply made as text: its length, its bytes, and that it is one JSON
 * value which json-c writes back the same (ASCII, no '/').
 */
static size_t	 tlen;	/* the text replies' lengths */

/* len: read after s is made (an argument's order of evaluation is not fixed) */
static void
expect_text(char *s, const size_t *lenp, const char *want)
{
	struct json_object	*o;
	size_t			 len = *lenp;

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	ck_assert_str_eq(s, want);
	ck_assert(proto_json_valid(s, len));
	ck_assert_ptr_nonnull(o = json_tokener_parse(s));
	ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), want);
	json_object_put(o);
	free(s);
}

/* A text reply parsed, to look inside (the text is freed). */
static struct json_object *
text_obj(char *s, const size_t *lenp)
{
	struct json_object	*o;
	size_t			 len = *lenp;

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	ck_assert(proto_json_valid(s, len));
	ck_assert_ptr_nonnull(o = json_tokener_parse(s));
	free(s);
	return o;
}

START_TEST(test_timestamp_format)
{
	char			 ts[RT_TIMESTAMP_LEN + 1];
	struct timeval		 t = { 0, 999999 };

	proto_timestamp(ts, sizeof(ts), &tv);
	ck_assert_str_eq(ts, "2025-11-25T12:00:00.123Z");
	proto_timestamp(ts, sizeof(ts), &t);
	ck_assert_str_eq(ts, "1970-01-01T00:00:00.999Z");
	/* the formatter keeps two seconds: any order of three gives each its own */
	{
		struct timeval	 t3 = { 86399, 5000 };
		int		 i;

		for (i = 0; i < 3; i++) {
			proto_timestamp(ts, sizeof(ts), &tv);
			ck_assert_str_eq(ts, "2025-11-25T12:00:00.123Z");
			proto_timestamp(ts, sizeof(ts), &t);
			ck_assert_str_eq(ts, "1970-01-01T00:00:00.999Z");
			proto_timestamp(ts, sizeof(ts), &t3);
			ck_assert_str_eq(ts, "1970-01-01T23:59:59.005Z");
			proto_timestamp(ts, sizeof(ts), &t);
			ck_assert_str_eq(ts, "1970-01-01T00:00:00.999Z");
		}
	}
	proto_timestamp(ts, sizeof(ts), NULL);
	ck_assert_uint_eq(strlen(ts), RT_TIMESTAMP_LEN);
	ck_assert_int_eq(ts[10], 'T');
	ck_assert_int_eq(ts[23], 'Z');
}
END_TEST

START_TEST(test_connected_anonymous)
{
	struct auth_user	 u;

	auth_anonymous(&u);
	expect_text(proto_connected("8f0c3f0e-1d2b-4c6e-9a1b-2b3c4d5e6f70",
	    deftab, &u, &tv, &tlen), &tlen, "{\"type\":\"connected\","
	    "\"connectionId\":\"8f0c3f0e-1d2b-4c6e-9a1b-2b3c4d5e6f70\","
	    "\"user\":null,\"authorizedChannels\":[\"announcements\"],"
	    "\"expiresAt\":null," TS "}");
	expect_text(proto_connected("c", deftab, NULL, &tv, &tlen), &tlen, "{\"type\":\"connected\","
	    "\"connectionId\":\"c\",\"user\":null,"
	    "\"authorizedChannels\":[\"announcements\"],\"expiresAt\":null," TS "}");
}
END_TEST

START_TEST(test_connected_user_with_email_and_role)
{
	struct auth_user	 u;
	struct json_object	*o, *user, *v, *chans;
	size_t			 n;

	auth_anonymous(&u);
	u.u_authenticated = 1;
	strcpy(u.u_id, "u1");
	strcpy(u.u_email, "a@b.c");
	strcpy(u.u_role, "admin");
	u.u_has_email = u.u_has_role = u.u_admin = 1;
	o = text_obj(proto_connected("c", deftab, &u, &tv, &tlen), &tlen);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "user", &user));
	ck_assert_str_eq(json_object_to_json_string_ext(user,
	    JSON_C_TO_STRING_PLAIN),
	    "{\"userId\":\"u1\",\"email\":\"a@b.c\",\"role\":\"admin\"}");
	ck_assert(json_object_object_get_ex(o, "authorizedChannels", &chans));
	n = json_object_array_length(chans);
	ck_assert_str_eq(json_object_get_string(
	    json_object_array_get_idx(chans, 0)), "apps:created");
	ck_assert_str_eq(json_object_get_string(
	    json_object_array_get_idx(chans, n - 1)), "user:u1");
	ck_assert(json_object_object_get_ex(o, "timestamp", &v));
	json_object_put(o);
}
END_TEST

START_TEST(test_connected_user_without_optional_claims)
{
	struct auth_user	 u;
	struct json_object	*o, *user;

	auth_anonymous(&u);
	u.u_authenticated = 1;
	strcpy(u.u_id, "42");
	o = text_obj(proto_connected("c", deftab, &u, &tv, &tlen), &tlen);
	ck_assert(json_object_object_get_ex(o, "user", &user));
	ck_assert_str_eq(json_object_to_json_string_ext(user,
	    JSON_C_TO_STRING_PLAIN), "{\"userId\":\"42\"}");
	json_object_put(o);
}
END_TEST

/*
 * The text replies escape what a token's claims may hold: quotes,
 * backslashes and control characters come back as they were, '/' and
 * UTF-8 pass, a byte that is not UTF-8 becomes U+FFFD.
 */
START_TEST(test_connected_escapes_the_claims)
{
	struct auth_user	 u;
	struct json_object	*o, *user, *v;

	auth_anonymous(&u);
	u.u_authenticated = 1;
	strcpy(u.u_id, "a\"b\\c\n/d\x01\xc3\xa9");
	strcpy(u.u_email, "x/y@z");
	strcpy(u.u_role, "r\xffs");
	u.u_has_email = u.u_has_role = 1;
	o = text_obj(proto_connected("c\"", deftab, &u, &tv, &tlen), &tlen);
	ck_assert(json_object_object_get_ex(o, "connectionId", &v));
	ck_assert_str_eq(json_object_get_string(v), "c\"");
	ck_assert(json_object_object_get_ex(o, "user", &user));
	ck_assert(json_object_object_get_ex(user, "userId", &v));
	ck_assert_str_eq(json_object_get_string(v), "a\"b\\c\n/d\x01\xc3\xa9");
	ck_assert(json_object_object_get_ex(user, "email", &v));
	ck_assert_str_eq(json_object_get_string(v), "x/y@z");
	ck_assert(json_object_object_get_ex(user, "role", &v));
	ck_assert_str_eq(json_object_get_string(v), "r\xef\xbf\xbds");
	json_object_put(o);
	o = text_obj(proto_authenticated(deftab, &u, &tv, &tlen), &tlen);
	ck_assert(json_object_object_get_ex(o, "user", &user));
	ck_assert(json_object_object_get_ex(user, "userId", &v));
	ck_assert_str_eq(json_object_get_string(v), "a\"b\\c\n/d\x01\xc3\xa9");
	json_object_put(o);
	o = text_obj(proto_subscribed_at("q\"\\", "e", 18446744073709551615ULL, 1, &tv, &tlen),
	    &tlen);
	ck_assert(json_object_object_get_ex(o, "channel", &v));
	ck_assert_str_eq(json_object_get_string(v), "q\"\\");
	ck_assert(json_object_object_get_ex(o, "offset", &v));
	ck_assert_uint_eq(json_object_get_uint64(v), 18446744073709551615ULL);
	json_object_put(o);
}
END_TEST

START_TEST(test_subscribed_unsubscribed_pong)
{
	expect_text(proto_subscribed("subscribed", "apps:created", &tv, &tlen), &tlen,
	    "{\"type\":\"subscribed\",\"channel\":\"apps:created\"," TS "}");
	expect_text(proto_subscribed("unsubscribed", "apps:created", &tv, &tlen), &tlen,
	    "{\"type\":\"unsubscribed\",\"channel\":\"apps:created\"," TS "}");
	expect_json(proto_pong(&tv), "{\"type\":\"pong\"," TS "}");
}
END_TEST

/* The server ends a subscription (a reload revoked it): the reason is said. */
START_TEST(test_unsubscribed_with_reason)
{
	expect_json(proto_unsubscribed("org:o1:chat", "not authorized", &tv),
	    "{\"type\":\"unsubscribed\",\"channel\":\"org:o1:chat\","
	    "\"reason\":\"not authorized\"," TS "}");
	/* both strings are JSON-escaped */
	expect_json(proto_unsubscribed("a\"b", "x\\y\n", &tv),
	    "{\"type\":\"unsubscribed\",\"channel\":\"a\\\"b\","
	    "\"reason\":\"x\\\\y\\n\"," TS "}");
}
END_TEST

/* {"type":"auth","token":…}: the token, or an error. */
START_TEST(test_parse_auth)
{
	struct proto_request	 r;
	static char		 big[RT_TOKEN_MAX + 64];
	size_t			 n;

	proto_parse("{\"type\":\"auth\",\"token\":\"a.b.c\"}", 31, &r);
	ck_assert_int_eq(r.pr_type, PROTO_AUTH);
	ck_assert_str_eq(r.pr_token, "a.b.c");
	ck_assert_uint_eq(r.pr_token_len, 5);
	proto_parse("{\"type\":\"auth\"}", 15, &r);
	ck_assert_int_eq(r.pr_type, PROTO_INVALID);
	ck_assert_str_eq(r.pr_error, "Missing or invalid token");
	ck_assert_str_eq(r.pr_request, "auth");
	proto_parse("{\"type\":\"auth\",\"token\":\"\"}", 26, &r);
	ck_assert_int_eq(r.pr_type, PROTO_INVALID);
	proto_parse("{\"type\":\"auth\",\"token\":7}", 25, &r);
	ck_assert_int_eq(r.pr_type, PROTO_INVALID);
	n = (size_t)snprintf(big, sizeof(big), "{\"type\":\"auth\",\"token\":\"");
	memset(big + n, 'a', RT_TOKEN_MAX + 1);
	n += RT_TOKEN_MAX + 1;
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\"}");
	proto_parse(big, n, &r);
	ck_assert_int_eq(r.pr_type, PROTO_INVALID);
	ck_assert_str_eq(r.pr_error, "Invalid token: token too long");
}
END_TEST

/* authorizedChannels comes from the table given, not a built-in one. */
START_TEST(test_connected_and_channels_use_the_table)
{
	struct chan_table	*t;
	struct auth_user	 u;
	struct json_object	*sub;
	char			 msg[256];

	ck_assert_ptr_nonnull(t = chan_table_new());
	ck_assert_int_eq(chan_table_add(t, "lobby public", NULL, 1, msg,
	    sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_add(t, "org:{orgId}:chat self", NULL, 2,
	    msg, sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_add(t, "user:{userId} self", NULL, 3,
	    msg, sizeof(msg)), 0);
	auth_anonymous(&u);
	expect_text(proto_connected("c", t, &u, &tv, &tlen), &tlen, "{\"type\":\"connected\","
	    "\"connectionId\":\"c\",\"user\":null,"
	    "\"authorizedChannels\":[\"lobby\"],\"expiresAt\":null," TS "}");
	u.u_authenticated = 1;
	strcpy(u.u_id, "u7");
	ck_assert_int_eq(auth_user_add_claim(&u, "orgId", "o1", 2), 0);
	expect_text(proto_connected("c", t, &u, &tv, &tlen), &tlen, "{\"type\":\"connected\","
	    "\"connectionId\":\"c\",\"user\":{\"userId\":\"u7\"},"
	    "\"authorizedChannels\":[\"lobby\",\"org:o1:chat\",\"user:u7\"],"
	    "\"expiresAt\":null," TS "}");
	/* with an exp: its ISO time, to the millisecond */
	u.u_exp_ms = INT64_C(1764072000250);
	expect_text(proto_connected("c", t, &u, &tv, &tlen), &tlen, "{\"type\":\"connected\","
	    "\"connectionId\":\"c\",\"user\":{\"userId\":\"u7\"},"
	    "\"authorizedChannels\":[\"lobby\",\"org:o1:chat\",\"user:u7\"],"
	    "\"expiresAt\":\"2025-11-25T12:00:00.250Z\"," TS "}");
	expect_text(proto_authenticated(t, &u, &tv, &tlen), &tlen, "{\"type\":\"authenticated\","
	    "\"user\":{\"userId\":\"u7\"},"
	    "\"authorizedChannels\":[\"lobby\",\"org:o1:chat\",\"user:u7\"],"
	    "\"expiresAt\":\"2025-11-25T12:00:00.250Z\"," TS "}");
	expect_json(proto_token_expiring(INT64_C(1764072000000), &tv), "{\"type\":\"token_expiring\","
	    "\"expiresAt\":\"2025-11-25T12:00:00.000Z\"," TS "}");
	u.u_exp_ms = 0;
	sub = json_object_new_array();
	json_object_array_add(sub, json_object_new_string("org:o1:chat"));
	expect_json(proto_channels(t, &u, sub, &tv), "{\"type\":\"channels\","
	    "\"authorizedChannels\":[\"lobby\",\"org:o1:chat\",\"user:u7\"],"
	    "\"subscribedChannels\":[\"org:o1:chat\"]," TS "}");
	chan_table_free(t);
}
END_TEST

START_TEST(test_channels_reply)
{
	struct json_object	*sub;

	expect_json(proto_channels(deftab, NULL, NULL, &tv), "{\"type\":\"channels\","
	    "\"authorizedChannels\":[\"announcements\"],"
	    "\"subscribedChannels\":[]," TS "}");
	sub = json_object_new_array();
	json_object_array_add(sub, json_object_new_string("announcements"));
	expect_json(proto_channels(deftab, NULL, sub, &tv), "{\"type\":\"channels\","
	    "\"authorizedChannels\":[\"announcements\"],"
	    "\"subscribedChannels\":[\"announcements\"]," TS "}");
}
END_TEST

START_TEST(test_stats_reply)
{
	struct proto_stats	 st = { 10, 8, 2, 45 };
	struct json_object	*by;

	by = json_object_new_object();
	json_object_object_add(by, "apps:created", json_object_new_int(5));
	expect_json(proto_stats(&st, by, &tv), "{\"type\":\"stats\",\"data\":{"
	    "\"totalConnections\":10,\"authenticatedConnections\":8,"
	    "\"anonymousConnections\":2,\"totalSubscriptions\":45,"
	    "\"connectionsByChannel\":{\"apps:created\":5}}," TS "}");
	expect_json(proto_stats(&st, NULL, &tv), "{\"type\":\"stats\",\"data\":{"
	    "\"totalConnections\":10,\"authenticatedConnections\":8,"
	    "\"anonymousConnections\":2,\"totalSubscriptions\":45,"
	    "\"connectionsByChannel\":{}}," TS "}");
}
END_TEST

START_TEST(test_error_reply)
{
	expect_json(proto_error("Not authorized to subscribe to this channel",
	    NULL, NULL, &tv), "{\"type\":\"error\",\"message\":"
	    "\"Not authorized to subscribe to this channel\"," TS "}");
	expect_json(proto_error("Unknown channel", "subscribe", "nope", &tv),
	    "{\"type\":\"error\",\"message\":\"Unknown channel\","
	    "\"request\":\"subscribe\",\"channel\":\"nope\"," TS "}");
	expect_json(proto_error("Invalid JSON", "", "", &tv),
	    "{\"type\":\"error\",\"message\":\"Invalid JSON\"," TS "}");
	/* echoed client text is escaped */
	expect_json(proto_error("Missing or invalid channel", "subscribe",
	    "a\"b\\c\n", &tv), "{\"type\":\"error\",\"message\":"
	    "\"Missing or invalid channel\",\"request\":\"subscribe\","
	    "\"channel\":\"a\\\"b\\\\c\\n\"," TS "}");
}
END_TEST

/* ---- proto_event ---------------------------------------------------- */

static char *
event(const char *ch, size_t chlen, const char *payload, size_t plen)
{
	char		*s;
	size_t		 n;

	n = proto_event(NULL, 0, ch, chlen, payload, plen, &tv);
	ck_assert_ptr_nonnull(s = malloc(n + 1));
	ck_assert_uint_eq(proto_event(s, n, ch, chlen, payload, plen, &tv), n);
	s[n] = '\0';
	/* whatever went in, json-c reads it back as one object */
	{
		struct json_tokener	*tok = json_tokener_new_ex(2000);
		struct json_object	*o;

		o = json_tokener_parse_ex(tok, s, (int)n);
		ck_assert_msg(o != NULL && json_tokener_get_parse_end(tok) == n,
		    "not JSON: %s", s);
		ck_assert(json_object_is_type(o, json_type_object));
		json_object_put(o);
		json_tokener_free(tok);
	}
	return s;
}

static void
expect_event(const char *payload, size_t plen, const char *data)
{
	char	*got, want[4096];

	snprintf(want, sizeof(want), "{\"type\":\"event\",\"channel\":"
	    "\"apps:created\",\"data\":%s," TS "}", data);
	got = event("apps:created", 12, payload, plen);
	ck_assert_str_eq(got, want);
	free(got);
}

#define EV(p, d)	expect_event(p, sizeof(p) - 1, d)

START_TEST(test_event_embeds_json_bytes_verbatim)
{
	EV("{\"id\":\"a1\",  \"n\":1.50, \"list\":[1,2]}",
	    "{\"id\":\"a1\",  \"n\":1.50, \"list\":[1,2]}");
	EV("[]", "[]");
	EV("42", "42");
	EV("-1.5e+300", "-1.5e+300");
	EV("\"str\\u00e9\"", "\"str\\u00e9\"");
	EV("null", "null");
	EV("{\"k\":\"\xf0\x9f\x98\x80\"}", "{\"k\":\"\xf0\x9f\x98\x80\"}");
}
END_TEST

START_TEST(test_event_trims_surrounding_whitespace)
{
	EV("  {\"a\":1}\n", "{\"a\":1}");
	EV("\r\n\t7 ", "7");
}
END_TEST

START_TEST(test_event_non_json_becomes_string)
{
	EV("hello world", "\"hello world\"");
	EV("", "\"\"");
	EV("   ", "\"   \"");
	EV("{\"a\":1", "\"{\\\"a\\\":1\"");
	EV("{\"a\":1} trailing", "\"{\\\"a\\\":1} trailing\"");
	EV("back\\slash", "\"back\\\\slash\"");
	EV("caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\"");
	EV("01", "\"01\"");
}
END_TEST

START_TEST(test_event_escapes_control_characters)
{
	EV("a\nb\tc\x01\x1f\x7f", "\"a\\u000ab\\u0009c\\u0001\\u001f\x7f\"");
	EV("nul\0here", "\"nul\\u0000here\"");
}
END_TEST

START_TEST(test_event_replaces_invalid_utf8)
{
	EV("a\xff" "b", "\"a\xef\xbf\xbd" "b\"");
	EV("\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	EV("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	EV("\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	EV("{\"a\":\"\xff\"}", "\"{\\\"a\\\":\\\"\xef\xbf\xbd\\\"}\"");
}
END_TEST

START_TEST(test_event_escapes_channel_anyway)
{
	char	*got;

	got = event("a\"b\\c\n", 6, "1", 1);
	ck_assert_str_eq(got, "{\"type\":\"event\",\"channel\":"
	    "\"a\\\"b\\\\c\\u000a\",\"data\":1," TS "}");
	free(got);
}
END_TEST

/* Too small: untouched, and told the size; exactly enough: no byte more. */
START_TEST(test_event_buffer_too_small_is_left_alone)
{
	static const char	 want[] = "{\"type\":\"event\",\"channel\":"
	    "\"announcements\",\"data\":{}," TS "}";
	char			 s[256];
	size_t			 n = sizeof(want) - 1;

	memset(s, 'X', sizeof(s));
	ck_assert_uint_eq(proto_event(s, n - 1, "announcements", 13, "{}", 2,
	    &tv), n);
	ck_assert_int_eq(s[0], 'X');
	ck_assert_uint_eq(proto_event(s, n, "announcements", 13, "{}", 2, &tv),
	    n);
	ck_assert(memcmp(s, want, n) == 0);
	ck_assert_int_eq(s[n], 'X');
	ck_assert_uint_eq(proto_event(NULL, 0, "announcements", 13, "{}", 2,
	    &tv), n);
}
END_TEST

START_TEST(test_event_large_payloads)
{
	size_t	 n = 1 << 20, i;
	char	*p, *got;

	ck_assert_ptr_nonnull(p = malloc(n));
	p[0] = '[';
	for (i = 1; i < n - 1; i += 2) {
		p[i] = '1';
		p[i + 1] = ',';
	}
	p[n - 2] = '1';
	p[n - 1] = ']';
	got = event("apps:x", 6, p, n);
	i = strlen("{\"type\":\"event\",\"channel\":\"apps:x\",\"data\":");
	ck_assert(memcmp(got + i, p, n) == 0);
	ck_assert_str_eq(got + i + n, "," TS "}");
	free(got);
	/* too deep to embed: goes as a string, still valid JSON */
	free(p);
	p = nested(2000, 0);
	got = event("apps:x", 6, p, strlen(p));
	ck_assert(strstr(got, "\"data\":\"[[[") != NULL);
	free(got);
	free(p);
}
END_TEST

/* ---- positions ------------------------------------------------------ */

static char *
event_at(const char *ch, const char *payload, const char *epoch, uint64_t offset)
{
	char		*s;
	size_t		 n, plen = strlen(payload), chlen = strlen(ch);

	n = proto_event_at(NULL, 0, ch, chlen, payload, plen, &tv, epoch, offset);
	ck_assert_ptr_nonnull(s = malloc(n + 1));
	ck_assert_uint_eq(proto_event_at(s, n, ch, chlen, payload, plen, &tv, epoch,
	    offset), n);
	s[n] = '\0';
	ck_assert_msg(proto_json_valid(s, n), "not JSON: %s", s);
	{
		struct json_tokener	*tok = json_tokener_new_ex(2000);
		struct json_object	*o;

		o = json_tokener_parse_ex(tok, s, (int)n);
		ck_assert_msg(o != NULL && json_tokener_get_parse_end(tok) == n,
		    "not JSON: %s", s);
		ck_assert(json_object_is_type(o, json_type_object));
		json_object_put(o);
		json_tokener_free(tok);
	}
	return s;
}

START_TEST(test_event_at_position)
{
	struct json_object	*o, *v;
	char			*got;
	char			 small[16];
	size_t			 n;

	got = event_at("apps:created", "{\"id\":1}", "k3J9x2aQ-1", 42);
	ck_assert_str_eq(got, "{\"type\":\"event\",\"channel\":\"apps:created\","
	    "\"data\":{\"id\":1}," TS ",\"offset\":42,\"epoch\":\"k3J9x2aQ-1\"}");
	/* the fields read back */
	ck_assert_ptr_nonnull(o = json_tokener_parse(got));
	ck_assert(json_object_object_get_ex(o, "offset", &v));
	ck_assert(json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int64(v), 42);
	ck_assert(json_object_object_get_ex(o, "epoch", &v));
	ck_assert_str_eq(json_object_get_string(v), "k3J9x2aQ-1");
	ck_assert(json_object_object_get_ex(o, "timestamp", &v));
	ck_assert_str_eq(json_object_get_string(v), "2025-11-25T12:00:00.123Z");
	json_object_put(o);
	free(got);
	/* a payload that is not JSON, offset 1 */
	got = event_at("apps:x", "hi \"you\"", "n-a", 1);
	ck_assert_str_eq(got, "{\"type\":\"event\",\"channel\":\"apps:x\","
	    "\"data\":\"hi \\\"you\\\"\"," TS ",\"offset\":1,\"epoch\":\"n-a\"}");
	free(got);
	/* the largest offset */
	got = event_at("apps:x", "7", "n-a", UINT64_MAX);
	ck_assert_str_eq(got, "{\"type\":\"event\",\"channel\":\"apps:x\","
	    "\"data\":7," TS ",\"offset\":18446744073709551615,\"epoch\":\"n-a\"}");
	free(got);
	/* the longest epoch */
	got = event_at("apps:x", "7", "abcdefghijklmnopqrstuvwx-0123456", 5);
	ck_assert_str_eq(got, "{\"type\":\"event\",\"channel\":\"apps:x\","
	    "\"data\":7," TS ",\"offset\":5,\"epoch\":\"abcdefghijklmnopqrstuvwx-0123456\"}");
	free(got);
	/* no epoch: the plain event, as proto_event writes it */
	got = event_at("apps:x", "7", NULL, 5);
	ck_assert_str_eq(got, "{\"type\":\"event\",\"channel\":\"apps:x\",\"data\":7," TS "}");
	free(got);
	/* too small a buffer is left as it was */
	memset(small, 'Z', sizeof(small));
	n = proto_event_at(small, sizeof(small), "apps:x", 6, "7", 1, &tv, "n-a", 5);
	ck_assert_uint_eq(n, strlen("{\"type\":\"event\",\"channel\":\"apps:x\","
	    "\"data\":7," TS ",\"offset\":5,\"epoch\":\"n-a\"}"));
	ck_assert_int_eq(small[0], 'Z');
	ck_assert_int_eq(small[sizeof(small) - 1], 'Z');
}
END_TEST

START_TEST(test_subscribed_at)
{
	/* the channel keeps no history */
	expect_text(proto_subscribed_at("apps:created", NULL, 0, -1, &tv, &tlen), &tlen,
	    "{\"type\":\"subscribed\",\"channel\":\"apps:created\"," TS "}");
	expect_text(proto_subscribed_at("apps:created", NULL, 9, 0, &tv, &tlen), &tlen,
	    "{\"type\":\"subscribed\",\"channel\":\"apps:created\","
	    "\"recovered\":false," TS "}");
	/* a position, without a since */
	expect_text(proto_subscribed_at("apps:created", "k3J9x2aQ-1", 0, -1, &tv, &tlen), &tlen,
	    "{\"type\":\"subscribed\",\"channel\":\"apps:created\","
	    "\"epoch\":\"k3J9x2aQ-1\",\"offset\":0," TS "}");
	/* with one */
	expect_text(proto_subscribed_at("apps:created", "k3J9x2aQ-1", 42, 1, &tv, &tlen), &tlen,
	    "{\"type\":\"subscribed\",\"channel\":\"apps:created\","
	    "\"epoch\":\"k3J9x2aQ-1\",\"offset\":42,\"recovered\":true," TS "}");
	expect_text(proto_subscribed_at("apps:created", "k3J9x2aQ-2", 7, 0, &tv, &tlen), &tlen,
	    "{\"type\":\"subscribed\",\"channel\":\"apps:created\","
	    "\"epoch\":\"k3J9x2aQ-2\",\"offset\":7,\"recovered\":false," TS "}");
	/* the same shape as proto_subscribed's without a position */
	{
		size_t	 alen, blen;
		char	*a = proto_subscribed("subscribed", "a\"b", &tv, &alen);
		char	*b = proto_subscribed_at("a\"b", NULL, 0, -1, &tv, &blen);

		ck_assert_uint_eq(alen, blen);
		ck_assert_str_eq(a, b);
		free(a);
		free(b);
	}
}
END_TEST

static Suite *
proto_suite(void)
{
	Suite	*s = suite_create("proto");
	TCase	*tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_simple_types);
	tcase_add_test(tc, test_parse_subscribe_and_unsubscribe);
	tcase_add_test(tc, test_parse_invalid_json);
	tcase_add_test(tc, test_parse_non_object);
	tcase_add_test(tc, test_parse_missing_or_invalid_type);
	tcase_add_test(tc, test_parse_unknown_type_is_named);
	tcase_add_test(tc, test_parse_bad_channel);
	tcase_add_test(tc, test_parse_deep_nesting_is_refused_quietly);
	tcase_add_test(tc, test_parse_since_absent_or_null);
	tcase_add_test(tc, test_parse_since_valid);
	tcase_add_test(tc, test_parse_since_malformed);
	tcase_add_test(tc, test_parse_since_foreign_epoch);
	suite_add_tcase(s, tc);

	tc = tcase_create("json_valid");
	tcase_add_loop_test(tc, test_json_valid_accepts, 0,
	    (int)(sizeof(json_good) / sizeof(json_good[0])));
	tcase_add_loop_test(tc, test_json_valid_refuses, 0,
	    (int)(sizeof(json_bad) / sizeof(json_bad[0])));
	tcase_add_test(tc, test_json_valid_counts_length_not_nul);
	tcase_add_test(tc, test_json_valid_depth_limit);
	tcase_add_test(tc, test_json_valid_closers_must_match_openers);
	suite_add_tcase(s, tc);

	tc = tcase_create("replies");
	tcase_add_checked_fixture(tc, setup_table, teardown_table);
	tcase_add_test(tc, test_timestamp_format);
	tcase_add_test(tc, test_connected_anonymous);
	tcase_add_test(tc, test_connected_user_with_email_and_role);
	tcase_add_test(tc, test_connected_user_without_optional_claims);
	tcase_add_test(tc, test_connected_escapes_the_claims);
	tcase_add_test(tc, test_subscribed_unsubscribed_pong);
	tcase_add_test(tc, test_unsubscribed_with_reason);
	tcase_add_test(tc, test_connected_and_channels_use_the_table);
	tcase_add_test(tc, test_parse_auth);
	tcase_add_test(tc, test_channels_reply);
	tcase_add_test(tc, test_stats_reply);
	tcase_add_test(tc, test_error_reply);
	suite_add_tcase(s, tc);

	tc = tcase_create("event");
	tcase_add_test(tc, test_event_embeds_json_bytes_verbatim);
	tcase_add_test(tc, test_event_trims_surrounding_whitespace);
	tcase_add_test(tc, test_event_non_json_becomes_string);
	tcase_add_test(tc, test_event_escapes_control_characters);
	tcase_add_test(tc, test_event_replaces_invalid_utf8);
	tcase_add_test(tc, test_event_escapes_channel_anyway);
	tcase_add_test(tc, test_event_buffer_too_small_is_left_alone);
	tcase_add_test(tc, test_event_large_payloads);
	tcase_add_test(tc, test_event_at_position);
	tcase_add_test(tc, test_subscribed_at);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(proto_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
