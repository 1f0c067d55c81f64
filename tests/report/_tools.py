"""System tools the person-like report tests need: headless Chromium and poppler (pdftoppm, pdftotext).

They are installed from Debian on first use when the tests run as root with apt-get available;
when that is impossible the tests FAIL with the reason, they never skip silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_PACKAGES = ("chromium", "poppler-utils")
TOOLS = {"chromium": "chromium", "pdftoppm": "poppler-utils", "pdftotext": "poppler-utils"}


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def ensure_tools() -> dict[str, str]:
    """Paths of chromium, pdftoppm and pdftotext, installing them from Debian if needed."""
    found = {
        "chromium": _chromium(),
        "pdftoppm": shutil.which("pdftoppm"),
        "pdftotext": shutil.which("pdftotext"),
    }
    missing = sorted({TOOLS[name] for name, path in found.items() if path is None})
    if missing:
        why = _install(missing)
        found = {
            "chromium": _chromium(),
            "pdftoppm": shutil.which("pdftoppm"),
            "pdftotext": shutil.which("pdftotext"),
        }
        still = [name for name, path in found.items() if path is None]
        if still:
            pytest.fail(
                f"report tests need {', '.join(still)} (Debian packages {' '.join(APT_PACKAGES)}) and could "
                f"not install them: {why}. Install them with `apt-get install -y {' '.join(APT_PACKAGES)}`.",
                pytrace=False,
            )
    return {k: v for k, v in found.items() if v is not None}


def _install(packages: list[str]) -> str:
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this system"
    if os.geteuid() != 0:
        return "the tests do not run as root, so they cannot apt-get install"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", *packages], None):
        if cmd is None:  # the package lists may be stale or absent on a fresh machine
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600, check=False)
            cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
        if done.returncode == 0:
            return "installed"
    return f"apt-get install failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
