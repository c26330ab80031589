/*
 * libFuzzer: control messages (control.c).  The input is given to
 * ctl_decode() as it is, and again as the JSON of a message signed here
 * with the right secret, so that the parser behind the MAC is reached;
 * what is taken must be valid field for field, encode again and decode
 * to the same fields.  The input is also a stored revocation's value,
 * and the UNTIL of one signed here (taken exactly when a plain reading
 * of the form takes it, and then encoded back to the same bytes).  Last,
 * its bytes drive a replay window, checked against a plain model.  Every
 * buffer is a copy of exactly its length, so a read past it is caught.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "control.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET	"fuzz-secret"
#define JTI	"jti-1"
#define PLEN	(sizeof(CTL_PREFIX) - 1)

/* An exact copy of s[0..n), with nothing readable after it. */
static char *
copy(const void *s, size_t n)
{
	char	*p;

	if ((p = malloc(n > 0 ? n : 1)) == NULL)
		abort();
	if (n > 0)
		memcpy(p, s, n);
	return p;
}

static void
hexmac(const void *d, size_t n, char *hex)
{
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;
	size_t		 i;

	if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), d, n, md, &mdlen) == NULL ||
	    mdlen != 32)
		abort();
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- messages ------------------------------------------------------------ */

static void
check_fields(const struct ctl_msg *m)
{
	size_t	 nl = strnlen(m->cm_node, sizeof(m->cm_node));
	size_t	 al = strnlen(m->cm_arg, sizeof(m->cm_arg));

	if (nl == sizeof(m->cm_node) || al == sizeof(m->cm_arg))
		abort();		/* not NUL-ended */
	if (ctl_cmd_name(m->cm_cmd) == NULL || m->cm_ts <= 0 ||
	    !ctl_node_valid(m->cm_node, nl) || !ctl_arg_valid(m->cm_arg, al))
		abort();
	if (m->cm_cmd == CTL_REVOKE ? m->cm_until <= 0 : m->cm_until != 0)
		abort();
}

static int
same(const struct ctl_msg *a, const struct ctl_msg *b)
{
	return a->cm_cmd == b->cm_cmd && a->cm_ts == b->cm_ts &&
	    memcmp(a->cm_nonce, b->cm_nonce, CTL_NONCE_LEN) == 0 &&
	    strcmp(a->cm_node, b->cm_node) == 0 && a->cm_inst == b->cm_inst &&
	    strcmp(a->cm_arg, b->cm_arg) == 0 && a->cm_until == b->cm_until;
}

static int
decode(const char *p, size_t len, struct ctl_msg *m)
{
	const char	*why = NULL;
	char		*c = copy(p, len);
	int		 rv;

	memset(m, 0xa5, sizeof(*m));
	rv = ctl_decode(c, len, SECRET, strlen(SECRET), m, &why);
	free(c);
	if (rv != CTL_OK && rv != CTL_MALFORMED && rv != CTL_FORGED)
		abort();
	if (rv != CTL_OK && why == NULL)
		abort();
	if (rv != CTL_OK)
		return rv;
	if (len > CTL_MSG_MAX || len < PLEN + 65 || memcmp(p, CTL_PREFIX, PLEN) != 0)
		abort();
	return rv;
}

/* A message taken: valid, and the same after encoding and decoding again. */
static void
check_taken(const struct ctl_msg *m)
{
	struct ctl_msg	 d;
	char		 out[CTL_MSG_MAX];
	ssize_t		 n;

	check_fields(m);
	if ((n = ctl_encode(m, SECRET, strlen(SECRET), out, sizeof(out))) <= 0 ||
	    (size_t)n != strlen(out))
		abort();
	if (decode(out, (size_t)n, &d) != CTL_OK || !same(m, &d))
		abort();
	/* under another secret it is forged */
	if (ctl_decode(out, (size_t)n, "x", 1, &d, NULL) != CTL_FORGED)
		abort();
}

static void
check_message(const uint8_t *data, size_t size)
{
	struct ctl_msg	 m;
	char		*buf;
	size_t		 n;

	if (decode((const char *)data, size, &m) == CTL_OK)
		check_taken(&m);

	/* the input as the JSON of a signed message */
	if (PLEN + 65 + size > 2 * CTL_MSG_MAX)
		return;
	n = PLEN + 65 + size;
	if ((buf = malloc(n)) == NULL)
		abort();
	memcpy(buf, CTL_PREFIX, PLEN);
	hexmac(data, size, buf + PLEN);		/* NUL at buf[PLEN + 64] */
	buf[PLEN + 64] = ' ';
	if (size > 0)
		memcpy(buf + PLEN + 65, data, size);
	switch (decode(buf, n, &m)) {
	case CTL_OK:
		if (size == 0 || data[0] != '{' || data[size - 1] != '}')
			abort();
		check_taken(&m);
		break;
	case CTL_FORGED:
		abort();		/* signed right */
	}
	free(buf);
}

/* ---- stored values ------------------------------------------------------- */

/* A plain reading of UNTIL: 1-19 digits, no leading zero, at most INT64_MAX. */
static int
ref_until(const uint8_t *s, size_t n, int64_t *v)
{
	uint64_t	 x = 0;
	size_t		 i;

	if (n == 0 || n > 19 || s[0] == '0')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > INT64_MAX)
		return 0;
	*v = (int64_t)x;
	return 1;
}

static void
check_stored(const uint8_t *data, size_t size)
{
	char		*c, val[CTL_STORED_MAX + 64], d[512], out[CTL_STORED_MAX];
	int64_t		 until = -7, want;
	int		 rv, n;

	/* the input as a value */
	c = copy(data, size);
	rv = ctl_stored_decode(SECRET, strlen(SECRET), JTI, c, size, &until);
	free(c);
	if (rv != 0 && rv != -1)
		abort();
	if (rv == 0 && (until <= 0 ||
	    (n = ctl_stored_encode(SECRET, strlen(SECRET), JTI, until, out,
	    sizeof(out))) < 0 || (size_t)n != size || memcmp(out, data, size) != 0))
		abort();
	/* and as an unrevoke's mark: never both, and what is taken re-encodes */
	c = copy(data, size);
	n = ctl_unrevoked_decode(SECRET, strlen(SECRET), JTI, c, size, &want);
	free(c);
	if ((n == 0 && rv == 0) || (n != 0 && n != -1))
		abort();
	if (n == 0 && (want <= 0 ||
	    (n = ctl_unrevoked_encode(SECRET, strlen(SECRET), JTI, want, out,
	    sizeof(out))) < 0 || (size_t)n != size || memcmp(out, data, size) != 0))
		abort();

	/* the input as the UNTIL of a value signed right */
	if (size > 64)
		return;
	snprintf(d, sizeof(d), "revoke " JTI " %.*s", (int)size, (const char *)data);
	if (strlen(d) != sizeof("revoke " JTI) + size)
		return;			/* a NUL in the input */
	memcpy(val, data, size);
	val[size] = ' ';
	hexmac(d, strlen(d), val + size + 1);
	c = copy(val, size + 65);
	until = -7;
	rv = ctl_stored_decode(SECRET, strlen(SECRET), JTI, c, size + 65, &until);
	free(c);
	if ((rv == 0) != ref_until(data, size, &want) || (rv == 0 && until != want))
		abort();
	if (rv == 0 && ((n = ctl_stored_encode(SECRET, strlen(SECRET), JTI, until, out,
	    sizeof(out))) != (int)size + 65 || memcmp(out, val, size + 65) != 0))
		abort();
}

/* ---- the replay window --------------------------------------------------- */

#define MODEL_MAX	16

struct model {
	size_t		 max, n;
	uint8_t		 id[MODEL_MAX];
	int64_t		 ts[MODEL_MAX];
	int64_t		 floor, skew;
	uint64_t	 evicted;
};

static int
model_check(struct model *md, uint8_t id, int64_t ts, int64_t now)
{
	size_t	 i;

	if (ts < now - md->skew || ts > now + md->skew || ts <= md->floor)
		return CTL_STALE;
	for (i = 0; i < md->n; i++)
		if (md->id[i] == id)
			return CTL_REPLAYED;
	if (md->n == md->max) {
		if (md->ts[0] > md->floor)
			md->floor = md->ts[0];
		md->evicted++;
		memmove(md->id, md->id + 1, md->n - 1);
		memmove(md->ts, md->ts + 1, (md->n - 1) * sizeof(md->ts[0]));
		md->n--;
	}
	md->id[md->n] = id;
	md->ts[md->n++] = ts;
	return CTL_OK;
}

/*
 * data[0] the window's size, data[1] its skew, then records of three
 * bytes: a nonce (one of 32), the ts from now, how far the clock moves.
 */
static void
check_window(const uint8_t *data, size_t size)
{
	struct ctl_window	*w;
	struct model		 md;
	uint8_t			 nonce[CTL_NONCE_LEN];
	int64_t			 now = 1700000000000LL, ts;
	size_t			 i;

	if (size < 2)
		return;
	memset(&md, 0, sizeof(md));
	md.max = 1 + data[0] % MODEL_MAX;
	md.skew = data[1] % 64;
	md.floor = INT64_MIN;
	if ((w = ctl_window_new(md.max, md.skew)) == NULL)
		abort();
	for (i = 2; i + 3 <= size; i += 3) {
		memset(nonce, 0, sizeof(nonce));
		nonce[0] = data[i] % 32;
		nonce[CTL_NONCE_LEN - 1] = 0x80;
		ts = now + (int8_t)data[i + 1];
		if (ctl_window_check(w, nonce, ts, now) != model_check(&md, nonce[0], ts, now) ||
		    ctl_window_evicted(w) != md.evicted)
			abort();
		now += data[i + 2] % 8;
	}
	ctl_window_free(w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	check_message(data, size);
	check_stored(data, size);
	check_window(data, size);
	return 0;
}
