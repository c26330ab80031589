#ifndef RT_DAEMON_H
#define RT_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Becoming a daemon: detaching, the pidfile, privileges, resource limits
 * and the systemd readiness protocol.
 */

/*
 * Double fork, setsid, chdir /, stdio to /dev/null; with keep_stderr (the
 * log goes there) stderr stays, unless it is a pipe or a socket.  -1 on failure.
 */
int	daemon_detach(int keep_stderr);

/*
 * Create and lock the pidfile; -1 with err when another instance holds it
 * ("already running, pid N") or it cannot be written.  The fd stays open
 * (and locked) until daemon_pidfile_remove().
 */
int	daemon_pidfile_open(const char *path, char *err, size_t errlen);
int	daemon_pidfile_write(void);
void	daemon_pidfile_remove(void);
/*
 * A live realtimed, other than us, that the pidfile at path names, or else
 * the default pidfile: its pid and *which pidfile, or 0.
 */
pid_t	daemon_pidfile_peer(const char *path, const char **which);

/* setgroups/setgid/setuid to user and group ("" = keep). -1 with err. */
int	daemon_drop_privileges(const char *user, const char *group, char *err, size_t errlen);
/* Look up ids without changing anything; -1 with err. */
int	daemon_lookup_ids(const char *user, const char *group, int *uid, int *gid,
	    char *err, size_t errlen);

/* Raise RLIMIT_NOFILE towards want, warning when the hard limit is lower. */
void	daemon_raise_nofile(long want);

/* sd_notify(3) without libsystemd: "READY=1", "RELOADING=1"... */
void	daemon_notify(const char *state);

#endif
