"""How ``crawler bench`` measures a run: from outside, one or several commands started together.

- ``seconds``: wall time from the start of the first command to the exit of the last, interpreter
  and pool start-up included;
- ``cpu_seconds``: user + system CPU seconds of the commands' process trees. Each command's own
  process is counted exactly (its rusage, taken when it is reaped); its descendants (a forkserver
  and its pool's workers, which nobody in the tree waits for) as last sampled, which misses at most
  one sampling period of each;
- ``peak_rss_mb``: the largest sum of the trees' resident sizes seen in one sample (pages shared by
  a forked worker and its parent count twice, as RSS does);
- ``peak_threads``: the largest sum of the trees' OS threads seen in one sample;
- ``peak_open_files``: the largest sum of the trees' open file descriptors seen in one sample: the
  sockets they hold, plus a few dozen files, pipes and the job files;
- ``other_cpu_seconds``: CPU the machine spent outside the commands meanwhile (the bench site, this
  sampler, anything else running), a warning sign when it is large.
"""

from __future__ import annotations

import resource
import subprocess
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


def measure(commands: Sequence[Sequence[str]], env: dict[str, str], cwd: str) -> Usage:
    """Start every command at once, run them to their end sampling their process trees; raise
    CrawlError if one fails (the others are stopped)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = _busy_seconds()
    descendants: dict[tuple[int, float], float] = {}   # (pid, start time) -> CPU seconds last seen
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
            rss, threads, files = _sample(roots, descendants)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = own + sum(descendants.values())
    seconds = ended - started
    other = max(0.0, _busy_seconds() - busy_before - cpu)
    for proc, command, err_path in zip(procs, commands, errs, strict=True):
        if proc.returncode != 0:
            tail = err_path.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
            raise CrawlError(f"bench run exited with code {proc.returncode}: {' '.join(command)}\n{tail}")
    return Usage(seconds, cpu, peak_rss / 2**20, peak_threads, peak_files, other)


def _sample(roots: set[int], descendants: dict[tuple[int, float], float]) -> tuple[int, int, int]:
    """Record the CPU time of every descendant of the ``roots``; return the trees' total RSS in bytes,
    OS threads and open file descriptors."""
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
            if proc.pid not in roots:   # a root is counted exactly from its rusage instead
                descendants[proc.pid, proc.create_time()] = times.user + times.system
    return rss, threads, files
