/*
 * JWT verification at the handshake.
 *
 * Tokens are verified here with OpenSSL, not by libjwt 1.10's jwt_decode():
 * the key is prepared once (an HMAC context, or the public key parsed into
 * an EVP_PKEY), the signature checked over the token's bytes in place, and
 * the payload parsed once with json-c.  jwt_decode() parsed the PEM and the
 * JSON (twice, with jansson) for every token: RS256 cost ~320 us a token.
 * libjwt still names the algorithms (and the tests mint with it).
 *
 * The header's "alg" must be exactly the configured algorithm: a token
 * never chooses how it is checked, so an RS256 server cannot be fed an
 * HS256 token whose HMAC key is the public key PEM (algorithm confusion),
 * and "none" is never accepted.  Time-based and issuer/audience claims are
 * checked here too.
 */
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/crypto.h>

#include "realtimed.h"
#include "auth.h"
#include "channel.h"
#include "util.h"

#define AUTH_PEM_MAX		(64 * 1024)	/* larger is not a public key */
#define AUTH_STR_MAX		1024		/* iss / aud we compare with */
#define AUTH_SIG_MAX		1024		/* RSA up to 8192 bits */

struct auth_ctx {
	jwt_alg_t	 a_alg;
	unsigned char	*a_key;		/* HS*: the secret (RS*, ES*: a_pkey) */
	size_t		 a_keylen;
	int64_t		 a_leeway;	/* milliseconds */
	char		*a_issuer;	/* NULL: not checked */
	char		*a_audience;	/* NULL: not checked */
	int		 a_require_exp;
	char		*a_claims[CHAN_CLAIMS_MAX + 1];	/* to keep; NULL-ended */
	EVP_MAC_CTX	*a_mac;		/* HS*: keyed once, re-initialised per token */
	size_t		 a_maclen;
	EVP_PKEY	*a_pkey;	/* RS*, ES*: the public key, parsed once */
	EVP_MD_CTX	*a_mdctx;	/* ... reset for every token */
	const char	*a_md;		/* "SHA256" ... */
	size_t		 a_ecbytes;	/* ES*: bytes of r (and of s); 0: RS* */
	struct json_tokener *a_tok;	/* reused for every payload */
	char		 a_hdr[128];	/* last header segment seen to be right */
	size_t		 a_hdrlen;
	struct auth_centry **a_buckets;	/* a_nbuckets chains */
	size_t		 a_nbuckets;	/* a power of two, >= a_cache_size */
	size_t		 a_cache_size;	/* tokens kept at most; 0: no cache */
	TAILQ_HEAD(auth_centry_lru, auth_centry) a_lru;
	struct auth_cache_stats a_cst;
};

/*
 * A verified token and the user it named: the token's bytes, then the
 * struct auth_user up to its claims, then the e_claimslen bytes of claims.
 * In its bucket's chain and in the LRU list (most recently used first).
 */
struct auth_centry {
	struct auth_centry	*e_next;	/* in its bucket */
	TAILQ_ENTRY(auth_centry) e_lru;
	uint32_t	 e_hash;
	uint32_t	 e_toklen;
	size_t		 e_claimslen;
	int64_t		 e_until;	/* ms: exp plus the leeway; INT64_MAX: no exp */
	size_t		 e_size;	/* bytes allocated */
	unsigned char	 e_data[];
};
#define AUTH_USER_HEAD	offsetof(struct auth_user, u_claims)

static const struct {
	const char	*name;
	jwt_alg_t	 alg;
	int		 pkey_type;	/* EVP_PKEY_NONE: shared secret */
} auth_algs[] = {
	{ "HS256", JWT_ALG_HS256, EVP_PKEY_NONE },
	{ "HS384", JWT_ALG_HS384, EVP_PKEY_NONE },
	{ "HS512", JWT_ALG_HS512, EVP_PKEY_NONE },
	{ "RS256", JWT_ALG_RS256, EVP_PKEY_RSA },
	{ "RS384", JWT_ALG_RS384, EVP_PKEY_RSA },
	{ "RS512", JWT_ALG_RS512, EVP_PKEY_RSA },
	{ "ES256", JWT_ALG_ES256, EVP_PKEY_EC },
	{ "ES384", JWT_ALG_ES384, EVP_PKEY_EC },
	{ "ES512", JWT_ALG_ES512, EVP_PKEY_EC },
};
#define AUTH_NALGS	(sizeof(auth_algs) / sizeof(auth_algs[0]))

static int
auth_set(const char *s)
{
	return s != NULL && *s != '\0';
}

static void
auth_reason(char *reason, size_t len, const char *why)
{
	if (reason != NULL && len > 0)
		snprintf(reason, len, "%s", why);
}

/* ---- the verified-token cache ---------------------------------------- */

/* Unlink e from its bucket and the LRU list, and free it. */
static void
auth_centry_drop(struct auth_ctx *ctx, struct auth_centry *e)
{
	struct auth_centry	**pp = &ctx->a_buckets[e->e_hash & (ctx->a_nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->e_next;
	*pp = e->e_next;
	TAILQ_REMOVE(&ctx->a_lru, e, e_lru);
	ctx->a_cst.ac_entries--;
	ctx->a_cst.ac_bytes -= e->e_size;
	OPENSSL_cleanse(e, e->e_size);	/* a token is a credential */
	free(e);
}

static void
auth_cache_flush(struct auth_ctx *ctx)
{
	while (ctx->a_cache_size > 0 && !TAILQ_EMPTY(&ctx->a_lru))
		auth_centry_drop(ctx, TAILQ_FIRST(&ctx->a_lru));
}

/* The token's bucket: its signature, the last bytes, is what varies most. */
static uint32_t
auth_cache_hash(const char *token, size_t len)
{
	size_t	 n = len < 64 ? len : 64;

	return util_hash(token + len - n, n) ^ (uint32_t)len;
}

/* 1 and *user filled when token is kept and not expired at now_ms. */
static int
auth_cache_find(struct auth_ctx *ctx, const char *token, size_t len, uint32_t h,
    int64_t now_ms, struct auth_user *user)
{
	struct auth_centry	*e;

	for (e = ctx->a_buckets[h & (ctx->a_nbuckets - 1)]; e != NULL; e = e->e_next)
		if (e->e_hash == h && e->e_toklen == len && memcmp(e->e_data, token, len) == 0)
			break;
	if (e == NULL)
		return 0;
	if (e->e_until <= now_ms) {	/* expired: verify, and refuse */
		auth_centry_drop(ctx, e);
		return 0;
	}
	if (e != TAILQ_FIRST(&ctx->a_lru)) {
		TAILQ_REMOVE(&ctx->a_lru, e, e_lru);
		TAILQ_INSERT_HEAD(&ctx->a_lru, e, e_lru);
	}
	memcpy(user, e->e_data + len, AUTH_USER_HEAD);
	memcpy(user->u_claims, e->e_data + len + AUTH_USER_HEAD, e->e_claimslen);
	user->u_claimslen = e->e_claimslen;
	return 1;
}

/* Keep a token that verified (it is not kept yet); full: the oldest goes. */
static void
auth_cache_add(struct auth_ctx *ctx, const char *token, size_t len, uint32_t h,
    const struct auth_user *user)
{
	struct auth_centry	**bucket = &ctx->a_buckets[h & (ctx->a_nbuckets - 1)];
	struct auth_centry	 *e;
	size_t			  size;

	size = sizeof(*e) + len + AUTH_USER_HEAD + user->u_claimslen;
	if ((e = malloc(size)) == NULL)
		return;				/* not kept: verified next time */
	e->e_hash = h;
	e->e_toklen = (uint32_t)len;
	e->e_claimslen = user->u_claimslen;
	e->e_until = user->u_exp_ms != 0 ? user->u_exp_ms + ctx->a_leeway : INT64_MAX;
	e->e_size = size;
	memcpy(e->e_data, token, len);
	memcpy(e->e_data + len, user, AUTH_USER_HEAD);
	memcpy(e->e_data + len + AUTH_USER_HEAD, user->u_claims, user->u_claimslen);
	if (ctx->a_cst.ac_entries >= ctx->a_cache_size) {
		auth_centry_drop(ctx, TAILQ_LAST(&ctx->a_lru, auth_centry_lru));
		ctx->a_cst.ac_evictions++;
	}
	e->e_next = *bucket;
	*bucket = e;
	TAILQ_INSERT_HEAD(&ctx->a_lru, e, e_lru);
	ctx->a_cst.ac_entries++;
	ctx->a_cst.ac_bytes += size;
}

void
auth_cache_stats(const struct auth_ctx *ctx, struct auth_cache_stats *st)
{
	*st = ctx->a_cst;
}

/* ---- context -------------------------------------------------------- */

void
auth_free(struct auth_ctx *ctx)
{
	int	 i;

	if (ctx == NULL)
		return;
	if (ctx->a_key != NULL) {
		OPENSSL_cleanse(ctx->a_key, ctx->a_keylen);
		free(ctx->a_key);
	}
	free(ctx->a_issuer);
	free(ctx->a_audience);
	for (i = 0; ctx->a_claims[i] != NULL; i++)
		free(ctx->a_claims[i]);
	auth_cache_flush(ctx);
	free(ctx->a_buckets);
	EVP_MAC_CTX_free(ctx->a_mac);
	EVP_MD_CTX_free(ctx->a_mdctx);
	EVP_PKEY_free(ctx->a_pkey);
	if (ctx->a_tok != NULL)
		json_tokener_free(ctx->a_tok);
	free(ctx);
}

static int
auth_alg_lookup(const char *name, jwt_alg_t *alg, int *pkey_type)
{
	size_t	 i;

	for (i = 0; name != NULL && i < AUTH_NALGS; i++) {
		if (strcmp(name, auth_algs[i].name) == 0) {
			*alg = auth_algs[i].alg;
			*pkey_type = auth_algs[i].pkey_type;
			return 0;
		}
	}
	return -1;
}

int
auth_alg_public_key(const char *name)
{
	jwt_alg_t	 alg;
	int		 pkey_type;

	if (auth_alg_lookup(name, &alg, &pkey_type) == -1)
		return -1;
	return pkey_type != EVP_PKEY_NONE;
}

/* 0 if pem holds a public key of the type the algorithm needs. */
/* The public key in pem, if it is one of pkey_type; NULL otherwise. */
static EVP_PKEY *
auth_read_pem(const unsigned char *pem, size_t len, int pkey_type)
{
	BIO		*bio;
	EVP_PKEY	*pkey;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return NULL;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey != NULL && EVP_PKEY_base_id(pkey) != pkey_type) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	return pkey;
}

/* A copy of the HMAC secret's len bytes. */
static int
auth_copy_key(struct auth_ctx *ctx, const char *key, size_t len, char *err,
    size_t errlen)
{
	if ((ctx->a_key = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(ctx->a_key, key, len);
	ctx->a_key[len] = '\0';
	ctx->a_keylen = len;
	return 0;
}

static int
auth_load_pubkey(struct auth_ctx *ctx, const struct auth_params *p,
    int pkey_type, char *err, size_t errlen)
{
	const char	*name = p->ap_public_key_name ? p->ap_public_key_name : "";
	const char	*why = NULL;

	if (p->ap_public_key == NULL) {
		snprintf(err, errlen, "jwt_algorithm %s needs jwt_public_key",
		    p->ap_algorithm);
		return -1;
	}
	if (p->ap_public_keylen == 0)
		why = "empty";
	else if (p->ap_public_keylen > AUTH_PEM_MAX)
		why = "too large for a public key";
	else if ((ctx->a_pkey = auth_read_pem((const unsigned char *)p->ap_public_key,
	    p->ap_public_keylen, pkey_type)) == NULL)
		why = pkey_type == EVP_PKEY_RSA ? "not a PEM RSA public key" :
		    "not a PEM EC public key";
	if (why != NULL) {
		snprintf(err, errlen, "jwt_public_key%s%s: %s", *name ? " " : "",
		    name, why);
		return -1;
	}
	return 0;	/* the PEM itself is not kept: a_pkey is the key */
}

static int
auth_load_secret(struct auth_ctx *ctx, const struct auth_params *p,
    char *err, size_t errlen)
{
	if (p->ap_secret == NULL || p->ap_secretlen == 0) {
		snprintf(err, errlen, "jwt_algorithm %s needs a non-empty "
		    "jwt_secret", p->ap_algorithm);
		return -1;
	}
	return auth_copy_key(ctx, p->ap_secret, p->ap_secretlen, err, errlen);
}

static int
auth_copy_claims(struct auth_ctx *ctx, const struct auth_params *p,
    char *err, size_t errlen)
{
	int	 i, n;

	if (auth_set(p->ap_issuer) &&
	    (ctx->a_issuer = strdup(p->ap_issuer)) == NULL)
		goto nomem;
	if (auth_set(p->ap_audience) &&
	    (ctx->a_audience = strdup(p->ap_audience)) == NULL)
		goto nomem;
	for (i = 0, n = 0; p->ap_claims != NULL && p->ap_claims[i] != NULL; i++) {
		if (strcmp(p->ap_claims[i], "userId") == 0)
			continue;	/* the user id, always kept */
		if (n == CHAN_CLAIMS_MAX) {
			snprintf(err, errlen, "more than %d claims to keep", CHAN_CLAIMS_MAX);
			return -1;
		}
		if ((ctx->a_claims[n++] = strdup(p->ap_claims[i])) == NULL)
			goto nomem;
	}
	return 0;
 nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/*
 * The HMAC of the HS* algorithms, keyed once: libjwt re-keys and parses
 * with jansson on every token (~9 us); this path costs one HMAC plus a small
 * json-c parse.
 */
static const char *
auth_digest(jwt_alg_t alg)
{
	switch (alg) {
	case JWT_ALG_HS256:
	case JWT_ALG_RS256:
	case JWT_ALG_ES256:
		return "SHA256";
	case JWT_ALG_HS384:
	case JWT_ALG_RS384:
	case JWT_ALG_ES384:
		return "SHA384";
	default:
		return "SHA512";
	}
}

/*
 * RS*, ES*: the key a_pkey is already; a digest context to reuse, and for
 * ES* the size of r and of s in a JWS signature (RFC 7518 3.4: the
 * curve's order in bytes, r and s each padded to it).
 */
static int
auth_pkey_new(struct auth_ctx *ctx, char *err, size_t errlen)
{
	ctx->a_md = auth_digest(ctx->a_alg);
	if (EVP_PKEY_base_id(ctx->a_pkey) == EVP_PKEY_EC)
		ctx->a_ecbytes = ((size_t)EVP_PKEY_get_bits(ctx->a_pkey) + 7) / 8;
	if ((ctx->a_mdctx = EVP_MD_CTX_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
auth_mac_new(struct auth_ctx *ctx, char *err, size_t errlen)
{
	EVP_MAC		*mac;
	OSSL_PARAM	 params[2];
	const char	*digest = auth_digest(ctx->a_alg);

	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)(uintptr_t)digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx->a_mac = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(ctx->a_mac, ctx->a_key, ctx->a_keylen, params) != 1) {
		EVP_MAC_free(mac);
		snprintf(err, errlen, "cannot set up HMAC-%s", digest);
		return -1;
	}
	EVP_MAC_free(mac);
	ctx->a_maclen = EVP_MAC_CTX_get_mac_size(ctx->a_mac);
	return 0;
}

struct auth_ctx *
auth_new(const struct auth_params *p, char *err, size_t errlen)
{
	struct auth_ctx	*ctx;
	int		 pkey_type, rv;
	jwt_alg_t	 alg;

	if (auth_alg_lookup(p->ap_algorithm, &alg, &pkey_type) == -1) {
		snprintf(err, errlen, "jwt_algorithm \"%s\" not supported "
		    "(HS256/384/512, RS256/384/512, ES256/384/512)",
		    p->ap_algorithm ? p->ap_algorithm : "");
		return NULL;
	}
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctx->a_alg = alg;
	ctx->a_leeway = p->ap_leeway < 0 ? 0 : p->ap_leeway;
	ctx->a_require_exp = p->ap_require_exp;
	TAILQ_INIT(&ctx->a_lru);
	if (p->ap_cache_size > 0) {
		for (ctx->a_nbuckets = 1; ctx->a_nbuckets < p->ap_cache_size;)
			ctx->a_nbuckets <<= 1;
		if ((ctx->a_buckets = calloc(ctx->a_nbuckets, sizeof(*ctx->a_buckets))) == NULL) {
			snprintf(err, errlen, "token_cache: out of memory");
			free(ctx);
			return NULL;
		}
		ctx->a_cache_size = p->ap_cache_size;
	}
	if (pkey_type == EVP_PKEY_NONE)
		rv = auth_load_secret(ctx, p, err, errlen);
	else
		rv = auth_load_pubkey(ctx, p, pkey_type, err, errlen);
	if (rv == -1 || auth_copy_claims(ctx, p, err, errlen) == -1 ||
	    (pkey_type == EVP_PKEY_NONE ? auth_mac_new(ctx, err, errlen) :
	    auth_pkey_new(ctx, err, errlen)) == -1) {
		auth_free(ctx);
		return NULL;
	}
	if ((ctx->a_tok = json_tokener_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		auth_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- verification --------------------------------------------------- */

void
auth_anonymous(struct auth_user *user)
{
	memset(user, 0, sizeof(*user));
}

/*
 * Claims are read with json-c from the whole payload object (libjwt 1.10's
 * jwt_get_grant_int() answered 0 for a float, a boolean or null alike,
 * which cannot tell "exp": null from "exp": 0).
 */

/*
 * A NumericDate claim in milliseconds: 1 present (*v set), 0 absent, -1
 * not a number.  Non-integral dates (RFC 7519 allows them) keep their
 * milliseconds.
 */
/* 9999-12-31T23:59:59Z: a later date is this one (it prints, and times in ms fit) */
#define AUTH_DATE_MAX	INT64_C(253402300799)

static int
auth_numeric_date(struct json_object *claims, const char *name, int64_t *v)
{
	struct json_object	*o;
	double			 d;
	int64_t			 s;

	if (!json_object_object_get_ex(claims, name, &o))
		return 0;
	if (json_object_is_type(o, json_type_int)) {
		/* before 1970 is as good as 1970 for exp and nbf */
		s = json_object_get_int64(o);
		*v = s > AUTH_DATE_MAX ? AUTH_DATE_MAX * 1000 : s < 0 ? 0 : s * 1000;
	} else if (!json_object_is_type(o, json_type_double))
		return -1;
	else {
		d = json_object_get_double(o);
		if (d != d)
			return -1;	/* NaN is no date */
		*v = d >= (double)AUTH_DATE_MAX ? AUTH_DATE_MAX * 1000 : d <= 0 ? 0 :
		    (int64_t)(d * 1000.0);
	}
	return 1;
}

static const char *
auth_check_times(struct auth_ctx *ctx, struct json_object *claims, int64_t now_ms,
    struct auth_user *user)
{
	int64_t	 exp, nbf;
	int	 rv;

	if ((rv = auth_numeric_date(claims, "exp", &exp)) == -1)
		return "invalid exp claim";
	if (rv == 1) {
		if (exp + ctx->a_leeway <= now_ms)
			return "token expired";
		user->u_exp_ms = exp;
	} else if (ctx->a_require_exp)
		return "missing exp claim";
	if ((rv = auth_numeric_date(claims, "nbf", &nbf)) == -1)
		return "invalid nbf claim";
	if (rv == 1 && nbf > now_ms + ctx->a_leeway)
		return "token not yet valid";
	return NULL;
}

static int
auth_str_is(struct json_object *o, const char *want)
{
	return json_object_is_type(o, json_type_string) &&
	    (size_t)json_object_get_string_len(o) == strlen(want) &&
	    strcmp(json_object_get_string(o), want) == 0;
}

/* aud: the configured audience, or an array holding it (RFC 7519 4.1.3). */
static int
auth_aud_ok(struct json_object *aud, const char *want)
{
	size_t	 i, n;

	if (auth_str_is(aud, want))
		return 1;
	if (!json_object_is_type(aud, json_type_array))
		return 0;
	n = json_object_array_length(aud);
	for (i = 0; i < n; i++)
		if (auth_str_is(json_object_array_get_idx(aud, i), want))
			return 1;
	return 0;
}

static const char *
auth_check_iss_aud(struct auth_ctx *ctx, struct json_object *claims)
{
	struct json_object	*o;

	if (ctx->a_issuer != NULL &&
	    (!json_object_object_get_ex(claims, "iss", &o) ||
	    !auth_str_is(o, ctx->a_issuer)))
		return "issuer mismatch";
	if (ctx->a_audience != NULL &&
	    (!json_object_object_get_ex(claims, "aud", &o) ||
	    !auth_aud_ok(o, ctx->a_audience)))
		return "audience mismatch";
	return NULL;
}

/*
 * An optional string claim into out: NULL ok (*has says whether it was
 * there; JSON null counts as absent), else the reason.
 */
static const char *
auth_opt_string(struct json_object *claims, const char *name, char *out,
    size_t outlen, int *has)
{
	struct json_object	*o;
	size_t			 len;

	*has = 0;
	*out = '\0';
	if (!json_object_object_get_ex(claims, name, &o) || o == NULL)
		return NULL;
	if (!json_object_is_type(o, json_type_string))
		return "invalid claim type";
	len = (size_t)json_object_get_string_len(o);
	if (len >= outlen)
		return "claim too long";
	if (memchr(json_object_get_string(o), '\0', len) != NULL)
		return "invalid claim type";
	memcpy(out, json_object_get_string(o), len + 1);
	*has = 1;
	return NULL;
}

/*
 * An identity claim (userId or sub): a non-empty string, or an integer
 * written in decimal.  1 found, 0 absent (or null), -1 invalid (*why).
 */
static int
auth_id_claim(struct json_object *claims, const char *name,
    struct auth_user *user, const char **why)
{
	struct json_object	*o;
	int			 has;

	*why = NULL;
	if (json_object_object_get_ex(claims, name, &o) &&
	    json_object_is_type(o, json_type_int)) {
		/* json-c prints the integer it stored, signed or not */
		snprintf(user->u_id, sizeof(user->u_id), "%s",
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		return 1;
	}
	if ((*why = auth_opt_string(claims, name, user->u_id,
	    sizeof(user->u_id), &has)) != NULL)
		return -1;
	if (has && user->u_id[0] == '\0') {
		*why = "empty user id";
		return -1;
	}
	return has;
}

/*
 * The token's id (jti), kept as its digest for the revocation table: a
 * string (an empty one is no id); any other JSON value by its JSON text,
 * so that issuers with odd ids can still revoke them.
 */
static const char *
auth_jti(struct json_object *claims, struct auth_user *user)
{
	struct json_object	*o;
	const char		*s;
	size_t			 len;

	user->u_has_jti = 0;
	if (!json_object_object_get_ex(claims, "jti", &o) || o == NULL)
		return NULL;
	if (json_object_is_type(o, json_type_string)) {
		s = json_object_get_string(o);
		len = (size_t)json_object_get_string_len(o);
	} else {
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		len = strlen(s);
	}
	if (len > 0) {
		rvk_digest(s, len, user->u_jti);
		user->u_has_jti = 1;
	}
	return NULL;
}

static const char *
auth_fill_user(struct json_object *claims, struct auth_user *user)
{
	const char	*why;
	int		 rv;

	if ((rv = auth_id_claim(claims, "userId", user, &why)) == 0)
		rv = auth_id_claim(claims, "sub", user, &why);
	if (rv == -1)
		return why;
	if (rv == 0)
		return "missing userId or sub claim";
	if ((why = auth_opt_string(claims, "email", user->u_email,
	    sizeof(user->u_email), &user->u_has_email)) != NULL)
		return why;
	if ((why = auth_opt_string(claims, "role", user->u_role,
	    sizeof(user->u_role), &user->u_has_role)) != NULL)
		return why;
	user->u_admin = user->u_has_role && strcmp(user->u_role, "admin") == 0;
	if ((why = auth_jti(claims, user)) != NULL)
		return why;
	user->u_authenticated = 1;
	return NULL;
}

int
auth_user_add_claim(struct auth_user *user, const char *name, const char *v, size_t vlen)
{
	size_t	 nlen = strlen(name);

	if (nlen + vlen + 2 > sizeof(user->u_claims) - user->u_claimslen)
		return -1;
	memcpy(user->u_claims + user->u_claimslen, name, nlen + 1);
	user->u_claimslen += nlen + 1;
	memcpy(user->u_claims + user->u_claimslen, v, vlen);
	user->u_claims[user->u_claimslen + vlen] = '\0';
	user->u_claimslen += vlen + 1;
	return 0;
}

const char *
auth_user_claim(const struct auth_user *user, const char *name, size_t *len)
{
	const char	*p, *end, *v;

	if (user == NULL || !user->u_authenticated)
		return NULL;
	if (strcmp(name, "userId") == 0) {
		*len = strlen(user->u_id);
		return user->u_id;
	}
	p = user->u_claims;
	end = p + user->u_claimslen;
	while (p < end) {
		v = p + strlen(p) + 1;
		if (strcmp(p, name) == 0) {
			*len = strlen(v);
			return v;
		}
		p = v + strlen(v) + 1;
	}
	return NULL;
}

/*
 * Keep the claims the namespace patterns use.  A value that could not be
 * part of a channel name (not a string or an integer, too long, a NUL)
 * is not kept: it fills no channel, and the token is still good.
 */
static void
auth_keep_claims(struct auth_ctx *ctx, struct json_object *claims, struct auth_user *user)
{
	struct json_object	*o;
	const char		*v;
	size_t			 len;
	int			 i;

	for (i = 0; ctx->a_claims[i] != NULL; i++) {
		if (!json_object_object_get_ex(claims, ctx->a_claims[i], &o))
			continue;
		if (json_object_is_type(o, json_type_int))
			v = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		else if (json_object_is_type(o, json_type_string))
			v = json_object_get_string(o);
		else
			continue;
		len = json_object_is_type(o, json_type_string) ?
		    (size_t)json_object_get_string_len(o) : strlen(v);
		if (len == 0 || len > RT_CHANNEL_MAX || memchr(v, '\0', len) != NULL)
			continue;
		(void)auth_user_add_claim(user, ctx->a_claims[i], v, len);
	}
}

/* Everything after the signature; the claims alone decide. */
static const char *
auth_check_claims(struct auth_ctx *ctx, struct json_object *claims,
    int64_t now_ms, struct auth_user *user)
{
	const char	*why;

	if ((why = auth_check_times(ctx, claims, now_ms, user)) != NULL ||
	    (why = auth_check_iss_aud(ctx, claims)) != NULL ||
	    (why = auth_fill_user(claims, user)) != NULL)
		return why;
	auth_keep_claims(ctx, claims, user);
	return NULL;
}

/*
 * The "alg" of a token's header, read without libjwt (whose keyless decode
 * does not keep the header as sent): base64url-decode the first segment
 * and look it up with json-c.  0 and alg filled, or -1.
 */
static int
auth_header_alg(const char *tok, char *alg, size_t alglen)
{
	const char		*dot = strchr(tok, '.');
	unsigned char		 b64[1024], raw[800];
	struct json_object	*hdr, *v;
	struct json_tokener	*jt;
	size_t			 n, i;
	int			 len, rv = -1;

	if (dot == NULL || (n = (size_t)(dot - tok)) == 0 || n + 4 > sizeof(b64))
		return -1;
	for (i = 0; i < n; i++) {
		if (tok[i] == '+' || tok[i] == '/' || tok[i] == '=')
			return -1;	/* base64url, unpadded (RFC 7515 2) */
		b64[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : (unsigned char)tok[i];
	}
	while (i % 4 != 0)
		b64[i++] = '=';
	if ((len = EVP_DecodeBlock(raw, b64, (int)i)) < 0)
		return -1;
	while (len > 0 && raw[len - 1] == '\0')	/* padding residue */
		len--;
	if ((jt = json_tokener_new()) == NULL)
		return -1;
	hdr = json_tokener_parse_ex(jt, (const char *)raw, len);
	if (hdr != NULL && json_tokener_get_parse_end(jt) != (size_t)len) {
		json_object_put(hdr);	/* something after the header's JSON */
		hdr = NULL;
	}
	json_tokener_free(jt);
	if (hdr == NULL || !json_object_is_type(hdr, json_type_object)) {
		json_object_put(hdr);
		return -1;
	}
	/* we understand no extension, so a header that makes one critical is refused (RFC 7515 4.1.11) */
	if (json_object_object_get_ex(hdr, "crit", NULL)) {
		json_object_put(hdr);
		return -1;
	}
	if (json_object_object_get_ex(hdr, "alg", &v) && json_object_is_type(v, json_type_string)) {
		snprintf(alg, alglen, "%s", json_object_get_string(v));
		rv = 0;
	}
	json_object_put(hdr);
	return rv;
}

/* base64url without padding into out; the decoded length, or -1. */
static ssize_t
auth_b64url(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	static signed char	 map[256];
	static int		 ready;
	uint32_t		 acc = 0;
	size_t			 i, n = 0;
	int			 bits = 0, v;

	if (!ready) {
		memset(map, -1, sizeof(map));
		for (i = 0; i < 64; i++)
			map[(unsigned char)"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789-_"[i]] = (signed char)i;
		ready = 1;
	}
	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > outlen)
		return -1;
	/* whole quanta: four characters, three bytes */
	for (i = 0; i + 4 <= len; i += 4) {
		v = map[(unsigned char)in[i]] | map[(unsigned char)in[i + 1]] |
		    map[(unsigned char)in[i + 2]] | map[(unsigned char)in[i + 3]];
		if (v < 0)
			return -1;
		acc = (uint32_t)map[(unsigned char)in[i]] << 18 |
		    (uint32_t)map[(unsigned char)in[i + 1]] << 12 |
		    (uint32_t)map[(unsigned char)in[i + 2]] << 6 |
		    (uint32_t)map[(unsigned char)in[i + 3]];
		out[n++] = (unsigned char)(acc >> 16);
		out[n++] = (unsigned char)(acc >> 8);
		out[n++] = (unsigned char)acc;
	}
	for (acc = 0; i < len; i++) {
		if ((v = map[(unsigned char)in[i]]) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return (ssize_t)n;
}

/* ES*: the JWS signature r || s (n bytes each) as DER, in der; its length or -1. */
static int
auth_ecdsa_der(const unsigned char *sig, size_t n, unsigned char *der, size_t derlen)
{
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	unsigned char	*p = der;
	int		 len = -1;

	if ((es = ECDSA_SIG_new()) == NULL)
		return -1;
	r = BN_bin2bn(sig, (int)n, NULL);
	s = BN_bin2bn(sig + n, (int)n, NULL);
	if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
	} else if ((len = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)len > derlen)
		len = -1;
	else
		len = i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	return len;
}

/* 1 if sig is the signature of the tbslen bytes at tbs under the key. */
static int
auth_sig_ok(struct auth_ctx *ctx, const char *tbs, size_t tbslen,
    const unsigned char *sig, size_t siglen)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE], der[160];
	size_t		 maclen;
	int		 derlen;

	if (ctx->a_mac != NULL)
		return EVP_MAC_init(ctx->a_mac, NULL, 0, NULL) == 1 &&
		    EVP_MAC_update(ctx->a_mac, (const unsigned char *)tbs, tbslen) == 1 &&
		    EVP_MAC_final(ctx->a_mac, mac, &maclen, sizeof(mac)) == 1 &&
		    siglen == maclen && CRYPTO_memcmp(sig, mac, maclen) == 0;
	if (ctx->a_ecbytes > 0) {
		if (siglen != 2 * ctx->a_ecbytes ||
		    (derlen = auth_ecdsa_der(sig, ctx->a_ecbytes, der, sizeof(der))) == -1)
			return 0;
		sig = der;
		siglen = (size_t)derlen;
	}
	return EVP_MD_CTX_reset(ctx->a_mdctx) == 1 &&
	    EVP_DigestVerifyInit_ex(ctx->a_mdctx, NULL, ctx->a_md, NULL, NULL,
	    ctx->a_pkey, NULL) == 1 &&
	    EVP_DigestVerify(ctx->a_mdctx, sig, siglen, (const unsigned char *)tbs,
	    tbslen) == 1;
}

/* tok is len bytes, no NUL among them, not terminated. */
static const char *
auth_check(struct auth_ctx *ctx, const char *tok, size_t len, int64_t now_ms,
    struct auth_user *user)
{
	const char		*d1, *d2, *why, *end = tok + len;
	unsigned char		 sig[AUTH_SIG_MAX];
	unsigned char		 payload[RT_TOKEN_MAX];
	char			 alg[32];
	struct json_tokener	*jt;
	struct json_object	*claims;
	ssize_t			 siglen, plen;

	if ((d1 = memchr(tok, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1))) == NULL ||
	    memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
		return "malformed token";
	if (d1 == tok)
		return "malformed token";	/* no header, so no alg */
	/* one issuer sends one header: decode it only when it changes */
	if ((size_t)(d1 - tok) != ctx->a_hdrlen || memcmp(tok, ctx->a_hdr, ctx->a_hdrlen) != 0) {
		if (auth_header_alg(tok, alg, sizeof(alg)) == -1)
			return "malformed token";
		if (strcmp(alg, jwt_alg_str(ctx->a_alg)) != 0)
			return "algorithm not allowed";
		if ((size_t)(d1 - tok) <= sizeof(ctx->a_hdr)) {
			ctx->a_hdrlen = (size_t)(d1 - tok);
			memcpy(ctx->a_hdr, tok, ctx->a_hdrlen);
		}
	}
	siglen = auth_b64url(d2 + 1, (size_t)(end - d2 - 1), sig, sizeof(sig));
	if (siglen <= 0 || !auth_sig_ok(ctx, tok, (size_t)(d2 - tok), sig, (size_t)siglen))
		return "signature verification failed";
	if ((plen = auth_b64url(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload))) < 0)
		return "malformed token";
	jt = ctx->a_tok;
	json_tokener_reset(jt);
	claims = json_tokener_parse_ex(jt, (const char *)payload, (int)plen);
	if (claims == NULL || json_tokener_get_parse_end(jt) != (size_t)plen ||
	    !json_object_is_type(claims, json_type_object))
		why = "malformed token";
	else
		why = auth_check_claims(ctx, claims, now_ms, user);
	json_object_put(claims);
	return why;
}

int
auth_verify(struct auth_ctx *ctx, const char *token, size_t len, int64_t now_ms,
    struct auth_user *user, char *reason, size_t reasonlen)
{
	const char	*why;
	uint32_t	 h = 0;
	int		 cached;

	auth_anonymous(user);
	cached = ctx->a_cache_size > 0 && token != NULL && len > 0 &&
	    len <= AUTH_CACHE_TOKEN_MAX;
	if (cached) {
		h = auth_cache_hash(token, len);
		if (auth_cache_find(ctx, token, len, h, now_ms, user)) {
			ctx->a_cst.ac_hits++;
			return 1;
		}
	}
	if (len > RT_TOKEN_MAX)
		why = "token too long";
	else if (token == NULL || len == 0 || memchr(token, '\0', len) != NULL)
		why = "malformed token";
	else
		why = auth_check(ctx, token, len, now_ms, user);	/* in place */
	if (why == NULL) {
		if (ctx->a_cache_size > 0)
			ctx->a_cst.ac_misses++;
		if (cached)
			auth_cache_add(ctx, token, len, h, user);
		return 0;
	}
	auth_anonymous(user);
	auth_reason(reason, reasonlen, why);
	return -1;
}
