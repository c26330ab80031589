#ifndef RT_BRIDGE_OUT_H
#define RT_BRIDGE_OUT_H

/*
 * Messages between the processes (the bridge's to the workers, a worker's
 * to the bridge), written once per pass of the event loop.  Appending to a bufferevent's output enables its write event at once
 * (epoll_ctl), and the write happens on the next pass, which disables it
 * again (epoll_ctl): three system calls and a loop pass around every write,
 * for every event when events come one at a time.  Here messages are staged
 * and, at the end of the pass that made them, written straight to the
 * socket when nothing is queued before them; only what the socket does not
 * take goes to the bufferevent, which writes it when it can.  Slots are
 * peers: one per worker in the bridge, one (the bridge) in a worker.
 */
#include <stddef.h>

struct bout;
struct bufferevent;
struct event_base;
struct evbuffer;

/* Slots 0 .. nslots - 1 (at most REG_MAX_WORKERS). */
struct bout	*bout_new(struct event_base *base, int nslots);
void		 bout_free(struct bout *bo);

/* Peer w's connection, or NULL when it is gone: what was staged is dropped. */
void		 bout_set(struct bout *bo, int w, struct bufferevent *bev);

/* Append peer w's messages here (w has a connection). */
struct evbuffer	*bout_stage(struct bout *bo, int w);

/* Bytes for peer w not yet taken by its socket. */
size_t		 bout_pending(const struct bout *bo, int w);

/* Write what is staged now (before exit). */
void		 bout_flush(struct bout *bo);

#endif
