/*
 * Channel names and PROTOCOL.md's authorization table (the default
 * namespace table), row by row, for an anonymous client, a regular user
 * and an admin.  Custom namespace tables are test_namespace.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"

static struct auth_user	 anon, user, admin;
static struct chan_table	*deftab;	/* chan_table_default() */

static void
setup_users(void)
{
	auth_anonymous(&anon);

	auth_anonymous(&user);
	user.u_authenticated = 1;
	strcpy(user.u_id, "u1");

	auth_anonymous(&admin);
	admin.u_authenticated = 1;
	admin.u_admin = 1;
	admin.u_has_role = 1;
	strcpy(admin.u_id, "root1");
	strcpy(admin.u_role, "admin");

	ck_assert_ptr_nonnull(deftab = chan_table_default());
}

static void
teardown_users(void)
{
	chan_table_free(deftab);
	deftab = NULL;
}

static enum chan_verdict
authz(const char *name, const struct auth_user *u)
{
	static const struct chan_ns	 unset;
	const struct chan_ns		*ns = &unset;
	enum chan_verdict		 v;

	v = chan_authorize(deftab, name, strlen(name), u, &ns);
	/* the namespace is given exactly when one matches */
	if (v == CHAN_OK || v == CHAN_DENIED)
		ck_assert_ptr_nonnull(ns);
	else
		ck_assert_ptr_null(ns);
	ck_assert_int_eq(chan_authorize(deftab, name, strlen(name), u, NULL), v);
	return v;
}

/* One row per (channel, who): the verdict for anon, user "u1", admin. */
static const struct {
	const char		*name;
	enum chan_verdict	 anon, user, admin;
} table[] = {
	{ "announcements", CHAN_OK, CHAN_OK, CHAN_OK },
	{ "apps:created", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "apps:updated", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "apps:deleted", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "apps:deployed", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "apps:status", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "apps:anything-else_1.x@y:z", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "users:created", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "users:updated", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "users:deleted", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "users:x", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "user:u1", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "user:u2", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "user:U1", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "user:u1x", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "user:u", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "user:root1", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "database:table_created", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "database:table_updated", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "database:table_deleted", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "database:row_updated", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "database:x", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "deployments:started", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "deployments:completed", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "deployments:failed", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "deployments:status", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "deployments:x", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "storage:uploaded", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "storage:deleted", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "storage:updated", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "storage:x", CHAN_DENIED, CHAN_OK, CHAN_OK },
	{ "system:health", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "system:metrics", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "system:alerts", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	{ "system:x", CHAN_DENIED, CHAN_DENIED, CHAN_OK },
	/* exact, case-sensitive prefixes; empty suffixes are no channel */
	{ "Apps:created", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "APPS:created", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "apps", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "apps:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "app:created", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "apps.created", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "users", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "users:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "user", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "user:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "User:u1", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "database:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "deployments:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "storage:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "system:", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "system", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "System:health", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "announcement", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "announcementsx", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "announcements:x", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "Announcements", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ "chat:room", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	{ ":apps:created", CHAN_UNKNOWN, CHAN_UNKNOWN, CHAN_UNKNOWN },
	/* not names at all */
	{ "", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
	{ "apps:a b", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
	{ "apps:*", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
	{ "apps:x/y", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
	{ "user:\xc3\xa9", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
	{ "announcements\n", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
	{ "apps:\"x\"", CHAN_INVALID, CHAN_INVALID, CHAN_INVALID },
};
#define NTABLE	((int)(sizeof(table) / sizeof(table[0])))

START_TEST(test_table_row_anonymous)
{
	ck_assert_msg(authz(table[_i].name, &anon) == table[_i].anon,
	    "anonymous on \"%s\"", table[_i].name);
}
END_TEST

START_TEST(test_table_row_user)
{
	ck_assert_msg(authz(table[_i].name, &user) == table[_i].user,
	    "user u1 on \"%s\"", table[_i].name);
}
END_TEST

START_TEST(test_table_row_admin)
{
	ck_assert_msg(authz(table[_i].name, &admin) == table[_i].admin,
	    "admin on \"%s\"", table[_i].name);
}
END_TEST

START_TEST(test_null_user_is_anonymous)
{
	ck_assert_int_eq(authz("announcements", NULL), CHAN_OK);
	ck_assert_int_eq(authz("apps:created", NULL), CHAN_DENIED);
	ck_assert_int_eq(authz("user:u1", NULL), CHAN_DENIED);
	ck_assert_int_eq(authz("system:health", NULL), CHAN_DENIED);
}
END_TEST

START_TEST(test_admin_flag_without_authentication_grants_nothing)
{
	struct auth_user	 u;

	auth_anonymous(&u);
	u.u_admin = 1;
	ck_assert_int_eq(authz("system:health", &u), CHAN_DENIED);
	ck_assert_int_eq(authz("user:x", &u), CHAN_DENIED);
}
END_TEST

START_TEST(test_user_channel_of_id_with_channel_chars)
{
	struct auth_user	 u = user;

	strcpy(u.u_id, "alice@example.com");
	ck_assert_int_eq(authz("user:alice@example.com", &u), CHAN_OK);
	ck_assert_int_eq(authz("user:alice@example.co", &u), CHAN_DENIED);
}
END_TEST

START_TEST(test_name_length_bounds)
{
	char	 name[RT_CHANNEL_MAX + 2];

	memset(name, 'a', sizeof(name));
	memcpy(name, "apps:", 5);
	ck_assert(chan_name_valid(name, RT_CHANNEL_MAX));
	ck_assert_int_eq(chan_authorize(deftab, name, RT_CHANNEL_MAX, &user,
	    NULL), CHAN_OK);
	ck_assert(!chan_name_valid(name, RT_CHANNEL_MAX + 1));
	ck_assert_int_eq(chan_authorize(deftab, name, RT_CHANNEL_MAX + 1, &user,
	    NULL), CHAN_INVALID);
	ck_assert(chan_name_valid("a", 1));
	ck_assert(!chan_name_valid("", 0));
	ck_assert(!chan_name_valid(NULL, 0));
}
END_TEST

START_TEST(test_name_charset)
{
	char	 c[1];
	int	 i, ok;

	for (i = 0; i < 256; i++) {
		c[0] = (char)i;
		ok = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z') ||
		    (i >= '0' && i <= '9') || strchr("_.:@-", i) != NULL;
		if (i == 0)
			ok = 0;
		ck_assert_msg(chan_name_valid(c, 1) == ok, "byte %d", i);
	}
}
END_TEST

START_TEST(test_name_with_nul_is_invalid)
{
	ck_assert_int_eq(chan_authorize(deftab, "apps:a\0b", 8, &user, NULL),
	    CHAN_INVALID);
	/* the length counts, not the terminator */
	ck_assert_int_eq(chan_authorize(deftab, "apps:created-and-more", 12,
	    &user, NULL), CHAN_OK);
}
END_TEST

START_TEST(test_verdict_messages)
{
	ck_assert_str_eq(chan_verdict_message(CHAN_DENIED),
	    "Not authorized to subscribe to this channel");
	ck_assert_str_eq(chan_verdict_message(CHAN_UNKNOWN), "Unknown channel");
	ck_assert_str_eq(chan_verdict_message(CHAN_INVALID),
	    "Missing or invalid channel");
}
END_TEST

/* ---- chan_authorized_list ------------------------------------------- */

struct list {
	int	 n;
	char	 names[64][RT_CHANNEL_MAX + 1];
};

static void
collect(const char *name, void *arg)
{
	struct list	*l = arg;

	ck_assert_int_lt(l->n, 64);
	strcpy(l->names[l->n++], name);
}

static int
list_has(const struct list *l, const char *name)
{
	int	 i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return 1;
	return 0;
}

START_TEST(test_list_anonymous_is_announcements_only)
{
	struct list	 l = { 0 };

	chan_authorized_list(deftab, &anon, collect, &l);
	ck_assert_int_eq(l.n, 1);
	ck_assert_str_eq(l.names[0], "announcements");
	memset(&l, 0, sizeof(l));
	chan_authorized_list(deftab, NULL, collect, &l);
	ck_assert_int_eq(l.n, 1);
	ck_assert_str_eq(l.names[0], "announcements");
}
END_TEST

static const char *const user_list[] = {
	"apps:created", "apps:updated", "apps:deleted", "apps:deployed",
	"apps:status", "users:created", "users:updated", "users:deleted",
	"database:table_created", "database:table_updated",
	"database:table_deleted", "database:row_updated",
	"deployments:started", "deployments:completed", "deployments:failed",
	"deployments:status", "storage:uploaded", "storage:deleted",
	"storage:updated",
};
#define NUSER_LIST	((int)(sizeof(user_list) / sizeof(user_list[0])))

START_TEST(test_list_user_in_table_order)
{
	struct list	 l = { 0 };
	int		 i;

	chan_authorized_list(deftab, &user, collect, &l);
	ck_assert_int_eq(l.n, NUSER_LIST + 2);
	for (i = 0; i < NUSER_LIST; i++)
		ck_assert_str_eq(l.names[i], user_list[i]);
	ck_assert_str_eq(l.names[NUSER_LIST], "announcements");
	ck_assert_str_eq(l.names[NUSER_LIST + 1], "user:u1");
	ck_assert(!list_has(&l, "system:health"));
}
END_TEST

START_TEST(test_list_admin_adds_system)
{
	struct list	 l = { 0 };
	int		 i;

	chan_authorized_list(deftab, &admin, collect, &l);
	ck_assert_int_eq(l.n, NUSER_LIST + 3 + 2);
	for (i = 0; i < NUSER_LIST; i++)
		ck_assert_str_eq(l.names[i], user_list[i]);
	ck_assert_str_eq(l.names[NUSER_LIST], "system:health");
	ck_assert_str_eq(l.names[NUSER_LIST + 1], "system:metrics");
	ck_assert_str_eq(l.names[NUSER_LIST + 2], "system:alerts");
	ck_assert_str_eq(l.names[NUSER_LIST + 3], "announcements");
	ck_assert_str_eq(l.names[NUSER_LIST + 4], "user:root1");
}
END_TEST

START_TEST(test_list_every_name_is_authorized)
{
	const struct auth_user	*who[] = { &anon, &user, &admin };
	struct list		 l;
	int			 w, i;

	for (w = 0; w < 3; w++) {
		memset(&l, 0, sizeof(l));
		chan_authorized_list(deftab, who[w], collect, &l);
		for (i = 0; i < l.n; i++)
			ck_assert_msg(authz(l.names[i], who[w]) == CHAN_OK,
			    "%s listed but not authorized", l.names[i]);
	}
}
END_TEST

START_TEST(test_list_skips_id_that_is_no_channel_name)
{
	struct auth_user	 u = user;
	struct list		 l = { 0 };

	strcpy(u.u_id, "John Doe");
	chan_authorized_list(deftab, &u, collect, &l);
	ck_assert_int_eq(l.n, NUSER_LIST + 1);
	ck_assert_str_eq(l.names[l.n - 1], "announcements");

	/* the longest id there is still makes a valid channel name */
	memset(&l, 0, sizeof(l));
	memset(u.u_id, 'a', RT_USERID_MAX);
	u.u_id[RT_USERID_MAX] = '\0';
	chan_authorized_list(deftab, &u, collect, &l);
	ck_assert_int_eq(l.n, NUSER_LIST + 2);
	ck_assert_int_eq(strlen(l.names[l.n - 1]), 5 + RT_USERID_MAX);
}
END_TEST

/* ---- chan_redis_subscriptions -------------------------------------- */

static void
collect_sub(const char *name, int pattern, void *arg)
{
	struct list	*l = arg;

	ck_assert_int_lt(l->n, 64);
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s %s",
	    pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name);
}

/* What the bridge asked Redis for when it kept its own list. */
START_TEST(test_redis_subscriptions_cover_every_family)
{
	static const char *const want[] = {
		"SUBSCRIBE announcements", "PSUBSCRIBE apps:*",
		"PSUBSCRIBE users:*", "PSUBSCRIBE user:*",
		"PSUBSCRIBE database:*", "PSUBSCRIBE deployments:*",
		"PSUBSCRIBE storage:*", "PSUBSCRIBE system:*",
	};
	struct list	 l = { 0 };
	size_t		 i;

	chan_redis_subscriptions(deftab, collect_sub, &l);
	ck_assert_int_eq(l.n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_str_eq(l.names[i], want[i]);
}
END_TEST

/* Every name a family authorizes arrives on one of its subscriptions. */
START_TEST(test_redis_subscriptions_carry_every_listed_name)
{
	struct list	 subs = { 0 }, names = { 0 };
	const char	*p;
	size_t		 plen;
	int		 i, j, found;

	chan_redis_subscriptions(deftab, collect_sub, &subs);
	chan_authorized_list(deftab, &admin, collect, &names);
	for (i = 0; i < names.n; i++) {
		for (found = 0, j = 0; j < subs.n && !found; j++) {
			if (strncmp(subs.names[j], "PSUBSCRIBE ", 11) == 0) {
				p = subs.names[j] + 11;
				plen = strlen(p) - 1;	/* without the '*' */
				found = strncmp(names.names[i], p, plen) == 0;
			} else
				found = strcmp(names.names[i], subs.names[j] + 10) == 0;
		}
		ck_assert_msg(found, "%s has no subscription", names.names[i]);
	}
}
END_TEST

static Suite *
channel_suite(void)
{
	Suite	*s = suite_create("channel");
	TCase	*tc;

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup_users, teardown_users);
	tcase_add_loop_test(tc, test_table_row_anonymous, 0, NTABLE);
	tcase_add_loop_test(tc, test_table_row_user, 0, NTABLE);
	tcase_add_loop_test(tc, test_table_row_admin, 0, NTABLE);
	tcase_add_test(tc, test_null_user_is_anonymous);
	tcase_add_test(tc, test_admin_flag_without_authentication_grants_nothing);
	tcase_add_test(tc, test_user_channel_of_id_with_channel_chars);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_checked_fixture(tc, setup_users, teardown_users);
	tcase_add_test(tc, test_name_length_bounds);
	tcase_add_test(tc, test_name_charset);
	tcase_add_test(tc, test_name_with_nul_is_invalid);
	tcase_add_test(tc, test_verdict_messages);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_checked_fixture(tc, setup_users, teardown_users);
	tcase_add_test(tc, test_list_anonymous_is_announcements_only);
	tcase_add_test(tc, test_list_user_in_table_order);
	tcase_add_test(tc, test_list_admin_adds_system);
	tcase_add_test(tc, test_list_every_name_is_authorized);
	tcase_add_test(tc, test_list_skips_id_that_is_no_channel_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("redis");
	tcase_add_checked_fixture(tc, setup_users, teardown_users);
	tcase_add_test(tc, test_redis_subscriptions_cover_every_family);
	tcase_add_test(tc, test_redis_subscriptions_carry_every_listed_name);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(channel_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
