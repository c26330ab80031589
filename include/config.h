#ifndef RT_CONFIG_H
#define RT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONF_LIST_MAX		32	/* entries in a list-valued key */
#define CONF_STR_MAX		1024
/* admin_socket: a Unix socket path (sizeof(sun_path) - 1 on Linux) */
#define ADMIN_PATH_MAX		107
/* a line of the master's settings: a key and a value every byte of which escaped */
#define CONF_WIRE_LINE_MAX	(2 * CONF_STR_MAX + 256)

struct rt_strlist {
	int	 sl_count;
	char	*sl_items[CONF_LIST_MAX];
};

/*
 * The whole configuration.  Every member is named by one row of the key
 * table in config.c, which also holds its default, bounds and whether a
 * reload may change it.  Durations are milliseconds, sizes bytes.
 */
struct chan_table;

struct rt_config {
	char		*c_file;		/* where it was read from */
	char		**c_where;		/* per key: config_where() */
	char		**c_notes;		/* warnings found parsing, said at load */
	int		 c_nnotes;

	/* channels: "namespace" lines in file order; none: the default table */
	struct chan_table *c_namespaces;

	/* listeners and processes */
	char		*c_listen;		/* "HOST:PORT", "" = off */
	int		 c_listen_proxy;	/* listen ... proxy_protocol */
	int		 c_workers;		/* 0 = number of CPUs */
	int		 c_listen_backlog;	/* listen(2), capped by somaxconn */
	char		*c_echo_path;		/* "" = off */
	char		*c_ws_path;		/* "/ws" */

	/* TLS */
	char		*c_listen_tls;		/* "HOST:PORT", "" = off */
	int		 c_listen_tls_proxy;	/* listen_tls ... proxy_protocol */
	char		*c_tls_certificate;	/* full chain PEM, "" = no TLS */
	char		*c_tls_certificate_key;	/* "" = in the certificate file */
	char		*c_tls_protocols;
	char		*c_tls_ciphers;		/* TLS 1.2 */
	char		*c_tls_ciphersuites;	/* TLS 1.3 */
	int64_t		 c_tls_handshake_timeout;
	int64_t		 c_tls_session_timeout;
	int		 c_tls_session_cache_size;

	/* limits */
	int64_t		 c_max_message_size;
	int64_t		 c_max_header_size;
	int64_t		 c_max_output_buffer;
	int64_t		 c_max_message_memory;	/* per worker: messages being read */
	int		 c_max_connections;
	int		 c_max_connections_per_ip;	/* 0 = no limit */
	int		 c_max_channels;
	int		 c_max_subscriptions;
	int		 c_max_channels_per_user;	/* subscriptions, host-wide; 0 = auto */
	int		 c_stats_channels;	/* stats: channels listed, most subscribed first */

	/* permessage-deflate (RFC 7692) */
	int		 c_compression;		/* offered by new handshakes */
	int64_t		 c_compression_min_size;	/* smaller messages go plain */
	int		 c_compression_level;	/* zlib 1-9 */
	int		 c_compression_window_bits;	/* of what the server compresses */
	int64_t		 c_handshake_timeout;
	int64_t		 c_close_timeout;
	int		 c_max_client_messages_per_sec;
	int		 c_client_messages_burst;

	/* heartbeat */
	int64_t		 c_heartbeat_interval;
	int64_t		 c_heartbeat_timeout;	/* 0 = 2 x interval */

	/* auth */
	char		*c_jwt_algorithm;	/* HS256 ... */
	char		*c_jwt_secret;
	char		*c_jwt_public_key;	/* file */
	int64_t		 c_jwt_leeway;
	int64_t		 c_token_refresh_notice;	/* token_expiring this long before; 0 = off */
	char		*c_jwt_issuer;
	char		*c_jwt_audience;
	int		 c_jwt_require_exp;	/* refuse tokens without exp */
	int		 c_token_cache;		/* verified tokens kept per worker */
	int		 c_allow_anonymous;
	struct rt_strlist c_allowed_origins;	/* empty = any */

	/* redis and the bridge */
	char		*c_redis_url;
	char		*c_redis_sentinel_password;
	char		*c_redis_subscribe;	/* "patterns" or "on_demand" */
	char		*c_forwarded_header;	/* "x-forwarded-for" or "forwarded" */
	int		 c_redis_subscriptions_max;
	int		 c_redis_cluster_commands;	/* cluster: keyed commands in flight */
	int64_t		 c_redis_coalesce;	/* us: events let gather before a read */
	int64_t		 c_canary_interval;	/* 0 = off */
	int64_t		 c_ipc_max_buffer;	/* bridge -> worker high-water mark */
	int64_t		 c_max_event_size;	/* larger Redis messages are dropped */
	int64_t		 c_history_memory;	/* node positions: frames kept, all channels */
	int		 c_history_channels;	/* node positions: channel records */
	int		 c_position_reads;	/* cluster positions: Redis reads in flight */
	int64_t		 c_redis_reconnect_max;	/* backoff ceiling */
	int64_t		 c_redis_timeout;	/* not ready / not answered: given up */

	/* supervision */
	int64_t		 c_child_timeout;	/* a child that does not start is killed */
	int64_t		 c_bridge_timeout;	/* a running bridge that stops ticking... */
	int64_t		 c_worker_timeout;	/* ... or worker, is killed */
	int64_t		 c_shutdown_timeout;

	/* logging */
	int		 c_log_level;
	char		*c_log_file;		/* "" = stderr or syslog */
	char		*c_log_format;		/* "text" or "json" */

	/* the daemon */
	char		*c_user;		/* "" = stay as started */
	char		*c_group;
	char		*c_pidfile;		/* "" = none */
	char		*c_admin_socket;	/* "" = off */
	char		*c_admin_socket_mode;	/* octal */
	char		*c_jwt_secret_file;
	struct rt_strlist c_metrics_allow;	/* addresses / CIDRs */
	int64_t		 c_drain_period;

	/* behind a load balancer */
	struct rt_strlist c_trusted_proxies;	/* Forwarded / X-Forwarded-For from these */
	int64_t		 c_proxy_protocol_timeout;	/* the PROXY header must be in by then */

	/* control across nodes, revocations, the node registry */
	char		*c_node_id;		/* "" at load: HOST:PORT */
	char		*c_control_channel;	/* also the prefix of its Redis keys */
	char		*c_control_secret;	/* "" = admin commands stay on this node */
	char		*c_control_secret_file;
	int64_t		 c_control_max_skew;	/* control messages older or newer: stale */
	int		 c_control_nonces;	/* replay window */
	int		 c_control_queue;	/* revocations waiting for Redis */
	int		 c_max_revocations;	/* the shared revocation table */
	int64_t		 c_revocation_ttl;	/* revoke without UNTIL lasts this long */
	int64_t		 c_node_ttl;		/* node registry entries */

	/* admission and publishing over HTTP */
	int		 c_max_connections_per_user;	/* host-wide; 0: none */
	int		 c_max_handshake_rate;	/* upgrades per second, node-wide; 0: none */
	int		 c_max_pending;		/* max_pending_connections, per worker */
	int		 c_max_handshake_burst;	/* 0: the rate (one second's worth) */
	char		*c_publish_api_key;	/* "" = POST /publish off (404) */
	char		*c_publish_api_key_file;
	int64_t		 c_max_publish_body;	/* bytes; over it 413 */
	int		 c_max_publish_batch;	/* items in one batch body */
	int		 c_max_publish_pending;	/* per worker, waiting for the bridge */
};

/*
 * Parse a configuration file into conf (which is first set to defaults,
 * then overridden from the environment: JWT_SECRET, REDIS_URL,
 * REALTIMED_<KEY>).  On error returns -1 with "file:line: message" in err.
 * path NULL means: defaults and environment only.
 */
int	config_load(struct rt_config *conf, const char *path, char *err, size_t errlen);
/* Same, from a string (for tests and fuzzing); name labels error messages. */
int	config_parse_string(struct rt_config *conf, const char *name,
	    const char *text, size_t len, char *err, size_t errlen);
void	config_defaults(struct rt_config *conf);
/* Environment overrides alone; -1 with a message on a bad value. */
int	config_apply_env(struct rt_config *conf, char *err, size_t errlen);
/* Cross-key checks after everything is read (e.g. a key for the algorithm). */
int	config_validate(struct rt_config *conf, char *err, size_t errlen);
void	config_free(struct rt_config *conf);

/* The key table, for documentation checks and `realtimed -t -v`. */
int	config_key_count(void);
const char *config_key_name(int i);
/* Print "key value" for every key (secrets masked). */
void	config_dump(const struct rt_config *conf, void (*emit)(const char *line, void *arg), void *arg);

/*
 * The whole configuration as "key value" text, secrets included, that
 * config_from_master() reads back exactly (for the master to push
 * settings to its children): its lines may be longer than a file's, up to
 * CONF_WIRE_LINE_MAX, every value whole.  malloc'd.
 */
char	*config_serialize(const struct rt_config *conf, size_t *len);
/*
 * Copy every reloadable key that differs from next into live; with report,
 * log each change and each restart-only key that differs.  Returns the
 * number of restart-only keys that differ.
 */
int	config_merge_reloadable(struct rt_config *live, const struct rt_config *next,
	    int report);
int	config_key_reloadable(int i);
/* Read back what config_serialize() wrote (pushed by the master); exits on error. */
void	config_from_master(struct rt_config *nc, const char *name, const char *text,
	    size_t len);

/*
 * Where key was set, for messages: "file:line", "environment VAR", or the
 * file's name when the key has its default value.
 */
const char *config_where(const struct rt_config *conf, const char *key);
/*
 * The file that key names ("" = none: 0) can be opened to read (write 0:
 * a regular file) or to append to (write 1; or, when it does not exist yet,
 * created in its directory); -1 with "file:line: key path: reason".
 */
int	config_check_file(const struct rt_config *conf, const char *key, int write,
	    char *err, size_t errlen);
/* config_check_file() on the certificate and key when TLS is on, and the JWT public key. */
int	config_check_files(const struct rt_config *conf, char *err, size_t errlen);

/*
 * The JWT context for conf: reads jwt_public_key when the algorithm needs
 * it and hands auth_new() the bytes.  NULL with the reason in err
 * ("jwt_public_key FILE: No such file or directory", ...).
 */
struct auth_ctx *config_auth_new(const struct rt_config *conf, char *err, size_t errlen);

/* redis_subscribe on_demand (else patterns)? */
int	config_on_demand(const struct rt_config *conf);

/* Value parsers shared with the environment code; 0 ok, -1 bad. */
int	config_parse_duration(const char *s, int64_t *ms);
int	config_parse_usec(const char *s, int64_t *us);
int	config_parse_size(const char *s, int64_t *bytes);
int	config_parse_bool(const char *s, int *b);

#endif
