"""The one test of where a path lives (schemas/paths.py), and what to install for a filesystem that is missing."""

import pytest

from vocaloom.schemas.paths import is_local, latest_target, missing_filesystem, plain, scheme


@pytest.mark.parametrize(
    "path, found, local",
    [
        ("/data/corpus.jsonl", None, True),
        ("relative/dir", None, True),
        ("file:///data/x", "file", True),
        ("FILE:///data/x", "file", True),
        ("gs://bucket/ds", "gs", False),
        ("s3://bucket/ds", "s3", False),
        ("hdfs://name/x", "hdfs", False),
        ("bundled:tokenizer", None, True),
        ("C:/no/scheme", None, True),
    ],
)
def test_scheme_and_locality(path, found, local):
    assert (scheme(path), is_local(path)) == (found, local)


def test_file_urls_become_plain_paths_and_others_stay():
    assert plain("file:///data/x") == "/data/x" and plain("/data/x") == "/data/x"
    assert plain("gs://bucket/x") == "gs://bucket/x"


def test_a_missing_filesystem_names_the_extra_to_install():
    assert (
        missing_filesystem("gs://b/ds")
        == "gs://b/ds: gs:// needs vocaloom's gcp extra: pip install 'vocaloom[pipeline,gcp]'"
    )
    assert "vocaloom[pipeline,aws]" in missing_filesystem("s3://b/ds")
    assert "no filesystem for az://" in missing_filesystem("az://b/ds")


def test_latest_names_a_build_under_its_root_and_nothing_else():
    assert latest_target(b"builds/2026-12-04T030000Z\n") == "builds/2026-12-04T030000Z"
    assert latest_target(b"builds/2026-12-04T030000Z.1") == "builds/2026-12-04T030000Z.1"
    for planted in (b"../other/ds", b"/etc", b"builds/../../x", b"builds/a/b", b"", b"builds/", b"gs://b/ds"):
        with pytest.raises(ValueError, match="not builds/<stamp>"):
            latest_target(planted)
