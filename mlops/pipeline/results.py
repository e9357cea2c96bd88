"""What ``mlops run`` reports: options, per-stage results, progress events, stage hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.core.repo import Repo
from mlops.pipeline.lock import FileHash
from mlops.pipeline.schema import Stage


@dataclass(frozen=True)
class RunOptions:
    """What ``mlops run`` was asked to do."""

    targets: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    jobs: int = 1
    keep_going: bool = False
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageResult:
    """What happened to one stage: ran, skipped, restored, rechecked, failed, interrupted,
    blocked, cancelled; in a dry run, stale, recheck (only its checks would run) or
    skipped. ``checks``: what its stage hook reported, per phase ("before", "after"), as
    kept in the run record."""

    name: str
    status: str
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
    """A whole run. ``status``: success, failed, interrupted or dry-run."""

    run_id: str | None
    status: str
    stages: tuple[StageResult, ...]
    lock_written: bool = False
    duration: float = 0.0

    @property
    def failed(self) -> tuple[StageResult, ...]:
        return tuple(s for s in self.stages if s.status == "failed")

    def count(self, status: str) -> int:
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
    """Progress for the caller to show: skipped, restored, started, rechecking (kept
    outputs judged by changed checks), output or finished."""

    kind: str
    stage: str
    text: str = ""
    stderr: bool = False
    result: StageResult | None = None


@dataclass(frozen=True)
class HookContext:
    """What a stage hook sees. ``phase`` is "before" (deps ready, command not started)
    or "after" (command succeeded, outputs stored: ``outs`` holds their hashes)."""

    repo: Repo
    run_id: str
    stage: Stage
    phase: str
    outs: tuple[FileHash, ...] = ()


@dataclass(frozen=True)
class HookResult:
    """A hook's verdict. ``data`` (JSON-able) is kept in the run record's ``checks`` field;
    ``ok=False`` fails the stage with ``message``."""

    ok: bool
    message: str = ""
    data: Any = None


StageHook = Callable[[HookContext], HookResult]
OnEvent = Callable[[RunEvent], None]
