/*
 * The JSON messages of PROTOCOL.md.  Requests are parsed with json-c after
 * a strict RFC 8259 check; replies are json-c objects, except the event
 * message: it is the hot path (built once per Redis message for every
 * subscriber) and must carry the payload's own bytes, so it is written as
 * text straight into the caller's buffer.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <json-c/json.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"
#include "util.h"
#include "proto.h"

#define PROTO_DEPTH_MAX	1024	/* nesting proto_json_valid() accepts */

static const struct {
	const char	*name;
	enum proto_type	 type;
	int		 needs_channel;
} proto_types[] = {
	{ "subscribe",		PROTO_SUBSCRIBE,	1 },
	{ "unsubscribe",	PROTO_UNSUBSCRIBE,	1 },
	{ "ping",		PROTO_PING,		0 },
	{ "list_channels",	PROTO_LIST_CHANNELS,	0 },
	{ "stats",		PROTO_STATS,		0 },
	{ "auth",		PROTO_AUTH,		0 },
};
#define PROTO_NTYPES	(sizeof(proto_types) / sizeof(proto_types[0]))

/* ---- UTF-8 and escaping --------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (non-ASCII lead), 0 if none. */
static size_t
proto_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char	 c = s[0], lo = 0x80, hi = 0xbf;
	size_t		 n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;	/* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;	/* <= U+10FFFF */
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* See proto.h. */
size_t
proto_escape(char *dst, const unsigned char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i = 0, o = 0, n, run;

	while (i < len) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			/* a run of bytes that stand as they are: one copy */
			for (run = 1; i + run < len && s[i + run] >= 0x20 && s[i + run] < 0x80 &&
			    s[i + run] != '"' && s[i + run] != '\\'; run++)
				;
			if (dst != NULL)
				memcpy(dst + o, s + i, run);
			o += run, i += run;
		} else if (c == '"' || c == '\\') {
			if (dst != NULL) {
				dst[o] = '\\';
				dst[o + 1] = (char)c;
			}
			o += 2, i++;
		} else if (c < 0x20) {
			if (dst != NULL) {
				memcpy(dst + o, "\\u00", 4);
				dst[o + 4] = hex[c >> 4];
				dst[o + 5] = hex[c & 15];
			}
			o += 6, i++;
		} else if ((n = proto_utf8_seq(s + i, len - i)) != 0) {
			if (dst != NULL)
				memcpy(dst + o, s + i, n);
			o += n, i += n;
		} else {
			if (dst != NULL)
				memcpy(dst + o, "\xef\xbf\xbd", 3);
			o += 3, i++;
		}
	}
	return o;
}

/* ---- RFC 8259 validation -------------------------------------------- */

static const unsigned char *
proto_jv_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int
proto_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* p is just past the opening quote; returns just past the closing one. */
static const unsigned char *
proto_jv_string(const unsigned char *p, const unsigned char *end)
{
	size_t	 n, i;

	while (p < end) {
		if (*p == '"')
			return p + 1;
		if (*p >= 0x20 && *p < 0x80 && *p != '\\') {
			p++;
		} else if (*p == '\\') {
			if (++p == end)
				return NULL;
			if (*p == 'u') {
				if (end - p < 5)
					return NULL;
				for (i = 1; i <= 4; i++)
					if (!proto_hex(p[i]))
						return NULL;
				p += 5;
			} else if (*p != '\0' && strchr("\"\\/bfnrt", *p) != NULL)
				p++;
			else
				return NULL;
		} else if (*p < 0x20 ||
		    (n = proto_utf8_seq(p, (size_t)(end - p))) == 0) {
			return NULL;
		} else
			p += n;
	}
	return NULL;
}

static const unsigned char *
proto_jv_digits(const unsigned char *p, const unsigned char *end)
{
	const unsigned char	*start = p;

	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == start ? NULL : p;
}

static const unsigned char *
proto_jv_number(const unsigned char *p, const unsigned char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if ((p = proto_jv_digits(p, end)) == NULL)
		return NULL;
	if (p < end && *p == '.' && (p = proto_jv_digits(p + 1, end)) == NULL)
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		p = proto_jv_digits(p, end);
	}
	return p;
}

static const unsigned char *
proto_jv_literal(const unsigned char *p, const unsigned char *end)
{
	static const char *const lits[] = { "true", "false", "null" };
	size_t	 i, n;

	for (i = 0; i < 3; i++) {
		n = strlen(lits[i]);
		if ((size_t)(end - p) >= n && memcmp(p, lits[i], n) == 0)
			return p + n;
	}
	return NULL;
}

/* One scalar, or NULL; containers are the caller's. */
static const unsigned char *
proto_jv_scalar(const unsigned char *p, const unsigned char *end)
{
	if (*p == '"')
		return proto_jv_string(p + 1, end);
	if (*p == '-' || (*p >= '0' && *p <= '9'))
		return proto_jv_number(p, end);
	return proto_jv_literal(p, end);
}

/* An object member's key and colon; returns where its value starts. */
static const unsigned char *
proto_jv_key(const unsigned char *p, const unsigned char *end)
{
	p = proto_jv_ws(p, end);
	if (p == end || *p != '"' || (p = proto_jv_string(p + 1, end)) == NULL)
		return NULL;
	p = proto_jv_ws(p, end);
	if (p == end || *p != ':')
		return NULL;
	return p + 1;
}

/*
 * Iterative, with the open containers as a bit stack (1 = object), so
 * hostile nesting costs neither C stack nor memory.
 */
static const unsigned char *
proto_jv_value(const unsigned char *p, const unsigned char *end)
{
	unsigned char		 stack[PROTO_DEPTH_MAX / 8];
	size_t			 depth = 0;
	int			 obj;

 value:
	if ((p = proto_jv_ws(p, end)) == end)
		return NULL;
	if (*p == '{' || *p == '[') {
		if (depth == PROTO_DEPTH_MAX)
			return NULL;
		obj = *p == '{';
		if (obj)
			stack[depth / 8] |= 1 << (depth % 8);
		else
			stack[depth / 8] &= ~(1 << (depth % 8));
		depth++;
		if ((p = proto_jv_ws(p + 1, end)) == end)
			return NULL;
		if (*p == (obj ? '}' : ']')) {
			depth--;
			p++;
			goto next;
		}
		if (obj && (p = proto_jv_key(p, end)) == NULL)
			return NULL;
		goto value;
	}
	if ((p = proto_jv_scalar(p, end)) == NULL)
		return NULL;
 next:
	if (depth == 0)
		return p;
	if ((p = proto_jv_ws(p, end)) == end)
		return NULL;
	obj = (stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
	if (*p == ',') {
		p++;
		if (obj && (p = proto_jv_key(p, end)) == NULL)
			return NULL;
		goto value;
	}
	if (*p != (obj ? '}' : ']'))
		return NULL;
	depth--;
	p++;
	goto next;
}

int
proto_json_valid(const char *buf, size_t len)
{
	const unsigned char	*p = (const unsigned char *)buf, *end = p + len;

	if (buf == NULL || (p = proto_jv_value(p, end)) == NULL)
		return 0;
	return proto_jv_ws(p, end) == end;
}

size_t
proto_json_span(const char *buf, size_t len)
{
	const unsigned char	*p = (const unsigned char *)buf;

	if (buf == NULL || (p = proto_jv_value(p, p + len)) == NULL)
		return 0;
	return (size_t)(p - (const unsigned char *)buf);
}

/* ---- requests ------------------------------------------------------- */

/* The object in a buffer proto_json_valid() accepted. */
static struct json_object *
proto_tokenize(const char *buf, size_t len)
{
	static struct json_tokener	*tok;	/* one, reset for each message */

	if (tok == NULL && (tok = json_tokener_new()) == NULL)
		return NULL;
	json_tokener_reset(tok);
	return json_tokener_parse_ex(tok, buf, (int)len);
}

static void
proto_invalid(struct proto_request *req, const char *error)
{
	req->pr_type = PROTO_INVALID;
	req->pr_error = error;
}

static void
proto_parse_channel(struct json_object *msg, struct proto_request *req)
{
	struct json_object	*c;
	const char		*s;
	size_t			 len;

	if (!json_object_object_get_ex(msg, "channel", &c) ||
	    !json_object_is_type(c, json_type_string)) {
		proto_invalid(req, "Missing or invalid channel");
		return;
	}
	s = json_object_get_string(c);
	len = (size_t)json_object_get_string_len(c);
	/* Echo even a bad name back, if it is a sane string to echo. */
	if (len > 0 && len <= RT_CHANNEL_MAX && memchr(s, '\0', len) == NULL) {
		memcpy(req->pr_channel, s, len);
		req->pr_channel[len] = '\0';
		req->pr_channel_len = len;
		req->pr_has_channel = 1;
	}
	if (!chan_name_valid(s, len))
		proto_invalid(req, "Missing or invalid channel");
}

/* "token": a non-empty string; a longer one than any we take is an error too. */
static void
proto_parse_token(struct json_object *msg, struct proto_request *req)
{
	struct json_object	*t;
	size_t			 len;

	if (!json_object_object_get_ex(msg, "token", &t) ||
	    !json_object_is_type(t, json_type_string) ||
	    (len = (size_t)json_object_get_string_len(t)) == 0) {
		proto_invalid(req, "Missing or invalid token");
		return;
	}
	if (len > RT_TOKEN_MAX) {
		proto_invalid(req, "Invalid token: token too long");
		return;
	}
	memcpy(req->pr_token, json_object_get_string(t), len);
	req->pr_token[len] = '\0';
	req->pr_token_len = len;
}

/* "since": null, or {"epoch": string, "offset": integer >= 0}. */
static void
proto_parse_since(struct json_object *msg, struct proto_request *req)
{
	struct json_object	*since, *e, *o;
	size_t			 len;

	if (!json_object_object_get_ex(msg, "since", &since) || since == NULL)
		return;
	if (!json_object_is_type(since, json_type_object) ||
	    !json_object_object_get_ex(since, "epoch", &e) ||
	    !json_object_is_type(e, json_type_string) ||
	    !json_object_object_get_ex(since, "offset", &o) ||
	    !json_object_is_type(o, json_type_int)) {
		proto_invalid(req, "Invalid since: expected {\"epoch\":string,\"offset\":integer}");
		return;
	}
	len = (size_t)json_object_get_string_len(e);
	if (json_object_get_int64(o) < 0) {
		proto_invalid(req, "Invalid since: offset must be a non-negative integer");
		return;
	}
	req->pr_has_since = 1;
	/* any larger offset is in the future, as 2^64-1 (json-c's ceiling) is:
	 * recovered false, not an error */
	req->pr_since_offset = json_object_get_uint64(o);
	/* an epoch we never issue is simply not ours: recovered false */
	if (len > PROTO_EPOCH_MAX || memchr(json_object_get_string(e), '\0', len) != NULL)
		len = 0;
	memcpy(req->pr_since_epoch, json_object_get_string(e), len);
	req->pr_since_epoch[len] = '\0';
	if (len == 0)
		strcpy(req->pr_since_epoch, "-");
}

static void
proto_parse_object(struct json_object *msg, struct proto_request *req)
{
	struct json_object	*t;
	const char		*s;
	size_t			 i, len;

	if (!json_object_object_get_ex(msg, "type", &t) ||
	    !json_object_is_type(t, json_type_string)) {
		proto_invalid(req, "Missing or invalid type");
		return;
	}
	s = json_object_get_string(t);
	len = (size_t)json_object_get_string_len(t);
	for (i = 0; i < PROTO_NTYPES; i++)
		if (strlen(proto_types[i].name) == len &&
		    memcmp(proto_types[i].name, s, len) == 0)
			break;
	/* An unknown type is named back only if it fits whole. */
	if (len < sizeof(req->pr_request) && memchr(s, '\0', len) == NULL)
		memcpy(req->pr_request, s, len + 1);
	if (i == PROTO_NTYPES) {
		proto_invalid(req, "Unknown message type");
		return;
	}
	req->pr_type = proto_types[i].type;
	if (proto_types[i].needs_channel)
		proto_parse_channel(msg, req);
	if (req->pr_type == PROTO_SUBSCRIBE && req->pr_error == NULL)
		proto_parse_since(msg, req);
	if (req->pr_type == PROTO_AUTH)
		proto_parse_token(msg, req);
}

void
proto_parse(const char *buf, size_t len, struct proto_request *req)
{
	const unsigned char	*p;
	struct json_object	*msg;

	memset(req, 0, sizeof(*req));
	if (buf == NULL || len > INT_MAX || !proto_json_valid(buf, len)) {
		proto_invalid(req, "Invalid JSON");
		return;
	}
	p = proto_jv_ws((const unsigned char *)buf,
	    (const unsigned char *)buf + len);
	if (*p != '{') {
		proto_invalid(req, "Message must be a JSON object");
		return;
	}
	/* Valid, but deeper than json-c's default limit (or no memory). */
	if ((msg = proto_tokenize(buf, len)) == NULL ||
	    !json_object_is_type(msg, json_type_object))
		proto_invalid(req, "Invalid JSON");
	else
		proto_parse_object(msg, req);
	json_object_put(msg);
}

/* ---- replies -------------------------------------------------------- */

void
proto_timestamp(char *out, size_t outlen, const struct timeval *tv)
{
	util_timestamp(out, outlen, tv);
}

/* Add val under key; val NULL means allocation failed.  0 or -1. */
static int
proto_add(struct json_object *o, const char *key, struct json_object *val)
{
	if (val == NULL)
		return -1;
	if (json_object_object_add(o, key, val) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

static struct json_object *
proto_new(const char *type)
{
	struct json_object	*o;

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	if (proto_add(o, "type", json_object_new_string(type)) == -1) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Append "timestamp" and hand o back, or drop it if anything failed. */
static struct json_object *
proto_finish(struct json_object *o, int failed, const struct timeval *tv)
{
	char	 ts[RT_TIMESTAMP_LEN + 1];

	if (o == NULL)
		return NULL;
	proto_timestamp(ts, sizeof(ts), tv);
	if (failed || proto_add(o, "timestamp", json_object_new_string(ts)) == -1) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/*
 * The replies of every handshake and subscribe (connected, authenticated,
 * subscribed, unsubscribed) are written as text, like the event message:
 * building them as json-c objects and serialising them was about a tenth
 * of a worker's CPU per handshake.  The same bytes as json-c's plain
 * output, except that '/' is not escaped and invalid UTF-8 becomes U+FFFD
 * (proto_escape()).
 */
struct proto_text {
	char	*t_buf;
	size_t	 t_len;
	size_t	 t_cap;
	int	 t_failed;
};

/* Room for n more bytes and the NUL; 0, or -1 (t_failed) when out of memory. */
static int
proto_text_room(struct proto_text *t, size_t n)
{
	size_t	 cap;
	char	*b;

	if (t->t_failed)
		return -1;
	if (t->t_len + n + 1 <= t->t_cap)
		return 0;
	cap = t->t_cap ? t->t_cap : 256;
	while (cap < t->t_len + n + 1)
		cap *= 2;
	if ((b = realloc(t->t_buf, cap)) == NULL) {
		t->t_failed = 1;
		return -1;
	}
	t->t_buf = b;
	t->t_cap = cap;
	return 0;
}

static void
proto_text_raw(struct proto_text *t, const char *s, size_t n)
{
	if (proto_text_room(t, n) == 0) {
		memcpy(t->t_buf + t->t_len, s, n);
		t->t_len += n;
	}
}

#define proto_text_lit(t, s)	proto_text_raw((t), (s), sizeof(s) - 1)

/* s as a JSON string, quoted and escaped; NULL as null. */
static void
proto_text_str(struct proto_text *t, const char *s)
{
	size_t	 n;

	if (s == NULL) {
		proto_text_lit(t, "null");
		return;
	}
	n = strlen(s);
	/* at most 6 bytes out per byte in: one pass, no count first */
	if (proto_text_room(t, 6 * n + 2) == 0) {
		t->t_buf[t->t_len++] = '"';
		t->t_len += proto_escape(t->t_buf + t->t_len, (const unsigned char *)s, n);
		t->t_buf[t->t_len++] = '"';
	}
}

/* ,"key": */
static void
proto_text_key(struct proto_text *t, const char *key)
{
	proto_text_lit(t, ",");
	proto_text_str(t, key);
	proto_text_lit(t, ":");
}

static void
proto_text_begin(struct proto_text *t, const char *type)
{
	memset(t, 0, sizeof(*t));
	proto_text_lit(t, "{\"type\":");
	proto_text_str(t, type);
}

/* ,"timestamp":"…"} and the text (NUL-terminated, *len without it), or NULL. */
static char *
proto_text_end(struct proto_text *t, const struct timeval *tv, size_t *len)
{
	char	 ts[RT_TIMESTAMP_LEN + 1];

	proto_timestamp(ts, sizeof(ts), tv);
	proto_text_key(t, "timestamp");
	proto_text_str(t, ts);
	proto_text_lit(t, "}");
	if (t->t_failed) {
		free(t->t_buf);
		return NULL;
	}
	t->t_buf[t->t_len] = '\0';
	*len = t->t_len;
	return t->t_buf;
}

struct proto_list {
	struct proto_text	*l_text;
	int			 l_n;
};

static void
proto_list_emit(const char *name, void *arg)
{
	struct proto_list	*l = arg;

	if (l->l_n++ > 0)
		proto_text_lit(l->l_text, ",");
	proto_text_str(l->l_text, name);
}

/* "user", "authorizedChannels" and "expiresAt", as connected and authenticated have them. */
static void
proto_text_identity(struct proto_text *t, const struct chan_table *tab,
    const struct auth_user *user)
{
	struct proto_list	 l;
	char			 ts[RT_TIMESTAMP_LEN + 1];
	struct timeval		 tv;

	proto_text_key(t, "user");
	if (user != NULL && user->u_authenticated) {
		/* userId always, email and role only when present */
		proto_text_lit(t, "{\"userId\":");
		proto_text_str(t, user->u_id);
		if (user->u_has_email) {
			proto_text_key(t, "email");
			proto_text_str(t, user->u_email);
		}
		if (user->u_has_role) {
			proto_text_key(t, "role");
			proto_text_str(t, user->u_role);
		}
		proto_text_lit(t, "}");
	} else
		proto_text_lit(t, "null");
	proto_text_key(t, "authorizedChannels");
	proto_text_lit(t, "[");
	l.l_text = t;
	l.l_n = 0;
	chan_authorized_list(tab, user, proto_list_emit, &l);
	proto_text_lit(t, "]");
	/* the token's exp as an ISO timestamp, or null (none, or anonymous) */
	proto_text_key(t, "expiresAt");
	if (user == NULL || !user->u_authenticated || user->u_exp_ms == 0)
		proto_text_lit(t, "null");
	else {
		tv.tv_sec = (time_t)(user->u_exp_ms / 1000);
		tv.tv_usec = (suseconds_t)(user->u_exp_ms % 1000 * 1000);
		proto_timestamp(ts, sizeof(ts), &tv);
		proto_text_str(t, ts);
	}
}

char *
proto_connected(const char *conn_id, const struct chan_table *tab,
    const struct auth_user *user, const struct timeval *tv, size_t *len)
{
	struct proto_text	 t;

	proto_text_begin(&t, "connected");
	proto_text_key(&t, "connectionId");
	proto_text_str(&t, conn_id);
	proto_text_identity(&t, tab, user);
	return proto_text_end(&t, tv, len);
}

char *
proto_authenticated(const struct chan_table *tab, const struct auth_user *user,
    const struct timeval *tv, size_t *len)
{
	struct proto_text	 t;

	proto_text_begin(&t, "authenticated");
	proto_text_identity(&t, tab, user);
	return proto_text_end(&t, tv, len);
}

static char *
proto_subscribed_text(const char *type, const char *channel, const char *epoch,
    uint64_t offset, int recovered, const struct timeval *tv, size_t *len)
{
	struct proto_text	 t;
	char			 num[24];

	proto_text_begin(&t, type);
	proto_text_key(&t, "channel");
	proto_text_str(&t, channel);
	if (epoch != NULL) {
		proto_text_key(&t, "epoch");
		proto_text_str(&t, epoch);
		proto_text_key(&t, "offset");
		proto_text_raw(&t, num, (size_t)snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)offset));
	}
	if (recovered >= 0) {
		proto_text_key(&t, "recovered");
		if (recovered)
			proto_text_lit(&t, "true");
		else
			proto_text_lit(&t, "false");
	}
	return proto_text_end(&t, tv, len);
}

char *
proto_subscribed(const char *type, const char *channel, const struct timeval *tv,
    size_t *len)
{
	return proto_subscribed_text(type, channel, NULL, 0, -1, tv, len);
}

char *
proto_subscribed_at(const char *channel, const char *epoch, uint64_t offset, int recovered,
    const struct timeval *tv, size_t *len)
{
	return proto_subscribed_text("subscribed", channel, epoch, offset, recovered, tv, len);
}

/* "expiresAt": the token's exp as an ISO timestamp, or null (none). */
static int
proto_add_expiry(struct json_object *o, int64_t exp_ms)
{
	char		 ts[RT_TIMESTAMP_LEN + 1];
	struct timeval	 tv;

	if (exp_ms == 0)
		return json_object_object_add(o, "expiresAt", NULL) != 0;
	tv.tv_sec = (time_t)(exp_ms / 1000);
	tv.tv_usec = (suseconds_t)(exp_ms % 1000 * 1000);
	proto_timestamp(ts, sizeof(ts), &tv);
	return proto_add(o, "expiresAt", json_object_new_string(ts));
}

struct json_object *
proto_token_expiring(int64_t exp_ms, const struct timeval *tv)
{
	struct json_object	*o;

	if ((o = proto_new("token_expiring")) == NULL)
		return NULL;
	return proto_finish(o, proto_add_expiry(o, exp_ms), tv);
}

struct json_object *
proto_unsubscribed(const char *channel, const char *reason, const struct timeval *tv)
{
	struct json_object	*o;
	int			 failed;

	if ((o = proto_new("unsubscribed")) == NULL)
		return NULL;
	failed = proto_add(o, "channel", json_object_new_string(channel));
	if (!failed)
		failed = proto_add(o, "reason", json_object_new_string(reason));
	return proto_finish(o, failed, tv);
}

struct json_object *
proto_pong(const struct timeval *tv)
{
	return proto_finish(proto_new("pong"), 0, tv);
}

struct proto_jlist {
	struct json_object	*l_array;
	int			 l_failed;
};

static void
proto_jlist_emit(const char *name, void *arg)
{
	struct proto_jlist	*l = arg;
	struct json_object	*s;

	if (l->l_failed)
		return;
	if ((s = json_object_new_string(name)) == NULL ||
	    json_object_array_add(l->l_array, s) != 0) {
		json_object_put(s);
		l->l_failed = 1;
	}
}

/* authorizedChannels as a json-c array (listChannels). */
static struct json_object *
proto_authorized(const struct chan_table *t, const struct auth_user *user)
{
	struct proto_jlist	 l;

	if ((l.l_array = json_object_new_array()) == NULL)
		return NULL;
	l.l_failed = 0;
	chan_authorized_list(t, user, proto_jlist_emit, &l);
	if (l.l_failed) {
		json_object_put(l.l_array);
		return NULL;
	}
	return l.l_array;
}

struct json_object *
proto_channels(const struct chan_table *t, const struct auth_user *user,
    struct json_object *subscribed, const struct timeval *tv)
{
	struct json_object	*o;
	int			 failed;

	if (subscribed == NULL)
		subscribed = json_object_new_array();
	if ((o = proto_new("channels")) == NULL) {
		json_object_put(subscribed);
		return NULL;
	}
	failed = proto_add(o, "authorizedChannels", proto_authorized(t, user));
	if (failed)
		json_object_put(subscribed);
	else
		failed = proto_add(o, "subscribedChannels", subscribed);
	return proto_finish(o, failed, tv);
}

static struct json_object *
proto_stats_data(const struct proto_stats *st, struct json_object *by_channel)
{
	struct json_object	*d;
	int			 failed;

	if ((d = json_object_new_object()) == NULL) {
		json_object_put(by_channel);
		return NULL;
	}
	failed = proto_add(d, "totalConnections",
	    json_object_new_int64(st->ps_total)) ||
	    proto_add(d, "authenticatedConnections",
	    json_object_new_int64(st->ps_authenticated)) ||
	    proto_add(d, "anonymousConnections",
	    json_object_new_int64(st->ps_anonymous)) ||
	    proto_add(d, "totalSubscriptions",
	    json_object_new_int64(st->ps_subscriptions));
	if (failed)
		json_object_put(by_channel);
	else
		failed = proto_add(d, "connectionsByChannel", by_channel);
	if (failed) {
		json_object_put(d);
		return NULL;
	}
	return d;
}

struct json_object *
proto_stats(const struct proto_stats *st, struct json_object *by_channel,
    const struct timeval *tv)
{
	struct json_object	*o;

	if (by_channel == NULL)
		by_channel = json_object_new_object();
	if ((o = proto_new("stats")) == NULL) {
		json_object_put(by_channel);
		return NULL;
	}
	return proto_finish(o, proto_add(o, "data",
	    proto_stats_data(st, by_channel)), tv);
}

struct json_object *
proto_error(const char *message, const char *request, const char *channel,
    const struct timeval *tv)
{
	struct json_object	*o;
	int			 failed;

	if ((o = proto_new("error")) == NULL)
		return NULL;
	failed = proto_add(o, "message", json_object_new_string(message));
	if (!failed && request != NULL && *request != '\0')
		failed = proto_add(o, "request", json_object_new_string(request));
	if (!failed && channel != NULL && *channel != '\0')
		failed = proto_add(o, "channel", json_object_new_string(channel));
	return proto_finish(o, failed, tv);
}

/* ---- events --------------------------------------------------------- */

#define PROTO_EV_HEAD	"{\"type\":\"event\",\"channel\":\""
#define PROTO_EV_DATA	"\",\"data\":"
#define PROTO_EV_TS	",\"timestamp\":\""
#define PROTO_EV_TAIL	"\"}"
#define PROTO_LIT(s)	(sizeof(s) - 1)

static char *
proto_put(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

/*
 * The exact length is computed first, so that a buffer too small is left
 * as it was and the caller can grow it once to the size it needs.
 */
size_t
proto_event(char *out, size_t outlen, const char *channel, size_t chlen,
    const char *payload, size_t plen, const struct timeval *tv)
{
	return proto_event_at(out, outlen, channel, chlen, payload, plen, tv, NULL, 0);
}

size_t
proto_event_at(char *out, size_t outlen, const char *channel, size_t chlen,
    const char *payload, size_t plen, const struct timeval *tv,
    const char *epoch, uint64_t offset)
{
	const unsigned char	*ch = (const unsigned char *)channel;
	const unsigned char	*pl = (const unsigned char *)payload;
	const unsigned char	*pend = pl + plen;
	char			 ts[RT_TIMESTAMP_LEN + 1], pos[64 + PROTO_EPOCH_MAX], *p;
	size_t			 chesc, dlen, total, poslen = 0;
	int			 raw;

	/* Surrounding whitespace is not part of the value. */
	pl = proto_jv_ws(pl, pend);
	while (pend > pl && (pend[-1] == ' ' || pend[-1] == '\t' ||
	    pend[-1] == '\n' || pend[-1] == '\r'))
		pend--;
	raw = pend > pl && proto_json_valid((const char *)pl, pend - pl);
	if (!raw) {
		pl = (const unsigned char *)payload;
		pend = pl + plen;
	}
	proto_timestamp(ts, sizeof(ts), tv);
	chesc = proto_escape(NULL, ch, chlen);
	dlen = raw ? (size_t)(pend - pl) : proto_escape(NULL, pl, plen) + 2;
	/* the epoch is ours: letters, digits and '-', nothing to escape */
	if (epoch != NULL)
		poslen = (size_t)snprintf(pos, sizeof(pos), "\",\"offset\":%llu,\"epoch\":\"%.*s",
		    (unsigned long long)offset, PROTO_EPOCH_MAX, epoch);
	total = PROTO_LIT(PROTO_EV_HEAD) + chesc + PROTO_LIT(PROTO_EV_DATA) +
	    dlen + PROTO_LIT(PROTO_EV_TS) + strlen(ts) + poslen + PROTO_LIT(PROTO_EV_TAIL);
	if (total > outlen)
		return total;
	p = proto_put(out, PROTO_EV_HEAD, PROTO_LIT(PROTO_EV_HEAD));
	p += proto_escape(p, ch, chlen);
	p = proto_put(p, PROTO_EV_DATA, PROTO_LIT(PROTO_EV_DATA));
	if (raw)
		p = proto_put(p, (const char *)pl, dlen);
	else {
		*p++ = '"';
		p += proto_escape(p, pl, plen);
		*p++ = '"';
	}
	p = proto_put(p, PROTO_EV_TS, PROTO_LIT(PROTO_EV_TS));
	p = proto_put(p, ts, strlen(ts));
	p = proto_put(p, pos, poslen);
	proto_put(p, PROTO_EV_TAIL, PROTO_LIT(PROTO_EV_TAIL));
	return total;
}
