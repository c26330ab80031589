/*
 * allocprobe: where the live heap of a process using OpenSSL and libevent
 * is, by allocation site.  An LD_PRELOAD library: it installs
 * CRYPTO_set_mem_functions() and event_set_mem_functions() hooks before
 * main(), keeps a table of the live blocks (OpenSSL's by file:line of the
 * OPENSSL_malloc call, libevent's by return address in the library and
 * size), and in every process it is loaded in (forked ones too) writes the
 * totals, largest first, to $ALLOCPROBE_DIR/out.PID once the file
 * $ALLOCPROBE_DIR/trigger exists (checked once a second).
 *
 *   tests/bench/build.sh                # builds /tmp/rtbench-build/allocprobe.so
 *   mkdir -p /tmp/ap && rm -f /tmp/ap/trigger /tmp/ap/out.[0-9]*
 *   (sleep 7; touch /tmp/ap/trigger) &
 *   ALLOCPROBE_DIR=/tmp/ap LD_PRELOAD=/tmp/rtbench-build/allocprobe.so \
 *       tests/bench/run idle --only-tls -n 1000 --workers 1 --duration 8
 *   # the worker's file is the one listing ../ssl/ssl_lib.c:691 1000 times
 *
 * Sizes are the requested ones (glibc adds 8-16 bytes a block).  A
 * measuring tool, not part of realtimed: the table is 16 MiB a process.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#define AP_SLOTS	(1 << 20)
#define AP_SITES	8192
#define AP_EVTAGS	4096
#define AP_FREED	((void *)1)

struct ap_block {
	void		*b_p;
	const char	*b_site;
	int		 b_line;
	size_t		 b_n;
};

struct ap_site {
	const char	*s_site;
	int		 s_line;
	size_t		 s_count, s_bytes;
};

static struct ap_block	*ap_tab;
static pthread_mutex_t	 ap_mu = PTHREAD_MUTEX_INITIALIZER;
static char		 ap_evtags[AP_EVTAGS][48];
static int		 ap_nevtags;
static char		 ap_dir[256] = "/tmp";

static size_t
ap_hash(uintptr_t p)
{
	return (p >> 4) * 2654435761u & (AP_SLOTS - 1);
}

/* (ap_mu held) */
static void
ap_put(void *p, const char *site, int line, size_t n)
{
	size_t	 i = ap_hash((uintptr_t)p);

	while (ap_tab[i].b_p != NULL && ap_tab[i].b_p != AP_FREED)
		i = (i + 1) & (AP_SLOTS - 1);
	ap_tab[i].b_p = p;
	ap_tab[i].b_site = site;
	ap_tab[i].b_line = line;
	ap_tab[i].b_n = n;
}

/* (ap_mu held) */
static void
ap_del(uintptr_t p)
{
	size_t	 i = ap_hash(p);

	for (; ap_tab[i].b_p != NULL; i = (i + 1) & (AP_SLOTS - 1))
		if ((uintptr_t)ap_tab[i].b_p == p) {
			ap_tab[i].b_p = AP_FREED;
			return;
		}
}

static void *
ap_malloc(size_t n, const char *file, int line)
{
	void	*p = malloc(n);

	if (p != NULL) {
		pthread_mutex_lock(&ap_mu);
		ap_put(p, file, line, n);
		pthread_mutex_unlock(&ap_mu);
	}
	return p;
}

static void *
ap_realloc(void *o, size_t n, const char *file, int line)
{
	void	*p;

	/* (a block a failed realloc() kept is no longer counted) */
	pthread_mutex_lock(&ap_mu);
	if (o != NULL)
		ap_del((uintptr_t)o);
	if ((p = realloc(o, n)) != NULL)
		ap_put(p, file, line, n);
	pthread_mutex_unlock(&ap_mu);
	return p;
}

static void
ap_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p != NULL) {
		pthread_mutex_lock(&ap_mu);
		ap_del((uintptr_t)p);
		pthread_mutex_unlock(&ap_mu);
	}
	free(p);
}

/* libevent's blocks: "ev+OFFSET/SIZE", OFFSET the caller's in its library */
static const char *
ap_evtag(void *ra, size_t n)
{
	Dl_info	 di;
	char	 b[48];
	int	 i;

	if (dladdr(ra, &di) == 0 || di.dli_fname == NULL)
		snprintf(b, sizeof(b), "ev?/%zu", n);
	else
		snprintf(b, sizeof(b), "ev+%lx/%zu",
		    (unsigned long)((char *)ra - (char *)di.dli_fbase), n);
	for (i = 0; i < ap_nevtags; i++)
		if (strcmp(ap_evtags[i], b) == 0)
			return ap_evtags[i];
	if (ap_nevtags == AP_EVTAGS)
		return "ev-other";
	snprintf(ap_evtags[ap_nevtags], sizeof(ap_evtags[0]), "%s", b);
	return ap_evtags[ap_nevtags++];
}

static void *
ap_ev_malloc(size_t n)
{
	void	*ra = __builtin_return_address(0), *p = malloc(n);

	if (p != NULL) {
		pthread_mutex_lock(&ap_mu);
		ap_put(p, ap_evtag(ra, n), 0, n);
		pthread_mutex_unlock(&ap_mu);
	}
	return p;
}

static void *
ap_ev_realloc(void *o, size_t n)
{
	void	*ra = __builtin_return_address(0), *p;

	pthread_mutex_lock(&ap_mu);
	if (o != NULL)
		ap_del((uintptr_t)o);
	if ((p = realloc(o, n)) != NULL)
		ap_put(p, ap_evtag(ra, n), 0, n);
	pthread_mutex_unlock(&ap_mu);
	return p;
}

static void
ap_ev_free(void *p)
{
	ap_free(p, NULL, 0);
}

static int
ap_cmp(const void *a, const void *b)
{
	const struct ap_site	*x = a, *y = b;

	return x->s_bytes < y->s_bytes ? 1 : x->s_bytes > y->s_bytes ? -1 : 0;
}

static void
ap_dump(void)
{
	static struct ap_site	 s[AP_SITES];
	const struct ap_block	*b;
	char			 path[300];
	FILE			*fp;
	size_t			 i;
	int			 j, ns = 0;

	pthread_mutex_lock(&ap_mu);
	for (i = 0; i < AP_SLOTS; i++) {
		b = &ap_tab[i];
		if (b->b_p == NULL || b->b_p == AP_FREED)
			continue;
		for (j = 0; j < ns; j++)
			if (s[j].s_line == b->b_line && (s[j].s_site == b->b_site ||
			    (s[j].s_site != NULL && b->b_site != NULL &&
			    strcmp(s[j].s_site, b->b_site) == 0)))
				break;
		if (j == ns) {
			if (ns == AP_SITES)
				continue;
			s[ns].s_site = b->b_site;
			s[ns].s_line = b->b_line;
			s[ns].s_count = s[ns].s_bytes = 0;
			ns++;
		}
		s[j].s_count++;
		s[j].s_bytes += b->b_n;
	}
	pthread_mutex_unlock(&ap_mu);
	qsort(s, (size_t)ns, sizeof(s[0]), ap_cmp);
	snprintf(path, sizeof(path), "%s/out.%d", ap_dir, (int)getpid());
	if ((fp = fopen(path, "w")) == NULL)
		return;
	fprintf(fp, "%10s %8s %s\n", "bytes", "blocks", "site");
	for (j = 0; j < ns; j++)
		fprintf(fp, "%10zu %8zu %s:%d\n", s[j].s_bytes, s[j].s_count,
		    s[j].s_site != NULL ? s[j].s_site : "?", s[j].s_line);
	fclose(fp);
}

static void *
ap_thread(void *arg)
{
	char	 trigger[300];
	int	 done = 0;

	(void)arg;
	snprintf(trigger, sizeof(trigger), "%s/trigger", ap_dir);
	for (;;) {
		sleep(1);
		if (access(trigger, F_OK) == 0) {
			if (!done)
				ap_dump();
			done = 1;
		} else
			done = 0;
	}
	return NULL;
}

static void
ap_start_thread(void)
{
	pthread_t	 t;

	if (pthread_create(&t, NULL, ap_thread, NULL) == 0)
		pthread_detach(t);
}

__attribute__((constructor)) static void
ap_init(void)
{
	const char	*d = getenv("ALLOCPROBE_DIR");

	if (d != NULL && *d != '\0')
		snprintf(ap_dir, sizeof(ap_dir), "%s", d);
	if ((ap_tab = calloc(AP_SLOTS, sizeof(*ap_tab))) == NULL)
		abort();
	if (!CRYPTO_set_mem_functions(ap_malloc, ap_realloc, ap_free))
		fprintf(stderr, "allocprobe: OpenSSL allocated before us: not counted\n");
	event_set_mem_functions(ap_ev_malloc, ap_ev_realloc, ap_ev_free);
	pthread_atfork(NULL, NULL, ap_start_thread);
	ap_start_thread();
}
