"""Pipelines: ``mlops.yaml`` stages, their DAG, the lock, the runner and the run cache."""

from __future__ import annotations

import os

PIPELINE_FILE = "mlops.yaml"


def has_pipeline(root: os.PathLike[str] | str) -> bool:
    """Whether the repository at ``root`` declares a pipeline (without importing its code)."""
    return os.path.isfile(os.path.join(root, PIPELINE_FILE))
