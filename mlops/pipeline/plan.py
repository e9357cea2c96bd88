"""Planning: whether a stage is up to date, the one rule ``status``, ``run --dry-run`` and
``run`` share (its command, dep hashes, params, check suites and outputs vs mlops.lock)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from mlops.core.repo import Repo
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.dag import build_dag
from mlops.pipeline.lock import FileHash, LockEntry, read_lock
from mlops.pipeline.params import ParamFiles, ParamValues, stage_params
from mlops.pipeline.schema import DEFAULT_PARAMS_FILE, Stage, load_pipeline
from mlops.storage.hashing import DIR_SUFFIX, hash_bytes
from mlops.storage.manifest import build_manifest
from mlops.storage.store import Store, open_store
from mlops.workspace.tracked import (
    fingerprint,
    group_fingerprints,
    hash_files,
    line_groups,
    scan_folder,
    stat_lines,
)

NEW_STAGE = "new stage (not in mlops.lock)"
# The one reason that leaves a stage's outputs standing, to be judged by its new checks.
CHECKS_CHANGED = "checks changed"
FORCED = "forced (--force)"
ALWAYS_CHANGED = "always_changed is set"


class Hasher:
    """Hashes workspace paths through the state cache; a folder's hash is its manifest id."""

    def __init__(self, store: Store, memo: bool = False, root: Path | None = None) -> None:
        self.store = store
        # ``root``: another folder than the store's work tree (a worker's scratch folder).
        self.root = str(root or store.repo.root)
        # Only read-only evaluations (status, dry runs) may remember hashes: a run changes files.
        self._memo: dict[str, FileHash | None] | None = {} if memo else None

    def hash(self, rel: str) -> FileHash | None:
        """The content of ``rel`` (relative to the root), or None when it does not exist."""
        if self._memo is not None and rel in self._memo:
            return self._memo[rel]
        found = self._hash(rel)
        if self._memo is not None:
            self._memo[rel] = found
        return found

    def _hash(self, rel: str) -> FileHash | None:
        path = os.path.join(self.root, rel)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISDIR(st.st_mode):
            files = scan_folder(Path(path))
            known = self.store.state.folder(rel)
            lines = stat_lines(files)
            groups = group_fingerprints(lines, line_groups(lines))
            if known is not None and known.fingerprint == fingerprint(groups):
                # Every file's stat is as when the folder was stored: its manifest id holds.
                return FileHash(rel, known.oid, sum(f.st.st_size for f in files), len(files))
            entries = hash_files(self.store, files, None, None)
            manifest = build_manifest(entries)
            oid = hash_bytes(manifest.to_bytes()) + DIR_SUFFIX
            return FileHash(rel, oid, manifest.size, len(entries))
        return FileHash(rel, self.store.state.hash(path, st), st.st_size)


class CheckSuites:
    """The fingerprint of each stage's check suites, from ``mlops.yaml`` (and the files it
    includes), read once and only for a stage that names suites."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._suites: dict[str, Any] | None = None

    def fingerprint(self, stage: Stage) -> str:
        """See ``mlops.checks.suites_fingerprint``; the empty string for a stage without
        checks (its lock entry then has none either)."""
        named = [("before", str(n)) for n in stage.checks_before]
        named += [("after", str(n)) for n in stage.checks_after]
        if not named:
            return ""
        from mlops.checks import load_suites, suites_fingerprint

        if self._suites is None:
            self._suites = load_suites(self.root / PIPELINE_FILE)
        return suites_fingerprint(named, self._suites)


def input_reasons(
    stage: Stage, entry: LockEntry | None, deps: list[FileHash], params: ParamValues, checks: str
) -> list[str]:
    """Why the stage's inputs differ from its lock entry (empty: they match). ``checks`` is
    the fingerprint of its check suites: outputs judged by other checks are not trusted."""
    if entry is None:
        return [NEW_STAGE]
    reasons = []
    if entry.cmd != stage.cmd:
        reasons.append("command changed")
    if entry.checks != checks:
        reasons.append(CHECKS_CHANGED)
    if entry.wdir != stage.wdir or entry.env != stage.env:
        reasons.append("wdir or env changed")
    locked = {d.path: d.oid for d in entry.deps}
    for dep in deps:
        if dep.path not in locked:
            reasons.append(f"dep {dep.path} added")
        elif locked[dep.path] != dep.oid:
            reasons.append(f"dep {dep.path} changed")
    current = {d.path for d in deps}
    reasons += [f"dep {path} removed" for path in locked if path not in current]
    for file in sorted(entry.params.keys() | params.keys()):
        old, new = entry.params.get(file, {}), params.get(file, {})
        shown = "" if os.path.basename(file) == DEFAULT_PARAMS_FILE else f"{file}:"
        for key in sorted(old.keys() | new.keys()):
            if key not in old:
                reasons.append(f"param {shown}{key} added")
            elif key not in new:
                reasons.append(f"param {shown}{key} removed")
            elif old[key] != new[key] or type(old[key]) is not type(new[key]):
                reasons.append(f"param {shown}{key} changed ({old[key]!r} -> {new[key]!r})")
    return reasons


def output_reasons(stage: Stage, entry: LockEntry | None, outs: list[FileHash | None]) -> list[str]:
    """Why the stage's outputs in the workspace differ from its lock entry."""
    if entry is None:
        return [NEW_STAGE]
    locked = {o.path: o for o in entry.outs}
    reasons = []
    for out, now in zip(stage.outputs, outs, strict=True):
        if out.path in locked and locked[out.path].cache not in (None, out.cache):
            # Stored in the object store or in Git: the run must put it where it now goes.
            reasons.append(f"{out.kind} {out.path} cache option changed")
        elif now is None:
            reasons.append(f"{out.kind} {out.path} missing")
        elif out.path not in locked:
            reasons.append(f"{out.kind} {out.path} added")
        elif locked[out.path].oid != now.oid:
            reasons.append(f"{out.kind} {out.path} changed")
    declared = {o.path for o in stage.outputs}
    reasons += [f"output {path} removed from the stage" for path in locked if path not in declared]
    return reasons


def run_cache_key(stage: Stage, deps: list[FileHash], params: ParamValues, checks: str) -> str:
    """The hash of everything that determines a stage's outputs, and the checks that
    judged them (outputs are restored only where the same checks passed them)."""
    doc = {
        "checks": checks,
        "cmd": list(stage.cmd),
        "wdir": stage.wdir,
        "env": [list(pair) for pair in stage.env],
        "deps": [[d.path, d.oid] for d in deps],
        "params": params,
        "outs": [[o.path, o.kind, o.cache, o.persist] for o in stage.outputs],
    }
    return hash_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode())


class Decision(StrEnum):
    """What a stage needs."""

    UP_TO_DATE = "up to date"
    RECHECK = "recheck"  # only its check suites changed, and its outputs are as locked
    STALE = "stale"


@dataclass(frozen=True)
class Judgement:
    """A stage's decision and its reasons. ``inputs_match``: its inputs are as locked (only
    its outputs differ, so the locked outputs are the answer); ``outs``: the hashes of
    its outputs in the workspace, where they were looked at."""

    decision: Decision
    reasons: tuple[str, ...]
    inputs_match: bool = False
    outs: tuple[FileHash | None, ...] | None = None


def judge(
    stage: Stage,
    entry: LockEntry | None,
    deps: list[FileHash],
    params: ParamValues,
    checks: str,
    hash_path: Callable[[str], FileHash | None],
    force: bool = False,
) -> Judgement:
    """Whether ``stage`` is up to date against its lock ``entry``, given the hashes of its
    ``deps``, its ``params`` and the fingerprint of its check suites; ``hash_path``
    hashes its outputs when the inputs leave that question open."""
    reasons = input_reasons(stage, entry, deps, params, checks)
    if not reasons and stage.always_changed:
        reasons = [ALWAYS_CHANGED]
    outs = None
    if entry is not None and (
        not reasons or (reasons == [CHECKS_CHANGED] and not stage.always_changed)
    ):
        outs = tuple(hash_path(o.path) for o in stage.outputs)
        differ = output_reasons(stage, entry, list(outs))
        if not reasons:
            if force:
                return Judgement(Decision.STALE, (FORCED, *differ), True, outs)
            decision = Decision.STALE if differ else Decision.UP_TO_DATE
            return Judgement(decision, tuple(differ), True, outs)
        if not differ and not force:
            return Judgement(Decision.RECHECK, tuple(reasons), False, outs)
    if force:
        reasons = [FORCED, *reasons]
    return Judgement(Decision.STALE, tuple(reasons), False, outs)


class PlannedStage:
    """A stage decided to run, with the inputs it was judged on (and when it started).

    ``kept``: only its check suites changed, so its outputs (these) are kept and only
    judged again by them; the command does not run.
    """

    __slots__ = ("checks", "deps", "kept", "key", "params", "reasons", "stage", "started", "wall")

    def __init__(
        self,
        stage: Stage,
        reasons: tuple[str, ...],
        deps: list[FileHash],
        params: ParamValues,
        checks: str,
        key: str,
    ) -> None:
        self.stage = stage
        self.reasons = reasons
        self.deps = deps
        self.params = params
        self.checks = checks
        self.key = key
        self.kept: tuple[FileHash, ...] | None = None
        self.started = self.wall = 0.0  # set when the stage starts (epoch, monotonic)


@dataclass(frozen=True)
class Staleness:
    """A stage and why it is stale (no reasons: up to date). ``recheck``: only its check
    suites changed and its outputs are as locked, so a run judges them, not remakes them."""

    name: str
    reasons: tuple[str, ...]
    recheck: bool = False

    @property
    def stale(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "stale": self.stale,
            "reasons": list(self.reasons),
            "recheck": self.recheck,
        }


def evaluate(
    store: Store,
    names: tuple[str, ...],
    stages: dict[str, Stage],
    upstream: dict[str, tuple[str, ...]],
    params: dict[str, ParamValues],
    force: bool = False,
) -> list[Staleness]:
    """Every stage's staleness without running anything; stale upstream makes it stale too."""
    entries = read_lock(store.repo.root).stages
    hasher = Hasher(store, memo=True)
    suites = CheckSuites(store.repo.root)
    stale: set[str] = set()
    found = []
    for name in names:
        stage = stages[name]
        if stage.frozen:  # never run again, whatever changed: its lock entry stands
            found.append(Staleness(name, ()))
            continue
        reasons = [f"upstream stage {u!r} is stale" for u in upstream[name] if u in stale]
        deps = [hasher.hash(d) for d in stage.deps]
        missing = [d for d, h in zip(stage.deps, deps, strict=True) if h is None]
        reasons += [f"dep {d} missing (made by an upstream stage)" for d in missing]
        present = [h for h in deps if h is not None]
        verdict = judge(
            stage,
            entries.get(name),
            present,
            params[name],
            suites.fingerprint(stage),
            hasher.hash,
            force,
        )
        recheck = verdict.decision == Decision.RECHECK and not reasons
        reasons += [r for r in verdict.reasons if r not in reasons]
        if reasons:
            stale.add(name)
        found.append(Staleness(name, tuple(reasons), recheck))
    return found


def pipeline_status(repo: Repo) -> list[Staleness]:
    """The staleness of every stage in ``mlops.yaml`` (none when there is no such file)."""
    pipeline = load_pipeline(repo.root, required=False)
    if not pipeline.stages:
        return []
    dag = build_dag(pipeline, repo.root)
    load = ParamFiles(repo.root)
    params = {name: stage_params(stage, load) for name, stage in dag.stages.items()}
    with open_store(repo) as store:
        return evaluate(store, dag.order, dag.stages, dag.upstream, params)
