"""``--events FILE|-``: one JSON object a line for a script to react to (docs/events.md lists every
event and field; ``v`` is the schema's version, raised only when a field changes meaning or goes).

The crawl never waits on its reader: an event is encoded in the crawl's event loop and handed to a
writer thread through a bounded queue. A reader too slow to keep up loses events past the queue's
bound (one line on stderr says how many at the end); a reader that goes away (a closed pipe,
``| head -1``) ends the events, not the crawl: one line on stderr, and the crawl goes on.

No secret is written: a URL's user and password are dropped, and no header or cookie is an event's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from crawler.errors import UsageError
from crawler.models import PageRecord
from crawler.observe.base import HostState, Observer

VERSION = 1
BOUND = 10_000           # events waiting for the writer thread, at most
CLOSE_WAIT = 5.0         # seconds the last events may take to leave when the run ends
PACE = 0.05              # seconds between two writes, at least: events leave in batches
_HOST_EVENTS: dict[HostState, str] = {"parked": "host_parked", "backoff": "host_backed_off", "active": "host_recovered"}


def shown(url: str) -> str:
    """``url`` without the user and password it may carry."""
    if "@" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def open_target(target: str) -> tuple[IO[bytes], bool]:
    """The stream ``--events`` names, and whether closing it is ours: ``-`` is standard output (a
    copy of its descriptor, so that a reader gone away breaks nothing else), a file is appended to.
    One line (exit 2) if it cannot be opened."""
    if target == "-":
        try:
            return open(os.dup(sys.stdout.fileno()), "wb"), True   # EventStream.close closes it
        except (AttributeError, OSError, io.UnsupportedOperation):
            return sys.stdout.buffer, False   # stdout is no file (a test's capture): written to as it is
    try:
        return open(target, "ab"), True
    except OSError as err:
        raise UsageError(f"--events {target}: cannot write there: {err.strerror or err}") from None


class EventStream(Observer):
    """Events of one run, written to ``stream`` by a thread of its own; ``say`` writes one line on stderr."""

    def __init__(self, stream: IO[bytes], say: Callable[[str], None], *, owned: bool = True) -> None:
        self._stream = stream
        self._owned = owned   # closed by ``close``
        self._say = say
        self._queue: queue.Queue[bytes | None] = queue.Queue(BOUND)
        self._gone = False    # the reader went away: no more events
        self.dropped = 0      # events the queue had no room for
        self._thread = threading.Thread(target=self._write, name="crawler-events", daemon=True)
        self._thread.start()

    def emit(self, event: str, **fields: Any) -> None:
        """Hand one event to the writer thread; never waits."""
        if self._gone:
            return
        when = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"v": VERSION, "event": event, "time": when, **fields}, ensure_ascii=False)
        try:
            self._queue.put_nowait(line.encode("utf-8") + b"\n")
        except queue.Full:
            self.dropped += 1

    def page(self, url: str, record: PageRecord) -> None:
        self.emit("page", url=shown(url), status=record.status, error=record.error, depth=record.depth,
                  bytes=record.size, ms=record.elapsed_ms)

    def host(self, host: str, state: HostState, reason: str | None, until: str | None) -> None:
        fields: dict[str, Any] = {"host": host}
        if state != "active":
            fields["reason"] = reason
        if state == "parked":
            fields["until"] = until
        self.emit(_HOST_EVENTS[state], **fields)

    def close(self) -> None:
        """Let the last events out (within ``CLOSE_WAIT`` seconds: a reader that stopped reading
        does not hold the crawler's exit), then close the stream."""
        if not self._gone:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=CLOSE_WAIT)
            self._thread.join(CLOSE_WAIT)
        if self.dropped:
            self._say(f"crawler: --events: {self.dropped:,} events dropped: the reader did not keep up")
        if self._owned and not self._thread.is_alive():
            with contextlib.suppress(OSError):   # a last flush into a pipe nobody reads any more
                self._stream.close()

    def _write(self) -> None:
        """The writer thread: what is queued, a batch a write, until ``close`` says so or the reader goes."""
        while True:
            first = self._queue.get()
            batch = [first]
            while first is not None and len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                if batch[-1] is None:
                    break
            closing = batch[-1] is None
            try:
                self._stream.write(b"".join(line for line in batch if line is not None))
                self._stream.flush()
            except (OSError, ValueError) as err:   # a closed pipe; a full disk; a stream closed under us
                self._gone = True
                why = "the reader went away" if isinstance(err, BrokenPipeError) else str(err)
                self._say(f"crawler: --events: {why}; the crawl goes on without events")
                return
            if closing:
                return
            # Wake at most every PACE seconds: one write a batch, and the crawl's thread is not
            # handed the GIL back and forth for every page.
            time.sleep(PACE)
