/*
 * The bridge's hiredis adapter for libevent.  See bridge_ev.h.
 */
#include <stdlib.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "bridge_ev.h"

struct brev {
	redisAsyncContext	*e_ac;
	struct event		*e_rev;
	struct event		*e_wev;
	int			 e_reading;
};

static void
brev_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct brev	*e = arg;

	(void)fd;
	(void)what;
	redisAsyncHandleRead(e->e_ac);
}

static void
brev_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct brev	*e = arg;

	(void)fd;
	(void)what;
	redisAsyncHandleWrite(e->e_ac);
}

/* hiredis asks for reads again after each one: only the first reaches epoll. */
static void
brev_add_read(void *arg)
{
	struct brev	*e = arg;

	if (!e->e_reading) {
		event_add(e->e_rev, NULL);
		e->e_reading = 1;
	}
}

static void
brev_del_read(void *arg)
{
	struct brev	*e = arg;

	if (e->e_reading) {
		event_del(e->e_rev);
		e->e_reading = 0;
	}
}

static void
brev_add_write(void *arg)
{
	event_add(((struct brev *)arg)->e_wev, NULL);
}

static void
brev_del_write(void *arg)
{
	event_del(((struct brev *)arg)->e_wev);
}

static void
brev_cleanup(void *arg)
{
	struct brev	*e = arg;

	event_free(e->e_rev);
	event_free(e->e_wev);
	free(e);
}

int
brev_attach(redisAsyncContext *ac, struct event_base *base)
{
	struct brev	*e;

	if (ac->ev.data != NULL || (e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->e_ac = ac;
	e->e_rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, brev_read_cb, e);
	e->e_wev = event_new(base, ac->c.fd, EV_WRITE, brev_write_cb, e);
	if (e->e_rev == NULL || e->e_wev == NULL) {
		if (e->e_rev != NULL)
			event_free(e->e_rev);
		if (e->e_wev != NULL)
			event_free(e->e_wev);
		free(e);
		return -1;
	}
	ac->ev.addRead = brev_add_read;
	ac->ev.delRead = brev_del_read;
	ac->ev.addWrite = brev_add_write;
	ac->ev.delWrite = brev_del_write;
	ac->ev.cleanup = brev_cleanup;
	ac->ev.data = e;
	/* as hiredis' adapter: the write event reports the connect's end */
	brev_add_read(e);
	brev_add_write(e);
	return 0;
}
