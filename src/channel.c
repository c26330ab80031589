/*
 * Channel names and who may use them: the table of PROTOCOL.md, as data.
 * Pure: no I/O, no allocation.
 */
#include <stdio.h>
#include <string.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"

enum chan_who {
	WHO_EVERYONE,		/* anonymous included */
	WHO_AUTHENTICATED,
	WHO_SELF,		/* user:{id}: that user, or an admin */
	WHO_ADMIN,
};

struct chan_family {
	const char		*f_prefix;	/* exact name when !f_wildcard */
	int			 f_wildcard;	/* prefix + non-empty suffix */
	enum chan_who		 f_who;
	const char *const	*f_names;	/* well-known suffixes, NULL-ended */
};

static const char *const chan_apps[] = {
	"created", "updated", "deleted", "deployed", "status", NULL
};
static const char *const chan_users[] = {
	"created", "updated", "deleted", NULL
};
static const char *const chan_database[] = {
	"table_created", "table_updated", "table_deleted", "row_updated", NULL
};
static const char *const chan_deployments[] = {
	"started", "completed", "failed", "status", NULL
};
static const char *const chan_storage[] = {
	"uploaded", "deleted", "updated", NULL
};
static const char *const chan_system[] = {
	"health", "metrics", "alerts", NULL
};

/* PROTOCOL.md's table, in its order. */
static const struct chan_family chan_families[] = {
	{ "announcements",	0, WHO_EVERYONE,	NULL },
	{ "apps:",		1, WHO_AUTHENTICATED,	chan_apps },
	{ "users:",		1, WHO_AUTHENTICATED,	chan_users },
	{ "user:",		1, WHO_SELF,		NULL },
	{ "database:",		1, WHO_AUTHENTICATED,	chan_database },
	{ "deployments:",	1, WHO_AUTHENTICATED,	chan_deployments },
	{ "storage:",		1, WHO_AUTHENTICATED,	chan_storage },
	{ "system:",		1, WHO_ADMIN,		chan_system },
};
#define CHAN_NFAMILIES	(sizeof(chan_families) / sizeof(chan_families[0]))

static int
chan_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
	    c == '@' || c == '-';
}

int
chan_name_valid(const char *name, size_t len)
{
	size_t	 i;

	if (name == NULL || len == 0 || len > RT_CHANNEL_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!chan_char_ok((unsigned char)name[i]))
			return 0;
	return 1;
}

static const struct chan_family *
chan_family_of(const char *name, size_t len)
{
	const struct chan_family	*f;
	size_t				 i, plen;

	for (i = 0; i < CHAN_NFAMILIES; i++) {
		f = &chan_families[i];
		plen = strlen(f->f_prefix);
		if (f->f_wildcard ? len <= plen : len != plen)
			continue;
		if (memcmp(name, f->f_prefix, plen) == 0)
			return f;
	}
	return NULL;
}

static int
chan_is_authenticated(const struct auth_user *user)
{
	return user != NULL && user->u_authenticated;
}

static int
chan_is_admin(const struct auth_user *user)
{
	return chan_is_authenticated(user) && user->u_admin;
}

/* user:{id}: the id is compared byte for byte, so "U1" is not "u1". */
static int
chan_is_self(const struct auth_user *user, const char *id, size_t idlen)
{
	if (!chan_is_authenticated(user))
		return 0;
	return strlen(user->u_id) == idlen && memcmp(user->u_id, id, idlen) == 0;
}

enum chan_verdict
chan_authorize(const char *name, size_t len, const struct auth_user *user)
{
	const struct chan_family	*f;
	size_t				 plen;

	if (!chan_name_valid(name, len))
		return CHAN_INVALID;
	if ((f = chan_family_of(name, len)) == NULL)
		return CHAN_UNKNOWN;
	switch (f->f_who) {
	case WHO_EVERYONE:
		return CHAN_OK;
	case WHO_AUTHENTICATED:
		return chan_is_authenticated(user) ? CHAN_OK : CHAN_DENIED;
	case WHO_SELF:
		plen = strlen(f->f_prefix);
		if (chan_is_admin(user) ||
		    chan_is_self(user, name + plen, len - plen))
			return CHAN_OK;
		return CHAN_DENIED;
	case WHO_ADMIN:
		return chan_is_admin(user) ? CHAN_OK : CHAN_DENIED;
	}
	return CHAN_DENIED;
}

const char *
chan_verdict_message(enum chan_verdict v)
{
	switch (v) {
	case CHAN_OK:
		return "OK";
	case CHAN_INVALID:
		return "Invalid channel name";
	case CHAN_UNKNOWN:
		return "Unknown channel";
	case CHAN_DENIED:
		return "Not authorized to subscribe to this channel";
	}
	return "Unknown channel";
}

static int
chan_family_allowed(const struct chan_family *f, const struct auth_user *user)
{
	switch (f->f_who) {
	case WHO_EVERYONE:
		return 1;
	case WHO_AUTHENTICATED:
		return chan_is_authenticated(user);
	case WHO_ADMIN:
		return chan_is_admin(user);
	case WHO_SELF:
		return 0;	/* no well-known names; see chan_authorized_list() */
	}
	return 0;
}

static void
chan_emit_family(const struct chan_family *f,
    void (*emit)(const char *, void *), void *arg)
{
	char	 name[RT_CHANNEL_MAX + 1];
	int	 i;

	for (i = 0; f->f_names[i] != NULL; i++) {
		snprintf(name, sizeof(name), "%s%s", f->f_prefix, f->f_names[i]);
		emit(name, arg);
	}
}

/*
 * Order: the wildcard families' well-known names in table order, then
 * "announcements", then "user:<own id>" last, which is the shape of the
 * example in PROTOCOL.md (it starts with "apps:created" and ends with
 * "user:u1").  An anonymous user gets exactly ["announcements"].
 */
void
chan_authorized_list(const struct auth_user *user,
    void (*emit)(const char *name, void *arg), void *arg)
{
	const struct chan_family	*f;
	char				 name[RT_CHANNEL_MAX + 1];
	size_t				 i, idlen;

	for (i = 0; i < CHAN_NFAMILIES; i++) {
		f = &chan_families[i];
		if (f->f_names != NULL && chan_family_allowed(f, user))
			chan_emit_family(f, emit, arg);
	}
	emit("announcements", arg);
	if (!chan_is_authenticated(user))
		return;
	/* An id that cannot form a valid channel name has no channel to list. */
	idlen = strlen(user->u_id);
	if (idlen == 0 || idlen + strlen("user:") > RT_CHANNEL_MAX)
		return;
	snprintf(name, sizeof(name), "user:%s", user->u_id);
	if (chan_name_valid(name, strlen(name)))
		emit(name, arg);
}

/*
 * A wildcard family is its prefix and a '*': the name characters
 * chan_name_valid() allows include none of Redis' glob specials, so the
 * prefix needs no escaping.  The pattern also matches the bare prefix,
 * which no one may subscribe to: such an event is unrouted, not delivered.
 */
void
chan_redis_subscriptions(void (*emit)(const char *name, int pattern, void *arg),
    void *arg)
{
	const struct chan_family	*f;
	char				 pat[RT_CHANNEL_MAX + 2];
	size_t				 i;

	for (i = 0; i < CHAN_NFAMILIES; i++) {
		f = &chan_families[i];
		if (!f->f_wildcard) {
			emit(f->f_prefix, 0, arg);
			continue;
		}
		snprintf(pat, sizeof(pat), "%s*", f->f_prefix);
		emit(pat, 1, arg);
	}
}
