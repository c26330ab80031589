/* libFuzzer: the configuration parser on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rt_config	 conf;
	char			 err[1024];
	int			 rv;

	log_init("fuzz", 1, LOG_LVL_ERR);
	err[0] = '\0';
	rv = config_parse_string(&conf, "fuzz.conf", (const char *)data, size,
	    err, sizeof(err));
	if (rv == 0)
		rv = config_validate(&conf, err, sizeof(err));
	/* every failure names the file and says why */
	if (rv == -1 && err[0] == '\0')
		abort();
	if (rv == 0 && conf.c_heartbeat_timeout < conf.c_heartbeat_interval)
		abort();
	config_free(&conf);
	return 0;
}
