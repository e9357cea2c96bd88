"""The executor interface: what the scheduler hands over, and what comes back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from mlops.pipeline.lock import FileHash
from mlops.pipeline.schema import Stage


@dataclass(frozen=True)
class StageJob:
    """A stage to execute for run ``run_id``. ``kept``: its outputs stay as they are and
    only its safeguard judges them again (its check suites changed); the command does
    not run. ``deps``: the hashes its deps were judged on; ``key``: its run-cache key
    when a later run may restore its outputs (else empty), for executors that move
    inputs and outputs by hash."""

    stage: Stage
    run_id: str
    kept: tuple[FileHash, ...] | None = None
    deps: tuple[FileHash, ...] = ()
    key: str = ""


class JobOutcome(NamedTuple):
    """How a job ended: its stored outputs, or why it failed."""

    ok: bool
    outs: tuple[FileHash, ...] = ()
    exit_code: int | None = None
    error: str = ""
    stderr_tail: tuple[str, ...] = ()
    checks: dict[str, Any] | None = None
    # The outputs came from a run cache instead of the command (a remote executor's).
    restored: bool = False
    # Where the job ran and how long it waited and ran (remote executors), for its record.
    placement: dict[str, Any] | None = None


@dataclass(frozen=True)
class OutputLine:
    """A line a job's command wrote."""

    stage: str
    text: str
    stderr: bool


@dataclass(frozen=True)
class JobDone:
    """A job is over, well or not."""

    stage: str
    outcome: JobOutcome


@dataclass(frozen=True)
class JobCrashed:
    """A job raised what is not a user error (a bug): the run re-raises it."""

    stage: str
    error: BaseException


JobEvent = OutputLine | JobDone | JobCrashed
# Called from any thread; the scheduler queues the events and handles them on its own.
Report = Callable[[JobEvent], None]


class Executor(Protocol):
    """Runs stage jobs and reports their lines and ends through the ``Report`` it was made
    with, each job's ``JobDone`` (or ``JobCrashed``) exactly once."""

    def submit(self, job: StageJob) -> None:
        """Start ``job`` and return at once."""

    def stop_all(self) -> None:
        """Stop every job now (Ctrl-C, or an error): kill their commands and wait a little
        for them to wind down; their ends need not be reported."""
