#ifndef RT_CONTROL_H
#define RT_CONTROL_H

/*
 * Control messages between nodes (PROTOCOL.md "Revocation and control
 * across nodes"): an admin command that every node attached to one Redis
 * carries out, published on control_channel, signed with HMAC-SHA256 under
 * control_secret, with a timestamp and a nonce so that a stale or replayed
 * message is dropped.  Pure: no I/O, no clock (callers pass "now").
 *
 * The payload published on control_channel:
 *
 *   "rtctl1 " MAC " " JSON
 *
 * MAC is 64 lowercase hex digits: HMAC-SHA256(secret, the JSON's bytes
 * exactly as sent), so nothing is canonicalised.  JSON is one object:
 *
 *   {"ts":MS,"nonce":"32 hex","node":"ID","inst":"16 hex",
 *    "cmd":"kick"|"kick-user"|"revoke"|"unrevoke","arg":"...","until":S}
 *
 * ts: sender's wall clock, ms since the epoch; nonce: 16 random bytes;
 * node: the sender's node_id (1-64 bytes of [A-Za-z0-9_.:@-]); inst: the
 * sender's per-start random instance (so a node knows its own messages);
 * arg: the connection id, user id or jti (1-CTL_ARG_MAX bytes, no control
 * characters, no space, valid UTF-8); until: revoke only, Unix seconds > 0
 * (absent or 0 for the others).  Unknown members are refused.
 *
 * Revocations are also stored in Redis (HSET <control_channel>:revoked JTI
 * VALUE) so that a node that starts later refuses them too; VALUE is
 * "UNTIL MAC" with MAC = HMAC-SHA256(secret, "revoke " JTI " " UNTIL) in
 * hex, so a value written by anyone without the secret is not taken.  An
 * unrevoke leaves "~UNTIL MAC" (MAC over "unrevoke " JTI " " UNTIL) until
 * UNTIL, so that a node that missed it learns it too: the field holds
 * the last word on its jti.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_PREFIX		"rtctl1 "
#define CTL_NODE_MAX		64
#define CTL_ARG_MAX		255
#define CTL_NONCE_LEN		16
#define CTL_MSG_MAX		1024	/* an encoded message is never longer */
#define CTL_STORED_MAX		96	/* an encoded stored value is never longer */

enum ctl_cmd {
	CTL_NONE = 0,
	CTL_KICK,		/* arg: connection id */
	CTL_KICK_USER,		/* arg: user id */
	CTL_REVOKE,		/* arg: jti, until */
	CTL_UNREVOKE,		/* arg: jti */
};

struct ctl_msg {
	enum ctl_cmd	 cm_cmd;
	int64_t		 cm_ts;				/* ms */
	uint8_t		 cm_nonce[CTL_NONCE_LEN];
	char		 cm_node[CTL_NODE_MAX + 1];
	uint64_t	 cm_inst;
	char		 cm_arg[CTL_ARG_MAX + 1];
	int64_t		 cm_until;			/* revoke: Unix s */
};

/* Results of ctl_decode() and ctl_window_check(). */
enum {
	CTL_OK = 0,
	CTL_MALFORMED = -1,	/* not the form above */
	CTL_FORGED = -2,	/* the MAC does not match */
	CTL_STALE = -3,		/* ts outside now +- skew, or older than the window holds */
	CTL_REPLAYED = -4,	/* this nonce was seen */
};

/* "kick", "kick-user", "revoke", "unrevoke"; NULL for anything else. */
const char *ctl_cmd_name(enum ctl_cmd cmd);
/* The command of that name, CTL_NONE if none. */
enum ctl_cmd ctl_cmd_parse(const char *name);
/*
 * 1 if s (len bytes) may be a message's arg: 1-CTL_ARG_MAX bytes of valid
 * UTF-8 with no control character, space or DEL.
 */
int	ctl_arg_valid(const char *s, size_t len);
/* 1 if s may be a node id: 1-CTL_NODE_MAX bytes of [A-Za-z0-9_.:@-]. */
int	ctl_node_valid(const char *s, size_t len);

/*
 * Encode m (every field filled by the caller, the nonce random) into out;
 * the length (< outlen, out NUL-ended), or -1 when m is not valid (bad
 * command, arg or node, until <= 0 on a revoke) or out is too small.
 */
ssize_t	ctl_encode(const struct ctl_msg *m, const void *secret, size_t secretlen,
	    char *out, size_t outlen);
/*
 * Decode and verify the len bytes at p (not NUL-ended): CTL_OK with *m
 * filled, CTL_MALFORMED or CTL_FORGED (with *why a short static reason
 * when why is not NULL).  The MAC is checked before the JSON is parsed,
 * in constant time.
 */
int	ctl_decode(const char *p, size_t len, const void *secret, size_t secretlen,
	    struct ctl_msg *m, const char **why);

/*
 * The replay window: the nonces of the last max_nonces fresh messages.
 * A message is fresh when its ts is within skew_ms of now, newer than
 * every ts the window forgot (a nonce that fell out can never be taken
 * again), and its nonce is not held.
 */
struct ctl_window;
struct ctl_window *ctl_window_new(size_t max_nonces, int64_t skew_ms);
void	ctl_window_free(struct ctl_window *w);
/* CTL_OK (and the nonce is remembered), CTL_STALE or CTL_REPLAYED. */
int	ctl_window_check(struct ctl_window *w, const uint8_t nonce[CTL_NONCE_LEN],
	    int64_t ts, int64_t now);
/* Nonces forgotten to make room (each raised the window's floor). */
uint64_t ctl_window_evicted(const struct ctl_window *w);

/*
 * A stored revocation's value: "UNTIL MAC" into out (CTL_STORED_MAX
 * bytes); its length, or -1 when jti is not a valid arg or until <= 0.
 */
int	ctl_stored_encode(const void *secret, size_t secretlen, const char *jti,
	    int64_t until, char *out, size_t outlen);
/* Check a stored value (vlen bytes) for jti: 0 with *until, or -1. */
int	ctl_stored_decode(const void *secret, size_t secretlen, const char *jti,
	    const char *v, size_t vlen, int64_t *until);
/* The same for an unrevoke's mark, "~UNTIL MAC". */
int	ctl_unrevoked_encode(const void *secret, size_t secretlen, const char *jti,
	    int64_t until, char *out, size_t outlen);
int	ctl_unrevoked_decode(const void *secret, size_t secretlen, const char *jti,
	    const char *v, size_t vlen, int64_t *until);

#endif
