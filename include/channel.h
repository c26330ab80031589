#ifndef RT_CHANNEL_H
#define RT_CHANNEL_H

/*
 * Channel names and who may use them: the namespace table of PROTOCOL.md
 * ("Channel namespaces").  Pure: no I/O; a table is built once (from the
 * configuration, or the built-in default) and then only read.
 *
 * A namespace line is "PATTERN WHO [option=value ...]":
 *   PATTERN  "announcements"   exactly that name
 *            "apps:*"          the prefix and 1+ name characters
 *            "user:{userId}"   the prefix and the value of a claim
 *            "org:{orgId}:*"   a claim value inside the name, then anything
 *   WHO      public | authenticated | self | role=R1,R2
 *   options  history=N history_ttl=DURATION max_subscribers=N well_known=a,b,c
 *
 * Matching is by shape first: a '*' takes the rest (1+ characters), a
 * {claim} takes 1+ characters up to the first occurrence of the character
 * that follows it in the pattern (or the rest, at the end).  The first
 * namespace whose shape matches, in table order, decides.  Then every
 * {claim} part must equal that claim of the caller byte for byte (an
 * admin may use any value), and the caller must be who WHO says.  So a
 * claim value holding ':' or '*' can never widen what a pattern matches:
 * it just fills no channel.
 */
#include <stddef.h>
#include <stdint.h>

struct auth_user;

enum chan_verdict {
	CHAN_OK = 0,
	CHAN_INVALID,		/* not 1-200 bytes of [A-Za-z0-9_.:@-] */
	CHAN_UNKNOWN,		/* valid name, no namespace matches */
	CHAN_DENIED,		/* a namespace matches, this caller may not */
};

enum chan_who {
	CHAN_WHO_PUBLIC,	/* anonymous too */
	CHAN_WHO_AUTHENTICATED,
	CHAN_WHO_SELF,		/* the {claim} parts are the caller's own */
	CHAN_WHO_ROLE,		/* the role claim is one of ns_roles */
};

#define CHAN_NS_MAX		256	/* namespace lines */
#define CHAN_LIST_MAX		64	/* names in role= and well_known= */
#define CHAN_TEMPLATES_MAX	4	/* {claim} parts in one pattern */
#define CHAN_CLAIMS_MAX		8	/* distinct claim names in a table */
#define CHAN_CLAIM_NAME_MAX	64
#define CHAN_HISTORY_MAX	100000	/* history=N */
#define CHAN_LINE_MAX		2048	/* a namespace line, written back */

/* One namespace, read-only once its table is built. */
struct chan_ns {
	char		*ns_pattern;		/* as written */
	int		 ns_index;		/* in its table, from 0 */
	enum chan_who	 ns_who;
	char		*ns_roles[CHAN_LIST_MAX];	/* CHAN_WHO_ROLE */
	int		 ns_nroles;
	char		*ns_well_known[CHAN_LIST_MAX];
	int		 ns_nwell_known;
	int		 ns_history;		/* events kept; 0: none */
	int64_t		 ns_history_ttl;	/* ms; 0: no limit */
	int64_t		 ns_max_subscribers;	/* per node; 0: no limit */
	const char	*ns_file;		/* where it was declared, or NULL */
	int		 ns_line;
	/* compiled: see channel.c */
	void		*ns_parts;
	int		 ns_nparts;
	/*
	 * Without {claim} parts: the names chan_authorized_list() gives for
	 * it (its well_known names filled in, or its exact name), those
	 * that no earlier namespace takes; the same for every caller it
	 * lets in, so made once when the line is added.
	 */
	char		**ns_listed;
	int		 ns_nlisted;
};

struct chan_table;

/* An empty table. */
struct chan_table *chan_table_new(void);
void	chan_table_free(struct chan_table *t);

/*
 * Parse one namespace line ("PATTERN WHO options", without the leading
 * "namespace") and append it.  file and line label it (file may be NULL).
 * 0 ok; 1 ok but a warning is in msg (the pattern is shadowed completely
 * by an earlier one: it can never match); -1 with the reason in msg,
 * without the file:line (the caller adds it).
 */
int	chan_table_add(struct chan_table *t, const char *line, const char *file,
	    int lineno, char *msg, size_t msglen);

/*
 * The default table: PROTOCOL.md's, with history=100 history_ttl=5m on
 * every family.  Its text is chan_default_lines[] (NULL-ended), the same
 * lines realtimed.conf(5) shows.
 */
extern const char *const chan_default_lines[];
struct chan_table *chan_table_default(void);

int	chan_table_count(const struct chan_table *t);
const struct chan_ns *chan_table_ns(const struct chan_table *t, int i);

/*
 * The table as namespace lines ("PATTERN WHO options", canonical form,
 * that chan_table_add() reads back to the same table), in order.
 */
void	chan_table_lines(const struct chan_table *t,
	    void (*emit)(const char *line, void *arg), void *arg);
/* 1 if a and b hold the same namespaces in the same order. */
int	chan_table_equal(const struct chan_table *a, const struct chan_table *b);

/*
 * The claim names the patterns' {claim} parts use, NULL-ended, in first
 * use order ("userId" included when used: auth gives it as the user id,
 * userId or else sub).
 */
const char *const *chan_table_claims(const struct chan_table *t);

/*
 * ns's compiled shape, part by part: emit(kind, s, len, term, arg) with
 * kind 'l' (the literal s/len), 's' (a final '*': one character or more)
 * or 'c' (a {claim}: one character or more, up to the first term, or to
 * the end when term is '\0').  For the Redis function library.
 */
void	chan_ns_shape(const struct chan_ns *ns,
	    void (*emit)(int kind, const char *s, size_t len, char term, void *arg),
	    void *arg);

/* 1 if name is 1-200 bytes of [A-Za-z0-9_.:@-]. */
int	chan_name_valid(const char *name, size_t len);

/* The first namespace whose shape matches name, or NULL. */
const struct chan_ns *chan_match(const struct chan_table *t, const char *name, size_t len);

/*
 * May user (NULL: anonymous) subscribe to name?  *nsp (when nsp is not
 * NULL) is set to the matching namespace, or NULL.
 */
enum chan_verdict chan_authorize(const struct chan_table *t, const char *name, size_t len,
	    const struct auth_user *user, const struct chan_ns **nsp);

/* Error text for a verdict, as PROTOCOL.md words it. */
const char *chan_verdict_message(enum chan_verdict v);

/*
 * The channels user may use that can be named without a '*', each once,
 * in three passes over the table: the well_known names of prefix
 * namespaces, then exact names, then claim patterns filled with the
 * caller's own claims.  With the default table that is PROTOCOL.md's
 * order: "apps:created" ... "announcements", "user:<own id>".
 */
void	chan_authorized_list(const struct chan_table *t, const struct auth_user *user,
	    void (*emit)(const char *name, void *arg), void *arg);

/*
 * The Redis subscriptions that carry every namespace of the table, with
 * none covering another (so that Redis delivers each message once):
 * emit(name, pattern, arg), pattern 1 for a PSUBSCRIBE ("apps:*", and
 * "user:*" for "user:{userId}"), 0 for a SUBSCRIBE ("announcements").
 */
void	chan_redis_subscriptions(const struct chan_table *t,
	    void (*emit)(const char *name, int pattern, void *arg), void *arg);

#endif
