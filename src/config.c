/*
 * Configuration: one table of keys (redis' config.c way).  The parser, the
 * environment overrides, `realtimed -t` and the documentation test all read
 * the same table.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "proxy.h"
#include "redis_url.h"
#include "tls.h"
#include "util.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif

enum conf_type { CT_STR, CT_INT, CT_SIZE, CT_DURATION, CT_USEC, CT_BOOL, CT_LIST, CT_LOGLEVEL };

#define F_RELOAD	0x01	/* a reload may change it live */
#define F_SECRET	0x02	/* never printed */
/* what the type alone does not catch, checked at parse time (file:line) */
#define F_HOSTPORT	0x04	/* HOST:PORT */
#define F_REDIS_URL	0x08
#define F_CIDR		0x10	/* each entry ADDR[/BITS] */
#define F_LOG_FORMAT	0x20
#define F_SUBSCRIBE	0x40	/* patterns | on_demand */
#define F_FWD_HEADER	0x100	/* x-forwarded-for | forwarded */
#define F_PROXY_CIDR	0x80	/* each entry ADDR[/BITS], as proxy_cidr_parse() reads it */

struct conf_key {
	const char	*k_name;
	enum conf_type	 k_type;
	size_t		 k_off;
	const char	*k_default;
	int64_t		 k_min;
	int64_t		 k_max;
	int		 k_flags;
};

#define OFF(m)	offsetof(struct rt_config, m)
#define CONF_INCLUDE_DEPTH	8
#define GB	(1024LL * 1024 * 1024)
#define DAY	(86400LL * 1000)

static const struct conf_key conf_keys[] = {
	{ "listen", CT_STR, OFF(c_listen), "0.0.0.0:8888", 0, 0, F_HOSTPORT },
	{ "workers", CT_INT, OFF(c_workers), "0", 0, 64, 0 },
	{ "listen_backlog", CT_INT, OFF(c_listen_backlog), "4096", 1, 65535, 0 },
	{ "ws_path", CT_STR, OFF(c_ws_path), "/ws", 0, 0, 0 },
	{ "echo_path", CT_STR, OFF(c_echo_path), "", 0, 0, 0 },
	{ "listen_tls", CT_STR, OFF(c_listen_tls), "0.0.0.0:8443", 0, 0, F_HOSTPORT },
	{ "tls_certificate", CT_STR, OFF(c_tls_certificate), "", 0, 0, F_RELOAD },
	{ "tls_certificate_key", CT_STR, OFF(c_tls_certificate_key), "", 0, 0, F_RELOAD },
	{ "tls_protocols", CT_STR, OFF(c_tls_protocols), "TLSv1.2 TLSv1.3", 0, 0, F_RELOAD },
	{ "tls_ciphers", CT_STR, OFF(c_tls_ciphers),
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305", 0, 0, F_RELOAD },
	{ "tls_ciphersuites", CT_STR, OFF(c_tls_ciphersuites),
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
	    0, 0, F_RELOAD },
	{ "tls_handshake_timeout", CT_DURATION, OFF(c_tls_handshake_timeout), "10s", 100, DAY, F_RELOAD },
	{ "tls_session_timeout", CT_DURATION, OFF(c_tls_session_timeout), "5m", 1000, DAY, F_RELOAD },
	{ "tls_session_cache_size", CT_INT, OFF(c_tls_session_cache_size), "20480", 0, 10000000, F_RELOAD },
	{ "max_message_size", CT_SIZE, OFF(c_max_message_size), "1m", 126, GB, F_RELOAD },
	{ "max_header_size", CT_SIZE, OFF(c_max_header_size), "8k", 512, 1024 * 1024, F_RELOAD },
	{ "max_output_buffer", CT_SIZE, OFF(c_max_output_buffer), "4m", 4096, 4 * GB, F_RELOAD },
	{ "max_message_memory", CT_SIZE, OFF(c_max_message_memory), "64m", 1024, 64 * GB, F_RELOAD },
	{ "max_connections", CT_INT, OFF(c_max_connections), "100000", 1, 10000000, 0 },
	{ "max_connections_per_ip", CT_INT, OFF(c_max_connections_per_ip), "0", 0, 10000000, F_RELOAD },
	{ "max_channels", CT_INT, OFF(c_max_channels), "65536", 16, 10000000, 0 },
	{ "max_subscriptions", CT_INT, OFF(c_max_subscriptions), "100", 1, 100000, F_RELOAD },
	{ "max_channels_per_user", CT_INT, OFF(c_max_channels_per_user), "0", 0, 10000000, F_RELOAD },
	{ "max_connections_per_user", CT_INT, OFF(c_max_connections_per_user), "0", 0, 10000000, F_RELOAD },
	{ "max_pending_connections", CT_INT, OFF(c_max_pending), "10000", 1, 10000000, F_RELOAD },
	{ "max_handshake_rate", CT_INT, OFF(c_max_handshake_rate), "0", 0, 10000000, F_RELOAD },
	{ "max_handshake_burst", CT_INT, OFF(c_max_handshake_burst), "0", 0, 10000000, F_RELOAD },
	{ "stats_channels", CT_INT, OFF(c_stats_channels), "100", 0, 100000, F_RELOAD },
	{ "compression", CT_BOOL, OFF(c_compression), "on", 0, 0, F_RELOAD },
	{ "compression_min_size", CT_SIZE, OFF(c_compression_min_size), "256", 0, GB, F_RELOAD },
	{ "compression_level", CT_INT, OFF(c_compression_level), "1", 1, 9, F_RELOAD },
	{ "compression_window_bits", CT_INT, OFF(c_compression_window_bits), "15", 9, 15, 0 },
	{ "handshake_timeout", CT_DURATION, OFF(c_handshake_timeout), "10s", 100, DAY, F_RELOAD },
	{ "close_timeout", CT_DURATION, OFF(c_close_timeout), "2s", 100, DAY, F_RELOAD },
	{ "max_client_messages_per_sec", CT_INT, OFF(c_max_client_messages_per_sec), "50", 1, 1000000, F_RELOAD },
	{ "client_messages_burst", CT_INT, OFF(c_client_messages_burst), "120", 1, 1000000, F_RELOAD },
	{ "heartbeat_interval", CT_DURATION, OFF(c_heartbeat_interval), "30s", 100, DAY, F_RELOAD },
	{ "heartbeat_timeout", CT_DURATION, OFF(c_heartbeat_timeout), "0", 0, DAY, F_RELOAD },
	{ "jwt_algorithm", CT_STR, OFF(c_jwt_algorithm), "HS256", 0, 0, F_RELOAD },
	{ "jwt_secret", CT_STR, OFF(c_jwt_secret), "", 0, 0, F_RELOAD | F_SECRET },
	{ "jwt_public_key", CT_STR, OFF(c_jwt_public_key), "", 0, 0, F_RELOAD },
	{ "jwt_leeway", CT_DURATION, OFF(c_jwt_leeway), "5s", 0, DAY, F_RELOAD },
	{ "token_refresh_notice", CT_DURATION, OFF(c_token_refresh_notice), "60s", 0, DAY, F_RELOAD },
	{ "jwt_issuer", CT_STR, OFF(c_jwt_issuer), "", 0, 0, F_RELOAD },
	{ "jwt_audience", CT_STR, OFF(c_jwt_audience), "", 0, 0, F_RELOAD },
	{ "jwt_require_exp", CT_BOOL, OFF(c_jwt_require_exp), "no", 0, 0, F_RELOAD },
	{ "token_cache", CT_INT, OFF(c_token_cache), "1024", 0, 1048576, F_RELOAD },
	{ "allow_anonymous", CT_BOOL, OFF(c_allow_anonymous), "yes", 0, 0, F_RELOAD },
	{ "allowed_origins", CT_LIST, OFF(c_allowed_origins), "", 0, 0, F_RELOAD },
	{ "redis_url", CT_STR, OFF(c_redis_url), "redis://127.0.0.1:6379", 0, 0, F_REDIS_URL },
	{ "redis_subscribe", CT_STR, OFF(c_redis_subscribe), "patterns", 0, 0, F_SUBSCRIBE },
	{ "redis_subscriptions_max", CT_INT, OFF(c_redis_subscriptions_max), "1000000", 16, 100000000, 0 },
	{ "redis_cluster_commands", CT_INT, OFF(c_redis_cluster_commands), "65536", 16, 10000000, 0 },
	{ "redis_coalesce", CT_USEC, OFF(c_redis_coalesce), "1ms", 0, 100000, 0 },
	{ "redis_sentinel_password", CT_STR, OFF(c_redis_sentinel_password), "", 0, 0, F_SECRET },
	{ "canary_interval", CT_DURATION, OFF(c_canary_interval), "5s", 0, DAY, 0 },
	{ "ipc_max_buffer", CT_SIZE, OFF(c_ipc_max_buffer), "64m", 65536, 16 * GB, F_RELOAD },
	{ "max_event_size", CT_SIZE, OFF(c_max_event_size), "1m", 1024, GB, F_RELOAD },
	{ "history_memory", CT_SIZE, OFF(c_history_memory), "64m", 0, 64 * GB, F_RELOAD },
	{ "history_channels", CT_INT, OFF(c_history_channels), "65536", 16, 10000000, F_RELOAD },
	{ "position_reads", CT_INT, OFF(c_position_reads), "1024", 1, 65535, 0 },
	{ "redis_reconnect_max", CT_DURATION, OFF(c_redis_reconnect_max), "5s", 100, DAY, F_RELOAD },
	{ "redis_timeout", CT_DURATION, OFF(c_redis_timeout), "5s", 500, DAY, F_RELOAD },
	{ "child_timeout", CT_DURATION, OFF(c_child_timeout), "10s", 500, DAY, F_RELOAD },
	{ "bridge_timeout", CT_DURATION, OFF(c_bridge_timeout), "3s", 500, DAY, F_RELOAD },
	{ "worker_timeout", CT_DURATION, OFF(c_worker_timeout), "5s", 500, DAY, F_RELOAD },
	{ "shutdown_timeout", CT_DURATION, OFF(c_shutdown_timeout), "10s", 0, DAY, F_RELOAD },
	{ "user", CT_STR, OFF(c_user), "", 0, 0, 0 },
	{ "group", CT_STR, OFF(c_group), "", 0, 0, 0 },
	{ "pidfile", CT_STR, OFF(c_pidfile), RUNSTATEDIR "/realtimed/realtimed.pid", 0, 0, 0 },
	{ "admin_socket", CT_STR, OFF(c_admin_socket), RUNSTATEDIR "/realtimed/realtimed.sock", 0, 0, 0 },
	{ "admin_socket_mode", CT_STR, OFF(c_admin_socket_mode), "0660", 0, 0, 0 },
	{ "jwt_secret_file", CT_STR, OFF(c_jwt_secret_file), "", 0, 0, F_RELOAD },
	{ "metrics_allow", CT_LIST, OFF(c_metrics_allow), "127.0.0.1 ::1", 0, 0, F_RELOAD | F_CIDR },
	{ "trusted_proxies", CT_LIST, OFF(c_trusted_proxies), "", 0, 0, F_RELOAD | F_PROXY_CIDR },
	{ "forwarded_header", CT_STR, OFF(c_forwarded_header), "x-forwarded-for", 0, 0, F_RELOAD | F_FWD_HEADER },
	{ "proxy_protocol_timeout", CT_DURATION, OFF(c_proxy_protocol_timeout), "5s", 100, DAY, F_RELOAD },
	{ "drain_period", CT_DURATION, OFF(c_drain_period), "5s", 0, DAY, F_RELOAD },
	{ "node_id", CT_STR, OFF(c_node_id), "", 0, 0, 0 },
	{ "control_channel", CT_STR, OFF(c_control_channel), "realtimed:control", 0, 0, 0 },
	{ "control_secret", CT_STR, OFF(c_control_secret), "", 0, 0, F_RELOAD | F_SECRET },
	{ "control_secret_file", CT_STR, OFF(c_control_secret_file), "", 0, 0, F_RELOAD },
	{ "publish_api_key", CT_STR, OFF(c_publish_api_key), "", 0, 0, F_RELOAD | F_SECRET },
	{ "publish_api_key_file", CT_STR, OFF(c_publish_api_key_file), "", 0, 0, F_RELOAD },
	{ "max_publish_body", CT_SIZE, OFF(c_max_publish_body), "64k", 64, 16 * 1024 * 1024, F_RELOAD },
	{ "max_publish_batch", CT_INT, OFF(c_max_publish_batch), "100", 1, 10000, F_RELOAD },
	{ "max_publish_pending", CT_INT, OFF(c_max_publish_pending), "1024", 1, 1000000, F_RELOAD },
	{ "control_max_skew", CT_DURATION, OFF(c_control_max_skew), "30s", 1000, DAY, 0 },
	{ "control_nonces", CT_INT, OFF(c_control_nonces), "65536", 16, 10000000, 0 },
	{ "control_queue", CT_INT, OFF(c_control_queue), "1024", 0, 1000000, 0 },
	{ "max_revocations", CT_INT, OFF(c_max_revocations), "100000", 16, 16777216, 0 },
	{ "revocation_ttl", CT_DURATION, OFF(c_revocation_ttl), "1d", 1000, 366 * DAY, F_RELOAD },
	{ "node_ttl", CT_DURATION, OFF(c_node_ttl), "15s", 3000, DAY, 0 },
	{ "log_level", CT_LOGLEVEL, OFF(c_log_level), "info", 0, 0, F_RELOAD },
	{ "log_file", CT_STR, OFF(c_log_file), "", 0, 0, 0 },
	{ "log_format", CT_STR, OFF(c_log_format), "text", 0, 0, F_LOG_FORMAT },
};
#define NKEYS	((int)(sizeof(conf_keys) / sizeof(conf_keys[0])))

int
config_key_count(void)
{
	return NKEYS;
}

const char *
config_key_name(int i)
{
	return (i >= 0 && i < NKEYS) ? conf_keys[i].k_name : NULL;
}

static const struct conf_key *
config_find(const char *name)
{
	int	 i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(conf_keys[i].k_name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

/* Remember where key k was set: "file:line", or "environment VAR". */
static void
config_note(struct rt_config *conf, const struct conf_key *k, const char *fmt, ...)
{
	char	 buf[CONF_STR_MAX + 64];
	size_t	 i = (size_t)(k - conf_keys);
	va_list	 ap;

	if (conf->c_where == NULL && (conf->c_where = calloc(NKEYS, sizeof(char *))) == NULL)
		fatal("calloc");
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(conf->c_where[i]);
	if ((conf->c_where[i] = strdup(buf)) == NULL)
		fatal("strdup");
}

const char *
config_where(const struct rt_config *conf, const char *key)
{
	const struct conf_key	*k = config_find(key);

	if (k != NULL && conf->c_where != NULL && conf->c_where[k - conf_keys] != NULL)
		return conf->c_where[k - conf_keys];
	return conf->c_file != NULL ? conf->c_file : "config";
}

/* A number with an optional unit suffix; units[] maps suffix -> factor. */
static int
config_parse_scaled(const char *s, int64_t *out, const char *const *sfx,
    const int64_t *mul, int64_t plain)
{
	char		*end;
	long long	 v;
	int		 i;

	if (*s == '\0' || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v < 0)
		return -1;
	if (*end == '\0') {
		if (v > INT64_MAX / plain)
			return -1;
		*out = v * plain;
		return 0;
	}
	for (i = 0; sfx[i] != NULL; i++) {
		if (strcasecmp(end, sfx[i]) == 0) {
			if (v > INT64_MAX / mul[i])
				return -1;
			*out = v * mul[i];
			return 0;
		}
	}
	return -1;
}

int
config_parse_duration(const char *s, int64_t *ms)
{
	static const char *const sfx[] = { "ms", "s", "m", "h", "d", NULL };
	static const int64_t mul[] = { 1, 1000, 60000, 3600000, 86400000 };

	return config_parse_scaled(s, ms, sfx, mul, 1000);
}

/* A duration in microseconds: 500us, 2ms, 0 (a plain number is seconds). */
int
config_parse_usec(const char *s, int64_t *us)
{
	static const char *const sfx[] = { "us", "ms", "s", NULL };
	static const int64_t mul[] = { 1, 1000, 1000000 };

	return config_parse_scaled(s, us, sfx, mul, 1000000);
}

int
config_parse_size(const char *s, int64_t *bytes)
{
	static const char *const sfx[] = { "k", "kb", "m", "mb", "g", "gb", NULL };
	static const int64_t mul[] = { 1024, 1024, 1024 * 1024, 1024 * 1024, GB, GB };

	return config_parse_scaled(s, bytes, sfx, mul, 1);
}

int
config_parse_bool(const char *s, int *b)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcasecmp(s, "true") ||
	    !strcmp(s, "1"))
		*b = 1;
	else if (!strcasecmp(s, "no") || !strcasecmp(s, "off") ||
	    !strcasecmp(s, "false") || !strcmp(s, "0"))
		*b = 0;
	else
		return -1;
	return 0;
}

/*
 * HOST:PORT, [ADDRESS]:PORT or PORT alone ("" = off).  The port is checked
 * here, or 99999 would be bound as 34463; the host resolves at -t and start.
 * What config_listen_split() takes off the end (" proxy_protocol") is not
 * seen here.
 */
static int
config_check_listen(const char *v, char *why, size_t whylen)
{
	const char	*port = strrchr(v, ':');

	if (*v == '\0')
		return 0;
	if (v[0] == '[' && (port == NULL || port[-1] != ']')) {
		snprintf(why, whylen, "'%s' is not [ADDRESS]:PORT", v);
		return -1;
	}
	port = port != NULL ? port + 1 : v;
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port)) {
		snprintf(why, whylen, "'%s': port '%s' is not a number", v, port);
		return -1;
	}
	if (strlen(port) > 5 || atoi(port) < 1 || atoi(port) > 65535) {
		snprintf(why, whylen, "'%s': port %s is out of range (1 to 65535)", v, port);
		return -1;
	}
	return 0;
}

/*
 * "HOST:PORT [proxy_protocol]": the address into addr (addrlen bytes), and
 * whether the listener reads a PROXY header first into *proxy.
 */
static int
config_listen_split(const char *v, char *addr, size_t addrlen, int *proxy,
    char *why, size_t whylen)
{
	size_t	 n = strcspn(v, " \t");
	char	*opts, *tok, *save = NULL;

	*proxy = 0;
	if (n >= addrlen) {
		snprintf(why, whylen, "value too long");
		return -1;
	}
	memcpy(addr, v, n);
	addr[n] = '\0';
	if ((opts = strdup(v + n)) == NULL)
		fatal("strdup");
	for (tok = strtok_r(opts, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		if (strcmp(tok, "proxy_protocol") != 0 || *proxy || addr[0] == '\0') {
			snprintf(why, whylen, "'%s': unknown or repeated listener option '%s'"
			    " (the one option is proxy_protocol)", v, tok);
			free(opts);
			return -1;
		}
		*proxy = 1;
	}
	free(opts);
	return config_check_listen(addr, why, whylen);
}

static int
config_check_redis_url(const char *v, char *why, size_t whylen)
{
	struct redis_url	 u;
	int			 rv = redis_url_parse(v, &u, why, whylen);

	explicit_bzero(&u, sizeof(u));	/* it may hold the password */
	return rv;
}

static int
config_check_cidr(const char *v, char *why, size_t whylen)
{
	if (util_cidr_valid(v))
		return 0;
	snprintf(why, whylen, "'%s' is not an address or CIDR block", v);
	return -1;
}

static int
config_check_proxy_cidr(const char *v, char *why, size_t whylen)
{
	struct proxy_cidr	 pc;

	if (proxy_cidr_parse(v, &pc) == 0)
		return 0;
	snprintf(why, whylen, "'%s' is not an address or CIDR block (ADDR or ADDR/BITS)", v);
	return -1;
}

static int
config_check_log_format(const char *v, char *why, size_t whylen)
{
	if (log_format_parse(v) != -1)
		return 0;
	snprintf(why, whylen, "'%s' is not text or json", v);
	return -1;
}

int
config_on_demand(const struct rt_config *conf)
{
	return conf->c_redis_subscribe != NULL && strcmp(conf->c_redis_subscribe, "on_demand") == 0;
}

static int
config_check_subscribe(const char *v, char *why, size_t whylen)
{
	if (strcmp(v, "patterns") == 0 || strcmp(v, "on_demand") == 0)
		return 0;
	snprintf(why, whylen, "'%s' is not patterns or on_demand", v);
	return -1;
}

/* The F_ check of k on one value (a list: on each entry). */
static int
config_check(const struct conf_key *k, const char *v, char *why, size_t whylen)
{
	if (k->k_flags & F_HOSTPORT)
		return config_check_listen(v, why, whylen);
	if (k->k_flags & F_REDIS_URL)
		return config_check_redis_url(v, why, whylen);
	if (k->k_flags & F_CIDR)
		return config_check_cidr(v, why, whylen);
	if (k->k_flags & F_PROXY_CIDR)
		return config_check_proxy_cidr(v, why, whylen);
	if (k->k_flags & F_LOG_FORMAT)
		return config_check_log_format(v, why, whylen);
	if (k->k_flags & F_SUBSCRIBE)
		return config_check_subscribe(v, why, whylen);
	if ((k->k_flags & F_FWD_HEADER) && strcasecmp(v, "x-forwarded-for") != 0 &&
	    strcasecmp(v, "forwarded") != 0) {
		snprintf(why, whylen, "'%s' is not x-forwarded-for or forwarded", v);
		return -1;
	}
	return 0;
}

static void
config_list_free(struct rt_strlist *l)
{
	int	 i;

	for (i = 0; i < l->sl_count; i++)
		free(l->sl_items[i]);
	l->sl_count = 0;
}

static int
config_list_set(struct rt_strlist *l, const struct conf_key *k, const char *v,
    char *err, size_t errlen)
{
	char	*copy, *p, *tok, *save = NULL;

	config_list_free(l);
	if ((copy = strdup(v)) == NULL)
		fatal("strdup");
	for (p = copy; (tok = strtok_r(p, " \t,", &save)) != NULL; p = NULL) {
		if (l->sl_count == CONF_LIST_MAX) {
			snprintf(err, errlen, "more than %d values", CONF_LIST_MAX);
			free(copy);
			return -1;
		}
		if (config_check(k, tok, err, errlen) == -1) {
			free(copy);
			return -1;
		}
		if ((l->sl_items[l->sl_count++] = strdup(tok)) == NULL)
			fatal("strdup");
	}
	free(copy);
	return 0;
}

/* listen, listen_tls: the address, and the proxy_protocol option beside it. */
static int
config_listen_proxy(const struct rt_config *conf, const struct conf_key *k)
{
	return k->k_off == OFF(c_listen) ? conf->c_listen_proxy : conf->c_listen_tls_proxy;
}

static int
config_set_listen(struct rt_config *conf, const struct conf_key *k, const char *v,
    char *err, size_t errlen)
{
	char	 addr[CONF_STR_MAX + 1], **field = (char **)((char *)conf + k->k_off);
	int	 proxy;

	if (config_listen_split(v, addr, sizeof(addr), &proxy, err, errlen) == -1)
		return -1;
	free(*field);
	if ((*field = strdup(addr)) == NULL)
		fatal("strdup");
	if (k->k_off == OFF(c_listen))
		conf->c_listen_proxy = proxy;
	else
		conf->c_listen_tls_proxy = proxy;
	return 0;
}

/* Set one key from its text value; err gets the reason on failure. */
static int
config_set(struct rt_config *conf, const struct conf_key *k, const char *v,
    char *err, size_t errlen)
{
	void	*field = (char *)conf + k->k_off;
	int64_t	 n = 0;
	int	 b;
	char	*end;
	long long ll;

	switch (k->k_type) {
	case CT_STR:
		if (strlen(v) > CONF_STR_MAX) {
			snprintf(err, errlen, "value too long");
			return -1;
		}
		if (k->k_flags & F_HOSTPORT)
			return config_set_listen(conf, k, v, err, errlen);
		if (config_check(k, v, err, errlen) == -1)
			return -1;
		free(*(char **)field);
		if ((*(char **)field = strdup(v)) == NULL)
			fatal("strdup");
		return 0;
	case CT_INT:
		errno = 0;
		ll = strtoll(v, &end, 10);
		/* digits only (a '-' for the range check to name): not "+5", " 5" */
		if ((!isdigit((unsigned char)*v) && *v != '-') || *end != '\0' || errno != 0) {
			snprintf(err, errlen, "'%s' is not a number", v);
			return -1;
		}
		n = ll;
		break;
	case CT_SIZE:
		if (config_parse_size(v, &n) == -1) {
			snprintf(err, errlen, "'%s' is not a size (e.g. 512, 64k, 1m)", v);
			return -1;
		}
		break;
	case CT_DURATION:
		if (config_parse_duration(v, &n) == -1) {
			snprintf(err, errlen, "'%s' is not a duration (e.g. 500ms, 30s, 5m)", v);
			return -1;
		}
		break;
	case CT_USEC:
		if (config_parse_usec(v, &n) == -1) {
			snprintf(err, errlen, "'%s' is not a duration (e.g. 0, 500us, 2ms)", v);
			return -1;
		}
		break;
	case CT_BOOL:
		if (config_parse_bool(v, &b) == -1) {
			snprintf(err, errlen, "'%s' is not yes or no", v);
			return -1;
		}
		*(int *)field = b;
		return 0;
	case CT_LIST:
		return config_list_set(field, k, v, err, errlen);
	case CT_LOGLEVEL:
		if ((b = log_level_parse(v)) == -1) {
			snprintf(err, errlen, "'%s' is not one of debug, info, warning, error", v);
			return -1;
		}
		*(int *)field = b;
		return 0;
	}
	if (n < k->k_min || n > k->k_max) {
		snprintf(err, errlen, "'%s' is out of range (%lld to %lld%s)", v,
		    (long long)k->k_min, (long long)k->k_max,
		    k->k_type == CT_DURATION ? " ms" : k->k_type == CT_USEC ? " us" :
		    k->k_type == CT_SIZE ? " bytes" : "");
		return -1;
	}
	if (k->k_type == CT_INT)
		*(int *)field = (int)n;
	else
		*(int64_t *)field = n;
	return 0;
}

void
config_defaults(struct rt_config *conf)
{
	char	 err[256];
	int	 i;

	memset(conf, 0, sizeof(*conf));
	for (i = 0; i < NKEYS; i++)
		if (config_set(conf, &conf_keys[i], conf_keys[i].k_default,
		    err, sizeof(err)) == -1)
			fatalx("bad default for %s: %s", conf_keys[i].k_name, err);
}

void
config_free(struct rt_config *conf)
{
	int	 i;

	for (i = 0; i < NKEYS; i++) {
		void *field = (char *)conf + conf_keys[i].k_off;

		if (conf_keys[i].k_type == CT_STR)
			free(*(char **)field);
		else if (conf_keys[i].k_type == CT_LIST)
			config_list_free(field);
	}
	for (i = 0; conf->c_where != NULL && i < NKEYS; i++)
		free(conf->c_where[i]);
	free(conf->c_where);
	for (i = 0; i < conf->c_nnotes; i++)
		free(conf->c_notes[i]);
	free(conf->c_notes);
	chan_table_free(conf->c_namespaces);
	free(conf->c_file);
	memset(conf, 0, sizeof(*conf));
}

/* Split a line into key and value in place; returns 0 for blank/comment. */
static int
config_split(char *line, char **key, char **val)
{
	char	*p, *e;

	for (p = line; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0' || *p == '#')
		return 0;
	*key = p;
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	if (*p != '\0')
		*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	/* "value" in double quotes keeps spaces and '#'; \" and \\ escape */
	if (*p == '"') {
		char	*d = p;

		for (e = p + 1; *e != '\0' && *e != '"'; e++) {
			if (*e == '\\' && (e[1] == '"' || e[1] == '\\'))
				e++;
			*d++ = *e;
		}
		if (*e == '"') {
			*d = '\0';
			*val = p;
			return 1;
		}
		return -1;	/* no closing quote */
	}
	/* a '#' after whitespace starts a comment */
	for (e = p; *e != '\0'; e++)
		if (*e == '#' && e > p && (e[-1] == ' ' || e[-1] == '\t')) {
			*e = '\0';
			break;
		}
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	*val = p;
	return 1;
}

static int	config_include(struct rt_config *, const char *, const char *, int, int,
		    char *, size_t);
static FILE	*config_fopen(const char *, int, char *, size_t);

/* Depths below a file's (0 and up): text that may not pull in files. */
#define DEPTH_STRING	(-1)	/* config_parse_string(): a file's limits */
#define DEPTH_WIRE	(-2)	/* the master's settings: its canonical, escaped lines */

static void
config_add_note(struct rt_config *conf, const char *fmt, ...)
{
	char	 buf[CHAN_LINE_MAX + 256], **n;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((n = reallocarray(conf->c_notes, (size_t)conf->c_nnotes + 1, sizeof(*n))) == NULL)
		fatal("reallocarray");
	conf->c_notes = n;
	if ((n[conf->c_nnotes++] = strdup(buf)) == NULL)
		fatal("strdup");
}

/*
 * "namespace PATTERN WHO [options]": the first one replaces the default
 * table.  A file's line is at most CONF_STR_MAX bytes; the master's
 * settings (wire: its canonical form, "1d" written "86400000ms") up to
 * CHAN_LINE_MAX.
 */
static int
config_namespace(struct rt_config *conf, const char *val, const char *name, int lineno,
    int wire, char *err, size_t errlen)
{
	char	 msg[CHAN_LINE_MAX + 256];
	size_t	 max = wire ? CHAN_LINE_MAX : CONF_STR_MAX;
	int	 rv;

	if (strlen(val) > max) {
		snprintf(err, errlen, "%s:%d: namespace: line longer than %zu bytes", name,
		    lineno, max);
		return -1;
	}
	if (conf->c_namespaces == NULL && (conf->c_namespaces = chan_table_new()) == NULL)
		fatal("calloc");
	if ((rv = chan_table_add(conf->c_namespaces, val, name, lineno, msg,
	    sizeof(msg))) == -1) {
		snprintf(err, errlen, "%s:%d: namespace: %s", name, lineno, msg);
		return -1;
	}
	if (rv == 1)
		config_add_note(conf, "%s:%d: %s", name, lineno, msg);
	return 0;
}

static int
config_line(struct rt_config *conf, char *line, const char *name, int lineno,
    int depth, char *err, size_t errlen)
{
	const struct conf_key	*k;
	char			*key, *val, why[512];

	switch (config_split(line, &key, &val)) {
	case 0:
		return 0;
	case -1:
		snprintf(err, errlen, "%s:%d: %s: unterminated quoted value", name, lineno, key);
		return -1;
	}
	if (strcmp(key, "include") == 0) {
		if (*val == '\0') {
			snprintf(err, errlen, "%s:%d: include: missing file", name, lineno);
			return -1;
		}
		return config_include(conf, val, name, lineno, depth, err, errlen);
	}
	if (strcmp(key, "namespace") == 0)
		return config_namespace(conf, val, name, lineno, depth == DEPTH_WIRE, err, errlen);
	if ((k = config_find(key)) == NULL) {
		snprintf(err, errlen, "%s:%d: unknown key '%.64s'", name, lineno, key);
		return -1;
	}
	if (*val == '\0' && k->k_type != CT_STR && k->k_type != CT_LIST) {
		snprintf(err, errlen, "%s:%d: %s: missing value", name, lineno, key);
		return -1;
	}
	if (config_set(conf, k, val, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s:%d: %s: %s", name, lineno, key, why);
		return -1;
	}
	config_note(conf, k, "%s:%d", name, lineno);
	return 0;
}

static int
config_parse_text(struct rt_config *conf, const char *name, const char *text,
    size_t len, int depth, char *err, size_t errlen)
{
	char		 line[CONF_WIRE_LINE_MAX];
	/* a file's lines; the master's settings may be longer, values escaped */
	size_t		 max = depth == DEPTH_WIRE ? sizeof(line) : CONF_STR_MAX + 256;
	size_t		 pos = 0, n;
	const char	*nl;
	int		 lineno = 0;

	while (pos < len) {
		lineno++;
		nl = memchr(text + pos, '\n', len - pos);
		n = (nl != NULL ? (size_t)(nl - text) : len) - pos;
		if (n >= max) {
			snprintf(err, errlen, "%s:%d: line too long", name, lineno);
			return -1;
		}
		if (memchr(text + pos, '\0', n) != NULL) {
			snprintf(err, errlen, "%s:%d: NUL byte in line", name, lineno);
			return -1;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		/* CRLF files: the CR is no part of the line (a blank one is blank) */
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		if (config_line(conf, line, name, lineno, depth, err, errlen) == -1)
			return -1;
		pos += n + 1;
	}
	return 0;
}

static int
config_env_set(struct rt_config *conf, const struct conf_key *k, const char *envname,
    const char *v, char *err, size_t errlen)
{
	char	 why[512];

	if (config_set(conf, k, v, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "environment %s: %s", envname, why);
		return -1;
	}
	config_note(conf, k, "environment %s", envname);
	return 0;
}

int
config_apply_env(struct rt_config *conf, char *err, size_t errlen)
{
	char		 envname[128];
	const char	*v;
	int		 i, j;

	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		snprintf(envname, sizeof(envname), "REALTIMED_%s", k->k_name);
		for (j = 10; envname[j] != '\0'; j++)
			envname[j] = toupper((unsigned char)envname[j]);
		if ((v = getenv(envname)) != NULL &&
		    config_env_set(conf, k, envname, v, err, errlen) == -1)
			return -1;
	}
	/* the names the product sheet's .env file uses win over everything */
	if ((v = getenv("JWT_SECRET")) != NULL && *v != '\0' &&
	    config_env_set(conf, config_find("jwt_secret"), "JWT_SECRET", v, err, errlen) == -1)
		return -1;
	if ((v = getenv("REDIS_URL")) != NULL && *v != '\0' &&
	    config_env_set(conf, config_find("redis_url"), "REDIS_URL", v, err, errlen) == -1)
		return -1;
	return 0;
}

/*
 * A secret's _file key (jwt_secret_file, control_secret_file), when the
 * secret itself (or its environment variable) left it empty.
 */
static int
config_read_secret_file(struct rt_config *conf, char **secret, const char *key,
    const char *filekey, const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	char	 buf[CONF_STR_MAX + 2], why[CONF_STR_MAX + 64];
	size_t	 n;

	if ((*secret)[0] != '\0' || path[0] == '\0')
		return 0;
	if ((fp = config_fopen(path, 1, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s: %s %s", config_where(conf, filekey), filekey, why);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0 || n > CONF_STR_MAX || memchr(buf, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: %s %s: empty, too long or binary",
		    config_where(conf, filekey), filekey, path);
		return -1;
	}
	free(*secret);
	if ((*secret = strdup(buf)) == NULL)
		fatal("strdup");
	config_note(conf, config_find(key), "%s (%s %s)", config_where(conf, filekey),
	    filekey, path);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static int
config_read_secret(struct rt_config *conf, char *err, size_t errlen)
{
	if (config_read_secret_file(conf, &conf->c_jwt_secret, "jwt_secret",
	    "jwt_secret_file", conf->c_jwt_secret_file, err, errlen) == -1)
		return -1;
	if (config_read_secret_file(conf, &conf->c_control_secret, "control_secret",
	    "control_secret_file", conf->c_control_secret_file, err, errlen) == -1)
		return -1;
	return config_read_secret_file(conf, &conf->c_publish_api_key, "publish_api_key",
	    "publish_api_key_file", conf->c_publish_api_key_file, err, errlen);
}

/*
 * node_id unset: "HOST:PORT" of this machine's name and the first
 * listener, with any character a node id cannot hold made '-'.
 */
static void
config_default_node_id(struct rt_config *conf)
{
	char		 host[256], id[CTL_NODE_MAX + 1];
	const char	*l = conf->c_listen[0] != '\0' ? conf->c_listen : conf->c_listen_tls;
	const char	*port = strrchr(l, ':');
	size_t		 i;

	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* a long host name keeps its first part, the port stays */
	snprintf(id, sizeof(id), "%.*s%s", (int)(CTL_NODE_MAX - (port != NULL ? strlen(port) : 0)),
	    host, port != NULL && strlen(port) < CTL_NODE_MAX ? port : "");
	for (i = 0; id[i] != '\0'; i++)
		if (!ctl_node_valid(id + i, 1))
			id[i] = '-';
	free(conf->c_node_id);
	if ((conf->c_node_id = strdup(id)) == NULL)
		fatal("strdup");
}

/* What admin_open() will need of admin_socket and its mode, found by -t too. */
static int
config_admin_check(const struct rt_config *conf, char *err, size_t errlen)
{
	const char	*mode = conf->c_admin_socket_mode;
	char		*end;
	long		 m;

	m = strtol(mode, &end, 8);
	if (*mode == '\0' || *end != '\0' || m < 0 || m > 0777) {
		snprintf(err, errlen, "%s: admin_socket_mode '%s': not an octal mode (0 to 0777)",
		    config_where(conf, "admin_socket_mode"), mode);
		return -1;
	}
	if (strlen(conf->c_admin_socket) > ADMIN_PATH_MAX) {
		snprintf(err, errlen, "%s: admin_socket: longer than %d bytes",
		    config_where(conf, "admin_socket"), ADMIN_PATH_MAX);
		return -1;
	}
	return 0;
}

int
config_validate(struct rt_config *conf, char *err, size_t errlen)
{
	const char	*alg = conf->c_jwt_algorithm;

	if (conf->c_namespaces == NULL && (conf->c_namespaces = chan_table_default()) == NULL)
		fatalx("the default namespace table does not build");
	if (conf->c_heartbeat_timeout == 0)
		conf->c_heartbeat_timeout = 2 * conf->c_heartbeat_interval;
	if (conf->c_heartbeat_timeout < conf->c_heartbeat_interval) {
		snprintf(err, errlen, "%s: heartbeat_timeout must not be shorter than heartbeat_interval",
		    config_where(conf, "heartbeat_timeout"));
		return -1;
	}
	if (conf->c_max_message_memory < conf->c_max_message_size) {
		snprintf(err, errlen, "%s: max_message_memory must not be smaller than max_message_size",
		    config_where(conf, "max_message_memory"));
		return -1;
	}
	if (conf->c_ws_path[0] != '/' ||
	    (conf->c_echo_path[0] != '\0' && conf->c_echo_path[0] != '/')) {
		snprintf(err, errlen, "%s: ws_path and echo_path must start with '/'",
		    config_where(conf, conf->c_ws_path[0] != '/' ? "ws_path" : "echo_path"));
		return -1;
	}
	if (conf->c_node_id[0] == '\0')
		config_default_node_id(conf);
	if (!ctl_node_valid(conf->c_node_id, strlen(conf->c_node_id))) {
		snprintf(err, errlen, "%s: node_id '%s': 1-%d characters of A-Z a-z 0-9 _ . : @ -",
		    config_where(conf, "node_id"), conf->c_node_id, CTL_NODE_MAX);
		return -1;
	}
	if (!chan_name_valid(conf->c_control_channel, strlen(conf->c_control_channel))) {
		snprintf(err, errlen, "%s: control_channel '%s': not a channel name",
		    config_where(conf, "control_channel"), conf->c_control_channel);
		return -1;
	}
	if (conf->c_control_secret[0] != '\0' && strlen(conf->c_control_secret) < 16) {
		snprintf(err, errlen, "%s: control_secret: at least 16 bytes",
		    config_where(conf, "control_secret"));
		return -1;
	}
	if (conf->c_publish_api_key[0] != '\0' && strlen(conf->c_publish_api_key) < 16) {
		snprintf(err, errlen, "%s: publish_api_key: at least 16 bytes",
		    config_where(conf, "publish_api_key"));
		return -1;
	}
	if (conf->c_max_publish_batch > conf->c_max_publish_pending) {
		snprintf(err, errlen, "%s: max_publish_batch (%d) must not be larger than "
		    "max_publish_pending (%d): such a batch could never be taken",
		    config_where(conf, "max_publish_batch"), conf->c_max_publish_batch,
		    conf->c_max_publish_pending);
		return -1;
	}
	if (conf->c_drain_period > conf->c_shutdown_timeout) {
		snprintf(err, errlen, "%s: drain_period must not be longer than shutdown_timeout",
		    config_where(conf, "drain_period"));
		return -1;
	}
	if (conf->c_listen[0] == '\0' &&
	    (conf->c_listen_tls[0] == '\0' || conf->c_tls_certificate[0] == '\0')) {
		snprintf(err, errlen, "%s: no listener: set listen, or listen_tls and tls_certificate",
		    conf->c_file ? conf->c_file : "config");
		return -1;
	}
	if (config_admin_check(conf, err, errlen) == -1)
		return -1;
	if (auth_alg_public_key(alg) == -1) {
		snprintf(err, errlen, "%s: jwt_algorithm '%s' is not one of HS256, HS384, HS512, "
		    "RS256, RS384, RS512, ES256, ES384, ES512", config_where(conf, "jwt_algorithm"), alg);
		return -1;
	}
	return 0;
}

/* 0 when path can be read, or appended to; -1 with errno.  O_NONBLOCK: a FIFO must not hang us. */
static int
config_file_usable(const char *path, int write)
{
	char		 dir[CONF_STR_MAX + 1];
	const char	*slash;
	struct stat	 st;
	int		 fd, rv = 0, saved;

	if ((fd = open(path, (write ? O_WRONLY | O_APPEND : O_RDONLY) | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC)) == -1) {
		if (!write || errno != ENOENT)
			return -1;
		/* no file yet: the daemon will create it, -t does not */
		if ((slash = strrchr(path, '/')) == NULL)
			return access(".", W_OK | X_OK);
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
		return access(dir, W_OK | X_OK);
	}
	if (fstat(fd, &st) == -1)
		rv = -1;
	else if (!write && !S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		rv = -1;
	}
	saved = errno;
	close(fd);
	errno = saved;
	return rv;
}

int
config_check_file(const struct rt_config *conf, const char *key, int write,
    char *err, size_t errlen)
{
	const struct conf_key	*k = config_find(key);
	const char		*path;

	if (k == NULL || k->k_type != CT_STR)
		fatalx("%s: %s is not a file key", __func__, key);
	path = *(char *const *)((const char *)conf + k->k_off);
	if (path[0] == '\0' || config_file_usable(path, write) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s %s: %s", config_where(conf, key), key, path,
	    errno == EINVAL ? "not a regular file" : strerror(errno));
	return -1;
}

int
config_check_files(const struct rt_config *conf, char *err, size_t errlen)
{
	if (tls_enabled(conf) &&
	    (config_check_file(conf, "tls_certificate", 0, err, errlen) == -1 ||
	    config_check_file(conf, "tls_certificate_key", 0, err, errlen) == -1))
		return -1;
	if (strncmp(conf->c_jwt_algorithm, "HS", 2) != 0 &&
	    config_check_file(conf, "jwt_public_key", 0, err, errlen) == -1)
		return -1;
	return 0;
}

static int
config_parse_depth(struct rt_config *conf, const char *name, const char *text,
    size_t len, int depth, char *err, size_t errlen)
{
	config_defaults(conf);
	if ((conf->c_file = strdup(name)) == NULL)
		fatal("strdup");
	return config_parse_text(conf, name, text, len, depth, err, errlen);
}

int
config_parse_string(struct rt_config *conf, const char *name, const char *text,
    size_t len, char *err, size_t errlen)
{
	/* text from a string (tests, fuzzing) may not pull in files */
	return config_parse_depth(conf, name, text, len, DEPTH_STRING, err, errlen);
}

/*
 * path opened for reading; with regular, only if it is a regular file: a
 * FIFO with no writer would hang -t, or the master in a reload (O_NONBLOCK:
 * the open does not).  The main file may be a pipe (-c /dev/stdin).  NULL
 * with "path: reason".
 */
static FILE *
config_fopen(const char *path, int regular, char *err, size_t errlen)
{
	struct stat	 st;
	FILE		*fp;
	int		 fd;

	if (!regular) {
		if ((fp = fopen(path, "r")) == NULL)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return fp;
	}
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", path, S_ISDIR(st.st_mode) ?
		    strerror(EISDIR) : "not a regular file");
		close(fd);
		return NULL;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
	}
	return fp;
}

/* The whole file into a malloc'd buffer; -1 with "path: reason". */
static int
config_read_file(const char *path, int regular, char **bufp, size_t *lenp, char *err,
    size_t errlen)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len = 0, cap = 0, n;

	if ((fp = config_fopen(path, regular, err, errlen)) == NULL)
		return -1;
	for (;;) {
		if (len + 4096 > cap) {
			if (cap >= 16 * 1024 * 1024) {
				snprintf(err, errlen, "%s: file too large", path);
				fclose(fp);
				free(buf);
				return -1;
			}
			cap = cap ? cap * 2 : 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				fatal("realloc");
		}
		if ((n = fread(buf + len, 1, cap - len, fp)) == 0)
			break;
		len += n;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		free(buf);
		return -1;
	}
	fclose(fp);
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* The directory glob() could not read while matching an include, and why. */
static char	config_glob_path[CONF_STR_MAX + 256];
static int	config_glob_errno;

/*
 * A directory of the pattern that is missing is no match (an empty or
 * absent conf.d is fine); one that exists but cannot be read is an error,
 * or its files would be skipped without a word.
 */
static int
config_glob_error(const char *path, int eerrno)
{
	if (eerrno == ENOENT || eerrno == ENOTDIR)
		return 0;
	snprintf(config_glob_path, sizeof(config_glob_path), "%s", path);
	config_glob_errno = eerrno;
	return 1;
}

/*
 * "include PATTERN": every file the glob matches, in order, relative to
 * the directory of the file that includes it.  Nesting is bounded.
 */
static int
config_include(struct rt_config *conf, const char *pattern, const char *name, int lineno,
    int depth, char *err, size_t errlen)
{
	char	 full[CONF_STR_MAX + 256], *buf;
	const char *slash;
	glob_t	 g;
	size_t	 i, len;
	int	 rv = 0, grv;

	if (depth < 0) {
		snprintf(err, errlen, "%s:%d: include is not allowed here", name, lineno);
		return -1;
	}
	if (depth >= CONF_INCLUDE_DEPTH) {
		snprintf(err, errlen, "%s:%d: include nested more than %d deep", name, lineno,
		    CONF_INCLUDE_DEPTH);
		return -1;
	}
	if (pattern[0] != '/' && (slash = strrchr(name, '/')) != NULL)
		grv = snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - name), name, pattern);
	else
		grv = snprintf(full, sizeof(full), "%s", pattern);
	if (grv < 0 || (size_t)grv >= sizeof(full)) {
		snprintf(err, errlen, "%s:%d: include: path too long", name, lineno);
		return -1;
	}
	config_glob_errno = 0;
	grv = glob(full, 0, config_glob_error, &g);
	if (grv == GLOB_ABORTED && config_glob_errno != 0) {
		snprintf(err, errlen, "%s:%d: include %s: %s: %s", name, lineno, pattern,
		    config_glob_path, strerror(config_glob_errno));
		globfree(&g);
		return -1;
	}
	if (grv == GLOB_NOMATCH)
		return 0;	/* an empty conf.d is fine, and a missing one */
	if (grv != 0) {
		snprintf(err, errlen, "%s:%d: include %s: cannot read", name, lineno, full);
		return -1;
	}
	for (i = 0; i < g.gl_pathc && rv == 0; i++) {
		if ((rv = config_read_file(g.gl_pathv[i], 1, &buf, &len, err, errlen)) == -1)
			break;
		rv = config_parse_text(conf, g.gl_pathv[i], buf ? buf : "", len, depth + 1,
		    err, errlen);
		free(buf);
	}
	globfree(&g);
	return rv;
}

/* Settings that work but contradict each other: said once, at load. */
static void
config_warn(const struct rt_config *conf)
{
	int	 i;

	for (i = 0; i < conf->c_nnotes; i++)
		log_warnx("%s", conf->c_notes[i]);
	if (conf->c_client_messages_burst < conf->c_max_subscriptions + 20)
		log_warnx("%s: client_messages_burst %d is below max_subscriptions + 20 (%d): "
		    "a client that subscribes to all its channels at once is closed for flooding",
		    conf->c_file ? conf->c_file : "config", conf->c_client_messages_burst,
		    conf->c_max_subscriptions + 20);
}

int
config_load(struct rt_config *conf, const char *path, char *err, size_t errlen)
{
	char	*buf = NULL;
	size_t	 len = 0;
	int	 rv;

	config_defaults(conf);
	if (path == NULL) {
		if (config_apply_env(conf, err, errlen) == -1)
			return -1;
		return config_validate(conf, err, errlen);
	}
	if ((conf->c_file = strdup(path)) == NULL)
		fatal("strdup");
	if (config_read_file(path, 0, &buf, &len, err, errlen) == -1)
		return -1;
	rv = config_parse_text(conf, path, buf ? buf : "", len, 0, err, errlen);
	free(buf);
	if (rv == 0)
		rv = config_apply_env(conf, err, errlen);
	if (rv == 0)
		rv = config_read_secret(conf, err, errlen);
	if (rv == 0)
		rv = config_validate(conf, err, errlen);
	if (rv == 0)
		config_warn(conf);
	return rv;
}

struct auth_ctx *
config_auth_new(const struct rt_config *conf, char *err, size_t errlen)
{
	struct auth_params	 p;
	struct auth_ctx		*ctx;
	const char		*file = conf->c_jwt_public_key;
	char			*pem = NULL, why[512];
	size_t			 pemlen = 0;

	memset(&p, 0, sizeof(p));
	p.ap_algorithm = conf->c_jwt_algorithm;
	p.ap_secret = conf->c_jwt_secret;
	p.ap_secretlen = conf->c_jwt_secret != NULL ? strlen(conf->c_jwt_secret) : 0;
	p.ap_leeway = conf->c_jwt_leeway;
	p.ap_issuer = conf->c_jwt_issuer;
	p.ap_audience = conf->c_jwt_audience;
	p.ap_require_exp = conf->c_jwt_require_exp;
	p.ap_cache_size = (size_t)conf->c_token_cache;
	if (conf->c_namespaces != NULL)
		p.ap_claims = chan_table_claims(conf->c_namespaces);
	/* a stale jwt_public_key does not matter to an HS* configuration */
	if (auth_alg_public_key(conf->c_jwt_algorithm) == 1 && file != NULL &&
	    *file != '\0') {
		if (config_read_file(file, 1, &pem, &pemlen, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "jwt_public_key %s", why);
			return NULL;
		}
		p.ap_public_key = pem;
		p.ap_public_keylen = pemlen;
		p.ap_public_key_name = file;
	}
	ctx = auth_new(&p, err, errlen);
	free(pem);
	return ctx;
}

/*
 * url with the password of its userinfo ("scheme://user:PASSWORD@host" or
 * "scheme://PASSWORD@host") shown as "(set)", for printing.
 */
static void
config_url_masked(const char *url, char *out, size_t outlen)
{
	const char	*auth, *at, *end, *colon;

	if ((auth = strstr(url, "://")) == NULL) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	auth += 3;
	/* the password may hold '#' or '?': the userinfo ends at the last '@'
	 * before the path */
	end = auth + strcspn(auth, "/");
	if ((at = memrchr(auth, '@', (size_t)(end - auth))) == NULL) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	colon = memchr(auth, ':', (size_t)(at - auth));
	snprintf(out, outlen, "%.*s(set)%s", (int)((colon != NULL ? colon + 1 : auth) - url),
	    url, at);
}

/* Append v to line, quoted and escaped when it needs to be. */
static int
config_quote(char *out, size_t outlen, const char *v)
{
	size_t	 n = 0;

	if (v[0] != '\0' && strpbrk(v, " \t#\"\\") == NULL)
		return snprintf(out, outlen, "%s", v);
	if (outlen < 3)
		return 0;
	out[n++] = '"';
	for (; *v != '\0' && n + 3 < outlen; v++) {
		if (*v == '"' || *v == '\\')
			out[n++] = '\\';
		out[n++] = *v;
	}
	/* the lines are sized for every value escaped: a cut one would be read
	 * back as another value (a shorter secret) */
	if (*v != '\0')
		fatalx("%s: a value does not fit its line", __func__);
	out[n++] = '"';
	out[n] = '\0';
	return (int)n;
}

static void
config_emit(const struct rt_config *conf, int secrets,
    void (*emit)(const char *, void *), void *arg);

void
config_dump(const struct rt_config *conf, void (*emit)(const char *, void *), void *arg)
{
	config_emit(conf, 0, emit, arg);
}

static void
config_text_line(const char *line, void *arg)
{
	struct { char *buf; size_t len, cap; } *t = arg;
	size_t	 n = strlen(line);

	if (t->len + n + 2 > t->cap) {
		t->cap = (t->len + n + 2) * 2;
		if ((t->buf = realloc(t->buf, t->cap)) == NULL)
			fatal("realloc");
	}
	memcpy(t->buf + t->len, line, n);
	t->len += n;
	t->buf[t->len++] = '\n';
	t->buf[t->len] = '\0';
}

char *
config_serialize(const struct rt_config *conf, size_t *len)
{
	struct { char *buf; size_t len, cap; } t = { NULL, 0, 0 };

	config_emit(conf, 1, config_text_line, &t);
	*len = t.len;
	return t.buf;
}

struct config_ns_emit {
	void	(*ne_emit)(const char *, void *);
	void	*ne_arg;
};

/* The table in effect, the default included, as namespace lines. */
static void
config_ns_line(const char *line, void *arg)
{
	const struct config_ns_emit	*ne = arg;
	char				 buf[CHAN_LINE_MAX + 16];

	if ((size_t)snprintf(buf, sizeof(buf), "namespace %s", line) >= sizeof(buf))
		fatalx("%s: a namespace line does not fit", __func__);
	ne->ne_emit(buf, ne->ne_arg);
}

static void
config_emit(const struct rt_config *conf, int secrets,
    void (*emit)(const char *, void *), void *arg)
{
	char		 line[CONF_WIRE_LINE_MAX];
	int		 i, j, n;

	for (i = 0; i < NKEYS; i++) {
		const struct conf_key	*k = &conf_keys[i];
		const void		*field = (const char *)conf + k->k_off;

		n = snprintf(line, sizeof(line), "%s ", k->k_name);
		switch (k->k_type) {
		case CT_STR:
			if (!secrets && (k->k_flags & F_SECRET) && **(char *const *)field)
				snprintf(line + n, sizeof(line) - n, "(set)");
			else if ((k->k_flags & F_HOSTPORT) &&
			    config_listen_proxy(conf, k)) {
				char	 v[CONF_STR_MAX + 32];

				snprintf(v, sizeof(v), "%s proxy_protocol", *(char *const *)field);
				config_quote(line + n, sizeof(line) - n, v);
			} else if (!secrets && (k->k_flags & F_REDIS_URL)) {
				char	 v[CONF_STR_MAX + 8];

				config_url_masked(*(char *const *)field, v, sizeof(v));
				config_quote(line + n, sizeof(line) - n, v);
			} else
				config_quote(line + n, sizeof(line) - n, *(char *const *)field);
			break;
		case CT_INT:
			snprintf(line + n, sizeof(line) - n, "%d", *(const int *)field);
			break;
		case CT_SIZE:
		case CT_DURATION:
		case CT_USEC:
			snprintf(line + n, sizeof(line) - n, "%lld%s",
			    (long long)*(const int64_t *)field,
			    k->k_type == CT_DURATION ? "ms" : k->k_type == CT_USEC ? "us" : "");
			break;
		case CT_BOOL:
			snprintf(line + n, sizeof(line) - n, "%s",
			    *(const int *)field ? "yes" : "no");
			break;
		case CT_LIST: {
			const struct rt_strlist *l = field;

			for (j = 0; j < l->sl_count && (size_t)n < sizeof(line); j++)
				n += snprintf(line + n, sizeof(line) - n, "%s%s",
				    j ? " " : "", l->sl_items[j]);
			if (l->sl_count == 0)
				snprintf(line + n, sizeof(line) - n, "\"\"");
			break;
		}
		case CT_LOGLEVEL:
			snprintf(line + n, sizeof(line) - n, "%s",
			    log_level_name(*(const int *)field));
			break;
		}
		emit(line, arg);
	}
	if (conf->c_namespaces != NULL) {
		struct config_ns_emit	 ne = { emit, arg };

		chan_table_lines(conf->c_namespaces, config_ns_line, &ne);
	}
}

/* Compare one key's value in two configurations. */
static int
config_same(const struct conf_key *k, const struct rt_config *a, const struct rt_config *b)
{
	const void	*fa = (const char *)a + k->k_off, *fb = (const char *)b + k->k_off;
	int		 i;

	switch (k->k_type) {
	case CT_STR:
		if ((k->k_flags & F_HOSTPORT) &&
		    config_listen_proxy(a, k) != config_listen_proxy(b, k))
			return 0;	/* proxy_protocol added or dropped */
		return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
	case CT_INT:
	case CT_BOOL:
	case CT_LOGLEVEL:
		return *(const int *)fa == *(const int *)fb;
	case CT_SIZE:
	case CT_DURATION:
	case CT_USEC:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	case CT_LIST: {
		const struct rt_strlist *la = fa, *lb = fb;

		if (la->sl_count != lb->sl_count)
			return 0;
		for (i = 0; i < la->sl_count; i++)
			if (strcmp(la->sl_items[i], lb->sl_items[i]) != 0)
				return 0;
		return 1;
	}
	}
	return 0;
}

/* Copy one key's value from src into dst (strings duplicated). */
static void
config_copy(const struct conf_key *k, struct rt_config *dst, const struct rt_config *src)
{
	void		*fd = (char *)dst + k->k_off;
	const void	*fs = (const char *)src + k->k_off;
	int		 i;

	switch (k->k_type) {
	case CT_STR:
		free(*(char **)fd);
		if ((*(char **)fd = strdup(*(char *const *)fs)) == NULL)
			fatal("strdup");
		break;
	case CT_INT:
	case CT_BOOL:
	case CT_LOGLEVEL:
		*(int *)fd = *(const int *)fs;
		break;
	case CT_SIZE:
	case CT_DURATION:
	case CT_USEC:
		*(int64_t *)fd = *(const int64_t *)fs;
		break;
	case CT_LIST: {
		struct rt_strlist	*ld = fd;
		const struct rt_strlist	*ls = fs;

		config_list_free(ld);
		for (i = 0; i < ls->sl_count; i++)
			if ((ld->sl_items[ld->sl_count++] = strdup(ls->sl_items[i])) == NULL)
				fatal("strdup");
		break;
	}
	}
}

static void
config_table_line(const char *line, void *arg)
{
	char	 msg[CHAN_LINE_MAX + 256];

	if (chan_table_add(arg, line, NULL, 0, msg, sizeof(msg)) == -1)
		fatalx("%s: namespace %s: %s", __func__, line, msg);
}

/* A table's copy, read back from its own lines. */
static struct chan_table *
config_table_copy(const struct chan_table *t)
{
	struct chan_table	*n;

	if ((n = chan_table_new()) == NULL)
		fatal("calloc");
	chan_table_lines(t, config_table_line, n);
	return n;
}

int
config_merge_reloadable(struct rt_config *live, const struct rt_config *next, int report)
{
	int	 i, restart = 0;

	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (config_same(k, live, next))
			continue;
		if (k->k_flags & F_RELOAD) {
			config_copy(k, live, next);
			if (report)
				log_info("reload: %s changed", k->k_name);
		} else {
			restart++;
			if (report)
				log_warnx("reload: %s changed, but takes effect only after a restart",
				    k->k_name);
		}
	}
	/* derived values follow their sources */
	live->c_heartbeat_timeout = next->c_heartbeat_timeout;
	if (next->c_namespaces != NULL && (live->c_namespaces == NULL ||
	    !chan_table_equal(live->c_namespaces, next->c_namespaces))) {
		chan_table_free(live->c_namespaces);
		live->c_namespaces = config_table_copy(next->c_namespaces);
		if (report)
			log_info("reload: namespaces changed (%d)",
			    chan_table_count(live->c_namespaces));
	}
	return restart;
}

int
config_key_reloadable(int i)
{
	return (i >= 0 && i < NKEYS) ? (conf_keys[i].k_flags & F_RELOAD) != 0 : 0;
}

void
config_from_master(struct rt_config *nc, const char *name, const char *text, size_t len)
{
	char	 err[512];

	/* our own serialization: failing to read it back is a bug, so exit */
	if (config_parse_depth(nc, name, text, len, DEPTH_WIRE, err, sizeof(err)) == -1 ||
	    config_validate(nc, err, sizeof(err)) == -1)
		fatalx("bad settings from the master: %s", err);
}
