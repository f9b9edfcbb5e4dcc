"""Where ``--out`` goes: the one place that writes a file a command was told to write (``export``, ``report``).

What ``--out PATH`` does depends on what is at PATH:

    nothing, or a regular file   written to a temporary file beside it and renamed over it once
                                 complete: a failed export leaves no half-written file and never
                                 clobbers an earlier good one
    a symlink                    followed: the file it points to is replaced as above (the temporary
                                 file beside that file), and the link stays a link
    /dev/stdout, /dev/fd/N, ...  one of this process's open files (a shell's ``>(gzip > f)`` is
                                 /dev/fd/63): written through that descriptor, at its offset
    a FIFO, a device, ...        opened and written in place: such a file cannot be replaced, and must
                                 not be (as root, a rename onto /dev/null would replace the system's)
    a directory                  refused

Only a regular file's output is all or nothing; a FIFO's reader sees whatever was written before an error.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from crawler.errors import UsageError

# A path that names a descriptor this process has open: the shell set it up (``> f``, ``>> f``,
# ``>(cmd)``), so it is written where the shell pointed it, never reopened or renamed over.
_OPEN_DESCRIPTOR = re.compile(r"/dev/(?:(?P<std>stdout|stderr)|fd/(?P<fd>\d+))|/proc/self/fd/(?P<proc>\d+)")
_STANDARD = {"stdout": 1, "stderr": 2}


@contextlib.contextmanager
def open_output(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through, as the module docstring says; UsageError (one line)
    where it cannot be written."""
    target = Path(path)
    descriptor = _open_descriptor(str(target))
    if descriptor is not None:
        with _written_in_place(target, lambda: os.dup(descriptor)) as out:
            yield out
        return
    try:
        found = os.stat(target)   # follows a symlink: what the link points to decides
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise UsageError(f"cannot write {target}: it is a directory")
    if found is not None and not stat.S_ISREG(found.st_mode):
        with _written_in_place(target, lambda: os.open(target, os.O_WRONLY | os.O_CLOEXEC)) as out:
            yield out
        return
    # A symlink (dangling or not) is followed, so that the file it names is replaced, not the link.
    final = Path(os.path.realpath(target)) if target.is_symlink() else target
    with _replaced_atomically(final, shown=target) as out:
        yield out


def _open_descriptor(path: str) -> int | None:
    match = _OPEN_DESCRIPTOR.fullmatch(os.path.normpath(path))
    if match is None:
        return None
    return _STANDARD[match["std"]] if match["std"] else int(match["fd"] or match["proc"])


@contextlib.contextmanager
def _written_in_place(target: Path, opener: Callable[[], int]) -> Iterator[BinaryIO]:
    """Write straight into what is already there (a FIFO, a device, an open descriptor): nothing to
    rename, nothing to sync (a pipe cannot be)."""
    try:
        fd = opener()
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
    except BrokenPipeError:
        raise   # the reader went away (``--out /dev/stdout | head``): not an error, as with ``--out -``
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None


@contextlib.contextmanager
def _replaced_atomically(final: Path, shown: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``final`` when the block ends without error, and vanishes if not."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())   # mkstemp's 0600 is for the temporary file only
        os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"cannot write {shown}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
