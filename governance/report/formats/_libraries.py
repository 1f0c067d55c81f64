"""WeasyPrint's C libraries found from one ``ldconfig -p`` listing instead of one per name.

WeasyPrint loads GLib, Pango, HarfBuzz and fontconfig through cffi under the names every platform
uses (``libgobject-2.0-0``, ``gobject-2.0``, ``libgobject-2.0.so.0``, ...). For a name the dynamic
loader cannot open as it is, cffi asks ``ctypes.util.find_library``, which on Linux runs
``ldconfig -p`` in a subprocess for every name (and gcc or ld after a miss): 22 lookups, 0.13 s of
wall time at every import of WeasyPrint, on the PDF's critical path (docs/PERFORMANCE.md).

:func:`one_library_listing` answers those lookups from one listing, with the rule
``find_library`` applies to it (the first ``lib<name>.<suffix>`` entry of this machine's ABI).
A name that is not in the listing gets None, which is ``find_library``'s answer too unless
``LD_LIBRARY_PATH`` or ``LIBRARY_PATH`` point elsewhere: then, and off Linux, or without
``ldconfig``, the lookups are ``find_library``'s own.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["one_library_listing"]

#: ``ctypes.util._findSoname_ldconfig``'s ABI tags (CPython 3.11-3.13), by machine and word size.
_ABI = {
    "x86_64-64": "libc6,x86-64",
    "ppc64-64": "libc6,64bit",
    "sparc64-64": "libc6,64bit",
    "s390x-64": "libc6,64bit",
    "ia64-64": "libc6,IA-64",
}
LDCONFIG = "/sbin/ldconfig"


def _listing() -> bytes | None:
    """``ldconfig -p``'s output, run as ``find_library`` runs it; None where it cannot be had."""
    try:
        done = subprocess.run(
            [LDCONFIG, "-p"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env={"LC_ALL": "C", "LANG": "C"},
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _abi() -> str:
    import struct

    bits = "-32" if struct.calcsize("l") == 4 else "-64"
    return _ABI.get(os.uname().machine + bits, "libc6")


@contextlib.contextmanager
def one_library_listing() -> Iterator[None]:
    """Within the block, ``ctypes.util.find_library`` answers from one ``ldconfig -p`` listing."""
    import ctypes.util

    if sys.platform != "linux" or os.environ.get("LD_LIBRARY_PATH") or os.environ.get("LIBRARY_PATH"):
        yield
        return
    listing = _listing()
    if listing is None:
        yield
        return
    abi = _abi()
    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        found = re.search(os.fsencode(rf"\s+(lib{re.escape(name)}\.[^\s]+)\s+\({abi}"), listing)
        return os.fsdecode(found.group(1)) if found else None

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = original
