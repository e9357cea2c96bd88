"""A real ``mlops serve`` process on 127.0.0.1 for the serving tests, and its HTTP client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import free_port

httpx = pytest.importorskip("httpx", reason="the serving tests need httpx (mlops[test])")
pytest.importorskip("uvicorn", reason="the serving tests need mlops[serve]")

ROW = {"temperature": 25.0, "vibration": 1.5, "line": 1}
HOT_ROW = {"temperature": 60.0, "vibration": 4.0, "line": 2}
BOUND = 60.0  # seconds to wait for any condition


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    output: Path

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=BOUND)

    def post(self, path: str, **kwargs: Any) -> Any:
        return httpx.post(self.url + path, timeout=BOUND, **kwargs)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> bool:
        """Stop the server with ``sig``; True when it shut down gracefully on it.

        uvicorn raises the signal again once it has shut down, so a graceful stop ends
        by that signal (or exit 0).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(BOUND)
        return code in (0, -sig) and "Finished server process" in self.text()


def start_server(root: Path, *args: str) -> Server:
    """``python -m mlops serve ARGS`` in ``root`` on a free port, once ready."""
    port = free_port()
    output = root.parent / f"serve-{port}.log"
    with open(output, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops", "serve", *args, "--port", str(port)],
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_PROXY": "127.0.0.1"},
        )
    server = Server(proc, f"http://127.0.0.1:{port}", output)
    deadline = time.monotonic() + BOUND
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"mlops serve exited {proc.returncode}: {server.text()}")
        try:
            if server.get("/health/ready").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"mlops serve never became ready: {server.text()}")
        time.sleep(0.1)


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` until it is truthy (within a generous bound)."""
    deadline = time.monotonic() + BOUND
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
