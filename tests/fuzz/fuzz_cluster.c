/*
 * libFuzzer: the envelopes and read answers cluster.c parses.  The input
 * up to its first '\n' is a Redis channel (one starting with '+' is
 * wrapped: "realtimed:e:{" REST "}"), what follows it the message, given
 * to cluster_envelope_parse(); the whole input is also given to
 * cluster_answer_parse() and read with cluster_answer_next() to the end.
 * Each buffer is a copy of exactly its length, so a read past it is
 * caught.  Checked: what is taken is what a plain reading of the formats
 * (cluster.h) takes, field for field; pointers stay in their buffers;
 * epochs are NUL-ended, at most HIST_EPOCH_MAX; the events tile the
 * answer; and cluster_epoch_is() agrees with the form.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "channel.h"
#include "history.h"
#include "cluster.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PLEN	(sizeof(CLUSTER_ENV_PREFIX) - 1)

/* ---- a plain reading of the formats ---------------------------------------- */

static int
ref_alnum(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > HIST_EPOCH_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

/* s[0..n) is 1 to 19 decimal digits: 1 and *v. */
static int
ref_number(const char *s, size_t n, uint64_t *v)
{
	size_t	 i;

	if (n == 0 || n > 19)
		return 0;
	for (*v = 0, i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return 1;
}

/*
 * Split line[0..n) at single spaces into exactly k fields: 1 and f[], fl[].
 */
static int
ref_fields(const char *line, size_t n, int k, const char **f, size_t *fl)
{
	const char	*p = line, *end = line + n, *sp;
	int		 i;

	for (i = 0; i < k; i++) {
		sp = memchr(p, ' ', (size_t)(end - p));
		if (i == k - 1) {
			if (sp != NULL)
				return 0;
			sp = end;
		} else if (sp == NULL)
			return 0;
		f[i] = p;
		fl[i] = (size_t)(sp - p);
		p = sp + 1;
	}
	return 1;
}

struct ref_event {
	char		 epoch[HIST_EPOCH_MAX + 1];
	uint64_t	 offset, at;
	size_t		 dataoff, len;
};

static int
ref_envelope(const char *rch, size_t rchlen, const char *msg, size_t len,
    struct ref_event *r)
{
	const char	*nl, *f[3];
	size_t		 fl[3];

	if (rchlen < PLEN + 2 || memcmp(rch, CLUSTER_ENV_PREFIX, PLEN) != 0 ||
	    rch[rchlen - 1] != '}' || !chan_name_valid(rch + PLEN, rchlen - PLEN - 1))
		return 0;
	if ((nl = memchr(msg, '\n', len)) == NULL ||
	    !ref_fields(msg, (size_t)(nl - msg), 3, f, fl) || !ref_alnum(f[0], fl[0]) ||
	    !ref_number(f[1], fl[1], &r->offset) || r->offset == 0 ||
	    !ref_number(f[2], fl[2], &r->at))
		return 0;
	memcpy(r->epoch, f[0], fl[0]);
	r->epoch[fl[0]] = '\0';
	r->dataoff = (size_t)(nl + 1 - msg);
	r->len = len - r->dataoff;
	return 1;
}

#define REF_EVENTS	64

struct ref_answer {
	uint32_t		 tag;
	int			 status;
	char			 epoch[HIST_EPOCH_MAX + 1];
	uint64_t		 offset;
	size_t			 next;		/* where the events begin */
	int			 nev;		/* events read */
	int			 end;		/* 0 after the last, -1 malformed */
	struct ref_event	 ev[REF_EVENTS];
};

static int
ref_answer(const char *msg, size_t len, struct ref_answer *r)
{
	const char	*nl, *f[4];
	size_t		 fl[4], p;
	uint64_t	 tag, n;

	if ((nl = memchr(msg, '\n', len)) == NULL ||
	    !ref_fields(msg, (size_t)(nl - msg), 4, f, fl) ||
	    !ref_number(f[0], fl[0], &tag) || tag > UINT32_MAX || fl[1] != 1 ||
	    !ref_number(f[3], fl[3], &r->offset))
		return 0;
	r->tag = (uint32_t)tag;
	r->status = f[1][0];
	switch (r->status) {
	case 'N':
		if (fl[2] != 1 || f[2][0] != '-')
			return 0;
		r->epoch[0] = '\0';
		break;
	case 'P':
	case 'R':
	case 'U':
	case 'B':
		if (!ref_alnum(f[2], fl[2]))
			return 0;
		memcpy(r->epoch, f[2], fl[2]);
		r->epoch[fl[2]] = '\0';
		break;
	default:
		return 0;
	}
	p = r->next = (size_t)(nl + 1 - msg);
	if (r->status != 'R' && p != len)
		return 0;
	/* the events: "OFFSET MS LEN\n" + LEN bytes, to the end exactly */
	for (r->nev = 0, r->end = 0; p < len && r->nev < REF_EVENTS; r->nev++) {
		struct ref_event	*e = &r->ev[r->nev];

		if ((nl = memchr(msg + p, '\n', len - p)) == NULL ||
		    !ref_fields(msg + p, (size_t)(nl - msg - p), 3, f, fl) ||
		    !ref_number(f[0], fl[0], &e->offset) || !ref_number(f[1], fl[1], &e->at) ||
		    !ref_number(f[2], fl[2], &n) || n > len - (size_t)(nl + 1 - msg)) {
			r->end = -1;
			break;
		}
		strcpy(e->epoch, r->epoch);
		e->dataoff = (size_t)(nl + 1 - msg);
		e->len = (size_t)n;
		p = e->dataoff + e->len;
	}
	if (r->end == 0 && p < len)
		r->end = 2;		/* more events than compared */
	return 1;
}

/* ---- the checks ------------------------------------------------------------ */

static void
check_epoch(const char *epoch)
{
	size_t	 n = strnlen(epoch, HIST_EPOCH_MAX + 1);

	if (n > HIST_EPOCH_MAX)
		abort();		/* not NUL-ended within its array */
	if (cluster_epoch_is(epoch) != ref_alnum(epoch, n))
		abort();
}

static void
check_envelope(const char *rch, size_t rchlen, const char *msg, size_t len)
{
	struct cluster_event	 ev;
	struct ref_event	 r;
	int			 rv, want;

	memset(&ev, 0xa5, sizeof(ev));
	rv = cluster_envelope_parse(rch, rchlen, msg, len, &ev);
	want = ref_envelope(rch, rchlen, msg, len, &r);
	if (rv != 0 && rv != -1)
		abort();
	if ((rv == 0) != want)
		abort();		/* taken by one reading only */
	if (rv != 0)
		return;
	check_epoch(ev.ce_epoch);
	if (ev.ce_channel != rch + PLEN || ev.ce_chlen != rchlen - PLEN - 1 ||
	    !chan_name_valid(ev.ce_channel, ev.ce_chlen))
		abort();
	if (ev.ce_data < msg || ev.ce_data > msg + len || ev.ce_len > len ||
	    ev.ce_data + ev.ce_len != msg + len || ev.ce_data == msg || ev.ce_data[-1] != '\n')
		abort();
	if (strcmp(ev.ce_epoch, r.epoch) != 0 || ev.ce_offset != r.offset ||
	    ev.ce_offset == 0 || ev.ce_at != r.at ||
	    (size_t)(ev.ce_data - msg) != r.dataoff || ev.ce_len != r.len)
		abort();
}

static void
check_answer(const char *msg, size_t len)
{
	struct cluster_answer	 a;
	struct cluster_event	 ev;
	static struct ref_answer r;
	const char		*prev;
	int			 rv, want, n;

	memset(&a, 0xa5, sizeof(a));
	rv = cluster_answer_parse(msg, len, &a);
	want = ref_answer(msg, len, &r);
	if (rv != 0 && rv != -1)
		abort();
	if ((rv == 0) != want)
		abort();
	if (rv != 0)
		return;
	check_epoch(a.ca_epoch);
	if (a.ca_tag != r.tag || a.ca_status != r.status || strcmp(a.ca_epoch, r.epoch) != 0 ||
	    a.ca_offset != r.offset || a.ca_next != msg + r.next ||
	    a.ca_next + a.ca_left != msg + len)
		abort();
	if (a.ca_status == CLUSTER_NONE && a.ca_epoch[0] != '\0')
		abort();
	if (a.ca_status != CLUSTER_RECOVERED && a.ca_left != 0)
		abort();
	for (n = 0; ; n++) {
		prev = a.ca_next;
		memset(&ev, 0xa5, sizeof(ev));
		rv = cluster_answer_next(&a, &ev);
		if (rv == 0) {
			if (a.ca_left != 0 || a.ca_next != msg + len)
				abort();
			if (n < REF_EVENTS && (n != r.nev || r.end != 0))
				abort();
			if (cluster_answer_next(&a, &ev) != 0)
				abort();	/* 0 again */
			return;
		}
		if (rv == -1) {
			if (n < REF_EVENTS && (n != r.nev || r.end != -1))
				abort();
			return;
		}
		if (rv != 1)
			abort();
		/* an event: within the answer, after its head, then the rest */
		check_epoch(ev.ce_epoch);
		if (strcmp(ev.ce_epoch, a.ca_epoch) != 0 || ev.ce_channel != NULL ||
		    ev.ce_chlen != 0)
			abort();
		if (ev.ce_data < prev + 6 || ev.ce_data > msg + len || ev.ce_len > len ||
		    ev.ce_data + ev.ce_len > msg + len || ev.ce_data[-1] != '\n' ||
		    a.ca_next != ev.ce_data + ev.ce_len || a.ca_next + a.ca_left != msg + len)
			abort();
		if (n < REF_EVENTS && (n >= r.nev || ev.ce_offset != r.ev[n].offset ||
		    ev.ce_at != r.ev[n].at || (size_t)(ev.ce_data - msg) != r.ev[n].dataoff ||
		    ev.ce_len != r.ev[n].len))
			abort();
		if ((size_t)n > len)
			abort();	/* each event takes 6 bytes at least */
	}
}

/* An exact copy of s[0..n), with nothing readable after it. */
static char *
copy(const void *s, size_t n)
{
	char	*p;

	if ((p = malloc(n > 0 ? n : 1)) == NULL)
		abort();
	if (n > 0)
		memcpy(p, s, n);
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*nl;
	char		*rch, *msg, *all, *ep;
	size_t		 rchlen, mlen;

	if (size > 1 << 20)
		return 0;
	nl = memchr(data, '\n', size);
	mlen = nl != NULL ? size - (size_t)((const uint8_t *)nl - data) - 1 : 0;
	rchlen = nl != NULL ? (size_t)((const uint8_t *)nl - data) : size;
	if (rchlen > 0 && data[0] == '+') {
		if ((rch = malloc(PLEN + rchlen)) == NULL)
			abort();
		memcpy(rch, CLUSTER_ENV_PREFIX, PLEN);
		memcpy(rch + PLEN, data + 1, rchlen - 1);
		rch[PLEN + rchlen - 1] = '}';
		rchlen += PLEN;
	} else
		rch = copy(data, rchlen);
	msg = copy(nl != NULL ? nl + 1 : "", mlen);
	check_envelope(rch, rchlen, msg, mlen);
	free(rch);
	free(msg);

	all = copy(data, size);
	check_answer(all, size);
	free(all);

	/* the input as an epoch */
	if ((ep = malloc(size + 1)) == NULL)
		abort();
	memcpy(ep, data, size);
	ep[size] = '\0';
	if (cluster_epoch_is(ep) != ref_alnum(ep, strlen(ep)))
		abort();
	free(ep);
	return 0;
}
