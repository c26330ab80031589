#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H

/*
 * The shared-memory registry: one MAP_SHARED|MAP_ANONYMOUS region created by
 * the master before it forks, so every process sees the same bytes at the
 * same address.  The layout is fixed and versioned; sections are found by
 * offsets in the header (never pointers), sized from the configuration.
 *
 *   header | worker slots | connection slots | connection group bits |
 *   channel index | channel records | per-address and per-user counters
 *
 * Worker and bridge counters are C11 atomics written only by their owner.
 * The connection and channel tables change under one process-shared robust
 * mutex, so a process that dies holding it cannot wedge the host.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "realtimed.h"

#define REGISTRY_MAGIC		0x52544452u	/* "RTDR" */
#define REGISTRY_VERSION	11
#define REG_MAX_WORKERS		64
#define REG_PEER_MAX		48
#define REG_USER_MAX		63
#define REG_USER_PREFIX		(REG_USER_MAX - 4)	/* kept of a longer id */
#define REG_COUNT_SLOTS		65536	/* per kind of counter, twice (count-min), per worker */
#define REG_CONN_GROUP		16	/* connection slots per "ever used" bit */

enum reg_proc_state {
	REG_PROC_NONE = 0,
	REG_PROC_STARTING,
	REG_PROC_RUNNING,
	REG_PROC_STOPPING,
};

/*
 * A histogram of durations: counts per bucket (not cumulative; bounds in
 * stats.c), with the count and sum, written by one process.
 */
#define REG_HIST_BUCKETS	14
struct reg_hist {
	_Atomic int64_t		 h_bucket[REG_HIST_BUCKETS];
	_Atomic int64_t		 h_count;
	_Atomic int64_t		 h_sum_us;
};

/* A process's own resource use, sampled by it about once a second. */
struct reg_usage {
	_Atomic int64_t		 u_cpu_ms;		/* user + system */
	_Atomic int64_t		 u_rss;			/* bytes */
	_Atomic int64_t		 u_fds;
	_Atomic uint64_t	 u_sampled;		/* ms, monotonic */
};

/* Per-worker figures; written by the worker, read by everyone. */
struct reg_worker {
	_Atomic int32_t		 rw_pid;
	_Atomic int32_t		 rw_state;
	_Atomic uint64_t	 rw_tick;		/* liveness, monotonic ms */
	_Atomic uint64_t	 rw_started;		/* wall clock s */
	_Atomic int64_t		 rw_connections;
	_Atomic int64_t		 rw_authenticated;
	_Atomic int64_t		 rw_anonymous;
	_Atomic int64_t		 rw_subscriptions;
	_Atomic int64_t		 rw_messages_in;
	_Atomic int64_t		 rw_messages_out;
	_Atomic int64_t		 rw_events_out;		/* event frames queued */
	_Atomic int64_t		 rw_bytes_out;
	_Atomic int64_t		 rw_slow_closes;	/* 4000 */
	_Atomic int64_t		 rw_auth_failures;	/* invalid tokens */
	_Atomic int64_t		 rw_auth_required;	/* no token, anonymous off */
	_Atomic int64_t		 rw_token_expired;	/* expired while connected */
	_Atomic int64_t		 rw_kicked;
	_Atomic int64_t		 rw_ip_limited;		/* max_connections_per_ip */
	_Atomic int64_t		 rw_user_limited;	/* max_channels_per_user */
	_Atomic int64_t		 rw_channel_full;	/* a namespace's max_subscribers */
	_Atomic int64_t		 rw_revoked;		/* subscriptions a reload or an auth ended */
	_Atomic int64_t		 rw_auth_refreshed;	/* auth messages that worked */
	_Atomic int64_t		 rw_token_notices;	/* token_expiring sent */
	_Atomic int64_t		 rw_replayed;		/* events sent again for since */
	_Atomic int64_t		 rw_positions_here;	/* subscribes answered without the bridge */
	_Atomic int64_t		 rw_tokens_revoked;	/* refused or closed: a revoked jti */
	_Atomic int64_t		 rw_accept_errors;	/* accept() failed (EMFILE...) */
	_Atomic int64_t		 rw_handshake_errors;
	_Atomic int64_t		 rw_handshake_timeouts;
	_Atomic int64_t		 rw_heartbeat_drops;
	_Atomic int64_t		 rw_rate_limited;
	_Atomic int64_t		 rw_protocol_errors;
	_Atomic int64_t		 rw_full_refusals;	/* 1013 */
	_Atomic int64_t		 rw_tls_handshakes;
	_Atomic int64_t		 rw_tls_errors;		/* failed or timed-out handshakes */
	_Atomic int64_t		 rw_deflate_conns;	/* open, with permessage-deflate (gauge) */
	_Atomic int64_t		 rw_deflate_events;	/* compressed event frames queued */
	_Atomic int64_t		 rw_inflated;		/* compressed client messages inflated */
	_Atomic int64_t		 rw_inflate_too_big;	/* inflated past max_message_size: 1009 */
	_Atomic int64_t		 rw_inflate_errors;	/* invalid compressed data: 1007 */
	_Atomic int64_t		 rw_inflate_memory;	/* bytes held by inflaters now (gauge) */
	_Atomic int64_t		 rw_message_memory;	/* ... by messages being assembled (gauge) */
	_Atomic int64_t		 rw_message_memory_full;	/* 1013: max_message_memory */
	_Atomic int64_t		 rw_positions_full;	/* no position request slot: "Server busy" */
	_Atomic int64_t		 rw_handshakes_throttled;	/* 503: max_handshake_rate */
	_Atomic int64_t		 rw_pending;		/* accepted, not yet WebSocket (gauge) */
	_Atomic int64_t		 rw_pending_full;	/* accept paused: max_pending_connections */
	_Atomic int64_t		 rw_user_conn_limited;	/* 1008: max_connections_per_user */
	_Atomic int64_t		 rw_publish_requests;	/* POST /publish answered */
	_Atomic int64_t		 rw_publish_events;	/* items published through it */
	_Atomic int64_t		 rw_publish_unauthorized;	/* 401 */
	_Atomic int64_t		 rw_publish_rejected;	/* 400, 405, 411, 413, 415, 417, 422 */
	_Atomic int64_t		 rw_publish_failed;	/* items Redis or the bridge refused */
	_Atomic int64_t		 rw_publish_busy;	/* 503: max_publish_pending */
	_Atomic int64_t		 rw_proxy_accepted;	/* PROXY headers taken */
	_Atomic int64_t		 rw_proxy_rejected;	/* malformed, truncated, missing: closed */
	_Atomic int64_t		 rw_proxy_timeouts;	/* not whole in proxy_protocol_timeout */
	_Atomic int64_t		 rw_forwarded_used;	/* a trusted proxy's Forwarded / XFF taken */
	_Atomic int64_t		 rw_forwarded_invalid;	/* ... malformed: the peer's address kept */
	_Atomic int64_t		 rw_token_cache_hits;	/* tokens the verified-token cache answered */
	_Atomic int64_t		 rw_token_cache_misses;	/* valid tokens verified in full */
	_Atomic int64_t		 rw_token_cache_evictions;	/* kept tokens dropped to make room */
	_Atomic int64_t		 rw_token_cache_entries;	/* tokens kept now (gauge) */
	_Atomic int64_t		 rw_token_cache_bytes;	/* ... their bytes (gauge) */
	_Atomic int64_t		 rw_subs_limited;	/* refused: max_subscriptions */
	_Atomic int64_t		 rw_too_big;		/* 1009 at the frame: max_message_size */
	_Atomic int64_t		 rw_close_timeouts;	/* no Close back within close_timeout */
	_Atomic uint64_t	 rw_canary_seen;	/* ms of the last canary */
	_Atomic uint64_t	 rw_canary_seq;
	struct reg_hist		 rw_handshake;		/* accept to the 101 */
	struct reg_hist		 rw_delivery;		/* bridge receipt to our writes */
	struct reg_usage	 rw_usage;
};

/* The bridge's figures. */
struct reg_bridge {
	_Atomic int32_t		 rb_pid;
	_Atomic int32_t		 rb_state;
	_Atomic uint64_t	 rb_tick;
	_Atomic int32_t		 rb_redis_up;		/* subscribed and healthy */
	_Atomic int64_t		 rb_redis_reconnects;
	_Atomic int64_t		 rb_events_in;		/* Redis messages */
	_Atomic int64_t		 rb_events_routed;	/* IPC writes to workers */
	_Atomic int64_t		 rb_events_unrouted;	/* nobody subscribed */
	_Atomic int64_t		 rb_redis_coalesced;	/* reads after a redis_coalesce hold */
	_Atomic int64_t		 rb_ipc_drops;		/* a worker over its high-water mark */
	_Atomic int64_t		 rb_ipc_request_waits;	/* a worker's requests left until it reads */
	_Atomic int64_t		 rb_ipc_buffer_peak;	/* most bytes queued for one worker */
	_Atomic int64_t		 rb_redis_waits_full;	/* BRIDGE_PARK_MAX waited for Redis */
	_Atomic int64_t		 rb_events_too_large;	/* over max_event_size, dropped */
	_Atomic int64_t		 rb_compressed;		/* events compressed (once each) */
	_Atomic int64_t		 rb_compress_in;	/* their JSON bytes */
	_Atomic int64_t		 rb_compress_out;	/* their compressed bytes */
	_Atomic int64_t		 rb_compress_errors;	/* sent plain only */
	_Atomic int64_t		 rb_canary_sent;
	_Atomic uint64_t	 rb_canary_sent_at;	/* ms */
	_Atomic int64_t		 rb_canary_misses;
	_Atomic int64_t		 rb_invalid_json;
	_Atomic uint64_t	 rb_redis_since;	/* ms when state last changed */
	_Atomic int64_t		 rb_history_memory;	/* bytes held for replay */
	_Atomic int64_t		 rb_history_events;
	_Atomic int64_t		 rb_history_channels;
	_Atomic int64_t		 rb_history_evicted;	/* frames dropped: count, age, memory */
	_Atomic int64_t		 rb_history_chans_evicted;	/* records dropped for room */
	_Atomic int64_t		 rb_recovered;		/* since: replayed whole */
	_Atomic int64_t		 rb_unrecovered;	/* since: recovered false */
	_Atomic int64_t		 rb_epochs;		/* node epochs begun */
	_Atomic int32_t		 rb_cluster_function;	/* the library is loaded */
	_Atomic int64_t		 rb_cluster_events;	/* envelopes heard */
	_Atomic int64_t		 rb_cluster_bad;	/* malformed envelopes, answers */
	_Atomic int64_t		 rb_cluster_reads;	/* positions read from Redis */
	_Atomic int64_t		 rb_cluster_reads_failed;	/* no answer: the node's own */
	_Atomic int64_t		 rb_cluster_reads_full;	/* over position_reads: the node's */
	_Atomic int64_t		 rb_redis_failovers;	/* sentinel: new master followed */
	_Atomic int64_t		 rb_sentinel_errors;	/* sentinel: unreachable, no answer, refusals */
	_Atomic int64_t		 rb_demand_channels;	/* on_demand: channels subscribed */
	_Atomic int64_t		 rb_demand_subscribes;
	_Atomic int64_t		 rb_demand_unsubscribes;
	_Atomic int64_t		 rb_demand_full;	/* over redis_subscriptions_max: refused */
	_Atomic int64_t		 rb_rcluster_refreshes;	/* cluster: slot maps read */
	_Atomic int64_t		 rb_rcluster_moved;	/* cluster: MOVED/ASK replies */
	_Atomic int64_t		 rb_rcluster_reconnects;	/* cluster: shard connections lost */
	_Atomic int64_t		 rb_rcluster_resubscribes;	/* cluster: channels Redis moved */
	_Atomic int64_t		 rb_rcluster_commands;	/* cluster: keyed commands routed */
	_Atomic int64_t		 rb_rcluster_commands_failed;	/* cluster: no master, full, lost */
	_Atomic int32_t		 rb_rcluster_shards;	/* cluster: masters in the map */
	_Atomic int32_t		 rb_rcluster_ready;	/* cluster: of them, connected */
	_Atomic int32_t		 rb_rcluster_canary_missed;	/* cluster: shards whose last canary missed */
	_Atomic int64_t		 rb_control_sent;	/* control messages published */
	_Atomic int64_t		 rb_control_applied;	/* another node's, carried out */
	_Atomic int64_t		 rb_control_forged;	/* malformed or a wrong MAC */
	_Atomic int64_t		 rb_control_stale;	/* outside control_max_skew */
	_Atomic int64_t		 rb_control_replayed;	/* a nonce seen before */
	_Atomic int64_t		 rb_control_ignored;	/* heard without control_secret */
	_Atomic int64_t		 rb_control_queued;	/* waiting for Redis now */
	_Atomic int64_t		 rb_control_dropped;	/* over control_queue */
	_Atomic int64_t		 rb_revocations_loaded;	/* read back from Redis */
	_Atomic int64_t		 rb_revocations_bad;	/* stored values with a wrong MAC */
	_Atomic uint64_t	 rb_node_seen;		/* ms, the node registry last written */
	struct reg_usage	 rb_usage;
};

struct reg_conn {
	uint8_t			 rc_used;
	uint8_t			 rc_admin;
	int16_t			 rc_worker;
	int32_t			 rc_nsubs;
	int64_t			 rc_started;		/* wall clock s */
	char			 rc_id[RT_UUID_LEN + 1];
	/*
	 * The user id, "" = anonymous.  A longer id (up to RT_USERID_MAX)
	 * keeps its first REG_USER_PREFIX bytes, a NUL, and the util_hash()
	 * of the whole id (rc_user_cut set): listings show the prefix, and
	 * reg_user_match() tells two long ids with one prefix apart.
	 */
	char			 rc_user[REG_USER_MAX + 1];
	char			 rc_peer[REG_PEER_MAX];
	uint8_t			 rc_user_cut;
};

enum reg_chan_state { REG_CHAN_FREE = 0, REG_CHAN_USED };

/*
 * Channels: an open-addressing index of small buckets (the hash and a
 * record number) over dense records taken from a free list, so a process
 * that routes or counts some channels touches the index and those
 * records' pages, not one page per channel.
 */
#define REG_IDX_EMPTY		0u		/* ci_rec: never used */
#define REG_IDX_DELETED		UINT32_MAX	/* ci_rec: a tombstone */

struct reg_chan_idx {
	uint32_t		 ci_hash;
	uint32_t		 ci_rec;		/* record + 1, or the above */
};

/* Followed by nworkers int32 subscriber counts (ch_counts). */
struct reg_chan {
	uint32_t		 ch_state;
	uint32_t		 ch_hash;
	int32_t			 ch_next_free;		/* free list, when REG_CHAN_FREE */
	int64_t			 ch_total;
	char			 ch_name[RT_CHANNEL_MAX + 1];
	_Alignas(8) int32_t	 ch_counts[];
};

struct reg_header {
	uint32_t		 rh_magic;
	uint32_t		 rh_version;
	uint64_t		 rh_size;
	int32_t			 rh_nworkers;
	int32_t			 rh_max_conns;
	int32_t			 rh_chan_slots;		/* index buckets, a power of two */
	int32_t			 rh_max_chans;		/* records */
	uint64_t		 rh_chan_stride;
	uint64_t		 rh_off_workers;
	uint64_t		 rh_off_conns;
	uint64_t		 rh_off_conn_bits;	/* groups of slots ever used */
	uint64_t		 rh_off_chan_idx;
	uint64_t		 rh_off_chans;
	uint64_t		 rh_off_counts;		/* nworkers x REG_COUNT_KINDS x 2 x REG_COUNT_SLOTS int32 */
	pthread_mutex_t		 rh_lock;		/* tables below */
	int32_t			 rh_nconns;		/* used connection slots */
	int32_t			 rh_nchans;		/* channels with subscribers */
	int32_t			 rh_chan_hiwat;		/* records ever used */
	int32_t			 rh_chan_free;		/* a free record, -1 none */
	int32_t			 rh_conn_hint[REG_MAX_WORKERS];	/* next slot to try, per worker */
	_Atomic int64_t		 rh_conn_table_full;	/* refusals, counted */
	_Atomic int64_t		 rh_chan_table_full;
	_Atomic int64_t		 rh_lock_recoveries;	/* owner died holding it */
	_Atomic int64_t		 rh_admin_refused;	/* admin clients refused: all in use */
	_Atomic int64_t		 rh_admin_idle;		/* ... closed: idle, no request waiting */
	_Atomic int64_t		 rh_children_killed;	/* hung or deaf: killed by the master */
	_Atomic int64_t		 rh_children_respawned;	/* ended while running, started again */
	_Atomic uint64_t	 rh_hs_tat;		/* max_handshake_rate: GCRA, ns */
	int64_t			 rh_started;		/* wall clock s, the master's start */
	struct reg_usage	 rh_master_usage;
	struct reg_bridge	 rh_bridge;
};

struct rvk_table;

struct registry {
	struct reg_header	*r_hdr;
	size_t			 r_size;
	struct rvk_table	*r_revoked;	/* its own mapping; NULL: none */
	size_t			 r_revoked_size;
};

/* Create a region for nworkers, max_conns connections, max_chans channels. */
int	reg_create(struct registry *r, int nworkers, int max_conns, int max_chans);
void	reg_destroy(struct registry *r);
/* The revocation table (revoke.h), max entries, shared like the rest. */
int	reg_revocations_create(struct registry *r, uint32_t max);

struct reg_worker *reg_worker(struct registry *r, int w);
struct reg_conn	*reg_conn_slot(struct registry *r, int i);
struct reg_chan	*reg_chan_slot(struct registry *r, int i);		/* a record */
struct reg_chan_idx *reg_chan_bucket(struct registry *r, int i);

void	reg_lock(struct registry *r);
void	reg_unlock(struct registry *r);

/* A connection slot for worker w; -1 when the table is full (counted). */
int	reg_conn_add(struct registry *r, int w, const char *id, const char *user,
	    int admin, const char *peer, int64_t started);
void	reg_conn_del(struct registry *r, int slot);
void	reg_conn_set_nsubs(struct registry *r, int slot, int nsubs);
/* The slot's user changed (an auth message): id ("" anonymous) and admin flag. */
void	reg_conn_set_user(struct registry *r, int slot, const char *user, int admin);

/*
 * Add delta (+1/-1) to worker w's subscriber count of a channel, creating
 * or deleting the table entry as needed.  -1 when a new channel does not fit
 * (counted); -2 when delta > 0 and the channel has limit subscribers
 * host-wide already (limit 0: none).
 */
int	reg_chan_add(struct registry *r, int w, const char *name, size_t len, int delta,
	    int64_t limit);

/*
 * Which workers have subscribers to name: fills mask (bit per worker) and
 * returns the host-wide subscriber count.
 */
int64_t	reg_chan_route(struct registry *r, const char *name, size_t len, uint64_t *mask);

/*
 * Host-wide counts per key (client address: connections; user id:
 * channels, once per worker) without a lock: each worker keeps two counters per key (a
 * count-min sketch, so a collision can only overstate a count) and the
 * host-wide figure is the sum over workers.  reg_count_key() hashes a key
 * to its two counters; reg_count_acquire() counts one more and returns 0
 * when under limit, -1 (nothing counted) when the key is at it;
 * reg_count_release() undoes one.  A dead worker's counters are zeroed by
 * reg_worker_clear().
 */
enum reg_count { REG_COUNT_IP, REG_COUNT_USER, REG_COUNT_CONNS, REG_COUNT_KINDS };
uint32_t reg_count_key(const void *key, size_t len);
int	reg_count_acquire(struct registry *r, enum reg_count kind, int w, uint32_t key,
	    int limit);
void	reg_count_release(struct registry *r, enum reg_count kind, int w, uint32_t key);

/*
 * max_handshake_rate, node-wide: one more handshake at now_ns (monotonic)
 * under rate per second with burst (0: rate) — a GCRA on one shared atomic,
 * exact across workers.  0 admitted; -1 refused, *wait_ns until one would be.
 */
int	reg_admit(struct registry *r, uint64_t now_ns, int rate, int burst, uint64_t *wait_ns);

/* Forget everything worker w owned (it died): counts, connections. */
void	reg_worker_clear(struct registry *r, int w);

/* Host-wide sums of the worker counters. */
struct reg_totals {
	int64_t	 t_connections;
	int64_t	 t_authenticated;
	int64_t	 t_anonymous;
	int64_t	 t_subscriptions;
	int64_t	 t_channels;
	int	 t_workers;		/* running */
};
void	reg_totals(struct registry *r, struct reg_totals *t);

/* 1 if slot user rc_user may be user (exact, or its stored prefix). */
int	reg_user_match(const struct reg_conn *rc, const char *user);

/* Call fn for each used connection slot (under the lock). */
void	reg_conn_foreach(struct registry *r, void (*fn)(struct reg_conn *, void *), void *arg);

/* Call fn for each channel with subscribers (under the lock). */
void	reg_chan_foreach(struct registry *r,
	    void (*fn)(const char *name, int64_t subscribers, void *arg), void *arg);

#endif
