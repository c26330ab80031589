#ifndef RT_CHANNEL_H
#define RT_CHANNEL_H

/*
 * Channel names and the authorization table of PROTOCOL.md.  Pure.
 */
#include <stddef.h>

struct auth_user;

enum chan_verdict {
	CHAN_OK = 0,
	CHAN_INVALID,		/* not 1-200 bytes of [A-Za-z0-9_.:@-] */
	CHAN_UNKNOWN,		/* valid name, no family matches */
	CHAN_DENIED,		/* family known, this user may not */
};

/* 1 if name is 1-200 bytes of [A-Za-z0-9_.:@-]. */
int	chan_name_valid(const char *name, size_t len);

/*
 * May user subscribe to name?  Families: "announcements" (everyone);
 * "apps:*", "users:*", "database:*", "deployments:*", "storage:*" (any
 * authenticated user; the part after the colon must be non-empty);
 * "user:{id}" (that user or an admin; id exact, case-sensitive);
 * "system:*" (admin only).
 */
enum chan_verdict chan_authorize(const char *name, size_t len, const struct auth_user *user);

/* Error text for a verdict, as PROTOCOL.md words it. */
const char *chan_verdict_message(enum chan_verdict v);

/*
 * The well-known channels user may use, plus "user:<own id>" for an
 * authenticated user, in table order: calls emit(name, arg) for each.
 */
void	chan_authorized_list(const struct auth_user *user,
	    void (*emit)(const char *name, void *arg), void *arg);

/*
 * The Redis subscriptions that carry every family of the table, in table
 * order: emit(name, pattern, arg) with pattern 1 for a PSUBSCRIBE pattern
 * ("apps:*"), 0 for a SUBSCRIBE of an exact name ("announcements").
 */
void	chan_redis_subscriptions(void (*emit)(const char *name, int pattern,
	    void *arg), void *arg);

#endif
