/* The read engine: the stream reads and UDP datagrams of a uv_run turn, recorded in C.

   The loop's read arena (a uvcffi_rbuf_t, allocated by Python's read_engine.py ReadEngine
   and announced through loop->data) collects every read of a uv_run turn: the alloc callback
   hands libuv UVCFFI_READ_MAX bytes of the arena's free tail (asyncio's max_size), the read
   callback records an event and moves the tail on. No Python runs per read. After uv_run,
   uvcffi_run_turn reports how many events wait and Python dispatches them in one loop; if the
   arena or the event array fills up first (less than UVCFFI_READ_MAX bytes left), the read
   callback has Python dispatch right there. A BufferedProtocol's stream is always self_read
   (below): its readable turns are UV_ENOBUFS events in the batch, and Python reads into the
   protocol's buffer itself. Without an arena (never expected), no buffer: libuv reports
   UV_ENOBUFS.

   An event is two int64s (key, x). Reads fill the arena front to back, so a read's bytes start
   where the previous read's end: a data event (key > UVCFFI_KEY_STATUS) gives only x = the end,
   the start being the previous data event's end (0 for the first of a batch). A status (UV_EOF or
   an error, all in -4095..-1) is an event of key UVCFFI_KEY_STATUS, x = (stream key << 12) |
   -status; it holds no bytes, so the next read starts where the last one ended. Python's common
   case costs one test: is the stream's protocol ready for its bytes?
   key is the small integer Python gave the stream (its slot in ReadEngine.readers), kept in
   the uvcffi_reader_t every batch-read stream handle is allocated in: small integers are
   preallocated objects in CPython, so an event costs no allocation for its key. Key
   UVCFFI_KEY_GONE (0, a handle's key until Python registers it) is never a stream's: a closed
   stream's waiting events are re-keyed to it (uvcffi_reads_forget); stream keys start after
   UVCFFI_KEY_STATUS. */

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "uvcffi.h"

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
    buf->len = UVCFFI_READ_MAX; /* the tail holds that much (see below) */
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
    if (nread == 0) return; /* EAGAIN */
    if (rb == NULL) return; /* no arena: cannot be, the loop makes its read engine first */
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
    if (status != 0 || events != UV_READABLE || rb == NULL || r->key == UVCFFI_KEY_GONE ||
        uv_fileno((uv_handle_t*)handle, &fd) != 0) {
        if (rb != NULL && rb->nev > 0) _uvcffi_on_read_batch(rb->owner);
        _uvcffi_on_poll(handle, status, events);
        return;
    }
    for (i = 0; i < UVCFFI_DGRAM_BATCH; i++) {
        /* room: the tail always holds UVCFFI_READ_MAX bytes (see the stream read callback) */
        size_t at = (rb->used + 7) & ~(size_t)7; /* the address slot is 8-aligned */
        char* p = rb->base + at;
        socklen_t alen = UVCFFI_DGRAM_ADDR;
        ssize_t n;
        int64_t* e;
        memset(p, 0, UVCFFI_DGRAM_ADDR);
        do {
            n = recvfrom(fd, p + UVCFFI_DGRAM_ADDR, (size_t)r->dgram_max, MSG_DONTWAIT,
                         (struct sockaddr*)p, &alen); /* never blocks, whatever the socket */
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
            if (r->key == UVCFFI_KEY_GONE) return; /* a protocol closed the transport meanwhile */
        }
        if (n < 0) return;
    }
}
