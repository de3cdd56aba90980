"""BUA (arXiv 2604.23578): an LLM aligned with behaviour-sequence embeddings through a curriculum."""
