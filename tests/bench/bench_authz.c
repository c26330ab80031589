/*
 * bench_authz - server CPU per subscribe spent deciding who may use a
 * channel: chan_authorize() against a configured table of 50 namespaces
 * and against the default table (8), and chan_authorized_list(), the
 * "authorizedChannels" of connected and authenticated.
 *
 *   make tests/bench/bench_authz && tests/bench/bench_authz [-v] [-n calls] [-r runs]
 *
 * Three callers (anonymous, a member with orgId/teamId claims, an admin)
 * ask for a mix of channels: names that the first, middle and last
 * namespaces decide, names refused, names no namespace matches.  Each run
 * times n calls with CLOCK_MONOTONIC; the median of the runs is printed,
 * then one line "RESULT <json>" per figure.  Every verdict is checked
 * against the expected one first, so a wrong table fails (exit 1) rather
 * than being timed.  -v prints each caller's authorizedChannels first.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"

/*
 * A SaaS platform's table: public exact names first, the caller's own
 * channels, the tenants' channels (most specific first), then the
 * product's families, role-restricted ones last.
 */
static const char *const table50[] = {
	"announcements public",
	"status public",
	"maintenance public",
	"changelog public",
	"user:{userId} self history=100 history_ttl=5m",
	"notifications:{userId} self history=50",
	"presence:{userId} self",
	"org:{orgId}:admin:* role=owner,admin well_known=billing,members,audit",
	"org:{orgId}:team:{teamId}:* authenticated well_known=chat,builds,deploys",
	"org:{orgId}:team:{teamId} authenticated",
	"org:{orgId}:user:{userId} self",
	"org:{orgId}:* authenticated history=100 history_ttl=10m well_known=events,alerts",
	"tenant:{orgId} authenticated",
	"apps:* authenticated history=100 history_ttl=5m well_known=created,updated,deleted,deployed,status",
	"users:* authenticated well_known=created,updated,deleted",
	"database:* authenticated well_known=table_created,table_updated,table_deleted,row_updated",
	"deployments:* authenticated well_known=started,completed,failed,status",
	"storage:* authenticated well_known=uploaded,deleted,updated",
	"builds:* authenticated well_known=queued,started,finished",
	"ci:pipeline:* authenticated",
	"ci:runner:* role=ops,admin",
	"chat:room:* authenticated max_subscribers=5000",
	"chat:dm:{userId}:* self",
	"docs:* authenticated",
	"comments:* authenticated",
	"tickets:* authenticated well_known=opened,closed",
	"invoices:{orgId}:* role=billing,owner,admin",
	"payments:* role=billing,admin",
	"subscriptions:* role=billing,admin",
	"search:index:* authenticated",
	"analytics:* authenticated",
	"reports:{orgId} authenticated",
	"exports:{userId}:* self",
	"imports:{userId}:* self",
	"webhooks:* authenticated",
	"integrations:* authenticated",
	"feature-flags:* authenticated",
	"experiments:* role=product,admin",
	"queues:* role=ops,admin",
	"workers:* role=ops,admin",
	"metrics:* role=ops,admin",
	"logs:* role=ops,admin",
	"traces:* role=ops,admin",
	"incidents:* role=ops,support,admin",
	"support:* role=support,admin",
	"security:* role=security,admin",
	"audit:* role=auditor,admin",
	"ops:* role=ops,admin",
	"system:* role=admin well_known=health,metrics,alerts",
	"debug:* role=admin",
	NULL
};

enum who { ANON, MEMBER, ADMIN, NWHO };
static const char *const who_names[NWHO] = { "anonymous", "member", "admin" };

/* A name, where in the table it is decided, and the verdict per caller. */
struct probe {
	const char	*p_name;
	const char	*p_where;	/* early, middle, late, miss */
	char		 p_expect[NWHO + 1];	/* per caller: o(k) d(enied) u(nknown) */
};

#define OK_ALL	"ooo"
static const struct probe probes50[] = {
	{ "announcements",		"early",  OK_ALL },
	{ "status",			"early",  OK_ALL },
	{ "user:u42",			"early",  "doo" },
	{ "user:u43",			"early",  "ddo" },
	{ "notifications:u42",		"early",  "doo" },
	{ "org:acme:admin:billing",	"early",  "ddo" },
	{ "org:acme:team:t7:chat",	"early",  "doo" },
	{ "org:acme:team:t7",		"early",  "doo" },
	{ "org:acme:events",		"middle", "doo" },
	{ "org:globex:events",		"middle", "ddo" },
	{ "org:acme:bad:name:x",	"middle", "doo" },
	{ "apps:created",		"middle", "doo" },
	{ "deployments:status",		"middle", "doo" },
	{ "chat:room:general",		"middle", "doo" },
	{ "chat:dm:u42:u7",		"middle", "doo" },
	{ "tickets:opened",		"middle", "doo" },
	{ "invoices:acme:2026",		"middle", "ddo" },
	{ "reports:acme",		"middle", "doo" },
	{ "exports:u42:csv",		"middle", "doo" },
	{ "webhooks:delivery",		"middle", "doo" },
	{ "metrics:cpu",		"late",   "ddo" },
	{ "logs:worker7",		"late",   "ddo" },
	{ "incidents:open",		"late",   "ddo" },
	{ "audit:logins",		"late",   "ddo" },
	{ "ops:deploys",		"late",   "ddo" },
	{ "system:health",		"late",   "ddo" },
	{ "debug:trace",		"late",   "ddo" },
	{ "nope:x",			"miss",   "uuu" },
	{ "billing",			"miss",   "uuu" },
	{ "zzz:unknown:channel",	"miss",   "uuu" },
	{ NULL, NULL, "" }
};

static const struct probe probes8[] = {
	{ "announcements",		"early",  OK_ALL },
	{ "apps:created",		"early",  "doo" },
	{ "users:created",		"early",  "doo" },
	{ "user:u42",			"early",  "doo" },
	{ "user:u43",			"early",  "ddo" },
	{ "database:row_updated",	"middle", "doo" },
	{ "deployments:status",		"middle", "doo" },
	{ "storage:uploaded",		"late",   "doo" },
	{ "system:health",		"late",   "ddo" },
	{ "nope:x",			"miss",   "uuu" },
	{ NULL, NULL, "" }
};

static volatile unsigned long	 sink;
static char			 results[8192];	/* RESULT lines, printed last */

static void
result(const char *fmt, ...)
{
	size_t	 len = strlen(results);
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(results + len, sizeof(results) - len, fmt, ap);
	va_end(ap);
}

static void
print_name(const char *name, void *arg)
{
	printf("%s%s", *(int *)arg ? "," : " ", name);
	*(int *)arg = 1;
}

static double
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static struct chan_table *
build(const char *const *lines)
{
	struct chan_table	*t;
	char			 msg[512];
	int			 i;

	if ((t = chan_table_new()) == NULL)
		exit(1);
	for (i = 0; lines[i] != NULL; i++)
		if (chan_table_add(t, lines[i], NULL, 0, msg, sizeof(msg)) != 0) {
			fprintf(stderr, "bench_authz: namespace %s: %s\n", lines[i], msg);
			exit(1);
		}
	return t;
}

static void
make_users(struct auth_user *u)
{
	auth_anonymous(&u[ANON]);
	memset(&u[MEMBER], 0, sizeof(u[MEMBER]));
	u[MEMBER].u_authenticated = 1;
	snprintf(u[MEMBER].u_id, sizeof(u[MEMBER].u_id), "u42");
	snprintf(u[MEMBER].u_role, sizeof(u[MEMBER].u_role), "member");
	u[MEMBER].u_has_role = 1;
	if (auth_user_add_claim(&u[MEMBER], "orgId", "acme", 4) == -1 ||
	    auth_user_add_claim(&u[MEMBER], "teamId", "t7", 2) == -1)
		exit(1);
	u[ADMIN] = u[MEMBER];
	snprintf(u[ADMIN].u_id, sizeof(u[ADMIN].u_id), "root");
	snprintf(u[ADMIN].u_role, sizeof(u[ADMIN].u_role), "admin");
	u[ADMIN].u_admin = 1;
}

static char
verdict_char(enum chan_verdict v)
{
	return v == CHAN_OK ? 'o' : v == CHAN_DENIED ? 'd' : v == CHAN_UNKNOWN ? 'u' : 'i';
}

/* Every probe gets its expected verdict, or the table is wrong. */
static int
check(const char *tname, const struct chan_table *t, const struct probe *p,
    const struct auth_user *users)
{
	enum chan_verdict	 v;
	int			 i, w, bad = 0;
	char			 c;

	for (i = 0; p[i].p_name != NULL; i++)
		for (w = 0; w < NWHO; w++) {
			v = chan_authorize(t, p[i].p_name, strlen(p[i].p_name),
			    w == ANON ? NULL : &users[w], NULL);
			if ((c = verdict_char(v)) != p[i].p_expect[w]) {
				fprintf(stderr, "bench_authz: %s: %s as %s: got %c, expected %c\n",
				    tname, p[i].p_name, who_names[w], c, p[i].p_expect[w]);
				bad++;
			}
		}
	return bad;
}

/*
 * ns per chan_authorize(), median of runs: n calls cycling over the
 * probes (where == NULL: all of them; else only those of that part of
 * the table), as each caller in turn.
 */
static double
time_authorize(const struct chan_table *t, const struct probe *p, const char *where,
    const struct auth_user *users, int n, int runs)
{
	const char		*names[64];
	size_t			 lens[64];
	const struct auth_user	*u;
	const struct chan_ns	*ns;
	double			*v, t0, m;
	unsigned long		 acc = 0;
	int			 np = 0, i, k, r, w;

	for (i = 0; p[i].p_name != NULL && np < 64; i++)
		if (where == NULL || strcmp(p[i].p_where, where) == 0) {
			names[np] = p[i].p_name;
			lens[np++] = strlen(p[i].p_name);
		}
	if (np == 0 || (v = calloc((size_t)runs, sizeof(*v))) == NULL)
		return 0;
	for (r = 0; r < runs; r++) {
		t0 = now_ns();
		u = NULL;	/* anonymous first, as the worker passes it */
		for (i = 0, k = 0, w = 0; i < n; i++) {
			acc += chan_authorize(t, names[k], lens[k], u, &ns);
			acc += ns != NULL;
			if (++k == np) {
				k = 0;
				w = (w + 1) % NWHO;
				u = w == ANON ? NULL : &users[w];
			}
		}
		v[r] = (now_ns() - t0) / n;
	}
	sink += acc;
	m = median(v, runs);
	free(v);
	return m;
}

static void
count_name(const char *name, void *arg)
{
	(void)name;
	(*(int *)arg)++;
}

/* µs per chan_authorized_list() for one caller, median of runs; *count: names listed. */
static double
time_list(const struct chan_table *t, const struct auth_user *u, int n, int runs,
    int *count)
{
	double	*v, t0, m;
	int	 i, r, c = 0;

	*count = 0;
	if ((v = calloc((size_t)runs, sizeof(*v))) == NULL)
		return 0;
	chan_authorized_list(t, u, count_name, &c);
	*count = c;
	for (r = 0; r < runs; r++) {
		t0 = now_ns();
		for (i = 0; i < n; i++)
			chan_authorized_list(t, u, count_name, &c);
		v[r] = (now_ns() - t0) / n / 1e3;
	}
	sink += (unsigned long)c;
	m = median(v, runs);
	free(v);
	return m;
}

/* -v: what each caller is told it may use. */
static void
show_lists(const char *tname, const struct chan_table *t, const struct auth_user *users)
{
	int	 w, first;

	for (w = 0; w < NWHO; w++) {
		first = 0;
		printf("%s, %s:", tname, who_names[w]);
		chan_authorized_list(t, w == ANON ? NULL : &users[w], print_name, &first);
		printf("\n");
	}
}

static void
report_authorize(const char *tname, int nns, const struct chan_table *t,
    const struct probe *p, const struct auth_user *users, int n, int runs)
{
	static const char *const parts[] = { "early", "middle", "late", "miss", NULL };
	double	 ns;
	int	 i;

	ns = time_authorize(t, p, NULL, users, n, runs);
	printf("%-8s %-4d %-8s %10.1f %10.3f\n", tname, nns, "mix", ns, ns / 1e3);
	result("RESULT {\"scenario\":\"authorize\",\"table\":\"%s\",\"namespaces\":%d,"
	    "\"names\":\"mix\",\"calls\":%d,\"runs\":%d,\"ns_per_call\":%.1f}\n",
	    tname, nns, n, runs, ns);
	for (i = 0; parts[i] != NULL; i++) {
		ns = time_authorize(t, p, parts[i], users, n, runs);
		printf("%-8s %-4d %-8s %10.1f %10.3f\n", tname, nns, parts[i], ns, ns / 1e3);
		result("RESULT {\"scenario\":\"authorize\",\"table\":\"%s\",\"namespaces\":%d,"
		    "\"names\":\"%s\",\"calls\":%d,\"runs\":%d,\"ns_per_call\":%.1f}\n",
		    tname, nns, parts[i], n, runs, ns);
	}
}

static void
report_list(const char *tname, int nns, const struct chan_table *t,
    const struct auth_user *users, int n, int runs)
{
	double	 us;
	int	 w, count;

	for (w = 0; w < NWHO; w++) {
		us = time_list(t, w == ANON ? NULL : &users[w], n, runs, &count);
		printf("%-8s %-4d %-10s %6d %10.3f\n", tname, nns, who_names[w], count, us);
		result("RESULT {\"scenario\":\"authorized_list\",\"table\":\"%s\","
		    "\"namespaces\":%d,\"caller\":\"%s\",\"listed\":%d,\"calls\":%d,"
		    "\"runs\":%d,\"us_per_call\":%.3f}\n", tname, nns, who_names[w], count,
		    n, runs, us);
	}
}

int
main(int argc, char *argv[])
{
	struct auth_user	 users[NWHO];
	struct chan_table	*t50, *t8;
	int			 ch, n = 1000000, runs = 9, nlist, verbose = 0;

	while ((ch = getopt(argc, argv, "n:r:v")) != -1)
		switch (ch) {
		case 'n': n = atoi(optarg); break;
		case 'r': runs = atoi(optarg); break;
		case 'v': verbose = 1; break;
		default:
			fprintf(stderr, "usage: bench_authz [-v] [-n calls] [-r runs]\n");
			return 2;
		}
	if (n < 1 || runs < 1)
		return 2;
	make_users(users);
	t50 = build(table50);
	if ((t8 = chan_table_default()) == NULL)
		return 1;
	if (check("50", t50, probes50, users) + check("default", t8, probes8, users) != 0)
		return 1;
	if (verbose) {
		show_lists("50", t50, users);
		show_lists("default", t8, users);
	}

	printf("== chan_authorize() per subscribe (%d calls x %d runs, median; callers "
	    "anonymous, member, admin in turn)\n", n, runs);
	printf("%-8s %-4s %-8s %10s %10s\n", "table", "ns", "names", "ns/call", "us/call");
	report_authorize("50", chan_table_count(t50), t50, probes50, users, n, runs);
	report_authorize("default", chan_table_count(t8), t8, probes8, users, n, runs);

	nlist = n / 100 > 0 ? n / 100 : 1;
	printf("== chan_authorized_list() (authorizedChannels; %d calls x %d runs, median)\n",
	    nlist, runs);
	printf("%-8s %-4s %-10s %6s %10s\n", "table", "ns", "caller", "listed", "us/call");
	report_list("50", chan_table_count(t50), t50, users, nlist, runs);
	report_list("default", chan_table_count(t8), t8, users, nlist, runs);

	fputs(results, stdout);
	chan_table_free(t50);
	chan_table_free(t8);
	return 0;
}
