/*
 * Cluster positions (cluster.c): the envelopes the Redis function
 * library publishes and the answers of realtimed_read, as the bridge
 * parses them (every malformed form refused, nothing read past the given
 * length), cluster epochs, and the library's Lua source made from a
 * namespace table.  Running that Lua is the integration suite's: set
 * CLUSTER_LUA_OUT to a path to have the library of the test table
 * written there.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "realtimed.h"
#include "channel.h"
#include "history.h"
#include "cluster.h"

/* ---- helpers -------------------------------------------------------- */

#define S(s)	(s), strlen(s)
/* pointers compared as addresses in one buffer */
#define PTR_CMP(x, op, y)	ck_assert_msg((const char *)(x) op (const char *)(y), \
	"%s %s %s: %p, %p", #x, #op, #y, (const void *)(x), (const void *)(y))
#define PTR_GE(x, y)	PTR_CMP(x, >=, y)
#define PTR_LE(x, y)	PTR_CMP(x, <=, y)
#define PTR_GT(x, y)	PTR_CMP(x, >, y)
#define PTR_LT(x, y)	PTR_CMP(x, <, y)
#define PLEN	(sizeof(CLUSTER_ENV_PREFIX) - 1)

/* The envelope channel of ch, in out. */
static size_t
env_ch(char *out, size_t outlen, const char *ch, size_t chlen)
{
	ck_assert_uint_lt(PLEN + chlen + 1, outlen);
	memcpy(out, CLUSTER_ENV_PREFIX, PLEN);
	memcpy(out + PLEN, ch, chlen);
	out[PLEN + chlen] = '}';
	out[PLEN + chlen + 1] = '\0';
	return PLEN + chlen + 1;
}

/*
 * Parse an envelope from copies of exactly rchlen and len bytes (so that
 * a read past either is a heap overflow under a sanitizer); the pointers
 * of *ev are then made relative: ce_channel - rch, ce_data - msg, in
 * *choff and *dataoff.
 */
static int
env_parse(const char *rch, size_t rchlen, const char *msg, size_t len,
    struct cluster_event *ev, size_t *choff, size_t *dataoff)
{
	char	*r, *m;
	int	 rv;

	ck_assert_ptr_nonnull(r = malloc(rchlen + 1));
	ck_assert_ptr_nonnull(m = malloc(len + 1));
	memcpy(r, rch, rchlen);
	memcpy(m, msg, len);
	memset(ev, 0xa5, sizeof(*ev));
	rv = cluster_envelope_parse(r, rchlen, m, len, ev);
	if (rv == 0) {
		PTR_GE(ev->ce_channel, r);
		PTR_LE(ev->ce_channel + ev->ce_chlen, r + rchlen);
		PTR_GE(ev->ce_data, m);
		PTR_LE(ev->ce_data, m + len);
		ck_assert_uint_le(ev->ce_len, (size_t)(m + len - ev->ce_data));
		ck_assert_uint_le(strlen(ev->ce_epoch), HIST_EPOCH_MAX);
		if (choff != NULL)
			*choff = (size_t)(ev->ce_channel - r);
		if (dataoff != NULL)
			*dataoff = (size_t)(ev->ce_data - m);
	} else
		ck_assert_int_eq(rv, -1);
	ev->ce_channel = NULL;
	ev->ce_data = NULL;
	free(r);
	free(m);
	return rv;
}

/* An envelope of channel ch with the message msg (a C string): its verdict. */
static int
env_rv(const char *ch, const char *msg)
{
	struct cluster_event	 ev;
	char			 rch[512];
	size_t			 n = env_ch(rch, sizeof(rch), S(ch));

	return env_parse(rch, n, S(msg), &ev, NULL, NULL);
}

#define ENV_BAD(ch, msg)	ck_assert_msg(env_rv(ch, msg) == -1, \
	"envelope {%s} \"%s\" taken", ch, msg)
#define ENV_OK(ch, msg)		ck_assert_msg(env_rv(ch, msg) == 0, \
	"envelope {%s} \"%s\" refused", ch, msg)

/* The answer's events, as read. */
#define EV_MAX	16
struct evs {
	int		 n;
	uint64_t	 off[EV_MAX];
	uint64_t	 at[EV_MAX];
	size_t		 dataoff[EV_MAX];
	size_t		 len[EV_MAX];
};

/*
 * Parse an answer from a copy of exactly len bytes and read its events:
 * -2 when the head is refused, else the last cluster_answer_next() (0
 * after the last event, -1 malformed), the events read in *e.
 */
static int
ans_parse(const char *msg, size_t len, struct cluster_answer *a, struct evs *e)
{
	struct cluster_event	 ev;
	char			*m;
	const char		*prev;
	int			 rv;

	ck_assert_ptr_nonnull(m = malloc(len + 1));
	memcpy(m, msg, len);
	memset(a, 0xa5, sizeof(*a));
	e->n = 0;
	if ((rv = cluster_answer_parse(m, len, a)) == -1) {
		free(m);
		return -2;
	}
	ck_assert_int_eq(rv, 0);
	ck_assert_uint_le(strlen(a->ca_epoch), HIST_EPOCH_MAX);
	PTR_GE(a->ca_next, m);
	ck_assert_ptr_eq(a->ca_next + a->ca_left, m + len);
	for (;;) {
		prev = a->ca_next;
		memset(&ev, 0xa5, sizeof(ev));
		if ((rv = cluster_answer_next(a, &ev)) != 1)
			break;
		ck_assert_int_lt(e->n, EV_MAX);
		ck_assert_ptr_null(ev.ce_channel);
		ck_assert_uint_eq(ev.ce_chlen, 0);
		ck_assert_str_eq(ev.ce_epoch, a->ca_epoch);
		PTR_GT(ev.ce_data, prev);
		PTR_LE(ev.ce_data + ev.ce_len, m + len);
		ck_assert_ptr_eq(ev.ce_data + ev.ce_len, a->ca_next);
		ck_assert_ptr_eq(a->ca_next + a->ca_left, m + len);
		e->off[e->n] = ev.ce_offset;
		e->at[e->n] = ev.ce_at;
		e->dataoff[e->n] = (size_t)(ev.ce_data - m);
		e->len[e->n] = ev.ce_len;
		e->n++;
	}
	ck_assert_msg(rv == 0 || rv == -1, "cluster_answer_next: %d", rv);
	if (rv == 0)
		ck_assert_uint_eq(a->ca_left, 0);
	a->ca_next = NULL;
	free(m);
	return rv;
}

static int
ans_rv(const char *msg)
{
	struct cluster_answer	 a;
	struct evs		 e;

	return ans_parse(S(msg), &a, &e);
}

#define ANS_BAD(msg)	ck_assert_msg(ans_rv(msg) == -2, "answer \"%s\" taken", msg)

/* ---- envelopes ------------------------------------------------------------ */

START_TEST(test_envelope_valid)
{
	struct cluster_event	 ev;
	char			 rch[512];
	const char		*msg = "cAbc123 42 1700000000123\nhello";
	size_t			 n, choff, dataoff;

	n = env_ch(rch, sizeof(rch), S("chat.room-1@x_Y:z"));
	ck_assert_int_eq(env_parse(rch, n, S(msg), &ev, &choff, &dataoff), 0);
	ck_assert_uint_eq(choff, PLEN);
	ck_assert_uint_eq(ev.ce_chlen, strlen("chat.room-1@x_Y:z"));
	ck_assert_str_eq(ev.ce_epoch, "cAbc123");
	ck_assert_uint_eq(ev.ce_offset, 42);
	ck_assert_uint_eq(ev.ce_at, 1700000000123ULL);
	ck_assert_uint_eq(dataoff, strlen("cAbc123 42 1700000000123\n"));
	ck_assert_uint_eq(ev.ce_len, 5);

	/* the pointers are into the caller's buffers */
	ck_assert_int_eq(cluster_envelope_parse(rch, n, S(msg), &ev), 0);
	ck_assert_ptr_eq(ev.ce_channel, rch + PLEN);
	ck_assert_ptr_eq(ev.ce_data, msg + dataoff);
	ck_assert_int_eq(memcmp(ev.ce_data, "hello", 5), 0);

	/* a one-character channel, the smallest numbers */
	n = env_ch(rch, sizeof(rch), S("a"));
	ck_assert_int_eq(env_parse(rch, n, S("c 1 0\nx"), &ev, &choff, &dataoff), 0);
	ck_assert_uint_eq(ev.ce_chlen, 1);
	ck_assert_str_eq(ev.ce_epoch, "c");
	ck_assert_uint_eq(ev.ce_offset, 1);
	ck_assert_uint_eq(ev.ce_at, 0);
	ck_assert_uint_eq(ev.ce_len, 1);

	/* the largest numbers: 19 digits */
	ck_assert_int_eq(env_parse(rch, n, S("c 9999999999999999999 9999999999999999999\n"),
	    &ev, NULL, NULL), 0);
	ck_assert_uint_eq(ev.ce_offset, 9999999999999999999ULL);
	ck_assert_uint_eq(ev.ce_at, 9999999999999999999ULL);
	ck_assert_uint_eq(ev.ce_len, 0);

	/* an epoch of HIST_EPOCH_MAX characters, all of [0-9A-Za-z] */
	ck_assert_int_eq(env_parse(rch, n, S("0123456789ABCDEFGHIJKLMNOPQRSTuv 7 8\nz"),
	    &ev, NULL, NULL), 0);
	ck_assert_str_eq(ev.ce_epoch, "0123456789ABCDEFGHIJKLMNOPQRSTuv");
	ck_assert_uint_eq(strlen(ev.ce_epoch), HIST_EPOCH_MAX);

	/* a channel of RT_CHANNEL_MAX bytes */
	{
		char	 ch[RT_CHANNEL_MAX];

		memset(ch, 'q', sizeof(ch));
		n = env_ch(rch, sizeof(rch), ch, sizeof(ch));
		ck_assert_int_eq(env_parse(rch, n, S("c1 3 4\n"), &ev, &choff, NULL), 0);
		ck_assert_uint_eq(choff, PLEN);
		ck_assert_uint_eq(ev.ce_chlen, RT_CHANNEL_MAX);
	}
}
END_TEST

START_TEST(test_envelope_payloads)
{
	struct cluster_event	 ev;
	char			 rch[64], msg[64];
	static const char	 bin[] = { 0, 1, '\n', ' ', (char)0x80, (char)0xff, 0, '}' };
	size_t			 n, dataoff, hl;

	n = env_ch(rch, sizeof(rch), S("ch"));
	/* empty: the head's newline is the last byte */
	ck_assert_int_eq(env_parse(rch, n, S("cE 5 1000\n"), &ev, NULL, &dataoff), 0);
	ck_assert_uint_eq(ev.ce_len, 0);
	ck_assert_uint_eq(dataoff, strlen("cE 5 1000\n"));
	ck_assert_uint_eq(ev.ce_offset, 5);
	ck_assert_uint_eq(ev.ce_at, 1000);

	/* newlines and spaces in the payload are the payload's */
	ck_assert_int_eq(env_parse(rch, n, S("cE 6 1001\na b\nc d\n\n 7 8\n"), &ev, NULL,
	    &dataoff), 0);
	ck_assert_uint_eq(dataoff, strlen("cE 6 1001\n"));
	ck_assert_uint_eq(ev.ce_len, strlen("a b\nc d\n\n 7 8\n"));
	ck_assert_uint_eq(ev.ce_offset, 6);
	ck_assert_uint_eq(ev.ce_at, 1001);

	/* binary bytes, NULs included, counted by length */
	hl = strlen("cE 7 1002\n");
	memcpy(msg, "cE 7 1002\n", hl);
	memcpy(msg + hl, bin, sizeof(bin));
	ck_assert_int_eq(cluster_envelope_parse(rch, n, msg, hl + sizeof(bin), &ev), 0);
	ck_assert_ptr_eq(ev.ce_data, msg + hl);
	ck_assert_uint_eq(ev.ce_len, sizeof(bin));
	ck_assert_int_eq(memcmp(ev.ce_data, bin, sizeof(bin)), 0);
	ck_assert_int_eq(env_parse(rch, n, msg, hl + sizeof(bin), &ev, NULL, &dataoff), 0);
	ck_assert_uint_eq(ev.ce_len, sizeof(bin));

	/* the length given is the message: what follows it is not read */
	ck_assert_int_eq(cluster_envelope_parse(rch, n, "cE 8 9\nabcdef", 9, &ev), 0);
	ck_assert_uint_eq(ev.ce_len, 2);
	ck_assert_int_eq(env_parse(rch, n, "cE 8 9\nabcdef", 6, &ev, NULL, NULL), -1);
	ck_assert_int_eq(env_parse(rch, n, "cE 8 9\nabcdef", 7, &ev, NULL, NULL), 0);
	ck_assert_uint_eq(ev.ce_len, 0);
	/* and of the channel */
	ck_assert_int_eq(cluster_envelope_parse("realtimed:e:{ab}c}", 16, S("c 1 1\n"), &ev), 0);
	ck_assert_uint_eq(ev.ce_chlen, 2);
}
END_TEST

START_TEST(test_envelope_bad_channel)
{
	struct cluster_event	 ev;
	char			 rch[512], ch[RT_CHANNEL_MAX + 2];
	const char		*msg = "cE 1 2\nx";
	static const char *const bad[] = {
		"",				/* nothing */
		"r",
		"realtimed:e:",
		"realtimed:e:{",		/* no channel, no '}' */
		"realtimed:e:{}",		/* an empty channel */
		"realtimed:e:{abc",		/* no '}' */
		"realtimed:e:{abc}x",		/* '}' not last */
		"realtimed:e:abc}",		/* no '{' */
		"realtimed:e:[abc]",
		"realtimed:x:{abc}",		/* another prefix */
		"realtimed:E:{abc}",
		"Realtimed:e:{abc}",
		"realtimed::e:{abc}",
		"realtimed:{abc}",
		"xrealtimed:e:{abc}",
		"abc",				/* a raw channel */
		"chat.room-1",
		"realtimed:e:{a b}",		/* not a channel's characters */
		"realtimed:e:{a*}",
		"realtimed:e:{*}",		/* the PSUBSCRIBE pattern itself */
		"realtimed:e:{a}}",
		"realtimed:e:{{a}",
		"realtimed:e:{a{b}",
		"realtimed:e:{a/b}",
		"realtimed:e:{a\tb}",
		"realtimed:e:{a\nb}",
		"realtimed:e:{caf\xc3\xa9}",
		"realtimed:e:{a\xff}",
		NULL
	};
	int			 i;
	size_t			 n;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(env_parse(S(bad[i]), S(msg), &ev, NULL, NULL) == -1,
		    "channel \"%s\" taken", bad[i]);
	/* a NUL inside the channel */
	ck_assert_int_eq(env_parse("realtimed:e:{a\0b}", 17, S(msg), &ev, NULL, NULL), -1);
	ck_assert_int_eq(env_parse("realtimed:e:{a\0}", 16, S(msg), &ev, NULL, NULL), -1);
	/* the same with a good channel: taken */
	ck_assert_int_eq(env_parse(S("realtimed:e:{a-b}"), S(msg), &ev, NULL, NULL), 0);
	/* longer than a channel */
	memset(ch, 'q', sizeof(ch));
	n = env_ch(rch, sizeof(rch), ch, RT_CHANNEL_MAX + 1);
	ck_assert_int_eq(env_parse(rch, n, S(msg), &ev, NULL, NULL), -1);
	n = env_ch(rch, sizeof(rch), ch, RT_CHANNEL_MAX + 2);
	ck_assert_int_eq(env_parse(rch, n, S(msg), &ev, NULL, NULL), -1);
	n = env_ch(rch, sizeof(rch), ch, RT_CHANNEL_MAX);
	ck_assert_int_eq(env_parse(rch, n, S(msg), &ev, NULL, NULL), 0);
	/* a length that cuts the '}' off */
	n = env_ch(rch, sizeof(rch), S("abc"));
	ck_assert_int_eq(env_parse(rch, n - 1, S(msg), &ev, NULL, NULL), -1);
	ck_assert_int_eq(env_parse(rch, n, S(msg), &ev, NULL, NULL), 0);
}
END_TEST

START_TEST(test_envelope_bad_head)
{
	char		 epoch33[64], big[128];

	/* epochs */
	ENV_BAD("a", " 1 2\nx");			/* empty */
	ENV_BAD("a", "  1 2\nx");
	ENV_BAD("a", "n-1 1 2\nx");			/* a node epoch */
	ENV_BAD("a", "-c 1 2\nx");
	ENV_BAD("a", "c- 1 2\nx");
	ENV_BAD("a", "- 1 2\nx");
	ENV_BAD("a", "c_1 1 2\nx");
	ENV_BAD("a", "c.1 1 2\nx");
	ENV_BAD("a", "c:1 1 2\nx");
	ENV_BAD("a", "c\xc3\xa9 1 2\nx");
	ENV_BAD("a", "c\n1 1 2\nx");
	ENV_BAD("a", "c\t 1 2\nx");
	memset(epoch33, 'e', 33);
	strcpy(epoch33 + 33, " 1 2\nx");
	ENV_BAD("a", epoch33);				/* 33 characters */
	ENV_OK("a", epoch33 + 1);			/* 32 */
	memset(big, 'e', 100);
	strcpy(big + 100, " 1 2\nx");
	ENV_BAD("a", big);

	/* a NUL inside an epoch: refused, not cut short */
	{
		struct cluster_event	 ev;
		struct cluster_answer	 a;

		ck_assert_int_eq(cluster_envelope_parse("realtimed:e:{a}", 15,
		    "cE\0junk 5 1\npayload", 19, &ev), -1);
		ck_assert_int_eq(cluster_answer_parse("3 R c1\0C 9\n", 11, &a), -1);
		ck_assert_int_eq(cluster_answer_parse("7 N -\0x 0\n", 10, &a), -1);
	}

	/* offsets */
	ENV_BAD("a", "c 0 2\nx");			/* 0: never an event's */
	ENV_BAD("a", "c 00 2\nx");
	ENV_BAD("a", "c 0000000000000000000 2\nx");
	ENV_BAD("a", "c  2\nx");			/* empty */
	ENV_BAD("a", "c x 2\nx");
	ENV_BAD("a", "c 1x 2\nx");
	ENV_BAD("a", "c x1 2\nx");
	ENV_BAD("a", "c -1 2\nx");
	ENV_BAD("a", "c +1 2\nx");
	ENV_BAD("a", "c 1.5 2\nx");
	ENV_BAD("a", "c 0x10 2\nx");
	ENV_BAD("a", "c 1e3 2\nx");
	ENV_BAD("a", "c  1 2\nx");			/* two spaces */
	ENV_BAD("a", "c 1  2\nx");
	ENV_BAD("a", "c 10000000000000000000 2\nx");	/* 20 digits */
	ENV_BAD("a", "c 18446744073709551615 2\nx");	/* UINT64_MAX: 20 digits */
	ENV_BAD("a", "c 18446744073709551616 2\nx");	/* would wrap */
	ENV_BAD("a", "c 00000000000000000001 2\nx");	/* 20 digits, value 1 */
	ENV_BAD("a", "c 123456789012345678901234567890 2\nx");
	ENV_OK("a", "c 1000000000000000000 2\nx");	/* 19 digits */

	/* times */
	ENV_BAD("a", "c 1\nx");				/* missing */
	ENV_BAD("a", "c 1 \nx");			/* empty */
	ENV_BAD("a", "c 1\n2\nx");
	ENV_BAD("a", "c 1 x\nx");
	ENV_BAD("a", "c 1 -2\nx");
	ENV_BAD("a", "c 1 2 \nx");
	ENV_BAD("a", "c 1 2 3\nx");			/* a fourth field */
	ENV_BAD("a", "c 1 2\rx");
	ENV_BAD("a", "c 1 2\r\nx");
	ENV_BAD("a", "c 1 10000000000000000000\nx");	/* 20 digits */
	ENV_OK("a", "c 1 0000000000000000002\nx");	/* 19 digits */

	/* the newline ending the head */
	ENV_BAD("a", "c 1 2");
	ENV_BAD("a", "c 1 2x");
	ENV_BAD("a", "c 1 2 x");

	/* truncated heads */
	ENV_BAD("a", "");
	ENV_BAD("a", "c");
	ENV_BAD("a", "c ");
	ENV_BAD("a", "c 1");
	ENV_BAD("a", "c 1 ");
	ENV_BAD("a", "\n");
	ENV_BAD("a", "c1\n");
	ENV_BAD("a", "cE 1 2 \n");
}
END_TEST

/* Every proper prefix of a good envelope's head is refused; with the newline, taken. */
START_TEST(test_envelope_prefixes)
{
	struct cluster_event	 ev;
	char			 rch[64];
	const char		*msg = "cXyZ09 1234 1700000000000\npayload";
	size_t			 n, k, head = strlen("cXyZ09 1234 1700000000000\n");

	n = env_ch(rch, sizeof(rch), S("room"));
	for (k = 0; k < head; k++)
		ck_assert_msg(env_parse(rch, n, msg, k, &ev, NULL, NULL) == -1,
		    "prefix of %zu bytes taken", k);
	for (k = head; k <= strlen(msg); k++) {
		ck_assert_int_eq(env_parse(rch, n, msg, k, &ev, NULL, NULL), 0);
		ck_assert_uint_eq(ev.ce_len, k - head);
		ck_assert_uint_eq(ev.ce_offset, 1234);
		ck_assert_uint_eq(ev.ce_at, 1700000000000ULL);
		ck_assert_str_eq(ev.ce_epoch, "cXyZ09");
	}
}
END_TEST

/* ---- answers -------------------------------------------------------------- */

START_TEST(test_answer_none)
{
	struct cluster_answer	 a;
	struct evs		 e;

	ck_assert_int_eq(ans_parse(S("7 N - 0\n"), &a, &e), 0);
	ck_assert_uint_eq(a.ca_tag, 7);
	ck_assert_int_eq(a.ca_status, CLUSTER_NONE);
	ck_assert_str_eq(a.ca_epoch, "");
	ck_assert_uint_eq(a.ca_offset, 0);
	ck_assert_int_eq(e.n, 0);
	/* N's epoch is '-' and nothing follows */
	ANS_BAD("7 N c1 0\n");
	ANS_BAD("7 N  0\n");
	ANS_BAD("7 N -- 0\n");
	ANS_BAD("7 N - 0\nx");
	ANS_BAD("7 N - 0\n\n");
	ANS_BAD("7 N - \n");
	ANS_BAD("7 N -\n");
	ANS_BAD("7 N - 0");
}
END_TEST

START_TEST(test_answer_no_events)
{
	static const struct { const char *msg; int status; } ok[] = {
		{ "1 P cE 5\n", CLUSTER_POSITION },
		{ "1 U cE 5\n", CLUSTER_UNRECOVERED },
		{ "1 B cE 5\n", CLUSTER_TOO_LARGE },
		{ "1 R cE 5\n", CLUSTER_RECOVERED },	/* R: since was the newest */
	};
	struct cluster_answer	 a;
	struct evs		 e;
	char			 msg[64];
	size_t			 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(ans_parse(S(ok[i].msg), &a, &e), 0);
		ck_assert_uint_eq(a.ca_tag, 1);
		ck_assert_int_eq(a.ca_status, ok[i].status);
		ck_assert_str_eq(a.ca_epoch, "cE");
		ck_assert_uint_eq(a.ca_offset, 5);
		ck_assert_uint_eq(a.ca_left, 0);
		ck_assert_int_eq(e.n, 0);
		/* trailing bytes: only R has events */
		snprintf(msg, sizeof(msg), "%sx", ok[i].msg);
		if (ok[i].status == CLUSTER_RECOVERED)
			ck_assert_int_eq(ans_parse(S(msg), &a, &e), -1);
		else
			ck_assert_msg(ans_parse(S(msg), &a, &e) == -2, "\"%s\" taken", msg);
		snprintf(msg, sizeof(msg), "%s1 2 0\n", ok[i].msg);
		if (ok[i].status == CLUSTER_RECOVERED) {
			ck_assert_int_eq(ans_parse(S(msg), &a, &e), 0);
			ck_assert_int_eq(e.n, 1);
		} else
			ck_assert_msg(ans_parse(S(msg), &a, &e) == -2, "\"%s\" taken", msg);
		snprintf(msg, sizeof(msg), "%s\n", ok[i].msg);
		if (ok[i].status != CLUSTER_RECOVERED)
			ck_assert_msg(ans_parse(S(msg), &a, &e) == -2, "\"%s\" taken", msg);
	}
	/* the epoch must be a cluster epoch */
	ANS_BAD("1 P - 5\n");
	ANS_BAD("1 P n-1 5\n");
	ANS_BAD("1 P  5\n");
	ANS_BAD("1 U c_1 5\n");
	ANS_BAD("1 B c.1 5\n");
	ANS_BAD("1 R - 5\n");
	ANS_BAD("1 P 0123456789ABCDEFGHIJKLMNOPQRSTuvw 5\n");	/* 33 */
	ck_assert_int_eq(ans_rv("1 P 0123456789ABCDEFGHIJKLMNOPQRSTuv 5\n"), 0);
	/* offset 0 is a position (nothing published yet under it) */
	ck_assert_int_eq(ans_rv("1 P cE 0\n"), 0);
	ck_assert_int_eq(ans_rv("1 P cE 9999999999999999999\n"), 0);
	ANS_BAD("1 P cE 10000000000000000000\n");
	ANS_BAD("1 P cE x\n");
	ANS_BAD("1 P cE -1\n");
	ANS_BAD("1 P cE \n");
	ANS_BAD("1 P cE 5 \n");
	ANS_BAD("1 P cE 5 6\n");
}
END_TEST

START_TEST(test_answer_tag_and_status)
{
	struct cluster_answer	 a;
	struct evs		 e;
	const char		*bad[] = {
		"1 X cE 1\n", "1 r cE 1\n", "1 p cE 1\n", "1 n - 0\n", "1   cE 1\n",
		"1 \n cE 1\n", "1 RR cE 1\n", "1 R\tcE 1\n", "1 RcE 1\n",
		"1 R", "1 R ", "1 R\n", "1 ", "1", "",
		/* tags */
		"4294967296 P cE 1\n",			/* UINT32_MAX + 1 */
		"99999999999 P cE 1\n",
		"18446744073709551615 P cE 1\n",	/* 20 digits */
		"00000000000000000001 P cE 1\n",
		"-1 P cE 1\n", "+1 P cE 1\n", "x P cE 1\n", " 1 P cE 1\n", " P cE 1\n",
		"1x P cE 1\n", "1  P cE 1\n", "0x1 P cE 1\n",
		NULL
	};
	int			 i;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(ans_rv(bad[i]) == -2, "answer \"%s\" taken", bad[i]);
	ck_assert_int_eq(ans_parse(S("4294967295 P cE 1\n"), &a, &e), 0);
	ck_assert_uint_eq(a.ca_tag, UINT32_MAX);
	ck_assert_int_eq(ans_parse(S("0 P cE 1\n"), &a, &e), 0);
	ck_assert_uint_eq(a.ca_tag, 0);
	ck_assert_int_eq(ans_parse(S("0000000000000000042 U cE 3\n"), &a, &e), 0);
	ck_assert_uint_eq(a.ca_tag, 42);
	ck_assert_int_eq(a.ca_status, CLUSTER_UNRECOVERED);
}
END_TEST

START_TEST(test_answer_events)
{
	struct cluster_answer	 a;
	struct evs		 e;
	char			 msg[256];
	size_t			 n, h;
	static const char	 head[] = "3 R cAbC 9\n";

	/* three events: a payload, an empty one, one with newlines, spaces and NULs */
	h = strlen(head);
	memcpy(msg, head, h);
	n = h;
	memcpy(msg + n, "7 1000 5\nhello", 14);
	n += 14;
	memcpy(msg + n, "8 1001 0\n", 9);
	n += 9;
	memcpy(msg + n, "9 1002 9\na b\nc\0d\n ", 18);
	n += 18;
	ck_assert_int_eq(ans_parse(msg, n, &a, &e), 0);
	ck_assert_uint_eq(a.ca_tag, 3);
	ck_assert_int_eq(a.ca_status, CLUSTER_RECOVERED);
	ck_assert_str_eq(a.ca_epoch, "cAbC");
	ck_assert_uint_eq(a.ca_offset, 9);
	ck_assert_int_eq(e.n, 3);
	ck_assert_uint_eq(e.off[0], 7);
	ck_assert_uint_eq(e.at[0], 1000);
	ck_assert_uint_eq(e.len[0], 5);
	ck_assert_uint_eq(e.dataoff[0], h + 9);
	ck_assert_int_eq(memcmp(msg + e.dataoff[0], "hello", 5), 0);
	ck_assert_uint_eq(e.off[1], 8);
	ck_assert_uint_eq(e.at[1], 1001);
	ck_assert_uint_eq(e.len[1], 0);
	ck_assert_uint_eq(e.dataoff[1], h + 14 + 9);
	ck_assert_uint_eq(e.off[2], 9);
	ck_assert_uint_eq(e.at[2], 1002);
	ck_assert_uint_eq(e.len[2], 9);
	ck_assert_int_eq(memcmp(msg + e.dataoff[2], "a b\nc\0d\n ", 9), 0);
	ck_assert_uint_eq(e.dataoff[2] + e.len[2], n);

	/* the pointers are into the caller's buffer; 0 again after the last */
	{
		struct cluster_event	 ev;

		ck_assert_int_eq(cluster_answer_parse(msg, n, &a), 0);
		ck_assert_ptr_eq(a.ca_next, msg + h);
		ck_assert_uint_eq(a.ca_left, n - h);
		ck_assert_int_eq(cluster_answer_next(&a, &ev), 1);
		ck_assert_ptr_eq(ev.ce_data, msg + h + 9);
		ck_assert_str_eq(ev.ce_epoch, "cAbC");
		ck_assert_int_eq(cluster_answer_next(&a, &ev), 1);
		ck_assert_int_eq(cluster_answer_next(&a, &ev), 1);
		ck_assert_ptr_eq(ev.ce_data + ev.ce_len, msg + n);
		ck_assert_int_eq(cluster_answer_next(&a, &ev), 0);
		ck_assert_int_eq(cluster_answer_next(&a, &ev), 0);
	}

	/* the last event's length: one beyond the buffer, exact, one short */
	{
		static const char *const last[] = {
			"9 1002 10\n", "9 1002 9\n", "9 1002 8\n", "9 1002 a\n", "9 1002 9",
		};
		static const int	 rv[] = { -1, 0, -1, -1, -1 };
		static const int	 nev[] = { 2, 3, 3, 2, 2 };
		size_t			 base = h + 14 + 9, k, ln;

		for (k = 0; k < sizeof(last) / sizeof(last[0]); k++) {
			ln = strlen(last[k]);
			memcpy(msg + base, last[k], ln);
			memcpy(msg + base + ln, "a b\nc\0d\n ", 9);
			ck_assert_msg(ans_parse(msg, base + ln + 9, &a, &e) == rv[k],
			    "last event \"%s\"", last[k]);
			ck_assert_int_eq(e.n, nev[k]);
		}
	}
	/* a huge length */
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 9999999999999999999\nab"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 18446744073709551615\nab"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 3\nab"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 2\nab"), 0);
	/* garbage after the events */
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 2\nabX"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 2\nab\n"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 2\nab8 1 0\n "), -1);
	/* malformed event heads */
	ck_assert_int_eq(ans_rv("3 R cE 9\n\n"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7\n"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000\n"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 \n"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 1"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 1 \nx"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 x 1\nx"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n-7 1000 1\nx"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n 7 1000 1\nx"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n10000000000000000000 1000 1\nx"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 10000000000000000000 1\nx"), -1);
	ck_assert_int_eq(ans_rv("3 R cE 9\n7 1000 00000000000000000001\nx"), -1);
}
END_TEST

/*
 * Every prefix of an answer with events: a head cut short is refused; a
 * cut inside the events reads the whole events before it, then -1; a cut
 * at an event's end reads up to it, then 0.
 */
START_TEST(test_answer_prefixes)
{
	struct cluster_answer	 a;
	struct evs		 e;
	const char		*msg = "4294967295 R c0123456789 1234567\n"
				    "1234565 1700000000001 3\nabc"
				    "1234566 1700000000002 0\n"
				    "1234567 1700000000003 4\n \n\n ";
	size_t			 head = strlen("4294967295 R c0123456789 1234567\n");
	size_t			 ends[3], k;
	int			 rv, i, complete;

	ends[0] = head + strlen("1234565 1700000000001 3\nabc");
	ends[1] = ends[0] + strlen("1234566 1700000000002 0\n");
	ends[2] = strlen(msg);
	for (k = 0; k < head; k++)
		ck_assert_msg(ans_parse(msg, k, &a, &e) == -2, "head of %zu bytes taken", k);
	for (k = head; k <= strlen(msg); k++) {
		rv = ans_parse(msg, k, &a, &e);
		for (complete = 0, i = 0; i < 3; i++)
			if (ends[i] <= k)
				complete = i + 1;
		ck_assert_msg(rv == ((k == head || (complete > 0 && ends[complete - 1] == k)) ?
		    0 : -1), "prefix of %zu bytes: %d", k, rv);
		ck_assert_int_eq(e.n, complete);
		ck_assert_uint_eq(a.ca_tag, UINT32_MAX);
		ck_assert_uint_eq(a.ca_offset, 1234567);
		ck_assert_str_eq(a.ca_epoch, "c0123456789");
		for (i = 0; i < e.n; i++) {
			ck_assert_uint_eq(e.off[i], 1234565 + (uint64_t)i);
			ck_assert_uint_eq(e.at[i], 1700000000001ULL + (uint64_t)i);
		}
	}
	/* the same for the answers without events */
	msg = "12 U cE 34\n";
	for (k = 0; k < strlen(msg); k++)
		ck_assert_msg(ans_parse(msg, k, &a, &e) == -2, "\"%.*s\" taken", (int)k, msg);
	ck_assert_int_eq(ans_parse(msg, k, &a, &e), 0);
	msg = "12 N - 0\n";
	for (k = 0; k < strlen(msg); k++)
		ck_assert_msg(ans_parse(msg, k, &a, &e) == -2, "\"%.*s\" taken", (int)k, msg);
	ck_assert_int_eq(ans_parse(msg, k, &a, &e), 0);
}
END_TEST

/* ---- epochs ---------------------------------------------------------------- */

START_TEST(test_epoch_is)
{
	struct hist	*h;
	struct hist_pos	 pos;
	char		 e[64];

	ck_assert_int_eq(cluster_epoch_is("c"), 1);
	ck_assert_int_eq(cluster_epoch_is("0"), 1);
	ck_assert_int_eq(cluster_epoch_is("cAbc09Zz"), 1);
	ck_assert_int_eq(cluster_epoch_is("0123456789abcdefghijklmnopqrstuv"), 1);
	ck_assert_int_eq(cluster_epoch_is("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"), 1);
	ck_assert_int_eq(cluster_epoch_is(""), 0);
	ck_assert_int_eq(cluster_epoch_is("0123456789abcdefghijklmnopqrstuvw"), 0);
	memset(e, 'c', sizeof(e) - 1);
	e[sizeof(e) - 1] = '\0';
	ck_assert_int_eq(cluster_epoch_is(e), 0);
	e[HIST_EPOCH_MAX] = '\0';
	ck_assert_int_eq(cluster_epoch_is(e), 1);
	ck_assert_int_eq(cluster_epoch_is("-"), 0);
	ck_assert_int_eq(cluster_epoch_is("n-1"), 0);
	ck_assert_int_eq(cluster_epoch_is("c-"), 0);
	ck_assert_int_eq(cluster_epoch_is("-c"), 0);
	ck_assert_int_eq(cluster_epoch_is("c_1"), 0);
	ck_assert_int_eq(cluster_epoch_is("c.1"), 0);
	ck_assert_int_eq(cluster_epoch_is("c:1"), 0);
	ck_assert_int_eq(cluster_epoch_is("c@1"), 0);
	ck_assert_int_eq(cluster_epoch_is("c 1"), 0);
	ck_assert_int_eq(cluster_epoch_is("c\n"), 0);
	ck_assert_int_eq(cluster_epoch_is("c\xc3\xa9"), 0);
	ck_assert_int_eq(cluster_epoch_is("\xff"), 0);
	ck_assert_int_eq(cluster_epoch_is("c/"), 0);
	ck_assert_int_eq(cluster_epoch_is("[]"), 0);
	ck_assert_int_eq(cluster_epoch_is("`{"), 0);

	/* a node's epochs never have the form, whatever the node epoch */
	ck_assert_ptr_nonnull(h = hist_new((int64_t)1 << 20, 10, "abcdefghijklmnopqrstuvwx"));
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_int_eq(cluster_epoch_is(pos.hp_epoch), 0);
	hist_reset(h, "K3J9x2aQ");
	ck_assert_int_eq(hist_position(h, S("a"), &pos), 0);
	ck_assert_int_eq(cluster_epoch_is(pos.hp_epoch), 0);
	hist_free(h);
}
END_TEST

/* ---- the library ------------------------------------------------------------ */

static struct chan_table *
tab(const char *line, ...)
{
	struct chan_table	*t;
	va_list			 ap;
	char			 msg[1024];
	int			 n = 0, rv;

	ck_assert_ptr_nonnull(t = chan_table_new());
	va_start(ap, line);
	for (; line != NULL; line = va_arg(ap, const char *)) {
		msg[0] = '\0';
		rv = chan_table_add(t, line, "test.conf", ++n, msg, sizeof(msg));
		ck_assert_msg(rv == 0, "\"%s\": %d %s", line, rv, msg);
	}
	va_end(ap);
	return t;
}

static int
count(const char *s, const char *what)
{
	int	 n = 0;

	for (; (s = strstr(s, what)) != NULL; s += strlen(what))
		n++;
	return n;
}

/* The library's checks that do not depend on the table. */
static void
check_library(const char *lib, const char *version)
{
	char	 line[256];

	ck_assert_ptr_nonnull(lib);
	ck_assert_msg(strncmp(lib, "#!lua name=realtimed\n", 21) == 0, "shebang: %.40s", lib);
	snprintf(line, sizeof(line), "\n-- realtimed %s: cluster positions", version);
	ck_assert_ptr_nonnull(strstr(lib, line));
	ck_assert_int_eq(count(lib, "local NS = {\n"), 1);
	/* the three functions, once each */
	ck_assert_int_eq(count(lib, "redis.register_function('realtimed_publish',"), 1);
	ck_assert_int_eq(count(lib, "redis.register_function('realtimed_publish_count',"), 1);
	ck_assert_int_eq(count(lib, "redis.register_function('realtimed_read',"), 1);
	ck_assert_int_eq(count(lib, "redis.register_function("), 3);
	/* the keys and the envelope channel are cluster.h's */
	ck_assert_ptr_nonnull(strstr(lib, "'realtimed:{' .. ch .. '}:m', 'realtimed:{' .. ch "
	    ".. '}:h'"));
	ck_assert_ptr_nonnull(strstr(lib, "'" CLUSTER_ENV_PREFIX "' .. ch .. '}'"));
	/* an envelope "EPOCH OFFSET MS\n" + payload */
	ck_assert_ptr_nonnull(strstr(lib, "e .. ' ' .. int(off) .. ' ' .. int(t) .. '\\n' .. data"));
	/* the answers: "TAG STATUS EPOCH OFFSET\n", events "OFFSET MS LEN\n" + data */
	ck_assert_ptr_nonnull(strstr(lib, "tag .. ' N - 0\\n'"));
	ck_assert_ptr_nonnull(strstr(lib, "local head = e .. ' ' .. int(o) .. '\\n'"));
	ck_assert_ptr_nonnull(strstr(lib, "tag .. ' P ' .. head"));
	ck_assert_ptr_nonnull(strstr(lib, "tag .. ' U ' .. head"));
	ck_assert_ptr_nonnull(strstr(lib, "tag .. ' R ' .. head"));
	ck_assert_ptr_nonnull(strstr(lib, "tag .. ' B ' .. head"));
	ck_assert_ptr_nonnull(strstr(lib, "(since + i) .. ' ' .. ent[2][2] .. ' ' .. #d .. "
	    "'\\n' .. d"));
	/* new epochs are cluster epochs: 'c' and base 62 */
	ck_assert_ptr_nonnull(strstr(lib, "return 'c' .. s"));
	ck_assert_ptr_nonnull(strstr(lib, "'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz'"));
	/* the channel check is chan_name_valid()'s */
	ck_assert_ptr_nonnull(strstr(lib, "#ch == 0 or #ch > 200 or string.find(ch, "
	    "'[^%w_.:@%-]')"));
	/* whole: it ends with the last function, one NUL, no stray bytes */
	ck_assert_uint_gt(strlen(lib), 1000);
	ck_assert_str_eq(lib + strlen(lib) - 5, "end)\n");
	{
		size_t	 i, n = strlen(lib);

		for (i = 0; i < n; i++)
			ck_assert_msg(lib[i] == '\n' || (lib[i] >= ' ' && lib[i] < 0x7f),
			    "byte %zu is %#x", i, (unsigned char)lib[i]);
	}
}

START_TEST(test_library_namespaces)
{
	struct chan_table	*t;
	char			*lib;
	const char		*ns, *out;
	static const char	 want[] =
	    "\nlocal NS = {\n"
	    "  {10, 5000, {'l', 'announcements'}},\n"
	    "  {3, 0, {'l', 'apps:'}, {'s'}},\n"
	    "  {20, 120000, {'l', 'user:'}, {'c', ''}},\n"
	    "  {7, 1500, {'l', 'org:'}, {'c', ':'}, {'l', ':'}, {'s'}},\n"
	    "  {1, 0, {'l', 'room.'}, {'c', '.'}, {'l', '.log'}},\n"
	    "  {0, 86400000, {'l', 'x-'}, {'c', '@'}, {'l', '@'}, {'c', '-'}, "
	    "{'l', '-v2'}},\n"
	    "  {100000, 0, {'l', 'plain:'}, {'s'}},\n"
	    "  {0, 0, {'l', 'quiet'}},\n"
	    "}\n"
	    "local KEEP_MS = 86400000\n";

	t = tab("announcements public history=10 history_ttl=5s",
	    "apps:* public history=3",
	    "user:{userId} self history=20 history_ttl=2m",
	    "org:{orgId}:* self history=7 history_ttl=1500ms",
	    "room.{roomId}.log authenticated history=1",
	    "x-{a}@{b}-v2 authenticated history_ttl=1d",
	    "plain:* public history=100000",
	    "quiet public",
	    NULL);
	ck_assert_ptr_nonnull(lib = cluster_library(t, "1.2.3"));
	check_library(lib, "1.2.3");
	ns = strstr(lib, "\nlocal NS = {\n");
	ck_assert_ptr_nonnull(ns);
	ck_assert_msg(strncmp(ns, want, strlen(want)) == 0, "NS:\n%.*s", (int)strlen(want), ns);
	/* the table comes before the code that reads it */
	PTR_LT(ns, strstr(lib, "local function history_of"));
	ck_assert_int_eq(count(lib, "\n  {"), chan_table_count(t));
	/* deterministic: the same table, the same text */
	{
		char	*again = cluster_library(t, "1.2.3");

		ck_assert_ptr_nonnull(again);
		ck_assert_str_eq(again, lib);
		free(again);
	}
	if ((out = getenv("CLUSTER_LUA_OUT")) != NULL && *out != '\0') {
		FILE	*f = fopen(out, "w");

		ck_assert_msg(f != NULL, "%s: cannot write", out);
		ck_assert_int_eq(fputs(lib, f) >= 0, 1);
		ck_assert_int_eq(fclose(f), 0);
	}
	free(lib);
	chan_table_free(t);
}
END_TEST

START_TEST(test_library_empty_and_default)
{
	struct chan_table	*t;
	char			*lib, *p;
	int			 i, n;

	/* no namespace: an empty table, every channel without history */
	ck_assert_ptr_nonnull(t = chan_table_new());
	ck_assert_ptr_nonnull(lib = cluster_library(t, "0.0"));
	check_library(lib, "0.0");
	ck_assert_ptr_nonnull(strstr(lib, "\nlocal NS = {\n}\nlocal KEEP_MS"));
	free(lib);
	chan_table_free(t);

	/* the default table: every family history=100 history_ttl=5m, in order */
	ck_assert_ptr_nonnull(t = chan_table_default());
	ck_assert_ptr_nonnull(lib = cluster_library(t, "9.9.9-rc1"));
	check_library(lib, "9.9.9-rc1");
	n = chan_table_count(t);
	ck_assert_int_eq(count(lib, "\n  {100, 300000, "), n);
	ck_assert_int_eq(count(lib, "\n  {"), n);
	p = strstr(lib, "\nlocal NS = {\n");
	for (i = 0; i < n; i++) {
		const struct chan_ns	*ns = chan_table_ns(t, i);
		char			 entry[256], lit[64];
		size_t			 k;

		/* its literal prefix, up to a '*' or '{' */
		k = strcspn(ns->ns_pattern, "*{");
		ck_assert_uint_lt(k, sizeof(lit));
		memcpy(lit, ns->ns_pattern, k);
		lit[k] = '\0';
		snprintf(entry, sizeof(entry), "\n  {100, 300000, {'l', '%s'}%s}", lit,
		    ns->ns_pattern[k] == '*' ? ", {'s'}" :
		    ns->ns_pattern[k] == '{' ? ", {'c', ''}" : "");
		ck_assert_msg((p = strstr(p, entry)) != NULL, "entry %d (%s) not next",
		    i, ns->ns_pattern);
		p++;
	}
	ck_assert_ptr_nonnull(strstr(p, "\n}\nlocal KEEP_MS"));
	free(lib);
	chan_table_free(t);
}
END_TEST

START_TEST(test_library_long_literal)
{
	struct chan_table	*t;
	char			 line[512], entry[512], lit[RT_CHANNEL_MAX + 1];
	char			*lib;

	/* the longest name as an exact namespace, kept whole */
	memset(lit, 'L', RT_CHANNEL_MAX);
	lit[RT_CHANNEL_MAX] = '\0';
	lit[0] = 'a';
	lit[RT_CHANNEL_MAX - 1] = 'z';
	snprintf(line, sizeof(line), "%s public history=2 history_ttl=1h", lit);
	t = tab(line, "b:{userId}:c self history=4", NULL);
	ck_assert_ptr_nonnull(lib = cluster_library(t, "v"));
	check_library(lib, "v");
	snprintf(entry, sizeof(entry), "\nlocal NS = {\n  {2, 3600000, {'l', '%s'}},\n"
	    "  {4, 0, {'l', 'b:'}, {'c', ':'}, {'l', ':c'}},\n}\n", lit);
	ck_assert_ptr_nonnull(strstr(lib, entry));
	free(lib);
	chan_table_free(t);
}
END_TEST

static Suite *
cluster_suite(void)
{
	Suite	*s = suite_create("cluster");
	TCase	*tc;

	tc = tcase_create("envelope");
	tcase_add_test(tc, test_envelope_valid);
	tcase_add_test(tc, test_envelope_payloads);
	tcase_add_test(tc, test_envelope_bad_channel);
	tcase_add_test(tc, test_envelope_bad_head);
	tcase_add_test(tc, test_envelope_prefixes);
	suite_add_tcase(s, tc);

	tc = tcase_create("answer");
	tcase_add_test(tc, test_answer_none);
	tcase_add_test(tc, test_answer_no_events);
	tcase_add_test(tc, test_answer_tag_and_status);
	tcase_add_test(tc, test_answer_events);
	tcase_add_test(tc, test_answer_prefixes);
	suite_add_tcase(s, tc);

	tc = tcase_create("epoch");
	tcase_add_test(tc, test_epoch_is);
	suite_add_tcase(s, tc);

	tc = tcase_create("library");
	tcase_add_test(tc, test_library_namespaces);
	tcase_add_test(tc, test_library_empty_and_default);
	tcase_add_test(tc, test_library_long_literal);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(cluster_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
