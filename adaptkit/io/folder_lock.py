"""One writer per folder: ``fit`` (new, ``--overwrite``, ``--resume``), ``pull --out`` and ``sample``
into a run hold a lock on the folder they write.

The lock is an OS lock (``flock``) on a hidden file beside the folder, ``.NAME.lock``, holding the
holder's pid, host, start time and command (for the message a second writer gets). The OS drops
the lock when its process ends, however it ends (``kill -9`` too), so a lock file a dead process
left behind is stale and never blocks: the next writer takes it over.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import FolderLockedError, OutputPathError


def lock_path(folder: str | os.PathLike) -> Path:
    folder = Path(folder).absolute()
    return folder.with_name(f".{folder.name}.lock")


def _holder(command: str) -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()), "command": command}


def _describe(file: Path) -> str:
    try:
        holder = json.loads(file.read_text())
        return (f"{holder['command']} (pid {holder['pid']} on {holder['host']}, since {holder['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another adaptkit process"


@contextmanager
def folder_lock(folder: str | os.PathLike, command: str | None = None) -> Iterator[None]:
    """Hold the write lock of ``folder`` for the block; a ``FolderLockedError`` naming the holder
    if another process holds it. ``command`` (default: this process's command line) names us."""
    file = lock_path(folder)
    blocker = next((p for p in (file.parent, *file.parent.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputPathError(f"cannot write {folder}: {blocker} is a file, not a folder")
    file.parent.mkdir(parents=True, exist_ok=True)
    command = command or " ".join(["adaptkit", *sys.argv[1:]])
    while True:
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLockedError(f"{folder} is being written by {_describe(file)}: wait for it to finish, "
                                    "or stop it") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(file).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed the file between our open and flock: take the new one
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder(command)).encode())
        yield
    finally:
        try:
            file.unlink(missing_ok=True)
        finally:
            os.close(fd)
