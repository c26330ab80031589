/*
 * libFuzzer target: client messages through proto_parse(), Redis payloads
 * through proto_event().  Every event written must read back as one JSON
 * object (json-c), and a payload proto_json_valid() accepts must appear
 * in it byte for byte; anything else is a bug and abort()s.
 *
 * Input: first byte n, then n % 32 bytes of channel name, then the
 * payload; the whole input is also parsed as a client message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* memmem() */
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <json-c/json.h>

#include "realtimed.h"
#include "channel.h"
#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const errors[] = {
	"Invalid JSON", "Message must be a JSON object",
	"Missing or invalid type", "Unknown message type",
	"Missing or invalid channel", "Missing or invalid token",
	"Invalid token: token too long",
	"Invalid since: expected {\"epoch\":string,\"offset\":integer}",
	"Invalid since: offset must be a non-negative integer",
};

static void
check_request(const char *buf, size_t len)
{
	struct proto_request	 req;
	size_t			 i;

	proto_parse(buf, len, &req);
	if (req.pr_type == PROTO_INVALID) {
		for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
			if (req.pr_error != NULL && strcmp(req.pr_error, errors[i]) == 0)
				break;
		if (i == sizeof(errors) / sizeof(errors[0]))
			abort();
	} else if (req.pr_error != NULL)
		abort();
	if ((req.pr_type == PROTO_SUBSCRIBE || req.pr_type == PROTO_UNSUBSCRIBE) &&
	    (!chan_name_valid(req.pr_channel, req.pr_channel_len) ||
	    strlen(req.pr_channel) != req.pr_channel_len))
		abort();
	if (memchr(req.pr_request, '\0', sizeof(req.pr_request)) == NULL)
		abort();
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
check_event(const char *ch, size_t chlen, const char *pl, size_t plen)
{
	static const struct timeval	 tv = { 1764072000, 0 };
	struct json_tokener		*tok;
	struct json_object		*o, *data;
	const char			*s = pl, *e = pl + plen;
	char				*out;
	size_t				 n;

	/* the size asked for is the size written, and one less writes nothing */
	n = proto_event(NULL, 0, ch, chlen, pl, plen, &tv);
	if (n == 0 || (out = malloc(n)) == NULL)
		abort();
	out[0] = 'X';
	if (proto_event(out, n - 1, ch, chlen, pl, plen, &tv) != n || out[0] != 'X' ||
	    proto_event(out, n, ch, chlen, pl, plen, &tv) != n)
		abort();
	tok = json_tokener_new_ex(4096);
	o = json_tokener_parse_ex(tok, out, (int)n);
	if (o == NULL || json_tokener_get_parse_end(tok) != n ||
	    !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "data", &data))
		abort();
	while (s < e && is_ws(*s))
		s++;
	while (e > s && is_ws(e[-1]))
		e--;
	if (proto_json_valid(pl, plen) &&
	    memmem(out, n, s, (size_t)(e - s)) == NULL)
		abort();
	if (!proto_json_valid(pl, plen) &&
	    !json_object_is_type(data, json_type_string))
		abort();
	json_object_put(o);
	json_tokener_free(tok);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*buf = (const char *)data;
	size_t		 chlen;

	check_request(buf, size);
	check_event("apps:fuzz", 9, buf, size);
	if (size > 0) {
		chlen = data[0] % 32;
		if (chlen > size - 1)
			chlen = size - 1;
		check_event(buf + 1, chlen, buf + 1 + chlen, size - 1 - chlen);
	}
	return 0;
}
