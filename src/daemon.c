/*
 * Daemon chores; see daemon.h.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif
#define DEFAULT_PIDFILE	RUNSTATEDIR "/realtimed/realtimed.pid"

static int	 pid_fd = -1;
static char	 pid_path[1024];

int
daemon_detach(int keep_stderr)
{
	struct stat	 st;
	int		 fd;

	switch (fork()) {
	case -1:
		return -1;
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() == -1)
		return -1;
	/* the second fork: never reacquire a controlling terminal */
	switch (fork()) {
	case -1:
		return -1;
	case 0:
		break;
	default:
		_exit(0);
	}
	if (chdir("/") == -1)
		return -1;
	umask(022);
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		return -1;
	/* a pipe or socket: whoever started us may be waiting for its EOF */
	if (keep_stderr && (fstat(STDERR_FILENO, &st) == -1 || S_ISFIFO(st.st_mode) ||
	    S_ISSOCK(st.st_mode))) {
		log_warnx("stderr is a pipe: no log from here on; set log_file, "
		    "or run in the foreground (-f)");
		keep_stderr = 0;
	}
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (!keep_stderr)
		dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

int
daemon_pidfile_open(const char *path, char *err, size_t errlen)
{
	char	 buf[32];
	ssize_t	 n;

	if (path == NULL || *path == '\0')
		return 0;
	snprintf(pid_path, sizeof(pid_path), "%s", path);
	if ((pid_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(pid_fd, LOCK_EX | LOCK_NB) == -1) {
		n = read(pid_fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(err, errlen, "already running (pid %s, pidfile %s)",
		    buf[0] ? buf : "?", path);
		close(pid_fd);
		pid_fd = -1;
		pid_path[0] = '\0';
		return -1;
	}
	return 0;
}

/* After the last fork: the pid that signals must go to. */
int
daemon_pidfile_write(void)
{
	char	 buf[32];
	int	 n;

	if (pid_fd == -1)
		return 0;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(pid_fd, 0) == -1 || pwrite(pid_fd, buf, (size_t)n, 0) != n) {
		log_warn("pidfile %s", pid_path);
		return -1;
	}
	return 0;
}

/* The pid in path when it is a live realtimed other than us; 0 otherwise. */
static pid_t
daemon_pidfile_live(const char *path)
{
	char	 buf[32], proc[64], comm[32];
	char	*end;
	long	 pid;
	FILE	*fp;
	size_t	 n;

	if (path == NULL || *path == '\0' || (fp = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (pid <= 0 || pid == (long)getpid() || (*end != '\n' && *end != '\0'))
		return 0;
	snprintf(proc, sizeof(proc), "/proc/%ld/comm", pid);
	if ((fp = fopen(proc, "r")) == NULL)
		return 0;
	n = fread(comm, 1, sizeof(comm) - 1, fp);
	fclose(fp);
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "realtimed") == 0 ? (pid_t)pid : 0;
}

pid_t
daemon_pidfile_peer(const char *path, const char **which)
{
	pid_t	 pid;

	if ((pid = daemon_pidfile_live(path)) > 0) {
		*which = path;
		return pid;
	}
	if ((pid = daemon_pidfile_live(DEFAULT_PIDFILE)) > 0)
		*which = DEFAULT_PIDFILE;
	return pid;
}

void
daemon_pidfile_remove(void)
{
	if (pid_fd == -1)
		return;
	unlink(pid_path);
	close(pid_fd);
	pid_fd = -1;
}

int
daemon_lookup_ids(const char *user, const char *group, int *uid, int *gid,
    char *err, size_t errlen)
{
	struct passwd	*pw = NULL;
	struct group	*gr;

	*uid = *gid = -1;
	if (user != NULL && *user != '\0') {
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "user %s: no such user", user);
			return -1;
		}
		*uid = (int)pw->pw_uid;
		*gid = (int)pw->pw_gid;
	}
	if (group != NULL && *group != '\0') {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errlen, "group %s: no such group", group);
			return -1;
		}
		*gid = (int)gr->gr_gid;
	}
	return 0;
}

int
daemon_drop_privileges(const char *user, const char *group, char *err, size_t errlen)
{
	int	 uid, gid;
	gid_t	 g;

	if (daemon_lookup_ids(user, group, &uid, &gid, err, errlen) == -1)
		return -1;
	if (gid != -1) {
		g = (gid_t)gid;
		/* the user's supplementary groups too (ssl-cert for key files) */
		if ((uid != -1 ? initgroups(user, g) : setgroups(1, &g)) == -1 ||
		    setresgid(g, g, g) == -1) {
			snprintf(err, errlen, "cannot switch to group %d: %s", gid, strerror(errno));
			return -1;
		}
	}
	if (uid != -1) {
		/* SIGUSR1 reopens log_file as this user */
		log_file_chown(uid);
		if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) == -1) {
			snprintf(err, errlen, "cannot switch to user %s: %s", user, strerror(errno));
			return -1;
		}
		/* and there is no way back */
		if (uid != 0 && setuid(0) != -1) {
			snprintf(err, errlen, "privileges could be regained after dropping them");
			return -1;
		}
	}
	return 0;
}

void
daemon_raise_nofile(long want)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < want) {
		/* root may raise the hard limit too; try before settling */
		struct rlimit up = { (rlim_t)want, (rlim_t)want };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
		log_warnx("RLIMIT_NOFILE hard limit %ld is below the %ld descriptors "
		    "max_connections may need; each process stays at %ld",
		    (long)rl.rlim_max, want, (long)rl.rlim_max);
		rl.rlim_cur = rl.rlim_max;
	} else
		rl.rlim_cur = (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NOFILE)");
}

void
daemon_notify(const char *state)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) == -1)
		log_debug("%s: sendto(%s): %s", __func__, path, strerror(errno));
	close(fd);
}
