/*
 * The worker's end of the bridge link: each read is a batch of event
 * frames, built once by the bridge.  A frame goes to every local
 * subscriber of its channel by sendmsg straight from the batch (plain
 * sockets with nothing queued), as a reference to one shared copy (plain
 * sockets with bytes waiting), or into the TLS bufferevent.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "ipc.h"
#include "registry.h"
#include "outq.h"
#include "stats.h"
#include "deflate.h"
#include "bridge_out.h"
#include "worker_int.h"

#define FANOUT_PEND_MAX		65536	/* frames pending before a forced flush */
#define FANOUT_WRITEV_MAX	64
#define FANOUT_BIN_MIN		65536	/* bytes read from the bridge at a time */

/* Frame i of the batch as a shared block: copied once, for every subscriber. */
static struct rt_blk *
fanout_frame_blk(struct rt_worker *w, uint32_t i)
{
	struct fanout_frame	*f = &w->w_frames[i];

	if (f->ff_blk == NULL)
		f->ff_blk = blk_copy(f->ff_p, f->ff_len);
	return f->ff_blk;
}

/* Queue the bytes of frame i from off on c, sharing the frame's block. */
static void
fanout_queue(struct rt_conn *c, uint32_t i, size_t off)
{
	struct rt_worker	*w = c->c_worker;
	struct rt_blk		*b;

	if (c->c_io_err)
		return;
	if ((b = fanout_frame_blk(w, i)) == NULL ||
	    outq_add_ref(&c->c_out, b, b->b_data + off, w->w_frames[i].ff_len - off) == -1)
		conn_io_fail(c, ENOMEM);
}

/*
 * Send a connection's pending frames with one sendmsg, straight from the
 * bridge's batch block: no copy, no epoll round trip.  What the socket
 * does not take waits in its queue, sharing the frames' blocks.
 */
static void
fanout_flush_conn(struct rt_worker *w, struct rt_conn *c)
{
	struct iovec	 iov[FANOUT_WRITEV_MAX];
	uint32_t	 e = c->c_pend_first, f, fr[FANOUT_WRITEV_MAX];
	ssize_t		 n;
	size_t		 want;
	int		 cnt, fd = conn_fd(c), blocked = 0;

	while (e != UINT32_MAX) {
		for (cnt = 0, want = 0, f = e; f != UINT32_MAX && cnt < FANOUT_WRITEV_MAX;
		    f = w->w_pend[f].fp_next, cnt++) {
			fr[cnt] = w->w_pend[f].fp_frame;
			iov[cnt].iov_base = (void *)(uintptr_t)w->w_frames[fr[cnt]].ff_p;
			iov[cnt].iov_len = w->w_frames[fr[cnt]].ff_len;
			want += iov[cnt].iov_len;
		}
		n = blocked ? 0 : outq_sendv(fd, iov, cnt);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				conn_io_fail(c, errno);
			n = 0;
		}
		if ((size_t)n < want)
			blocked = 1;
		/* the unwritten tail of this group, then the rest, to the queue */
		for (cnt = 0; e != f; e = w->w_pend[e].fp_next, cnt++) {
			if ((size_t)n >= iov[cnt].iov_len) {
				n -= (ssize_t)iov[cnt].iov_len;
				continue;
			}
			fanout_queue(c, fr[cnt], (size_t)n);
			n = 0;
		}
	}
	c->c_pend_batch = 0;
	c->c_pend_bytes = 0;
	if (c->c_out != NULL)
		conn_want_room(c);
}

static void
fanout_flush(struct rt_worker *w)
{
	uint64_t	 now;
	uint32_t	 i;

	for (i = 0; i < w->w_npconns; i++)
		if (w->w_pconns[i]->c_pend_batch == w->w_batch)
			fanout_flush_conn(w, w->w_pconns[i]);
	/* queues hold their own references to the frames they share */
	now = w->w_nframes > 0 ? util_now_us() : 0;
	for (i = 0; i < w->w_nframes; i++) {
		blk_unref(w->w_frames[i].ff_blk);
		if (w->w_frames[i].ff_received_us != 0)
			stats_observe(&w->w_rw->rw_delivery, now - w->w_frames[i].ff_received_us);
	}
	w->w_nframes = 0;
	w->w_npend = 0;
	w->w_npconns = 0;
	/* a new batch: nobody is pending in it */
	if (++w->w_batch == 0)
		w->w_batch = 1;
}

/*
 * Room for element n of the array at *(void **)arrp, whose capacity is
 * *cap (doubling, from first); -1 when it cannot grow.
 */
static int
fanout_grow(void *arrp, uint32_t *cap, uint32_t n, size_t size, uint32_t first)
{
	void		**arr = arrp, *p;
	uint32_t	 c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : first;
	if (c <= *cap || (p = reallocarray(*arr, c, size)) == NULL)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

/* Remember an event frame of this batch; its index, or -1. */
static int64_t
fanout_frame_add(struct rt_worker *w, const uint8_t *frame, size_t flen,
    uint64_t received_us)
{
	struct fanout_frame	*f;

	if (fanout_grow(&w->w_frames, &w->w_framecap, w->w_nframes, sizeof(*f), 256) == -1)
		return -1;
	f = &w->w_frames[w->w_nframes];
	f->ff_p = frame;
	f->ff_len = (uint32_t)flen;
	f->ff_blk = NULL;
	f->ff_received_us = received_us;
	return w->w_nframes++;
}

/* Remember frame i for c; -1 when the arrays cannot grow. */
static int
fanout_pend(struct rt_worker *w, struct rt_conn *c, uint32_t i)
{
	struct fanout_pending	*e;

	if (fanout_grow(&w->w_pend, &w->w_pendcap, w->w_npend, sizeof(*e), 1024) == -1)
		return -1;
	if (c->c_pend_batch != w->w_batch) {
		if (fanout_grow(&w->w_pconns, &w->w_pconncap, w->w_npconns,
		    sizeof(*w->w_pconns), 256) == -1)
			return -1;
		w->w_pconns[w->w_npconns++] = c;
		c->c_pend_batch = w->w_batch;
		c->c_pend_first = w->w_npend;
		c->c_pend_bytes = 0;
	} else
		w->w_pend[c->c_pend_last].fp_next = w->w_npend;
	e = &w->w_pend[w->w_npend];
	e->fp_frame = i;
	e->fp_next = UINT32_MAX;
	c->c_pend_last = w->w_npend++;
	c->c_pend_bytes += w->w_frames[i].ff_len;
	return 0;
}

/*
 * ch is at (epoch, offset) in this worker's stream: an event of it, or an
 * answer about it.  No epoch: it has no position to give out here.
 */
static void
fanout_pos_learn(struct rt_worker *w, struct rt_chan *ch, const char *epoch, size_t elen,
    uint64_t offset)
{
	struct chan_pos	*p = ch->ch_pos;

	if (elen == 0 || elen > IPC_EPOCH_MAX) {
		if (p != NULL)
			p->cp_gen = 0;
		return;
	}
	if (p == NULL) {
		if (ch->ch_nsubs < 2 || (p = malloc(sizeof(*p))) == NULL)
			return;
		ch->ch_pos = p;
	}
	p->cp_gen = w->w_posgen;
	p->cp_epochlen = (uint8_t)elen;
	memcpy(p->cp_epoch, epoch, elen);
	p->cp_offset = offset;
}

/* Every position learnt so far goes stale (a reset, a new bridge, a reload). */
void
fanout_positions_forget(struct rt_worker *w)
{
	if (++w->w_posgen == 0)
		w->w_posgen = 1;
}

/*
 * Deliver one event frame to every subscriber.  The bytes arrive complete
 * from the bridge.  A plain socket with nothing queued gets the frame at
 * the end of this batch by sendmsg (coalesced with the batch's other
 * frames for it); a plain socket with bytes waiting queues a reference to
 * the frame's one shared copy; wss copies it into the bufferevent.  A
 * subscriber with output waiting that this frame would take over
 * max_output_buffer is a slow consumer, closed with 4000 after the loop
 * (closing edits the channel's subscriber array).
 */
/* c's frame of this event: the compressed one when c negotiated permessage-deflate. */
struct fanout_pick {
	const uint8_t	*fp_p[2];	/* plain, compressed (NULL: none) */
	size_t		 fp_len[2];
	int64_t		 fp_idx[2];	/* in w_frames; -2: not added yet, -1: no room */
	uint64_t	 fp_received_us;
};

static int
fanout_pick(struct rt_worker *w, struct fanout_pick *pk, const struct rt_conn *c)
{
	int	 k = c->c_deflate && pk->fp_p[1] != NULL;

	/* a frame enters the batch at its first subscriber */
	if (pk->fp_idx[k] == -2)
		pk->fp_idx[k] = fanout_frame_add(w, pk->fp_p[k], pk->fp_len[k], pk->fp_received_us);
	return k;
}

/* A subscriber with output waiting that f would take over max_output_buffer. */
static int
fanout_too_slow(struct rt_worker *w, struct rt_conn *c, size_t flen)
{
	size_t	 olen = conn_outlen(c);

	if (c->c_pend_batch == w->w_batch)
		olen += c->c_pend_bytes;
	/* a frame alone is never slow: the bridge caps its size */
	return olen > 0 && olen + flen > (size_t)w->w_conf->c_max_output_buffer;
}

/* Hand frame fi (bytes p, flen) to c the cheapest way its socket allows. */
static void
fanout_give(struct rt_worker *w, struct rt_conn *c, int64_t fi, const uint8_t *p, size_t flen)
{
	if (c->c_tls)
		evbuffer_add(bufferevent_get_output(c->c_bev), p, flen);
	else if (fi == -1)
		conn_io_fail(c, ENOMEM);
	else if (c->c_pend_batch == w->w_batch || c->c_out == NULL) {
		/* behind its other frames of this batch, or the first */
		if (fanout_pend(w, c, (uint32_t)fi) == -1)
			conn_io_fail(c, ENOMEM);
	} else
		fanout_queue(c, (uint32_t)fi, 0);
}

/*
 * Deliver one event frame to every subscriber.  The bytes arrive complete
 * from the bridge, plain and, when some subscriber here negotiated
 * permessage-deflate, compressed: each subscriber gets the one it can
 * read, both shared.  A plain socket with nothing queued gets the frame at
 * the end of this batch by sendmsg (coalesced with the batch's other
 * frames for it); a plain socket with bytes waiting queues a reference to
 * the frame's one shared copy; wss copies it into the bufferevent.  A
 * subscriber with output waiting that this frame would take over
 * max_output_buffer is a slow consumer, closed with 4000 after the loop
 * (closing edits the channel's subscriber array).
 */
static void
fanout_event(struct rt_worker *w, const uint8_t *p, size_t len)
{
	struct rt_chan		*ch;
	struct rt_conn		*c, **slow = NULL;
	struct ipc_event	 ev;
	struct fanout_pick	 pk;
	size_t			 i, nslow = 0;
	int			 k;

	if (ipc_event_split(p, len, &ev) == -1)
		fatalx("%s: malformed event from the bridge", __func__);
	if ((ch = chanidx_find(w, ev.ie_channel, ev.ie_chlen)) == NULL)
		return;
	fanout_pos_learn(w, ch, ev.ie_epoch, ev.ie_epochlen, ev.ie_offset);
	if (w->w_npend + ch->ch_nsubs > FANOUT_PEND_MAX)
		fanout_flush(w);
	pk.fp_p[0] = ev.ie_frame;
	pk.fp_len[0] = ev.ie_framelen;
	pk.fp_p[1] = ev.ie_zframe;
	pk.fp_len[1] = ev.ie_zframelen;
	pk.fp_idx[0] = pk.fp_idx[1] = -2;
	pk.fp_received_us = ev.ie_received_us;
	for (i = 0; i < ch->ch_nsubs; i++) {
		c = ch->ch_subs[i]->s_conn;
		/* s_hold: its replay, then the live events, come after the answer */
		if (c->c_state != CS_OPEN || c->c_io_err || ch->ch_subs[i]->s_hold)
			continue;
		k = fanout_pick(w, &pk, c);
		if (fanout_too_slow(w, c, pk.fp_len[k])) {
			struct rt_conn **n = reallocarray(slow, nslow + 1, sizeof(*n));

			if (n != NULL) {
				slow = n;
				slow[nslow++] = c;
			}
			continue;
		}
		fanout_give(w, c, pk.fp_idx[k], pk.fp_p[k], pk.fp_len[k]);
		STAT_ADD(w, rw_events_out, 1);
		STAT_ADD(w, rw_bytes_out, (int64_t)pk.fp_len[k]);
		if (k == 1)
			STAT_ADD(w, rw_deflate_events, 1);
	}
	/* one event, one latency sample */
	if (pk.fp_idx[0] >= 0 && pk.fp_idx[1] >= 0)
		w->w_frames[pk.fp_idx[1]].ff_received_us = 0;
	for (i = 0; i < nslow; i++) {
		slow[i]->c_pend_batch = 0;	/* its pending frames are dropped */
		conn_slow(slow[i]);
	}
	free(slow);
}

/* ---- positions ------------------------------------------------------------- */

/*
 * Where a message to the bridge goes (w_bridge is set): staged, and
 * written at the end of this loop pass, straight to the socket when
 * nothing waits before it (bridge_out.h).
 */
struct evbuffer *
fanout_bridge_out(struct rt_worker *w)
{
	return bout_stage(w->w_bout, 0);
}

#define FANOUT_REQ_BITS		20	/* slots; the rest of an id is a generation */
#define FANOUT_REQ_MAX		(1u << FANOUT_REQ_BITS)

static void
fanout_req_send(struct rt_worker *w, struct fanout_req *r)
{
	struct rt_chan	*ch = r->fr_sub->s_chan;
	struct ipc_pos	 pos;
	struct ipc_hdr	 h;
	uint8_t		 buf[IPC_POS_MAX];
	struct evbuffer	*out;
	size_t		 len;

	if (w->w_bridge == NULL)
		return;		/* asked again when the next bridge is attached */
	r->fr_sent = 1;
	pos.ip_offset = r->fr_offset;
	pos.ip_flag = r->fr_since;
	pos.ip_epoch = r->fr_epoch;
	pos.ip_epochlen = strlen(r->fr_epoch);
	pos.ip_channel = ch->ch_name;
	pos.ip_chlen = strlen(ch->ch_name);
	len = ipc_pos_encode(buf, &pos);
	ipc_hdr_init(&h, IPC_POS_REQ, (uint32_t)len, r->fr_id);
	out = fanout_bridge_out(w);
	if (evbuffer_add(out, &h, sizeof(h)) == -1 || evbuffer_add(out, buf, len) == -1)
		fatalx("%s: out of memory", __func__);
}

static int
fanout_req_slot(struct rt_worker *w)
{
	uint32_t	 old = w->w_reqcap, cap, i, *nf;

	if (w->w_nreqfree == 0) {
		cap = old ? old * 2 : 64;
		if (cap > FANOUT_REQ_MAX ||
		    (nf = reallocarray(w->w_reqfree, cap, sizeof(*nf))) == NULL)
			return -1;
		w->w_reqfree = nf;
		if (fanout_grow(&w->w_reqs, &w->w_reqcap, old, sizeof(*w->w_reqs), 64) == -1)
			return -1;
		/* new slots: free, not dead (fanout_bridge_lost() frees dead ones) */
		memset(&w->w_reqs[old], 0, (w->w_reqcap - old) * sizeof(*w->w_reqs));
		for (i = w->w_reqcap; i > old; i--)
			w->w_reqfree[w->w_nreqfree++] = i - 1;
	}
	return (int)w->w_reqfree[--w->w_nreqfree];
}

/*
 * Ask the bridge for s's channel position; with epoch (not NULL), for a
 * replay of what follows since.  hold: s gets no live event until the
 * answer is through.  0, or -1 when no request can be made.
 */
int
fanout_position(struct rt_sub *s, int hold, const char *epoch, uint64_t since)
{
	struct rt_worker	*w = s->s_conn->c_worker;
	struct fanout_req	*r;
	int			 slot;

	if (s->s_req != 0 || (slot = fanout_req_slot(w)) == -1)
		return -1;
	r = &w->w_reqs[slot];
	if (++w->w_reqgen >= (1u << (32 - FANOUT_REQ_BITS)))
		w->w_reqgen = 1;
	r->fr_sub = s;
	r->fr_id = (w->w_reqgen << FANOUT_REQ_BITS) | (uint32_t)slot;
	r->fr_since = epoch != NULL;
	r->fr_answered = 0;
	r->fr_sent = 0;
	r->fr_dead = 0;
	r->fr_offset = since;
	snprintf(r->fr_epoch, sizeof(r->fr_epoch), "%s", epoch != NULL ? epoch : "");
	s->s_req = r->fr_id;
	s->s_hold = hold != 0;
	s->s_conn->c_waiting++;
	fanout_req_send(w, r);
	return 0;
}

/*
 * A subscribe to s's channel without since, answered from the position
 * this worker's stream carried (struct chan_pos): every event after it
 * comes on the stream, none before, as an answer of the bridge's would
 * promise.  1 when answered ("subscribed" sent), 0 when the bridge is to
 * be asked.
 */
int
fanout_position_here(struct rt_sub *s)
{
	struct rt_conn		*c = s->s_conn;
	struct rt_worker	*w = c->c_worker;
	struct chan_pos		*p = s->s_chan->ch_pos;
	char			 epoch[IPC_EPOCH_MAX + 1], *msg;
	size_t			 mlen;

	if (p == NULL || p->cp_gen != w->w_posgen || w->w_bridge == NULL)
		return 0;
	/* what this batch has for c goes first, as before an answer */
	if (c->c_pend_batch == w->w_batch)
		fanout_flush_conn(w, c);
	memcpy(epoch, p->cp_epoch, p->cp_epochlen);
	epoch[p->cp_epochlen] = '\0';
	msg = proto_subscribed_at(s->s_chan->ch_name, epoch, p->cp_offset, -1, NULL, &mlen);
	conn_send_text(c, msg, mlen);
	STAT_ADD(w, rw_positions_here, 1);
	return 1;
}

static void
fanout_req_free(struct rt_worker *w, uint32_t slot)
{
	w->w_reqs[slot].fr_sub = NULL;
	w->w_reqs[slot].fr_dead = 0;
	w->w_reqfree[w->w_nreqfree++] = slot;
}

/*
 * s's request is over: answered to the end, or s goes (unsubscribed,
 * closed).  A slot whose answer may still come stays taken, dead, until
 * the answer's end: no other request can have its id meanwhile.
 */
void
fanout_position_cancel(struct rt_sub *s)
{
	struct rt_worker	*w = s->s_conn->c_worker;
	uint32_t		 slot = s->s_req & (FANOUT_REQ_MAX - 1);
	struct fanout_req	*r;

	if (s->s_req == 0)
		return;
	if (slot < w->w_reqcap && (r = &w->w_reqs[slot])->fr_sub == s) {
		if (s->s_conn->c_waiting > 0)
			s->s_conn->c_waiting--;
		if (r->fr_sent) {
			r->fr_sub = NULL;
			r->fr_dead = 1;
		} else
			fanout_req_free(w, slot);
	}
	s->s_req = 0;
	s->s_hold = 0;
}

/* The request an answer is for, or NULL when it is gone (unsubscribed, closed). */
static struct rt_sub *
fanout_req_find(struct rt_worker *w, uint32_t id)
{
	uint32_t	 slot = id & (FANOUT_REQ_MAX - 1);

	if (slot >= w->w_reqcap || w->w_reqs[slot].fr_sub == NULL ||
	    w->w_reqs[slot].fr_id != id)
		return NULL;
	return w->w_reqs[slot].fr_sub;
}

/*
 * The bridge went away: no answer can come on its socket.  Dead slots
 * are free; a request whose answer was cut short (its subscribed is out,
 * the replay may not be whole) ends its connection, so that the client
 * asks again with what it really has; the others are asked again of the
 * next bridge.
 */
void
fanout_bridge_lost(struct rt_worker *w)
{
	struct fanout_req	*r;
	uint32_t		 i;

	conn_pub_bridge_lost(w);
	fanout_positions_forget(w);
	for (i = 0; i < w->w_reqcap; i++) {
		r = &w->w_reqs[i];
		if (r->fr_dead) {
			fanout_req_free(w, i);
			continue;
		}
		if (r->fr_sub == NULL)
			continue;
		r->fr_sent = 0;
		if (r->fr_answered && r->fr_sub->s_conn->c_state == CS_OPEN)
			conn_close(r->fr_sub->s_conn, WS_CLOSE_INTERNAL, "Replay interrupted", 1);
	}
}

static void
fanout_pos_answer(struct rt_worker *w, uint32_t id, const uint8_t *m, size_t len)
{
	struct rt_sub		*s;
	struct rt_conn		*c;
	struct ipc_pos		 pos;
	struct fanout_req	*r;
	char			 epoch[PROTO_EPOCH_MAX + 1], *msg;
	size_t			 mlen;

	if (ipc_pos_decode(m, len, &pos) == -1 || pos.ip_epochlen > PROTO_EPOCH_MAX)
		fatalx("%s: malformed position from the bridge", __func__);
	if ((s = fanout_req_find(w, id)) == NULL)
		return;
	c = s->s_conn;
	r = &w->w_reqs[id & (FANOUT_REQ_MAX - 1)];
	r->fr_answered = 1;
	if (c->c_state != CS_OPEN)
		return;
	if (pos.ip_chlen != strlen(s->s_chan->ch_name) ||
	    memcmp(pos.ip_channel, s->s_chan->ch_name, pos.ip_chlen) != 0) {
		log_warnx("%s: %s: the answer for %s is about another channel", __func__,
		    conn_peer(c), s->s_chan->ch_name);
		conn_close(c, WS_CLOSE_INTERNAL, "Internal error", 1);
		return;
	}
	if (pos.ip_flag == IPC_POS_TOO_LARGE) {
		conn_slow(c);	/* the replay alone is over max_output_buffer */
		return;
	}
	if (pos.ip_flag == IPC_POS_PLAIN || pos.ip_flag == IPC_POS_RECOVERED ||
	    pos.ip_flag == IPC_POS_UNRECOVERED)	/* the channel's position now */
		fanout_pos_learn(w, s->s_chan, pos.ip_epoch, pos.ip_epochlen, pos.ip_offset);
	if (pos.ip_flag == IPC_POS_REFUSED) {	/* redis_subscriptions_max */
		conn_send_error(c, "Server busy, try again later", "subscribe", s->s_chan->ch_name);
		chanidx_unsubscribe_at(c, chanidx_find_sub(c, s->s_chan->ch_name,
		    strlen(s->s_chan->ch_name)));
		return;
	}
	/* what this batch has for c goes first: the answer follows it */
	if (c->c_pend_batch == w->w_batch)
		fanout_flush_conn(w, c);
	memcpy(epoch, pos.ip_epoch, pos.ip_epochlen);
	epoch[pos.ip_epochlen] = '\0';
	/* no epoch: the bridge keeps no history for the channel (a reload) */
	msg = proto_subscribed_at(s->s_chan->ch_name, pos.ip_epochlen > 0 ? epoch : NULL,
	    pos.ip_offset, pos.ip_flag == IPC_POS_PLAIN ? -1 : pos.ip_flag == IPC_POS_RECOVERED,
	    NULL, &mlen);
	conn_send_text(c, msg, mlen);
}

/* After the replay's end: the requests that waited for this answer. */
static void
fanout_pos_resume(struct rt_conn *c)
{
	if (c->c_waiting == 0 && c->c_later != NULL)
		conn_ws_resume(c);
}

/* A replayed event: counted against the output limit like a live one. */
static void
fanout_pos_replay(struct rt_worker *w, uint32_t id, const uint8_t *m, size_t len)
{
	struct rt_sub	*s;
	struct rt_conn	*c;

	if ((s = fanout_req_find(w, id)) == NULL)
		return;
	c = s->s_conn;
	if (c->c_state != CS_OPEN || c->c_io_err)
		return;
	if (conn_outlen(c) > 0 && conn_outlen(c) + len > (size_t)w->w_conf->c_max_output_buffer) {
		conn_slow(c);
		return;
	}
	conn_write(c, m, len);
	STAT_ADD(w, rw_events_out, 1);
	STAT_ADD(w, rw_bytes_out, (int64_t)len);
	STAT_ADD(w, rw_replayed, 1);
}

static void
fanout_pos_end(struct rt_worker *w, uint32_t id)
{
	struct rt_sub	*s;
	struct rt_conn	*c;
	uint32_t	 slot = id & (FANOUT_REQ_MAX - 1);

	if (slot < w->w_reqcap && w->w_reqs[slot].fr_dead && w->w_reqs[slot].fr_id == id) {
		fanout_req_free(w, slot);	/* the end of a cancelled one's answer */
		return;
	}
	if ((s = fanout_req_find(w, id)) == NULL)
		return;
	c = s->s_conn;
	w->w_reqs[slot].fr_sent = 0;	/* nothing more will come for it */
	fanout_position_cancel(s);	/* done: live events flow */
	fanout_pos_resume(c);
}

/*
 * The bridge's messages in p[0..len): each whole one is handled, and the
 * frames of a batch leave straight from p (fanout_flush() before p moves).
 * The bytes used.
 */
static size_t
fanout_dispatch(struct rt_worker *w, const uint8_t *p, size_t len)
{
	struct ipc_hdr		 hdr;
	const uint8_t		*m;
	uint64_t		 seq;
	size_t			 off = 0;
	int			 rv;

	while (len - off >= sizeof(hdr)) {
		if ((rv = ipc_parse(p + off, len - off, &hdr)) == IPC_PARSE_NEED_MORE)
			break;
		if (rv == IPC_PARSE_BAD)
			fatalx("%s: malformed message from the bridge", __func__);
		m = p + off + sizeof(hdr);
		switch (hdr.type) {
		case IPC_EVENT:
			fanout_event(w, m, hdr.len);
			break;
		case IPC_HELLO:
			fanout_positions_forget(w);	/* a new bridge, new positions */
			worker_accepting(w, "the bridge is connected");
			break;
		case IPC_POS:
			fanout_pos_answer(w, hdr.peerid, m, hdr.len);
			break;
		case IPC_REPLAY:
			fanout_pos_replay(w, hdr.peerid, m, hdr.len);
			break;
		case IPC_POS_END:
			fanout_pos_end(w, hdr.peerid);
			break;
		case IPC_POS_RESET:
			fanout_positions_forget(w);
			break;
		case IPC_PUB_REPLY:
			conn_pub_reply(w, hdr.peerid, m, hdr.len);
			break;
		case IPC_CANARY:
			if (hdr.len != sizeof(seq))
				fatalx("%s: malformed canary", __func__);
			memcpy(&seq, m, sizeof(seq));
			atomic_store(&w->w_rw->rw_canary_seq, seq);
			atomic_store(&w->w_rw->rw_canary_seen, util_now_ms());
			break;
		default:
			fatalx("%s: unexpected message %u from the bridge", __func__, hdr.type);
		}
		off += sizeof(hdr) + hdr.len;
	}
	fanout_flush(w);
	return off;
}

static void
fanout_bridge_close(struct rt_worker *w)
{
	if (w->w_bout != NULL)
		bout_set(w->w_bout, 0, NULL);	/* what was staged goes with it */
	if (w->w_bridge_rd != NULL)
		event_free(w->w_bridge_rd);
	w->w_bridge_rd = NULL;
	if (w->w_bridge != NULL)
		bufferevent_free(w->w_bridge);	/* closes the socket */
	w->w_bridge = NULL;
	w->w_binlen = 0;
}

/* Room in w_bin for the message whose header starts it, at most IPC_MAX_PAYLOAD. */
static void
fanout_bin_fit(struct rt_worker *w)
{
	struct ipc_hdr	 hdr;
	size_t		 need = FANOUT_BIN_MIN;
	uint8_t		*p;

	if (w->w_binlen >= sizeof(hdr) &&
	    ipc_parse(w->w_bin, w->w_binlen, &hdr) == IPC_PARSE_NEED_MORE &&
	    sizeof(hdr) + hdr.len > need)
		need = sizeof(hdr) + hdr.len;
	if (need <= w->w_bincap)
		return;
	if ((p = realloc(w->w_bin, need)) == NULL)
		fatalx("%s: out of memory", __func__);
	w->w_bin = p;
	w->w_bincap = need;
}

/*
 * The bridge's socket is readable.  It is read with plain read() into
 * w_bin: a bufferevent asks the kernel how much is waiting (FIONREAD)
 * before every read, one more system call per event at low rates.
 */
static void
fanout_bridge_readable(evutil_socket_t fd, short what, void *arg)
{
	struct rt_worker	*w = arg;
	ssize_t			 n;
	size_t			 used;

	(void)what;
	fanout_bin_fit(w);
	n = read(fd, w->w_bin + w->w_binlen, w->w_bincap - w->w_binlen);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		log_debug("%s: the bridge went away", __func__);
		fanout_bridge_close(w);
		fanout_bridge_lost(w);
		return;
	}
	w->w_binlen += (size_t)n;
	used = fanout_dispatch(w, w->w_bin, w->w_binlen);
	if (w->w_bridge_rd == NULL)
		return;		/* gone meanwhile */
	memmove(w->w_bin, w->w_bin + used, w->w_binlen - used);
	w->w_binlen -= used;
	if (w->w_binlen == 0 && w->w_bincap > FANOUT_BIN_MIN) {
		free(w->w_bin);		/* a large message passed: back to the small buffer */
		w->w_bin = NULL;
		w->w_bincap = 0;
	}
}

/* Only writes (requests to the bridge) go through the bufferevent. */
static void
fanout_bridge_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_worker	*w = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("%s: the bridge went away", __func__);
		fanout_bridge_close(w);
		fanout_bridge_lost(w);
	}
}

void
fanout_attach_bridge(struct rt_worker *w, int fd)
{
	uint32_t	 i;

	if (fd == -1)
		fatalx("%s: no socket from the master", __func__);
	if (w->w_bridge != NULL) {
		fanout_bridge_close(w);
		fanout_bridge_lost(w);
	}
	evutil_make_socket_nonblocking(fd);
	if ((w->w_bridge = bufferevent_socket_new(w->w_base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (w->w_bridge_rd = event_new(w->w_base, fd, EV_READ | EV_PERSIST,
	    fanout_bridge_readable, w)) == NULL)
		fatalx("%s: out of memory", __func__);
	bufferevent_setcb(w->w_bridge, NULL, NULL, fanout_bridge_event, w);
	event_add(w->w_bridge_rd, NULL);
	if (w->w_bout == NULL)
		w->w_bout = bout_new(w->w_base, 1);
	bout_set(w->w_bout, 0, w->w_bridge);
	/* what the last bridge did not answer, this one does (a new epoch) */
	for (i = 0; i < w->w_reqcap; i++)
		if (w->w_reqs[i].fr_sub != NULL)
			fanout_req_send(w, &w->w_reqs[i]);
}

void
fanout_free(struct rt_worker *w)
{
	fanout_bridge_close(w);
	bout_free(w->w_bout);
	w->w_bout = NULL;
	free(w->w_bin);
	w->w_bin = NULL;
	w->w_bincap = 0;
	free(w->w_pend);
	free(w->w_pconns);
	free(w->w_frames);
	free(w->w_reqs);
	free(w->w_reqfree);
	if (w->w_deflate != NULL)
		deflate_ctx_free(w->w_deflate);
	free(w->w_deflate);
	w->w_deflate = NULL;
}
