/* echo_client: the load client of uvcffi's echo benchmarks.
 *
 * Opens C connections to an echo server (TCP, unix stream socket, or UDP) and runs a closed
 * request/response loop on each: send a SIZE-byte message, wait until SIZE bytes came back,
 * send the next. One thread, one epoll set, non-blocking sockets, so the client costs far less
 * CPU per request than any Python server it loads, and it can be pinned to its own core.
 *
 * The load is bounded both in count (-n, total requests) and in time (-d, seconds); the client
 * also gives up when the server sends nothing for 5 s. At the end it prints one line:
 *
 *     requests=N seconds=T lost=L
 *
 * where T is the wall time from the first request to the last completed one (connect time is
 * not counted) and L is the number of UDP datagrams re-sent after 200 ms without an answer.
 * The exit status is 0 when at least one request completed and no connection failed.
 *
 * usage: echo_client (-t HOST:PORT | -u PATH | -U HOST:PORT) [-c CONNS] [-s SIZE]
 *                    [-n MAX_REQUESTS] [-d SECONDS]
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
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_TCP, MODE_UNIX, MODE_UDP };

struct conn {
    int fd;
    int busy;          /* a request is in flight */
    int want_out;      /* EPOLLOUT is registered: the message was not fully written */
    size_t sent;       /* bytes of the current message written */
    size_t received;   /* bytes of the current message echoed back */
    double sent_at;    /* UDP: when the datagram was (re)sent */
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

static void usage(void) {
    fprintf(stderr, "usage: echo_client (-t HOST:PORT | -u PATH | -U HOST:PORT) [-c CONNS] [-s SIZE]"
                    " [-n MAX_REQUESTS] [-d SECONDS]\n");
    exit(2);
}

static void parse_hostport(const char *arg, struct sockaddr_in *sin) {
    char host[256];
    const char *colon = strrchr(arg, ':');
    if (!colon || (size_t)(colon - arg) >= sizeof host) usage();
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) usage();
}

static int epfd;
static char *msg;          /* the message every request sends */
static char *rbuf;         /* scratch buffer every read lands in */
static size_t rbuf_size;
static size_t size;
static enum mode mode;

static void set_out(struct conn *c, int want) {
    struct epoll_event ev;
    if (c->want_out == want) return;
    c->want_out = want;
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* Writes what is left of the current message; returns -1 when the connection failed. */
static int push(struct conn *c) {
    if (mode == MODE_UDP) {
        if (send(c->fd, msg, size, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) return -1;
        c->sent = size;
        c->sent_at = now();
        return 0;
    }
    while (c->sent < size) {
        ssize_t n = write(c->fd, msg + c->sent, size - c->sent);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out(c, 1);
                return 0;
            }
            if (errno == EINTR) continue;
            return -1;
        }
        c->sent += (size_t)n;
    }
    set_out(c, 0);
    return 0;
}

static void start(struct conn *c) {
    c->busy = 1;
    c->sent = 0;
    c->received = 0;
}

int main(int argc, char **argv) {
    const char *target = NULL;
    int nconns = 10;
    unsigned long long max_requests = 1000000000ULL;
    double duration = 5.0;
    int opt;

    size = 1024;
    mode = MODE_TCP;
    while ((opt = getopt(argc, argv, "t:u:U:c:s:n:d:")) != -1) {
        switch (opt) {
        case 't': mode = MODE_TCP; target = optarg; break;
        case 'u': mode = MODE_UNIX; target = optarg; break;
        case 'U': mode = MODE_UDP; target = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 's': size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'n': max_requests = strtoull(optarg, NULL, 10); break;
        case 'd': duration = atof(optarg); break;
        default: usage();
        }
    }
    if (!target || nconns < 1 || size < 1 || duration <= 0) usage();
    if (mode == MODE_UDP && size > 65507) usage();

    msg = malloc(size);
    rbuf_size = size > 65536 ? size : 65536;
    rbuf = malloc(rbuf_size);
    if (!msg || !rbuf) die("malloc");
    for (size_t i = 0; i < size; i++) msg[i] = (char)('a' + i % 26);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");

    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (mode == MODE_UNIX) {
            struct sockaddr_un sun;
            memset(&sun, 0, sizeof sun);
            sun.sun_family = AF_UNIX;
            strncpy(sun.sun_path, target, sizeof sun.sun_path - 1);
            c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (c->fd < 0) die("socket");
            if (connect(c->fd, (struct sockaddr *)&sun, sizeof sun) < 0) die("connect");
        } else {
            struct sockaddr_in sin;
            parse_hostport(target, &sin);
            c->fd = socket(AF_INET, (mode == MODE_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
            if (c->fd < 0) die("socket");
            if (mode == MODE_TCP) {
                int one = 1;
                setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0) die("connect");
        }
        /* non-blocking from here on */
        {
            int fl = 1;
            if (ioctl(c->fd, FIONBIO, &fl) < 0) die("ioctl(FIONBIO)");
        }
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    }

    unsigned long long started = 0, done = 0, lost = 0;
    int failed = 0, inflight = 0;
    double t0 = now(), deadline = t0 + duration, last_event = t0, t_last_done = t0;
    struct epoll_event events[256];

    for (int i = 0; i < nconns && started < max_requests; i++) {
        start(&conns[i]);
        started++;
        inflight++;
        if (push(&conns[i]) < 0) { failed = 1; break; }
    }

    while (inflight > 0 && !failed) {
        double t = now();
        if (t >= deadline) break;
        if (t - last_event > 5.0) {
            fprintf(stderr, "echo_client: no answer for 5 s, giving up\n");
            failed = 1;
            break;
        }
        int timeout_ms = (int)((deadline - t) * 1000.0) + 1;
        if (mode == MODE_UDP && timeout_ms > 50) timeout_ms = 50;
        if (timeout_ms > 1000) timeout_ms = 1000;
        int nev = epoll_wait(epfd, events, 256, timeout_ms);
        if (nev < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        t = now();
        if (nev > 0) last_event = t;
        for (int e = 0; e < nev && !failed; e++) {
            struct conn *c = events[e].data.ptr;
            if (events[e].events & EPOLLOUT) {
                if (push(c) < 0) { failed = 1; break; }
            }
            if (!(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            for (;;) {
                ssize_t n = read(c->fd, rbuf, rbuf_size);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == EINTR) continue;
                    if (mode == MODE_UDP && errno == ECONNREFUSED) break;
                    perror("read");
                    failed = 1;
                    break;
                }
                if (n == 0 && mode != MODE_UDP) {
                    fprintf(stderr, "echo_client: server closed a connection\n");
                    failed = 1;
                    break;
                }
                if (!c->busy) continue;  /* a late UDP duplicate */
                c->received += mode == MODE_UDP ? size : (size_t)n;
                if (c->received >= size && c->sent >= size) {
                    done++;
                    t_last_done = now();
                    c->busy = 0;
                    inflight--;
                    if (started < max_requests && t_last_done < deadline) {
                        start(c);
                        started++;
                        inflight++;
                        if (push(c) < 0) { failed = 1; break; }
                    }
                    if (mode != MODE_UDP) break;  /* level-triggered: come back for more */
                }
            }
        }
        if (mode == MODE_UDP) {
            for (int i = 0; i < nconns; i++) {
                struct conn *c = &conns[i];
                if (c->busy && t - c->sent_at > 0.2) {
                    lost++;
                    if (push(c) < 0) { failed = 1; break; }
                }
            }
        }
    }

    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    printf("requests=%llu seconds=%.6f lost=%llu\n", done, t_last_done - t0, lost);
    fflush(stdout);
    return (failed || done == 0) ? 1 : 0;
}
