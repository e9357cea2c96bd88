"""mlops: version data, models and pipelines next to your Git commits."""

from __future__ import annotations

__version__ = "0.1.0"
