"""What ``mlops run`` reports: options, per-stage results, progress events, and the
safeguard a caller runs around each stage (its check suites)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import ConfigError
from mlops.pipeline.lock import FileHash
from mlops.pipeline.schema import Stage


class StageState(StrEnum):
    """What happened to a stage in a run, or (``STALE``, ``RECHECK``) would in a dry run."""

    RAN = "ran"
    RECHECKED = "rechecked"  # only its check suites changed: they judged its kept outputs
    RESTORED = "restored"  # an earlier run had exactly its inputs: its outputs came back
    SKIPPED = "skipped"
    FAILED = "failed"
    BLOCKED = "blocked"  # an upstream stage did not succeed
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    STALE = "stale"
    RECHECK = "recheck"


# The states after which a stage's outputs are as its lock entry says.
SUCCEEDED = frozenset(
    {StageState.RAN, StageState.RECHECKED, StageState.RESTORED, StageState.SKIPPED}
)
# The states that block the stages downstream.
UNSUCCESSFUL = frozenset(
    {StageState.FAILED, StageState.BLOCKED, StageState.INTERRUPTED, StageState.CANCELLED}
)


class RunStatus(StrEnum):
    """How a whole run ended."""

    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DRY_RUN = "dry-run"


class EventKind(StrEnum):
    """A progress event of a run."""

    SKIPPED = "skipped"
    RESTORED = "restored"
    STARTED = "started"
    RECHECKING = "rechecking"  # kept outputs judged by changed checks
    OUTPUT = "output"  # a line the command wrote
    FINISHED = "finished"


class ExecutorKind(StrEnum):
    """Where a run's stages execute."""

    LOCAL = "local"  # in this work tree, on this machine
    DASK = "dask"  # on the workers of a Dask cluster (mlops[dask])

    @classmethod
    def named(cls, raw: str, where: str) -> ExecutorKind:
        """The executor called ``raw``; an unknown one is a ``ConfigError`` naming ``where``."""
        try:
            return cls(raw)
        except ValueError:
            valid = ", ".join(k.value for k in cls)
            raise ConfigError(f"{where}: unknown executor {raw!r} (valid: {valid})") from None


@dataclass(frozen=True)
class RunOptions:
    """What ``mlops run`` was asked to do."""

    targets: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    jobs: int = 1
    keep_going: bool = False
    argv: tuple[str, ...] = ()
    # Where stages run: None takes ``run.executor`` of .mlops/config.yaml (else local).
    executor: ExecutorKind | None = None
    scheduler: str | None = None  # the Dask scheduler's address (or ``run.scheduler``)
    local_cluster: bool = False  # --local: a Dask cluster on this machine, started here
    remote: str | None = None  # the remote inputs and outputs move through (None: default)
    remote_cache: bool = True  # look up the remote's run cache before running a stage


@dataclass(frozen=True)
class StageResult:
    """What happened to one stage (see ``StageState``). ``checks``: what its safeguard
    reported, per phase ("before", "after"), as kept in the run record."""

    name: str
    status: StageState
    reasons: tuple[str, ...] = ()
    duration: float = 0.0
    exit_code: int | None = None
    error: str = ""
    stderr_tail: tuple[str, ...] = ()
    checks: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "status": self.status,
            "reasons": list(self.reasons),
            "duration": round(self.duration, 6),
            "exit_code": self.exit_code,
            "error": self.error,
            "stderr_tail": list(self.stderr_tail),
            "checks": self.checks,
        }


@dataclass(frozen=True)
class RunResult:
    """A whole run."""

    run_id: str | None
    status: RunStatus
    stages: tuple[StageResult, ...]
    lock_written: bool = False
    duration: float = 0.0

    @property
    def failed(self) -> tuple[StageResult, ...]:
        return tuple(s for s in self.stages if s.status == StageState.FAILED)

    def count(self, status: StageState) -> int:
        return sum(1 for s in self.stages if s.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "lock_written": self.lock_written,
            "duration": round(self.duration, 6),
            "stages": [s.to_dict() for s in self.stages],
        }


@dataclass(frozen=True)
class RunEvent:
    """Progress for the caller to show. ``reasons``: why the stage is started, rechecked,
    restored or skipped; ``text``: the line of an ``OUTPUT`` event."""

    kind: EventKind
    stage: str
    reasons: tuple[str, ...] = ()
    text: str = ""
    stderr: bool = False
    result: StageResult | None = None


class Phase(StrEnum):
    """When a safeguard judges a stage."""

    BEFORE = "before"  # deps ready, command not started
    AFTER = "after"  # command succeeded, outputs stored


@dataclass(frozen=True)
class GuardContext:
    """What a safeguard sees. ``phase`` is "before" (deps ready, command not started)
    or "after" (command succeeded, outputs stored: ``outs`` holds their hashes)."""

    repo: Repo
    run_id: str
    stage: Stage
    phase: Phase
    outs: tuple[FileHash, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """A safeguard's verdict. ``data`` (JSON-able) is kept in the run record's ``checks`` field;
    ``ok=False`` fails the stage with ``message``."""

    ok: bool
    message: str = ""
    data: Any = None


# Run around each stage (today: its check suites); ``ok=False`` fails the stage.
Safeguard = Callable[[GuardContext], Verdict]
OnEvent = Callable[[RunEvent], None]
