"""Which run and stage produced a given content: run records, ``mlops.lock`` and pointers.

Run records come from ``.mlops/runs.db`` and, for clones that never ran the
pipeline, from the record objects that ``mlops.lock`` (or a model version)
names: those travel with ``mlops push`` / ``pull``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.errors import InputError
from mlops.pipeline.results import SUCCEEDED
from mlops.pipeline.runs import RunRecord, StageRecord, list_runs
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.store import Store, load_manifest

if TYPE_CHECKING:
    from mlops.pipeline.lock import LockEntry

# Stage statuses whose outputs are the stage's own work (recorded or kept); a stage that
# failed its after checks records the outputs they judged, so its failure follows them.
PRODUCED = (*SUCCEEDED, "failed")


@dataclass(frozen=True)
class Production:
    """A stage of a run that produced some content."""

    record: RunRecord
    stage: StageRecord


class RunIndex:
    """Run records known to this clone, newest first, loaded once per command."""

    def __init__(self, store: Store, commits: tuple[str, ...] = (), extra: tuple[str, ...] = ()):
        self.store = store
        self.commits = commits
        self.extra = extra  # record object ids named elsewhere (model versions)
        self._records: list[RunRecord] | None = None
        self._locks: list[tuple[str | None, str, LockEntry]] | None = None
        self._manifests: dict[str, dict[str, str]] = {}

    @property
    def records(self) -> list[RunRecord]:
        if self._records is None:
            records = list_runs(self.store.repo)
            known = {r.id for r in records}
            for oid in (*self._lock_records(), *self.extra):
                record = self.record_object(oid)
                if record is not None and record.id not in known:
                    known.add(record.id)
                    records.append(record)
            records.sort(key=lambda r: r.started, reverse=True)
            self._records = records
        return self._records

    def _lock_records(self) -> list[str]:
        return [entry.record for _, _, entry in self.locks() if entry.record]

    def locks(self) -> list[tuple[str | None, str, LockEntry]]:
        """(commit or None for the workspace, stage, entry) of every ``mlops.lock`` in view."""
        from mlops.pipeline.lock import LOCK_FILE, parse_lock
        from mlops.pipeline.revisions import read_paths_at

        if self._locks is None:
            places: list[tuple[str | None, str]] = [(None, LOCK_FILE)]
            places += [(commit, LOCK_FILE) for commit in self.commits]
            self._locks = []
            for (commit, _), data in read_paths_at(self.store.repo.root, places).items():
                if data is None:
                    continue
                where = LOCK_FILE if commit is None else f"{LOCK_FILE} at {commit[:10]}"
                lock = parse_lock(data.decode(errors="replace"), where)
                self._locks += [(commit, name, entry) for name, entry in lock.stages.items()]
        return self._locks

    def record_object(self, oid: str) -> RunRecord | None:
        """A run record stored as an object, or None when the cache lacks it."""
        if not oid or not self.store.cache.exists(oid):
            return None
        try:
            return RunRecord.from_dict(json.loads(self.store.cache.read_bytes(oid)), oid)
        except (ValueError, KeyError, TypeError):
            return None

    def find(self, run_id: str) -> RunRecord:
        """A run by id or unambiguous prefix."""
        found = [r for r in self.records if r.id.startswith(run_id)] if run_id else []
        exact = [r for r in found if r.id == run_id]
        if len(found) == 1 or exact:
            return (exact or found)[0]
        if not found:
            raise InputError(f"no run with id {run_id!r} (see `mlops runs list`)")
        raise InputError(f"run id {run_id!r} is ambiguous: {', '.join(r.id for r in found[:5])}")

    def producer(self, path: str, oid: str) -> Production | None:
        """The newest run stage whose outputs include ``path`` with content ``oid``
        (itself, or as a file inside an output folder), even one that failed its checks."""
        for record in self.records:
            for stage in record.stages:
                if stage.status in PRODUCED and any(
                    self.holds(out, out_oid, path, oid) for out, out_oid in stage.outs.items()
                ):
                    return Production(record, stage)
        return None

    def lock_producer(self, path: str, oid: str) -> tuple[str | None, str, LockEntry] | None:
        """The ``mlops.lock`` entry whose outputs include ``path`` with content ``oid``."""
        for found in self.locks():
            if any(self.holds(out.path, out.oid, path, oid) for out in found[2].outs):
                return found
        return None

    def holds(self, out: str, out_oid: str, path: str, oid: str) -> bool:
        """Whether output ``out`` (content ``out_oid``) is ``path`` with content ``oid``,
        or a folder holding it."""
        if out == path:
            return out_oid == oid
        if not out_oid.endswith(DIR_SUFFIX) or not path.startswith(out + "/"):
            return False
        if out_oid not in self._manifests:
            cache = self.store.cache
            self._manifests[out_oid] = (
                {e.path: e.oid for e in load_manifest(cache, out_oid, out).entries}
                if cache.exists(out_oid)
                else {}
            )
        return self._manifests[out_oid].get(path[len(out) + 1 :]) == oid


def consumers(record: RunRecord, path: str, oid: str) -> list[StageRecord]:
    """The stages of ``record`` that read ``path`` with content ``oid`` (evaluations)."""
    return [s for s in record.stages if s.deps.get(path) == oid]


def checks_summary(checks: Any) -> dict[str, Any]:
    """A stage's check results in brief, per phase: passed, counts and what failed."""
    summary: dict[str, Any] = {}
    if not isinstance(checks, dict):
        return summary
    for phase in ("before", "after"):
        data = checks.get(phase)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("passed"), bool):
            summary[phase] = {"passed": None, "counts": {}, "failed": ["unrecognised result"]}
            continue
        failed = [
            _describe(suite.get("suite", "?"), result)
            for suite in data.get("suites") or []
            if isinstance(suite, dict)
            for result in suite.get("results") or []
            if isinstance(result, dict) and result.get("status") != "pass"
        ]
        summary[phase] = {
            "passed": data["passed"],
            "counts": data.get("counts") or {},
            "failed": failed[:10],
        }
    return summary


def _describe(suite: str, result: dict[str, Any]) -> str:
    column = f" > {result['column']}" if result.get("column") else ""
    return f"{suite} > {result.get('check', '?')}{column}: {result.get('message', '')}".rstrip(": ")
