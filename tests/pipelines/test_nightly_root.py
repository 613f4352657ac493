"""A nightly root's naming and retention as plain arithmetic (pipelines/nightly_root.py); the roots themselves run
in tests/pipelines/test_nightly.py (disk) and tests/pipelines/test_object_stores.py (buckets)."""

from datetime import UTC, datetime

from vocaloom.pipelines.nightly_root import build_name, to_prune

NOW = datetime(2026, 12, 4, 3, 0, 0, tzinfo=UTC)


def test_build_names_sort_in_time_and_a_second_run_in_one_second_gets_a_suffix():
    assert build_name(NOW, set()) == "2026-12-04T030000Z"
    assert build_name(NOW, {"2026-12-04T030000Z"}) == "2026-12-04T030000Z.1"
    assert build_name(NOW, {"2026-12-04T030000Z.failed", "2026-12-04T030000Z.1"}) == "2026-12-04T030000Z.2"


def test_retention_keeps_the_newest_complete_builds_and_latest():
    names = {"a", "b", "c", "d", "e.failed", "f"}
    complete = {"a", "b", "c", "d"}  # f: killed before its manifest
    assert to_prune(names, complete, latest="d", keep=2) == ["a", "b", "e.failed", "f"]
    assert to_prune(names, complete, latest="a", keep=1) == ["b", "c", "e.failed", "f"]  # LATEST is never removed
    assert to_prune(names, complete, latest=None, keep=9) == ["e.failed", "f"]
