"""Where a response's body goes while it arrives, decided from its header before the body is read.

    Spool.open(url, status, Content-Type)
        a type not wanted    ─► TypeRejected: the request is abandoned unread (``crawler.content_types``)
        HTML, or not a 2xx   ─► ``InMemory``: held in memory, for the parse stage (within --max-bytes)
        any other type       ─► a ``SpoolFile``: held in memory up to ``SPILL`` bytes; past that,
                                written to a file beside the job file as it comes, so memory stays
                                flat for a file of any size (within --max-bytes)

The writer moves a spooled file into the job file, in pieces (``crawler.storage.bodies``), and
deletes it. A file of a run that died first is removed when the next run starts (``clear``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from crawler.content_types import HTML_TYPES, ContentTypes, media_type
from crawler.errors import TypeRejected
from crawler.models import Spooled

SPILL = 1024 * 1024   # a body up to this size stays in memory and is stored as pages are


def folder_of(db: str) -> Path:
    """The spool of the job file ``db``: a folder beside it."""
    return Path(db + ".spool")


def clear(folder: Path, *, remove: bool = False) -> None:
    """Remove the files a run left in the spool (it died before storing them); with ``remove``,
    the folder itself when it is empty."""
    if folder.is_dir():
        for leftover in folder.glob("body-*"):
            leftover.unlink(missing_ok=True)
        if remove:
            with contextlib.suppress(OSError):
                folder.rmdir()


class InMemory:
    """A body held in memory: a page's, for the parse stage, and every body fetched without a spool."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.write = self._chunks.append

    def done(self) -> tuple[bytes, Spooled | None]:
        return b"".join(self._chunks), None

    def close(self) -> None:
        pass


class SpoolFile:
    """One body on its way: its bytes, its size and its content hash (``parse_stage.content_hash``'s)."""

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder   # None: not kept (--no-bodies), only measured
        self._memory: list[bytes] | None = []
        self._file: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._hash = hashlib.blake2b(digest_size=16)
        self.size = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self._memory is not None:
            self._memory.append(data)
            if self.size <= SPILL:
                return
            data, self._memory = b"".join(self._memory), None
            if self._folder is not None:   # past SPILL: to disk, as it comes
                self._folder.mkdir(parents=True, exist_ok=True)
                # The file outlives this call (SIM115): done() or close() closes it.
                self._file = tempfile.NamedTemporaryFile(dir=self._folder, prefix="body-", delete=False)  # noqa: SIM115
        if self._file is not None:
            self._file.write(data)

    def done(self) -> tuple[bytes, Spooled | None]:
        """The body: its bytes when it stayed in memory, else b"" and where it was spooled (the
        file is then the caller's)."""
        if self._memory is not None:
            return b"".join(self._memory), None
        path = None
        if self._file is not None:
            self._file.close()
            path, self._file = self._file.name, None
        return b"", Spooled(path, self.size, self._hash.hexdigest())

    def close(self) -> None:
        """Delete the file, unless ``done`` handed it on (the response failed: too large, reset)."""
        if self._file is not None:
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._file.name)
            self._file = None


class Spool:
    """The judge of each answer's type and the keeper of the bodies that are not pages."""

    def __init__(self, types: ContentTypes, folder: Path | None) -> None:
        self.types = types
        self.folder = folder

    def open(self, url: str, status: int, content_type: str | None) -> InMemory | SpoolFile:
        """Where the body of an answer goes; ``TypeRejected`` when it is not wanted."""
        if not 200 <= status < 300:
            return InMemory()   # a redirect, an error page: its status is the news, kept as every answer's is
        media = media_type(content_type)
        verdict = self.types.judge(media)
        if verdict is not None:
            raise TypeRejected(url, verdict[1], verdict[0])
        return InMemory() if media in HTML_TYPES else SpoolFile(self.folder)
