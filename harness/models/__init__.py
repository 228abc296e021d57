"""Model resolution, loading and the tiny in-code test models."""
