#ifndef RT_AUTH_H
#define RT_AUTH_H

/*
 * JWT authentication at the handshake (libjwt 1.10).  No I/O beyond reading
 * the public key file in auth_setup().
 */
#include <stddef.h>
#include <time.h>

#include "realtimed.h"

struct rt_config;

struct auth_user {
	int	 u_authenticated;		/* 0: anonymous */
	int	 u_admin;			/* role == "admin" */
	char	 u_id[RT_USERID_MAX + 1];	/* userId, else sub */
	char	 u_email[RT_EMAIL_MAX + 1];	/* "" if absent */
	char	 u_role[RT_ROLE_MAX + 1];	/* "" if absent */
	int	 u_has_email;
	int	 u_has_role;
	time_t	 u_exp;				/* 0 if the token has none */
};

/* Prepared verification keys; opaque. */
struct auth_ctx;

/*
 * Build a context from the configuration (jwt_algorithm, jwt_secret,
 * jwt_public_key, jwt_leeway, jwt_issuer, jwt_audience).  NULL with a
 * message in err when the key material is missing or unreadable.
 */
struct auth_ctx *auth_new(const struct rt_config *conf, char *err, size_t errlen);
void	auth_free(struct auth_ctx *ctx);

/*
 * Verify a token at time now.  0 and *user filled when valid; -1 with a
 * short human reason in reason ("signature verification failed",
 * "token expired", "token not yet valid", "algorithm not allowed",
 * "malformed token", "missing userId or sub claim", "issuer mismatch",
 * "audience mismatch", "token too long", "invalid exp claim",
 * "invalid nbf claim", "invalid claim type", "claim too long",
 * "empty user id") otherwise.  The reason never contains the token.
 */
int	auth_verify(struct auth_ctx *ctx, const char *token, size_t len, time_t now,
	    struct auth_user *user, char *reason, size_t reasonlen);

/* An anonymous user. */
void	auth_anonymous(struct auth_user *user);

#endif
