"""``crawler.bench.measure``: what a run cost, each process of its tree counted once, whoever reaps it."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import cli_env

from crawler.bench.measure import measure

# A loop that burns ``{seconds}`` s of its own process's CPU, however loaded the machine is.
BURN = "t = time.process_time()\nwhile time.process_time() - t < {seconds}: pass\n"


def _cpu_of(program: str, tmp_path: Path) -> float:
    return measure([[sys.executable, "-c", program]], cli_env(), str(tmp_path)).cpu_seconds


def test_a_child_that_its_parent_waits_for_is_counted_once(tmp_path: Path) -> None:
    """``crawler crawl --workers 2`` forks its workers and waits for them: their CPU is in the crawl's
    own count, and must not be added again from the samples (240% on 2 cores)."""
    program = ("import os, time\nif os.fork() == 0:\n" + "".join("    " + line + "\n" for line in
               BURN.format(seconds=1.0).splitlines()) + "    os._exit(0)\nos.wait()\n")
    cpu = _cpu_of(program, tmp_path)
    assert 1.0 <= cpu < 1.5   # the child's second, plus the interpreter's start; twice would be 2 s


def test_a_grandchild_that_outlives_its_parent_is_counted_whole(tmp_path: Path) -> None:
    """A forkserver outlives the crawl that started it: what it burns after the crawl's exit counts too."""
    program = ("import os, time\nif os.fork() == 0:\n    time.sleep(0.3)\n"
               + "".join("    " + line + "\n" for line in BURN.format(seconds=0.8).splitlines()) + "    os._exit(0)\n")
    cpu = _cpu_of(program, tmp_path)
    assert 0.8 <= cpu < 1.3
