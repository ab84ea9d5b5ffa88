/*
 * Exercise 01: a serial echo server in C (the model of labs/01-serial).
 *
 * One client at a time: accept() a connection, echo everything it sends until it closes, close
 * it, accept() the next. While one client is served, the next waits in the kernel's accept queue.
 *
 * Build and check (from the repository root):
 *   make exercise EX=01 CMD=c          compiles this file (cc) and runs the checker's stages
 *   cc -o server exercises/01-serial/work/server.c && make exercise EX=01 CMD=./server
 * By hand: PORT=30000 ./server, then `nc 127.0.0.1 30000` in two more terminals.
 *
 * The plumbing is done: the port from $PORT, the socket, the address, error messages. The lesson
 * is left to you, as TODOs 1 to 6; the checker's failures name the TODO to look at.
 */

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One read's worth; a client may send more in a message, which then takes several reads. */
#define BUFFER_BYTES 65536

/* Prints what failed and why (errno), and exits: for errors the server cannot go on after. */
static void die(const char *what) {
  perror(what);
  exit(1);
}

/* The port the checker (or you) chose, from the environment: PORT=30000 ./server. */
static int port_from_environment(void) {
  const char *text = getenv("PORT");
  int port = text ? atoi(text) : 0;
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "set PORT to the port to listen on, e.g. PORT=30000 ./server\n");
    exit(2);
  }
  return port;
}

/*
 * Writes all `length` bytes of `data` to `fd`. Returns 0, or -1 when the client has gone (EPIPE,
 * ECONNRESET). TODO 4 (with serve below): write() may take fewer bytes than asked (a short write),
 * and may be interrupted by a signal (-1 with errno EINTR, nothing written): loop until all is written.
 */
static int write_all(int fd, const char *data, size_t length) {
  (void)fd;
  (void)data;
  (void)length;
  return 0;
}

/*
 * Serves one client until it closes its side. TODO 4: read() what the client sends and write_all()
 * it back; again, until read() returns 0 (the client's FIN: it has nothing more to say). read()
 * returning -1 with EINTR means a signal interrupted it: read again. Any other -1: the client is
 * gone (a reset): stop.
 */
static void serve(int client) {
  static char buffer[BUFFER_BYTES];
  (void)client;
  (void)buffer;
}

int main(void) {
  int port = port_from_environment();
  /* A client that leaves while we write to it must not kill the server with SIGPIPE: write() then says EPIPE. */
  signal(SIGPIPE, SIG_IGN);

  /*
   * TODO 6: SIGTERM (and Ctrl-C's SIGINT) must end the server. Their default action does; if you
   * install a handler instead (to print a line, or close cleanly), install it with sigaction()
   * without SA_RESTART, so a blocked accept() or read() returns -1 with EINTR and your loop can end.
   */

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");

  /*
   * TODO 1: setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, ...) with the value 1, before bind().
   * Without it, a restart fails with "Address already in use" for about a minute after the server
   * closed a connection first (its end waits in TIME_WAIT).
   */

  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1: an echo server is not for the world */

  /*
   * TODO 2: bind() the listener to `address`, then listen() with a backlog (128 is plenty). Then
   * say so: printf("listening on 127.0.0.1:%d\n", port) and fflush(stdout) (for you: the checker
   * looks at the socket itself).
   */

  /*
   * TODO 3: the loop. accept() the next client (-1 with EINTR: a signal; try again, or end if it
   * was SIGTERM), serve() it, and
   * TODO 5: close() its socket when serve() returns, then accept() the next.
   */
  (void)listener;
  (void)serve;
  (void)write_all;
  return 0;
}
