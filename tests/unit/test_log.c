/* Logging: log_file in both formats, its reopening, the syslog probe. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"

static char	 dir[] = "/tmp/rt-test-log.XXXXXX";
static char	 path[256], rotated[256];

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rt.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/rt.log.1", dir);
}

static void
teardown(void)
{
	char	 sock[256];

	snprintf(sock, sizeof(sock), "%s/log.sock", dir);
	unlink(path);
	unlink(rotated);
	unlink(sock);
	rmdir(dir);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

/* The last line of file f, without its newline. */
static char *
last_line(const char *f, char *buf, size_t len)
{
	FILE	*fp = fopen(f, "r");
	char	 line[16384];

	buf[0] = '\0';
	if (fp == NULL)
		return buf;
	while (fgets(line, sizeof(line), fp) != NULL)
		snprintf(buf, len, "%s", line);
	fclose(fp);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

START_TEST(test_log_file_text)
{
	char	 err[256], line[16384], want[64];

	log_init("rt-test", 1, LOG_LVL_INFO);
	ck_assert_int_eq(log_file_open(path, err, sizeof(err)), 0);
	ck_assert_int_eq(log_to_stderr(), 0);
	log_setformat(LOG_FMT_TEXT);
	log_info("hello %s", "world");
	snprintf(want, sizeof(want), "Z rt-test[%d]: hello world", (int)getpid());
	ck_assert_ptr_nonnull(strstr(last_line(path, line, sizeof(line)), want));
	log_debug("not at level info");
	ck_assert_ptr_nonnull(strstr(last_line(path, line, sizeof(line)), "hello world"));
}
END_TEST

START_TEST(test_log_file_json)
{
	char			 err[256], line[16384];
	struct json_object	*o, *v;

	log_init("rt-test", 1, LOG_LVL_INFO);
	ck_assert_int_eq(log_file_open(path, err, sizeof(err)), 0);
	log_setformat(LOG_FMT_JSON);
	log_setproc("worker 3");
	log_warnx("a \"quote\"\\ and\nnewline\ttab \x01, bad \xff UTF-8");
	o = json_tokener_parse(last_line(path, line, sizeof(line)));
	ck_assert_msg(o != NULL, "not JSON: %s", line);
	ck_assert(json_object_object_get_ex(o, "message", &v));
	ck_assert_str_eq(json_object_get_string(v),
	    "a \"quote\"\\ and\nnewline\ttab \x01, bad \xef\xbf\xbd UTF-8");
	ck_assert(json_object_object_get_ex(o, "level", &v));
	ck_assert_str_eq(json_object_get_string(v), "warning");
	ck_assert(json_object_object_get_ex(o, "process", &v));
	ck_assert_str_eq(json_object_get_string(v), "worker 3");
	ck_assert(json_object_object_get_ex(o, "pid", &v));
	ck_assert_int_eq(json_object_get_int(v), getpid());
	ck_assert(json_object_object_get_ex(o, "time", &v));
	ck_assert_int_eq(strlen(json_object_get_string(v)), 24);
	json_object_put(o);
	log_setformat(LOG_FMT_TEXT);
	log_setproc("master");
}
END_TEST

/* logrotate renames the file, then SIGUSR1: the next line goes to a new one. */
START_TEST(test_reopen_after_rename)
{
	char	 err[256], line[16384];

	log_init("rt-test", 1, LOG_LVL_INFO);
	ck_assert_int_eq(log_file_open(path, err, sizeof(err)), 0);
	log_info("before");
	ck_assert_int_eq(rename(path, rotated), 0);
	log_info("still the old file");
	ck_assert_int_eq(log_reopen(), 0);
	log_info("after");
	ck_assert_str_eq(strstr(last_line(rotated, line, sizeof(line)), ": ") + 2,
	    "still the old file");
	ck_assert_str_eq(strstr(last_line(path, line, sizeof(line)), ": ") + 2, "after");
	ck_assert_int_eq(log_file_open("/nonexistent/dir/rt.log", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "log_file /nonexistent/dir/rt.log: "));
}
END_TEST

static int
bound_socket(int type, const char *p)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
	ck_assert_int_ne(fd = socket(AF_UNIX, type, 0), -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

/* No syslog daemon (a container): the probe says so, and why. */
START_TEST(test_syslog_probe)
{
	char	 why[256], sock[256];
	int	 fd;

	snprintf(sock, sizeof(sock), "%s/log.sock", dir);
	ck_assert_int_eq(log_syslog_probe(sock, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "No such file or directory"));
	fd = bound_socket(SOCK_DGRAM, sock);
	ck_assert_int_eq(log_syslog_probe(sock, why, sizeof(why)), 0);
	close(fd);
	unlink(sock);
	/* a socket nobody reads any more */
	ck_assert_int_eq(log_syslog_probe(sock, why, sizeof(why)), -1);
	/* a stream socket, as some syslog daemons listen on */
	fd = bound_socket(SOCK_STREAM, sock);
	ck_assert_int_eq(log_syslog_probe(sock, why, sizeof(why)), 0);
	close(fd);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_log_file_text);
	tcase_add_test(tc, test_log_file_json);
	tcase_add_test(tc, test_reopen_after_rename);
	tcase_add_test(tc, test_syslog_probe);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
