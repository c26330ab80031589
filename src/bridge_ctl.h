#ifndef RT_BRIDGE_CTL_H
#define RT_BRIDGE_CTL_H

/*
 * The bridge's part of control across nodes (PROTOCOL.md "Revocation and
 * control across nodes"): it signs and publishes the admin's kick,
 * kick-user, revoke and unrevoke on control_channel, stores revocations
 * in Redis, verifies what other nodes publish and hands it to the master,
 * reads the stored revocations back after every (re)connect, and keeps
 * this node's entry in the node registry.  Private to the bridge.
 *
 * Redis keys, named after control_channel (CC):
 *   CC:revoked   hash: jti -> "UNTIL MAC" (control.h), expires with the last
 *   CC:nodes     hash: node id -> JSON (id, host, version, started,
 *                connections, expires), refreshed every node_ttl / 3
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct bctl;
struct ipc_hdr;
struct redisAsyncContext;
struct registry;
struct rt_config;

/* conf is the bridge's own (reloads change it in place). */
struct bctl *bctl_new(struct rt_config *conf, struct registry *reg, int master_fd);
/* After every Redis context is freed. */
void	bctl_free(struct bctl *bc);
/*
 * How a command reaches Redis: key (NULL: any node, a PUBLISH) routes it
 * in a cluster; fn(ac, reply, priv) as hiredis calls it (ac may be NULL).
 * 0, or -1 when it was not sent (fn is then not called).
 */
typedef int bctl_send_fn(void *arg, const char *key, void (*fn)(struct redisAsyncContext *,
	    void *, void *), void *priv, const char *fmt, va_list ap);
/*
 * Redis is there (commands may be sent at once): send, or NULL when it is
 * gone.
 */
void	bctl_set_cmd(struct bctl *bc, bctl_send_fn *send, void *arg);
/* The keys in Redis: CC:revoked, CC:nodes. */
void	bctl_keys(const struct bctl *bc, const char **revoked, const char **nodes);
/* A message heard on control_channel. */
void	bctl_message(struct bctl *bc, const char *data, size_t len);
/* IPC_CTL_CONTROL or IPC_CTL_NODES from the master. */
void	bctl_request(struct bctl *bc, const struct ipc_hdr *hdr, const char *buf);
/* control_secret changed (a reload): read the stored revocations again. */
void	bctl_secret_changed(struct bctl *bc);
/* Every bridge tick: the node registry. */
void	bctl_tick(struct bctl *bc, uint64_t now);

#endif
