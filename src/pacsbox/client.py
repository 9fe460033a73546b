"""The high-level API, async: ``AsyncClient`` (echo, store, find, move, get, retrieve, commit).

    async with pacsbox.AsyncClient("pacs.example.org", 11112, called_ae="PACS") as pacs:
        studies = await pacs.find(PatientName="DOE^J*", as_dict=True)
        study = await pacs.retrieve(StudyInstanceUID=studies[0]["StudyInstanceUID"],
                                    dest="./study", on_progress=print)

Associations are opened on first use and reused while what they proposed fits the next
call: one for Verification, C-FIND, C-MOVE and Storage Commitment, one for C-GET (with its
storage contexts in the SCP role), one per set of SOP classes stored. ``retrieve`` is one
call for a whole study: C-GET, or C-MOVE to our own AE title with a built-in receiver, and
it returns once the data has arrived (a PACS may answer Success before its C-STOREs: the
receiver then waits for the instances it counted). Progress comes from pending responses and
from each instance received; a ``CancelToken`` or an exception raised by the progress
callback sends C-CANCEL and returns what arrived so far. ``pacsbox.connect`` (sync.py) is the
same API for plain code.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PacsboxError
from .log import log
from .net.association import Association, RequestHandler, Timeouts
from .receiver import ReceivedInstance, StorageReceiver, storage_handler
from .retrieval import (
    CancelToken,
    IncompleteRetrieveError,
    ProgressFeed,
    Retrieved,
    finished,
    watching,
)
from .services.qr_models import SOP_CLASSES, Model
from .services.retrieve_scu import RetrieveError, RetrieveProgress, RetrieveResult
from .syntaxes import UNCOMPRESSED, ImplicitVRLittleEndian

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from .services.commitment import CommitmentResult
    from .services.storage_scu import StoreResult

VERIFICATION = "1.2.840.10008.1.1"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"

# The deepest unique key given names the level of a retrieve (PS3.4 C.6.2.1, study root)
# and, for a query, the level whose attributes come back.
LEVEL_OF_KEY: tuple[tuple[str, str], ...] = (
    ("SOPInstanceUID", "IMAGE"),
    ("SeriesInstanceUID", "SERIES"),
    ("StudyInstanceUID", "STUDY"),
    ("PatientID", "PATIENT"),
)

# Python dates and times as matching values, most specific type first (datetime is a date).
DATE_FORMS: tuple[tuple[type, str], ...] = (
    (datetime.datetime, "%Y%m%d%H%M%S"),
    (datetime.date, "%Y%m%d"),
    (datetime.time, "%H%M%S"),
)

# What find() asks back at each level when the caller names no return keys of their own.
DEFAULT_RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"),
    "STUDY": (
        "PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate",
        "StudyTime", "StudyDescription", "AccessionNumber", "StudyID", "ModalitiesInStudy",
    ),
    "SERIES": (
        "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    ),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
              "InstanceNumber"),
}  # fmt: skip

# What an API user can change when a PACS could not send its instances back over C-GET.
GET_HINT = (
    "With the Python API: propose the syntax the PACS keeps them in "
    "(AsyncClient(get_transfer_syntaxes=...)), or retrieve with method='move'."
)

# Final C-GET statuses meaning "no C-GET here": auto falls back to C-MOVE on them (and on
# a GET context refused, or an association aborted on the C-GET before any instance).
GET_NOT_SUPPORTED = frozenset({0x0122, 0x0211})  # SOP class not supported, unrecognized op

METHODS = ("auto", "get", "move")

# The models proposed on our associations (the retired patient/study only one too: DCMTK's
# dcmqrscp still serves it).
RETRIEVE_MODELS = (Model.STUDY_ROOT, Model.PATIENT_ROOT, Model.PATIENT_STUDY_ONLY)


class _GetStorage(RequestHandler):
    """The C-STORE handler of our associations: during a C-GET it is the retrieve's storage
    (files or memory); otherwise a C-STORE is refused (we did not ask for one)."""

    def __init__(self) -> None:
        self.target: RequestHandler | None = None

    def open_sink(self, assoc, context, request):
        return self.target.open_sink(assoc, context, request) if self.target else None

    async def handle(self, assoc, context, request, dataset) -> None:
        if self.target is None:
            await assoc.respond_failure(
                context, request, 0xA700, "no C-GET in progress on this association"
            )
            return
        await self.target.handle(assoc, context, request, dataset)


class AsyncClient:
    """A DICOM peer (a PACS) as seen from Python, async.

    host, port: the peer. called_ae: its AE title. calling_ae: ours, and the move destination
    of ``retrieve`` (the PACS must know it with our host and the receiver's port).
    model: "study" (default) or "patient" root for find/move/get.
    receive_port, receive_host: where retrieve's built-in C-MOVE receiver listens by default
    (0: a port the system chooses). settle_timeout: seconds a C-MOVE waits, after the final
    response, for instances the PACS counted but that have not arrived. cancel_timeout:
    seconds the PACS has to answer a C-CANCEL before the association is aborted.
    """

    def __init__(
        self,
        host: str,
        port: int = 11112,
        *,
        called_ae: str = "ANY-SCP",
        calling_ae: str = "PACSBOX-SCU",
        model: str = "study",
        timeouts: Timeouts | None = None,
        max_pdu_length: int = 131072,
        receive_port: int = 0,
        receive_host: str = "0.0.0.0",
        settle_timeout: float = 30.0,
        cancel_timeout: float = 30.0,
        get_transfer_syntaxes: Sequence[str] = UNCOMPRESSED,
    ) -> None:
        from .net.requestor import build_rq

        build_rq(calling_ae=calling_ae, called_ae=called_ae, proposals=())  # checks the titles
        self.host, self.port = host, port
        self.called_ae, self.calling_ae = called_ae, calling_ae
        self.model = Model(model)
        self.timeouts = timeouts or Timeouts()
        self.max_pdu_length = max_pdu_length
        self.receive_port, self.receive_host = receive_port, receive_host
        self.settle_timeout, self.cancel_timeout = settle_timeout, cancel_timeout
        self.get_transfer_syntaxes = tuple(get_transfer_syntaxes)
        self._assoc: Association | None = None
        self._proposed: frozenset[tuple[str, str]] = frozenset()
        self._lock: asyncio.Lock | None = None
        self._get_storage = _GetStorage()
        self._reports = None  # CommitmentReports, made on first use (imports pydicom)

    def __repr__(self) -> str:
        return f"AsyncClient({self.host!r}, {self.port}, called_ae={self.called_ae!r})"

    # -- associations --------------------------------------------------------------------------

    def _fits(self, wanted: Iterable[tuple[str, str | None]]) -> bool:
        assoc = self._assoc
        if assoc is None or assoc.closed.done():
            return False
        return all(
            any(a == abstract and (ts is None or t == ts) for a, t in self._proposed)
            for abstract, ts in wanted
        )

    async def _association(
        self,
        proposals: Sequence[tuple[str, Sequence[str]]],
        wanted: Iterable[tuple[str, str | None]],
        roles: Sequence = (),
    ) -> Association:
        """The open association if it proposed what ``wanted`` names, else a new one."""
        wanted = list(wanted)
        if self._fits(wanted):
            return self._assoc  # type: ignore[return-value]
        await self._drop()
        from .dimse import CStoreRQ, NEventReportRQ
        from .net.requestor import build_rq

        if self._reports is None:
            from .services.commitment import CommitmentReports

            self._reports = CommitmentReports()
        rq = build_rq(
            calling_ae=self.calling_ae,
            called_ae=self.called_ae,
            proposals=proposals,
            max_pdu_length=self.max_pdu_length,
            role_selections=roles,
        )
        self._assoc = await Association.connect(
            self.host,
            self.port,
            rq,
            timeouts=self.timeouts,
            handlers={CStoreRQ: self._get_storage, NEventReportRQ: self._reports},
        )
        scp_role = {r.sop_class_uid for r in roles}
        self._proposed = frozenset(
            (abstract, ts)
            for abstract, syntaxes in proposals
            if abstract not in scp_role
            for ts in syntaxes
        )
        return self._assoc

    async def _query_association(self) -> Association:
        """Verification, C-FIND (study and patient root, worklist), C-MOVE and Storage
        Commitment on one association."""
        classes = [VERIFICATION]
        for model in RETRIEVE_MODELS:
            classes += [SOP_CLASSES[model].find, SOP_CLASSES[model].move]  # type: ignore[list-item]
        classes += [SOP_CLASSES[Model.WORKLIST].find, STORAGE_COMMITMENT]
        proposals = [(c, (ImplicitVRLittleEndian,) if c == VERIFICATION else UNCOMPRESSED)
                     for c in classes]  # fmt: skip
        return await self._association(proposals, [(c, None) for c in classes])

    async def _drop(self) -> None:
        assoc, self._assoc = self._assoc, None
        self._proposed = frozenset()
        if assoc is not None and not assoc.closed.done():
            try:
                await assoc.release()
            except PacsboxError:
                assoc.abort()

    def _serial(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def close(self) -> None:
        """Release the open association."""
        async with self._serial():
            await self._drop()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- verification --------------------------------------------------------------------------

    async def echo(self) -> int:
        """C-ECHO; returns the status (0 is success)."""
        from .services.verification import echo

        async with self._serial():
            if not self._fits([(VERIFICATION, None)]):
                await self._query_association()
            return await echo(self._assoc)  # type: ignore[arg-type]

    # -- storage -------------------------------------------------------------------------------

    async def store(self, *items: str | os.PathLike | Dataset, recurse: bool = True):
        """C-STORE files, folders (recursively), pydicom Datasets and what ``retrieve``
        received (ReceivedInstance); returns a StoreResult per file (``ok``, ``status``,
        ``error`` say how each went; nothing raises for one file). Datasets are written with
        pydicom to temporary files and sent like files (their StoreResult's ``path`` is that
        file, removed once store returns)."""
        from .services.storage_scu import (
            batches,
            content_proposals,
            find_files,
            scan,
            store_files,
        )

        paths: list[Any] = []
        datasets: list[tuple[int, Dataset]] = []
        for item in items:
            if isinstance(item, ReceivedInstance):
                item = item.path or item.dataset
            if isinstance(item, str | os.PathLike):
                paths.append(item)
            elif hasattr(item, "SOPInstanceUID"):
                datasets.append((len(paths) + len(datasets), item))  # type: ignore[arg-type]
            else:
                raise TypeError(
                    f"store() takes paths, folders, pydicom Datasets and received instances, "
                    f"not {type(item).__name__}"
                )
        with tempfile.TemporaryDirectory(prefix="pacsbox-store-") as temp:
            written = [_write_dataset(ds, Path(temp) / f"{n}.dcm") for n, ds in datasets]
            infos, skipped = scan([*find_files(paths, recurse=recurse), *written])
            results: list[StoreResult] = list(skipped)
            async with self._serial():
                proposals = content_proposals(infos)
                for group, group_infos in batches(infos, proposals):
                    wanted = [(i.sop_class_uid, i.transfer_syntax) for i in group_infos]
                    if len(group) < 128:  # echo on the same association, if there is room
                        group = [*group, (VERIFICATION, (ImplicitVRLittleEndian,))]
                    assoc = await self._association(group, wanted)
                    async for result in store_files(assoc, group_infos, send_ahead=True):
                        results.append(result)
        return results

    # -- query ---------------------------------------------------------------------------------

    async def find(
        self,
        identifier: Dataset | None = None,
        *,
        model: str | None = None,
        level: str | None = None,
        as_dict: bool = False,
        return_keys: Iterable[str] | None = None,
        **keys: Any,
    ) -> list:
        """C-FIND with matching keys as keyword arguments (``PatientName="DOE^*"``; ``""``
        asks for a value back), or an identifier Dataset. Returns the matches as pydicom
        Datasets, or as plain dicts with ``as_dict=True``. ``level`` (default: the deepest
        unique key given, else STUDY) and ``return_keys`` (default: the level's usual
        attributes) apply to keyword queries."""
        from .query_keys import dataset_to_dict
        from .services.find_scu import find

        if identifier is None:
            level = (level or _find_level(keys)).upper()
            wanted = DEFAULT_RETURN_KEYS.get(level, ()) if return_keys is None else return_keys
            identifier = _identifier(keys, level, wanted)
        model_ = _model_for(model, self.model, identifier)
        matches = []
        async with self._serial():
            assoc = await self._query_association()
            async for result in find(assoc, model_, identifier):
                if result.pending and result.identifier is not None:
                    matches.append(result.identifier)
        return [dataset_to_dict(ds) for ds in matches] if as_dict else matches

    # -- retrieve ------------------------------------------------------------------------------

    async def move(
        self,
        destination: str,
        identifier: Dataset | None = None,
        *,
        model: str | None = None,
        level: str | None = None,
        on_progress: Callable[[RetrieveProgress], object] | None = None,
        cancel: CancelToken | None = None,
        **keys: Any,
    ) -> RetrieveResult:
        """C-MOVE to another AE ``destination`` (no receiver here; ``retrieve`` receives).
        Returns the final response; a failure raises a RetrieveError subclass."""
        from .services.retrieve_scu import move

        identifier, model_ = self._retrieve_identifier(identifier, model, level, keys)
        event = asyncio.Event()
        progress = ProgressFeed(on_progress, event)
        with watching(cancel, event):
            async with self._serial():
                assoc = await self._query_association()
                return await self._cancellable(
                    move(assoc, model_, identifier, destination, on_progress=progress.pending,
                         cancel=event), assoc, event,
                )  # fmt: skip

    async def get(self, identifier: Dataset | None = None, **kwargs: Any) -> Retrieved:
        """``retrieve(..., method="get")``."""
        return await self.retrieve(identifier, method="get", **kwargs)

    async def retrieve(
        self,
        identifier: Dataset | None = None,
        *,
        dest: str | os.PathLike | None = ".",
        method: str = "auto",
        on_progress: Callable[[RetrieveProgress], object] | None = None,
        cancel: CancelToken | None = None,
        port: int | None = None,
        model: str | None = None,
        level: str | None = None,
        settle_timeout: float | None = None,
        **keys: Any,
    ) -> Retrieved:
        """Retrieve what the unique keys name (``StudyInstanceUID=uid``; or an identifier
        Dataset) into ``dest`` (files named as storescp does; None: data sets in memory).

        method: "get" (C-GET), "move" (C-MOVE to ``calling_ae`` with a receiver on ``port``,
        default the client's ``receive_port``) or "auto" (C-GET, C-MOVE where the PACS
        refuses C-GET). on_progress: called with a RetrieveProgress per pending response and
        per instance received; raising in it cancels. cancel: a CancelToken.
        Returns once the data has arrived; failures raise RetrieveError subclasses.
        """
        if method not in METHODS:
            raise ValueError(f"method is {method!r}; use one of {', '.join(METHODS)}")
        identifier, model_ = self._retrieve_identifier(identifier, model, level, keys)
        directory = None if dest is None else Path(dest)
        if directory is not None and directory.exists() and not directory.is_dir():
            raise PacsboxError(
                f"dest={str(dest)!r} is a file, not a directory: pass the directory the "
                "instances are to be written to (it is made if missing), or dest=None to "
                "keep them in memory"
            )
        if cancel is not None and cancel.cancelled:  # nothing asked, nothing to cancel
            log.info("The retrieve was cancelled before it started: nothing was asked")
            return Retrieved("move" if method == "move" else "get", directory, cancelled=True)
        event = asyncio.Event()
        progress = ProgressFeed(on_progress, event)
        settle = self.settle_timeout if settle_timeout is None else settle_timeout
        with watching(cancel, event):
            async with self._serial():
                fallback = None
                if method in ("auto", "get"):
                    outcome = await self._get(model_, identifier, directory, progress, event,
                                              strict=method == "get")  # fmt: skip
                    if isinstance(outcome, Retrieved):
                        return _said_if_empty(outcome, identifier)
                    fallback = outcome
                    log.info("Retrieving with C-MOVE: %s", fallback)
                retrieved = await self._move_here(model_, identifier, directory, progress, event,
                                                  port, settle)  # fmt: skip
                retrieved.fallback = fallback
                return _said_if_empty(retrieved, identifier)

    def _retrieve_identifier(self, identifier, model, level, keys) -> tuple[Dataset, Model]:
        if identifier is None:
            if not keys:
                raise ValueError(
                    "name what to retrieve: a unique key such as StudyInstanceUID=... "
                    "(or pass an identifier Dataset)"
                )
            level = (level or _retrieve_level(keys)).upper()
            identifier = _identifier(keys, level, ())
        return identifier, _model_for(model, self.model, identifier)

    async def _get(self, model, identifier, directory, progress, event, *, strict: bool):
        """C-GET; a Retrieved, or (auto only) the reason to fall back to C-MOVE."""
        from .services.retrieve_scu import get, get_storage_classes
        from .ul.diagnosis import AssociationAbortedError, NoAcceptedContextError
        from .ul.pdu import RoleSelection

        get_classes = [SOP_CLASSES[m].get for m in RETRIEVE_MODELS]
        storage = get_storage_classes(room=128 - len(get_classes) - 1)
        proposals = [(c, UNCOMPRESSED) for c in get_classes]
        proposals += [(c, self.get_transfer_syntaxes) for c in storage]
        proposals.append((VERIFICATION, (ImplicitVRLittleEndian,)))
        roles = [RoleSelection(c, False, True) for c in storage]
        wanted = SOP_CLASSES[model].get
        try:
            assoc = await self._association(proposals, [(wanted, None)], roles)
        except NoAcceptedContextError:
            if strict:
                raise
            return "the PACS accepted none of the C-GET association's contexts"
        reason = None
        if not any(c.abstract_syntax == wanted for c in assoc.contexts.values()):
            reason = f"the PACS did not accept the {model.value} root C-GET SOP class"
        elif not any(c.requestor_is_scp for c in assoc.contexts.values()):
            reason = "the PACS accepted no storage context with us as SCP (role selection)"
        if reason is not None:
            if not strict:
                return reason
            raise PacsboxError(
                f"C-GET is not possible here: {reason}. Retrieve with method='auto' or "
                f"method='move' (a C-MOVE to our AE title '{self.calling_ae}', received by "
                "the built-in receiver; the PACS must know that AE title and port)."
            )
        handler = storage_handler(directory, progress.instance)
        retrieved = Retrieved("get", directory)
        self._get_storage.target = handler
        try:
            retrieved.result = await self._cancellable(
                get(assoc, model, identifier, on_progress=progress.pending, cancel=event),
                assoc, event,
            )  # fmt: skip
        except RetrieveError as exc:
            if not strict and exc.status in GET_NOT_SUPPORTED and not progress.instances:
                return f"the PACS answered the C-GET with 0x{exc.status:04X} ({exc.result.meaning})"
            if not event.is_set():
                retrieved.result = exc.result
                exc.retrieved = finished(retrieved, progress, event)  # type: ignore[attr-defined]
                if exc.status == 0xA702 or exc.result.failed:
                    exc.args = (f"{exc.args[0]} {GET_HINT}",)
                raise
            retrieved.result, retrieved.error = exc.result, exc
        except PacsboxError as exc:
            # Orthanc aborts a C-GET from a modality without AllowGet: a refusal as well
            aborted = isinstance(exc.__cause__, AssociationAbortedError)
            if not strict and aborted and not progress.instances and not event.is_set():
                return "the PACS aborted the association on the C-GET"
            if not event.is_set():
                _partial(exc, finished(retrieved, progress, event))
                raise
            retrieved.error = exc
        finally:
            self._get_storage.target = None
            handler.close()
        return finished(retrieved, progress, event)

    async def _move_here(self, model, identifier, directory, progress, event, port, settle):
        """C-MOVE to our own AE title, received by a StorageReceiver for this retrieve."""
        from .services.retrieve_scu import move

        port = self.receive_port if port is None else port
        receiver = StorageReceiver(
            directory,
            port=port,
            host=self.receive_host,
            ae_title=self.calling_ae,
            on_instance=progress.instance,
            timeouts=Timeouts(acse=self.timeouts.acse, idle=self.timeouts.idle),
        )
        await receiver.astart()
        if port == 0:
            log.warning(
                "Receiving the C-MOVE on port %d, chosen by the system: the PACS sends to the "
                "port it has configured for '%s'; pass port= (or receive_port=) that port",
                receiver.port, self.calling_ae,
            )  # fmt: skip
        retrieved = Retrieved("move", directory)
        try:
            assoc = await self._query_association()
            try:
                retrieved.result = await self._cancellable(
                    move(assoc, model, identifier, self.calling_ae, on_progress=progress.pending,
                         cancel=event), assoc, event,
                )  # fmt: skip
            except RetrieveError as exc:
                if not event.is_set():
                    exc.args = (f"{exc.args[0]} {self._receiver_hint(receiver, exc)}".rstrip(),)
                    # what did arrive stays available: the error's ``retrieved``
                    counted = (exc.result.completed or 0) + (exc.result.warning or 0)
                    await receiver.settle(counted, settle)
                    retrieved.result = exc.result
                    exc.retrieved = finished(retrieved, progress, event)  # type: ignore[attr-defined]
                    raise
                retrieved.result, retrieved.error = exc.result, exc
            except PacsboxError as exc:
                if not event.is_set():
                    _partial(exc, finished(retrieved, progress, event))
                    raise
                retrieved.error = exc
            result = retrieved.result
            expected = 0 if result is None else (result.completed or 0) + (result.warning or 0)
            if (
                expected == 0
                and result is not None
                and result.status == 0
                and not (progress.instances or event.is_set())
            ):
                await self._first_after_success(receiver, min(settle, EMPTY_SUCCESS_GRACE))
            arrived = await receiver.settle(expected, settle)
            finished(retrieved, progress, event)
            if not arrived and not retrieved.cancelled and result is not None:
                raise IncompleteRetrieveError(
                    f"The PACS '{self.called_ae}' reported {expected} instance(s) sent to "
                    f"'{self.calling_ae}' but {len(progress.instances)} arrived at port "
                    f"{receiver.port} within {settle:.0f} s after its final response "
                    f"(settle_timeout). Check the host and port the PACS has for "
                    f"'{self.calling_ae}': they must be this machine and port {receiver.port} "
                    "(pass port= to retrieve, or receive_port= to the client).",
                    result,
                    retrieved,
                )
        finally:
            await receiver.astop()
        return retrieved

    async def _first_after_success(self, receiver: StorageReceiver, grace: float) -> None:
        """Success with no instance counted and none arrived: a PACS with nothing to send,
        or one that answers before it sends (not valid DICOM; some do): ``grace`` seconds
        for a first one, then the associations it opened until they end."""
        log.info("The PACS '%s' answered Success counting no instance sent, and none arrived: "
                 "waiting %.1f s for instances sent after the answer (some PACS do)",
                 self.called_ae, grace)  # fmt: skip
        if await receiver.settle(1, grace):
            log.warning(
                "The PACS '%s' sent %d instance(s) after its final Success, which counted none "
                "(a PACS quirk: not valid DICOM); all received", self.called_ae,
                len(receiver.received),
            )  # fmt: skip

    def _receiver_hint(self, receiver: StorageReceiver, exc: RetrieveError) -> str:
        if exc.status == 0xA801 or exc.status == 0xA702 or 0xC000 <= exc.status <= 0xCFFF:
            return (
                f"retrieve() asked the PACS to send to our AE title '{self.calling_ae}' and "
                f"listened for it on port {receiver.port}: configure '{self.calling_ae}' "
                f"with this machine's address and port {receiver.port} on the PACS (pacsbox "
                f"serve: [peers.{self.calling_ae}] host, port), or pass calling_ae= a title it "
                "knows and port= the port it has for it."
            )
        return ""

    async def _cancellable(self, operation, assoc: Association, event: asyncio.Event):
        """Run a C-MOVE/C-GET; once cancel is asked the PACS has cancel_timeout seconds to
        answer the C-CANCEL before the association is aborted."""
        task = asyncio.ensure_future(operation)
        watcher = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await asyncio.wait({task}, timeout=self.cancel_timeout)
                if not task.done():
                    log.warning(
                        "The PACS did not end the retrieve within %.0f s of our C-CANCEL; "
                        "aborting the association", self.cancel_timeout,
                    )  # fmt: skip
                    assoc.abort()
                    try:
                        return await task
                    except PacsboxError as exc:
                        raise PacsboxError(
                            f"The PACS did not answer our C-CANCEL within {self.cancel_timeout} "
                            "s (cancel_timeout); the association was aborted."
                        ) from exc
            return await task
        finally:
            watcher.cancel()
            if not task.done():  # we were cancelled ourselves (e.g. Ctrl-C in the sync API)
                task.cancel()
                assoc.abort()

    # -- storage commitment --------------------------------------------------------------------

    async def commit(
        self, *items: Any, timeout: float = 60, port: int | None = None
    ) -> CommitmentResult:
        """Storage Commitment (N-ACTION) for files, folders, Datasets, StoreResults (what
        ``store`` returned) or (SOP Class UID, SOP Instance UID) pairs; waits up to
        ``timeout`` s for the report: on this association, or with ``port`` on a new one the
        PACS opens to us there (the association is released once the N-ACTION is answered;
        the PACS must know our calling AE title at this host and port)."""
        from .services.commitment import request_commitment
        from .services.storage_scu import find_files, scan

        references: list[tuple[str, str]] = []
        paths = []
        for item in items:
            if isinstance(item, tuple):
                references.append((str(item[0]), str(item[1])))
            elif isinstance(item, str | os.PathLike):
                paths.append(item)
            elif hasattr(item, "sop_instance_uid"):  # a StoreResult or a ReceivedInstance
                references.append((item.sop_class_uid, item.sop_instance_uid))  # type: ignore[union-attr]
            elif hasattr(item, "SOPInstanceUID"):
                references.append((str(item.SOPClassUID), str(item.SOPInstanceUID)))  # type: ignore[union-attr]
            else:
                raise TypeError(
                    f"commit() names instances by file, Dataset, StoreResult or (SOP Class "
                    f"UID, SOP Instance UID), not by {type(item).__name__}"
                )
        infos, _ = scan(find_files(paths))
        references += [(i.sop_class_uid, i.sop_instance_uid) for i in infos]
        if not references:
            raise ValueError("commit() needs at least one instance (a file, Dataset or pair)")
        async with self._serial():
            assoc = await self._query_association()
            if port is None:
                return await request_commitment(
                    assoc, dict.fromkeys(references), self._reports, timeout=timeout
                )
            from .services.commitment import report_listener

            listener = report_listener(self.calling_ae, self._reports)
            await listener.start("0.0.0.0", port)
            try:
                return await request_commitment(
                    assoc, dict.fromkeys(references), self._reports, timeout=timeout,
                    wait_on_association=False,
                )  # fmt: skip
            finally:
                await listener.close()


# -- helpers -----------------------------------------------------------------------------------


def _said_if_empty(retrieved: Retrieved, identifier: Dataset) -> Retrieved:
    """A retrieve below the study level without the Study Instance UID that brought nothing:
    a PACS that retrieves hierarchically (DCMTK's dcmqrscp) matches nothing without the keys
    of the levels above (PS3.4 C.4.2.2.1), and answers Success all the same."""
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if (
        retrieved.received == 0
        and not retrieved.cancelled
        and level in ("SERIES", "IMAGE")
        and not identifier.get("StudyInstanceUID")
    ):
        log.warning(
            "The PACS sent nothing for this %s-level retrieve. One that retrieves "
            "hierarchically (DCMTK's dcmqrscp) matches nothing without the keys of the levels "
            "above: pass StudyInstanceUID= too (a find() at the %s level returns it).",
            level, level,
        )  # fmt: skip
    return retrieved


def _partial(exc: PacsboxError, retrieved: Retrieved) -> None:
    """A retrieve that ended in an error other than a failure status (the association
    aborted, the connection lost): what did arrive goes with it, as with RetrieveError."""
    exc.retrieved = retrieved  # type: ignore[attr-defined]
    if retrieved.instances:
        where = f" in {retrieved.directory}" if retrieved.directory is not None else ""
        exc.args = (
            f"{exc.args[0] if exc.args else exc} {len(retrieved.instances)} instance(s) had "
            f"arrived{where} (error.retrieved lists them); retrieve again for the rest.",
        )


def _find_level(keys: dict[str, Any]) -> str:
    for key, level in LEVEL_OF_KEY[:2]:
        if key in keys:
            return level
    return "STUDY"


def _retrieve_level(keys: dict[str, Any]) -> str:
    for key, level in LEVEL_OF_KEY:
        if keys.get(key):
            return level
    from .query_keys import parse_key

    _no_misspelt_arguments(keys)  # a misspelt key is said as such, not as "no unique key":
    for name in keys:  # StudyInstanceUid= gets "did you mean StudyInstanceUID"
        parse_key(f"{name}=")
    raise ValueError(
        "a retrieve needs a unique key with a value: StudyInstanceUID, SeriesInstanceUID, "
        "SOPInstanceUID or PatientID (or pass level= and an identifier Dataset)"
    )


def _model_for(model: str | None, default: Model, identifier: Dataset) -> Model:
    if model is not None:
        return Model(model)
    if str(identifier.get("QueryRetrieveLevel", "")).upper() == "PATIENT":
        return Model.PATIENT_ROOT  # study root has no patient level (PS3.4 C.6.2)
    return default


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\\".join(_value_text(v) for v in value)
    for kind, form in DATE_FORMS:  # DA, DT, TM as DICOM writes them (PS3.5 6.2)
        if isinstance(value, kind):
            return value.strftime(form)
    return str(value)


def _identifier(keys: dict[str, Any], level: str, return_keys: Iterable[str]) -> Dataset:
    """An identifier from keyword arguments (DCMTK's -k syntax underneath: a wrong keyword
    gets a "did you mean")."""
    from .query_keys import build_identifier

    _no_misspelt_arguments(keys)
    texts = [f"QueryRetrieveLevel={level}"]
    texts += [f"{name}={_value_text(value)}" for name, value in keys.items()]
    texts += [f"{name}=" for name in return_keys if name not in keys]
    return build_identifier(texts)


# How long a C-MOVE answered Success with no instance counted waits for a first one that a
# PACS may send after its answer (the client's settle_timeout if shorter)
EMPTY_SUCCESS_GRACE = 3.0


def _no_misspelt_arguments(keys: dict[str, Any]) -> None:
    """A keyword argument that is no DICOM keyword but nearly one of the method's own
    (dset=, on_progess=) is a typo: say so, not 'not a DICOM keyword'."""
    import difflib
    import inspect

    from pydicom.datadict import tag_for_keyword

    unknown = [name for name in keys if tag_for_keyword(name) is None]
    if not unknown:
        return
    arguments = {  # the methods' own, read off their signatures (they take **keys too)
        name
        for method in (AsyncClient.find, AsyncClient.move, AsyncClient.retrieve)
        for name, parameter in inspect.signature(method).parameters.items()
        if name != "self" and parameter.kind is not parameter.VAR_KEYWORD
    }
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(arguments), n=1, cutoff=0.75)
        if close:
            raise TypeError(
                f"unexpected keyword argument {name!r}: did you mean {close[0]}=? (the other "
                "keyword arguments are identifier keys, DICOM keywords such as PatientID=)"
            )


def _write_dataset(ds: Dataset, path: Path) -> Path:
    """A Dataset as a Part 10 file (file meta made if missing), for store()."""
    from pydicom.dataset import FileMetaDataset

    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        ds = copy.copy(ds)  # the caller's data set keeps its (missing) meta
        meta = FileMetaDataset(meta or FileMetaDataset())
        meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"  # explicit VR little endian
        ds.file_meta = meta
    try:
        ds.save_as(path, enforce_file_format=True)
    except Exception as exc:
        raise PacsboxError(
            f"cannot encode data set {ds.get('SOPInstanceUID', '?')} for C-STORE: {exc}. "
            "It needs SOPClassUID and SOPInstanceUID, and values valid for their VRs."
        ) from exc
    return path
