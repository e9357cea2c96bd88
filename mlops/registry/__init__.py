"""Model registry: immutable versions, aliases with gated promotion, history, lineage.

Records live in Git as annotated tags (see ``tags.py``); content lives in the
object store. Import what you need from the submodules; the names below are
the public API.
"""

from __future__ import annotations

from mlops.registry.content import GotModel, get_model, load_model, registry_objects, resolve
from mlops.registry.history import (
    HistoryEntry,
    ModelSummary,
    VersionView,
    history,
    list_models,
    show,
)
from mlops.registry.lineage import LineageNode, UsedBy, lineage, used_by
from mlops.registry.promote import AliasMove, Gate, model_settings, promote, rollback
from mlops.registry.records import AliasEvent, ModelVersion
from mlops.registry.register import register_model

__all__ = [
    "AliasEvent",
    "AliasMove",
    "Gate",
    "GotModel",
    "HistoryEntry",
    "LineageNode",
    "ModelSummary",
    "ModelVersion",
    "UsedBy",
    "VersionView",
    "get_model",
    "history",
    "lineage",
    "list_models",
    "load_model",
    "model_settings",
    "promote",
    "register_model",
    "registry_objects",
    "resolve",
    "rollback",
    "show",
    "used_by",
]
