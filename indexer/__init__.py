"""Images -> VGG16 features -> FAISS indexes, and the analyses in feature space (issue 3 on)."""
