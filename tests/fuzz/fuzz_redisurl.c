/* libFuzzer: redis_url parsing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct redis_url	 u;
	char			 s[4096], err[256];

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (redis_url_parse(s, &u, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	if (u.ru_host[0] == '\0' || (!u.ru_unix && (u.ru_port < 1 || u.ru_port > 65535)) ||
	    strlen(u.ru_host) >= sizeof(u.ru_host) || u.ru_db < 0)
		abort();
	if ((u.ru_mode == REDIS_SINGLE) != (u.ru_nnodes == 0) || u.ru_nnodes > REDIS_NODES_MAX)
		abort();
	if (u.ru_mode == REDIS_SENTINEL && u.ru_master[0] == '\0')
		abort();
	for (int i = 0; i < u.ru_nnodes; i++)
		if (u.ru_nodes[i].rn_host[0] == '\0' || u.ru_nodes[i].rn_port < 1 ||
		    u.ru_nodes[i].rn_port > 65535)
			abort();
	return 0;
}
