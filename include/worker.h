#ifndef RT_WORKER_H
#define RT_WORKER_H

#include <stdint.h>

struct rt_config;
struct registry;
struct ssl_ctx_st;

/*
 * Run worker worker_id on its listening sockets (plain and TLS, -1 for
 * none; ssl_ctx is taken over) until the master says stop (or SIGTERM),
 * then close every client with 1001 and return 0.
 */
int	worker_run(struct rt_config *conf, struct registry *reg, int worker_id,
	    int master_fd, int plain_fd, int tls_fd, struct ssl_ctx_st *ssl_ctx);

#endif
