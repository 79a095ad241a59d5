/*
 * zenload PORT CONNECTIONS PIPELINE SECONDS
 *
 * Minimal reference load generator for the Zen-of-Python protocol (zend spec,
 * section 1). Opens CONNECTIONS non-blocking connections to 127.0.0.1:PORT,
 * keeps PIPELINE requests in flight on each (cycling through the three default
 * questions), verifies every answer byte for byte, and after SECONDS prints one
 * JSON line:
 *
 *   {"requests":N,"errors":E,"mismatches":M,"rps":R,"seconds":S}
 *
 * requests   answers received complete and correct
 * errors     failed connects, resets, unexpected closes, socket errors
 * mismatches answers that differ from the expected bytes, or bytes nobody asked
 *            for (the connection is closed after its first mismatch, since
 *            framing is lost)
 *
 * Exits 0 only if errors == 0, mismatches == 0 and requests > 0.
 * Single-threaded: one epoll loop, level-triggered.
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

static const char *const questions[3] = {
    "Beautiful is better than?",
    "Explicit is better than?",
    "Simple is better than?",
};
static const char *const answers[3] = {"Ugly.", "Implicit.", "Complex."};
static size_t qlen[3], alen[3];

struct conn {
    int fd;
    int connected;
    int closed;
    unsigned start;     /* question index of this connection's first request */
    uint64_t sent;      /* requests queued for sending */
    uint64_t answered;  /* answers fully received */
    size_t aoff;        /* bytes of the current answer received so far */
    char *out;          /* pending output */
    size_t outlen, outoff, outcap;
    int want_out;       /* EPOLLOUT registered */
};

static int epfd;
static long pipeline;
static uint64_t n_requests, n_errors, n_mismatches;
static int stopping;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void conn_close(struct conn *c) {
    if (c->closed) return;
    c->closed = 1;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void conn_fail(struct conn *c) {
    if (!stopping) n_errors++;
    conn_close(c);
}

static void set_events(struct conn *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_out = want_out;
}

/* Queue requests until PIPELINE are in flight, then write what the socket takes. */
static void pump(struct conn *c) {
    if (c->closed || !c->connected) return;
    if (!stopping) {
        while (c->sent - c->answered < (uint64_t)pipeline) {
            unsigned q = (unsigned)((c->start + c->sent) % 3);
            if (c->outlen + qlen[q] > c->outcap) {
                /* compact, then grow if needed */
                memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
                c->outlen -= c->outoff;
                c->outoff = 0;
                while (c->outlen + qlen[q] > c->outcap) {
                    c->outcap *= 2;
                    c->out = realloc(c->out, c->outcap);
                    if (!c->out) die("realloc");
                }
            }
            memcpy(c->out + c->outlen, questions[q], qlen[q]);
            c->outlen += qlen[q];
            c->sent++;
        }
    }
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, 1);
            return;
        } else {
            conn_fail(c);
            return;
        }
    }
    c->outoff = c->outlen = 0;
    set_events(c, 0);
}

/* Verify received bytes against the expected answers, byte for byte. */
static void consume(struct conn *c, const char *buf, size_t len) {
    size_t pos = 0;
    while (pos < len) {
        if (c->answered >= c->sent) {       /* bytes nobody asked for */
            n_mismatches++;
            conn_close(c);
            return;
        }
        unsigned a = (unsigned)((c->start + c->answered) % 3);
        size_t need = alen[a] - c->aoff;
        size_t take = len - pos < need ? len - pos : need;
        if (memcmp(buf + pos, answers[a] + c->aoff, take) != 0) {
            n_mismatches++;
            conn_close(c);
            return;
        }
        pos += take;
        c->aoff += take;
        if (c->aoff == alen[a]) {
            c->aoff = 0;
            c->answered++;
            if (!stopping) n_requests++;
        }
    }
}

static void on_readable(struct conn *c) {
    static char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            consume(c, buf, (size_t)n);
            if (c->closed) return;
            if ((size_t)n < sizeof buf) break;
        } else if (n == 0) {                /* server closed on us */
            conn_fail(c);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            conn_fail(c);
            return;
        }
    }
    pump(c);
}

static void on_writable(struct conn *c) {
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            conn_fail(c);
            return;
        }
        c->connected = 1;
    }
    pump(c);
}

static void usage(void) {
    fprintf(stderr, "usage: zenload PORT CONNECTIONS PIPELINE SECONDS\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 5) usage();
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end || port < 1 || port > 65535) usage();
    long nconns = strtol(argv[2], &end, 10);
    if (*end || nconns < 1) usage();
    pipeline = strtol(argv[3], &end, 10);
    if (*end || pipeline < 1) usage();
    double seconds = strtod(argv[4], &end);
    if (*end || !(seconds > 0)) usage();

    for (int i = 0; i < 3; i++) {
        qlen[i] = strlen(questions[i]);
        alen[i] = strlen(answers[i]);
    }

    /* Room for the connections. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nconns + 16) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) die("calloc");

    double t0 = now();
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->start = (unsigned)(i % 3);
        c->outcap = (size_t)pipeline * 32 + 64;
        c->out = malloc(c->outcap);
        if (!c->out) die("malloc");
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            perror("socket");
            n_errors++;
            c->closed = 1;
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
        if (r < 0 && errno != EINPROGRESS) {
            perror("connect");
            n_errors++;
            close(c->fd);
            c->closed = 1;
            continue;
        }
        c->connected = (r == 0);
        c->want_out = 1;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    }

    double deadline = t0 + seconds;
    struct epoll_event events[256];
    for (;;) {
        double left = deadline - now();
        if (left <= 0) break;
        int timeout = (int)(left * 1000) + 1;
        int n = epoll_wait(epfd, events, 256, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->closed) continue;
            uint32_t e = events[i].events;
            if ((e & EPOLLERR) || ((e & EPOLLHUP) && !(e & EPOLLIN))) {
                conn_fail(c);
                continue;
            }
            if (e & EPOLLOUT) on_writable(c);
            if (!c->closed && (e & EPOLLIN)) on_readable(c);
        }
    }
    double elapsed = now() - t0;
    stopping = 1;
    for (long i = 0; i < nconns; i++) {
        conn_close(&conns[i]);
        free(conns[i].out);
    }
    free(conns);

    printf("{\"requests\":%llu,\"errors\":%llu,\"mismatches\":%llu,\"rps\":%.1f,\"seconds\":%.3f}\n",
           (unsigned long long)n_requests, (unsigned long long)n_errors,
           (unsigned long long)n_mismatches, n_requests / elapsed, elapsed);
    fflush(stdout);
    if (n_requests == 0 && n_errors == 0 && n_mismatches == 0)
        fprintf(stderr, "zenload: no answer received in %.3f s\n", elapsed);
    return (n_errors || n_mismatches || n_requests == 0) ? 1 : 0;
}
