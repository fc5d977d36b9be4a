# The compiled cffi module (built by build_ffi.py from _c/). cffi generates no types: ``ffi`` and
# ``lib`` are Any here, and this is the only place Any enters the package's types; the Python
# modules that use them annotate what they pass in and out.
from typing import Any

ffi: Any
lib: Any
