/*
 * Logging: stderr in the foreground, syslog(3) (daemon facility) otherwise.
 * The API of OpenBSD's log.c: log_warn() appends strerror(errno).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"

static int	 log_stderr = 1;
int		 log_cur_level = LOG_LVL_INFO;	/* read by log_debug() */
static char	 log_tag[64] = "realtimed";

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

void
log_init(const char *tag, int to_stderr, int level)
{
	log_stderr = to_stderr;
	log_cur_level = level;
	log_settag(tag);
	if (!log_stderr)
		openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_settag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
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

static void
log_vwrite(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char		 msg[2048];
	struct timeval	 tv;
	struct tm	 tm;
	char		 ts[32];

	if (pri > log_cur_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!log_stderr) {
		if (suffix != NULL)
			syslog(pri, "%s: %s", msg, suffix);
		else
			syslog(pri, "%s", msg);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (suffix != NULL)
		fprintf(stderr, "%s.%03ldZ %s[%d]: %s: %s\n", ts,
		    (long)tv.tv_usec / 1000, log_tag, (int)getpid(), msg, suffix);
	else
		fprintf(stderr, "%s.%03ldZ %s[%d]: %s\n", ts,
		    (long)tv.tv_usec / 1000, log_tag, (int)getpid(), msg);
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
