"""A private ``redis-server`` for the tests: started on a free loopback port in a temporary folder,
without persistence, stopped at the end of the session. Tests that need it are skipped, with the
reason, where redis-server or redis-py is missing.

Every test uses its own job name, so the tests share the one server without seeing each other.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

_url: str | None = None


def skip_reason() -> str | None:
    """Why the Redis tests cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    if importlib.util.find_spec("redis") is None:
        return "redis-py is not installed (pip install -e '.[redis]')"
    return None


def url() -> str:
    """The URL of the running server (the ``redis_url`` fixture starts it)."""
    assert _url is not None, "no redis-server: ask for the redis_url fixture first"
    return _url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Run a redis-server in ``directory`` until the block ends; yields its URL. A port taken
    between choosing it and binding it is retried with another."""
    global _url
    for _ in range(5):
        port = free_port()
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                   "--save", "", "--appendonly", "no", "--logfile", str(directory / f"redis-{port}.log")]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and not _answers(port):
                time.sleep(0.02)
            if proc.poll() is None and _answers(port):
                previous, _url = _url, f"redis://127.0.0.1:{port}/0"
                try:
                    yield _url
                finally:
                    _url = previous
                return
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    raise RuntimeError(f"redis-server did not start; see the logs in {directory}")
