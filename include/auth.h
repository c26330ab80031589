#ifndef RT_AUTH_H
#define RT_AUTH_H

/*
 * JWT authentication at the handshake (libjwt 1.10).  Pure: the key
 * material comes in as bytes (config_auth_new() reads the files).
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "realtimed.h"
#include "revoke.h"

struct auth_user {
	int	 u_authenticated;		/* 0: anonymous */
	int	 u_admin;			/* role == "admin" */
	char	 u_id[RT_USERID_MAX + 1];	/* userId, else sub */
	char	 u_email[RT_EMAIL_MAX + 1];	/* "" if absent */
	char	 u_role[RT_ROLE_MAX + 1];	/* "" if absent */
	int	 u_has_email;
	int	 u_has_role;
	int64_t	 u_exp_ms;			/* exp in ms since the epoch; 0: none */
	int	 u_has_jti;
	uint8_t	 u_jti[RVK_DIGEST];		/* rvk_digest() of the jti claim */
	/* the claims namespace patterns use: "name\0value\0" ... */
	char	 u_claims[RT_CLAIMS_MAX];
	size_t	 u_claimslen;
};

/* Prepared verification keys; opaque. */
struct auth_ctx;

/*
 * What a context is built from.  Strings are NUL-terminated; NULL or ""
 * means unset.  Nothing is kept: auth_new() copies what it needs.
 */
struct auth_params {
	const char	*ap_algorithm;		/* "HS256" ... "ES512" */
	const char	*ap_secret;		/* HS*: the shared secret */
	size_t		 ap_secretlen;
	const char	*ap_public_key;		/* RS*, ES*: the PEM text */
	size_t		 ap_public_keylen;
	const char	*ap_public_key_name;	/* where the PEM came from, for messages */
	int64_t		 ap_leeway;		/* milliseconds */
	const char	*ap_issuer;		/* iss must be this */
	const char	*ap_audience;		/* aud must hold this */
	int		 ap_require_exp;	/* a token without exp is refused */
	const char *const *ap_claims;		/* NULL-ended: kept in u_claims */
	size_t		 ap_cache_size;		/* verified tokens kept; 0: none */
};

/*
 * The verified-token cache: tokens of at most AUTH_CACHE_TOKEN_MAX bytes
 * that verified are kept (ap_cache_size at most; when full, the one used
 * longest ago makes room) with the user they named.  The
 * same token again is a hit: no signature or claims work, but its exp
 * (plus the leeway) is checked at the new time, and revocation is the
 * caller's as always.  Keyed by a hash of the token, confirmed by the
 * whole token.  A context's keys never change: a new context (a reload)
 * starts empty.
 */
#define AUTH_CACHE_TOKEN_MAX	2048

struct auth_cache_stats {
	uint64_t	 ac_hits;	/* tokens the cache answered */
	uint64_t	 ac_misses;	/* valid tokens verified in full */
	uint64_t	 ac_evictions;	/* kept tokens dropped to make room */
	size_t		 ac_entries;	/* tokens kept now */
	size_t		 ac_bytes;	/* ... and the bytes they hold */
};

void	auth_cache_stats(const struct auth_ctx *ctx, struct auth_cache_stats *st);

/*
 * 1 if the algorithm verifies with a public key (RS*, ES*), 0 with a
 * shared secret (HS*), -1 if it is not one we support.
 */
int	auth_alg_public_key(const char *alg);

/*
 * Build a context.  NULL with a message in err, worded after the
 * configuration keys (jwt_algorithm, jwt_secret, jwt_public_key), when the
 * algorithm is unsupported or its key is missing or unusable.
 */
struct auth_ctx *auth_new(const struct auth_params *p, char *err, size_t errlen);
void	auth_free(struct auth_ctx *ctx);

/*
 * Verify a token at time now_ms (the wall clock, ms since the epoch; exp
 * and nbf are judged to the millisecond, fractional NumericDates too).
 * 0 and *user filled when valid; -1 with a short human reason in reason
 * ("signature verification failed", "token expired", "token not yet valid", "algorithm not allowed",
 * "malformed token", "missing userId or sub claim", "issuer mismatch",
 * "audience mismatch", "token too long", "invalid exp claim",
 * "missing exp claim" (only when ap_require_exp),
 * "invalid nbf claim", "invalid claim type", "claim too long",
 * "empty user id") otherwise.  The reason never contains the token.
 * 1 instead of 0 when the verified-token cache answered.
 */
int	auth_verify(struct auth_ctx *ctx, const char *token, size_t len, int64_t now_ms,
	    struct auth_user *user, char *reason, size_t reasonlen);

/* An anonymous user. */
void	auth_anonymous(struct auth_user *user);

/*
 * The value of claim name of user, as kept in u_claims (a string of at
 * most RT_CHANNEL_MAX bytes, or an integer in decimal), with its length
 * in *len; "userId" is the user id (userId, else sub).  NULL when the
 * user is anonymous or has no such claim.
 */
const char *auth_user_claim(const struct auth_user *user, const char *name, size_t *len);

/* Append a claim to u_claims; -1 when it does not fit. */
int	auth_user_add_claim(struct auth_user *user, const char *name, const char *v,
	    size_t vlen);

#endif
