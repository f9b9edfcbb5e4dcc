"""A private nginx for the tests that crawl a local copy of a real site: Debian's ``nginx`` serving
a folder on a free loopback port from a temporary prefix, stopped when the block ends. Tests that
need it are skipped, with the reason, where nginx or the site's package is missing (``.ci/run``
installs both).

    with nginx_server.serve(Path("/usr/share/doc/python3.11/html"), tmp_path) as base:
        base   # "http://127.0.0.1:PORT/"
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.redis_server import free_port

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")


def skip_reason(root: Path) -> str | None:
    """Why a site under ``root`` cannot be served here, or None."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx is not installed (Debian: apt-get install nginx)"
    if not (root / "index.html").exists():
        return f"{root} is missing (Debian: apt-get install python3.11-doc)"
    return None


@contextlib.contextmanager
def serve(root: Path, prefix: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 until the block ends; yields the base URL."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    temps = " ".join(f"{k}_temp_path {prefix}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = prefix / "nginx.conf"
    conf.write_text(f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  include /etc/nginx/mime.types;
  {temps}
  server {{ listen 127.0.0.1:{port}; root {root}; index index.html; }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(prefix)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(base, timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text()[-500:]}") from None
                time.sleep(0.05)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
