/*
 * zenserver PORT
 *
 * The limit: a minimal single-threaded, edge-triggered epoll server of the
 * Zen-of-Python protocol (zend spec, section 1), written the way a C programmer
 * would, to measure how close zend's reactor gets to it.
 *
 * - non-blocking sockets; accept4 until EAGAIN; EPOLLET | EPOLLRDHUP; TCP_NODELAY;
 * - the short-read rule: a read that returns less than was asked for drained the
 *   socket, so the next read waits for the next edge (unless the peer half-closed:
 *   then read on to the end of file);
 * - reads go to one shared receive buffer, answers to one shared send buffer; a
 *   connection owns buffers only while it holds a partial request (receive) or
 *   answers the kernel would not take (send), so idle connections hold none;
 * - write first; EPOLLOUT is armed only when the kernel's send buffer is full, and
 *   while it is, the connection is neither read nor answered (backpressure);
 * - pipelining: every complete request in a read is answered, in order, with one
 *   send; whitespace before a request is skipped; more than 4096 bytes without '?'
 *   gets "Error: request too long." and a close; after a half-close every owed
 *   answer is sent, then the connection is closed.
 *
 * Prints "listening on 127.0.0.1:PORT" once it accepts; exits 0 on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUEST 4096
#define BUFFER_SIZE 65536
#define LISTENER UINT32_MAX

#define TEXT(literal) literal, sizeof literal - 1
static const struct { const char *question; size_t question_len; const char *answer; size_t answer_len; } table[] = {
    {TEXT("Beautiful is better than?"), TEXT("Ugly.")},
    {TEXT("Explicit is better than?"), TEXT("Implicit.")},
    {TEXT("Simple is better than?"), TEXT("Complex.")},
};
static const char UNKNOWN[] = "Error: unknown aphorism.", TOO_LONG[] = "Error: request too long.";
#define LONGEST_ANSWER 24

struct conn {
    int fd;               /* -1 once closed */
    uint32_t generation;  /* tells a stale event from one for a new connection on the same fd */
    char *in;             /* unanswered input (a partial request), malloc'd only while there is some */
    size_t in_len;
    char *out;            /* answers the kernel did not take, malloc'd only while there are some */
    size_t out_off, out_len;
    uint8_t unread;       /* not drained: read again before waiting for the next edge */
    uint8_t half_closed;  /* the peer sent its FIN: read to the end of file */
    uint8_t closing;      /* close once `out` is sent (request too long) */
};

enum { NEED_INPUT, OUTPUT_FULL, TOO_LONG_REQUEST };

static int epfd;
static struct conn *conns;  /* indexed by fd; pages are touched only for fds in use */
static char rbuf[BUFFER_SIZE], wbuf[BUFFER_SIZE];
static size_t wlen;
static volatile sig_atomic_t stopping;

static void on_signal(int signo) { (void)signo; stopping = 1; }

static void die(const char *what) { perror(what); exit(2); }

static void watch(struct conn *c, int op, uint32_t out) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | out,
                             .data.u64 = (uint64_t)c->generation << 32 | (uint32_t)c->fd};
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void conn_close(struct conn *c) {
    close(c->fd);  /* also removes it from the epoll set */
    free(c->in);
    free(c->out);
    uint32_t generation = c->generation;
    *c = (struct conn){.fd = -1, .generation = generation};
}

static void keep(char **buffer, size_t *length, const char *bytes, size_t len) {
    if (!len) return;
    if (!(*buffer = malloc(len))) die("malloc");
    memcpy(*buffer, bytes, *length = len);
}

static const char *answer_for(const char *request, size_t len, size_t *answer_len) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].question_len == len && memcmp(table[i].question, request, len) == 0)
            return *answer_len = table[i].answer_len, table[i].answer;
    return *answer_len = sizeof UNKNOWN - 1, UNKNOWN;
}

static void append(const char *bytes, size_t len) {
    memcpy(wbuf + wlen, bytes, len);
    wlen += len;
}

/* Answers the complete requests in buf[*pos, len) into wbuf, until there are no more
 * or wbuf is full. A request too long gets its error, and the rest of buf is dropped. */
static int answer(const char *buf, size_t *pos, size_t len) {
    size_t p = *pos;
    int state;
    for (;;) {
        while (p < len && (buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\r' || buf[p] == '\n')) p++;
        if (sizeof wbuf - wlen < LONGEST_ANSWER) {
            state = OUTPUT_FULL;
            break;
        }
        const char *mark = memchr(buf + p, '?', len - p);
        size_t request = mark ? (size_t)(mark - (buf + p)) + 1 : len - p;
        if (mark ? request > MAX_REQUEST : request >= MAX_REQUEST) {
            append(TOO_LONG, sizeof TOO_LONG - 1);
            p = len;
            state = TOO_LONG_REQUEST;
            break;
        }
        if (!mark) {
            state = NEED_INPUT;
            break;
        }
        size_t n;
        const char *a = answer_for(buf + p, request, &n);
        append(a, n);
        p += request;
    }
    *pos = p;
    return state;
}

/* Sends wbuf; what the kernel does not take moves to c->out and arms EPOLLOUT.
 * Returns 1 if all was sent, 0 if the connection now waits for EPOLLOUT, -1 on error. */
static int flush(struct conn *c) {
    size_t off = 0;
    while (off < wlen) {
        ssize_t n = send(c->fd, wbuf + off, wlen - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (errno == EAGAIN) {
            keep(&c->out, &c->out_len, wbuf + off, wlen - off);
            wlen = 0;
            watch(c, EPOLL_CTL_MOD, EPOLLOUT);
            return 0;
        } else if (errno != EINTR) {
            wlen = 0;
            return -1;
        }
    }
    wlen = 0;
    return 1;
}

/* Answers what the connection kept, then reads (if `readable`), answers and sends until
 * the socket is drained or the kernel's send buffer is full. */
static void serve(struct conn *c, int readable) {
    size_t len = c->in_len;
    if (len) {
        memcpy(rbuf, c->in, len);
        free(c->in);
        c->in = NULL;
        c->in_len = 0;
    }
    int drained = !readable, eof = 0;
    c->unread = 0;
    for (;;) {
        size_t pos = 0;
        int state;
        do {
            state = answer(rbuf, &pos, len);
            int sent = wlen ? flush(c) : 1;
            if (sent < 0) {
                conn_close(c);
                return;
            }
            if (sent == 0) {  /* backpressure: keep the rest until the kernel takes more */
                keep(&c->in, &c->in_len, rbuf + pos, len - pos);
                c->unread = !drained || eof;  /* end of file is read again then */
                c->closing = state == TOO_LONG_REQUEST;
                return;
            }
        } while (state == OUTPUT_FULL);
        if (state == TOO_LONG_REQUEST || eof) {  /* every owed answer is sent */
            conn_close(c);
            return;
        }
        if (pos) memmove(rbuf, rbuf + pos, len -= pos);  /* a partial request, under MAX_REQUEST */
        if (drained) break;
        size_t want = sizeof rbuf - len;
        ssize_t n = read(c->fd, rbuf + len, want);
        if (n > 0) {
            len += (size_t)n;
            drained = (size_t)n < want && !c->half_closed;  /* the short-read rule */
        } else if (n == 0) {
            eof = drained = 1;
        } else if (errno == EAGAIN) {
            drained = 1;
        } else if (errno != EINTR) {
            conn_close(c);
            return;
        }
    }
    keep(&c->in, &c->in_len, rbuf, len);  /* a partial request waits for its '?' */
}

/* EPOLLOUT: send what is left; once all is out, disarm EPOLLOUT and carry on. */
static void resume(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (errno == EAGAIN) {
            return;
        } else if (errno != EINTR) {
            conn_close(c);
            return;
        }
    }
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = 0;
    if (c->closing) {
        conn_close(c);
        return;
    }
    watch(c, EPOLL_CTL_MOD, 0);
    serve(c, c->unread);
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) perror("accept4");  /* EMFILE: the rest wait for the next edge */
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = &conns[fd];
        c->fd = fd;
        c->generation++;
        watch(c, EPOLL_CTL_ADD, 0);
    }
}

int main(int argc, char **argv) {
    long port = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
    if (port < 1 || port > 65535) {
        fprintf(stderr, "usage: zenserver PORT\n");
        return 2;
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) die("getrlimit");
    limit.rlim_cur = limit.rlim_max;  /* as many connections as the hard limit allows */
    setrlimit(RLIMIT_NOFILE, &limit);
    if (!(conns = calloc(limit.rlim_cur, sizeof *conns))) die("calloc");

    /* SIGTERM/SIGINT are blocked except inside epoll_pwait, so none is missed. */
    sigset_t blocked, during_wait;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigprocmask(SIG_BLOCK, &blocked, &during_wait);
    struct sigaction action = {.sa_handler = on_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) < 0 ||
        listen(listener, SOMAXCONN) < 0)
        die("listen");
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = LISTENER};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev) < 0) die("epoll_ctl");
    printf("listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);

    struct epoll_event events[256];
    while (!stopping) {
        int n = epoll_pwait(epfd, events, 256, -1, &during_wait);
        if (n < 0 && errno != EINTR) die("epoll_pwait");
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == LISTENER) {
                accept_all(listener);
                continue;
            }
            struct conn *c = &conns[(uint32_t)events[i].data.u64];
            uint32_t e = events[i].events;
            if (c->fd < 0 || c->generation != (uint32_t)(events[i].data.u64 >> 32)) continue;  /* stale */
            if (e & (EPOLLRDHUP | EPOLLHUP)) c->half_closed = 1;
            if (e & EPOLLERR) {
                conn_close(c);
            } else if (c->out) {  /* waiting for the kernel to take more: remember new input */
                if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) c->unread = 1;
                if (e & (EPOLLOUT | EPOLLHUP)) resume(c);
            } else {
                serve(c, 1);
            }
        }
    }
    return 0;
}
