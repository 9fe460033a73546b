"""`pacsbox check --repair`'s count of what it dealt with, from each finding's repair words."""

from __future__ import annotations

from pacsbox.archive.check import Finding


def test_what_counts_as_dealt_with():
    set_aside = "not whole (truncated): row removed; file set aside as /a/.damaged/CT.1"
    assert Finding("wrong_size", "/a/CT.1", "1", repair=set_aside).repaired  # it was dealt with
    assert Finding("missing_file", "/a/CT.2", "2", repair="row removed").repaired
    for words in ("not repaired: the row changed meanwhile", "not deleted: open by a process",
                  "left alone: add the area to the configuration"):  # fmt: skip
        assert not Finding("orphan", "/a/x", repair=words).repaired
    assert not Finding("orphan", "/a/x").repaired  # not acted on
