/*
 * redis_cluster: the key space as the Redis Cluster specification defines
 * it (its CRC16 test vector, hash tags), checked against CLUSTER KEYSLOT of
 * a real Redis 7; slot maps from real CLUSTER SLOTS replies
 * (tests/unit/data/, taken from scripts/redis-cluster.sh) and malformed
 * ones; MOVED and ASK.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "channel.h"
#include "redis_cluster.h"

/* CLUSTER KEYSLOT of a Redis 7.0 cluster for each key. */
static const struct {
	const char	*key;
	int		 slot;
} slots[] = {
	{ "foo", 12182 },
	{ "bar", 5061 },
	{ "hello", 866 },
	{ "123456789", 12739 },
	{ "user:42", 15880 },
	{ "apps:created", 10533 },
	{ "{user1000}.following", 3443 },
	{ "{user1000}.followers", 3443 },
	{ "foo{}{bar}", 8363 },
	{ "foo{{bar}}zap", 4015 },
	{ "foo{bar}{zap}", 5061 },
	{ "{}", 15257 },
	{ "{", 4092 },
	{ "}", 12090 },
	{ "a{b", 13340 },
	{ "deploy:prod/eu-1", 168 },
	{ "__realtimed:canary:x", 7266 },
	{ "", 0 },
	{ "realtimed:control", 16333 },
	{ "{user:9}:events", 11026 },
};

static redisReply *
parse_resp(const char *buf, size_t len)
{
	redisReader	*rd = redisReaderCreate();
	void		*reply = NULL;

	ck_assert_ptr_nonnull(rd);
	ck_assert_int_eq(redisReaderFeed(rd, buf, len), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
	ck_assert_ptr_nonnull(reply);
	redisReaderFree(rd);
	return reply;
}

static redisReply *
parse_file(const char *name)
{
	char		 path[512], buf[8192];
	FILE		*fp;
	size_t		 n;

	snprintf(path, sizeof(path), "%s/unit/data/%s", TEST_SRCDIR, name);
	ck_assert_ptr_nonnull(fp = fopen(path, "rb"));
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	return parse_resp(buf, n);
}

START_TEST(test_crc16_vector)
{
	/* the specification's: "123456789" -> 0x31C3 */
	ck_assert_uint_eq(rcluster_crc16("123456789", 9), 0x31C3);
	ck_assert_uint_eq(rcluster_crc16("", 0), 0);
}
END_TEST

START_TEST(test_keyslots_match_redis)
{
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		ck_assert_msg(rcluster_keyslot(slots[i].key, strlen(slots[i].key)) == slots[i].slot,
		    "%s: %d, Redis says %d", slots[i].key,
		    rcluster_keyslot(slots[i].key, strlen(slots[i].key)), slots[i].slot);
	/* a hash tag hashes only the tag */
	ck_assert_int_eq(rcluster_keyslot("x{user:9}y", 10), rcluster_keyslot("user:9", 6));
	/* bytes after a NUL count (lengths, not C strings) */
	ck_assert_int_ne(rcluster_keyslot("a\0b", 3), rcluster_keyslot("a", 1));
}
END_TEST

/*
 * FCALL realtimed_publish and realtimed_read name one key, the channel,
 * and touch realtimed:{CH}:m and :h (cluster.c): the bridge routes the
 * call by the channel, so all three must be in its slot.  A channel name
 * has no braces, so the channel hashes whole, as the tag does.
 */
START_TEST(test_function_keys_share_the_channel_slot)
{
	static const char *chans[] = { "apps:created", "user:42", "a", "storage:x.y-z@q",
	    "deployments:status" };
	char	 m[256], h[256];
	size_t	 i;
	int	 ml, hl;

	ck_assert(!chan_name_valid("a{b}", 4));
	for (i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
		ml = snprintf(m, sizeof(m), "realtimed:{%s}:m", chans[i]);
		hl = snprintf(h, sizeof(h), "realtimed:{%s}:h", chans[i]);
		ck_assert_int_eq(rcluster_keyslot(m, (size_t)ml),
		    rcluster_keyslot(chans[i], strlen(chans[i])));
		ck_assert_int_eq(rcluster_keyslot(h, (size_t)hl),
		    rcluster_keyslot(chans[i], strlen(chans[i])));
	}
}
END_TEST

START_TEST(test_map_from_a_real_cluster)
{
	struct rcluster_map	 m;
	redisReply		*r = parse_file("cluster-slots-6.resp");
	char			 err[256];

	ck_assert_int_eq(rcluster_map_parse(r, "127.0.0.1", &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.rm_nshards, 3);
	ck_assert_int_eq(m.rm_uncovered, 0);
	ck_assert_int_eq(rcluster_owner(&m, 0)->rs_port, 28000);
	ck_assert_int_eq(rcluster_owner(&m, 5460)->rs_port, 28000);
	ck_assert_int_eq(rcluster_owner(&m, 5461)->rs_port, 28001);
	ck_assert_int_eq(rcluster_owner(&m, 16383)->rs_port, 28002);
	ck_assert_str_eq(rcluster_owner(&m, 0)->rs_host, "127.0.0.1");
	ck_assert_str_eq(rcluster_owner(&m, 0)->rs_id, "fa227a08f31a65d32181c3ba7ed82134df2f8aa3");
	ck_assert_int_eq(rcluster_owner(&m, 0)->rs_replicas, 1);
	ck_assert_ptr_null(rcluster_owner(&m, 16384));
	ck_assert_ptr_null(rcluster_owner(&m, -1));
	rcluster_map_free(&m);
	freeReplyObject(r);
	/* before the replicas joined */
	r = parse_file("cluster-slots-3.resp");
	ck_assert_int_eq(rcluster_map_parse(r, "127.0.0.1", &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.rm_nshards, 3);
	ck_assert_int_eq(rcluster_owner(&m, 10922)->rs_replicas, 0);
	rcluster_map_free(&m);
	freeReplyObject(r);
}
END_TEST

#define RANGE(lo, hi, host, port) \
	"*3\r\n:" #lo "\r\n:" #hi "\r\n*2\r\n$" host "\r\n:" #port "\r\n"

START_TEST(test_map_forms_and_holes)
{
	struct rcluster_map	 m;
	redisReply		*r;
	char			 err[256];
	/* Redis 3 node entries (host, port), an unknown endpoint "?", a hole */
	static const char	 resp[] = "*3\r\n"
	    RANGE(0, 99, "1\r\na", 7000)
	    RANGE(100, 199, "1\r\n?", 7001)
	    RANGE(300, 16383, "0\r\n", 7000);

	r = parse_resp(resp, sizeof(resp) - 1);
	ck_assert_int_eq(rcluster_map_parse(r, "seed.example", &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.rm_nshards, 3);	/* "a":7000, seed:7001, seed:7000 */
	ck_assert_int_eq(m.rm_uncovered, 100);
	ck_assert_ptr_null(rcluster_owner(&m, 250));
	ck_assert_str_eq(rcluster_owner(&m, 150)->rs_host, "seed.example");
	ck_assert_str_eq(rcluster_owner(&m, 16000)->rs_host, "seed.example");
	ck_assert_str_eq(rcluster_owner(&m, 50)->rs_id, "");
	rcluster_map_free(&m);
	freeReplyObject(r);
}
END_TEST

static void
refused(const char *resp, const char *why)
{
	struct rcluster_map	 m;
	redisReply		*r = parse_resp(resp, strlen(resp));
	char			 err[256] = "";

	ck_assert_int_eq(rcluster_map_parse(r, "h", &m, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, why) != NULL, "%s: %s", resp, err);
	ck_assert_int_eq(m.rm_nshards, 0);
	ck_assert_ptr_null(m.rm_shards);
	freeReplyObject(r);
}

START_TEST(test_map_refusals)
{
	refused("-ERR This instance has cluster support disabled\r\n", "cluster support disabled");
	refused(":1\r\n", "not an array");
	refused("*1\r\n" RANGE(10, 5, "1\r\na", 7000), "bad slot range");
	refused("*1\r\n" RANGE(0, 16384, "1\r\na", 7000), "bad slot range");
	refused("*1\r\n*2\r\n:0\r\n:1\r\n", "bad slot range");
	refused("*1\r\n" RANGE(0, 1, "1\r\na", 0), "bad master");
	refused("*1\r\n" RANGE(0, 1, "1\r\na", 65536), "bad master");
	refused("*1\r\n*3\r\n:0\r\n:1\r\n:5\r\n", "bad master");
	refused("*2\r\n" RANGE(0, 10, "1\r\na", 7000) RANGE(10, 20, "1\r\nb", 7000),
	    "two masters");
}
END_TEST

START_TEST(test_redirects)
{
	char	 host[64];
	int	 slot = -1, port = -1;

	ck_assert_int_eq(rcluster_redirect("MOVED 3999 127.0.0.1:6381", &slot, host,
	    sizeof(host), &port), 1);
	ck_assert_int_eq(slot, 3999);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_int_eq(port, 6381);
	ck_assert_int_eq(rcluster_redirect("ASK 16383 ::1:7000", &slot, host, sizeof(host),
	    &port), 2);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(port, 7000);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 [fe80::1]:7000", &slot, host, sizeof(host),
	    &port), 1);
	ck_assert_str_eq(host, "fe80::1");
	ck_assert_int_eq(rcluster_redirect("ERR unknown command", &slot, host, sizeof(host),
	    &port), 0);
	ck_assert_int_eq(rcluster_redirect("MOVED 16384 h:1", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED x h:1", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 h", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 h:0", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 h:70000", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 h:1x", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 h:", &slot, host, sizeof(host), &port), -1);
	ck_assert_int_eq(rcluster_redirect("MOVED 1 0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789:1", &slot, host, sizeof(host), &port), -1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("redis_cluster");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_crc16_vector);
	tcase_add_test(tc, test_keyslots_match_redis);
	tcase_add_test(tc, test_function_keys_share_the_channel_slot);
	tcase_add_test(tc, test_map_from_a_real_cluster);
	tcase_add_test(tc, test_map_forms_and_holes);
	tcase_add_test(tc, test_map_refusals);
	tcase_add_test(tc, test_redirects);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
