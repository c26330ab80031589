#ifndef RT_STATS_H
#define RT_STATS_H

/*
 * Host-wide figures from the registry, for the admin socket (stats,
 * health) and the workers' /health and /metrics.
 */
#include <stdint.h>

struct registry;
struct json_object;
struct evbuffer;

/* The admin `stats` object: totals, counters, the bridge (new reference). */
struct json_object *stats_json(struct registry *reg);

/*
 * The /health object (new reference); *healthy 0 when degraded: Redis is
 * not subscribed, or a running worker missed the canary before the last.
 */
struct json_object *stats_health_json(struct registry *reg, int64_t canary_interval,
	    int *healthy);

/*
 * /health/live (new reference); *alive 0 when a running worker or the
 * bridge has not ticked for 10 s.  Redis plays no part.
 */
struct json_object *stats_live_json(struct registry *reg, int *alive);

/* Prometheus text exposition of the registry's figures into out. */
void	stats_metrics(struct registry *reg, struct evbuffer *out);

struct reg_hist;
struct reg_usage;
/* Count one duration of us microseconds. */
void	stats_observe(struct reg_hist *h, uint64_t us);
/* Sample this process's CPU, RSS and descriptors into u, at most every 5 s. */
void	stats_sample(struct reg_usage *u, uint64_t now_ms);

#endif
