// The bench's one load client: many SSE connections on raw sockets with
// epoll, plus a Redis publisher on its own socket, in one single-threaded
// process, so that it costs the server under test as little as possible.
// Every event's data starts with the publish time (CLOCK_MONOTONIC, ns), so
// publish-to-receive latency is measured on one clock. It reads the server's
// CPU (utime+stime) and RSS from /proc and prints one JSON line.
//
// `--mode storm` is the reconnect-storm check: every connection listens on
// `all` and its own channel, events are published through sse-hub's history
// script (EVALSHA) with a per-channel sequence number in their data, and the
// client behaves as a browser's EventSource does — on a closed stream it
// waits the `retry:` it was given and reconnects with the last id it saw
// (Last-Event-ID). It counts, per connection, every sequence number skipped
// (lost), seen twice (duplicated) and every `gap` event, and exits 3 when
// there is any, or when a connection never came back and caught up.
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

enum mode { BROADCAST, UNICAST, IDLE, MAX, STORM };
enum cstate { CONNECTING, HEADERS, READY, DEAD, WAITING };

typedef struct {
  int fd;
  uint8_t state;
  uint8_t carry_len;
  char carry[126];
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

// ---- storm: what a browser keeps per EventSource, and the checker's counts ----
typedef struct {
  char last_id[40];     // the last event id dispatched: sent as Last-Event-ID
  char id_buf[40];      // the "last event ID buffer", committed on dispatch
  int retry_ms;         // the last `retry:` the server gave
  int all_next;         // next sequence number expected on `all`
  int own_next;         // ... and on the connection's own channel
  int lost, dup, gaps;  // checker's counts: sequence numbers skipped, seen again; `gap` events
  int missing;          // published but not received by the end (a client never caught up)
  int reconnects;
  long long reconnect_at;  // ns; 0 = not waiting
  long long req_at;        // ns the last request was sent
  long long back_at;       // ns the stream was open again after the storm began
  long long caught_at;     // ns it received an `all` event published after its request
  // the event being parsed
  uint8_t ev_gap, ev_has;
  char ev_kind;
  int ev_seq;
  long long ev_ts;
} storm_t;
static storm_t *st;
static int storm_phase = 0, max_connecting = 200;
static long long t_storm = 0;
static double rate_all = 100, rate_users = 1000;
static long storm_max_ms = 30000;
static const char *script_sha = "", *key_last = "", *key_start = "", *stream_prefix = "";
static int history_size = 1000, history_ttl = 3600;
static long long pub_all = 0, *pub_user;
static long long refused = 0, redis_errors = 0, failed_status = 0;
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
  if (c->state == DEAD || c->state == WAITING) return;
  if (c->state != READY) connecting--;
  else ready_count--;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (mode == STORM && c->state != DEAD) {
    // As EventSource does: wait the retry it was given, then reconnect.
    storm_t *s = &st[c - conns];
    c->state = WAITING;
    s->reconnect_at = now_ns() + (long long)s->retry_ms * 1000000LL;
    s->ev_has = s->ev_gap = 0;
    return;
  }
  c->state = DEAD;
  dead_count++;
}

/** A refusal (non-200): EventSource gives up for good, and so does this client. */
static void fail_conn(conn_t *c) {
  if (mode == STORM) {
    failed_status++;
    if (c->state != READY) connecting--;
    else ready_count--;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = DEAD;
    dead_count++;
    return;
  }
  kill_conn(c);
}

static void send_request(int i) {
  conn_t *c = &conns[i];
  char req[512];
  char channel[64];
  char last[80] = "";
  if (mode == UNICAST) snprintf(channel, sizeof channel, "u%d", i);
  else if (mode == STORM) snprintf(channel, sizeof channel, "all,u%d", i);
  else snprintf(channel, sizeof channel, "all");
  if (mode == STORM) {
    st[i].req_at = now_ns();
    if (st[i].last_id[0]) snprintf(last, sizeof last, "Last-Event-ID: %s\r\n", st[i].last_id);
  }
  int n = snprintf(req, sizeof req,
                   "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n",
                   path, channel, host, port, last);
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

// Storm: one line of the stream, parsed as EventSource does (id buffer
// committed on dispatch, `retry:` kept), then checked: data is
// "<publish ns> a<seq>" for `all` or "<publish ns> u<seq>" for the own channel.
static void storm_line(int i, const char *line, int len, long long now) {
  storm_t *s = &st[i];
  if (len == 0) {  // dispatch
    if (s->ev_gap) s->gaps++;
    else if (s->ev_has) {
      int *next = s->ev_kind == 'a' ? &s->all_next : &s->own_next;
      if (s->ev_seq == *next) (*next)++;
      else if (s->ev_seq > *next) {
        s->lost += s->ev_seq - *next;
        *next = s->ev_seq + 1;
      } else
        s->dup++;
      events_total++;
      if (measuring) {
        events++;
        hist[bucket((now - s->ev_ts) / 1000)]++;
      }
      if (storm_phase && !s->caught_at && s->back_at && s->ev_kind == 'a' && s->ev_ts > s->req_at) s->caught_at = now;
    }
    if (s->ev_has || s->ev_gap) memcpy(s->last_id, s->id_buf, sizeof s->last_id);
    s->ev_has = s->ev_gap = 0;
    return;
  }
  const char *colon = memchr(line, ':', len);
  if (colon == line) return;  // a comment (: ping)
  int nlen = colon ? (int)(colon - line) : len;
  const char *v = colon ? colon + 1 : line + len;
  const char *end = line + len;
  if (v < end && *v == ' ') v++;
  int vlen = (int)(end - v);
  if (nlen == 2 && !memcmp(line, "id", 2)) {
    if (vlen < (int)sizeof s->id_buf) {
      memcpy(s->id_buf, v, vlen);
      s->id_buf[vlen] = 0;
    }
  } else if (nlen == 5 && !memcmp(line, "event", 5)) {
    s->ev_gap = vlen == 3 && !memcmp(v, "gap", 3);
  } else if (nlen == 5 && !memcmp(line, "retry", 5)) {
    s->retry_ms = atoi(v);
  } else if (nlen == 4 && !memcmp(line, "data", 4)) {
    long long ts = 0;
    while (v < end && *v >= '0' && *v <= '9') ts = ts * 10 + (*v++ - '0');
    if (v + 2 > end || *v != ' ' || (v[1] != 'a' && v[1] != 'u')) return;
    s->ev_kind = v[1];
    v += 2;
    int seq = 0;
    while (v < end && *v >= '0' && *v <= '9') seq = seq * 10 + (*v++ - '0');
    s->ev_seq = seq;
    s->ev_ts = ts;
    s->ev_has = 1;
  }
}

static void line_of(int i, const char *line, int len, long long now) {
  if (mode == STORM) storm_line(i, line, len, now);
  else on_line(line, len, now);
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
        fail_conn(c);
        return;
      }
      c->state = READY;
      connecting--;
      ready_count++;
      if (mode == STORM && storm_phase && !st[i].back_at) st[i].back_at = now;
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
          line_of(i, c->carry, c->carry_len + part, now);
        }
        c->carry_len = 0;
      } else {
        line_of(i, p, (int)(nl - p), now);
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

// Storm: one EVALSHA of sse-hub's history script (issue the id, XADD, PUBLISH),
// as RedisBroker#publish does with history on (one Redis: PUBLISH, and an empty
// clock so Redis's own issues the id). user < 0 publishes on `all`.
static void queue_storm(long long ts, int user) {
  char channel[48], stream[160], payload[96], cmd[640];
  long long seq = user < 0 ? pub_all++ : pub_user[user]++;
  if (user < 0) snprintf(channel, sizeof channel, "%sall", prefix);
  else snprintf(channel, sizeof channel, "%su%d", prefix, user);
  snprintf(stream, sizeof stream, "%s%s", stream_prefix, user < 0 ? "all" : channel + strlen(prefix));
  // The django_sse array without its closing bracket: the script appends the id.
  int pl = snprintf(payload, sizeof payload, "[\"message\",\"%lld %c%lld\"", ts, user < 0 ? 'a' : 'u', seq);
  char size[16], ttl[16];
  snprintf(size, sizeof size, "%d", history_size);
  snprintf(ttl, sizeof ttl, "%d", history_ttl);
  int n = snprintf(cmd, sizeof cmd,
                   "*12\r\n$7\r\nEVALSHA\r\n$%zu\r\n%s\r\n$1\r\n3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n"
                   "$%zu\r\n%s\r\n$%d\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$7\r\nPUBLISH\r\n$0\r\n\r\n",
                   strlen(script_sha), script_sha, strlen(key_last), key_last, strlen(key_start), key_start,
                   strlen(stream), stream, strlen(channel), channel, pl, payload, strlen(size), size, strlen(ttl), ttl);
  if (wlen + n > (int)sizeof wbuf) {
    fprintf(stderr, "loadgen: the publish buffer is full\n");
    exit(1);
  }
  memcpy(wbuf + wlen, cmd, n);
  wlen += n;
  published++;
}

// Replies to our commands: counted, and any error reply (-NOSCRIPT, -ERR ...)
// is reported, so a publish never vanishes unnoticed. A minimal RESP reader
// for the replies EVALSHA and PUBLISH give: bulk strings, integers, errors.
static char rresp[1 << 12];
static int rresp_len = 0, rskip = 0;
static void parse_replies(const char *buf, int n) {
  int i = 0;
  while (i < n) {
    if (rskip > 0) {
      int k = rskip < n - i ? rskip : n - i;
      rskip -= k;
      i += k;
      continue;
    }
    char ch = buf[i++];
    if (rresp_len < (int)sizeof rresp - 1) rresp[rresp_len++] = ch;
    if (ch != '\n') continue;
    rresp[rresp_len] = 0;
    if (rresp[0] == '-') {
      if (redis_errors++ < 3) fprintf(stderr, "loadgen: redis: %s", rresp);
    } else if (rresp[0] == '$') {
      int len = atoi(rresp + 1);
      if (len >= 0) rskip = len + 2;
    }
    rresp_len = 0;
  }
}

static void drain_redis(void) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(redis_fd, buf, sizeof buf);
    if (n > 0) {
      if (mode == STORM) parse_replies(buf, (int)n);
      continue;
    }
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

static long long last_scan = 0;

static void poll_once(int timeout_ms) {
  // Keep a bounded number of connects in flight so the listen backlog holds.
  while (next_to_open < nconns && connecting < max_connecting) open_conn(next_to_open++);
  if (mode == STORM && connecting < max_connecting) {
    long long now = now_ns();
    if (now - last_scan > 2000000LL) {  // reconnects due, at most every 2 ms
      last_scan = now;
      for (int i = 0; i < nconns && connecting < max_connecting; i++) {
        if (conns[i].state == WAITING && st[i].reconnect_at <= now) {
          st[i].reconnect_at = 0;
          st[i].reconnects++;
          open_conn(i);
        }
      }
    }
  }
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
    if (c->state == WAITING) continue;
    if (evs[k].events & (EPOLLERR | EPOLLHUP) && c->state == CONNECTING) {
      if (mode == STORM) refused++;  // nobody listening yet: retry, as a browser does
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

// ---- storm ------------------------------------------------------------------
static long long t_pub0 = 0, pub_users_total = 0;

static void storm_publish(long long now) {
  double secs = (now - t_pub0) / 1e9;
  long long due_all = (long long)(secs * rate_all), due_users = (long long)(secs * rate_users);
  while (pub_all < due_all) queue_storm(now, -1);
  while (pub_users_total < due_users) {
    queue_storm(now, (int)(random() % nconns));
    pub_users_total++;
  }
  if (wlen) flush_redis();
}

static int all_caught_up(void) {
  for (int i = 0; i < nconns; i++)
    if (!st[i].caught_at && conns[i].state != DEAD) return 0;
  return 1;
}

static int all_delivered(void) {
  for (int i = 0; i < nconns; i++) {
    if (conns[i].state == DEAD) continue;
    if (conns[i].state != READY || st[i].all_next < pub_all || st[i].own_next < pub_user[i]) return 0;
  }
  return 1;
}

/** Runs for up to `ms`, publishing if asked, until `done()` holds (checked every 10 ms). */
static long long storm_run(long long ms, int publish, int (*done)(void)) {
  long long start = now_ns(), stop = start + ms * 1000000LL, last_check = 0;
  for (;;) {
    long long now = now_ns();
    if (now >= stop) return 0;
    if (done && now - last_check > 10000000LL) {
      last_check = now;
      if (done()) return now;
    }
    if (publish) storm_publish(now);
    poll_once(1);
  }
}

static int storm_main(void) {
  st = calloc(nconns, sizeof *st);
  pub_user = calloc(nconns, sizeof *pub_user);
  for (int i = 0; i < nconns; i++) st[i].retry_ms = 3000;  // EventSource's default until told
  long long t_open = now_ns();
  while (ready_count + dead_count < nconns) {
    poll_once(10);
    if ((now_ns() - t_open) / 1000000 > ready_timeout_ms) {
      fprintf(stderr, "loadgen: only %d of %d connections ready\n", ready_count, nconns);
      return 1;
    }
  }
  double connect_s = (now_ns() - t_open) / 1e9;
  storm_run(settle_ms, 0, NULL);
  t_pub0 = now_ns();
  measuring = 1;
  storm_run(warmup_ms, 1, NULL);
  measuring = 0;
  // Latency before the storm: the steady state the storm is compared with.
  double p50_before = percentile(0.5) / 1000, p99_before = percentile(0.99) / 1000;
  memset(hist, 0, sizeof hist);
  events = 0;
  long long lost_before = 0, dup_before = 0;
  for (int i = 0; i < nconns; i++) lost_before += st[i].lost, dup_before += st[i].dup;

  // The storm: bench/run.mjs SIGTERMs the server on this line and starts a fresh one.
  printf("{\"event\":\"sigterm\"}\n");
  fflush(stdout);
  t_storm = now_ns();
  storm_phase = 1;
  measuring = 1;
  storm_run(storm_max_ms, 1, all_caught_up);
  measuring = 0;
  // Steady state after the storm, then let the last events arrive.
  storm_run(duration_ms, 1, NULL);
  storm_run(5000, 0, all_delivered);

  long long lost = 0, missing = 0, dup = 0, gaps = 0, reconnects = 0, back_max = 0, caught_max = 0;
  int with_loss = 0, with_dup = 0, not_back = 0, not_caught = 0, retry_min = 1 << 30, retry_max = 0;
  for (int i = 0; i < nconns; i++) {
    storm_t *s = &st[i];
    // What never arrived at all, counted against what was published.
    if (s->all_next < pub_all) s->missing += (int)(pub_all - s->all_next);
    if (s->own_next < pub_user[i]) s->missing += (int)(pub_user[i] - s->own_next);
    missing += s->missing;
    lost += s->lost;
    dup += s->dup;
    gaps += s->gaps;
    reconnects += s->reconnects;
    with_loss += s->lost + s->missing > 0;
    with_dup += s->dup > 0;
    if (!s->back_at) not_back++;
    else if (s->back_at - t_storm > back_max) back_max = s->back_at - t_storm;
    if (!s->caught_at) not_caught++;
    else if (s->caught_at - t_storm > caught_max) caught_max = s->caught_at - t_storm;
    if (s->retry_ms < retry_min) retry_min = s->retry_ms;
    if (s->retry_ms > retry_max) retry_max = s->retry_ms;
  }
  int ok = lost == 0 && missing == 0 && dup == 0 && gaps == 0 && not_caught == 0 && failed_status == 0 &&
           redis_errors == 0;
  printf("{\"conns\":%d,\"connectSeconds\":%.2f,\"publishedAll\":%lld,\"publishedUsers\":%lld,"
         "\"lostBeforeStorm\":%lld,\"duplicatedBeforeStorm\":%lld,\"reconnects\":%lld,\"refused\":%lld,"
         "\"failedStatus\":%lld,\"notBack\":%d,\"notCaughtUp\":%d,\"backSeconds\":%.2f,\"catchUpSeconds\":%.2f,"
         "\"allCaughtUp\":%s,\"p50BeforeMs\":%.3f,\"p99BeforeMs\":%.3f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"events\":%lld,"
         "\"lost\":%lld,\"missing\":%lld,\"duplicated\":%lld,"
         "\"gaps\":%lld,\"connsWithLoss\":%d,\"connsWithDuplicates\":%d,\"redisErrors\":%lld,"
         "\"retryMinMs\":%d,\"retryMaxMs\":%d,\"ok\":%s}\n",
         nconns, connect_s, pub_all, pub_users_total, lost_before, dup_before, reconnects, refused, failed_status,
         not_back, not_caught, back_max / 1e9, caught_max / 1e9, not_caught == 0 ? "true" : "false", p50_before, p99_before,
         percentile(0.5) / 1000, percentile(0.99) / 1000, events, lost, missing, dup, gaps, with_loss, with_dup, redis_errors, retry_min, retry_max,
         ok ? "true" : "false");
  fflush(stdout);
  return ok ? 0 : 3;
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
    else if (!strcmp(k, "--rate-all")) rate_all = atof(v);
    else if (!strcmp(k, "--rate-users")) rate_users = atof(v);
    else if (!strcmp(k, "--storm-max")) storm_max_ms = atol(v);
    else if (!strcmp(k, "--max-connecting")) max_connecting = atoi(v);
    else if (!strcmp(k, "--script-sha")) script_sha = v;
    else if (!strcmp(k, "--key-last")) key_last = v;
    else if (!strcmp(k, "--key-start")) key_start = v;
    else if (!strcmp(k, "--stream-prefix")) stream_prefix = v;
    else if (!strcmp(k, "--history-size")) history_size = atoi(v);
    else if (!strcmp(k, "--history-ttl")) history_ttl = atoi(v);
    else if (!strcmp(k, "--path")) path = v;
    else if (!strcmp(k, "--prefix")) prefix = v;
    else if (!strcmp(k, "--pids")) snprintf(pids_arg, sizeof pids_arg, "%s", v);
    else if (!strcmp(k, "--mode")) {
      if (!strcmp(v, "broadcast")) mode = BROADCAST;
      else if (!strcmp(v, "unicast")) mode = UNICAST;
      else if (!strcmp(v, "idle")) mode = IDLE;
      else if (!strcmp(v, "max")) mode = MAX;
      else if (!strcmp(v, "storm")) mode = STORM;
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
  if (mode == STORM) return storm_main();

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
