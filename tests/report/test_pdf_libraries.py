"""WeasyPrint's C libraries found from one ``ldconfig -p`` listing (governance/report/formats/_libraries.py):
the answers ``ctypes.util.find_library`` gives, without a subprocess per name."""

from __future__ import annotations

import ctypes.util
import os
import sys

import pytest

from governance.report.formats import _libraries

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not os.path.exists(_libraries.LDCONFIG), reason="ldconfig listings are Linux's"
)

#: What WeasyPrint 70 asks for (its ffi module's names), a few system ones, and misses.
NAMES = (
    "libgobject-2.0-0",
    "gobject-2.0-0",
    "gobject-2.0",
    "pango-1.0",
    "harfbuzz",
    "harfbuzz-subset",
    "libharfbuzz-vector.so.0",
    "fontconfig",
    "pangoft2-1.0",
    "c",
    "m",
    "z",
    "no-such-library-anywhere",
)


def test_the_listing_gives_find_library_s_own_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.delenv("LIBRARY_PATH", raising=False)
    expected = {name: ctypes.util.find_library(name) for name in NAMES}
    assert expected["c"] and expected["gobject-2.0"]  # the listing has something to find
    original = ctypes.util.find_library
    runs: list[object] = []
    real_run = _libraries.subprocess.run

    def counted(*args: object, **kwargs: object) -> object:
        runs.append(args)
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(_libraries.subprocess, "run", counted)
    with _libraries.one_library_listing():
        assert ctypes.util.find_library is not original
        got = {name: ctypes.util.find_library(name) for name in NAMES}
    assert got == expected
    assert len(runs) == 1  # one listing for every name
    assert ctypes.util.find_library is original


def test_a_library_path_of_the_user_s_leaves_find_library_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/elsewhere")
    original = ctypes.util.find_library
    with _libraries.one_library_listing():
        assert ctypes.util.find_library is original


def test_no_ldconfig_leaves_find_library_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.delenv("LIBRARY_PATH", raising=False)
    monkeypatch.setattr(_libraries, "LDCONFIG", "/nonexistent/ldconfig")
    original = ctypes.util.find_library
    with _libraries.one_library_listing():
        assert ctypes.util.find_library is original
