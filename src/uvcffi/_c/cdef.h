/* clang-format off */
/* What Python sees of libuv and of uvcffi's C engine: the declarations ffibuilder.cdef() reads
   (build_ffi.py). cffi's dialect of C: `...` leaves a size, a value or the rest of a struct to
   the C compiler, which compiles this against <uv.h> and uvcffi.h, so nothing here is guessed.
   Only what Python uses is declared (each name is used by src/uvcffi/), within libuv 1.44's API
   so that the system's libuv (UVCFFI_USE_SYSTEM_LIBUV=1, Debian's 1.44) builds too. cffi reads
   api.h after this file: the engine's own structs and functions, declared there once for C and
   cffi alike. */

/* ---- basic types --------------------------------------------------------------------------- */
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
struct sockaddr_in { sa_family_t sin_family; unsigned short sin_port; ...; };
struct sockaddr_in6 { sa_family_t sin6_family; unsigned short sin6_port; uint32_t sin6_flowinfo;
                      uint32_t sin6_scope_id; ...; };
struct addrinfo {
    int ai_flags; int ai_family; int ai_socktype; int ai_protocol;
    socklen_t ai_addrlen; struct sockaddr* ai_addr; char* ai_canonname; struct addrinfo* ai_next;
    ...;
};

/* ---- handles and requests (opaque but for the fields Python reads) ------------------------ */
typedef struct uv_loop_s { void* data; ...; } uv_loop_t;
typedef struct uv_handle_s { void* data; uv_loop_t* loop; ...; } uv_handle_t;
typedef struct uv_stream_s { void* data; uv_loop_t* loop; size_t write_queue_size; ...; }
    uv_stream_t;
typedef struct uv_tcp_s { void* data; uv_loop_t* loop; size_t write_queue_size; ...; } uv_tcp_t;
typedef struct uv_pipe_s { void* data; uv_loop_t* loop; size_t write_queue_size; ...; } uv_pipe_t;
typedef struct uv_poll_s { void* data; ...; } uv_poll_t;
typedef struct uv_timer_s { void* data; ...; } uv_timer_t;
typedef struct uv_async_s { void* data; ...; } uv_async_t;
typedef struct uv_signal_s { void* data; int signum; ...; } uv_signal_t;
typedef struct uv_process_s { void* data; int pid; ...; } uv_process_t;

typedef struct uv_req_s { void* data; ...; } uv_req_t;
typedef struct uv_write_s { void* data; ...; } uv_write_t;
typedef struct uv_shutdown_s { void* data; ...; } uv_shutdown_t;
typedef struct uv_getaddrinfo_s { void* data; struct addrinfo* addrinfo; ...; } uv_getaddrinfo_t;
typedef struct uv_getnameinfo_s { void* data; char host[...]; char service[...]; ...; }
    uv_getnameinfo_t;

typedef enum { UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT } uv_run_mode;

typedef enum { UV_IGNORE, UV_CREATE_PIPE, UV_INHERIT_FD, UV_INHERIT_STREAM,
               UV_READABLE_PIPE, UV_WRITABLE_PIPE, UV_NONBLOCK_PIPE, ... } uv_stdio_flags;
typedef struct uv_stdio_container_s {
    uv_stdio_flags flags;
    union { uv_stream_t* stream; int fd; } data;
} uv_stdio_container_t;

typedef void (*uv_close_cb)(uv_handle_t*);
typedef void (*uv_alloc_cb)(uv_handle_t*, size_t, uv_buf_t*);
typedef void (*uv_read_cb)(uv_stream_t*, ssize_t, const uv_buf_t*);
typedef void (*uv_write_cb)(uv_write_t*, int);
typedef void (*uv_shutdown_cb)(uv_shutdown_t*, int);
typedef void (*uv_async_cb)(uv_async_t*);
typedef void (*uv_poll_cb)(uv_poll_t*, int, int);
typedef void (*uv_signal_cb)(uv_signal_t*, int);
typedef void (*uv_exit_cb)(uv_process_t*, int64_t, int);
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

#define UV_PROCESS_DETACHED ...
#define UV_READABLE ...
#define UV_WRITABLE ...
#define UV_EOF ...
#define UV_EBADF ...
#define UV_ECANCELED ...
#define UV_ENOBUFS ...
#define UV_ENOTCONN ...

/* ---- versions, errors ---------------------------------------------------------------------- */
const char* uv_version_string(void);
const char* uv_strerror(int err);
const char* gai_strerror(int errcode); /* the C library's, for socket.gaierror's message */
const char* uv_err_name(int err);

/* ---- loop, handles ------------------------------------------------------------------------- */
int uv_loop_init(uv_loop_t* loop);
int uv_loop_close(uv_loop_t* loop);
void uv_stop(uv_loop_t*);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
void uv_ref(uv_handle_t*);
void uv_unref(uv_handle_t*);
int uv_fileno(const uv_handle_t* handle, uv_os_fd_t* fd);

/* ---- timer, async, poll, signal ------------------------------------------------------------ */
int uv_timer_init(uv_loop_t*, uv_timer_t* handle);
int uv_async_init(uv_loop_t*, uv_async_t* async, uv_async_cb async_cb);
int uv_async_send(uv_async_t* async);
int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);
int uv_signal_init(uv_loop_t* loop, uv_signal_t* handle);
int uv_signal_start(uv_signal_t* handle, uv_signal_cb signal_cb, int signum);

/* ---- streams, tcp, pipe -------------------------------------------------------------------- */
int uv_read_start(uv_stream_t*, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int uv_read_stop(uv_stream_t*);
int uv_write(uv_write_t* req, uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs,
             uv_write_cb cb);
int uv_shutdown(uv_shutdown_t* req, uv_stream_t* handle, uv_shutdown_cb cb);
int uv_tcp_init(uv_loop_t*, uv_tcp_t* handle);
int uv_tcp_open(uv_tcp_t* handle, uv_os_sock_t sock);
int uv_tcp_nodelay(uv_tcp_t* handle, int enable);
int uv_pipe_init(uv_loop_t*, uv_pipe_t* handle, int ipc);
int uv_pipe_open(uv_pipe_t*, uv_file file);

/* ---- processes ----------------------------------------------------------------------------- */
int uv_spawn(uv_loop_t* loop, uv_process_t* handle, const uv_process_options_t* options);
int uv_process_kill(uv_process_t*, int signum);

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

/* ---- uvcffi's C engine: its constants (values from uvcffi.h); its structs and functions are
   api.h's, which build_ffi.py reads after this file ---------------------------------------- */
#define UVCFFI_READ_MAX ...
#define UVCFFI_KEY_GONE ...
#define UVCFFI_KEY_STATUS ...
#define UVCFFI_STATUS_BITS ...
#define UVCFFI_DGRAM_ADDR ...

/* ---- C -> Python: the only entry points, implemented in src/uvcffi/_callbacks.py ----------- */
extern "Python" {
    void _uvcffi_on_close(uv_handle_t*);
    void _uvcffi_on_write(uv_write_t*, int);
    void _uvcffi_on_shutdown(uv_shutdown_t*, int);
    void _uvcffi_on_signal(uv_signal_t*, int);
    void _uvcffi_on_exit(uv_process_t*, int64_t, int);
    void _uvcffi_on_getaddrinfo(uv_getaddrinfo_t*, int, struct addrinfo*);
    void _uvcffi_on_getnameinfo(uv_getnameinfo_t*, int, const char*, const char*);
}
extern "Python+C" { /* called by the engine's C too (uvcffi.h) */
    void _uvcffi_on_read_batch(void*);
    void _uvcffi_on_poll(uv_poll_t*, int, int);
}
