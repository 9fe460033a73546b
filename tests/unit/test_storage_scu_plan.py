"""storescu's plan: presentation contexts from the files' content, split over associations
of at most 128 contexts, each file with the contexts of its SOP class."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pacsbox.dicomfile import FileInfo
from pacsbox.services.storage_scu import FALLBACKS, batches, content_proposals
from pacsbox.ul.negotiation import MAX_CONTEXTS

SYNTAXES = [
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.5",
]


def info(n: int, sop_class: str, syntax: str) -> FileInfo:
    return FileInfo(Path(f"f{n}"), sop_class, f"1.2.3.{n}", syntax, 132, 1000)


def test_one_context_per_syntax_found_and_fallbacks_per_class():
    files = [
        info(1, "1.2.1", SYNTAXES[2]),
        info(2, "1.2.1", SYNTAXES[0]),
        info(3, "1.2.2", SYNTAXES[0]),
    ]
    proposals = content_proposals(files)
    assert ("1.2.1", (SYNTAXES[2],)) in proposals  # the file's own syntax alone
    assert ("1.2.1", FALLBACKS) in proposals and ("1.2.2", FALLBACKS) in proposals
    assert len(proposals) == len(set(proposals))


@given(
    st.lists(st.tuples(st.integers(0, 150), st.sampled_from(SYNTAXES)), min_size=1, max_size=400)
)
def test_batches_fit_an_association_and_carry_every_file_once(pairs):
    files = [info(n, f"1.2.840.99.{cls}", ts) for n, (cls, ts) in enumerate(pairs)]
    plan = batches(files, content_proposals(files))
    sent = [f for _, group in plan for f in group]
    assert sorted(f.sop_instance_uid for f in sent) == sorted(f.sop_instance_uid for f in files)
    for proposal, group in plan:
        assert 1 <= len(proposal) <= MAX_CONTEXTS
        offered = {(sop, ts) for sop, syntaxes in proposal for ts in syntaxes}
        for f in group:  # its own syntax is proposed in the same association
            assert (f.sop_class_uid, f.transfer_syntax) in offered
