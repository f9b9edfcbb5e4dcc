"""How ``crawler bench`` measures a run: from outside, one or several commands started together.

- ``seconds``: wall time from the start of the first command to the exit of the last, interpreter
  and pool start-up included;
- ``cpu_seconds``: user + system CPU seconds of the commands' process trees, each process once. On
  Linux the bench adopts the trees' orphans while it measures (a child subreaper), so every process
  of a tree is reaped by its parent, by a command, or by the bench, and the kernel's count of the
  bench's reaped children is the trees' exact CPU: a worker that its crawl waits for is in the
  crawl's count, a forkserver's pool in the forkserver's. Elsewhere, the sum of every process's CPU
  as last sampled, which misses at most one sampling period of each;
- ``peak_rss_mb``: the largest sum of the trees' resident sizes seen in one sample (pages shared by
  a forked worker and its parent count twice, as RSS does);
- ``peak_threads``: the largest sum of the trees' OS threads seen in one sample;
- ``peak_open_files``: the largest sum of the trees' open file descriptors seen in one sample: the
  sockets they hold, plus a few dozen files, pipes and the job files;
- ``other_cpu_seconds``: CPU the machine spent outside the commands meanwhile (the bench site, this
  sampler, anything else running), a warning sign when it is large.
"""

from __future__ import annotations

import ctypes
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from crawler.errors import CrawlError

SAMPLE_EVERY = 0.05


@dataclass(frozen=True, slots=True)
class Usage:
    """What one run cost, measured from outside."""

    seconds: float             # wall time, first start to last exit
    cpu_seconds: float         # user + system, every process tree
    peak_rss_mb: float         # largest total RSS of the trees in one sample
    peak_threads: int          # largest total of OS threads of the trees in one sample
    peak_open_files: int       # largest total of open file descriptors (sockets, mostly) in one sample
    other_cpu_seconds: float   # CPU the rest of the machine used meanwhile


def open_files_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy, all cores."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


_PR_SET_CHILD_SUBREAPER = 36   # linux/prctl.h


def _adopt_orphans(on: bool) -> bool:
    """Make this process the reaper of its descendants' orphans (``on``), or stop; False where that
    cannot be done (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _reap_adopted(kept: set[int], deadline: float) -> None:
    """Wait for the children this process adopted (a forkserver outlives its crawl by a moment) and
    reap them, so that their CPU joins this process's rusage of its children; one that outlives the
    ``deadline`` is killed. ``kept``: the children that are not the run's (the bench site)."""
    while adopted := [c for c in psutil.Process().children() if c.pid not in kept]:
        _, alive = psutil.wait_procs(adopted, timeout=max(0.0, deadline - time.monotonic()))
        for proc in alive:
            proc.kill()
        psutil.wait_procs(alive, timeout=5)


def measure(commands: Sequence[Sequence[str]], env: dict[str, str], cwd: str) -> Usage:
    """Start every command at once, run them to their end sampling their process trees; raise
    CrawlError if one fails (the others are stopped)."""
    kept = {c.pid for c in psutil.Process().children()}
    adopting = _adopt_orphans(True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = _busy_seconds()
    seen: dict[tuple[int, float], float] = {}   # (pid, start time) -> CPU seconds last seen, roots included
    peak_rss = peak_threads = peak_files = 0
    errs = [Path(cwd) / f"stderr-{k}.txt" for k in range(len(commands))]
    procs: list[subprocess.Popen[bytes]] = []
    waiters: list[threading.Thread] = []
    ended = started = time.monotonic()
    lock = threading.Lock()

    def wait(proc: subprocess.Popen[bytes]) -> None:   # reaps a command the moment it exits: exact end time
        nonlocal ended
        proc.wait()
        with lock:
            ended = max(ended, time.monotonic())

    try:
        for command, err_path in zip(commands, errs, strict=True):
            with open(err_path, "wb") as err:
                procs.append(subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=err))
            waiters.append(threading.Thread(target=wait, args=(procs[-1],), name="bench-wait", daemon=True))
            waiters[-1].start()
        roots = {proc.pid for proc in procs}
        while any(w.is_alive() for w in waiters):
            rss, threads, files = _sample(roots, seen)
            peak_rss, peak_threads, peak_files = max(peak_rss, rss), max(peak_threads, threads), max(peak_files, files)
            if any(p.returncode not in (None, 0) for p in procs):
                break   # one failed: the rest are stopped below
            time.sleep(SAMPLE_EVERY)
    finally:
        for proc in procs:   # interrupted, or one failed: leave no crawler behind
            if proc.poll() is None:
                proc.terminate()
        for waiter in waiters:
            waiter.join()
        if adopting:
            try:
                _reap_adopted(kept, time.monotonic() + 10)
            finally:
                _adopt_orphans(False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = reaped if adopting else sum(seen.values())
    seconds = ended - started
    other = max(0.0, _busy_seconds() - busy_before - cpu)
    for proc, command, err_path in zip(procs, commands, errs, strict=True):
        if proc.returncode != 0:
            tail = err_path.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
            raise CrawlError(f"bench run exited with code {proc.returncode}: {' '.join(command)}\n{tail}")
    return Usage(seconds, cpu, peak_rss / 2**20, peak_threads, peak_files, other)


def _sample(roots: set[int], seen: dict[tuple[int, float], float]) -> tuple[int, int, int]:
    """Record the CPU time of every process of the ``roots``' trees; return the trees' total RSS in
    bytes, OS threads and open file descriptors."""
    rss = threads = files = 0
    for pid in roots:
        try:
            tree = [psutil.Process(pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                files += proc.num_fds()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            seen[proc.pid, proc.create_time()] = times.user + times.system
    return rss, threads, files
