/* libFuzzer: POST /publish bodies (pub_parse), spans checked to lie in the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "proto.h"
#include "pubapi.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct chan_table	*t;
	struct pub_item			 items[8];
	const char			*b = (const char *)data, *why = NULL;
	int				 n, batch, i;
	enum pub_result			 rv;

	if (t == NULL && (t = chan_table_default()) == NULL)
		abort();
	rv = pub_parse(b, size, t, items, 8, &n, &batch, &why);
	if (rv == PUB_BAD && why == NULL)
		abort();
	if (rv == PUB_BAD)
		return 0;
	if (n < 1 || n > 8 || (rv == PUB_CHANNEL && (batch || items[0].pi_error == NULL)))
		abort();
	for (i = 0; i < n; i++) {
		if (items[i].pi_data < b || items[i].pi_data + items[i].pi_datalen > b + size ||
		    items[i].pi_channel < b || items[i].pi_channel + items[i].pi_chlen > b + size)
			abort();
		if (!proto_json_valid(items[i].pi_data, items[i].pi_datalen))
			abort();
		if (items[i].pi_error == NULL &&
		    !chan_name_valid(items[i].pi_channel, items[i].pi_chlen))
			abort();
	}
	return 0;
}
