"""Inputs checked before any work (pipelines/inputs.py): unreadable files end the build in one line naming them,
or are left out and listed with --skip-unreadable; special files are always refused. Inputs with no documents
make an empty dataset, with a warning."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.pipelines.cli import main
from vocaloom.pipelines.verify import verify

pytestmark = pytest.mark.integration


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"id": "a", "text": "kept, and read"}\n')
    (tmp_path / "in" / "b.jsonl").mkdir()  # a directory named like an input (a pattern matches only files)
    return tmp_path / "in"


def build(capsys, output, *args) -> tuple[int, str]:
    status = main(["build", *TEXT_ONLY, *RUNNER, "--output", str(output), *map(str, args)])
    return status, capsys.readouterr().err


def test_an_unreadable_input_ends_the_build_in_one_line(capsys, tmp_path, corpus):
    status, err = build(capsys, tmp_path / "ds", "--input", corpus / "*.jsonl", "--input", corpus / "b.jsonl")
    assert status == 2 and err.count("\n") == 1
    assert f"input {corpus / 'b.jsonl'} cannot be read: it is a directory; pass --skip-unreadable" in err
    assert not (tmp_path / "ds").exists()


def test_skip_unreadable_builds_without_it_and_lists_it(capsys, tmp_path, corpus):
    status, _ = build(
        capsys, tmp_path / "ds", "--input", corpus / "*.jsonl", "--input", corpus / "b.jsonl", "--skip-unreadable"
    )
    assert status == 0 and verify(str(tmp_path / "ds")) == []
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["inputs_unreadable"] == [{"path": str(corpus / "b.jsonl"), "reason": "it is a directory"}]
    assert [i["path"] for i in manifest["inputs"]] == [str(corpus / "a.jsonl")]
    assert manifest["counts"]["records_read"] == 1  # read; too short to fill a row of its own


def test_a_fifo_input_is_refused_whatever_the_flags(capsys, tmp_path, corpus):
    os.mkfifo(corpus / "pipe.jsonl")
    status, err = build(capsys, tmp_path / "ds", "--input", corpus / "pipe.jsonl", "--skip-unreadable")
    assert status == 2 and err.count("\n") == 1 and "is not a regular file (a FIFO or device)" in err


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_folder_input_reads_every_known_file_under_it(capsys, tmp_path, corpus, slash):
    (corpus / "deeper" / "still").mkdir(parents=True)
    (corpus / "deeper" / "c.txt").write_text("a plain text document\n")
    (corpus / "deeper" / "still" / "d.jsonl").write_text('{"id": "d", "text": "found at any depth"}\n')
    (corpus / "notes.md").write_text("not an input: no known extension\n")
    status, _ = build(capsys, tmp_path / "ds", "--input", f"{corpus}{slash}")
    assert status == 0 and verify(str(tmp_path / "ds")) == []
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == [
        str(corpus / name) for name in ("a.jsonl", "deeper/c.txt", "deeper/still/d.jsonl")
    ]  # b.jsonl/: a folder
    assert manifest["counts"]["records_read"] == 3 and manifest["inputs_unreadable"] == []


def test_a_folder_with_no_known_file_ends_the_build_in_one_line(capsys, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "README").write_text("nothing to read\n")
    status, err = build(capsys, tmp_path / "ds", "--input", tmp_path / "in")
    assert status == 2 and err == (
        f"vocaloom: error: input folder {str(tmp_path / 'in')!r} holds no .jsonl, "
        ".jsonl.gz, .jsonl.zst, .parquet, .txt file\n"
    )
    assert not (tmp_path / "ds").exists()


def test_a_dangling_link_in_a_folder_input_is_named(capsys, tmp_path, corpus):
    (corpus / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (corpus / "gone.md").symlink_to(tmp_path / "nowhere.md")  # not an input: no word about it
    status, err = build(capsys, tmp_path / "ds", "--input", corpus)
    assert status == 2 and err == (
        f"vocaloom: error: input {corpus / 'gone.jsonl'} cannot be read: No such file or "
        "directory (a symbolic link); pass --skip-unreadable to build without it\n"
    )


@pytest.mark.parametrize(
    "name, write",
    [
        ("empty.jsonl", lambda path: path.write_text("")),
        (
            "no-rows.parquet",
            lambda path: pq.write_table(
                pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), path
            ),
        ),
        ("blank.jsonl", lambda path: path.write_text('{"id": "a", "text": "  "}\n{"id": "b", "text": ""}\n')),
    ],
)
def test_an_input_with_no_documents_builds_an_empty_dataset_and_says_so(capsys, tmp_path, name, write):
    write(tmp_path / name)
    status, err = build(capsys, tmp_path / "ds", "--input", tmp_path / name)
    assert status == 0 and "vocaloom: warning: the dataset is empty" in err
    assert verify(str(tmp_path / "ds")) == []
    status, err = build(capsys, tmp_path / "ds", "--input", tmp_path / name)
    assert status == 2 and "already holds a complete dataset" in err  # as any complete dataset is
