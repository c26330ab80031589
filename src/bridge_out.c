/*
 * Writes to the other processes, one per peer per loop pass.  See
 * bridge_out.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bridge_out.h"
#include "log.h"
#include "registry.h"

struct bout {
	struct event		*o_flush;
	struct bufferevent	*o_bev[REG_MAX_WORKERS];
	struct evbuffer		*o_stage[REG_MAX_WORKERS];
	uint64_t		 o_dirty;	/* bit w: o_stage[w] has bytes */
	int			 o_n;		/* slots */
};

static void
bout_flush_one(struct bout *bo, int w)
{
	struct evbuffer	*stage = bo->o_stage[w];
	struct evbuffer	*out;

	if (bo->o_bev[w] == NULL) {
		evbuffer_drain(stage, evbuffer_get_length(stage));
		return;
	}
	out = bufferevent_get_output(bo->o_bev[w]);
	/* nothing queued before: the socket takes it now, as a whole if it can */
	if (evbuffer_get_length(out) == 0)
		(void)evbuffer_write(stage, bufferevent_getfd(bo->o_bev[w]));
	/* the rest (or an error, which the bufferevent's own write then reports) */
	if (evbuffer_get_length(stage) > 0 && bufferevent_write_buffer(bo->o_bev[w], stage) == -1)
		fatalx("%s: out of memory", __func__);
}

void
bout_flush(struct bout *bo)
{
	while (bo->o_dirty != 0) {
		int	 w = __builtin_ctzll(bo->o_dirty);

		bo->o_dirty &= bo->o_dirty - 1;
		bout_flush_one(bo, w);
	}
}

static void
bout_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	bout_flush(arg);
}

struct bout *
bout_new(struct event_base *base, int nslots)
{
	struct bout	*bo;
	int		 w;

	if (nslots < 1 || nslots > REG_MAX_WORKERS)
		fatalx("%s: %d slots", __func__, nslots);
	if ((bo = calloc(1, sizeof(*bo))) == NULL ||
	    (bo->o_flush = event_new(base, -1, 0, bout_flush_cb, bo)) == NULL)
		fatalx("%s: out of memory", __func__);
	bo->o_n = nslots;
	for (w = 0; w < nslots; w++)
		if ((bo->o_stage[w] = evbuffer_new()) == NULL)
			fatalx("%s: out of memory", __func__);
	return bo;
}

void
bout_free(struct bout *bo)
{
	int	 w;

	if (bo == NULL)
		return;
	for (w = 0; w < bo->o_n; w++)
		evbuffer_free(bo->o_stage[w]);
	event_free(bo->o_flush);
	free(bo);
}

void
bout_set(struct bout *bo, int w, struct bufferevent *bev)
{
	struct evbuffer	*stage = bo->o_stage[w];

	evbuffer_drain(stage, evbuffer_get_length(stage));
	bo->o_dirty &= ~(UINT64_C(1) << w);
	bo->o_bev[w] = bev;
}

struct evbuffer *
bout_stage(struct bout *bo, int w)
{
	if (bo->o_dirty == 0)
		event_active(bo->o_flush, EV_WRITE, 0);	/* at the end of this pass */
	bo->o_dirty |= UINT64_C(1) << w;
	return bo->o_stage[w];
}

size_t
bout_pending(const struct bout *bo, int w)
{
	size_t	 n = evbuffer_get_length(bo->o_stage[w]);

	if (bo->o_bev[w] != NULL)
		n += evbuffer_get_length(bufferevent_get_output(bo->o_bev[w]));
	return n;
}
