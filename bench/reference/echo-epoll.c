/*
 * The reference row: a minimal epoll echo server in C, for the benchmark only.
 *
 * It shows how far each Node model is from what the kernel allows on this machine: one thread,
 * one epoll loop, non-blocking sockets, no allocation per message and no protocol parsing. It
 * speaks only the echo protocol (RFC 862), so the HTTP scenarios have no reference row.
 *
 * Simplifications a real server would not make: no idle timeouts, no connection cap besides the
 * fd limit, no graceful shutdown (SIGTERM ends the process and the kernel closes every socket),
 * and one fixed buffer per connection for replies the peer has not read yet.
 *
 * Usage: echo-epoll [--host 127.0.0.1] [--port 0] [--backlog 511]
 * Prints "listening on HOST:PORT" once it listens, like the labs, so the harness launches it the
 * same way.
 *
 * The loop, in numbered steps:
 *   1. epoll_wait() until some socket is ready.
 *   2. The listening socket: accept every pending connection, make it non-blocking, register it.
 *   3. A readable client: read a chunk and write it straight back. What the kernel does not take
 *      now stays in the client's buffer; the client stops being read until the buffer is gone.
 *   4. A writable client: write what its buffer holds; once empty, read it again.
 *   5. End of stream or an error: close (after the buffered reply is written, on a clean FIN).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 65536 /* bytes read per read(2): the size of the largest reply kept back */
#define MAX_EVENTS 256

/* One client: bytes read but not yet written back, and whether the peer has sent its FIN. */
struct client {
  char *pending;
  size_t pending_len;
  int peer_done;
};

static struct client *clients; /* indexed by fd: fds are small, dense integers */
static int epfd;

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* Registers fd for `events`, or changes what it is registered for. */
static void watch(int fd, unsigned events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) < 0) die("epoll_ctl");
}

/* Forgets a client and closes its socket (closing also removes it from epoll). */
static void drop(int fd) {
  free(clients[fd].pending);
  memset(&clients[fd], 0, sizeof clients[fd]);
  close(fd);
}

/* Writes as much of buf as the kernel takes; keeps the rest in the client's buffer. -1: peer gone. */
static int send_or_keep(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL); /* a reset peer gives EPIPE, not SIGPIPE */
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  struct client *c = &clients[fd];
  if (len > 0) {
    if (!c->pending) c->pending = malloc(CHUNK);
    if (!c->pending) die("malloc");
    memmove(c->pending, buf, len);
  }
  c->pending_len = len;
  return 0;
}

/* Step 2: accept everything the kernel has queued. */
static void accept_all(int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE) return; /* stays queued until an fd frees up */
      die("accept4");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as the labs do */
    watch(fd, EPOLLIN, EPOLL_CTL_ADD);
  }
}

/* Step 3: echo what arrived; stop reading while a reply is kept back. */
static void on_readable(int fd) {
  static char buf[CHUNK];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { /* FIN (0) or an error (-1): nothing more will be read */
    if (n == 0 && clients[fd].pending_len > 0) {
      clients[fd].peer_done = 1; /* step 4 closes once the reply is out */
      return;
    }
    drop(fd);
    return;
  }
  if (send_or_keep(fd, buf, (size_t)n) < 0) drop(fd);
  else if (clients[fd].pending_len > 0) watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
}

/* Step 4: flush the kept-back reply, then read again (or close after the peer's FIN). */
static void on_writable(int fd) {
  struct client *c = &clients[fd];
  if (send_or_keep(fd, c->pending, c->pending_len) < 0) drop(fd);
  else if (c->pending_len > 0) return; /* still more than the kernel takes: wait again */
  else if (c->peer_done) drop(fd);
  else watch(fd, EPOLLIN, EPOLL_CTL_MOD);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, backlog = 511;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--backlog") == 0) backlog = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: %s [--host ADDR] [--port N] [--backlog N]\n", argv[0]);
      return 2;
    }
  }

  struct rlimit fds;
  if (getrlimit(RLIMIT_NOFILE, &fds) < 0) die("getrlimit");
  clients = calloc(fds.rlim_cur, sizeof *clients);
  if (!clients) die("calloc");

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (listener < 0) die("socket");
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "--host must be an IPv4 address, got %s\n", host);
    return 2;
  }
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(listener, backlog) < 0) die("listen");
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr *)&addr, &len);

  epfd = epoll_create1(0);
  if (epfd < 0) die("epoll_create1");
  watch(listener, EPOLLIN, EPOLL_CTL_ADD);
  printf("listening on %s:%d (model: C reference, one thread, epoll; pid %d)\n", host, ntohs(addr.sin_port), getpid());
  fflush(stdout);

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int ready = epoll_wait(epfd, events, MAX_EVENTS, -1); /* step 1 */
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) die("epoll_wait");
    for (int i = 0; i < ready; i++) {
      int fd = events[i].data.fd;
      if (fd == listener) accept_all(listener);
      /* A client with a kept-back reply is only ever written to; an error shows up there. */
      else if (clients[fd].pending_len > 0) on_writable(fd);
      else on_readable(fd); /* EPOLLIN, EPOLLHUP and EPOLLERR all surface through read(2) */
    }
  }
}
