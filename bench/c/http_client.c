/* http_client: a count-bounded HTTP/1.1 keep-alive load client (bench.instructions' framework rows).
 *
 * wrk is bounded by time only; a workload counted under callgrind, where the server runs some 50
 * times slower, needs an exact number of requests instead. This opens C keep-alive connections to
 * HOST:PORT and runs a closed loop on each: send "GET PATH HTTP/1.1", read one response (its head,
 * then Content-Length bytes of body), send the next -- until N requests were answered in all, so
 * the server serves exactly N. A response that is not 200, has no Content-Length, or a connection
 * the server closes is an error; so is 10 s without an answer. At the end it prints one line:
 *
 *     requests=N seconds=T
 *
 * usage: http_client -t HOST:PORT [-c CONNS] [-n REQUESTS] [-p PATH]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

struct conn {
    int fd;
    size_t have;        /* bytes of the current response in buf */
    size_t need;        /* head + body length once the head is parsed, else 0 */
    char *buf;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void fail(const char *why) {
    fprintf(stderr, "http_client: %s\n", why);
    exit(1);
}

static void usage(void) {
    fprintf(stderr, "usage: http_client -t HOST:PORT [-c CONNS] [-n REQUESTS] [-p PATH]\n");
    exit(2);
}

static char request[512];
static size_t request_len;

/* Sends the request whole (a few dozen bytes: the socket buffer always takes it). */
static void send_request(struct conn *c) {
    size_t off = 0;
    while (off < request_len) {
        ssize_t n = write(c->fd, request + off, request_len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        off += (size_t)n;
    }
    c->have = 0;
    c->need = 0;
}

/* Once the head is in: the length of head + body, or fails on a non-200 or length-less answer. */
static size_t response_length(const char *buf, size_t have) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) {
        if (have >= BUF_SIZE) fail("response head too long");
        return 0;
    }
    size_t head = (size_t)(end - buf) + 4;
    if (have < 12 || memcmp(buf + 9, "200", 3) != 0) fail("a response was not 200 OK");
    for (const char *p = buf; p < end;) {
        const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (!eol) break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
            size_t body = (size_t)strtoull(p + 15, NULL, 10);
            if (head + body > BUF_SIZE) fail("response body too large");
            return head + body;
        }
        p = eol + 2;
    }
    fail("a response had no Content-Length");
    return 0;
}

int main(int argc, char **argv) {
    const char *target = NULL, *path = "/";
    int nconns = 10;
    unsigned long long max_requests = 1000;
    int opt;

    while ((opt = getopt(argc, argv, "t:c:n:p:")) != -1) {
        switch (opt) {
        case 't': target = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 'n': max_requests = strtoull(optarg, NULL, 10); break;
        case 'p': path = optarg; break;
        default: usage();
        }
    }
    if (!target || nconns < 1 || max_requests < 1) usage();

    char host[256];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof host) usage();
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) usage();
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, target);
    if (len < 0 || (size_t)len >= sizeof request) usage();
    request_len = (size_t)len;

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    if ((unsigned long long)nconns > max_requests) nconns = (int)max_requests;
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->buf = malloc(BUF_SIZE);
        if (!c->buf) die("malloc");
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0) die("connect");
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    }

    unsigned long long started = 0, done = 0;
    int inflight = 0;
    double t0 = now(), t_last = t0;
    for (int i = 0; i < nconns; i++) {
        send_request(&conns[i]);
        started++;
        inflight++;
    }
    struct epoll_event events[64];
    while (inflight > 0) {
        int nev = epoll_wait(epfd, events, 64, 10000);
        if (nev < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        if (nev == 0) fail("no answer for 10 s");
        for (int e = 0; e < nev; e++) {
            struct conn *c = events[e].data.ptr;
            ssize_t n = read(c->fd, c->buf + c->have, BUF_SIZE - c->have);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("read");
            }
            if (n == 0) fail("the server closed a connection");
            c->have += (size_t)n;
            if (!c->need) c->need = response_length(c->buf, c->have);
            if (!c->need || c->have < c->need) continue;
            if (c->have > c->need) fail("more bytes than one response (nothing was pipelined)");
            done++;
            inflight--;
            t_last = now();
            if (started < max_requests) {
                send_request(c);
                started++;
                inflight++;
            }
        }
    }
    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    printf("requests=%llu seconds=%.6f\n", done, t_last - t0);
    fflush(stdout);
    return 0;
}
