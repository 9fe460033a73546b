"""Storage areas in pacsbox's TOML configuration (`[areas.<AE title>]`): every key, the size
units, every bad value with the line and what to write, the printed configuration read back.
(How serve runs them: tests/unit/test_serve_areas.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsbox.config.dcmqrscp import Access
from pacsbox.config.native import (
    AREA_ACCESS,
    ON_MAX_STUDIES,
    AreaSettings,
    NativeConfigError,
    dumps,
    load,
    parse,
)

AREAS = """\
[server]
ae_title = "PACS"

[areas.RESEARCH]
path = "research"
access = "RW"
max_studies = 100
max_bytes_per_study = "1 GB"
peers = ["CT_SCANNER", "WORKSTATION"]
on_max_studies = "refuse"

[areas."ACME CT"]
path = "/srv/acme"
access = "R"
peers = ["ANY"]

[areas.DROPBOX]
path = "drop"
access = "W"
max_studies = 0
max_bytes_per_study = 0
"""


def test_every_key_of_an_area(tmp_path):
    path = tmp_path / "pacsbox.toml"
    path.write_text(AREAS)
    areas = load(path).areas
    assert list(areas) == ["RESEARCH", "ACME CT", "DROPBOX"]
    assert areas["RESEARCH"] == AreaSettings(
        "RESEARCH",
        tmp_path / "research",  # relative to the file's folder, as [storage] data
        access="RW",
        max_studies=100,
        max_bytes_per_study=1 << 30,
        peers=("CT_SCANNER", "WORKSTATION"),
        on_max_studies="refuse",
    )
    assert areas["RESEARCH"].line == 4
    # absolute path kept; ["ANY"]: any calling AE title; absent keys: the defaults
    assert areas["ACME CT"] == AreaSettings("ACME CT", Path("/srv/acme"), access="R")
    assert areas["ACME CT"].peers is None and areas["ACME CT"].line == 12
    # 0: no limit, as absent
    assert areas["DROPBOX"] == AreaSettings("DROPBOX", tmp_path / "drop", access="W")


def test_no_areas_is_todays_single_area():
    assert parse("").areas == {}
    assert parse("[server]\nport = 1\n").areas == {}


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ('"1 GB"', 1 << 30),
        ('"1gb"', 1 << 30),
        ('"512mb"', 512 << 20),
        ('"1024 KB"', 1 << 20),
        ('"7Kb"', 7 << 10),
        ('"100b"', 100),
        ('" 3 MB "', 3 << 20),
        ("2048", 2048),
        ("0", None),
        ('"0 mb"', None),
    ],
)
def test_size_units_are_dcmqrscps_binary_ones(written, size):
    config = parse(f'[areas.A]\npath = "a"\nmax_bytes_per_study = {written}\n')
    assert config.areas["A"].max_bytes_per_study == size


# (file, line, what the message must say)
ERRORS = [
    ('[areas.A]\npath = "a"\naccess = "RWX"\n', 3,
     ["[areas.A] access", 'not "RWX"', '"R" (query and retrieve), "RW" or "W"', 'default ("RW")']),
    ('[areas.A]\npath = "a"\naccess = "rw"\n', 3, ["[areas.A] access", 'not "rw"']),
    ('[areas.A]\npath = "a"\nmax_studies = -1\n', 3,
     ["[areas.A] max_studies", "not -1 (an integer)", "a number of studies (0: no limit)",
      "default (no limit)"]),
    ('[areas.A]\npath = "a"\nmax_studies = "10"\n', 3, ["max_studies", 'not "10" (a string)']),
    ('[areas.A]\npath = "a"\nmax_studies = 2.5\n', 3, ["max_studies", "not 2.5 (a float)"]),
    ('[areas.A]\npath = "a"\nmax_bytes_per_study = "1 tb"\n', 3,
     ["[areas.A] max_bytes_per_study", 'not "1 tb"', '"1 GB"', "b, kb, mb, gb", "1kb = 1024"]),
    ('[areas.A]\npath = "a"\nmax_bytes_per_study = "1.5gb"\n', 3, ['not "1.5gb"']),
    ('[areas.A]\npath = "a"\nmax_bytes_per_study = "lots"\n', 3, ['not "lots"']),
    ('[areas.A]\npath = "a"\nmax_bytes_per_study = -1\n', 3, ["not -1 (an integer)"]),
    ('[areas.A]\npath = "a"\nmax_bytes_per_study = true\n', 3, ["not true (a boolean)"]),
    ('[areas.A]\npath = "a"\npeers = "CT1"\n', 3,
     ["[areas.A] peers", 'not "CT1"', 'e.g. ["CT1", "MR2"], or ["ANY"]']),
    ('[areas.A]\npath = "a"\npeers = []\n', 3,
     ["[areas.A] peers", "[] admits nobody", 'or ["ANY"]', "default (any calling AE title)"]),
    ('[areas.A]\npath = "a"\npeers = ["ANY", "CT1"]\n', 3,
     ['"ANY" admits every calling AE title and cannot be one of several']),
    ('[areas.A]\npath = "a"\npeers = ["CT1", 5]\n', 3, ["5 (an integer)"]),
    ('[areas.A]\npath = "a"\npeers = ["THIS_IS_FAR_TOO_LONG"]\n', 3, ["at most 16"]),
    ('[areas.A]\npath = "a"\non_max_studies = "delete"\n', 3,
     ["[areas.A] on_max_studies", '"delete-oldest" or "refuse"']),
    ('[areas.A]\npath = 5\n', 2, ["[areas.A] path", "not 5 (an integer)", "a folder"]),
    ('[areas.A]\npath = ""\n', 2, ["[areas.A] path", 'not ""']),
    ('[server]\nport = 1\n\n[areas.A]\naccess = "R"\n', 4,
     ["[areas.A]", "the storage area has no path", 'add path = "<folder>"']),
    ('[areas.A]\npath = "a"\nacess = "R"\n', 3,
     ["[areas.A] acess", "unknown key", "did you mean 'access'", "path, access, max_studies"]),
    ('[areas.THIS_IS_FAR_TOO_LONG]\npath = "a"\n', 1,
     ["[areas.THIS_IS_FAR_TOO_LONG]", "the called AE title of the area", "at most 16"]),
    ('[areas."A B"]\npath = "a"\nmax_studies = "x"\n', 3, ['[areas."A B"] max_studies']),
    ('[areas.A]\npath = "a"\n[areas."A "]\npath = "b"\n', 3,
     ["[areas.\"A \"]", "a second section for the AE title 'A'", "its own AE title"]),
    ("[areas]\nA = 5\n", 2, ["[areas.A]", "a storage area must be a section"]),
    ("areas = 5\n", 1, ["areas must be a set of sections", "[areas.RESEARCH]"]),
    ("[area.A]\npath = 1\n", 1, ["[area]", "unknown section", "did you mean 'areas'",
                                 "[areas.<AE title>]"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "phrases"), ERRORS)
def test_a_bad_area_names_the_file_the_line_the_key_and_the_fix(tmp_path, text, line, phrases):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(NativeConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert caught.value.line == line, message
    assert message.startswith(f"{path}:{line}: "), message
    for phrase in phrases:
        assert phrase in message, message
    assert "; " in message  # then what to write


def test_the_printed_areas_read_back_the_same(tmp_path):
    path = tmp_path / "pacsbox.toml"
    path.write_text(AREAS)
    config = load(path)
    text = dumps(config)
    assert '[areas."ACME CT"]\n' in text and 'max_bytes_per_study = "1gb"\n' in text
    assert "max_studies = 0  # no limit\n" in text and 'peers = ["ANY"]\n' in text
    assert parse(text).areas == config.areas


def test_the_choices_are_those_of_the_machinery_serve_reuses():
    from pacsbox.services import quota

    assert quota.ON_MAX_STUDIES == ON_MAX_STUDIES
    assert tuple(access.value for access in Access) == AREA_ACCESS


def test_the_documented_areas_load():
    """The commented section of docs/pacsbox.example.toml, uncommented, and the one in
    docs/archive.md are valid areas."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    example = (docs / "pacsbox.example.toml").read_text()
    commented = example[example.index("# [areas.RESEARCH]") :].splitlines()
    area = parse("\n".join(line.removeprefix("# ") for line in commented)).areas["RESEARCH"]
    archive = (docs / "archive.md").read_text()
    block = archive.split("```toml\n[areas.RESEARCH]\n", 1)[1].split("```", 1)[0]
    assert parse("[areas.RESEARCH]\n" + block).areas["RESEARCH"] == area
    assert (area.max_studies, area.max_bytes_per_study) == (100, 1 << 30)
    assert load(docs / "pacsbox.example.toml").areas == {}  # commented out: serve's default
