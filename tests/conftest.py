"""Fixtures for the end-to-end and CLI tests: a live loopback site and the CLI's test runner.

``cli.in_process(...)`` runs ``crawler.cli.main`` in this process, with the environment and stdin a
subprocess would have: it is the same command line, without a fresh interpreter's half second of
imports. Reading a job back (``export``, ``stats``) and usage errors (``fails``) go through it unless
a test asks for a subprocess (``fresh=True``); test_e2e checks once that both give the same bytes.
An in-process crawl runs as on a one-core machine (``--workers auto`` is one process; ``--workers N``
still starts N). ``cli(...)`` and ``cli.popen(...)`` run ``python -m crawler`` in a subprocess: for
what only a process shows (signals, kill -9, ``--workers``, a lock held by another process) and one end-to-end
check of each exit code.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis_server
from site_server import Site

# Long enough for any crawl these tests run; a hang fails the test instead of the whole suite.
CLI_TIMEOUT = 60.0
# Flags for a quick crawl of a test site: a page slower than a second is a timeout, nothing is retried.
FAST = ("--timeout", "1", "--retries", "0")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a crawler subprocess: ours without any CRAWLER_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env.pop("COLUMNS", None)
    env.update(extra or {})
    return env


def cli_command(*args: object, prelude: str = "") -> list[str]:
    """``python -m crawler ARGS``; with ``prelude``, that Python runs first in the same process (to set a
    constant such as a deadline that a test need not wait out at its production value)."""
    if not prelude:
        return [sys.executable, "-m", "crawler", *map(str, args)]
    return [sys.executable, "-c", f"{prelude}\nfrom crawler.cli import run\nrun()", *map(str, args)]


class CLI:
    """Runs ``python -m crawler ...`` in ``cwd`` (a temporary folder, so data/crawl.db lands there)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def __call__(self, *args: object, stdin: str | None = None, env: Mapping[str, str] | None = None,
                 timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli_command(*args), input=stdin, capture_output=True, text=True,
                              encoding="utf-8", cwd=self.cwd, env=cli_env(env), timeout=timeout,
                              check=False)

    def popen(self, *args: object, env: Mapping[str, str] | None = None,
              new_session: bool = False, prelude: str = "") -> subprocess.Popen[str]:
        """A crawl in the background; with ``new_session`` it leads a process group of its own (as
        under systemd or ``timeout``), which ``interrupt(..., group=True)`` signals as a whole;
        ``prelude`` as in ``cli_command``."""
        return subprocess.Popen(cli_command(*args, prelude=prelude), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8", cwd=self.cwd, env=cli_env(env),
                                start_new_session=new_session)

    @staticmethod
    def stop(*procs: subprocess.Popen[str]) -> None:
        """Kill and reap each crawl still running (one that has ended is left alone), with its
        process group when it leads one: a test that stops a crawl mid-way, or fails before its
        crawls end, leaves none behind."""
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if os.getpgid(proc.pid) == proc.pid:
                        os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()
                proc.communicate()

    @staticmethod
    def interrupt(proc: subprocess.Popen[str], when: Callable[[], object], *signals: signal.Signals,
                  pause: float = 0.3, timeout: float = 30.0, group: bool = False) -> str:
        """Once ``when()`` is true, send ``signals`` (``pause`` seconds apart; with ``group``, to the
        crawl's whole process group, as ``kill -- -PGID`` does), wait for the crawler to exit and
        return its stderr; a crawler that outlives the test is killed, never left behind."""
        try:
            assert when(), "the crawl never got where the test wanted to stop it"
            for number, sig in enumerate(signals):
                if number:
                    time.sleep(pause)
                if group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            return proc.communicate(timeout=timeout)[1]
        finally:
            CLI.stop(proc)

    def in_process(self, *args: object, stdin: str | None = None,
                   env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``crawler.cli.main(args)`` here, in ``cwd``, with its output captured and the environment
        a subprocess would get (``cli_env(env)``) and ``stdin``: where a subprocess would add
        nothing but start-up time."""
        from crawler.cli import main
        from crawler.config import Settings

        # A text stream over bytes, as sys.stdout is: export writes to its binary buffer.
        raw = io.BytesIO()
        out, err = io.TextIOWrapper(raw, encoding="utf-8", newline=""), io.StringIO()
        argv = [str(a) for a in args]
        with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("CRAWLER_") or k == "COLUMNS"]:
                patch.delenv(name)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
            # A crawl here runs as on a one-core machine: --workers auto (the default) is this process
            # alone. Its workers would be fresh interpreters (fork is not safe beside the test site's
            # threads), half a second each; worker processes are tested where a crawl is a subprocess
            # that forks them, as a user's is (test_workers, test_bench, the main crawl of test_e2e).
            patch.setattr(Settings, "processes", property(lambda s: 1 if s.frontier else s.workers or 1))
            stack.enter_context(contextlib.chdir(self.cwd))
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            try:
                code = main(argv)
            except SystemExit as exc:  # what click does on a closed pipe, for instance
                code = exc.code if isinstance(exc.code, int) else 1
        out.flush()
        return subprocess.CompletedProcess(["crawler", *argv], code, raw.getvalue().decode("utf-8"), err.getvalue())

    def export(self, db: Path, *args: object, fresh: bool = False) -> list[dict[str, Any]]:
        """``export --format jsonl --out -`` parsed, one dict per line (``fresh``: in a subprocess)."""
        command = ("export", "--db", db, "--format", "jsonl", "--out", "-", *args)
        done = self(*command) if fresh else self.in_process(*command)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def stats(self, db: Path, *, fresh: bool = False) -> dict[str, Any]:
        command = ("stats", "--db", db, "--json")
        done = self(*command) if fresh else self.in_process(*command)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def fails(self, code: int | tuple[int, ...], *args: object, stdin: str | None = None,
              env: Mapping[str, str] | None = None, fresh: bool = False) -> str:
        """Run a command that must exit with ``code`` (or one of several) and say why in exactly one
        stderr line, no traceback; return that line (``fresh``: in a subprocess)."""
        run = self.__call__ if fresh else self.in_process
        done = run(*args, stdin=stdin, env=env)
        codes = code if isinstance(code, tuple) else (code,)
        assert done.returncode in codes, f"exit {done.returncode}, expected {code}:\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{done.stderr}"
        return lines[0]

    def export_by_url(self, db: Path, *args: object) -> dict[str, dict[str, Any]]:
        """The exported records keyed by URL; a URL exported twice fails the test."""
        found: dict[str, dict[str, Any]] = {}
        for rec in self.export(db, *args):
            assert rec["url"] not in found, f"{rec['url']} exported twice"
            found[rec["url"]] = rec
        return found


def _loopback_only(host: object) -> None:
    """Refuse a name or address that is not on this machine: raise OSError unless ``host`` is
    ``localhost`` or an address in 127.0.0.0/8 or ::1."""
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name == "localhost":
        return
    try:
        if ipaddress.ip_address(name.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback only, not {name!r}")


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """No test in this process resolves a name or connects beyond 127.0.0.0/8, even where the code
    under test is broken (a mock transport ignored, a fake host like ``a.test`` sent to DNS)."""
    real_getaddrinfo, real_connect, real_connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            _loopback_only(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def checked(address: Any) -> None:
        if isinstance(address, tuple):
            _loopback_only(address[0])

    def connect(self: socket.socket, address: Any) -> None:
        checked(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        checked(address)
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield


@pytest.fixture(scope="session")
def make_cli() -> type[CLI]:
    """For fixtures wider than one test: ``make_cli(tmp_path_factory.mktemp("x"))``."""
    return CLI


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture
def site() -> Iterator[Site]:
    """A started, empty site; a test fills ``site.routes`` before it crawls."""
    with Site() as running:
        yield running


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "job.db"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free loopback port for the session; skips where there is none."""
    reason = redis_server.skip_reason()
    if reason:
        pytest.skip(reason)
    with redis_server.serve(tmp_path_factory.mktemp("redis")) as url:
        yield url
