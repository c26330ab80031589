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
struct event_base;
struct redisAsyncContext;

/* 0, or -1 when ac already has an adapter or out of memory. */
int	brev_attach(struct redisAsyncContext *ac, struct event_base *base);

#endif
