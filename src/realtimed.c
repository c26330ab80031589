/*
 * realtimed: main(), options, listeners.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autoconf.h"
#include "config.h"
#include "realtimed.h"
#include "log.h"
#include "worker.h"

static void
usage(void)
{
	fprintf(stderr, "usage: %s [-dftv] [-c file]\n", RT_NAME);
	exit(1);
}

/* "HOST:PORT", "[V6]:PORT", "*:PORT" or "PORT" into host and port. */
static int
listen_split(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char	*colon;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(close - spec - 1), spec + 1);
		snprintf(port, portlen, "%s", close + 2);
		return 0;
	}
	if ((colon = strrchr(spec, ':')) == NULL) {
		snprintf(host, hostlen, "*");
		snprintf(port, portlen, "%s", spec);
		return 0;
	}
	snprintf(host, hostlen, "%.*s", (int)(colon - spec), spec);
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

/* Bind one listening socket; -1 with a message in err. */
static int
listen_open(const char *spec, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res = NULL;
	char		 host[256], port[32];
	int		 fd, one = 1, rv;

	if (listen_split(spec, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "listen %s: expected HOST:PORT", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rv = getaddrinfo(strcmp(host, "*") == 0 || host[0] == '\0' ? NULL : host,
	    port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen %s: %s", spec, gai_strerror(rv));
		return -1;
	}
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    res->ai_protocol)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 4096) == -1) {
		snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
print_line(const char *line, void *arg)
{
	(void)arg;
	printf("%s\n", line);
}

int
main(int argc, char *argv[])
{
	struct rt_config	 conf;
	const char		*file = RT_CONFIG_FILE;
	char			 err[1024];
	int			 ch, debug = 0, test = 0, verbose = 0, fd, rv;

	while ((ch = getopt(argc, argv, "c:dftvh")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'f':
			break;	/* the foreground is all there is until daemon mode */
		case 't':
			test = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();
	if (verbose && !test) {
		printf("%s %s\n", RT_NAME, PACKAGE_VERSION);
		return 0;
	}
	log_init(RT_NAME, 1, LOG_LVL_INFO);
	if (config_load(&conf, file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", RT_NAME, err);
		config_free(&conf);
		return 1;
	}
	if (test) {
		if (verbose)
			config_dump(&conf, print_line, NULL);
		fprintf(stderr, "%s: configuration file %s test is successful\n", RT_NAME, file);
		config_free(&conf);
		return 0;
	}
	log_setlevel(debug ? LOG_LVL_DEBUG : conf.c_log_level);
	signal(SIGPIPE, SIG_IGN);
	if ((fd = listen_open(conf.c_listen, err, sizeof(err))) == -1) {
		log_warnx("%s", err);
		config_free(&conf);
		return 1;
	}
	log_info("listening on %s", conf.c_listen);
	rv = worker_run(&conf, 0, &fd, 1);
	config_free(&conf);
	return rv == 0 ? 0 : 1;
}
