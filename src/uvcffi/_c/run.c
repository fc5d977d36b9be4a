/* Loop turns: uv_run, the loop's one timer, and the small libuv callbacks that need no Python.

   The functions here never call Python; uvcffi_run releases the GIL around the uv_run that can
   block (gil.h explains the GIL's rules in this extension). */

#ifndef Py_PYTHON_H
#include <Python.h> /* cffi's generated code includes it first; this is for C tools alone */
#endif
#include <unistd.h>

#include "uvcffi.h"

const char UVCFFI_BUILD_VERSION[] = UVCFFI_VERSION;

static void uvcffi_noop_timer_cb(uv_timer_t* handle) { (void)handle; }

void uvcffi_noop_async_cb(uv_async_t* handle) { (void)handle; }

/* The loop's signal wake-up socket: Python's C-level signal handler writes to it
   (signal.set_wakeup_fd); draining it here makes uv_run return so the interpreter can run
   the Python-level handler. */
void uvcffi_drain_poll_cb(uv_poll_t* handle, int status, int events) {
    char buf[256];
    int fd;
    (void)status;
    (void)events;
    if (uv_fileno((uv_handle_t*)handle, &fd) != 0) return;
    while (read(fd, buf, sizeof buf) > 0) {}
}

static void uvcffi_count_cb(uv_handle_t* handle, void* arg) {
    (void)handle;
    ++*(int*)arg;
}

int uvcffi_count_handles(uv_loop_t* loop) {
    int n = 0;
    uv_walk(loop, uvcffi_count_cb, &n);
    return n;
}

struct uvcffi_close_arg {
    uv_close_cb cb;
    int n;
};

static void uvcffi_close_cb(uv_handle_t* handle, void* arg) {
    struct uvcffi_close_arg* a = arg;
    if (!uv_is_closing(handle)) {
        uv_close(handle, a->cb);
        a->n++;
    }
}

int uvcffi_close_all(uv_loop_t* loop, uv_close_cb cb) {
    struct uvcffi_close_arg a = {cb, 0};
    uv_walk(loop, uvcffi_close_cb, &a);
    return a.n;
}

/* uv_run without the GIL: it blocks in epoll, and other threads (call_soon_threadsafe,
   executors) must run meanwhile. Callbacks into Python take it back. UV_RUN_NOWAIT polls with a
   zero timeout and never blocks: it keeps the GIL (releasing and taking it back is two mutex
   round trips and a condition signal per turn). This is the only place where the GIL is
   released (gil.h). */
int uvcffi_run(uv_loop_t* loop, int mode) {
    int r;
#ifndef PYPY_VERSION
    PyThreadState* ts;
    if (mode == UV_RUN_NOWAIT) /* polls with a zero timeout: keep the GIL (~200 ns a turn) */
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
   Returns how many batched read events wait for Python (reads.c). */
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
    return rb != NULL ? rb->nev : 0; /* read events waiting for Python */
}

/* Whether the calling thread holds the GIL: 1 or 0; -1 where that cannot be told (PyPy, whose
   GIL cffi's calls release, as gil.h says). Called from Python, it tells whether cffi's wrapper
   kept the GIL around the call (tests/test_gil.py). A thread state is current exactly while
   the GIL is held; with none current, PyThreadState_GetDict (stable ABI) returns NULL and
   touches nothing. */
int uvcffi_gil_held(void) {
#ifndef PYPY_VERSION
    return PyThreadState_GetDict() != NULL;
#else
    return -1;
#endif
}
