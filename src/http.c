/*
 * HTTP/1.1 request heads (RFC 7230 3.1-3.3), the server side of the
 * WebSocket opening handshake (RFC 6455 4.2.1), and where in it the client
 * put its JWT.
 *
 * Nothing here allocates or does I/O: the parser only looks at the bytes
 * the caller already has, and every name and value it returns points into
 * them.  It is stricter than RFC 7230 requires wherever a lenient reading
 * could let two parsers disagree about where a header starts or ends
 * (bare CR, obs-fold, whitespace before the colon, repeated singletons).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "util.h"

/* A next_item state keeps the header index in its low bits. */
#define HTTP_ITEM_SHIFT	7
#define HTTP_ITEM_MASK	((size_t)(1 << HTTP_ITEM_SHIFT) - 1)

_Static_assert(HTTP_MAX_HEADERS < (1 << HTTP_ITEM_SHIFT),
    "header index must fit the next_item state");

/* Headers whose repetition would let two readers pick different values. */
static const char *const http_singletons[] = {
	"Host", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
	"Authorization", "Origin", "Content-Length", "Content-Type",
};

static int	http_is_tchar(unsigned char);
static int	http_is_ows(char);
static int	http_hexval(char);
static int	http_host_valid(const char *, size_t);
static size_t	http_head_end(const char *, size_t);
static size_t	http_next_line(const char *, size_t, size_t, const char **,
		    size_t *);
static int	http_parse_reqline(struct http_request *, const char *, size_t);
static void	http_set_target(struct http_request *, const char *, size_t);
static int	http_path_pct_valid(const char *, size_t);
static int	http_parse_version(struct http_request *, const char *, size_t);
static int	http_parse_field(struct http_request *, const char *, size_t);
static int	http_check_fields(struct http_request *, int);
static int	http_header_count(const struct http_request *, const char *);
static size_t	http_item(const char *, size_t, size_t, const char **,
		    size_t *);
static long	http_pct_decode(const char *, size_t, char *, size_t);
static int	http_key_valid(const char *, size_t);
static int	http_protocols_valid(const struct http_request *);
static int	http_put(char *, size_t, size_t *, const char *, size_t);
static int	http_puts(char *, size_t, size_t *, const char *);

/* RFC 7230 3.2.6 tchar */
static int
http_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
http_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int
http_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Offset just past the empty line that ends the head, or 0 if there is
 * none yet.  Only LF ends a line (bare LF is accepted, as nginx does); a CR
 * anywhere but right before that LF is left in the line for the field
 * checks to reject, so a bare CR can never act as a line break.  An empty
 * first line ends the head too and then fails as a request line.
 */
static size_t
http_head_end(const char *buf, size_t len)
{
	const char	*lf;
	size_t		 start = 0, n;

	while (start < len &&
	    (lf = memchr(buf + start, '\n', len - start)) != NULL) {
		n = (size_t)(lf - (buf + start));
		if (n == 0 || (n == 1 && buf[start] == '\r'))
			return start + n + 1;
		start += n + 1;
	}
	return 0;
}

/* Line at pos (which ends before end) without its LF or CRLF. */
static size_t
http_next_line(const char *buf, size_t pos, size_t end, const char **line,
    size_t *n)
{
	const char	*lf;

	lf = memchr(buf + pos, '\n', end - pos);
	*line = buf + pos;
	*n = (size_t)(lf - *line);
	if (*n > 0 && (*line)[*n - 1] == '\r')
		(*n)--;
	return (size_t)(lf - buf) + 1;
}

int
http_parse_request(const char *buf, size_t len, size_t max_size,
    struct http_request *req, size_t *consumed)
{
	return http_parse_head(buf, len, max_size, req, consumed, 0);
}

int
http_parse_head(const char *buf, size_t len, size_t max_size,
    struct http_request *req, size_t *consumed, int body)
{
	const char	*line;
	size_t		 end, pos, n, skip;
	int		 rv;

	memset(req, 0, sizeof(*req));
	*consumed = 0;
	if (len > max_size)
		len = max_size;
	/*
	 * Empty lines before the request line are ignored (RFC 9112 2.2: a
	 * client may send a CRLF after a POST body); within max_size.
	 */
	for (pos = 0; pos < len && (buf[pos] == '\n' ||
	    (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n')); )
		pos += buf[pos] == '\n' ? 1 : 2;
	end = pos < len ? http_head_end(buf + pos, len - pos) : 0;
	if (end == 0 && len < max_size)
		return HTTP_PARSE_INCOMPLETE;
	if (end == 0)	/* RFC 9112 3: a target too long to parse is a 414 */
		return pos < len && memchr(buf + pos, '\n', len - pos) == NULL ?
		    HTTP_PARSE_URI_TOO_LONG : HTTP_PARSE_TOO_LARGE;
	buf += pos;
	skip = pos;

	pos = http_next_line(buf, 0, end, &line, &n);
	if ((rv = http_parse_reqline(req, line, n)) != HTTP_PARSE_DONE)
		return rv;
	while (pos < end) {
		pos = http_next_line(buf, pos, end, &line, &n);
		if (n == 0)
			break;
		if ((rv = http_parse_field(req, line, n)) != HTTP_PARSE_DONE)
			return rv;
	}
	if ((rv = http_check_fields(req, body)) != HTTP_PARSE_DONE)
		return rv;
	*consumed = skip + end;
	return HTTP_PARSE_DONE;
}

/*
 * A character a URI may hold (RFC 3986 2: unreserved, reserved, "%"),
 * but no fragment: a request-target has none (RFC 9112 3.2).
 */
static int
http_is_uric(unsigned char c)
{
	switch (c) {
	case '"': case '#': case '<': case '>': case '\\': case '^': case '`': case '{':
	case '|': case '}':
		return 0;
	default:
		return c > 0x20 && c < 0x7f;
	}
}

/*
 * An absolute-form target ("http://host/path?q", which RFC 9112 3.2.2
 * has a server accept) past its scheme and authority: where its path or
 * query begins, or its end.  NULL when t is no http or https URI.
 */
static const char *
http_absolute_rest(const char *t, size_t n)
{
	const char	*auth, *rest;

	if (n > 7 && strncasecmp(t, "http://", 7) == 0)
		auth = t + 7;
	else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
		auth = t + 8;
	else
		return NULL;
	for (rest = auth; rest < t + n && *rest != '/' && *rest != '?'; rest++)
		;
	/* NULL: no authority, or one that is no host[:port] (userinfo included) */
	return rest == auth || !http_host_valid(auth, (size_t)(rest - auth)) ? NULL : rest;
}

/*
 * method SP request-target SP HTTP-version, single spaces only.
 * Origin-form targets, and absolute-form ones for http or https (taken as
 * their origin-form part); no CONNECT (authority-form) or OPTIONS *
 * (asterisk-form).
 */
static int
http_parse_reqline(struct http_request *req, const char *p, size_t n)
{
	const char	*t, *rest;
	size_t		 i, start, tlen;

	for (i = 0; i < n && http_is_tchar((unsigned char)p[i]); i++)
		;
	if (i == 0 || i == n || p[i] != ' ')
		return HTTP_PARSE_BAD;
	req->r_method = p;
	req->r_method_len = i;

	start = ++i;
	while (i < n && http_is_uric((unsigned char)p[i]))
		i++;
	if (i == start || i == n || p[i] != ' ')
		return HTTP_PARSE_BAD;
	t = p + start;
	tlen = i - start;
	if (t[0] != '/') {
		if ((rest = http_absolute_rest(t, tlen)) == NULL)
			return HTTP_PARSE_BAD;
		tlen -= (size_t)(rest - t);
		t = rest;
	}
	http_set_target(req, t, tlen);
	if (tlen == 0 || t[0] == '?') {
		req->r_path = "/";	/* "http://host" or "http://host?q" */
		req->r_path_len = 1;
	}
	if (!http_path_pct_valid(req->r_path, req->r_path_len))
		return HTTP_PARSE_BAD;
	return http_parse_version(req, p + i + 1, n - i - 1);
}

/*
 * Every '%' of a path starts a pct-encoded octet (RFC 3986 2.1), as
 * nginx holds too: "/ws%zz" is a bad request, not an unknown path.  The
 * query is judged by whoever reads it (?token= by http_pct_decode()).
 */
static int
http_path_pct_valid(const char *p, size_t n)
{
	const char	*q;

	while ((q = memchr(p, '%', n)) != NULL) {
		n -= (size_t)(q - p);
		if (n < 3 || http_hexval(q[1]) < 0 || http_hexval(q[2]) < 0)
			return 0;
		p = q + 3;
		n -= 3;
	}
	return 1;
}

static void
http_set_target(struct http_request *req, const char *t, size_t n)
{
	const char	*q;

	req->r_target = t;
	req->r_target_len = n;
	req->r_path = t;
	if ((q = memchr(t, '?', n)) == NULL) {
		req->r_path_len = n;
		return;
	}
	req->r_path_len = (size_t)(q - t);
	req->r_query = q + 1;
	req->r_query_len = n - req->r_path_len - 1;
}

/*
 * "HTTP/" 1*DIGIT [ "." 1*DIGIT ] is a version; anything else is garbage
 * (400).  A version other than HTTP/1.x gets 505 so the client learns why.
 */
static int
http_parse_version(struct http_request *req, const char *p, size_t n)
{
	size_t	 i, dot = 0;

	if (n < 6 || memcmp(p, "HTTP/", 5) != 0)
		return HTTP_PARSE_BAD;
	for (i = 5; i < n; i++) {
		if (p[i] == '.' && dot == 0 && i > 5 && i + 1 < n)
			dot = i;
		else if (p[i] < '0' || p[i] > '9')
			return HTTP_PARSE_BAD;
	}
	if (n != 8 || dot != 6 || p[5] != '1')
		return HTTP_PARSE_VERSION;
	req->r_minor = p[7] - '0';
	return HTTP_PARSE_DONE;
}

/*
 * name ":" OWS value OWS.  A leading SP/HTAB (obs-fold) or whitespace
 * before the colon fails the token scan: RFC 7230 3.2.4 lets a server
 * reject both, and both have been used for request smuggling.
 */
static int
http_parse_field(struct http_request *req, const char *p, size_t n)
{
	struct http_header	*h;
	unsigned char		 c;
	size_t			 i, name_len, vs, ve;

	for (i = 0; i < n && http_is_tchar((unsigned char)p[i]); i++)
		;
	if (i == 0 || i == n || p[i] != ':')
		return HTTP_PARSE_BAD;
	name_len = i;
	for (vs = i + 1; vs < n && http_is_ows(p[vs]); vs++)
		;
	for (ve = n; ve > vs && http_is_ows(p[ve - 1]); ve--)
		;
	for (i = vs; i < ve; i++) {
		c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_PARSE_BAD;
	}
	if (req->r_nheaders >= HTTP_MAX_HEADERS)
		return HTTP_PARSE_TOO_LARGE;
	h = &req->r_headers[req->r_nheaders++];
	h->h_name = p;
	h->h_name_len = name_len;
	h->h_value = p + vs;
	h->h_value_len = ve - vs;
	return HTTP_PARSE_DONE;
}

/* Content-Length: 1-15 digits (a body this parser's callers may take). */
static int
http_content_length(const struct http_header *h, int64_t *out)
{
	size_t	 i;

	if (h->h_value_len == 0)
		return -1;
	*out = 0;
	for (i = 0; i < h->h_value_len; i++) {
		if (h->h_value[i] < '0' || h->h_value[i] > '9')
			return -1;
		/* any number of digits (leading zeros too); past 2^62 it only
		 * needs to be larger than every limit: it saturates there */
		if (*out < (INT64_C(1) << 62) / 10)
			*out = *out * 10 + (h->h_value[i] - '0');
		else
			*out = INT64_C(1) << 62;
	}
	return 0;
}

/* A reg-name character (RFC 3986 3.2.2): unreserved or sub-delims. */
static int
http_is_regname(int c)
{
	switch (c) {
	case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'':
	case '(': case ')': case '*': case '+': case ',': case ';': case '=':
		return 1;
	default:
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
	}
}

/*
 * uri-host [ ":" port ] (RFC 3986 3.2.2, RFC 9110 7.2): an IPv6 literal in
 * brackets (hex digits, ':' and '.'), or a reg-name of unreserved,
 * sub-delims and %HH (an IPv4 address is one), then a port of digits.
 * Empty is allowed (RFC 9112 3.2); "x:abc", "a:b:c", "[::1" or "%zz" are not.
 */
static int
http_host_valid(const char *v, size_t n)
{
	size_t	 i = 0;

	if (n > 0 && v[0] == '[') {
		for (i = 1; i < n && v[i] != ']'; i++)
			if (http_hexval(v[i]) == -1 && v[i] != ':' && v[i] != '.')
				return 0;
		if (i == n || i == 1)
			return 0;
		i++;
	} else {
		for (; i < n && v[i] != ':'; i++) {
			if (v[i] == '%') {
				if (i + 2 >= n || http_hexval(v[i + 1]) == -1 ||
				    http_hexval(v[i + 2]) == -1)
					return 0;
				i += 2;
			} else if (!http_is_regname((unsigned char)v[i]))
				return 0;
		}
	}
	if (i == n)
		return 1;
	if (v[i] != ':')
		return 0;
	for (i++; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return 0;
	return 1;
}

/* Whole-head rules, once every field is known. */
static int
http_check_fields(struct http_request *req, int body)
{
	const struct http_header	*h;
	size_t				 i;

	for (i = 0; i < sizeof(http_singletons) / sizeof(*http_singletons);
	    i++)
		if (http_header_count(req, http_singletons[i]) > 1)
			return HTTP_PARSE_BAD;
	if (req->r_minor >= 1 && http_header_get(req, "Host") == NULL)
		return HTTP_PARSE_BAD;
	if ((h = http_header_get(req, "Host")) != NULL && !http_host_valid(h->h_value, h->h_value_len))
		return HTTP_PARSE_BAD;	/* RFC 9112 3.2: an invalid Host is a 400 */
	req->r_chunked = http_header_get(req, "Transfer-Encoding") != NULL;
	h = http_header_get(req, "Content-Length");
	if (h != NULL && http_content_length(h, &req->r_content_length) == -1)
		return HTTP_PARSE_BAD;
	if (h != NULL && req->r_chunked)
		return HTTP_PARSE_BAD;	/* both: a smuggling attempt (RFC 9112 6.1) */
	/* without body: no endpoint takes one, and not reading one must stay safe */
	if (!body && (req->r_chunked || req->r_content_length > 0))
		return HTTP_PARSE_BAD;
	return HTTP_PARSE_DONE;
}

static int
http_header_count(const struct http_request *req, const char *name)
{
	int	 i, n = 0;

	for (i = 0; i < req->r_nheaders; i++)
		if (util_strncaseeq(req->r_headers[i].h_name,
		    req->r_headers[i].h_name_len, name))
			n++;
	return n;
}

const struct http_header *
http_header_get(const struct http_request *req, const char *name)
{
	int	 i;

	for (i = 0; i < req->r_nheaders; i++)
		if (util_strncaseeq(req->r_headers[i].h_name,
		    req->r_headers[i].h_name_len, name))
			return &req->r_headers[i];
	return NULL;
}

/*
 * The list item of v starting at off: OWS-trimmed, up to a comma outside
 * a quoted-string (extension parameters may quote commas).  Returns the
 * offset after the item's comma, or n.
 */
static size_t
http_item(const char *v, size_t n, size_t off, const char **item,
    size_t *len)
{
	size_t	 end;
	int	 quoted = 0;

	while (off < n && http_is_ows(v[off]))
		off++;
	for (end = off; end < n; end++) {
		if (quoted && v[end] == '\\' && end + 1 < n)
			end++;
		else if (v[end] == '"')
			quoted = !quoted;
		else if (v[end] == ',' && !quoted)
			break;
	}
	*item = v + off;
	*len = end - off;
	while (*len > 0 && http_is_ows((*item)[*len - 1]))
		(*len)--;
	return end < n ? end + 1 : n;
}

int
http_header_next_item(const struct http_request *req, const char *name,
    size_t *state, const char **item, size_t *len)
{
	const struct http_header	*h;
	size_t				 idx, off;

	idx = *state & HTTP_ITEM_MASK;
	off = *state >> HTTP_ITEM_SHIFT;
	for (; req->r_nheaders > 0 && idx < (size_t)req->r_nheaders;
	    idx++, off = 0) {
		h = &req->r_headers[idx];
		if (!util_strncaseeq(h->h_name, h->h_name_len, name))
			continue;
		while (off < h->h_value_len) {
			off = http_item(h->h_value, h->h_value_len, off, item,
			    len);
			if (*len == 0)
				continue;
			if (off > (SIZE_MAX >> HTTP_ITEM_SHIFT))
				break;	/* cannot be resumed; no head is that big */
			*state = (off << HTTP_ITEM_SHIFT) | idx;
			return 1;
		}
	}
	*state = idx;
	*item = NULL;
	*len = 0;
	return 0;
}

int
http_header_has_token(const struct http_request *req, const char *name,
    const char *token)
{
	const char	*item;
	size_t		 state = 0, len;

	while (http_header_next_item(req, name, &state, &item, &len))
		if (util_strncaseeq(item, len, token))
			return 1;
	return 0;
}

/*
 * Names are compared as sent, undecoded: clients put "token" literally and
 * a second spelling of the same name would only be a way to confuse us.
 */
long
http_query_param(const struct http_request *req, const char *name,
    char *out, size_t outlen)
{
	const char	*q, *end, *amp, *eq, *key_end;
	size_t		 nlen = strlen(name);

	if (req->r_query == NULL)
		return HTTP_QUERY_ABSENT;
	q = req->r_query;
	end = q + req->r_query_len;
	for (;;) {
		if ((amp = memchr(q, '&', (size_t)(end - q))) == NULL)
			amp = end;
		eq = memchr(q, '=', (size_t)(amp - q));
		key_end = eq != NULL ? eq : amp;
		if ((size_t)(key_end - q) == nlen && memcmp(q, name, nlen) == 0)
			return eq == NULL ? http_pct_decode(amp, 0, out, outlen) :
			    http_pct_decode(eq + 1, (size_t)(amp - eq - 1), out,
			    outlen);
		if (amp == end)
			return HTTP_QUERY_ABSENT;
		q = amp + 1;
	}
}

/*
 * %XX and '+' decoding.  %00 is refused: callers use the value as a C
 * string, and a NUL inside it would silently cut a token short.
 */
static long
http_pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	int	 hi, lo, too_long = outlen == 0;
	long	 rv = HTTP_QUERY_TOO_LONG;
	char	 c;

	/* past the end of out, still read on: malformed is the better answer */
	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (n - i < 3 || (hi = http_hexval(s[i + 1])) < 0 ||
			    (lo = http_hexval(s[i + 2])) < 0 || (hi | lo) == 0) {
				rv = HTTP_QUERY_MALFORMED;
				goto bad;
			}
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (too_long || o + 1 >= outlen || o >= LONG_MAX)
			too_long = 1;
		else
			out[o++] = c;
	}
	if (too_long)
		goto bad;
	out[o] = '\0';
	return (long)o;
 bad:
	if (outlen > 0)
		out[0] = '\0';
	return rv;
}

/* ---- the token in an upgrade request --------------------------------- */

static void
http_token_take(struct http_token *tok, enum http_token_source src, const char *s,
    size_t len)
{
	tok->t_source = src;
	if (len > RT_TOKEN_MAX) {
		tok->t_error = "token too long";
		return;
	}
	memcpy(tok->t_token, s, len);
	tok->t_token[len] = '\0';
	tok->t_len = len;
}

/*
 * ?token=: a value that is too long or not percent-decodable still means
 * a token was sent; it is refused, not skipped.  An empty value is no
 * token (a client that writes "?token=" when logged out).
 */
static int
http_token_query(const struct http_request *req, struct http_token *tok)
{
	long	 n;

	n = http_query_param(req, "token", tok->t_token, sizeof(tok->t_token));
	if (n == HTTP_QUERY_MALFORMED || n == HTTP_QUERY_TOO_LONG) {
		tok->t_source = HTTP_TOKEN_QUERY;
		tok->t_error = n == HTTP_QUERY_MALFORMED ?
		    "malformed token encoding" : "token too long";
		tok->t_token[0] = '\0';
		return 1;
	}
	if (n <= 0) {
		tok->t_token[0] = '\0';
		return 0;
	}
	tok->t_source = HTTP_TOKEN_QUERY;
	tok->t_len = (size_t)n;
	return 1;
}

int
http_bearer(const struct http_request *req, const char **cred, size_t *len)
{
	const struct http_header	*h;
	const char			*v;
	size_t				 n, i;

	if ((h = http_header_get(req, "Authorization")) == NULL)
		return 0;
	v = h->h_value;
	n = h->h_value_len;
	if (n < 7 || strncasecmp(v, "Bearer", 6) != 0 ||
	    (v[6] != ' ' && v[6] != '\t'))
		return 0;
	for (i = 6; i < n && (v[i] == ' ' || v[i] == '\t'); i++)
		;
	if (i == n)
		return 0;
	*cred = v + i;
	*len = n - i;
	return 1;
}

/* Authorization: Bearer <jwt>; other schemes are not ours to judge. */
static int
http_token_bearer(const struct http_request *req, struct http_token *tok)
{
	const char	*cred;
	size_t		 len;

	if (!http_bearer(req, &cred, &len))
		return 0;
	http_token_take(tok, HTTP_TOKEN_HEADER, cred, len);
	return 1;
}

static void
http_token_protocol(const struct http_request *req, struct http_token *tok)
{
	size_t		 state = 0, len;
	const char	*item;

	while (http_header_next_item(req, "Sec-WebSocket-Protocol", &state,
	    &item, &len)) {
		if (len >= 6 && memcmp(item, "token-", 6) == 0) {
			tok->t_protocol = item;
			tok->t_protocol_len = len;
			return;
		}
	}
}

void
http_extract_token(const struct http_request *req, struct http_token *tok)
{
	memset(tok, 0, sizeof(*tok));
	/* Found first so that it is echoed whichever source wins. */
	http_token_protocol(req, tok);
	if (http_token_query(req, tok) || http_token_bearer(req, tok))
		return;
	if (tok->t_protocol != NULL && tok->t_protocol_len > 6)
		http_token_take(tok, HTTP_TOKEN_PROTOCOL, tok->t_protocol + 6,
		    tok->t_protocol_len - 6);
}

/*
 * base64 of 16 bytes: 22 alphabet characters and "==".  The unused low
 * bits of the last character are not checked, as Python's websockets and
 * most decoders do not: the key is only hashed, never decoded.
 */
static int
http_key_valid(const char *k, size_t n)
{
	size_t	 i;
	char	 c;

	if (n != 24 || k[22] != '=' || k[23] != '=')
		return 0;
	for (i = 0; i < 22; i++) {
		c = k[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return 0;
	}
	return 1;
}

int
http_method_known(const struct http_request *req)
{
	static const char	*const known[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
				    "CONNECT", "OPTIONS", "TRACE", "PATCH" };
	size_t			 i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (req->r_method_len == strlen(known[i]) &&
		    memcmp(req->r_method, known[i], req->r_method_len) == 0)
			return 1;
	return 0;
}

/*
 * Checked in this order so the status names the most basic problem first:
 * method (405), Upgrade/Connection (426), HTTP/1.0 (400),
 * Sec-WebSocket-Version (426), Sec-WebSocket-Key (400), Sec-WebSocket-Protocol
 * items that are no tokens (400).
 */
int
http_check_upgrade(const struct http_request *req, struct http_upgrade *up)
{
	const struct http_header	*h;

	up->u_key = NULL;
	up->u_key_len = 0;
	/* Methods are case-sensitive (RFC 7231 4.1). */
	if (req->r_method_len != 3 || memcmp(req->r_method, "GET", 3) != 0)
		return 405;
	/* a request that asks no upgrade, HTTP/1.0 too, is told to (PROTOCOL.md) */
	if (!http_header_has_token(req, "Upgrade", "websocket") ||
	    !http_header_has_token(req, "Connection", "Upgrade"))
		return 426;
	if (req->r_minor < 1)
		return 400;	/* RFC 6455 4.1: an upgrade is HTTP/1.1 or later */
	h = http_header_get(req, "Sec-WebSocket-Version");
	if (h == NULL || h->h_value_len != 2 || memcmp(h->h_value, "13", 2) != 0)
		return 426;
	h = http_header_get(req, "Sec-WebSocket-Key");
	if (h == NULL || !http_key_valid(h->h_value, h->h_value_len))
		return 400;
	if (!http_protocols_valid(req))
		return 400;
	up->u_key = h->h_value;
	up->u_key_len = h->h_value_len;
	return 0;
}

/*
 * Each subprotocol a client offers is a token (RFC 6455 4.1, 11.3.4):
 * one that is not could not be echoed as the one selected.
 */
static int
http_protocols_valid(const struct http_request *req)
{
	const char	*item;
	size_t		 state = 0, len, i;

	while (http_header_next_item(req, "Sec-WebSocket-Protocol", &state,
	    &item, &len))
		for (i = 0; i < len; i++)
			if (!http_is_tchar((unsigned char)item[i]))
				return 0;
	return 1;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 422:
		return "Unprocessable Content";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static int
http_put(char *out, size_t outlen, size_t *off, const char *s, size_t n)
{
	if (n > outlen - *off)
		return -1;
	if (n > 0)
		memcpy(out + *off, s, n);
	*off += n;
	return 0;
}

static int
http_puts(char *out, size_t outlen, size_t *off, const char *s)
{
	return http_put(out, outlen, off, s, strlen(s));
}

/*
 * A 1xx response has no body, and RFC 7230 3.3.2 forbids Content-Length
 * on it; "Connection: close" would contradict the Upgrade of a 101.  Such
 * responses carry only the caller's extra headers.
 */
int
http_format_response(char *out, size_t outlen, int status,
    const char *content_type, const char *extra_headers,
    const char *body, size_t body_len)
{
	return http_format_response_ka(out, outlen, status, content_type, extra_headers,
	    body, body_len, 0);
}

int
http_format_response_ka(char *out, size_t outlen, int status,
    const char *content_type, const char *extra_headers,
    const char *body, size_t body_len, int keep_alive)
{
	char	 num[96];
	size_t	 off = 0;
	int	 interim = status >= 100 && status < 200;

	if (status < 100 || status > 999)
		return -1;
	if (outlen > INT_MAX)
		outlen = INT_MAX;
	if (body == NULL || interim)
		body_len = 0;
	(void)snprintf(num, sizeof(num), "HTTP/1.1 %d ", status);
	if (http_puts(out, outlen, &off, num) == -1 ||
	    http_puts(out, outlen, &off, http_reason(status)) == -1 ||
	    http_puts(out, outlen, &off, "\r\n") == -1)
		return -1;
	if (!interim) {
		if (content_type != NULL &&
		    (http_puts(out, outlen, &off, "Content-Type: ") == -1 ||
		    http_puts(out, outlen, &off, content_type) == -1 ||
		    http_puts(out, outlen, &off, "\r\n") == -1))
			return -1;
		/* a 426 names the upgrade it asks for (RFC 9110 7.8) */
		(void)snprintf(num, sizeof(num), "Content-Length: %zu\r\n%s", body_len,
		    keep_alive ? "" : status == 426 ? "Connection: Upgrade, close\r\n" :
		    "Connection: close\r\n");
		if (http_puts(out, outlen, &off, num) == -1)
			return -1;
	}
	if (extra_headers != NULL &&
	    http_puts(out, outlen, &off, extra_headers) == -1)
		return -1;
	if (http_put(out, outlen, &off, "\r\n", 2) == -1 ||
	    http_put(out, outlen, &off, body, body_len) == -1)
		return -1;
	if (off < outlen)
		out[off] = '\0';	/* a convenience, not counted */
	return (int)off;
}
