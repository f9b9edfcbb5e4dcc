"""Worker processes for ``--workers N``: every core fetches and parses, one process owns the job.

    coordinator (the crawl): frontier, politeness, robots.txt, the writer ──sockets──► N workers
    worker: its own event loop, fetcher and parser (a ``LocalVisitor``; ``worker_process``)

The coordinator keeps what must be one for the whole job: the job file and its one writer, the
frontier, the per-host limits and delays, robots.txt. A worker is handed URLs that politeness has
already let go; it fetches and parses each and sends back the page record, which also tells the
coordinator the request is over (it frees the host and the global permit then). The messages, and
a worker's side of them, are in ``worker_process``. What this costs next to one process is
measured in docs/performance.md ("Every core").

A worker that dies (kill -9, a crash in C code) fails the visits it held with ``WorkerDied``, a
retryable error: each of its URLs goes back to its host's queue and is tried again within the
usual ``--retries``, so a URL is requested at most ``1 + retries`` times (and one whose retries
all died is fetched again by the next run, as a URL in flight at a kill -9 is). A new worker takes
its place, up to ``RESPAWNS`` times a run.

A worker that is alive but wedged (stopped with SIGSTOP, its event loop stuck) would hold its
visits for ever, and the crawl could never finish. So a worker's visits have a deadline: a worker
holding visits must be heard from (any message; it says ``alive`` every second) within
``deadline`` seconds, the request deadline (``--timeout``: every request of a visit ends within it)
plus ``WEDGED_MARGIN``, for what holds a worker's loop besides requests (parsing the largest page).
Past it the worker is killed (SIGKILL), and it dies as above: replaced, its URLs retried.

Workers ignore Ctrl-C, SIGTERM and SIGHUP (sent to the whole process group by a terminal,
``timeout``, systemd or ``kill -- -PGID``): the coordinator stops the crawl, and they exit when
their socket closes, so a coordinator that dies takes its workers with it.

Workers are forked by ``crawler crawl`` before its event loop starts (``fork_workers``: they start
in milliseconds with everything imported); one that takes a dead worker's place, or any worker
when the crawl was not started that way, is a new interpreter (``spawn_worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from crawler.config import Settings
from crawler.errors import InternalError, WorkerDied
from crawler.models import FrontierItem, PageRecord
from crawler.parse_stage import ParseOptions
from crawler.robots import RobotsCache
from crawler.session.jar import Records, records
from crawler.session.keeper import Keeper
from crawler.urls import origin
from crawler.worker_process import Outbox, receive, run_worker

RESPAWNS = 8             # workers started in place of dead ones, per run, before the crawl gives up
# A parse of the largest page (--max-bytes, 10 MiB, of 240,000 links) holds a worker's loop 3 s
# here: the margin is three times that, so only a worker that is stopped or stuck outlasts it.
WEDGED_MARGIN = 10.0
_TICK = 0.5              # seconds between two looks at the workers' silence


# -- starting workers ------------------------------------------------------------------------------

@dataclass(slots=True)
class Started:
    """A worker process and this side's end of its socket."""

    pid: int
    sock: socket.socket
    exited: Callable[[], Awaitable[int]]   # waits for the process to end; its exit status


def fork_workers(count: int) -> list[Started]:
    """Start ``count`` workers by ``fork``: call it before the event loop and any thread start
    (``crawler crawl`` does, first thing). A forked worker has every module of this process already
    imported, so it starts in milliseconds, not the third of a second an interpreter takes. Where
    this process already runs threads, fork is not safe: the workers are started later, afresh."""
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        return []
    import aiohttp  # noqa: F401  # imported here, once, for every worker (the transport loads it lazily)

    # What every process shares (the modules, mostly) moves out of the collector's reach, so that
    # its passes do not write to those pages and copy them into each worker (gc.freeze's purpose).
    gc.collect()
    gc.freeze()
    started: list[Started] = []
    for _ in range(count):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:   # the worker
            code = 0
            try:
                ours.close()
                for other in started:
                    other.sock.close()
                run_worker(theirs)
            except SystemExit as exc:   # the crawl went away before it needed this worker
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)   # never the parent's exit handlers
        theirs.close()
        started.append(Started(pid, ours, functools.partial(asyncio.to_thread, _wait_pid, pid)))
    return started


def _wait_pid(pid: int) -> int:
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:   # reaped already
        return -1


async def spawn_worker() -> Started:
    """Start a worker as a new interpreter (``python -m crawler.worker_process FD``): safe at any time."""
    ours, theirs = socket.socketpair()
    with theirs:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "crawler.worker_process",
                                                       str(theirs.fileno()),
                                                       pass_fds=(theirs.fileno(),))
    return Started(process.pid, ours, process.wait)


# -- the coordinator's side ----------------------------------------------------------------------

@dataclass(slots=True)
class _Visit:
    url: str
    result: asyncio.Future[PageRecord]


@dataclass(slots=True)
class _Worker:
    number: int
    started: Started
    reader: asyncio.StreamReader
    outbox: Outbox
    visits: dict[int, _Visit] = field(default_factory=dict)
    alive: bool = True
    ready: asyncio.Event = field(default_factory=asyncio.Event)   # its fetcher is up: requests leave at once
    robots_sent: set[str] = field(default_factory=set)   # origins whose rules it has
    heard: bool = True       # it said something since the watchdog last looked
    silent: float = 0.0      # seconds it has held visits without a word, in the watchdog's ticks
    wedged: str | None = None   # why the watchdog killed it


class WorkerPool:
    """``count`` worker processes behind the ``Visitor`` interface: the ``forked`` ones, and new
    ones for the rest. ``async with WorkerPool(...)``: leaving it closes the workers' sockets (they
    exit), waits a moment, then kills what is left."""

    def __init__(self, settings: Settings, options: ParseOptions, count: int, forked: Sequence[Started] = (),
                 robots: Callable[[], RobotsCache | None] = lambda: None, *, keeper: Keeper | None = None) -> None:
        """``keeper`` keeps the crawl's session: each worker starts with its cookies, and the cookies
        one worker's responses set go to it and on to the other workers."""
        self.settings = settings
        self.keeper = keeper
        self.robots = robots   # the crawl's robots.txt rules (once it has them), handed on to the workers
        self.options = options
        self.count = count
        self.respawned = 0
        self._forked = list(forked)
        self._workers: list[_Worker] = []
        self._tokens = itertools.count()
        self._closing = False
        self._stack = contextlib.AsyncExitStack()
        self._readers: asyncio.TaskGroup | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.deadline = settings.timeout + WEDGED_MARGIN   # a busy worker's longest silence (see above)

    async def __aenter__(self) -> WorkerPool:
        self._readers = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._stack.push_async_callback(self._stop_all)
        for number in range(self.count):
            await self._start(number, self._forked.pop() if self._forked else await spawn_worker())
        self._watchdog = self._readers.create_task(self._watch(), name="worker-watchdog")
        # A worker still setting up would send its first request late, and a host's delay would
        # be counted from a request that had not left: wait (a moment) until every one is ready.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*(w.ready.wait() for w in self._workers))
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._closing = True
        await self._stack.__aexit__(et, e, tb)

    async def _start(self, number: int, started: Started) -> None:
        reader, writer = await asyncio.open_connection(sock=started.sock, limit=2**20)
        worker = _Worker(number, started, reader, Outbox(writer))
        worker.outbox.put(("init", self.settings, self.options))
        if self.keeper is not None:
            worker.outbox.put(("cookies", records(self.keeper.session.jar)))
        self._workers.append(worker)
        assert self._readers is not None
        self._readers.create_task(self._read(worker), name=f"worker-{number}")

    async def _share(self, source: _Worker, cookies: Records, urgent: bool) -> None:
        """The cookies ``source``'s responses (or its login) set: kept, and sent to the others."""
        if self.keeper is not None:
            await self.keeper.merged(cookies, urgent)
        for worker in self._workers:
            if worker is not source and worker.alive:
                worker.outbox.put(("cookies", cookies))

    async def _stop_all(self) -> None:
        """Close every worker's socket (they finish nothing more and exit), then wait, then kill."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for started in self._forked:   # forked for a crawl that never needed them
            started.sock.close()
        for worker in self._workers:
            worker.outbox.writer.close()
        everyone = [w.started for w in self._workers if w.alive] + self._forked
        waits = {asyncio.ensure_future(started.exited()): started for started in everyone}
        if waits:
            _, late = await asyncio.wait(waits, timeout=5.0)
            for future in late:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(waits[future].pid, signal.SIGKILL)
            if late:
                await asyncio.wait(late)

    async def _read(self, worker: _Worker) -> None:
        """Deliver a worker's messages; when its stdout ends, it is gone."""
        try:
            while True:
                kind, token, *rest = await receive(worker.reader)
                worker.heard = True
                if kind == "alive":
                    continue
                if kind == "ready":
                    worker.ready.set()
                    continue
                if kind == "cookies":
                    await self._share(worker, *rest)
                    continue
                visit = worker.visits.get(token)
                if visit is None or visit.result.done():
                    continue   # cancelled meanwhile
                if kind == "done":
                    visit.result.set_result(rest[0])
                elif kind == "failed":
                    visit.result.set_exception(rest[0])
                else:
                    visit.result.set_exception(InternalError(f"in worker process {worker.number}: {rest[0]}"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        worker.alive = False
        worker.outbox.writer.close()
        code = await worker.started.exited()
        for visit in worker.visits.values():
            if not visit.result.done():
                visit.result.set_exception(WorkerDied(visit.url, worker.wedged or
                                                      f"worker process {worker.number} exited ({code})"))
        if not self._closing and self.respawned < RESPAWNS:
            self.respawned += 1
            self._workers.remove(worker)
            await self._start(worker.number, await spawn_worker())

    async def _watch(self) -> None:
        """Kill a worker that holds visits and has said nothing for ``deadline`` seconds. Silence is
        counted in this task's ticks, not read off a clock, so a crawl process that stalled a while
        (its messages unread) does not blame its workers for its own deafness."""
        while True:
            await asyncio.sleep(_TICK)
            for worker in self._workers:
                if worker.heard or not worker.visits or not worker.alive:
                    worker.heard, worker.silent = False, 0.0
                    continue
                worker.silent += _TICK
                if worker.silent >= self.deadline and worker.wedged is None:
                    worker.wedged = (f"worker process {worker.number} said nothing for {worker.silent:g} s with a "
                                     f"visit in hand (--timeout + {WEDGED_MARGIN:g} s): killed")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.started.pid, signal.SIGKILL)

    async def visit(self, item: FrontierItem, fetched: Callable[[], None]) -> PageRecord:
        """``fetched`` is not called: the worker's answer says the request is over and brings the
        record at once, and the scheduler calls it itself then."""
        alive = [w for w in self._workers if w.alive]
        if not alive:
            raise InternalError(f"every worker process died ({self.respawned} started in place of dead ones)")
        worker = min(alive, key=lambda w: len(w.visits))   # the least busy
        token = next(self._tokens)
        visit = _Visit(item.url, asyncio.get_running_loop().create_future())
        worker.visits[token] = visit
        robots = self.robots()
        if robots is not None:
            where = origin(item.url)
            rules = robots.known(where) if where not in worker.robots_sent else None
            if rules is not None:
                worker.robots_sent.add(where)
                worker.outbox.put(("robots", where, rules))
        try:
            try:
                await worker.outbox.send(("visit", token, item))
            except (ConnectionError, RuntimeError) as exc:   # the pipe is closed: the worker died
                raise WorkerDied(item.url, f"worker process {worker.number} is gone: {exc}") from None
            return await visit.result
        except asyncio.CancelledError:
            if worker.alive:
                worker.outbox.put(("cancel", token))
            raise
        finally:
            del worker.visits[token]

    def update(self, options: ParseOptions) -> None:
        self.options = options
        for worker in self._workers:
            if worker.alive:
                worker.outbox.put(("options", options))
