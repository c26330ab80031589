/*
 * Channel names and who may use them: the namespace table (PROTOCOL.md
 * "Channel namespaces").  Pure: no I/O.  See channel.h for the rules.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"
#include "config.h"

enum chan_part_kind { PART_LIT, PART_CLAIM, PART_STAR };

/* A compiled pattern is a few parts: "org:" {orgId} ":" *. */
struct chan_part {
	uint8_t		 p_kind;
	uint8_t		 p_claim;	/* PART_CLAIM: index in t_claims */
	char		 p_term;	/* PART_CLAIM: the character ending it, 0: the end */
	uint16_t	 p_len;		/* PART_LIT */
	const char	*p_s;		/* PART_LIT: into ns_pattern */
};

struct chan_table {
	struct chan_ns	*t_ns[CHAN_NS_MAX];
	int		 t_n;
	char		*t_claims[CHAN_CLAIMS_MAX + 1];	/* NULL-ended */
	int		 t_nclaims;
};

/* One part of a name a pattern matched: a claim's value. */
struct chan_capture {
	size_t		 c_off, c_len;
	int		 c_claim;
};

#define H	"history=100 history_ttl=5m"
const char *const chan_default_lines[] = {
	"announcements public " H,
	"apps:* authenticated " H " well_known=created,updated,deleted,deployed,status",
	"users:* authenticated " H " well_known=created,updated,deleted",
	"user:{userId} self " H,
	"database:* authenticated " H
	    " well_known=table_created,table_updated,table_deleted,row_updated",
	"deployments:* authenticated " H " well_known=started,completed,failed,status",
	"storage:* authenticated " H " well_known=uploaded,deleted,updated",
	"system:* role=admin " H " well_known=health,metrics,alerts",
	NULL
};
#undef H

static int
chan_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
	    c == '@' || c == '-';
}

int
chan_name_valid(const char *name, size_t len)
{
	size_t	 i;

	if (name == NULL || len == 0 || len > RT_CHANNEL_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!chan_char_ok((unsigned char)name[i]))
			return 0;
	return 1;
}

/* ---- the table ---------------------------------------------------------- */

struct chan_table *
chan_table_new(void)
{
	return calloc(1, sizeof(struct chan_table));
}

static void
chan_ns_free(struct chan_ns *ns)
{
	int	 i;

	if (ns == NULL)
		return;
	for (i = 0; i < ns->ns_nroles; i++)
		free(ns->ns_roles[i]);
	for (i = 0; i < ns->ns_nwell_known; i++)
		free(ns->ns_well_known[i]);
	for (i = 0; i < ns->ns_nlisted; i++)
		free(ns->ns_listed[i]);
	free(ns->ns_listed);
	free(ns->ns_parts);
	free(ns->ns_pattern);
	free((char *)(uintptr_t)ns->ns_file);
	free(ns);
}

void
chan_table_free(struct chan_table *t)
{
	int	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->t_n; i++)
		chan_ns_free(t->t_ns[i]);
	for (i = 0; i < t->t_nclaims; i++)
		free(t->t_claims[i]);
	free(t);
}

int
chan_table_count(const struct chan_table *t)
{
	return t->t_n;
}

const struct chan_ns *
chan_table_ns(const struct chan_table *t, int i)
{
	return (i >= 0 && i < t->t_n) ? t->t_ns[i] : NULL;
}

const char *const *
chan_table_claims(const struct chan_table *t)
{
	return (const char *const *)t->t_claims;
}

/* ---- matching ------------------------------------------------------------ */

/*
 * Does name have ns's shape?  1 and the claim parts in caps (up to
 * CHAN_TEMPLATES_MAX), else 0.  Each part's extent is decided by the
 * name alone, so a name parses one way only.
 */
static int
chan_shape(const struct chan_ns *ns, const char *name, size_t len,
    struct chan_capture *caps, int *ncaps)
{
	const struct chan_part	*p = ns->ns_parts;
	const char		*e;
	size_t			 pos = 0, end;
	int			 i, n = 0;

	for (i = 0; i < ns->ns_nparts; i++, p++) {
		switch (p->p_kind) {
		case PART_LIT:
			if (len - pos < p->p_len || memcmp(name + pos, p->p_s, p->p_len) != 0)
				return 0;
			pos += p->p_len;
			break;
		case PART_STAR:
			if (pos >= len)
				return 0;
			pos = len;
			break;
		case PART_CLAIM:
			if (pos >= len)
				return 0;
			end = len;
			if (p->p_term != '\0') {
				if ((e = memchr(name + pos, p->p_term, len - pos)) == NULL)
					return 0;
				end = (size_t)(e - name);
			}
			if (end == pos)
				return 0;
			caps[n].c_off = pos;
			caps[n].c_len = end - pos;
			caps[n].c_claim = p->p_claim;
			n++;
			pos = end;
			break;
		}
	}
	*ncaps = n;
	return pos == len;
}

void
chan_ns_shape(const struct chan_ns *ns,
    void (*emit)(int, const char *, size_t, char, void *), void *arg)
{
	const struct chan_part	*p = ns->ns_parts;
	int			 i;

	for (i = 0; i < ns->ns_nparts; i++, p++)
		switch (p->p_kind) {
		case PART_LIT:
			emit('l', p->p_s, p->p_len, '\0', arg);
			break;
		case PART_STAR:
			emit('s', NULL, 0, '\0', arg);
			break;
		case PART_CLAIM:
			emit('c', NULL, 0, p->p_term, arg);
			break;
		}
}

const struct chan_ns *
chan_match(const struct chan_table *t, const char *name, size_t len)
{
	struct chan_capture	 caps[CHAN_TEMPLATES_MAX];
	int			 i, n;

	for (i = 0; i < t->t_n; i++)
		if (chan_shape(t->t_ns[i], name, len, caps, &n))
			return t->t_ns[i];
	return NULL;
}

static int
chan_is_authenticated(const struct auth_user *user)
{
	return user != NULL && user->u_authenticated;
}

static int
chan_is_admin(const struct auth_user *user)
{
	return chan_is_authenticated(user) && user->u_admin;
}

static int
chan_role_ok(const struct chan_ns *ns, const struct auth_user *user)
{
	int	 i;

	if (!chan_is_authenticated(user) || !user->u_has_role)
		return 0;
	for (i = 0; i < ns->ns_nroles; i++)
		if (strcmp(ns->ns_roles[i], user->u_role) == 0)
			return 1;
	return 0;
}

/* WHO alone, without the claim parts. */
static int
chan_who_ok(const struct chan_ns *ns, const struct auth_user *user)
{
	switch (ns->ns_who) {
	case CHAN_WHO_PUBLIC:
		return 1;
	case CHAN_WHO_AUTHENTICATED:
	case CHAN_WHO_SELF:
		return chan_is_authenticated(user);
	case CHAN_WHO_ROLE:
		return chan_role_ok(ns, user);
	}
	return 0;
}

/* Every claim part is the caller's own value, byte for byte; admin: any. */
static int
chan_claims_ok(const struct chan_table *t, const char *name,
    const struct chan_capture *caps, int n, const struct auth_user *user)
{
	const char	*v;
	size_t		 vlen;
	int		 i;

	if (n == 0 || chan_is_admin(user))
		return 1;
	if (!chan_is_authenticated(user))
		return 0;
	for (i = 0; i < n; i++) {
		v = auth_user_claim(user, t->t_claims[caps[i].c_claim], &vlen);
		if (v == NULL || vlen != caps[i].c_len ||
		    memcmp(v, name + caps[i].c_off, vlen) != 0)
			return 0;
	}
	return 1;
}

enum chan_verdict
chan_authorize(const struct chan_table *t, const char *name, size_t len,
    const struct auth_user *user, const struct chan_ns **nsp)
{
	struct chan_capture	 caps[CHAN_TEMPLATES_MAX];
	const struct chan_ns	*ns;
	int			 i, n = 0;

	if (nsp != NULL)
		*nsp = NULL;
	if (!chan_name_valid(name, len))
		return CHAN_INVALID;
	for (i = 0; i < t->t_n; i++)
		if (chan_shape(t->t_ns[i], name, len, caps, &n))
			break;
	if (i == t->t_n)
		return CHAN_UNKNOWN;
	ns = t->t_ns[i];
	if (nsp != NULL)
		*nsp = ns;
	if (!chan_who_ok(ns, user) || !chan_claims_ok(t, name, caps, n, user))
		return CHAN_DENIED;
	return CHAN_OK;
}

const char *
chan_verdict_message(enum chan_verdict v)
{
	switch (v) {
	case CHAN_OK:
		return "OK";
	case CHAN_INVALID:
		return "Missing or invalid channel";
	case CHAN_UNKNOWN:
		return "Unknown channel";
	case CHAN_DENIED:
		return "Not authorized to subscribe to this channel";
	}
	return "Unknown channel";
}

/* ---- what a caller may use, by name -------------------------------------- */

/*
 * ns's pattern with its claim parts filled from user's own claims and
 * its '*' replaced by suffix (NULL: there must be no '*').  0, or -1 when
 * a claim is missing or the name does not fit.
 */
static int
chan_fill(const struct chan_table *t, const struct chan_ns *ns,
    const struct auth_user *user, const char *suffix, char *out, size_t outlen)
{
	const struct chan_part	*p = ns->ns_parts;
	const char		*v;
	size_t			 n = 0, vlen;
	int			 i;

	for (i = 0; i < ns->ns_nparts; i++, p++) {
		switch (p->p_kind) {
		case PART_LIT:
			v = p->p_s;
			vlen = p->p_len;
			break;
		case PART_STAR:
			if (suffix == NULL)
				return -1;
			v = suffix;
			vlen = strlen(suffix);
			break;
		default:
			if ((v = auth_user_claim(user, t->t_claims[p->p_claim], &vlen)) == NULL)
				return -1;
			break;
		}
		if (vlen >= outlen - n)
			return -1;
		memcpy(out + n, v, vlen);
		n += vlen;
	}
	out[n] = '\0';
	return 0;
}

/* Emit name if it really is ns's and the caller may use it. */
static void
chan_list_one(const struct chan_table *t, const struct chan_ns *ns,
    const struct auth_user *user, const char *name,
    void (*emit)(const char *, void *), void *arg)
{
	const struct chan_ns	*got;

	if (chan_authorize(t, name, strlen(name), user, &got) == CHAN_OK && got == ns)
		emit(name, arg);
}

static int
chan_ns_has(const struct chan_ns *ns, enum chan_part_kind kind)
{
	int	 i;

	for (i = 0; i < ns->ns_nparts; i++)
		if (((const struct chan_part *)ns->ns_parts)[i].p_kind == kind)
			return 1;
	return 0;
}

/*
 * Without claim parts, which names ns (not yet in t) lists is the same
 * for every caller: made once here, into ns_listed.  0, or -1 (memory).
 */
static int
chan_list_make(const struct chan_table *t, struct chan_ns *ns)
{
	struct chan_capture	 caps[CHAN_TEMPLATES_MAX];
	char			 name[RT_CHANNEL_MAX + 1];
	const char		*suffix;
	size_t			 len;
	int			 i, j, n, star = chan_ns_has(ns, PART_STAR);

	if (chan_ns_has(ns, PART_CLAIM))
		return 0;
	if ((ns->ns_listed = calloc((size_t)ns->ns_nwell_known + 1, sizeof(char *))) == NULL)
		return -1;
	for (j = 0; j < (star ? ns->ns_nwell_known : 1); j++) {
		suffix = star ? ns->ns_well_known[j] : NULL;
		if (chan_fill(t, ns, NULL, suffix, name, sizeof(name)) == -1)
			continue;
		len = strlen(name);
		if (!chan_name_valid(name, len) || !chan_shape(ns, name, len, caps, &n))
			continue;
		for (i = 0; i < t->t_n; i++)	/* the first that matches has it */
			if (chan_shape(t->t_ns[i], name, len, caps, &n))
				break;
		if (i < t->t_n)
			continue;
		if ((ns->ns_listed[ns->ns_nlisted] = strdup(name)) == NULL)
			return -1;
		ns->ns_nlisted++;
	}
	return 0;
}

void
chan_authorized_list(const struct chan_table *t, const struct auth_user *user,
    void (*emit)(const char *name, void *arg), void *arg)
{
	const struct chan_ns	*ns;
	char			 name[RT_CHANNEL_MAX + 1];
	int			 i, j, pass, star, claim;

	for (pass = 0; pass < 3; pass++)
		for (i = 0; i < t->t_n; i++) {
			ns = t->t_ns[i];
			star = chan_ns_has(ns, PART_STAR);
			claim = chan_ns_has(ns, PART_CLAIM);
			if (pass == 0 ? !star : (star || claim != (pass == 2)))
				continue;
			if (!chan_who_ok(ns, user))
				continue;
			if (!claim) {
				for (j = 0; j < ns->ns_nlisted; j++)
					emit(ns->ns_listed[j], arg);
			} else if (!star) {
				if (chan_fill(t, ns, user, NULL, name, sizeof(name)) == 0)
					chan_list_one(t, ns, user, name, emit, arg);
			} else {
				for (j = 0; j < ns->ns_nwell_known; j++)
					if (chan_fill(t, ns, user, ns->ns_well_known[j],
					    name, sizeof(name)) == 0)
						chan_list_one(t, ns, user, name, emit, arg);
			}
		}
}

/* ---- what the bridge subscribes to ---------------------------------------- */

/* The literal text before ns's first claim or '*', in out; 1 if there is more. */
static int
chan_prefix(const struct chan_ns *ns, char *out, size_t outlen)
{
	const struct chan_part	*p = ns->ns_parts;
	size_t			 n = 0;
	int			 i;

	for (i = 0; i < ns->ns_nparts && p[i].p_kind == PART_LIT; i++) {
		if (p[i].p_len >= outlen - n)
			break;
		memcpy(out + n, p[i].p_s, p[i].p_len);
		n += p[i].p_len;
	}
	out[n] = '\0';
	return i < ns->ns_nparts;
}

/*
 * Is Redis subscription (name, pattern) covered by another of the table's
 * (so that Redis would deliver its messages twice)?  A pattern is its
 * prefix and '*', which in Redis also matches the bare prefix.  Of two
 * equal ones the first stays.
 */
static int
chan_sub_covered(const struct chan_table *t, int self, const char *name, int pattern)
{
	char	 other[RT_CHANNEL_MAX + 1];
	size_t	 olen;
	int	 i, opat;

	for (i = 0; i < t->t_n; i++) {
		if (i == self)
			continue;
		opat = chan_prefix(t->t_ns[i], other, sizeof(other));
		olen = strlen(other);
		if (opat && strncmp(name, other, olen) == 0 &&
		    (strlen(name) > olen || !pattern || i < self))
			return 1;
		if (!opat && !pattern && i < self && strcmp(name, other) == 0)
			return 1;
	}
	return 0;
}

void
chan_redis_subscriptions(const struct chan_table *t,
    void (*emit)(const char *name, int pattern, void *arg), void *arg)
{
	char	 pre[RT_CHANNEL_MAX + 2];
	int	 i, pattern;

	for (i = 0; i < t->t_n; i++) {
		pattern = chan_prefix(t->t_ns[i], pre, sizeof(pre) - 1);
		if (chan_sub_covered(t, i, pre, pattern))
			continue;
		if (pattern)
			strcat(pre, "*");
		emit(pre, pattern, arg);
	}
}

/* ---- parsing a namespace line --------------------------------------------- */

static int
chan_claim_name_ok(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > CHAN_CLAIM_NAME_MAX || isdigit((unsigned char)s[0]))
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* The table's index of a claim name, added when new; -1 when full. */
static int
chan_claim_index(struct chan_table *t, const char *s, size_t len)
{
	int	 i;

	for (i = 0; i < t->t_nclaims; i++)
		if (strlen(t->t_claims[i]) == len && memcmp(t->t_claims[i], s, len) == 0)
			return i;
	if (t->t_nclaims == CHAN_CLAIMS_MAX ||
	    (t->t_claims[t->t_nclaims] = strndup(s, len)) == NULL)
		return -1;
	return t->t_nclaims++;
}

static int
chan_add_part(struct chan_ns *ns, struct chan_part *p)
{
	struct chan_part	*n;

	if ((n = reallocarray(ns->ns_parts, (size_t)ns->ns_nparts + 1, sizeof(*n))) == NULL)
		return -1;
	n[ns->ns_nparts++] = *p;
	ns->ns_parts = n;
	return 0;
}

/* One "{claim}" at s (pointing at '{'); its length, or -1 with msg. */
static int
chan_compile_claim(struct chan_table *t, struct chan_ns *ns, const char *s,
    int *nclaims, char *msg, size_t msglen)
{
	struct chan_part	 p = { .p_kind = PART_CLAIM };
	const char		*e = strchr(s, '}');
	int			 idx;

	if (e == NULL) {
		snprintf(msg, msglen, "unterminated {claim} in pattern '%s'", ns->ns_pattern);
		return -1;
	}
	if (!chan_claim_name_ok(s + 1, (size_t)(e - s - 1))) {
		snprintf(msg, msglen, "'%.*s' is not a claim name (letters, digits and _, "
		    "not starting with a digit, at most %d)", (int)(e - s + 1), s,
		    CHAN_CLAIM_NAME_MAX);
		return -1;
	}
	if (e[1] == '*' || e[1] == '{') {
		snprintf(msg, msglen, "in pattern '%s', a {claim} must be followed by a "
		    "name character or end the pattern", ns->ns_pattern);
		return -1;
	}
	if (++*nclaims > CHAN_TEMPLATES_MAX) {
		snprintf(msg, msglen, "pattern '%s' has more than %d {claim} parts",
		    ns->ns_pattern, CHAN_TEMPLATES_MAX);
		return -1;
	}
	if ((idx = chan_claim_index(t, s + 1, (size_t)(e - s - 1))) == -1) {
		snprintf(msg, msglen, "more than %d different claims in namespace patterns",
		    CHAN_CLAIMS_MAX);
		return -1;
	}
	p.p_claim = (uint8_t)idx;
	p.p_term = e[1];
	if (chan_add_part(ns, &p) == -1) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	return (int)(e - s + 1);
}

static int
chan_compile(struct chan_table *t, struct chan_ns *ns, char *msg, size_t msglen)
{
	const char	*s = ns->ns_pattern, *lit = NULL;
	size_t		 literal = 0;
	int		 n, nclaims = 0;

	if (*s == '\0' || strlen(s) > 2 * RT_CHANNEL_MAX) {
		snprintf(msg, msglen, "pattern must be 1 to %d bytes", RT_CHANNEL_MAX);
		return -1;
	}
	for (; ; s++) {
		if (lit != NULL && !chan_char_ok((unsigned char)*s)) {
			struct chan_part p = { .p_kind = PART_LIT, .p_s = lit,
			    .p_len = (uint16_t)(s - lit) };

			if (chan_add_part(ns, &p) == -1)
				goto nomem;
			literal += (size_t)(s - lit);
			lit = NULL;
		}
		if (*s == '\0')
			break;
		if (chan_char_ok((unsigned char)*s)) {
			if (lit == NULL)
				lit = s;
		} else if (*s == '*') {
			struct chan_part p = { .p_kind = PART_STAR };

			if (s[1] != '\0') {
				snprintf(msg, msglen, "in pattern '%s', '*' may only end it",
				    ns->ns_pattern);
				return -1;
			}
			if (chan_add_part(ns, &p) == -1)
				goto nomem;
		} else if (*s == '{') {
			if ((n = chan_compile_claim(t, ns, s, &nclaims, msg, msglen)) == -1)
				return -1;
			s += n - 1;
		} else {
			snprintf(msg, msglen, "bad character '%c' in pattern '%s' (names use "
			    "A-Z a-z 0-9 _ . : @ -, a final '*', {claim})",
			    isprint((unsigned char)*s) ? *s : '?', ns->ns_pattern);
			return -1;
		}
	}
	if (literal > RT_CHANNEL_MAX || (literal == RT_CHANNEL_MAX && ns->ns_nparts > 1)) {
		snprintf(msg, msglen, "pattern '%s' leaves no room in a %d-byte name",
		    ns->ns_pattern, RT_CHANNEL_MAX);
		return -1;
	}
	return 0;
 nomem:
	snprintf(msg, msglen, "out of memory");
	return -1;
}

/* "a,b,c" into list; -1 with msg on an empty, duplicate or bad item. */
static int
chan_parse_list(const char *what, const char *v, char **list, int *n, int names,
    char *msg, size_t msglen)
{
	const char	*e;
	size_t		 len;
	int		 i;

	for (;;) {
		e = strchr(v, ',');
		len = e != NULL ? (size_t)(e - v) : strlen(v);
		if (len == 0 || (names && !chan_name_valid(v, len)) ||
		    (!names && len > RT_ROLE_MAX)) {
			snprintf(msg, msglen, "%s: bad item '%.*s'", what, (int)len, v);
			return -1;
		}
		for (i = 0; i < *n; i++)
			if (strlen(list[i]) == len && memcmp(list[i], v, len) == 0) {
				snprintf(msg, msglen, "%s: '%.*s' twice", what, (int)len, v);
				return -1;
			}
		if (*n == CHAN_LIST_MAX) {
			snprintf(msg, msglen, "%s: more than %d items", what, CHAN_LIST_MAX);
			return -1;
		}
		if ((list[*n] = strndup(v, len)) == NULL) {
			snprintf(msg, msglen, "out of memory");
			return -1;
		}
		(*n)++;
		if (e == NULL)
			return 0;
		v = e + 1;
	}
}

static int
chan_parse_who(struct chan_ns *ns, const char *who, char *msg, size_t msglen)
{
	if (strcmp(who, "public") == 0)
		ns->ns_who = CHAN_WHO_PUBLIC;
	else if (strcmp(who, "authenticated") == 0)
		ns->ns_who = CHAN_WHO_AUTHENTICATED;
	else if (strcmp(who, "self") == 0)
		ns->ns_who = CHAN_WHO_SELF;
	else if (strncmp(who, "role=", 5) == 0) {
		ns->ns_who = CHAN_WHO_ROLE;
		return chan_parse_list("role", who + 5, ns->ns_roles, &ns->ns_nroles, 0,
		    msg, msglen);
	} else {
		snprintf(msg, msglen, "unknown WHO '%s' (public, authenticated, self, "
		    "role=R1,R2)", who);
		return -1;
	}
	return 0;
}

static int
chan_parse_int(const char *what, const char *v, int64_t max, int64_t *out,
    char *msg, size_t msglen)
{
	char		*end;
	long long	 n;

	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || !isdigit((unsigned char)*v) || n < 0 || n > max) {
		snprintf(msg, msglen, "%s: '%s' is not a number from 0 to %lld", what, v,
		    (long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

static int
chan_parse_option(struct chan_ns *ns, const char *opt, unsigned *seen,
    char *msg, size_t msglen)
{
	static const char *const names[] = {
		"history", "history_ttl", "max_subscribers", "well_known", NULL
	};
	const char	*eq = strchr(opt, '='), *v;
	int64_t		 n;
	int		 i;

	for (i = 0; names[i] != NULL; i++)
		if (eq != NULL && strlen(names[i]) == (size_t)(eq - opt) &&
		    strncmp(opt, names[i], (size_t)(eq - opt)) == 0)
			break;
	if (names[i] == NULL) {
		snprintf(msg, msglen, "unknown option '%s' (history=N, history_ttl=DURATION, "
		    "max_subscribers=N, well_known=a,b,c)", opt);
		return -1;
	}
	if (*seen & (1u << i)) {
		snprintf(msg, msglen, "%s given twice", names[i]);
		return -1;
	}
	*seen |= 1u << i;
	v = eq + 1;
	switch (i) {
	case 0:
		if (chan_parse_int("history", v, CHAN_HISTORY_MAX, &n, msg, msglen) == -1)
			return -1;
		ns->ns_history = (int)n;
		return 0;
	case 1:
		if (config_parse_duration(v, &ns->ns_history_ttl) == -1 ||
		    ns->ns_history_ttl < 0) {
			snprintf(msg, msglen, "history_ttl: bad duration '%s'", v);
			return -1;
		}
		return 0;
	case 2:
		return chan_parse_int("max_subscribers", v, 1000000000, &ns->ns_max_subscribers,
		    msg, msglen);
	default:
		return chan_parse_list("well_known", v, ns->ns_well_known,
		    &ns->ns_nwell_known, 1, msg, msglen);
	}
}

/* The checks that need the whole line: WHO against the pattern. */
static int
chan_check_ns(const struct chan_ns *ns, char *msg, size_t msglen)
{
	int	 claims = chan_ns_has(ns, PART_CLAIM);

	if (ns->ns_who == CHAN_WHO_SELF && !claims) {
		snprintf(msg, msglen, "'%s self': self needs a {claim} in the pattern",
		    ns->ns_pattern);
		return -1;
	}
	if (ns->ns_who == CHAN_WHO_PUBLIC && claims) {
		snprintf(msg, msglen, "'%s public': anonymous connections have no claims "
		    "to fill {claim}", ns->ns_pattern);
		return -1;
	}
	if (ns->ns_nwell_known > 0 && !chan_ns_has(ns, PART_STAR)) {
		snprintf(msg, msglen, "'%s': well_known needs a pattern ending in '*'",
		    ns->ns_pattern);
		return -1;
	}
	return 0;
}

/* Split line at blanks into up to max words (in place); their count, -1 if more. */
static int
chan_words(char *line, char **w, int max)
{
	char	*p = line;
	int	 n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		w[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
}

/* ns's shape with a final claim read as '*': "user:{userId}" is "user:*". */
static int
chan_part_star(const struct chan_ns *ns, int i)
{
	const struct chan_part	*p = ns->ns_parts;

	return p[i].p_kind == PART_STAR || (p[i].p_kind == PART_CLAIM && i == ns->ns_nparts - 1);
}

/*
 * Does every name of b's shape also have a's?  Exact for an exact b, a
 * template-free a, and same-shaped patterns; otherwise 0 (not proven).
 */
static int
chan_covers(const struct chan_ns *a, const struct chan_ns *b)
{
	const struct chan_part	*pa = a->ns_parts, *pb = b->ns_parts;
	struct chan_capture	 caps[CHAN_TEMPLATES_MAX];
	char			 pre[RT_CHANNEL_MAX + 1];
	size_t			 plen;
	int			 i, n;

	if (!chan_ns_has(b, PART_CLAIM) && !chan_ns_has(b, PART_STAR))
		return chan_shape(a, b->ns_pattern, strlen(b->ns_pattern), caps, &n);
	if (a->ns_nparts <= 2 && pa[0].p_kind == PART_LIT &&
	    (a->ns_nparts == 1 ? 0 : chan_part_star(a, 1))) {
		/* a is "prefix*": b's leading text must start with the prefix */
		chan_prefix(b, pre, sizeof(pre));
		plen = strlen(pre);
		return plen >= pa[0].p_len && memcmp(pre, pa[0].p_s, pa[0].p_len) == 0;
	}
	if (a->ns_nparts == 1 && chan_part_star(a, 0))
		return 1;	/* "*" */
	for (i = 0; i < a->ns_nparts && i < b->ns_nparts; i++) {
		/* a ends here with '*': b has 1+ characters left */
		if (i == a->ns_nparts - 1 && chan_part_star(a, i))
			return 1;
		/* a ends with text and '*': b's text starts with it, more follows */
		if (i == a->ns_nparts - 2 && pa[i].p_kind == PART_LIT && chan_part_star(a, i + 1))
			return pb[i].p_kind == PART_LIT && pb[i].p_len >= pa[i].p_len &&
			    memcmp(pb[i].p_s, pa[i].p_s, pa[i].p_len) == 0 &&
			    (pb[i].p_len > pa[i].p_len || i + 1 < b->ns_nparts);
		if (chan_part_star(a, i) != chan_part_star(b, i) ||
		    (!chan_part_star(a, i) && pa[i].p_kind != pb[i].p_kind))
			return 0;
		if (pa[i].p_kind == PART_LIT && (pa[i].p_len != pb[i].p_len ||
		    memcmp(pa[i].p_s, pb[i].p_s, pa[i].p_len) != 0))
			return 0;
		if (pa[i].p_kind == PART_CLAIM && pb[i].p_kind == PART_CLAIM &&
		    pa[i].p_term != pb[i].p_term)
			return 0;
	}
	return a->ns_nparts == b->ns_nparts;
}

static int
chan_where(char *out, size_t outlen, const struct chan_ns *ns)
{
	if (ns->ns_file != NULL)
		return snprintf(out, outlen, "%s:%d", ns->ns_file, ns->ns_line);
	return snprintf(out, outlen, "namespace %d", ns->ns_index + 1);
}

/* Against the earlier lines: -1 duplicate (msg), 1 shadowed (msg), 0. */
static int
chan_check_order(const struct chan_table *t, const struct chan_ns *ns,
    char *msg, size_t msglen)
{
	char	 where[512];
	int	 i;

	for (i = 0; i < t->t_n; i++)
		if (strcmp(t->t_ns[i]->ns_pattern, ns->ns_pattern) == 0) {
			chan_where(where, sizeof(where), t->t_ns[i]);
			snprintf(msg, msglen, "namespace '%s' is already declared at %s",
			    ns->ns_pattern, where);
			return -1;
		}
	for (i = 0; i < t->t_n; i++) {
		chan_where(where, sizeof(where), t->t_ns[i]);
		if (chan_covers(t->t_ns[i], ns)) {
			snprintf(msg, msglen, "namespace '%s' can never match: '%s' (%s) comes "
			    "first and matches every name it does", ns->ns_pattern,
			    t->t_ns[i]->ns_pattern, where);
			return 1;
		}
	}
	return 0;
}

static int
chan_parse_line(struct chan_table *t, struct chan_ns *ns, char *buf,
    char *msg, size_t msglen)
{
	char		*w[3 + 4 + 1];
	unsigned	 seen = 0;
	int		 n, i;

	if ((n = chan_words(buf, w, (int)(sizeof(w) / sizeof(w[0])) - 1)) == -1) {
		snprintf(msg, msglen, "too many words (PATTERN WHO [option=value ...])");
		return -1;
	}
	if (n < 2) {
		snprintf(msg, msglen, "expected PATTERN WHO [history=N] [history_ttl=DURATION] "
		    "[max_subscribers=N] [well_known=a,b,c]");
		return -1;
	}
	if ((ns->ns_pattern = strdup(w[0])) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	if (chan_compile(t, ns, msg, msglen) == -1 ||
	    chan_parse_who(ns, w[1], msg, msglen) == -1)
		return -1;
	for (i = 2; i < n; i++)
		if (chan_parse_option(ns, w[i], &seen, msg, msglen) == -1)
			return -1;
	return chan_check_ns(ns, msg, msglen);
}

int
chan_table_add(struct chan_table *t, const char *line, const char *file, int lineno,
    char *msg, size_t msglen)
{
	struct chan_ns	*ns;
	char		*buf;
	int		 rv, nclaims = t->t_nclaims;

	if (t->t_n == CHAN_NS_MAX) {
		snprintf(msg, msglen, "more than %d namespaces", CHAN_NS_MAX);
		return -1;
	}
	if ((ns = calloc(1, sizeof(*ns))) == NULL || (buf = strdup(line)) == NULL ||
	    (file != NULL && (ns->ns_file = strdup(file)) == NULL)) {
		free(ns);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	ns->ns_line = lineno;
	ns->ns_index = t->t_n;
	rv = chan_parse_line(t, ns, buf, msg, msglen);
	free(buf);
	if (rv == 0)
		rv = chan_check_order(t, ns, msg, msglen);
	if (rv != -1 && chan_list_make(t, ns) == -1) {
		snprintf(msg, msglen, "out of memory");
		rv = -1;
	}
	if (rv == -1) {
		chan_ns_free(ns);
		while (t->t_nclaims > nclaims) {	/* claims only this line named */
			t->t_nclaims--;
			free(t->t_claims[t->t_nclaims]);
			t->t_claims[t->t_nclaims] = NULL;
		}
		return -1;
	}
	t->t_ns[t->t_n++] = ns;
	return rv;
}

struct chan_table *
chan_table_default(void)
{
	struct chan_table	*t;
	char			 msg[512];
	int			 i;

	if ((t = chan_table_new()) == NULL)
		return NULL;
	for (i = 0; chan_default_lines[i] != NULL; i++)
		if (chan_table_add(t, chan_default_lines[i], NULL, 0, msg, sizeof(msg)) != 0) {
			chan_table_free(t);
			return NULL;
		}
	return t;
}

/* ---- writing it back ------------------------------------------------------ */

static size_t
chan_join(char *out, size_t outlen, const char *key, char *const *list, int n)
{
	size_t	 len = 0;
	int	 i;

	len += (size_t)snprintf(out, outlen, " %s=", key);
	for (i = 0; i < n && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? "," : "", list[i]);
	return len;
}

static void
chan_ns_line(const struct chan_ns *ns, char *out, size_t outlen)
{
	size_t	 n;

	n = (size_t)snprintf(out, outlen, "%s", ns->ns_pattern);
	if (ns->ns_who == CHAN_WHO_ROLE)
		n += chan_join(out + n, outlen - n, "role", ns->ns_roles, ns->ns_nroles);
	else
		n += (size_t)snprintf(out + n, outlen - n, " %s",
		    ns->ns_who == CHAN_WHO_PUBLIC ? "public" :
		    ns->ns_who == CHAN_WHO_SELF ? "self" : "authenticated");
	if (n < outlen && ns->ns_history > 0)
		n += (size_t)snprintf(out + n, outlen - n, " history=%d", ns->ns_history);
	if (n < outlen && ns->ns_history_ttl > 0)
		n += (size_t)snprintf(out + n, outlen - n, " history_ttl=%lldms",
		    (long long)ns->ns_history_ttl);
	if (n < outlen && ns->ns_max_subscribers > 0)
		n += (size_t)snprintf(out + n, outlen - n, " max_subscribers=%lld",
		    (long long)ns->ns_max_subscribers);
	if (n < outlen && ns->ns_nwell_known > 0)
		chan_join(out + n, outlen - n, "well_known", ns->ns_well_known,
		    ns->ns_nwell_known);
}

void
chan_table_lines(const struct chan_table *t, void (*emit)(const char *line, void *arg),
    void *arg)
{
	char	 line[CHAN_LINE_MAX];
	int	 i;

	for (i = 0; i < t->t_n; i++) {
		chan_ns_line(t->t_ns[i], line, sizeof(line));
		emit(line, arg);
	}
}

int
chan_table_equal(const struct chan_table *a, const struct chan_table *b)
{
	char	 la[CHAN_LINE_MAX];
	char	 lb[sizeof(la)];
	int	 i;

	if (a->t_n != b->t_n)
		return 0;
	for (i = 0; i < a->t_n; i++) {
		chan_ns_line(a->t_ns[i], la, sizeof(la));
		chan_ns_line(b->t_ns[i], lb, sizeof(lb));
		if (strcmp(la, lb) != 0)
			return 0;
	}
	return 1;
}
