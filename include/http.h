#ifndef RT_HTTP_H
#define RT_HTTP_H

/*
 * HTTP/1.1 request head parser and WebSocket upgrade checks (RFC 7230,
 * RFC 6455 4.2.1).  No I/O: the caller hands in the bytes it has; names and
 * values point into that buffer, which must outlive the request struct.
 */
#include <stddef.h>
#include <stdint.h>

#include "realtimed.h"

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
	int64_t		 r_content_length;	/* 0: none */
	int		 r_chunked;	/* a Transfer-Encoding */
	int		 r_nheaders;
	struct http_header r_headers[HTTP_MAX_HEADERS];
};

enum http_parse_result {
	HTTP_PARSE_INCOMPLETE	= 0,	/* no end of head yet, within limits */
	HTTP_PARSE_DONE		= 1,
	HTTP_PARSE_BAD		= -1,	/* 400: malformed */
	HTTP_PARSE_TOO_LARGE	= -2,	/* 431: head or header count over limit */
	HTTP_PARSE_VERSION	= -3,	/* 505: not HTTP/1.x */
	HTTP_PARSE_URI_TOO_LONG	= -4,	/* 414: no end of the request line within the limit */
};

/*
 * Parse a request head from buf.  max_size bounds the head (request line,
 * headers and the final CRLF); a buffer that reaches it without a complete
 * head is HTTP_PARSE_TOO_LARGE, or HTTP_PARSE_URI_TOO_LONG when not even
 * the request line ends within it.  On DONE *consumed is the head's length.
 * Obsolete line folding, bare CR, control characters, a missing Host on
 * HTTP/1.1, and duplicates of singleton headers (Host, Sec-WebSocket-Key,
 * Sec-WebSocket-Version, Upgrade, Authorization, Origin, Content-Length,
 * Content-Type)
 * are HTTP_PARSE_BAD.  A request with a body (Content-Length > 0 or any
 * Transfer-Encoding) is HTTP_PARSE_BAD too: no endpoint takes one.
 */
int	http_parse_request(const char *buf, size_t len, size_t max_size,
	    struct http_request *req, size_t *consumed);
/*
 * The same, but with body 1 a request may announce a body: Content-Length
 * (at most 15 digits) in r_content_length, any Transfer-Encoding in
 * r_chunked (both at once stay HTTP_PARSE_BAD).  The body is the caller's.
 */
int	http_parse_head(const char *buf, size_t len, size_t max_size,
	    struct http_request *req, size_t *consumed, int body);

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

#define HTTP_QUERY_ABSENT	(-1)
#define HTTP_QUERY_MALFORMED	(-2)	/* bad %-encoding, or %00 */
#define HTTP_QUERY_TOO_LONG	(-3)	/* the decoded value does not fit out */

/*
 * Query parameter value, percent- and '+'-decoded, into out (NUL-terminated).
 * Returns the decoded length, or one of HTTP_QUERY_*; a value both
 * malformed and too long is HTTP_QUERY_MALFORMED.
 */
long	http_query_param(const struct http_request *req, const char *name,
	    char *out, size_t outlen);

/* Where a token came from. */
enum http_token_source {
	HTTP_TOKEN_NONE = 0,
	HTTP_TOKEN_QUERY,	/* ?token= */
	HTTP_TOKEN_HEADER,	/* Authorization: Bearer */
	HTTP_TOKEN_PROTOCOL,	/* Sec-WebSocket-Protocol: token-JWT */
};

struct http_token {
	enum http_token_source t_source;
	char		 t_token[RT_TOKEN_MAX + 1];
	size_t		 t_len;
	/*
	 * A token was sent but cannot be used ("token too long", or for
	 * ?token= "malformed token encoding"): refuse it as invalid with this
	 * reason, do not go anonymous.  NULL otherwise.
	 */
	const char	*t_error;
	/*
	 * The subprotocol to echo in Sec-WebSocket-Protocol: the offered
	 * "token-<jwt>" item exactly as sent, whenever one was offered (even
	 * if a query/header token won, and even when it is too long), so that
	 * browsers accept the handshake.  NULL if none.
	 */
	const char	*t_protocol;	/* points into the request buffer */
	size_t		 t_protocol_len;
};

/*
 * Find the token in a parsed request: query parameter "token" first, then
 * "Authorization: Bearer", then the first "token-" subprotocol.
 */
void	http_extract_token(const struct http_request *req, struct http_token *tok);

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

/*
 * Is req's method one of HTTP's (RFC 9110 9, and PATCH)?  Case-sensitive.
 * Another is answered 501 (RFC 9110 9.1); one of these that an endpoint
 * does not take, 405 with Allow.
 */
int	http_method_known(const struct http_request *req);

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
/* The same; keep_alive 1 leaves "Connection: close" out. */
int	http_format_response_ka(char *out, size_t outlen, int status,
	    const char *content_type, const char *extra_headers,
	    const char *body, size_t body_len, int keep_alive);

/*
 * "Authorization: Bearer" 1*(SP / HTAB) credentials (RFC 9110 11.4):
 * 1 and *cred, *len (into req's buffer), or 0 for none or another scheme.
 */
int	http_bearer(const struct http_request *req, const char **cred, size_t *len);

#endif
