"""The C-FIND SCU service against an in-process SCP: identifiers decoded with their
character set, C-CANCEL after N responses, failure statuses as FindError, refused models."""

from __future__ import annotations

import asyncio

import pytest
from pydicom.dataset import Dataset

from pacsbox.datasets import decode_dataset, encode_dataset
from pacsbox.dimse import CFindRQ, CFindRSP
from pacsbox.net.association import Association, RequestHandler
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.find_scu import FindError, find, find_proposal
from pacsbox.services.qr_models import SOP_CLASSES, Model
from pacsbox.ul.negotiation import AcceptorPolicy
from pacsbox.wording import cli_words


@pytest.fixture(autouse=True)
def _as_the_command_line():
    """The hints as the command-line tools word them (their flags); tests/api has the API's."""
    with cli_words():
        yield


EXPLICIT = "1.2.840.10008.1.2.1"
STUDY_FIND = SOP_CLASSES[Model.STUDY_ROOT].find


def _match(name: str, charset: str | None = None) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = name
    return ds


class FixedFind(RequestHandler):
    """Answers with ``matches`` (pending; stops early if cancelled) and then ``final``."""

    def __init__(self, matches: list[Dataset], final: int = 0x0000, comment: str | None = None):
        self.matches, self.final, self.comment = matches, final, comment
        self.requests: list[Dataset] = []

    async def handle(self, assoc, context, request, dataset) -> None:
        self.requests.append(decode_dataset(bytes(dataset), context.transfer_syntax))
        operation = assoc.operation(request.message_id)
        status = self.final
        for n, match in enumerate(self.matches):
            if n and not operation.cancelled.is_set():
                # give a C-CANCEL sent after the previous response the time to arrive
                for _ in range(100):
                    await asyncio.sleep(0)
                    if operation.cancelled.is_set():
                        break
            if operation.cancelled.is_set():
                status = 0xFE00
                break
            await assoc.send(
                context.context_id,
                CFindRSP(
                    message_id_being_responded_to=request.message_id,
                    status=0xFF00,
                    affected_sop_class_uid=request.affected_sop_class_uid,
                    has_dataset=True,
                ),
                encode_dataset(match, context.transfer_syntax),
            )
        await assoc.send(
            context.context_id,
            CFindRSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                error_comment=self.comment,
            ),
        )


async def _serve(handler: FixedFind, sop_classes=(STUDY_FIND,)) -> Server:
    policy = AcceptorPolicy(frozenset(sop_classes))
    server = Server(ServerConfig(policy=policy, handlers={CFindRQ: handler}))
    await server.start("127.0.0.1", 0)
    return server


async def _connect(port: int, model: Model = Model.STUDY_ROOT) -> Association:
    rq = build_rq(
        calling_ae="FINDSCU",
        called_ae="ANY-SCP",
        proposals=[find_proposal(model, (EXPLICIT,))],
    )
    return await Association.connect("127.0.0.1", port, rq, require_context=False)


async def _collect(assoc, identifier, **kw):
    return [r async for r in find(assoc, Model.STUDY_ROOT, identifier, **kw)]


async def test_pending_identifiers_then_the_final_status():
    handler = FixedFind([_match("DOE^JOHN"), _match("MÜLLER^HANS", "ISO_IR 100")])
    server = await _serve(handler)
    query = _match("*")
    async with server, await _connect(server.port) as assoc:
        results = await _collect(assoc, query)
    assert [r.status for r in results] == [0xFF00, 0xFF00, 0x0000]
    assert [r.number for r in results] == [1, 2, 3]
    assert [r.pending for r in results] == [True, True, False]
    assert results[1].identifier.PatientName == "MÜLLER^HANS"  # decoded as Latin-1
    assert b"M\xdcLLER" in results[1].raw
    assert results[2].identifier is None
    assert handler.requests[0].PatientName == "*"


async def test_cancel_after_one_response():
    server = await _serve(FixedFind([_match(f"P{n}") for n in range(5)]))
    async with server, await _connect(server.port) as assoc:
        results = await _collect(assoc, _match("*"), cancel_after=1)
        # the association goes on after a cancelled query
        again = await _collect(assoc, _match("*"))
    assert results[-1].status == 0xFE00
    assert sum(r.pending for r in results) < 5
    assert len(again) == 6 and again[-1].status == 0


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (0xA700, ["0xA700", "out of resources", "retry later"]),
        (0xA900, ["0xA900", "Identifier does not match SOP class", "-P (Patient Root)"]),
        (0xC001, ["0xC001", "unable to process", "QueryRetrieveLevel"]),
        (0x0122, ["0x0122", "SOP class not supported", "-W (Modality Worklist)"]),
    ],
)
async def test_failure_statuses_raise_find_error(status, words):
    server = await _serve(FixedFind([_match("A")], final=status, comment="no such key"))
    async with server, await _connect(server.port) as assoc:
        seen = []
        with pytest.raises(FindError) as info:
            async for result in find(assoc, Model.STUDY_ROOT, _match("*")):
                seen.append(result)
    assert [r.status for r in seen] == [0xFF00]  # the match before the failure was given
    assert info.value.status == status
    message = str(info.value)
    assert "'no such key'" in message
    for word in words:
        assert word in message


async def test_a_model_the_peer_refused_names_the_other_flags():
    server = await _serve(FixedFind([]), sop_classes=(SOP_CLASSES[Model.PATIENT_ROOT].find,))
    async with server, await _connect(server.port, Model.STUDY_ROOT) as assoc:
        with pytest.raises(FindError) as info:
            await _collect(assoc, _match("*"))
    message = str(info.value)
    assert "Study Root" in message and "-P (Patient Root)" in message and "-W" in message
