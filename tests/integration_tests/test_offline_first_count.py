"""Offline with no encoding files: the first count never hangs.

tiktoken downloads a missing encoding with no timeout; behind a proxy that
accepts connections and never answers, a first count used to wait forever.
A proxy like that runs here on 127.0.0.1, and a fresh interpreter (so no
encoding is loaded yet) with an empty ``TIKTOKEN_CACHE_DIR`` counts through
it: the count returns, approximated, within 5 s, with one warning that says
how to get the files.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

import pytest

_SCRIPT = """
import logging, sys, time
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from langchain_tokencal import TokenCalibrationHandler
t0 = time.perf_counter()
handler = TokenCalibrationHandler()
n = handler.count_messages(["Where is my parcel? It left Rotterdam on Monday."], model="gpt-4o")
print(f"tokens={n} seconds={time.perf_counter() - t0:.2f}")
"""


@pytest.fixture
def silent_proxy() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never read or answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_first_count_returns_within_5_s(silent_proxy: int, tmp_path: Path) -> None:
    """An empty encoding cache behind a hanging proxy: approximated in < 5 s."""
    proxy = f"http://127.0.0.1:{silent_proxy}"
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache"),
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "https_proxy": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    t0 = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    tokens = int(done.stdout.split("tokens=")[1].split()[0])
    assert tokens > 5
    assert elapsed < 5 + 10  # the count within 5 s; interpreter and imports on top
    counted = float(done.stdout.split("seconds=")[1])
    assert counted < 5
    assert "not loaded within" in done.stderr
    assert "TIKTOKEN_CACHE_DIR" in done.stderr
