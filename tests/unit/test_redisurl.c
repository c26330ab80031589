/* redis_url: every documented form, and clear refusals. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

static struct redis_url	 u;
static char		 err[256];

START_TEST(test_plain_host_port)
{
	ck_assert_int_eq(redis_url_parse("redis://127.0.0.1:6380", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_host, "127.0.0.1");
	ck_assert_int_eq(u.ru_port, 6380);
	ck_assert_int_eq(u.ru_unix, 0);
	ck_assert_str_eq(u.ru_password, "");
	ck_assert_int_eq(redis_url_parse("redis://cache.internal", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_host, "cache.internal");
	ck_assert_int_eq(u.ru_port, 6379);
	ck_assert_int_eq(redis_url_parse("redis://", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_host, "127.0.0.1");
}
END_TEST

START_TEST(test_password_user_db)
{
	ck_assert_int_eq(redis_url_parse("redis://:s3cr%t@h:1/4", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_password, "s3cr%t");
	ck_assert_str_eq(u.ru_user, "");
	ck_assert_str_eq(u.ru_host, "h");
	ck_assert_int_eq(u.ru_port, 1);
	ck_assert_int_eq(u.ru_db, 4);
	ck_assert_int_eq(redis_url_parse("redis://app:pw@h", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_user, "app");
	ck_assert_str_eq(u.ru_password, "pw");
	/* the last '@' separates credentials from the host */
	ck_assert_int_eq(redis_url_parse("redis://:p@ss@h:2", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_password, "p@ss");
	ck_assert_str_eq(u.ru_host, "h");
}
END_TEST

START_TEST(test_ipv6_and_unix)
{
	ck_assert_int_eq(redis_url_parse("redis://[::1]:7000", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_host, "::1");
	ck_assert_int_eq(u.ru_port, 7000);
	ck_assert_int_eq(redis_url_parse("unix:/run/redis/redis.sock", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_unix, 1);
	ck_assert_str_eq(u.ru_host, "/run/redis/redis.sock");
	ck_assert_int_eq(redis_url_parse("unix:///tmp/r.sock?db=2", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.ru_host, "/tmp/r.sock");
	ck_assert_int_eq(u.ru_db, 2);
}
END_TEST

START_TEST(test_refusals_say_why)
{
	ck_assert_int_eq(redis_url_parse("http://h:1", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "redis://"));
	ck_assert_int_eq(redis_url_parse("rediss://h:1", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "TLS"));
	ck_assert_int_eq(redis_url_parse("redis://h:0", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("redis://h:65536", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("redis://h:12ab", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "port"));
	ck_assert_int_eq(redis_url_parse("redis://h:1/x", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "database"));
	ck_assert_int_eq(redis_url_parse("redis://[::1", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("unix:relative.sock", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("unix:/a?x=1", &u, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_overlong_parts)
{
	char	 big[2048];

	memset(big, 'a', sizeof(big));
	memcpy(big, "redis://", 8);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(redis_url_parse(big, &u, err, sizeof(err)), -1);
	memcpy(big, "redis://:", 9);
	big[1000] = '@';
	big[1001] = 'h';
	big[1002] = '\0';
	ck_assert_int_eq(redis_url_parse(big, &u, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_sentinel)
{
	ck_assert_int_eq(redis_url_parse("redis-sentinel://app:pw@10.0.0.1:26380,[::1],s3/mymaster",
	    &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_mode, REDIS_SENTINEL);
	ck_assert_int_eq(u.ru_nnodes, 3);
	ck_assert_str_eq(u.ru_nodes[0].rn_host, "10.0.0.1");
	ck_assert_int_eq(u.ru_nodes[0].rn_port, 26380);
	ck_assert_str_eq(u.ru_nodes[1].rn_host, "::1");
	ck_assert_int_eq(u.ru_nodes[1].rn_port, 26379);
	ck_assert_str_eq(u.ru_nodes[2].rn_host, "s3");
	ck_assert_int_eq(u.ru_nodes[2].rn_port, 26379);
	ck_assert_str_eq(u.ru_master, "mymaster");
	ck_assert_str_eq(u.ru_user, "app");
	ck_assert_str_eq(u.ru_password, "pw");
	ck_assert_int_eq(u.ru_db, 0);
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h/m/3", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_nnodes, 1);
	ck_assert_int_eq(u.ru_db, 3);
	/* the master's name is required and plain */
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1,h2", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "master"));
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1/", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1/a b", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1/m/x", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "database"));
	/* empty members of the list, bad ports */
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1,,h2/m", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1,/m", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("redis-sentinel:///m", &u, err, sizeof(err)), -1);
	ck_assert_int_eq(redis_url_parse("redis-sentinel://h1:0/m", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "port"));
}
END_TEST

START_TEST(test_cluster)
{
	char	 many[1024];

	ck_assert_int_eq(redis_url_parse("redis-cluster://:pw@127.0.0.1:7000,127.0.0.1:7001",
	    &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_mode, REDIS_CLUSTER);
	ck_assert_int_eq(u.ru_nnodes, 2);
	ck_assert_int_eq(u.ru_nodes[1].rn_port, 7001);
	ck_assert_str_eq(u.ru_password, "pw");
	ck_assert_int_eq(redis_url_parse("redis-cluster://h", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_nodes[0].rn_port, 6379);
	ck_assert_int_eq(redis_url_parse("redis-cluster://h/", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(redis_url_parse("redis-cluster://h/1", &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "database"));
	/* bounded list */
	strcpy(many, "redis-cluster://h");
	for (int i = 0; i < REDIS_NODES_MAX; i++)
		strcat(many, ",h");
	ck_assert_int_eq(redis_url_parse(many, &u, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than"));
	many[strlen(many) - 2] = '\0';
	ck_assert_int_eq(redis_url_parse(many, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_nnodes, REDIS_NODES_MAX);
	/* a plain URL is one node, single mode */
	ck_assert_int_eq(redis_url_parse("redis://h1,h2", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.ru_mode, REDIS_SINGLE);
	ck_assert_int_eq(u.ru_nnodes, 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("redisurl");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_plain_host_port);
	tcase_add_test(tc, test_password_user_db);
	tcase_add_test(tc, test_ipv6_and_unix);
	tcase_add_test(tc, test_refusals_say_why);
	tcase_add_test(tc, test_overlong_parts);
	tcase_add_test(tc, test_sentinel);
	tcase_add_test(tc, test_cluster);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
