"""Reading the registry: models, one version with its aliases, and the audit history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.core.repo import Repo
from mlops.registry.records import ModelVersion, split_reference
from mlops.registry.tags import model_registry, read_registry, resolve


@dataclass(frozen=True)
class ModelSummary:
    """A registered model: how many versions, the latest, and who holds each alias."""

    name: str
    versions: int
    latest: ModelVersion
    aliases: dict[str, str]  # alias -> version label

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest.label,
            "latest_time": self.latest.time,
            "aliases": self.aliases,
        }


@dataclass(frozen=True)
class VersionView:
    """A version and the aliases that point at it now."""

    version: ModelVersion
    aliases: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "aliases": list(self.aliases)}


@dataclass(frozen=True)
class HistoryEntry:
    """One registration or alias move: what, when, who, why."""

    time: str
    action: str  # "register", "promote" or "rollback"
    model: str
    version: str  # label
    author: str
    alias: str | None = None
    previous: str | None = None  # label of the alias's previous holder
    reason: str = ""  # the promotion's reason, or the version's description
    forced: bool = False
    tag: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "action": self.action,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "previous": self.previous,
            "author": self.author,
            "reason": self.reason,
            "forced": self.forced,
            "tag": self.tag,
        }


def list_models(repo: Repo) -> list[ModelSummary]:
    """Every registered model, by name."""
    return [
        ModelSummary(
            name,
            len(registry.versions),
            registry.latest,
            {alias: v.label for alias, v in registry.aliases().items()},
        )
        for name, registry in read_registry(repo.root).items()
        if registry.versions
    ]


def show(repo: Repo, reference: str) -> VersionView:
    """``NAME`` (latest), ``NAME:VERSION`` or ``NAME@ALIAS`` with the aliases it holds."""
    version = resolve(repo, reference)
    registry = model_registry(repo.root, split_reference(reference)[0])
    return VersionView(version, tuple(registry.held_by(version)))


def history(repo: Repo, model: str) -> list[HistoryEntry]:
    """Every registration and alias move of ``model``, oldest first."""
    registry = model_registry(repo.root, model)
    entries = [
        HistoryEntry(v.time, "register", model, v.label, v.author, reason=v.description, tag=v.tag)
        for v in registry.versions
    ]
    for event in registry.events:
        previous = registry.by_id(event.previous).label if event.previous else None
        entries.append(
            HistoryEntry(
                event.time,
                event.action,
                model,
                registry.by_id(event.version).label,
                event.author,
                alias=event.alias,
                previous=previous,
                reason=event.reason,
                forced=event.forced,
                tag=event.tag,
            )
        )
    return sorted(entries, key=lambda e: (e.time, e.tag))
