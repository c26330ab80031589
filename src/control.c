/*
 * Control messages between nodes: their codec, the replay window and the
 * stored form of a revocation.  See control.h.  Pure: no I/O, no clock.
 *
 * Whoever can publish on control_channel can send us anything, so the
 * MAC is checked before a byte of JSON is parsed: a forger only ever
 * reaches a hex check and an HMAC.  A message that carries a good MAC
 * comes from a holder of the secret; it is still parsed strictly, so
 * that every node takes the same bytes the same way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "channel.h"
#include "control.h"
#include "utf8.h"
#include "util.h"

#define CTL_PLEN	(sizeof(CTL_PREFIX) - 1)
#define CTL_MAC_LEN	32			/* bytes of HMAC-SHA256 */
#define CTL_HEX_LEN	(2 * CTL_MAC_LEN)
#define CTL_JSON_DEPTH	2			/* the object, and no deeper */

static const char ctl_hexdig[] = "0123456789abcdef";

static const char *const ctl_cmd_names[] = {
	[CTL_KICK] = "kick",
	[CTL_KICK_USER] = "kick-user",
	[CTL_REVOKE] = "revoke",
	[CTL_UNREVOKE] = "unrevoke",
};
#define CTL_NCMDS	(sizeof(ctl_cmd_names) / sizeof(ctl_cmd_names[0]))

/* ---- names and fields ------------------------------------------------ */

const char *
ctl_cmd_name(enum ctl_cmd cmd)
{
	if ((unsigned)cmd >= CTL_NCMDS)
		return NULL;
	return ctl_cmd_names[cmd];
}

/* A counted name, so that "kick\0x" from JSON is not "kick". */
static enum ctl_cmd
ctl_cmd_parse_len(const char *name, size_t len)
{
	size_t	 i;

	for (i = 1; i < CTL_NCMDS; i++)
		if (strlen(ctl_cmd_names[i]) == len &&
		    memcmp(ctl_cmd_names[i], name, len) == 0)
			return (enum ctl_cmd)i;
	return CTL_NONE;
}

enum ctl_cmd
ctl_cmd_parse(const char *name)
{
	if (name == NULL)
		return CTL_NONE;
	return ctl_cmd_parse_len(name, strlen(name));
}

int
ctl_arg_valid(const char *s, size_t len)
{
	size_t	 i;

	if (s == NULL || len == 0 || len > CTL_ARG_MAX)
		return 0;
	/* an arg is logged and is one word of realtimectl's output */
	for (i = 0; i < len; i++)
		if ((uint8_t)s[i] <= ' ' || (uint8_t)s[i] == 0x7f)
			return 0;
	return utf8_valid((const uint8_t *)s, len);
}

/* A node id is spelled like a channel name, only shorter. */
int
ctl_node_valid(const char *s, size_t len)
{
	return len <= CTL_NODE_MAX && chan_name_valid(s, len);
}

/* ---- hex and MACs ---------------------------------------------------- */

static void
ctl_hex(char *out, const uint8_t *b, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = ctl_hexdig[b[i] >> 4];
		out[2 * i + 1] = ctl_hexdig[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
ctl_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;			/* uppercase too: one spelling only */
}

/* 2n lowercase hex digits at s into b[n]: 0, or -1. */
static int
ctl_unhex(uint8_t *b, const char *s, size_t n)
{
	size_t	 i;
	int	 hi, lo;

	for (i = 0; i < n; i++) {
		if ((hi = ctl_hexval(s[2 * i])) == -1 ||
		    (lo = ctl_hexval(s[2 * i + 1])) == -1)
			return -1;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
ctl_mac(const void *secret, size_t secretlen, const void *d, size_t n,
    uint8_t mac[CTL_MAC_LEN])
{
	unsigned int	 maclen = 0;

	if (secretlen > INT32_MAX)
		return -1;
	/* OpenSSL wants a key pointer even for an empty key */
	if (secret == NULL)
		secret = "";
	if (HMAC(EVP_sha256(), secret, (int)secretlen, d, n, mac, &maclen) == NULL ||
	    maclen != CTL_MAC_LEN)
		return -1;
	return 0;
}

/* ---- encoding -------------------------------------------------------- */

/*
 * s as the inside of a JSON string: only '"' and '\' need it, an arg has
 * no control character and a node id neither of them.
 */
static void
ctl_json_escape(char *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			*out++ = '\\';
		*out++ = *s;
	}
	*out = '\0';
}

static int
ctl_msg_valid(const struct ctl_msg *m)
{
	size_t	 nlen, alen;

	nlen = strnlen(m->cm_node, sizeof(m->cm_node));
	alen = strnlen(m->cm_arg, sizeof(m->cm_arg));
	if (ctl_cmd_name(m->cm_cmd) == NULL || m->cm_ts <= 0 ||
	    !ctl_node_valid(m->cm_node, nlen) || !ctl_arg_valid(m->cm_arg, alen))
		return 0;
	/* what ctl_decode() takes, so that a message decodes as it was */
	if (m->cm_cmd == CTL_REVOKE ? m->cm_until <= 0 : m->cm_until != 0)
		return 0;
	return 1;
}

ssize_t
ctl_encode(const struct ctl_msg *m, const void *secret, size_t secretlen,
    char *out, size_t outlen)
{
	char		 json[CTL_MSG_MAX], nonce[2 * CTL_NONCE_LEN + 1];
	char		 arg[2 * CTL_ARG_MAX + 1];
	char		 until[32], hex[CTL_HEX_LEN + 1];
	uint8_t		 mac[CTL_MAC_LEN];
	int		 jlen, n;

	if (m == NULL || out == NULL || !ctl_msg_valid(m))
		return -1;
	ctl_hex(nonce, m->cm_nonce, sizeof(m->cm_nonce));
	ctl_json_escape(arg, m->cm_arg);
	until[0] = '\0';
	if (m->cm_cmd == CTL_REVOKE)
		snprintf(until, sizeof(until), ",\"until\":%lld", (long long)m->cm_until);
	jlen = snprintf(json, sizeof(json),
	    "{\"ts\":%lld,\"nonce\":\"%s\",\"node\":\"%s\",\"inst\":\"%016llx\","
	    "\"cmd\":\"%s\",\"arg\":\"%s\"%s}", (long long)m->cm_ts, nonce, m->cm_node,
	    (unsigned long long)m->cm_inst, ctl_cmd_name(m->cm_cmd), arg, until);
	if (jlen < 0 || CTL_PLEN + CTL_HEX_LEN + 1 + (size_t)jlen > CTL_MSG_MAX)
		return -1;		/* cannot be: the fields are bounded */
	if (ctl_mac(secret, secretlen, json, (size_t)jlen, mac) == -1)
		return -1;
	ctl_hex(hex, mac, sizeof(mac));
	n = snprintf(out, outlen, "%s%s %s", CTL_PREFIX, hex, json);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}

/* ---- decoding -------------------------------------------------------- */

/*
 * What json-c does not tell: the keys of the object json[0..len) as
 * written, into *n, duplicates included (json-c keeps the last of two
 * equal keys without a word), and keys cut at an escaped NUL ("ts\u0000"
 * is "ts" to it).  Keys are plain ASCII, so a key with an escape is
 * refused, and so is a single quote outside a string (json-c takes one
 * around a key even when strict).  Values are scalars, or json-c refuses
 * the nesting.  -1 when refused.
 */
static int
ctl_json_keys(const char *json, size_t len, size_t *n)
{
	size_t	 i;
	int	 instr = 0, inkey = 0, wantkey = 0;

	for (*n = 0, i = 0; i < len; i++) {
		if (instr) {
			if (json[i] == '\\') {
				if (inkey)
					return -1;
				i++;
			} else if (json[i] == '"')
				instr = inkey = 0;
		} else if (json[i] == '"') {
			instr = 1;
			if (wantkey) {
				inkey = 1;
				wantkey = 0;
				(*n)++;
			}
		} else if (json[i] == '{' || json[i] == ',')
			wantkey = 1;
		else if (json[i] == '\'')
			return -1;
	}
	return 0;
}

/* An integer member: *v, or -1 when not a JSON integer within int64_t. */
static int
ctl_json_int(struct json_object *o, int64_t *v)
{
	if (!json_object_is_type(o, json_type_int))
		return -1;
	*v = json_object_get_int64(o);
	/* json-c saturates: a positive number past INT64_MAX reads INT64_MAX */
	if (*v >= 0 && (uint64_t)*v != json_object_get_uint64(o))
		return -1;
	return 0;
}

/* A string member: its bytes and length (may hold NULs), or NULL. */
static const char *
ctl_json_str(struct json_object *o, size_t *len)
{
	if (!json_object_is_type(o, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(o);
	return json_object_get_string(o);
}

#define F_TS	0x01
#define F_NONCE	0x02
#define F_NODE	0x04
#define F_INST	0x08
#define F_CMD	0x10
#define F_ARG	0x20
#define F_UNTIL	0x40
#define F_ALL	(F_TS | F_NONCE | F_NODE | F_INST | F_CMD | F_ARG)

/* One member into *m: its F_ flag, or 0 with *why. */
static int
ctl_member(const char *key, struct json_object *v, struct ctl_msg *m,
    const char **why)
{
	const char	*s;
	size_t		 len;
	uint8_t		 inst[8];
	size_t		 i;

	if (strcmp(key, "ts") == 0) {
		if (ctl_json_int(v, &m->cm_ts) == -1 || m->cm_ts <= 0)
			return (*why = "bad ts", 0);
		return F_TS;
	}
	if (strcmp(key, "nonce") == 0) {
		if ((s = ctl_json_str(v, &len)) == NULL || len != 2 * CTL_NONCE_LEN ||
		    ctl_unhex(m->cm_nonce, s, CTL_NONCE_LEN) == -1)
			return (*why = "bad nonce", 0);
		return F_NONCE;
	}
	if (strcmp(key, "node") == 0) {
		if ((s = ctl_json_str(v, &len)) == NULL || !ctl_node_valid(s, len))
			return (*why = "bad node", 0);
		memcpy(m->cm_node, s, len);
		m->cm_node[len] = '\0';
		return F_NODE;
	}
	if (strcmp(key, "inst") == 0) {
		if ((s = ctl_json_str(v, &len)) == NULL || len != 2 * sizeof(inst) ||
		    ctl_unhex(inst, s, sizeof(inst)) == -1)
			return (*why = "bad inst", 0);
		for (m->cm_inst = 0, i = 0; i < sizeof(inst); i++)
			m->cm_inst = m->cm_inst << 8 | inst[i];
		return F_INST;
	}
	if (strcmp(key, "cmd") == 0) {
		if ((s = ctl_json_str(v, &len)) == NULL ||
		    (m->cm_cmd = ctl_cmd_parse_len(s, len)) == CTL_NONE)
			return (*why = "bad cmd", 0);
		return F_CMD;
	}
	if (strcmp(key, "arg") == 0) {
		/* ctl_arg_valid() refuses a NUL, so "\u0000" cannot cut it short */
		if ((s = ctl_json_str(v, &len)) == NULL || !ctl_arg_valid(s, len))
			return (*why = "bad arg", 0);
		memcpy(m->cm_arg, s, len);
		m->cm_arg[len] = '\0';
		return F_ARG;
	}
	if (strcmp(key, "until") == 0) {
		if (ctl_json_int(v, &m->cm_until) == -1)
			return (*why = "bad until", 0);
		return F_UNTIL;
	}
	*why = "unknown member";
	return 0;
}

/* The object json[0..len) into *m: CTL_OK or CTL_MALFORMED with *why. */
static int
ctl_parse(const char *json, size_t len, struct ctl_msg *m, const char **why)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	size_t			 nkeys;
	int			 flags = 0, f = 0, bad = 0;

	/* one object, nothing around it, not even white space */
	if (len < 2 || json[0] != '{' || json[len - 1] != '}' ||
	    ctl_json_keys(json, len, &nkeys) == -1)
		return (*why = "invalid json", CTL_MALFORMED);
	if ((tok = json_tokener_new_ex(CTL_JSON_DEPTH)) == NULL)
		return (*why = "out of memory", CTL_MALFORMED);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, json, (int)len);
	if (o != NULL && json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o == NULL)
		return (*why = "invalid json", CTL_MALFORMED);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return (*why = "invalid json", CTL_MALFORMED);
	}
	json_object_object_foreach(o, key, v) {
		if ((f = ctl_member(key, v, m, why)) == 0) {
			bad = 1;
			break;
		}
		flags |= f;
	}
	if (!bad && nkeys != (size_t)json_object_object_length(o)) {
		*why = "duplicate member";
		bad = 1;
	}
	json_object_put(o);
	if (bad)
		return CTL_MALFORMED;
	if ((flags & F_ALL) != F_ALL)
		return (*why = "missing member", CTL_MALFORMED);
	if (m->cm_cmd == CTL_REVOKE ? m->cm_until <= 0 : m->cm_until != 0)
		return (*why = "bad until", CTL_MALFORMED);
	return CTL_OK;
}

int
ctl_decode(const char *p, size_t len, const void *secret, size_t secretlen,
    struct ctl_msg *m, const char **why)
{
	struct ctl_msg	 t;
	uint8_t		 mac[CTL_MAC_LEN], want[CTL_MAC_LEN];
	const char	*json, *dummy;
	size_t		 jlen;
	int		 rv;

	if (why == NULL)
		why = &dummy;
	if (len > CTL_MSG_MAX)
		return (*why = "too long", CTL_MALFORMED);
	if (len < CTL_PLEN || memcmp(p, CTL_PREFIX, CTL_PLEN) != 0)
		return (*why = "not a control message", CTL_MALFORMED);
	if (len < CTL_PLEN + CTL_HEX_LEN + 1 || p[CTL_PLEN + CTL_HEX_LEN] != ' ' ||
	    ctl_unhex(mac, p + CTL_PLEN, CTL_MAC_LEN) == -1)
		return (*why = "bad mac format", CTL_MALFORMED);
	json = p + CTL_PLEN + CTL_HEX_LEN + 1;
	jlen = len - CTL_PLEN - CTL_HEX_LEN - 1;
	if (ctl_mac(secret, secretlen, json, jlen, want) == -1)
		return (*why = "cannot compute the mac", CTL_FORGED);
	if (CRYPTO_memcmp(mac, want, sizeof(mac)) != 0)
		return (*why = "mac mismatch", CTL_FORGED);

	memset(&t, 0, sizeof(t));
	if ((rv = ctl_parse(json, jlen, &t, why)) != CTL_OK)
		return rv;
	*m = t;
	return CTL_OK;
}

/* ---- the replay window ----------------------------------------------- */

/*
 * The nonces in the order they came (a ring, the oldest at w_first) and
 * an index over them: open addressing with linear probing over a power
 * of two at least twice max, each slot a ring position + 1 (0: empty).
 * Removal shifts the run after a slot back, so no tombstones pile up.
 */
struct ctl_entry {
	uint8_t		 ce_nonce[CTL_NONCE_LEN];
	int64_t		 ce_ts;
	uint32_t	 ce_hash;
};

struct ctl_window {
	size_t			 w_max;
	size_t			 w_count;
	size_t			 w_first;	/* the oldest entry */
	size_t			 w_mask;	/* slots - 1 */
	int64_t			 w_skew;
	int64_t			 w_floor;	/* the newest ts forgotten */
	uint64_t		 w_evicted;
	struct ctl_entry	*w_ring;	/* w_max */
	size_t			*w_slots;	/* w_mask + 1 */
};

struct ctl_window *
ctl_window_new(size_t max_nonces, int64_t skew_ms)
{
	struct ctl_window	*w;
	size_t			 slots = 2;

	if (max_nonces == 0 || skew_ms < 0 || max_nonces > SIZE_MAX / 4 /
	    sizeof(struct ctl_entry))
		return NULL;
	while (slots < 2 * max_nonces)
		slots <<= 1;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->w_max = max_nonces;
	w->w_mask = slots - 1;
	w->w_skew = skew_ms;
	w->w_floor = INT64_MIN;
	if ((w->w_ring = calloc(max_nonces, sizeof(*w->w_ring))) == NULL ||
	    (w->w_slots = calloc(slots, sizeof(*w->w_slots))) == NULL) {
		ctl_window_free(w);
		return NULL;
	}
	return w;
}

void
ctl_window_free(struct ctl_window *w)
{
	if (w == NULL)
		return;
	free(w->w_ring);
	free(w->w_slots);
	free(w);
}

uint64_t
ctl_window_evicted(const struct ctl_window *w)
{
	return w->w_evicted;
}

/* The slot holding nonce, or of the empty slot ending its run. */
static size_t
ctl_window_find(const struct ctl_window *w, const uint8_t *nonce, uint32_t h)
{
	size_t			 i;
	const struct ctl_entry	*e;

	for (i = h & w->w_mask; w->w_slots[i] != 0; i = (i + 1) & w->w_mask) {
		e = &w->w_ring[w->w_slots[i] - 1];
		if (e->ce_hash == h && memcmp(e->ce_nonce, nonce, CTL_NONCE_LEN) == 0)
			break;
	}
	return i;
}

/* Empty slot i, moving back each later entry of its run that may fill it. */
static void
ctl_window_unlink(struct ctl_window *w, size_t i)
{
	size_t	 j = i, home;

	for (;;) {
		j = (j + 1) & w->w_mask;
		if (w->w_slots[j] == 0)
			break;
		home = w->w_ring[w->w_slots[j] - 1].ce_hash & w->w_mask;
		/* stays when its home lies cyclically in (i, j] */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		w->w_slots[i] = w->w_slots[j];
		i = j;
	}
	w->w_slots[i] = 0;
}

/* 1 when ts is more than skew away from now, without overflow. */
static int
ctl_window_skewed(int64_t ts, int64_t now, int64_t skew)
{
	uint64_t	 d;

	d = ts < now ? (uint64_t)now - (uint64_t)ts : (uint64_t)ts - (uint64_t)now;
	return d > (uint64_t)skew;
}

int
ctl_window_check(struct ctl_window *w, const uint8_t nonce[CTL_NONCE_LEN],
    int64_t ts, int64_t now)
{
	struct ctl_entry	*e;
	uint32_t		 h;
	size_t			 i, pos;

	if (ctl_window_skewed(ts, now, w->w_skew) || ts <= w->w_floor)
		return CTL_STALE;
	h = util_hash((const char *)nonce, CTL_NONCE_LEN);
	i = ctl_window_find(w, nonce, h);
	if (w->w_slots[i] != 0)
		return CTL_REPLAYED;
	if (w->w_count == w->w_max) {
		/* forget the oldest; nothing as old may come in after it */
		pos = w->w_first;
		e = &w->w_ring[pos];
		if (e->ce_ts > w->w_floor)
			w->w_floor = e->ce_ts;
		w->w_evicted++;
		ctl_window_unlink(w, ctl_window_find(w, e->ce_nonce, e->ce_hash));
		w->w_first = (w->w_first + 1) % w->w_max;
		/* the unlink may have moved the run: look for our slot again */
		i = ctl_window_find(w, nonce, h);
	} else
		pos = (w->w_first + w->w_count++) % w->w_max;
	e = &w->w_ring[pos];
	memcpy(e->ce_nonce, nonce, CTL_NONCE_LEN);
	e->ce_ts = ts;
	e->ce_hash = h;
	w->w_slots[i] = pos + 1;
	return CTL_OK;
}

/* ---- stored revocations ---------------------------------------------- */

/* The hex MAC of "VERB JTI UNTIL" into hex (CTL_HEX_LEN + 1): 0 or -1. */
static int
ctl_stored_mac(const void *secret, size_t secretlen, const char *verb, const char *jti,
    int64_t until, char *hex)
{
	char	 buf[sizeof("unrevoke ") + CTL_ARG_MAX + 32];
	uint8_t	 mac[CTL_MAC_LEN];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%s %s %lld", verb, jti, (long long)until);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    ctl_mac(secret, secretlen, buf, (size_t)n, mac) == -1)
		return -1;
	ctl_hex(hex, mac, sizeof(mac));
	return 0;
}

/* A stored value, "MARK" "UNTIL MAC", signed for verb. */
static int
ctl_stored_encode_as(const void *secret, size_t secretlen, const char *verb,
    const char *mark, const char *jti, int64_t until, char *out, size_t outlen)
{
	char	 hex[CTL_HEX_LEN + 1];
	int	 n;

	if (jti == NULL || out == NULL || until <= 0 ||
	    !ctl_arg_valid(jti, strnlen(jti, CTL_ARG_MAX + 1)) ||
	    ctl_stored_mac(secret, secretlen, verb, jti, until, hex) == -1)
		return -1;
	n = snprintf(out, outlen, "%s%lld %s", mark, (long long)until, hex);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}

int
ctl_stored_encode(const void *secret, size_t secretlen, const char *jti,
    int64_t until, char *out, size_t outlen)
{
	return ctl_stored_encode_as(secret, secretlen, "revoke", "", jti, until, out, outlen);
}

int
ctl_unrevoked_encode(const void *secret, size_t secretlen, const char *jti,
    int64_t until, char *out, size_t outlen)
{
	return ctl_stored_encode_as(secret, secretlen, "unrevoke", "~", jti, until, out,
	    outlen);
}

/* v[0..len) as a decimal > 0 without sign or leading zero: 0 and *r, or -1. */
static int
ctl_stored_until(const char *v, size_t len, int64_t *r)
{
	size_t	 i;
	int64_t	 x = 0;

	if (len == 0 || v[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - (v[i] - '0')) / 10)
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*r = x;
	return 0;
}

static int
ctl_stored_decode_as(const void *secret, size_t secretlen, const char *verb,
    const char *jti, const char *v, size_t vlen, int64_t *until)
{
	const char	*sp;
	char		 want[CTL_HEX_LEN + 1];
	size_t		 ulen, i;
	int64_t		 u;

	if (jti == NULL || v == NULL ||
	    !ctl_arg_valid(jti, strnlen(jti, CTL_ARG_MAX + 1)) ||
	    (sp = memchr(v, ' ', vlen)) == NULL)
		return -1;
	ulen = (size_t)(sp - v);
	if (vlen - ulen - 1 != CTL_HEX_LEN || ctl_stored_until(v, ulen, &u) == -1)
		return -1;
	for (i = 0; i < CTL_HEX_LEN; i++)
		if (ctl_hexval(sp[1 + i]) == -1)
			return -1;
	if (ctl_stored_mac(secret, secretlen, verb, jti, u, want) == -1 ||
	    CRYPTO_memcmp(want, sp + 1, CTL_HEX_LEN) != 0)
		return -1;
	*until = u;
	return 0;
}

int
ctl_stored_decode(const void *secret, size_t secretlen, const char *jti,
    const char *v, size_t vlen, int64_t *until)
{
	return ctl_stored_decode_as(secret, secretlen, "revoke", jti, v, vlen, until);
}

int
ctl_unrevoked_decode(const void *secret, size_t secretlen, const char *jti,
    const char *v, size_t vlen, int64_t *until)
{
	if (v == NULL || vlen < 1 || v[0] != '~')
		return -1;
	return ctl_stored_decode_as(secret, secretlen, "unrevoke", jti, v + 1, vlen - 1,
	    until);
}
