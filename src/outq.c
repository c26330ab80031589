/*
 * Output queue of references into refcounted blocks; see outq.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outq.h"

#define OUTQ_MIN	8
#define OUTQ_IOV	64
#define BLK_MIN		256	/* a first copy leaves room for the next reply */

struct rt_blk *
blk_new(size_t cap)
{
	struct rt_blk	*b;

	if (cap > UINT32_MAX - sizeof(*b) || (b = malloc(sizeof(*b) + cap)) == NULL)
		return NULL;
	b->b_refs = 1;
	b->b_len = 0;
	b->b_cap = (uint32_t)cap;
	return b;
}

struct rt_blk *
blk_copy(const void *p, size_t len)
{
	struct rt_blk	*b;

	if ((b = blk_new(len)) == NULL)
		return NULL;
	memcpy(b->b_data, p, len);
	b->b_len = (uint32_t)len;
	return b;
}

void
blk_ref(struct rt_blk *b)
{
	b->b_refs++;
}

void
blk_unref(struct rt_blk *b)
{
	if (b != NULL && --b->b_refs == 0)
		free(b);
}

size_t
outq_len(const struct outq *q)
{
	return q == NULL ? 0 : q->oq_bytes;
}

size_t
outq_cost(const struct outq *q)
{
	return q == NULL ? 0 : q->oq_bytes + (size_t)q->oq_n * OUTQ_ENT_COST;
}

/* Room for one more entry; -1 when it cannot grow. */
static int
outq_reserve(struct outq **qp)
{
	struct outq	*q = *qp, *n;
	uint32_t	 cap, i;

	if (q != NULL && q->oq_n < q->oq_cap)
		return 0;
	cap = q == NULL ? OUTQ_MIN : q->oq_cap * 2;
	if (cap == 0 || (n = malloc(sizeof(*n) + (size_t)cap * sizeof(n->oq_ent[0]))) == NULL)
		return -1;
	n->oq_bytes = 0;
	n->oq_head = 0;
	n->oq_n = 0;
	n->oq_cap = cap;
	if (q != NULL) {
		/* unwrap the ring into the new array */
		for (i = 0; i < q->oq_n; i++)
			n->oq_ent[i] = q->oq_ent[(q->oq_head + i) & (q->oq_cap - 1)];
		n->oq_n = q->oq_n;
		n->oq_bytes = q->oq_bytes;
		free(q);
	}
	*qp = n;
	return 0;
}

static struct outq_ent *
outq_tail(struct outq *q)
{
	if (q == NULL || q->oq_n == 0)
		return NULL;
	return &q->oq_ent[(q->oq_head + q->oq_n - 1) & (q->oq_cap - 1)];
}

int
outq_add_ref(struct outq **qp, struct rt_blk *b, const uint8_t *p, size_t len)
{
	struct outq_ent	*e;

	if (len == 0)
		return 0;
	if (outq_reserve(qp) == -1)
		return -1;
	e = &(*qp)->oq_ent[((*qp)->oq_head + (*qp)->oq_n) & ((*qp)->oq_cap - 1)];
	blk_ref(b);
	e->oe_blk = b;
	e->oe_p = p;
	e->oe_len = len;
	(*qp)->oq_n++;
	(*qp)->oq_bytes += len;
	return 0;
}

int
outq_add_copy(struct outq **qp, const void *a, size_t alen, const void *b, size_t blen)
{
	struct outq_ent	*e = outq_tail(*qp);
	struct rt_blk	*k;
	size_t		 len = alen + blen;

	if (len == 0)
		return 0;
	/* a block only this queue holds, ending where its last entry ends */
	if (e != NULL && (k = e->oe_blk)->b_refs == 1 &&
	    e->oe_p + e->oe_len == k->b_data + k->b_len && k->b_cap - k->b_len >= len) {
		if (alen > 0)
			memcpy(k->b_data + k->b_len, a, alen);
		if (blen > 0)
			memcpy(k->b_data + k->b_len + alen, b, blen);
		k->b_len += (uint32_t)len;
		e->oe_len += len;
		(*qp)->oq_bytes += len;
		return 0;
	}
	/* room to spare only in a first block: slack is not counted */
	if ((k = blk_new(e == NULL && len < BLK_MIN ? BLK_MIN : len)) == NULL)
		return -1;
	if (alen > 0)
		memcpy(k->b_data, a, alen);
	if (blen > 0)
		memcpy(k->b_data + alen, b, blen);
	k->b_len = (uint32_t)len;
	if (outq_add_ref(qp, k, k->b_data, len) == -1) {
		blk_unref(k);
		return -1;
	}
	blk_unref(k);	/* the queue's reference is the only one */
	return 0;
}

/*
 * writev for sockets: send() for one buffer and sendmsg() for several skip
 * the file-position locking of the generic writev path, and a peer gone
 * away is EPIPE, not SIGPIPE.
 */
ssize_t
outq_sendv(int fd, const struct iovec *iov, int cnt)
{
	struct msghdr	 msg;

	if (cnt == 1)
		return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = (size_t)cnt;
	return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Drop n written bytes from the head. */
static void
outq_consume(struct outq *q, size_t n)
{
	struct outq_ent	*e;

	q->oq_bytes -= n;
	while (n > 0) {
		e = &q->oq_ent[q->oq_head];
		if (n < e->oe_len) {
			e->oe_p += n;
			e->oe_len -= n;
			return;
		}
		n -= e->oe_len;
		blk_unref(e->oe_blk);
		q->oq_head = (q->oq_head + 1) & (q->oq_cap - 1);
		q->oq_n--;
	}
}

ssize_t
outq_write(struct outq **qp, int fd)
{
	struct iovec	 iov[OUTQ_IOV];
	struct outq	*q = *qp;
	struct outq_ent	*e;
	size_t		 want, total = 0;
	ssize_t		 n;
	uint32_t	 i, cnt;

	while (q != NULL && q->oq_n > 0) {
		cnt = q->oq_n < OUTQ_IOV ? q->oq_n : OUTQ_IOV;
		for (i = 0, want = 0; i < cnt; i++) {
			e = &q->oq_ent[(q->oq_head + i) & (q->oq_cap - 1)];
			iov[i].iov_base = (void *)(uintptr_t)e->oe_p;
			iov[i].iov_len = e->oe_len;
			want += e->oe_len;
		}
		if ((n = outq_sendv(fd, iov, (int)cnt)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (ssize_t)total;
			return -1;
		}
		outq_consume(q, (size_t)n);
		total += (size_t)n;
		if ((size_t)n < want)
			return (ssize_t)total;	/* the socket is full */
	}
	outq_free(qp);
	return (ssize_t)total;
}

void
outq_free(struct outq **qp)
{
	struct outq	*q = *qp;
	uint32_t	 i;

	if (q == NULL)
		return;
	for (i = 0; i < q->oq_n; i++)
		blk_unref(q->oq_ent[(q->oq_head + i) & (q->oq_cap - 1)].oe_blk);
	free(q);
	*qp = NULL;
}
