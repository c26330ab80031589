/*
 * realtimectl: talk to a running realtimed over its admin socket.
 *
 *   realtimectl [-h] [-s socket] [--json] COMMAND [ARGS]
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

/* Shown by realtimectl help; the daemon's help reply names the commands. */
static const struct ctl_help {
	const char	*ch_name;
	const char	*ch_usage;	/* NULL: the daemon's */
	const char	*ch_line;
} ctl_help[] = {
	{ "help", "help [COMMAND]", "List the commands, or show one" },
	{ "stats", NULL, "Show the host's counters, summed over the workers" },
	{ "health", NULL, "Show the host's health, as GET /health does" },
	{ "workers", NULL, "List the worker processes and the bridge" },
	{ "channels", NULL, "List the channels with subscribers, by name prefix" },
	{ "connections", NULL, "List the WebSocket connections, all or a user's" },
	{ "kick", NULL, "Close one connection (1008), on every node" },
	{ "kick-user", NULL, "Close every connection of a user, on every node" },
	{ "revoke", NULL, "Refuse a token (by jti) and close its connections" },
	{ "unrevoke", NULL, "Accept a revoked token again, on every node" },
	{ "nodes", NULL, "List the live nodes attached to this Redis" },
	{ "publish", NULL, "Publish an event to every host, through Redis" },
	{ "reload", NULL, "Reload the configuration in every process" },
};
#define CTL_NHELP	(sizeof(ctl_help) / sizeof(ctl_help[0]))
#define CTL_USAGE_WIDTH	22

/* How a figure is shown to a person; --json keeps the daemon's numbers. */
enum ctl_fmt {
	CTL_TEXT,
	CTL_DURATION,	/* seconds: 45s, 10m0s, 2h3m, 3d4h */
	CTL_TIME,	/* seconds since the epoch: 2026-12-02T19:40:01Z */
	CTL_BYTES,	/* 512 B, 1.5 KiB, 3.2 GiB */
};

struct ctl_col {
	const char	*cc_name;
	int		 cc_width;
	enum ctl_fmt	 cc_fmt;
};

/* The members of name-value replies that are not plain counts. */
static const struct ctl_field {
	const char	*cf_name;	/* joined with dots */
	enum ctl_fmt	 cf_fmt;
} ctl_fields[] = {
	{ "stats.bytes_out", CTL_BYTES },
};

static const struct ctl_col ctl_wcols[] = {
	{ "id", 3, CTL_TEXT }, { "pid", 8, CTL_TEXT }, { "state", 9, CTL_TEXT },
	{ "uptime", 8, CTL_DURATION }, { "connections", 12, CTL_TEXT },
	{ "subscriptions", 14, CTL_TEXT }, { "events_out", 12, CTL_TEXT },
	{ NULL, 0, CTL_TEXT },
};
static const struct ctl_col ctl_ccols[] = {
	{ "channel", 40, CTL_TEXT }, { "subscribers", 12, CTL_TEXT },
	{ NULL, 0, CTL_TEXT },
};
static const struct ctl_col ctl_ncols[] = {
	{ "id", 28, CTL_TEXT }, { "host", 20, CTL_TEXT }, { "version", 8, CTL_TEXT },
	{ "started", 24, CTL_TEXT }, { "workers", 7, CTL_TEXT },
	{ "connections", 11, CTL_TEXT }, { "control", 7, CTL_TEXT },
	{ NULL, 0, CTL_TEXT },
};
static const struct ctl_col ctl_kcols[] = {
	{ "id", 36, CTL_TEXT }, { "worker", 6, CTL_TEXT }, { "user", 20, CTL_TEXT },
	{ "admin", 5, CTL_TEXT }, { "peer", 22, CTL_TEXT }, { "since", 20, CTL_TIME },
	{ "subscriptions", 13, CTL_TEXT },
	{ NULL, 0, CTL_TEXT },
};

/* On the standard output with status 0 when asked for, else on stderr. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: realtimectl [-s socket] [--json] command [args]\n"
	    "commands: stats, health, workers, channels [prefix],\n"
	    "          connections [user-id], kick connection-id, kick-user user-id,\n"
	    "          revoke jti [until], unrevoke jti, nodes,\n"
	    "          publish channel json, reload, help [command]\n");
	exit(status);
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

/* Seconds as the two largest units: 45s, 10m0s, 2h3m, 3d4h. */
static void
fmt_duration(char *buf, size_t len, int64_t s)
{
	long long	 n = (long long)s;

	if (n < 60)
		snprintf(buf, len, "%llds", n);
	else if (n < 3600)
		snprintf(buf, len, "%lldm%llds", n / 60, n % 60);
	else if (n < 86400)
		snprintf(buf, len, "%lldh%lldm", n / 3600, n % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%lldh", n / 86400, n % 86400 / 3600);
}

/*
 * Seconds since the epoch in UTC, as the daemon's log and health
 * timestamps are, and without a blank so that a table row stays one word
 * per column; "-" for 0, never set.
 */
static void
fmt_time(char *buf, size_t len, int64_t s)
{
	time_t		 t = (time_t)s;
	struct tm	 tm;

	if (s == 0)
		snprintf(buf, len, "-");
	else if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)s);
}

/* Bytes in binary units, to one decimal above 1023. */
static void
fmt_bytes(char *buf, size_t len, int64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double	 v = (double)n;
	int	 u = -1;

	/* 1023.95 KiB would round to 1024.0 KiB */
	while (v >= 1023.95 && u + 1 < (int)(sizeof(units) / sizeof(units[0]))) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%lld B", (long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* A value as fmt says, when it is the integer that fmt expects. */
static void
put_formatted(FILE *fp, struct json_object *v, enum ctl_fmt fmt, int width)
{
	char	 buf[64];
	int64_t	 n;

	if (fmt == CTL_TEXT || v == NULL || !json_object_is_type(v, json_type_int)) {
		put_value(fp, v, width);
		return;
	}
	n = json_object_get_int64(v);
	switch (fmt) {
	case CTL_DURATION:
		fmt_duration(buf, sizeof(buf), n);
		break;
	case CTL_TIME:
		fmt_time(buf, sizeof(buf), n);
		break;
	default:
		fmt_bytes(buf, sizeof(buf), n);
	}
	put_text(fp, buf, width);
}

static void
put_member(FILE *fp, struct json_object *o, const char *key, enum ctl_fmt fmt, int width)
{
	struct json_object	*v = NULL;

	json_object_object_get_ex(o, key, &v);
	put_formatted(fp, v, fmt, width);
}

static enum ctl_fmt
field_fmt(const char *prefix, const char *key)
{
	size_t	 i, n = strlen(prefix);

	for (i = 0; i < sizeof(ctl_fields) / sizeof(ctl_fields[0]); i++)
		if (strncmp(ctl_fields[i].cf_name, prefix, n) == 0 &&
		    strcmp(ctl_fields[i].cf_name + n, key) == 0)
			return ctl_fields[i].cf_fmt;
	return CTL_TEXT;
}

/* The widest dotted name under o, for the values to line up. */
static int
name_width(struct json_object *o, int prefix)
{
	int	 w = 0, n;

	json_object_object_foreach(o, key, val) {
		if (val != NULL && json_object_is_type(val, json_type_object))
			n = name_width(val, prefix + (int)strlen(key) + 1);
		else
			n = prefix + (int)strlen(key);
		if (n > w)
			w = n;
	}
	return w;
}

static void
print_object(struct json_object *o, const char *prefix, int width)
{
	char	 p[256];

	json_object_object_foreach(o, key, val) {
		if (val != NULL && json_object_is_type(val, json_type_object)) {
			snprintf(p, sizeof(p), "%s%s.", prefix, key);
			print_object(val, p, width);
		} else {
			snprintf(p, sizeof(p), "%s%s", prefix, key);
			put_text(stdout, p, width);
			putchar(' ');
			put_formatted(stdout, val, field_fmt(prefix, key), 0);
			putchar('\n');
		}
	}
}

static void
print_table(struct json_object *arr, const struct ctl_col *cols)
{
	size_t	 i, j;

	/* the last column unpadded: no blanks at the ends of the lines */
	for (j = 0; cols[j].cc_name != NULL; j++) {
		put_text(stdout, cols[j].cc_name, cols[j + 1].cc_name ? cols[j].cc_width : 0);
		putchar(cols[j + 1].cc_name ? ' ' : '\n');
	}
	for (i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *row = json_object_array_get_idx(arr, i);

		for (j = 0; cols[j].cc_name != NULL; j++) {
			put_member(stdout, row, cols[j].cc_name, cols[j].cc_fmt,
			    cols[j + 1].cc_name ? cols[j].cc_width : 0);
			putchar(cols[j + 1].cc_name ? ' ' : '\n');
		}
	}
}

/* Whether usage, from the daemon's help reply, is that of command name. */
static int
help_is(struct json_object *usage, const char *name)
{
	const char	*u = json_object_get_string(usage);
	size_t		 n = strlen(name);

	return u != NULL && strncmp(u, name, n) == 0 && (u[n] == '\0' || u[n] == ' ');
}

static const struct ctl_help *
help_find(struct json_object *usage)
{
	size_t	 i;

	for (i = 0; i < CTL_NHELP; i++)
		if (help_is(usage, ctl_help[i].ch_name))
			return &ctl_help[i];
	return NULL;
}

/*
 * help CMD: keep CMD alone in the daemon's list, or turn the reply into
 * an error when the daemon does not have CMD.
 */
static void
help_select(struct json_object *o, const char *cmd)
{
	struct json_object	*v, *arr = json_object_new_array(), *u;
	const char		*why = "no such command: ";
	char			*msg;
	size_t			 i;

	if (json_object_object_get_ex(o, "commands", &v))
		for (i = 0; i < json_object_array_length(v); i++)
			if (help_is((u = json_object_array_get_idx(v, i)), cmd))
				json_object_array_add(arr, json_object_get(u));
	if (json_object_array_length(arr) > 0) {
		json_object_object_add(o, "commands", arr);
		return;
	}
	json_object_put(arr);
	json_object_object_del(o, "commands");
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	if ((msg = malloc(strlen(why) + strlen(cmd) + 1)) == NULL)
		exit(3);
	strcpy(msg, why);
	strcat(msg, cmd);
	json_object_object_add(o, "error", json_object_new_string(msg));
	free(msg);
}

/* One line per command, or the usage and line of the one asked for. */
static void
print_help(struct json_object *cmds, int one)
{
	const struct ctl_help	*h;
	struct json_object	*u;
	size_t			 i;
	int			 width;

	for (i = 0; i < json_object_array_length(cmds); i++) {
		u = json_object_array_get_idx(cmds, i);
		h = help_find(u);
		/* a command this realtimectl does not know: its usage alone */
		width = one || h == NULL ? 0 : CTL_USAGE_WIDTH;
		if (one)
			fputs("usage: realtimectl ", stdout);
		if (h != NULL && h->ch_usage != NULL)
			put_text(stdout, h->ch_usage, width);
		else
			put_value(stdout, u, width);
		if (h != NULL) {
			putchar(one ? '\n' : ' ');
			fputs(h->ch_line, stdout);
		}
		putchar('\n');
	}
}

static void
print_reply(const char *cmd, const char *helpcmd, struct json_object *o)
{
	struct json_object	*v;
	int			 width;

	if (strcmp(cmd, "workers") == 0 && json_object_object_get_ex(o, "workers", &v)) {
		print_table(v, ctl_wcols);
		if (json_object_object_get_ex(o, "bridge", &v)) {
			fputs("bridge: pid ", stdout);
			put_member(stdout, v, "pid", CTL_TEXT, 0);
			fputs(", ", stdout);
			put_member(stdout, v, "state", CTL_TEXT, 0);
			fputs(", redis ", stdout);
			put_member(stdout, v, "redis", CTL_TEXT, 0);
			putchar('\n');
		}
	} else if (strcmp(cmd, "channels") == 0 && json_object_object_get_ex(o, "channels", &v))
		print_table(v, ctl_ccols);
	else if (strcmp(cmd, "connections") == 0 &&
	    json_object_object_get_ex(o, "connections", &v))
		print_table(v, ctl_kcols);
	else if (strcmp(cmd, "nodes") == 0 && json_object_object_get_ex(o, "nodes", &v))
		print_table(v, ctl_ncols);
	else if (strcmp(cmd, "help") == 0 && json_object_object_get_ex(o, "commands", &v))
		print_help(v, helpcmd != NULL);
	else {
		json_object_object_del(o, "ok");
		width = name_width(o, 0);
		if (json_object_object_length(o) == 0)
			printf("ok\n");
		else
			print_object(o, "", width > 24 ? width : 24);
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

/* The command line for the daemon, argv[0..argc) joined; NULL for a newline. */
static char *
ctl_line(int argc, char *argv[])
{
	char	*line;
	size_t	 len = 0;
	int	 i;

	for (i = 0; i < argc; i++) {
		if (strchr(argv[i], '\n') != NULL) {
			fprintf(stderr, "realtimectl: arguments may not contain newlines\n");
			return NULL;
		}
		len += strlen(argv[i]) + 1;
	}
	if ((line = malloc(len + 1)) == NULL)
		exit(3);
	line[0] = '\0';
	for (i = 0; i < argc; i++) {
		strcat(line, argv[i]);
		strcat(line, i + 1 < argc ? " " : "\n");
	}
	return line;
}

/* Print the reply for a person or, with json, as it came; the exit status. */
static int
ctl_show(const char *reply, const char *cmd, const char *helpcmd, int json)
{
	struct json_object	*o, *ok;
	int			 rv;

	if ((o = json_tokener_parse(reply)) == NULL ||
	    !json_object_object_get_ex(o, "ok", &ok)) {
		fputs("realtimectl: malformed reply: ", stderr);
		put_text(stderr, reply, 0);
		fputc('\n', stderr);
		json_object_put(o);
		return 3;
	}
	if (helpcmd != NULL && json_object_get_boolean(ok))
		help_select(o, helpcmd);
	json_object_object_get_ex(o, "ok", &ok);
	rv = json_object_get_boolean(ok) ? 0 : 1;
	if (json && helpcmd != NULL)
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	else if (json)
		printf("%s\n", reply);
	else if (rv != 0) {
		fputs("realtimectl: ", stderr);
		put_member(stderr, o, "error", CTL_TEXT, 0);
		fputc('\n', stderr);
	} else
		print_reply(cmd, helpcmd, o);
	json_object_put(o);
	return rv;
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
	const char		*path = getenv("REALTIMED_SOCKET"), *helpcmd = NULL;
	char			*line, *reply;
	int			 ch, json = 0, rv;

	if (path == NULL)
		path = CTL_SOCKET;
	/* a daemon that hangs up mid-command is an error to report, not a kill */
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "+js:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(0);
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			path = optarg;
			break;
		default:
			usage(2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage(2);
	if ((line = ctl_line(argc, argv)) == NULL)
		return 2;
	/* the daemon's help takes no argument: help CMD is picked out here */
	if (argc == 2 && strcmp(argv[0], "help") == 0) {
		helpcmd = argv[1];
		strcpy(line, "help\n");
	}
	reply = ctl_exchange(path, line, &rv);
	free(line);
	if (reply == NULL)
		return rv;
	rv = ctl_show(reply, argv[0], helpcmd, json);
	free(reply);
	return rv;
}
