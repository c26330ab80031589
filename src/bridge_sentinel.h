#ifndef RT_BRIDGE_SENTINEL_H
#define RT_BRIDGE_SENTINEL_H

/*
 * The bridge's Sentinel client (redis_url redis-sentinel://…/MASTER), as
 * Redis' "Sentinel clients" guidelines describe: ask the sentinels in turn
 * (SENTINEL get-master-addr-by-name, the last one that answered first)
 * for the master's address, and keep one subscription to +switch-master
 * so that a failover moves the bridge at once.  The bridge checks ROLE on
 * the address it is given.  Private to the bridge.
 */
#include <stdint.h>

struct bsen;
struct event_base;
struct redis_url;
struct reg_bridge;

/*
 * found: the answer to bsen_resolve(), host NULL when no sentinel knew the
 * master.  moved: +switch-master for our master.  host is valid during the
 * call only.
 */
struct bsen_cb {
	void	(*sc_found)(void *arg, const char *host, int port);
	void	(*sc_moved)(void *arg, const char *host, int port);
	void	*sc_arg;
};

/* url and password (redis_sentinel_password, "" for none) must outlive it. */
struct bsen *bsen_new(struct event_base *base, const struct redis_url *url,
	    const char *password, struct reg_bridge *rb, const struct bsen_cb *cb);
void	bsen_free(struct bsen *s);
/* Ask for the master's address (once at a time); sc_found answers. */
void	bsen_resolve(struct bsen *s);
/* Every bridge tick: timeouts, the +switch-master subscription. */
void	bsen_tick(struct bsen *s, uint64_t now);

#endif
