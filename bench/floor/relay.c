/*
 * wsfloor: the least a user-space TCP relay can do per message, for
 * bench/RESULTS.md. It is not a WebSocket proxy: it relays bytes between
 * each client and a connection it opens to one backend, with nothing else
 * (no HTTP, no frames, no timers, no limits). What it costs per relayed
 * message in the benchmark's scenarios is the kernel's share of any proxy
 * built on epoll and sockets on this host: the floor under wsgate, NGINX
 * and HAProxy. It is written in C, not Go, so that no runtime stands
 * between it and the system calls.
 *
 * Its event model is NGINX's: one thread, every socket registered once
 * for EPOLLIN|EPOLLOUT|EPOLLRDHUP edge-triggered, a read until a short
 * read, a write straight to the other socket; bytes the other socket does
 * not take wait in a buffer of the connection's own, and the reading side
 * pauses until they are gone.
 *
 *   wsfloor LISTEN_HOST:PORT BACKEND_HOST:PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define MAX_EVENTS 256

struct conn {
	int fd;
	int closed;
	int paused;          /* input left unread while the peer is blocked */
	struct conn *peer;
	char *pend;          /* bytes the socket did not take */
	size_t pend_off, pend_len;
	struct conn *next_dead;
};

static int epfd, lfd;
static char scratch[CHUNK];
static struct conn *dead;
static struct conn listen_mark;

static int parse_addr(const char *s, struct sockaddr_in *sa) {
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon - s >= (long)sizeof(host)) return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static struct conn *watch(int fd) {
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
	int one = 1;
	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("epoll_ctl");
		exit(1);
	}
	return c;
}

static void kill_conn(struct conn *c) {
	if (c->closed) return;
	c->closed = 1;
	close(c->fd);
	c->next_dead = dead;
	dead = c;
}

static void end_session(struct conn *c) {
	kill_conn(c);
	if (c->peer) kill_conn(c->peer);
}

/* send_to writes b to c, keeping what it does not take. */
static int send_to(struct conn *c, const char *b, size_t n) {
	ssize_t k = 0;
	if (c->pend_len == 0) {
		k = send(c->fd, b, n, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno != EAGAIN) return -1;
			k = 0;
		}
		if ((size_t)k == n) return 0;
	}
	c->pend = realloc(c->pend, c->pend_len + n - k);
	memcpy(c->pend + c->pend_len, b + k, n - k);
	c->pend_len += n - k;
	return 0;
}

/* on_readable reads c until a short read; after a hang-up (hup), until the
 * end, since no edge will report the FIN behind the data. */
static void on_readable(struct conn *c, int hup) {
	for (;;) {
		if (c->closed) return;
		if (c->peer->pend_len > c->peer->pend_off) {
			c->paused = 1;
			return;
		}
		ssize_t n = recv(c->fd, scratch, CHUNK, 0);
		if (n > 0) {
			if (send_to(c->peer, scratch, n) < 0) {
				end_session(c);
				return;
			}
			if (n < CHUNK && !hup) return; /* drained: the next input is a new edge */
			continue;
		}
		if (n < 0 && errno == EAGAIN) return;
		end_session(c); /* EOF or error */
		return;
	}
}

static void on_writable(struct conn *c) {
	while (c->pend_off < c->pend_len) {
		ssize_t k = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EAGAIN) return;
			end_session(c);
			return;
		}
		c->pend_off += k;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_off = c->pend_len = 0;
	if (c->peer->paused) {
		c->peer->paused = 0;
		on_readable(c->peer, 1);
	}
}

static void on_accept(const struct sockaddr_in *backend) {
	int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) return;
	int bfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (bfd < 0) {
		close(cfd);
		return;
	}
	if (connect(bfd, (const struct sockaddr *)backend, sizeof(*backend)) < 0 && errno != EINPROGRESS) {
		close(cfd);
		close(bfd);
		return;
	}
	struct conn *c = watch(cfd), *b = watch(bfd);
	c->peer = b;
	b->peer = c;
}

int main(int argc, char **argv) {
	struct sockaddr_in laddr, baddr;
	if (argc != 3 || parse_addr(argv[1], &laddr) < 0 || parse_addr(argv[2], &baddr) < 0) {
		fprintf(stderr, "usage: wsfloor LISTEN_HOST:PORT BACKEND_HOST:PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) < 0 || listen(lfd, 4096) < 0) {
		perror("listen");
		return 1;
	}
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_mark};
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
	fprintf(stderr, "wsfloor: relaying %s to %s\n", argv[1], argv[2]);

	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR) continue;
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			uint32_t e = events[i].events;
			if (c == &listen_mark) {
				on_accept(&baddr);
				continue;
			}
			if (c->closed) continue;
			if (e & EPOLLOUT) on_writable(c);
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
		}
		while (dead) {
			struct conn *c = dead;
			dead = c->next_dead;
			free(c->pend);
			free(c);
		}
	}
}
