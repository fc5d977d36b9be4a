"""The package version; build_ffi.py bakes it into the extension, _binding.py checks it."""

__version__ = "0.1.0"
