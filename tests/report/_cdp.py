"""A tiny Chrome DevTools Protocol client: open a page in headless Chromium and watch what it does."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1280,2000",
)


@dataclass
class PageVisit:
    """What happened while a page loaded."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    evaluated: Any = None


class Browser:
    """Headless Chromium with remote debugging on a free port, in a fresh profile."""

    def __init__(self, chromium: str) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="gov-chromium-")
        self.proc = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile.name}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = self._port()
        self._next_id = 0

    def _port(self) -> int:
        # Chromium writes the port it chose to DevToolsActivePort in the profile.
        marker = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().splitlines()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"chromium exited early: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    def visit(
        self, url: str, expression: str, screenshot: Path | None = None, timeout: float = 60
    ) -> PageVisit:
        """Load ``url`` with console, log and network events on; evaluate ``expression``; screenshot."""
        import websocket

        targets = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10).read()
        )
        page = next(t for t in targets if t.get("type") == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        visit = PageVisit()
        try:
            for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
                self._call(ws, method, {}, visit)
            self._call(ws, "Page.navigate", {"url": url}, visit)
            self._wait_event(ws, "Page.loadEventFired", visit, timeout)
            result = self._call(
                ws, "Runtime.evaluate", {"expression": expression, "returnByValue": True}, visit
            )
            visit.evaluated = result.get("result", {}).get("value")
            if screenshot is not None:
                import base64

                shot = self._call(
                    ws, "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}, visit
                )
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            # Late console messages or requests (lazy resources) would arrive now.
            self._drain(ws, visit, 0.5)
        finally:
            ws.close()
        return visit

    def _call(self, ws: Any, method: str, params: dict[str, Any], visit: PageVisit) -> dict[str, Any]:
        self._next_id += 1
        ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == self._next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self._record(msg, visit)

    def _wait_event(self, ws: Any, name: str, visit: PageVisit, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            self._record(msg, visit)
            if msg.get("method") == name:
                return
        raise TimeoutError(f"no {name} within {timeout} s")

    def _drain(self, ws: Any, visit: PageVisit, seconds: float) -> None:
        ws.settimeout(seconds)
        try:
            while True:
                self._record(json.loads(ws.recv()), visit)
        except Exception:  # the timeout ends the drain
            pass

    @staticmethod
    def _record(msg: dict[str, Any], visit: PageVisit) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            visit.console_errors.append(json.dumps(params.get("args")))
        elif method == "Runtime.exceptionThrown":
            visit.console_errors.append(json.dumps(params.get("exceptionDetails")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            visit.console_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            visit.requests.append(params.get("request", {}).get("url", ""))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._profile.cleanup()
