/*
 * libFuzzer: namespace lines (channel.c) and what a table built from them
 * answers.  The input is lines:
 *   ?NAME        a channel name to ask about
 *   !NAME=VALUE  a claim of the test users
 *   %ROLE        the role of the role user
 *   anything else: a namespace line ("PATTERN WHO [options]")
 * Checked: every refusal and warning says why; the table's lines read back
 * to the same table; the claims are claim names, each once; the Redis
 * subscriptions never cover one another and carry every name a namespace
 * matches exactly once; verdicts agree with chan_match(); every name
 * authorizedChannels lists is allowed, a name, and listed once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"
#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXQ	16
#define MAXSUBS	(CHAN_NS_MAX + 1)
#define MAXLIST	1024

struct subs {
	int	 n;
	char	 name[MAXSUBS][RT_CHANNEL_MAX + 2];
	int	 pattern[MAXSUBS];
};

struct names {
	int	 n;
	char	 name[MAXLIST][RT_CHANNEL_MAX + 1];
};

struct lines {
	struct chan_table	*t;
	int			 n;
};

static void
sub_emit(const char *name, int pattern, void *arg)
{
	struct subs	*s = arg;
	size_t		 len = strlen(name);

	if (s->n == MAXSUBS || len > RT_CHANNEL_MAX + 1)
		abort();
	if (pattern && (len == 0 || name[len - 1] != '*'))
		abort();
	if (!pattern && !chan_name_valid(name, len))
		abort();
	if (pattern && len > 1 && !chan_name_valid(name, len - 1))
		abort();
	strcpy(s->name[s->n], name);
	s->pattern[s->n++] = pattern;
}

/* Does subscription i carry name (Redis: "p*" matches p and all after it)? */
static int
sub_carries(const struct subs *s, int i, const char *name, size_t len)
{
	size_t	 plen;

	if (!s->pattern[i])
		return strlen(s->name[i]) == len && memcmp(s->name[i], name, len) == 0;
	plen = strlen(s->name[i]) - 1;
	return len >= plen && memcmp(s->name[i], name, plen) == 0;
}

static void
names_emit(const char *name, void *arg)
{
	struct names	*l = arg;
	size_t		 len = strlen(name);
	int		 i;

	if (l->n == MAXLIST || !chan_name_valid(name, len) || strchr(name, '*') != NULL)
		abort();
	for (i = 0; i < l->n; i++)
		if (strcmp(l->name[i], name) == 0)
			abort();	/* listed twice */
	strcpy(l->name[l->n++], name);
}

static void
line_emit(const char *line, void *arg)
{
	struct lines	*l = arg;
	char		 msg[CHAN_LINE_MAX + 256];

	if (strlen(line) >= CHAN_LINE_MAX - 1)
		abort();	/* may have been cut */
	msg[0] = '\0';
	if (chan_table_add(l->t, line, NULL, ++l->n, msg, sizeof(msg)) == -1)
		abort();	/* a table's own line does not read back */
}

static void
copy_emit(const char *line, void *arg)
{
	struct names	*l = arg;

	if (l->n == MAXLIST)
		abort();
	snprintf(l->name[l->n++], sizeof(l->name[0]), "%s", line);
}

static int
claim_name_ok(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > CHAN_CLAIM_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static void
check_table(const struct chan_table *t, int round_trip)
{
	const char *const	*c = chan_table_claims(t);
	static struct subs	 s;
	static struct names	 a, b;
	struct lines		 l;
	int			 i, j;

	for (i = 0; c[i] != NULL; i++) {
		if (i >= CHAN_CLAIMS_MAX || !claim_name_ok(c[i]))
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(c[i], c[j]) == 0)
				abort();
	}
	for (i = 0; i < chan_table_count(t); i++)
		if (chan_table_ns(t, i)->ns_index != i)
			abort();

	/* no subscription covers another: Redis would deliver twice */
	s.n = 0;
	chan_redis_subscriptions(t, sub_emit, &s);
	if (chan_table_count(t) > 0 && s.n == 0)
		abort();
	for (i = 0; i < s.n; i++)
		for (j = 0; j < s.n; j++)
			if (i != j && sub_carries(&s, i, s.name[j],
			    strlen(s.name[j]) - (size_t)s.pattern[j]))
				abort();

	if (!round_trip)
		return;
	if ((l.t = chan_table_new()) == NULL)
		abort();
	l.n = 0;
	chan_table_lines(t, line_emit, &l);
	if (l.n != chan_table_count(t) || !chan_table_equal(t, l.t) ||
	    !chan_table_equal(l.t, t))
		abort();
	a.n = b.n = 0;
	chan_table_lines(t, copy_emit, &a);
	chan_table_lines(l.t, copy_emit, &b);
	if (a.n != b.n)
		abort();
	for (i = 0; i < a.n; i++)
		if (strcmp(a.name[i], b.name[i]) != 0)
			abort();
	chan_table_free(l.t);
}

static void
check_name(const struct chan_table *t, const char *name, size_t len,
    const struct auth_user *users, int nusers)
{
	static struct subs	 s;
	const struct chan_ns	*m, *ns;
	enum chan_verdict	 v;
	int			 i, carried;

	m = chan_match(t, name, len);
	s.n = 0;
	chan_redis_subscriptions(t, sub_emit, &s);
	for (i = -1; i < nusers; i++) {
		v = chan_authorize(t, name, len, i < 0 ? NULL : &users[i], &ns);
		if (v == CHAN_INVALID) {
			if (chan_name_valid(name, len) || ns != NULL)
				abort();
			continue;
		}
		if (!chan_name_valid(name, len))
			abort();
		if (v == CHAN_UNKNOWN) {
			if (m != NULL || ns != NULL)
				abort();
			continue;
		}
		if (v != CHAN_OK && v != CHAN_DENIED)
			abort();
		if (ns == NULL || ns != m)
			abort();
		/* anonymous only ever passes a public namespace */
		if (v == CHAN_OK && (i < 0 || !users[i].u_authenticated) &&
		    ns->ns_who != CHAN_WHO_PUBLIC)
			abort();
	}
	if (m == NULL || !chan_name_valid(name, len))
		return;
	for (carried = 0, i = 0; i < s.n; i++)
		carried += sub_carries(&s, i, name, len);
	if (carried != 1)
		abort();
}

static void
check_lists(const struct chan_table *t, const struct auth_user *users, int nusers)
{
	static struct names	 l;
	int			 i, j;

	for (i = -1; i < nusers; i++) {
		const struct auth_user	*u = i < 0 ? NULL : &users[i];

		l.n = 0;
		chan_authorized_list(t, u, names_emit, &l);
		for (j = 0; j < l.n; j++)
			if (chan_authorize(t, l.name[j], strlen(l.name[j]), u, NULL) != CHAN_OK)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan_table	*t;
	struct auth_user	 users[4];
	char			*buf, *line, *next, *eq, msg[CHAN_LINE_MAX + 256];
	char			*q[MAXQ];
	int			 nq = 0, i, n, rv, round_trip = 1;

	if (size > 64 * 1024)
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if ((t = chan_table_new()) == NULL)
		abort();
	auth_anonymous(&users[0]);		/* anonymous, with claims set */
	auth_anonymous(&users[1]);		/* a user */
	users[1].u_authenticated = 1;
	strcpy(users[1].u_id, "u1");
	users[2] = users[1];			/* an admin */
	users[2].u_admin = users[2].u_has_role = 1;
	strcpy(users[2].u_role, "admin");
	users[3] = users[1];			/* a user with a role */
	users[3].u_has_role = 1;
	strcpy(users[3].u_role, "ops");

	for (line = buf, n = 0; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		switch (line[0]) {
		case '?':
			if (nq < MAXQ)
				q[nq++] = line + 1;
			continue;
		case '!':
			if ((eq = strchr(line + 1, '=')) == NULL)
				continue;
			*eq = '\0';
			if (strcmp(line + 1, "userId") == 0) {
				if (strlen(eq + 1) <= RT_USERID_MAX)
					for (i = 1; i < 4; i++)
						strcpy(users[i].u_id, eq + 1);
				continue;
			}
			for (i = 0; i < 4; i++)
				(void)auth_user_add_claim(&users[i], line + 1, eq + 1,
				    strlen(eq + 1));
			continue;
		case '%':
			if (strlen(line + 1) <= RT_ROLE_MAX)
				strcpy(users[3].u_role, line + 1);
			continue;
		}
		msg[0] = '\0';
		rv = chan_table_add(t, line, "fuzz.conf", ++n, msg, sizeof(msg));
		if (rv != -1 && rv != 0 && rv != 1)
			abort();
		if (rv != 0 && (msg[0] == '\0' || strlen(msg) >= sizeof(msg)))
			abort();	/* a refusal or a warning says why */
		if (rv >= 0 && strlen(line) > CONF_STR_MAX)
			round_trip = 0;	/* longer than config.c ever passes */
	}
	check_table(t, round_trip);
	for (i = 0; i < nq; i++)
		check_name(t, q[i], strlen(q[i]), users, 4);
	check_lists(t, users, 4);
	chan_table_free(t);
	free(buf);
	return 0;
}
