/*
 * The bridge's hiredis adapter for libevent.  See bridge_ev.h.
 */
#include <sys/ioctl.h>
#include <sys/timerfd.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "log.h"
#include "bridge_ev.h"

struct brev {
	redisAsyncContext	*e_ac;
	struct event		*e_rev;
	struct event		*e_wev;
	struct event		*e_tev;		/* the hold's end: e_tfd readable */
	int			 e_tfd;		/* a timerfd, armed only while held */
	int			 e_reading;	/* hiredis wants reads */
	int			 e_held;	/* e_rev out of epoll, e_tfd armed */
	struct itimerspec	 e_hold;
	uint64_t		 e_hold_us;
	uint64_t		 e_last;	/* µs, the last read */
	_Atomic int64_t		*e_reads;	/* reads after a hold, or NULL */
	int			*e_gone;	/* set when freed, or NULL */
};

/* hiredis 0.14 reads at most this much at a time (redisBufferRead) */
#define BREV_READ	(16 * 1024)

static uint64_t
brev_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static size_t
brev_queued(redisAsyncContext *ac)
{
	int	 n = 0;

	if (ioctl(ac->c.fd, FIONREAD, &n) == -1 || n < 0)
		return 0;
	return (size_t)n;
}

/*
 * The hold's clock is a timerfd of its own, not a libevent timer: those
 * run on the coarse clock (4 ms steps here), and libevent's precise-timer
 * mode re-arms a timerfd before every wait of the loop, one system call
 * per pass whether a hold is on or not.  This one is armed when a hold
 * starts and disarmed (which also clears its readiness) when it ends: one
 * timerfd_settime() per hold.
 */
static int
brev_timer(struct brev *e, int on)
{
	static const struct itimerspec	 off;
	static int			 warned;

	if (timerfd_settime(e->e_tfd, 0, on ? &e->e_hold : &off, NULL) == 0)
		return 0;
	if (!warned++)	/* it cannot fail with these arguments: once is news */
		log_warn("%s: timerfd_settime", __func__);
	return -1;
}

/*
 * Take the read event out of epoll for e_hold: what Redis sends meanwhile
 * waits in the socket and is read in one go when the hold ends.
 */
static void
brev_hold_start(struct brev *e)
{
	if (brev_timer(e, 1) == -1) {
		/* no clock to end a hold: no hold, read as events come */
		if (e->e_held) {
			e->e_held = 0;
			event_add(e->e_rev, NULL);
		}
		return;
	}
	if (!e->e_held)
		event_del(e->e_rev);
	e->e_held = 1;
}

/* The hold ends (the timer may have fired): e_rev is added again by the caller. */
static void
brev_hold_stop(struct brev *e)
{
	brev_timer(e, 0);
	e->e_held = 0;
}

static void
brev_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct brev	*e = arg;

	(void)fd;
	(void)what;
	/*
	 * Events closer together than the hold: read this one now and let
	 * the next ones gather, when one read takes what is queued.
	 */
	if (e->e_hold_us != 0) {
		uint64_t now = brev_now_us();

		if (now - e->e_last < e->e_hold_us && brev_queued(e->e_ac) <= BREV_READ)
			brev_hold_start(e);
		e->e_last = now;
	}
	redisAsyncHandleRead(e->e_ac);	/* may free e */
}

/* The hold is over: read what gathered, and hold again while they come. */
static void
brev_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct brev	*e = arg;
	size_t		 q;

	(void)fd;
	(void)what;
	if (!e->e_held) {	/* ended meanwhile (brev_release), or not disarmed */
		uint64_t	 n;

		if (read(e->e_tfd, &n, sizeof(n)) == -1 && errno != EAGAIN)
			log_warn("%s: read timerfd", __func__);
		return;
	}
	if (!e->e_reading) {
		brev_hold_stop(e);
		return;
	}
	q = brev_queued(e->e_ac);
	if (q == 0 || q > BREV_READ) {
		/* quiet again (the next event is read when it comes), or more
		 * than one read: read as fast as the loop goes */
		brev_hold_stop(e);
		event_add(e->e_rev, NULL);
		if (q == 0)
			return;
	} else
		brev_hold_start(e);	/* re-armed: a new hold */
	if (e->e_reads != NULL)
		atomic_fetch_add(e->e_reads, 1);
	e->e_last = brev_now_us();
	redisAsyncHandleRead(e->e_ac);	/* may free e */
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
		if (!e->e_held)
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
	if (e->e_held)
		brev_hold_stop(e);
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
	event_free(e->e_tev);
	close(e->e_tfd);
	if (e->e_gone != NULL)
		*e->e_gone = 1;
	free(e);
}

int
brev_attach(redisAsyncContext *ac, struct event_base *base)
{
	struct brev	*e;

	if (ac->ev.data != NULL || (e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->e_ac = ac;
	e->e_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->e_rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, brev_read_cb, e);
	e->e_wev = event_new(base, ac->c.fd, EV_WRITE, brev_write_cb, e);
	e->e_tev = e->e_tfd == -1 ? NULL :
	    event_new(base, e->e_tfd, EV_READ | EV_PERSIST, brev_hold_cb, e);
	/* the timerfd stays in epoll: disarmed, it never wakes the loop */
	if (e->e_rev == NULL || e->e_wev == NULL || e->e_tev == NULL ||
	    event_add(e->e_tev, NULL) == -1) {
		if (e->e_rev != NULL)
			event_free(e->e_rev);
		if (e->e_wev != NULL)
			event_free(e->e_wev);
		if (e->e_tev != NULL)
			event_free(e->e_tev);
		if (e->e_tfd != -1)
			close(e->e_tfd);
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

void
brev_hold(redisAsyncContext *ac, unsigned usec, _Atomic int64_t *reads)
{
	struct brev	*e = ac->ev.data;

	if (e == NULL)
		return;
	e->e_hold_us = usec;
	e->e_hold.it_value.tv_sec = usec / 1000000;
	e->e_hold.it_value.tv_nsec = (long)(usec % 1000000) * 1000;
	e->e_reads = reads;
}

void
brev_release(redisAsyncContext *ac)
{
	struct brev	*e = ac->ev.data;
	int		 gone = 0, i;

	if (e == NULL || !e->e_held)
		return;
	brev_hold_stop(e);
	if (!e->e_reading)
		return;
	event_add(e->e_rev, NULL);
	e->e_last = brev_now_us();
	e->e_gone = &gone;
	/* a bound: what comes meanwhile waits for the loop */
	for (i = 0; i < 64 && brev_queued(ac) > 0; i++) {
		redisAsyncHandleRead(ac);	/* may free e */
		if (gone)
			return;
	}
	e->e_gone = NULL;
}
