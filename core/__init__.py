"""The core: the workspace folder and its owners, the catalog, ingest and normalisation.

Knows nothing of TensorFlow, FAISS or the web: the indexer, the trainer, the app and the CLI all
stand on it (docs/architecture.md).
"""
