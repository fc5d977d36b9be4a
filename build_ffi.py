"""The one cffi builder of uvcffi: C declarations, C helpers, and where libuv comes from.

Out-of-line API mode: cffi compiles a real C extension against ``uv.h``, so struct sizes and
constants are the compiler's, never guessed. Structs are declared with ``...;`` and only the
fields Python touches.

libuv is bundled by default: libuv's own ``.c`` files from ``vendor/libuv/`` (placed there by
``python vendor/fetch_libuv.py``) are compiled into the extension with ``-fPIC``.
``UVCFFI_USE_SYSTEM_LIBUV=1`` links the system's shared libuv found by pkg-config instead
(Debian: ``libuv1-dev``). The declarations below stay within libuv 1.44's API so both work.

C reaches Python only through the ``extern "Python"`` functions declared at the end of the
cdef (implemented in ``src/uvcffi/_callbacks.py``). The pure-C helpers in ``C_SOURCE`` never
call Python: they are callbacks whose work needs no Python (wake-ups, buffer allocation).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
LIBUV = os.path.join(HERE, "vendor", "libuv")


def package_version() -> str:
    text = open(os.path.join(HERE, "src", "uvcffi", "_version.py")).read()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)  # type: ignore[union-attr]


CDEF = r"""
/* ---- basic types ------------------------------------------------------------------------ */
typedef int... uv_os_sock_t;
typedef int... uv_os_fd_t;
typedef int... uv_file;
typedef int... uv_uid_t;
typedef int... uv_gid_t;
typedef int... ssize_t;
typedef int... socklen_t;

typedef struct { char* base; size_t len; ...; } uv_buf_t;

typedef int... sa_family_t;
struct sockaddr { sa_family_t sa_family; ...; };
struct sockaddr_storage { sa_family_t ss_family; ...; };
struct sockaddr_in { sa_family_t sin_family; unsigned short sin_port; ...; };
struct sockaddr_in6 { sa_family_t sin6_family; unsigned short sin6_port; uint32_t sin6_flowinfo;
                      uint32_t sin6_scope_id; ...; };
struct sockaddr_un { sa_family_t sun_family; char sun_path[...]; ...; };
struct addrinfo {
    int ai_flags; int ai_family; int ai_socktype; int ai_protocol;
    socklen_t ai_addrlen; struct sockaddr* ai_addr; char* ai_canonname; struct addrinfo* ai_next;
    ...;
};
#define NI_MAXHOST ...
#define NI_MAXSERV ...

/* ---- handles and requests (opaque but for the fields Python reads) ------------------------ */
typedef struct uv_loop_s { void* data; ...; } uv_loop_t;
typedef struct uv_handle_s { void* data; uv_loop_t* loop; ...; } uv_handle_t;
typedef struct uv_stream_s { void* data; uv_loop_t* loop; size_t write_queue_size; ...; } uv_stream_t;
typedef struct uv_tcp_s { void* data; uv_loop_t* loop; size_t write_queue_size; ...; } uv_tcp_t;
typedef struct uv_pipe_s { void* data; uv_loop_t* loop; size_t write_queue_size; ...; } uv_pipe_t;
typedef struct uv_tty_s { void* data; ...; } uv_tty_t;
typedef struct uv_udp_s {
    void* data; uv_loop_t* loop; size_t send_queue_size; size_t send_queue_count; ...;
} uv_udp_t;
typedef struct uv_poll_s { void* data; ...; } uv_poll_t;
typedef struct uv_timer_s { void* data; ...; } uv_timer_t;
typedef struct uv_async_s { void* data; ...; } uv_async_t;
typedef struct uv_idle_s { void* data; ...; } uv_idle_t;
typedef struct uv_check_s { void* data; ...; } uv_check_t;
typedef struct uv_prepare_s { void* data; ...; } uv_prepare_t;
typedef struct uv_signal_s { void* data; int signum; ...; } uv_signal_t;
typedef struct uv_process_s { void* data; int pid; ...; } uv_process_t;

typedef struct uv_req_s { void* data; ...; } uv_req_t;
typedef struct uv_write_s { void* data; ...; } uv_write_t;
typedef struct uv_connect_s { void* data; ...; } uv_connect_t;
typedef struct uv_shutdown_s { void* data; ...; } uv_shutdown_t;
typedef struct uv_udp_send_s { void* data; ...; } uv_udp_send_t;
typedef struct uv_getaddrinfo_s { void* data; struct addrinfo* addrinfo; ...; } uv_getaddrinfo_t;
typedef struct uv_getnameinfo_s { void* data; char host[...]; char service[...]; ...; } uv_getnameinfo_t;

typedef enum { UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT } uv_run_mode;
typedef enum {
    UV_UNKNOWN_HANDLE, UV_ASYNC, UV_CHECK, UV_FS_EVENT, UV_FS_POLL, UV_HANDLE, UV_IDLE,
    UV_NAMED_PIPE, UV_POLL, UV_PREPARE, UV_PROCESS, UV_STREAM, UV_TCP, UV_TIMER, UV_TTY,
    UV_UDP, UV_SIGNAL, UV_FILE, ...
} uv_handle_type;

typedef enum { UV_IGNORE, UV_CREATE_PIPE, UV_INHERIT_FD, UV_INHERIT_STREAM,
               UV_READABLE_PIPE, UV_WRITABLE_PIPE, UV_NONBLOCK_PIPE, ... } uv_stdio_flags;
typedef struct uv_stdio_container_s {
    uv_stdio_flags flags;
    union { uv_stream_t* stream; int fd; } data;
} uv_stdio_container_t;

typedef void (*uv_close_cb)(uv_handle_t*);
typedef void (*uv_walk_cb)(uv_handle_t*, void*);
typedef void (*uv_alloc_cb)(uv_handle_t*, size_t, uv_buf_t*);
typedef void (*uv_read_cb)(uv_stream_t*, ssize_t, const uv_buf_t*);
typedef void (*uv_write_cb)(uv_write_t*, int);
typedef void (*uv_connect_cb)(uv_connect_t*, int);
typedef void (*uv_shutdown_cb)(uv_shutdown_t*, int);
typedef void (*uv_connection_cb)(uv_stream_t*, int);
typedef void (*uv_timer_cb)(uv_timer_t*);
typedef void (*uv_async_cb)(uv_async_t*);
typedef void (*uv_idle_cb)(uv_idle_t*);
typedef void (*uv_check_cb)(uv_check_t*);
typedef void (*uv_prepare_cb)(uv_prepare_t*);
typedef void (*uv_poll_cb)(uv_poll_t*, int, int);
typedef void (*uv_signal_cb)(uv_signal_t*, int);
typedef void (*uv_exit_cb)(uv_process_t*, int64_t, int);
typedef void (*uv_udp_send_cb)(uv_udp_send_t*, int);
typedef void (*uv_udp_recv_cb)(uv_udp_t*, ssize_t, const uv_buf_t*, const struct sockaddr*, unsigned);
typedef void (*uv_getaddrinfo_cb)(uv_getaddrinfo_t*, int, struct addrinfo*);
typedef void (*uv_getnameinfo_cb)(uv_getnameinfo_t*, int, const char*, const char*);

typedef struct uv_process_options_s {
    uv_exit_cb exit_cb;
    const char* file;
    char** args;
    char** env;
    const char* cwd;
    unsigned int flags;
    int stdio_count;
    uv_stdio_container_t* stdio;
    uv_uid_t uid;
    uv_gid_t gid;
} uv_process_options_t;

#define UV_PROCESS_SETUID ...
#define UV_PROCESS_SETGID ...
#define UV_PROCESS_DETACHED ...
#define UV_READABLE ...
#define UV_WRITABLE ...
#define UV_DISCONNECT ...
#define UV_PRIORITIZED ...
#define UV_TCP_IPV6ONLY ...
#define UV_UDP_IPV6ONLY ...
#define UV_UDP_REUSEADDR ...
#define UV_UDP_PARTIAL ...
#define UV_EOF ...
#define UV_EAGAIN ...
#define UV_ECANCELED ...
#define UV_EBADF ...
#define UV_ENOBUFS ...
#define UV_UDP_MMSG_CHUNK ...
#define UV_UDP_MMSG_FREE ...

/* ---- versions, errors, misc --------------------------------------------------------------- */
unsigned int uv_version(void);
const char* uv_version_string(void);
const char* uv_strerror(int err);
const char* gai_strerror(int errcode);  /* the C library's, for socket.gaierror's message */
const char* uv_err_name(int err);
int uv_translate_sys_error(int sys_errno);
uint64_t uv_hrtime(void);
size_t uv_loop_size(void);
size_t uv_handle_size(uv_handle_type type);
size_t uv_req_size(int type);

/* ---- loop ---------------------------------------------------------------------------------- */
int uv_loop_init(uv_loop_t* loop);
int uv_loop_close(uv_loop_t* loop);
void uv_stop(uv_loop_t*);
int uv_loop_alive(const uv_loop_t* loop);
uint64_t uv_now(const uv_loop_t*);
void uv_update_time(uv_loop_t*);
int uv_backend_fd(const uv_loop_t*);
int uv_loop_fork(uv_loop_t* loop);
void uv_walk(uv_loop_t* loop, uv_walk_cb walk_cb, void* arg);

/* ---- handle -------------------------------------------------------------------------------- */
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
int uv_is_closing(const uv_handle_t* handle);
int uv_is_active(const uv_handle_t* handle);
void uv_ref(uv_handle_t*);
void uv_unref(uv_handle_t*);
int uv_has_ref(const uv_handle_t*);
int uv_fileno(const uv_handle_t* handle, uv_os_fd_t* fd);
int uv_send_buffer_size(uv_handle_t* handle, int* value);
int uv_recv_buffer_size(uv_handle_t* handle, int* value);
uv_handle_type uv_guess_handle(uv_file file);

/* ---- timer, async, idle, check, prepare ---------------------------------------------------- */
int uv_timer_init(uv_loop_t*, uv_timer_t* handle);
int uv_timer_start(uv_timer_t* handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
int uv_timer_stop(uv_timer_t* handle);
int uv_async_init(uv_loop_t*, uv_async_t* async, uv_async_cb async_cb);
int uv_async_send(uv_async_t* async);
int uv_idle_init(uv_loop_t*, uv_idle_t* idle);
int uv_idle_start(uv_idle_t* idle, uv_idle_cb cb);
int uv_idle_stop(uv_idle_t* idle);
int uv_check_init(uv_loop_t*, uv_check_t* check);
int uv_check_start(uv_check_t* check, uv_check_cb cb);
int uv_check_stop(uv_check_t* check);
int uv_prepare_init(uv_loop_t*, uv_prepare_t* prepare);
int uv_prepare_start(uv_prepare_t* prepare, uv_prepare_cb cb);
int uv_prepare_stop(uv_prepare_t* prepare);

/* ---- poll, signal ---------------------------------------------------------------------------- */
int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
int uv_poll_init_socket(uv_loop_t* loop, uv_poll_t* handle, uv_os_sock_t socket);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);
int uv_signal_init(uv_loop_t* loop, uv_signal_t* handle);
int uv_signal_start(uv_signal_t* handle, uv_signal_cb signal_cb, int signum);
int uv_signal_start_oneshot(uv_signal_t* handle, uv_signal_cb signal_cb, int signum);
int uv_signal_stop(uv_signal_t* handle);

/* ---- streams, tcp, pipe, tty -------------------------------------------------------------- */
int uv_listen(uv_stream_t* stream, int backlog, uv_connection_cb cb);
int uv_accept(uv_stream_t* server, uv_stream_t* client);
int uv_read_start(uv_stream_t*, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int uv_read_stop(uv_stream_t*);
int uv_write(uv_write_t* req, uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs, uv_write_cb cb);
int uv_write2(uv_write_t* req, uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs,
              uv_stream_t* send_handle, uv_write_cb cb);
int uv_try_write(uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs);
int uv_shutdown(uv_shutdown_t* req, uv_stream_t* handle, uv_shutdown_cb cb);
int uv_is_readable(const uv_stream_t* handle);
int uv_is_writable(const uv_stream_t* handle);
int uv_stream_set_blocking(uv_stream_t* handle, int blocking);
size_t uv_stream_get_write_queue_size(const uv_stream_t* stream);

int uv_tcp_init(uv_loop_t*, uv_tcp_t* handle);
int uv_tcp_init_ex(uv_loop_t*, uv_tcp_t* handle, unsigned int flags);
int uv_tcp_open(uv_tcp_t* handle, uv_os_sock_t sock);
int uv_tcp_nodelay(uv_tcp_t* handle, int enable);
int uv_tcp_keepalive(uv_tcp_t* handle, int enable, unsigned int delay);
int uv_tcp_simultaneous_accepts(uv_tcp_t* handle, int enable);
int uv_tcp_bind(uv_tcp_t* handle, const struct sockaddr* addr, unsigned int flags);
int uv_tcp_getsockname(const uv_tcp_t* handle, struct sockaddr* name, int* namelen);
int uv_tcp_getpeername(const uv_tcp_t* handle, struct sockaddr* name, int* namelen);
int uv_tcp_close_reset(uv_tcp_t* handle, uv_close_cb close_cb);
int uv_tcp_connect(uv_connect_t* req, uv_tcp_t* handle, const struct sockaddr* addr, uv_connect_cb cb);

int uv_pipe_init(uv_loop_t*, uv_pipe_t* handle, int ipc);
int uv_pipe_open(uv_pipe_t*, uv_file file);
int uv_pipe_bind(uv_pipe_t* handle, const char* name);
void uv_pipe_connect(uv_connect_t* req, uv_pipe_t* handle, const char* name, uv_connect_cb cb);
int uv_pipe_getsockname(const uv_pipe_t* handle, char* buffer, size_t* size);
int uv_pipe_getpeername(const uv_pipe_t* handle, char* buffer, size_t* size);
int uv_pipe_chmod(uv_pipe_t* handle, int flags);

int uv_tty_init(uv_loop_t*, uv_tty_t*, uv_file fd, int readable);

/* ---- udp ------------------------------------------------------------------------------------ */
int uv_udp_init(uv_loop_t*, uv_udp_t* handle);
int uv_udp_init_ex(uv_loop_t*, uv_udp_t* handle, unsigned int flags);
int uv_udp_open(uv_udp_t* handle, uv_os_sock_t sock);
int uv_udp_bind(uv_udp_t* handle, const struct sockaddr* addr, unsigned int flags);
int uv_udp_connect(uv_udp_t* handle, const struct sockaddr* addr);
int uv_udp_getpeername(const uv_udp_t* handle, struct sockaddr* name, int* namelen);
int uv_udp_getsockname(const uv_udp_t* handle, struct sockaddr* name, int* namelen);
int uv_udp_set_broadcast(uv_udp_t* handle, int on);
int uv_udp_send(uv_udp_send_t* req, uv_udp_t* handle, const uv_buf_t bufs[], unsigned int nbufs,
                const struct sockaddr* addr, uv_udp_send_cb send_cb);
int uv_udp_try_send(uv_udp_t* handle, const uv_buf_t bufs[], unsigned int nbufs, const struct sockaddr* addr);
int uv_udp_recv_start(uv_udp_t* handle, uv_alloc_cb alloc_cb, uv_udp_recv_cb recv_cb);
int uv_udp_recv_stop(uv_udp_t* handle);
size_t uv_udp_get_send_queue_size(const uv_udp_t* handle);
size_t uv_udp_get_send_queue_count(const uv_udp_t* handle);

/* ---- processes ------------------------------------------------------------------------------ */
int uv_spawn(uv_loop_t* loop, uv_process_t* handle, const uv_process_options_t* options);
int uv_process_kill(uv_process_t*, int signum);
int uv_kill(int pid, int signum);
int uv_process_get_pid(const uv_process_t*);
void uv_disable_stdio_inheritance(void);

/* ---- dns (libuv's threadpool) -------------------------------------------------------------- */
int uv_getaddrinfo(uv_loop_t* loop, uv_getaddrinfo_t* req, uv_getaddrinfo_cb getaddrinfo_cb,
                   const char* node, const char* service, const struct addrinfo* hints);
void uv_freeaddrinfo(struct addrinfo* ai);
int uv_getnameinfo(uv_loop_t* loop, uv_getnameinfo_t* req, uv_getnameinfo_cb getnameinfo_cb,
                   const struct sockaddr* addr, int flags);
int uv_cancel(uv_req_t* req);
int uv_ip4_addr(const char* ip, int port, struct sockaddr_in* addr);
int uv_ip6_addr(const char* ip, int port, struct sockaddr_in6* addr);
int uv_ip4_name(const struct sockaddr_in* src, char* dst, size_t size);
int uv_ip6_name(const struct sockaddr_in6* src, char* dst, size_t size);
int uv_inet_pton(int af, const char* src, void* dst);
int uv_inet_ntop(int af, const void* src, char* dst, size_t size);

/* ---- uvcffi's C helpers (C_SOURCE below): no Python is called from these ------------------- */
extern const char UVCFFI_BUILD_VERSION[];
void uvcffi_noop_timer_cb(uv_timer_t* handle);
void uvcffi_noop_async_cb(uv_async_t* handle);
void uvcffi_drain_poll_cb(uv_poll_t* handle, int status, int events);
int uvcffi_count_handles(uv_loop_t* loop);
int uvcffi_close_all(uv_loop_t* loop, uv_close_cb cb);
int uvcffi_run_turn(uv_loop_t* loop, uv_timer_t* timer, int64_t timeout_us, int mode);
int uvcffi_run(uv_loop_t* loop, int mode);
ssize_t uvcffi_try_write(uv_stream_t* stream, char* data, size_t len);
int uvcffi_pidfd_open(int pid);
typedef struct {
    char* base; size_t len; size_t used;
    int64_t* ev; int nev; int cap;
    void* owner;
} uvcffi_rbuf_t;
typedef struct { int64_t key; int64_t dgram_max; int64_t self_read; ...; } uvcffi_reader_t;
int64_t uvcffi_readable(int fd);
#define UVCFFI_READ_MAX ...
#define UVCFFI_KEY_STATUS ...
#define UVCFFI_KEY_GONE ...
#define UVCFFI_STATUS_BITS ...
#define UVCFFI_DGRAM_ADDR ...
#define UVCFFI_DGRAM_BATCH ...
void uvcffi_stream_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
void uvcffi_stream_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
void uvcffi_stream_read_now_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
void uvcffi_reads_forget(uvcffi_rbuf_t* rb, int64_t key);
void uvcffi_dgram_poll_cb(uv_poll_t* handle, int status, int events);

/* ---- C -> Python: the only entry points, implemented in uvcffi/_callbacks.py -------------- */
extern "Python" {
    void _uvcffi_on_close(uv_handle_t*);
    void _uvcffi_on_stream_read(void*, ssize_t);
    void _uvcffi_on_read_batch(void*);
    void _uvcffi_on_buffered_alloc(uv_handle_t*, size_t, uv_buf_t*);
    void _uvcffi_on_write(uv_write_t*, int);
    void _uvcffi_on_connect(uv_connect_t*, int);
    void _uvcffi_on_shutdown(uv_shutdown_t*, int);
    void _uvcffi_on_connection(uv_stream_t*, int);
    void _uvcffi_on_poll(uv_poll_t*, int, int);
    void _uvcffi_on_signal(uv_signal_t*, int);
    void _uvcffi_on_exit(uv_process_t*, int64_t, int);
    void _uvcffi_on_udp_send(uv_udp_send_t*, int);
    void _uvcffi_on_udp_recv(uv_udp_t*, ssize_t, const uv_buf_t*, const struct sockaddr*, unsigned);
    void _uvcffi_on_getaddrinfo(uv_getaddrinfo_t*, int, struct addrinfo*);
    void _uvcffi_on_getnameinfo(uv_getnameinfo_t*, int, const char*, const char*);
    void _uvcffi_on_timer(uv_timer_t*);
    void _uvcffi_on_async(uv_async_t*);
    void _uvcffi_on_idle(uv_idle_t*);
    void _uvcffi_on_check(uv_check_t*);
}
"""

C_SOURCE = r"""
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <uv.h>

const char UVCFFI_BUILD_VERSION[] = "%(version)s";

void uvcffi_noop_timer_cb(uv_timer_t* handle) { (void)handle; }

/* pidfd_open(2) for interpreters whose os module lacks it (PyPy 3.9): a close-on-exec
   descriptor that becomes readable when the process exits, or -errno. */
int uvcffi_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
#else
    (void)pid;
    return -ENOSYS;
#endif
}
void uvcffi_noop_async_cb(uv_async_t* handle) { (void)handle; }

/* The loop's signal wake-up socket: Python's C-level signal handler writes to it
   (signal.set_wakeup_fd); draining it here makes uv_run return so the interpreter can run
   the Python-level handler. */
void uvcffi_drain_poll_cb(uv_poll_t* handle, int status, int events) {
    char buf[256];
    int fd;
    (void)status; (void)events;
    if (uv_fileno((uv_handle_t*)handle, &fd) != 0) return;
    while (read(fd, buf, sizeof buf) > 0) {}
}

static void uvcffi_count_cb(uv_handle_t* handle, void* arg) { (void)handle; ++*(int*)arg; }

int uvcffi_count_handles(uv_loop_t* loop) {
    int n = 0;
    uv_walk(loop, uvcffi_count_cb, &n);
    return n;
}

struct uvcffi_close_arg { uv_close_cb cb; int n; };

static void uvcffi_close_cb(uv_handle_t* handle, void* arg) {
    struct uvcffi_close_arg* a = arg;
    if (!uv_is_closing(handle)) { uv_close(handle, a->cb); a->n++; }
}

int uvcffi_close_all(uv_loop_t* loop, uv_close_cb cb) {
    struct uvcffi_close_arg a = { cb, 0 };
    uv_walk(loop, uvcffi_close_cb, &a);
    return a.n;
}

/* ---- Stream reads, batched ----------------------------------------------------------------
   The loop's read arena (a uvcffi_rbuf_t, allocated by Python's transports/stream.py ReadBatch
   and announced through loop->data) collects every read of a uv_run turn: the alloc callback
   hands libuv UVCFFI_READ_MAX bytes of the arena's free tail (asyncio's max_size), the read
   callback records an event and moves the tail on. No Python runs per read. After uv_run,
   uvcffi_run_turn reports how many events wait and Python dispatches them in one loop; if the
   arena or the event array fills up first (less than UVCFFI_READ_MAX bytes left), the read
   callback has Python dispatch right there. Streams whose reads must reach Python at once (a
   BufferedProtocol reading into its own buffer) use uvcffi_stream_read_now_cb, which
   dispatches what the batch holds first, so every stream's events keep their order. Without
   an arena (never expected), no buffer: libuv reports UV_ENOBUFS.

   An event is two int64s (key, x). Reads fill the arena front to back, so a read's bytes
   start where the previous read's end: a data event (key >= 1) gives only x = the end, the
   start being the previous data event's end (0 for the first of a batch). A status (UV_EOF or
   an error, all in -4095..-1) is an event of key UVCFFI_KEY_STATUS, x = (stream key << 12) |
   -status; it holds no bytes, so the next read starts where the last one ended. Python's
   common case costs one test: is the stream's protocol ready for its bytes?
   key is the small integer Python gave the stream (its slot in ReadBatch.readers), kept in
   the uvcffi_reader_t every batch-read stream handle is allocated in: small integers are
   preallocated objects in CPython, so an event costs no allocation for its key. Key
   UVCFFI_KEY_GONE (0, a handle's key until Python registers it) is never a stream's: a closed
   stream's waiting events are re-keyed to it (uvcffi_reads_forget); stream keys start after
   UVCFFI_KEY_STATUS. */
typedef struct {
    char* base; size_t len; size_t used;  /* the arena; used: bytes of waiting reads */
    int64_t* ev; int nev; int cap;        /* nev events of two int64s; room for cap */
    void* owner;                          /* ffi.new_handle of the Python ReadBatch */
} uvcffi_rbuf_t;
typedef struct {
    union { uv_tcp_t tcp; uv_pipe_t pipe; uv_poll_t poll; } h;  /* first: the handle points here */
    int64_t key;
    int64_t dgram_max;  /* a datagram poll: the largest datagram it reads */
    int64_t self_read;  /* a stream: Python reads it itself (see uvcffi_stream_alloc_cb) */
} uvcffi_reader_t;
#define UVCFFI_READ_MAX (256 * 1024)
#define UVCFFI_SELF_READ_AT (64 * 1024)  /* a read this large switches the stream to self_read */
#define UVCFFI_KEY_GONE 0      /* the key of a closed (or no) stream's waiting events */
#define UVCFFI_KEY_STATUS 1    /* the key of status events (see above) */
#define UVCFFI_STATUS_BITS 12  /* a status event's x: (key << 12) | -status */
#define UVCFFI_DGRAM_ADDR 32   /* the sender's address, before each datagram in the arena;
                                  UVCFFI_READ_MAX holds 7 + it + the largest UDP datagram */
#define UVCFFI_DGRAM_BATCH 32  /* datagrams read per readiness event at most (as uv_udp_t) */

static void _uvcffi_on_stream_read(void*, ssize_t);
static void _uvcffi_on_read_batch(void*);
static void _uvcffi_on_poll(uv_poll_t*, int, int);

/* uv_run without the GIL (see "The GIL" at the end): it blocks in epoll, and other threads
   (call_soon_threadsafe, executors) must run meanwhile. Callbacks into Python take it back.
   UV_RUN_NOWAIT polls with a zero timeout and never blocks: it keeps the GIL (releasing and
   taking it back is two mutex round trips and a condition signal per turn). */
int uvcffi_run(uv_loop_t* loop, int mode) {
    int r;
#ifndef PYPY_VERSION
    PyThreadState* ts;
    if (mode == UV_RUN_NOWAIT)  /* polls with a zero timeout: keep the GIL (~200 ns a turn) */
        return uv_run(loop, UV_RUN_NOWAIT);
    ts = PyEval_SaveThread();
#endif
    r = uv_run(loop, (uv_run_mode)mode);
#ifndef PYPY_VERSION
    PyEval_RestoreThread(ts);
#endif
    return r;
}

/* One turn of the loop, in one crossing: arm the loop's single timer for the earliest
   Python deadline (timeout_us < 0: none), then uv_run(mode).
   libuv's timers count whole milliseconds from a cached clock, so round up: the Python
   side re-checks deadlines against its own clock and never runs a timer early.
   The timer repeats: libuv before 1.45 runs due timers *before* polling in UV_RUN_ONCE, and
   a timer that fired there would leave the poll without a timeout; repeating, it bounds
   the poll again. The Python side re-arms or stops it every turn anyway.
   Returns how many batched read events wait for Python (see above). */
int uvcffi_run_turn(uv_loop_t* loop, uv_timer_t* timer, int64_t timeout_us, int mode) {
    uvcffi_rbuf_t* rb;
    if (timeout_us >= 0) {
        uint64_t ms = (uint64_t)((timeout_us + 999) / 1000);
        uv_update_time(loop);
        uv_timer_start(timer, uvcffi_noop_timer_cb, ms, ms ? ms : 1);
    } else {
        uv_timer_stop(timer);
    }
    uvcffi_run(loop, mode);
    rb = (uvcffi_rbuf_t*)loop->data;
    return rb != NULL ? rb->nev : 0;  /* read events waiting for Python */
}

/* Large reads. Copying a read out of the arena costs little for small messages and a few µs
   per 100 KiB (a cold destination), which is what reading straight into a bytes object of the
   right size saves, as socket.recv does. So after a read of UVCFFI_SELF_READ_AT bytes or more a
   stream is marked self_read: its alloc callback offers no buffer, libuv reports UV_ENOBUFS
   (a status event, in the batch's order like any read), and Python reads the socket itself
   with os.read, sized by the last read (under 126 KiB) or by uvcffi_readable (FIONREAD) when it
   has no guess: a bytes object of about the waiting size, which glibc serves from its heap,
   not a fresh mmap per read (stream.py, _read_self). A small read switches the
   stream back (Python clears self_read). Python always reads or stops reading when it gets
   the event, so libuv's level-triggered poll does not spin. */
void uvcffi_stream_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
    uvcffi_rbuf_t* rb = (uvcffi_rbuf_t*)handle->loop->data;
    (void)suggested;
    if (rb == NULL || ((uvcffi_reader_t*)handle)->self_read) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = rb->base + rb->used;
    buf->len = UVCFFI_READ_MAX;  /* the tail holds that much (see below) */
}

/* Bytes waiting to be read on fd (a socket or a pipe), 0 if unknown. */
int64_t uvcffi_readable(int fd) {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
    return n;
}

void uvcffi_stream_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    uvcffi_rbuf_t* rb = (uvcffi_rbuf_t*)stream->loop->data;
    int64_t* e;
    (void)buf;
    if (nread == 0) return;  /* EAGAIN */
    if (rb == NULL) {  /* no arena: only UV_ENOBUFS can get here */
        _uvcffi_on_stream_read(stream->data, nread);
        return;
    }
    e = rb->ev + 2 * rb->nev++;
    if (nread > 0) {
        rb->used += (size_t)nread;
        if (nread >= UVCFFI_SELF_READ_AT) ((uvcffi_reader_t*)stream)->self_read = 1;
        e[0] = ((uvcffi_reader_t*)stream)->key;
        e[1] = (int64_t)rb->used;
    } else {
        e[0] = UVCFFI_KEY_STATUS;
        e[1] = (((uvcffi_reader_t*)stream)->key << UVCFFI_STATUS_BITS) | (int64_t)-nread;
    }
    if (rb->nev == rb->cap || rb->len - rb->used < UVCFFI_READ_MAX)
        _uvcffi_on_read_batch(rb->owner);
}

void uvcffi_stream_read_now_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    uvcffi_rbuf_t* rb = (uvcffi_rbuf_t*)stream->loop->data;
    (void)buf;
    if (nread == 0) return;
    if (rb != NULL && rb->nev > 0) _uvcffi_on_read_batch(rb->owner);
    _uvcffi_on_stream_read(stream->data, nread);
}

/* A stream closes: its waiting events (if any) must never reach whatever Python later
   registers under the same key. */
void uvcffi_reads_forget(uvcffi_rbuf_t* rb, int64_t key) {
    const int64_t mask = ((int64_t)1 << UVCFFI_STATUS_BITS) - 1;
    int i;
    for (i = 0; i < rb->nev; i++) {
        int64_t* e = rb->ev + 2 * i;
        if (e[0] == key)
            e[0] = UVCFFI_KEY_GONE;
        else if (e[0] == UVCFFI_KEY_STATUS && (e[1] >> UVCFFI_STATUS_BITS) == key)
            e[1] = ((int64_t)UVCFFI_KEY_GONE << UVCFFI_STATUS_BITS) | (e[1] & mask);
    }
}

/* UDP datagrams, batched like stream reads (transports/datagram.py). The poll of an IPv4/IPv6
   datagram socket calls this; when the socket is readable it reads up to UVCFFI_DGRAM_BATCH
   datagrams (until EAGAIN) straight into the arena, each after a UVCFFI_DGRAM_ADDR-byte slot
   holding the sender's struct sockaddr (zero-padded, so equal addresses are equal bytes), as
   data events (key, end): from the previous event's end, 8-aligned, come the sender's address
   slot and then the datagram, up to end; a failed recvfrom is a status event of -errno.
   Anything else (writable, a poll error, no key) goes to Python's poll callback, after the
   batch so far: one socket's reads never overtake each other. */
void uvcffi_dgram_poll_cb(uv_poll_t* handle, int status, int events) {
    uvcffi_reader_t* r = (uvcffi_reader_t*)handle;
    uvcffi_rbuf_t* rb = (uvcffi_rbuf_t*)handle->loop->data;
    int fd, i;
    if (status != 0 || events != UV_READABLE || rb == NULL || r->key == 0
            || uv_fileno((uv_handle_t*)handle, &fd) != 0) {
        if (rb != NULL && rb->nev > 0) _uvcffi_on_read_batch(rb->owner);
        _uvcffi_on_poll(handle, status, events);
        return;
    }
    for (i = 0; i < UVCFFI_DGRAM_BATCH; i++) {
        /* room: the tail always holds UVCFFI_READ_MAX bytes (see the stream read callback) */
        size_t at = (rb->used + 7) & ~(size_t)7;  /* the address slot is 8-aligned */
        char* p = rb->base + at;
        socklen_t alen = UVCFFI_DGRAM_ADDR;
        ssize_t n;
        int64_t* e;
        memset(p, 0, UVCFFI_DGRAM_ADDR);
        do {
            n = recvfrom(fd, p + UVCFFI_DGRAM_ADDR, (size_t)r->dgram_max, MSG_DONTWAIT,
                         (struct sockaddr*)p, &alen);  /* never blocks, whatever the socket */
        } while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        e = rb->ev + 2 * rb->nev++;
        if (n < 0) {
            e[0] = UVCFFI_KEY_STATUS;
            e[1] = (r->key << UVCFFI_STATUS_BITS) | (int64_t)errno;
        } else {
            rb->used = at + UVCFFI_DGRAM_ADDR + (size_t)n;
            e[0] = r->key;
            e[1] = (int64_t)rb->used;
        }
        if (rb->nev == rb->cap || rb->len - rb->used < UVCFFI_READ_MAX) {
            _uvcffi_on_read_batch(rb->owner);
            if (r->key == 0) return;  /* a protocol closed the transport meanwhile */
        }
        if (n < 0) return;
    }
}

/* The write hot path in one crossing: Python passes a bytes object straight as char*
   (cffi hands over a pointer to its storage, no copy). Returns how many bytes the kernel did
   NOT take (0: all written, the common case, which Python tests with one truth test; len:
   nothing could be written now, UV_EAGAIN), or a negative libuv error. */
ssize_t uvcffi_try_write(uv_stream_t* stream, char* data, size_t len) {
    uv_buf_t buf;
    size_t n = len;
    int r;
    if (len == 0) return 0;
    if (n > 0x40000000u) n = 0x40000000u;  /* a partial write; the caller queues the rest */
    buf = uv_buf_init(data, (unsigned int)n);
    r = uv_try_write(stream, &buf, 1);
    if (r >= 0) return (ssize_t)(len - (size_t)r);
    return r == UV_EAGAIN ? (ssize_t)len : (ssize_t)r;
}

/* ---- The GIL -------------------------------------------------------------------------------
   cffi's CPython wrappers release the GIL around every lib call. Here almost every call is
   non-blocking work of well under a microsecond (uv_try_write, uv_read_start, uv_close, ...),
   for which dropping and re-taking the GIL (two mutex round trips) costs more than the call
   itself, once per message. So the release is compiled out of the wrappers cffi emits after
   this point, and the one call that blocks releases the GIL itself: uvcffi_run (uv_run, used
   by uvcffi_run_turn); uv_run is not exposed to Python at all. Nothing else here may block:
   a new blocking call must release the GIL the way uvcffi_run does. PyPy calls lib functions
   without these wrappers and releases its GIL around them itself. */
#ifndef PYPY_VERSION
#undef Py_BEGIN_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#undef Py_END_ALLOW_THREADS
#define Py_END_ALLOW_THREADS }
#endif
"""

LIBUV_SOURCES = [
    "src/fs-poll.c", "src/idna.c", "src/inet.c", "src/random.c", "src/strscpy.c", "src/strtok.c",
    "src/thread-common.c", "src/threadpool.c", "src/timer.c", "src/uv-common.c",
    "src/uv-data-getter-setters.c", "src/version.c",
    "src/unix/async.c", "src/unix/core.c", "src/unix/dl.c", "src/unix/fs.c",
    "src/unix/getaddrinfo.c", "src/unix/getnameinfo.c", "src/unix/loop-watcher.c",
    "src/unix/loop.c", "src/unix/pipe.c", "src/unix/poll.c", "src/unix/process.c",
    "src/unix/random-devurandom.c", "src/unix/signal.c", "src/unix/stream.c", "src/unix/tcp.c",
    "src/unix/thread.c", "src/unix/tty.c", "src/unix/udp.c",
    "src/unix/proctitle.c",
    "src/unix/linux.c", "src/unix/procfs-exepath.c", "src/unix/random-getrandom.c",
    "src/unix/random-sysctl-linux.c",
]


def _pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(["pkg-config", *args, "libuv"], check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit("build_ffi: UVCFFI_USE_SYSTEM_LIBUV=1 but pkg-config cannot find libuv "
                 f"({exc}). Install it: apt-get install -y libuv1-dev pkg-config")
    return shlex.split(out)


def build_kwargs() -> dict:
    if os.environ.get("UVCFFI_USE_SYSTEM_LIBUV") == "1":
        cflags = _pkg_config("--cflags")
        libs = _pkg_config("--libs")
        return dict(
            include_dirs=[f[2:] for f in cflags if f.startswith("-I")],
            library_dirs=[f[2:] for f in libs if f.startswith("-L")],
            libraries=[f[2:] for f in libs if f.startswith("-l")],
            define_macros=[("UVCFFI_SYSTEM_LIBUV", "1")],
        )
    if not os.path.exists(os.path.join(LIBUV, "include", "uv.h")):
        sys.exit("build_ffi: libuv's source is missing from vendor/libuv/. "
                 "Fetch it with: python vendor/fetch_libuv.py   (or: make test)")
    return dict(
        sources=[os.path.relpath(os.path.join(LIBUV, s), HERE) for s in LIBUV_SOURCES],
        include_dirs=[os.path.join(LIBUV, "include"), os.path.join(LIBUV, "src")],
        define_macros=[("_GNU_SOURCE", None), ("_FILE_OFFSET_BITS", "64"), ("_LARGEFILE_SOURCE", None)],
        extra_compile_args=["-fPIC", "-fno-strict-aliasing", "-O2", "-Wno-unused-parameter",
                            "-Wno-sign-compare"],
        libraries=["pthread", "dl", "rt"],
    )


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("uvcffi._uvcffi", C_SOURCE % {"version": package_version()}, **build_kwargs())

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
