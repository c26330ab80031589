#ifndef RT_PUBAPI_H
#define RT_PUBAPI_H
/*
 * The body of POST /publish (no I/O): one item {"channel":"…","data":…}
 * or a batch [{…},{…}], checked against the namespace table.  The data's
 * bytes are kept as sent (spans into the body), never re-serialized.
 */
#include <stddef.h>

struct chan_table;

struct pub_item {
	const char	*pi_channel;	/* into the body; pi_chlen bytes, no escapes */
	size_t		 pi_chlen;
	const char	*pi_data;	/* the value's bytes */
	size_t		 pi_datalen;
	const char	*pi_error;	/* NULL, or why this item is refused (422) */
};

enum pub_result {
	PUB_OK = 0,
	PUB_BAD = -1,		/* 400: *why says what */
	PUB_CHANNEL = -2,	/* 422: a single item's channel (items[0].pi_error) */
};

/*
 * Parse body into items (room for max of them).  *nitems is how many,
 * *batch 1 for the array form.  A batch's channel problems are per item
 * (pi_error); a single item's make it PUB_CHANNEL.
 */
enum pub_result pub_parse(const char *body, size_t len, const struct chan_table *t,
	    struct pub_item *items, int max, int *nitems, int *batch, const char **why);

#endif
