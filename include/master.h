#ifndef RT_MASTER_H
#define RT_MASTER_H

#include <stddef.h>

struct rt_config;

/*
 * Run the master: bind the listeners, create the registry, fork the bridge
 * and the workers and supervise them until SIGTERM/SIGINT.  Returns the
 * process exit status.
 */
int	master_start(struct rt_config *conf, int foreground);
/* The checks a child would otherwise fail on: files, user and group, JWT keys, TLS. */
int	master_check_config(const struct rt_config *conf, char *err, size_t errlen);
/* -t and start: the listen addresses resolve; -1 with "file:line: ..." in err. */
int	master_check_listen(const struct rt_config *conf, char *err, size_t errlen);

/* Set the title ps(1) shows ("realtimed: worker 3"). */
void	proc_title_init(int argc, char **argv);
void	proc_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open a listening socket for "HOST:PORT" with backlog; -1 with err filled. */
int	listen_open(const char *spec, int reuseport, int backlog, char *err,
	    size_t errlen);

#endif
