"""The bench's 1M-instance index (bench/fill_index.py) writes rows straight to the tables,
past Index.add: a small one, filled on both backends, must be an index pacsbox reads as its
own (a schema change that fill_index misses fails here, not in a bench run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.fill_index import fill

from pacsbox.archive import IndexStats
from tests.archive.test_index import Database


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_filled_index_is_one_pacsbox_reads(backend: str, tmp_path: Path):
    db = Database(backend, tmp_path)
    try:
        result = fill(db.url, 300, 20, quiet=True)
        assert (result.studies, result.instances) == (20, 300)
        with db.open() as index:
            stats = index.stats()
            assert (stats.studies, stats.instances) == (20, 300)
            assert stats == IndexStats(result.patients, 20, result.series, 300)
            uid = next(iter(index.studies_of_area(None))).study_instance_uid
            assert index.get_study(uid).number_of_instances > 0
    finally:
        db.drop()
