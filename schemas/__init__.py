"""What vocaloom promises its users: options, vocabulary, shard layout and manifest (docs/format.md).

Nothing here imports Beam, so the training-side reader can use these definitions too.
"""
