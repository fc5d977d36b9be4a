/* uvcffi's C engine: what its .c files share.

   The engine is the C that runs inside uv_run without Python (the Python C API is used in run.c
   alone: the GIL release around uv_run, and a GIL probe for the tests): batched stream and
   datagram reads (reads.c), the write fast path (write.c), one loop turn per crossing (run.c),
   pidfd_open (process.c). build_ffi.py compiles it as part of cffi's extension:
   ffibuilder.set_source() includes this header and those files, and ffibuilder.cdef() reads cdef.h
   (what Python uses of libuv, and the callbacks into Python) and api.h (the engine's structs and
   functions, which this header includes: written once for both). A constant Python needs is
   defined here and declared in cdef.h as `#define NAME ...`, so the compiler gives cffi its value:
   it is written once too.

   C reaches Python only through cffi's extern "Python" functions (src/uvcffi/_callbacks.py); the
   engine calls two of them, declared at the end. */
#ifndef UVCFFI_H
#define UVCFFI_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* build_ffi.py passes the package version (-DUVCFFI_VERSION="x.y.z"); _binding.py compares
   it with the Python package's at import. */
#ifndef UVCFFI_VERSION
#error "build with -DUVCFFI_VERSION=\"<package version>\" (build_ffi.py does)"
#endif

/* ---- The read engine (reads.c) ---------------------------------------------------------------
   The loop's read arena collects every read of a uv_run turn; Python dispatches them in one loop
   afterwards. An event is two int64s (key, x): a data event (key > UVCFFI_KEY_STATUS) has x = the
   end of its bytes in the arena; a status event (EOF or an error) has key UVCFFI_KEY_STATUS and
   x = (stream key << UVCFFI_STATUS_BITS) | -status. reads.c says more. */
#define UVCFFI_READ_MAX (256 * 1024)    /* arena bytes offered to one read (asyncio's max_size) */
#define UVCFFI_SELF_READ_AT (64 * 1024) /* a read this large switches the stream to self_read */
#define UVCFFI_KEY_GONE 0               /* the key of a closed (or no) stream's waiting events */
#define UVCFFI_KEY_STATUS 1             /* the key of status events */
#define UVCFFI_STATUS_BITS 12           /* a status event's x: (key << 12) | -status */
/* the sender's address slot before each datagram in the arena; UVCFFI_READ_MAX holds 7 + it +
   the largest UDP datagram */
#define UVCFFI_DGRAM_ADDR 32
#define UVCFFI_DGRAM_BATCH 32 /* datagrams read per readiness event at most (as uv_udp_t) */

#include "api.h"

/* ---- Python, through cffi's extern "Python+C" ------------------------------------------------
   The two callbacks the engine calls (cdef.h declares them "Python+C": not static, so each .c
   file here also compiles alone, for C tools). cffi defines them after this code; hidden: the
   extension's own, never exported. */
#define UVCFFI_INTERNAL __attribute__((visibility("hidden")))
UVCFFI_INTERNAL void _uvcffi_on_read_batch(void* owner);
UVCFFI_INTERNAL void _uvcffi_on_poll(uv_poll_t* handle, int status, int events);

#endif /* UVCFFI_H */
