"""Storage areas chosen by the called AE title, as DCMTK's dcmqrscp has them (AETable).

The association's called AE title names the area; its access (R, RW, W) decides what the
peer may do there (``area_allows``): store needs W or RW, query and retrieve need R or RW.
What an area refuses is answered with a status and a sentence that says which line of the
configuration to change. Each writable area stores into its directory and, with an index,
records every instance with the area's AE title and its path relative to the area's
directory (so a file is ``<the area's path in the config>/<path>``; moving an area's
directory takes one edit of its AETable line), under the area's quotas (services/quota.py).
"""

from __future__ import annotations

import enum
import functools
import socket
from pathlib import Path

from ..config.dcmqrscp import DcmqrscpConfig, StorageArea
from ..dimse import CStoreRQ, CStoreRSP
from ..log import log
from ..net.association import Association, RequestHandler
from ..net.server import RJ_CALLED_AE, RJ_CALLING_AE
from ..ul.negotiation import AgreedContext
from ..ul.pdu import AAssociateRJ, AAssociateRQ
from .quota import AreaQuota
from .storage_scp import StorageSCP, Verdict

# "Refused: Not Authorized", one of PS3.7 Annex C's failure statuses common to all services
# (C.5): this peer may not do this here. The same code for store, query and retrieve.
NOT_AUTHORIZED = 0x0124


class AreaService(enum.Enum):
    """What a peer asks of a storage area: store needs W or RW, query and retrieve R or RW."""

    STORE = "store"
    QUERY = "query"
    RETRIEVE = "retrieve"


_ACCESS_WORDS = {"R": "read-only (R)", "W": "write-only (W)", "RW": "RW"}


def area_allows(area: StorageArea, service: AreaService) -> bool:
    """Whether the area's access (AETable R, RW, W) allows ``service``. dcmqrscp itself never
    refuses a query or retrieve on a W area; pacsbox does, as the access says."""
    return area.access.can_write if service is AreaService.STORE else area.access.can_read


def access_refusal(area: StorageArea | None, service: AreaService) -> Verdict | None:
    """None when ``area`` allows ``service``; else 0x0124 and an error comment (at most 64
    characters, PS3.7 (0000,0902) is LO) naming the area, its AETable line and the fix."""
    if area is not None and area_allows(area, service):
        return None
    if area is None:
        return NOT_AUTHORIZED, f"no storage area for this called AE title: cannot {service.value}"
    access = _ACCESS_WORDS[area.access.value]
    comment = f"area {area.ae_title} (line {area.line}) is {access}; make it RW"
    if len(comment) > 64:
        comment = f"area of AETable line {area.line} is {access}; make it RW"
    return NOT_AUTHORIZED, comment


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
        if peer is not None and area.peers is not None:
            hosts = [h for h in area.peer_hosts if h.ae_title == rq.calling_ae_title]
            if not any(_is_host(peer[0], h.hostname) for h in hosts):
                log.warning(
                    "Refusing association: calling AE title '%s' connected from %s, but the "
                    "HostTable puts it on %s (AETable line %d); correct the host there, or "
                    "connect from it",
                    rq.calling_ae_title, peer[0],
                    " or ".join(sorted({h.hostname for h in hosts})), area.line,
                )  # fmt: skip
                return RJ_CALLING_AE
        return None

    return accept


@functools.lru_cache(maxsize=256)
def _addresses(hostname: str) -> frozenset[str]:
    """The addresses a HostTable host name (or address) stands for (resolved once)."""
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return frozenset()
    return frozenset(info[4][0] for info in infos)


def _is_host(address: str, hostname: str) -> bool:
    """Whether a connection from ``address`` comes from the HostTable's ``hostname``, as
    dcmqrscp checks a peer's host (PS: AE titles are no authentication; this only keeps a
    misconfigured modality from using another's entry)."""
    address = address.removeprefix("::ffff:")  # an IPv4 peer on a dual-stack socket
    if hostname == address or address in _addresses(hostname):
        return True
    return address in ("127.0.0.1", "::1") and hostname.lower() == "localhost"


class AreaStorageSCP(RequestHandler):
    """C-STORE into the area of the called AE title (one StorageSCP per writable area).

    index: the archive's Index; each instance is recorded with ``area=<AE title>`` and its
        path relative to the area's directory, under the area's quotas. None: files only.
    on_duplicate, on_max_studies, max_dataset_size: see StorageSCP and AreaQuota (an area's
        own ``on_max_studies``, when it has one, rather than this).
    """

    def __init__(
        self,
        config: DcmqrscpConfig,
        *,
        index=None,
        on_duplicate: str = "replace",
        on_max_studies: str = "delete-oldest",
        max_dataset_size: int | None = None,
    ) -> None:
        self.config = config
        self._stores: dict[str, StorageSCP] = {}
        for area in config.areas.values():
            if area_allows(area, AreaService.STORE):
                Path(area.path).mkdir(parents=True, exist_ok=True)
                quota = None
                if index is not None:
                    quota = AreaQuota(
                        index,
                        area,
                        source=config.source,
                        on_max_studies=area.on_max_studies or on_max_studies,
                    )
                self._stores[area.ae_title] = StorageSCP(
                    area.path,
                    index=index,
                    area=area.ae_title,
                    on_duplicate=on_duplicate,
                    quota=quota,
                    locate=self.locate,
                    max_dataset_size=max_dataset_size,
                )

    def locate(self, area: str | None, path: str) -> Path | None:
        """The file of an index row: ``path`` in the directory of ``area`` (None if the
        configuration has no such area)."""
        found = self.config.area_for(area) if area is not None else None
        return Path(found.path).resolve() / path if found is not None else None

    def _area(self, assoc: Association) -> StorageArea | None:
        return self.config.area_for(assoc.rq.called_ae_title) if assoc.rq else None

    def open_sink(self, assoc: Association, context: AgreedContext, request: CStoreRQ):
        area = self._area(assoc)
        store = self._stores.get(area.ae_title) if area else None
        return store.open_sink(assoc, context, request) if store else None

    answers_now = True  # as StorageSCP: nothing to await

    def answer(self, assoc: Association, context: AgreedContext, request, dataset) -> CStoreRSP:
        area = self._area(assoc)
        store = self._stores.get(area.ae_title) if area else None
        if store is not None:
            return store.answer(assoc, context, request, dataset)
        status, comment = access_refusal(area, AreaService.STORE) or (NOT_AUTHORIZED, "")
        log.warning(
            "Refusing to store %s: %s%s",
            request.affected_sop_instance_uid,
            f"storage area {area.ae_title} ({area.origin} line {area.line} of "
            f"{self.config.source}) is {area.access.name}" if area else "no storage area",
            "; make it RW to store there" if area else "",
        )  # fmt: skip
        return CStoreRSP(
            message_id_being_responded_to=request.message_id,
            status=status,
            affected_sop_class_uid=request.affected_sop_class_uid,
            affected_sop_instance_uid=request.affected_sop_instance_uid,
            error_comment=(comment or "")[:64],
        )

    def answered(self, assoc: Association) -> None:
        area = self._area(assoc)
        store = self._stores.get(area.ae_title) if area else None
        if store is not None:
            store.answered(assoc)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
