#ifndef RT_LOG_H
#define RT_LOG_H

#include <stdarg.h>

/* Levels follow syslog(3) priorities. */
enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void	log_init(const char *tag, int to_stderr, int level);
void	log_setlevel(int level);
int	log_getlevel(void);
void	log_settag(const char *tag);
int	log_level_parse(const char *s);		/* -1 when unknown */
const char *log_level_name(int level);

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
