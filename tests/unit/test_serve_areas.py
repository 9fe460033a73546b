"""`pacsbox serve`'s storage areas (services/serve_areas.py): the TOML areas as dcmqrscp's
AETable lines, the admission rules (an area's peers; the default area's [server] checks),
each called AE title's query options and files, and serve's ServerConfig with and without
areas."""

from __future__ import annotations

from pathlib import Path

from pacsbox.archive.query import DEFAULT_AREA, QueryOptions
from pacsbox.cli import serve
from pacsbox.config.dcmqrscp import Access
from pacsbox.config.native import ServeConfig, load
from pacsbox.dimse import CStoreRQ
from pacsbox.net.server import RJ_CALLED_AE, RJ_CALLING_AE
from pacsbox.services.areas import NOT_AUTHORIZED, AreaService
from pacsbox.services.serve_areas import (
    NO_STUDY_LIMIT,
    AreaSelection,
    AreaStorage,
    SelectedAreaStorageSCP,
    area_admission,
    area_locate,
    area_options,
    area_table,
)
from pacsbox.ul.pdu import AAssociateRQ
from tests.unit.test_native_config_areas import AREAS


def served(text: str, tmp_path: Path) -> ServeConfig:
    path = tmp_path / "pacsbox.toml"
    path.write_text(text)
    return load(path)


def rq(calling: str, called: str) -> AAssociateRQ:
    return AAssociateRQ(calling_ae_title=calling, called_ae_title=called, presentation_contexts=[])


class Assoc:
    def __init__(self, called: str) -> None:
        self.rq = rq("ANYONE", called)


def test_the_areas_become_aetable_lines(tmp_path):
    config = served(AREAS, tmp_path)
    table = area_table(config)
    research = table.area_for("RESEARCH")
    assert research.path == str(tmp_path / "research")
    assert (research.access, research.max_studies, research.max_bytes_per_study) == (
        Access.RW, 100, 1 << 30,
    )  # fmt: skip
    assert research.peers == {"CT_SCANNER", "WORKSTATION"}
    assert (research.origin, research.line, research.on_max_studies) == ("[areas]", 4, "refuse")
    dropbox = table.area_for("DROPBOX")
    assert (dropbox.max_studies, dropbox.max_bytes_per_study) == (NO_STUDY_LIMIT, -1)
    assert table.area_for("PACS") is None  # the default area is not in the table
    assert table.source == str(tmp_path / "pacsbox.toml")


def test_admission_area_peers_and_the_default_area(tmp_path):
    text = AREAS.replace('ae_title = "PACS"', 'ae_title = "PACS"\ncalling_ae_titles = ["CT1"]')
    config = served(text, tmp_path)
    accept = area_admission(config, AreaSelection(area_table(config), "PACS"))
    assert accept(rq("CT_SCANNER", "RESEARCH"), None) is None
    assert accept(rq("CT1", "RESEARCH"), None) == RJ_CALLING_AE  # not among its peers
    assert accept(rq("ANYONE", "ACME CT"), None) is None  # ANY
    # the default area: [server] calling_ae_titles
    assert accept(rq("CT1", "PACS"), None) is None
    assert accept(rq("CT_SCANNER", "PACS"), None) == RJ_CALLING_AE
    # another called AE title lands in the default area, unless require_called_ae
    assert accept(rq("CT1", "ELSEWHERE"), None) is None
    strict = served(text.replace("[server]\n", "[server]\nrequire_called_ae = true\n"), tmp_path)
    accept = area_admission(strict, AreaSelection(area_table(strict), "PACS"))
    assert accept(rq("CT1", "ELSEWHERE"), None) == RJ_CALLED_AE
    assert accept(rq("CT1", "PACS"), None) is None
    assert accept(rq("CT_SCANNER", "RESEARCH"), None) is None


def test_query_options_and_files_by_area(tmp_path):
    config = served(AREAS, tmp_path)
    table = area_table(config)
    find = area_options(AreaSelection(table, "PACS"), AreaService.QUERY)
    assert find(Assoc("RESEARCH")) == QueryOptions("RESEARCH", area="RESEARCH")
    assert find(Assoc("PACS")) == QueryOptions("PACS", area=DEFAULT_AREA)
    assert find(Assoc("ELSEWHERE")) == QueryOptions("PACS", area=DEFAULT_AREA)
    status, comment = find(Assoc("DROPBOX"))  # W: no query
    assert status == NOT_AUTHORIZED and "area DROPBOX (line 17) is write-only (W)" in comment
    retrieve = area_options(AreaSelection(table, "PACS"), AreaService.RETRIEVE)
    assert retrieve(Assoc("ACME CT")) == QueryOptions("ACME CT", area="ACME CT")
    locate = area_locate(table, tmp_path / "data" / "files")
    assert locate(None, "1.2/CT.3") == tmp_path / "data" / "files" / "1.2" / "CT.3"
    assert locate("RESEARCH", "CT.3") == tmp_path / "research" / "CT.3"
    assert locate("GONE", "CT.3") is None


def test_serve_without_areas_builds_todays_server(tmp_path):
    zero = serve.server_config(ServeConfig(), None)
    assert zero.accept is None and type(zero.handlers[CStoreRQ]).__name__ == "StorageSCP"
    config = served(AREAS.replace('ae_title = "PACS"', 'ae_title = "PACS"\nrequire_called_ae = true'),
                    tmp_path)  # fmt: skip
    with_areas = serve.server_config(config, None)
    store = with_areas.handlers[CStoreRQ]
    assert isinstance(store, AreaStorage)
    assert store._store(Assoc("RESEARCH")) is store.areas
    assert store._store(Assoc("PACS")) is store.default  # data/files, rows without an area
    assert store._store(Assoc("OTHER")) is store.default
    assert store.answers_now  # both stores answer from the receive callback; so does it
    files = (config.storage.data / "files").resolve()
    assert store.default.area is None and store.default.output_dir == files
    # a row of the default area is found from an area's store too (a re-sent instance's old
    # copy is deleted there)
    research = store.areas._stores["RESEARCH"]
    assert research._locate(None, "1.2/CT.3") == files / "1.2" / "CT.3"
    assert research._locate("RESEARCH", "CT.3") == tmp_path / "research" / "CT.3"
    # the areas' admission replaces the server's own checks, which would refuse RESEARCH
    assert with_areas.accept is not None and not with_areas.require_called_ae
    assert with_areas.calling_ae_titles is None
    assert with_areas.accept(rq("CT_SCANNER", "RESEARCH"), None) is None
    assert with_areas.accept(rq("CT_SCANNER", "OTHER"), None) == RJ_CALLED_AE


def test_our_ae_title_listed_as_an_area_replaces_the_default_area(tmp_path):
    text = AREAS + '\n[areas.PACS]\npath = "main"\nmax_studies = 5\npeers = ["CT1"]\n'
    config = served(text.replace("[server]\n", '[server]\ncalling_ae_titles = ["MR1"]\n'),
                    tmp_path)  # fmt: skip
    selection = AreaSelection(area_table(config), "PACS")
    assert selection.area_of("PACS").path == str(tmp_path / "main")
    assert selection.area_of("ELSEWHERE") is selection.area_of("PACS")  # taken for ours
    assert selection.area_of("RESEARCH").ae_title == "RESEARCH"
    find = area_options(selection, AreaService.QUERY)
    assert find(Assoc("ELSEWHERE")) == QueryOptions("PACS", area="PACS")
    accept = area_admission(config, selection)
    assert accept(rq("CT1", "PACS"), None) is None  # its section's peers...
    assert accept(rq("MR1", "PACS"), None) == RJ_CALLING_AE  # ...not [server]'s
    assert accept(rq("MR1", "ELSEWHERE"), None) == RJ_CALLING_AE
    store = serve.server_config(config, None).handlers[CStoreRQ]
    assert isinstance(store.areas, SelectedAreaStorageSCP)
    assert store._store(Assoc("ELSEWHERE")) is store.areas
    assert store.areas._area(Assoc("ELSEWHERE")).ae_title == "PACS"
