"""`--context related`: document embeddings and In-Context Pretraining's order (Shi et al. 2023)."""
