"""Atomic writes: files and folders get the user's umask, as any other tool's do."""
import os
import stat

import pytest

from adaptkit.io.atomic import atomic_path, write_json


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_folders_follow_the_umask(tmp_path, umask_027):
    write_json(tmp_path / "new" / "a.json", {"x": 1})
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    with atomic_path(tmp_path / "b.bin") as tmp:  # replacing a file too
        tmp.write_bytes(b"y")
    assert mode(tmp_path / "new" / "a.json") == mode(tmp_path / "b.bin") == 0o640
    assert mode(tmp_path / "new") == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "new"]  # no temp file left
