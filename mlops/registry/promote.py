"""Aliases: gated promotion and rollback, each move one new tag.

The gate: the version's recorded ``after`` checks must have passed, and for
``production`` its metrics must be no worse than the current holder's on the
metrics ``mlops.yaml`` names under ``models: {NAME: {compare: {METRIC: higher|lower}}}``.
``force`` (with a reason) overrides the gate and is recorded as such.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.repo import Repo, file_lock
from mlops.errors import ConfigError, RegistryError
from mlops.registry.records import (
    SCHEMA,
    AliasEvent,
    ModelRegistry,
    ModelVersion,
    check_name,
    event_tag,
    record_id,
)
from mlops.registry.tags import create_tag, identity, model_registry, now

PRODUCTION = "production"
DIRECTIONS = ("higher", "lower")
MODEL_KEYS = ("compare",)


@dataclass(frozen=True)
class MetricComparison:
    """One declared metric of the candidate against the current production version."""

    metric: str
    direction: str  # "higher" or "lower" is better
    candidate: Any
    current: Any
    ok: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "candidate": self.candidate,
            "current": self.current,
            "ok": self.ok,
            "note": self.note,
        }


@dataclass(frozen=True)
class Gate:
    """What the promotion gate found; ``refusals`` is empty when it lets the version through."""

    checks: str  # "passed", "failed" or "none" (no after checks were recorded)
    against: str | None  # the production version compared with
    metrics: tuple[MetricComparison, ...]
    refusals: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "against": self.against,
            "metrics": [m.to_dict() for m in self.metrics],
            "refusals": list(self.refusals),
        }


@dataclass(frozen=True)
class AliasMove:
    """The outcome of a promotion or rollback; ``event`` is None when nothing moved."""

    model: str
    alias: str
    version: ModelVersion
    previous: ModelVersion | None
    event: AliasEvent | None
    gate: Gate | None = None

    @property
    def moved(self) -> bool:
        return self.event is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version.label,
            "previous": self.previous.label if self.previous else None,
            "moved": self.moved,
            "forced": bool(self.event and self.event.forced),
            "event": self.event.to_dict() if self.event else None,
            "gate": self.gate.to_dict() if self.gate else None,
        }


def promote(
    repo: Repo,
    model: str,
    version: str,
    alias: str,
    reason: str | None = None,
    force: bool = False,
) -> AliasMove:
    """Point ``alias`` at ``version`` if the gate allows it (or ``force``, with a reason)."""
    check_name(alias, "alias")
    reason = (reason or "").strip()
    if force and not reason:
        raise RegistryError("a forced promotion needs a reason: add --reason TEXT")
    registry = model_registry(repo.root, model)
    chosen = registry.resolve(version)
    current = registry.holder(alias)
    if current is not None and current.id == chosen.id:
        return AliasMove(model, alias, chosen, current, None)
    gate = evaluate_gate(repo.root, registry, chosen, alias)
    if gate.refusals and not force:
        more = f" (and {len(gate.refusals) - 1} more)" if len(gate.refusals) > 1 else ""
        raise RegistryError(
            f"cannot promote {chosen.ref} to {alias}: {gate.refusals[0]}{more}; "
            "fix it, or override with --force --reason TEXT"
        )
    event = _record(repo, registry, alias, "promote", chosen, current, reason, force, gate)
    return AliasMove(model, alias, chosen, current, event, gate)


def rollback(
    repo: Repo, model: str, alias: str = PRODUCTION, reason: str | None = None
) -> AliasMove:
    """Return ``alias`` to the version that held it before its last promotion."""
    check_name(alias, "alias")
    registry = model_registry(repo.root, model)
    current = registry.resolve_alias(alias)
    previous = registry.previous_holder(alias)
    if previous is None:
        raise RegistryError(
            f"{model}@{alias} has no earlier holder to roll back to (held by {current.ref})"
        )
    reason = (reason or "").strip()
    event = _record(repo, registry, alias, "rollback", previous, current, reason, False, None)
    return AliasMove(model, alias, previous, current, event)


def _record(
    repo: Repo,
    registry: ModelRegistry,
    alias: str,
    action: str,
    version: ModelVersion,
    previous: ModelVersion | None,
    reason: str,
    forced: bool,
    gate: Gate | None,
) -> AliasEvent:
    seen = max((e.seq for e in registry.alias_events(alias)), default=0)
    # Compare and swap: the decision (and its gate) was made on the alias as it was read;
    # if another promotion moved it meanwhile, this one is refused, not recorded on top.
    with file_lock(repo.tmp_dir / "registry.lock", 30, "another registry change is under way"):
        fresh = model_registry(repo.root, registry.name)
        if max((e.seq for e in fresh.alias_events(alias)), default=0) != seen:
            holder = fresh.holder(alias)
            raise RegistryError(
                f"{registry.name}@{alias} moved meanwhile (now "
                f"{holder.ref if holder else 'unset'}); nothing was recorded: run it again "
                "to judge it against the new holder"
            )
        body: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": "alias",
            "model": registry.name,
            "alias": alias,
            "seq": seen + 1,
            "action": action,
            "version": version.id,
            "number": version.number,
            "previous": previous.id if previous else None,
            "reason": reason,
            "forced": forced,
            "gate": gate.to_dict() if gate else {},
            "author": identity(repo.root),
            "time": now(),
            "nonce": secrets.token_hex(4),
        }
        rid = record_id(body)
        tag = event_tag(registry.name, alias, seen + 1, rid)
        verb = "roll back" if action == "rollback" else "promote"
        summary = f"mlops: {verb} {registry.name}@{alias} to v{version.label}"
        create_tag(repo.root, tag, summary, body, version.target)
    events = model_registry(repo.root, registry.name).alias_events(alias)
    return next(e for e in events if e.id == rid)


def evaluate_gate(root: Path, registry: ModelRegistry, version: ModelVersion, alias: str) -> Gate:
    """Whether ``version`` may hold ``alias``: its checks, and for production its metrics."""
    state, problems = version.checks_state()
    refusals = [f"its after checks failed ({problems[0]})"] if state == "failed" else []
    comparisons: list[MetricComparison] = []
    current = registry.holder(alias) if alias == PRODUCTION else None
    if current is not None:
        compare = model_settings(root).get(registry.name, {}).get("compare", {})
        for metric, direction in compare.items():
            found = _compare(version, current, metric, direction)
            comparisons.append(found)
            if not found.ok:
                refusals.append(found.note)
    return Gate(state, current.ref if current else None, tuple(comparisons), tuple(refusals))


def _compare(
    version: ModelVersion, current: ModelVersion, metric: str, direction: str
) -> MetricComparison:
    mine, theirs = metric_value(version, metric), metric_value(current, metric)
    if not _is_number(mine):
        note = f"{version.ref} has no numeric metric {metric!r} to compare with {current.ref}"
        return MetricComparison(metric, direction, mine, theirs, False, note)
    if not _is_number(theirs):
        note = f"{current.ref} has no numeric {metric!r}: not compared"
        return MetricComparison(metric, direction, mine, theirs, True, note)
    worse = mine < theirs if direction == "higher" else mine > theirs
    if worse:
        note = (
            f"{metric} {mine} is worse than {theirs} of {PRODUCTION} {current.ref} "
            f"({direction} is better)"
        )
        return MetricComparison(metric, direction, mine, theirs, False, note)
    return MetricComparison(metric, direction, mine, theirs, True)


def metric_value(version: ModelVersion, metric: str) -> Any:
    """A recorded metric by ``key`` (any metrics file) or ``file:key``; None when absent."""
    if ":" in metric:
        file, _, key = metric.partition(":")
        values = version.metrics.get(file)
        return values.get(key) if isinstance(values, dict) else None
    found = [
        values[metric]
        for values in version.metrics.values()
        if isinstance(values, dict) and metric in values
    ]
    if len({repr(v) for v in found}) > 1:
        raise RegistryError(
            f"{version.ref} records {metric!r} in several metrics files with different values; "
            "name it as FILE:KEY under models: in mlops.yaml"
        )
    return found[0] if found else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# mlops.yaml ``models:`` ---------------------------------------------------------------


def model_settings(root: Path) -> dict[str, dict[str, Any]]:
    """The ``models:`` section of ``mlops.yaml``, validated: {name: {"compare": {m: dir}}}."""
    from mlops.core.sections import Invalid, read_document
    from mlops.core.yamlio import parsed_cache_dir
    from mlops.pipeline import PIPELINE_FILE

    document = read_document(
        root / PIPELINE_FILE, PIPELINE_FILE, ConfigError, parsed_cache_dir(root)
    )
    if document is None:
        return {}

    def wrong(keys: tuple[str, ...], message: str) -> ConfigError:
        return document.error(Invalid(keys, message), ConfigError, dotted=True)

    section = document.section("models")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise wrong(("models",), "must be a mapping of model names to settings")
    settings: dict[str, dict[str, Any]] = {}
    for name, body in section.items():
        keys = ("models", str(name))
        if not isinstance(body, dict):
            raise wrong(keys, "must be a mapping (e.g. {compare: {accuracy: higher}})")
        for key in body:
            if key not in MODEL_KEYS:
                raise wrong((*keys, str(key)), f"unknown key (known: {', '.join(MODEL_KEYS)})")
        compare = body.get("compare") or {}
        if not isinstance(compare, dict):
            raise wrong((*keys, "compare"), "must map metric names to 'higher' or 'lower'")
        for metric, direction in compare.items():
            if direction not in DIRECTIONS:
                raise wrong(
                    (*keys, "compare", str(metric)),
                    f"expected 'higher' or 'lower' (which is better), got {direction!r}",
                )
        settings[str(name)] = {"compare": {str(m): d for m, d in compare.items()}}
    return settings
