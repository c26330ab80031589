#ifndef RT_WORKER_H
#define RT_WORKER_H

#include <stdint.h>

struct rt_config;
struct registry;

/*
 * Run worker worker_id on the given listening sockets until the master says
 * stop (or SIGTERM), then close every client with 1001 and return 0.
 */
int	worker_run(struct rt_config *conf, struct registry *reg, int worker_id,
	    int master_fd, const int *listen_fds, int nfds);

#endif
