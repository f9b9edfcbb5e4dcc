"""A private ``redis-server`` for the tests: started on a free loopback port in a temporary folder,
without persistence, stopped at the end of the session. Tests that need it are skipped, with the
reason, where redis-server or redis-py is missing.

Every test uses its own job name, so the tests share the one server without seeing each other.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

_url: str | None = None
_running: dict[str, subprocess.Popen[bytes]] = {}   # URL -> the server process, for ``pause``


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
def serve(directory: Path, port: int | None = None) -> Iterator[str]:
    """Run a redis-server in ``directory`` until the block ends; yields its URL. A port taken
    between choosing it and binding it is retried with another, unless ``port`` is given (a server
    restarted at the same address: empty, as there is no persistence)."""
    global _url
    for _ in range(1 if port else 5):
        chosen = port or free_port()
        command = ["redis-server", "--port", str(chosen), "--bind", "127.0.0.1", "--dir", str(directory),
                   "--save", "", "--appendonly", "no", "--logfile", str(directory / f"redis-{chosen}.log")]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and not _answers(chosen):
                time.sleep(0.02)
            if proc.poll() is None and _answers(chosen):
                previous, _url = _url, f"redis://127.0.0.1:{chosen}/0"
                _running[_url] = proc
                try:
                    yield _url
                finally:
                    del _running[_url]
                    _url = previous
                return
        finally:
            proc.send_signal(signal.SIGCONT)   # a test may have stopped it (SIGSTOP): a stopped server ignores SIGTERM
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    raise RuntimeError(f"redis-server did not start; see the logs in {directory}")


def pause(url: str, sig: signal.Signals) -> None:
    """Send the server at ``url`` (started by ``serve``) ``sig``: SIGSTOP makes it a server that
    accepts connections and never answers, SIGCONT brings it back."""
    _running[url].send_signal(sig)
