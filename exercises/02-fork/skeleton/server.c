/*
 * Exercise 02: a process per connection in C (the model of labs/02-process-per-connection).
 *
 * The parent accepts; for each client it fork()s a child that serves that client alone and exits.
 * The parent goes straight back to accept(), so no client waits for another: the kernel runs the
 * children side by side. Two things are easy to forget: the parent's copy of each client's socket
 * (close it, or descriptors pile up and clients never see the end of their connection), and the
 * children that have exited (wait for them, or each stays a zombie in the process table).
 *
 * Build and check (from the repository root):
 *   make exercise EX=02 CMD=c          compiles this file (cc) and runs the checker's stages
 * By hand: PORT=30000 ./server; `nc 127.0.0.1 30000` in two terminals; `ps --ppid PID -o pid,stat`
 * shows the children (Z: a zombie).
 *
 * The plumbing is done: the listening socket and serve(), the echo loop of exercise 01. The lesson
 * is TODOs 1 to 3.
 */

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUFFER_BYTES 65536

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

/* Writes all of `data`, however many calls it takes; -1 when the client has gone. */
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

/* Echoes what the client sends until it closes its side (exercise 01's loop). */
static void serve(int client) {
  static char buffer[BUFFER_BYTES];
  for (;;) {
    ssize_t got = read(client, buffer, sizeof buffer);
    if (got == 0) return;
    if (got < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (write_all(client, buffer, (size_t)got) < 0) return;
  }
}

/* The listening socket on 127.0.0.1:port, with SO_REUSEADDR (exercise 01). */
static int open_listener(int port) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  int one = 1;
  if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt");
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0) die("bind");
  if (listen(listener, 128) < 0) die("listen");
  return listener;
}

/*
 * TODO 3: reap the children. A child that has exited stays a zombie (state Z in `ps`) until its
 * parent waits for it. Write a SIGCHLD handler that calls waitpid(-1, NULL, WNOHANG) until it
 * returns 0 or -1 (one signal may stand for several children), and install it in main() with
 * sigaction() and SA_RESTART, so that an accept() it interrupts is restarted rather than failing
 * with EINTR. (Save and restore errno in the handler: waitpid() may change it.)
 */

int main(void) {
  int port = port_from_environment();
  signal(SIGPIPE, SIG_IGN);
  int listener = open_listener(port);
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

  for (;;) {
    int client = accept(listener, NULL, NULL);
    if (client < 0) {
      if (errno == EINTR) continue;
      die("accept");
    }
    /*
     * TODO 1: fork(). In the child (fork() returned 0): close() the listening socket (the child
     * never accepts), serve() the client, and _exit(0). In the parent: go on to TODO 2 and back
     * to accept(). (fork() returning -1: close the client and go on.)
     * TODO 2: the parent close()s its copy of `client`: the child has its own. Until both copies
     * are closed the connection stays open, and the parent runs out of descriptors.
     */
    serve(client); /* for now: serial, as in exercise 01 */
    close(client);
  }
}
