/*
 * realtimed: main(), options, listeners.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
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
#include "daemon.h"
#include "master.h"
#include "tls.h"

static void
usage(void)
{
	fprintf(stderr, "usage: %s [-dftv] [-c file]\n", RT_NAME);
	exit(1);
}

static void
print_line(const char *line, void *arg)
{
	(void)arg;
	printf("%s\n", line);
}

/* -t: what the daemon would find out at start, short of binding. */
static int
check(struct rt_config *conf, char *err, size_t errlen)
{
	return master_check_config(conf, err, errlen) == -1 ||
	    master_check_listen(conf, err, errlen) == -1 ||
	    config_check_file(conf, "log_file", 1, err, errlen) == -1 ? -1 : 0;
}

/* log_file and log_format; -1 with err. */
static int
log_configure(struct rt_config *conf, char *err, size_t errlen)
{
	char	 why[512];

	log_setformat(log_format_parse(conf->c_log_format));
	if (conf->c_log_file[0] == '\0')
		return 0;
	if (log_file_open(conf->c_log_file, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", config_where(conf, "log_file"), why);
		return -1;
	}
	/* until the daemon is up, its warnings show where it was started too */
	log_file_tee(1);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct rt_config	 conf;
	const char		*file = RT_CONFIG_FILE;
	char			 err[1024], abspath[PATH_MAX];
	int			 ch, debug = 0, test = 0, verbose = 0, foreground = 0, rv;

	while ((ch = getopt(argc, argv, "c:dftvh")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'd':
			debug = 1;
			foreground = 1;
			break;
		case 'f':
			foreground = 1;
			break;
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
	/* reloads happen after chdir("/"): remember where the file is */
	if (realpath(file, abspath) != NULL)
		file = abspath;
	if (config_load(&conf, file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", RT_NAME, err);
		config_free(&conf);
		return 1;
	}
	if (test) {
		if (check(&conf, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s: %s\n", RT_NAME, err);
			config_free(&conf);
			return 1;
		}
		if (verbose)
			config_dump(&conf, print_line, NULL);
		fprintf(stderr, "%s: configuration file %s test is successful\n", RT_NAME, file);
		config_free(&conf);
		return 0;
	}
	log_setlevel(debug ? LOG_LVL_DEBUG : conf.c_log_level);
	if (log_configure(&conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", RT_NAME, err);
		config_free(&conf);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	proc_title_init(argc, argv);
	if (daemon_pidfile_open(conf.c_pidfile, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		config_free(&conf);
		return 1;
	}
	rv = master_start(&conf, foreground);
	daemon_pidfile_remove();
	config_free(&conf);
	return rv;
}
