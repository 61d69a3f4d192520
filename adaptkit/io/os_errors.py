"""Disk full and permission denied, in the user's words: ``OSError`` → an ``AdaptkitError``."""
from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Iterator

from ..errors import AdaptkitError, DiskFullError, FilePermissionError

_FULL = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def storage_error(exc: BaseException) -> AdaptkitError | None:
    """The ``DiskFullError`` or ``FilePermissionError`` for an ``OSError`` that is one, else None."""
    if isinstance(exc, AdaptkitError) or not isinstance(exc, OSError):
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in _FULL:
        return DiskFullError(f"the disk is full{where}: free some space (or choose another folder) and run "
                             "the command again; files already there were left as they were")
    if exc.errno in _DENIED:
        what = "the file system is read-only" if exc.errno == errno.EROFS else "permission denied"
        return FilePermissionError(f"{what}{where}: check the folder's owner and permissions, or choose another "
                                   "folder")
    return None


@contextmanager
def storage_errors() -> Iterator[None]:
    """Re-raise a disk-full or permission ``OSError`` of the block as its ``AdaptkitError``."""
    try:
        yield
    except OSError as exc:
        error = storage_error(exc)
        if error is None:
            raise
        raise error from exc
