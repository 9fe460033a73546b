"""The C-MOVE / C-GET SCU (services/retrieve_scu.py) against a scripted SCP of our own stack:
each status a PACS may end with becomes the right exception with a message that says what to
change; the Failed SOP Instance UID List is read; C-CANCEL goes out when asked; the C-GET
association proposes its storage classes with the SCP role."""

from __future__ import annotations

import asyncio

import pydicom
import pytest

from pacsbox.dimse import CGetRQ, CGetRSP, CMoveRQ, CMoveRSP, CStoreRQ
from pacsbox.net.association import Association, RequestHandler
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.qr_models import SOP_CLASSES, Model
from pacsbox.services.retrieve_scu import (
    IdentifierError,
    MoveDestinationUnknownError,
    RetrieveOutOfResourcesError,
    RetrieveRefusedError,
    SubOperationsFailedError,
    encode_identifier,
    get,
    get_negotiation,
    get_storage_classes,
    move,
)
from pacsbox.syntaxes import UNCOMPRESSED
from pacsbox.ul.negotiation import MAX_CONTEXTS, AcceptorPolicy
from pacsbox.wording import cli_words


@pytest.fixture(autouse=True)
def _as_the_command_line():
    """The hints as the command-line tools word them (their flags); tests/api has the API's."""
    with cli_words():
        yield


MOVE = SOP_CLASSES[Model.STUDY_ROOT].move
GET = SOP_CLASSES[Model.STUDY_ROOT].get
CT = "1.2.840.10008.5.1.4.1.1.2"
WAIT_FOR_CANCEL = "wait for cancel"


class Scripted(RequestHandler):
    """Answers a C-MOVE/C-GET with the responses given: (status, (remaining, completed,
    failed, warning), identifier or None), or WAIT_FOR_CANCEL to wait for our C-CANCEL."""

    def __init__(self, script) -> None:
        self.script = script
        self.requests: list = []

    async def handle(self, assoc, context, request, dataset) -> None:
        self.requests.append((request, bytes(dataset or b"")))
        rsp_type = CMoveRSP if isinstance(request, CMoveRQ) else CGetRSP
        for step in self.script:
            if step == WAIT_FOR_CANCEL:
                await assoc.operation(request.message_id).cancelled.wait()
                continue
            status, (remaining, completed, failed, warning), identifier = step
            data = encode_identifier(identifier, context.transfer_syntax) if identifier else None
            await assoc.send(
                context.context_id,
                rsp_type(
                    message_id_being_responded_to=request.message_id,
                    status=status,
                    affected_sop_class_uid=request.affected_sop_class_uid,
                    number_of_remaining_suboperations=remaining,
                    number_of_completed_suboperations=completed,
                    number_of_failed_suboperations=failed,
                    number_of_warning_suboperations=warning,
                    has_dataset=data is not None,
                ),
                data,
            )


def study_identifier() -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2.3.4"
    return ds


async def run_move(script, destination: str = "ACME1", **kwargs):
    handler = Scripted(script)
    config = ServerConfig(
        ae_title="PACS",
        policy=AcceptorPolicy(abstract_syntaxes=frozenset({MOVE})),
        handlers={CMoveRQ: handler},
    )
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        rq = build_rq(calling_ae="ME", called_ae="PACS", proposals=[(MOVE, UNCOMPRESSED)])
        async with await Association.connect("127.0.0.1", server.port, rq) as assoc:
            result = await move(assoc, "study", study_identifier(), destination, **kwargs)
    return result, handler


async def test_success_with_pending_counters():
    seen = []
    result, handler = await run_move(
        [
            (0xFF00, (2, 1, 0, 0), None),
            (0xFF00, (1, 2, 0, 0), None),
            (0x0000, (None, 3, 0, 0), None),
        ],
        on_progress=seen.append,
    )
    assert [(p.remaining, p.completed, p.total) for p in seen] == [(2, 1, 3), (1, 2, 3)]
    assert (result.status, result.completed, result.pending_responses) == (0, 3, 2)
    request, data = handler.requests[0]
    assert request.move_destination == "ACME1"
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), force=True)
    assert ds.StudyInstanceUID == "1.2.3.4"


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (0xA801, MoveDestinationUnknownError, ["'ACME9'", "Configure AE 'ACME9'", "-aem"]),
        (0xA701, RetrieveOutOfResourcesError, ["0xA701", "retry later"]),
        (0xA702, RetrieveOutOfResourcesError, ["could not connect", "'ACME9'", "--port"]),
        (0xA900, IdentifierError, ["QueryRetrieveLevel", "StudyInstanceUID"]),
        (0xC001, IdentifierError, ["0xC001", "'ACME9'", "DicomModalities"]),
        (0x0124, RetrieveRefusedError, ["0x0124", "not authorized"]),
    ],
)
async def test_failures_say_what_to_change(status, error, words):
    with pytest.raises(error) as caught:
        await run_move([(status, (None, 0, 0, 0), None)], destination="ACME9")
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word.lower() in message.lower(), message
    assert caught.value.status == status


async def test_warning_names_the_failed_instances():
    identifier = pydicom.Dataset()
    identifier.FailedSOPInstanceUIDList = ["1.2.3.5", "1.2.3.6"]
    with pytest.raises(SubOperationsFailedError) as caught:
        await run_move([(0xB000, (0, 3, 2, 0), identifier)])
    assert caught.value.result.failed_instances == ("1.2.3.5", "1.2.3.6")
    message = str(caught.value)
    assert "3 completed, 2 failed" in message and "1.2.3.5, 1.2.3.6" in message


async def test_success_that_counts_failures_is_a_failure():
    with pytest.raises(SubOperationsFailedError):
        await run_move([(0x0000, (0, 1, 1, 0), None)])


async def test_cancel_event_sends_c_cancel():
    cancel = asyncio.Event()
    result, _ = await run_move(
        [(0xFF00, (9, 1, 0, 0), None), WAIT_FOR_CANCEL, (0xFE00, (8, 1, 0, 0), None)],
        on_progress=lambda progress: cancel.set(),
        cancel=cancel,
    )
    assert result.cancelled and result.remaining == 8


async def test_cancel_callable_sends_c_cancel():
    result, _ = await run_move(
        [(0xFF00, (9, 1, 0, 0), None), WAIT_FOR_CANCEL, (0xFE00, (8, 1, 0, 0), None)],
        cancel=lambda: True,
    )
    assert result.cancelled


async def test_invalid_destination_is_refused_before_sending():
    with pytest.raises(ValueError, match="-aem"):
        await run_move([], destination="A" * 17)


def test_get_negotiation_proposes_storage_with_the_scp_role():
    proposals, roles = get_negotiation("study")
    assert proposals[0] == (GET, UNCOMPRESSED)
    assert len(proposals) == MAX_CONTEXTS
    assert [p[0] for p in proposals[1:]] == [r.sop_class_uid for r in roles]
    assert all(r.scp_role and not r.scu_role for r in roles)
    assert CT in get_storage_classes() and len(get_storage_classes()) == MAX_CONTEXTS - 1
    proposals, roles = get_negotiation(
        "patient", store_syntaxes=("1.2.840.10008.1.2.4.70",), storage_classes=[CT]
    )
    assert proposals == [
        (SOP_CLASSES[Model.PATIENT_ROOT].get, UNCOMPRESSED),
        (CT, ("1.2.840.10008.1.2.4.70",)),
    ]
    with pytest.raises(ValueError, match="at most 127"):
        get_negotiation("study", storage_classes=[f"1.2.3.{n}" for n in range(128)])


async def test_get_counts_the_instances_and_restores_the_handlers(tmp_path):
    """C-GET's C-STOREs reach the association's storage handler, each one a progress event."""
    from pacsbox.services.storage_scp import StorageSCP

    ct = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))

    class GetWithStores(RequestHandler):
        async def handle(self, assoc, context, request, dataset) -> None:
            store_context = next(c for c in assoc.contexts.values() if c.abstract_syntax == CT)
            assert not store_context.requestor_is_scu and store_context.requestor_is_scp
            raw = encode_identifier(ct, store_context.transfer_syntax)
            store = CStoreRQ(
                message_id=77,
                affected_sop_class_uid=CT,
                affected_sop_instance_uid=ct.SOPInstanceUID,
            )
            rsp, _ = await assoc.request_one(store_context.context_id, store, raw)
            assert rsp.status == 0
            await assoc.send(
                context.context_id,
                CGetRSP(
                    message_id_being_responded_to=request.message_id,
                    status=0,
                    affected_sop_class_uid=GET,
                    number_of_completed_suboperations=1,
                    number_of_failed_suboperations=0,
                    number_of_warning_suboperations=0,
                ),
            )

    config = ServerConfig(
        ae_title="PACS",
        policy=AcceptorPolicy(
            abstract_syntaxes=frozenset({GET, CT}), requestor_may_be_scp=frozenset({CT})
        ),
        handlers={CGetRQ: GetWithStores()},
    )
    proposals, roles = get_negotiation("study", storage_classes=[CT])
    scp = StorageSCP(tmp_path)
    handlers = {CStoreRQ: scp}
    seen = []
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        rq = build_rq(calling_ae="ME", called_ae="PACS", proposals=proposals, role_selections=roles)
        async with await Association.connect(
            "127.0.0.1", server.port, rq, handlers=handlers
        ) as assoc:
            result = await get(assoc, "study", study_identifier(), on_progress=seen.append)
            assert assoc.handlers is handlers
    scp.close()
    assert (result.completed, result.received) == (1, 1)
    assert [(p.status, p.received, p.sop_instance_uid) for p in seen] == [
        (None, 1, ct.SOPInstanceUID)
    ]
    assert (tmp_path / f"CT.{ct.SOPInstanceUID}").is_file()


async def test_get_needs_a_store_handler():
    config = ServerConfig(
        ae_title="PACS", policy=AcceptorPolicy(abstract_syntaxes=frozenset({GET}))
    )
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        rq = build_rq(calling_ae="ME", called_ae="PACS", proposals=[(GET, UNCOMPRESSED)])
        async with await Association.connect("127.0.0.1", server.port, rq) as assoc:
            with pytest.raises(ValueError, match="StorageSCP"):
                await get(assoc, "study", study_identifier())
