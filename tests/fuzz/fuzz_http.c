/*
 * libFuzzer target for src/http.c.  Parses the input under several size
 * limits, checks that growing a buffer byte by byte never changes a
 * verdict once reached, and runs every accessor over a parsed head,
 * abort()ing on any broken invariant so the fuzzer reports it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define PREFIX_MAX	512	/* quadratic: only short inputs */
#define CANARY		0xa5

static const char *const names[] = {
	"Host", "Connection", "Upgrade", "Sec-WebSocket-Protocol",
	"Sec-WebSocket-Extensions", "Sec-WebSocket-Key", "Authorization",
	"X-Absent",
};

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
inside(const char *p, size_t n, const char *base, size_t len)
{
	uintptr_t	up = (uintptr_t)p, ub = (uintptr_t)base;

	return p != NULL && up >= ub && n <= len && up - ub <= len - n;
}

static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void
check_items(const struct http_request *req, const char *name,
    const char *buf, size_t head)
{
	const char	*item;
	size_t		 state = 0, len, rounds = 0;

	while (http_header_next_item(req, name, &state, &item, &len)) {
		check(++rounds <= head);
		check(len > 0 && inside(item, len, buf, head));
		check(!is_ows(item[0]) && !is_ows(item[len - 1]));
		check(memchr(item, '\n', len) == NULL);
		if (memchr(item, ',', len) == NULL &&
		    memchr(item, '"', len) == NULL) {
			char	tok[256];

			if (len < sizeof(tok)) {
				memcpy(tok, item, len);
				tok[len] = '\0';
				check(strlen(tok) != len ||
				    http_header_has_token(req, name, tok));
			}
		}
	}
	/* The end is sticky. */
	check(!http_header_next_item(req, name, &state, &item, &len));
}

static void
check_query(const struct http_request *req, const char *name)
{
	static const size_t	 lens[] = { 0, 1, 4, 64, 300 };
	unsigned char		 out[320];
	size_t			 i, j;
	long			 r;

	for (i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
		memset(out, CANARY, sizeof(out));
		r = http_query_param(req, name, (char *)out, lens[i]);
		check(r >= HTTP_QUERY_TOO_LONG && (r < 0 || (size_t)r < lens[i]));
		if (r == HTTP_QUERY_ABSENT)
			check(req->r_query == NULL || lens[i] == 0 ||
			    out[0] == CANARY);
		if (r >= 0) {
			check(out[r] == '\0');
			check(memchr(out, '\0', (size_t)r) == NULL);
		}
		for (j = lens[i]; j < sizeof(out); j++)
			check(out[j] == CANARY);
	}
}

static void
check_query_names(const struct http_request *req)
{
	char		 name[64];
	const char	*q = req->r_query, *e;
	size_t		 n;
	long		 r;

	check_query(req, "token");
	check_query(req, "a");
	if (q == NULL)
		return;
	/* The first key present must be found. */
	for (e = q; (size_t)(e - q) < req->r_query_len && *e != '=' &&
	    *e != '&'; e++)
		;
	n = (size_t)(e - q);
	if (n < sizeof(name) && memchr(q, '\0', n) == NULL) {
		memcpy(name, q, n);
		name[n] = '\0';
		r = http_query_param(req, name, NULL, 0);
		check(r == HTTP_QUERY_MALFORMED || r == HTTP_QUERY_TOO_LONG);
		check_query(req, name);
	}
}

static void
check_upgrade(const struct http_request *req, const char *buf, size_t head)
{
	struct http_upgrade	up;
	int			rv;

	rv = http_check_upgrade(req, &up);
	check(rv == 0 || rv == 400 || rv == 405 || rv == 426);
	if (rv != 0) {
		check(up.u_key == NULL && up.u_key_len == 0);
		return;
	}
	check(up.u_key_len == 24 && inside(up.u_key, 24, buf, head));
	check(req->r_method_len == 3 && memcmp(req->r_method, "GET", 3) == 0);
	check(req->r_minor >= 1);
}

static void
check_headers(const struct http_request *req, const char *buf, size_t head)
{
	const struct http_header	*h, *g;
	size_t				 j;
	int				 i;

	check(req->r_nheaders >= 0 && req->r_nheaders <= HTTP_MAX_HEADERS);
	for (i = 0; i < req->r_nheaders; i++) {
		h = &req->r_headers[i];
		check(h->h_name_len > 0 &&
		    inside(h->h_name, h->h_name_len, buf, head));
		check(h->h_name[h->h_name_len] == ':');
		check(inside(h->h_value, h->h_value_len, buf, head));
		if (h->h_value_len > 0)
			check(!is_ows(h->h_value[0]) &&
			    !is_ows(h->h_value[h->h_value_len - 1]));
		for (j = 0; j < h->h_value_len; j++)
			check((unsigned char)h->h_value[j] >= 0x20 ||
			    h->h_value[j] == '\t');
		if (memchr(h->h_name, '\0', h->h_name_len) == NULL &&
		    h->h_name_len < 128) {
			char	name[128];

			memcpy(name, h->h_name, h->h_name_len);
			name[h->h_name_len] = '\0';
			g = http_header_get(req, name);
			check(g != NULL && g <= h);
			check_items(req, name, buf, head);
		}
	}
}

/* Token extraction: bounded, NUL-terminated, the echo inside the request. */
static void
check_token(const struct http_request *req, const char *buf, size_t head)
{
	static struct http_token tok;

	memset(&tok, 0x5a, sizeof(tok));
	http_extract_token(req, &tok);
	check(tok.t_source >= HTTP_TOKEN_NONE && tok.t_source <= HTTP_TOKEN_PROTOCOL);
	check(tok.t_len <= RT_TOKEN_MAX && tok.t_token[tok.t_len] == '\0');
	check(tok.t_source != HTTP_TOKEN_NONE || tok.t_len == 0);
	/* a refused token is refused whole, and never anonymous */
	check(tok.t_error == NULL || (tok.t_len == 0 && tok.t_source != HTTP_TOKEN_NONE));
	if (tok.t_protocol != NULL) {
		check(inside(tok.t_protocol, tok.t_protocol_len, buf, head));
		check(tok.t_protocol_len >= 6 && memcmp(tok.t_protocol, "token-", 6) == 0);
	}
}

static void
check_done(const struct http_request *req, const char *buf, size_t len,
    size_t max_size, size_t consumed)
{
	size_t	 i;

	check(consumed > 0 && consumed <= len && consumed <= max_size);
	check(buf[consumed - 1] == '\n');
	check(req->r_method_len > 0 &&
	    inside(req->r_method, req->r_method_len, buf, consumed));
	check(req->r_target_len == 0 ||
	    inside(req->r_target, req->r_target_len, buf, consumed));
	check(req->r_path_len > 0 && req->r_path[0] == '/');
	if (req->r_path != req->r_target) {
		/* absolute-form without a path ("http://a", "http://a?q"): "/" */
		check(req->r_path_len == 1);
		check(req->r_target_len == 0 || req->r_target[0] == '?');
		check(req->r_query == NULL ? req->r_target_len == 0 :
		    req->r_query == req->r_target + 1 &&
		    req->r_query_len + 1 == req->r_target_len);
	} else if (req->r_query != NULL) {
		check(req->r_path_len <= req->r_target_len);
		check(req->r_query == req->r_path + req->r_path_len + 1);
		check(req->r_path_len + 1 + req->r_query_len ==
		    req->r_target_len);
	} else
		check(req->r_path_len == req->r_target_len);
	for (i = 0; i < req->r_target_len; i++)
		check(req->r_target[i] != '#' && req->r_target[i] != ' ');
	check(req->r_minor >= 0 && req->r_minor <= 9);
	check_headers(req, buf, consumed);
	for (i = 0; i < sizeof(names) / sizeof(*names); i++)
		check_items(req, names[i], buf, consumed);
	check_upgrade(req, buf, consumed);
	check_query_names(req);
	check_token(req, buf, consumed);
}

static int
parse(const char *buf, size_t len, size_t max_size,
    struct http_request *req, size_t *consumed)
{
	int	 rv;

	*consumed = 12345;
	rv = http_parse_request(buf, len, max_size, req, consumed);
	check(rv >= HTTP_PARSE_URI_TOO_LONG && rv <= HTTP_PARSE_DONE);
	check(rv == HTTP_PARSE_DONE || *consumed == 0);
	if (rv == HTTP_PARSE_INCOMPLETE)
		check(len < max_size);
	return rv;
}

/* A verdict, once reached on a prefix, must hold for every longer one. */
static void
check_prefixes(const char *buf, size_t len, size_t max_size, int full,
    size_t full_consumed)
{
	static struct http_request	 req;
	size_t				 k, consumed;
	int				 rv, settled = 0;

	for (k = 0; k <= len; k++) {
		rv = parse(buf, k, max_size, &req, &consumed);
		if (rv == HTTP_PARSE_INCOMPLETE) {
			check(!settled);
			continue;
		}
		settled = 1;
		check(rv == full);
		if (rv == HTTP_PARSE_DONE)
			check(consumed == full_consumed && k >= consumed);
	}
}

static void
check_format(const uint8_t *data, size_t size)
{
	static const size_t	 lens[] = { 0, 10, 64, 200, 1000 };
	unsigned char		 out[1100];
	size_t			 i, j, blen;
	int			 n, status;

	if (size < 2)
		return;
	status = 100 + (data[0] | data[1] << 8) % 900;
	blen = size - 2 < 300 ? size - 2 : 300;
	for (i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
		memset(out, CANARY, sizeof(out));
		n = http_format_response((char *)out, lens[i], status,
		    "text/plain", "X-A: b\r\n", (const char *)data + 2, blen);
		check(n == -1 || (n > 0 && (size_t)n <= lens[i]));
		for (j = lens[i]; j < sizeof(out); j++)
			check(out[j] == CANARY);
	}
	check(http_reason(status) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request	 req;
	const char			*buf = (const char *)data;
	size_t				 maxes[] = { 8192, 64, 16, 1, 0, size };
	size_t				 i, consumed, c2;
	int				 rv;

	for (i = 0; i < sizeof(maxes) / sizeof(*maxes); i++) {
		rv = parse(buf, size, maxes[i], &req, &consumed);
		if (rv == HTTP_PARSE_DONE) {
			check_done(&req, buf, size, maxes[i], consumed);
			/* The head alone parses the same; one byte less of
			 * room is too little. */
			check(parse(buf, consumed, consumed, &req, &c2) ==
			    HTTP_PARSE_DONE && c2 == consumed);
			check(parse(buf, size, consumed - 1, &req, &c2) ==
			    HTTP_PARSE_TOO_LARGE);
		}
		if (size <= PREFIX_MAX)
			check_prefixes(buf, size, maxes[i], rv, consumed);
	}
	check_format(data, size);
	return 0;
}
