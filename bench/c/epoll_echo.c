/* epoll_echo: the reference row of uvcffi's echo benchmarks.
 *
 * A minimal single-threaded echo server in C on level-triggered epoll: what the same load
 * client gets from a server with no interpreter and no event-loop library at all. It shows how
 * close to the machine's limit the Python loops are, and whether the client is the bottleneck.
 *
 * Each read lands in one 256 KiB buffer and is written straight back; when the kernel takes
 * only part of it, the rest waits in a per-connection buffer, reading from that connection
 * pauses and EPOLLOUT is armed until it drains (the same flow control a real server has).
 *
 * usage: epoll_echo (-t PORT | -u PATH) [-d MAX_SECONDS]
 * Binds 127.0.0.1:PORT (0 picks a free port) or the unix socket PATH, prints "port=N" or
 * "ready" on stdout, and serves until SIGTERM/SIGINT, or MAX_SECONDS (default 60), whichever
 * comes first. It never outlives its bound.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)

struct conn {
    int fd;
    char *pending;      /* bytes read but not yet written back */
    size_t npending;
    size_t cap;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what) {
    perror(what);
    exit(2);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int epfd;

static void watch(struct conn *c, int op, unsigned events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Writes buf; keeps what the kernel did not take. Returns -1 when the connection failed. */
static int send_or_keep(struct conn *c, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(c->fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
            if (c->cap < len) {
                char *p = realloc(c->pending, len);
                if (!p) die("realloc");
                c->pending = p;
                c->cap = len;
            }
            memmove(c->pending, buf, len);
            c->npending = len;
            watch(c, EPOLL_CTL_MOD, EPOLLOUT);  /* stop reading until it drains */
            return 0;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = -1;
    const char *path = NULL;
    double max_seconds = 60.0;
    int opt;
    while ((opt = getopt(argc, argv, "t:u:d:")) != -1) {
        switch (opt) {
        case 't': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'd': max_seconds = atof(optarg); break;
        default:
            fprintf(stderr, "usage: epoll_echo (-t PORT | -u PATH) [-d MAX_SECONDS]\n");
            return 2;
        }
    }
    if ((port < 0) == (path == NULL)) {
        fprintf(stderr, "usage: epoll_echo (-t PORT | -u PATH) [-d MAX_SECONDS]\n");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd;
    if (path) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
        unlink(path);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0) die("socket");
        if (bind(lfd, (struct sockaddr *)&sun, sizeof sun) < 0) die("bind");
    } else {
        struct sockaddr_in sin;
        int one = 1;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0) die("socket");
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0) die("bind");
    }
    if (listen(lfd, 512) < 0) die("listen");
    if (path) {
        printf("ready\n");
    } else {
        struct sockaddr_in sin;
        socklen_t len = sizeof sin;
        if (getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) die("getsockname");
        printf("port=%d\n", ntohs(sin.sin_port));
    }
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    struct epoll_event lev;
    lev.events = EPOLLIN;
    lev.data.ptr = NULL;  /* NULL marks the listening socket */
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");

    char *rbuf = malloc(RBUF_SIZE);
    if (!rbuf) die("malloc");
    struct epoll_event events[256];
    double deadline = now() + max_seconds;

    while (!stop) {
        double left = deadline - now();
        if (left <= 0) break;
        int nev = epoll_wait(epfd, events, 256, left > 0.5 ? 500 : (int)(left * 1000) + 1);
        if (nev < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < nev; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    if (!path) {
                        int one = 1;
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    }
                    c = calloc(1, sizeof *c);
                    if (!c) die("calloc");
                    c->fd = fd;
                    watch(c, EPOLL_CTL_ADD, EPOLLIN);
                }
                continue;
            }
            if (c->npending > 0) {
                /* EPOLLOUT: flush the backlog, then resume reading */
                size_t len = c->npending;
                c->npending = 0;
                watch(c, EPOLL_CTL_MOD, EPOLLIN);
                if (send_or_keep(c, c->pending, len) < 0) drop(c);
                continue;
            }
            ssize_t n = read(c->fd, rbuf, RBUF_SIZE);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                drop(c);
            } else if (n == 0) {
                drop(c);
            } else if (send_or_keep(c, rbuf, (size_t)n) < 0) {
                drop(c);
            }
        }
    }
    if (path) unlink(path);
    return 0;
}
