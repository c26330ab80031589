/*
 * realtimectl: talk to a running realtimed over its admin socket.
 *
 *   realtimectl [-s socket] [--json] COMMAND [ARGS]
 *
 * Exit status: 0 done, 1 the daemon refused the command, 2 usage,
 * 3 the socket could not be reached or answered badly.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "autoconf.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif
#define CTL_SOCKET	RUNSTATEDIR "/realtimed/realtimed.sock"
#define CTL_TIMEOUT_MS	10000
#define CTL_REPLY_MAX	(64 * 1024 * 1024)

static void
usage(void)
{
	fprintf(stderr,
	    "usage: realtimectl [-s socket] [--json] command [args]\n"
	    "commands: stats, health, workers, channels [prefix],\n"
	    "          connections [user-id], kick connection-id, kick-user user-id,\n"
	    "          publish channel json, reload, help\n");
	exit(2);
}

static int
ctl_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "realtimectl: %s: path too long\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "realtimectl: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

static int
ctl_write(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one reply line (malloc'd, NUL-terminated), or NULL. */
static char *
ctl_read_line(int fd)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	char		*buf = NULL, *nl;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;

	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > CTL_REPLY_MAX || (buf = realloc(buf, cap)) == NULL)
				break;
		}
		if (poll(&pfd, 1, CTL_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "realtimectl: no answer within %d s\n", CTL_TIMEOUT_MS / 1000);
			break;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			return buf;
		}
	}
	free(buf);
	return NULL;
}

static const char *
str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "-";
	return json_object_get_string(v);
}

static void
print_object(struct json_object *o, const char *prefix)
{
	char	 p[256];

	json_object_object_foreach(o, key, val) {
		if (val != NULL && json_object_is_type(val, json_type_object)) {
			snprintf(p, sizeof(p), "%s%s.", prefix, key);
			print_object(val, p);
		} else
			printf("%s%-24s %s\n", prefix, key, val ? json_object_get_string(val) : "-");
	}
}

static void
print_table(struct json_object *arr, const char *const *cols, const int *widths)
{
	size_t	 i, j;

	for (j = 0; cols[j] != NULL; j++)
		printf("%-*s%s", widths[j], cols[j], cols[j + 1] ? " " : "\n");
	for (i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *row = json_object_array_get_idx(arr, i);

		for (j = 0; cols[j] != NULL; j++)
			printf("%-*s%s", widths[j], str(row, cols[j]), cols[j + 1] ? " " : "\n");
	}
}

static void
print_reply(const char *cmd, struct json_object *o)
{
	static const char *const wcols[] = { "id", "pid", "state", "uptime", "connections",
	    "subscriptions", "events_out", NULL };
	static const int wwid[] = { 3, 8, 9, 8, 12, 14, 12 };
	static const char *const ccols[] = { "channel", "subscribers", NULL };
	static const int cwid[] = { 40, 12 };
	static const char *const kcols[] = { "id", "worker", "user", "admin", "peer", "since",
	    "subscriptions", NULL };
	static const int kwid[] = { 36, 6, 20, 5, 22, 10, 13 };
	struct json_object	*v;

	if (strcmp(cmd, "workers") == 0 && json_object_object_get_ex(o, "workers", &v)) {
		print_table(v, wcols, wwid);
		if (json_object_object_get_ex(o, "bridge", &v))
			printf("bridge: pid %s, %s, redis %s\n", str(v, "pid"), str(v, "state"),
			    str(v, "redis"));
	} else if (strcmp(cmd, "channels") == 0 && json_object_object_get_ex(o, "channels", &v))
		print_table(v, ccols, cwid);
	else if (strcmp(cmd, "connections") == 0 &&
	    json_object_object_get_ex(o, "connections", &v))
		print_table(v, kcols, kwid);
	else if (strcmp(cmd, "help") == 0 && json_object_object_get_ex(o, "commands", &v)) {
		for (size_t i = 0; i < json_object_array_length(v); i++)
			printf("%s\n", json_object_get_string(json_object_array_get_idx(v, i)));
	} else {
		json_object_object_del(o, "ok");
		if (json_object_object_length(o) == 0)
			printf("ok\n");
		else
			print_object(o, "");
	}
}

/* Send one command line, read one reply line; NULL with *rv = 3 on failure. */
static char *
ctl_exchange(const char *path, const char *line, int *rv)
{
	char	*reply;
	int	 fd;

	*rv = 3;
	if ((fd = ctl_connect(path)) == -1)
		return NULL;
	if (ctl_write(fd, line, strlen(line)) == -1) {
		/* the daemon may have refused (a line too long): show why */
		if ((reply = ctl_read_line(fd)) == NULL)
			fprintf(stderr, "realtimectl: %s: %s\n", path, strerror(EPIPE));
	} else if ((reply = ctl_read_line(fd)) == NULL)
		fprintf(stderr, "realtimectl: %s: no reply\n", path);
	close(fd);
	return reply;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char		*path = getenv("REALTIMED_SOCKET");
	char			*line, *reply;
	struct json_object	*o, *ok;
	size_t			 len = 0;
	int			 ch, json = 0, i, rv;

	if (path == NULL)
		path = CTL_SOCKET;
	/* a daemon that hangs up mid-command is an error to report, not a kill */
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "+js:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 's':
			path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	for (i = optind; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if ((line = malloc(len + 1)) == NULL)
		return 3;
	line[0] = '\0';
	for (i = optind; i < argc; i++) {
		if (strchr(argv[i], '\n') != NULL) {
			fprintf(stderr, "realtimectl: arguments may not contain newlines\n");
			free(line);
			return 2;
		}
		strcat(line, argv[i]);
		strcat(line, i + 1 < argc ? " " : "\n");
	}
	reply = ctl_exchange(path, line, &rv);
	free(line);
	if (reply == NULL)
		return rv;
	if ((o = json_tokener_parse(reply)) == NULL ||
	    !json_object_object_get_ex(o, "ok", &ok)) {
		fprintf(stderr, "realtimectl: malformed reply: %s\n", reply);
		json_object_put(o);
		free(reply);
		return 3;
	}
	rv = json_object_get_boolean(ok) ? 0 : 1;
	if (json)
		printf("%s\n", reply);
	else if (rv != 0)
		fprintf(stderr, "realtimectl: %s\n", str(o, "error"));
	else
		print_reply(argv[optind], o);
	json_object_put(o);
	free(reply);
	return rv;
}
