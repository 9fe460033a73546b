"""`pacsbox serve`'s storage areas: the TOML file's ``[areas.<AE title>]`` served by the
machinery of dcmqrscp's AETable (services/areas.py, services/quota.py), beside the default
area.

An association whose called AE title is an area's stores into that area, under its access,
quotas and peers; its queries and retrieves see that area's instances only. Any other called
AE title (ours, or another one unless ``require_called_ae``) is taken for ours, as serve
without areas takes it, and uses our AE title's area: its ``[areas]`` section when it has
one, else the default area: the data folder's ``files/``, RW, no quota, the calling AE
titles of ``[server]``, index rows without an area (so what serve stored before ``[areas]``
were written stays where it was, and is found).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..archive.query import DEFAULT_AREA, QueryOptions
from ..config.dcmqrscp import Access, DcmqrscpConfig, StorageArea
from ..config.native import ServeConfig
from ..dimse import CFindRQ, CGetRQ, CMoveRQ, CStoreRQ, NActionRQ
from ..log import log
from ..net.association import Association, RequestHandler
from ..net.server import RJ_CALLED_AE, RJ_CALLING_AE, ServerConfig
from ..ul.negotiation import AgreedContext
from ..ul.pdu import AAssociateRJ, AAssociateRQ
from .areas import AreaService, AreaStorageSCP, access_refusal
from .storage_scp import StorageSCP

ORIGIN = "[areas]"  # what messages name as the definition of an area ("[areas] line 12 of F")
# a StorageArea has a maxStudies; [areas] without max_studies has none
NO_STUDY_LIMIT = sys.maxsize


def with_areas(server: ServerConfig, config: ServeConfig, index) -> ServerConfig:
    """serve's ServerConfig without areas (``server``, from cli/serve.py's server_config)
    made to serve ``config``'s [areas] too: C-STORE by area, the query and retrieve options
    and file locations of the called AE title's area, and the areas' admission rules in
    place of [server] require_called_ae and calling_ae_titles (which still hold for the
    default area). Its FindSCP, RetrieveSCP and StorageCommitmentSCP are kept, their
    ``options_for`` and ``locate`` replaced: everything else about them stays serve's."""
    settings = config.storage
    table = area_table(config)
    selection = AreaSelection(table, config.server.ae_title)
    files = settings.data / "files"
    locate = area_locate(table, files)
    for area in table.areas.values():
        log.info(
            "storage area %s: %s (access %s, max_studies %s, max_bytes_per_study %s, peers %s;"
            " %s line %d of %s)",
            area.ae_title, area.path, area.access.value,
            "none" if area.max_studies == NO_STUDY_LIMIT else area.max_studies,
            "none" if area.max_bytes_per_study < 0 else area.max_bytes_per_study,
            ", ".join(area.peer_names) or "ANY", area.origin, area.line, table.source,
        )  # fmt: skip
    handlers = dict(server.handlers)
    handlers[CFindRQ].options_for = area_options(selection, AreaService.QUERY, locate)
    retrieve = handlers[CMoveRQ]
    assert handlers[CGetRQ] is retrieve
    retrieve.options_for = area_options(selection, AreaService.RETRIEVE, locate)
    retrieve.locate = handlers[NActionRQ].locate = locate
    handlers[NActionRQ].area_of = lambda assoc: _title(selection.area_of_association(assoc))
    options = {"index": index, "on_duplicate": settings.on_duplicate,
               "max_dataset_size": settings.max_dataset_size}  # fmt: skip
    default = StorageSCP(files, sort_prefix="", locate=locate, **options)
    areas = SelectedAreaStorageSCP(selection, locate=locate, **options)
    handlers[CStoreRQ] = AreaStorage(selection, areas, default)
    return replace(
        server,
        handlers=handlers,
        require_called_ae=False,
        calling_ae_titles=None,
        accept=area_admission(config, selection),
    )


def area_table(config: ServeConfig) -> DcmqrscpConfig:
    """The [areas] of ``config`` as a dcmqrscp configuration's AETable."""
    areas = {
        area.ae_title: StorageArea(
            area.ae_title,
            str(area.path),
            Access(area.access),
            area.max_studies or NO_STUDY_LIMIT,
            area.max_bytes_per_study or -1,  # -1: no limit, as StorageArea has it
            frozenset(area.peers) if area.peers is not None else None,
            peer_names=area.peers or (),
            line=area.line or 0,
            origin=ORIGIN,
            on_max_studies=area.on_max_studies,
        )
        for area in config.areas.values()
    }
    return DcmqrscpConfig(areas=areas, source=str(config.source or "the configuration"))


@dataclass(frozen=True)
class AreaSelection:
    """Which storage area an association uses: ``table``, the [areas] as AETable lines, and
    ``ours``, our AE title."""

    table: DcmqrscpConfig
    ours: str

    def area_of(self, called: str) -> StorageArea | None:
        """The called AE title's area; any other called AE title is taken for ours: our AE
        title's area if [areas] has it, else None, the default area."""
        return self.table.area_for(called) or self.table.area_for(self.ours)

    def area_of_association(self, assoc: Association) -> StorageArea | None:
        return self.area_of(assoc.rq.called_ae_title if assoc.rq else self.ours)


class SelectedAreaStorageSCP(AreaStorageSCP):
    """AreaStorageSCP (one StorageSCP per writable area, access, quotas) with serve's choice
    of the area (AreaSelection.area_of): dcmqrscp's takes the called AE title's or none.
    ``locate`` (area_locate) finds the default area's files too."""

    def __init__(self, selection: AreaSelection, *, locate, **options) -> None:
        self._locate_row = locate  # before AreaStorageSCP hands self.locate to its stores
        super().__init__(selection.table, **options)
        self.selection = selection

    def locate(self, area: str | None, path: str) -> Path | None:
        return self._locate_row(area, path)

    def _area(self, assoc: Association) -> StorageArea | None:
        return self.selection.area_of_association(assoc)


class AreaStorage(RequestHandler):
    """C-STORE: into the association's area (``areas``), or into the default area
    (``default``, the StorageSCP serve has without areas)."""

    def __init__(
        self, selection: AreaSelection, areas: SelectedAreaStorageSCP, default: StorageSCP
    ) -> None:
        self.selection, self.areas, self.default = selection, areas, default

    def _store(self, assoc: Association) -> RequestHandler:
        return self.areas if self.selection.area_of_association(assoc) is not None else self.default

    def open_sink(self, assoc: Association, context: AgreedContext, request):
        return self._store(assoc).open_sink(assoc, context, request)

    answers_now = True  # as both stores: nothing to await (RequestHandler.answer)

    def answer(self, assoc: Association, context: AgreedContext, request, dataset):
        return self._store(assoc).answer(assoc, context, request, dataset)

    def answered(self, assoc: Association) -> None:
        self._store(assoc).answered(assoc)

    async def handle(self, assoc: Association, context: AgreedContext, request, dataset) -> None:
        await self._store(assoc).handle(assoc, context, request, dataset)

    def close(self) -> None:
        self.areas.close()
        self.default.close()


def _title(area: StorageArea | None) -> str | None:
    return area.ae_title if area is not None else None


def area_options(selection: AreaSelection, service: AreaService, locate=None):
    """FindSCP's and RetrieveSCP's ``options_for``: the association's area (its instances,
    its AE title as the RetrieveAETitle; refused where its access says so), or the default
    area's instances with our AE title. ``locate``: area_locate's, for QueryOptions."""
    default = QueryOptions(retrieve_ae_title=selection.ours, area=DEFAULT_AREA, locate=locate)

    def options_for(assoc: Association):
        area = selection.area_of_association(assoc)
        if area is None:
            return default
        return access_refusal(area, service) or QueryOptions(
            retrieve_ae_title=area.ae_title, area=area.ae_title, locate=locate
        )

    return options_for


def area_locate(table: DcmqrscpConfig, files: Path):
    """``locate(area, path)``: the file of an index row, in its area's folder (``files`` for
    the default area); None when the area is not configured any more."""
    folders = {ae: Path(area.path).resolve() for ae, area in table.areas.items()}
    files = files.resolve()

    def locate(area: str | None, path: str) -> Path | None:
        folder = files if area is None else folders.get(area)
        return folder / path if folder is not None else None

    return locate


def area_admission(config: ServeConfig, selection: AreaSelection):
    """The Server ``accept`` hook: with ``require_called_ae``, the called AE title must be
    ours or an area's; an area admits the calling AE titles of its ``peers``, the default
    area those of [server] ``calling_ae_titles`` (all, when empty)."""
    server, table = config.server, selection.table
    known = ", ".join(table.areas) or "none"
    callers = frozenset(server.calling_ae_titles) or None

    def accept(rq: AAssociateRQ, peer: tuple[str, int] | None) -> AAssociateRJ | None:
        called, calling = rq.called_ae_title, rq.calling_ae_title
        if server.require_called_ae and called != server.ae_title and called not in table.areas:
            log.warning(
                "Refusing association: called AE title '%s' is neither ours ('%s') nor a "
                "storage area's (%s in %s); add [areas.\"%s\"] there, or call one of them",
                called, server.ae_title, known, table.source, called,
            )  # fmt: skip
            return RJ_CALLED_AE
        area = selection.area_of(called)
        if area is None:
            if callers is not None and calling not in callers:
                log.warning(
                    "Refusing association: calling AE title '%s' is not configured (known: %s)",
                    calling, ", ".join(sorted(callers)),
                )  # fmt: skip
                return RJ_CALLING_AE
            return None
        if area.peers is not None and calling not in area.peers:
            log.warning(
                "Refusing association: calling AE title '%s' may not use storage area %s "
                "(%s line %d of %s admits %s); add it to that area's peers",
                calling, area.ae_title, area.origin, area.line, table.source,
                ", ".join(area.peer_names),
            )  # fmt: skip
            return RJ_CALLING_AE
        return None

    return accept
