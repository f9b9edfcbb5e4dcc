"""A folder written all or nothing (``--out DIR/``): the markdown files of each page, a mirror.

The export writes into a new folder beside the target, which then takes the target's place: one
rename onto a missing or empty folder; else the old folder is moved aside first and removed once
the new one is in. A failed export removes its new folder and leaves the old one as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from crawler.errors import UsageError
from crawler.output import current_umask


@contextlib.contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """The folder to write into; it takes ``folder``'s place when the block ends without error."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise UsageError(f"cannot write {target}/: it is a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` where ``target`` is (see the module docstring)."""
    with contextlib.suppress(OSError):
        os.rename(staging, target)   # replaces an empty folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.rename(target, old / "x")
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)
