/*
 * libFuzzer target: arbitrary bytes as a token to auth_verify() under an
 * HS256 context (secret "fuzz-secret", issuer and audience set).  A
 * rejection must carry one of the known short reasons, never the token;
 * an acceptance must name an authenticated user.  Leaks show up through
 * LeakSanitizer.
 *
 * Input: first byte even, the rest is the token as sent; odd, the rest is
 * a claims payload, signed here with the right key, so that the claim
 * checks get fuzzed too and not only the signature check.  The HS256
 * context keeps verified tokens (token_cache 64), so the cache is fuzzed
 * with them.  First byte 2 mod 4: an ES256 token (an ES256 context, a key
 * made at start) of a payload and a signature of arbitrary bytes and
 * length, for the r || s to DER path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "realtimed.h"
#include "auth.h"

#define FUZZ_NOW	((time_t)1764072000)
#define FUZZ_SECRET	"fuzz-secret"
#define FUZZ_TOKMAX	(RT_TOKEN_MAX + 512)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const reasons[] = {
	"signature verification failed", "token expired",
	"token not yet valid", "algorithm not allowed", "malformed token",
	"missing userId or sub claim", "issuer mismatch", "audience mismatch",
	"token too long", "invalid exp claim", "invalid nbf claim",
	"invalid claim type", "claim too long", "empty user id",
	"missing exp claim",
};

static struct auth_ctx *
fuzz_ctx(void)
{
	static struct auth_ctx	*ctx;
	struct auth_params	 c;
	char			 err[256];

	if (ctx != NULL)
		return ctx;
	memset(&c, 0, sizeof(c));
	c.ap_algorithm = "HS256";
	c.ap_secret = FUZZ_SECRET;
	c.ap_secretlen = strlen(FUZZ_SECRET);
	c.ap_issuer = "fuzz-issuer";
	c.ap_audience = "realtime";
	c.ap_leeway = 30000;
	c.ap_cache_size = 64;
	if ((ctx = auth_new(&c, err, sizeof(err))) == NULL)
		abort();
	return ctx;
}

static struct auth_ctx *
fuzz_es_ctx(void)
{
	static struct auth_ctx	*ctx;
	struct auth_params	 c;
	EVP_PKEY		*pk;
	BIO			*b;
	char			 err[256], *pem;
	long			 n;

	if (ctx != NULL)
		return ctx;
	if ((pk = EVP_EC_gen("P-256")) == NULL || (b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(b, pk) != 1 || (n = BIO_get_mem_data(b, &pem)) <= 0)
		abort();
	memset(&c, 0, sizeof(c));
	c.ap_algorithm = "ES256";
	c.ap_public_key = pem;
	c.ap_public_keylen = (size_t)n;
	c.ap_public_key_name = "fuzz";
	if ((ctx = auth_new(&c, err, sizeof(err))) == NULL)
		abort();
	BIO_free(b);
	EVP_PKEY_free(pk);
	return ctx;
}

/* base64url without padding; returns the length written. */
static size_t
b64url(char *out, const uint8_t *in, size_t len)
{
	size_t	 n, i;

	n = (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return n;
}

/* {"alg":"HS256","typ":"JWT"} . claims . HMAC, into tok. */
static size_t
sign(char *tok, const uint8_t *claims, size_t len)
{
	static const char	 hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char		 mac[EVP_MAX_MD_SIZE];
	unsigned int		 maclen;
	size_t			 n;

	n = b64url(tok, (const uint8_t *)hdr, sizeof(hdr) - 1);
	tok[n++] = '.';
	n += b64url(tok + n, claims, len);
	if (HMAC(EVP_sha256(), FUZZ_SECRET, sizeof(FUZZ_SECRET) - 1,
	    (const unsigned char *)tok, n, mac, &maclen) == NULL)
		abort();
	tok[n++] = '.';
	n += b64url(tok + n, mac, maclen);
	return n;
}

static void
check(struct auth_ctx *ctx, const char *tok, size_t len)
{
	struct auth_user	 u;
	char			 reason[128];
	size_t			 i;

	if (auth_verify(ctx, tok, len, (int64_t)FUZZ_NOW * 1000, &u, reason, sizeof(reason)) != -1) {
		if (!u.u_authenticated || u.u_id[0] == '\0' ||
		    (u.u_admin && strcmp(u.u_role, "admin") != 0))
			abort();
		return;
	}
	if (u.u_authenticated)
		abort();
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(reason, reasons[i]) == 0)
			return;
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char		 tok[FUZZ_TOKMAX * 2];
	static const char	 eshdr[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
	size_t			 n, siglen;

	if (size == 0)
		return 0;
	if (data[0] % 4 == 2 && size >= 2 && size - 2 <= FUZZ_TOKMAX / 2) {
		siglen = data[1] < size - 2 ? data[1] : size - 2;
		n = b64url(tok, (const uint8_t *)eshdr, sizeof(eshdr) - 1);
		tok[n++] = '.';
		n += b64url(tok + n, data + 2, size - 2 - siglen);
		tok[n++] = '.';
		n += b64url(tok + n, data + size - siglen, siglen);
		check(fuzz_es_ctx(), tok, n);
	} else if (data[0] % 2 == 0)
		check(fuzz_ctx(), (const char *)data + 1, size - 1);
	else if (size - 1 <= FUZZ_TOKMAX / 2)
		check(fuzz_ctx(), tok, sign(tok, data + 1, size - 1));
	return 0;
}
