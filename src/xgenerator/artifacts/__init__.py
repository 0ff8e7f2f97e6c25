"""The blob store for datasets, models, checkpoints and job results (local directory or S3)."""

from xgenerator.artifacts.store import ArtifactStore, open_store

__all__ = ["ArtifactStore", "open_store"]
