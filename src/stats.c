/*
 * The figures operators read, built from the registry for every reader:
 * the admin socket's stats and health (master), /health and /metrics
 * (workers).  JSON objects and Prometheus text; no sockets here.
 */
#include <sys/types.h>
#include <sys/resource.h>

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "registry.h"
#include "revoke.h"
#include "stats.h"
#include "util.h"

#define J_INT(o, k, v)	json_object_object_add((o), (k), json_object_new_int64((int64_t)(v)))
#define WOFF(f)		offsetof(struct reg_worker, f)
#define STATS_LIVE_MS	10000
#define STATS_SAMPLE_MS	5000	/* a process's CPU, RSS and descriptors */

/* Histogram bucket bounds, microseconds (the last bucket is +Inf). */
static const uint64_t stats_bounds_us[REG_HIST_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000,
};

/* Worker counters summed host-wide, under their stats key. */
static const struct {
	const char	*sk_key;
	size_t		 sk_off;
} stats_keys[] = {
	{ "messages_in", WOFF(rw_messages_in) },
	{ "messages_out", WOFF(rw_messages_out) },
	{ "events_out", WOFF(rw_events_out) },
	{ "bytes_out", WOFF(rw_bytes_out) },
	{ "slow_consumer_closes", WOFF(rw_slow_closes) },
	{ "auth_failures", WOFF(rw_auth_failures) },
	{ "handshake_errors", WOFF(rw_handshake_errors) },
	{ "handshake_timeouts", WOFF(rw_handshake_timeouts) },
	{ "heartbeat_drops", WOFF(rw_heartbeat_drops) },
	{ "rate_limited", WOFF(rw_rate_limited) },
	{ "protocol_errors", WOFF(rw_protocol_errors) },
	{ "messages_too_big", WOFF(rw_too_big) },
	{ "close_timeouts", WOFF(rw_close_timeouts) },
	{ "subscriptions_limited", WOFF(rw_subs_limited) },
	{ "server_full_refusals", WOFF(rw_full_refusals) },
	{ "tls_handshakes", WOFF(rw_tls_handshakes) },
	{ "tls_errors", WOFF(rw_tls_errors) },
	{ "ip_limited", WOFF(rw_ip_limited) },
	{ "user_limited", WOFF(rw_user_limited) },
	{ "channel_full", WOFF(rw_channel_full) },
	{ "subscriptions_revoked", WOFF(rw_revoked) },
	{ "auth_refreshed", WOFF(rw_auth_refreshed) },
	{ "token_expiring_sent", WOFF(rw_token_notices) },
	{ "events_replayed", WOFF(rw_replayed) },
	{ "positions_local", WOFF(rw_positions_here) },
	{ "accept_errors", WOFF(rw_accept_errors) },
	{ "tokens_revoked", WOFF(rw_tokens_revoked) },
	{ "deflate_connections", WOFF(rw_deflate_conns) },
	{ "events_out_compressed", WOFF(rw_deflate_events) },
	{ "messages_inflated", WOFF(rw_inflated) },
	{ "inflate_too_big", WOFF(rw_inflate_too_big) },
	{ "inflate_errors", WOFF(rw_inflate_errors) },
	{ "inflate_memory", WOFF(rw_inflate_memory) },
	{ "message_memory", WOFF(rw_message_memory) },
	{ "message_memory_full", WOFF(rw_message_memory_full) },
	{ "position_requests_full", WOFF(rw_positions_full) },
	{ "handshakes_throttled", WOFF(rw_handshakes_throttled) },
	{ "pending_connections", WOFF(rw_pending) },
	{ "pending_connections_full", WOFF(rw_pending_full) },
	{ "user_connections_limited", WOFF(rw_user_conn_limited) },
	{ "publish_requests", WOFF(rw_publish_requests) },
	{ "publish_events", WOFF(rw_publish_events) },
	{ "publish_unauthorized", WOFF(rw_publish_unauthorized) },
	{ "publish_rejected", WOFF(rw_publish_rejected) },
	{ "publish_failed", WOFF(rw_publish_failed) },
	{ "publish_busy", WOFF(rw_publish_busy) },
	{ "proxy_accepted", WOFF(rw_proxy_accepted) },
	{ "proxy_rejected", WOFF(rw_proxy_rejected) },
	{ "proxy_timeouts", WOFF(rw_proxy_timeouts) },
	{ "forwarded_used", WOFF(rw_forwarded_used) },
	{ "forwarded_invalid", WOFF(rw_forwarded_invalid) },
	{ "token_cache_hits", WOFF(rw_token_cache_hits) },
	{ "token_cache_misses", WOFF(rw_token_cache_misses) },
	{ "token_cache_evictions", WOFF(rw_token_cache_evictions) },
	{ "token_cache_entries", WOFF(rw_token_cache_entries) },
	{ "token_cache_bytes", WOFF(rw_token_cache_bytes) },
};

void
stats_observe(struct reg_hist *h, uint64_t us)
{
	int	 i;

	for (i = 0; i < REG_HIST_BUCKETS && us > stats_bounds_us[i]; i++)
		;
	if (i < REG_HIST_BUCKETS)
		atomic_fetch_add_explicit(&h->h_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->h_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->h_sum_us, (int64_t)us, memory_order_relaxed);
}

static int64_t
stats_count_fds(void)
{
	DIR		*d;
	struct dirent	*e;
	int64_t		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;	/* out of descriptors, say: keep the last figure */
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* not the directory's own */
}

void
stats_sample(struct reg_usage *u, uint64_t now)
{
	struct rusage	 ru;
	long		 pages = 0, rss = 0;
	int64_t		 fds;
	FILE		*fp;

	if (atomic_load(&u->u_sampled) != 0 && now - atomic_load(&u->u_sampled) < STATS_SAMPLE_MS)
		return;
	atomic_store(&u->u_sampled, now);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		atomic_store(&u->u_cpu_ms, (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000);
	if ((fp = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(fp, "%ld %ld", &pages, &rss) == 2)
			atomic_store(&u->u_rss, (int64_t)rss * sysconf(_SC_PAGESIZE));
		fclose(fp);
	}
	if ((fds = stats_count_fds()) >= 0)
		atomic_store(&u->u_fds, fds);
}

static int64_t
stats_sum(struct registry *reg, size_t off)
{
	int64_t	 sum = 0;
	int	 w;

	for (w = 0; w < reg->r_hdr->rh_nworkers; w++)
		sum += atomic_load((_Atomic int64_t *)((char *)reg_worker(reg, w) + off));
	return sum;
}

static struct json_object *
stats_bridge_json(struct registry *reg)
{
	struct json_object	*b = json_object_new_object();
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;

	json_object_object_add(b, "redis", json_object_new_string(
	    atomic_load(&rb->rb_redis_up) ? "up" : "down"));
	J_INT(b, "redis_reconnects", atomic_load(&rb->rb_redis_reconnects));
	J_INT(b, "redis_failovers", atomic_load(&rb->rb_redis_failovers));
	J_INT(b, "sentinel_errors", atomic_load(&rb->rb_sentinel_errors));
	J_INT(b, "redis_channels", atomic_load(&rb->rb_demand_channels));
	J_INT(b, "redis_subscribes", atomic_load(&rb->rb_demand_subscribes));
	J_INT(b, "redis_unsubscribes", atomic_load(&rb->rb_demand_unsubscribes));
	J_INT(b, "redis_subscriptions_full", atomic_load(&rb->rb_demand_full));
	J_INT(b, "cluster_shards", atomic_load(&rb->rb_rcluster_shards));
	J_INT(b, "cluster_shards_ready", atomic_load(&rb->rb_rcluster_ready));
	J_INT(b, "cluster_canary_missed", atomic_load(&rb->rb_rcluster_canary_missed));
	J_INT(b, "cluster_map_refreshes", atomic_load(&rb->rb_rcluster_refreshes));
	J_INT(b, "cluster_moved", atomic_load(&rb->rb_rcluster_moved));
	J_INT(b, "cluster_shard_reconnects", atomic_load(&rb->rb_rcluster_reconnects));
	J_INT(b, "cluster_resubscribes", atomic_load(&rb->rb_rcluster_resubscribes));
	J_INT(b, "cluster_commands", atomic_load(&rb->rb_rcluster_commands));
	J_INT(b, "cluster_commands_failed", atomic_load(&rb->rb_rcluster_commands_failed));
	J_INT(b, "events_in", atomic_load(&rb->rb_events_in));
	J_INT(b, "events_routed", atomic_load(&rb->rb_events_routed));
	J_INT(b, "events_unrouted", atomic_load(&rb->rb_events_unrouted));
	J_INT(b, "redis_coalesced_reads", atomic_load(&rb->rb_redis_coalesced));
	J_INT(b, "ipc_drops", atomic_load(&rb->rb_ipc_drops));
	J_INT(b, "ipc_request_waits", atomic_load(&rb->rb_ipc_request_waits));
	J_INT(b, "ipc_buffer_peak", atomic_load(&rb->rb_ipc_buffer_peak));
	J_INT(b, "redis_waits_full", atomic_load(&rb->rb_redis_waits_full));
	J_INT(b, "events_too_large", atomic_load(&rb->rb_events_too_large));
	J_INT(b, "events_compressed", atomic_load(&rb->rb_compressed));
	J_INT(b, "compress_bytes_in", atomic_load(&rb->rb_compress_in));
	J_INT(b, "compress_bytes_out", atomic_load(&rb->rb_compress_out));
	J_INT(b, "compress_errors", atomic_load(&rb->rb_compress_errors));
	J_INT(b, "canary_sent", atomic_load(&rb->rb_canary_sent));
	J_INT(b, "canary_misses", atomic_load(&rb->rb_canary_misses));
	J_INT(b, "history_memory", atomic_load(&rb->rb_history_memory));
	J_INT(b, "history_events", atomic_load(&rb->rb_history_events));
	J_INT(b, "history_channels", atomic_load(&rb->rb_history_channels));
	J_INT(b, "history_evicted", atomic_load(&rb->rb_history_evicted));
	J_INT(b, "history_channels_evicted", atomic_load(&rb->rb_history_chans_evicted));
	J_INT(b, "recoveries_ok", atomic_load(&rb->rb_recovered));
	J_INT(b, "recoveries_unrecoverable", atomic_load(&rb->rb_unrecovered));
	J_INT(b, "epochs", atomic_load(&rb->rb_epochs));
	J_INT(b, "cluster_function", atomic_load(&rb->rb_cluster_function));
	J_INT(b, "cluster_events", atomic_load(&rb->rb_cluster_events));
	J_INT(b, "cluster_malformed", atomic_load(&rb->rb_cluster_bad));
	J_INT(b, "cluster_reads", atomic_load(&rb->rb_cluster_reads));
	J_INT(b, "cluster_reads_failed", atomic_load(&rb->rb_cluster_reads_failed));
	J_INT(b, "cluster_reads_full", atomic_load(&rb->rb_cluster_reads_full));
	J_INT(b, "control_sent", atomic_load(&rb->rb_control_sent));
	J_INT(b, "control_applied", atomic_load(&rb->rb_control_applied));
	J_INT(b, "control_forged", atomic_load(&rb->rb_control_forged));
	J_INT(b, "control_stale", atomic_load(&rb->rb_control_stale));
	J_INT(b, "control_replayed", atomic_load(&rb->rb_control_replayed));
	J_INT(b, "control_ignored", atomic_load(&rb->rb_control_ignored));
	J_INT(b, "control_queued", atomic_load(&rb->rb_control_queued));
	J_INT(b, "control_dropped", atomic_load(&rb->rb_control_dropped));
	J_INT(b, "revocations_loaded", atomic_load(&rb->rb_revocations_loaded));
	J_INT(b, "revocations_bad", atomic_load(&rb->rb_revocations_bad));
	return b;
}

struct json_object *
stats_json(struct registry *reg)
{
	struct json_object	*o = json_object_new_object();
	struct reg_totals	 t;
	size_t			 i;

	reg_totals(reg, &t);
	J_INT(o, "connections", t.t_connections);
	J_INT(o, "authenticated", t.t_authenticated);
	J_INT(o, "anonymous", t.t_anonymous);
	J_INT(o, "subscriptions", t.t_subscriptions);
	J_INT(o, "channels", t.t_channels);
	J_INT(o, "workers", t.t_workers);
	for (i = 0; i < sizeof(stats_keys) / sizeof(stats_keys[0]); i++)
		J_INT(o, stats_keys[i].sk_key, stats_sum(reg, stats_keys[i].sk_off));
	J_INT(o, "connection_table_full", atomic_load(&reg->r_hdr->rh_conn_table_full));
	J_INT(o, "channel_table_full", atomic_load(&reg->r_hdr->rh_chan_table_full));
	J_INT(o, "admin_refused", atomic_load(&reg->r_hdr->rh_admin_refused));
	J_INT(o, "admin_idle_closed", atomic_load(&reg->r_hdr->rh_admin_idle));
	J_INT(o, "children_killed", atomic_load(&reg->r_hdr->rh_children_killed));
	J_INT(o, "children_respawned", atomic_load(&reg->r_hdr->rh_children_respawned));
	if (reg->r_revoked != NULL) {
		J_INT(o, "revocations", rvk_count(reg->r_revoked));
		J_INT(o, "revocation_table_full", atomic_load(&reg->r_revoked->rt_full));
	}
	json_object_object_add(o, "bridge", stats_bridge_json(reg));
	return o;
}

/* Why the host cannot prove delivery right now, or NULL. */
static const char *
stats_degraded(struct registry *reg, int64_t canary_interval, char *buf, size_t len)
{
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;
	struct reg_worker	*rw;
	uint64_t		 sent = atomic_load(&rb->rb_canary_sent);
	int			 i;
	int			 shards = atomic_load(&rb->rb_rcluster_shards);
	int			 ready = atomic_load(&rb->rb_rcluster_ready);

	uint64_t		 now = util_now_ms(), at, tick;

	if (!atomic_load(&rb->rb_redis_up))
		return "redis unreachable";
	/* cluster: a shard's channels get nothing while it is away */
	if (shards > 0 && ready < shards) {
		snprintf(buf, len, "redis cluster: %d of %d shards unreachable",
		    shards - ready, shards);
		return buf;
	}
	if (shards > 0 && (i = atomic_load(&rb->rb_rcluster_canary_missed)) > 0) {
		snprintf(buf, len, "redis cluster: canary missed on %d of %d shards", i, shards);
		return buf;
	}
	/* a stalled bridge stops counting: judge it by its own clock too */
	tick = atomic_load(&rb->rb_tick);
	if (tick != 0 && now > tick && now - tick > 3000)
		return "bridge not responding";
	if (canary_interval == 0 || sent < 2)
		return NULL;
	at = atomic_load(&rb->rb_canary_sent_at);
	if (at != 0 && now > at && now - at > 2 * (uint64_t)canary_interval + 1000) {
		snprintf(buf, len, "no canary published for %llu ms",
		    (unsigned long long)(now - at));
		return buf;
	}
	/* one interval of slack: the canary before the last must be in */
	for (i = 0; i < reg->r_hdr->rh_nworkers; i++) {
		rw = reg_worker(reg, i);
		if (atomic_load(&rw->rw_state) != REG_PROC_RUNNING)
			continue;
		if (atomic_load(&rw->rw_canary_seq) + 1 < sent) {
			snprintf(buf, len, "canary from redis not received by worker %d", i);
			return buf;
		}
	}
	return NULL;
}

/*
 * Liveness, for a probe that restarts the host's processes when it fails
 * (Kubernetes livenessProbe): only a wedged process fails it, never Redis.
 * A running worker or the bridge whose tick is STATS_LIVE_MS old is wedged
 * (the master replaces a wedged child sooner; this catches a master that
 * does not).
 */
struct json_object *
stats_live_json(struct registry *reg, int *alive)
{
	struct json_object	*o = json_object_new_object();
	struct reg_worker	*rw;
	uint64_t		 now = util_now_ms(), tick;
	char			 ts[32], why[64];
	const char		*reason = NULL;
	int			 i;

	for (i = 0; i < reg->r_hdr->rh_nworkers && reason == NULL; i++) {
		rw = reg_worker(reg, i);
		tick = atomic_load(&rw->rw_tick);
		if (atomic_load(&rw->rw_state) == REG_PROC_RUNNING && tick != 0 &&
		    now > tick && now - tick > STATS_LIVE_MS) {
			snprintf(why, sizeof(why), "worker %d not responding", i);
			reason = why;
		}
	}
	tick = atomic_load(&reg->r_hdr->rh_bridge.rb_tick);
	if (reason == NULL && tick != 0 && now > tick && now - tick > STATS_LIVE_MS)
		reason = "bridge not responding";
	util_timestamp(ts, sizeof(ts), NULL);
	json_object_object_add(o, "status", json_object_new_string(reason ? "down" : "ok"));
	json_object_object_add(o, "service", json_object_new_string("realtime"));
	if (reason != NULL)
		json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	*alive = reason == NULL;
	return o;
}

struct json_object *
stats_health_json(struct registry *reg, int64_t canary_interval, int *healthy)
{
	struct json_object	*o = json_object_new_object();
	struct reg_totals	 t;
	char			 ts[32], why[128];
	const char		*reason;

	reg_totals(reg, &t);
	reason = stats_degraded(reg, canary_interval, why, sizeof(why));
	util_timestamp(ts, sizeof(ts), NULL);
	json_object_object_add(o, "status", json_object_new_string(reason ? "degraded" : "ok"));
	json_object_object_add(o, "service", json_object_new_string("realtime"));
	J_INT(o, "connections", t.t_connections);
	J_INT(o, "authenticated", t.t_authenticated);
	J_INT(o, "activeChannels", t.t_channels);
	json_object_object_add(o, "redis", json_object_new_string(
	    atomic_load(&reg->r_hdr->rh_bridge.rb_redis_up) ? "up" : "down"));
	J_INT(o, "workers", t.t_workers);
	if (reason != NULL)
		json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	*healthy = reason == NULL;
	return o;
}


struct stats_counter {
	const char	*m_name;
	const char	*m_type;
	const char	*m_help;
	size_t		 m_off;		/* in struct reg_worker */
};

static const struct stats_counter stats_worker_metrics[] = {
	{ "realtimed_messages_in_total", "counter", "Client messages received.", WOFF(rw_messages_in) },
	{ "realtimed_messages_out_total", "counter", "Protocol replies sent.", WOFF(rw_messages_out) },
	{ "realtimed_events_out_total", "counter", "Event frames queued to subscribers.", WOFF(rw_events_out) },
	{ "realtimed_event_out_bytes_total", "counter", "Bytes of event frames queued.", WOFF(rw_bytes_out) },
	{ "realtimed_event_bytes_out_total", "counter", "Deprecated, removed in the next release: realtimed_event_out_bytes_total.", WOFF(rw_bytes_out) },
	{ "realtimed_slow_consumer_closes_total", "counter", "Connections closed 4000 (output buffer limit).", WOFF(rw_slow_closes) },
	{ "realtimed_handshake_errors_total", "counter", "HTTP requests answered with an error status.", WOFF(rw_handshake_errors) },
	{ "realtimed_handshake_timeouts_total", "counter", "Connections that did not finish the handshake in time.", WOFF(rw_handshake_timeouts) },
	{ "realtimed_heartbeat_drops_total", "counter", "Connections dropped for silence.", WOFF(rw_heartbeat_drops) },
	{ "realtimed_rate_limited_total", "counter", "Connections closed 1008 for flooding.", WOFF(rw_rate_limited) },
	{ "realtimed_protocol_errors_total", "counter", "Connections failed for RFC 6455 violations.", WOFF(rw_protocol_errors) },
	{ "realtimed_messages_too_big_total", "counter", "Connections closed 1009 at a frame past max_message_size.", WOFF(rw_too_big) },
	{ "realtimed_close_timeouts_total", "counter", "Connections dropped with no Close back within close_timeout.", WOFF(rw_close_timeouts) },
	{ "realtimed_subscriptions_limited_total", "counter", "Subscribes refused (max_subscriptions).", WOFF(rw_subs_limited) },
	{ "realtimed_server_full_total", "counter", "Connections refused 1013 (max_connections).", WOFF(rw_full_refusals) },
	{ "realtimed_tls_handshakes_total", "counter", "Completed TLS handshakes.", WOFF(rw_tls_handshakes) },
	{ "realtimed_tls_errors_total", "counter", "Failed or timed-out TLS handshakes.", WOFF(rw_tls_errors) },
	{ "realtimed_kicked_total", "counter", "Connections closed by an administrator.", WOFF(rw_kicked) },
	{ "realtimed_ip_limited_total", "counter", "Connections refused 503 (max_connections_per_ip).", WOFF(rw_ip_limited) },
	{ "realtimed_user_limited_total", "counter", "Subscriptions refused (max_channels_per_user).", WOFF(rw_user_limited) },
	{ "realtimed_channel_full_total", "counter", "Subscriptions refused (a namespace's max_subscribers).", WOFF(rw_channel_full) },
	{ "realtimed_subscriptions_revoked_total", "counter", "Subscriptions a reload of the namespaces, or a new token, ended.", WOFF(rw_revoked) },
	{ "realtimed_auth_refreshed_total", "counter", "auth messages that verified (a refreshed or an in-band token).", WOFF(rw_auth_refreshed) },
	{ "realtimed_token_expiring_total", "counter", "token_expiring notices sent.", WOFF(rw_token_notices) },
	{ "realtimed_events_replayed_total", "counter", "Events sent again to clients that subscribed with since.", WOFF(rw_replayed) },
	{ "realtimed_positions_local_total", "counter", "Subscribes on channels with history answered by the worker from its own stream, without asking the bridge.", WOFF(rw_positions_here) },
	{ "realtimed_accept_errors_total", "counter", "Failed accept() calls (out of descriptors or memory).", WOFF(rw_accept_errors) },
	{ "realtimed_tokens_revoked_total", "counter", "Handshakes, auth messages and connections refused or closed for a revoked token.", WOFF(rw_tokens_revoked) },
	{ "realtimed_deflate_connections", "gauge", "Open connections that negotiated permessage-deflate.", WOFF(rw_deflate_conns) },
	{ "realtimed_events_out_compressed_total", "counter", "Compressed event frames queued to subscribers.", WOFF(rw_deflate_events) },
	{ "realtimed_messages_inflated_total", "counter", "Compressed client messages inflated.", WOFF(rw_inflated) },
	{ "realtimed_inflate_too_big_total", "counter", "Compressed client messages closed 1009: inflated past max_message_size.", WOFF(rw_inflate_too_big) },
	{ "realtimed_inflate_errors_total", "counter", "Compressed client messages closed 1007: invalid deflate data.", WOFF(rw_inflate_errors) },
	{ "realtimed_inflate_memory_bytes", "gauge", "Bytes held by inflaters of compressed messages being read.", WOFF(rw_inflate_memory) },
	{ "realtimed_message_memory_bytes", "gauge", "Bytes held by client messages being read: fragments, inflated output, requests waiting behind a subscribe.", WOFF(rw_message_memory) },
	{ "realtimed_message_memory_full_total", "counter", "Connections closed 1013: a message would pass max_message_memory.", WOFF(rw_message_memory_full) },
	{ "realtimed_position_requests_full_total", "counter", "Subscribes answered \"Server busy\": the worker had 1,048,576 position requests to the bridge in flight.", WOFF(rw_positions_full) },
	{ "realtimed_handshakes_throttled_total", "counter", "WebSocket upgrades refused 503 (max_handshake_rate).", WOFF(rw_handshakes_throttled) },
	{ "realtimed_pending_connections", "gauge", "Connections accepted and not yet WebSocket: in the TLS handshake, the upgrade, or an HTTP request.", WOFF(rw_pending) },
	{ "realtimed_pending_connections_full_total", "counter", "Times a worker stopped accepting: max_pending_connections reached.", WOFF(rw_pending_full) },
	{ "realtimed_user_connections_limited_total", "counter", "Connections closed 1008 (max_connections_per_user).", WOFF(rw_user_conn_limited) },
	{ "realtimed_publish_requests_total", "counter", "POST /publish requests answered.", WOFF(rw_publish_requests) },
	{ "realtimed_publish_events_total", "counter", "Events published through POST /publish.", WOFF(rw_publish_events) },
	{ "realtimed_publish_unauthorized_total", "counter", "POST /publish refused 401 (a missing or wrong key).", WOFF(rw_publish_unauthorized) },
	{ "realtimed_publish_rejected_total", "counter", "POST /publish refused for its request (400, 405, 411, 413, 415, 417, 422).", WOFF(rw_publish_rejected) },
	{ "realtimed_publish_failed_total", "counter", "POST /publish items Redis or the bridge did not take.", WOFF(rw_publish_failed) },
	{ "realtimed_publish_busy_total", "counter", "POST /publish refused 503 (max_publish_pending).", WOFF(rw_publish_busy) },
	{ "realtimed_proxy_accepted_total", "counter", "PROXY protocol headers taken (proxy_protocol listeners).", WOFF(rw_proxy_accepted) },
	{ "realtimed_proxy_rejected_total", "counter", "Connections closed for a malformed, truncated or missing PROXY header.", WOFF(rw_proxy_rejected) },
	{ "realtimed_proxy_timeouts_total", "counter", "Connections closed without a whole PROXY header in proxy_protocol_timeout.", WOFF(rw_proxy_timeouts) },
	{ "realtimed_forwarded_used_total", "counter", "Upgrades whose client address came from a trusted proxy's Forwarded or X-Forwarded-For.", WOFF(rw_forwarded_used) },
	{ "realtimed_forwarded_invalid_total", "counter", "Upgrades from trusted proxies with a malformed Forwarded or X-Forwarded-For (the peer's address kept).", WOFF(rw_forwarded_invalid) },
	{ "realtimed_token_cache_hits_total", "counter", "Tokens the verified-token cache answered (no signature check).", WOFF(rw_token_cache_hits) },
	{ "realtimed_token_cache_misses_total", "counter", "Valid tokens verified in full while the cache was on.", WOFF(rw_token_cache_misses) },
	{ "realtimed_token_cache_evictions_total", "counter", "Kept tokens dropped to make room (token_cache full, least recently used).", WOFF(rw_token_cache_evictions) },
	{ "realtimed_token_cache_entries", "gauge", "Verified tokens kept now.", WOFF(rw_token_cache_entries) },
	{ "realtimed_token_cache_bytes", "gauge", "Bytes the kept tokens hold.", WOFF(rw_token_cache_bytes) },
};

static void
stats_metric_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A series without labels: its HELP, TYPE and value. */
static void
stats_metric(struct evbuffer *out, const char *name, const char *type, const char *help,
    long long v)
{
	stats_metric_head(out, name, type, help);
	evbuffer_add_printf(out, "%s %lld\n", name, v);
}

/* realtimed_control_messages_total, by result. */
static const struct {
	const char	*sc_result;
	size_t		 sc_off;
} stats_control[] = {
	{ "sent", offsetof(struct reg_bridge, rb_control_sent) },
	{ "applied", offsetof(struct reg_bridge, rb_control_applied) },
	{ "forged", offsetof(struct reg_bridge, rb_control_forged) },
	{ "stale", offsetof(struct reg_bridge, rb_control_stale) },
	{ "replayed", offsetof(struct reg_bridge, rb_control_replayed) },
	{ "ignored", offsetof(struct reg_bridge, rb_control_ignored) },
	{ "dropped", offsetof(struct reg_bridge, rb_control_dropped) },
};

static void
stats_metrics_bridge(struct registry *reg, struct evbuffer *out)
{
	struct reg_bridge	*rb = &reg->r_hdr->rh_bridge;
	size_t			 i;

	stats_metric_head(out, "realtimed_redis_up", "gauge", "1 while the bridge is subscribed to Redis.");
	evbuffer_add_printf(out, "realtimed_redis_up %d\n", (int)atomic_load(&rb->rb_redis_up));
	stats_metric(out, "realtimed_redis_reconnects_total", "counter", "Redis connections lost.",
	    (long long)atomic_load(&rb->rb_redis_reconnects));
	stats_metric(out, "realtimed_redis_failovers_total", "counter", "Sentinel: moves to a new master.",
	    (long long)atomic_load(&rb->rb_redis_failovers));
	stats_metric(out, "realtimed_sentinel_errors_total", "counter", "Sentinel: unreachable, silent or refusing sentinels.",
	    (long long)atomic_load(&rb->rb_sentinel_errors));
	stats_metric(out, "realtimed_redis_channels", "gauge", "redis_subscribe on_demand: channels subscribed in Redis.",
	    (long long)atomic_load(&rb->rb_demand_channels));
	stats_metric_head(out, "realtimed_redis_subscriptions_total", "counter", "redis_subscribe on_demand: channel subscriptions, by operation.");
	evbuffer_add_printf(out, "realtimed_redis_subscriptions_total{op=\"subscribe\"} %lld\n",
	    (long long)atomic_load(&rb->rb_demand_subscribes));
	evbuffer_add_printf(out, "realtimed_redis_subscriptions_total{op=\"unsubscribe\"} %lld\n",
	    (long long)atomic_load(&rb->rb_demand_unsubscribes));
	evbuffer_add_printf(out, "realtimed_redis_subscriptions_total{op=\"refused\"} %lld\n",
	    (long long)atomic_load(&rb->rb_demand_full));
	stats_metric(out, "realtimed_redis_cluster_shards", "gauge", "Redis Cluster: masters in the slot map.",
	    (long long)atomic_load(&rb->rb_rcluster_shards));
	stats_metric(out, "realtimed_redis_cluster_shards_ready", "gauge", "Redis Cluster: masters the bridge is connected to.",
	    (long long)atomic_load(&rb->rb_rcluster_ready));
	stats_metric(out, "realtimed_redis_cluster_canary_missed", "gauge", "Redis Cluster: shards whose last canary did not come back.",
	    (long long)atomic_load(&rb->rb_rcluster_canary_missed));
	stats_metric(out, "realtimed_redis_cluster_map_refreshes_total", "counter", "Redis Cluster: slot maps read (CLUSTER SLOTS).",
	    (long long)atomic_load(&rb->rb_rcluster_refreshes));
	stats_metric(out, "realtimed_redis_cluster_moved_total", "counter", "Redis Cluster: MOVED or ASK replies.",
	    (long long)atomic_load(&rb->rb_rcluster_moved));
	stats_metric(out, "realtimed_redis_cluster_shard_reconnects_total", "counter", "Redis Cluster: shard connections lost.",
	    (long long)atomic_load(&rb->rb_rcluster_reconnects));
	stats_metric(out, "realtimed_redis_cluster_resubscribes_total", "counter", "Redis Cluster: channels Redis unsubscribed (slot moved, failover), subscribed again.",
	    (long long)atomic_load(&rb->rb_rcluster_resubscribes));
	stats_metric(out, "realtimed_redis_cluster_commands_total", "counter", "Redis Cluster: the bridge's keyed commands sent to the master of their slot.",
	    (long long)atomic_load(&rb->rb_rcluster_commands));
	stats_metric(out, "realtimed_redis_cluster_commands_failed_total", "counter", "Redis Cluster: keyed commands not sent (no master, redis_cluster_commands in flight) or lost with their connection.",
	    (long long)atomic_load(&rb->rb_rcluster_commands_failed));
	stats_metric(out, "realtimed_events_in_total", "counter", "Messages received from Redis.",
	    (long long)atomic_load(&rb->rb_events_in));
	stats_metric(out, "realtimed_events_unrouted_total", "counter", "Redis messages on channels nobody here subscribes to.",
	    (long long)atomic_load(&rb->rb_events_unrouted));
	stats_metric(out, "realtimed_redis_coalesced_reads_total", "counter", "Reads of the subscribe connection after a redis_coalesce hold let events gather.",
	    (long long)atomic_load(&rb->rb_redis_coalesced));
	stats_metric(out, "realtimed_ipc_request_waits_total", "counter", "Times a worker's requests waited: its queue from the bridge was over ipc_max_buffer.",
	    (long long)atomic_load(&rb->rb_ipc_request_waits));
	stats_metric(out, "realtimed_ipc_buffer_peak_bytes", "gauge", "The most bytes the bridge has held for one worker at a time (ipc_max_buffer bounds it, give or take one answer).",
	    (long long)atomic_load(&rb->rb_ipc_buffer_peak));
	stats_metric(out, "realtimed_redis_waits_full_total", "counter", "Subscribes answered without waiting for Redis to be connected: 65,536 were waiting already.",
	    (long long)atomic_load(&rb->rb_redis_waits_full));
	stats_metric_head(out, "realtimed_drops_total", "counter", "Events dropped, by reason.");
	evbuffer_add_printf(out, "realtimed_drops_total{reason=\"ipc_high_water\"} %lld\n",
	    (long long)atomic_load(&rb->rb_ipc_drops));
	evbuffer_add_printf(out, "realtimed_drops_total{reason=\"too_large\"} %lld\n",
	    (long long)atomic_load(&rb->rb_events_too_large));
	evbuffer_add_printf(out, "realtimed_drops_total{reason=\"slow_consumer\"} %lld\n",
	    (long long)stats_sum(reg, WOFF(rw_slow_closes)));
	stats_metric(out, "realtimed_events_compressed_total", "counter", "Events compressed by the bridge (once each, for every subscriber).",
	    (long long)atomic_load(&rb->rb_compressed));
	stats_metric(out, "realtimed_compress_in_bytes_total", "counter", "Bytes of event JSON compressed.",
	    (long long)atomic_load(&rb->rb_compress_in));
	stats_metric(out, "realtimed_compress_out_bytes_total", "counter", "Bytes those events took compressed.",
	    (long long)atomic_load(&rb->rb_compress_out));
	stats_metric(out, "realtimed_history_memory_bytes", "gauge", "Bytes of event history held for replay (node positions).",
	    (long long)atomic_load(&rb->rb_history_memory));
	stats_metric(out, "realtimed_history_events", "gauge", "Events held for replay.",
	    (long long)atomic_load(&rb->rb_history_events));
	stats_metric(out, "realtimed_history_evicted_total", "counter", "History events dropped for history, history_ttl or history_memory.",
	    (long long)atomic_load(&rb->rb_history_evicted));
	stats_metric(out, "realtimed_history_channels", "gauge", "Channel records of node positions held (history_channels bounds them).",
	    (long long)atomic_load(&rb->rb_history_channels));
	stats_metric(out, "realtimed_history_channels_evicted_total", "counter", "Channel records pushed out for room (history_channels, history_memory): their positions start anew.",
	    (long long)atomic_load(&rb->rb_history_chans_evicted));
	stats_metric_head(out, "realtimed_recoveries_total", "counter", "Subscribes with since, by outcome.");
	evbuffer_add_printf(out, "realtimed_recoveries_total{result=\"recovered\"} %lld\n",
	    (long long)atomic_load(&rb->rb_recovered));
	evbuffer_add_printf(out, "realtimed_recoveries_total{result=\"unrecoverable\"} %lld\n",
	    (long long)atomic_load(&rb->rb_unrecovered));
	stats_metric(out, "realtimed_cluster_function", "gauge", "1 when the Redis function library realtimed is loaded.",
	    (long long)atomic_load(&rb->rb_cluster_function));
	stats_metric(out, "realtimed_cluster_events_total", "counter", "Envelopes of realtimed_publish heard from Redis.",
	    (long long)atomic_load(&rb->rb_cluster_events));
	stats_metric(out, "realtimed_cluster_malformed_total", "counter", "Malformed envelopes or read answers, dropped.",
	    (long long)atomic_load(&rb->rb_cluster_bad));
	stats_metric_head(out, "realtimed_cluster_reads_total", "counter", "Positions read from Redis, by outcome.");
	evbuffer_add_printf(out, "realtimed_cluster_reads_total{result=\"asked\"} %lld\n",
	    (long long)atomic_load(&rb->rb_cluster_reads));
	evbuffer_add_printf(out, "realtimed_cluster_reads_total{result=\"failed\"} %lld\n",
	    (long long)atomic_load(&rb->rb_cluster_reads_failed));
	evbuffer_add_printf(out, "realtimed_cluster_reads_total{result=\"full\"} %lld\n",
	    (long long)atomic_load(&rb->rb_cluster_reads_full));
	stats_metric(out, "realtimed_canary_sent_total", "counter", "Delivery canaries published.",
	    (long long)atomic_load(&rb->rb_canary_sent));
	stats_metric(out, "realtimed_canary_misses_total", "counter", "Canaries that did not come back from Redis in time.",
	    (long long)atomic_load(&rb->rb_canary_misses));
	stats_metric_head(out, "realtimed_control_messages_total", "counter", "Control messages across nodes, by outcome.");
	for (i = 0; i < sizeof(stats_control) / sizeof(stats_control[0]); i++)
		evbuffer_add_printf(out, "realtimed_control_messages_total{result=\"%s\"} %lld\n",
		    stats_control[i].sc_result,
		    (long long)atomic_load((_Atomic int64_t *)((char *)rb + stats_control[i].sc_off)));
	stats_metric(out, "realtimed_control_queued", "gauge", "Control messages waiting for Redis.",
	    (long long)atomic_load(&rb->rb_control_queued));
	if (reg->r_revoked != NULL) {
		stats_metric(out, "realtimed_revocations", "gauge", "Revoked token ids held.",
		    (long long)rvk_count(reg->r_revoked));
		stats_metric(out, "realtimed_revocation_table_full_total", "counter", "Revocations refused: max_revocations.",
		    (long long)atomic_load(&reg->r_revoked->rt_full));
	}
	stats_metric(out, "realtimed_revocations_bad_total", "counter", "Revocations read from Redis with a wrong MAC, ignored.",
	    (long long)atomic_load(&rb->rb_revocations_bad));
	stats_metric_head(out, "realtimed_admin_clients_closed_total", "counter",
	    "Admin socket clients refused (all 64 in use) or closed (idle 30 s).");
	evbuffer_add_printf(out, "realtimed_admin_clients_closed_total{reason=\"full\"} %lld\n",
	    (long long)atomic_load(&reg->r_hdr->rh_admin_refused));
	evbuffer_add_printf(out, "realtimed_admin_clients_closed_total{reason=\"idle\"} %lld\n",
	    (long long)atomic_load(&reg->r_hdr->rh_admin_idle));
	stats_metric(out, "realtimed_children_killed_total", "counter", "Children the master killed: hung (no tick in bridge_timeout, worker_timeout, child_timeout) or not reading its messages.",
	    (long long)atomic_load(&reg->r_hdr->rh_children_killed));
	stats_metric(out, "realtimed_children_respawned_total", "counter", "Children that ended while running (killed, crashed, exited) and were started again.",
	    (long long)atomic_load(&reg->r_hdr->rh_children_respawned));
	stats_metric_head(out, "realtimed_table_full_total", "counter", "Registry table refusals.");
	evbuffer_add_printf(out, "realtimed_table_full_total{table=\"connections\"} %lld\n",
	    (long long)atomic_load(&reg->r_hdr->rh_conn_table_full));
	evbuffer_add_printf(out, "realtimed_table_full_total{table=\"channels\"} %lld\n",
	    (long long)atomic_load(&reg->r_hdr->rh_chan_table_full));
}

/* A histogram summed over the workers, cumulative as Prometheus wants it. */
static void
stats_metrics_hist(struct registry *reg, struct evbuffer *out, const char *name,
    const char *help, size_t off)
{
	struct reg_hist	*h;
	int64_t		 b[REG_HIST_BUCKETS], count = 0, sum = 0, cum = 0;
	int		 i, w;

	memset(b, 0, sizeof(b));
	for (w = 0; w < reg->r_hdr->rh_nworkers; w++) {
		h = (struct reg_hist *)((char *)reg_worker(reg, w) + off);
		for (i = 0; i < REG_HIST_BUCKETS; i++)
			b[i] += atomic_load(&h->h_bucket[i]);
		count += atomic_load(&h->h_count);
		sum += atomic_load(&h->h_sum_us);
	}
	stats_metric_head(out, name, "histogram", help);
	for (i = 0; i < REG_HIST_BUCKETS; i++) {
		cum += b[i];
		evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %lld\n", name,
		    (double)stats_bounds_us[i] / 1e6, (long long)cum);
	}
	evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %lld\n", name, (long long)count);
	evbuffer_add_printf(out, "%s_sum %.6f\n", name, (double)sum / 1e6);
	evbuffer_add_printf(out, "%s_count %lld\n", name, (long long)count);
}

/* One process's sampled use, under the series' label process="..." */
static void
stats_metrics_usage(struct evbuffer *out, int which, const char *proc,
    const struct reg_usage *u)
{
	switch (which) {
	case 0:
		evbuffer_add_printf(out, "realtimed_process_cpu_seconds_total{process=\"%s\"} %.3f\n",
		    proc, (double)atomic_load(&u->u_cpu_ms) / 1000.0);
		break;
	case 1:
		evbuffer_add_printf(out, "realtimed_process_resident_memory_bytes{process=\"%s\"} %lld\n",
		    proc, (long long)atomic_load(&u->u_rss));
		break;
	default:
		evbuffer_add_printf(out, "realtimed_process_open_fds{process=\"%s\"} %lld\n",
		    proc, (long long)atomic_load(&u->u_fds));
		break;
	}
}

static void
stats_metrics_process(struct registry *reg, struct evbuffer *out)
{
	static const char *const heads[3][3] = {
		{ "realtimed_process_cpu_seconds_total", "counter", "CPU time used, by process." },
		{ "realtimed_process_resident_memory_bytes", "gauge", "Resident memory, by process." },
		{ "realtimed_process_open_fds", "gauge", "Open file descriptors, by process." },
	};
	char	 name[32];
	int	 k, w;

	stats_metric_head(out, "realtimed_build_info", "gauge", "The version running, as a label.");
	evbuffer_add_printf(out, "realtimed_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	stats_metric(out, "realtimed_start_time_seconds", "gauge", "When the master started, seconds since the Unix epoch.",
	    (long long)reg->r_hdr->rh_started);
	for (k = 0; k < 3; k++) {
		stats_metric_head(out, heads[k][0], heads[k][1], heads[k][2]);
		stats_metrics_usage(out, k, "master", &reg->r_hdr->rh_master_usage);
		stats_metrics_usage(out, k, "bridge", &reg->r_hdr->rh_bridge.rb_usage);
		for (w = 0; w < reg->r_hdr->rh_nworkers; w++) {
			if (atomic_load(&reg_worker(reg, w)->rw_state) == REG_PROC_NONE)
				continue;
			snprintf(name, sizeof(name), "worker %d", w);
			stats_metrics_usage(out, k, name, &reg_worker(reg, w)->rw_usage);
		}
	}
}

void
stats_metrics(struct registry *reg, struct evbuffer *out)
{
	struct reg_totals	 t;
	struct reg_worker	*rw;
	size_t			 i;
	int			 w;

	reg_totals(reg, &t);
	stats_metric_head(out, "realtimed_connections", "gauge", "Open WebSocket connections, by kind.");
	evbuffer_add_printf(out, "realtimed_connections{kind=\"authenticated\"} %lld\n",
	    (long long)t.t_authenticated);
	evbuffer_add_printf(out, "realtimed_connections{kind=\"anonymous\"} %lld\n",
	    (long long)t.t_anonymous);
	stats_metric_head(out, "realtimed_subscriptions", "gauge", "Channel subscriptions.");
	evbuffer_add_printf(out, "realtimed_subscriptions %lld\n", (long long)t.t_subscriptions);
	stats_metric_head(out, "realtimed_channels", "gauge", "Channels with at least one subscriber.");
	evbuffer_add_printf(out, "realtimed_channels %lld\n", (long long)t.t_channels);
	stats_metric_head(out, "realtimed_workers", "gauge", "Running worker processes.");
	evbuffer_add_printf(out, "realtimed_workers %d\n", t.t_workers);
	stats_metric_head(out, "realtimed_auth_failures_total", "counter", "Refused authentications, by reason.");
	evbuffer_add_printf(out, "realtimed_auth_failures_total{reason=\"invalid_token\"} %lld\n",
	    (long long)stats_sum(reg, WOFF(rw_auth_failures)));
	evbuffer_add_printf(out, "realtimed_auth_failures_total{reason=\"token_required\"} %lld\n",
	    (long long)stats_sum(reg, WOFF(rw_auth_required)));
	evbuffer_add_printf(out, "realtimed_auth_failures_total{reason=\"token_expired\"} %lld\n",
	    (long long)stats_sum(reg, WOFF(rw_token_expired)));
	for (i = 0; i < sizeof(stats_worker_metrics) / sizeof(stats_worker_metrics[0]); i++) {
		stats_metric_head(out, stats_worker_metrics[i].m_name, stats_worker_metrics[i].m_type,
		    stats_worker_metrics[i].m_help);
		evbuffer_add_printf(out, "%s %lld\n", stats_worker_metrics[i].m_name,
		    (long long)stats_sum(reg, stats_worker_metrics[i].m_off));
	}
	stats_metrics_bridge(reg, out);
	stats_metric_head(out, "realtimed_worker_connections", "gauge", "Open connections per worker.");
	for (w = 0; w < reg->r_hdr->rh_nworkers; w++) {
		rw = reg_worker(reg, w);
		evbuffer_add_printf(out, "realtimed_worker_connections{worker=\"%d\"} %lld\n", w,
		    (long long)atomic_load(&rw->rw_connections));
	}
	stats_metric_head(out, "realtimed_worker_events_out_total", "counter", "Event frames queued per worker.");
	for (w = 0; w < reg->r_hdr->rh_nworkers; w++)
		evbuffer_add_printf(out, "realtimed_worker_events_out_total{worker=\"%d\"} %lld\n", w,
		    (long long)atomic_load(&reg_worker(reg, w)->rw_events_out));
	stats_metrics_hist(reg, out, "realtimed_handshake_duration_seconds",
	    "From accept to the 101 (TLS included), per connection.",
	    offsetof(struct reg_worker, rw_handshake));
	stats_metrics_hist(reg, out, "realtimed_delivery_latency_seconds",
	    "From the bridge's receipt of an event to a worker's last write of it, per event and worker.",
	    offsetof(struct reg_worker, rw_delivery));
	stats_metrics_process(reg, out);
}
