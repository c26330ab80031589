/*
 * Namespace tables (channel.c): parsing namespace lines and their errors,
 * the matcher with {claim} templates, who may subscribe, the names listed
 * in authorizedChannels, the Redis subscriptions the bridge makes, and the
 * table written back as lines.  The default table's verdicts row by row
 * are test_channel.c's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"

/* ---- helpers -------------------------------------------------------- */

/* A table of the lines given (NULL-ended); each must parse without a warning. */
static struct chan_table *
tab(const char *line, ...)
{
	struct chan_table	*t;
	va_list			 ap;
	char			 msg[1024];
	int			 n = 0, rv;

	ck_assert_ptr_nonnull(t = chan_table_new());
	va_start(ap, line);
	for (; line != NULL; line = va_arg(ap, const char *)) {
		msg[0] = '\0';
		rv = chan_table_add(t, line, "test.conf", ++n, msg, sizeof(msg));
		ck_assert_msg(rv == 0, "\"%s\": %d %s", line, rv, msg);
	}
	va_end(ap);
	return t;
}

/*
 * A user: id (NULL: anonymous), role (NULL: none; "admin" makes an
 * admin), then claim name, value pairs, NULL-ended.
 */
static struct auth_user
usr(const char *id, const char *role, ...)
{
	struct auth_user	 u;
	const char		*name, *v;
	va_list			 ap;

	auth_anonymous(&u);
	if (id != NULL) {
		u.u_authenticated = 1;
		ck_assert_uint_lt(strlen(id), sizeof(u.u_id));
		strcpy(u.u_id, id);
	}
	if (role != NULL) {
		u.u_has_role = 1;
		strcpy(u.u_role, role);
		u.u_admin = strcmp(role, "admin") == 0;
	}
	va_start(ap, role);
	while ((name = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		ck_assert_int_eq(auth_user_add_claim(&u, name, v, strlen(v)), 0);
	}
	va_end(ap);
	return u;
}

static enum chan_verdict
az(const struct chan_table *t, const char *name, const struct auth_user *u)
{
	return chan_authorize(t, name, strlen(name), u, NULL);
}

/* The index of the namespace deciding name, -1 when none. */
static int
az_ns(const struct chan_table *t, const char *name, const struct auth_user *u)
{
	const struct chan_ns	*ns;

	(void)chan_authorize(t, name, strlen(name), u, &ns);
	return ns != NULL ? ns->ns_index : -1;
}

#define OK(t, n, u)	ck_assert_msg(az(t, n, u) == CHAN_OK, \
	"%s: %d, want OK", n, az(t, n, u))
#define DENIED(t, n, u)	ck_assert_msg(az(t, n, u) == CHAN_DENIED, \
	"%s: %d, want DENIED", n, az(t, n, u))
#define UNKNOWN(t, n, u) ck_assert_msg(az(t, n, u) == CHAN_UNKNOWN, \
	"%s: %d, want UNKNOWN", n, az(t, n, u))
#define INVALID(t, n, u) ck_assert_msg(az(t, n, u) == CHAN_INVALID, \
	"%s: %d, want INVALID", n, az(t, n, u))

/* Names or lines collected from a callback, and what they must be. */
struct list {
	int	 n;
	char	 s[300][CHAN_LINE_MAX];
};

static void
collect(const char *s, void *arg)
{
	struct list	*l = arg;

	ck_assert_int_lt(l->n, 300);
	ck_assert_uint_lt(strlen(s), sizeof(l->s[0]));
	strcpy(l->s[l->n++], s);
}

static void
collect_sub(const char *name, int pattern, void *arg)
{
	char	 s[RT_CHANNEL_MAX + 16];

	snprintf(s, sizeof(s), "%s %s", pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name);
	collect(s, arg);
}

static struct list *
list_new(void)
{
	struct list	*l;

	ck_assert_ptr_nonnull(l = calloc(1, sizeof(*l)));
	return l;
}

/* l is exactly the NULL-ended names given, in that order. */
static void
expect_list(const struct list *l, const char *const *want)
{
	int	 i;

	for (i = 0; want[i] != NULL; i++) {
		ck_assert_msg(i < l->n, "only %d names, missing \"%s\"", l->n, want[i]);
		ck_assert_msg(strcmp(l->s[i], want[i]) == 0, "name %d is \"%s\", want \"%s\"",
		    i, l->s[i], want[i]);
	}
	ck_assert_msg(l->n == i, "%d names, want %d (extra \"%s\")", l->n, i,
	    l->n > i ? l->s[i] : "");
}

static void
expect_authorized(const struct chan_table *t, const struct auth_user *u,
    const char *const *want)
{
	struct list	*l = list_new();
	int		 i;

	chan_authorized_list(t, u, collect, l);
	expect_list(l, want);
	for (i = 0; i < l->n; i++) {
		ck_assert_msg(strchr(l->s[i], '*') == NULL, "%s listed", l->s[i]);
		ck_assert_msg(az(t, l->s[i], u) == CHAN_OK, "%s listed, not allowed",
		    l->s[i]);
	}
	free(l);
}

static void
expect_subscriptions(const struct chan_table *t, const char *const *want)
{
	struct list	*l = list_new();

	chan_redis_subscriptions(t, collect_sub, l);
	expect_list(l, want);
	free(l);
}

/* ---- the matcher ---------------------------------------------------- */

START_TEST(test_exact_and_prefix)
{
	struct chan_table	*t = tab("lobby public", "apps:* authenticated", NULL);
	struct auth_user	 anon = usr(NULL, NULL, NULL), u = usr("u1", NULL, NULL);

	OK(t, "lobby", &anon);
	OK(t, "lobby", &u);
	OK(t, "lobby", NULL);
	UNKNOWN(t, "lobbyx", &u);
	UNKNOWN(t, "lobb", &u);
	UNKNOWN(t, "Lobby", &u);
	OK(t, "apps:x", &u);
	OK(t, "apps:x:y.z@w-1_2", &u);
	DENIED(t, "apps:x", &anon);
	DENIED(t, "apps:x", NULL);
	UNKNOWN(t, "apps:", &u);	/* '*' takes 1+ characters */
	UNKNOWN(t, "apps", &u);
	UNKNOWN(t, "apps.x", &u);
	UNKNOWN(t, "xapps:x", &u);
	INVALID(t, "apps:*", &u);
	INVALID(t, "", &u);
	INVALID(t, "apps:a b", &u);
	ck_assert_int_eq(az_ns(t, "lobby", &u), 0);
	ck_assert_int_eq(az_ns(t, "apps:x", &anon), 1);
	ck_assert_int_eq(az_ns(t, "nope", &u), -1);
	ck_assert_int_eq(az_ns(t, "bad name", &u), -1);
	ck_assert_ptr_eq(chan_match(t, "apps:q", 6), chan_table_ns(t, 1));
	ck_assert_ptr_eq(chan_match(t, "lobby", 5), chan_table_ns(t, 0));
	ck_assert_ptr_null(chan_match(t, "apps:", 5));
	ck_assert_ptr_null(chan_match(t, "other", 5));
	/* the length counts, not a terminator */
	ck_assert_int_eq(chan_authorize(t, "lobbyist", 5, &u, NULL), CHAN_OK);
	chan_table_free(t);
}
END_TEST

START_TEST(test_template_at_end)
{
	struct chan_table	*t = tab("user:{userId} self", NULL);
	struct auth_user	 u = usr("u1", NULL, NULL), odd = usr("a:b.c", NULL, NULL);
	struct auth_user	 admin = usr("root", "admin", NULL);

	OK(t, "user:u1", &u);
	DENIED(t, "user:u2", &u);
	DENIED(t, "user:u1x", &u);
	DENIED(t, "user:u", &u);
	DENIED(t, "user:U1", &u);
	UNKNOWN(t, "user:", &u);
	UNKNOWN(t, "user", &u);
	/* at the end it takes the rest, whatever characters that holds */
	OK(t, "user:a:b.c", &odd);
	DENIED(t, "user:a:b", &odd);
	DENIED(t, "user:a", &odd);
	OK(t, "user:anyone", &admin);
	OK(t, "user:u1", &admin);
	DENIED(t, "user:u1", NULL);
	chan_table_free(t);
}
END_TEST

START_TEST(test_template_in_the_middle)
{
	struct chan_table	*t = tab("org:{orgId}:* self", "room:{orgId}:lobby self", NULL);
	struct auth_user	 u = usr("u1", NULL, "orgId", "o1", NULL);
	struct auth_user	 other = usr("u2", NULL, "orgId", "o2", NULL);
	struct auth_user	 none = usr("u3", NULL, NULL);

	OK(t, "org:o1:chat", &u);
	OK(t, "org:o1:a:b", &u);	/* the '*' takes the rest */
	DENIED(t, "org:o2:chat", &u);
	OK(t, "org:o2:chat", &other);
	DENIED(t, "org:o1:chat", &other);
	DENIED(t, "org:o1:chat", &none);	/* no orgId claim at all */
	DENIED(t, "org:o:chat", &u);
	DENIED(t, "org:o12:chat", &u);
	UNKNOWN(t, "org:o1", &u);
	UNKNOWN(t, "org:o1:", &u);
	UNKNOWN(t, "org::chat", &u);	/* a {claim} takes 1+ characters */
	UNKNOWN(t, "org:", &u);
	OK(t, "room:o1:lobby", &u);
	DENIED(t, "room:o2:lobby", &u);
	UNKNOWN(t, "room:o1:lobbyx", &u);
	UNKNOWN(t, "room:o1:x", &u);
	UNKNOWN(t, "room:o1:x:lobby", &u);	/* {orgId} ends at the first ':' */
	chan_table_free(t);
}
END_TEST

START_TEST(test_two_templates)
{
	struct chan_table	*t = tab("t:{a}.{b} self", NULL);
	struct auth_user	 u = usr("u1", NULL, "a", "x", "b", "y", NULL);
	struct auth_user	 dotted = usr("u2", NULL, "a", "x", "b", "y.z", NULL);
	struct auth_user	 onlya = usr("u3", NULL, "a", "x", NULL);

	OK(t, "t:x.y", &u);
	DENIED(t, "t:x.y.z", &u);	/* {b} is "y.z" */
	OK(t, "t:x.y.z", &dotted);
	DENIED(t, "t:x.y", &dotted);
	DENIED(t, "t:x.q", &u);
	DENIED(t, "t:q.y", &u);
	DENIED(t, "t:x.y", &onlya);
	UNKNOWN(t, "t:x", &u);
	UNKNOWN(t, "t:x.", &u);
	UNKNOWN(t, "t:.y", &u);
	UNKNOWN(t, "t:", &u);
	chan_table_free(t);
}
END_TEST

START_TEST(test_first_match_wins)
{
	struct chan_table	*t = tab("org:{orgId}:admin role=admin",
	    "org:{orgId}:* self", NULL);
	struct auth_user	 u = usr("u1", NULL, "orgId", "o1", NULL);
	struct auth_user	 admin = usr("root", "admin", NULL);
	struct chan_table	*r;
	char			 msg[512];

	DENIED(t, "org:o1:admin", &u);	/* its own org, but the admin line decides */
	ck_assert_int_eq(az_ns(t, "org:o1:admin", &u), 0);
	OK(t, "org:o1:chat", &u);
	ck_assert_int_eq(az_ns(t, "org:o1:chat", &u), 1);
	OK(t, "org:o9:admin", &admin);
	OK(t, "org:o9:chat", &admin);
	/* the other way round the admin line never decides */
	ck_assert_ptr_nonnull(r = chan_table_new());
	ck_assert_int_eq(chan_table_add(r, "org:{orgId}:* self", NULL, 1, msg, sizeof(msg)), 0);
	ck_assert_int_ge(chan_table_add(r, "org:{orgId}:admin role=admin", NULL, 2, msg,
	    sizeof(msg)), 0);
	OK(r, "org:o1:admin", &u);
	ck_assert_int_eq(az_ns(r, "org:o1:admin", &u), 0);
	chan_table_free(r);
	chan_table_free(t);
}
END_TEST

START_TEST(test_first_match_decides_even_when_a_later_one_would_allow)
{
	struct chan_table	*t = tab("apps:secret role=admin",
	    "apps:* authenticated", NULL);
	struct auth_user	 u = usr("u1", NULL, NULL);

	DENIED(t, "apps:secret", &u);
	OK(t, "apps:secretx", &u);
	OK(t, "apps:other", &u);
	chan_table_free(t);
}
END_TEST

START_TEST(test_odd_claim_values_never_widen)
{
	struct chan_table	*t = tab("org:{orgId}:* self", "t:{a}.{b} self",
	    "user:{userId} self", NULL);
	struct auth_user	 colon = usr("u1", NULL, "orgId", "o1:x", "a", "x.y",
	    "b", "z", NULL);
	struct auth_user	 star = usr("u2", NULL, "orgId", "*", "a", "*", "b", "*", NULL);
	struct auth_user	 empty = usr("u3", NULL, "orgId", "", NULL);
	struct auth_user	 stars = usr("*", NULL, NULL);

	/* "o1:x" never captures: {orgId} ends at the first ':' */
	DENIED(t, "org:o1:x:chat", &colon);
	DENIED(t, "org:o1:chat", &colon);
	DENIED(t, "org:o1:x", &colon);
	DENIED(t, "t:x.y.z", &colon);	/* {a} ends at the first '.' */
	DENIED(t, "t:x.z", &colon);
	/* "*" is no name character: it fills nothing, and matches nothing */
	DENIED(t, "org:o1:chat", &star);
	DENIED(t, "org:a:b", &star);
	DENIED(t, "t:a.b", &star);
	INVALID(t, "org:*:chat", &star);
	INVALID(t, "org:*:*", &star);
	DENIED(t, "user:x", &stars);
	INVALID(t, "user:*", &stars);
	/* an empty value: a capture has 1+ characters */
	DENIED(t, "org:o1:chat", &empty);
	UNKNOWN(t, "org::chat", &empty);
	chan_table_free(t);
}
END_TEST

START_TEST(test_admin_may_use_any_value)
{
	struct chan_table	*t = tab("org:{orgId}:* self", "t:{a}.{b} authenticated",
	    "user:{userId} self", NULL);
	struct auth_user	 admin = usr("root", "admin", NULL);
	struct auth_user	 admin_o = usr("root", "admin", "orgId", "o1", NULL);

	OK(t, "org:o1:chat", &admin);
	OK(t, "org:anything:x", &admin);
	OK(t, "t:p.q", &admin);
	OK(t, "user:someone", &admin);
	OK(t, "org:o2:chat", &admin_o);
	chan_table_free(t);
}
END_TEST

START_TEST(test_anonymous_never_passes_a_claim)
{
	struct chan_table	*t = tab("org:{orgId}:* authenticated",
	    "x:{orgId} role=ops", "user:{userId} self", NULL);
	struct auth_user	 anon = usr(NULL, NULL, "orgId", "o1", NULL);
	struct auth_user	 anon_admin = usr(NULL, "admin", "orgId", "o1", NULL);
	struct auth_user	 anon_ops = usr(NULL, "ops", "orgId", "o1", NULL);
	size_t			 len;

	/* even with claims and a role in it, an anonymous user has none */
	ck_assert_ptr_null(auth_user_claim(&anon, "orgId", &len));
	DENIED(t, "org:o1:chat", &anon);
	DENIED(t, "org:o1:chat", &anon_admin);
	DENIED(t, "org:o1:chat", NULL);
	DENIED(t, "x:o1", &anon_ops);
	DENIED(t, "user:x", &anon);
	chan_table_free(t);
}
END_TEST

START_TEST(test_who_public_and_authenticated)
{
	struct chan_table	*t = tab("pub public", "auth:* authenticated", NULL);
	struct auth_user	 anon = usr(NULL, NULL, NULL), u = usr("u1", NULL, NULL);
	struct auth_user	 admin = usr("root", "admin", NULL);

	OK(t, "pub", &anon);
	OK(t, "pub", &u);
	OK(t, "pub", &admin);
	DENIED(t, "auth:x", &anon);
	OK(t, "auth:x", &u);
	OK(t, "auth:x", &admin);
	chan_table_free(t);
}
END_TEST

START_TEST(test_who_roles)
{
	struct chan_table	*t = tab("ops:* role=ops,sre", "adm:* role=admin",
	    "both:* role=ops,admin", "org:{orgId}:ops role=ops", NULL);
	struct auth_user	 ops = usr("u1", "ops", "orgId", "o1", NULL);
	struct auth_user	 sre = usr("u2", "sre", NULL);
	struct auth_user	 plain = usr("u3", NULL, NULL);
	struct auth_user	 other = usr("u4", "Ops", NULL);
	struct auth_user	 list = usr("u5", "ops,sre", NULL);
	struct auth_user	 admin = usr("root", "admin", NULL);
	struct auth_user	 anon = usr(NULL, "ops", NULL);

	OK(t, "ops:x", &ops);
	OK(t, "ops:x", &sre);
	DENIED(t, "ops:x", &plain);
	DENIED(t, "ops:x", &other);
	DENIED(t, "ops:x", &list);
	DENIED(t, "ops:x", &admin);	/* admin is not implied */
	DENIED(t, "ops:x", &anon);
	DENIED(t, "ops:x", NULL);
	OK(t, "adm:x", &admin);
	DENIED(t, "adm:x", &ops);
	OK(t, "both:x", &admin);
	OK(t, "both:x", &ops);
	DENIED(t, "both:x", &sre);
	/* a role and the claims */
	OK(t, "org:o1:ops", &ops);
	DENIED(t, "org:o2:ops", &ops);
	DENIED(t, "org:o1:ops", &admin);	/* any value, but not the role */
	chan_table_free(t);
}
END_TEST

START_TEST(test_self_and_authenticated_both_need_the_claims)
{
	struct chan_table	*t = tab("a:{orgId}:* self", "b:{orgId}:* authenticated",
	    NULL);
	struct auth_user	 u = usr("u1", NULL, "orgId", "o1", NULL);

	OK(t, "a:o1:x", &u);
	OK(t, "b:o1:x", &u);
	DENIED(t, "a:o2:x", &u);
	DENIED(t, "b:o2:x", &u);
	chan_table_free(t);
}
END_TEST

START_TEST(test_claim_only_pattern_and_catch_all)
{
	struct chan_table	*t = tab("lobby public", "{tenant} self", NULL);
	struct auth_user	 u = usr("u1", NULL, "tenant", "acme:room", NULL);
	struct chan_table	*c = tab("lobby public", "* authenticated", NULL);
	struct auth_user	 v = usr("u1", NULL, NULL);

	OK(t, "acme:room", &u);
	DENIED(t, "acme", &u);
	OK(t, "lobby", &u);
	OK(c, "anything:at.all", &v);
	DENIED(c, "anything", NULL);
	OK(c, "lobby", NULL);
	chan_table_free(c);
	chan_table_free(t);
}
END_TEST

START_TEST(test_longest_names)
{
	char			 line[RT_CHANNEL_MAX + 32], name[RT_CHANNEL_MAX + 2];
	struct chan_table	*t;
	struct auth_user	 u = usr("u1", NULL, NULL);

	/* an exact pattern of 200 bytes is a name */
	memset(name, 'a', sizeof(name));
	name[RT_CHANNEL_MAX] = '\0';
	snprintf(line, sizeof(line), "%s authenticated", name);
	t = tab(line, "b:* authenticated", NULL);
	OK(t, name, &u);
	/* a prefix name up to 200 bytes, not more */
	memcpy(name, "b:", 2);
	ck_assert_int_eq(chan_authorize(t, name, RT_CHANNEL_MAX, &u, NULL), CHAN_OK);
	name[RT_CHANNEL_MAX] = 'a';
	ck_assert_int_eq(chan_authorize(t, name, RT_CHANNEL_MAX + 1, &u, NULL),
	    CHAN_INVALID);
	chan_table_free(t);
}
END_TEST

/* ---- what a line sets ------------------------------------------------ */

START_TEST(test_line_fields)
{
	struct chan_table	*t;
	const struct chan_ns	*ns;
	char			 msg[256];

	ck_assert_ptr_nonnull(t = chan_table_new());
	ck_assert_int_eq(chan_table_add(t, "lobby public", "a.conf", 3, msg, sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_add(t, "  ops:*\trole=ops,admin  history=5 "
	    "history_ttl=2s  max_subscribers=10 well_known=a,b\t", "a.conf", 7, msg,
	    sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_add(t, "user:{userId} self history_ttl=5", NULL, 0,
	    msg, sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_count(t), 3);
	ck_assert_ptr_null(chan_table_ns(t, 3));
	ck_assert_ptr_null(chan_table_ns(t, -1));

	ns = chan_table_ns(t, 0);
	ck_assert_str_eq(ns->ns_pattern, "lobby");
	ck_assert_int_eq(ns->ns_who, CHAN_WHO_PUBLIC);
	ck_assert_int_eq(ns->ns_history, 0);
	ck_assert_int_eq(ns->ns_history_ttl, 0);
	ck_assert_int_eq(ns->ns_max_subscribers, 0);
	ck_assert_int_eq(ns->ns_nwell_known, 0);
	ck_assert_str_eq(ns->ns_file, "a.conf");
	ck_assert_int_eq(ns->ns_line, 3);
	ck_assert_int_eq(ns->ns_index, 0);

	ns = chan_table_ns(t, 1);
	ck_assert_str_eq(ns->ns_pattern, "ops:*");
	ck_assert_int_eq(ns->ns_who, CHAN_WHO_ROLE);
	ck_assert_int_eq(ns->ns_nroles, 2);
	ck_assert_str_eq(ns->ns_roles[0], "ops");
	ck_assert_str_eq(ns->ns_roles[1], "admin");
	ck_assert_int_eq(ns->ns_history, 5);
	ck_assert_int_eq(ns->ns_history_ttl, 2000);
	ck_assert_int_eq(ns->ns_max_subscribers, 10);
	ck_assert_int_eq(ns->ns_nwell_known, 2);
	ck_assert_str_eq(ns->ns_well_known[0], "a");
	ck_assert_str_eq(ns->ns_well_known[1], "b");
	ck_assert_int_eq(ns->ns_line, 7);
	ck_assert_int_eq(ns->ns_index, 1);

	ns = chan_table_ns(t, 2);
	ck_assert_int_eq(ns->ns_who, CHAN_WHO_SELF);
	ck_assert_int_eq(ns->ns_history_ttl, 5000);	/* plain: seconds */
	ck_assert_ptr_null(ns->ns_file);
	chan_table_free(t);
}
END_TEST

START_TEST(test_option_bounds)
{
	struct chan_table	*t = tab(
	    "a:* authenticated history=0 history_ttl=0 max_subscribers=0",
	    "b:* authenticated history=100000 max_subscribers=1000000000",
	    "c:* authenticated history_ttl=1500ms",
	    "d:* authenticated history_ttl=1d",
	    "e:* authenticated well_known=x", NULL);

	ck_assert_int_eq(chan_table_ns(t, 0)->ns_history, 0);
	ck_assert_int_eq(chan_table_ns(t, 1)->ns_history, CHAN_HISTORY_MAX);
	ck_assert_int_eq(chan_table_ns(t, 1)->ns_max_subscribers, 1000000000);
	ck_assert_int_eq(chan_table_ns(t, 2)->ns_history_ttl, 1500);
	ck_assert_int_eq(chan_table_ns(t, 3)->ns_history_ttl, 86400000);
	chan_table_free(t);
}
END_TEST

/* ---- parse errors ----------------------------------------------------- */

static char	 long_claim[200], long_role[200], long_literal[300], long_pattern[500];
static char	 many_well_known[2000];

static void
setup_long(void)
{
	int	 i;
	size_t	 n;

	/* {<65 letters>}, role=<65 letters>, 201 literal bytes, 401 bytes */
	memset(long_claim, 0, sizeof(long_claim));
	memcpy(long_claim, "u:{", 3);
	memset(long_claim + 3, 'c', CHAN_CLAIM_NAME_MAX + 1);
	strcat(long_claim, "} self");
	snprintf(long_role, sizeof(long_role), "r:* role=%0*d", RT_ROLE_MAX + 1, 0);
	memset(long_literal, 0, sizeof(long_literal));
	memset(long_literal, 'a', RT_CHANNEL_MAX + 1);
	strcat(long_literal, " public");
	memset(long_pattern, 0, sizeof(long_pattern));
	memset(long_pattern, 'a', 2 * RT_CHANNEL_MAX + 1);
	strcat(long_pattern, " public");
	n = (size_t)snprintf(many_well_known, sizeof(many_well_known),
	    "w:* authenticated well_known=");
	for (i = 0; i <= CHAN_LIST_MAX; i++)
		n += (size_t)snprintf(many_well_known + n, sizeof(many_well_known) - n,
		    "%sk%d", i ? "," : "", i);
}

/* Each line alone is refused, with a message that mentions this. */
static const struct {
	const char	*line;
	const char	*mention;
} bad[] = {
	/* the pattern */
	{ "apps/x authenticated", "bad character '/' in pattern 'apps/x'" },
	{ "apps:\xc3\xa9 authenticated", "bad character" },
	{ "apps:\"x\" authenticated", "bad character '\"'" },
	{ "a}b authenticated", "bad character '}'" },
	{ "a*b authenticated", "'*' may only end it" },
	{ "apps:** authenticated", "'*' may only end it" },
	{ "*:x authenticated", "'*' may only end it" },
	{ "user:{userId self", "unterminated {claim}" },
	{ "user:{ self", "unterminated {claim}" },
	{ "user:{x-y} self", "'{x-y}' is not a claim name" },
	{ "user:{} self", "'{}' is not a claim name" },
	{ "user:{1a} self", "'{1a}' is not a claim name" },
	{ "user:{a.b} self", "'{a.b}' is not a claim name" },
	{ "user:{a{b} self", "is not a claim name" },
	{ "user:{*} self", "'{*}' is not a claim name" },
	{ "user:{a}* self", "must be followed by a name character or end the pattern" },
	{ "user:{a}{b} self", "must be followed by a name character" },
	{ "x:{a}.{b}.{c}.{d}.{e} self", "more than 4 {claim} parts" },
	{ "x:{a}.{a}.{a}.{a}.{a} self", "more than 4 {claim} parts" },
	/* WHO */
	{ "apps:* everyone", "unknown WHO 'everyone'" },
	{ "apps:* Authenticated", "unknown WHO 'Authenticated'" },
	{ "apps:* role", "unknown WHO 'role'" },
	{ "apps:* self", "self needs a {claim}" },
	{ "lobby self", "self needs a {claim}" },
	{ "org:{orgId}:chat public", "anonymous connections have no claims" },
	{ "user:{userId} public", "anonymous connections have no claims" },
	{ "apps:* role=", "role: bad item ''" },
	{ "apps:* role=a,,b", "role: bad item ''" },
	{ "apps:* role=a,", "role: bad item ''" },
	{ "apps:* role=ops,ops", "role: 'ops' twice" },
	/* options */
	{ "apps:* authenticated foo=1", "unknown option 'foo=1'" },
	{ "apps:* authenticated history", "unknown option 'history'" },
	{ "apps:* authenticated History=1", "unknown option 'History=1'" },
	{ "apps:* authenticated =1", "unknown option '=1'" },
	{ "apps:* authenticated history=1 history=2", "history given twice" },
	{ "apps:* authenticated history=1 history=1", "history given twice" },
	{ "apps:* authenticated history_ttl=1s history_ttl=2s",
	    "history_ttl given twice" },
	{ "apps:* authenticated max_subscribers=1 max_subscribers=2",
	    "max_subscribers given twice" },
	{ "apps:* authenticated well_known=a well_known=b", "well_known given twice" },
	{ "apps:* authenticated history=100001", "history: '100001' is not a number "
	    "from 0 to 100000" },
	{ "apps:* authenticated history=-1", "history: '-1' is not a number" },
	{ "apps:* authenticated history=", "history: '' is not a number" },
	{ "apps:* authenticated history=1x", "history: '1x' is not a number" },
	{ "apps:* authenticated history=+1", "history: '+1' is not a number" },
	{ "apps:* authenticated history=99999999999999999999", "history: " },
	{ "apps:* authenticated max_subscribers=1000000001", "max_subscribers: "
	    "'1000000001' is not a number" },
	{ "apps:* authenticated max_subscribers=-5", "max_subscribers: '-5'" },
	{ "apps:* authenticated history_ttl=5x", "history_ttl: bad duration '5x'" },
	{ "apps:* authenticated history_ttl=", "history_ttl: bad duration ''" },
	{ "apps:* authenticated history_ttl=-1s", "history_ttl: bad duration '-1s'" },
	{ "apps:* authenticated history_ttl=1.5s", "history_ttl: bad duration" },
	{ "apps:* authenticated history_ttl=s", "history_ttl: bad duration" },
	{ "apps:* authenticated well_known=", "well_known: bad item ''" },
	{ "apps:* authenticated well_known=a/b", "well_known: bad item 'a/b'" },
	{ "apps:* authenticated well_known=a,a", "well_known: 'a' twice" },
	{ "apps:* authenticated well_known=a,*", "well_known: bad item '*'" },
	{ "announcements public well_known=a", "well_known needs a pattern ending in '*'" },
	{ "user:{userId} self well_known=a", "well_known needs a pattern ending in '*'" },
	/* the words */
	{ "", "expected PATTERN WHO" },
	{ "   \t ", "expected PATTERN WHO" },
	{ "apps:*", "expected PATTERN WHO" },
	{ "a:* authenticated history=1 history_ttl=1 max_subscribers=1 well_known=a "
	    "history=2 x", "too many words" },
};
#define NBAD	((int)(sizeof(bad) / sizeof(bad[0])))

static void
expect_refused(struct chan_table *t, const char *line, const char *mention)
{
	char		 msg[CHAN_LINE_MAX + 256];
	int		 n = chan_table_count(t), rv;

	strcpy(msg, "");
	rv = chan_table_add(t, line, "bad.conf", 9, msg, sizeof(msg));
	ck_assert_msg(rv == -1, "\"%s\" accepted (%d): %s", line, rv, msg);
	ck_assert_msg(strstr(msg, mention) != NULL, "\"%s\": \"%s\" does not mention \"%s\"",
	    line, msg, mention);
	/* the message is the reason alone: the caller adds the file:line */
	ck_assert_msg(strstr(msg, "bad.conf:9") == NULL, "%s", msg);
	ck_assert_int_eq(chan_table_count(t), n);
}

START_TEST(test_parse_errors)
{
	struct chan_table	*t;

	ck_assert_ptr_nonnull(t = chan_table_new());
	expect_refused(t, bad[_i].line, bad[_i].mention);
	ck_assert_ptr_null(chan_table_claims(t)[0]);
	chan_table_free(t);
}
END_TEST

START_TEST(test_parse_errors_long)
{
	struct chan_table	*t;

	ck_assert_ptr_nonnull(t = chan_table_new());
	expect_refused(t, long_claim, "is not a claim name");
	expect_refused(t, long_role, "role: bad item");
	expect_refused(t, long_literal, "leaves no room in a 200-byte name");
	expect_refused(t, long_pattern, "pattern must be 1 to 200 bytes");
	expect_refused(t, many_well_known, "well_known: more than 64 items");
	chan_table_free(t);
}
END_TEST

START_TEST(test_longest_accepted)
{
	struct chan_table	*t;
	char			 line[600];
	char			 msg[512];
	int			 i;
	size_t			 n;

	ck_assert_ptr_nonnull(t = chan_table_new());
	/* a claim name of 64, a role of 64, 64 well_known items */
	memset(line, 0, sizeof(line));
	memcpy(line, "u:{", 3);
	memset(line + 3, 'c', CHAN_CLAIM_NAME_MAX);
	strcat(line, "} self");
	ck_assert_int_eq(chan_table_add(t, line, NULL, 1, msg, sizeof(msg)), 0);
	snprintf(line, sizeof(line), "r:* role=%0*d", RT_ROLE_MAX, 0);
	ck_assert_int_eq(chan_table_add(t, line, NULL, 2, msg, sizeof(msg)), 0);
	n = (size_t)snprintf(line, sizeof(line), "w:* authenticated well_known=");
	for (i = 0; i < CHAN_LIST_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%sk%d", i ? "," : "", i);
	ck_assert_int_eq(chan_table_add(t, line, NULL, 3, msg, sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_ns(t, 2)->ns_nwell_known, CHAN_LIST_MAX);
	/* 199 literal bytes and a '*': the name is 200 */
	memset(line, 0, sizeof(line));
	memset(line, 'p', RT_CHANNEL_MAX - 1);
	strcat(line, "* authenticated");
	ck_assert_int_eq(chan_table_add(t, line, NULL, 4, msg, sizeof(msg)), 0);
	/* 200 literal and a '*' leaves no room */
	memset(line, 0, sizeof(line));
	memset(line, 'q', RT_CHANNEL_MAX);
	strcat(line, "* authenticated");
	ck_assert_int_eq(chan_table_add(t, line, NULL, 5, msg, sizeof(msg)), -1);
	ck_assert_msg(strstr(msg, "leaves no room") != NULL, "%s", msg);
	chan_table_free(t);
}
END_TEST

START_TEST(test_duplicate_pattern)
{
	struct chan_table	*t = tab("apps:* authenticated", "user:{userId} self", NULL);
	char			 msg[512];

	expect_refused(t, "apps:* role=admin history=3",
	    "namespace 'apps:*' is already declared at test.conf:1");
	expect_refused(t, "user:{userId} authenticated",
	    "namespace 'user:{userId}' is already declared at test.conf:2");
	/* without a file: by position */
	ck_assert_int_eq(chan_table_add(t, "lobby public", NULL, 0, msg, sizeof(msg)), 0);
	expect_refused(t, "lobby authenticated", "namespace 'lobby' is already declared "
	    "at namespace 3");
	ck_assert_int_eq(chan_table_count(t), 3);
	/* a duplicate of a shadowed line is still a duplicate, not a warning */
	ck_assert_int_eq(chan_table_add(t, "apps:x authenticated", "f.conf", 4, msg,
	    sizeof(msg)), 1);
	expect_refused(t, "apps:x role=admin",
	    "namespace 'apps:x' is already declared at f.conf:4");
	ck_assert_int_eq(chan_table_count(t), 4);
	chan_table_free(t);
}
END_TEST

START_TEST(test_too_many_claims)
{
	struct chan_table	*t;
	const char *const	*c;
	char			 line[64], msg[512];
	int			 i;

	ck_assert_ptr_nonnull(t = chan_table_new());
	for (i = 0; i < CHAN_CLAIMS_MAX; i++) {
		snprintf(line, sizeof(line), "p%d:{c%d} self", i, i);
		ck_assert_int_eq(chan_table_add(t, line, NULL, i + 1, msg, sizeof(msg)), 0);
	}
	expect_refused(t, "p8:{c8} self", "more than 8 different claims");
	/* one already known is fine, in a line that also names a new one not */
	expect_refused(t, "q:{c0}.{c9} self", "more than 8 different claims");
	ck_assert_int_eq(chan_table_add(t, "q:{c0}.{c1} self", NULL, 20, msg, sizeof(msg)), 0);
	c = chan_table_claims(t);
	for (i = 0; i < CHAN_CLAIMS_MAX; i++) {
		snprintf(line, sizeof(line), "c%d", i);
		ck_assert_str_eq(c[i], line);
	}
	ck_assert_ptr_null(c[CHAN_CLAIMS_MAX]);
	chan_table_free(t);
}
END_TEST

START_TEST(test_refused_line_leaves_no_claim)
{
	struct chan_table	*t = tab("a:{orgId}:* self", NULL);
	const char *const	*c;
	char			 msg[512];

	/* claims the refused line named are not kept */
	expect_refused(t, "b:{team}.{region} everyone", "unknown WHO");
	expect_refused(t, "b:{team}.{region} self history=x", "history:");
	expect_refused(t, "b:{team}* self", "must be followed");
	c = chan_table_claims(t);
	ck_assert_str_eq(c[0], "orgId");
	ck_assert_ptr_null(c[1]);
	/* and a refused pattern may be declared after all */
	ck_assert_int_eq(chan_table_add(t, "b:{team}.{region} self", NULL, 5, msg,
	    sizeof(msg)), 0);
	c = chan_table_claims(t);
	ck_assert_str_eq(c[1], "team");
	ck_assert_str_eq(c[2], "region");
	ck_assert_ptr_null(c[3]);
	chan_table_free(t);
}
END_TEST

START_TEST(test_too_many_namespaces)
{
	struct chan_table	*t;
	char			 line[64], msg[512];
	int			 i;

	ck_assert_ptr_nonnull(t = chan_table_new());
	for (i = 0; i < CHAN_NS_MAX; i++) {
		snprintf(line, sizeof(line), "n%d:x public", i);
		ck_assert_int_eq(chan_table_add(t, line, "f", i + 1, msg, sizeof(msg)), 0);
	}
	ck_assert_int_eq(chan_table_count(t), CHAN_NS_MAX);
	expect_refused(t, "last public", "more than 256 namespaces");
	ck_assert_int_eq(chan_table_count(t), CHAN_NS_MAX);
	chan_table_free(t);
}
END_TEST

/* ---- shadowed namespaces ------------------------------------------------ */

/* second after first: a warning (1) naming both, and the line is kept. */
static void
expect_shadowed(const char *first, const char *second, const char *a, const char *b)
{
	struct chan_table	*t = tab(first, NULL);
	char			 msg[1024], want[512];

	msg[0] = '\0';
	ck_assert_msg(chan_table_add(t, second, "s.conf", 2, msg, sizeof(msg)) == 1,
	    "\"%s\" after \"%s\": no warning (%s)", second, first, msg);
	snprintf(want, sizeof(want), "namespace '%s' can never match: '%s' (test.conf:1) "
	    "comes first and matches every name it does", b, a);
	ck_assert_str_eq(msg, want);
	ck_assert_int_eq(chan_table_count(t), 2);
	chan_table_free(t);
}

static void
expect_not_shadowed(const char *first, const char *second)
{
	struct chan_table	*t = tab(first, second, NULL);

	chan_table_free(t);
}

START_TEST(test_shadow_warnings)
{
	expect_shadowed("apps:* authenticated", "apps:created public", "apps:*",
	    "apps:created");
	expect_shadowed("user:{userId} self", "user:* authenticated", "user:{userId}",
	    "user:*");
	expect_shadowed("apps:* authenticated", "apps:x:* role=admin", "apps:*", "apps:x:*");
	expect_shadowed("apps:* authenticated", "apps:{orgId} self", "apps:*",
	    "apps:{orgId}");
	expect_shadowed("ap* authenticated", "apps:{orgId}:x self", "ap*",
	    "apps:{orgId}:x");
	expect_shadowed("* authenticated", "lobby public", "*", "lobby");
	expect_shadowed("* authenticated", "x:{a}.{b} self", "*", "x:{a}.{b}");
	expect_shadowed("user:{userId} self", "user:bob role=admin", "user:{userId}",
	    "user:bob");
	expect_shadowed("org:{orgId}:* self", "org:{team}:* authenticated",
	    "org:{orgId}:*", "org:{team}:*");
	expect_shadowed("org:{orgId}:* self", "org:o1:chat public", "org:{orgId}:*",
	    "org:o1:chat");
	expect_shadowed("org:{orgId} self", "org:{orgId}:* self", "org:{orgId}",
	    "org:{orgId}:*");
	expect_shadowed("t:{a}.{b} self", "t:{a}.* self", "t:{a}.{b}", "t:{a}.*");
	/* text and '*' after a claim: a later line with more text there */
	expect_shadowed("org:{orgId}:* self", "org:{orgId}:chat self", "org:{orgId}:*",
	    "org:{orgId}:chat");
	expect_shadowed("org:{orgId}:* self", "org:{orgId}:team:{teamId} self",
	    "org:{orgId}:*", "org:{orgId}:team:{teamId}");
}
END_TEST

START_TEST(test_no_shadow_warnings)
{
	expect_not_shadowed("apps:created public", "apps:* authenticated");
	expect_not_shadowed("apps:x:* role=admin", "apps:* authenticated");
	expect_not_shadowed("user:{userId} self", "users:* authenticated");
	expect_not_shadowed("lobby public", "lobby:* authenticated");
	expect_not_shadowed("lobby public", "lobbyx public");
	expect_not_shadowed("org:{orgId}:admin role=admin", "org:{orgId}:* self");
	expect_not_shadowed("org:{orgId}:* self", "org:public authenticated");
	expect_not_shadowed("t:{a}.x self", "t:{a}.y self");
	expect_not_shadowed("t:{a}.{b} self", "t:{a}:{b} self");
}
END_TEST

/* ---- written back as lines ------------------------------------------------ */

/* t's lines read back are t, and are written the same again. */
static void
expect_round_trip(const struct chan_table *t)
{
	struct list		*a = list_new(), *b = list_new();
	struct chan_table	*r;
	char			 msg[CHAN_LINE_MAX + 256];
	int			 i;

	chan_table_lines(t, collect, a);
	ck_assert_int_eq(a->n, chan_table_count(t));
	ck_assert_ptr_nonnull(r = chan_table_new());
	for (i = 0; i < a->n; i++)
		ck_assert_msg(chan_table_add(r, a->s[i], NULL, i + 1, msg, sizeof(msg)) >= 0,
		    "\"%s\" does not read back: %s", a->s[i], msg);
	ck_assert(chan_table_equal(t, r));
	ck_assert(chan_table_equal(r, t));
	chan_table_lines(r, collect, b);
	ck_assert_int_eq(a->n, b->n);
	for (i = 0; i < a->n; i++)
		ck_assert_str_eq(a->s[i], b->s[i]);
	chan_table_free(r);
	free(a);
	free(b);
}

START_TEST(test_lines_canonical)
{
	struct chan_table	*t = tab(
	    "lobby\tpublic",
	    "  ops:*   role=ops,admin well_known=a,b max_subscribers=7 history_ttl=2m "
	    "history=3  ",
	    "org:{orgId}:* self history_ttl=1500ms",
	    "t:{a}.{b} authenticated history=0 history_ttl=0 max_subscribers=0",
	    "* authenticated history=1", NULL);
	static const char *const want[] = {
		"lobby public",
		"ops:* role=ops,admin history=3 history_ttl=120000ms max_subscribers=7 "
		    "well_known=a,b",
		"org:{orgId}:* self history_ttl=1500ms",
		"t:{a}.{b} authenticated",
		"* authenticated history=1",
		NULL
	};
	struct list		*l = list_new();

	chan_table_lines(t, collect, l);
	expect_list(l, want);
	expect_round_trip(t);
	free(l);
	chan_table_free(t);
}
END_TEST

START_TEST(test_round_trip_long_line)
{
	struct chan_table	*t;
	char			 line[1024], msg[512];
	size_t			 n;
	int			 i;

	/* about as long as a config line gets, with a duration written longer */
	ck_assert_ptr_nonnull(t = chan_table_new());
	n = (size_t)snprintf(line, sizeof(line), "w:* role=");
	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%srole%02d", i ? "," : "", i);
	n += (size_t)snprintf(line + n, sizeof(line) - n, " history_ttl=9d well_known=");
	for (i = 0; i < CHAN_LIST_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%sname%02d", i ? "," : "", i);
	ck_assert_uint_lt(n, sizeof(line) - 1);
	ck_assert_int_eq(chan_table_add(t, line, NULL, 1, msg, sizeof(msg)), 0);
	expect_round_trip(t);
	chan_table_free(t);
}
END_TEST

START_TEST(test_default_table_lines)
{
	struct chan_table	*d = chan_table_default(), *p;
	struct list		*l = list_new();
	const struct chan_ns	*ns;
	char			 msg[512], want[CHAN_LINE_MAX];
	int			 i, n;

	ck_assert_ptr_nonnull(d);
	for (n = 0; chan_default_lines[n] != NULL; n++)
		;
	ck_assert_int_eq(n, 8);
	ck_assert_int_eq(chan_table_count(d), n);
	/* chan_default_lines read one by one make the default table */
	ck_assert_ptr_nonnull(p = chan_table_new());
	for (i = 0; i < n; i++)
		ck_assert_int_eq(chan_table_add(p, chan_default_lines[i], NULL, i + 1, msg,
		    sizeof(msg)), 0);
	ck_assert(chan_table_equal(d, p));
	/* history=100 history_ttl=5m on every one */
	for (i = 0; i < n; i++) {
		ns = chan_table_ns(d, i);
		ck_assert_int_eq(ns->ns_history, 100);
		ck_assert_int_eq(ns->ns_history_ttl, 300000);
		ck_assert_int_eq(ns->ns_max_subscribers, 0);
		ck_assert_ptr_null(ns->ns_file);
	}
	/* written as the same lines, the duration in ms */
	chan_table_lines(d, collect, l);
	ck_assert_int_eq(l->n, n);
	for (i = 0; i < n; i++) {
		const char *h = strstr(chan_default_lines[i], "history=100 history_ttl=5m");

		ck_assert_ptr_nonnull(h);
		snprintf(want, sizeof(want), "%.*shistory=100 history_ttl=300000ms%s",
		    (int)(h - chan_default_lines[i]), chan_default_lines[i],
		    h + strlen("history=100 history_ttl=5m"));
		ck_assert_str_eq(l->s[i], want);
	}
	ck_assert_str_eq(l->s[0], "announcements public history=100 history_ttl=300000ms");
	ck_assert_str_eq(l->s[3], "user:{userId} self history=100 history_ttl=300000ms");
	ck_assert_str_eq(l->s[7], "system:* role=admin history=100 history_ttl=300000ms "
	    "well_known=health,metrics,alerts");
	expect_round_trip(d);
	free(l);
	chan_table_free(p);
	chan_table_free(d);
}
END_TEST

START_TEST(test_equal)
{
	struct chan_table	*a = tab("lobby public", "apps:* authenticated", NULL);
	struct chan_table	*same = tab("lobby  public", "apps:*\tauthenticated", NULL);
	struct chan_table	*order = tab("apps:* authenticated", "lobby public", NULL);
	struct chan_table	*fewer = tab("lobby public", NULL);
	struct chan_table	*hist = tab("lobby public", "apps:* authenticated history=1",
	    NULL);
	struct chan_table	*who = tab("lobby public", "apps:* role=admin", NULL);
	struct chan_table	*roles = tab("lobby public", "apps:* role=admin,ops", NULL);
	struct chan_table	*roles2 = tab("lobby public", "apps:* role=ops,admin", NULL);
	struct chan_table	*wk = tab("lobby public", "apps:* authenticated well_known=a",
	    NULL);
	struct chan_table	*ms = tab("lobby public",
	    "apps:* authenticated max_subscribers=1", NULL);
	struct chan_table	*ttl = tab("lobby public", "apps:* authenticated history_ttl=1",
	    NULL);
	struct chan_table	*ttl2 = tab("lobby public",
	    "apps:* authenticated history_ttl=1000ms", NULL);
	struct chan_table	*empty = chan_table_new();

	ck_assert(chan_table_equal(a, a));
	ck_assert(chan_table_equal(a, same));
	ck_assert(!chan_table_equal(a, order));
	ck_assert(!chan_table_equal(a, fewer));
	ck_assert(!chan_table_equal(fewer, a));
	ck_assert(!chan_table_equal(a, hist));
	ck_assert(!chan_table_equal(a, who));
	ck_assert(!chan_table_equal(who, roles));
	ck_assert(!chan_table_equal(roles, roles2));
	ck_assert(!chan_table_equal(a, wk));
	ck_assert(!chan_table_equal(a, ms));
	ck_assert(!chan_table_equal(a, ttl));
	ck_assert(chan_table_equal(ttl, ttl2));
	ck_assert(!chan_table_equal(a, empty));
	ck_assert(chan_table_equal(empty, empty));
	chan_table_free(a);
	chan_table_free(same);
	chan_table_free(order);
	chan_table_free(fewer);
	chan_table_free(hist);
	chan_table_free(who);
	chan_table_free(roles);
	chan_table_free(roles2);
	chan_table_free(wk);
	chan_table_free(ms);
	chan_table_free(ttl);
	chan_table_free(ttl2);
	chan_table_free(empty);
}
END_TEST

/* ---- authorizedChannels --------------------------------------------------- */

static struct chan_table *
tenants(void)
{
	return tab(
	    "lobby public",
	    "org:{orgId}:admin role=admin",
	    "org:{orgId}:ops role=ops,admin",
	    "org:{orgId}:* self well_known=chat,news",
	    "org:public authenticated",
	    "user:{userId} self",
	    "team:{orgId}.{team} self",
	    "feed:* authenticated well_known=global,local",
	    NULL);
}

START_TEST(test_list_multi_tenant)
{
	struct chan_table	*t = tenants();
	struct auth_user	 anon = usr(NULL, NULL, "orgId", "o1", NULL);
	struct auth_user	 u = usr("u1", "member", "orgId", "o1", "team", "t1", NULL);
	struct auth_user	 ops = usr("u2", "ops", "orgId", "o2", NULL);
	struct auth_user	 admin = usr("root", "admin", "orgId", "o3", NULL);
	struct auth_user	 noclaims = usr("u4", NULL, NULL);
	static const char *const want_anon[] = { "lobby", NULL };
	static const char *const want_u[] = {
		"org:o1:chat", "org:o1:news", "feed:global", "feed:local",
		"lobby", "org:public",
		"user:u1", "team:o1.t1", NULL
	};
	static const char *const want_ops[] = {
		"org:o2:chat", "org:o2:news", "feed:global", "feed:local",
		"lobby", "org:public",
		"org:o2:ops", "user:u2", NULL
	};
	static const char *const want_admin[] = {
		"org:o3:chat", "org:o3:news", "feed:global", "feed:local",
		"lobby", "org:public",
		"org:o3:admin", "org:o3:ops", "user:root", NULL
	};
	static const char *const want_none[] = {
		"feed:global", "feed:local", "lobby", "org:public", "user:u4", NULL
	};

	expect_authorized(t, &anon, want_anon);
	expect_authorized(t, NULL, want_anon);
	expect_authorized(t, &u, want_u);
	expect_authorized(t, &ops, want_ops);
	expect_authorized(t, &admin, want_admin);
	expect_authorized(t, &noclaims, want_none);
	chan_table_free(t);
}
END_TEST

START_TEST(test_list_odd_claims_fill_nothing)
{
	struct chan_table	*t = tenants();
	struct auth_user	 colon = usr("u1", NULL, "orgId", "o1:x", "team", "t1", NULL);
	struct auth_user	 star = usr("u*", NULL, "orgId", "*", "team", "t.1", NULL);
	static const char *const want_colon[] = {
		"feed:global", "feed:local", "lobby", "org:public", "user:u1",
		"team:o1:x.t1", NULL	/* its own values, exactly: allowed */
	};
	static const char *const want_star[] = {
		"feed:global", "feed:local", "lobby", "org:public", NULL
	};

	expect_authorized(t, &colon, want_colon);
	/* '*' makes no name: nothing with a {claim} is listed */
	expect_authorized(t, &star, want_star);
	chan_table_free(t);
}
END_TEST

START_TEST(test_list_names_belong_to_their_namespace)
{
	struct chan_table	*t = tab("apps:created role=admin",
	    "apps:* authenticated well_known=created,updated", NULL);
	struct auth_user	 u = usr("u1", NULL, NULL);
	struct auth_user	 admin = usr("root", "admin", NULL);
	static const char *const want_u[] = { "apps:updated", NULL };
	static const char *const want_admin[] = { "apps:updated", "apps:created", NULL };

	expect_authorized(t, &u, want_u);
	/* once, from the exact namespace that decides it */
	expect_authorized(t, &admin, want_admin);
	chan_table_free(t);
}
END_TEST

START_TEST(test_list_names_an_earlier_claim_pattern_takes)
{
	/* org:a.news has the first line's shape: it is never the second's */
	struct chan_table	*t = tab("org:{orgId}.news self",
	    "org:* authenticated well_known=a.news,b", "lobby public", NULL);
	struct auth_user	 o1 = usr("u1", NULL, "orgId", "o1", NULL);
	struct auth_user	 a = usr("u2", NULL, "orgId", "a", NULL);
	static const char *const want_o1[] = { "org:b", "lobby", "org:o1.news", NULL };
	static const char *const want_a[] = { "org:b", "lobby", "org:a.news", NULL };

	expect_authorized(t, &o1, want_o1);
	expect_authorized(t, &a, want_a);
	chan_table_free(t);
}
END_TEST

START_TEST(test_list_default_table)
{
	struct chan_table	*d = chan_table_default();
	struct auth_user	 anon = usr(NULL, NULL, NULL);
	struct auth_user	 u = usr("u1", NULL, NULL);
	struct auth_user	 admin = usr("root1", "admin", NULL);
	static const char *const want_anon[] = { "announcements", NULL };
	static const char *const want_u[] = {
		"apps:created", "apps:updated", "apps:deleted", "apps:deployed",
		"apps:status", "users:created", "users:updated", "users:deleted",
		"database:table_created", "database:table_updated",
		"database:table_deleted", "database:row_updated",
		"deployments:started", "deployments:completed", "deployments:failed",
		"deployments:status", "storage:uploaded", "storage:deleted",
		"storage:updated", "announcements", "user:u1", NULL
	};
	static const char *const want_admin[] = {
		"apps:created", "apps:updated", "apps:deleted", "apps:deployed",
		"apps:status", "users:created", "users:updated", "users:deleted",
		"database:table_created", "database:table_updated",
		"database:table_deleted", "database:row_updated",
		"deployments:started", "deployments:completed", "deployments:failed",
		"deployments:status", "storage:uploaded", "storage:deleted",
		"storage:updated", "system:health", "system:metrics", "system:alerts",
		"announcements", "user:root1", NULL
	};

	ck_assert_ptr_nonnull(d);
	expect_authorized(d, &anon, want_anon);
	expect_authorized(d, NULL, want_anon);
	expect_authorized(d, &u, want_u);
	expect_authorized(d, &admin, want_admin);
	chan_table_free(d);
}
END_TEST

/* ---- Redis subscriptions ---------------------------------------------------- */

START_TEST(test_redis_minimised)
{
	struct chan_table	*t;
	char			 msg[512];
	static const char *const w1[] = { "PSUBSCRIBE apps:*", NULL };
	static const char *const w2[] = { "PSUBSCRIBE org:*", NULL };
	static const char *const w3[] = { "SUBSCRIBE lobby", "PSUBSCRIBE lobby2:*",
	    "PSUBSCRIBE user:*", NULL };
	static const char *const w4[] = { "PSUBSCRIBE lobby*", NULL };
	static const char *const w5[] = { "PSUBSCRIBE a:*", NULL };
	static const char *const w6[] = { "SUBSCRIBE x", "SUBSCRIBE y", NULL };

	/* a broader pattern carries a narrower one, in either order */
	ck_assert_ptr_nonnull(t = chan_table_new());
	ck_assert_int_eq(chan_table_add(t, "apps:* authenticated", NULL, 1, msg,
	    sizeof(msg)), 0);
	ck_assert_int_eq(chan_table_add(t, "apps:x:* role=admin", NULL, 2, msg,
	    sizeof(msg)), 1);	/* shadowed, but kept */
	expect_subscriptions(t, w1);
	chan_table_free(t);
	t = tab("apps:x:* role=admin", "apps:* authenticated", NULL);
	expect_subscriptions(t, w1);
	chan_table_free(t);
	/* an exact name under a pattern's prefix; a claim is a pattern */
	t = tab("org:public public", "org:{o}:* self", NULL);
	expect_subscriptions(t, w2);
	chan_table_free(t);
	t = tab("org:{o}:* self", "org:public public", NULL);
	expect_subscriptions(t, w2);
	chan_table_free(t);
	t = tab("lobby public", "lobby2:* authenticated", "user:{userId} self", NULL);
	expect_subscriptions(t, w3);
	chan_table_free(t);
	/* Redis's "lobby*" also carries "lobby" */
	t = tab("lobby public", "lobby* authenticated", NULL);
	expect_subscriptions(t, w4);
	chan_table_free(t);
	/* two patterns of one prefix: the first */
	t = tab("a:{x}:b self", "a:{x}:c self", "a:{y} self", NULL);
	expect_subscriptions(t, w5);
	chan_table_free(t);
	t = tab("x public", "y public", NULL);
	expect_subscriptions(t, w6);
	chan_table_free(t);
}
END_TEST

START_TEST(test_redis_catch_all)
{
	struct chan_table	*t;
	static const char *const all[] = { "PSUBSCRIBE *", NULL };

	t = tab("announcements public", "apps:* authenticated", "user:{userId} self",
	    "* authenticated", NULL);
	expect_subscriptions(t, all);
	chan_table_free(t);
	t = tab("announcements public", "{tenant} self", NULL);
	expect_subscriptions(t, all);
	chan_table_free(t);
}
END_TEST

START_TEST(test_redis_default_table)
{
	struct chan_table	*d = chan_table_default();
	static const char *const want[] = {
		"SUBSCRIBE announcements", "PSUBSCRIBE apps:*",
		"PSUBSCRIBE users:*", "PSUBSCRIBE user:*",
		"PSUBSCRIBE database:*", "PSUBSCRIBE deployments:*",
		"PSUBSCRIBE storage:*", "PSUBSCRIBE system:*", NULL
	};

	ck_assert_ptr_nonnull(d);
	expect_subscriptions(d, want);
	chan_table_free(d);
}
END_TEST

/* Does a Redis subscription line ("PSUBSCRIBE p*" / "SUBSCRIBE n") carry name? */
static int
sub_carries(const char *sub, const char *name)
{
	size_t	 n;

	if (strncmp(sub, "PSUBSCRIBE ", 11) == 0) {
		sub += 11;
		n = strlen(sub) - 1;
		return strncmp(name, sub, n) == 0;
	}
	return strcmp(name, sub + 10) == 0;
}

/* Every name some namespace matches is carried once, by one subscription. */
START_TEST(test_redis_carries_every_name_once)
{
	struct chan_table	*t = tenants();
	struct list		*subs = list_new();
	static const char *const names[] = {
		"lobby", "org:o1:admin", "org:o1:ops", "org:o1:chat", "org:public",
		"user:u1", "team:a.b", "feed:x", NULL
	};
	int			 i, j, n;

	chan_redis_subscriptions(t, collect_sub, subs);
	for (i = 0; names[i] != NULL; i++) {
		ck_assert_ptr_nonnull(chan_match(t, names[i], strlen(names[i])));
		for (n = 0, j = 0; j < subs->n; j++)
			n += sub_carries(subs->s[j], names[i]);
		ck_assert_msg(n == 1, "%s carried by %d subscriptions", names[i], n);
	}
	free(subs);
	chan_table_free(t);
}
END_TEST

/* ---- claims the table uses --------------------------------------------------- */

START_TEST(test_claims_in_first_use_order)
{
	struct chan_table	*t = tab("lobby public", "org:{orgId}:* self",
	    "user:{userId} self", "t:{team}.{orgId} self", "x:{region}:{team} self",
	    "y:{userId}.{zone} self", NULL);
	struct chan_table	*d = chan_table_default(), *e = chan_table_new();
	const char *const	*c = chan_table_claims(t);

	ck_assert_str_eq(c[0], "orgId");
	ck_assert_str_eq(c[1], "userId");
	ck_assert_str_eq(c[2], "team");
	ck_assert_str_eq(c[3], "region");
	ck_assert_str_eq(c[4], "zone");
	ck_assert_ptr_null(c[5]);
	c = chan_table_claims(d);
	ck_assert_str_eq(c[0], "userId");
	ck_assert_ptr_null(c[1]);
	ck_assert_ptr_null(chan_table_claims(e)[0]);
	chan_table_free(e);
	chan_table_free(d);
	chan_table_free(t);
}
END_TEST

static Suite *
namespace_suite(void)
{
	Suite	*s = suite_create("namespace");
	TCase	*tc;

	tc = tcase_create("match");
	tcase_add_test(tc, test_exact_and_prefix);
	tcase_add_test(tc, test_template_at_end);
	tcase_add_test(tc, test_template_in_the_middle);
	tcase_add_test(tc, test_two_templates);
	tcase_add_test(tc, test_first_match_wins);
	tcase_add_test(tc, test_first_match_decides_even_when_a_later_one_would_allow);
	tcase_add_test(tc, test_odd_claim_values_never_widen);
	tcase_add_test(tc, test_admin_may_use_any_value);
	tcase_add_test(tc, test_anonymous_never_passes_a_claim);
	tcase_add_test(tc, test_who_public_and_authenticated);
	tcase_add_test(tc, test_who_roles);
	tcase_add_test(tc, test_self_and_authenticated_both_need_the_claims);
	tcase_add_test(tc, test_claim_only_pattern_and_catch_all);
	tcase_add_test(tc, test_longest_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_unchecked_fixture(tc, setup_long, NULL);
	tcase_add_test(tc, test_line_fields);
	tcase_add_test(tc, test_option_bounds);
	tcase_add_loop_test(tc, test_parse_errors, 0, NBAD);
	tcase_add_test(tc, test_parse_errors_long);
	tcase_add_test(tc, test_longest_accepted);
	tcase_add_test(tc, test_duplicate_pattern);
	tcase_add_test(tc, test_too_many_claims);
	tcase_add_test(tc, test_refused_line_leaves_no_claim);
	tcase_add_test(tc, test_too_many_namespaces);
	tcase_add_test(tc, test_shadow_warnings);
	tcase_add_test(tc, test_no_shadow_warnings);
	suite_add_tcase(s, tc);

	tc = tcase_create("lines");
	tcase_add_test(tc, test_lines_canonical);
	tcase_add_test(tc, test_round_trip_long_line);
	tcase_add_test(tc, test_default_table_lines);
	tcase_add_test(tc, test_equal);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_test(tc, test_list_multi_tenant);
	tcase_add_test(tc, test_list_odd_claims_fill_nothing);
	tcase_add_test(tc, test_list_names_belong_to_their_namespace);
	tcase_add_test(tc, test_list_names_an_earlier_claim_pattern_takes);
	tcase_add_test(tc, test_list_default_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("redis");
	tcase_add_test(tc, test_redis_minimised);
	tcase_add_test(tc, test_redis_catch_all);
	tcase_add_test(tc, test_redis_default_table);
	tcase_add_test(tc, test_redis_carries_every_name_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("claims");
	tcase_add_test(tc, test_claims_in_first_use_order);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(namespace_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
