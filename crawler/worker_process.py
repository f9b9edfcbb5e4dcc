"""One worker process of ``--workers N``: the messages it exchanges with the crawl, and its life.

The crawl (``crawler.workers.WorkerPool``) and each worker talk over a socket pair. Messages are
pickled tuples framed by a 4-byte length:

    to a worker:    ("init", Settings, ParseOptions) first, then ("visit", token, FrontierItem)
                    ("cancel", token)  ("options", ParseOptions)
                    ("cookies", cookies): the crawl's session (first), or what another worker's responses set
                    ("robots", origin, RobotsRules): the crawl's copy, so a worker checks the
                    redirects of that origin without fetching robots.txt again
    from a worker:  ("ready", 0) once its fetcher is up; ("done", token, PageRecord)
                    ("failed", token, FetchError, or a CrawlError that stops the crawl)
                    ("crashed", token, "what and where"); ("alive", 0) every ``ALIVE_EVERY`` seconds
                    ("cookies", 0, cookies, urgent): its jar changed (urgent: it logged in)

A worker parses a page as soon as its body is in, on its own loop, so "the request is over" and
"the record is ready" arrive together: one message, not two. Each side writes what one turn of its
event loop produced in one go (``Outbox``): one system call and one wake-up of the other side for
a turn's worth of messages, not one per message.

``("alive", 0)`` is sent by the worker's event loop, so it stops when that loop stops turning: a
process stopped (SIGSTOP) or stuck (in C code, in an endless loop) goes quiet, and the crawl
replaces a worker that stays quiet with visits in hand (``workers.WorkerPool``, ``deadline``).

A worker ignores SIGINT, SIGTERM and SIGHUP: Ctrl-C, ``timeout``, systemd and ``kill -- -PGID``
signal the whole process group, and the crawl is the one to stop (it lets the visits in flight
finish, then closes the workers' sockets). A worker exits when its socket closes, so a crawl that
dies takes its workers with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

from crawler.addresses import AddressPolicy
from crawler.config import Settings
from crawler.errors import CrawlError
from crawler.fetcher import Fetcher
from crawler.loop import event_loop_factory
from crawler.models import FrontierItem
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.render import visiting
from crawler.session.jar import Records
from crawler.session.login import Session
from crawler.session.recipe import load as load_recipe
from crawler.visit import local_visitor, robots_reader

ALIVE_EVERY = 1.0        # seconds between a worker's ("alive", 0) messages
_LENGTH = struct.Struct(">I")


def _frame(message: tuple[Any, ...]) -> list[bytes]:
    """The length, then the pickled message: for ``writelines``, which copies each once."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return [_LENGTH.pack(len(payload)), payload]


class Outbox:
    """Messages to one process, written together at the end of the event loop's turn."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._parts: list[bytes] = []

    def put(self, message: tuple[Any, ...]) -> None:
        if not self._parts:
            asyncio.get_running_loop().call_soon(self._flush)
        self._parts += _frame(message)

    def _flush(self) -> None:
        parts, self._parts = self._parts, []
        if not self.writer.is_closing():
            self.writer.writelines(parts)

    async def send(self, message: tuple[Any, ...]) -> None:
        """``put``, then wait while the pipe is full (the other side reads slower than we write)."""
        self.put(message)
        await self.writer.drain()


async def receive(stream: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next message; IncompleteReadError at the end of the stream."""
    (size,) = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))
    message: tuple[Any, ...] = pickle.loads(await stream.readexactly(size))
    return message


async def _serve(settings: Settings, options: ParseOptions, sock: socket.socket) -> None:
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
    outbox = Outbox(writer)
    send = outbox.send

    # The SSRF guard, as the coordinator's: a seed's hosts may be private, no other may.
    policy = AddressPolicy(seed_hosts=options.scope.hosts, allow_private=settings.allow_private)
    async with (Fetcher(settings, policy=policy) as fetcher, ParseStage("async", 1, options) as stage,
                contextlib.AsyncExitStack() as group_exit, asyncio.TaskGroup() as group):
        robots = robots_reader(fetcher, settings, time.monotonic) if settings.robots else None

        async def cookies_changed(cookies: Records, urgent: bool) -> None:
            outbox.put(("cookies", 0, cookies, urgent))

        session = Session(fetcher.client, settings, load_recipe(settings.login) if settings.login else None,
                          cookies_changed)
        visitor = await group_exit.enter_async_context(visiting(   # --render: this process's browser
            local_visitor(fetcher, stage, settings, lambda: stage.options.scope, lambda: robots, session),
            settings, lambda: stage.options.scope, lambda: robots, settings.processes))
        tasks: dict[int, asyncio.Task[None]] = {}
        outbox.put(("ready", 0))

        async def visit(token: int, item: FrontierItem) -> None:
            try:
                record = await visitor.visit(item, lambda: None)
            except CrawlError as err:   # a FetchError, or one that stops the crawl (no proxy left, SessionLost)
                await send(("failed", token, err))
            except Exception as exc:   # a bug: the coordinator ends the crawl with it, naming where
                where = traceback.extract_tb(exc.__traceback__)[-1]
                await send(("crashed", token, f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"))
            else:
                await send(("done", token, record))
            finally:
                tasks.pop(token, None)

        async def alive() -> None:
            while True:
                await asyncio.sleep(ALIVE_EVERY)
                outbox.put(("alive", 0))

        heartbeat = group.create_task(alive())
        while True:
            try:
                kind, *rest = await receive(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break   # the coordinator closed the socket (or died): stop
            if kind == "visit":
                token, item = rest
                tasks[token] = group.create_task(visit(token, item))
            elif kind == "cancel":
                task = tasks.get(rest[0])
                if task is not None:
                    task.cancel()
            elif kind == "cookies":
                session.load(rest[0])
            elif kind == "robots" and robots is not None:
                robots.learn(*rest)
            elif kind == "options":
                stage.options = rest[0]
                policy.seed_hosts = stage.options.scope.hosts
        heartbeat.cancel()
        for task in tasks.values():
            task.cancel()


def run_worker(sock: socket.socket) -> None:
    """A worker's life: wait for the job's settings, then serve visits until the socket closes."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):   # the crawl's to handle (see above)
        signal.signal(sig, signal.SIG_IGN)
    (size,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    kind, settings, options = pickle.loads(_read_exactly(sock, size))
    assert kind == "init"
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(_serve(settings, options, sock))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise SystemExit(0)   # the coordinator went away before it needed us
        data += chunk
    return data


if __name__ == "__main__":   # a worker started afresh: python -m crawler.worker_process FD
    run_worker(socket.socket(fileno=int(sys.argv[1])))
