"""Text-to-token models (GLM-4-Voice's route): text in, discrete speech-unit ids out.

Importable without Beam: training scripts and the pipeline's model handler share these definitions.
"""
