#ifndef RT_BRIDGE_EV_H
#define RT_BRIDGE_EV_H

/*
 * hiredis' libevent adapter, with a persistent read event.  hiredis 0.14's
 * own adapter (hiredis/adapters/libevent.h) registers EV_READ without
 * EV_PERSIST, so libevent deletes the event when it fires and hiredis adds
 * it again after every read: two epoll_ctl() calls per read of the
 * subscribe connection, that is per event published at a low rate.  Here
 * the read event stays in the epoll set from connect to cleanup, and the
 * write event stays one-shot (hiredis writes seldom).  Private to the
 * bridge.
 */
#include <stdint.h>

struct event_base;
struct redisAsyncContext;

/* 0, or -1 when ac already has an adapter or out of memory. */
int	brev_attach(struct redisAsyncContext *ac, struct event_base *base);

/*
 * Replies closer together than usec (0: off) are let gather in the socket
 * for usec and read together (see redis_coalesce in realtimed.conf(5)):
 * one wakeup for several events.  The first after a quiet spell is read
 * at once.  *reads (if not NULL) counts the reads made after a hold.
 */
void	brev_hold(struct redisAsyncContext *ac, unsigned usec, _Atomic int64_t *reads);

/*
 * End a hold now: read what has gathered (what Redis had sent before a
 * question about positions must be counted in the answer).  ac may be
 * gone after it (a read error): the disconnect callback has run.
 */
void	brev_release(struct redisAsyncContext *ac);

#endif
