"""Fill an archive index with synthetic rows, for C-FIND at scale (``find-1m`` scenarios).

    python -m bench.fill_index --instances 1000000 --studies 10000 --db sqlite:///PATH
    python -m bench.fill_index --instances 1000000 --studies 10000 --db postgresql://...
    python -m bench.fill_index                 # the cached 1M index (built if missing)

The database is created with ``Index.open`` (so the migrations build the schema, as for a
user), then filled with bulk ``executemany`` in a few big transactions, through the columns of
``pacsbox.archive.schema``: no DICOM file exists behind the rows, only what the index holds.

Everything is derived from ``--seed``: two fills with the same arguments hold the same rows.
Distributions, chosen to look like a small hospital's archive:

- ~3,000 patients (0.3 per study); names from a list with accents (``Müller^Jürgen``),
  ideographic and phonetic groups (``Yamada^Tarou=山田^太郎=やまだ^たろう``) and families that
  share a prefix (Schmidt, Schmitz, Schmid; McDonald, McDowell), so that wildcards have work;
- study dates over 15 years (2011-2025), fewer on weekends, times 07:00-19:59;
- 1-4 series a study, modalities CT/MR/US/CR/SR; the instances split over the series by
  modality (a CT series has ~150 times the instances of a CR one);
- each instance row has a small DICOM JSON header (14 attributes: character set, UIDs,
  dates, modality, Manufacturer, InstitutionName, StationName, PatientName, PatientID, ...),
  ~0.7 KB, so a query on an attribute without a column (InstitutionName) reads real JSON.
  A stored CT header is ~10 KB; 1M of those would be a 10 GB file, so the bench keeps a dozen.

The cached index (``cached_index``) lives in ``$PACSBOX_BENCH_CACHE`` or
``~/.cache/pacsbox-bench``, never in the repository; it is rebuilt when missing, when its
parameters differ or when ``GENERATOR_VERSION`` changes (the version is in its file name and
in the ``.json`` written next to it once the fill is complete).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

GENERATOR_VERSION = 4  # bump when the rows written below change
CACHE_ENV = "PACSBOX_BENCH_CACHE"
UID_ROOT = "1.2.826.0.1.3680043.8.498.7731"  # pydicom's root + a fixed branch for these rows
CHUNK = 50_000  # rows per executemany

# family (alphabetic[, ideographic[, phonetic]]), weight: common names come more often
FAMILIES: tuple[tuple[str, ...], ...] = (
    ("Müller",), ("Mueller",), ("Möller",), ("Schmidt",), ("Schmitz",), ("Schmid",),
    ("Schneider",), ("Schäfer",), ("Schröder",), ("Schulz",), ("Schwarz",), ("Fischer",),
    ("Weber",), ("Wagner",), ("Becker",), ("Hoffmann",), ("Koch",), ("Krüger",), ("Köhler",),
    ("Jäger",), ("Groß",), ("Weiß",), ("Zimmermann",), ("Braun",), ("Hartmann",),
    ("Dupont",), ("Durand",), ("Lefèvre",), ("Lefebvre",), ("Lemaire",), ("Leroy",),
    ("Moreau",), ("Bernard",), ("Dubois",), ("Girard",), ("Bonnet",), ("François",),
    ("Mercier",), ("Gauthier",), ("Chevalier",),
    ("Smith",), ("Smithson",), ("Johnson",), ("Jones",), ("Brown",), ("Williams",),
    ("Miller",), ("Davis",), ("Wilson",), ("Anderson",), ("Taylor",), ("Thompson",),
    ("McDonald",), ("McDowell",), ("MacArthur",), ("O'Brien",), ("O'Connor",),
    ("García",), ("González",), ("Rodríguez",), ("Fernández",), ("López",), ("Martínez",),
    ("Sánchez",), ("Pérez",), ("Muñoz",), ("Núñez",),
    ("Sørensen",), ("Øvergaard",), ("Ångström",), ("Nielsen",), ("Jensen",), ("Hansen",),
    ("van der Berg",), ("van Dijk",), ("de Vries",), ("de Jong",),
    ("Nowak",), ("Kowalski",), ("Wiśniewski",), ("Dvořák",), ("Novák",),
    ("Yamada", "山田", "やまだ"), ("Tanaka", "田中", "たなか"), ("Suzuki", "鈴木", "すずき"),
    ("Sato", "佐藤", "さとう"), ("Takahashi", "高橋", "たかはし"), ("Watanabe", "渡辺", "わたなべ"),
    ("Nakamura", "中村", "なかむら"), ("Kobayashi", "小林", "こばやし"),
    ("Hong", "洪", "홍"), ("Kim", "金", "김"), ("Lee", "李", "이"), ("Park", "朴", "박"),
    ("Wang", "王"), ("Zhang", "张"), ("Chen", "陈"),
)  # fmt: skip
GIVEN: dict[str, tuple[tuple[str, ...], ...]] = {
    "western": (
        ("Jürgen",), ("Johann",), ("Jana",), ("Jörg",), ("Julia",), ("Hans",), ("Anna",),
        ("Peter",), ("Petra",), ("Klaus",), ("Maria",), ("Marie",), ("Michael",),
        ("Stefan",), ("Sabine",), ("Thomas",), ("Ute",), ("Zoë",), ("Renée",), ("José",),
        ("Jean",), ("Jean-Luc",), ("François",), ("Hélène",), ("Amélie",), ("Chloé",),
        ("John",), ("James",), ("Mary",), ("Robert",), ("Patricia",), ("David",),
        ("Elizabeth",), ("William",), ("Søren",), ("Åsa",), ("Lukáš",), ("Małgorzata",),
    ),
    "japanese": (
        ("Tarou", "太郎", "たろう"), ("Hanako", "花子", "はなこ"), ("Ichiro", "一郎", "いちろう"),
        ("Yuki", "雪", "ゆき"), ("Kenji", "健二", "けんじ"), ("Akiko", "明子", "あきこ"),
    ),
    "korean": (("Gildong", "吉洞", "길동"), ("Minji", "敏智", "민지"), ("Jisoo", "智秀", "지수")),
    "chinese": (("Wei", "伟"), ("Fang", "芳"), ("Lei", "磊"), ("Xiu", "秀")),
}  # fmt: skip
# the first patients: names a test of character sets and matching wants to find
NAMED = ("Müller^Jürgen", "Yamada^Tarou=山田^太郎", "Hong^Gildong=洪^吉洞=홍^길동",
         "Sørensen^Åsa", "Lefèvre^Hélène", "Núñez^José", "O'Brien^Seán")  # fmt: skip
_CULTURE: dict[str, str] = {}  # family -> whose given names go with it (default western)
for _family in FAMILIES:
    if len(_family) == 3:
        _CULTURE[_family[0]] = "korean" if "\uac00" <= _family[2][0] <= "\ud7a3" else "japanese"
    elif len(_family) == 2:
        _CULTURE[_family[0]] = "chinese"

# modality: (weight of a series, relative instances a series, SOP class, typical size)
MODALITIES: dict[str, tuple[float, float, str, int]] = {
    "CT": (0.30, 150.0, "1.2.840.10008.5.1.4.1.1.2", 526_000),
    "MR": (0.22, 60.0, "1.2.840.10008.5.1.4.1.1.4", 135_000),
    "US": (0.15, 8.0, "1.2.840.10008.5.1.4.1.1.6.1", 310_000),
    "CR": (0.23, 1.0, "1.2.840.10008.5.1.4.1.1.1", 8_400_000),
    "SR": (0.10, 1.0, "1.2.840.10008.5.1.4.1.1.88.22", 6_000),
}
INSTITUTIONS = (
    "St. Mary's Hospital", "Klinikum Süd", "Hôpital Saint-Louis", "Universitätsklinikum Ulm",
    "Hospital General Universitario", "東京総合病院", "City Imaging Center", "Radiologie Nord",
    "Rigshospitalet", "Kantonsspital Aarau", "Mercy Medical Center", "Clínica Santa María",
)  # fmt: skip
MANUFACTURERS = {"CT": "SIEMENS", "MR": "GE MEDICAL SYSTEMS", "US": "Philips", "CR": "FUJIFILM",
                 "SR": "pacsbox"}  # fmt: skip
DESCRIPTIONS = {
    "CT": ("CT THORAX", "CT ABDOMEN", "CT HEAD", "CT CHEST W/O CONTRAST", "CTA CORONARY"),
    "MR": ("MR KNEE", "MR BRAIN", "MR LUMBAR SPINE", "MRT SCHÄDEL"),
    "US": ("US ABDOMEN", "ECHO CARDIAC", "US THYROID"),
    "CR": ("CHEST PA", "THORAX 2 EBENEN", "HAND LEFT"),
    "SR": ("DOSE REPORT", "KEY IMAGES"),
}  # fmt: skip
BODY_PARTS = {"CT": "CHEST", "MR": "BRAIN", "US": "ABDOMEN", "CR": "CHEST", "SR": ""}
FIRST_DAY = date(2011, 1, 1)
DAYS = (date(2025, 12, 31) - FIRST_DAY).days + 1  # 15 years


def study_uid(s: int) -> str:
    return f"{UID_ROOT}.1.{s}"


def patient_id(p: int) -> str:
    return f"PB{p:06d}"


@dataclass(frozen=True, slots=True)
class FillResult:
    url: str
    patients: int
    studies: int
    series: int
    instances: int
    seconds: float


def _name(rng: random.Random, p: int) -> tuple[str, dict[str, str]]:
    """(PN as the index keeps it, "=" between groups; its DICOM JSON form)."""
    family = rng.choice(FAMILIES)
    given = rng.choice(GIVEN[_CULTURE.get(family[0], "western")])
    groups = [f"{f}^{g}" for f, g in zip(family, given, strict=False)]
    if p <= len(NAMED):  # these are there whatever the draw
        groups = NAMED[p - 1].split("=")
    keys = ("Alphabetic", "Ideographic", "Phonetic")
    return "=".join(groups), dict(zip(keys, groups, strict=False))


def _split(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """``total`` split over len(weights) parts in proportion, each part at least 1."""
    scale = total / sum(weights)
    counts = [max(1, int(w * scale)) for w in weights]
    left = total - sum(counts)
    while left != 0:  # the rounding: add to (or take from) random parts
        i = rng.randrange(len(counts))
        step = 1 if left > 0 else -1
        if counts[i] + step >= 1:
            counts[i] += step
            left -= step
    return counts


def _element(tag: str, vr: str, value) -> str:
    return f'"{tag}":' + json.dumps({"vr": vr, "Value": [value]}, ensure_ascii=False,
                                     separators=(",", ":"))  # fmt: skip


def generate(n_instances: int, n_studies: int, seed: int):
    """The rows, as (table name, rows) with rows as tuples in ``COLUMNS[table]`` order; the
    instance rows come in chunks (a generator) so that 1M of them are never all in memory."""
    rng = random.Random(seed)
    n_patients = max(1, round(n_studies * 0.3))
    patients = []
    names: list[tuple[str, dict[str, str]]] = []
    for p in range(1, n_patients + 1):
        name, pn = _name(rng, p)
        names.append((name, pn))
        birth = FIRST_DAY - timedelta(days=rng.randrange(365 * 90))
        patients.append((p, patient_id(p), "", name, name.upper(), birth.strftime("%Y%m%d"),
                         rng.choice("MMMFFFFO")))  # fmt: skip
    yield "patients", patients

    studies, series_rows, plan = [], [], []
    series_id = 0
    for s in range(1, n_studies + 1):
        patient = rng.randint(1, n_patients)
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        while day.weekday() >= 5 and rng.random() < 0.7:  # fewer studies on weekends
            day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        when = datetime(day.year, day.month, day.day, rng.randint(7, 19), rng.randrange(60),
                        rng.randrange(60), tzinfo=UTC)  # fmt: skip
        first = rng.choices(list(MODALITIES), [m[0] for m in MODALITIES.values()])[0]
        modalities = [first] + [
            rng.choice((first, first, "SR", "CT", "MR")) for _ in range(rng.randint(1, 4) - 1)
        ]
        institution = rng.choice(INSTITUTIONS)
        studies.append((s, study_uid(s), patient, when.strftime("%Y%m%d"), when.strftime("%H%M%S"),
                        f"A{seed % 100:02d}{s:08d}", str(s % 100000),
                        rng.choice(DESCRIPTIONS[first]), "Wong^Kar", "WONG^KAR",
                        *patients[patient - 1][3:]))  # fmt: skip
        for k, modality in enumerate(modalities, start=1):
            series_id += 1
            uid = f"{UID_ROOT}.2.{s}.{k}"
            series_rows.append((series_id, uid, s, modality, k, f"{modality} series {k}",
                                BODY_PARTS[modality], when.strftime("%Y%m%d"),
                                when.strftime("%H%M%S")))  # fmt: skip
            plan.append((series_id, s, k, modality, patient, when, institution))
    yield "studies", studies
    yield "series", series_rows

    weights = [MODALITIES[m][1] * rng.uniform(0.5, 1.5) for _, _, _, m, _, _, _ in plan]
    counts = _split(rng, n_instances, weights)
    chunk: list[tuple] = []
    instance_id = 0
    for (sid, s, k, modality, patient, when, institution), count in zip(plan, counts, strict=True):
        _, _, sop_class, size = MODALITIES[modality]
        name, pn = names[patient - 1]
        series_uid = f"{UID_ROOT}.2.{s}.{k}"
        # The header in tag order, built around the two values that change per instance.
        head = "{" + ",".join((
            _element("00080005", "CS", "ISO_IR 192"), _element("00080016", "UI", sop_class),
        )) + ',"00080018":{"vr":"UI","Value":["'  # fmt: skip
        middle = '"]},' + ",".join((
            _element("00080020", "DA", when.strftime("%Y%m%d")),
            _element("00080030", "TM", when.strftime("%H%M%S")),
            _element("00080060", "CS", modality),
            _element("00080070", "LO", MANUFACTURERS[modality]),
            _element("00080080", "LO", institution),
            _element("00081010", "SH", f"{modality}{s % 7:02d}"),
            _element("00100010", "PN", pn),
            _element("00100020", "LO", patient_id(patient)),
            _element("0020000D", "UI", study_uid(s)),
            _element("0020000E", "UI", series_uid),
        )) + ',"00200013":{"vr":"IS","Value":['  # fmt: skip
        tail = "]}}"
        received = when + timedelta(minutes=10)
        for n in range(1, count + 1):
            instance_id += 1
            sop = f"{series_uid}.{n}"
            chunk.append((instance_id, sop, sid, sop_class, n, "1.2.840.10008.1.2.1",
                          f"{s % 97:02d}/{s}/{k}/{n}.dcm", size, received + timedelta(seconds=n),
                          "MODALITY", "", f"{head}{sop}{middle}{n}{tail}"))  # fmt: skip
            if len(chunk) >= CHUNK:
                yield "instances", chunk
                chunk = []
    if chunk:
        yield "instances", chunk


def _columns():
    from pacsbox.archive.schema import instances, patients, series, studies

    return {t.name: t for t in (patients, studies, series, instances)}


COLUMNS = {
    "patients": ("id", "patient_id", "issuer", "patient_name", "patient_name_upper",
                 "birth_date", "sex"),
    "studies": ("id", "study_instance_uid", "patient_fk", "study_date", "study_time",
                "accession_number", "study_id", "description", "referring_physician",
                "referring_physician_upper", "patient_name", "patient_name_upper",
                "patient_birth_date", "patient_sex"),
    "series": ("id", "series_instance_uid", "study_fk", "modality", "series_number",
               "description", "body_part", "series_date", "series_time"),
    "instances": ("id", "sop_instance_uid", "series_fk", "sop_class_uid", "instance_number",
                  "transfer_syntax", "path", "size", "received_at", "calling_ae", "area",
                  "header"),
}  # fmt: skip


def fill(url: str, n_instances: int, n_studies: int, seed: int = 1, *, quiet=False) -> FillResult:
    """Create the index at ``url`` (Index.open: the migrations run) and fill it."""
    from pacsbox.archive import Index

    tables = _columns()
    for name, columns in COLUMNS.items():  # the schema may have grown: say so, do not guess
        missing = {c.name for c in tables[name].columns} - set(columns)
        if missing:
            raise SystemExit(f"fill_index does not fill {name}.{sorted(missing)}: update it")
    start = time.perf_counter()
    with Index.open(url) as index:
        if index.stats().instances or index.stats().patients:
            raise SystemExit(f"{url} already holds rows; fill an empty database")
        dialect = index.engine.dialect.name
        raw = index.engine.raw_connection()
    counts = {}
    try:
        cursor = raw.cursor()
        mark = "?" if dialect == "sqlite" else "%s"
        if dialect == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")  # a bench file: rebuilt if a crash hurts it
            cursor.execute("PRAGMA cache_size=-400000")  # 400 MB: the indexes stay in memory
            cursor.execute("BEGIN")
        for table, rows in generate(n_instances, n_studies, seed):
            columns = COLUMNS[table]
            if dialect == "sqlite" and table == "instances":
                at = columns.index("received_at")  # SQLAlchemy's SQLite DATETIME text form
                rows = [(*r[:at], r[at].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[at + 1 :])
                        for r in rows]  # fmt: skip
            sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
                   f"VALUES ({', '.join([mark] * len(columns))})")  # fmt: skip
            cursor.executemany(sql, rows)
            counts[table] = counts.get(table, 0) + len(rows)
            if not quiet and table == "instances" and counts[table] % 200_000 < CHUNK:
                print(f"  {counts[table]:,} instances ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr)  # fmt: skip
        if dialect == "postgresql":  # explicit ids: move the sequences past them
            for table in COLUMNS:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {table}))")  # fmt: skip
        if dialect == "sqlite":
            cursor.execute("COMMIT")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone is the index
        else:
            raw.commit()
            cursor.execute("ANALYZE")  # autovacuum would, a minute later; do not wait for it
            raw.commit()
    finally:
        raw.close()
    seconds = time.perf_counter() - start
    return FillResult(url, counts["patients"], counts["studies"], counts["series"],
                      counts["instances"], seconds)  # fmt: skip


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pacsbox-bench")


def cached_index(n_instances: int = 1_000_000, n_studies: int = 10_000, seed: int = 1) -> Path:
    """The SQLite file of the cached index with these parameters, filled first if missing."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"find-{n_instances}-{n_studies}-s{seed}-v{GENERATOR_VERSION}.sqlite"
    manifest = path.with_suffix(".json")
    if path.exists() and manifest.exists():
        return path
    for stale in (path, manifest, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)  # an interrupted fill
    for older in directory.glob(f"find-{n_instances}-{n_studies}-s{seed}-v*.*"):
        older.unlink()  # made by another GENERATOR_VERSION: 1.2 GB each
    print(f"filling {path} (once; kept between runs)", file=sys.stderr)
    result = fill(f"sqlite:///{path}", n_instances, n_studies, seed)
    manifest.write_text(json.dumps({"generator_version": GENERATOR_VERSION, "seed": seed,
                                    **asdict(result)}, indent=1))  # fmt: skip
    print(f"filled in {result.seconds:.0f} s, {path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.fill_index", description=__doc__.split("\n")[0]
    )
    p.add_argument("--instances", type=int, default=1_000_000)
    p.add_argument("--studies", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--db", metavar="URL",
                   help="an empty database to fill (default: the cached SQLite index, "
                        f"in ${CACHE_ENV} or ~/.cache/pacsbox-bench)")  # fmt: skip
    args = p.parse_args(argv)
    if args.instances < args.studies:
        p.error("--instances must be at least --studies (every study has an instance)")
    if args.db is None:
        print(cached_index(args.instances, args.studies, args.seed))
        return 0
    r = fill(args.db, args.instances, args.studies, args.seed)
    print(f"{r.url}: {r.patients:,} patients, {r.studies:,} studies, {r.series:,} series, "
          f"{r.instances:,} instances in {r.seconds:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
