/*
 * The master: listeners, registry, and the cycle of forking and supervising
 * the bridge and the workers (nginx's master process cycle).  Only the
 * master acts on signals; it tells the children over their control sockets.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "autoconf.h"
#include "realtimed.h"
#include "admin.h"
#include "stats.h"
#include "auth.h"
#include "daemon.h"
#include "bridge.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "master.h"
#include "control.h"
#include "revoke.h"
#include "redis_url.h"
#include "registry.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define MASTER_TICK_MS		250
#define RESPAWN_MIN_MS		100
#define RESPAWN_MAX_MS		30000
#define FAST_DEATH_MS		5000	/* a child dying sooner is crash-looping */
#define MASTER_STALL_MS		1000	/* a longer gap between ticks: the host stalled */
#define RELOAD_ACK_MS		5000	/* children answer a reload within this */
#define SOMAXCONN_PATH		"/proc/sys/net/core/somaxconn"
#define JWT_SECRET_MIN		32	/* bytes: HS256's hash size */

enum child_role { ROLE_WORKER, ROLE_BRIDGE };

struct master_child {
	int		 mc_role;
	int		 mc_index;
	pid_t		 mc_pid;		/* 0: not running */
	int		 mc_fd;			/* control socket, master's end */
	struct event	*mc_ev;
	uint64_t	 mc_started;
	uint64_t	 mc_respawn_at;		/* 0: none pending */
	int		 mc_fast_deaths;
	int		 mc_hello;		/* said IPC_HELLO */
	uint64_t	 mc_hello_at;
	int		 mc_killed;		/* SIGKILL sent, SIGCHLD pending */
	int		 mc_acks_due;		/* answers owed to the last reload */
	int		 mc_reload_failed;	/* refused it or did not answer */
	struct rt_master *mc_master;
};

/* The reload transaction in flight: who has yet to answer, who refused. */
struct master_reload {
	uint32_t	 mr_gen;		/* peerid of its messages */
	int		 mr_active;
	int		 mr_waiting;		/* children that owe answers */
	int		 mr_sent;		/* children it went to */
	int		 mr_failed;
	uint64_t	 mr_deadline;
	char		 mr_why[IPC_ACK_REASON_MAX + 128];	/* the first failure */
};

struct rt_master {
	struct rt_config	*m_conf;
	struct event_base	*m_base;
	struct registry		 m_reg;
	int			 m_nworkers;
	int			*m_listen;		/* one socket per worker, or -1 */
	int			*m_listen_tls;		/* the same for wss */
	SSL_CTX			*m_ssl_ctx;		/* inherited by workers */
	struct master_child	 m_bridge;
	struct master_child	*m_workers;
	struct event		*m_tick;
	struct event		*m_sig[5];
	int			 m_stopping;
	uint64_t		 m_stop_deadline;
	uint64_t		 m_last_tick;
	uint64_t		 m_watch_from;		/* the watchdog waits until then */
	struct master_reload	 m_reload;
	struct admin		*m_admin;
	int			 m_uid;			/* after dropping, -1 = same */
	int			 m_gid;
	uint64_t		 m_revoke_swept;	/* ms, expired revocations dropped */
	uint32_t		 m_sync_new;		/* revocations Redis added, unchecked */
	int			 m_recheck;		/* workers will check their connections */
};

#define MASTER_REVOKE_SWEEP_MS	60000

/* The master's base, freed by each child right after fork. */
static struct event_base *master_base;

static void	master_spawn(struct rt_master *, struct master_child *);
static void	master_reload_gone(struct rt_master *, struct master_child *);
static void	master_reload_expire(struct rt_master *);

/* ---- process titles ---------------------------------------------------- */

static char	*title_base;
static size_t	 title_len;

void
proc_title_init(int argc, char **argv)
{
	if (argc < 1 || argv[0] == NULL)
		return;
	title_base = argv[0];
	title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]) + 1;
}

void
proc_title(const char *fmt, ...)
{
	va_list	 ap;

	if (title_base == NULL || title_len < 2)
		return;
	memset(title_base, 0, title_len);
	va_start(ap, fmt);
	vsnprintf(title_base, title_len, fmt, ap);
	va_end(ap);
}

/* ---- listeners ----------------------------------------------------------- */

static int
listen_split(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char	*colon, *close;

	if (spec[0] == '[') {
		if ((close = strchr(spec, ']')) == NULL || close[1] != ':')
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

/* The address "HOST:PORT" binds (the first one); -1 with err filled. */
static int
listen_resolve(const char *spec, struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo	 hints;
	char		 host[256], port[32];
	int		 rv;

	if (listen_split(spec, host, sizeof(host), port, sizeof(port)) == -1 ||
	    port[0] == '\0') {
		snprintf(err, errlen, "listen %s: expected HOST:PORT", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rv = getaddrinfo(strcmp(host, "*") == 0 || host[0] == '\0' ? NULL : host,
	    port, &hints, res)) != 0) {
		snprintf(err, errlen, "listen %s: %s", spec, gai_strerror(rv));
		return -1;
	}
	return 0;
}

int
listen_open(const char *spec, int reuseport, int backlog, char *err, size_t errlen)
{
	struct addrinfo	*res = NULL;
	int		 fd = -1, one = 1;

	if (listen_resolve(spec, &res, err, errlen) == -1)
		return -1;
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    res->ai_protocol)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) ||
	    /* accepted sockets inherit it: no setsockopt per connection */
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, backlog) == -1) {
		snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

/*
 * listen_backlog, capped by the kernel's somaxconn: listen(2) would cap it
 * silently, and a connect storm would overflow a queue the operator never
 * asked for.
 */
static int
listen_backlog(const struct rt_config *conf)
{
	FILE	*fp;
	long	 max = -1;

	if ((fp = fopen(SOMAXCONN_PATH, "r")) != NULL) {
		if (fscanf(fp, "%ld", &max) != 1)
			max = -1;
		fclose(fp);
	}
	if (max > 0 && conf->c_listen_backlog > max) {
		log_warnx("listen_backlog %d capped to %ld by %s", conf->c_listen_backlog,
		    max, SOMAXCONN_PATH);
		return (int)max;
	}
	return conf->c_listen_backlog;
}

/* 1 if the socket is bound to a loopback address. */
static int
listen_is_loopback(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	return ss.ss_family == AF_INET6 && (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
	    (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127));
}

/*
 * Without allowed_origins any web page may open a WebSocket to us from its
 * visitors' browsers, with their cookies: say so once when a listener is
 * reachable from elsewhere than this host.
 */
static void
master_warn_origins(struct rt_master *m)
{
	struct rt_config	*c = m->m_conf;
	int			 plain, tls;

	if (c->c_allowed_origins.sl_count > 0)
		return;
	plain = m->m_listen[0] != -1 && !listen_is_loopback(m->m_listen[0]);
	tls = m->m_listen_tls[0] != -1 && !listen_is_loopback(m->m_listen_tls[0]);
	if (plain || tls)
		log_warnx("allowed_origins is empty: any origin is accepted on the public "
		    "listener%s%s%s%s", plain ? " ws://" : "", plain ? c->c_listen : "",
		    tls ? " wss://" : "", tls ? c->c_listen_tls : "");
}

/*
 * Whether someone else holds spec's port: bind it without SO_REUSEPORT,
 * which any listener there refuses (EADDRINUSE), even another realtimed's
 * SO_REUSEPORT sockets; those would otherwise take us into their group and
 * hand us a share of their clients.  0, or -1 with err filled.
 */
static int
listen_probe(const char *spec, const char *pidfile, char *err, size_t errlen)
{
	struct addrinfo	*res = NULL;
	const char	*which;
	int		 fd, one = 1, rv = 0;
	pid_t		 pid;

	if (listen_resolve(spec, &res, err, errlen) == -1)
		return -1;
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    res->ai_protocol)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1) {
		rv = -1;
		if (errno != EADDRINUSE)
			snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
		else if ((pid = daemon_pidfile_peer(pidfile, &which)) > 0)
			snprintf(err, errlen, "listen %s: the port is in use by realtimed pid %d "
			    "(pidfile %s)", spec, (int)pid, which);
		else
			snprintf(err, errlen, "listen %s: the port is in use by another process",
			    spec);
	}
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return rv;
}

/* Before the SO_REUSEPORT sockets: -1 (logged) when another process holds a port. */
static int
master_listen_probe(struct rt_master *m)
{
	const struct rt_config	*conf = m->m_conf;
	char			 err[512];

	if ((conf->c_listen[0] != '\0' &&
	    listen_probe(conf->c_listen, conf->c_pidfile, err, sizeof(err)) == -1) ||
	    (m->m_ssl_ctx != NULL &&
	    listen_probe(conf->c_listen_tls, conf->c_pidfile, err, sizeof(err)) == -1)) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/* The master's copies of the listeners: a stop closes them, so that the port is free. */
static void
master_close_listeners(struct rt_master *m)
{
	int	 i;

	for (i = 0; i < m->m_nworkers; i++) {
		if (m->m_listen[i] != -1)
			close(m->m_listen[i]);
		if (m->m_listen_tls[i] != -1)
			close(m->m_listen_tls[i]);
		m->m_listen[i] = m->m_listen_tls[i] = -1;
	}
}

/* ---- children ------------------------------------------------------------ */

static const char *
child_name(const struct master_child *mc, char *buf, size_t len)
{
	if (mc->mc_role == ROLE_BRIDGE)
		snprintf(buf, len, "bridge");
	else
		snprintf(buf, len, "worker %d", mc->mc_index);
	return buf;
}

/* "worker 1 (pid 123)", for the log and the admin's replies. */
static const char *
child_label(const struct master_child *mc, char *buf, size_t len)
{
	char	 name[32];

	snprintf(buf, len, "%s (pid %d)", child_name(mc, name, sizeof(name)), (int)mc->mc_pid);
	return buf;
}

/*
 * A child that sends what it may not, or that stops taking control
 * messages, is broken: kill it, and SIGCHLD respawns it the usual way.
 */
static void
master_kill(struct master_child *mc, const char *why)
{
	char	 label[64];

	if (mc->mc_pid == 0 || mc->mc_killed)
		return;
	log_warnx("%s %s: killing it", child_label(mc, label, sizeof(label)), why);
	if (mc->mc_ev != NULL)
		event_del(mc->mc_ev);
	kill(mc->mc_pid, SIGKILL);
	mc->mc_killed = 1;
}

/*
 * Send to a child over its (non-blocking) control socket: a child whose
 * queue is full is not reading it, and the master must never block on one.
 */
static int
master_send(struct master_child *mc, uint32_t type, uint32_t peerid, const void *data,
    size_t len, int fd)
{
	char	 why[96];

	if (mc->mc_pid == 0 || mc->mc_killed)
		return -1;
	if (ipc_send(mc->mc_fd, type, peerid, data, len, fd) == 0)
		return 0;
	if (errno != EPIPE && errno != ECONNRESET) {	/* else: gone, SIGCHLD follows */
		snprintf(why, sizeof(why), "does not take control message %u (%s)", type,
		    strerror(errno));
		master_kill(mc, why);
	}
	return -1;
}

/* Give worker i and the bridge a fresh socketpair, when both run. */
static void
master_connect(struct rt_master *m, int i)
{
	struct master_child	*w = &m->m_workers[i], *b = &m->m_bridge;
	int			 sv[2];

	if (w->mc_pid == 0 || b->mc_pid == 0 || m->m_stopping)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("%s: socketpair() failed", __func__);
		return;
	}
	/* the bridge first: it greets the worker once the socket is attached */
	if (master_send(b, IPC_WORKER_FD, (uint32_t)i, NULL, 0, sv[1]) == -1 ||
	    master_send(w, IPC_BRIDGE_FD, (uint32_t)i, NULL, 0, sv[0]) == -1)
		log_warn("%s: passing the bridge socket to worker %d failed", __func__, i);
	close(sv[0]);
	close(sv[1]);
}

static void
master_publish_reply(struct rt_master *m, const struct ipc_hdr *hdr, const char *buf)
{
	int64_t	 v[2];
	char	 err[200];

	if (m->m_admin == NULL)
		return;
	if (hdr->len == sizeof(v)) {
		memcpy(v, buf, sizeof(v));
		admin_publish_done(m->m_admin, hdr->peerid, v[0], v[1], NULL);
	} else {
		snprintf(err, sizeof(err), "%.*s", (int)(hdr->len < 199 ? hdr->len : 199), buf);
		admin_publish_done(m->m_admin, hdr->peerid, -1, -1, err);
	}
}

/* ---- control across nodes, revocations ------------------------------------ */

static int	master_admin_kick(struct rt_master *, const char *, const char *);

static void
master_revoke_send(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_master	*m = arg;
	int			 i;

	(void)fd;
	(void)ev;
	m->m_recheck = 0;
	for (i = 0; i < m->m_nworkers; i++)
		if (m->m_workers[i].mc_pid != 0 && m->m_workers[i].mc_hello)
			master_send(&m->m_workers[i], IPC_CTL_REVOKE, 0, NULL, 0, -1);
}

/*
 * The revocation table gained entries: every worker checks its
 * connections, once for however many came in one go (a script revoking
 * thousands must not fill the workers' control sockets).
 */
static void
master_revoke_recheck(struct rt_master *m)
{
	const struct timeval	 now = { 0, 0 };

	if (m->m_recheck)
		return;
	m->m_recheck = 1;
	if (event_base_once(m->m_base, -1, EV_TIMEOUT, master_revoke_send, m, &now) == -1)
		master_revoke_send(-1, 0, m);
}

/*
 * Carry out a control command on this node: an admin's, or one another
 * node sent.  *local: connections closed (unrevoke: 1 when it was held).
 */
static int
master_control_apply(struct rt_master *m, int cmd, const char *arg, int64_t until,
    int *local, const char **why)
{
	uint8_t	 d[RVK_DIGEST];

	*local = 0;
	switch (cmd) {
	case CTL_KICK:
		*local = master_admin_kick(m, arg, NULL);
		return 0;
	case CTL_KICK_USER:
		*local = master_admin_kick(m, NULL, arg);
		return 0;
	case CTL_REVOKE:
		rvk_digest(arg, strlen(arg), d);
		if (rvk_add(m->m_reg.r_revoked, d, until, (int64_t)time(NULL)) == -1) {
			*why = "the revocation table is full (max_revocations)";
			log_warnx("revoke %s: %s", arg, *why);
			return -1;
		}
		master_revoke_recheck(m);
		return 0;
	case CTL_UNREVOKE:
		rvk_digest(arg, strlen(arg), d);
		*local = rvk_del(m->m_reg.r_revoked, d);
		return 0;
	}
	*why = "unknown control command";
	return -1;
}

/* What another node asked, verified by our bridge. */
static int
master_control_from(struct rt_master *m, const char *buf, size_t len, char *why,
    size_t whylen)
{
	struct ipc_control	 ic;
	char			 arg[IPC_CONTROL_MAX];
	const char		*err = NULL;
	int			 local;

	if (ipc_control_decode((const uint8_t *)buf, len, &ic, arg) == -1 ||
	    ctl_cmd_name(ic.ic_cmd) == NULL || (ic.ic_cmd == CTL_REVOKE && ic.ic_until <= 0)) {
		snprintf(why, whylen, "a malformed control command");
		return -1;
	}
	if (master_control_apply(m, ic.ic_cmd, arg, ic.ic_until, &local, &err) == 0 &&
	    (ic.ic_cmd == CTL_KICK || ic.ic_cmd == CTL_KICK_USER) && local > 0)
		log_info("control: %s %s from another node: %d connection%s closed",
		    ctl_cmd_name(ic.ic_cmd), arg, local, local == 1 ? "" : "s");
	return 0;
}

/*
 * Revocations read back from Redis, or the bridge's echo of ours
 * (ipc.h, IPC_CTL_SYNC): an entry of until 0 is an unrevoke.
 */
static int
master_revocations_sync(struct rt_master *m, const char *buf, size_t len, char *why,
    size_t whylen)
{
	struct rvk_table	*t = m->m_reg.r_revoked;
	struct ipc_sync_entry	 e;
	int64_t			 now = (int64_t)time(NULL);
	size_t			 off;

	if (len < 1 || (buf[0] == IPC_SYNC_ENTRIES ? (len - 1) % sizeof(e) != 0 : len != 1)) {
		snprintf(why, whylen, "a malformed revocation reload");
		return -1;
	}
	switch (buf[0]) {
	case IPC_SYNC_BEGIN:
		m->m_sync_new = 0;
		return 0;
	case IPC_SYNC_ENTRIES:
		for (off = 1; off < len; off += sizeof(e)) {
			memcpy(&e, buf + off, sizeof(e));
			if (e.se_until <= 0) {
				rvk_del(t, e.se_digest);
				continue;
			}
			if (!rvk_revoked(t, e.se_digest, now))
				m->m_sync_new++;
			rvk_add(t, e.se_digest, e.se_until, now);	/* full: counted */
		}
		if (m->m_sync_new > 0)
			master_revoke_recheck(m);
		return 0;
	case IPC_SYNC_ABORT:
		/* Redis went away mid-read: the next connection reads again */
		return 0;
	case IPC_SYNC_END:
		log_info("revocations: %lld held after reading redis (%u new)%s",
		    (long long)rvk_count(t), m->m_sync_new,
		    atomic_load(&t->rt_full) > 0 ? "; max_revocations refused some" : "");
		m->m_sync_new = 0;
		return 0;
	}
	snprintf(why, whylen, "a revocation reload in an unknown phase");
	return -1;
}

/*
 * The bridge's answer to a control command or to nodes: 'N' and an
 * int64 (the nodes that heard it), 'J' and the node list, or 'E' and why.
 */
static void
master_control_reply(struct rt_master *m, const struct ipc_hdr *hdr, const char *buf)
{
	int64_t	 v;
	char	 err[200];
	int	 nodes = hdr->type == IPC_CTL_NODES_REPLY;

	if (m->m_admin == NULL)
		return;
	snprintf(err, sizeof(err), "%.*s", (int)(hdr->len - 1 < 199 ? hdr->len - 1 : 199),
	    buf + 1);
	if (buf[0] == 'J' && nodes)
		admin_nodes_done(m->m_admin, hdr->peerid, buf + 1, hdr->len - 1, NULL);
	else if (buf[0] == 'N' && !nodes && hdr->len == 1 + sizeof(v)) {
		memcpy(&v, buf + 1, sizeof(v));
		admin_control_done(m->m_admin, hdr->peerid, v, NULL);
	} else if (nodes)
		admin_nodes_done(m->m_admin, hdr->peerid, NULL, 0,
		    buf[0] == 'E' ? err : "a malformed answer from the bridge");
	else
		admin_control_done(m->m_admin, hdr->peerid, -1,
		    buf[0] == 'E' ? err : "a malformed answer from the bridge");
}

static void	master_reload_ack(struct rt_master *, struct master_child *,
		    const struct ipc_hdr *, const char *, char *, size_t);

/* One message from a child; -1 with why when it is one it may not send. */
static int
master_child_dispatch(struct master_child *mc, const struct ipc_hdr *hdr, const char *buf,
    int rfd, char *why, size_t whylen)
{
	char	 label[64];

	if (rfd != -1 || hdr->pid != (uint32_t)mc->mc_pid) {
		snprintf(why, whylen, "%s", rfd != -1 ? "a descriptor" : "another pid");
		return -1;
	}
	snprintf(why, whylen, "not expected from this child");
	switch (hdr->type) {
	case IPC_CTL_PUBLISH_REPLY:
		if (mc->mc_role != ROLE_BRIDGE || hdr->len == 0)
			return -1;
		master_publish_reply(mc->mc_master, hdr, buf);
		return 0;
	case IPC_CTL_CONTROL_REPLY:
	case IPC_CTL_NODES_REPLY:
		if (mc->mc_role != ROLE_BRIDGE || hdr->len == 0)
			return -1;
		master_control_reply(mc->mc_master, hdr, buf);
		return 0;
	case IPC_CTL_APPLY:
		if (mc->mc_role != ROLE_BRIDGE)
			return -1;
		return master_control_from(mc->mc_master, buf, hdr->len, why, whylen);
	case IPC_CTL_SYNC:
		if (mc->mc_role != ROLE_BRIDGE)
			return -1;
		return master_revocations_sync(mc->mc_master, buf, hdr->len, why, whylen);
	case IPC_HELLO:
		if (mc->mc_hello || (hdr->len != 0 && hdr->len != sizeof(struct ipc_hello)))
			return -1;
		mc->mc_hello = 1;
		mc->mc_hello_at = util_now_ms();
		log_debug("%s: %s running", __func__, child_label(mc, label, sizeof(label)));
		return 0;
	case IPC_CFG_ACK:
		why[0] = '\0';
		master_reload_ack(mc->mc_master, mc, hdr, buf, why, whylen);
		return why[0] == '\0' ? 0 : -1;
	}
	return -1;
}

static void
master_child_msg(evutil_socket_t fd, short ev, void *arg)
{
	static char		 buf[IPC_CTL_MAX];
	struct master_child	*mc = arg;
	struct ipc_hdr		 hdr;
	char			 why[64], msg[160];
	ssize_t			 n;
	int			 rfd;

	(void)ev;
	for (;;) {
		memset(&hdr, 0, sizeof(hdr));
		if ((n = ipc_recv(fd, &hdr, buf, sizeof(buf), &rfd)) <= 0)
			break;
		if (master_child_dispatch(mc, &hdr, buf, rfd, why, sizeof(why)) == -1) {
			if (rfd != -1)
				close(rfd);
			snprintf(msg, sizeof(msg), "sent a bad message (type %u, length %u: %s)",
			    hdr.type, hdr.len, why);
			master_kill(mc, msg);
			return;
		}
	}
	if (n == 0) {
		/* the child closed its end: it is exiting, SIGCHLD does the rest */
		event_del(mc->mc_ev);
	} else if (errno == EBADMSG) {
		if (rfd != -1)
			close(rfd);
		snprintf(msg, sizeof(msg), "sent a malformed or unknown message "
		    "(type %u, length %u)", hdr.type, hdr.len);
		master_kill(mc, msg);
	} else if (errno != EAGAIN) {
		snprintf(msg, sizeof(msg), "control socket failed (%s)", strerror(errno));
		master_kill(mc, msg);
	}
}

/* In the child: forget the master's state. */
static void
child_setup(struct rt_master *m, struct master_child *self)
{
	int	 i;

	/* the master's events and admin clients, freed here (poll: no kernel state) */
	for (i = 0; i < m->m_nworkers; i++)
		if (m->m_workers[i].mc_ev != NULL) {
			event_free(m->m_workers[i].mc_ev);
			m->m_workers[i].mc_ev = NULL;
		}
	if (m->m_bridge.mc_ev != NULL) {
		event_free(m->m_bridge.mc_ev);
		m->m_bridge.mc_ev = NULL;
	}
	for (i = 0; i < 5; i++)
		if (m->m_sig[i] != NULL) {
			event_free(m->m_sig[i]);
			m->m_sig[i] = NULL;
		}
	if (m->m_tick != NULL) {
		event_free(m->m_tick);
		m->m_tick = NULL;
	}
	admin_free_in_child(m->m_admin);
	m->m_admin = NULL;
	event_base_free(master_base);
	master_base = m->m_base = NULL;
	signal(SIGINT, SIG_IGN);	/* the master coordinates a Ctrl-C */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);	/* the master says IPC_LOG_REOPEN */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	for (i = 0; i < m->m_nworkers; i++) {
		if (m->m_workers[i].mc_fd != -1 && &m->m_workers[i] != self)
			close(m->m_workers[i].mc_fd);
		if (self->mc_role != ROLE_WORKER || i != self->mc_index) {
			if (m->m_listen[i] != -1)
				close(m->m_listen[i]);
			if (m->m_listen_tls[i] != -1)
				close(m->m_listen_tls[i]);
		}
	}
	if (m->m_bridge.mc_fd != -1 && &m->m_bridge != self)
		close(m->m_bridge.mc_fd);
}

static void
child_main(struct rt_master *m, struct master_child *mc, int fd)
{
	char	 name[32];
	int	 rv;

	child_setup(m, mc);
	log_setproc(child_name(mc, name, sizeof(name)));
	if (mc->mc_role == ROLE_BRIDGE) {
		log_settag("realtimed/bridge");
		proc_title("realtimed: bridge");
		rv = bridge_run(m->m_conf, &m->m_reg, fd);
	} else {
		char tag[64];

		snprintf(tag, sizeof(tag), "realtimed/worker%d", mc->mc_index);
		log_settag(tag);
		proc_title("realtimed: worker %d", mc->mc_index);
		rv = worker_run(m->m_conf, &m->m_reg, mc->mc_index, fd,
		    m->m_listen[mc->mc_index], m->m_listen_tls[mc->mc_index], m->m_ssl_ctx);
		m->m_ssl_ctx = NULL;	/* the worker freed it */
	}
	if (m->m_ssl_ctx != NULL)
		SSL_CTX_free(m->m_ssl_ctx);
	free(m->m_workers);
	free(m->m_listen);
	free(m->m_listen_tls);
	config_free(m->m_conf);
	exit(rv == 0 ? 0 : 1);
}

static void
master_spawn(struct rt_master *m, struct master_child *mc)
{
	int	 sv[2], i;
	pid_t	 pid;
	char	 name[32];

	mc->mc_respawn_at = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("%s: socketpair() failed", __func__);
		mc->mc_respawn_at = util_now_ms() + 1000;
		return;
	}
	if (mc->mc_role == ROLE_WORKER) {
		reg_worker_clear(&m->m_reg, mc->mc_index);
		atomic_store(&reg_worker(&m->m_reg, mc->mc_index)->rw_canary_seq,
		    atomic_load(&m->m_reg.r_hdr->rh_bridge.rb_canary_sent));
	}
	switch ((pid = fork())) {
	case -1:
		log_warn("%s: fork() failed", __func__);
		close(sv[0]);
		close(sv[1]);
		mc->mc_respawn_at = util_now_ms() + 1000;
		return;
	case 0:
		close(sv[0]);
		mc->mc_fd = -1;
		child_main(m, mc, sv[1]);
		/* NOTREACHED */
	}
	close(sv[1]);
	mc->mc_pid = pid;
	mc->mc_fd = sv[0];
	mc->mc_hello = 0;
	mc->mc_killed = 0;
	mc->mc_acks_due = 0;	/* it starts from the current settings */
	mc->mc_started = util_now_ms();
	if (fcntl(mc->mc_fd, F_SETFL, O_NONBLOCK) == -1)
		log_warn("%s: fcntl(O_NONBLOCK) failed", __func__);
	mc->mc_ev = event_new(m->m_base, mc->mc_fd, EV_READ | EV_PERSIST,
	    master_child_msg, mc);
	event_add(mc->mc_ev, NULL);
	log_debug("%s: %s started, pid %d", __func__, child_name(mc, name, sizeof(name)),
	    (int)pid);
	if (mc->mc_role == ROLE_BRIDGE) {
		for (i = 0; i < m->m_nworkers; i++)
			master_connect(m, i);
	} else
		master_connect(m, mc->mc_index);
}

static void
master_child_gone(struct rt_master *m, struct master_child *mc, int status)
{
	uint64_t	 now = util_now_ms(), delay;
	char		 name[32];

	master_reload_gone(m, mc);
	if (mc->mc_ev != NULL) {
		event_free(mc->mc_ev);
		mc->mc_ev = NULL;
	}
	close(mc->mc_fd);
	mc->mc_fd = -1;
	mc->mc_pid = 0;
	if (mc->mc_role == ROLE_WORKER)
		reg_worker_clear(&m->m_reg, mc->mc_index);
	else {
		atomic_store(&m->m_reg.r_hdr->rh_bridge.rb_redis_up, 0);
		atomic_store(&m->m_reg.r_hdr->rh_bridge.rb_pid, 0);
		/* its answers will not come */
		admin_bridge_gone(m->m_admin);
	}
	if (mc->mc_killed)
		atomic_fetch_add(&m->m_reg.r_hdr->rh_children_killed, 1);
	if (m->m_stopping) {
		if (WIFSIGNALED(status))
			log_warnx("%s exited on signal %d while stopping",
			    child_name(mc, name, sizeof(name)), WTERMSIG(status));
		else if (WEXITSTATUS(status) != 0)
			log_warnx("%s exited with status %d while stopping",
			    child_name(mc, name, sizeof(name)), WEXITSTATUS(status));
		return;
	}
	atomic_fetch_add(&m->m_reg.r_hdr->rh_children_respawned, 1);
	if (now - mc->mc_started < FAST_DEATH_MS)
		mc->mc_fast_deaths++;
	else
		mc->mc_fast_deaths = 0;
	delay = RESPAWN_MIN_MS;
	if (mc->mc_fast_deaths > 1) {
		delay <<= (mc->mc_fast_deaths > 9 ? 9 : mc->mc_fast_deaths - 1);
		if (delay > RESPAWN_MAX_MS)
			delay = RESPAWN_MAX_MS;
	}
	mc->mc_respawn_at = now + delay;
	if (WIFSIGNALED(status))
		log_warnx("%s exited on signal %d; respawning in %llu ms%s",
		    child_name(mc, name, sizeof(name)), WTERMSIG(status),
		    (unsigned long long)delay, mc->mc_fast_deaths > 2 ? " (crash loop)" : "");
	else
		log_warnx("%s exited with status %d; respawning in %llu ms%s",
		    child_name(mc, name, sizeof(name)), WEXITSTATUS(status),
		    (unsigned long long)delay, mc->mc_fast_deaths > 2 ? " (crash loop)" : "");
}

static struct master_child *
master_find(struct rt_master *m, pid_t pid)
{
	int	 i;

	if (m->m_bridge.mc_pid == pid)
		return &m->m_bridge;
	for (i = 0; i < m->m_nworkers; i++)
		if (m->m_workers[i].mc_pid == pid)
			return &m->m_workers[i];
	return NULL;
}

static int
master_running(struct rt_master *m)
{
	int	 i, n = m->m_bridge.mc_pid != 0;

	for (i = 0; i < m->m_nworkers; i++)
		n += m->m_workers[i].mc_pid != 0;
	return n;
}

static void
master_reap(struct rt_master *m)
{
	struct master_child	*mc;
	pid_t			 pid;
	int			 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if ((mc = master_find(m, pid)) != NULL)
			master_child_gone(m, mc, status);
	if (m->m_stopping && master_running(m) == 0)
		event_base_loopexit(m->m_base, NULL);
}

/*
 * A child that stopped ticking is hung: kill it, SIGCHLD respawns it.  A
 * starting child has child_timeout to say hello; a running one must tick
 * within bridge_timeout or worker_timeout.
 */
static void
master_watchdog(struct rt_master *m, struct master_child *mc, uint64_t tick, uint64_t now)
{
	const struct rt_config	*c = m->m_conf;
	uint64_t		 since, limit;
	char			 why[128];

	if (mc->mc_pid == 0 || mc->mc_killed)
		return;
	if (!mc->mc_hello) {
		since = mc->mc_started;
		limit = (uint64_t)c->c_child_timeout;
	} else {
		since = tick > mc->mc_hello_at ? tick : mc->mc_hello_at;
		limit = (uint64_t)(mc->mc_role == ROLE_BRIDGE ? c->c_bridge_timeout :
		    c->c_worker_timeout);
	}
	if (now <= since || now - since <= limit)
		return;
	if (!mc->mc_hello)
		snprintf(why, sizeof(why), "not running %llu ms after its start "
		    "(child_timeout %llu ms)", (unsigned long long)(now - since),
		    (unsigned long long)limit);
	else
		snprintf(why, sizeof(why), "silent for %llu ms (%s %llu ms)",
		    (unsigned long long)(now - since), mc->mc_role == ROLE_BRIDGE ?
		    "bridge_timeout" : "worker_timeout", (unsigned long long)limit);
	master_kill(mc, why);
}

/*
 * The master itself was not scheduled for a while (the host stalled, or
 * the whole process group was stopped): its children were not either, so
 * their ticks say nothing yet.  Give them a moment before judging them.
 */
static int
master_watch_now(struct rt_master *m, uint64_t now)
{
	if (now - m->m_last_tick > MASTER_STALL_MS) {
		log_warnx("the master was not scheduled for %llu ms: the watchdog waits %d ms",
		    (unsigned long long)(now - m->m_last_tick), MASTER_STALL_MS);
		m->m_watch_from = now + MASTER_STALL_MS;
	}
	m->m_last_tick = now;
	return now >= m->m_watch_from;
}

static void
master_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_master	*m = arg;
	uint64_t		 now = util_now_ms();
	int			 i;

	(void)fd;
	(void)ev;
	stats_sample(&m->m_reg.r_hdr->rh_master_usage, now);
	master_reap(m);
	if (m->m_stopping) {
		if (now >= m->m_stop_deadline) {
			log_warnx("shutdown_timeout passed: killing the remaining children");
			if (m->m_bridge.mc_pid != 0)
				kill(m->m_bridge.mc_pid, SIGKILL);
			for (i = 0; i < m->m_nworkers; i++)
				if (m->m_workers[i].mc_pid != 0)
					kill(m->m_workers[i].mc_pid, SIGKILL);
		}
		return;
	}
	if (m->m_reload.mr_active && now >= m->m_reload.mr_deadline)
		master_reload_expire(m);
	/* readers ignore what has expired: this only makes room */
	if (now - m->m_revoke_swept >= MASTER_REVOKE_SWEEP_MS) {
		m->m_revoke_swept = now;
		if (rvk_count(m->m_reg.r_revoked) > 0)
			rvk_expire(m->m_reg.r_revoked, (int64_t)time(NULL));
	}
	if (master_watch_now(m, now)) {
		master_watchdog(m, &m->m_bridge,
		    atomic_load(&m->m_reg.r_hdr->rh_bridge.rb_tick), now);
		for (i = 0; i < m->m_nworkers; i++)
			master_watchdog(m, &m->m_workers[i],
			    atomic_load(&reg_worker(&m->m_reg, i)->rw_tick), now);
	}
	if (m->m_bridge.mc_pid == 0 && m->m_bridge.mc_respawn_at != 0 &&
	    now >= m->m_bridge.mc_respawn_at)
		master_spawn(m, &m->m_bridge);
	for (i = 0; i < m->m_nworkers; i++)
		if (m->m_workers[i].mc_pid == 0 && m->m_workers[i].mc_respawn_at != 0 &&
		    now >= m->m_workers[i].mc_respawn_at)
			master_spawn(m, &m->m_workers[i]);
}

static void
master_stop(struct rt_master *m, int sig)
{
	int	 i;

	if (m->m_stopping)
		return;
	log_info("signal %d: stopping", sig);
	m->m_stopping = 1;
	master_close_listeners(m);	/* the workers close theirs: a restart can bind */
	m->m_stop_deadline = util_now_ms() + (uint64_t)m->m_conf->c_shutdown_timeout + 2000;
	for (i = 0; i < m->m_nworkers; i++)
		master_send(&m->m_workers[i], IPC_SHUTDOWN, 0, NULL, 0, -1);
	master_send(&m->m_bridge, IPC_SHUTDOWN, 0, NULL, 0, -1);
	if (master_running(m) == 0)
		event_base_loopexit(m->m_base, NULL);
}

/* A reload message to each live child, which then owes an answer. */
static void
master_broadcast(struct rt_master *m, int workers_only, uint32_t type,
    const void *data, size_t len)
{
	int	 i;

	for (i = 0; i < m->m_nworkers; i++)
		if (master_send(&m->m_workers[i], type, m->m_reload.mr_gen, data, len, -1) == 0)
			m->m_workers[i].mc_acks_due++;
	if (!workers_only &&
	    master_send(&m->m_bridge, type, m->m_reload.mr_gen, data, len, -1) == 0)
		m->m_bridge.mc_acks_due++;
}

/* ---- reload acknowledgements --------------------------------------------- */

static void
master_reload_begin(struct rt_master *m)
{
	struct master_reload	*r = &m->m_reload;
	uint32_t		 gen;
	int			 i;

	if (r->mr_active)
		log_info("reload: superseding the reload still waiting for %d processes",
		    r->mr_waiting);
	gen = r->mr_gen + 1;
	memset(r, 0, sizeof(*r));
	r->mr_gen = gen;
	/* answers to an older generation no longer count */
	m->m_bridge.mc_acks_due = m->m_bridge.mc_reload_failed = 0;
	for (i = 0; i < m->m_nworkers; i++)
		m->m_workers[i].mc_acks_due = m->m_workers[i].mc_reload_failed = 0;
}

static void
master_reload_finish(struct rt_master *m)
{
	struct master_reload	*r = &m->m_reload;
	char			 err[sizeof(r->mr_why) + 64];

	r->mr_active = 0;
	if (r->mr_failed == 0) {
		log_info("reload complete: %d processes applied it", r->mr_sent);
		admin_reload_done(m->m_admin, NULL);
	} else {
		log_warnx("reload incomplete: %d of %d processes did not apply it",
		    r->mr_failed, r->mr_sent);
		snprintf(err, sizeof(err), "reload incomplete: %s%s", r->mr_why,
		    r->mr_failed > 1 ? "; and more (see the log)" : "");
		admin_reload_done(m->m_admin, err);
	}
	daemon_notify("READY=1");
}

/* What one child failed to do, logged and kept for the admin's reply. */
static void
master_reload_failed(struct rt_master *m, struct master_child *mc, const char *fmt, ...)
{
	struct master_reload	*r = &m->m_reload;
	char			 label[64], what[IPC_ACK_REASON_MAX + 64];
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_warnx("reload: %s %s", child_label(mc, label, sizeof(label)), what);
	if (mc->mc_reload_failed++ > 0)
		return;
	if (r->mr_failed++ == 0)
		snprintf(r->mr_why, sizeof(r->mr_why), "%s %s", label, what);
}

/* The child owes nothing more: the last one to answer ends the transaction. */
static void
master_reload_settled(struct rt_master *m, struct master_child *mc)
{
	mc->mc_acks_due = 0;
	if (m->m_reload.mr_active && --m->m_reload.mr_waiting == 0)
		master_reload_finish(m);
}

/* IPC_CFG_ACK from mc; on a message it may not send, why is filled. */
static void
master_reload_ack(struct rt_master *m, struct master_child *mc, const struct ipc_hdr *hdr,
    const char *buf, char *why, size_t whylen)
{
	struct master_reload	*r = &m->m_reload;
	struct ipc_cfg_ack	 ack;
	const char		*reason;
	size_t			 rlen;
	char			 label[64];

	if (ipc_cfg_ack_parse(buf, hdr->len, &ack, &reason, &rlen) == -1) {
		snprintf(why, whylen, "malformed acknowledgement");
		return;
	}
	if (hdr->peerid < r->mr_gen)
		return;		/* a superseded reload */
	if (hdr->peerid > r->mr_gen || mc->mc_acks_due == 0) {
		snprintf(why, whylen, "acknowledgement of nothing");
		return;
	}
	if (!ack.ca_ok && r->mr_active)
		master_reload_failed(m, mc, "refused %s: %.*s",
		    ack.ca_type == IPC_CFG_TLS ? "the certificate" : "the settings",
		    (int)rlen, reason);
	else if (!r->mr_active)
		log_info("reload: %s answered after the deadline (%s)",
		    child_label(mc, label, sizeof(label)), ack.ca_ok ? "applied" : "refused");
	if (--mc->mc_acks_due == 0)
		master_reload_settled(m, mc);
}

/* A child died owing answers: its replacement starts from the new settings. */
static void
master_reload_gone(struct rt_master *m, struct master_child *mc)
{
	char	 label[64];

	if (mc->mc_acks_due == 0)
		return;
	if (m->m_reload.mr_active)
		log_info("reload: %s exited before answering; its replacement starts "
		    "with the new settings", child_label(mc, label, sizeof(label)));
	master_reload_settled(m, mc);
}

/* The deadline passed: name every child that did not answer. */
static void
master_reload_expire(struct rt_master *m)
{
	int	 i;

	if (m->m_bridge.mc_acks_due > 0)
		master_reload_failed(m, &m->m_bridge, "did not answer within %d ms",
		    RELOAD_ACK_MS);
	for (i = 0; i < m->m_nworkers; i++)
		if (m->m_workers[i].mc_acks_due > 0)
			master_reload_failed(m, &m->m_workers[i], "did not answer within %d ms",
			    RELOAD_ACK_MS);
	master_reload_finish(m);
}

/* After the broadcast: 0 when done at once, 1 while answers are awaited. */
static int
master_reload_wait(struct rt_master *m)
{
	struct master_reload	*r = &m->m_reload;
	int			 i;

	r->mr_waiting = r->mr_sent = m->m_bridge.mc_acks_due > 0;
	for (i = 0; i < m->m_nworkers; i++)
		if (m->m_workers[i].mc_acks_due > 0)
			r->mr_waiting = ++r->mr_sent;
	if (r->mr_waiting == 0) {
		log_info("reload complete: no process to pass it to");
		admin_reload_done(m->m_admin, NULL);	/* those waiting on a superseded one */
		daemon_notify("READY=1");
		return 0;
	}
	r->mr_active = 1;
	r->mr_deadline = util_now_ms() + RELOAD_ACK_MS;
	log_debug("%s: waiting for %d processes", __func__, r->mr_waiting);
	return 1;
}

/*
 * The certificate of the new configuration: a context for respawned
 * workers, and the PEM message for the running ones.  -1 (logged) if unusable.
 */
static int
master_reload_tls(struct rt_master *m, struct rt_config *nc, char **msgp, size_t *lenp)
{
	struct tls_pem	 pem;
	SSL_CTX		*ctx;
	char		 err[512], *msg;
	size_t		 len;
	uint32_t	 certlen;

	if (tls_pem_read(nc, &pem, err, sizeof(err)) == -1 ||
	    (ctx = tls_ctx_new(nc, &pem, err, sizeof(err))) == NULL) {
		log_warnx("reload: TLS: %s; keeping the old configuration", err);
		tls_pem_free(&pem);
		return -1;
	}
	/* tls_pem_read() held them to TLS_PEMS_MAX, which one message carries */
	_Static_assert(TLS_PEMS_MAX + sizeof(certlen) <= IPC_CTL_MAX, "TLS_PEMS_MAX");
	len = sizeof(certlen) + pem.tp_certlen + pem.tp_keylen;
	if ((msg = malloc(len)) == NULL)
		fatal("malloc");
	certlen = (uint32_t)pem.tp_certlen;
	memcpy(msg, &certlen, sizeof(certlen));
	memcpy(msg + sizeof(certlen), pem.tp_cert, pem.tp_certlen);
	memcpy(msg + sizeof(certlen) + pem.tp_certlen, pem.tp_key, pem.tp_keylen);
	tls_pem_free(&pem);
	/* respawned workers start from the new certificate */
	if (m->m_ssl_ctx != NULL)
		SSL_CTX_free(m->m_ssl_ctx);
	m->m_ssl_ctx = ctx;
	*msgp = msg;
	*lenp = len;
	return 0;
}

static int
master_reload_fail(char *err, size_t errlen, const char *why, struct rt_config *nc)
{
	if (why != NULL)
		snprintf(err, errlen, "%s", why);
	log_warnx("reload failed: %s; keeping the old configuration", err);
	config_free(nc);
	daemon_notify("READY=1");
	return -1;
}

/*
 * SIGHUP: a transaction.  Parse and validate the file again (JWT keys,
 * Redis URL, certificate included); on any error keep everything as it
 * is.  Otherwise push the settings, then the certificate, to every child,
 * which apply what may change live and answer; nothing is restarted.
 * -1 with err, 0 done, 1 while the children's answers are awaited
 * (master_reload_finish() tells the admin).
 */
static int
master_reload(struct rt_master *m, char *err, size_t errlen)
{
	struct rt_config	 nc;
	char			*text, *tlsmsg = NULL;
	size_t			 len, tlslen = 0;
	int			 had_origins = m->m_conf->c_allowed_origins.sl_count > 0;

	log_info("reloading %s", m->m_conf->c_file);
	daemon_notify("RELOADING=1");
	if (config_load(&nc, m->m_conf->c_file, err, errlen) == -1 ||
	    master_check_config(&nc, err, errlen) == -1)
		return master_reload_fail(err, errlen, NULL, &nc);
	if ((m->m_ssl_ctx != NULL) != tls_enabled(&nc))
		log_warnx("reload: turning the TLS listener %s takes a restart",
		    m->m_ssl_ctx != NULL ? "off" : "on");
	else if (m->m_ssl_ctx != NULL && master_reload_tls(m, &nc, &tlsmsg, &tlslen) == -1)
		return master_reload_fail(err, errlen, "the new TLS certificate is unusable", &nc);
	if ((text = config_serialize(&nc, &len)) == NULL || len > IPC_CTL_MAX) {
		free(text);
		free(tlsmsg);
		return master_reload_fail(err, errlen, "configuration too large to pass on", &nc);
	}
	config_merge_reloadable(m->m_conf, &nc, 1);
	log_setlevel(m->m_conf->c_log_level);
	if (had_origins)
		master_warn_origins(m);
	master_reload_begin(m);
	/* settings first: workers build the new TLS context from them */
	master_broadcast(m, 0, IPC_CFG_RELOAD, text, len);
	if (tlsmsg != NULL) {
		master_broadcast(m, 1, IPC_CFG_TLS, tlsmsg, tlslen);
		OPENSSL_cleanse(tlsmsg, tlslen);
		free(tlsmsg);
	}
	OPENSSL_cleanse(text, len);
	free(text);
	config_free(&nc);
	return master_reload_wait(m);
}

/* SIGUSR1, logrotate's postrotate: every process reopens log_file. */
static void
master_log_reopen(struct rt_master *m)
{
	if (m->m_conf->c_log_file[0] == '\0') {
		log_info("SIGUSR1: no log_file to reopen");
		return;
	}
	log_info("SIGUSR1: reopening %s", m->m_conf->c_log_file);
	log_reopen();
	master_broadcast(m, 0, IPC_LOG_REOPEN, NULL, 0);
}

static void
master_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct rt_master	*m = arg;

	(void)ev;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		master_stop(m, (int)sig);
		break;
	case SIGCHLD:
		master_reap(m);
		break;
	case SIGHUP: {
		char err[1024];

		master_reload(m, err, sizeof(err));
		break;
	}
	case SIGUSR1:
		master_log_reopen(m);
		break;
	}
}

/* user and group exist; 0, or -1 with "file:line: user NAME: no such user". */
static int
master_check_ids(const struct rt_config *conf, char *err, size_t errlen)
{
	char	 why[256];
	int	 uid, gid;

	if (daemon_lookup_ids(conf->c_user, "", &uid, &gid, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", config_where(conf, "user"), why);
		return -1;
	}
	if (daemon_lookup_ids("", conf->c_group, &uid, &gid, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", config_where(conf, "group"), why);
		return -1;
	}
	return 0;
}

/* A short HMAC secret is brute-forced offline from a single token (RFC 7518 3.2). */
static void
master_check_secret(const struct rt_config *conf)
{
	size_t	 n = strlen(conf->c_jwt_secret);

	if (strncmp(conf->c_jwt_algorithm, "HS", 2) == 0 && n > 0 && n < JWT_SECRET_MIN)
		log_warnx("%s: jwt_secret is %zu bytes: use at least %d random ones "
		    "(openssl rand -hex 32), or a token can be forged", config_where(conf,
		    "jwt_secret"), n, JWT_SECRET_MIN);
}

/*
 * Everything a child would otherwise find out too late (and crash-loop on):
 * the files it reads, the user and group, the JWT keys, the TLS
 * certificate.  0, or -1 with err.
 */
int
master_check_config(const struct rt_config *conf, char *err, size_t errlen)
{
	struct auth_ctx		*auth;
	struct tls_pem		 pem;
	SSL_CTX			*ctx;
	char			 why[512];

	if (config_check_files(conf, err, errlen) == -1 ||
	    master_check_ids(conf, err, errlen) == -1)
		return -1;
	if ((auth = config_auth_new(conf, why, sizeof(why))) == NULL) {
		/* where the key the message is about was set */
		snprintf(err, errlen, "%s: %s", config_where(conf,
		    strncmp(why, "jwt_public_key", 14) == 0 ? "jwt_public_key" :
		    strncmp(why, "jwt_algorithm", 13) == 0 ? "jwt_algorithm" :
		    strncmp(why, "token_cache", 11) == 0 ? "token_cache" : "jwt_secret"), why);
		return -1;
	}
	auth_free(auth);
	master_check_secret(conf);
	if (!tls_enabled(conf))
		return 0;
	if (tls_pem_read(conf, &pem, why, sizeof(why)) == -1 ||
	    (ctx = tls_ctx_new(conf, &pem, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "TLS: %s", why);
		tls_pem_free(&pem);
		return -1;
	}
	SSL_CTX_free(ctx);
	tls_pem_free(&pem);
	return 0;
}

/* -t and start (a reload binds nothing): the listen addresses resolve. */
int
master_check_listen(const struct rt_config *conf, char *err, size_t errlen)
{
	struct addrinfo	*res;
	const char	*spec;
	char		 why[512];
	int		 i;

	for (i = 0; i < 2; i++) {
		spec = i == 0 ? conf->c_listen : tls_enabled(conf) ? conf->c_listen_tls : "";
		if (spec[0] == '\0')
			continue;
		if (listen_resolve(spec, &res, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s", config_where(conf,
			    i == 0 ? "listen" : "listen_tls"), why);
			return -1;
		}
		freeaddrinfo(res);
	}
	return 0;
}

/* Read, check and install the certificate; -1 (logged) if it is unusable. */
static int
master_tls_load(struct rt_master *m)
{
	struct tls_pem	 pem;
	char		 err[512];

	tls_ticket_keys_init();
	if (tls_pem_read(m->m_conf, &pem, err, sizeof(err)) == -1 ||
	    (m->m_ssl_ctx = tls_ctx_new(m->m_conf, &pem, err, sizeof(err))) == NULL) {
		log_warnx("TLS: %s", err);
		tls_pem_free(&pem);
		return -1;
	}
	tls_pem_free(&pem);
	return 0;
}

static int
master_setup(struct rt_master *m)
{
	struct event_config	*cfg;
	static const int	 sigs[5] = { SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1 };
	struct timeval		 tick = { 0, MASTER_TICK_MS * 1000 };
	char			 err[512];
	int			 i, backlog;

	m->m_nworkers = m->m_conf->c_workers;
	if (m->m_nworkers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		m->m_nworkers = n < 1 ? 1 : n > REG_MAX_WORKERS ? REG_MAX_WORKERS : (int)n;
	}
	if (m->m_nworkers > REG_MAX_WORKERS) {
		log_warnx("workers %d: at most %d", m->m_nworkers, REG_MAX_WORKERS);
		return -1;
	}
	if ((m->m_listen = calloc((size_t)m->m_nworkers, sizeof(int))) == NULL ||
	    (m->m_listen_tls = calloc((size_t)m->m_nworkers, sizeof(int))) == NULL ||
	    (m->m_workers = calloc((size_t)m->m_nworkers, sizeof(*m->m_workers))) == NULL)
		fatal("calloc");
	for (i = 0; i < m->m_nworkers; i++)
		m->m_listen[i] = m->m_listen_tls[i] = -1;
	if (tls_enabled(m->m_conf) && master_tls_load(m) == -1)
		return -1;
	if (master_listen_probe(m) == -1)
		return -1;
	/* one SO_REUSEPORT socket per worker: no thundering herd, and a
	 * respawned worker takes over the same accept queue */
	backlog = listen_backlog(m->m_conf);
	for (i = 0; i < m->m_nworkers; i++) {
		if (m->m_conf->c_listen[0] != '\0' && (m->m_listen[i] =
		    listen_open(m->m_conf->c_listen, 1, backlog, err, sizeof(err))) == -1) {
			log_warnx("%s", err);
			return -1;
		}
		if (m->m_ssl_ctx != NULL && (m->m_listen_tls[i] =
		    listen_open(m->m_conf->c_listen_tls, 1, backlog, err, sizeof(err))) == -1) {
			log_warnx("%s", err);
			return -1;
		}
	}
	if (reg_create(&m->m_reg, m->m_nworkers, m->m_conf->c_max_connections,
	    m->m_conf->c_max_channels) == -1 ||
	    reg_revocations_create(&m->m_reg, (uint32_t)m->m_conf->c_max_revocations) == -1) {
		log_warn("cannot create the shared registry");
		return -1;
	}
	/* poll, not epoll: an epoll set would be shared with forked children */
	if ((cfg = event_config_new()) == NULL)
		fatalx("event_config_new() failed");
	event_config_avoid_method(cfg, "epoll");
	m->m_base = master_base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (m->m_base == NULL)
		fatalx("event_base_new_with_config() failed");
	for (i = 0; i < 5; i++) {
		m->m_sig[i] = evsignal_new(m->m_base, sigs[i], master_signal, m);
		event_add(m->m_sig[i], NULL);
	}
	m->m_tick = event_new(m->m_base, -1, EV_PERSIST, master_tick, m);
	event_add(m->m_tick, &tick);
	return 0;
}

static void
master_cleanup(struct rt_master *m)
{
	int	 i;

	admin_close(m->m_admin);
	for (i = 0; i < 5; i++)
		if (m->m_sig[i] != NULL)
			event_free(m->m_sig[i]);
	if (m->m_tick != NULL)
		event_free(m->m_tick);
	if (m->m_bridge.mc_ev != NULL)
		event_free(m->m_bridge.mc_ev);
	for (i = 0; m->m_workers != NULL && i < m->m_nworkers; i++) {
		if (m->m_workers[i].mc_ev != NULL)
			event_free(m->m_workers[i].mc_ev);
		if (m->m_workers[i].mc_fd > 0)
			close(m->m_workers[i].mc_fd);
		if (m->m_listen[i] != -1)
			close(m->m_listen[i]);
		if (m->m_listen_tls[i] != -1)
			close(m->m_listen_tls[i]);
	}
	if (m->m_ssl_ctx != NULL)
		SSL_CTX_free(m->m_ssl_ctx);
	free(m->m_listen_tls);
	if (m->m_bridge.mc_fd != -1)
		close(m->m_bridge.mc_fd);
	if (m->m_base != NULL)
		event_base_free(m->m_base);
	master_base = NULL;
	reg_destroy(&m->m_reg);
	free(m->m_workers);
	free(m->m_listen);
}

/* ---- the admin socket's requests ---------------------------------------- */

static int
master_admin_reload(void *arg, char *err, size_t errlen)
{
	return master_reload(arg, err, errlen);
}

struct kick_scan {
	const char	*ks_id;
	const char	*ks_user;
	uint64_t	 ks_workers;
	int		 ks_n;
};

static void
master_kick_scan(struct reg_conn *rc, void *arg)
{
	struct kick_scan	*ks = arg;

	if ((ks->ks_id != NULL && strcmp(rc->rc_id, ks->ks_id) != 0) ||
	    (ks->ks_user != NULL && !reg_user_match(rc, ks->ks_user)))
		return;
	ks->ks_workers |= (uint64_t)1 << rc->rc_worker;
	ks->ks_n++;
}

/* Close connections: by id (user NULL) or by user id (id NULL); how many. */
static int
master_admin_kick(struct rt_master *m, const char *id, const char *user)
{
	struct kick_scan	 ks = { id, user, 0, 0 };
	int			 i;

	reg_conn_foreach(&m->m_reg, master_kick_scan, &ks);
	for (i = 0; i < m->m_nworkers; i++)
		if (ks.ks_workers & ((uint64_t)1 << i))
			master_send(&m->m_workers[i], id ? IPC_CTL_KICK : IPC_CTL_KICK_USER,
			    0, id ? id : user, strlen(id ? id : user), -1);
	return ks.ks_n;
}

static int
master_admin_publish(void *arg, uint32_t reqid, const char *channel, const char *json,
    size_t len)
{
	struct rt_master	*m = arg;
	char			*msg;
	uint16_t		 chlen = (uint16_t)strlen(channel);
	size_t			 n = sizeof(chlen) + chlen + len;
	int			 rv;

	if (m->m_bridge.mc_pid == 0 || n > IPC_CTL_MAX)
		return -1;
	if ((msg = malloc(n)) == NULL)
		return -1;
	memcpy(msg, &chlen, sizeof(chlen));
	memcpy(msg + sizeof(chlen), channel, chlen);
	memcpy(msg + sizeof(chlen) + chlen, json, len);
	rv = master_send(&m->m_bridge, IPC_CTL_PUBLISH, reqid, msg, n, -1);
	free(msg);
	return rv;
}

static int
master_admin_control(void *arg, uint32_t reqid, int cmd, const char *carg, int64_t *until,
    int *local, const char **why)
{
	struct rt_master	*m = arg;
	uint8_t			 msg[IPC_CONTROL_MAX];
	size_t			 n;

	if (cmd == CTL_REVOKE && *until == 0)
		*until = (int64_t)time(NULL) + m->m_conf->c_revocation_ttl / 1000;
	if (master_control_apply(m, cmd, carg, *until, local, why) == -1)
		return -1;
	if (m->m_conf->c_control_secret[0] == '\0') {
		*why = "control_secret is not set: this node only";
		return 0;
	}
	if ((n = ipc_control_encode(msg, cmd, 0, *until, carg, strlen(carg))) == 0 ||
	    master_send(&m->m_bridge, IPC_CTL_CONTROL, reqid, msg, n, -1) == -1) {
		*why = "the bridge is not running: this node only";
		return 0;
	}
	return 1;
}

static int
master_admin_nodes(void *arg, uint32_t reqid)
{
	struct rt_master	*m = arg;

	return master_send(&m->m_bridge, IPC_CTL_NODES, reqid, NULL, 0, -1);
}

static struct json_object *
master_admin_health(void *arg)
{
	struct rt_master	*m = arg;
	int			 healthy;

	return stats_health_json(&m->m_reg, m->m_conf->c_canary_interval, &healthy);
}

/* Everything that needs root, and may fail loudly, before detaching. */
static int
master_privileged(struct rt_master *m)
{
	struct admin_ops	 ops = { m, master_admin_reload, master_admin_publish, master_admin_health,
				    master_admin_control, master_admin_nodes };
	char			 err[512];
	int			 uid, gid;

	if (daemon_lookup_ids(m->m_conf->c_user, m->m_conf->c_group, &uid, &gid,
	    err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	if (m->m_conf->c_admin_socket[0] != '\0' &&
	    (m->m_admin = admin_open(m->m_base, &m->m_reg, &ops, m->m_conf->c_admin_socket,
	    m->m_conf->c_admin_socket_mode, uid, gid, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	/* a worker may end up with any share of max_connections */
	daemon_raise_nofile((long)m->m_conf->c_max_connections + 1024);
	return 0;
}

int
master_start(struct rt_config *conf, int foreground)
{
	struct rt_master	 m;
	char			 err[512];
	int			 i;

	memset(&m, 0, sizeof(m));
	m.m_conf = conf;
	m.m_bridge.mc_role = ROLE_BRIDGE;
	m.m_bridge.mc_fd = -1;
	m.m_bridge.mc_master = &m;
	if (master_check_config(conf, err, sizeof(err)) == -1 ||
	    master_check_listen(conf, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return 1;
	}
	if (master_setup(&m) == -1 || master_privileged(&m) == -1) {
		master_cleanup(&m);
		return 1;
	}
	for (i = 0; i < m.m_nworkers; i++) {
		m.m_workers[i].mc_role = ROLE_WORKER;
		m.m_workers[i].mc_index = i;
		m.m_workers[i].mc_fd = -1;
		m.m_workers[i].mc_master = &m;
	}
	if (!foreground) {
		/* syslog, or stderr when nothing listens there; log_file wins */
		log_init(RT_NAME, 0, log_getlevel());
		if (daemon_detach(log_to_stderr()) == -1)
			fatal("cannot become a daemon");
		if (event_reinit(m.m_base) == -1)
			fatalx("event_reinit() failed");
	}
	daemon_pidfile_write();
	if (daemon_drop_privileges(conf->c_user, conf->c_group, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		master_cleanup(&m);
		return 1;
	}
	proc_title("realtimed: master");
	log_file_tee(0);	/* started: from now on the log is log_file's alone */
	log_info("realtimed %s: %d workers, listening on%s%s%s%s", PACKAGE_VERSION,
	    m.m_nworkers, conf->c_listen[0] ? " ws://" : "", conf->c_listen,
	    m.m_ssl_ctx ? " wss://" : "", m.m_ssl_ctx ? conf->c_listen_tls : "");
	master_warn_origins(&m);
	master_spawn(&m, &m.m_bridge);
	for (i = 0; i < m.m_nworkers; i++)
		master_spawn(&m, &m.m_workers[i]);
	daemon_notify("READY=1");
	m.m_last_tick = util_now_ms();
	event_base_dispatch(m.m_base);
	daemon_notify("STOPPING=1");
	master_cleanup(&m);
	daemon_pidfile_remove();
	log_info("stopped");
	return 0;
}
