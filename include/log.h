#ifndef RT_LOG_H
#define RT_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Levels follow syslog(3) priorities. */
enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };
enum log_format { LOG_FMT_TEXT, LOG_FMT_JSON };

/*
 * Where lines go: log_file when one is open; otherwise stderr, or with
 * to_stderr 0 syslog, unless nothing listens on /dev/log (then stderr).
 */
void	log_init(const char *tag, int to_stderr, int level);
void	log_setlevel(int level);
int	log_getlevel(void);
void	log_settag(const char *tag);
/* "master", "worker 0", "bridge": the process field of JSON lines. */
void	log_setproc(const char *name);
int	log_level_parse(const char *s);		/* -1 when unknown */
const char *log_level_name(int level);
int	log_format_parse(const char *s);	/* -1 when unknown */
void	log_setformat(int format);

/* log_file: append to path from now on; -1 with err. */
int	log_file_open(const char *path, char *err, size_t errlen);
/* Warnings and errors to stderr as well as to log_file, until turned off. */
void	log_file_tee(int on);
/* Give log_file to uid, who must reopen it after we drop to it. */
void	log_file_chown(int uid);
/* SIGUSR1: reopen log_file (moved away by logrotate); -1 (logged) keeps the old one. */
int	log_reopen(void);
/* 1 when lines go to stderr. */
int	log_to_stderr(void);
/* 0 when a syslog daemon accepts a connection on the socket at path; -1 with why. */
int	log_syslog_probe(const char *path, char *why, size_t whylen);

void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Debug lines cost nothing, arguments included, unless debug is on. */
extern int	log_cur_level;
#define log_debug(...) do {					\
	if (log_cur_level >= LOG_LVL_DEBUG)				\
		log_debug_(__VA_ARGS__);			\
} while (0)
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
