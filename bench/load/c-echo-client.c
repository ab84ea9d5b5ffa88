/*
 * A raw-echo load generator in C, so that the client costs less than the Node servers it
 * measures. The TypeScript client it replaced spent about twice the CPU per round trip of the C
 * reference server, so against a fast server it measured its own ceiling. This one
 * runs the same closed loop with one thread, one edge-triggered epoll loop and no allocation per
 * message.
 *
 * What it costs, and its limit: per round trip it makes the same two system calls as an echo
 * server (one send, one read), and on loopback each send also runs the peer socket's receive
 * path on the sender's core. So against the C reference (bench/reference/echo-epoll.c) client
 * and server spend the same CPU per round trip and saturate together: that row is bounded by
 * this client as much as by the server. Against the Node servers (about twice the reference's
 * CPU per round trip) the server's core fills first. (From one run on a shared 2-core machine
 * at 100 connections × 64 B: 3.4 µs per round trip here, 3.4 µs in the C reference, 5.7-6.1 in
 * plain Node, 6.5 in lab 04, 6.8-7.4 in echo.ts.)
 *
 * What it does (a closed loop, like echo.ts):
 *   N connections; each sends a message of S bytes and waits until the whole echo is back before
 *   it sends the next (--pipeline D keeps D messages in flight instead of one). Every echoed byte
 *   is compared with the byte sent at that place of the connection's stream.
 *
 * A run, in numbered steps:
 *   1. Connect (non-blocking), at most OPEN_WINDOW connections at a time that have not yet been
 *      answered once (so a hundred thousand handshakes do not all land in the server's accept
 *      queue at once); each starts its loop as soon as it is connected, and the next one opens
 *      as one is answered or fails.
 *   2. Warm up: round trips run but are not counted, for at least --warmup seconds, and on until
 *      every connection has been answered once, or some have and no new one has been for
 *      --warmup-stall seconds (a forking server starts its children in this time; a serial server
 *      never answers most of them), but never past --warmup-max seconds. The report says which
 *      of the three ended it (warmupEnd), as echo.ts's warm-up does.
 *   3. Measure for --seconds: only round trips that complete inside the window count, for the
 *      rate, the latency histogram and the per-connection counts; our own CPU (getrusage) is
 *      read as the window opens and closes.
 *   4. Drain: send nothing new; give outstanding replies --drain seconds to come back, then
 *      EXTRA_GRACE_NS more for a byte too many. A reply still short then is a missing byte.
 *   5. Print one JSON object on stdout and exit.
 *
 * What is checked (a connection with an error is closed at once; the others carry on):
 *   corrupt  a byte differs from the one sent at that offset (reported with message and offset);
 *   extra    a byte arrives while no message is outstanding;
 *   missing  a reply stops short (step 4), or the server closes with a reply owed;
 *   connect  the connection could not be made (refused, unreachable, not done by the end);
 *   socket   the connection failed (reset) or the server closed it with nothing owed.
 * A connection never answered at all when the run ends is counted in neverAnswered, not as an
 * error: a serial server leaves it in its accept queue, which is the model, not a fault.
 *
 * The bytes: message `seq` of connection `c` is the same as bench/load/payload.ts builds: c and
 * seq as big-endian 32-bit integers (cut short below 8 bytes), then a per-connection pattern
 * starting at offset seq % 251. A byte echoed to the wrong connection, repeated, dropped,
 * reordered or changed never matches the byte expected next.
 *
 * Latency: from the moment a message is handed to send() to the moment its last echoed byte is
 * read, in nanoseconds, into a log-linear histogram (below). Reported in µs with HdrHistogram's
 * semantics: the value at percentile p is the highest value of the bucket holding the sample of
 * rank ceil(p/100 * count); max and min are exact.
 *
 * Holding instead of measuring (--hold, the idle scenario's idle connections): step 1, then each
 * connection sends one message, checks its echo and sends nothing more. Once every connection has
 * been answered (or the warm-up rules above end the opening), the report (below, "mode":"hold")
 * is printed and the connections are held, idle, until stdin closes (the caller is done, or
 * died); then every connection is closed with a reset (SO_LINGER 0: no TIME_WAIT left behind to
 * use up ports), and the process exits.
 *
 * Source addresses (--sources K): a client's ephemeral ports are per source address (about
 * 28,000 in the usual 32768-60999 range), so K > 0 binds connection i to 127.0.0.(2 + i % K)
 * before it connects, with IP_BIND_ADDRESS_NO_PORT so the port is picked at connect time by the
 * whole 4-tuple. Loopback only: the whole of 127.0.0.0/8 is local on Linux, so these addresses
 * need no set-up; --host must be in 127.0.0.0/8 too.
 *
 * Usage:
 *   c-echo-client --port N [--host 127.0.0.1] [--connections 10] [--size 64] [--pipeline 1]
 *                 [--warmup 1] [--warmup-max W] [--warmup-stall 1] [--seconds 5] [--drain 1]
 *                 [--round-trips 0] [--sources 0] [--hold]
 * --warmup-max defaults to --warmup: a warm-up of exactly that long, whoever is answered.
 * --round-trips N ends each connection's part of the window after N round trips (0: no limit),
 * and the window ends once every live connection has done its N: tests use it for exact counts.
 * Bad usage: one line on stderr, exit status 2. Exit status 0: the run finished without errors;
 * 1: it finished and found errors (the JSON says which); 3: it could not run (no epoll, no fds).
 * Progress lines on stderr: "c-echo-client: window open" and "c-echo-client: window closed"
 * mark the measured window, so a caller can sample the server's CPU over exactly it.
 *
 * Output (stdout, one line, version 3):
 * {
 *   "tool": "c-echo-client", "version": 3, "mode": "run",
 *   "host": string, "port": int, "connections": int, "size": int, "pipeline": int,
 *   "sources": int,                   source addresses the connections were spread over (0: none bound)
 *   "opened": int,                    connections whose connect was started (all, unless the run
 *                                     ended while OPEN_WINDOW were still unanswered)
 *   "connected": int,                 connections that were established
 *   "warmupS": number, "windowS": number,   least warm-up asked for; window as measured (wall clock)
 *   "warmupMaxS": number, "warmupTookS": number,   the warm-up's bound; how long it took
 *   "warmupEnd": "answered" | "stalled" | "bound" | "failed",   what ended it: every connection
 *                                     answered once; no new one for --warmup-stall; the bound;
 *                                     every connection failed
 *   "answeredInWarmup": int,          connections answered at least once before the window
 *   "warmupRoundTrips": int,          round trips completed in the warm-up (all connections)
 *   "roundTrips": int, "roundTripsPerSec": number,   completed inside the window
 *   "latencyUs": { "count", "min", "mean", "p50", "p90", "p99", "p999", "max": number,
 *                  "relativeError": number },   bound on (reported-true)/true (reported >= true)
 *   "perConnection": [int, ...],      round trips per connection inside the window, by index
 *   "fewest": int, "most": int,       min and max of perConnection
 *   "neverAnswered": int,             connections that never received a byte
 *   "shortReads": int,                reads inside the window after which a reply was still incomplete
 *   "shortWrites": int,               sends inside the window the kernel took only part of
 *   "cpu": { "userS": number, "sysS": number, "fraction": number },
 *                                     this process's CPU over the window; fraction of one core
 *   "errors": { "connect", "socket", "corrupt", "extra", "missing", "total": int },   whole run
 *   "firstErrors": [ { "kind": string, "connection": int, "message": int, "offset": int,
 *                      "detail": string }, ... ]   the first MAX_REPORTED_ERRORS, in order;
 *                                     message and offset are -1 where they do not apply
 * }
 * With --hold, as the holding starts (fields as above, over the opening):
 * { "tool": "c-echo-client", "version": 3, "mode": "hold", "host", "port", "connections", "size",
 *   "sources", "opened", "connected", "answered": int (connections whose one echo came back whole),
 *   "openS": number (from the first connect to the end of the opening), "openEnd": as warmupEnd,
 *   "errors": {...}, "firstErrors": [...] }
 *
 * Simplifications: IPv4 only; one thread (it is meant to be pinned to its own core); a
 * connection that fails is not reopened.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROTATIONS 251            /* offsets the pattern rotates through: a prime, as payload.ts */
#define READ_CHUNK 65536         /* bytes per read(2): several replies' worth at a time */
#define MAX_EVENTS 256
#define MAX_CONNECTIONS 1000000  /* the idle scenario's largest level is 100,000; fs.nr_open is about 1M */
#define OPEN_WINDOW 500          /* connections opened and not yet answered at once: under a listen backlog of 511 */
#define MAX_SOURCES 253          /* 127.0.0.2 .. 127.0.0.254 */
#define MAX_SIZE (16 << 20)      /* 16 MiB: bounds the two buffers each connection holds */
#define MAX_PIPELINE 64
#define MAX_REPORTED_ERRORS 16   /* the first few say what went wrong; the counts say how often */
#define EXTRA_GRACE_NS 100000000 /* 100 ms after the last reply: ample for a trailing byte on loopback */
#define NS 1000000000LL

/* ---- The latency histogram ---------------------------------------------------------------
 * Log-linear, like HdrHistogram: values below 2^SUB_BITS ns are kept exactly; above, each power
 * of two is split into 2^(SUB_BITS-1) equal buckets, so a bucket's width is at most 1/128 of its
 * lowest value: a reported value is within 0.78% above the true one. 64-bit ns cover any run. */

#define SUB_BITS 8
#define SUB_COUNT (1 << SUB_BITS)
#define HALF_COUNT (SUB_COUNT / 2)
#define BUCKETS ((64 - SUB_BITS + 2) * HALF_COUNT) /* one past the index of 2^64 - 1 */

static uint64_t histogram[BUCKETS];
static uint64_t hist_count, hist_min, hist_max;
static double hist_sum;

/* Bucket index: the value's top SUB_BITS bits, placed by its power of two. */
static int bucket_of(uint64_t v) {
  if (v < SUB_COUNT) return (int)v;
  int shift = 63 - __builtin_clzll(v) - (SUB_BITS - 1); /* keeps the top SUB_BITS bits */
  return shift * HALF_COUNT + (int)(v >> shift); /* v >> shift is in [HALF_COUNT, SUB_COUNT) */
}

/* The highest value a bucket holds (HdrHistogram's highestEquivalentValue). */
static uint64_t bucket_top(int index) {
  if (index < SUB_COUNT) return (uint64_t)index;
  int shift = index / HALF_COUNT - 1;
  uint64_t sub = (uint64_t)(index - shift * HALF_COUNT);
  return ((sub + 1) << shift) - 1;
}

static void record(uint64_t ns) {
  histogram[bucket_of(ns)]++;
  if (hist_count == 0 || ns < hist_min) hist_min = ns;
  if (ns > hist_max) hist_max = ns;
  hist_count++;
  hist_sum += (double)ns;
}

/* Value at percentile p, in ns: the top of the bucket holding the sample of rank ceil(p% of n). */
static uint64_t percentile(double p) {
  if (hist_count == 0) return 0;
  double exact = p / 100.0 * (double)hist_count;
  uint64_t rank = (uint64_t)exact;
  if ((double)rank < exact || rank < 1) rank++; /* ceil, without libm */
  uint64_t seen = 0;
  for (int i = 0; i < BUCKETS; i++) {
    seen += histogram[i];
    if (seen >= rank) return bucket_top(i) < hist_max ? bucket_top(i) : hist_max;
  }
  return hist_max;
}

/* ---- Connections -------------------------------------------------------------------------- */

enum state { UNOPENED, CONNECTING, OPEN, CLOSED }; /* UNOPENED is 0: calloc'd connections start there */

struct conn {
  int fd;
  enum state state;
  unsigned char *pattern; /* size + ROTATIONS bytes, prepared once */
  unsigned char *out;     /* the message being sent */
  unsigned char *expect;  /* the message whose echo is being read */
  uint32_t send_seq;      /* next message to start sending */
  size_t send_off;        /* bytes of message send_seq already sent (0: not started) */
  uint32_t recv_seq;      /* message whose echo is being read */
  size_t recv_off;        /* bytes of it already read and checked */
  uint64_t sent_at[MAX_PIPELINE]; /* when each in-flight message was handed to send() */
  uint64_t answered_bytes; /* ever received, to tell "never answered" from "stopped short" */
  uint64_t trips;          /* round trips ever completed (warm-up, window and drain) */
  uint64_t window_trips;
};

static struct conn *conns;
static int epfd;
static int nconns, size, pipeline = 1;
static int alive_count; /* connections not yet closed by an error */
static long round_trip_limit;

enum phase { WARMUP, WINDOW, DRAIN, DONE };
static enum phase phase = WARMUP;
static int64_t window_start, window_end; /* ns, CLOCK_MONOTONIC; window_end fixed when it closes */
static int64_t last_first_answer;  /* when a connection last completed its first round trip */
static int answered_conns;         /* connections with at least one round trip */
static int next_to_open;           /* connections [0, next_to_open) have been opened */
static int unanswered_open;        /* opened, still live, not yet answered once: at most OPEN_WINDOW */
static int hold;                   /* --hold: one round trip per connection, then idle until stdin closes */
static int nsources;               /* --sources */
static struct sockaddr_in server_addr;
static uint64_t warmup_trips;      /* round trips completed before the window opened */
static uint64_t short_reads, short_writes;

static struct { uint64_t connect, socket, corrupt, extra, missing; } errors;
static struct { const char *kind; int conn; long message; long offset; char detail[160]; } reported[MAX_REPORTED_ERRORS];
static int nreported;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void usage(const char *problem) {
  fprintf(stderr, "c-echo-client: %s (usage: c-echo-client --port N [--host ADDR] [--connections N] [--size BYTES] "
                  "[--pipeline N] [--warmup S] [--warmup-max S] [--warmup-stall S] [--seconds S] [--drain S] "
                  "[--round-trips N] [--sources K] [--hold])\n", problem);
  exit(2);
}

static void die(const char *what) {
  fprintf(stderr, "c-echo-client: %s: %s\n", what, strerror(errno));
  exit(3);
}

/* Counts an error, remembers the first few, and closes the connection (epoll forgets it). */
static void fail(struct conn *c, const char *kind, uint64_t *counter, long message, long offset, const char *detail) {
  (*counter)++;
  if (nreported < MAX_REPORTED_ERRORS) {
    reported[nreported].kind = kind;
    reported[nreported].conn = (int)(c - conns);
    reported[nreported].message = message;
    reported[nreported].offset = offset;
    snprintf(reported[nreported].detail, sizeof reported[nreported].detail, "%s", detail);
    nreported++;
  }
  fprintf(stderr, "c-echo-client: %s on connection %d: %s\n", kind, (int)(c - conns), detail);
  if (c->state != CLOSED) {
    close(c->fd);
    alive_count--;
    if (c->trips == 0) unanswered_open--;
  }
  c->state = CLOSED;
}

/* Message seq of a connection: header, then the pattern from offset seq % ROTATIONS. */
static void build_message(const struct conn *c, uint32_t seq, unsigned char *into) {
  memcpy(into, c->pattern + seq % ROTATIONS, (size_t)size);
  unsigned char header[8];
  uint32_t index = (uint32_t)(c - conns);
  for (int i = 0; i < 4; i++) {
    header[i] = (unsigned char)(index >> (24 - 8 * i));
    header[4 + i] = (unsigned char)(seq >> (24 - 8 * i));
  }
  memcpy(into, header, size < 8 ? (size_t)size : 8);
}

static uint32_t in_flight(const struct conn *c) {
  return c->send_seq - c->recv_seq + (c->send_off > 0 ? 1 : 0);
}

/* May this connection start another message? Not in the drain, nor once it has done its share. */
static int may_send(const struct conn *c) {
  if (phase == DRAIN || phase == DONE) return 0;
  if (hold && c->trips + in_flight(c) >= 1) return 0;
  if (phase == WINDOW && round_trip_limit > 0 && (long)(c->window_trips + in_flight(c)) >= round_trip_limit) return 0;
  return 1;
}

/* Sends until the pipeline is full or the kernel takes no more (then an EPOLLOUT edge resumes it). */
static void pump(struct conn *c) {
  while (c->state == OPEN && (c->send_off > 0 || (in_flight(c) < (uint32_t)pipeline && may_send(c)))) {
    if (c->send_off == 0) {
      build_message(c, c->send_seq, c->out);
      c->sent_at[c->send_seq % MAX_PIPELINE] = (uint64_t)now_ns();
    }
    ssize_t n = send(c->fd, c->out + c->send_off, (size_t)size - c->send_off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      char detail[160];
      snprintf(detail, sizeof detail, "send: %s", strerror(errno));
      fail(c, "socket", &errors.socket, (long)c->send_seq, -1, detail);
      return;
    }
    c->send_off += (size_t)n;
    if (c->send_off < (size_t)size) {
      if (phase == WINDOW) short_writes++;
      continue;
    }
    c->send_off = 0;
    c->send_seq++;
  }
}

/* Checks `len` echoed bytes against the stream expected next; completes round trips. */
static void check(struct conn *c, const unsigned char *buf, size_t len) {
  c->answered_bytes += len;
  while (len > 0) {
    if (c->send_seq == c->recv_seq && c->send_off == 0) {
      char detail[160];
      snprintf(detail, sizeof detail, "%zu byte(s) arrived after message %ld had come back whole, with nothing outstanding",
               len, (long)c->recv_seq - 1);
      fail(c, "extra", &errors.extra, (long)c->recv_seq - 1, size, detail);
      return;
    }
    if (c->recv_off == 0) build_message(c, c->recv_seq, c->expect);
    size_t n = (size_t)size - c->recv_off;
    if (n > len) n = len;
    if (memcmp(buf, c->expect + c->recv_off, n) != 0) {
      size_t i = 0;
      while (buf[i] == c->expect[c->recv_off + i]) i++;
      char detail[160];
      snprintf(detail, sizeof detail, "byte %zu of message %lu is 0x%02x, expected 0x%02x", c->recv_off + i,
               (unsigned long)c->recv_seq, buf[i], c->expect[c->recv_off + i]);
      fail(c, "corrupt", &errors.corrupt, (long)c->recv_seq, (long)(c->recv_off + i), detail);
      return;
    }
    c->recv_off += n;
    buf += n;
    len -= n;
    if (c->recv_off < (size_t)size) {
      if (phase == WINDOW) short_reads++;
      return;
    }
    /* A whole reply: one round trip, counted if it completed inside the window. */
    int64_t t = now_ns();
    if (phase == WINDOW && t >= window_start) {
      record((uint64_t)t - c->sent_at[c->recv_seq % MAX_PIPELINE]);
      c->window_trips++;
    }
    if (c->trips++ == 0) {
      answered_conns++;
      unanswered_open--;
      last_first_answer = t;
    }
    if (phase == WARMUP) warmup_trips++;
    c->recv_off = 0;
    c->recv_seq++;
  }
}

/* Reads until the receive queue is empty (edge-triggered: nothing more is reported until new
 * bytes arrive), checks each chunk, then sends what the completed round trips allow. */
static void on_readable(struct conn *c) {
  static unsigned char buf[READ_CHUNK];
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      char detail[160];
      snprintf(detail, sizeof detail, "read: %s", strerror(errno));
      fail(c, "socket", &errors.socket, (long)c->recv_seq, -1, detail);
      return;
    }
    if (n == 0) {
      char detail[160];
      if (in_flight(c) > 0) {
        snprintf(detail, sizeof detail, "server closed the connection with message %lu at %zu of %d bytes",
                 (unsigned long)c->recv_seq, c->recv_off, size);
        fail(c, "missing", &errors.missing, (long)c->recv_seq, (long)c->recv_off, detail);
      } else {
        fail(c, "socket", &errors.socket, -1, -1, "server closed the connection");
      }
      return;
    }
    check(c, buf, (size_t)n);
    if (c->state != OPEN) return;
    /* A read shorter than asked took everything queued (TCP copies all it has, up to the size
     * asked), so the next byte to arrive brings a new edge: no read that would only say EAGAIN. */
    if (n < (ssize_t)sizeof buf) break;
  }
  pump(c);
}

/* Step 1's second half: the non-blocking connect has finished, one way or the other. */
static void on_connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) {
    char detail[160];
    snprintf(detail, sizeof detail, "connect: %s", strerror(err));
    fail(c, "connect", &errors.connect, -1, -1, detail);
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as echo.ts and the labs do */
  c->state = OPEN;
  pump(c);
}

/* Source address of connection i with --sources K: 127.0.0.(2 + i % K), in host byte order. */
static uint32_t source_of(int i) { return (127u << 24) | (uint32_t)(2 + i % nsources); }

static void open_connection(struct conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  c->state = CONNECTING;
  unanswered_open++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)(c - conns)};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  if (nsources > 0) {
    /* The port is chosen at connect(2) by the whole 4-tuple, not reserved here by address alone. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(source_of((int)(c - conns)))};
    if (bind(c->fd, (const struct sockaddr *)&from, sizeof from) < 0) {
      char detail[160];
      snprintf(detail, sizeof detail, "bind to a source address: %s", strerror(errno));
      fail(c, "connect", &errors.connect, -1, -1, detail);
      return;
    }
  }
  if (connect(c->fd, (const struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EINPROGRESS) {
    char detail[160];
    snprintf(detail, sizeof detail, "connect: %s", strerror(errno));
    fail(c, "connect", &errors.connect, -1, -1, detail);
  }
}

/* Step 1's pacing: opens connections until OPEN_WINDOW of them are waiting for their first answer. */
static void open_more(void) {
  while (next_to_open < nconns && unanswered_open < OPEN_WINDOW) open_connection(&conns[next_to_open++]);
}

/* --hold's end: a reset, not a FIN, so no TIME_WAIT is left on the client's ports. */
static void close_with_reset(struct conn *c) {
  if (c->state != CONNECTING && c->state != OPEN) return;
  struct linger now = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
  close(c->fd);
  c->state = CLOSED;
}

/* ---- Command line -------------------------------------------------------------------------- */

static long whole(const char *flag, const char *text, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || *end || end == text || v < min || v > max) {
    char problem[160];
    snprintf(problem, sizeof problem, "%s must be a whole number from %ld to %ld, got %s", flag, min, max, text);
    usage(problem);
  }
  return v;
}

static double seconds(const char *flag, const char *text, double min) {
  char *end;
  double v = strtod(text, &end);
  if (*end || end == text || !(v >= min) || v > 86400) {
    char problem[160];
    snprintf(problem, sizeof problem, "%s must be a number of seconds from %g to 86400, got %s", flag, min, text);
    usage(problem);
  }
  return v;
}

static double cpu_seconds(struct rusage *ru, int user) {
  struct timeval *tv = user ? &ru->ru_utime : &ru->ru_stime;
  return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* A latency in ns as µs with 0.1 µs resolution (finer than the histogram's buckets above 12.8 µs). */
static double us(uint64_t ns) { return (double)((ns + 50) / 100) / 10.0; }

/* JSON string content: the details are ours (strerror text), but escape quotes and controls. */
static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned)(unsigned char)*s);
    else putchar(*s);
  }
  putchar('"');
}

/* The "errors" and "firstErrors" fields, shared by both reports. */
static void print_errors(void) {
  uint64_t total = errors.connect + errors.socket + errors.corrupt + errors.extra + errors.missing;
  printf(",\"errors\":{\"connect\":%lu,\"socket\":%lu,\"corrupt\":%lu,\"extra\":%lu,\"missing\":%lu,\"total\":%lu}",
         (unsigned long)errors.connect, (unsigned long)errors.socket, (unsigned long)errors.corrupt,
         (unsigned long)errors.extra, (unsigned long)errors.missing, (unsigned long)total);
  printf(",\"firstErrors\":[");
  for (int i = 0; i < nreported; i++) {
    printf("%s{\"kind\":\"%s\",\"connection\":%d,\"message\":%ld,\"offset\":%ld,\"detail\":", i ? "," : "", reported[i].kind,
           reported[i].conn, reported[i].message, reported[i].offset);
    print_json_string(reported[i].detail);
    putchar('}');
  }
  putchar(']');
}

/* --hold: report the opening, hold every connection idle until stdin closes, reset them all, exit. */
static void hold_and_close(const char *host, long port, int64_t open_ns, const char *open_end) {
  int connected = 0;
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    if (c->state == CONNECTING) fail(c, "connect", &errors.connect, -1, -1, "connect did not complete before the opening ended");
  }
  connected = next_to_open - (int)errors.connect;
  printf("{\"tool\":\"c-echo-client\",\"version\":3,\"mode\":\"hold\",\"host\":");
  print_json_string(host);
  printf(",\"port\":%ld,\"connections\":%d,\"size\":%d,\"sources\":%d,\"opened\":%d,\"connected\":%d,\"answered\":%d"
         ",\"openS\":%.3f,\"openEnd\":\"%s\"",
         port, nconns, size, nsources, next_to_open, connected, answered_conns, (double)open_ns / 1e9, open_end);
  print_errors();
  printf("}\n");
  fflush(stdout);
  fprintf(stderr, "c-echo-client: holding\n");
  /* Idle: nothing to send, nothing to read; the caller's end of stdin says when to let go. */
  for (;;) {
    char byte;
    ssize_t n = read(STDIN_FILENO, &byte, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) break; /* end of file, or no stdin at all */
  }
  for (int i = 0; i < nconns; i++) close_with_reset(&conns[i]);
  exit(0);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = -1;
  double warmup = 1, warmup_max = -1, warmup_stall = 1, window = 5, drain = 1;
  nconns = 10;
  size = 64;
  for (int i = 1; i < argc; i += 2) {
    const char *flag = argv[i];
    if (strcmp(flag, "--hold") == 0) { /* the one flag without a value */
      hold = 1;
      i--;
      continue;
    }
    if (i + 1 >= argc) {
      char problem[160];
      snprintf(problem, sizeof problem, "%s needs a value", flag);
      usage(problem);
    }
    const char *value = argv[i + 1];
    if (strcmp(flag, "--host") == 0) host = value;
    else if (strcmp(flag, "--port") == 0) port = whole(flag, value, 1, 65535);
    else if (strcmp(flag, "--connections") == 0) nconns = (int)whole(flag, value, 1, MAX_CONNECTIONS);
    else if (strcmp(flag, "--size") == 0) size = (int)whole(flag, value, 1, MAX_SIZE);
    else if (strcmp(flag, "--pipeline") == 0) pipeline = (int)whole(flag, value, 1, MAX_PIPELINE);
    else if (strcmp(flag, "--warmup") == 0) warmup = seconds(flag, value, 0);
    else if (strcmp(flag, "--warmup-max") == 0) warmup_max = seconds(flag, value, 0);
    else if (strcmp(flag, "--warmup-stall") == 0) warmup_stall = seconds(flag, value, 0);
    else if (strcmp(flag, "--seconds") == 0) window = seconds(flag, value, 0.001);
    else if (strcmp(flag, "--drain") == 0) drain = seconds(flag, value, 0);
    else if (strcmp(flag, "--round-trips") == 0) round_trip_limit = whole(flag, value, 0, LONG_MAX);
    else if (strcmp(flag, "--sources") == 0) nsources = (int)whole(flag, value, 0, MAX_SOURCES);
    else {
      char problem[160];
      snprintf(problem, sizeof problem, "unknown option %s", flag);
      usage(problem);
    }
  }
  if (port < 0) usage("--port is required");
  if (warmup_max < 0) warmup_max = warmup;
  if (warmup_max < warmup) usage("--warmup-max must be at least --warmup");
  server_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &server_addr.sin_addr) != 1) {
    char problem[160];
    snprintf(problem, sizeof problem, "--host must be an IPv4 address, got %s", host);
    usage(problem);
  }
  if (nsources > 0 && (ntohl(server_addr.sin_addr.s_addr) >> 24) != 127) {
    char problem[160];
    snprintf(problem, sizeof problem, "--sources binds to 127.0.0.2 and up, so --host must be in 127.0.0.0/8, got %s", host);
    usage(problem);
  }

  /* Enough descriptors for every connection, raised as far as the hard limit allows. */
  struct rlimit fds;
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < (rlim_t)nconns + 16) {
    fds.rlim_cur = fds.rlim_max < (rlim_t)nconns + 16 ? fds.rlim_max : (rlim_t)nconns + 16;
    setrlimit(RLIMIT_NOFILE, &fds);
  }

  conns = calloc((size_t)nconns, sizeof *conns);
  if (!conns) die("calloc");
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    c->pattern = malloc((size_t)size + ROTATIONS);
    c->out = malloc((size_t)size);
    c->expect = malloc((size_t)size);
    if (!c->pattern || !c->out || !c->expect) die("malloc");
    for (int k = 0; k < size + ROTATIONS; k++) c->pattern[k] = (unsigned char)(((unsigned)k * 131u + (unsigned)i * 29u + 7u) & 0xffu);
  }

  epfd = epoll_create1(0);
  if (epfd < 0) die("epoll_create1");

  /* Step 1: connect; each connection starts sending once its connect completes. */
  int64_t started = now_ns();
  alive_count = nconns;
  open_more();
  last_first_answer = started;
  int64_t warm_min_end = started + (int64_t)(warmup * NS), warm_max_end = started + (int64_t)(warmup_max * NS);
  const char *warmup_end = "bound";
  int64_t warmup_took = 0;
  int answered_in_warmup = 0;
  window_start = warm_min_end;
  window_end = window_start + (int64_t)(window * NS); /* set again when the window opens */
  int64_t drain_end = 0;
  struct rusage ru_start = {0}, ru_end = {0};
  int64_t window_opened = 0, window_closed = 0;

  struct epoll_event events[MAX_EVENTS];
  while (phase != DONE) {
    int64_t t = now_ns();

    /* Steps 2-4: move to the next phase when its time comes (or the window's work is done, or
     * every connection has failed and nothing is left to measure). */
    if (phase == WARMUP) {
      /* Live connections still waiting for their first answer (connecting and unopened ones included). */
      int waiting = unanswered_open + (nconns - next_to_open);
      int64_t stalled_at = last_first_answer + (int64_t)(warmup_stall * NS);
      const char *end = NULL;
      if (alive_count == 0) end = "failed";
      else if (t >= warm_min_end && waiting == 0) end = "answered";
      else if (t >= warm_min_end && answered_conns > 0 && t >= stalled_at) end = "stalled";
      else if (t >= warm_max_end) end = "bound";
      /* Not yet: look again at the next moment one of them could become true (or on an event). */
      window_start = t < warm_min_end ? warm_min_end : answered_conns > 0 && stalled_at < warm_max_end ? stalled_at : warm_max_end;
      if (end && hold) {
        hold_and_close(host, port, t - started, end); /* never returns */
      }
      if (end) {
        warmup_end = end;
        warmup_took = t - started;
        answered_in_warmup = answered_conns;
        phase = WINDOW;
        getrusage(RUSAGE_SELF, &ru_start);
        window_opened = now_ns();
        window_start = window_opened;
        window_end = window_opened + (int64_t)(window * NS); /* a full window, however late it opened */
        fprintf(stderr, "c-echo-client: window open\n");
        for (int i = 0; i < nconns; i++) pump(&conns[i]); /* a connection held back by --round-trips */
      }
    }
    if (phase == WINDOW) {
      int all_done = round_trip_limit > 0 || alive_count == 0;
      for (int i = 0; all_done && i < nconns; i++)
        if (conns[i].state != CLOSED && conns[i].window_trips < (uint64_t)round_trip_limit) all_done = 0;
      if (t >= window_end || all_done) {
        getrusage(RUSAGE_SELF, &ru_end);
        window_closed = now_ns();
        phase = DRAIN;
        drain_end = window_closed + (int64_t)(drain * NS);
        fprintf(stderr, "c-echo-client: window closed\n");
      }
    }
    if (phase == DRAIN) {
      int outstanding = 0;
      for (int i = 0; i < nconns; i++)
        if (conns[i].state == OPEN && in_flight(&conns[i]) > 0) outstanding = 1;
      /* Everything is back: wait a little longer only to catch a byte too many. */
      if (!outstanding && drain_end > t + EXTRA_GRACE_NS) drain_end = t + EXTRA_GRACE_NS;
      if (t >= drain_end) phase = DONE;
    }
    if (phase == DONE) break;

    int64_t next = phase == WARMUP ? window_start : phase == WINDOW ? window_end : drain_end;
    int timeout_ms = (int)((next - t + 999999) / 1000000);
    if (phase == WINDOW && round_trip_limit > 0 && timeout_ms > 10) timeout_ms = 10;
    int ready = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms < 0 ? 0 : timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) die("epoll_wait");
    for (int i = 0; i < ready; i++) {
      struct conn *c = &conns[events[i].data.u32];
      if (c->state == CLOSED) continue; /* failed earlier in this batch */
      if (c->state == CONNECTING) {
        on_connected(c);
        open_more(); /* a connection refused at once frees its place in the window */
        continue;
      }
      /* Edge-triggered, and a writable socket reports EPOLLOUT with every event: read first,
       * then pump (a no-op unless a send was cut short). */
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (c->state == OPEN && (events[i].events & EPOLLOUT)) pump(c);
    }
    open_more(); /* places freed by first answers and failures in this batch */
  }

  /* What the drain left: connects never finished, replies cut short, connections never answered. */
  int never_answered = 0;
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    if (c->state == CONNECTING) fail(c, "connect", &errors.connect, -1, -1, "connect did not complete before the run ended");
    if (c->state != OPEN) continue;
    if (c->answered_bytes == 0) {
      never_answered++;
    } else if (in_flight(c) > 0) {
      char detail[160];
      snprintf(detail, sizeof detail, "reply to message %lu stopped at %zu of %d bytes", (unsigned long)c->recv_seq,
               c->recv_off, size);
      fail(c, "missing", &errors.missing, (long)c->recv_seq, (long)c->recv_off, detail);
    }
  }
  /* Every connection whose connect succeeded, including those that failed later. */
  int connected = next_to_open - (int)errors.connect;

  /* Step 5: the report. */
  double window_s = (double)(window_closed - window_opened) / 1e9;
  uint64_t trips = 0, fewest = UINT64_MAX, most = 0;
  for (int i = 0; i < nconns; i++) {
    trips += conns[i].window_trips;
    if (conns[i].window_trips < fewest) fewest = conns[i].window_trips;
    if (conns[i].window_trips > most) most = conns[i].window_trips;
  }
  double user_s = cpu_seconds(&ru_end, 1) - cpu_seconds(&ru_start, 1);
  double sys_s = cpu_seconds(&ru_end, 0) - cpu_seconds(&ru_start, 0);
  uint64_t total = errors.connect + errors.socket + errors.corrupt + errors.extra + errors.missing;

  printf("{\"tool\":\"c-echo-client\",\"version\":3,\"mode\":\"run\",\"host\":");
  print_json_string(host);
  printf(",\"port\":%ld,\"connections\":%d,\"size\":%d,\"pipeline\":%d,\"sources\":%d,\"opened\":%d,\"connected\":%d", port, nconns,
         size, pipeline, nsources, next_to_open, connected);
  printf(",\"warmupS\":%.3f,\"warmupMaxS\":%.3f,\"warmupTookS\":%.3f,\"warmupEnd\":\"%s\",\"answeredInWarmup\":%d"
         ",\"warmupRoundTrips\":%lu",
         warmup, warmup_max, (double)warmup_took / 1e9, warmup_end, answered_in_warmup, (unsigned long)warmup_trips);
  printf(",\"windowS\":%.6f,\"roundTrips\":%lu,\"roundTripsPerSec\":%.1f", window_s,
         (unsigned long)trips, window_s > 0 ? (double)trips / window_s : 0.0);
  printf(",\"latencyUs\":{\"count\":%lu,\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
         "\"max\":%.1f,\"relativeError\":%.5f}",
         (unsigned long)hist_count, us(hist_min), hist_count ? us((uint64_t)(hist_sum / (double)hist_count)) : 0.0,
         us(percentile(50)), us(percentile(90)), us(percentile(99)), us(percentile(99.9)), us(hist_max), 1.0 / HALF_COUNT);
  printf(",\"perConnection\":[");
  for (int i = 0; i < nconns; i++) printf("%s%lu", i ? "," : "", (unsigned long)conns[i].window_trips);
  printf("],\"fewest\":%lu,\"most\":%lu,\"neverAnswered\":%d,\"shortReads\":%lu,\"shortWrites\":%lu", (unsigned long)fewest,
         (unsigned long)most, never_answered, (unsigned long)short_reads, (unsigned long)short_writes);
  printf(",\"cpu\":{\"userS\":%.4f,\"sysS\":%.4f,\"fraction\":%.4f}", user_s, sys_s, window_s > 0 ? (user_s + sys_s) / window_s : 0.0);
  printf(",\"errors\":{\"connect\":%lu,\"socket\":%lu,\"corrupt\":%lu,\"extra\":%lu,\"missing\":%lu,\"total\":%lu}",
         (unsigned long)errors.connect, (unsigned long)errors.socket, (unsigned long)errors.corrupt,
         (unsigned long)errors.extra, (unsigned long)errors.missing, (unsigned long)total);
  print_errors();
  printf("}\n");
  return total > 0 ? 1 : 0;
}
