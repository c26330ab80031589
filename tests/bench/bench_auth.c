/*
 * bench_auth - server CPU per JWT verification, the handshake's auth_verify()
 * in a tight loop over distinct tokens: HS256 (the common configuration)
 * and RS256 / ES256 (through libjwt), each verified in full (token_cache 0)
 * and answered by the verified-token cache (token_cache >= tokens: the
 * reconnect storm, where every client comes back with the token it had).
 *
 *   make tests/bench/bench_auth && tests/bench/bench_auth [-n tokens] [-r rounds] [-a ALG]
 *
 * Tokens are minted with libjwt (the claims a typical SaaS token carries: sub,
 * name, admin, channels, iat, exp), each one distinct.  RS256 / ES256 keys
 * (RSA 2048, P-256) are made here with OpenSSL.  Prints a table and one line
 * "RESULT <json>".
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "realtimed.h"
#include "auth.h"

#define SECRET	"bench-secret-0123456789"

struct bench_key {
	const char	*name;
	jwt_alg_t	 alg;
	char		*sign;		/* secret or private PEM */
	size_t		 signlen;
	char		*verify;	/* public PEM; NULL: HS */
	size_t		 verifylen;
};

static double
cpu_now(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_auth: %s\n", what);
	exit(1);
}

static char *
bio_text(BIO *b, size_t *len)
{
	char	*p, *s;
	long	 n = BIO_get_mem_data(b, &p);

	if (n <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		die("cannot export a key");
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return s;
}

static void
make_key(struct bench_key *k)
{
	EVP_PKEY	*pk;
	BIO		*priv, *pub;

	if (k->alg == JWT_ALG_HS256) {
		k->sign = strdup(SECRET);
		k->signlen = strlen(SECRET);
		return;
	}
	pk = k->alg == JWT_ALG_RS256 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pk == NULL || (priv = BIO_new(BIO_s_mem())) == NULL ||
	    (pub = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(pub, pk) != 1)
		die("cannot make a key");
	k->sign = bio_text(priv, &k->signlen);
	k->verify = bio_text(pub, &k->verifylen);
	EVP_PKEY_free(pk);
}

static char *
mint(const struct bench_key *k, int i, time_t now)
{
	char	 claims[512], *tok;
	jwt_t	*jwt;

	snprintf(claims, sizeof(claims), "{\"sub\":\"user-%d\",\"name\":\"User %d\","
	    "\"admin\":false,\"channels\":[\"user:%d\",\"apps:*\"],\"iat\":%lld,"
	    "\"exp\":%lld}", i, i, i, (long long)now, (long long)now + 3600);
	if (jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, claims) != 0 ||
	    jwt_set_alg(jwt, k->alg, (const unsigned char *)k->sign, (int)k->signlen) != 0 ||
	    (tok = jwt_encode_str(jwt)) == NULL)
		die("cannot mint a token");
	jwt_free(jwt);
	return tok;
}

/* us per auth_verify() over rounds x n tokens; *bad counts failures. */
static double
run(const struct bench_key *k, size_t cache, char **toks, int n, int rounds,
    time_t now, int *bad, int *hits)
{
	struct auth_params	 c;
	struct auth_ctx		*ctx;
	struct auth_user	 user;
	char			 err[512];
	int			 i, r, rv;
	double			 t0, t1;

	memset(&c, 0, sizeof(c));
	c.ap_algorithm = k->name;
	c.ap_secret = k->verify == NULL ? k->sign : NULL;
	c.ap_secretlen = k->verify == NULL ? k->signlen : 0;
	c.ap_public_key = k->verify;
	c.ap_public_keylen = k->verifylen;
	c.ap_public_key_name = "bench";
	c.ap_cache_size = cache;
	if ((ctx = auth_new(&c, err, sizeof(err))) == NULL)
		die(err);
	/* warm up (and fill the cache), and check every token verifies */
	for (i = 0; i < n; i++)
		if (auth_verify(ctx, toks[i], strlen(toks[i]), (int64_t)now * 1000, &user,
		    err, sizeof(err)) == -1)
			(*bad)++;
	*hits = 0;
	t0 = cpu_now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++) {
			rv = auth_verify(ctx, toks[i], strlen(toks[i]), (int64_t)now * 1000,
			    &user, err, sizeof(err));
			*bad += rv == -1;
			*hits += rv == 1;
		}
	t1 = cpu_now();
	auth_free(ctx);
	return (t1 - t0) * 1e6 / ((double)n * rounds);
}

int
main(int argc, char *argv[])
{
	struct bench_key	 keys[] = {
		{ "HS256", JWT_ALG_HS256, NULL, 0, NULL, 0 },
		{ "RS256", JWT_ALG_RS256, NULL, 0, NULL, 0 },
		{ "ES256", JWT_ALG_ES256, NULL, 0, NULL, 0 },
	};
	const char		*only = NULL;
	char			**toks, res[2048];
	time_t			 now = time(NULL);
	int			 ch, i, n = 10000, rounds = 20, bad = 0, hits, kr, first = 1;
	size_t			 k, mode;
	double			 us;

	while ((ch = getopt(argc, argv, "a:n:r:")) != -1)
		switch (ch) {
		case 'a': only = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_auth [-a HS256|RS256|ES256] [-n tokens] "
			    "[-r rounds]\n");
			return 2;
		}
	if (n < 1 || rounds < 1)
		return 2;
	if ((toks = calloc((size_t)n, sizeof(*toks))) == NULL)
		return 1;
	printf("== JWT verification (auth_verify, %d distinct tokens; full: token_cache 0, "
	    "cached: token_cache %d, every token kept)\n", n, n);
	printf("%-8s %-8s %-10s %-8s %-8s %-10s\n", "alg", "mode", "verified", "failed",
	    "hits", "us/token");
	res[0] = '\0';
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (only != NULL && strcmp(only, keys[k].name) != 0)
			continue;
		make_key(&keys[k]);
		for (i = 0; i < n; i++)
			toks[i] = mint(&keys[k], i, now);
		for (mode = 0; mode < 2; mode++) {
			/* the public-key algorithms are slow in full: fewer rounds */
			kr = mode == 0 && keys[k].verify != NULL ? (rounds + 9) / 10 : rounds;
			us = run(&keys[k], mode == 0 ? 0 : (size_t)n, toks, n, kr, now, &bad, &hits);
			printf("%-8s %-8s %-10lld %-8d %-8d %-10.2f\n", keys[k].name,
			    mode == 0 ? "full" : "cached", (long long)n * kr, bad, hits, us);
			fflush(stdout);
			snprintf(res + strlen(res), sizeof(res) - strlen(res),
			    "%s{\"alg\":\"%s\",\"mode\":\"%s\",\"tokens\":%lld,\"hits\":%d,"
			    "\"us_per_token\":%.3f,\"token_bytes\":%zu}", first ? "" : ",",
			    keys[k].name, mode == 0 ? "full" : "cached", (long long)n * kr, hits, us,
			    strlen(toks[0]));
			first = 0;
		}
		for (i = 0; i < n; i++)
			free(toks[i]);
		free(keys[k].sign);
		free(keys[k].verify);
	}
	printf("RESULT {\"scenario\":\"jwt\",\"tokens\":%d,\"results\":[%s],\"failed\":%d}\n",
	    n, res, bad);
	free(toks);
	return bad != 0;
}
