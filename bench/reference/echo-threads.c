/*
 * The threads reference row: a minimal blocking echo server in C, one POSIX thread per client or
 * a prethreaded pool, for the benchmark only. It sits beside lab 08 as echo-epoll.c sits beside
 * lab 05: the same model with nothing of Node's, so a report can tell what a thread costs from
 * what a V8 isolate costs (lab 08's Workers are threads that each carry a whole isolate).
 *
 * Two variants, as lab 08 has:
 *   --threads per-connection (default): the main thread blocks in accept(); each client gets a
 *     new detached thread that owns its socket and echoes with blocking read/write until EOF.
 *   --threads N: N threads each block in accept() on the one listening socket; the kernel wakes
 *     exactly one of them per connection (no thundering herd for a blocking accept). Client N+1
 *     waits in the backlog until one of the first N leaves.
 *
 * The cost per connection is a thread: its stack (--stack-kib, 64 KiB here against glibc's 8 MiB
 * default reservation; only touched pages become memory) and its kernel task. Nothing else is
 * allocated per client besides one CHUNK-sized buffer on that stack.
 *
 * Simplifications a real server would not make: no idle timeouts, no connection cap besides the
 * fd and thread limits (a thread that cannot be created closes its client), no graceful shutdown
 * (SIGTERM ends the process and the kernel closes every socket).
 *
 * Usage: echo-threads [--host 127.0.0.1] [--port 0] [--backlog 511] [--threads per-connection|N]
 *                     [--stack-kib 64]
 * Prints "listening on HOST:PORT" once it listens, like the labs, so the harness launches it the
 * same way.
 *
 * A client's thread, in numbered steps:
 *   1. read() blocks until bytes arrive, the peer's FIN (0) or an error (-1).
 *   2. write() every byte back; it blocks while the peer's receive window is full, which stalls
 *      only this client's thread.
 *   3. On FIN or error: close the socket and let the thread end (or, prethreaded, accept again).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 16384 /* bytes read per read(2), on the thread's own stack */

static int listener;
static pthread_attr_t attr;

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* Steps 1 to 3 for one client: echo until EOF or an error, then close. */
static void serve(int fd) {
  char buf[CHUNK];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf); /* step 1 */
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t done = 0; done < n;) { /* step 2: a short write leaves a remainder */
      ssize_t w = send(fd, buf + done, (size_t)(n - done), MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) goto out;
      done += w;
    }
  }
out:
  close(fd); /* step 3 */
}

/* Blocks in accept() until a client arrives; -1 only for errors worth retrying. */
static int accept_one(void) {
  int fd = accept(listener, NULL, NULL);
  if (fd < 0) {
    if (errno == EINTR || errno == ECONNABORTED) return -1;
    if (errno == EMFILE || errno == ENFILE) { /* stays queued until a descriptor frees up */
      usleep(10000);
      return -1;
    }
    die("accept");
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as the labs do */
  return fd;
}

static void *per_connection(void *arg) {
  serve((int)(intptr_t)arg);
  return NULL;
}

static void *prethreaded(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept_one(); /* every pool thread blocks here; the kernel wakes one per client */
    if (fd >= 0) serve(fd);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, backlog = 511, pool = 0, stack_kib = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--backlog") == 0) backlog = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--threads") == 0)
      pool = strcmp(argv[i + 1], "per-connection") == 0 ? 0 : atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--stack-kib") == 0) stack_kib = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: %s [--host ADDR] [--port N] [--backlog N] [--threads per-connection|N] [--stack-kib N]\n", argv[0]);
      return 2;
    }
  }
  if (pool < 0 || stack_kib < 16) {
    fprintf(stderr, "--threads takes per-connection or a positive count; --stack-kib at least 16\n");
    return 2;
  }

  listener = socket(AF_INET, SOCK_STREAM, 0);
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

  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, (size_t)stack_kib * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

  if (pool > 0) {
    printf("listening on %s:%d (model: C reference, %d prethreaded threads blocking in accept; pid %d)\n", host,
           ntohs(addr.sin_port), pool, getpid());
  } else {
    printf("listening on %s:%d (model: C reference, one thread per connection; pid %d)\n", host,
           ntohs(addr.sin_port), getpid());
  }
  fflush(stdout);

  if (pool > 0) {
    for (int i = 0; i < pool; i++) {
      pthread_t t;
      if (pthread_create(&t, &attr, prethreaded, NULL) != 0) die("pthread_create");
    }
    for (;;) pause(); /* the main thread only waits; the pool does everything */
  }
  for (;;) {
    int fd = accept_one();
    if (fd < 0) continue;
    pthread_t t;
    int err = pthread_create(&t, &attr, per_connection, (void *)(intptr_t)fd);
    if (err != 0) { /* out of threads or memory: this client is closed, the next one tried */
      fprintf(stderr, "pthread_create: %s; client closed\n", strerror(err));
      close(fd);
    }
  }
}
