"""corpus_sources.missing_packages: a script that reads Debian's packages stops before it starts, in one line that
names every package it lacks."""

import pytest

from scripts.bench import prepare_bench_corpus
from scripts.recipes import corpus_sources, make_eval_sets, teacher_text


def test_names_each_absent_package(tmp_path, monkeypatch):
    monkeypatch.setitem(corpus_sources.PACKAGES, "fortunes", (tmp_path / "absent").is_dir)
    monkeypatch.setitem(corpus_sources.PACKAGES, "dict-devil", (tmp_path / "absent.dict.dz").is_file)
    monkeypatch.setitem(corpus_sources.PACKAGES, "tzdata", tmp_path.is_dir)
    assert corpus_sources.missing_packages("fortunes", "tzdata", "dict-devil") == (
        "not installed: apt-get install fortunes dict-devil"
    )
    assert corpus_sources.missing_packages("tzdata") is None


def test_every_source_names_a_known_package():
    assert {*teacher_text.PACKAGES, *teacher_text.OUT_OF_TRAINING_PACKAGES} == set(corpus_sources.PACKAGES)


@pytest.mark.parametrize(
    ("main", "argv"),
    [(make_eval_sets.main, ["--out"]), (prepare_bench_corpus.main, ["--scale", "1", "--out"])],
    ids=["make_eval_sets", "prepare_bench_corpus"],
)
def test_a_script_stops_before_work(main, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(corpus_sources.PACKAGES, "bible-kjv", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        main([*argv, str(tmp_path / "out")])
    assert stopped.value.code == 2
    assert "not installed: apt-get install bible-kjv" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "out").exists()
