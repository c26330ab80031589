#ifndef RT_HTTP_H
#define RT_HTTP_H

/*
 * HTTP/1.1 request head parser and WebSocket upgrade checks (RFC 7230,
 * RFC 6455 4.2.1).  No I/O: the caller hands in the bytes it has; names and
 * values point into that buffer, which must outlive the request struct.
 */
#include <stddef.h>

#define HTTP_MAX_HEADERS	64

struct http_header {
	const char	*h_name;
	size_t		 h_name_len;
	const char	*h_value;	/* leading/trailing whitespace trimmed */
	size_t		 h_value_len;
};

struct http_request {
	const char	*r_method;
	size_t		 r_method_len;
	const char	*r_target;	/* request-target as sent */
	size_t		 r_target_len;
	const char	*r_path;	/* target up to '?' */
	size_t		 r_path_len;
	const char	*r_query;	/* after '?', NULL if none */
	size_t		 r_query_len;
	int		 r_minor;	/* HTTP/1.x */
	int		 r_nheaders;
	struct http_header r_headers[HTTP_MAX_HEADERS];
};

enum http_parse_result {
	HTTP_PARSE_INCOMPLETE	= 0,	/* no end of head yet, within limits */
	HTTP_PARSE_DONE		= 1,
	HTTP_PARSE_BAD		= -1,	/* 400: malformed */
	HTTP_PARSE_TOO_LARGE	= -2,	/* 431: head or header count over limit */
	HTTP_PARSE_VERSION	= -3,	/* 505: not HTTP/1.x */
};

/*
 * Parse a request head from buf.  max_size bounds the head (request line,
 * headers and the final CRLF); a buffer that reaches it without a complete
 * head is HTTP_PARSE_TOO_LARGE.  On DONE *consumed is the head's length.
 * Obsolete line folding, bare CR, control characters, a missing Host on
 * HTTP/1.1, and duplicates of singleton headers (Host, Sec-WebSocket-Key,
 * Sec-WebSocket-Version, Upgrade, Authorization, Origin, Content-Length)
 * are HTTP_PARSE_BAD.  A request with a body (Content-Length > 0 or any
 * Transfer-Encoding) is HTTP_PARSE_BAD too: no endpoint takes one.
 */
int	http_parse_request(const char *buf, size_t len, size_t max_size,
	    struct http_request *req, size_t *consumed);

/* First header named name (case-insensitive), or NULL. */
const struct http_header *http_header_get(const struct http_request *req, const char *name);

/*
 * 1 if any header named name holds token in its comma-separated list
 * (case-insensitive, whitespace around items ignored).
 */
int	http_header_has_token(const struct http_request *req, const char *name,
	    const char *token);

/*
 * Iterate the comma-separated items of every header named name:
 * *state starts at 0; returns 1 with item/len set, 0 at the end.
 * Items are trimmed; empty items are skipped.
 */
int	http_header_next_item(const struct http_request *req, const char *name,
	    size_t *state, const char **item, size_t *len);

/*
 * Query parameter value, percent- and '+'-decoded, into out (NUL-terminated).
 * Returns the decoded length, -1 if absent, -2 if malformed or too long.
 */
long	http_query_param(const struct http_request *req, const char *name,
	    char *out, size_t outlen);

/* Result of checking a request that asked for the WebSocket path. */
struct http_upgrade {
	const char	*u_key;		/* Sec-WebSocket-Key (24 chars) */
	size_t		 u_key_len;
};

/*
 * RFC 6455 4.2.1 checks for a request to the WebSocket endpoint.  Returns 0
 * when the upgrade may proceed, else the HTTP status to answer:
 * 405 method is not GET, 426 not an upgrade request or
 * Sec-WebSocket-Version != 13 (the response must then carry
 * "Sec-WebSocket-Version: 13"), 400 a missing/invalid Sec-WebSocket-Key
 * (must be base64 of exactly 16 bytes) or HTTP/1.0.
 */
int	http_check_upgrade(const struct http_request *req, struct http_upgrade *up);

/* Reason phrase for a status code ("Bad Request"). */
const char *http_reason(int status);

/*
 * Format a complete response with Content-Length and "Connection: close"
 * (keep_alive 0) into out.  extra_headers are "Name: value\r\n" lines or
 * NULL; body may be NULL.  Returns the length, or -1 if out is too small.
 */
int	http_format_response(char *out, size_t outlen, int status,
	    const char *content_type, const char *extra_headers,
	    const char *body, size_t body_len);

#endif
