/* The GIL in this extension: the one place that decides it.

   Rule: every function Python calls here runs with the GIL held, but uvcffi_run (run.c), which
   releases it around the uv_run that can block in epoll, so that other threads
   (call_soon_threadsafe, executors) run meanwhile. Nothing else here may block: a new blocking
   call must release the GIL the way uvcffi_run does.

   Why: the functions Python calls are non-blocking work of well under a microsecond
   (uvcffi_try_write, uv_read_start, uv_close, ...). cffi's CPython wrapper of a lib function
   releases the GIL around the call (Py_BEGIN_ALLOW_THREADS ... Py_END_ALLOW_THREADS in the
   wrapper it generates), and dropping and taking back the GIL costs two mutex round trips, more
   than the call itself, once per message.

   How: cffi documents no way to keep the GIL around a call in out-of-line API mode. So this
   header, which build_ffi.py includes last in the set_source() text, turns those two macros into
   plain braces for the rest of the translation unit: everything cffi generates. cffi must place
   its wrappers after that text, because they call the functions the text declares. What this
   depends on is that cffi's wrappers release the GIL through these two macros: tests/test_gil.py
   fails if a lib call no longer holds the GIL (uvcffi_gil_held), and if a blocking turn no longer
   lets another thread run.

   PyPy calls lib functions without these wrappers and releases its own GIL around them: the
   rule above holds on CPython; on PyPy every call may let other threads run. */
#ifndef UVCFFI_GIL_H
#define UVCFFI_GIL_H

#ifndef PYPY_VERSION
#undef Py_BEGIN_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#undef Py_END_ALLOW_THREADS
#define Py_END_ALLOW_THREADS }
#endif

#endif /* UVCFFI_GIL_H */
