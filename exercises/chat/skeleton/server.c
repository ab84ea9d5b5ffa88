/*
 * Exercise chat: a chat room on epoll, in C (the room of labs/05-event-loop, PROTOCOL=chat; and
 * of antirez's smallchat).
 *
 * Every complete line a member sends (ended by \n) goes to every OTHER member as "NAME: line\n".
 * One thread serves the room with epoll, level-triggered. The lesson is the room's write path: a
 * member that never reads must not stall the others. A blocking write() to it waits, once its
 * socket's buffers are full, for as long as it does not read: the whole room with it.
 *
 * Build and check (from the repository root):
 *   make exercise EX=chat CMD=c        compiles this file (cc) and runs the checker's stages
 * By hand: PORT=30000 ./server, then `nc 127.0.0.1 30000` in three terminals and talk.
 *
 * The plumbing is done: the listening socket, the epoll loop, accepting members, their names,
 * cutting the bytes they send into lines. The lesson is TODOs 1 to 3.
 */

#define _GNU_SOURCE /* accept4() */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_BYTES 4096
/* Longest line a member may send (without its \n); a longer one cuts the member off. */
#define MAX_LINE 4096
/*
 * Most bytes queued for one member that is not reading (TODO 2): past it the member is cut off.
 * A simplification: a real server might drop that member's oldest lines instead.
 */
#define MAX_QUEUE_BYTES (1024 * 1024)
#define MAX_FDS 65536
#define MAX_EVENTS 64

struct member {
  int fd;
  char name[16];
  /* The line being received: bytes after the last \n. */
  char line[MAX_LINE];
  size_t line_length;
  /* TODO 2: what write() did not take yet: bytes queue[queue_start .. queue_start + queue_length). */
  char *queue;
  size_t queue_start, queue_length;
};

static struct member *members[MAX_FDS];
static int epfd;
static int named; /* members so far, for their names */

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

static void watch(int op, int fd, unsigned events) {
  struct epoll_event event;
  memset(&event, 0, sizeof event);
  event.events = events;
  event.data.fd = fd;
  if (epoll_ctl(epfd, op, fd, &event) < 0) die("epoll_ctl");
}

/*
 * The member leaves the room (its FIN, an error, or cut off).
 * TODO 3: close() its socket too (which also takes it out of epoll), and free its queue.
 */
static void leave(struct member *member) {
  members[member->fd] = NULL;
  free(member);
}

/* Writes all of `data`, however many calls it takes; -1 when the member has gone. */
static int write_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, data, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += written;
    length -= (size_t)written;
  }
  return 0;
}

/*
 * Sends `length` bytes to `member`. As given, it writes them all before returning: on a blocking
 * socket, write() waits while the member's buffers are full, so one member that never reads stops
 * the whole room.
 * TODO 2: never wait. Accept members with SOCK_NONBLOCK (in main); write() what the socket takes
 * now (none if -1 with EAGAIN) and queue the rest in member->queue (behind what is queued already:
 * then write nothing now), and ask epoll for EPOLLOUT too (watch(EPOLL_CTL_MOD, fd, EPOLLIN |
 * EPOLLOUT)): on_writable() sends the queue. A member whose queue would pass MAX_QUEUE_BYTES is
 * cut off (leave()). Returns -1 when the member has gone (or was cut off).
 */
static int deliver(struct member *member, const char *data, size_t length) {
  if (write_all(member->fd, data, length) < 0) {
    leave(member);
    return -1;
  }
  return 0;
}

/* TODO 2: the member's socket has room (EPOLLOUT): write the queue; once it is empty, ask for EPOLLIN alone. */
static void on_writable(struct member *member) {
  (void)member;
}

/*
 * A complete line from `from` (without its \n).
 * TODO 1: send "NAME: line\n" (NAME: from->name) to every other member: every members[fd] that is
 * not NULL and not `from`. A member that is cut off while you deliver leaves the table.
 */
static void on_line(struct member *from, const char *line, size_t length) {
  (void)from;
  (void)line;
  (void)length;
  (void)deliver;
}

/* The member is readable: one read() (level-triggered: epoll reports it again while bytes remain), cut into lines. */
static void on_readable(struct member *member) {
  char buffer[BUFFER_BYTES];
  ssize_t got = read(member->fd, buffer, sizeof buffer);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) {
    leave(member); /* 0: its FIN; -1: it is gone */
    return;
  }
  int fd = member->fd;
  for (ssize_t i = 0; i < got; i++) {
    if (buffer[i] == '\n') {
      size_t length = member->line_length;
      if (length > 0 && member->line[length - 1] == '\r') length--; /* nc -C and telnet send \r\n */
      member->line_length = 0;
      on_line(member, member->line, length);
      if (members[fd] != member) return; /* it left while its line was relayed */
    } else if (member->line_length == MAX_LINE) {
      leave(member); /* a line too long: cut off */
      return;
    } else {
      member->line[member->line_length++] = buffer[i];
    }
  }
}

int main(void) {
  int port = port_from_environment();
  signal(SIGPIPE, SIG_IGN);
  int listener = open_listener(port);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  watch(EPOLL_CTL_ADD, listener, EPOLLIN);
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

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
        for (;;) {
          /* Blocking sockets, for now (TODO 2: SOCK_NONBLOCK). */
          int accepted = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
          if (accepted < 0) break; /* EAGAIN: nobody else waits */
          struct member *member = accepted < MAX_FDS ? calloc(1, sizeof *member) : NULL;
          if (!member) {
            close(accepted);
            continue;
          }
          member->fd = accepted;
          snprintf(member->name, sizeof member->name, "user%d", ++named);
          members[accepted] = member;
          watch(EPOLL_CTL_ADD, accepted, EPOLLIN);
        }
        continue;
      }
      struct member *member = members[fd];
      if (!member) continue;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        leave(member);
        continue;
      }
      if (events[i].events & EPOLLOUT) on_writable(member);
      if (members[fd] == member && (events[i].events & EPOLLIN)) on_readable(member);
    }
  }
}
