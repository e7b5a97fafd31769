"""RAG data pipeline and corpus health (owned by the RAG work)."""
