#ifndef RT_BRIDGE_H
#define RT_BRIDGE_H

#include <stddef.h>

struct rt_config;
struct registry;

/* The bridge process: runs until told to stop.  Returns the exit status. */
int	bridge_run(struct rt_config *conf, struct registry *reg, int master_fd);

#endif
