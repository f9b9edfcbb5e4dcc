"""Worker processes for ``--workers N``: every core fetches and parses, one process owns the job.

    coordinator (the crawl): frontier, politeness, robots.txt, the writer ──pipes──► N workers
    worker: its own event loop, fetcher and parser (a ``LocalVisitor``)

The coordinator keeps what must be one for the whole job: the job file and its one writer, the
frontier, the per-host limits and delays, robots.txt. A worker is handed URLs that politeness has
already let go; it fetches and parses each, says when the request is over (so the coordinator frees
the host and the global permit before the page is parsed, as in one process) and sends back the page
record. Messages are pickled tuples framed by a 4-byte length, on the worker's stdin and stdout:

    to a worker:    ("visit", token, FrontierItem)  ("cancel", token)  ("options", ParseOptions)
    from a worker:  ("fetched", token)  ("done", token, PageRecord)  ("failed", token, FetchError)
                    ("crashed", token, "what and where")

A worker that dies (kill -9, a crash in C code) fails the visits it held with ``WorkerDied``, a
retryable error: each of its URLs goes back to its host's queue and is tried again within the
usual ``--retries``, so a URL is requested at most ``1 + retries`` times. A new worker takes its
place, up to ``RESPAWNS`` times a run. Workers ignore Ctrl-C (the coordinator stops the crawl) and
exit when their stdin closes, so a coordinator that dies takes its workers with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from crawler.config import Settings
from crawler.errors import FetchError, InternalError, WorkerDied
from crawler.fetcher import Fetcher
from crawler.loop import event_loop_factory
from crawler.models import FrontierItem, PageRecord
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.robots import RobotsCache
from crawler.visit import LocalVisitor, redirect_check

RESPAWNS = 8             # workers started in place of dead ones, per run, before the crawl gives up
_LENGTH = struct.Struct(">I")


def _frame(message: tuple[Any, ...]) -> list[bytes]:
    """The length, then the pickled message: for ``writelines``, which copies each once."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return [_LENGTH.pack(len(payload)), payload]


async def _receive(stream: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next message; IncompleteReadError at the end of the stream."""
    (size,) = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))
    message: tuple[Any, ...] = pickle.loads(await stream.readexactly(size))
    return message


# -- the coordinator's side ----------------------------------------------------------------------

@dataclass(slots=True)
class _Visit:
    url: str
    fetched: Callable[[], None]
    result: asyncio.Future[PageRecord]


@dataclass(slots=True)
class _Worker:
    number: int
    process: asyncio.subprocess.Process
    visits: dict[int, _Visit] = field(default_factory=dict)
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    alive: bool = True

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.process.stdin is not None
        return self.process.stdin


class WorkerPool:
    """``count`` worker processes behind the ``Visitor`` interface. ``async with WorkerPool(...)``:
    leaving it closes the workers' stdin, waits a moment for them to exit, then kills what is left."""

    def __init__(self, settings: Settings, options: ParseOptions, count: int) -> None:
        self.settings = settings
        self.options = options
        self.count = count
        self.respawned = 0
        self._workers: list[_Worker] = []
        self._tokens = itertools.count()
        self._closing = False
        self._stack = contextlib.AsyncExitStack()
        self._readers: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> WorkerPool:
        self._readers = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._stack.push_async_callback(self._stop_all)
        for number in range(self.count):
            await self._start(number)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._closing = True
        await self._stack.__aexit__(et, e, tb)

    async def _start(self, number: int) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler.workers", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=2**20)
        worker = _Worker(number, process)
        worker.stdin.writelines(_frame(("init", self.settings, self.options)))
        self._workers.append(worker)
        assert self._readers is not None
        self._readers.create_task(self._read(worker), name=f"worker-{number}")

    async def _stop_all(self) -> None:
        """Close every worker's stdin (they finish nothing more and exit), then wait, then kill."""
        self._closing = True
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.stdin.close()
        waits = [asyncio.ensure_future(w.process.wait()) for w in self._workers]
        if waits:
            _, late = await asyncio.wait(waits, timeout=5.0)
            for worker in self._workers:
                if worker.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
            if late:
                await asyncio.wait(late)

    async def _read(self, worker: _Worker) -> None:
        """Deliver a worker's messages; when its stdout ends, it is gone."""
        assert worker.process.stdout is not None
        try:
            while True:
                kind, token, *rest = await _receive(worker.process.stdout)
                visit = worker.visits.get(token)
                if visit is None or visit.result.done():
                    continue   # cancelled meanwhile
                if kind == "fetched":
                    visit.fetched()
                elif kind == "done":
                    visit.result.set_result(rest[0])
                elif kind == "failed":
                    visit.result.set_exception(rest[0])
                else:
                    visit.result.set_exception(InternalError(f"in worker process {worker.number}: {rest[0]}"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        worker.alive = False
        code = await worker.process.wait()
        for visit in worker.visits.values():
            if not visit.result.done():
                visit.result.set_exception(WorkerDied(visit.url, f"worker process {worker.number} exited ({code})"))
        if not self._closing and self.respawned < RESPAWNS:
            self.respawned += 1
            self._workers.remove(worker)
            await self._start(worker.number)

    async def visit(self, item: FrontierItem, fetched: Callable[[], None]) -> PageRecord:
        alive = [w for w in self._workers if w.alive]
        if not alive:
            raise InternalError(f"every worker process died ({self.respawned} started in place of dead ones)")
        worker = min(alive, key=lambda w: len(w.visits))   # the least busy
        token = next(self._tokens)
        visit = _Visit(item.url, fetched, asyncio.get_running_loop().create_future())
        worker.visits[token] = visit
        try:
            try:
                async with worker.sending:
                    worker.stdin.writelines(_frame(("visit", token, item)))
                    await worker.stdin.drain()
            except (ConnectionError, RuntimeError) as exc:   # the pipe is closed: the worker died
                raise WorkerDied(item.url, f"worker process {worker.number} is gone: {exc}") from None
            return await visit.result
        except asyncio.CancelledError:
            if worker.alive and not worker.stdin.is_closing():
                worker.stdin.writelines(_frame(("cancel", token)))
            raise
        finally:
            del worker.visits[token]

    def update(self, options: ParseOptions) -> None:
        self.options = options
        for worker in self._workers:
            if worker.alive and not worker.stdin.is_closing():
                worker.stdin.writelines(_frame(("options", options)))


# -- the worker's side ----------------------------------------------------------------------------

async def _serve(settings: Settings, options: ParseOptions, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdout)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    draining = asyncio.Lock()   # one drain at a time; frames are whole in each write

    async def send(message: tuple[Any, ...]) -> None:
        writer.writelines(_frame(message))
        async with draining:
            await writer.drain()

    async with (Fetcher(settings) as fetcher, ParseStage("async", 1, options) as stage,
                asyncio.TaskGroup() as group):
        robots = (RobotsCache(lambda u: fetcher.fetch(u, max_redirects=5, max_bytes=512 * 1024),
                              settings.user_agent, settings.robots_retry_after, time.monotonic)
                  if settings.robots else None)
        visitor = LocalVisitor(fetcher, stage, lambda depth: redirect_check(lambda: stage.options.scope, robots, depth),
                               settings.bodies)
        tasks: dict[int, asyncio.Task[None]] = {}

        async def visit(token: int, item: FrontierItem) -> None:
            try:
                record = await visitor.visit(item, lambda: writer.writelines(_frame(("fetched", token))))
            except FetchError as err:
                await send(("failed", token, err))
            except Exception as exc:   # a bug: the coordinator ends the crawl with it, naming where
                where = traceback.extract_tb(exc.__traceback__)[-1]
                await send(("crashed", token, f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"))
            else:
                await send(("done", token, record))
            finally:
                tasks.pop(token, None)

        while True:
            try:
                kind, *rest = await _receive(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break   # the coordinator closed our stdin (or died): stop
            if kind == "visit":
                token, item = rest
                tasks[token] = group.create_task(visit(token, item))
            elif kind == "cancel":
                task = tasks.get(rest[0])
                if task is not None:
                    task.cancel()
            elif kind == "options":
                stage.options = rest[0]
        for task in tasks.values():
            task.cancel()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise SystemExit(0)   # the coordinator went away before sending anything
        data += chunk
    return data


def main() -> None:
    """A worker process: read the job's settings, then serve visits until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the coordinator's to handle
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())   # a stray print must not break the frames
    # Unbuffered: a buffered reader would read ahead into the frames the event loop is to read.
    stdin = os.fdopen(sys.stdin.fileno(), "rb", buffering=0)
    (size,) = _LENGTH.unpack(_read_exactly(stdin, _LENGTH.size))
    kind, settings, options = pickle.loads(_read_exactly(stdin, size))
    assert kind == "init"
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(_serve(settings, options, stdin, stdout))


if __name__ == "__main__":
    main()
