"""The supervisor's own memory: free heap pages handed back to the kernel once started.

Starting podsup (imports, option parsing, building the plug-ins) allocates and
frees a few hundred kB of C heap that glibc keeps mapped for later. podsup
runs in every pod, so once it is up it asks glibc to return what is free
(``malloc_trim(0)``): ~0.5 MB of RSS per pod (issue 13). Where the C library
has no malloc_trim (musl, macOS) nothing happens.
"""
from __future__ import annotations


def release_free_memory() -> bool:
    """``malloc_trim(0)``; False where the C library has none."""
    try:
        import ctypes  # loaded anyway (the sub-reaper's prctl)

        trim = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return False
    trim(0)
    return True
