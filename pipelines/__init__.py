"""The Beam pipelines and the `vocaloom` command."""
