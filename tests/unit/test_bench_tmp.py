"""bench: where a run's files go by default (a tmpfs with room, else the system temp dir)."""

from __future__ import annotations

import os
from types import SimpleNamespace

from bench.context import Context, default_tmp_root


def fake_statvfs(free_bytes: int):
    def statvfs(path):
        return SimpleNamespace(f_bavail=free_bytes // 4096, f_frsize=4096)

    return statvfs


def test_the_tmpfs_when_it_has_room_else_the_system_temp_dir(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(f"tmpfs {tmp_path} tmpfs rw 0 0\n/dev/vda / ext4 rw 0 0\n")
    free = {"mounts": str(mounts)}
    assert default_tmp_root(str(tmp_path), 4 << 30, fake_statvfs(5 << 30), **free) == str(tmp_path)
    assert default_tmp_root(str(tmp_path), 4 << 30, fake_statvfs(1 << 30), **free) is None
    assert default_tmp_root(str(tmp_path / "missing"), 1, **free) is None
    mounts.write_text(f"/dev/vda {tmp_path} ext4 rw 0 0\n")  # room, but not a tmpfs
    assert default_tmp_root(str(tmp_path), 1, fake_statvfs(5 << 30), **free) is None


def test_the_run_directory_is_made_under_the_root_and_removed_after(tmp_path):
    with Context(tmp_root=str(tmp_path)) as ctx:
        assert ctx.tmp.parent == tmp_path and ctx.tmp.is_dir()
    assert not os.listdir(tmp_path)
