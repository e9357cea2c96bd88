"""mlops: version data, models and pipelines next to your Git commits."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_model(reference: str) -> Any:
    """The model ``NAME@ALIAS`` or ``NAME:VERSION`` of the registry, loaded with joblib after
    checking its content hash (fetched from the default remote when the cache lacks it)."""
    from mlops.registry.content import load_model as load

    return load(reference)
