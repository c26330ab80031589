/* Config parser: every error names file:line and key; env overrides. */
#include <check.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "realtimed.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static struct rt_config	 conf;
static char		 err[1024];

static int
parse(const char *text)
{
	int	 rv;

	config_free(&conf);
	err[0] = '\0';
	rv = config_parse_string(&conf, "test.conf", text, strlen(text), err, sizeof(err));
	if (rv == 0)
		rv = config_validate(&conf, err, sizeof(err));
	return rv;
}

static void
teardown(void)
{
	config_free(&conf);
}

START_TEST(test_defaults)
{
	ck_assert_int_eq(parse(""), 0);
	ck_assert_str_eq(conf.c_listen, "0.0.0.0:8888");
	ck_assert_str_eq(conf.c_ws_path, "/ws");
	ck_assert_str_eq(conf.c_echo_path, "");
	ck_assert_int_eq(conf.c_max_message_size, 1024 * 1024);
	ck_assert_int_eq(conf.c_heartbeat_interval, 30000);
	ck_assert_int_eq(conf.c_heartbeat_timeout, 60000);	/* 2 intervals */
	ck_assert_int_eq(conf.c_allow_anonymous, 1);
	ck_assert_int_eq(conf.c_allowed_origins.sl_count, 0);
	ck_assert_str_eq(conf.c_jwt_algorithm, "HS256");
	ck_assert_int_eq(conf.c_jwt_require_exp, 0);
	ck_assert_int_eq(conf.c_max_event_size, 1024 * 1024);
	ck_assert_int_eq(conf.c_log_level, LOG_LVL_INFO);
}
END_TEST

START_TEST(test_values_of_every_type)
{
	ck_assert_int_eq(parse(
	    "# comment\n"
	    "   \n"
	    "listen 127.0.0.1:9000   # trailing comment\n"), 0);
	ck_assert_str_eq(conf.c_listen, "127.0.0.1:9000");
	ck_assert_int_eq(parse(
	    "listen 127.0.0.1:9000\n"
	    "\tmax_message_size 64k\n"
	    "heartbeat_interval 500ms\r\n"
	    "heartbeat_timeout 2s\n"
	    "allow_anonymous no\n"
	    "allowed_origins https://a.example https://b.example\n"
	    "jwt_secret \"with space # hash\"\n"
	    "workers 3\n"
	    "jwt_require_exp yes\n"
	    "max_event_size 64k\n"
	    "log_level debug\n"), 0);
	ck_assert_str_eq(conf.c_listen, "127.0.0.1:9000");
	ck_assert_int_eq(conf.c_max_message_size, 65536);
	ck_assert_int_eq(conf.c_heartbeat_interval, 500);
	ck_assert_int_eq(conf.c_heartbeat_timeout, 2000);
	ck_assert_int_eq(conf.c_allow_anonymous, 0);
	ck_assert_int_eq(conf.c_allowed_origins.sl_count, 2);
	ck_assert_str_eq(conf.c_allowed_origins.sl_items[1], "https://b.example");
	ck_assert_str_eq(conf.c_jwt_secret, "with space # hash");
	ck_assert_int_eq(conf.c_workers, 3);
	ck_assert_int_eq(conf.c_jwt_require_exp, 1);
	ck_assert_int_eq(conf.c_max_event_size, 65536);
	ck_assert_int_eq(conf.c_log_level, LOG_LVL_DEBUG);
}
END_TEST

START_TEST(test_unknown_key_names_file_line_key)
{
	ck_assert_int_eq(parse("workers 2\n\nbogus_key 1\n"), -1);
	ck_assert_str_eq(err, "test.conf:3: unknown key 'bogus_key'");
}
END_TEST

START_TEST(test_bad_values_name_file_line_key)
{
	ck_assert_int_eq(parse("workers two\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: workers:"));
	ck_assert_int_eq(parse("\nmax_message_size 12q\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:2: max_message_size:"));
	ck_assert_int_eq(parse("heartbeat_interval soon\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "heartbeat_interval"));
	ck_assert_int_eq(parse("allow_anonymous maybe\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "allow_anonymous"));
	ck_assert_int_eq(parse("log_level loud\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "log_level"));
	ck_assert_int_eq(parse("workers\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "missing value"));
}
END_TEST

START_TEST(test_out_of_range)
{
	ck_assert_int_eq(parse("max_subscriptions 0\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	ck_assert_int_eq(parse("max_message_size 99999999999999999999\n"), -1);
	ck_assert_int_eq(parse("workers -1\n"), -1);
	ck_assert_int_eq(parse("heartbeat_interval 1ms\n"), -1);
	ck_assert_int_eq(parse("max_event_size 100\n"), -1);
	ck_assert_int_eq(parse("jwt_require_exp maybe\n"), -1);
}
END_TEST

/* A port the kernel would wrap (99999 -> 34463) is refused where it is written. */
START_TEST(test_listen_port_checked_at_its_line)
{
	ck_assert_int_eq(parse("workers 2\nlisten 127.0.0.1:99999\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:2: listen:"));
	ck_assert_ptr_nonnull(strstr(err, "out of range (1 to 65535)"));
	ck_assert_int_eq(parse("listen_tls [::1]:0\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: listen_tls:"));
	ck_assert_int_eq(parse("listen nohost\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a number"));
	ck_assert_int_eq(parse("listen 127.0.0.1:\n"), -1);
	ck_assert_int_eq(parse("listen [::1]\n"), -1);
	ck_assert_int_eq(parse("listen 127.0.0.1:123456\n"), -1);
	ck_assert_int_eq(parse("listen 127.0.0.1:65535\nlisten_tls 8443\n"), 0);
	ck_assert_int_eq(parse("listen [::1]:1\nlisten_tls \"\"\n"), 0);
	ck_assert_int_eq(parse("listen \"\"\nlisten_tls :8443\ntls_certificate c.pem\n"), 0);
}
END_TEST

START_TEST(test_listen_proxy_protocol_option)
{
	struct rt_config	 again;
	char			*text;
	size_t			 len;

	ck_assert_int_eq(parse("listen 127.0.0.1:8888 proxy_protocol\n"
	    "listen_tls [::1]:8443\ttrusted_proxies 10.0.0.0/8\n"), -1);	/* a port "8443\ttrusted..." */
	ck_assert_int_eq(parse("listen 127.0.0.1:8888 proxy_protocol\nlisten_tls [::1]:8443\n"
	    "trusted_proxies 10.0.0.0/8 fd00::/8 192.0.2.1\nproxy_protocol_timeout 250ms\n"), 0);
	ck_assert_str_eq(conf.c_listen, "127.0.0.1:8888");
	ck_assert_int_eq(conf.c_listen_proxy, 1);
	ck_assert_str_eq(conf.c_listen_tls, "[::1]:8443");
	ck_assert_int_eq(conf.c_listen_tls_proxy, 0);
	ck_assert_int_eq(conf.c_trusted_proxies.sl_count, 3);
	ck_assert_int_eq(conf.c_proxy_protocol_timeout, 250);
	/* what the master hands the workers keeps the option */
	text = config_serialize(&conf, &len);
	memset(&again, 0, sizeof(again));
	ck_assert_int_eq(config_parse_string(&again, "again", text, len, err, sizeof(err)), 0);
	ck_assert_int_eq(again.c_listen_proxy, 1);
	ck_assert_str_eq(again.c_listen, "127.0.0.1:8888");
	config_free(&again);
	free(text);
	/* a reload that drops the option says it needs a restart */
	{
		static const char next[] = "listen 127.0.0.1:8888\nlisten_tls [::1]:8443\n"
		    "trusted_proxies 10.0.0.0/8 fd00::/8 192.0.2.1\nproxy_protocol_timeout 250ms\n";

		memset(&again, 0, sizeof(again));
		ck_assert_int_eq(config_parse_string(&again, "again", next, sizeof(next) - 1,
		    err, sizeof(err)), 0);
		ck_assert_int_eq(config_validate(&again, err, sizeof(err)), 0);
	}
	ck_assert_int_eq(config_merge_reloadable(&conf, &again, 0), 1);
	ck_assert_int_eq(conf.c_listen_proxy, 1);
	config_free(&again);
	ck_assert_int_eq(parse("listen_tls 8443 proxy_protocol\n"), 0);
	ck_assert_int_eq(conf.c_listen_tls_proxy, 1);
	ck_assert_int_eq(conf.c_listen_proxy, 0);
	ck_assert_int_eq(parse("workers 1\nlisten 8888 proxy\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:2: listen:"));
	ck_assert_int_eq(parse("listen 8888 proxy_protocol proxy_protocol\n"), -1);
	ck_assert_int_eq(parse("listen \"\" proxy_protocol\n"), -1);
	ck_assert_int_eq(parse("listen 99999 proxy_protocol\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	ck_assert_int_eq(parse("trusted_proxies 10.0.0.0/8 10.0.0.0/33\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: trusted_proxies:"));
	ck_assert_int_eq(parse("trusted_proxies host.example\n"), -1);
	ck_assert_int_eq(parse("proxy_protocol_timeout 10ms\n"), -1);
}
END_TEST

START_TEST(test_redis_url_and_metrics_allow_name_their_line)
{
	ck_assert_int_eq(parse("workers 2\nredis_url http://redis:6379\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:2: redis_url:"));
	ck_assert_int_eq(parse("\n\nredis_url redis://h:99999\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:3: redis_url: bad port"));
	ck_assert_int_eq(parse("metrics_allow 10.0.0.0/8\nmetrics_allow ::1 not-an-address\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:2: metrics_allow: 'not-an-address'"));
	setenv("REDIS_URL", "bogus", 1);
	ck_assert_int_eq(parse(""), 0);
	ck_assert_int_eq(config_apply_env(&conf, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "environment REDIS_URL"));
	unsetenv("REDIS_URL");
}
END_TEST

START_TEST(test_log_file_and_format)
{
	ck_assert_int_eq(parse(""), 0);
	ck_assert_str_eq(conf.c_log_file, "");
	ck_assert_str_eq(conf.c_log_format, "text");
	ck_assert_int_eq(parse("log_file /var/log/rt.log\nlog_format json\n"), 0);
	ck_assert_str_eq(conf.c_log_file, "/var/log/rt.log");
	ck_assert_str_eq(conf.c_log_format, "json");
	ck_assert_int_eq(parse("log_format yaml\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: log_format: 'yaml' is not text or json"));
}
END_TEST

/* Errors found after parsing (a user, a file) name the line that set the key. */
START_TEST(test_where_a_key_was_set)
{
	ck_assert_int_eq(parse("# x\nuser nobody\n\ngroup nogroup\n"), 0);
	ck_assert_str_eq(config_where(&conf, "user"), "test.conf:2");
	ck_assert_str_eq(config_where(&conf, "group"), "test.conf:4");
	ck_assert_str_eq(config_where(&conf, "workers"), "test.conf");
	setenv("REALTIMED_USER", "daemon", 1);
	ck_assert_int_eq(config_apply_env(&conf, err, sizeof(err)), 0);
	ck_assert_str_eq(config_where(&conf, "user"), "environment REALTIMED_USER");
	unsetenv("REALTIMED_USER");
	ck_assert_int_eq(parse("jwt_algorithm RS256\njwt_public_key /nonexistent/k.pem\n"), 0);
	ck_assert_int_eq(config_check_files(&conf, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "test.conf:2: jwt_public_key /nonexistent/k.pem: "
	    "No such file or directory");
	ck_assert_int_eq(parse("jwt_algorithm RS256\njwt_public_key /\n"), 0);
	ck_assert_int_eq(config_check_files(&conf, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "Is a directory"));
	ck_assert_int_eq(parse("log_file /nonexistent/dir/rt.log\n"), 0);
	ck_assert_int_eq(config_check_file(&conf, "log_file", 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: log_file /nonexistent/dir/rt.log:"));
	ck_assert_int_eq(parse("log_file /tmp/not-yet-there.log\n"), 0);
	ck_assert_int_eq(config_check_file(&conf, "log_file", 1, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_cross_key_checks)
{
	ck_assert_int_eq(parse("heartbeat_interval 10s\nheartbeat_timeout 5s\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "heartbeat_timeout"));
	ck_assert_int_eq(parse("jwt_algorithm none\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "jwt_algorithm"));
	ck_assert_int_eq(parse("ws_path ws\n"), -1);
	ck_assert_int_eq(parse("jwt_algorithm hs256\n"), -1);
	ck_assert_int_eq(parse("jwt_algorithm RS256\n"), 0);
	ck_assert_int_eq(parse("drain_period 20s\nshutdown_timeout 10s\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "drain_period"));
	ck_assert_int_eq(parse("workers 65\n"), -1);
	ck_assert_int_eq(parse("metrics_allow 10.0.0.0/33\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "metrics_allow"));
	ck_assert_int_eq(parse("listen \"\"\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "no listener"));
	/* a message must fit in what a worker may hold of messages */
	ck_assert_int_eq(parse("max_message_memory 512k\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: max_message_memory"));
	ck_assert_int_eq(parse("max_message_memory 512k\nmax_message_size 512k\n"), 0);
	ck_assert_int_eq(conf.c_max_message_memory, 512 * 1024);
	ck_assert_int_eq(parse(""), 0);
	ck_assert_int_eq(conf.c_max_message_memory, 64 * 1024 * 1024);
}
END_TEST

/*
 * What the master pushes is read back whole by its children, even where
 * its canonical form is longer than a file's line may be: a 1024-byte
 * secret of backslashes (escaped: twice that) and a namespace line near
 * 1024 bytes whose "1d" is written "86400000ms".
 */
START_TEST(test_serialize_long_values_round_trip)
{
	struct rt_config	 again;
	char			 text[4096], secret[CONF_STR_MAX + 1], wk[1000];
	char			*wire;
	size_t			 len, i;

	memcpy(secret, "0123456789abcdef0123456789abcdef01234567", 40);
	for (i = 40; i < CONF_STR_MAX; i++)
		secret[i] = '\\';
	secret[CONF_STR_MAX] = '\0';
	for (i = 0, len = 0; i < 63; i++)	/* 63 names, 944 bytes */
		len += (size_t)snprintf(wk + len, sizeof(wk) - len, "%swellknown_%04zu", i ? "," : "", i);
	snprintf(text, sizeof(text), "jwt_secret %s\nnamespace apps:* authenticated "
	    "history=5 history_ttl=1d max_subscribers=7 well_known=%s\n", secret, wk);
	/* the namespace's value: within a file's 1024 bytes, its canonical form not */
	ck_assert_uint_gt(strlen(strstr(text, "\nnamespace ") + 11), 1010);
	ck_assert_uint_le(strlen(strstr(text, "\nnamespace ") + 11), 1024 + 1);
	ck_assert_msg(parse(text) == 0, "%s", err);
	ck_assert_str_eq(conf.c_jwt_secret, secret);
	wire = config_serialize(&conf, &len);
	memset(&again, 0, sizeof(again));
	config_from_master(&again, "wire", wire, len);	/* exits if it cannot */
	ck_assert_str_eq(again.c_jwt_secret, secret);
	ck_assert_int_eq(config_merge_reloadable(&conf, &again, 0), 0);
	free(wire);
	/* and again: the children's copy serialises the same */
	wire = config_serialize(&again, &len);
	config_free(&again);
	memset(&again, 0, sizeof(again));
	config_from_master(&again, "wire", wire, len);
	ck_assert_str_eq(again.c_jwt_secret, secret);
	config_free(&again);
	free(wire);
}
END_TEST

/* A CRLF file: blank lines, comments and keys without a value as in LF. */
START_TEST(test_crlf_lines)
{
	ck_assert_msg(parse("# a comment\r\n\r\nworkers 3\r\n   \r\nlog_level debug\r\n"
	    "jwt_secret \"s p\"\r\n") == 0, "%s", err);
	ck_assert_int_eq(conf.c_workers, 3);
	ck_assert_str_eq(conf.c_jwt_secret, "s p");
	ck_assert_int_eq(parse("workers 3\r\n\r\nnope 1\r\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:3: unknown key 'nope'"));
}
END_TEST

/* Whole-file checks name the line that set the key; -t finds what a start would. */
START_TEST(test_cross_checks_name_the_line)
{
	char	 text[512];

	ck_assert_int_eq(parse("workers 1\nadmin_socket_mode abc\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:2: admin_socket_mode 'abc'") != NULL, "%s", err);
	ck_assert_int_eq(parse("admin_socket_mode 7777\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:1: admin_socket_mode") != NULL, "%s", err);
	ck_assert_int_eq(parse("admin_socket_mode 0600\n"), 0);
	snprintf(text, sizeof(text), "\nadmin_socket /tmp/%0108d\n", 0);
	ck_assert_int_eq(parse(text), -1);
	ck_assert_msg(strstr(err, "test.conf:2: admin_socket: longer than 107") != NULL, "%s", err);
	snprintf(text, sizeof(text), "admin_socket /%0106d\n", 0);	/* 107: fits */
	ck_assert_msg(parse(text) == 0, "%s", err);
	ck_assert_int_eq(parse("workers 1\n\njwt_algorithm HS999\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:3: jwt_algorithm 'HS999'") != NULL &&
	    strstr(err, "RS384") != NULL && strstr(err, "ES512") != NULL, "%s", err);
	ck_assert_int_eq(parse("heartbeat_interval 30s\nheartbeat_timeout 10s\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:2: heartbeat_timeout") != NULL, "%s", err);
	ck_assert_int_eq(parse("\nws_path ws\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:2: ws_path") != NULL, "%s", err);
	ck_assert_int_eq(parse("workers +5\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:1: workers: '+5' is not a number") != NULL, "%s", err);
	ck_assert_int_eq(parse("workers \" 5\"\n"), -1);
	ck_assert_int_eq(parse("workers 5\n"), 0);
	ck_assert_int_eq(parse("max_publish_pending 10\nmax_publish_batch 11\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:2: max_publish_batch (11)") != NULL, "%s", err);
	ck_assert_int_eq(parse("max_publish_pending 10\nmax_publish_batch 10\n"), 0);
	ck_assert_int_eq(parse("drain_period 10s\nshutdown_timeout 5s\n"), -1);
	ck_assert_msg(strstr(err, "test.conf:1: drain_period") != NULL, "%s", err);
}
END_TEST

START_TEST(test_hostile_lines)
{
	char	 big[4096];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(parse(big), -1);
	ck_assert_ptr_nonnull(strstr(err, "line too long"));
	config_free(&conf);
	ck_assert_int_eq(config_parse_string(&conf, "t", "workers 1\0x\n", 12,
	    err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST

START_TEST(test_units)
{
	int64_t	 v;

	ck_assert_int_eq(config_parse_duration("1500ms", &v), 0);
	ck_assert_int_eq(v, 1500);
	ck_assert_int_eq(config_parse_duration("2m", &v), 0);
	ck_assert_int_eq(v, 120000);
	ck_assert_int_eq(config_parse_duration("7", &v), 0);
	ck_assert_int_eq(v, 7000);
	ck_assert_int_eq(config_parse_duration("-1s", &v), -1);
	ck_assert_int_eq(config_parse_duration("", &v), -1);
	ck_assert_int_eq(config_parse_size("1m", &v), 0);
	ck_assert_int_eq(v, 1048576);
	ck_assert_int_eq(config_parse_size("3kb", &v), 0);
	ck_assert_int_eq(v, 3072);
	ck_assert_int_eq(config_parse_size("1t", &v), -1);
	ck_assert_int_eq(config_parse_usec("500us", &v), 0);
	ck_assert_int_eq(v, 500);
	ck_assert_int_eq(config_parse_usec("2ms", &v), 0);
	ck_assert_int_eq(v, 2000);
	ck_assert_int_eq(config_parse_usec("0", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(config_parse_usec("1", &v), 0);
	ck_assert_int_eq(v, 1000000);
	ck_assert_int_eq(config_parse_usec("5ns", &v), -1);
	ck_assert_int_eq(config_parse_usec("-5us", &v), -1);
}
END_TEST

/* redis_coalesce: microseconds, 100 ms at most, a clear error beyond. */
START_TEST(test_redis_coalesce)
{
	ck_assert_int_eq(parse(""), 0);
	ck_assert_int_eq(conf.c_redis_coalesce, 1000);
	ck_assert_int_eq(parse("redis_coalesce 250us\n"), 0);
	ck_assert_int_eq(conf.c_redis_coalesce, 250);
	ck_assert_int_eq(parse("redis_coalesce 0\n"), 0);
	ck_assert_int_eq(conf.c_redis_coalesce, 0);
	ck_assert_int_eq(parse("redis_coalesce 1s\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range (0 to 100000 us)"));
	ck_assert_int_eq(parse("redis_coalesce fast\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "is not a duration (e.g. 0, 500us, 2ms)"));
}
END_TEST

START_TEST(test_environment_overrides)
{
	setenv("JWT_SECRET", "from-env", 1);
	setenv("REDIS_URL", "redis://10.0.0.1:6380/2", 1);
	setenv("REALTIMED_MAX_SUBSCRIPTIONS", "7", 1);
	ck_assert_int_eq(parse("jwt_secret from-file\nmax_subscriptions 3\n"), 0);
	ck_assert_int_eq(config_apply_env(&conf, err, sizeof(err)), 0);
	ck_assert_str_eq(conf.c_jwt_secret, "from-env");
	ck_assert_str_eq(conf.c_redis_url, "redis://10.0.0.1:6380/2");
	ck_assert_int_eq(conf.c_max_subscriptions, 7);
	setenv("REALTIMED_WORKERS", "many", 1);
	ck_assert_int_eq(config_apply_env(&conf, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "REALTIMED_WORKERS"));
	unsetenv("JWT_SECRET");
	unsetenv("REDIS_URL");
	unsetenv("REALTIMED_MAX_SUBSCRIPTIONS");
	unsetenv("REALTIMED_WORKERS");
}
END_TEST

START_TEST(test_missing_file)
{
	config_free(&conf);
	ck_assert_int_eq(config_load(&conf, "/nonexistent/realtimed.conf", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/realtimed.conf"));
}
END_TEST

static void
dump_line(const char *line, void *arg)
{
	int	*n = arg;

	/* n[0]: keys, n[1]: the namespace lines that follow them */
	if (strncmp(line, "namespace ", 10) == 0)
		n[1]++;
	else {
		ck_assert_int_eq(n[1], 0);
		n[0]++;
	}
	ck_assert_ptr_null(strstr(line, "topsecret"));
}

START_TEST(test_dump_masks_secrets)
{
	int	 n[2] = { 0, 0 }, i;

	ck_assert_int_eq(parse("jwt_secret topsecret\n"
	    "redis_url redis://realtime:topsecret@127.0.0.1:6379/0\n"), 0);
	config_dump(&conf, dump_line, n);
	ck_assert_int_eq(n[0], config_key_count());
	/* no namespace line: the default table, written out */
	for (i = 0; chan_default_lines[i] != NULL; i++)
		;
	ck_assert_int_eq(n[1], i);
}
END_TEST

static void
dump_redis_url(const char *line, void *arg)
{
	if (strncmp(line, "redis_url ", 10) == 0)
		snprintf(arg, 256, "%s", line + 10);
}

/* The password of a redis_url is masked in the dump, the rest kept. */
START_TEST(test_dump_masks_the_redis_url_password)
{
	const char	*cases[][2] = {
		{ "redis://realtime:s3cr#t@10.0.0.1:6379/2", "redis://realtime:(set)@10.0.0.1:6379/2" },
		{ "redis://:pw@h:1", "redis://:(set)@h:1" },
		{ "rediss://pw@h", "rediss://(set)@h" },
		{ "redis://h:6379/0", "redis://h:6379/0" },
		{ "unix:///run/redis.sock", "unix:///run/redis.sock" },
	};
	char		 text[512], got[256];
	size_t		 i, parsed = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "redis_url \"%s\"\n", cases[i][0]);
		if (parse(text) != 0)
			continue;	/* a form this build's parser refuses */
		parsed++;
		got[0] = '\0';
		config_dump(&conf, dump_redis_url, got);
		ck_assert_msg(strcmp(got, cases[i][1]) == 0 ||
		    (got[0] == '"' && strncmp(got + 1, cases[i][1], strlen(cases[i][1])) == 0),
		    "%s dumped as %s", cases[i][0], got);
	}
	ck_assert_uint_ge(parsed, 4);
	/* what the master hands its children keeps the password */
	ck_assert_int_eq(parse("redis_url redis://u:pw@h:1\n"), 0);
	{
		size_t	 len;
		char	*wire = config_serialize(&conf, &len);

		ck_assert_ptr_nonnull(strstr(wire, "redis_url redis://u:pw@h:1\n"));
		free(wire);
	}
}
END_TEST

/* Every key of the table is documented in the sample configuration. */
START_TEST(test_every_key_in_sample_config)
{
	FILE	*fp = fopen(TEST_SRCDIR "/../etc/realtimed.conf", "r");
	char	 text[65536], pat[128];
	size_t	 n;
	int	 i;

	ck_assert_ptr_nonnull(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	for (i = 0; i < config_key_count(); i++) {
		snprintf(pat, sizeof(pat), "#%s", config_key_name(i));
		if (strstr(text, pat) == NULL)
			ck_abort_msg("key %s missing from etc/realtimed.conf", config_key_name(i));
	}
}
END_TEST

/* Every key of the table is documented in realtimed.conf(5). */
START_TEST(test_every_key_in_manual)
{
	FILE	*fp = fopen(TEST_SRCDIR "/../man/realtimed.conf.5", "r");
	static char text[262144];
	char	 pat[128];
	size_t	 n;
	int	 i;

	ck_assert_ptr_nonnull(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	for (i = 0; i < config_key_count(); i++) {
		snprintf(pat, sizeof(pat), ".It Ic %s ", config_key_name(i));
		if (strstr(text, pat) == NULL) {
			snprintf(pat, sizeof(pat), ".It Ic %s\n", config_key_name(i));
			if (strstr(text, pat) == NULL)
				ck_abort_msg("key %s has no entry in man/realtimed.conf.5",
				    config_key_name(i));
		}
	}
}
END_TEST

static int
allowed(const char *addr, const char *list)
{
	struct sockaddr_in6	 s6;
	struct sockaddr_in	 s4;
	int			 rv;

	ck_assert_int_eq(parse(list), 0);
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		rv = util_addr_allowed((struct sockaddr *)&s4, &conf.c_metrics_allow);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &s6.sin6_addr), 1);
		s6.sin6_family = AF_INET6;
		rv = util_addr_allowed((struct sockaddr *)&s6, &conf.c_metrics_allow);
	}
	return rv;
}

/* metrics_allow: addresses and CIDR blocks, v4, v6 and v4-mapped v6. */
START_TEST(test_metrics_allow_matching)
{
	ck_assert_int_eq(allowed("127.0.0.1", ""), 1);		/* the default */
	ck_assert_int_eq(allowed("::1", ""), 1);
	ck_assert_int_eq(allowed("10.1.2.3", ""), 0);
	ck_assert_int_eq(allowed("10.1.2.3", "metrics_allow 10.0.0.0/8\n"), 1);
	ck_assert_int_eq(allowed("11.1.2.3", "metrics_allow 10.0.0.0/8\n"), 0);
	ck_assert_int_eq(allowed("192.168.1.77", "metrics_allow 192.168.1.64/27\n"), 1);
	ck_assert_int_eq(allowed("192.168.1.96", "metrics_allow 192.168.1.64/27\n"), 0);
	ck_assert_int_eq(allowed("::ffff:10.9.9.9", "metrics_allow 10.0.0.0/8\n"), 1);
	ck_assert_int_eq(allowed("2001:db8::5", "metrics_allow 2001:db8::/32\n"), 1);
	ck_assert_int_eq(allowed("2001:db9::5", "metrics_allow 2001:db8::/32\n"), 0);
	ck_assert_int_eq(allowed("127.0.0.1", "metrics_allow 10.0.0.0/8\n"), 0);
	ck_assert_int_eq(allowed("8.8.8.8", "metrics_allow 0.0.0.0/0\n"), 1);
	/* an IPv4-mapped entry is its IPv4 address or block */
	ck_assert_int_eq(allowed("127.0.0.1", "metrics_allow ::ffff:127.0.0.1\n"), 1);
	ck_assert_int_eq(allowed("::ffff:127.0.0.1", "metrics_allow ::ffff:127.0.0.1\n"), 1);
	ck_assert_int_eq(allowed("127.0.0.2", "metrics_allow ::ffff:127.0.0.1\n"), 0);
	ck_assert_int_eq(allowed("10.1.2.3", "metrics_allow ::ffff:10.0.0.0/104\n"), 1);
	ck_assert_int_eq(allowed("11.1.2.3", "metrics_allow ::ffff:10.0.0.0/104\n"), 0);
	ck_assert_int_eq(util_cidr_valid("1.2.3.4/x"), 0);
	ck_assert_int_eq(util_cidr_valid("::1/129"), 0);
	ck_assert_int_eq(util_cidr_valid("localhost"), 0);
	ck_assert_int_eq(util_cidr_valid("10.0.0.0/+8"), 0);
	ck_assert_int_eq(util_cidr_valid("10.0.0.0/ 8"), 0);
	ck_assert_int_eq(util_cidr_valid("10.0.0.0/-0"), 0);
	ck_assert_int_eq(util_cidr_valid("10.0.0.0/"), 0);
	ck_assert_int_eq(util_cidr_valid("10.0.0.0/8"), 1);
	ck_assert_int_eq(util_cidr_valid("::/0"), 1);
}
END_TEST

static void
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[512];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* include: globs relative to the including file, in order, nested, bounded. */
START_TEST(test_include_files)
{
	char	 dir[] = "/tmp/rtconf.XXXXXX", path[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	write_file(dir, "main.conf", "jwt_secret s\nworkers 1\ninclude conf.d/*.conf\n"
	    "include none.d/*.conf\n");
	write_file(dir, "conf.d/10-a.conf", "workers 2\nmax_subscriptions 7\n");
	write_file(dir, "conf.d/20-b.conf", "workers 3\ninclude ../nested.inc\n");
	write_file(dir, "nested.inc", "max_channels 1000\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	config_free(&conf);
	ck_assert_int_eq(config_load(&conf, path, err, sizeof(err)), 0);
	ck_assert_int_eq(conf.c_workers, 3);		/* the last one read wins */
	ck_assert_int_eq(conf.c_max_subscriptions, 7);
	ck_assert_int_eq(conf.c_max_channels, 1000);
	/* an error inside an included file names that file and line */
	write_file(dir, "conf.d/30-bad.conf", "\nworkers lots\n");
	config_free(&conf);
	ck_assert_int_eq(config_load(&conf, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "30-bad.conf:2: workers"));
	/* a file that includes itself stops at the depth limit */
	write_file(dir, "loop.conf", "include loop.conf\n");
	snprintf(path, sizeof(path), "%s/loop.conf", dir);
	config_free(&conf);
	ck_assert_int_eq(config_load(&conf, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "nested"));
	/* text that did not come from a file may not pull files in */
	ck_assert_int_eq(parse("include /etc/passwd\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "not allowed"));
}
END_TEST

/*
 * An include directory that exists but cannot be read is an error naming
 * it (a missing one is no match).  Root reads any directory, so as root
 * the check runs with the effective uid of nobody.
 */
START_TEST(test_include_unreadable_directory)
{
	char	 dir[] = "/tmp/rtconf.XXXXXX", path[512], sub[512];
	int	 rv;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	write_file(dir, "conf.d/10-a.conf", "workers 2\n");
	write_file(dir, "main.conf", "jwt_secret s\nworkers 1\n\ninclude conf.d/*.conf\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(chmod(sub, 0), 0);
	if (geteuid() == 0)
		ck_assert_int_eq(seteuid(65534), 0);
	config_free(&conf);
	rv = config_load(&conf, path, err, sizeof(err));
	if (getuid() == 0)
		ck_assert_int_eq(seteuid(0), 0);
	ck_assert_int_eq(chmod(sub, 0755), 0);
	ck_assert_int_eq(rv, -1);
	ck_assert_msg(strstr(err, "main.conf:4: include conf.d/*.conf: ") != NULL &&
	    strstr(err, "conf.d: Permission denied") != NULL, "%s", err);
	/* readable again: read */
	config_free(&conf);
	ck_assert_int_eq(config_load(&conf, path, err, sizeof(err)), 0);
	ck_assert_int_eq(conf.c_workers, 2);
}
END_TEST

/* The workers' heap trim: over the threshold, and only once the free total moved. */
START_TEST(test_trim_due)
{
	const size_t	 mib = 1024 * 1024;

	ck_assert_int_eq(util_trim_due(mib / 2, 0, mib), 0);
	ck_assert_int_eq(util_trim_due(mib, 0, mib), 0);
	ck_assert_int_eq(util_trim_due(mib + 1, 0, mib), 1);
	ck_assert_int_eq(util_trim_due(3 * mib, 0, mib), 1);
	/* trimmed at 3 MiB: the pages given back still count as free */
	ck_assert_int_eq(util_trim_due(3 * mib, 3 * mib, mib), 0);
	ck_assert_int_eq(util_trim_due(3 * mib + mib / 4 - 1, 3 * mib, mib), 0);
	ck_assert_int_eq(util_trim_due(3 * mib + mib / 4, 3 * mib, mib), 1);
	ck_assert_int_eq(util_trim_due(2 * mib, 3 * mib, mib), 1);
	ck_assert_int_eq(util_trim_due(mib - 1, 3 * mib, mib), 0);
}
END_TEST

static int
uuid_shape_ok(const char *u)
{
	int	 i;

	if (strlen(u) != RT_UUID_LEN || u[14] != '4' || strchr("89ab", u[19]) == NULL)
		return 0;
	for (i = 0; i < RT_UUID_LEN; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? u[i] != '-' :
		    strchr("0123456789abcdef", u[i]) == NULL)
			return 0;
	return 1;
}

/*
 * Connection ids from the pooled randomness: v4 shape, no repeats across
 * several refills, and a forked child (workers are forked) hands out none
 * of the ids its parent has still to give.
 */
START_TEST(test_uuid4_pool)
{
	enum { N = 300 };
	static char	 ids[N][RT_UUID_LEN + 1];
	char		 small[8], child[RT_UUID_LEN + 1];
	int		 i, j, p[2], st;
	pid_t		 pid;

	ck_assert_int_eq(util_uuid4(small, sizeof(small)), -1);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(util_uuid4(ids[i], sizeof(ids[i])), 0);
		ck_assert_msg(uuid_shape_ok(ids[i]), "bad id %s", ids[i]);
		for (j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
	}
	/* the pool is part used: the parent's next id is in it, the child's must not be */
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char	 u[RT_UUID_LEN + 1];

		if (util_uuid4(u, sizeof(u)) != 0 || write(p[1], u, RT_UUID_LEN) != RT_UUID_LEN)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(read(p[0], child, RT_UUID_LEN), RT_UUID_LEN);
	child[RT_UUID_LEN] = '\0';
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(uuid_shape_ok(child));
	for (i = 0; i < 64; i++) {
		char	 u[RT_UUID_LEN + 1];

		ck_assert_int_eq(util_uuid4(u, sizeof(u)), 0);
		ck_assert_str_ne(u, child);
	}
	close(p[0]);
	close(p[1]);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	log_init("test", 1, LOG_LVL_ERR);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_listen_proxy_protocol_option);
	tcase_add_test(tc, test_values_of_every_type);
	tcase_add_test(tc, test_unknown_key_names_file_line_key);
	tcase_add_test(tc, test_bad_values_name_file_line_key);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_listen_port_checked_at_its_line);
	tcase_add_test(tc, test_redis_url_and_metrics_allow_name_their_line);
	tcase_add_test(tc, test_log_file_and_format);
	tcase_add_test(tc, test_where_a_key_was_set);
	tcase_add_test(tc, test_cross_key_checks);
	tcase_add_test(tc, test_hostile_lines);
	tcase_add_test(tc, test_cross_checks_name_the_line);
	tcase_add_test(tc, test_crlf_lines);
	tcase_add_test(tc, test_serialize_long_values_round_trip);
	tcase_add_test(tc, test_units);
	tcase_add_test(tc, test_redis_coalesce);
	tcase_add_test(tc, test_environment_overrides);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_dump_masks_secrets);
	tcase_add_test(tc, test_dump_masks_the_redis_url_password);
	tcase_add_test(tc, test_every_key_in_sample_config);
	tcase_add_test(tc, test_every_key_in_manual);
	tcase_add_test(tc, test_metrics_allow_matching);
	tcase_add_test(tc, test_trim_due);
	tcase_add_test(tc, test_uuid4_pool);
	tcase_add_test(tc, test_include_files);
	tcase_add_test(tc, test_include_unreadable_directory);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
