"""The text path: SentencePiece tokenisation, exact dedup, and Dataset Decomposition (Pouransari et al. 2024)."""
