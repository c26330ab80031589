/*
 * pubload: POST /publish requests/s over keep-alive connections.
 *   pubload -p PORT -k KEY [-c conns] [-d seconds] [-C channel]
 * Each connection sends one request, waits for its whole answer, sends
 * the next; prints requests/s and the status counts.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXC	1024

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The bytes of one whole response at the start of buf, or 0. */
static size_t
whole(const char *buf, size_t len, int *status)
{
	const char	*e = memmem(buf, len, "\r\n\r\n", 4), *cl;
	size_t		 head, body;

	if (e == NULL)
		return 0;
	head = (size_t)(e - buf) + 4;
	cl = memmem(buf, head, "Content-Length: ", 16);
	body = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
	if (len < head + body)
		return 0;
	*status = atoi(buf + 9);
	return head + body;
}

int
main(int argc, char **argv)
{
	static char		 req[1024], buf[MAXC][8192];
	static size_t		 have[MAXC];
	struct pollfd		 pfd[MAXC];
	struct sockaddr_in	 sin;
	const char		*key = "", *chan = "apps:bench";
	char			 body[256];
	int			 port = 8888, nc = 32, i, ch, st, one = 1;
	long			 ok = 0, other = 0;
	double			 dur = 5, t0;
	size_t			 rlen, n;
	ssize_t			 r;

	while ((ch = getopt(argc, argv, "p:k:c:d:C:")) != -1)
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'k': key = optarg; break;
		case 'c': nc = atoi(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'C': chan = optarg; break;
		default: fprintf(stderr, "usage: pubload -p port -k key [-c conns] [-d s] [-C channel]\n"); return 2;
		}
	if (nc < 1 || nc > MAXC)
		return 2;
	snprintf(body, sizeof(body), "{\"channel\":\"%s\",\"data\":{\"n\":1}}", chan);
	rlen = (size_t)snprintf(req, sizeof(req), "POST /publish HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s", key, strlen(body), body);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	for (i = 0; i < nc; i++) {
		pfd[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(pfd[i].fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
			perror("connect");
			return 1;
		}
		setsockopt(pfd[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pfd[i].events = POLLIN;
		if (write(pfd[i].fd, req, rlen) != (ssize_t)rlen)
			return 1;
	}
	t0 = now();
	while (now() - t0 < dur) {
		if (poll(pfd, (nfds_t)nc, 100) <= 0)
			continue;
		for (i = 0; i < nc; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			if ((r = read(pfd[i].fd, buf[i] + have[i], sizeof(buf[i]) - have[i])) <= 0) {
				fprintf(stderr, "connection %d ended\n", i);
				return 1;
			}
			have[i] += (size_t)r;
			while ((n = whole(buf[i], have[i], &st)) > 0) {
				st == 200 ? ok++ : other++;
				memmove(buf[i], buf[i] + n, have[i] - n);
				have[i] -= n;
				if (write(pfd[i].fd, req, rlen) != (ssize_t)rlen)
					return 1;
			}
		}
	}
	dur = now() - t0;
	printf("connections %d  seconds %.1f  200: %ld  other: %ld  requests/s %.0f\n",
	    nc, dur, ok, other, (double)(ok + other) / dur);
	return 0;
}
