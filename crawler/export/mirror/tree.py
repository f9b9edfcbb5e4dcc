"""Files created below one folder and nowhere else: each folder of a name opened relative to its
parent with ``O_NOFOLLOW`` (a symlink is refused, never followed), each file created new
(``O_EXCL``: nothing is written twice or over something that was there)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from crawler.errors import InternalError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_BINARY", 0)


class Tree:
    """``with Tree(root) as tree: tree.write("host/a/b.html", chunks)``."""

    def __init__(self, root: Path) -> None:
        self.root = os.open(root, _DIR)
        self.folder: tuple[str, int] | None = None   # the last folder written to, still open

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_folder()
        os.close(self.root)

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Create the file ``name`` (``/``-separated, below the root) with ``chunks``."""
        parts = name.split("/")
        if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            raise InternalError(f"unsafe mirror file name {name!r}")
        fd = os.open(parts[-1], _NEW, 0o666, dir_fd=self._folder("/".join(parts[:-1]), parts[:-1]))
        with open(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)

    def _folder(self, key: str, parts: list[str]) -> int:
        if self.folder is not None and self.folder[0] == key:
            return self.folder[1]
        self._close_folder()
        fd = os.dup(self.root)
        try:
            for part in parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                inner = os.open(part, _DIR, dir_fd=fd)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        self.folder = (key, fd)
        return fd

    def _close_folder(self) -> None:
        if self.folder is not None:
            os.close(self.folder[1])
            self.folder = None
