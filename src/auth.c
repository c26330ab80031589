/*
 * JWT verification at the handshake (libjwt 1.10, v1 API), and finding the
 * token in the upgrade request.
 *
 * libjwt 1.10's jwt_decode() takes the algorithm from the token itself, so
 * the configured algorithm is enforced here: without that check an
 * RS256-configured server would accept an HS256 token whose HMAC key is the
 * public key PEM (algorithm confusion).  Time-based and issuer/audience
 * claims are not checked by libjwt 1.10 at all; they are checked here too.
 *
 * All key material lives in struct auth_ctx so that a prepared HMAC or
 * public key context can be cached there later without an API change.
 */
#include <errno.h>
#include <limits.h>
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

#include "realtimed.h"
#include "config.h"
#include "http.h"
#include "auth.h"

#define AUTH_PEM_MAX		(64 * 1024)	/* larger is not a public key */
#define AUTH_STR_MAX		1024		/* iss / aud we compare with */

struct auth_ctx {
	jwt_alg_t	 a_alg;
	unsigned char	*a_key;		/* HMAC secret or public key PEM */
	size_t		 a_keylen;
	int64_t		 a_leeway;	/* milliseconds */
	char		*a_issuer;	/* NULL: not checked */
	char		*a_audience;	/* NULL: not checked */
};

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

/* ---- context -------------------------------------------------------- */

void
auth_free(struct auth_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->a_key != NULL) {
		OPENSSL_cleanse(ctx->a_key, ctx->a_keylen);
		free(ctx->a_key);
	}
	free(ctx->a_issuer);
	free(ctx->a_audience);
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

/* Read the whole file; NUL-terminated (libjwt's PEM reader wants that). */
static unsigned char *
auth_read_file(const char *path, size_t *lenp)
{
	FILE		*fp;
	unsigned char	*buf;
	size_t		 n;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	if ((buf = malloc(AUTH_PEM_MAX + 1)) == NULL) {
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, AUTH_PEM_MAX + 1, fp);
	if (ferror(fp) || n == 0 || n > AUTH_PEM_MAX) {
		fclose(fp);
		free(buf);
		errno = n > AUTH_PEM_MAX ? EFBIG : EIO;
		return NULL;
	}
	fclose(fp);
	buf[n] = '\0';
	*lenp = n;
	return buf;
}

/* 0 if pem holds a public key of the type the algorithm needs. */
static int
auth_check_pem(const unsigned char *pem, size_t len, int pkey_type)
{
	BIO		*bio;
	EVP_PKEY	*pkey;
	int		 ok;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return -1;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		return -1;
	ok = EVP_PKEY_get_base_id(pkey) == pkey_type;
	EVP_PKEY_free(pkey);
	return ok ? 0 : -1;
}

static int
auth_load_pubkey(struct auth_ctx *ctx, const struct rt_config *conf,
    int pkey_type, char *err, size_t errlen)
{
	const char	*path = conf->c_jwt_public_key;

	if (!auth_set(path)) {
		snprintf(err, errlen, "jwt_algorithm %s needs jwt_public_key",
		    conf->c_jwt_algorithm);
		return -1;
	}
	if ((ctx->a_key = auth_read_file(path, &ctx->a_keylen)) == NULL) {
		snprintf(err, errlen, "jwt_public_key %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (auth_check_pem(ctx->a_key, ctx->a_keylen, pkey_type) == -1) {
		snprintf(err, errlen, "jwt_public_key %s: not a PEM %s public key",
		    path, pkey_type == EVP_PKEY_RSA ? "RSA" : "EC");
		return -1;
	}
	return 0;
}

static int
auth_load_secret(struct auth_ctx *ctx, const struct rt_config *conf,
    char *err, size_t errlen)
{
	if (!auth_set(conf->c_jwt_secret)) {
		snprintf(err, errlen, "jwt_algorithm %s needs a non-empty "
		    "jwt_secret", conf->c_jwt_algorithm);
		return -1;
	}
	ctx->a_keylen = strlen(conf->c_jwt_secret);
	if ((ctx->a_key = malloc(ctx->a_keylen + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(ctx->a_key, conf->c_jwt_secret, ctx->a_keylen + 1);
	return 0;
}

static int
auth_copy_claims(struct auth_ctx *ctx, const struct rt_config *conf,
    char *err, size_t errlen)
{
	if (auth_set(conf->c_jwt_issuer) &&
	    (ctx->a_issuer = strdup(conf->c_jwt_issuer)) == NULL)
		goto nomem;
	if (auth_set(conf->c_jwt_audience) &&
	    (ctx->a_audience = strdup(conf->c_jwt_audience)) == NULL)
		goto nomem;
	return 0;
 nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

struct auth_ctx *
auth_new(const struct rt_config *conf, char *err, size_t errlen)
{
	struct auth_ctx	*ctx;
	int		 pkey_type, rv;
	jwt_alg_t	 alg;

	if (auth_alg_lookup(conf->c_jwt_algorithm, &alg, &pkey_type) == -1) {
		snprintf(err, errlen, "jwt_algorithm \"%s\" not supported "
		    "(HS256/384/512, RS256/384/512, ES256/384/512)",
		    conf->c_jwt_algorithm ? conf->c_jwt_algorithm : "");
		return NULL;
	}
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctx->a_alg = alg;
	ctx->a_leeway = conf->c_jwt_leeway < 0 ? 0 : conf->c_jwt_leeway;
	if (pkey_type == EVP_PKEY_NONE)
		rv = auth_load_secret(ctx, conf, err, errlen);
	else
		rv = auth_load_pubkey(ctx, conf, pkey_type, err, errlen);
	if (rv == -1 || auth_copy_claims(ctx, conf, err, errlen) == -1) {
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
 * A grant as JSON text (libjwt allocates it), or NULL if absent.  Used
 * only off the common path, to tell "absent" from "of another type".
 */
static int
auth_grant_is(jwt_t *jwt, const char *name, const char *json)
{
	char	*s;
	int	 eq;

	if ((s = jwt_get_grants_json(jwt, name)) == NULL)
		return json == NULL;
	eq = json != NULL && strcmp(s, json) == 0;
	free(s);
	return eq;
}

static int
auth_grant_present(jwt_t *jwt, const char *name)
{
	return !auth_grant_is(jwt, name, NULL);
}

/*
 * A NumericDate claim: 1 present (*v set), 0 absent, -1 not a number.
 * Non-integral dates (RFC 7519 allows them) are truncated.
 */
static int
auth_numeric_date(jwt_t *jwt, const char *name, int64_t *v)
{
	struct json_object	*o;
	char			*s;
	int			 rv = -1;

	errno = 0;
	*v = jwt_get_grant_int(jwt, name);
	if (errno == 0)
		return 1;
	if ((s = jwt_get_grants_json(jwt, name)) == NULL)
		return 0;
	if ((o = json_tokener_parse(s)) != NULL &&
	    json_object_is_type(o, json_type_double)) {
		double d = json_object_get_double(o);
		if (d > -9.2e15 && d < 9.2e15) {	/* fits in ms, too */
			*v = (int64_t)d;
			rv = 1;
		}
	}
	json_object_put(o);
	free(s);
	return rv;
}

/* Seconds to milliseconds without overflow; dates past year 292M clamp. */
static int64_t
auth_ms(int64_t s)
{
	if (s > INT64_MAX / 4000)
		return INT64_MAX / 4;
	if (s < -(INT64_MAX / 4000))
		return -(INT64_MAX / 4);
	return s * 1000;
}

static const char *
auth_check_times(struct auth_ctx *ctx, jwt_t *jwt, time_t now,
    struct auth_user *user)
{
	int64_t	 exp, nbf, now_ms = auth_ms(now);
	int	 rv;

	if ((rv = auth_numeric_date(jwt, "exp", &exp)) == -1)
		return "invalid exp claim";
	if (rv == 1) {
		if (auth_ms(exp) + ctx->a_leeway <= now_ms)
			return "token expired";
		user->u_exp = (time_t)exp;
	}
	if ((rv = auth_numeric_date(jwt, "nbf", &nbf)) == -1)
		return "invalid nbf claim";
	if (rv == 1 && auth_ms(nbf) > now_ms + ctx->a_leeway)
		return "token not yet valid";
	return NULL;
}

static int
auth_aud_array_has(const char *json, const char *want)
{
	struct json_object	*o, *e;
	size_t			 i, n;
	int			 found = 0;

	if ((o = json_tokener_parse(json)) == NULL)
		return 0;
	if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n && !found; i++) {
			e = json_object_array_get_idx(o, i);
			found = json_object_is_type(e, json_type_string) &&
			    strcmp(json_object_get_string(e), want) == 0;
		}
	}
	json_object_put(o);
	return found;
}

static const char *
auth_check_iss_aud(struct auth_ctx *ctx, jwt_t *jwt)
{
	const char	*s;
	char		*json;
	int		 ok;

	if (ctx->a_issuer != NULL) {
		s = jwt_get_grant(jwt, "iss");
		if (s == NULL || strcmp(s, ctx->a_issuer) != 0)
			return "issuer mismatch";
	}
	if (ctx->a_audience != NULL) {
		if ((s = jwt_get_grant(jwt, "aud")) != NULL)
			ok = strcmp(s, ctx->a_audience) == 0;
		else if ((json = jwt_get_grants_json(jwt, "aud")) != NULL) {
			ok = auth_aud_array_has(json, ctx->a_audience);
			free(json);
		} else
			ok = 0;
		if (!ok)
			return "audience mismatch";
	}
	return NULL;
}

/*
 * An optional string claim into out: NULL ok (*has says whether it was
 * there; JSON null counts as absent), else the reason.
 */
static const char *
auth_opt_string(jwt_t *jwt, const char *name, char *out, size_t outlen,
    int *has)
{
	const char	*s;

	*has = 0;
	*out = '\0';
	if ((s = jwt_get_grant(jwt, name)) == NULL) {
		if (auth_grant_present(jwt, name) &&
		    !auth_grant_is(jwt, name, "null"))
			return "invalid claim type";
		return NULL;
	}
	if (strlen(s) >= outlen)
		return "claim too long";
	memcpy(out, s, strlen(s) + 1);
	*has = 1;
	return NULL;
}

/*
 * An identity claim (userId or sub): a non-empty string, or an integer
 * written in decimal.  1 found, 0 absent (or null), -1 invalid (*why).
 */
static int
auth_id_claim(jwt_t *jwt, const char *name, struct auth_user *user,
    const char **why)
{
	const char	*s;
	long		 n;

	*why = NULL;
	if ((s = jwt_get_grant(jwt, name)) != NULL) {
		if (*s == '\0')
			*why = "empty user id";
		else if (strlen(s) > RT_USERID_MAX)
			*why = "claim too long";
		else
			memcpy(user->u_id, s, strlen(s) + 1);
		return *why == NULL ? 1 : -1;
	}
	errno = 0;
	n = jwt_get_grant_int(jwt, name);
	if (errno == 0) {
		snprintf(user->u_id, sizeof(user->u_id), "%ld", n);
		return 1;
	}
	if (!auth_grant_present(jwt, name) || auth_grant_is(jwt, name, "null"))
		return 0;
	*why = "invalid claim type";
	return -1;
}

static const char *
auth_fill_user(jwt_t *jwt, struct auth_user *user)
{
	const char	*why;
	int		 rv;

	if ((rv = auth_id_claim(jwt, "userId", user, &why)) == 0)
		rv = auth_id_claim(jwt, "sub", user, &why);
	if (rv == -1)
		return why;
	if (rv == 0)
		return "missing userId or sub claim";
	if ((why = auth_opt_string(jwt, "email", user->u_email,
	    sizeof(user->u_email), &user->u_has_email)) != NULL)
		return why;
	if ((why = auth_opt_string(jwt, "role", user->u_role,
	    sizeof(user->u_role), &user->u_has_role)) != NULL)
		return why;
	user->u_admin = user->u_has_role && strcmp(user->u_role, "admin") == 0;
	user->u_authenticated = 1;
	return NULL;
}

/*
 * jwt_decode() failed: say why.  Off the common path, so decoding once
 * more without a key to look at the header costs nothing that matters.
 */
static const char *
auth_decode_failure(struct auth_ctx *ctx, const char *tok)
{
	jwt_t		*jwt = NULL;
	const char	*why;

	if (jwt_decode(&jwt, tok, NULL, 0) != 0 || jwt == NULL)
		return "malformed token";
	if (jwt_get_alg(jwt) != ctx->a_alg)
		why = "algorithm not allowed";
	else
		why = "signature verification failed";
	jwt_free(jwt);
	return why;
}

static const char *
auth_check(struct auth_ctx *ctx, const char *tok, time_t now,
    struct auth_user *user)
{
	jwt_t		*jwt = NULL;
	const char	*why;

	if (jwt_decode(&jwt, tok, ctx->a_key, (int)ctx->a_keylen) != 0 ||
	    jwt == NULL) {
		jwt_free(jwt);
		return auth_decode_failure(ctx, tok);
	}
	/* The confusion check: libjwt verified with whatever alg was sent. */
	if (jwt_get_alg(jwt) != ctx->a_alg || jwt_get_alg(jwt) == JWT_ALG_NONE)
		why = "algorithm not allowed";
	else if ((why = auth_check_times(ctx, jwt, now, user)) == NULL &&
	    (why = auth_check_iss_aud(ctx, jwt)) == NULL)
		why = auth_fill_user(jwt, user);
	jwt_free(jwt);
	return why;
}

int
auth_verify(struct auth_ctx *ctx, const char *token, size_t len, time_t now,
    struct auth_user *user, char *reason, size_t reasonlen)
{
	char		 tok[AUTH_TOKEN_MAX + 1];
	const char	*why;

	auth_anonymous(user);
	if (len > AUTH_TOKEN_MAX)
		why = "token too long";
	else if (token == NULL || len == 0 || memchr(token, '\0', len) != NULL)
		why = "malformed token";
	else {
		memcpy(tok, token, len);
		tok[len] = '\0';
		why = auth_check(ctx, tok, now, user);
	}
	if (why == NULL)
		return 0;
	auth_anonymous(user);
	auth_reason(reason, reasonlen, why);
	return -1;
}

/* ---- finding the token ---------------------------------------------- */

static void
auth_take(struct auth_token *tok, enum auth_source src, const char *s,
    size_t len)
{
	tok->t_source = src;
	if (len > AUTH_TOKEN_MAX) {
		tok->t_too_long = 1;
		return;
	}
	memcpy(tok->t_token, s, len);
	tok->t_token[len] = '\0';
	tok->t_len = len;
}

/*
 * ?token=: -2 from http_query_param() (too long, or bad percent-encoding)
 * still means a token was sent; it is refused, not skipped.  An empty
 * value is no token (a client that writes "?token=" when logged out).
 */
static int
auth_from_query(const struct http_request *req, struct auth_token *tok)
{
	long	 n;

	n = http_query_param(req, "token", tok->t_token, sizeof(tok->t_token));
	if (n == -2) {
		tok->t_source = AUTH_SRC_QUERY;
		tok->t_too_long = 1;
		tok->t_token[0] = '\0';
		return 1;
	}
	if (n <= 0) {
		tok->t_token[0] = '\0';
		return 0;
	}
	tok->t_source = AUTH_SRC_QUERY;
	tok->t_len = (size_t)n;
	return 1;
}

/* Authorization: Bearer <jwt>; other schemes are not ours to judge. */
static int
auth_from_header(const struct http_request *req, struct auth_token *tok)
{
	const struct http_header	*h;
	const char			*v;
	size_t				 len, i;

	if ((h = http_header_get(req, "Authorization")) == NULL)
		return 0;
	v = h->h_value;
	len = h->h_value_len;
	if (len < 7 || strncasecmp(v, "Bearer", 6) != 0 ||
	    (v[6] != ' ' && v[6] != '\t'))
		return 0;
	for (i = 6; i < len && (v[i] == ' ' || v[i] == '\t'); i++)
		;
	if (i == len)
		return 0;
	auth_take(tok, AUTH_SRC_HEADER, v + i, len - i);
	return 1;
}

static void
auth_find_protocol(const struct http_request *req, struct auth_token *tok)
{
	size_t		 state = 0, len;
	const char	*item;

	while (http_header_next_item(req, "Sec-WebSocket-Protocol", &state,
	    &item, &len)) {
		if (len >= 6 && memcmp(item, "token-", 6) == 0) {
			tok->t_protocol = item;
			tok->t_protocol_len = len;
			return;
		}
	}
}

void
auth_extract_token(const struct http_request *req, struct auth_token *tok)
{
	memset(tok, 0, sizeof(*tok));
	/* Found first so that it is echoed whichever source wins. */
	auth_find_protocol(req, tok);
	if (auth_from_query(req, tok) || auth_from_header(req, tok))
		return;
	if (tok->t_protocol != NULL && tok->t_protocol_len > 6)
		auth_take(tok, AUTH_SRC_PROTOCOL, tok->t_protocol + 6,
		    tok->t_protocol_len - 6);
}
