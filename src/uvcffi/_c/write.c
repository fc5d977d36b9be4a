/* The write fast path. */

#include "uvcffi.h"

/* A write in one crossing: Python passes a bytes object straight as char* (cffi hands over a
   pointer to its storage, no copy). Returns how many bytes the kernel did NOT take (0: all
   written, the common case, which Python tests with one truth test; len: nothing could be
   written now, UV_EAGAIN), or a negative libuv error. */
ssize_t uvcffi_try_write(uv_stream_t* stream, char* data, size_t len) {
    uv_buf_t buf;
    size_t n = len;
    int r;
    if (len == 0) return 0;
    if (n > 0x40000000u) n = 0x40000000u; /* a partial write; the caller queues the rest */
    buf = uv_buf_init(data, (unsigned int)n);
    r = uv_try_write(stream, &buf, 1);
    if (r >= 0) return (ssize_t)(len - (size_t)r);
    return r == UV_EAGAIN ? (ssize_t)len : (ssize_t)r;
}
