"""Storage areas chosen by the called AE title, as DCMTK's dcmqrscp has them (AETable).

The association's called AE title names the area; its access (R, RW, W) decides what the
peer may do there. What an area refuses is answered with a status and a sentence that says
which line of the configuration to change.
"""

from __future__ import annotations

from pathlib import Path

from ..config.dcmqrscp import DcmqrscpConfig, StorageArea
from ..dimse import CStoreRQ
from ..log import log
from ..net.association import Association, RequestHandler
from ..net.server import RJ_CALLED_AE, RJ_CALLING_AE
from ..ul.negotiation import AgreedContext
from ..ul.pdu import AAssociateRJ, AAssociateRQ
from .storage_scp import StorageSCP

NOT_AUTHORIZED = 0x0124  # PS3.7 C.5.? "Refused: not authorized" (general failure)


def area_admission(config: DcmqrscpConfig):
    """The Server ``accept`` hook: the called AE title must be an AETable entry and the
    calling AE title one of its peers, each refused with its own reason (unlike dcmqrscp,
    which says "called AE title not recognized" for both)."""

    def accept(rq: AAssociateRQ, peer: tuple[str, int] | None) -> AAssociateRJ | None:
        area = config.area_for(rq.called_ae_title)
        if area is None:
            log.warning(
                "Refusing association: called AE title '%s' is not in the AETable of %s "
                "(known: %s)",
                rq.called_ae_title,
                config.source,
                ", ".join(config.areas) or "none",
            )
            return RJ_CALLED_AE
        if not config.may_connect(rq.calling_ae_title, rq.called_ae_title):
            admitting = config.admitting_entries(rq.calling_ae_title)
            log.warning(
                "Refusing association: calling AE title '%s' may not use %s (AETable line %d "
                "admits %s)%s",
                rq.calling_ae_title,
                area.ae_title,
                area.line,
                ", ".join(area.peer_names) or "nobody",
                f"; it is admitted by {'; '.join(admitting)}" if admitting else
                f"; add it to the HostTable and to line {area.line}'s peers",
            )  # fmt: skip
            return RJ_CALLING_AE
        return None

    return accept


class AreaStorageSCP(RequestHandler):
    """C-STORE into the area of the called AE title (one StorageSCP per writable area)."""

    def __init__(self, config: DcmqrscpConfig) -> None:
        self.config = config
        self._stores: dict[str, StorageSCP] = {}
        for area in config.areas.values():
            if area.access.can_write:
                Path(area.path).mkdir(parents=True, exist_ok=True)
                self._stores[area.ae_title] = StorageSCP(area.path)

    def _area(self, assoc: Association) -> StorageArea | None:
        return self.config.area_for(assoc.rq.called_ae_title) if assoc.rq else None

    def open_sink(self, assoc: Association, context: AgreedContext, request: CStoreRQ):
        area = self._area(assoc)
        store = self._stores.get(area.ae_title) if area else None
        return store.open_sink(assoc, context, request) if store else None

    async def handle(self, assoc: Association, context: AgreedContext, request, dataset) -> None:
        area = self._area(assoc)
        store = self._stores.get(area.ae_title) if area else None
        if store is None:
            where = f"'{area.ae_title}' (line {area.line})" if area else "this called AE title"
            await assoc.respond_failure(
                context,
                request,
                NOT_AUTHORIZED,
                f"area {where} is read-only (R); make it RW to store",
            )
            return
        await store.handle(assoc, context, request, dataset)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
