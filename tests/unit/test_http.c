/*
 * Unit tests for src/http.c: request-head parsing, header lists, query
 * parameters, finding the token, the RFC 6455 upgrade checks and response
 * formatting.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAX_HEAD	8192

#define UPGRADE_HEAD							\
	"GET /ws?token=abc HTTP/1.1\r\n"				\
	"Host: example.com:8888\r\n"					\
	"Connection: Upgrade\r\n"					\
	"Upgrade: websocket\r\n"					\
	"Sec-WebSocket-Version: 13\r\n"					\
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"		\
	"\r\n"

static struct http_request	req;
static size_t			consumed;

static int
parse_max(const char *s, size_t max)
{
	return http_parse_request(s, strlen(s), max, &req, &consumed);
}

static int
parse(const char *s)
{
	return parse_max(s, MAX_HEAD);
}

/* Parse "GET / HTTP/1.1" + Host + the given header lines. */
static int
parse_with(const char *lines)
{
	static char	buf[MAX_HEAD];

	snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n",
	    lines);
	return parse(buf);
}

static int
upgrade_status(const char *head)
{
	struct http_upgrade	up;

	ck_assert_int_eq(parse(head), HTTP_PARSE_DONE);
	return http_check_upgrade(&req, &up);
}

static int
counted_eq(const char *p, size_t n, const char *s)
{
	return p != NULL && strlen(s) == n && memcmp(p, s, n) == 0;
}

/* ---- request line ---------------------------------------------------- */

START_TEST(test_parse_browser_upgrade_fills_request)
{
	const char	*s = UPGRADE_HEAD;

	ck_assert_int_eq(parse(s), HTTP_PARSE_DONE);
	ck_assert_uint_eq(consumed, strlen(s));
	ck_assert(counted_eq(req.r_method, req.r_method_len, "GET"));
	ck_assert(counted_eq(req.r_target, req.r_target_len, "/ws?token=abc"));
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/ws"));
	ck_assert(counted_eq(req.r_query, req.r_query_len, "token=abc"));
	ck_assert_int_eq(req.r_minor, 1);
	ck_assert_int_eq(req.r_nheaders, 5);
	ck_assert(counted_eq(req.r_headers[0].h_name,
	    req.r_headers[0].h_name_len, "Host"));
	ck_assert(counted_eq(req.r_headers[0].h_value,
	    req.r_headers[0].h_value_len, "example.com:8888"));
}
END_TEST

START_TEST(test_consumed_stops_at_end_of_head)
{
	const char	*s = "GET /health HTTP/1.1\r\nHost: a\r\n\r\nXYZ\x81\x00";

	ck_assert_int_eq(http_parse_request(s, strlen(s) + 2, MAX_HEAD, &req,
	    &consumed), HTTP_PARSE_DONE);
	ck_assert_uint_eq(consumed, strlen(s) - 4);
}
END_TEST

START_TEST(test_target_without_query_has_null_query)
{
	ck_assert_int_eq(parse("GET /health HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/health"));
	ck_assert_ptr_null(req.r_query);
	ck_assert_uint_eq(req.r_query_len, 0);
}
END_TEST

START_TEST(test_target_empty_query_is_not_null)
{
	ck_assert_int_eq(parse("GET /ws? HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/ws"));
	ck_assert_ptr_nonnull(req.r_query);
	ck_assert_uint_eq(req.r_query_len, 0);
}
END_TEST

START_TEST(test_target_query_splits_at_first_question_mark)
{
	ck_assert_int_eq(parse("GET /ws?a=1?b HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/ws"));
	ck_assert(counted_eq(req.r_query, req.r_query_len, "a=1?b"));
}
END_TEST

START_TEST(test_bare_lf_line_endings_accepted)
{
	const char	*s = "GET /ws HTTP/1.1\nHost: a\nX: y \n\n";

	ck_assert_int_eq(parse(s), HTTP_PARSE_DONE);
	ck_assert_uint_eq(consumed, strlen(s));
	ck_assert_int_eq(req.r_nheaders, 2);
	ck_assert(counted_eq(req.r_headers[1].h_value,
	    req.r_headers[1].h_value_len, "y"));
}
END_TEST

START_TEST(test_mixed_crlf_and_lf_accepted)
{
	const char	*s = "GET / HTTP/1.1\r\nHost: a\n\r\n";

	ck_assert_int_eq(parse(s), HTTP_PARSE_DONE);
	ck_assert_uint_eq(consumed, strlen(s));
}
END_TEST

START_TEST(test_one_char_line_does_not_end_head)
{
	/* Only the final empty line makes the head complete. */
	ck_assert_int_eq(parse("GET / HTTP/1.1\nHost: a\nX\nY: z\n"),
	    HTTP_PARSE_INCOMPLETE);
	ck_assert_int_eq(parse("GET / HTTP/1.1\nHost: a\nX\nY: z\n\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_bare_cr_in_request_line_bad)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\rHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_bare_cr_as_line_break_bad)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_double_cr_before_lf_bad)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

/* RFC 9112 2.2: empty lines before the request line are ignored, counted as used */
START_TEST(test_empty_lines_before_request_line_ignored)
{
	static const char	 r[] = "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t			 used;

	ck_assert_int_eq(http_parse_request(r, sizeof(r) - 1, 8192, &req, &used),
	    HTTP_PARSE_DONE);
	ck_assert_uint_eq(used, sizeof(r) - 1);
	ck_assert(counted_eq(req.r_method, req.r_method_len, "GET"));
	ck_assert_int_eq(parse("\r\n"), HTTP_PARSE_INCOMPLETE);
	ck_assert_int_eq(parse("\r"), HTTP_PARSE_INCOMPLETE);
	/* within the head's limit all the same */
	ck_assert_int_eq(http_parse_request("\r\n\r\n\r\n\r\n", 8, 8, &req, &used),
	    HTTP_PARSE_TOO_LARGE);
}
END_TEST

START_TEST(test_method_must_be_token)
{
	ck_assert_int_eq(parse("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_other_token_methods_parse)
{
	ck_assert_int_eq(parse("M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_method, req.r_method_len, "M-SEARCH"));
}
END_TEST

START_TEST(test_double_space_in_request_line_bad)
{
	ck_assert_int_eq(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_missing_version_bad)
{
	ck_assert_int_eq(parse("GET /\r\nHost: a\r\n\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / \r\nHost: a\r\n\r\n"), HTTP_PARSE_BAD);
}
END_TEST

/* RFC 9112 3.2.2: a server accepts absolute-form; its path and query are the target */
START_TEST(test_absolute_form_target_is_its_path)
{
	ck_assert_int_eq(parse("GET http://a/ws?token=x HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/ws"));
	ck_assert(counted_eq(req.r_query, req.r_query_len, "token=x"));
	ck_assert_int_eq(parse("GET HTTPS://a:8443/health HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/health"));
	ck_assert_int_eq(parse("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/"));
	ck_assert_int_eq(parse("GET http://a?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
	ck_assert(counted_eq(req.r_path, req.r_path_len, "/"));
	ck_assert(counted_eq(req.r_query, req.r_query_len, "q=1"));
	ck_assert_int_eq(parse("GET http:///ws HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET ftp://a/ws HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_PARSE_BAD);
}
END_TEST

/* No fragment in a request-target, and nothing a URI cannot hold (RFC 9112 3.2, 3986) */
START_TEST(test_target_fragment_and_non_uri_characters_bad)
{
	static const char *const bad[] = { "/ws#f", "/ws?token=a#f", "/ws?t=a\"b", "/a<b",
	    "/a>b", "/a\\b", "/a^b", "/a`b", "/a{b", "/a|b", "/a}b" };
	char	 r[128];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(r, sizeof(r), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
		ck_assert_msg(parse(r) == HTTP_PARSE_BAD, "%s", bad[i]);
	}
	ck_assert_int_eq(parse("GET /a%20b?x=%2F&y=!$'()*+,;=:@ HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_DONE);
}
END_TEST

/* RFC 3986 2.1: a '%' in the path starts two hex digits; the query is its reader's */
START_TEST(test_path_bad_percent_encoding_bad)
{
	static const char *const bad[] = { "/ws%zz", "/ws%", "/ws%4", "/%g0/ws",
	    "/w%2s", "/ws%41%", "http://a/ws%x1?token=x" };
	static const char *const good[] = { "/ws%41", "/%2f%2F", "/ws?t=%zz",
	    "/ws?x=100%", "/a%00b" };
	char	 r[128];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(r, sizeof(r), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
		ck_assert_msg(parse(r) == HTTP_PARSE_BAD, "%s", bad[i]);
	}
	for (i = 0; i < sizeof(good) / sizeof(*good); i++) {
		snprintf(r, sizeof(r), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", good[i]);
		ck_assert_msg(parse(r) == HTTP_PARSE_DONE, "%s", good[i]);
	}
}
END_TEST

/* RFC 9112 3.2: a Host that is no uri-host [":" port] is a 400; an empty one is allowed */
START_TEST(test_invalid_host_bad)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"), HTTP_PARSE_DONE);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), HTTP_PARSE_DONE);
	{
		/* the grammar, not only the characters: host, then digits after one ':' */
		const char	*good[] = { "[::1]", "[2001:db8::7]:443", "127.0.0.1:8888", "a:",
				    "%41b", "x.y_z~!$&'()*+,;=", ":80" };
		const char	*bad[] = { "x:abc", "x:80:90", "a:b:c", "[", "]", "[::1", "x]",
				    "x[y]", "[]", "%", "%zz", "%4", "x:-1", "::::", "[::1]x", "[::1]:a",
				    "[g::1]", "u@h" };
		char		 r[128];
		size_t		 i;

		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			snprintf(r, sizeof(r), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
			ck_assert_msg(parse(r) == HTTP_PARSE_DONE, "Host: %s refused", good[i]);
		}
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(r, sizeof(r), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
			ck_assert_msg(parse(r) == HTTP_PARSE_BAD, "Host: %s taken", bad[i]);
			/* the same authority in an absolute-form target */
			snprintf(r, sizeof(r), "GET http://%s/ws HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
			if (strchr(bad[i], '/') == NULL && strchr(bad[i], '?') == NULL)
				ck_assert_msg(parse(r) == HTTP_PARSE_BAD, "http://%s/ws taken", bad[i]);
		}
	}
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: xn--d1a.example:80\r\n\r\n"),
	    HTTP_PARSE_DONE);
}
END_TEST

START_TEST(test_asterisk_and_authority_form_bad)
{
	ck_assert_int_eq(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_target_with_tab_or_high_byte_bad)
{
	ck_assert_int_eq(parse("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET /a\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_http2_version_unsupported)
{
	ck_assert_int_eq(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_VERSION);
}
END_TEST

START_TEST(test_http9_version_unsupported)
{
	ck_assert_int_eq(parse("GET / HTTP/9\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_VERSION);
	ck_assert_int_eq(parse("GET / HTTP/0.9\r\n\r\n"), HTTP_PARSE_VERSION);
}
END_TEST

START_TEST(test_http10_parses_with_minor_0)
{
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n"), HTTP_PARSE_DONE);
	ck_assert_int_eq(req.r_minor, 0);
}
END_TEST

START_TEST(test_malformed_version_bad)
{
	ck_assert_int_eq(parse("GET / http/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / HTTP/1.x\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / HTTP/1.\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / HTTP/\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse("GET / FOO/1.1\r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_trailing_space_after_version_bad)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

/* ---- header fields --------------------------------------------------- */

START_TEST(test_header_value_trimmed)
{
	const struct http_header	*h;

	ck_assert_int_eq(parse_with("X-A: \t  two words \t \r\n"),
	    HTTP_PARSE_DONE);
	h = http_header_get(&req, "X-A");
	ck_assert_ptr_nonnull(h);
	ck_assert(counted_eq(h->h_value, h->h_value_len, "two words"));
}
END_TEST

START_TEST(test_header_empty_value_ok)
{
	const struct http_header	*h;

	ck_assert_int_eq(parse_with("X-Empty:   \r\nX-None:\r\n"),
	    HTTP_PARSE_DONE);
	h = http_header_get(&req, "X-Empty");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->h_value_len, 0);
	ck_assert_ptr_nonnull(http_header_get(&req, "X-None"));
}
END_TEST

START_TEST(test_whitespace_before_colon_bad)
{
	ck_assert_int_eq(parse_with("Host : h\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("X-A\t: h\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_obs_fold_bad)
{
	ck_assert_int_eq(parse_with("X-A: one\r\n two\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("X-A: one\r\n\ttwo\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_header_without_colon_bad)
{
	ck_assert_int_eq(parse_with("NoColonHere\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_empty_header_name_bad)
{
	ck_assert_int_eq(parse_with(": value\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_header_name_non_token_bad)
{
	ck_assert_int_eq(parse_with("X(A): v\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("X\xc3\xa9: v\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_control_char_in_value_bad)
{
	ck_assert_int_eq(parse_with("X-A: a\x01" "b\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("X-A: a\x7f\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("X-A: a\x1b[0m\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_nul_in_value_bad)
{
	const char	 s[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";

	ck_assert_int_eq(http_parse_request(s, sizeof(s) - 1, MAX_HEAD, &req,
	    &consumed), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_tab_and_obs_text_in_value_ok)
{
	const struct http_header	*h;

	ck_assert_int_eq(parse_with("X-A: a\tb \xc3\xa9\r\n"), HTTP_PARSE_DONE);
	h = http_header_get(&req, "X-A");
	ck_assert(counted_eq(h->h_value, h->h_value_len, "a\tb \xc3\xa9"));
}
END_TEST

static int
parse_n_headers(int n)
{
	static char	buf[MAX_HEAD];
	size_t		off;
	int		i;

	off = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n"
	    "Host: h\r\n");
	for (i = 1; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
		    "X-%d: %d\r\n", i, i);
	snprintf(buf + off, sizeof(buf) - off, "\r\n");
	return parse(buf);
}

START_TEST(test_max_headers_accepted)
{
	ck_assert_int_eq(parse_n_headers(HTTP_MAX_HEADERS), HTTP_PARSE_DONE);
	ck_assert_int_eq(req.r_nheaders, HTTP_MAX_HEADERS);
}
END_TEST

START_TEST(test_too_many_headers_too_large)
{
	ck_assert_int_eq(parse_n_headers(HTTP_MAX_HEADERS + 1),
	    HTTP_PARSE_TOO_LARGE);
}
END_TEST

/* ---- sizes and incomplete heads -------------------------------------- */

START_TEST(test_head_exactly_max_size_done)
{
	const char	*s = UPGRADE_HEAD;

	ck_assert_int_eq(parse_max(s, strlen(s)), HTTP_PARSE_DONE);
	ck_assert_uint_eq(consumed, strlen(s));
}
END_TEST

START_TEST(test_head_over_max_size_too_large)
{
	const char	*s = UPGRADE_HEAD;

	ck_assert_int_eq(parse_max(s, strlen(s) - 1), HTTP_PARSE_TOO_LARGE);
}
END_TEST

START_TEST(test_incomplete_at_max_size_too_large)
{
	ck_assert_int_eq(parse_max("GET / HTTP/1.1\r\nHost: aaaa", 26),
	    HTTP_PARSE_TOO_LARGE);
	/* not even the request line within the limit: 414 (RFC 9112 3) */
	ck_assert_int_eq(parse_max("GET / HTTP/1.1\r\nHost: aaaa", 10),
	    HTTP_PARSE_URI_TOO_LONG);
	ck_assert_int_eq(parse_max("\r\nGET /aaaaaaaa HTTP/1.1\r\n", 12),
	    HTTP_PARSE_URI_TOO_LONG);
	/* the request line ended: the fields are what is too large */
	ck_assert_int_eq(parse_max("GET / HTTP/1.1\r\nHost: aaaa", 17),
	    HTTP_PARSE_TOO_LARGE);
}
END_TEST

START_TEST(test_incomplete_below_max_size_incomplete)
{
	ck_assert_int_eq(parse_max("GET / HTTP/1.1\r\nHost: aaaa", 27),
	    HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(test_every_prefix_incomplete)
{
	const char	*s = UPGRADE_HEAD;
	size_t		 i, n = strlen(s);

	for (i = 0; i < n; i++)
		ck_assert_int_eq(http_parse_request(s, i, MAX_HEAD, &req,
		    &consumed), HTTP_PARSE_INCOMPLETE);
	ck_assert_int_eq(http_parse_request(s, n, MAX_HEAD, &req, &consumed),
	    HTTP_PARSE_DONE);
}
END_TEST

START_TEST(test_trailing_cr_waits_for_lf)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n\r"),
	    HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(test_empty_buffer_incomplete)
{
	ck_assert_int_eq(http_parse_request("", 0, MAX_HEAD, &req, &consumed),
	    HTTP_PARSE_INCOMPLETE);
}
END_TEST

/* ---- whole-head rules ------------------------------------------------ */

START_TEST(test_header_lookup_case_insensitive)
{
	ck_assert_int_eq(parse(UPGRADE_HEAD), HTTP_PARSE_DONE);
	ck_assert_ptr_nonnull(http_header_get(&req, "sec-websocket-key"));
	ck_assert_ptr_nonnull(http_header_get(&req, "HOST"));
	ck_assert_ptr_null(http_header_get(&req, "Origin"));
	ck_assert_ptr_null(http_header_get(&req, "Hos"));
}
END_TEST

START_TEST(test_duplicate_singletons_bad)
{
	static const char *const names[] = { "Sec-WebSocket-Key",
	    "Sec-WebSocket-Version", "Authorization", "Origin",
	    "Content-Length" };
	char	 lines[256];
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(lines, sizeof(lines), "%s: 0\r\nX: y\r\n%s: 0\r\n",
		    names[i], names[i]);
		ck_assert_msg(parse_with(lines) == HTTP_PARSE_BAD, "%s",
		    names[i]);
	}
}
END_TEST

START_TEST(test_duplicate_host_any_case_bad)
{
	ck_assert_int_eq(parse_with("host: other\r\n"), HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_list_headers_may_repeat)
{
	ck_assert_int_eq(parse_with("Connection: keep-alive\r\n"
	    "Sec-WebSocket-Protocol: a\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Protocol: b\r\nSec-WebSocket-Extensions: x\r\n"
	    "Sec-WebSocket-Extensions: y\r\n"), HTTP_PARSE_DONE);
}
END_TEST

START_TEST(test_http11_without_host_bad)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: y\r\n\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_http10_without_host_ok)
{
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\nX: y\r\n\r\n"),
	    HTTP_PARSE_DONE);
}
END_TEST

START_TEST(test_content_length_zero_ok)
{
	ck_assert_int_eq(parse_with("Content-Length: 0\r\n"), HTTP_PARSE_DONE);
	ck_assert_int_eq(parse_with("Content-Length: 000\r\n"),
	    HTTP_PARSE_DONE);
}
END_TEST

START_TEST(test_content_length_positive_bad)
{
	ck_assert_int_eq(parse_with("Content-Length: 1\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("Content-Length: 0010\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

START_TEST(test_content_length_invalid_bad)
{
	ck_assert_int_eq(parse_with("Content-Length: abc\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("Content-Length: -0\r\n"), HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("Content-Length: 0, 0\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("Content-Length:\r\n"), HTTP_PARSE_BAD);
}
END_TEST

/* With a body allowed: any number of digits, a huge one above every limit. */
START_TEST(test_content_length_long_numerals)
{
	static struct http_request	 r;
	const char			*a = "POST /publish HTTP/1.1\r\nHost: a\r\n"
					    "Content-Length: 0000000000000031\r\n\r\n";
	const char			*b = "POST /publish HTTP/1.1\r\nHost: a\r\n"
					    "Content-Length: 99999999999999999999999\r\n\r\n";
	size_t				 used;

	ck_assert_int_eq(http_parse_head(a, strlen(a), 8192, &r, &used, 1), HTTP_PARSE_DONE);
	ck_assert_int_eq(r.r_content_length, 31);
	ck_assert_int_eq(http_parse_head(b, strlen(b), 8192, &r, &used, 1), HTTP_PARSE_DONE);
	ck_assert(r.r_content_length >= (INT64_C(1) << 62));
}
END_TEST

START_TEST(test_transfer_encoding_bad)
{
	ck_assert_int_eq(parse_with("Transfer-Encoding: chunked\r\n"),
	    HTTP_PARSE_BAD);
	ck_assert_int_eq(parse_with("transfer-encoding: identity\r\n"),
	    HTTP_PARSE_BAD);
}
END_TEST

/* ---- list headers ---------------------------------------------------- */

START_TEST(test_has_token_across_occurrences)
{
	ck_assert_int_eq(parse_with("Connection: keep-alive\r\n"
	    "Connection: close, Upgrade\r\n"), HTTP_PARSE_DONE);
	ck_assert(http_header_has_token(&req, "connection", "upgrade"));
	ck_assert(http_header_has_token(&req, "Connection", "keep-alive"));
	ck_assert(http_header_has_token(&req, "Connection", "close"));
}
END_TEST

START_TEST(test_has_token_whole_items_only)
{
	ck_assert_int_eq(parse_with("Connection: keep-alive, Upgrades, xUpgrade"
	    "\r\nUpgrade: websocket/13\r\n"), HTTP_PARSE_DONE);
	ck_assert(!http_header_has_token(&req, "Connection", "Upgrade"));
	ck_assert(!http_header_has_token(&req, "Connection", "keep"));
	ck_assert(!http_header_has_token(&req, "Upgrade", "websocket"));
	ck_assert(!http_header_has_token(&req, "X-Absent", "x"));
}
END_TEST

START_TEST(test_next_item_trims_and_skips_empty)
{
	static const char *const want[] = { "a", "b c", "d", "e" };
	const char	*item;
	size_t		 state = 0, len, i = 0;

	ck_assert_int_eq(parse_with("X-L: a, ,\t b c ,, d,\r\nX-Other: z\r\n"
	    "x-l: e\r\nX-L:\r\nX-L: ,\r\n"), HTTP_PARSE_DONE);
	while (http_header_next_item(&req, "X-L", &state, &item, &len)) {
		ck_assert_uint_lt(i, 4);
		ck_assert_msg(counted_eq(item, len, want[i]), "item %zu", i);
		i++;
	}
	ck_assert_uint_eq(i, 4);
	ck_assert_int_eq(http_header_next_item(&req, "X-L", &state, &item,
	    &len), 0);
}
END_TEST

START_TEST(test_next_item_quoted_comma_not_a_separator)
{
	const char	*item;
	size_t		 state = 0, len;

	ck_assert_int_eq(parse_with("Sec-WebSocket-Extensions: foo; "
	    "x=\"a,\\\"b\", permessage-deflate\r\n"), HTTP_PARSE_DONE);
	ck_assert(http_header_next_item(&req, "Sec-WebSocket-Extensions",
	    &state, &item, &len));
	ck_assert(counted_eq(item, len, "foo; x=\"a,\\\"b\""));
	ck_assert(http_header_next_item(&req, "Sec-WebSocket-Extensions",
	    &state, &item, &len));
	ck_assert(counted_eq(item, len, "permessage-deflate"));
	ck_assert(!http_header_next_item(&req, "Sec-WebSocket-Extensions",
	    &state, &item, &len));
}
END_TEST

START_TEST(test_next_item_subprotocols)
{
	const char	*item;
	size_t		 state = 0, len;

	ck_assert_int_eq(parse_with("Sec-WebSocket-Protocol: chat, token-abc.d"
	    "\r\n"), HTTP_PARSE_DONE);
	ck_assert(http_header_next_item(&req, "sec-websocket-protocol", &state,
	    &item, &len));
	ck_assert(counted_eq(item, len, "chat"));
	ck_assert(http_header_next_item(&req, "sec-websocket-protocol", &state,
	    &item, &len));
	ck_assert(counted_eq(item, len, "token-abc.d"));
	ck_assert(!http_header_next_item(&req, "sec-websocket-protocol",
	    &state, &item, &len));
}
END_TEST

/* ---- query parameters ------------------------------------------------ */

static long
query(const char *target, const char *name, char *out, size_t outlen)
{
	char	 buf[512];

	snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
	    target);
	ck_assert_int_eq(parse(buf), HTTP_PARSE_DONE);
	return http_query_param(&req, name, out, outlen);
}

START_TEST(test_query_param_between_others)
{
	char	 out[32];

	ck_assert_int_eq(query("/ws?a=1&token=xyz&b", "token", out,
	    sizeof(out)), 3);
	ck_assert_str_eq(out, "xyz");
	ck_assert_int_eq(query("/ws?a=1&token=xyz&b", "a", out, sizeof(out)),
	    1);
	ck_assert_str_eq(out, "1");
}
END_TEST

START_TEST(test_query_param_name_without_equals_is_empty)
{
	char	 out[8] = "junk";

	ck_assert_int_eq(query("/ws?a=1&token=xyz&b", "b", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_query_param_empty_value)
{
	char	 out[8] = "junk";

	ck_assert_int_eq(query("/ws?token=&x=1", "token", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_query_param_absent)
{
	char	 out[8];

	ck_assert_int_eq(query("/ws?a=1&b=2", "token", out, sizeof(out)), -1);
	ck_assert_int_eq(query("/ws", "token", out, sizeof(out)), -1);
	ck_assert_int_eq(query("/ws?", "token", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_query_param_names_compared_exactly)
{
	char	 out[8];

	ck_assert_int_eq(query("/ws?tokens=1&Token=2&xtoken=3&token%3D=4&tok=5",
	    "token", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_query_param_first_occurrence_wins)
{
	char	 out[8];

	ck_assert_int_eq(query("/ws?token=one&token=two", "token", out,
	    sizeof(out)), 3);
	ck_assert_str_eq(out, "one");
}
END_TEST

START_TEST(test_query_param_decodes_percent_and_plus)
{
	char	 out[32];

	ck_assert_int_eq(query("/ws?t=a%20b+c%2Fd%2f%3D%25", "t", out,
	    sizeof(out)), 10);
	ck_assert_str_eq(out, "a b c/d/=%");
}
END_TEST

START_TEST(test_query_param_malformed_escape)
{
	char	 out[32];

	ck_assert_int_eq(query("/ws?t=ab%2", "t", out, sizeof(out)), -2);
	ck_assert_int_eq(query("/ws?t=ab%", "t", out, sizeof(out)), -2);
	ck_assert_int_eq(query("/ws?t=%zz", "t", out, sizeof(out)), -2);
	ck_assert_int_eq(query("/ws?t=%g0&u=1", "t", out, sizeof(out)), -2);
	ck_assert_int_eq(query("/ws?t=%2&u=1", "t", out, sizeof(out)), -2);
}
END_TEST

/* Malformed wins over too long, wherever the bad escape is. */
START_TEST(test_query_param_malformed_beats_too_long)
{
	char	 out[4];

	ck_assert_int_eq(query("/ws?t=abcdef%zz", "t", out, sizeof(out)),
	    HTTP_QUERY_MALFORMED);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(query("/ws?t=%zzabcdef", "t", out, sizeof(out)),
	    HTTP_QUERY_MALFORMED);
	ck_assert_int_eq(query("/ws?t=abcdef%41", "t", out, sizeof(out)),
	    HTTP_QUERY_TOO_LONG);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_query_param_percent_00_refused)
{
	char	 out[32];

	ck_assert_int_eq(query("/ws?t=ab%00cd", "t", out, sizeof(out)), -2);
}
END_TEST

START_TEST(test_query_param_output_too_small)
{
	char	 out[8];

	memset(out, 'X', sizeof(out));
	ck_assert_int_eq(query("/ws?t=abcd", "t", out, 5), 4);
	ck_assert_str_eq(out, "abcd");
	memset(out, 'X', sizeof(out));
	ck_assert_int_eq(query("/ws?t=abcd", "t", out, 4), HTTP_QUERY_TOO_LONG);
	ck_assert_int_eq(out[4], 'X');
	ck_assert_int_eq(query("/ws?t=", "t", out, 0), HTTP_QUERY_TOO_LONG);
	ck_assert_int_eq(query("/ws?t=%41%42", "t", out, 3), 2);
	ck_assert_str_eq(out, "AB");
}
END_TEST

/* ---- token extraction ----------------------------------------------- */

static void
req_reset(const char *query)
{
	memset(&req, 0, sizeof(req));
	req.r_method = "GET";
	req.r_method_len = 3;
	req.r_path = "/ws";
	req.r_path_len = 3;
	req.r_target = "/ws";
	req.r_target_len = 3;
	req.r_minor = 1;
	if (query != NULL) {
		req.r_query = query;
		req.r_query_len = strlen(query);
	}
}

static void
req_header(const char *name, const char *value)
{
	struct http_header	*h = &req.r_headers[req.r_nheaders++];

	h->h_name = name;
	h->h_name_len = strlen(name);
	h->h_value = value;
	h->h_value_len = strlen(value);
}

static void
expect_token(const struct http_token *t, enum http_token_source src, const char *tok)
{
	ck_assert_int_eq(t->t_source, src);
	ck_assert_ptr_null(t->t_error);
	ck_assert_uint_eq(t->t_len, strlen(tok));
	ck_assert_str_eq(t->t_token, tok);
}

static void
expect_protocol(const struct http_token *t, const char *proto)
{
	if (proto == NULL) {
		ck_assert_ptr_null(t->t_protocol);
		return;
	}
	ck_assert_ptr_nonnull(t->t_protocol);
	ck_assert_uint_eq(t->t_protocol_len, strlen(proto));
	ck_assert(memcmp(t->t_protocol, proto, strlen(proto)) == 0);
}

START_TEST(test_extract_none)
{
	struct http_token	 t;

	req_reset("foo=bar");
	req_header("Host", "x");
	req_header("Sec-WebSocket-Protocol", "chat, superchat");
	http_extract_token(&req, &t);
	ck_assert_int_eq(t.t_source, HTTP_TOKEN_NONE);
	ck_assert_uint_eq(t.t_len, 0);
	expect_protocol(&t, NULL);
}
END_TEST

START_TEST(test_extract_query)
{
	struct http_token	 t;

	req_reset("a=1&token=abc.def.ghi&b=2");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_QUERY, "abc.def.ghi");
	expect_protocol(&t, NULL);
}
END_TEST

START_TEST(test_extract_bearer_case_insensitive)
{
	struct http_token	 t;
	const char		*forms[] = { "Bearer abc.def.ghi",
	    "bearer abc.def.ghi", "BEARER   abc.def.ghi" };
	size_t			 i;

	for (i = 0; i < 3; i++) {
		req_reset(NULL);
		req_header("Authorization", forms[i]);
		http_extract_token(&req, &t);
		expect_token(&t, HTTP_TOKEN_HEADER, "abc.def.ghi");
	}
}
END_TEST

START_TEST(test_extract_other_schemes_ignored)
{
	struct http_token	 t;
	const char		*forms[] = { "Basic dXNlcjpwYXNz", "Bearer",
	    "Bearerabc.def", "Token abc" };
	size_t			 i;

	for (i = 0; i < 4; i++) {
		req_reset(NULL);
		req_header("Authorization", forms[i]);
		http_extract_token(&req, &t);
		ck_assert_msg(t.t_source == HTTP_TOKEN_NONE, "%s", forms[i]);
	}
}
END_TEST

START_TEST(test_extract_subprotocol)
{
	struct http_token	 t;

	req_reset(NULL);
	req_header("Sec-WebSocket-Protocol", "chat, token-abc.def.ghi, token-x");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_PROTOCOL, "abc.def.ghi");
	expect_protocol(&t, "token-abc.def.ghi");
}
END_TEST

START_TEST(test_extract_subprotocol_across_headers)
{
	struct http_token	 t;

	req_reset(NULL);
	req_header("Sec-WebSocket-Protocol", "chat");
	req_header("sec-websocket-protocol", "token-second");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_PROTOCOL, "second");
	expect_protocol(&t, "token-second");
}
END_TEST

START_TEST(test_extract_query_beats_header_and_protocol_still_echoed)
{
	struct http_token	 t;

	req_reset("token=fromquery");
	req_header("Authorization", "Bearer fromheader");
	req_header("Sec-WebSocket-Protocol", "token-fromproto");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_QUERY, "fromquery");
	expect_protocol(&t, "token-fromproto");
}
END_TEST

START_TEST(test_extract_header_beats_protocol_still_echoed)
{
	struct http_token	 t;

	req_reset(NULL);
	req_header("Sec-WebSocket-Protocol", "token-fromproto");
	req_header("Authorization", "Bearer fromheader");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_HEADER, "fromheader");
	expect_protocol(&t, "token-fromproto");
}
END_TEST

START_TEST(test_extract_empty_query_token_is_no_token)
{
	struct http_token	 t;

	req_reset("token=");
	req_header("Authorization", "Bearer fromheader");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_HEADER, "fromheader");
}
END_TEST

START_TEST(test_extract_bare_token_prefix_is_echoed_not_used)
{
	struct http_token	 t;

	req_reset(NULL);
	req_header("Sec-WebSocket-Protocol", "token-");
	http_extract_token(&req, &t);
	ck_assert_int_eq(t.t_source, HTTP_TOKEN_NONE);
	expect_protocol(&t, "token-");
}
END_TEST

static char *
long_string(const char *prefix, size_t n)
{
	char	*s;

	ck_assert_ptr_nonnull(s = malloc(strlen(prefix) + n + 1));
	strcpy(s, prefix);
	memset(s + strlen(prefix), 'a', n);
	s[strlen(prefix) + n] = '\0';
	return s;
}

START_TEST(test_extract_too_long_tokens_refused)
{
	struct http_token	 t;
	char			*q, *h, *p;

	q = long_string("token=", RT_TOKEN_MAX + 1);
	h = long_string("Bearer ", RT_TOKEN_MAX + 1);
	p = long_string("token-", RT_TOKEN_MAX + 1);

	req_reset(q);
	req_header("Sec-WebSocket-Protocol", "token-short");
	http_extract_token(&req, &t);
	ck_assert_int_eq(t.t_source, HTTP_TOKEN_QUERY);
	ck_assert_str_eq(t.t_error, "token too long");
	expect_protocol(&t, "token-short");

	req_reset(NULL);
	req_header("Authorization", h);
	http_extract_token(&req, &t);
	ck_assert_int_eq(t.t_source, HTTP_TOKEN_HEADER);
	ck_assert_str_eq(t.t_error, "token too long");

	req_reset(NULL);
	req_header("Sec-WebSocket-Protocol", p);
	http_extract_token(&req, &t);
	ck_assert_int_eq(t.t_source, HTTP_TOKEN_PROTOCOL);
	ck_assert_str_eq(t.t_error, "token too long");
	expect_protocol(&t, p);		/* echoed whole all the same */

	/* exactly at the limit is fine */
	free(h);
	h = long_string("Bearer ", RT_TOKEN_MAX);
	req_reset(NULL);
	req_header("Authorization", h);
	http_extract_token(&req, &t);
	ck_assert_int_eq(t.t_source, HTTP_TOKEN_HEADER);
	ck_assert_ptr_null(t.t_error);
	ck_assert_uint_eq(t.t_len, RT_TOKEN_MAX);
	free(q);
	free(h);
	free(p);
}
END_TEST

/* Bad %-encoding is its own reason, not "too long", even past the limit. */
START_TEST(test_extract_malformed_query_token_refused)
{
	const char		*forms[] = { "token=abc%zz", "token=ab%2",
	    "token=a%00b", "token=%", "a=1&token=x%g1y&b=2" };
	struct http_token	 t;
	char			*q;
	size_t			 i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		req_reset(forms[i]);
		req_header("Authorization", "Bearer fromheader");
		http_extract_token(&req, &t);
		ck_assert_int_eq(t.t_source, HTTP_TOKEN_QUERY);
		ck_assert_msg(t.t_error != NULL, "%s", forms[i]);
		ck_assert_str_eq(t.t_error, "malformed token encoding");
		ck_assert_uint_eq(t.t_len, 0);
	}
	q = long_string("token=", RT_TOKEN_MAX + 4);
	memcpy(q + strlen(q) - 3, "%zz", 3);
	req_reset(q);
	http_extract_token(&req, &t);
	ck_assert_str_eq(t.t_error, "malformed token encoding");
	free(q);
	/* well-formed escapes are fine */
	req_reset("token=a%2Eb.c");
	http_extract_token(&req, &t);
	expect_token(&t, HTTP_TOKEN_QUERY, "a.b.c");
}
END_TEST

/* ---- upgrade checks -------------------------------------------------- */

#define UP_HEAD(method, version, upgrade, connection, wsver, key)	\
	method " /ws HTTP/" version "\r\nHost: h\r\n"			\
	upgrade connection wsver key "\r\n"
#define UP_UPGRADE	"Upgrade: websocket\r\n"
#define UP_CONN		"Connection: Upgrade\r\n"
#define UP_VER		"Sec-WebSocket-Version: 13\r\n"
#define UP_KEY		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

START_TEST(test_upgrade_ok_returns_key)
{
	struct http_upgrade	up;

	ck_assert_int_eq(parse(UPGRADE_HEAD), HTTP_PARSE_DONE);
	ck_assert_int_eq(http_check_upgrade(&req, &up), 0);
	ck_assert(counted_eq(up.u_key, up.u_key_len,
	    "dGhlIHNhbXBsZSBub25jZQ=="));
}
END_TEST

START_TEST(test_upgrade_tokens_case_insensitive_in_lists)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1",
	    "Upgrade: WebSocket\r\n", "Connection: keep-alive, upgrade\r\n",
	    UP_VER, UP_KEY)), 0);
}
END_TEST

START_TEST(test_upgrade_connection_token_in_second_header)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    "Connection: keep-alive\r\nConnection: Upgrade\r\n", UP_VER,
	    UP_KEY)), 0);
}
END_TEST

/* Upgrade is a list field: two lines are one list (RFC 9110 5.3) */
START_TEST(test_upgrade_token_in_second_upgrade_line)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1",
	    "Upgrade: h2c\r\nUpgrade: websocket\r\n", UP_CONN, UP_VER, UP_KEY)), 0);
}
END_TEST

START_TEST(test_upgrade_non_get_405)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("POST", "1.1", UP_UPGRADE,
	    UP_CONN, UP_VER, UP_KEY)), 405);
	ck_assert_int_eq(upgrade_status(UP_HEAD("HEAD", "1.1", UP_UPGRADE,
	    UP_CONN, UP_VER, UP_KEY)), 405);
	ck_assert_int_eq(upgrade_status(UP_HEAD("get", "1.1", UP_UPGRADE,
	    UP_CONN, UP_VER, UP_KEY)), 405);
}
END_TEST

START_TEST(test_upgrade_http10_400)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.0", UP_UPGRADE,
	    UP_CONN, UP_VER, UP_KEY)), 400);
}
END_TEST

START_TEST(test_upgrade_missing_upgrade_header_426)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", "", UP_CONN,
	    UP_VER, UP_KEY)), 426);
}
END_TEST

START_TEST(test_upgrade_wrong_upgrade_protocol_426)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", "Upgrade: h2c\r\n",
	    UP_CONN, UP_VER, UP_KEY)), 426);
}
END_TEST

START_TEST(test_upgrade_connection_without_upgrade_426)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    "Connection: keep-alive\r\n", UP_VER, UP_KEY)), 426);
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE, "",
	    UP_VER, UP_KEY)), 426);
}
END_TEST

START_TEST(test_upgrade_missing_ws_version_426)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, "", UP_KEY)), 426);
}
END_TEST

START_TEST(test_upgrade_other_ws_version_426)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, "Sec-WebSocket-Version: 8\r\n", UP_KEY)), 426);
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, "Sec-WebSocket-Version: 13, 8\r\n", UP_KEY)), 426);
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, "Sec-WebSocket-Version: 013\r\n", UP_KEY)), 426);
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, "Sec-WebSocket-Version: 12\r\n", UP_KEY)), 426);
}
END_TEST

START_TEST(test_upgrade_missing_key_400)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, UP_VER, "")), 400);
}
END_TEST

START_TEST(test_upgrade_invalid_keys_400)
{
	static const char *const keys[] = {
		"",
		"dGhlIHNhbXBsZSBub25jZQ=",	/* 23 chars */
		"dGhlIHNhbXBsZSBub25jZQ",	/* unpadded */
		"dGhlIHNhbXBsZSBub25jZ===",	/* 15 bytes + junk pad */
		"dGhlIHNhbXBsZSBub25jZQ==A",	/* trailing data */
		"dGhlIHNhbXBsZSBub25jZXMx",	/* 18 bytes, no padding */
		"dGhlIHNhbXBsZSBub25j-Q==",	/* URL-safe alphabet */
		"dGhlIHNhbXBs ZSBub25jZQ==",	/* inner space */
		"dGhlIHNhbXBsZSBub25jZQ=x",
		"dGhlIHNhbXBsZSBub25jZQA=",	/* 17 bytes */
	};
	char	 head[512];
	size_t	 i;

	for (i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		snprintf(head, sizeof(head), UP_HEAD("GET", "1.1", UP_UPGRADE,
		    UP_CONN, UP_VER, "Sec-WebSocket-Key: %s\r\n"), keys[i]);
		ck_assert_msg(upgrade_status(head) == 400, "key '%s'", keys[i]);
	}
}
END_TEST

/* RFC 6455 4.1: every offered subprotocol is a token */
START_TEST(test_upgrade_protocol_not_token_bad)
{
	static const char *const bad[] = { "token-a b", "chat, a b", "a/b",
	    "\"quoted\"", "a;b=c", "chat, {x}" };
	static const char *const good[] = { "chat", "token-eyJh.eyJz.c2ln_-",
	    "chat, superchat", "chat,,x", " chat ,\tx" };
	char	 head[512];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(head, sizeof(head), UP_HEAD("GET", "1.1", UP_UPGRADE,
		    UP_CONN, UP_VER, UP_KEY "Sec-WebSocket-Protocol: %s\r\n"), bad[i]);
		ck_assert_msg(upgrade_status(head) == 400, "protocol '%s'", bad[i]);
	}
	for (i = 0; i < sizeof(good) / sizeof(*good); i++) {
		snprintf(head, sizeof(head), UP_HEAD("GET", "1.1", UP_UPGRADE,
		    UP_CONN, UP_VER, UP_KEY "Sec-WebSocket-Protocol: %s\r\n"), good[i]);
		ck_assert_msg(upgrade_status(head) == 0, "protocol '%s'", good[i]);
	}
}
END_TEST

START_TEST(test_upgrade_key_with_plus_slash_ok)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, UP_VER, "Sec-WebSocket-Key: +/+/AAAAzzzz0000999+/w==\r\n")),
	    0);
}
END_TEST

START_TEST(test_method_known)
{
	const char	*known[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
			    "TRACE", "PATCH" };
	const char	*unknown[] = { "FOO", "get", "M-SEARCH", "GETS", "PROPFIND", "BREW" };
	char		 r[128];
	size_t		 i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		snprintf(r, sizeof(r), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", known[i]);
		ck_assert_int_eq(parse(r), HTTP_PARSE_DONE);
		ck_assert_msg(http_method_known(&req), "%s unknown", known[i]);
	}
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		snprintf(r, sizeof(r), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", unknown[i]);
		ck_assert_int_eq(parse(r), HTTP_PARSE_DONE);
		ck_assert_msg(!http_method_known(&req), "%s known", unknown[i]);
	}
}
END_TEST

START_TEST(test_upgrade_order_method_before_version)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("POST", "1.0", "", "", "",
	    "")), 405);
}
END_TEST

/* PROTOCOL.md: a non-upgrade request to /ws is a 426, HTTP/1.0 too;
 * an HTTP/1.0 upgrade is a 400 (RFC 6455 4.1) */
START_TEST(test_upgrade_order_upgrade_before_version)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.0", "", "", "", "")),
	    426);
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.0", UP_UPGRADE, UP_CONN,
	    UP_VER, "")), 400);
}
END_TEST

START_TEST(test_upgrade_order_upgrade_before_key)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", "", UP_CONN,
	    UP_VER, "")), 426);
}
END_TEST

START_TEST(test_upgrade_order_ws_version_before_key)
{
	ck_assert_int_eq(upgrade_status(UP_HEAD("GET", "1.1", UP_UPGRADE,
	    UP_CONN, "Sec-WebSocket-Version: 8\r\n",
	    "Sec-WebSocket-Key: nope\r\n")), 426);
}
END_TEST

/* ---- responses ------------------------------------------------------- */

START_TEST(test_reason_phrases)
{
	static const struct { int code; const char *reason; } t[] = {
		{ 101, "Switching Protocols" }, { 200, "OK" },
		{ 400, "Bad Request" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 426, "Upgrade Required" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(*t); i++)
		ck_assert_str_eq(http_reason(t[i].code), t[i].reason);
	ck_assert_ptr_nonnull(http_reason(799));
}
END_TEST

START_TEST(test_format_response_exact_bytes)
{
	const char	*want = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 15\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "{\"status\":\"ok\"}";
	char		 out[256];
	int		 n;

	n = http_format_response(out, sizeof(out), 200, "application/json",
	    NULL, "{\"status\":\"ok\"}", 15);
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert(memcmp(out, want, (size_t)n) == 0);
}
END_TEST

START_TEST(test_format_response_extra_headers_after_connection)
{
	const char	*want = "HTTP/1.1 426 Upgrade Required\r\n"
	    "Content-Length: 0\r\n"
	    "Connection: Upgrade, close\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "\r\n";
	char		 out[256];
	int		 n;

	n = http_format_response(out, sizeof(out), 426, NULL,
	    "Sec-WebSocket-Version: 13\r\n", NULL, 0);
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert(memcmp(out, want, (size_t)n) == 0);
}
END_TEST

START_TEST(test_format_response_body_with_nul_bytes)
{
	char	 out[256];
	int	 n;

	n = http_format_response(out, sizeof(out), 404, "text/plain", NULL,
	    "a\0b", 3);
	ck_assert_int_gt(n, 3);
	ck_assert(memcmp(out + n - 3, "a\0b", 3) == 0);
	ck_assert_ptr_nonnull(strstr(out, "Content-Length: 3\r\n"));
}
END_TEST

START_TEST(test_format_response_101_has_no_length_or_close)
{
	const char	*want = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
	char		 out[256];
	int		 n;

	n = http_format_response(out, sizeof(out), 101, NULL,
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n", NULL, 0);
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert(memcmp(out, want, (size_t)n) == 0);
}
END_TEST

START_TEST(test_format_response_too_small_never_overflows)
{
	char	 out[256];
	int	 full, n;
	size_t	 len;

	full = http_format_response(out, sizeof(out), 503, "text/plain",
	    "Retry-After: 1\r\n", "busy\n", 5);
	ck_assert_int_gt(full, 0);
	for (len = 0; len < (size_t)full; len++) {
		memset(out, 'Z', sizeof(out));
		n = http_format_response(out, len, 503, "text/plain",
		    "Retry-After: 1\r\n", "busy\n", 5);
		ck_assert_int_eq(n, -1);
		ck_assert_int_eq(out[len], 'Z');
	}
	ck_assert_int_eq(http_format_response(out, (size_t)full, 503,
	    "text/plain", "Retry-After: 1\r\n", "busy\n", 5), full);
}
END_TEST

static Suite *
http_suite(void)
{
	Suite	*s = suite_create("http");
	TCase	*tc;

	tc = tcase_create("request_line");
	tcase_add_test(tc, test_parse_browser_upgrade_fills_request);
	tcase_add_test(tc, test_consumed_stops_at_end_of_head);
	tcase_add_test(tc, test_target_without_query_has_null_query);
	tcase_add_test(tc, test_target_empty_query_is_not_null);
	tcase_add_test(tc, test_target_query_splits_at_first_question_mark);
	tcase_add_test(tc, test_bare_lf_line_endings_accepted);
	tcase_add_test(tc, test_mixed_crlf_and_lf_accepted);
	tcase_add_test(tc, test_one_char_line_does_not_end_head);
	tcase_add_test(tc, test_bare_cr_in_request_line_bad);
	tcase_add_test(tc, test_bare_cr_as_line_break_bad);
	tcase_add_test(tc, test_double_cr_before_lf_bad);
	tcase_add_test(tc, test_empty_lines_before_request_line_ignored);
	tcase_add_test(tc, test_method_must_be_token);
	tcase_add_test(tc, test_other_token_methods_parse);
	tcase_add_test(tc, test_double_space_in_request_line_bad);
	tcase_add_test(tc, test_missing_version_bad);
	tcase_add_test(tc, test_absolute_form_target_is_its_path);
	tcase_add_test(tc, test_path_bad_percent_encoding_bad);
	tcase_add_test(tc, test_target_fragment_and_non_uri_characters_bad);
	tcase_add_test(tc, test_invalid_host_bad);
	tcase_add_test(tc, test_asterisk_and_authority_form_bad);
	tcase_add_test(tc, test_target_with_tab_or_high_byte_bad);
	tcase_add_test(tc, test_http2_version_unsupported);
	tcase_add_test(tc, test_http9_version_unsupported);
	tcase_add_test(tc, test_http10_parses_with_minor_0);
	tcase_add_test(tc, test_malformed_version_bad);
	tcase_add_test(tc, test_trailing_space_after_version_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_header_value_trimmed);
	tcase_add_test(tc, test_header_empty_value_ok);
	tcase_add_test(tc, test_whitespace_before_colon_bad);
	tcase_add_test(tc, test_obs_fold_bad);
	tcase_add_test(tc, test_header_without_colon_bad);
	tcase_add_test(tc, test_empty_header_name_bad);
	tcase_add_test(tc, test_header_name_non_token_bad);
	tcase_add_test(tc, test_control_char_in_value_bad);
	tcase_add_test(tc, test_nul_in_value_bad);
	tcase_add_test(tc, test_tab_and_obs_text_in_value_ok);
	tcase_add_test(tc, test_max_headers_accepted);
	tcase_add_test(tc, test_too_many_headers_too_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_head_exactly_max_size_done);
	tcase_add_test(tc, test_head_over_max_size_too_large);
	tcase_add_test(tc, test_incomplete_at_max_size_too_large);
	tcase_add_test(tc, test_incomplete_below_max_size_incomplete);
	tcase_add_test(tc, test_every_prefix_incomplete);
	tcase_add_test(tc, test_trailing_cr_waits_for_lf);
	tcase_add_test(tc, test_empty_buffer_incomplete);
	suite_add_tcase(s, tc);

	tc = tcase_create("head_rules");
	tcase_add_test(tc, test_header_lookup_case_insensitive);
	tcase_add_test(tc, test_duplicate_singletons_bad);
	tcase_add_test(tc, test_duplicate_host_any_case_bad);
	tcase_add_test(tc, test_list_headers_may_repeat);
	tcase_add_test(tc, test_http11_without_host_bad);
	tcase_add_test(tc, test_http10_without_host_ok);
	tcase_add_test(tc, test_content_length_zero_ok);
	tcase_add_test(tc, test_content_length_positive_bad);
	tcase_add_test(tc, test_content_length_invalid_bad);
	tcase_add_test(tc, test_content_length_long_numerals);
	tcase_add_test(tc, test_transfer_encoding_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("lists");
	tcase_add_test(tc, test_has_token_across_occurrences);
	tcase_add_test(tc, test_has_token_whole_items_only);
	tcase_add_test(tc, test_next_item_trims_and_skips_empty);
	tcase_add_test(tc, test_next_item_quoted_comma_not_a_separator);
	tcase_add_test(tc, test_next_item_subprotocols);
	suite_add_tcase(s, tc);

	tc = tcase_create("query");
	tcase_add_test(tc, test_query_param_between_others);
	tcase_add_test(tc, test_query_param_name_without_equals_is_empty);
	tcase_add_test(tc, test_query_param_empty_value);
	tcase_add_test(tc, test_query_param_absent);
	tcase_add_test(tc, test_query_param_names_compared_exactly);
	tcase_add_test(tc, test_query_param_first_occurrence_wins);
	tcase_add_test(tc, test_query_param_decodes_percent_and_plus);
	tcase_add_test(tc, test_query_param_malformed_escape);
	tcase_add_test(tc, test_query_param_percent_00_refused);
	tcase_add_test(tc, test_query_param_output_too_small);
	tcase_add_test(tc, test_query_param_malformed_beats_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("token");
	tcase_add_test(tc, test_extract_none);
	tcase_add_test(tc, test_extract_query);
	tcase_add_test(tc, test_extract_bearer_case_insensitive);
	tcase_add_test(tc, test_extract_other_schemes_ignored);
	tcase_add_test(tc, test_extract_subprotocol);
	tcase_add_test(tc, test_extract_subprotocol_across_headers);
	tcase_add_test(tc, test_extract_query_beats_header_and_protocol_still_echoed);
	tcase_add_test(tc, test_extract_header_beats_protocol_still_echoed);
	tcase_add_test(tc, test_extract_empty_query_token_is_no_token);
	tcase_add_test(tc, test_extract_bare_token_prefix_is_echoed_not_used);
	tcase_add_test(tc, test_extract_too_long_tokens_refused);
	tcase_add_test(tc, test_extract_malformed_query_token_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("upgrade");
	tcase_add_test(tc, test_upgrade_ok_returns_key);
	tcase_add_test(tc, test_upgrade_tokens_case_insensitive_in_lists);
	tcase_add_test(tc, test_upgrade_connection_token_in_second_header);
	tcase_add_test(tc, test_upgrade_token_in_second_upgrade_line);
	tcase_add_test(tc, test_upgrade_non_get_405);
	tcase_add_test(tc, test_upgrade_http10_400);
	tcase_add_test(tc, test_upgrade_missing_upgrade_header_426);
	tcase_add_test(tc, test_upgrade_wrong_upgrade_protocol_426);
	tcase_add_test(tc, test_upgrade_connection_without_upgrade_426);
	tcase_add_test(tc, test_upgrade_missing_ws_version_426);
	tcase_add_test(tc, test_upgrade_other_ws_version_426);
	tcase_add_test(tc, test_upgrade_missing_key_400);
	tcase_add_test(tc, test_upgrade_invalid_keys_400);
	tcase_add_test(tc, test_upgrade_key_with_plus_slash_ok);
	tcase_add_test(tc, test_upgrade_protocol_not_token_bad);
	tcase_add_test(tc, test_upgrade_order_method_before_version);
	tcase_add_test(tc, test_method_known);
	tcase_add_test(tc, test_upgrade_order_upgrade_before_version);
	tcase_add_test(tc, test_upgrade_order_upgrade_before_key);
	tcase_add_test(tc, test_upgrade_order_ws_version_before_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("response");
	tcase_add_test(tc, test_reason_phrases);
	tcase_add_test(tc, test_format_response_exact_bytes);
	tcase_add_test(tc, test_format_response_extra_headers_after_connection);
	tcase_add_test(tc, test_format_response_body_with_nul_bytes);
	tcase_add_test(tc, test_format_response_101_has_no_length_or_close);
	tcase_add_test(tc, test_format_response_too_small_never_overflows);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(http_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
