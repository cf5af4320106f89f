"""The same input gives the same outputs, byte for byte, as when they were last known right
(`tests/digest.py`): the routed files of two `county` quarters and every warehouse row. A
speed-up that changes a warning, a status, a count or a byte of a routed file fails here."""

from __future__ import annotations

from tests import digest


def test_a_county_half_year_gives_the_recorded_routed_files_and_warehouse_rows(tmp_path):
    found = digest.digests(digest.run(tmp_path))
    differ = digest.compare(found, digest.stored())
    assert differ == {"changed": [], "new": [], "gone": []}, (
        f"outputs differ: {differ} (python -m tests.digest lists them)"
    )
    assert any(name.endswith("county_coordination/350102.csv") for name in found)
