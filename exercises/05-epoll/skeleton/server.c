/*
 * Exercise 05: an event loop by hand with epoll, in C (the model of labs/05-event-loop).
 *
 * One thread serves every client. Every socket is non-blocking; epoll_wait() says which are ready,
 * and the loop does what each ready one allows (accept, read, write) and asks again. Nothing ever
 * waits on one client, so a thousand idle clients cost nothing while one busy one is answered.
 *
 * Two halves, in order (the checker's stages follow them):
 *   1. level-triggered (TODOs 1 to 3): epoll reports a socket for as long as it is readable;
 *   2. edge-triggered (TODOs 4 and 5): EPOLLET reports it once per arrival of bytes, so the reader
 *      must drain it until EAGAIN; and a write() that takes only part of the bytes (or says EAGAIN)
 *      leaves a remainder to keep and send when EPOLLOUT says there is room.
 *
 * Build and check (from the repository root):
 *   make exercise EX=05 CMD=c          compiles this file (cc) and runs the checker's stages
 * By hand: PORT=30000 ./server; `strace -e trace=epoll_wait,read,write -p PID` shows the loop.
 *
 * The plumbing is done: the non-blocking listening socket, the epoll instance, the table of
 * clients with a place for each one's unsent bytes. The lesson is TODOs 1 to 5.
 */

#define _GNU_SOURCE /* accept4() */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * One read's worth. Small on purpose: one client's message often takes several reads, which is
 * exactly what an edge-triggered loop gets wrong when it reads only once.
 */
#define BUFFER_BYTES 4096
/* Descriptors the client table has room for (the checker opens about a thousand at once). */
#define MAX_FDS 65536
#define MAX_EVENTS 64

/* One client: its socket, and the bytes it is owed that write() did not take yet. */
struct client {
  int fd;
  char pending[BUFFER_BYTES];
  size_t pending_start;
  size_t pending_length;
};

/* The clients by descriptor number; NULL where there is none. */
static struct client *clients[MAX_FDS];
static int epfd;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int port_from_environment(void) {
  const char *text = getenv("PORT");
  int port = text ? atoi(text) : 0;
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "set PORT to the port to listen on, e.g. PORT=30000 ./server\n");
    exit(2);
  }
  return port;
}

/* A non-blocking listening socket on 127.0.0.1:port, with SO_REUSEADDR. */
static int open_listener(int port) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (listener < 0) die("socket");
  int one = 1;
  if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt");
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0) die("bind");
  if (listen(listener, 4096) < 0) die("listen");
  return listener;
}

/* Tells epoll what to report for `fd` (EPOLL_CTL_ADD or EPOLL_CTL_MOD); the event carries the fd. */
static void watch(int op, int fd, unsigned events) {
  struct epoll_event event;
  memset(&event, 0, sizeof event);
  event.events = events;
  event.data.fd = fd;
  if (epoll_ctl(epfd, op, fd, &event) < 0) die("epoll_ctl");
}

/* A new entry in the table for a client just accepted; NULL (and the client closed) if there is no room. */
static struct client *new_client(int fd) {
  struct client *client = fd < MAX_FDS ? calloc(1, sizeof *client) : NULL;
  if (!client) {
    close(fd);
    return NULL;
  }
  client->fd = fd;
  clients[fd] = client;
  return client;
}

/*
 * The client is done (its FIN, or an error): out of the table.
 * TODO 3 (and exercise 01's lesson): close() its socket too. Closing the last descriptor of a
 * socket also takes it out of epoll.
 */
static void drop_client(struct client *client) {
  clients[client->fd] = NULL;
  free(client);
}

/*
 * Sends `length` bytes of `data` to the client. TODO 5: a non-blocking write() takes what fits
 * in the socket's send buffer and returns that count (or -1 with EAGAIN when none fits). Keep the
 * remainder in client->pending and ask epoll for EPOLLOUT too (watch(EPOLL_CTL_MOD, ...)): write
 * it in on_writable(). Returns -1 when the client has gone (any other error).
 */
static int send_or_keep(struct client *client, const char *data, size_t length) {
  ssize_t written = write(client->fd, data, length);
  if (written < 0) return -1;
  return 0;
}

/*
 * The client is readable. Level-triggered (the first half): one read() per wake-up is enough,
 * since epoll reports the socket again while bytes remain. read() returning 0: the client has
 * gone (drop_client). -1 with EAGAIN: nothing more to read now.
 * TODO 3: read() and send_or_keep() what came.
 * TODO 4: edge-triggered: read until read() says EAGAIN (the drain loop): bytes left behind are
 * never reported again. And with TODO 5: while bytes are pending, read nothing more (the client
 * is not reading its echo); on_writable() drains the socket once they are sent.
 */
static void on_readable(struct client *client) {
  (void)client;
}

/*
 * TODO 5: the socket has room again (EPOLLOUT). write() the pending bytes; once none is left, ask
 * for EPOLLIN alone again (and EPOLLET) and read what arrived meanwhile (on_readable): in
 * edge-triggered mode nothing else will report it.
 */
static void on_writable(struct client *client) {
  (void)client;
}

int main(void) {
  int port = port_from_environment();
  signal(SIGPIPE, SIG_IGN);
  int listener = open_listener(port);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

  /* TODO 1: register the listening socket for EPOLLIN (watch(EPOLL_CTL_ADD, ...)). */

  /* Used once the TODOs are done; until then this line keeps cc from saying "defined but not used". */
  (void)watch, (void)new_client, (void)send_or_keep;

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int ready = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < ready; i++) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        /*
         * TODO 2: accept4(listener, NULL, NULL, SOCK_NONBLOCK) until it says EAGAIN (several
         * clients may be waiting), new_client() each, and register it for EPOLLIN
         * (TODO 4: EPOLLIN | EPOLLET).
         */
        continue;
      }
      struct client *client = clients[fd];
      if (!client) continue;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        drop_client(client);
        continue;
      }
      if (events[i].events & EPOLLOUT) on_writable(client);
      if (clients[fd] == client && (events[i].events & EPOLLIN)) on_readable(client);
    }
  }
}
