"""bench_speech.py on the CPU at tiny sizes: the student's runs through the pipeline's handler and batches, and a
causal LM's, each with its tokens and rate (the CUDA runs are the same code with a GPU's sizes)."""

import json

from scripts.bench import bench_speech
from tests.text_to_token.causal_lms import make_causal_lm


def test_the_student_and_a_causal_lm_on_cpu(tmp_path, capsys):
    lm = make_causal_lm(tmp_path / "lm", max_units_per_character=1.0)
    bench_speech.main(
        [
            "--devices",
            "cpu",
            "--spans",
            "30",
            "--single-spans",
            "3",
            "--budgets",
            "256",
            "1024",
            "--causal-lm",
            str(lm),
            "--lm-batches",
            "1",
            "4",
            "--lm-batch-count",
            "2",
            "--json",
            str(tmp_path / "figures.json"),
        ]
    )
    runs = json.loads((tmp_path / "figures.json").read_text())["runs"]
    assert [(r["model"].split()[0], r["mode"]) for r in runs] == [
        ("student", "one-at-a-time"),
        ("student", "batched"),
        ("student", "batched"),
        ("causal", "one-at-a-time"),
        ("causal", "batched"),
    ]
    assert runs[0]["batches"] == 3 and [r["batches"] for r in runs[3:]] == [2, 2]
    assert all(r["speech_tokens"] > 0 and r["speech_tokens_per_s"] > 0 for r in runs)
    assert "speech tokens/s" in capsys.readouterr().out


def test_cuda_without_a_gpu_is_refused_in_one_line(monkeypatch):
    import pytest
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        bench_speech.main(["--devices", "cuda"])
