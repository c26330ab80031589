/*
 * Logging: stderr in the foreground, syslog(3) (daemon facility) otherwise,
 * or log_file; lines as text or one JSON object each.
 * The API of OpenBSD's log.c: log_warn() appends strerror(errno).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "util.h"

#ifndef _PATH_LOG
#define _PATH_LOG	"/dev/log"
#endif
#define LOG_MSG_MAX	2048

static int	 log_stderr = 1;	/* else syslog; log_fd wins over both */
static int	 log_fd = -1;		/* log_file */
static int	 log_tee;		/* warnings to stderr too (starting up) */
static char	 log_path[1024];
static int	 log_format = LOG_FMT_TEXT;
int		 log_cur_level = LOG_LVL_INFO;	/* read by log_debug() */
static char	 log_tag[64] = "realtimed";
static char	 log_proc[32] = "master";

static const struct {
	const char	*name;
	int		 level;
} log_levels[] = {
	{ "error", LOG_LVL_ERR },
	{ "warning", LOG_LVL_WARN },
	{ "warn", LOG_LVL_WARN },
	{ "info", LOG_LVL_INFO },
	{ "debug", LOG_LVL_DEBUG },
};

/*
 * openlog() and syslog() fail silently, so every line would be lost on a
 * host or in a container without a syslog daemon: connect() to its socket
 * as glibc does (datagram, then stream) and see for ourselves.
 */
int
log_syslog_probe(const char *path, char *why, size_t whylen)
{
	static const int	 types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un	 sun;
	size_t			 i;
	int			 fd, rv;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if ((fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0)) == -1)
			break;
		rv = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		close(fd);
		if (rv == 0)
			return 0;
		if (errno != EPROTOTYPE)
			break;
	}
	snprintf(why, whylen, "connect %s: %s", path, strerror(errno));
	return -1;
}

void
log_init(const char *tag, int to_stderr, int level)
{
	char	 why[256];

	log_cur_level = level;
	log_settag(tag);
	log_stderr = 1;
	if (to_stderr || log_fd != -1)
		return;
	if (log_syslog_probe(_PATH_LOG, why, sizeof(why)) == -1) {
		log_warnx("syslog is unreachable (%s): logging to stderr", why);
		return;
	}
	log_stderr = 0;
	openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_settag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

void
log_setproc(const char *name)
{
	snprintf(log_proc, sizeof(log_proc), "%s", name);
}

void
log_setlevel(int level)
{
	log_cur_level = level;
}

int
log_getlevel(void)
{
	return log_cur_level;
}

int
log_level_parse(const char *s)
{
	size_t	 i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(s, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

const char *
log_level_name(int level)
{
	size_t	 i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return "info";
}

int
log_format_parse(const char *s)
{
	if (strcmp(s, "text") == 0)
		return LOG_FMT_TEXT;
	if (strcmp(s, "json") == 0)
		return LOG_FMT_JSON;
	return -1;
}

void
log_setformat(int format)
{
	log_format = format;
}

static int
log_file_fd(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

int
log_file_open(const char *path, char *err, size_t errlen)
{
	int	 fd;

	if (strlen(path) >= sizeof(log_path)) {
		snprintf(err, errlen, "log_file %s: path too long", path);
		return -1;
	}
	if ((fd = log_file_fd(path)) == -1) {
		snprintf(err, errlen, "log_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (log_fd != -1)
		close(log_fd);
	log_fd = fd;
	snprintf(log_path, sizeof(log_path), "%s", path);
	return 0;
}

void
log_file_tee(int on)
{
	log_tee = on;
}

/* Only the owner: the group and mode stay the administrator's (and logrotate's). */
void
log_file_chown(int uid)
{
	if (log_fd != -1 && uid != -1 && fchown(log_fd, (uid_t)uid, (gid_t)-1) == -1)
		log_warn("log_file %s: fchown()", log_path);
}

int
log_reopen(void)
{
	int	 fd;

	if (log_fd == -1)
		return 0;
	if ((fd = log_file_fd(log_path)) == -1) {
		log_warn("cannot reopen log_file %s; writing on to the old file", log_path);
		return -1;
	}
	close(log_fd);
	log_fd = fd;
	return 0;
}

int
log_to_stderr(void)
{
	return log_fd == -1 && log_stderr;
}

static void
log_put(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* One line of either format into out; its length. */
static size_t
log_line(char *out, size_t outlen, int pri, const char *msg, size_t msglen, int format)
{
	char	 ts[32];
	size_t	 n;
	int	 rv;

	util_timestamp(ts, sizeof(ts), NULL);
	if (format == LOG_FMT_TEXT)
		rv = snprintf(out, outlen, "%s %s[%d]: %.*s\n", ts, log_tag, (int)getpid(),
		    (int)msglen, msg);
	else {
		rv = snprintf(out, outlen, "{\"time\":\"%s\",\"level\":\"%s\",\"process\":\"%s\","
		    "\"pid\":%d,\"message\":\"", ts, log_level_name(pri), log_proc, (int)getpid());
		if (rv < 0 || (size_t)rv + msglen * 6 + 3 > outlen)
			return 0;
		n = (size_t)rv + proto_escape(out + rv, (const unsigned char *)msg, msglen);
		memcpy(out + n, "\"}\n", 3);
		return n + 3;
	}
	return rv < 0 ? 0 : (size_t)rv >= outlen ? outlen - 1 : (size_t)rv;
}

static void
log_vwrite(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char	 msg[LOG_MSG_MAX], line[LOG_MSG_MAX * 6 + 256];
	size_t	 n;
	int	 rv;

	if (pri > log_cur_level)
		return;
	rv = vsnprintf(msg, sizeof(msg), fmt, ap);
	n = rv < 0 ? 0 : (size_t)rv >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)rv;
	if (suffix != NULL)
		snprintf(msg + n, sizeof(msg) - n, ": %s", suffix);
	n = strlen(msg);
	if (log_fd == -1 && !log_stderr) {
		syslog(pri, "%s", msg);
		return;
	}
	log_put(log_fd != -1 ? log_fd : STDERR_FILENO, line,
	    log_line(line, sizeof(line), pri, msg, n, log_format));
	if (log_fd != -1 && log_tee && pri <= LOG_LVL_WARN)
		log_put(STDERR_FILENO, line, log_line(line, sizeof(line), pri, msg, n,
		    LOG_FMT_TEXT));
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARN, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug_(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
