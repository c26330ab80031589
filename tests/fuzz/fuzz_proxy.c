/* libFuzzer: PROXY v1/v2 headers, fed whole and byte by byte, and the forwarded walks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NEED promises that every byte so far is header: growing the input never contradicts it. */
static void
fuzz_header(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 h, g;
	const char		*why;
	size_t			 i;
	int			 rv, rg;

	rv = proxy_parse(data, size, &h, &why);
	if (rv == PROXY_BAD && why == NULL)
		abort();
	if (rv == PROXY_DONE && (h.ph_len == 0 || h.ph_len > size || h.ph_len > PROXY_MAX ||
	    (h.ph_version == 1 && h.ph_len > PROXY_V1_MAX)))
		abort();
	for (i = 0; i < size && i < PROXY_MAX + 1; i++) {
		rg = proxy_parse(data, i, &g, &why);
		if (rg == PROXY_DONE && (rv != PROXY_DONE || g.ph_len != h.ph_len))
			abort();	/* a header complete in a prefix is the same header */
		if (rg == PROXY_BAD && rv != PROXY_BAD)
			abort();	/* more bytes never cure a bad prefix */
		if (rv == PROXY_DONE && rg == PROXY_NEED && i >= h.ph_len)
			abort();
	}
}

static void
fuzz_forwarded(const uint8_t *data, size_t size)
{
	struct proxy_item	 it[PROXY_FWD_HOPS];
	struct proxy_cidr	 t[2];
	struct proxy_addr	 a;
	char			 buf[4096];
	size_t			 i, start = 0;
	int			 n = 0;

	if (size >= sizeof(buf) - 1)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	proxy_cidr_parse("10.0.0.0/8", &t[0]);
	proxy_cidr_parse("::1", &t[1]);
	proxy_cidr_parse(buf, &t[0]);
	for (i = 0; i <= size && n < PROXY_FWD_HOPS; i++)
		if (i == size || buf[i] == ',') {
			it[n].pi_p = buf + start;
			it[n++].pi_len = i - start;
			start = i + 1;
		}
	(void)proxy_fwd_client(PROXY_FWD_XFF, it, n, 0, t, 2, &a);
	(void)proxy_fwd_client(PROXY_FWD_FORWARDED, it, n, 1, t, 2, &a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_header(data, size);
	fuzz_forwarded(data, size);
	return 0;
}
