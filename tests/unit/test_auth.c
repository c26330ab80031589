/*
 * JWT verification and token extraction.  Tokens are minted here with
 * libjwt's encoder; RSA and EC keys are generated at start into a private
 * temporary directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "realtimed.h"
#include "config.h"
#include "http.h"
#include "auth.h"
#include "channel.h"

#define SECRET		"test-secret-0123456789abcdef0123456789"
#define NOW		((time_t)1764072000)	/* 2025-11-25T12:00:00Z */
#define NOW_MS		((int64_t)NOW * 1000)

static char	 keydir[] = "/tmp/test_auth.XXXXXX";
static char	 rsa_priv[256], rsa_pub[256], ec_priv[256], ec_pub[256];
static char	 ec384_priv[256], ec384_pub[256], ec521_priv[256], ec521_pub[256];
static char	 garbage_file[256];

/* ---- fixtures ------------------------------------------------------- */

static void
write_key(EVP_PKEY *pk, const char *priv, const char *pub)
{
	FILE	*fp;

	if ((fp = fopen(priv, "w")) == NULL ||
	    !PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL))
		abort();
	fclose(fp);
	if ((fp = fopen(pub, "w")) == NULL || !PEM_write_PUBKEY(fp, pk))
		abort();
	fclose(fp);
}

static void
make_keys(void)
{
	EVP_PKEY	*pk;
	FILE		*fp;

	if (mkdtemp(keydir) == NULL)
		abort();
	snprintf(rsa_priv, sizeof(rsa_priv), "%s/rsa.key", keydir);
	snprintf(rsa_pub, sizeof(rsa_pub), "%s/rsa.pub", keydir);
	snprintf(ec_priv, sizeof(ec_priv), "%s/ec.key", keydir);
	snprintf(ec_pub, sizeof(ec_pub), "%s/ec.pub", keydir);
	snprintf(garbage_file, sizeof(garbage_file), "%s/garbage.pem", keydir);
	if ((pk = EVP_RSA_gen(2048)) == NULL)
		abort();
	write_key(pk, rsa_priv, rsa_pub);
	EVP_PKEY_free(pk);
	if ((pk = EVP_EC_gen("P-256")) == NULL)
		abort();
	write_key(pk, ec_priv, ec_pub);
	EVP_PKEY_free(pk);
	snprintf(ec384_priv, sizeof(ec384_priv), "%s/ec384.key", keydir);
	snprintf(ec384_pub, sizeof(ec384_pub), "%s/ec384.pub", keydir);
	snprintf(ec521_priv, sizeof(ec521_priv), "%s/ec521.key", keydir);
	snprintf(ec521_pub, sizeof(ec521_pub), "%s/ec521.pub", keydir);
	if ((pk = EVP_EC_gen("P-384")) == NULL)
		abort();
	write_key(pk, ec384_priv, ec384_pub);
	EVP_PKEY_free(pk);
	if ((pk = EVP_EC_gen("P-521")) == NULL)
		abort();
	write_key(pk, ec521_priv, ec521_pub);
	EVP_PKEY_free(pk);
	if ((fp = fopen(garbage_file, "w")) == NULL)
		abort();
	fputs("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n"
	    "-----END PUBLIC KEY-----\n", fp);
	fclose(fp);
}

static void
remove_keys(void)
{
	unlink(rsa_priv);
	unlink(rsa_pub);
	unlink(ec_priv);
	unlink(ec_pub);
	unlink(ec384_priv);
	unlink(ec384_pub);
	unlink(ec521_priv);
	unlink(ec521_pub);
	unlink(garbage_file);
	rmdir(keydir);
}

static char *
slurp(const char *path, int *len)
{
	FILE	*fp;
	char	*buf;
	long	 n;

	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	ck_assert_ptr_nonnull(buf = calloc(1, (size_t)n + 1));
	ck_assert_int_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (int)n;
	return buf;
}

/* Public key files' text, read once each (the tests pass bytes, not names). */
static struct {
	const char	*path;
	char		*text;
	int		 len;
} pems[4];

static const char *
pem_of(const char *path, size_t *len)
{
	size_t	 i;

	for (i = 0; i < sizeof(pems) / sizeof(pems[0]); i++) {
		if (pems[i].path == NULL) {
			pems[i].path = path;
			pems[i].text = slurp(path, &pems[i].len);
		}
		if (strcmp(pems[i].path, path) == 0) {
			*len = (size_t)pems[i].len;
			return pems[i].text;
		}
	}
	ck_abort_msg("too many key files");
	return NULL;
}

static void
free_pems(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(pems) / sizeof(pems[0]); i++)
		free(pems[i].text);
}

/* Parameters for alg with secret and the public key in file pubkey. */
static struct auth_params
params_of(const char *alg, const char *secret, const char *pubkey)
{
	struct auth_params	 p;

	memset(&p, 0, sizeof(p));
	p.ap_algorithm = alg;
	p.ap_secret = secret;
	p.ap_secretlen = secret != NULL ? strlen(secret) : 0;
	if (pubkey != NULL) {
		p.ap_public_key = pem_of(pubkey, &p.ap_public_keylen);
		p.ap_public_key_name = pubkey;
	}
	return p;
}

/* A zeroed config, as config.c would leave unset keys. */
static struct rt_config
conf_of(const char *alg, const char *secret, const char *pubkey)
{
	struct rt_config	 c;

	memset(&c, 0, sizeof(c));
	c.c_jwt_algorithm = (char *)(uintptr_t)alg;
	c.c_jwt_secret = (char *)(uintptr_t)secret;
	c.c_jwt_public_key = (char *)(uintptr_t)pubkey;
	return c;
}

static struct auth_ctx *
ctx_of(const struct auth_params *p)
{
	struct auth_ctx	*ctx;
	char		 err[512] = "";

	ctx = auth_new(p, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "auth_new: %s", err);
	return ctx;
}

static struct auth_ctx *
hs256_ctx(int64_t leeway)
{
	struct auth_params	 c = params_of("HS256", SECRET, NULL);

	c.ap_leeway = leeway;
	return ctx_of(&c);
}

/* Mint a token with claims (a JSON object) signed by alg with key. */
static char *
mint(jwt_alg_t alg, const void *key, int keylen, const char *claims)
{
	jwt_t	*jwt;
	char	*tok;

	ck_assert_int_eq(jwt_new(&jwt), 0);
	if (claims != NULL && strcmp(claims, "{}") != 0)
		ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, key, keylen), 0);
	ck_assert_ptr_nonnull(tok = jwt_encode_str(jwt));
	jwt_free(jwt);
	return tok;
}

static char *
mint_hs256(const char *claims)
{
	return mint(JWT_ALG_HS256, SECRET, (int)strlen(SECRET), claims);
}

static char *
mint_pem(jwt_alg_t alg, const char *privfile, const char *claims)
{
	char	*pem, *tok;
	int	 len;

	pem = slurp(privfile, &len);
	tok = mint(alg, pem, len, claims);
	free(pem);
	return tok;
}

/* Verify; on failure the reason must not quote the token. */
static int
verify(struct auth_ctx *ctx, const char *tok, int64_t now_ms, struct auth_user *u,
    char *reason, size_t rlen)
{
	int	 rv;

	reason[0] = '\0';
	rv = auth_verify(ctx, tok, strlen(tok), now_ms, u, reason, rlen);
	if (rv == -1) {
		ck_assert_msg(reason[0] != '\0', "no reason given");
		ck_assert_msg(strlen(tok) < 8 || strstr(reason, tok) == NULL,
		    "reason contains the token");
		ck_assert(!u->u_authenticated);
	}
	return rv;
}

/* Expect a rejection of claims (HS256, leeway 0, at NOW) with reason. */
static void
expect_reject(struct auth_ctx *ctx, const char *tok, const char *want)
{
	struct auth_user	 u;
	char			 reason[128];

	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
	ck_assert_str_eq(reason, want);
}

static void
reject_claims(const char *claims, const char *want)
{
	struct auth_ctx	*ctx = hs256_ctx(0);
	char		*tok = mint_hs256(claims);

	expect_reject(ctx, tok, want);
	free(tok);
	auth_free(ctx);
}

static void
accept_claims(const char *claims, struct auth_user *u)
{
	struct auth_ctx	*ctx = hs256_ctx(0);
	char		*tok = mint_hs256(claims);
	char		 reason[128];

	ck_assert_msg(verify(ctx, tok, NOW_MS, u, reason, sizeof(reason)) == 0,
	    "rejected %s: %s", claims, reason);
	free(tok);
	auth_free(ctx);
}

/* ---- auth_new ------------------------------------------------------- */

static void
expect_message(const struct auth_ctx *ctx, const char *err, const char *mention)
{
	ck_assert_ptr_null(ctx);
	ck_assert_msg(err[0] != '\0', "no message");
	if (mention != NULL)
		ck_assert_msg(strstr(err, mention) != NULL,
		    "\"%s\" does not mention \"%s\"", err, mention);
}

static void
expect_new_fails(const struct auth_params *p, const char *mention)
{
	char	 err[512] = "";

	expect_message(auth_new(p, err, sizeof(err)), err, mention);
}

/* The same through config.c, which reads jwt_public_key. */
static void
expect_config_fails(const struct rt_config *c, const char *mention)
{
	char	 err[512] = "";

	expect_message(config_auth_new(c, err, sizeof(err)), err, mention);
}

START_TEST(test_new_hs_needs_secret)
{
	struct auth_params	 c = params_of("HS256", NULL, NULL);

	expect_new_fails(&c, "jwt_secret");
	c.ap_secret = "";
	expect_new_fails(&c, "jwt_secret");
}
END_TEST

START_TEST(test_new_rejects_unknown_and_none)
{
	const char		*bad[] = { "none", "NONE", "hs256", "XS256",
	    "", "PS256", "EdDSA" };
	struct auth_params	 c;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = params_of(bad[i], SECRET, rsa_pub);
		expect_new_fails(&c, "jwt_algorithm");
	}
	c = params_of(NULL, SECRET, NULL);
	expect_new_fails(&c, "jwt_algorithm");
}
END_TEST

START_TEST(test_new_accepts_every_supported_algorithm)
{
	const char		*hs[] = { "HS256", "HS384", "HS512" };
	const char		*rs[] = { "RS256", "RS384", "RS512" };
	const char		*es[] = { "ES256", "ES384", "ES512" };
	struct auth_params	 c;
	int			 i;

	for (i = 0; i < 3; i++) {
		c = params_of(hs[i], SECRET, NULL);
		auth_free(ctx_of(&c));
		c = params_of(rs[i], NULL, rsa_pub);
		auth_free(ctx_of(&c));
		c = params_of(es[i], NULL, ec_pub);
		auth_free(ctx_of(&c));
	}
	auth_free(NULL);
}
END_TEST

START_TEST(test_new_public_key_problems_name_the_file)
{
	struct rt_config	 c = conf_of("RS256", SECRET, NULL);
	char			 missing[300];

	expect_config_fails(&c, "jwt_public_key");
	c.c_jwt_public_key = (char *)(uintptr_t)"";
	expect_config_fails(&c, "jwt_public_key");

	snprintf(missing, sizeof(missing), "%s/nope.pem", keydir);
	c.c_jwt_public_key = missing;
	expect_config_fails(&c, missing);
	c.c_jwt_public_key = garbage_file;
	expect_config_fails(&c, garbage_file);
	c.c_jwt_public_key = rsa_priv;		/* a private key is not one */
	expect_config_fails(&c, rsa_priv);
	c.c_jwt_public_key = keydir;		/* a directory */
	expect_config_fails(&c, keydir);
}
END_TEST

START_TEST(test_new_key_type_must_fit_algorithm)
{
	struct auth_params	 c = params_of("RS256", NULL, ec_pub);

	expect_new_fails(&c, ec_pub);
	c = params_of("ES256", NULL, rsa_pub);
	expect_new_fails(&c, rsa_pub);
}
END_TEST

/* auth.c judges the bytes it is handed; where they came from is a label. */
START_TEST(test_new_takes_key_bytes)
{
	static const char	 junk[] = "-----BEGIN PUBLIC KEY-----\nnope\n"
	    "-----END PUBLIC KEY-----\n";
	struct auth_params	 c = params_of("RS256", NULL, rsa_pub);
	char			*big;

	c.ap_public_key_name = NULL;
	auth_free(ctx_of(&c));
	c.ap_public_key = junk;
	c.ap_public_keylen = sizeof(junk) - 1;
	expect_new_fails(&c, "jwt_public_key: not a PEM RSA public key");
	c.ap_public_key_name = "from-the-master";
	expect_new_fails(&c, "jwt_public_key from-the-master: not a PEM");
	c.ap_public_keylen = 0;
	expect_new_fails(&c, "empty");
	ck_assert_ptr_nonnull(big = calloc(1, 70 * 1024));
	memset(big, 'A', 70 * 1024 - 1);
	c.ap_public_key = big;
	c.ap_public_keylen = 70 * 1024 - 1;
	expect_new_fails(&c, "too large");
	free(big);
	/* a secret is bytes too: the length counts, not a NUL */
	c = params_of("HS256", SECRET "tail", NULL);
	c.ap_secretlen = strlen(SECRET);
	{
		struct auth_ctx		*ctx = ctx_of(&c);
		struct auth_user	 u;
		char			*tok = mint_hs256("{\"sub\":\"s\"}"), reason[128];

		ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
		free(tok);
		auth_free(ctx);
	}
}
END_TEST

/* An HS* configuration never reads jwt_public_key, even a missing one. */
START_TEST(test_config_reads_public_key_only_when_needed)
{
	struct rt_config	 c = conf_of("HS256", SECRET, "/nonexistent/key.pem");
	struct auth_ctx		*ctx;
	char			 err[512] = "";

	ck_assert_msg((ctx = config_auth_new(&c, err, sizeof(err))) != NULL, "%s", err);
	auth_free(ctx);
	c = conf_of("RS256", NULL, rsa_pub);
	ck_assert_msg((ctx = config_auth_new(&c, err, sizeof(err))) != NULL, "%s", err);
	auth_free(ctx);
}
END_TEST

/* ---- valid tokens --------------------------------------------------- */

START_TEST(test_hs256_valid_fills_user)
{
	struct auth_user	 u;

	accept_claims("{\"userId\":\"u1\",\"email\":\"a@b.c\",\"role\":\"admin\","
	    "\"exp\":1764075600}", &u);
	ck_assert(u.u_authenticated);
	ck_assert(u.u_admin);
	ck_assert_str_eq(u.u_id, "u1");
	ck_assert_str_eq(u.u_email, "a@b.c");
	ck_assert_str_eq(u.u_role, "admin");
	ck_assert(u.u_has_email);
	ck_assert(u.u_has_role);
	ck_assert_int_eq(u.u_exp_ms, INT64_C(1764075600000));
}
END_TEST

START_TEST(test_no_exp_means_u_exp_zero)
{
	struct auth_user	 u;

	accept_claims("{\"userId\":\"u1\"}", &u);
	ck_assert_int_eq(u.u_exp_ms, 0);
	ck_assert(!u.u_has_email);
	ck_assert(!u.u_has_role);
	ck_assert_str_eq(u.u_email, "");
	ck_assert_str_eq(u.u_role, "");
	ck_assert(!u.u_admin);
}
END_TEST

START_TEST(test_hs384_hs512_valid)
{
	struct auth_params	 c;
	struct auth_ctx		*ctx;
	struct auth_user	 u;
	char			*tok, reason[128];

	c = params_of("HS384", SECRET, NULL);
	ctx = ctx_of(&c);
	tok = mint(JWT_ALG_HS384, SECRET, (int)strlen(SECRET), "{\"sub\":\"s\"}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	free(tok);
	auth_free(ctx);

	c = params_of("HS512", SECRET, NULL);
	ctx = ctx_of(&c);
	tok = mint(JWT_ALG_HS512, SECRET, (int)strlen(SECRET), "{\"sub\":\"s\"}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	free(tok);
	auth_free(ctx);
}
END_TEST

static void
pem_roundtrip(const char *alg_name, jwt_alg_t alg, const char *priv,
    const char *pub)
{
	struct auth_params	 c = params_of(alg_name, NULL, pub);
	struct auth_ctx		*ctx = ctx_of(&c);
	struct auth_user	 u;
	char			*tok, reason[128];

	tok = mint_pem(alg, priv, "{\"userId\":\"k\",\"exp\":1764075600}");
	ck_assert_msg(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)) == 0,
	    "%s: %s", alg_name, reason);
	ck_assert_str_eq(u.u_id, "k");
	/* flip one signature character: no longer valid */
	tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
	free(tok);
	auth_free(ctx);
}

START_TEST(test_rs256_valid_and_tampered)
{
	pem_roundtrip("RS256", JWT_ALG_RS256, rsa_priv, rsa_pub);
}
END_TEST

START_TEST(test_es256_valid_and_tampered)
{
	pem_roundtrip("ES256", JWT_ALG_ES256, ec_priv, ec_pub);
}
END_TEST

/*
 * Every public-key algorithm, verified with OpenSSL against tokens libjwt
 * signed: RS384/RS512 with the RSA key, ES384 on P-384 and ES512 on P-521
 * (r and s of 48 and 66 bytes).  A signature one byte short or long, a
 * signature of another key and a signature of other bytes all fail.
 */
START_TEST(test_every_public_key_algorithm)
{
	static const struct {
		const char	*name;
		jwt_alg_t	 alg;
		const char	*priv, *pub;
	} a[] = {
		{ "RS256", JWT_ALG_RS256, rsa_priv, rsa_pub },
		{ "RS384", JWT_ALG_RS384, rsa_priv, rsa_pub },
		{ "RS512", JWT_ALG_RS512, rsa_priv, rsa_pub },
		{ "ES256", JWT_ALG_ES256, ec_priv, ec_pub },
		{ "ES384", JWT_ALG_ES384, ec384_priv, ec384_pub },
		{ "ES512", JWT_ALG_ES512, ec521_priv, ec521_pub },
	};
	struct auth_user	 u;
	struct auth_ctx		*ctx;
	struct auth_params	 p;
	char			*tok, *other, *bad, *sig, reason[128];
	size_t			 i, n;

	for (i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		pem_roundtrip(a[i].name, a[i].alg, a[i].priv, a[i].pub);
		p = params_of(a[i].name, NULL, a[i].pub);
		ctx = ctx_of(&p);
		tok = mint_pem(a[i].alg, a[i].priv, "{\"userId\":\"k\",\"exp\":1764075600}");
		other = mint_pem(a[i].alg, a[i].priv, "{\"userId\":\"m\",\"exp\":1764075600}");
		ck_assert_msg(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)) == 0,
		    "%s: %s", a[i].name, reason);
		n = strlen(tok);
		ck_assert_ptr_nonnull(bad = malloc(n + 8));
		/* the signature of another payload */
		sig = strrchr(other, '.');
		memcpy(bad, tok, (size_t)(strrchr(tok, '.') - tok));
		strcpy(bad + (strrchr(tok, '.') - tok), sig);
		ck_assert_int_eq(verify(ctx, bad, NOW_MS, &u, reason, sizeof(reason)), -1);
		ck_assert_str_eq(reason, "signature verification failed");
		/* four characters (three bytes) short, four long */
		memcpy(bad, tok, n - 4);
		bad[n - 4] = '\0';
		ck_assert_int_eq(verify(ctx, bad, NOW_MS, &u, reason, sizeof(reason)), -1);
		ck_assert_str_eq(reason, "signature verification failed");
		snprintf(bad, n + 8, "%sAAAA", tok);
		ck_assert_int_eq(verify(ctx, bad, NOW_MS, &u, reason, sizeof(reason)), -1);
		ck_assert_str_eq(reason, "signature verification failed");
		/* no signature at all */
		snprintf(bad, n + 8, "%.*s.", (int)(strrchr(tok, '.') - tok), tok);
		ck_assert_int_eq(verify(ctx, bad, NOW_MS, &u, reason, sizeof(reason)), -1);
		free(bad);
		free(other);
		free(tok);
		auth_free(ctx);
	}
	/* ES256 against a token of another EC key, and of the P-384 key */
	p = params_of("ES256", NULL, ec_pub);
	ctx = ctx_of(&p);
	tok = mint_pem(JWT_ALG_ES256, ec384_priv, "{\"userId\":\"k\"}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
	ck_assert_str_eq(reason, "signature verification failed");
	free(tok);
	auth_free(ctx);
}
END_TEST

/* ---- time ----------------------------------------------------------- */

static void
at_time(int64_t leeway, const char *claims, int64_t now_ms, int want_ok,
    const char *want_reason)
{
	struct auth_ctx		*ctx = hs256_ctx(leeway);
	struct auth_user	 u;
	char			*tok = mint_hs256(claims), reason[128];
	int			 rv;

	rv = verify(ctx, tok, now_ms, &u, reason, sizeof(reason));
	ck_assert_msg(rv == (want_ok ? 0 : -1), "%s leeway %lld: %s", claims,
	    (long long)leeway, reason);
	if (!want_ok)
		ck_assert_str_eq(reason, want_reason);
	free(tok);
	auth_free(ctx);
}

START_TEST(test_expired_token)
{
	at_time(0, "{\"sub\":\"a\",\"exp\":1764071999}", NOW_MS, 0, "token expired");
	at_time(0, "{\"sub\":\"a\",\"exp\":1000}", NOW_MS, 0, "token expired");
	at_time(0, "{\"sub\":\"a\",\"exp\":-5}", NOW_MS, 0, "token expired");
}
END_TEST

START_TEST(test_exp_equal_to_now_is_expired)
{
	at_time(0, "{\"sub\":\"a\",\"exp\":1764072000}", NOW_MS, 0, "token expired");
	at_time(0, "{\"sub\":\"a\",\"exp\":1764072001}", NOW_MS, 1, NULL);
}
END_TEST

START_TEST(test_exp_leeway_edges)
{
	/* leeway 5 s: valid while exp > now - 5 */
	at_time(5000, "{\"sub\":\"a\",\"exp\":1764071996}", NOW_MS, 1, NULL);
	at_time(5000, "{\"sub\":\"a\",\"exp\":1764071995}", NOW_MS, 0,
	    "token expired");
	/* leeway is in milliseconds: 1.5 s covers 1 s, not 2 s */
	at_time(1500, "{\"sub\":\"a\",\"exp\":1764071999}", NOW_MS, 1, NULL);
	at_time(1500, "{\"sub\":\"a\",\"exp\":1764071998}", NOW_MS, 0,
	    "token expired");
}
END_TEST

/* jwt_require_exp yes: no exp, no entry; with one, as usual. */
START_TEST(test_require_exp_refuses_token_without_exp)
{
	struct auth_params	 c = params_of("HS256", SECRET, NULL);
	struct auth_ctx		*ctx;
	struct auth_user	 u;
	char			*tok, reason[128];

	c.ap_require_exp = 1;
	ctx = ctx_of(&c);
	tok = mint_hs256("{\"userId\":\"u1\"}");
	expect_reject(ctx, tok, "missing exp claim");
	free(tok);
	tok = mint_hs256("{\"userId\":\"u1\",\"nbf\":1764071000}");
	expect_reject(ctx, tok, "missing exp claim");
	free(tok);
	tok = mint_hs256("{\"userId\":\"u1\",\"exp\":1764075600}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_int_eq(u.u_exp_ms, INT64_C(1764075600000));
	free(tok);
	tok = mint_hs256("{\"userId\":\"u1\",\"exp\":1764071000}");
	expect_reject(ctx, tok, "token expired");
	free(tok);
	auth_free(ctx);
}
END_TEST

/* The key reaches auth.c through config_auth_new(). */
START_TEST(test_require_exp_from_config)
{
	struct rt_config	 c = conf_of("HS256", SECRET, NULL);
	struct auth_ctx		*ctx;
	char			*tok, err[512] = "";

	c.c_jwt_require_exp = 1;
	ck_assert_msg((ctx = config_auth_new(&c, err, sizeof(err))) != NULL, "%s", err);
	tok = mint_hs256("{\"userId\":\"u1\"}");
	expect_reject(ctx, tok, "missing exp claim");
	auth_free(ctx);
	c.c_jwt_require_exp = 0;
	ck_assert_msg((ctx = config_auth_new(&c, err, sizeof(err))) != NULL, "%s", err);
	{
		struct auth_user	 u;
		char			 reason[128];

		ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	}
	free(tok);
	auth_free(ctx);
}
END_TEST

START_TEST(test_nbf_in_future)
{
	at_time(0, "{\"sub\":\"a\",\"nbf\":1764072001}", NOW_MS, 0,
	    "token not yet valid");
	at_time(0, "{\"sub\":\"a\",\"nbf\":1764072000}", NOW_MS, 1, NULL);
	at_time(0, "{\"sub\":\"a\",\"nbf\":1}", NOW_MS, 1, NULL);
}
END_TEST

START_TEST(test_nbf_leeway_edges)
{
	at_time(5000, "{\"sub\":\"a\",\"nbf\":1764072005}", NOW_MS, 1, NULL);
	at_time(5000, "{\"sub\":\"a\",\"nbf\":1764072006}", NOW_MS, 0,
	    "token not yet valid");
	at_time(999, "{\"sub\":\"a\",\"nbf\":1764072001}", NOW_MS, 0,
	    "token not yet valid");
	at_time(1000, "{\"sub\":\"a\",\"nbf\":1764072001}", NOW_MS, 1, NULL);
}
END_TEST

START_TEST(test_fractional_and_huge_dates)
{
	struct auth_user	 u;

	/* a fraction counts to the millisecond (RFC 7519 NumericDate) */
	at_time(0, "{\"sub\":\"a\",\"exp\":1764072000.5}", NOW_MS, 1, NULL);
	at_time(0, "{\"sub\":\"a\",\"exp\":1764072000.5}", NOW_MS + 499, 1, NULL);
	at_time(0, "{\"sub\":\"a\",\"exp\":1764072000.5}", NOW_MS + 500, 0,
	    "token expired");
	at_time(0, "{\"sub\":\"a\",\"exp\":1764071999.75}", NOW_MS, 0,
	    "token expired");
	at_time(250, "{\"sub\":\"a\",\"exp\":1764071999.75}", NOW_MS, 0,
	    "token expired");
	at_time(251, "{\"sub\":\"a\",\"exp\":1764071999.75}", NOW_MS, 1, NULL);
	at_time(0, "{\"sub\":\"a\",\"nbf\":1764072000.25}", NOW_MS + 249, 0,
	    "token not yet valid");
	at_time(0, "{\"sub\":\"a\",\"nbf\":1764072000.25}", NOW_MS + 250, 1, NULL);
	at_time(0, "{\"sub\":\"a\",\"exp\":1764072100.5}", NOW_MS, 1, NULL);
	accept_claims("{\"sub\":\"a\",\"exp\":1764072100.125}", &u);
	ck_assert_int_eq(u.u_exp_ms, INT64_C(1764072100125));
	accept_claims("{\"sub\":\"a\",\"exp\":9223372036854775807}", &u);
	at_time(0, "{\"sub\":\"a\",\"nbf\":9223372036854775807}", NOW_MS, 0,
	    "token not yet valid");
	at_time(0, "{\"sub\":\"a\",\"exp\":-9223372036854775807}", NOW_MS, 0,
	    "token expired");
}
END_TEST

START_TEST(test_non_numeric_dates_are_invalid)
{
	reject_claims("{\"sub\":\"a\",\"exp\":\"1764075600\"}", "invalid exp claim");
	reject_claims("{\"sub\":\"a\",\"exp\":null}", "invalid exp claim");
	reject_claims("{\"sub\":\"a\",\"nbf\":true}", "invalid nbf claim");
	reject_claims("{\"sub\":\"a\",\"nbf\":[1]}", "invalid nbf claim");
}
END_TEST

/* ---- signature and algorithm ---------------------------------------- */

START_TEST(test_wrong_secret_fails_signature)
{
	struct auth_ctx	*ctx = hs256_ctx(0);
	char		*tok;

	tok = mint(JWT_ALG_HS256, "another-secret", 14, "{\"sub\":\"a\"}");
	expect_reject(ctx, tok, "signature verification failed");
	free(tok);
	auth_free(ctx);
}
END_TEST

START_TEST(test_tampered_payload_fails_signature)
{
	struct auth_ctx	*ctx = hs256_ctx(0);
	char		*a, *b, *forged;
	size_t		 n;

	/* payload of b, signature of a */
	a = mint_hs256("{\"sub\":\"alice\"}");
	b = mint_hs256("{\"sub\":\"admin\",\"role\":\"admin\"}");
	n = (size_t)(strrchr(b, '.') - b);
	ck_assert_ptr_nonnull(forged = malloc(strlen(a) + strlen(b)));
	memcpy(forged, b, n);
	strcpy(forged + n, strrchr(a, '.'));
	expect_reject(ctx, forged, "signature verification failed");
	/* no signature at all */
	forged[n + 1] = '\0';
	expect_reject(ctx, forged, "signature verification failed");
	free(a);
	free(b);
	free(forged);
	auth_free(ctx);
}
END_TEST

/*
 * {"alg":"none"} . {"sub":"admin","role":"admin"} . (empty); libjwt's
 * encoder would refuse to mint it for us with a key, so it is spelled out.
 */
#define NONE_TOKEN	"eyJhbGciOiJub25lIn0." \
	"eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9."

START_TEST(test_alg_none_rejected)
{
	struct auth_params	 c;
	struct auth_ctx		*ctx = hs256_ctx(0);
	char			*tok;

	expect_reject(ctx, NONE_TOKEN, "algorithm not allowed");
	/* with a signature part tacked on, and minted by libjwt */
	expect_reject(ctx, NONE_TOKEN "c2ln", "algorithm not allowed");
	tok = mint(JWT_ALG_NONE, NULL, 0, "{\"sub\":\"admin\"}");
	expect_reject(ctx, tok, "algorithm not allowed");
	auth_free(ctx);

	c = params_of("RS256", NULL, rsa_pub);
	ctx = ctx_of(&c);
	expect_reject(ctx, NONE_TOKEN, "algorithm not allowed");
	expect_reject(ctx, tok, "algorithm not allowed");
	free(tok);
	auth_free(ctx);
}
END_TEST

START_TEST(test_alg_mismatch_rejected)
{
	struct auth_params	 c;
	struct auth_ctx		*ctx = hs256_ctx(0);
	char			*tok;

	tok = mint(JWT_ALG_HS384, SECRET, (int)strlen(SECRET), "{\"sub\":\"a\"}");
	expect_reject(ctx, tok, "algorithm not allowed");
	free(tok);
	tok = mint(JWT_ALG_HS512, SECRET, (int)strlen(SECRET), "{\"sub\":\"a\"}");
	expect_reject(ctx, tok, "algorithm not allowed");
	free(tok);
	tok = mint_pem(JWT_ALG_RS256, rsa_priv, "{\"sub\":\"a\"}");
	expect_reject(ctx, tok, "algorithm not allowed");
	auth_free(ctx);

	/* RS256 configured, a good ES256 token, or RS512 with the same key */
	c = params_of("RS256", NULL, rsa_pub);
	ctx = ctx_of(&c);
	free(tok);
	tok = mint_pem(JWT_ALG_ES256, ec_priv, "{\"sub\":\"a\"}");
	expect_reject(ctx, tok, "algorithm not allowed");
	free(tok);
	tok = mint_pem(JWT_ALG_RS512, rsa_priv, "{\"sub\":\"a\"}");
	expect_reject(ctx, tok, "algorithm not allowed");
	free(tok);
	auth_free(ctx);
}
END_TEST

/*
 * The classic confusion: the public key is public, so an attacker HMACs a
 * token with its PEM text.  libjwt would accept that under an RS256 key.
 */
START_TEST(test_hs256_signed_with_public_pem_rejected_by_rs256)
{
	struct auth_params	 c;
	struct auth_ctx		*ctx;
	char			*pem, *tok;
	int			 len;

	pem = slurp(rsa_pub, &len);
	tok = mint(JWT_ALG_HS256, pem, len, "{\"sub\":\"admin\",\"role\":\"admin\"}");
	c = params_of("RS256", NULL, rsa_pub);
	ctx = ctx_of(&c);
	expect_reject(ctx, tok, "algorithm not allowed");
	auth_free(ctx);
	free(tok);
	free(pem);

	pem = slurp(ec_pub, &len);
	tok = mint(JWT_ALG_HS256, pem, len, "{\"sub\":\"admin\"}");
	c = params_of("ES256", NULL, ec_pub);
	ctx = ctx_of(&c);
	expect_reject(ctx, tok, "algorithm not allowed");
	auth_free(ctx);
	free(tok);
	free(pem);
}
END_TEST

START_TEST(test_malformed_tokens)
{
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct auth_user	 u;
	char			 reason[128];
	const char		*bad[] = { "abc", "a.b", "a.b.c", "..", ".",
	    "eyJhbGciOiJIUzI1NiJ9", "!!!.@@@.###",
	    "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",	/* payload not JSON */
	    "bm90IGpzb24.eyJzdWIiOiJhIn0.c2ln",		/* header not JSON */
	};
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(verify(ctx, bad[i], NOW_MS, &u, reason,
		    sizeof(reason)) == -1, "accepted %s", bad[i]);
	expect_reject(ctx, "abc", "malformed token");
	ck_assert_int_eq(auth_verify(ctx, "", 0, NOW_MS, &u, reason,
	    sizeof(reason)), -1);
	ck_assert_str_eq(reason, "malformed token");
	auth_free(ctx);
}
END_TEST

START_TEST(test_embedded_nul_rejected)
{
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct auth_user	 u;
	char			*tok, *buf, reason[128];
	size_t			 n;

	tok = mint_hs256("{\"sub\":\"a\"}");
	n = strlen(tok);
	ck_assert_ptr_nonnull(buf = malloc(n + 4));
	memcpy(buf, tok, n);
	memcpy(buf + n, "\0xy", 3);
	/* valid up to the NUL; the bytes after it must not be ignored */
	ck_assert_int_eq(auth_verify(ctx, buf, n + 3, NOW_MS, &u, reason,
	    sizeof(reason)), -1);
	ck_assert_int_eq(auth_verify(ctx, buf, n, NOW_MS, &u, reason,
	    sizeof(reason)), 0);
	free(buf);
	free(tok);
	auth_free(ctx);
}
END_TEST

START_TEST(test_token_over_max_is_invalid)
{
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct auth_user	 u;
	char			*buf, *tok, reason[128];
	size_t			 pad;

	/* a genuinely valid token, stretched past the limit by a claim */
	pad = RT_TOKEN_MAX;
	ck_assert_ptr_nonnull(buf = malloc(pad + 64));
	snprintf(buf, pad + 64, "{\"sub\":\"a\",\"pad\":\"%0*d\"}", (int)pad, 0);
	tok = mint_hs256(buf);
	ck_assert_uint_gt(strlen(tok), RT_TOKEN_MAX);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
	ck_assert_str_eq(reason, "token too long");
	free(tok);
	free(buf);
	auth_free(ctx);
}
END_TEST

START_TEST(test_reason_is_truncated_safely)
{
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct auth_user	 u;
	char			 reason[6];

	ck_assert_int_eq(auth_verify(ctx, NONE_TOKEN, strlen(NONE_TOKEN), NOW_MS,
	    &u, reason, sizeof(reason)), -1);
	ck_assert_str_eq(reason, "algor");
	ck_assert_int_eq(auth_verify(ctx, NONE_TOKEN, strlen(NONE_TOKEN), NOW_MS,
	    &u, NULL, 0), -1);
	auth_free(ctx);
}
END_TEST

/* ---- iss and aud ---------------------------------------------------- */

static void
with_iss_aud(const char *claims, int want_ok, const char *want_reason)
{
	struct auth_params	 c = params_of("HS256", SECRET, NULL);
	struct auth_ctx		*ctx;
	struct auth_user	 u;
	char			*tok, reason[128];
	int			 rv;

	c.ap_issuer = "https://issuer.example";
	c.ap_audience = "realtime";
	ctx = ctx_of(&c);
	tok = mint_hs256(claims);
	rv = verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason));
	ck_assert_msg(rv == (want_ok ? 0 : -1), "%s: %s", claims, reason);
	if (!want_ok)
		ck_assert_str_eq(reason, want_reason);
	free(tok);
	auth_free(ctx);
}

START_TEST(test_issuer_checked_when_configured)
{
	with_iss_aud("{\"sub\":\"a\",\"iss\":\"https://issuer.example\","
	    "\"aud\":\"realtime\"}", 1, NULL);
	with_iss_aud("{\"sub\":\"a\",\"iss\":\"https://evil.example\","
	    "\"aud\":\"realtime\"}", 0, "issuer mismatch");
	with_iss_aud("{\"sub\":\"a\",\"aud\":\"realtime\"}", 0,
	    "issuer mismatch");
	with_iss_aud("{\"sub\":\"a\",\"iss\":\"https://issuer.example/\","
	    "\"aud\":\"realtime\"}", 0, "issuer mismatch");
	with_iss_aud("{\"sub\":\"a\",\"iss\":1,\"aud\":\"realtime\"}", 0,
	    "issuer mismatch");
}
END_TEST

START_TEST(test_audience_string_or_array)
{
	const char	*iss = "\"iss\":\"https://issuer.example\"";
	char		 claims[256];

#define AUD(a, ok, why) do {						\
	snprintf(claims, sizeof(claims), "{\"sub\":\"a\",%s%s}", iss, a);	\
	with_iss_aud(claims, ok, why);					\
} while (0)
	AUD(",\"aud\":\"realtime\"", 1, NULL);
	AUD(",\"aud\":[\"other\",\"realtime\"]", 1, NULL);
	AUD(",\"aud\":[\"realtime\"]", 1, NULL);
	AUD(",\"aud\":\"other\"", 0, "audience mismatch");
	AUD(",\"aud\":\"Realtime\"", 0, "audience mismatch");
	AUD(",\"aud\":[\"other\",\"x\"]", 0, "audience mismatch");
	AUD(",\"aud\":[]", 0, "audience mismatch");
	AUD(",\"aud\":[1,{\"realtime\":1}]", 0, "audience mismatch");
	AUD(",\"aud\":42", 0, "audience mismatch");
	AUD("", 0, "audience mismatch");
#undef AUD
}
END_TEST

START_TEST(test_iss_aud_ignored_when_not_configured)
{
	struct auth_user	 u;

	accept_claims("{\"sub\":\"a\",\"iss\":\"whoever\",\"aud\":[\"x\"]}", &u);
}
END_TEST

/* ---- identity claims ------------------------------------------------ */

START_TEST(test_missing_user_claims)
{
	reject_claims("{}", "missing userId or sub claim");
	reject_claims("{\"email\":\"a@b.c\",\"role\":\"admin\"}",
	    "missing userId or sub claim");
	reject_claims("{\"userId\":null}", "missing userId or sub claim");
}
END_TEST

START_TEST(test_sub_used_when_no_user_id)
{
	struct auth_user	 u;

	accept_claims("{\"sub\":\"s-1\"}", &u);
	ck_assert_str_eq(u.u_id, "s-1");
	accept_claims("{\"userId\":\"u-1\",\"sub\":\"s-1\"}", &u);
	ck_assert_str_eq(u.u_id, "u-1");
	accept_claims("{\"userId\":null,\"sub\":\"s-2\"}", &u);
	ck_assert_str_eq(u.u_id, "s-2");
}
END_TEST

START_TEST(test_integer_user_id_becomes_decimal)
{
	struct auth_user	 u;

	accept_claims("{\"userId\":12345}", &u);
	ck_assert_str_eq(u.u_id, "12345");
	accept_claims("{\"userId\":-7}", &u);
	ck_assert_str_eq(u.u_id, "-7");
	accept_claims("{\"sub\":0}", &u);
	ck_assert_str_eq(u.u_id, "0");
}
END_TEST

/* jti: kept as the digest the revocation table is keyed by. */
START_TEST(test_jti_kept_as_its_digest)
{
	struct auth_user	 u;
	uint8_t			 d[RVK_DIGEST];
	/* SHA-256("abc"), first 16 bytes */
	static const uint8_t	 abc[RVK_DIGEST] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01,
				    0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23 };

	accept_claims("{\"sub\":\"a\",\"jti\":\"abc\"}", &u);
	ck_assert_int_eq(u.u_has_jti, 1);
	ck_assert_mem_eq(u.u_jti, abc, RVK_DIGEST);
	accept_claims("{\"sub\":\"a\",\"jti\":12345}", &u);
	ck_assert_int_eq(u.u_has_jti, 1);
	rvk_digest("12345", 5, d);
	ck_assert_mem_eq(u.u_jti, d, RVK_DIGEST);
	accept_claims("{\"sub\":\"a\"}", &u);
	ck_assert_int_eq(u.u_has_jti, 0);
	accept_claims("{\"sub\":\"a\",\"jti\":\"\"}", &u);
	ck_assert_int_eq(u.u_has_jti, 0);
	accept_claims("{\"sub\":\"a\",\"jti\":null}", &u);
	ck_assert_int_eq(u.u_has_jti, 0);
	/* any other value: by its JSON text, never a refusal */
	accept_claims("{\"sub\":\"a\",\"jti\":true}", &u);
	rvk_digest("true", 4, d);
	ck_assert_int_eq(u.u_has_jti, 1);
	ck_assert_mem_eq(u.u_jti, d, RVK_DIGEST);
	accept_claims("{\"sub\":\"a\",\"jti\":[\"x\"]}", &u);
	rvk_digest("[\"x\"]", 5, d);
	ck_assert_mem_eq(u.u_jti, d, RVK_DIGEST);
}
END_TEST

START_TEST(test_non_string_claims_rejected)
{
	reject_claims("{\"userId\":true}", "invalid claim type");
	reject_claims("{\"userId\":1.5}", "invalid claim type");
	reject_claims("{\"userId\":[\"a\"],\"sub\":\"s\"}", "invalid claim type");
	reject_claims("{\"userId\":{\"id\":\"a\"}}", "invalid claim type");
	reject_claims("{\"sub\":false}", "invalid claim type");
	reject_claims("{\"sub\":\"a\",\"email\":5}", "invalid claim type");
	reject_claims("{\"sub\":\"a\",\"email\":[\"a@b.c\"]}",
	    "invalid claim type");
	reject_claims("{\"sub\":\"a\",\"role\":true}", "invalid claim type");
	reject_claims("{\"sub\":\"a\",\"role\":[\"admin\"]}",
	    "invalid claim type");
}
END_TEST

START_TEST(test_empty_user_id_rejected)
{
	reject_claims("{\"userId\":\"\"}", "empty user id");
	reject_claims("{\"sub\":\"\"}", "empty user id");
}
END_TEST

START_TEST(test_null_optional_claims_are_absent)
{
	struct auth_user	 u;

	accept_claims("{\"sub\":\"a\",\"email\":null,\"role\":null}", &u);
	ck_assert(!u.u_has_email);
	ck_assert(!u.u_has_role);
}
END_TEST

START_TEST(test_over_long_claims_rejected)
{
	char	 claims[1024], big[600];

	memset(big, 'x', sizeof(big));
	big[RT_USERID_MAX + 1] = '\0';
	snprintf(claims, sizeof(claims), "{\"userId\":\"%s\"}", big);
	reject_claims(claims, "claim too long");
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\"}", big);
	reject_claims(claims, "claim too long");

	big[RT_USERID_MAX] = '\0';
	snprintf(claims, sizeof(claims), "{\"userId\":\"%s\"}", big);
	{
		struct auth_user u;
		accept_claims(claims, &u);
		ck_assert_uint_eq(strlen(u.u_id), RT_USERID_MAX);
	}

	memset(big, 'x', sizeof(big));
	big[RT_EMAIL_MAX + 1] = '\0';
	snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"email\":\"%s\"}", big);
	reject_claims(claims, "claim too long");
	big[RT_ROLE_MAX + 1] = '\0';
	snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"role\":\"%s\"}", big);
	reject_claims(claims, "claim too long");
}
END_TEST

START_TEST(test_role_admin_is_the_only_privilege)
{
	struct auth_user	 u;

	accept_claims("{\"sub\":\"a\",\"role\":\"Admin\"}", &u);
	ck_assert(!u.u_admin);
	ck_assert_str_eq(u.u_role, "Admin");
	accept_claims("{\"sub\":\"a\",\"role\":\"admin \"}", &u);
	ck_assert(!u.u_admin);
	accept_claims("{\"sub\":\"a\",\"role\":\"user\"}", &u);
	ck_assert(!u.u_admin);
	accept_claims("{\"sub\":\"a\",\"admin\":true}", &u);
	ck_assert(!u.u_admin);
	accept_claims("{\"sub\":\"a\",\"role\":\"admin\"}", &u);
	ck_assert(u.u_admin);
}
END_TEST

START_TEST(test_anonymous_user_is_zeroed)
{
	struct auth_user	 u;

	memset(&u, 0xa5, sizeof(u));
	auth_anonymous(&u);
	ck_assert(!u.u_authenticated);
	ck_assert(!u.u_admin);
	ck_assert_str_eq(u.u_id, "");
	ck_assert_int_eq(u.u_exp_ms, 0);
}
END_TEST

/* ---- claims kept for namespace patterns (ap_claims) ---------------- */

static const char *const keep[] = { "orgId", "tenant", "team", "userId", NULL };

/* Verify claims (HS256, at NOW) keeping the claims of keep. */
static void
accept_keeping(const char *claims, struct auth_user *u)
{
	struct auth_params	 p = params_of("HS256", SECRET, NULL);
	struct auth_ctx		*ctx;
	char			*tok, reason[128];

	p.ap_claims = keep;
	ctx = ctx_of(&p);
	tok = mint_hs256(claims);
	ck_assert_msg(verify(ctx, tok, NOW_MS, u, reason, sizeof(reason)) == 0,
	    "rejected %s: %s", claims, reason);
	free(tok);
	auth_free(ctx);
}

/* u's claim name is want (NULL: not kept). */
static void
expect_claim(const struct auth_user *u, const char *name, const char *want)
{
	const char	*v;
	size_t		 len = 12345;

	v = auth_user_claim(u, name, &len);
	if (want == NULL) {
		ck_assert_msg(v == NULL, "claim %s kept as \"%.*s\"", name,
		    v != NULL ? (int)len : 0, v != NULL ? v : "");
		return;
	}
	ck_assert_msg(v != NULL, "claim %s not kept", name);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_msg(memcmp(v, want, len) == 0, "claim %s is \"%.*s\", not \"%s\"",
	    name, (int)len, v, want);
}

START_TEST(test_claims_string_and_integer_kept)
{
	struct auth_user	 u;

	accept_keeping("{\"sub\":\"s\",\"orgId\":\"o1\",\"tenant\":42,"
	    "\"team\":-7}", &u);
	expect_claim(&u, "orgId", "o1");
	expect_claim(&u, "tenant", "42");
	expect_claim(&u, "team", "-7");
	accept_keeping("{\"sub\":\"s\",\"tenant\":0}", &u);
	expect_claim(&u, "tenant", "0");
	expect_claim(&u, "orgId", NULL);
	expect_claim(&u, "team", NULL);
}
END_TEST

START_TEST(test_claims_other_types_not_kept_token_still_good)
{
	struct auth_user	 u;

	accept_keeping("{\"sub\":\"s\",\"orgId\":{\"id\":\"o1\"},"
	    "\"tenant\":true,\"team\":[\"a\"]}", &u);
	ck_assert(u.u_authenticated);
	ck_assert_str_eq(u.u_id, "s");
	expect_claim(&u, "orgId", NULL);
	expect_claim(&u, "tenant", NULL);
	expect_claim(&u, "team", NULL);
	accept_keeping("{\"sub\":\"s\",\"orgId\":null,\"tenant\":1.5,"
	    "\"team\":false}", &u);
	expect_claim(&u, "orgId", NULL);
	expect_claim(&u, "tenant", NULL);
	expect_claim(&u, "team", NULL);
	/* empty: no channel could hold it */
	accept_keeping("{\"sub\":\"s\",\"orgId\":\"\",\"team\":\"t\"}", &u);
	expect_claim(&u, "orgId", NULL);
	expect_claim(&u, "team", "t");
}
END_TEST

static void
b64url(const void *in, size_t n, char *out)
{
	int	 m;
	char	*p;

	m = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (m > 0 && out[m - 1] == '=')
		m--;
	out[m] = '\0';
	for (p = out; *p != '\0'; p++)
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
}

/* An HS256 token of header segment hseg (as sent) and payload, signed. */
static void
mint_seg_hs256(const char *hseg, const char *payload, char *tok, size_t toklen)
{
	unsigned char		 mac[EVP_MAX_MD_SIZE];
	unsigned int		 maclen;
	size_t			 n;

	ck_assert_uint_lt(strlen(hseg) + 4 * strlen(payload) / 3 + 100, toklen);
	strcpy(tok, hseg);
	strcat(tok, ".");
	b64url(payload, strlen(payload), tok + strlen(tok));
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
	    (const unsigned char *)tok, strlen(tok), mac, &maclen));
	strcat(tok, ".");
	n = strlen(tok);
	b64url(mac, maclen, tok + n);
}

/* An HS256 token of header and payload exactly as written (libjwt would re-encode them). */
static void
mint_head_hs256(const char *head, const char *payload, char *tok, size_t toklen)
{
	char	 hseg[512];

	ck_assert_uint_lt(4 * strlen(head) / 3 + 4, sizeof(hseg));
	b64url(head, strlen(head), hseg);
	mint_seg_hs256(hseg, payload, tok, toklen);
}

static void
mint_raw_hs256(const char *payload, char *tok, size_t toklen)
{
	mint_head_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, tok, toklen);
}

/*
 * Headers signed with the right key that are still no header of ours: none
 * at all (also as the first token a context sees), one that makes an
 * extension critical, one with bytes after its JSON, one in plain base64.
 */
START_TEST(test_signed_tokens_with_bad_headers_refused)
{
	static const char	*heads[] = { "{\"alg\":\"HS256\",\"crit\":[\"zzz\"]}",
	    "{\"alg\":\"HS256\"}x", "[\"alg\",\"HS256\"]" };
	struct auth_ctx		*ctx;
	struct auth_user	 u;
	char			 tok[1024], reason[128];
	size_t			 i;

	for (i = 0; i < 2; i++) {
		ctx = hs256_ctx(0);
		if (i == 1) {	/* a good token first: its header is the one known */
			mint_raw_hs256("{\"sub\":\"ok\"}", tok, sizeof(tok));
			ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
		}
		mint_seg_hs256("", "{\"sub\":\"eh\"}", tok, sizeof(tok));
		expect_reject(ctx, tok, "malformed token");
		auth_free(ctx);
	}
	ctx = hs256_ctx(0);
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		mint_head_hs256(heads[i], "{\"sub\":\"h\"}", tok, sizeof(tok));
		expect_reject(ctx, tok, "malformed token");
	}
	/* {"alg":"HS256","k":"~~"}: base64url has a '-', plain base64 a '+' */
	mint_seg_hs256("eyJhbGciOiJIUzI1NiIsImsiOiJ-fiJ9", "{\"sub\":\"h\"}", tok, sizeof(tok));
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	mint_seg_hs256("eyJhbGciOiJIUzI1NiIsImsiOiJ+fiJ9", "{\"sub\":\"h\"}", tok, sizeof(tok));
	expect_reject(ctx, tok, "malformed token");
	auth_free(ctx);
}
END_TEST

/* Dates past 9999 are 9999 (they print, and their milliseconds fit); before 1970, 1970. */
START_TEST(test_absurd_dates_clamp)
{
	static const char	*exps[] = { "9223372036854775807", "1e300", "4611686018427387904",
	    "253402300800" };
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct auth_user	 u;
	char			 claims[128], tok[1024], reason[128];
	size_t			 i;

	for (i = 0; i < sizeof(exps) / sizeof(exps[0]); i++) {
		snprintf(claims, sizeof(claims), "{\"sub\":\"d\",\"exp\":%s}", exps[i]);
		mint_raw_hs256(claims, tok, sizeof(tok));
		ck_assert_msg(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)) == 0,
		    "exp %s: %s", exps[i], reason);
		ck_assert_int_eq(u.u_exp_ms, INT64_C(253402300799000));
	}
	mint_raw_hs256("{\"sub\":\"d\",\"exp\":-9223372036854775807}", tok, sizeof(tok));
	expect_reject(ctx, tok, "token expired");
	mint_raw_hs256("{\"sub\":\"d\",\"nbf\":1e300}", tok, sizeof(tok));
	expect_reject(ctx, tok, "token not yet valid");
	mint_raw_hs256("{\"sub\":\"d\",\"nbf\":-1e300}", tok, sizeof(tok));
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	auth_free(ctx);
}
END_TEST

START_TEST(test_claims_with_nul_not_kept)
{
	struct auth_params	 p = params_of("HS256", SECRET, NULL);
	struct auth_ctx		*ctx;
	struct auth_user	 u;
	char			 tok[1024], reason[128];

	p.ap_claims = keep;
	ctx = ctx_of(&p);
	mint_raw_hs256("{\"sub\":\"s\",\"team\":\"a\\u0000b\",\"orgId\":\"o\"}",
	    tok, sizeof(tok));
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	expect_claim(&u, "team", NULL);
	expect_claim(&u, "orgId", "o");
	auth_free(ctx);
}
END_TEST

START_TEST(test_claims_over_channel_length_not_kept)
{
	struct auth_user	 u;
	char			 claims[1024], big[RT_CHANNEL_MAX + 2];

	memset(big, 'x', sizeof(big));
	big[RT_CHANNEL_MAX + 1] = '\0';
	snprintf(claims, sizeof(claims), "{\"sub\":\"s\",\"orgId\":\"%s\","
	    "\"tenant\":\"t\"}", big);
	accept_keeping(claims, &u);
	expect_claim(&u, "orgId", NULL);
	expect_claim(&u, "tenant", "t");	/* the others still are */

	big[RT_CHANNEL_MAX] = '\0';
	snprintf(claims, sizeof(claims), "{\"sub\":\"s\",\"orgId\":\"%s\"}", big);
	accept_keeping(claims, &u);
	expect_claim(&u, "orgId", big);
}
END_TEST

START_TEST(test_claims_user_id_falls_back_to_sub)
{
	struct auth_user	 u;

	accept_keeping("{\"sub\":\"s-1\"}", &u);
	expect_claim(&u, "userId", "s-1");
	accept_keeping("{\"userId\":\"u-1\",\"sub\":\"s-1\"}", &u);
	expect_claim(&u, "userId", "u-1");
	accept_keeping("{\"userId\":99}", &u);
	expect_claim(&u, "userId", "99");
	/* without ap_claims too: the user id is always there */
	accept_claims("{\"sub\":\"s-2\"}", &u);
	expect_claim(&u, "userId", "s-2");
	expect_claim(&u, "orgId", NULL);
}
END_TEST

START_TEST(test_claims_values_kept_as_they_are)
{
	struct auth_user	 u;

	accept_keeping("{\"sub\":\"s\",\"orgId\":\"o1:x\",\"tenant\":\"*\","
	    "\"team\":\"a b/c*\"}", &u);
	expect_claim(&u, "orgId", "o1:x");
	expect_claim(&u, "tenant", "*");
	expect_claim(&u, "team", "a b/c*");
}
END_TEST

START_TEST(test_claims_only_the_named_ones)
{
	struct auth_user	 u;

	accept_keeping("{\"sub\":\"s\",\"other\":\"x\",\"orgid\":\"o\","
	    "\"email\":\"a@b.c\",\"role\":\"r\"}", &u);
	expect_claim(&u, "other", NULL);
	expect_claim(&u, "orgid", NULL);
	expect_claim(&u, "orgId", NULL);
	expect_claim(&u, "email", NULL);
	expect_claim(&u, "role", NULL);
	ck_assert_str_eq(u.u_email, "a@b.c");
	/* no ap_claims: nothing but the user id */
	accept_claims("{\"sub\":\"s\",\"orgId\":\"o1\"}", &u);
	expect_claim(&u, "orgId", NULL);
	ck_assert_uint_eq(u.u_claimslen, 0);
}
END_TEST

START_TEST(test_claims_not_left_over_from_an_earlier_token)
{
	struct auth_user	 u;

	accept_keeping("{\"sub\":\"s\",\"orgId\":\"o1\"}", &u);
	expect_claim(&u, "orgId", "o1");
	accept_keeping("{\"sub\":\"s\"}", &u);
	expect_claim(&u, "orgId", NULL);
}
END_TEST

START_TEST(test_claims_of_anonymous_are_none)
{
	struct auth_user	 u;
	size_t			 len;

	auth_anonymous(&u);
	ck_assert_ptr_null(auth_user_claim(&u, "userId", &len));
	ck_assert_ptr_null(auth_user_claim(&u, "orgId", &len));
	ck_assert_ptr_null(auth_user_claim(NULL, "userId", &len));
	/* a failed verification leaves no claims either */
	{
		struct auth_params	 p = params_of("HS256", SECRET, NULL);
		struct auth_ctx		*ctx;
		char			*tok, reason[128];

		p.ap_claims = keep;
		ctx = ctx_of(&p);
		tok = mint_hs256("{\"sub\":\"s\",\"orgId\":\"o1\",\"exp\":1}");
		ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
		ck_assert_ptr_null(auth_user_claim(&u, "orgId", &len));
		free(tok);
		auth_free(ctx);
	}
}
END_TEST

START_TEST(test_claims_to_keep_are_bounded)
{
	static const char *const nine[] = { "a", "b", "c", "d", "e", "f", "g",
	    "h", "i", NULL };
	static const char *const eight[] = { "a", "b", "c", "d", "e", "f", "g",
	    "h", "userId", NULL };
	struct auth_params	 p = params_of("HS256", SECRET, NULL);
	struct auth_user	 u;
	struct auth_ctx		*ctx;
	char			 err[256] = "", *tok, reason[128];

	p.ap_claims = nine;
	ck_assert_ptr_null(auth_new(&p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "claims") != NULL, "%s", err);
	/* userId is not one of them: it is always kept */
	p.ap_claims = eight;
	ctx = ctx_of(&p);
	tok = mint_hs256("{\"sub\":\"s\",\"a\":\"1\",\"h\":\"8\"}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	expect_claim(&u, "a", "1");
	expect_claim(&u, "h", "8");
	expect_claim(&u, "userId", "s");
	free(tok);
	auth_free(ctx);
}
END_TEST

START_TEST(test_add_claim_bounds)
{
	struct auth_user	 u;
	char			 v[RT_CHANNEL_MAX], name[CHAN_CLAIM_NAME_MAX + 1];
	const char		*got;
	size_t			 len;
	int			 i, n;

	auth_anonymous(&u);
	u.u_authenticated = 1;
	memset(v, 'v', sizeof(v));
	memset(name, 'n', CHAN_CLAIM_NAME_MAX);
	name[CHAN_CLAIM_NAME_MAX] = '\0';
	/* it holds CHAN_CLAIMS_MAX claims of the longest name and value */
	for (i = 0, n = 0; i < 64; i++) {
		name[0] = (char)('a' + i % 26);
		name[1] = (char)('a' + i / 26);
		if (auth_user_add_claim(&u, name, v, sizeof(v)) == -1)
			break;
		n++;
		ck_assert_uint_le(u.u_claimslen, sizeof(u.u_claims));
	}
	ck_assert_int_ge(n, CHAN_CLAIMS_MAX);
	ck_assert_int_lt(n, 64);
	for (i = 0; i < n; i++) {
		name[0] = (char)('a' + i % 26);
		name[1] = (char)('a' + i / 26);
		ck_assert_ptr_nonnull(got = auth_user_claim(&u, name, &len));
		ck_assert_uint_eq(len, sizeof(v));
		ck_assert(memcmp(got, v, len) == 0);
	}
}
END_TEST

/* ---- with http.c's extraction -------------------------------------- */

START_TEST(test_extracted_token_verifies)
{
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct http_request	 req;
	struct http_token	 t;
	struct auth_user	 u;
	char			*tok, head[1024], reason[128];
	size_t			 used;

	tok = mint_hs256("{\"userId\":\"u9\"}");
	snprintf(head, sizeof(head), "GET /ws HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Protocol: chat, token-%s\r\n\r\n", tok);
	ck_assert_int_eq(http_parse_request(head, strlen(head), sizeof(head),
	    &req, &used), HTTP_PARSE_DONE);
	http_extract_token(&req, &t);
	ck_assert_int_eq(auth_verify(ctx, t.t_token, t.t_len, NOW_MS, &u, reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(u.u_id, "u9");
	free(tok);
	auth_free(ctx);
}
END_TEST

/* ---- the verified-token cache (ap_cache_size) ----------------------- */

static struct auth_ctx *
cached_ctx(size_t slots, int64_t leeway, const char *const *claims)
{
	struct auth_params	 p = params_of("HS256", SECRET, NULL);

	p.ap_cache_size = slots;
	p.ap_leeway = leeway;
	p.ap_claims = claims;
	return ctx_of(&p);
}

static struct auth_cache_stats
cache_of(const struct auth_ctx *ctx)
{
	struct auth_cache_stats	 st;

	auth_cache_stats(ctx, &st);
	return st;
}

/* What a hit gives is what the full verification gave, field by field. */
START_TEST(test_cache_hit_gives_the_same_user)
{
	struct auth_ctx		*ctx = cached_ctx(16, 0, keep);
	struct auth_user	 u1, u2;
	char			*tok, reason[128];

	tok = mint_hs256("{\"userId\":\"u-7\",\"email\":\"a@b.c\",\"role\":\"admin\","
	    "\"jti\":\"j-1\",\"orgId\":\"acme\",\"team\":42,\"exp\":1764075600}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u1, reason, sizeof(reason)), 0);
	memset(&u2, 0x5a, sizeof(u2));
	ck_assert_int_eq(verify(ctx, tok, NOW_MS + 1000, &u2, reason, sizeof(reason)), 1);
	ck_assert_int_eq(u2.u_authenticated, 1);
	ck_assert_int_eq(u2.u_admin, 1);
	ck_assert_str_eq(u2.u_id, "u-7");
	ck_assert_str_eq(u2.u_email, "a@b.c");
	ck_assert_str_eq(u2.u_role, "admin");
	ck_assert_int_eq(u2.u_has_email, u1.u_has_email);
	ck_assert_int_eq(u2.u_has_role, u1.u_has_role);
	ck_assert_int_eq(u2.u_exp_ms, INT64_C(1764075600000));
	ck_assert_int_eq(u2.u_has_jti, 1);
	ck_assert_mem_eq(u2.u_jti, u1.u_jti, RVK_DIGEST);
	ck_assert_uint_eq(u2.u_claimslen, u1.u_claimslen);
	ck_assert_mem_eq(u2.u_claims, u1.u_claims, u1.u_claimslen);
	expect_claim(&u2, "orgId", "acme");
	expect_claim(&u2, "team", "42");
	ck_assert_uint_eq(cache_of(ctx).ac_hits, 1);
	ck_assert_uint_eq(cache_of(ctx).ac_misses, 1);
	ck_assert_uint_eq(cache_of(ctx).ac_entries, 1);
	ck_assert_uint_gt(cache_of(ctx).ac_bytes, strlen(tok));
	free(tok);
	auth_free(ctx);
}
END_TEST

/* A kept token still expires at exp plus the leeway, with the usual reason. */
START_TEST(test_cache_hit_respects_exp_and_leeway)
{
	struct auth_ctx		*ctx = cached_ctx(16, 5000, NULL);
	struct auth_user	 u;
	char			*tok, reason[128];

	tok = mint_hs256("{\"sub\":\"a\",\"exp\":1764072010}");	/* NOW + 10 */
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS + 14000, &u, reason, sizeof(reason)), 1);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS + 15000, &u, reason, sizeof(reason)), -1);
	ck_assert_str_eq(reason, "token expired");
	ck_assert_uint_eq(cache_of(ctx).ac_entries, 0);
	ck_assert_uint_eq(cache_of(ctx).ac_bytes, 0);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS + 16000, &u, reason, sizeof(reason)), -1);
	ck_assert_uint_eq(cache_of(ctx).ac_hits, 1);
	free(tok);
	auth_free(ctx);
}
END_TEST

/*
 * The bucket is chosen by the token's last bytes (its signature), but a hit
 * needs the whole token: a changed payload with the same signature is
 * verified, and fails.
 */
START_TEST(test_cache_needs_the_whole_token)
{
	struct auth_ctx		*ctx = cached_ctx(16, 0, NULL);
	struct auth_user	 u;
	char			*tok, *forged, *d1, reason[128];

	tok = mint_hs256("{\"sub\":\"aaaa\",\"exp\":1764075600}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_ptr_nonnull(forged = strdup(tok));
	ck_assert_ptr_nonnull(d1 = strchr(forged, '.'));
	d1[3] = d1[3] == 'A' ? 'B' : 'A';	/* same length, same signature */
	ck_assert_int_eq(verify(ctx, forged, NOW_MS, &u, reason, sizeof(reason)), -1);
	ck_assert_str_eq(reason, "signature verification failed");
	forged[strlen(forged) - 1] = '\0';	/* a prefix of a kept token */
	ck_assert_int_eq(verify(ctx, forged, NOW_MS, &u, reason, sizeof(reason)), -1);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_uint_eq(cache_of(ctx).ac_hits, 1);
	ck_assert_uint_eq(cache_of(ctx).ac_entries, 1);
	free(forged);
	free(tok);
	auth_free(ctx);
}
END_TEST

/* Only valid tokens are kept; a failure is never answered from the cache. */
START_TEST(test_cache_keeps_only_valid_tokens)
{
	struct auth_ctx		*ctx = cached_ctx(16, 0, NULL);
	struct auth_user	 u;
	char			*tok, reason[128];
	int			 i;

	tok = mint(JWT_ALG_HS256, "another-secret", 14, "{\"sub\":\"a\"}");
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
		ck_assert_str_eq(reason, "signature verification failed");
	}
	free(tok);
	tok = mint_hs256("{\"sub\":\"a\",\"exp\":1000}");
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), -1);
	ck_assert_uint_eq(cache_of(ctx).ac_hits, 0);
	ck_assert_uint_eq(cache_of(ctx).ac_misses, 0);
	ck_assert_uint_eq(cache_of(ctx).ac_entries, 0);
	free(tok);
	auth_free(ctx);
}
END_TEST

/* ap_cache_size tokens at most; when full, the least recently used goes. */
START_TEST(test_cache_is_bounded_lru)
{
	struct auth_ctx		*ctx = cached_ctx(4, 0, NULL);
	struct auth_user	 u;
	struct auth_cache_stats	 st;
	char			*toks[50], claims[64], reason[128];
	int			 i;

	for (i = 0; i < 50; i++) {
		snprintf(claims, sizeof(claims), "{\"sub\":\"user-%d\"}", i);
		toks[i] = mint_hs256(claims);
		ck_assert_int_eq(verify(ctx, toks[i], NOW_MS, &u, reason, sizeof(reason)), 0);
		ck_assert_uint_le(cache_of(ctx).ac_entries, 4);
	}
	st = cache_of(ctx);
	ck_assert_uint_eq(st.ac_misses, 50);
	ck_assert_uint_eq(st.ac_entries, 4);
	ck_assert_uint_eq(st.ac_evictions, 46);
	/* the last four are kept, and each answers with its own user */
	for (i = 46; i < 50; i++) {
		ck_assert_int_eq(verify(ctx, toks[i], NOW_MS, &u, reason, sizeof(reason)), 1);
		snprintf(claims, sizeof(claims), "user-%d", i);
		ck_assert_str_eq(u.u_id, claims);
	}
	/* 46 was used longest ago: 0 takes its place, 47..49 stay */
	ck_assert_int_eq(verify(ctx, toks[47], NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_int_eq(verify(ctx, toks[48], NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_int_eq(verify(ctx, toks[49], NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_int_eq(verify(ctx, toks[0], NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_int_eq(verify(ctx, toks[47], NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_int_eq(verify(ctx, toks[0], NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_int_eq(verify(ctx, toks[46], NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_uint_eq(cache_of(ctx).ac_entries, 4);
	ck_assert_uint_eq(cache_of(ctx).ac_evictions, 48);
	for (i = 0; i < 50; i++)
		free(toks[i]);
	auth_free(ctx);
}
END_TEST

/* Every token kept while they fit, whatever their hashes. */
START_TEST(test_cache_keeps_all_that_fit)
{
	struct auth_ctx		*ctx = cached_ctx(300, 0, NULL);
	struct auth_user	 u;
	char			*toks[300], claims[64], reason[128];
	int			 i;

	for (i = 0; i < 300; i++) {
		snprintf(claims, sizeof(claims), "{\"sub\":\"s-%d\",\"exp\":1764075600}", i);
		toks[i] = mint_hs256(claims);
		ck_assert_int_eq(verify(ctx, toks[i], NOW_MS, &u, reason, sizeof(reason)), 0);
	}
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(verify(ctx, toks[i], NOW_MS, &u, reason, sizeof(reason)), 1);
		snprintf(claims, sizeof(claims), "s-%d", i);
		ck_assert_str_eq(u.u_id, claims);
		free(toks[i]);
	}
	ck_assert_uint_eq(cache_of(ctx).ac_evictions, 0);
	auth_free(ctx);
}
END_TEST

/* Off by default in auth_params; longer tokens are never kept. */
START_TEST(test_cache_off_and_long_tokens)
{
	struct auth_ctx		*ctx = hs256_ctx(0);
	struct auth_user	 u;
	char			*tok, *claims, reason[128];
	size_t			 n = AUTH_CACHE_TOKEN_MAX;

	tok = mint_hs256("{\"sub\":\"a\"}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_uint_eq(cache_of(ctx).ac_misses, 0);
	free(tok);
	auth_free(ctx);

	ctx = cached_ctx(16, 0, NULL);
	ck_assert_ptr_nonnull(claims = malloc(n + 64));
	snprintf(claims, n + 64, "{\"sub\":\"a\",\"pad\":\"%0*d\"}", (int)n, 0);
	tok = mint_hs256(claims);
	ck_assert_uint_gt(strlen(tok), AUTH_CACHE_TOKEN_MAX);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_uint_eq(cache_of(ctx).ac_entries, 0);
	ck_assert_uint_eq(cache_of(ctx).ac_misses, 2);
	free(claims);
	free(tok);
	auth_free(ctx);
}
END_TEST

/* Public-key tokens (where the cache saves most) and token_cache from the config. */
START_TEST(test_cache_rs256_and_config)
{
	struct rt_config	 c = conf_of("RS256", NULL, rsa_pub);
	struct auth_ctx		*ctx;
	struct auth_user	 u;
	char			*tok, err[512], reason[128];

	c.c_token_cache = 8;
	ck_assert_msg((ctx = config_auth_new(&c, err, sizeof(err))) != NULL, "%s", err);
	tok = mint_pem(JWT_ALG_RS256, rsa_priv, "{\"userId\":\"k\",\"exp\":1764075600}");
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 1);
	ck_assert_str_eq(u.u_id, "k");
	auth_free(ctx);
	/* a new context (a reload) starts empty: the same token is verified again */
	ck_assert_msg((ctx = config_auth_new(&c, err, sizeof(err))) != NULL, "%s", err);
	ck_assert_int_eq(verify(ctx, tok, NOW_MS, &u, reason, sizeof(reason)), 0);
	auth_free(ctx);
	free(tok);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite	*s = suite_create("auth");
	TCase	*tc;

	tc = tcase_create("new");
	tcase_add_test(tc, test_new_hs_needs_secret);
	tcase_add_test(tc, test_new_rejects_unknown_and_none);
	tcase_add_test(tc, test_new_accepts_every_supported_algorithm);
	tcase_add_test(tc, test_new_public_key_problems_name_the_file);
	tcase_add_test(tc, test_new_key_type_must_fit_algorithm);
	tcase_add_test(tc, test_new_takes_key_bytes);
	tcase_add_test(tc, test_config_reads_public_key_only_when_needed);
	suite_add_tcase(s, tc);

	tc = tcase_create("valid");
	tcase_add_test(tc, test_hs256_valid_fills_user);
	tcase_add_test(tc, test_no_exp_means_u_exp_zero);
	tcase_add_test(tc, test_hs384_hs512_valid);
	tcase_add_test(tc, test_rs256_valid_and_tampered);
	tcase_add_test(tc, test_es256_valid_and_tampered);
	tcase_add_test(tc, test_every_public_key_algorithm);
	suite_add_tcase(s, tc);

	tc = tcase_create("time");
	tcase_add_test(tc, test_expired_token);
	tcase_add_test(tc, test_exp_equal_to_now_is_expired);
	tcase_add_test(tc, test_exp_leeway_edges);
	tcase_add_test(tc, test_require_exp_refuses_token_without_exp);
	tcase_add_test(tc, test_require_exp_from_config);
	tcase_add_test(tc, test_nbf_in_future);
	tcase_add_test(tc, test_nbf_leeway_edges);
	tcase_add_test(tc, test_fractional_and_huge_dates);
	tcase_add_test(tc, test_non_numeric_dates_are_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("signature");
	tcase_add_test(tc, test_wrong_secret_fails_signature);
	tcase_add_test(tc, test_tampered_payload_fails_signature);
	tcase_add_test(tc, test_alg_none_rejected);
	tcase_add_test(tc, test_alg_mismatch_rejected);
	tcase_add_test(tc, test_hs256_signed_with_public_pem_rejected_by_rs256);
	tcase_add_test(tc, test_malformed_tokens);
	tcase_add_test(tc, test_embedded_nul_rejected);
	tcase_add_test(tc, test_token_over_max_is_invalid);
	tcase_add_test(tc, test_reason_is_truncated_safely);
	suite_add_tcase(s, tc);

	tc = tcase_create("claims");
	tcase_add_test(tc, test_issuer_checked_when_configured);
	tcase_add_test(tc, test_audience_string_or_array);
	tcase_add_test(tc, test_iss_aud_ignored_when_not_configured);
	tcase_add_test(tc, test_missing_user_claims);
	tcase_add_test(tc, test_sub_used_when_no_user_id);
	tcase_add_test(tc, test_integer_user_id_becomes_decimal);
	tcase_add_test(tc, test_non_string_claims_rejected);
	tcase_add_test(tc, test_jti_kept_as_its_digest);
	tcase_add_test(tc, test_empty_user_id_rejected);
	tcase_add_test(tc, test_null_optional_claims_are_absent);
	tcase_add_test(tc, test_over_long_claims_rejected);
	tcase_add_test(tc, test_role_admin_is_the_only_privilege);
	tcase_add_test(tc, test_anonymous_user_is_zeroed);
	suite_add_tcase(s, tc);

	tc = tcase_create("kept");
	tcase_add_test(tc, test_claims_string_and_integer_kept);
	tcase_add_test(tc, test_claims_other_types_not_kept_token_still_good);
	tcase_add_test(tc, test_claims_over_channel_length_not_kept);
	tcase_add_test(tc, test_claims_with_nul_not_kept);
	tcase_add_test(tc, test_signed_tokens_with_bad_headers_refused);
	tcase_add_test(tc, test_absurd_dates_clamp);
	tcase_add_test(tc, test_claims_user_id_falls_back_to_sub);
	tcase_add_test(tc, test_claims_values_kept_as_they_are);
	tcase_add_test(tc, test_claims_only_the_named_ones);
	tcase_add_test(tc, test_claims_not_left_over_from_an_earlier_token);
	tcase_add_test(tc, test_claims_of_anonymous_are_none);
	tcase_add_test(tc, test_claims_to_keep_are_bounded);
	tcase_add_test(tc, test_add_claim_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_test(tc, test_cache_hit_gives_the_same_user);
	tcase_add_test(tc, test_cache_hit_respects_exp_and_leeway);
	tcase_add_test(tc, test_cache_needs_the_whole_token);
	tcase_add_test(tc, test_cache_keeps_only_valid_tokens);
	tcase_add_test(tc, test_cache_is_bounded_lru);
	tcase_add_test(tc, test_cache_keeps_all_that_fit);
	tcase_add_test(tc, test_cache_off_and_long_tokens);
	tcase_add_test(tc, test_cache_rs256_and_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("extract");
	tcase_add_test(tc, test_extracted_token_verifies);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	make_keys();
	sr = srunner_create(auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free_pems();
	remove_keys();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
