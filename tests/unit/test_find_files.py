"""storescu's file walk: what Path.rglob and is_file would give, in the same order."""

from __future__ import annotations

from pathlib import Path

from pacsbox.services.storage_scu import find_files


def test_the_walk_matches_rglob_in_content_and_order(tmp_path):
    for rel in ("a/b", "a.b/c", "a/c/d", "z", "A", ".hidden", "a/x", "a/c/.e"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tmp_path / "to-dir").symlink_to(tmp_path / "a")  # not walked into
    (tmp_path / "to-file").symlink_to(tmp_path / "z")  # sent as a file
    (tmp_path / "empty").mkdir()
    expected = [p for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    assert list(find_files([tmp_path])) == expected
    assert list(find_files([tmp_path], recurse=False)) == [
        p for p in sorted(tmp_path.iterdir()) if p.is_file()
    ]


def test_files_named_are_given_back_as_they_were_named(tmp_path):
    (tmp_path / "one").write_text("x")
    named = [tmp_path / "one", "missing"]  # a missing file is for scan to report
    assert list(find_files(named)) == [tmp_path / "one", Path("missing")]
