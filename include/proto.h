#ifndef RT_PROTO_H
#define RT_PROTO_H

/*
 * The JSON messages of PROTOCOL.md (json-c).  Pure: requests are parsed from
 * bytes, replies are built as json-c objects for the caller to serialize
 * (JSON_C_TO_STRING_PLAIN) and frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/time.h>

#include <json-c/json.h>

#include "realtimed.h"

struct auth_user;
struct chan_table;

enum proto_type {
	PROTO_INVALID = 0,	/* see pr_error */
	PROTO_SUBSCRIBE,
	PROTO_UNSUBSCRIBE,
	PROTO_PING,
	PROTO_LIST_CHANNELS,
	PROTO_STATS,
	PROTO_AUTH,		/* pr_token */
};

#define PROTO_EPOCH_MAX		32	/* an epoch a client may send back */

struct proto_request {
	enum proto_type	 pr_type;
	/* for subscribe/unsubscribe: the channel (validated for length and
	 * characters only; the policy is channel.c's) */
	char		 pr_channel[RT_CHANNEL_MAX + 1];
	size_t		 pr_channel_len;
	/* PROTO_INVALID: what to answer, and which request it answers
	 * ("" when the type itself could not be read) */
	const char	*pr_error;
	char		 pr_request[32];
	int		 pr_has_channel;	/* pr_channel names the bad one */
	/* subscribe: "since":{"epoch":…,"offset":…} (absent or null: pr_has_since 0) */
	/* auth: the token, bounded by RT_TOKEN_MAX (pr_token_len 0: none) */
	char		 pr_token[RT_TOKEN_MAX + 1];
	size_t		 pr_token_len;
	int		 pr_has_since;
	char		 pr_since_epoch[PROTO_EPOCH_MAX + 1];
	uint64_t	 pr_since_offset;
};

/*
 * Parse one client text message.  Always fills req: PROTO_INVALID with
 * pr_error = "Invalid JSON", "Message must be a JSON object",
 * "Missing or invalid type", "Unknown message type",
 * "Missing or invalid channel" (missing, not a string, or not a valid
 * channel name) as the case may be.
 */
void	proto_parse(const char *buf, size_t len, struct proto_request *req);

/*
 * The JSON string body for bytes s, into dst (NULL: only count; at most 6
 * bytes out per byte in).  Control characters become \u00XX, invalid UTF-8
 * bytes U+FFFD each.
 */
size_t	proto_escape(char *dst, const unsigned char *s, size_t len);

/* ISO 8601 UTC with milliseconds of tv (NULL = now) into out. */
void	proto_timestamp(char *out, size_t outlen, const struct timeval *tv);

/*
 * Reply builders; each returns a new object with "type" first and
 * "timestamp" last.  tv NULL = now.  The replies of every handshake and
 * subscribe come as text instead (NUL-terminated, *len its length without
 * the NUL; free() it; NULL when out of memory).
 */
char	*proto_connected(const char *conn_id, const struct chan_table *t,
	    const struct auth_user *user, const struct timeval *tv, size_t *len);
/* type "subscribed"/"unsubscribed" */
char	*proto_subscribed(const char *type, const char *channel,
	    const struct timeval *tv, size_t *len);
struct json_object *proto_pong(const struct timeval *tv);
/* subscribed: array of channel names, reference taken */
/* {"type":"authenticated","user":…,"authorizedChannels":…,"expiresAt":…}: an auth that worked. */
char	*proto_authenticated(const struct chan_table *t,
	    const struct auth_user *user, const struct timeval *tv, size_t *len);
/* {"type":"token_expiring","expiresAt":…}: refresh with auth before it. */
struct json_object *proto_token_expiring(int64_t exp_ms, const struct timeval *tv);
struct json_object *proto_channels(const struct chan_table *t, const struct auth_user *user,
	    struct json_object *subscribed, const struct timeval *tv);
/* {"type":"unsubscribed","channel":…,"reason":…}: the server ended a subscription. */
struct json_object *proto_unsubscribed(const char *channel, const char *reason,
	    const struct timeval *tv);

struct proto_stats {
	long	ps_total;
	long	ps_authenticated;
	long	ps_anonymous;
	long	ps_subscriptions;
};
/* by_channel: object channel -> count, reference taken */
struct json_object *proto_stats(const struct proto_stats *st,
	    struct json_object *by_channel, const struct timeval *tv);
/* request and channel may be NULL */
struct json_object *proto_error(const char *message, const char *request,
	    const char *channel, const struct timeval *tv);

/*
 * The event message for a Redis payload, as text into out (outlen bytes,
 * not NUL-terminated):
 * {"type":"event","channel":"<c>","data":<payload>,"timestamp":"<ts>"}
 * The payload's bytes go in as they are when they are one valid JSON value
 * (surrounding whitespace allowed); otherwise they go in as a JSON string
 * (escaped; invalid UTF-8 bytes replaced by U+FFFD).  Returns the
 * message's length; when that is more than outlen, nothing is written
 * (snprintf's way: grow the buffer and call again).  out may be NULL when
 * outlen is 0.
 */
size_t	proto_event(char *out, size_t outlen, const char *channel, size_t chlen,
	    const char *payload, size_t plen, const struct timeval *tv);
/* The same with the event's position: ,"offset":N,"epoch":"E" after the timestamp. */
size_t	proto_event_at(char *out, size_t outlen, const char *channel, size_t chlen,
	    const char *payload, size_t plen, const struct timeval *tv,
	    const char *epoch, uint64_t offset);
/*
 * subscribed with a position: "epoch", "offset" (none when epoch is NULL:
 * the channel keeps no history), and "recovered" when recovered is 0 or 1
 * (-1: the subscribe had no since).
 */
char	*proto_subscribed_at(const char *channel, const char *epoch,
	    uint64_t offset, int recovered, const struct timeval *tv, size_t *len);

/* 1 if buf holds exactly one valid JSON value (RFC 8259). */
int	proto_json_valid(const char *buf, size_t len);
/* Bytes of the one JSON value at buf (leading whitespace included), 0 if none. */
size_t	proto_json_span(const char *buf, size_t len);

#endif
