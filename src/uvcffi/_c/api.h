/* The C engine's API: its structs and functions, written once for both readers. uvcffi.h
   includes this for the engine's C; build_ffi.py appends it to cdef.h for cffi, which makes
   these Python's (lib.uvcffi_*, ffi.new("uvcffi_rbuf_t*")). So it holds only what C and cffi's
   parser both read: declarations, no #include, macro or attribute; the constants and types it
   uses come before it (uvcffi.h and <uv.h> for C, cdef.h for cffi). */

extern const char UVCFFI_BUILD_VERSION[]; /* the package version, checked at import */

/* ---- The read engine (reads.c) ------------------------------------------------------------- */
typedef struct {
    char* base; /* the arena, len bytes */
    size_t len;
    size_t used; /* bytes of waiting reads */
    int64_t* ev; /* nev events of two int64s; room for cap */
    int nev;
    int cap;
    void* owner; /* ffi.new_handle of the Python ReadEngine */
} uvcffi_rbuf_t;

/* The handle types whose reads the engine records. */
typedef union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_poll_t poll;
} uvcffi_read_handle_t;

/* The memory of every handle whose reads the engine records: the handle first (libuv's handle
   pointer points here), then what the engine needs to know of it. */
typedef struct {
    uvcffi_read_handle_t h;
    int64_t key;       /* the handle's slot in Python's ReadEngine.readers; UVCFFI_KEY_GONE: none */
    int64_t dgram_max; /* a datagram poll: the largest datagram it reads */
    int64_t self_read; /* a stream: Python reads it itself (see uvcffi_stream_alloc_cb) */
} uvcffi_reader_t;

void uvcffi_stream_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
void uvcffi_stream_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
void uvcffi_reads_forget(uvcffi_rbuf_t* rb, int64_t key);
void uvcffi_dgram_poll_cb(uv_poll_t* handle, int status, int events);
int64_t uvcffi_readable(int fd);

/* ---- Writes (write.c) ---------------------------------------------------------------------- */
ssize_t uvcffi_try_write(uv_stream_t* stream, char* data, size_t len);

/* ---- Loop turns (run.c) -------------------------------------------------------------------- */
int uvcffi_run(uv_loop_t* loop, int mode);
int uvcffi_run_turn(uv_loop_t* loop, uv_timer_t* timer, int64_t timeout_us, int mode);
void uvcffi_noop_async_cb(uv_async_t* handle);
void uvcffi_drain_poll_cb(uv_poll_t* handle, int status, int events);
int uvcffi_count_handles(uv_loop_t* loop);
int uvcffi_close_all(uv_loop_t* loop, uv_close_cb cb);
int uvcffi_gil_held(void);

/* ---- Processes (process.c) ----------------------------------------------------------------- */
int uvcffi_pidfd_open(int pid);
