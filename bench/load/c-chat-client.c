/*
 * The chat load generator (make chat), in C for the same reason as c-echo-client.c: it must cost
 * less per delivered message than the server it measures, so that a ceiling in the report is the
 * server's. One thread, one edge-triggered epoll loop, no allocation per message.
 *
 * What it does (a closed loop per sender):
 *   1. Connects --members members at once and waits until each has its welcome line (it is in the
 *      room) and every join has been announced to every member already there: n(n-1)/2 lines
 *      "* <name> joined" in all. Until then the server is still delivering the join, O(n^2) lines
 *      (a relayed room, lab 06, may be seconds behind its last welcome), and a window opened then
 *      would measure that, not the room. The time this takes is reported as joinS. Then --stuck
 *      members that never read a byte.
 *   2. The first --senders members send. Each has one message in flight: it sends the next as
 *      soon as every other (reading) member has received the last one. A message is the line
 *      "m <sender> <seq> <pad>", padded to --size bytes with its newline; the room delivers it to
 *      every other member as "<name>: m <sender> <seq> <pad>".
 *   3. Warm-up for --warmup seconds, then the measured window of --seconds ("c-chat-client:
 *      window open" and "window closed" on stderr mark it). In the window it counts deliveries
 *      (message lines received by a reading member) and the fan-out latency of each message sent
 *      in it: from the send() to the arrival of its last copy at the last reading recipient.
 *   4. Prints one JSON object on stdout and exits (status 0; 1: it saw errors; 2: bad usage).
 *
 * What is checked: every reading member gets every other sender's messages in order (a sequence
 * number that is not the next one expected is an "order" error: lost, repeated or reordered); a
 * reading member closed by the server is a "socket" error; a message that has not reached every
 * reading member at the end of the window, STALL_NS (2 s) after it was sent, is "missing" (in a closed loop a lost message stalls its sender rather than arriving late). Notices ("* ...") are counted, not checked.
 * The stuck members are never read; the server is expected to cut them off, which is counted as
 * "stuckClosed" when their socket reports the hang-up (EPOLLRDHUP, read with no read).
 *
 * Latency percentiles are exact: every fan-out latency of the window is kept (up to MAX_SAMPLES)
 * and sorted at the end.
 *
 * Output (stdout, one line, version 1):
 * { "tool": "c-chat-client", "version": 1, "members": int, "senders": int, "stuck": int,
 *   "size": int, "joined": int, "joinS": number, "windowS": number, "messages": int, "deliveries": int,
 *   "deliveriesPerSec": number, "latencyUs": { "count", "p50", "p99", "max": number },
 *   "cpu": { "userS", "sysS", "fraction": number }, "stuckClosed": int, "notices": int,
 *   "errors": { "connect", "socket", "order", "missing", "total": int }, "firstError": string }
 *
 * Usage: c-chat-client --port N [--host 127.0.0.1] [--members 10] [--senders 1] [--stuck 0]
 *                      [--size 64] [--warmup 1] [--seconds 5]
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define MAX_MEMBERS 5000
#define MAX_SENDERS 100
#define MAX_LINE 8192          /* longer than the server's 4 KiB line limit plus a name */
#define READ_CHUNK 65536
#define MAX_EVENTS 256
#define MAX_SAMPLES 4000000    /* 32 MB of latencies: minutes of a fast room */
#define JOIN_TIMEOUT_NS (60LL * NS) /* a hundred processes starting at once on a busy 2-core machine */
#define STUCK_RCVBUF 4096     /* the kernel doubles it, and keeps a floor of its own */
#define STALL_NS (2LL * NS)     /* a fan-out this late is lost: the slowest seen here take a few hundred ms */
#define NS 1000000000LL

typedef struct {
  int fd;
  int stuck;
  int closed;
  char line[MAX_LINE];
  int lineLength;
  int64_t noticesSeen;
  int welcomed;                /* its own "* you are ..." has arrived: it is in the room */
  int64_t *lastSeq;            /* per sender: the last sequence number received */
} Member;

typedef struct {
  int64_t seq;                 /* the message in flight */
  int64_t sentNs;
  int remaining;               /* reading recipients still to receive it */
  int64_t lastArrivalNs;
} Sender;

static Member members[MAX_MEMBERS];
static Sender senders[MAX_SENDERS];
static int memberCount = 10, senderCount = 1, stuckCount = 0, size = 64;
static double warmupS = 1, seconds = 5;
static const char *host = "127.0.0.1";
static int port = 0;
static int epfd;
static int64_t *samples;
static int64_t sampleCount;
static int64_t deliveries, messages, notices, stuckClosed;
static int64_t joinNotices;   /* "* <name> joined" lines received by reading members */
static int64_t errConnect, errSocket, errOrder, errMissing;
static char firstError[256];
static int inWindow;
static int64_t windowStart, windowEnd;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * NS + t.tv_nsec;
}

static void error_at(int64_t *counter, const char *what, int member) {
  (*counter)++;
  if (!firstError[0]) snprintf(firstError, sizeof firstError, "%s (member %d)", what, member);
}

static void usage(const char *why) {
  fprintf(stderr, "c-chat-client: %s\n", why);
  exit(2);
}

static double cpu_seconds(struct rusage *u, int user) {
  struct timeval t = user ? u->ru_utime : u->ru_stime;
  return t.tv_sec + t.tv_usec / 1e6;
}

/* Writes the whole buffer (a line is small: the kernel takes it, or we wait for room). */
static int send_all(int fd, const char *bytes, int length) {
  int offset = 0;
  while (offset < length) {
    ssize_t n = send(fd, bytes + offset, length - offset, MSG_NOSIGNAL);
    if (n > 0) { offset += n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) { struct timespec pause = {0, 50000}; nanosleep(&pause, NULL); continue; }
    return -1;
  }
  return 0;
}

static void send_next(int s) {
  Sender *sender = &senders[s];
  char line[MAX_LINE];
  sender->seq++;
  int length = snprintf(line, sizeof line, "m %d %lld ", s, (long long)sender->seq);
  while (length < size - 1 && length < MAX_LINE - 2) line[length++] = 'x';
  line[length++] = '\n';
  sender->remaining = memberCount - 1;
  sender->sentNs = now_ns();
  sender->lastArrivalNs = 0;
  if (sender->remaining == 0) return;
  if (send_all(members[s].fd, line, length) < 0) error_at(&errSocket, "send failed", s);
}

/* One complete line received by reading member `m`. */
static void on_line(int m, const char *line, int length) {
  if (length >= 2 && line[0] == '*' && line[1] == ' ') {
    notices++;
    members[m].noticesSeen++;
    if (length >= 10 && !memcmp(line, "* you are ", 10)) members[m].welcomed = 1;
    else if (length >= 7 && !memcmp(line + length - 7, " joined", 7)) joinNotices++;
    return;
  }
  const char *body = memmem(line, length, ": m ", 4);
  if (!body) { notices++; members[m].noticesSeen++; return; }
  int s = 0;
  long long seq = 0;
  if (sscanf(body + 4, "%d %lld", &s, &seq) != 2 || s < 0 || s >= senderCount) { error_at(&errOrder, "unparsable message", m); return; }
  Member *member = &members[m];
  if (seq != member->lastSeq[s] + 1) { error_at(&errOrder, "message out of order or lost", m); }
  member->lastSeq[s] = seq;
  int64_t t = now_ns();
  if (inWindow && t <= windowEnd) deliveries++;
  Sender *sender = &senders[s];
  if (seq != sender->seq) return; /* an old message: already counted as an error above */
  sender->lastArrivalNs = t;
  if (--sender->remaining > 0) return;
  if (inWindow && sender->sentNs >= windowStart && t <= windowEnd) {
    messages++;
    if (sampleCount < MAX_SAMPLES) samples[sampleCount++] = t - sender->sentNs;
  }
  send_next(s);
}

static void read_member(int m) {
  static char buffer[READ_CHUNK];
  Member *member = &members[m];
  for (;;) {
    ssize_t n = read(member->fd, buffer, sizeof buffer);
    if (n > 0) {
      for (ssize_t i = 0; i < n; i++) {
        char c = buffer[i];
        if (c == '\n') {
          on_line(m, member->line, member->lineLength);
          member->lineLength = 0;
        } else if (member->lineLength < MAX_LINE) {
          member->line[member->lineLength++] = c;
        }
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (!member->closed) {
      member->closed = 1;
      error_at(&errSocket, n == 0 ? "the server closed a reading member" : "a reading member failed", m);
      epoll_ctl(epfd, EPOLL_CTL_DEL, member->fd, NULL);
    }
    return;
  }
}

static int open_member(int m, int stuck) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) usage("--host must be an IPv4 address");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  /* A stuck member stands for a slow phone on a slow link: a small receive buffer (set before
   * connect, so the window is small from the handshake on) makes the server's queue for it, not
   * the kernel's buffers, take the backlog within seconds. */
  if (stuck) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){STUCK_RCVBUF}, sizeof(int));
  if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) { close(fd); return -1; }
  /* Non-blocking from here on: the loop reads until EAGAIN. */
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) { close(fd); return -1; }
  members[m].fd = fd;
  members[m].stuck = stuck;
  members[m].lastSeq = calloc(senderCount, sizeof(int64_t));
  struct epoll_event event = {.events = stuck ? EPOLLRDHUP | EPOLLET : EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u32 = m};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

static void run_loop(int64_t untilNs) {
  struct epoll_event events[MAX_EVENTS];
  while (now_ns() < untilNs) {
    int64_t left = (untilNs - now_ns()) / 1000000;
    int n = epoll_wait(epfd, events, MAX_EVENTS, left > 100 ? 100 : left < 1 ? 1 : (int)left);
    for (int i = 0; i < n; i++) {
      int m = (int)events[i].data.u32;
      Member *member = &members[m];
      if (member->stuck) {
        if (!member->closed && (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
          member->closed = 1;
          stuckClosed++;
          epoll_ctl(epfd, EPOLL_CTL_DEL, member->fd, NULL);
        }
        continue;
      }
      read_member(m);
    }
  }
}

static int compare(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_us(double p) {
  if (sampleCount == 0) return 0;
  int64_t rank = (int64_t)(p / 100 * sampleCount + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > sampleCount) rank = sampleCount;
  return samples[rank - 1] / 1000.0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *flag = argv[i];
    if (i + 1 >= argc) usage("every flag takes a value");
    const char *value = argv[++i];
    if (!strcmp(flag, "--port")) port = atoi(value);
    else if (!strcmp(flag, "--host")) host = value;
    else if (!strcmp(flag, "--members")) memberCount = atoi(value);
    else if (!strcmp(flag, "--senders")) senderCount = atoi(value);
    else if (!strcmp(flag, "--stuck")) stuckCount = atoi(value);
    else if (!strcmp(flag, "--size")) size = atoi(value);
    else if (!strcmp(flag, "--warmup")) warmupS = atof(value);
    else if (!strcmp(flag, "--seconds")) seconds = atof(value);
    else usage("unknown flag (see the header of c-chat-client.c)");
  }
  if (port < 1 || port > 65535) usage("--port must be 1 to 65535");
  if (memberCount < 2 || memberCount + stuckCount > MAX_MEMBERS) usage("--members must be 2 or more, members + stuck at most 5000");
  if (senderCount < 1 || senderCount > MAX_SENDERS || senderCount > memberCount) usage("--senders must be 1 to 100 and at most --members");
  if (size < 16 || size > 4096) usage("--size must be 16 to 4096");
  if (seconds <= 0 || warmupS < 0) usage("--seconds must be positive, --warmup not negative");
  samples = malloc(MAX_SAMPLES * sizeof(int64_t));
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0 || !samples) { perror("c-chat-client"); return 3; }

  /* Step 1. Every reading member connects, then waits for its welcome ("* you are ...", its first
   * notice): all at once, so a room whose members cost a process each (lab 02) starts them in
   * parallel. Then the stuck members, which never read theirs. */
  int joined = 0;
  int64_t joinStart = now_ns();
  const int64_t allJoins = (int64_t)memberCount * (memberCount - 1) / 2;
  for (int m = 0; m < memberCount; m++) {
    if (open_member(m, 0) < 0) { error_at(&errConnect, "cannot connect", m); break; }
  }
  int64_t deadline = now_ns() + JOIN_TIMEOUT_NS;
  for (;;) {
    joined = 0;
    for (int m = 0; m < memberCount; m++) joined += members[m].fd > 0 && members[m].welcomed;
    if ((joined == memberCount && joinNotices >= allJoins) || now_ns() > deadline) break;
    run_loop(now_ns() + 10000000);
  }
  double joinS = (now_ns() - joinStart) / 1e9;
  if (joined < memberCount) error_at(&errConnect, "no welcome", joined);
  else if (joinNotices < allJoins) {
    error_at(&errConnect, "every member had its welcome, but not every join was announced within the join timeout", memberCount);
    joined = 0;
  } else {
    for (int m = memberCount; m < memberCount + stuckCount; m++) {
      if (open_member(m, 1) < 0) { error_at(&errConnect, "cannot connect", m); break; }
      joined++;
    }
  }
  if (joined < memberCount + stuckCount) {
    printf("{\"tool\":\"c-chat-client\",\"version\":1,\"members\":%d,\"senders\":%d,\"stuck\":%d,\"size\":%d,\"joined\":%d,\"joinS\":%.3f,"
           "\"errors\":{\"connect\":%lld,\"socket\":%lld,\"order\":%lld,\"total\":%lld},\"firstError\":\"%s\"}\n",
           memberCount, senderCount, stuckCount, size, joined, joinS, (long long)errConnect, (long long)errSocket, (long long)errOrder,
           (long long)(errConnect + errSocket + errOrder), firstError);
    return 1;
  }
  /* Let the join notices settle, then step 2. */
  run_loop(now_ns() + 200000000);
  for (int s = 0; s < senderCount; s++) send_next(s);

  /* Step 3. */
  run_loop(now_ns() + (int64_t)(warmupS * NS));
  struct rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  windowStart = now_ns();
  windowEnd = windowStart + (int64_t)(seconds * NS);
  inWindow = 1;
  fprintf(stderr, "c-chat-client: window open\n");
  run_loop(windowEnd);
  fprintf(stderr, "c-chat-client: window closed\n");
  getrusage(RUSAGE_SELF, &after);
  double windowS = (now_ns() - windowStart) / 1e9;
  inWindow = 0;
  /* A message still short of some member STALL_NS after it was sent was lost: in a closed loop a
   * lost message stalls its sender instead of showing up out of order. */
  for (int s = 0; s < senderCount; s++) {
    if (senders[s].remaining > 0 && now_ns() - senders[s].sentNs > STALL_NS) {
      error_at(&errMissing, "a message never reached every member", s);
    }
  }

  qsort(samples, sampleCount, sizeof(int64_t), compare);
  double userS = cpu_seconds(&after, 1) - cpu_seconds(&before, 1);
  double sysS = cpu_seconds(&after, 0) - cpu_seconds(&before, 0);
  int64_t total = errConnect + errSocket + errOrder + errMissing;
  printf("{\"tool\":\"c-chat-client\",\"version\":1,\"members\":%d,\"senders\":%d,\"stuck\":%d,\"size\":%d,\"joined\":%d,\"joinS\":%.3f,"
         "\"windowS\":%.6f,\"messages\":%lld,\"deliveries\":%lld,\"deliveriesPerSec\":%.3f,"
         "\"latencyUs\":{\"count\":%lld,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
         "\"cpu\":{\"userS\":%.6f,\"sysS\":%.6f,\"fraction\":%.6f},\"stuckClosed\":%lld,\"notices\":%lld,"
         "\"errors\":{\"connect\":%lld,\"socket\":%lld,\"order\":%lld,\"missing\":%lld,\"total\":%lld},\"firstError\":\"%s\"}\n",
         memberCount, senderCount, stuckCount, size, joined, joinS, windowS, (long long)messages, (long long)deliveries,
         deliveries / windowS, (long long)sampleCount, percentile_us(50), percentile_us(99),
         sampleCount ? samples[sampleCount - 1] / 1000.0 : 0.0, userS, sysS, (userS + sysS) / windowS,
         (long long)stuckClosed, (long long)notices, (long long)errConnect, (long long)errSocket, (long long)errOrder,
         (long long)errMissing, (long long)total, firstError);
  return total > 0 ? 1 : 0;
}
