/* Child processes: what the os module of some interpreters lacks. */

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uvcffi.h"

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
