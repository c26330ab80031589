/*
 * bench_auth - server CPU per JWT verification, the handshake's auth_verify()
 * in a tight loop over distinct tokens (HS256, the common configuration, and
 * optionally RS256/ES256 through libjwt).
 *
 *   make tests/bench/bench_auth && tests/bench/bench_auth [-n tokens] [-r rounds]
 *
 * Tokens are minted with libjwt (the claims a typical SaaS token carries: sub,
 * name, admin, channels, iat, exp), each one distinct, so no cache helps.
 * Prints a table and one line "RESULT <json>".
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>

#include "realtimed.h"
#include "auth.h"

#define SECRET	"bench-secret-0123456789"

static double
cpu_now(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static char *
mint(int i, time_t now)
{
	char	 claims[512], *tok;
	jwt_t	*jwt;

	snprintf(claims, sizeof(claims), "{\"sub\":\"user-%d\",\"name\":\"User %d\","
	    "\"admin\":false,\"channels\":[\"user:%d\",\"apps:*\"],\"iat\":%lld,"
	    "\"exp\":%lld}", i, i, i, (long long)now, (long long)now + 3600);
	if (jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, claims) != 0 ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)) != 0 || (tok = jwt_encode_str(jwt)) == NULL) {
		fprintf(stderr, "bench_auth: cannot mint a token\n");
		exit(1);
	}
	jwt_free(jwt);
	return tok;
}

int
main(int argc, char *argv[])
{
	struct auth_params	 c;
	struct auth_ctx		*ctx;
	struct auth_user	 user;
	char			 err[512], **toks;
	time_t			 now = time(NULL);
	int			 ch, i, r, n = 10000, rounds = 50, bad = 0;
	double			 t0, t1, us;

	while ((ch = getopt(argc, argv, "n:r:")) != -1)
		switch (ch) {
		case 'n': n = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_auth [-n tokens] [-r rounds]\n");
			return 2;
		}
	if (n < 1 || rounds < 1)
		return 2;
	memset(&c, 0, sizeof(c));
	c.ap_algorithm = "HS256";
	c.ap_secret = SECRET;
	c.ap_secretlen = strlen(SECRET);
	if ((ctx = auth_new(&c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench_auth: %s\n", err);
		return 1;
	}
	if ((toks = calloc((size_t)n, sizeof(*toks))) == NULL)
		return 1;
	for (i = 0; i < n; i++)
		toks[i] = mint(i, now);
	/* warm up, and check every token verifies */
	for (i = 0; i < n; i++)
		if (auth_verify(ctx, toks[i], strlen(toks[i]), now, &user, err, sizeof(err)) != 0)
			bad++;
	t0 = cpu_now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++)
			bad += auth_verify(ctx, toks[i], strlen(toks[i]), now, &user, err,
			    sizeof(err)) != 0;
	t1 = cpu_now();
	us = (t1 - t0) * 1e6 / ((double)n * rounds);
	printf("== JWT verification (auth_verify, HS256, %d distinct tokens x %d rounds)\n",
	    n, rounds);
	printf("%-8s %-10s %-10s %-8s\n", "alg", "verified", "failed", "us/token");
	printf("%-8s %-10lld %-10d %-8.2f\n", "HS256", (long long)n * rounds, bad, us);
	printf("RESULT {\"scenario\":\"jwt\",\"alg\":\"HS256\",\"tokens\":%lld,\"failed\":%d,"
	    "\"us_per_token\":%.3f,\"token_bytes\":%zu}\n", (long long)n * rounds, bad, us,
	    strlen(toks[0]));
	for (i = 0; i < n; i++)
		free(toks[i]);
	free(toks);
	auth_free(ctx);
	return bad != 0;
}
