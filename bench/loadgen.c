// The bench's one load client: many SSE connections on raw sockets with
// epoll, plus a Redis publisher on its own socket, in one single-threaded
// process, so that it costs the server under test as little as possible.
// Every event's data starts with the publish time (CLOCK_MONOTONIC, ns), so
// publish-to-receive latency is measured on one clock. It reads the server's
// CPU (utime+stime) and RSS from /proc and prints one JSON line.
//
// Build: gcc -O2 -o loadgen loadgen.c   (bench/run.mjs does it)
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

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { BROADCAST, UNICAST, IDLE, MAX };
enum cstate { CONNECTING, HEADERS, READY, DEAD };

typedef struct {
  int fd;
  uint8_t state;
  uint8_t carry_len;
  char carry[94];
} conn_t;

static const char *host = "127.0.0.1";
static int port = 0, redis_port = 0, nconns = 100, sources = 4, window_events = 8;
static enum mode mode = BROADCAST;
static double rate = 10;
static long warmup_ms = 1000, duration_ms = 3000, settle_ms = 1500, ready_timeout_ms = 120000, hold_ms = 0;
static const char *path = "/?channels=";
static const char *prefix = "";
static char pids_arg[512] = "";
static int pids[64], npids = 0;

static conn_t *conns;
static int epfd, redis_fd;
static long long events = 0, events_total = 0;
static long long published = 0;
static int ready_count = 0, dead_count = 0, connecting = 0, next_to_open = 0;
static long long stat_ticks_per_sec;

// Latency histogram, log-linear in microseconds: 1 µs steps below 1 ms,
// then 10 µs, 100 µs, 1 ms, 10 ms steps, capped at ~100 s.
#define NB 4700
static long long hist[NB];
static int bucket(long long us) {
  if (us < 0) us = 0;
  if (us < 1000) return (int)us;
  if (us < 10000) return 1000 + (int)((us - 1000) / 10);
  if (us < 100000) return 1900 + (int)((us - 10000) / 100);
  if (us < 1000000) return 2800 + (int)((us - 100000) / 1000);
  if (us < 10000000) return 3700 + (int)((us - 1000000) / 10000);
  if (us < 100000000) return 4600 + (int)((us - 10000000) / 1000000);
  return NB - 1;
}
static double bucket_us(int b) {
  if (b < 1000) return b;
  if (b < 1900) return 1000 + (b - 1000) * 10.0;
  if (b < 2800) return 10000 + (b - 1900) * 100.0;
  if (b < 3700) return 100000 + (b - 2800) * 1000.0;
  if (b < 4600) return 1000000 + (b - 3700) * 10000.0;
  return 10000000 + (b - 4600) * 1000000.0;
}
static double percentile(double p) {
  long long total = 0;
  for (int i = 0; i < NB; i++) total += hist[i];
  if (total == 0) return -1;
  long long want = (long long)(p * total);
  if (want >= total) want = total - 1;
  long long seen = 0;
  for (int i = 0; i < NB; i++) {
    seen += hist[i];
    if (seen > want) return bucket_us(i);
  }
  return bucket_us(NB - 1);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long long cpu_ticks(void) {
  long long sum = 0;
  for (int i = 0; i < npids; i++) {
    char file[64], buf[2048];
    snprintf(file, sizeof file, "/proc/%d/stat", pids[i]);
    FILE *f = fopen(file, "r");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) continue;
    // Fields after ")": 3 state ... 14 utime 15 stime.
    long long utime = 0, stime = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
      field++;
      if (field == 14) utime = atoll(tok);
      if (field == 15) {
        stime = atoll(tok);
        break;
      }
    }
    sum += utime + stime;
  }
  return sum;
}

static long long rss_bytes(void) {
  long long sum = 0;
  long page = sysconf(_SC_PAGESIZE);
  for (int i = 0; i < npids; i++) {
    char file[64];
    snprintf(file, sizeof file, "/proc/%d/statm", pids[i]);
    FILE *f = fopen(file, "r");
    if (!f) continue;
    long long size = 0, resident = 0;
    if (fscanf(f, "%lld %lld", &size, &resident) == 2) sum += resident * page;
    fclose(f);
  }
  return sum;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void open_conn(int i) {
  conn_t *c = &conns[i];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  set_nonblock(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Spread connections over 127.0.0.1..N so 10k sockets never run short of
  // ephemeral ports on one source address.
  if (sources > 1) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
    src.sin_addr.s_addr = htonl(0x7f000001 + (i % sources));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind");
  }
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &dst.sin_addr);
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) die("connect");
  c->fd = fd;
  c->state = CONNECTING;
  c->carry_len = 0;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u64 = (uint64_t)i};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  connecting++;
}

static void kill_conn(conn_t *c) {
  if (c->state == DEAD) return;
  if (c->state != READY) connecting--;
  else ready_count--;
  c->state = DEAD;
  dead_count++;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
}

static void send_request(int i) {
  conn_t *c = &conns[i];
  char req[512];
  char channel[64];
  if (mode == UNICAST) snprintf(channel, sizeof channel, "u%d", i);
  else snprintf(channel, sizeof channel, "all");
  int n = snprintf(req, sizeof req,
                   "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                   path, channel, host, port);
  if (write(c->fd, req, n) != n) {
    kill_conn(c);
    return;
  }
  c->state = HEADERS;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int measuring = 0;

// One line of the stream. Only `data:` lines that start with a timestamp
// count (the space after the colon is optional, and an optional `"` allows
// JSON-serialising servers such as better-sse).
static void on_line(const char *line, int len, long long now) {
  if (len < 6 || memcmp(line, "data:", 5) != 0) return;
  const char *p = line + 5;
  const char *end = line + len;
  if (p < end && *p == ' ') p++;
  if (p < end && *p == '"') p++;
  if (p >= end || *p < '0' || *p > '9') return;
  long long ts = 0;
  while (p < end && *p >= '0' && *p <= '9') ts = ts * 10 + (*p++ - '0');
  events_total++;
  if (!measuring) return;
  events++;
  hist[bucket((now - ts) / 1000)]++;
}

static char rbuf[1 << 16];

static void on_readable(int i, long long now) {
  conn_t *c = &conns[i];
  for (;;) {
    ssize_t n = read(c->fd, rbuf, sizeof rbuf);
    if (n == 0) {
      kill_conn(c);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      kill_conn(c);
      return;
    }
    const char *p = rbuf, *end = rbuf + n;
    if (c->state == HEADERS) {
      // Ready once the blank line after the status and headers has arrived
      // (the header block of these servers is far smaller than one read).
      const char *hdr_end = memmem(rbuf, n, "\r\n\r\n", 4);
      if (!hdr_end) continue;
      if (n < 12 || memcmp(rbuf + 9, "200", 3) != 0) {
        fprintf(stderr, "loadgen: connection %d: %.*s\n", i, (int)(n > 80 ? 80 : n), rbuf);
        kill_conn(c);
        return;
      }
      c->state = READY;
      connecting--;
      ready_count++;
      p = hdr_end + 4;
    }
    while (p < end) {
      const char *nl = memchr(p, '\n', end - p);
      if (!nl) {
        int rest = (int)(end - p);
        if (c->carry_len + rest <= (int)sizeof c->carry) {
          memcpy(c->carry + c->carry_len, p, rest);
          c->carry_len += rest;
        } else {
          c->carry_len = 0;  // a line longer than any we count
        }
        break;
      }
      if (c->carry_len) {
        int part = (int)(nl - p);
        if (c->carry_len + part <= (int)sizeof c->carry) {
          memcpy(c->carry + c->carry_len, p, part);
          on_line(c->carry, c->carry_len + part, now);
        }
        c->carry_len = 0;
      } else {
        on_line(p, (int)(nl - p), now);
      }
      p = nl + 1;
    }
  }
}

// ---- Redis publisher -------------------------------------------------------
static char wbuf[1 << 20];
static int wlen = 0;
static const char PAD[] = "bench-payload-padding-to-a-realistic-size-0123456789abcdefghijklmnop";

static void queue_publish(long long ts) {
  char channel[80], payload[256], cmd[512];
  if (mode == UNICAST) snprintf(channel, sizeof channel, "%su%d", prefix, (int)(random() % nconns));
  else snprintf(channel, sizeof channel, "%sall", prefix);
  int pl = snprintf(payload, sizeof payload, "[\"message\",\"%lld %lld %s\"]", ts, published, PAD);
  int n = snprintf(cmd, sizeof cmd, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n", strlen(channel), channel,
                   pl, payload);
  if (wlen + n > (int)sizeof wbuf) return;
  memcpy(wbuf + wlen, cmd, n);
  wlen += n;
  published++;
}

static void flush_redis(void) {
  int off = 0;
  while (off < wlen) {
    ssize_t n = write(redis_fd, wbuf + off, wlen - off);
    if (n < 0) {
      if (errno == EAGAIN) break;
      die("redis write");
    }
    off += (int)n;
  }
  memmove(wbuf, wbuf + off, wlen - off);
  wlen -= off;
}

static void drain_redis(void) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(redis_fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n == 0) {
      fprintf(stderr, "loadgen: redis closed the connection\n");
      exit(1);
    }
    if (errno == EAGAIN) return;
    die("redis read");
  }
}

static void connect_redis(void) {
  redis_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(redis_port)};
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (connect(redis_fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect redis");
  int one = 1;
  setsockopt(redis_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblock(redis_fd);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)-1};
  epoll_ctl(epfd, EPOLL_CTL_ADD, redis_fd, &ev);
}

// ---- main loop ---------------------------------------------------------------
static struct epoll_event evs[1024];

static void poll_once(int timeout_ms) {
  // Keep a bounded number of connects in flight so the listen backlog holds.
  while (next_to_open < nconns && connecting < 200) open_conn(next_to_open++);
  int n = epoll_wait(epfd, evs, 1024, timeout_ms);
  long long now = now_ns();
  for (int k = 0; k < n; k++) {
    uint64_t id = evs[k].data.u64;
    if (id == (uint64_t)-1) {
      drain_redis();
      continue;
    }
    conn_t *c = &conns[id];
    if (c->state == DEAD) continue;
    if (evs[k].events & (EPOLLERR | EPOLLHUP) && c->state == CONNECTING) {
      kill_conn(c);
      continue;
    }
    if (c->state == CONNECTING && (evs[k].events & EPOLLOUT)) {
      send_request((int)id);
      continue;
    }
    if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable((int)id, now);
  }
}

static void run_for(long long ms, int publish) {
  long long start = now_ns(), stop = start + ms * 1000000LL;
  long long base = published;
  long long last_progress = start, last_total = events_total;
  for (;;) {
    long long now = now_ns();
    if (now >= stop) break;
    if (publish && mode != IDLE) {
      if (mode == MAX) {
        // Closed loop: at most `window_events` events in flight, counted as
        // deliveries still missing across all connections.
        long long inflight = published * (long long)ready_count - events_total;
        if (events_total != last_total) last_progress = now, last_total = events_total;
        if (now - last_progress > 500000000LL) {
          // Something was lost: resynchronise rather than stall.
          events_total = published * (long long)ready_count;
          inflight = 0;
          last_progress = now;
        }
        while (inflight < (long long)window_events * ready_count && wlen < (int)sizeof wbuf - 512) {
          queue_publish(now);
          inflight += ready_count;
        }
      } else {
        long long due = base + (long long)((now - start) / 1e9 * rate);
        int burst = 0;
        while (published < due && burst++ < 10000) queue_publish(now);
      }
      if (wlen) flush_redis();
    }
    poll_once(mode == MAX ? 0 : 1);
  }
}

static void parse_pids(void) {
  char *s = strdup(pids_arg);
  for (char *tok = strtok(s, ","); tok && npids < 64; tok = strtok(NULL, ",")) pids[npids++] = atoi(tok);
  free(s);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--host")) host = v;
    else if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--redis-port")) redis_port = atoi(v);
    else if (!strcmp(k, "--conns")) nconns = atoi(v);
    else if (!strcmp(k, "--sources")) sources = atoi(v);
    else if (!strcmp(k, "--window")) window_events = atoi(v);
    else if (!strcmp(k, "--rate")) rate = atof(v);
    else if (!strcmp(k, "--warmup")) warmup_ms = atol(v);
    else if (!strcmp(k, "--duration")) duration_ms = atol(v);
    else if (!strcmp(k, "--settle")) settle_ms = atol(v);
    else if (!strcmp(k, "--hold")) hold_ms = atol(v);
    else if (!strcmp(k, "--path")) path = v;
    else if (!strcmp(k, "--prefix")) prefix = v;
    else if (!strcmp(k, "--pids")) snprintf(pids_arg, sizeof pids_arg, "%s", v);
    else if (!strcmp(k, "--mode")) {
      if (!strcmp(v, "broadcast")) mode = BROADCAST;
      else if (!strcmp(v, "unicast")) mode = UNICAST;
      else if (!strcmp(v, "idle")) mode = IDLE;
      else if (!strcmp(v, "max")) mode = MAX;
      else {
        fprintf(stderr, "loadgen: unknown mode %s\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "loadgen: unknown option %s\n", k);
      return 2;
    }
  }
  if (!port || (!redis_port && mode != IDLE)) {
    fprintf(stderr, "loadgen: --port and --redis-port are required\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if ((long)rl.rlim_cur < nconns + 16) {
    fprintf(stderr, "loadgen: need %d file descriptors, the limit is %ld\n", nconns + 16, (long)rl.rlim_cur);
    return 1;
  }
  stat_ticks_per_sec = sysconf(_SC_CLK_TCK);
  parse_pids();
  srandom(42);
  conns = calloc(nconns, sizeof *conns);
  epfd = epoll_create1(0);
  long long rss0 = rss_bytes();
  if (redis_port) connect_redis();

  long long t_open = now_ns();
  while (ready_count + dead_count < nconns) {
    poll_once(10);
    if ((now_ns() - t_open) / 1000000 > ready_timeout_ms) {
      fprintf(stderr, "loadgen: only %d of %d connections ready\n", ready_count, nconns);
      return 1;
    }
  }
  double connect_s = (now_ns() - t_open) / 1e9;
  if (dead_count) fprintf(stderr, "loadgen: %d connections failed\n", dead_count);

  // Let the server finish its broker subscriptions and settle.
  run_for(settle_ms, 0);
  long long rss1 = rss_bytes();
  if (mode != IDLE) {
    run_for(warmup_ms, 1);
    memset(hist, 0, sizeof hist);
    events = 0;
    long long cpu0 = cpu_ticks(), t0 = now_ns(), pub0 = published;
    measuring = 1;
    run_for(duration_ms, 1);
    measuring = 0;
    long long cpu1 = cpu_ticks(), t1 = now_ns(), pub1 = published;
    rss1 = rss_bytes() > rss1 ? rss_bytes() : rss1;
    double secs = (t1 - t0) / 1e9;
    double cpu_s = (double)(cpu1 - cpu0) / stat_ticks_per_sec;
    printf("{\"conns\":%d,\"failed\":%d,\"connectSeconds\":%.2f,\"published\":%lld,\"events\":%lld,"
           "\"seconds\":%.3f,\"eventsPerSecond\":%.0f,\"cpuSeconds\":%.3f,\"cpuUsPerEvent\":%.3f,"
           "\"cpuLoad\":%.3f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"rssBefore\":%lld,\"rssAfter\":%lld,"
           "\"rssPerConn\":%.0f}\n",
           ready_count, dead_count, connect_s, pub1 - pub0, events, secs, events / secs, cpu_s,
           events ? cpu_s * 1e6 / events : 0.0, cpu_s / secs, percentile(0.5) / 1000, percentile(0.99) / 1000, rss0,
           rss1, ready_count ? (double)(rss1 - rss0) / ready_count : 0.0);
  } else {
    printf("{\"conns\":%d,\"failed\":%d,\"connectSeconds\":%.2f,\"rssBefore\":%lld,\"rssAfter\":%lld,"
           "\"rssPerConn\":%.0f}\n",
           ready_count, dead_count, connect_s, rss0, rss1,
           ready_count ? (double)(rss1 - rss0) / ready_count : 0.0);
  }
  fflush(stdout);
  // --hold: keep the streams open after the figures, e.g. while bench/heap.mjs
  // takes a heap snapshot of the server.
  // It ends early once the server has closed every stream.
  for (long long t = now_ns(); hold_ms > 0 && ready_count > 0 && (now_ns() - t) / 1000000 < hold_ms;) poll_once(10);
  return 0;
}
