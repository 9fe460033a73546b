"""dcmqrscp's quotas of a storage area (AETable ``(maxStudies, maxBytesPerStudy)``), checked
before each received instance is renamed into the area.

- maxStudies: an instance of a study the area does not hold yet, arriving while the area holds
  maxStudies studies, first makes room: the least recently received study (whose latest
  instance arrived first; DCMTK's ``DB_DeleteOldestStudy`` picks the smallest
  LastRecordedDate, the time the study last received an image) is removed from the index and
  its files are deleted. With ``on_max_studies="refuse"`` the instance is refused instead,
  with 0xA700, and nothing is deleted.
- maxBytesPerStudy: an instance that would take its study past the limit in this area is
  refused with 0xA700 (PS3.4 B.2.3 "Refused: Out of Resources"). DCMTK's dcmqrscp refuses
  only an instance larger than the limit by itself, and otherwise deletes the study's oldest
  instances to make room (``DB_DeleteOldestImages``): it silently loses the start of the very
  study being sent. pacsbox refuses and says which quota of which AETable line to raise.
- Sizes are file sizes (file meta header included), as dcmqrscp counts them; a re-sent
  instance that replaces one in the same study and area is not counted twice.

Concurrency: the StorageSCP runs this check, the removal it makes and the index row under one
lock, so within one process (every association of one ``pacsbox dcmqrscp``) the quotas hold
exactly. Several processes writing one index (two servers on one PostgreSQL database) are not
serialized: check and add are separate transactions, and each process counts a study's bytes
from the index only when it first sees the study or is about to refuse. So another process's
instances of a study this one holds are not counted until then (maxBytesPerStudy may be
passed by what they stored), a study another process deleted still counts as present, and at
one moment each process may admit one new study past maxStudies; the next new study deletes
down to maxStudies again. The index itself always stays consistent.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from ..config.dcmqrscp import StorageArea
from ..log import log
from ..rawheader import RawHeader
from .storage_scp import OUT_OF_RESOURCES, Verdict, uid_value

ON_MAX_STUDIES = ("delete-oldest", "refuse")


class AreaQuota:
    """The quotas of one storage area, a StorageSCP ``quota``.

    It remembers each study's bytes in the area as the index last said plus what this
    process stored since (asking the index on every instance costs a scan of the study's
    rows: quadratic in the study's size), and asks the index again before refusing.
    """

    def __init__(
        self, index, area: StorageArea, *, source: str, on_max_studies: str = "delete-oldest"
    ) -> None:
        if on_max_studies not in ON_MAX_STUDIES:
            raise ValueError(
                f"on_max_studies is {on_max_studies!r}; use one of {', '.join(ON_MAX_STUDIES)}"
            )
        self.index = index
        self.area = area
        self.directory = Path(area.path).resolve()
        self.where = f"{area.origin} line {area.line} of {source}"
        self.on_max_studies = on_max_studies
        self._sizes: dict[str, int] = {}  # study UID -> its bytes in the area, as known here

    def admit(self, header: RawHeader | Dataset, size: int, stored) -> Verdict | None:
        """None to store the instance (after making room), or the Verdict that refuses it."""
        study = uid_value(header, 0x0020000D)
        if not study:
            return None  # the index refuses it, saying why
        area = self.area
        replaced = self._replaced(study, stored)
        limit = area.max_bytes_per_study
        held = self._sizes.get(study)
        usage = None
        if held is None or (limit >= 0 and held - replaced + size > limit):
            usage = self.index.area_usage(area.ae_title, study)  # first sight, or refusing
            held = usage.study_size
        if limit >= 0 and held - replaced + size > limit:
            words = _words(area)
            log.warning(
                "Refusing %s: study %s would hold %d bytes in area %s, over its "
                "%s %s (%s); raise the quota there or send the study to another area",
                uid_value(header, 0x00080018), study, held - replaced + size, area.ae_title,
                words["bytes"], _size(limit), self.where,
            )  # fmt: skip
            comment = f"study over {words['bytes']} {_size(limit)}, {area.origin} line {area.line}"
            return OUT_OF_RESOURCES, comment[:64]
        if usage is None or usage.studies is None or usage.studies < area.max_studies:
            return None  # the study is in the area already, or one more fits
        if self.on_max_studies == "refuse":
            words = _words(area)
            log.warning(
                "Refusing %s: its study %s is new and area %s holds %d studies, its "
                "%s (%s; %s). Raise %s, delete a study, or drop %s to delete the oldest one",
                uid_value(header, 0x00080018), study, area.ae_title, usage.studies,
                words["studies"], self.where, words["refuse"], words["studies"], words["refuse"],
            )  # fmt: skip
            comment = (
                f"area full: {words['studies']} {area.max_studies}, {area.origin} line {area.line}"
            )
            return OUT_OF_RESOURCES, comment[:64]
        self._delete_oldest(usage.studies - area.max_studies + 1, study)
        return None

    def added(self, header: RawHeader | Dataset, size: int, stored) -> None:
        """The instance's index row is committed: count its bytes."""
        study = uid_value(header, 0x0020000D)
        if study in self._sizes:
            self._sizes[study] += size - self._replaced(study, stored)
        else:  # the index's sum, this instance included (once per study and process)
            self._sizes[study] = self.index.area_usage(self.area.ae_title, study).study_size

    def _replaced(self, study: str, stored) -> int:
        """The bytes a re-sent instance takes out of its study here (0 if none)."""
        if stored is not None and (stored.area, stored.study_instance_uid) == (
            self.area.ae_title,
            study,
        ):
            return stored.size
        return 0

    def _delete_oldest(self, count: int, new_study: str) -> None:
        """Remove the ``count`` least recently received studies of the area, rows and files."""
        area = self.area
        for study in self.index.studies_of_area(area.ae_title)[:count]:
            paths = self.index.remove_area_study(study.study_instance_uid, area.ae_title)
            self._sizes.pop(study.study_instance_uid, None)
            for path in paths:
                (self.directory / path).unlink(missing_ok=True)
            log.warning(
                "Area %s is full (%s %d, %s): deleted its least recently received "
                "study %s (files: %d, bytes: %d, last received %s) to store study %s",
                area.ae_title, _words(area)["studies"], area.max_studies, self.where,
                study.study_instance_uid,
                len(paths), study.size, study.last_received.isoformat(timespec="seconds"),
                new_study,
            )  # fmt: skip


def _size(size: int) -> str:
    """A byte count as the AETable writes it (``512kb``), rounded down beyond exact units."""
    for unit, factor in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if size >= factor and (size % factor == 0 or size >= 10 * factor):
            return f"{size // factor}{unit}"
    return f"{size}b"


def _words(area) -> dict[str, str]:
    """The quota's names where the area is defined: dcmqrscp.cfg's, or serve's TOML keys."""
    if area.origin == "AETable":
        return {"bytes": "maxBytesPerStudy", "studies": "maxStudies",
                "refuse": "--on-max-studies refuse"}  # fmt: skip
    return {"bytes": "max_bytes_per_study", "studies": "max_studies",
            "refuse": 'on_max_studies = "refuse"'}  # fmt: skip
