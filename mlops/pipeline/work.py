"""Executing one stage in a workspace: its safeguard before, its commands, storing its
outputs, its safeguard after. Every executor runs a job through ``run_job``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops.core.processes import GROUPS
from mlops.core.repo import Repo
from mlops.errors import MlopsError, PipelineError
from mlops.pipeline.execute import OnLine, describe_failure, run_command
from mlops.pipeline.executors.base import JobCrashed, JobDone, JobOutcome, StageJob
from mlops.pipeline.lock import FileHash
from mlops.pipeline.plan import Hasher
from mlops.pipeline.results import GuardContext, Phase, Safeguard
from mlops.pipeline.schema import Output, OutputKind, Stage
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.store import Store

# Metrics and plots files up to this size are also stored, so the run cache can restore them.
_SMALL_FILE = 64 << 20


@dataclass(frozen=True)
class Workspace:
    """Where jobs execute: the repository's work tree and its object store."""

    repo: Repo
    store: Store
    hasher: Hasher
    guard: Safeguard | None = None


# Makes a job's outputs (its outputs' hashes, or how it failed): here, or on another machine.
MakeOutputs = Callable[["Workspace", StageJob, OnLine], "tuple[FileHash, ...] | JobOutcome"]


def run_job(
    ws: Workspace, job: StageJob, on_line: OnLine, make: MakeOutputs | None = None
) -> JobDone | JobCrashed:
    """Execute ``job``; a user error becomes a failed outcome, anything else a crash."""
    name = job.stage.name
    try:
        return JobDone(name, execute_stage(ws, job, on_line, make or make_outputs))
    except MlopsError as exc:
        return JobDone(name, JobOutcome(False, error=exc.message))
    except OSError as exc:
        return JobDone(name, JobOutcome(False, error=f"stage {name!r}: {exc.strerror or exc}"))
    except BaseException as exc:  # reported to the scheduler, which re-raises it
        return JobCrashed(name, exc)


def execute_stage(
    ws: Workspace, job: StageJob, on_line: OnLine, make: MakeOutputs | None = None
) -> JobOutcome:
    """The safeguard before, the commands (unless the outputs are kept: ``make`` runs
    them, in this work tree by default), the safeguard after."""
    stage = job.stage
    name = stage.name
    checks: dict[str, object] = {}
    if ws.guard is not None:  # before the outputs go: a refused stage loses nothing
        verdict = ws.guard(GuardContext(ws.repo, job.run_id, stage, Phase.BEFORE))
        if verdict.data is not None:  # a stage without suites records nothing
            checks[Phase.BEFORE] = verdict.data
        if not verdict.ok:
            return JobOutcome(
                False,
                error=f"stage {name!r}: checks before it failed: {verdict.message}",
                checks=checks,
            )
        if GROUPS.stopping:  # interrupted while the checks ran: touch nothing
            return JobOutcome(False, error=f"stage {name!r}: interrupted", checks=checks)
    made = JobOutcome(True, outs=job.kept, exit_code=None) if job.kept is not None else None
    if made is None:
        found = (make or make_outputs)(ws, job, on_line)
        # A successful outcome (from a remote maker) carries where and how the outputs came.
        made = found if isinstance(found, JobOutcome) else JobOutcome(True, found, 0)
    if not made.ok:  # the command failed, or left an output out
        return made._replace(checks=checks)
    outs = made.outs
    if ws.guard is not None:
        verdict = ws.guard(GuardContext(ws.repo, job.run_id, stage, Phase.AFTER, outs))
        if verdict.data is not None:
            checks[Phase.AFTER] = verdict.data
        if not verdict.ok:
            return made._replace(
                ok=False,
                error=f"stage {name!r}: checks after it failed: {verdict.message}",
                checks=checks,
            )
    return made._replace(checks=checks)


def make_outputs(
    ws: Workspace, job: StageJob, on_line: OnLine
) -> tuple[FileHash, ...] | JobOutcome:
    """Run the stage's commands in this work tree and store its outputs; a failure as
    its ``JobOutcome``."""
    repo = ws.repo
    _refuse_unsafe_outputs(repo, job.stage)
    clear_outputs(repo.root, job.stage, repo.scratch_dir)
    return produce_outputs(ws, job, on_line)


def produce_outputs(
    ws: Workspace, job: StageJob, on_line: OnLine, base_env: dict[str, str] | None = None
) -> tuple[FileHash, ...] | JobOutcome:
    """Run the stage's commands in ``ws.repo.root`` (made ready for them) and store its
    outputs in ``ws.store``: the part of a job every machine does the same way."""
    stage, repo = job.stage, ws.repo
    name = stage.name
    cwd = repo.root / stage.wdir
    if not cwd.is_dir():
        return JobOutcome(False, error=f"stage {name!r}: wdir {stage.wdir!r} does not exist")
    env = dict(os.environ if base_env is None else base_env)
    env.update(stage.env)
    env.update({"MLOPS_RUN_ID": job.run_id, "MLOPS_STAGE": name})
    env.setdefault("PYTHONUNBUFFERED", "1")  # so that output streams line by line
    for command in stage.cmd:
        result = run_command(command, cwd, env, on_line, job.run_id)
        if result.exit_code != 0:
            return JobOutcome(
                False,
                exit_code=result.exit_code,
                error=describe_failure(name, result.exit_code, result.stderr_tail),
                stderr_tail=result.stderr_tail,
            )
    for out in stage.outputs:
        if not os.path.lexists(repo.root / out.path):
            return JobOutcome(
                False,
                exit_code=0,
                error=f"stage {name!r} exited 0 but did not produce its {out.kind} {out.path!r}",
            )
    return tuple(store_output(ws, out) for out in stage.outputs)


def store_output(ws: Workspace, out: Output) -> FileHash:
    """Hash output ``out`` (and store it when it is cached, or a small metric or plot)."""
    from mlops.workspace.add import snapshot

    path = ws.repo.root / out.path
    if out.cache:
        pointer, _ = snapshot(ws.store, path)
        return FileHash(out.path, pointer.oid, pointer.size, pointer.files)
    found = ws.hasher.hash(out.path)
    if found is None:
        raise PipelineError(f"output {out.path!r} disappeared while it was being stored")
    if (
        out.kind != OutputKind.OUT
        and not found.oid.endswith(DIR_SUFFIX)
        and found.size <= _SMALL_FILE
    ):
        # Small metrics and plots are kept too, so the run cache can bring them back.
        ws.store.cache.add_bytes(path.read_bytes())
    return found


def _refuse_unsafe_outputs(repo: Repo, stage: Stage) -> None:
    """Before a stage's outputs are cleared: none is tracked by Git (mlops would delete
    it, then cache and ignore it, as ``add`` refuses to), and none lies through a
    symbolic link (clearing it would delete wherever the link points)."""
    from mlops.core.git import tracked_paths
    from mlops.storage.paths import refuse_symlinks

    for out in stage.outputs:
        refuse_symlinks(repo.root, repo.root / out.path, repo.cache_dir)
    cached = [out.path for out in stage.outputs if out.cache]
    in_git = tracked_paths(repo.root, *cached) if cached else []
    if in_git:
        shown = next(p for p in cached if p == in_git[0] or in_git[0].startswith(p + "/"))
        raise PipelineError(
            f"stage {stage.name!r}: output {shown!r} is tracked by Git; untrack it first with "
            f"`git rm -r --cached {shown}` (the files stay on disk), or mark it `cache: false`"
        )


def clear_outputs(root: Path, stage: Stage, scratch: Path) -> None:
    """Remove the outputs a stage will write again; persistent ones become editable
    (through temporaries in ``scratch``)."""
    from mlops.core.fsutil import make_private_copy

    for out in stage.outputs:
        path = root / out.path
        if out.persist:
            if path.is_symlink() or (path.is_file() and path.stat().st_nlink > 1):
                make_private_copy(path, scratch)
            elif path.is_dir():
                for item in path.rglob("*"):
                    if item.is_symlink() or (item.is_file() and item.stat().st_nlink > 1):
                        make_private_copy(item, scratch)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
