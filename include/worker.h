#ifndef RT_WORKER_H
#define RT_WORKER_H

#include <stdint.h>

struct rt_config;

/* Host-wide figures a worker reports (per worker today, summed later). */
struct worker_counters {
	int64_t	 wc_connections;	/* open WebSocket connections */
	int64_t	 wc_authenticated;
	int64_t	 wc_anonymous;
	int64_t	 wc_subscriptions;
	int64_t	 wc_channels;		/* channels with >= 1 subscriber */
	int64_t	 wc_handshake_errors;
	int64_t	 wc_handshake_timeouts;
	int64_t	 wc_auth_failures;
	int64_t	 wc_heartbeat_drops;
	int64_t	 wc_rate_limited;
	int64_t	 wc_protocol_errors;
	int64_t	 wc_messages_in;
	int64_t	 wc_messages_out;
};

/*
 * Run a worker on the given listening sockets until SIGTERM/SIGINT, then
 * close every client with 1001 and return 0.
 */
int	worker_run(struct rt_config *conf, int worker_id, const int *listen_fds, int nfds);

#endif
