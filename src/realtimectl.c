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
#include <stdint.h>
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

/*
 * The bytes of the character at p (len bytes left) that a terminal may be
 * given as they are: printable ASCII and valid UTF-8 above the C1
 * controls.  0: p[0] must be escaped.
 */
static size_t
printable(const unsigned char *p, size_t len)
{
	uint32_t	 cp;
	size_t		 n, i;

	if (*p >= 0x20 && *p < 0x7f)
		return *p == '\\' ? 0 : 1;
	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2, cp = *p & 0x1f;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3, cp = *p & 0x0f;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4, cp = *p & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < 0xa0 || (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * Text from the daemon, for a terminal: control characters, DEL, C1
 * controls and bytes that are not UTF-8 are written C-style (\e, \r, \n,
 * \t, \xNN) and a backslash as \\, so that what a client put in its token
 * cannot move the cursor, retitle the terminal or pose as another row.
 * Padded with spaces to width characters.
 */
static void
put_bytes(FILE *fp, const char *s, size_t len, int width)
{
	const unsigned char	*p = (const unsigned char *)s, *end = p + len;
	size_t			 n;
	int			 cols = 0;

	while (p < end) {
		if ((n = printable(p, (size_t)(end - p))) > 0) {
			fwrite(p, 1, n, fp);
			p += n;
			cols++;
			continue;
		}
		switch (*p) {
		case '\\':
			fputs("\\\\", fp);
			break;
		case 0x1b:
			fputs("\\e", fp);
			break;
		case '\r':
			fputs("\\r", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		default:
			fprintf(fp, "\\x%02x", *p);
			cols += 2;
		}
		cols += 2;
		p++;
	}
	for (; cols < width; cols++)
		fputc(' ', fp);
}

static void
put_text(FILE *fp, const char *s, int width)
{
	put_bytes(fp, s, strlen(s), width);
}

/* A value of the reply, whole (a JSON string may hold NUL bytes); "-" when absent. */
static void
put_value(FILE *fp, struct json_object *v, int width)
{
	if (v == NULL)
		put_text(fp, "-", width);
	else if (json_object_is_type(v, json_type_string))
		put_bytes(fp, json_object_get_string(v), (size_t)json_object_get_string_len(v),
		    width);
	else
		put_text(fp, json_object_get_string(v), width);
}

static void
put_member(FILE *fp, struct json_object *o, const char *key, int width)
{
	struct json_object	*v = NULL;

	json_object_object_get_ex(o, key, &v);
	put_value(fp, v, width);
}

static void
print_object(struct json_object *o, const char *prefix)
{
	char	 p[256];

	json_object_object_foreach(o, key, val) {
		if (val != NULL && json_object_is_type(val, json_type_object)) {
			snprintf(p, sizeof(p), "%s%s.", prefix, key);
			print_object(val, p);
		} else {
			put_text(stdout, prefix, 0);
			put_text(stdout, key, 24);
			putchar(' ');
			put_value(stdout, val, 0);
			putchar('\n');
		}
	}
}

static void
print_table(struct json_object *arr, const char *const *cols, const int *widths)
{
	size_t	 i, j;

	for (j = 0; cols[j] != NULL; j++) {
		put_text(stdout, cols[j], widths[j]);
		putchar(cols[j + 1] ? ' ' : '\n');
	}
	for (i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *row = json_object_array_get_idx(arr, i);

		for (j = 0; cols[j] != NULL; j++) {
			put_member(stdout, row, cols[j], widths[j]);
			putchar(cols[j + 1] ? ' ' : '\n');
		}
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
		if (json_object_object_get_ex(o, "bridge", &v)) {
			fputs("bridge: pid ", stdout);
			put_member(stdout, v, "pid", 0);
			fputs(", ", stdout);
			put_member(stdout, v, "state", 0);
			fputs(", redis ", stdout);
			put_member(stdout, v, "redis", 0);
			putchar('\n');
		}
	} else if (strcmp(cmd, "channels") == 0 && json_object_object_get_ex(o, "channels", &v))
		print_table(v, ccols, cwid);
	else if (strcmp(cmd, "connections") == 0 &&
	    json_object_object_get_ex(o, "connections", &v))
		print_table(v, kcols, kwid);
	else if (strcmp(cmd, "help") == 0 && json_object_object_get_ex(o, "commands", &v)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			put_value(stdout, json_object_array_get_idx(v, i), 0);
			putchar('\n');
		}
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
		fputs("realtimectl: malformed reply: ", stderr);
		put_text(stderr, reply, 0);
		fputc('\n', stderr);
		json_object_put(o);
		free(reply);
		return 3;
	}
	rv = json_object_get_boolean(ok) ? 0 : 1;
	if (json)
		printf("%s\n", reply);
	else if (rv != 0) {
		fputs("realtimectl: ", stderr);
		put_member(stderr, o, "error", 0);
		fputc('\n', stderr);
	}
	else
		print_reply(argv[optind], o);
	json_object_put(o);
	free(reply);
	return rv;
}
