/*
 * bench_revoke - what the revocation check adds to a handshake: the
 * digest of the jti and the lookup without a lock (rvk_digest() and
 * rvk_revoked()), in an empty table and in one holding 100,000
 * revocations (max_revocations 131072), for jtis revoked (hits) and not
 * (misses).
 *
 *   make tests/bench/bench_revoke && tests/bench/bench_revoke [-n jtis] [-r rounds]
 *
 * The jtis are distinct UUIDs, looked up in order, so their slots come in
 * no order and the table's cache misses are counted in.  "ns/call" is the
 * digest and the lookup, "ns/lookup" the lookup alone of a digest made
 * beforehand.  Prints a table and one line "RESULT <json>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "realtimed.h"
#include "revoke.h"

#define MAX		131072
#define HELD		100000
#define NOW		((int64_t)1700000000)

static double
mono_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A distinct UUID-shaped jti for each i (a bijective mix: no repeats). */
static void
jti_of(char out[RT_UUID_LEN + 1], uint32_t i, uint32_t salt)
{
	uint64_t	 x = ((uint64_t)salt << 32 | i) * 0x9e3779b97f4a7c15ULL;

	snprintf(out, RT_UUID_LEN + 1, "%08x-%04x-4%03x-a%03x-%012llx",
	    (unsigned)(x >> 32), (unsigned)(x >> 16) & 0xffff, (unsigned)x & 0xfff,
	    i & 0xfff, (unsigned long long)i | (unsigned long long)salt << 32);
}

/* ns per call of digest and lookup, and of the lookup alone; wrong answers. */
static int
run(const struct rvk_table *t, char (*jtis)[RT_UUID_LEN + 1],
    uint8_t (*d)[RVK_DIGEST], int n, int rounds, int want, double *call,
    double *lookup)
{
	uint8_t	 dd[RVK_DIGEST];
	double	 t0;
	int	 i, r, bad = 0;

	t0 = mono_ns();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++) {
			rvk_digest(jtis[i], RT_UUID_LEN, dd);
			bad += rvk_revoked(t, dd, NOW) != want;
		}
	*call = (mono_ns() - t0) / ((double)n * rounds);
	t0 = mono_ns();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++)
			bad += rvk_revoked(t, d[i], NOW) != want;
	*lookup = (mono_ns() - t0) / ((double)n * rounds);
	return bad;
}

int
main(int argc, char *argv[])
{
	struct rvk_table	*t;
	char			(*held)[RT_UUID_LEN + 1], (*other)[RT_UUID_LEN + 1];
	uint8_t			(*dheld)[RVK_DIGEST], (*dother)[RVK_DIGEST];
	double			 ce, le, chit, lhit, cmiss, lmiss;
	int			 ch, i, n = HELD, rounds = 20, bad = 0;

	while ((ch = getopt(argc, argv, "n:r:")) != -1)
		switch (ch) {
		case 'n': n = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_revoke [-n jtis] [-r rounds]\n");
			return 2;
		}
	if (n < 1 || n > MAX || rounds < 1)
		return 2;
	held = calloc((size_t)n, sizeof(*held));
	other = calloc((size_t)n, sizeof(*other));
	dheld = calloc((size_t)n, sizeof(*dheld));
	dother = calloc((size_t)n, sizeof(*dother));
	if ((t = malloc(rvk_size(MAX))) == NULL || held == NULL || other == NULL ||
	    dheld == NULL || dother == NULL) {
		fprintf(stderr, "bench_revoke: out of memory\n");
		return 1;
	}
	rvk_init(t, MAX);
	for (i = 0; i < n; i++) {
		jti_of(held[i], (uint32_t)i, 1);
		jti_of(other[i], (uint32_t)i, 2);
		rvk_digest(held[i], RT_UUID_LEN, dheld[i]);
		rvk_digest(other[i], RT_UUID_LEN, dother[i]);
	}

	bad += run(t, other, dother, n, rounds, 0, &ce, &le);
	for (i = 0; i < n; i++)
		if (rvk_add(t, dheld[i], NOW + 3600, NOW) != 0)
			bad++;
	bad += run(t, held, dheld, n, rounds, 1, &chit, &lhit);
	bad += run(t, other, dother, n, rounds, 0, &cmiss, &lmiss);

	printf("== revocation check (rvk_digest + rvk_revoked), %d jtis x %d rounds,"
	    " max %d (%u slots)\n", n, rounds, MAX, t->rt_slots);
	printf("%-8s %-8s %-10s %-10s\n", "entries", "jtis", "ns/call", "ns/lookup");
	printf("%-8d %-8s %-10.1f %-10.1f\n", 0, "miss", ce, le);
	printf("%-8lld %-8s %-10.1f %-10.1f\n", (long long)rvk_count(t), "hit", chit, lhit);
	printf("%-8lld %-8s %-10.1f %-10.1f\n", (long long)rvk_count(t), "miss", cmiss, lmiss);
	printf("RESULT {\"scenario\":\"revoke\",\"max\":%d,\"entries\":%lld,\"calls\":%lld,"
	    "\"wrong\":%d,\"ns_empty_miss\":%.1f,\"ns_hit\":%.1f,\"ns_miss\":%.1f,"
	    "\"ns_lookup_empty_miss\":%.1f,\"ns_lookup_hit\":%.1f,\"ns_lookup_miss\":%.1f}\n",
	    MAX, (long long)rvk_count(t), (long long)n * rounds, bad, ce, chit, cmiss, le, lhit, lmiss);
	free(held);
	free(other);
	free(dheld);
	free(dother);
	free(t);
	return bad != 0;
}
