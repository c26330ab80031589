/*
 * POST /publish bodies: the single form {"channel":"…","data":…} and the
 * batch [{…},…].  Pure: bytes in, spans and reasons out.  The body is
 * checked whole as JSON first (proto_json_valid), so the walk below only
 * has to follow the shape.
 */
#include <stddef.h>
#include <string.h>

#include "realtimed.h"
#include "channel.h"
#include "proto.h"
#include "pubapi.h"

static const char *
pub_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A string's contents at p (the opening quote); the byte after it. */
static const char *
pub_string(const char *p, const char *end, const char **s, size_t *n)
{
	size_t	 len = proto_json_span(p, (size_t)(end - p));

	*s = p + 1;
	*n = len - 2;
	return p + len;
}

static void
pub_check_channel(struct pub_item *it, const struct chan_table *t)
{
	if (memchr(it->pi_channel, '\\', it->pi_chlen) != NULL ||
	    !chan_name_valid(it->pi_channel, it->pi_chlen))
		it->pi_error = "invalid channel name";
	else if (chan_match(t, it->pi_channel, it->pi_chlen) == NULL)
		it->pi_error = "unknown channel";
}

/* One member of an item object; the byte after its value, NULL with *why. */
static const char *
pub_member(const char *p, const char *end, struct pub_item *it, const char **why)
{
	const char	*key;
	size_t		 klen, vlen;

	p = pub_string(p, end, &key, &klen);
	p = pub_ws(pub_ws(p, end) + 1, end);	/* the colon */
	vlen = proto_json_span(p, (size_t)(end - p));
	if (klen == 7 && memcmp(key, "channel", 7) == 0) {
		if (it->pi_channel != NULL)
			return *why = "channel given twice", NULL;
		if (*p != '"')
			return *why = "channel is not a string", NULL;
		pub_string(p, end, &it->pi_channel, &it->pi_chlen);
	} else if (klen == 4 && memcmp(key, "data", 4) == 0) {
		if (it->pi_data != NULL)
			return *why = "data given twice", NULL;
		it->pi_data = p;
		it->pi_datalen = vlen;
	} else
		return *why = "unknown member (channel and data only)", NULL;
	return p + vlen;
}

/* One item object at p; the byte after it, NULL with *why. */
static const char *
pub_item(const char *p, const char *end, const struct chan_table *t, struct pub_item *it,
    const char **why)
{
	memset(it, 0, sizeof(*it));
	if (*p != '{')
		return *why = "an item is not an object", NULL;
	p = pub_ws(p + 1, end);
	while (*p != '}') {
		if ((p = pub_member(p, end, it, why)) == NULL)
			return NULL;
		p = pub_ws(p, end);
		if (*p == ',')
			p = pub_ws(p + 1, end);
	}
	if (it->pi_channel == NULL)
		return *why = "missing channel", NULL;
	if (it->pi_data == NULL)
		return *why = "missing data", NULL;
	pub_check_channel(it, t);
	return p + 1;
}

enum pub_result
pub_parse(const char *body, size_t len, const struct chan_table *t, struct pub_item *items,
    int max, int *nitems, int *batch, const char **why)
{
	const char	*p, *end = body + len;

	*nitems = 0;
	*batch = 0;
	if (len == 0)
		return *why = "empty body", PUB_BAD;
	if (!proto_json_valid(body, len))
		return *why = "invalid JSON", PUB_BAD;
	p = pub_ws(body, end);
	if (*p == '{') {
		if (pub_item(p, end, t, &items[0], why) == NULL)
			return PUB_BAD;
		*nitems = 1;
		return items[0].pi_error != NULL ? PUB_CHANNEL : PUB_OK;
	}
	if (*p != '[')
		return *why = "not an object or an array", PUB_BAD;
	*batch = 1;
	p = pub_ws(p + 1, end);
	while (*p != ']') {
		if (*nitems == max)
			return *why = "too many items in the batch", PUB_BAD;
		if ((p = pub_item(p, end, t, &items[*nitems], why)) == NULL)
			return PUB_BAD;
		(*nitems)++;
		p = pub_ws(p, end);
		if (*p == ',')
			p = pub_ws(p + 1, end);
	}
	if (*nitems == 0)
		return *why = "empty batch", PUB_BAD;
	return PUB_OK;
}
