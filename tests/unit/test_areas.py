"""Access rights of dcmqrscp storage areas (AETable R, RW, W): what each allows, and the
status and comment a refusal is answered with."""

from __future__ import annotations

import pytest

from pacsbox.config.dcmqrscp import parse
from pacsbox.services.areas import NOT_AUTHORIZED, AreaService, access_refusal, area_allows

CONFIG = parse(
    "AETable BEGIN\n"
    "READER /tmp/r R (10, 1mb) ANY\n"
    "BOTH /tmp/rw RW (10, 1mb) ANY\n"
    "WRITER /tmp/w W (10, 1mb) ANY\n"
    "A_VERY_LONG_AE16 /tmp/l W (10, 1mb) ANY\n"
    "AETable END\n"
)

ALLOWED = {
    "READER": {AreaService.QUERY, AreaService.RETRIEVE},
    "BOTH": {AreaService.STORE, AreaService.QUERY, AreaService.RETRIEVE},
    "WRITER": {AreaService.STORE},
}


@pytest.mark.parametrize("service", list(AreaService))
@pytest.mark.parametrize("ae_title", list(ALLOWED))
def test_area_allows_what_its_access_says(ae_title, service):
    area = CONFIG.area_for(ae_title)
    assert area_allows(area, service) is (service in ALLOWED[ae_title])
    refusal = access_refusal(area, service)
    assert (refusal is None) is (service in ALLOWED[ae_title])


def test_refusal_names_the_area_its_line_and_the_fix():
    assert access_refusal(CONFIG.area_for("READER"), AreaService.STORE) == (
        NOT_AUTHORIZED,
        "area READER (line 2) is read-only (R); make it RW",
    )
    status, comment = access_refusal(CONFIG.area_for("WRITER"), AreaService.QUERY)
    assert (status, comment) == (
        NOT_AUTHORIZED,
        "area WRITER (line 4) is write-only (W); make it RW",
    )


def test_refusal_comments_fit_the_error_comment():
    # (0000,0902) Error Comment is LO: 64 characters at most (PS3.7 E.1)
    status, comment = access_refusal(CONFIG.area_for("A_VERY_LONG_AE16"), AreaService.RETRIEVE)
    assert status == NOT_AUTHORIZED and len(comment) <= 64
    assert "line 5" in comment and "make it RW" in comment
    status, comment = access_refusal(None, AreaService.STORE)
    assert status == NOT_AUTHORIZED and len(comment) <= 64
