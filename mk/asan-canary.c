/* The ASan harness's canary (mk/asan.mk): one deliberate fault of each kind the harness must
   catch, compiled with the same sanitizer flags as the extension and called through ctypes
   under the same preload and options. `make test-asan` checks that each one fails its process
   and leaves a report in the log directory before it trusts a clean run. Never part of uvcffi. */
#include <stdlib.h>
#include <string.h>

int uvcffi_asan_canary(int mode, int n) {
    if (mode == 0) {                 /* heap-buffer-overflow: one byte past a malloc'd block */
        char* p = malloc((size_t)n);
        int v;
        memset(p, 1, (size_t)n);
        v = p[n];
        free(p);
        return v;
    }
    return n + 2147483647;           /* mode 1: signed integer overflow (UBSan) for n > 0 */
}
