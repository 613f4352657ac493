"""vocaloom: synthetic interleaved speech-text pre-training corpora, built with Apache Beam.

Installed, everything imports under this one name; the repository keeps its top-level folders (`pipelines/`,
`transforms/`, `schemas/`, `loader/`, `text_to_token/`, `assets/`), which setup.py maps to `vocaloom.<folder>`.
This folder holds only what belongs to the package as a whole. Importing it imports nothing else: the training-side
reader (`vocaloom.loader`) works without Apache Beam.
"""

__version__ = "0.2.0"
