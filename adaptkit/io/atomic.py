"""Atomic writes: a file through a temp file in the same folder, then ``os.replace``; a folder
through a staging folder beside it, swapped in when complete."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def _sibling(path: Path, kind: str) -> Path:
    """A hidden name beside ``path`` that nothing uses yet: ``.NAME.<hex>.<kind>``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.{kind}")


def _new_temp_file(path: Path) -> Path:
    """A new empty file beside ``path``, with mode 0o666 less the umask (as ``open`` makes files;
    ``tempfile.mkstemp`` would make it 0o600, and the mode survives the rename)."""
    while True:
        tmp = _sibling(path, "tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextmanager
def staged_folder(path: str | os.PathLike, *, keep: Callable[[str], bool] = lambda name: False) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to write a complete folder into.

    When the block succeeds, the entries of an existing ``path`` that ``keep(name)`` accepts and the
    new folder lacks are carried over (hard links, copies where the file system has none), and the
    new folder takes ``path``'s place (and mode); the old one is then removed. When the block
    raises, the new folder is removed and ``path`` is left exactly as it was. The swap is two
    renames; if the second fails the first is undone.
    """
    path = Path(path).resolve() if Path(path).is_symlink() else Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = _sibling(path, "tmp")
    stage.mkdir()
    try:
        try:
            yield stage
        except OSError as exc:  # name the file the user asked for, not the staging one
            if exc.filename and Path(exc.filename).is_relative_to(stage):
                exc.filename = str(path / Path(exc.filename).relative_to(stage))
            raise
        if path.is_dir():
            for entry in path.iterdir():
                if keep(entry.name) and not os.path.lexists(stage / entry.name):
                    _carry(entry, stage / entry.name)
            os.chmod(stage, stat.S_IMODE(path.stat().st_mode))
        _swap_in(stage, path)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def clear_stale_stages(path: str | os.PathLike) -> None:
    """Tidy what a process killed while staging ``path`` left beside it: an ``.old`` folder comes
    back as ``path`` if ``path`` is missing (killed between the two renames of a swap), else it is
    removed, like every ``.tmp`` staging folder. Only for a caller holding ``path``'s write lock."""
    path = Path(path)
    stale = sorted((p for p in path.parent.glob(f".{path.name}.*") if p.is_dir() and p.suffix in (".tmp", ".old")
                    and len(p.name) == len(path.name) + 18),  # "." + name + "." + 12 hex + ".tmp"
                   key=lambda p: p.suffix != ".old")
    for folder in stale:
        if folder.suffix == ".old" and not path.exists():
            os.rename(folder, path)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _carry(source: Path, target: Path) -> None:
    """Hard-link ``source`` (a file, or a folder's files) to ``target``; copy where linking fails."""
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, target)


def _link_or_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _swap_in(stage: Path, path: Path) -> None:
    if not path.exists():
        os.rename(stage, path)
        return
    old = _sibling(path, "old")
    os.rename(path, old)
    try:
        os.rename(stage, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
