"""The fault site, timed: one host serving every fault the test suite knows (a hang, a drip, a reset,
a flaky 503, a 429 with Retry-After, redirect loops, a 200 MB body, a gzip bomb, a calendar trap, ...)
among 40 good pages, crawled with the issue's flags: ``--max-depth 20 --timeout 10``, the default
politeness and retries. Prints the wall time, the exit code, the errors recorded and how often each
bad URL was requested.

    .venv/bin/python benchmarks/faults.py

The site is the fault suite's (``tests/test_fault_suite.py``), served on 127.0.0.1 by the tests'
``Site``; nothing leaves the machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from conftest import cli_env  # noqa: E402 (the tests' folder is put on the path just above)
from site_server import Site  # noqa: E402
from test_fault_suite import routes  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as folder, Site() as site:
        site.routes.update(routes(site.origin, site.port))
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "crawler", "crawl", site.url("/"), "--db", f"{folder}/job.db",
                               "--max-depth", "20", "--timeout", "10"],
                              capture_output=True, text=True, cwd=folder, env=cli_env(), timeout=900, check=False)
        seconds = time.monotonic() - started
        print(f"exit {done.returncode} in {seconds:.1f} s")
        print("\n".join(line for line in done.stdout.splitlines() if line.startswith(("this run", "errors", "queue"))))
        repeated = {path: n for path, n in sorted(site.counts().items()) if n > 1}
        print(f"requested more than once: {repeated}")
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
