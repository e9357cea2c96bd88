"""Self-healing: on an alert, add the batch to the training data, retrain, judge, promote.

One episode: hold part of the labelled batch out, add the rest to the training data as
``monitor.retrain`` says, run the pipeline with its checks, register the model it made,
score candidate and production on the held-out rows, and promote the candidate through the
registry's gate only when it is better. Whatever happens, the episode's steps are returned
for the monitoring record; a failure puts the training data back and leaves production as
it was. Only one episode runs at a time in a repository (``monitor_lock``).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.fsutil import atomic_write_bytes
from mlops.core.repo import Repo, file_lock
from mlops.errors import MlopsError, MonitorError, RegistryError
from mlops.monitor.config import MonitorConfig, RetrainConfig
from mlops.monitor.history import utc_now
from mlops.monitor.monitoring import Scored, read_frame, score_model
from mlops.registry.records import ModelVersion

if TYPE_CHECKING:
    import pandas as pd

    from mlops.pipeline.results import RunEvent


class EpisodeStatus(StrEnum):
    """How a self-healing episode ended."""

    PROMOTED = "promoted"  # the retrained candidate is better: it is in production now
    KEPT = "kept"  # production stays: the candidate is not better, or nothing to learn
    FAILED = "failed"


_LOCK_NAME = "monitor.lock"


def monitor_lock(repo: Repo) -> contextlib.AbstractContextManager[None]:
    """Hold the repository's retraining lock; a second holder fails at once, naming the first.

    A separate lock from the repository's: the episode runs the pipeline and the registry,
    which take that one themselves. The kernel drops it when the process dies.
    """
    return file_lock(
        repo.tmp_dir / _LOCK_NAME,
        0.0,
        "another `mlops monitor --retrain` is running in this repository",
        f"since {utc_now()}",
    )


class _Stop(Exception):
    """Ends an episode early with a decision and its reason."""

    def __init__(self, status: EpisodeStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Backup:
    """The training data as it was before the episode, to put back if retraining fails."""

    path: Path
    saved: Path
    tracked: bool  # an ``mlops add``-ed file: its pointer follows the content

    def restore(self, repo: Repo) -> None:
        os.replace(self.saved, self.path)
        if self.tracked:
            from mlops.workspace.add import add

            add(repo, [str(self.path)])

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.saved)


def retrain_episode(
    repo: Repo,
    config: MonitorConfig,
    scored: Scored,
    on_event: Callable[[RunEvent], None] | None = None,
    argv: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run one self-healing episode for an alerting batch; return its record links.

    ``{"episode": id, "retrain": {status, reason, data, run, candidate, evaluation,
    promotion}}``; ``status`` is ``promoted``, ``kept`` (production stays: the candidate
    is not better, or the gate refused it) or ``failed`` (the training data is put back).
    """
    assert config.retrain is not None and config.label is not None
    episode = Episode(repo, config, config.retrain, config.label, scored)
    return {"episode": episode.id, "retrain": episode.run(on_event, argv)}


class Episode:
    """The steps of one episode, filled in as they happen (the state lives here)."""

    def __init__(
        self, repo: Repo, config: MonitorConfig, retrain: RetrainConfig, label: str, scored: Scored
    ) -> None:
        self.id = f"ep-{secrets.token_hex(5)}"
        self.repo = repo
        self.config = config
        self.retrain = retrain
        self.label = label
        self.scored = scored
        self.steps: dict[str, Any] = {
            "status": EpisodeStatus.FAILED,
            "reason": "",
            "settings": retrain.to_dict(),
            "data": None,
            "run": None,
            "candidate": None,
            "evaluation": None,
            "promotion": None,
        }

    def run(
        self, on_event: Callable[[RunEvent], None] | None, argv: tuple[str, ...]
    ) -> dict[str, Any]:
        backup: _Backup | None = None
        try:
            train_rows, test_rows = self._split()
            backup = self._update_training_data(train_rows)
            run_id = self._run_pipeline(on_event, argv)
            candidate = self._register(run_id)
            self._judge(candidate, test_rows)
        except _Stop as stop:
            self.steps["status"], self.steps["reason"] = stop.status, stop.reason
        except MlopsError as exc:
            self.steps["status"], self.steps["reason"] = EpisodeStatus.FAILED, exc.message
        finally:
            if backup is not None:
                if self.steps["status"] == EpisodeStatus.FAILED:
                    backup.restore(self.repo)
                    self.steps["data"]["restored"] = True
                else:
                    backup.discard()
        return self.steps

    # The steps --------------------------------------------------------------------

    def _split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(rows for training, rows to judge on): a fixed random share is held out."""
        import numpy as np

        frame, shown = self.scored.frame, self.scored.batch.shown
        if self.label not in frame.columns:
            raise MonitorError(
                f"{shown}: no label column {self.label!r}: an unlabelled batch can neither "
                "join the training data nor judge a candidate"
            )
        unlabelled = int(frame[self.label].isna().sum())
        if unlabelled:
            raise MonitorError(f"{shown}: {unlabelled} rows have no {self.label!r} label")
        holdout = self.retrain.holdout
        if holdout == 0:
            return frame, frame
        rows = len(frame)
        if rows < 2:
            raise MonitorError(
                f"{shown}: one row is too few to hold some out for judging the candidate "
                "(set monitor.retrain.holdout: 0 to judge on the training rows)"
            )
        held = min(rows - 1, max(1, round(rows * holdout)))
        # Seeded by the batch's content: the same batch is always split the same way.
        order = np.random.default_rng(int(self.scored.batch.hash[:16], 16)).permutation(rows)
        return frame.iloc[np.sort(order[held:])], frame.iloc[np.sort(order[:held])]

    def _update_training_data(self, rows: pd.DataFrame) -> _Backup:
        from mlops.storage.hashing import hash_file
        from mlops.storage.pointer import pointer_path

        rel, repo = self.retrain.path, self.repo
        path = repo.root / rel
        _not_an_output(repo, rel)
        if not path.is_file():
            raise MonitorError(f"mlops.yaml: monitor.retrain: training data {rel} does not exist")
        current = read_frame(path, rel)
        columns = [str(c) for c in current.columns]
        missing = [c for c in columns if c not in rows.columns]
        if missing:
            raise MonitorError(
                f"{self.scored.batch.shown}: cannot join {rel}: it lacks the training data's "
                f"columns {', '.join(missing)}"
            )
        rows = rows[columns]
        if self.retrain.mode != "replace":
            # A batch scored twice (or rows already appended by an earlier episode) must
            # not count twice in the training data.
            rows = _not_in(rows, current)
            if rows.empty:
                raise _Stop(
                    EpisodeStatus.KEPT,
                    f"every row of {self.scored.batch.shown} is already in {rel}: nothing "
                    "new to train on",
                )
        data = _encode(path, current, rows, self.retrain.mode)
        before = hash_file(path)
        saved = repo.tmp_dir / f"monitor-{self.id}-{path.name}"
        try:
            os.link(path, saved)
        except OSError:
            shutil.copy2(path, saved)
        backup = _Backup(path, saved, pointer_path(path).exists())
        self.steps["data"] = {
            "path": rel,
            "mode": self.retrain.mode,
            "rows_before": len(current),
            "rows_added": len(rows),
            "hash_before": before,
            "hash_after": None,
            "restored": False,
        }
        try:
            atomic_write_bytes(path, data, 0o644, repo.scratch_dir)
            if backup.tracked:
                from mlops.workspace.add import add

                add(repo, [str(path)])
        except BaseException:
            backup.restore(repo)
            raise
        self.steps["data"]["hash_after"] = hash_file(path)
        return backup

    def _run_pipeline(
        self, on_event: Callable[[RunEvent], None] | None, argv: tuple[str, ...]
    ) -> str:
        from mlops.pipeline.guards import stage_checks
        from mlops.pipeline.results import RunOptions, RunStatus
        from mlops.pipeline.runner import run_pipeline

        options = RunOptions(targets=self.retrain.stages, argv=argv or ("mlops", "monitor"))
        result = run_pipeline(self.repo, options, on_event, guard=stage_checks)
        self.steps["run"] = {
            "id": result.run_id,
            "status": result.status,
            "stages": {s.name: s.status for s in result.stages},
        }
        if result.status != RunStatus.SUCCESS or result.run_id is None:
            why = result.failed[0].error if result.failed else f"it ended {result.status}"
            raise _Stop(EpisodeStatus.FAILED, f"the retraining run {result.run_id} failed: {why}")
        return result.run_id

    def _register(self, run_id: str) -> ModelVersion:
        from mlops.registry.register import register_model

        production = self.scored.version
        path = self.repo.root / production.content.path
        if not path.exists():
            raise MonitorError(
                f"the retraining run {run_id} left no {production.content.path}, where "
                f"{production.ref} was registered from"
            )
        description = (
            f"candidate of monitor episode {self.id}: retrained after an alert on "
            f"{self.scored.batch.shown}"
        )
        candidate = register_model(self.repo, production.model, path, run_id, None, description)
        self.steps["candidate"] = {
            "ref": candidate.ref,
            "version": candidate.label,
            "id": candidate.id,
            "tag": candidate.tag,
            "checks": candidate.checks_state()[0],
        }
        if candidate.id == production.id:
            raise _Stop(
                EpisodeStatus.KEPT, f"retraining reproduced the production model {production.ref}"
            )
        return candidate

    def _judge(self, candidate: ModelVersion, rows: pd.DataFrame) -> None:
        from mlops.registry.content import load_model
        from mlops.registry.promote import promote

        metric, direction = self.retrain.metric, self.retrain.direction
        production, features = self.scored.version, self.scored.features
        new_model = load_model(f"{candidate.model}:{candidate.label}", self.repo)
        theirs = score_model(self.scored.model, rows, features, self.label, metric)
        mine = score_model(new_model, rows, features, self.label, metric)
        held_out = self.retrain.holdout > 0
        on = (
            f"{len(rows)} held-out rows of {self.scored.batch.shown}"
            if held_out
            else f"the {len(rows)} rows of {self.scored.batch.shown} (also trained on)"
        )
        better = mine > theirs if direction == "higher" else mine < theirs
        self.steps["evaluation"] = {
            "metric": metric,
            "direction": direction,
            "candidate": mine,
            "production": theirs,
            "rows": len(rows),
            "held_out": held_out,
            "better": better,
        }
        versus = (
            f"{metric} {mine:.4f} for {candidate.ref} against {theirs:.4f} for "
            f"{production.ref} on {on}"
        )
        if not better:
            raise _Stop(
                EpisodeStatus.KEPT, f"the candidate is not better ({direction} is better): {versus}"
            )
        reason = f"monitor episode {self.id}: {versus}"
        try:
            move = promote(self.repo, candidate.model, candidate.label, self.config.alias, reason)
        except RegistryError as exc:
            raise _Stop(
                EpisodeStatus.KEPT, f"the registry refused the promotion: {exc.message}"
            ) from None
        event = move.event
        self.steps["promotion"] = {
            "alias": self.config.alias,
            "from": move.previous.label if move.previous else None,
            "to": candidate.label,
            "event": event.id if event else None,
            "tag": event.tag if event else None,
        }
        self.steps["status"], self.steps["reason"] = (
            EpisodeStatus.PROMOTED,
            f"the candidate is better: {versus}",
        )


def _not_an_output(repo: Repo, rel: str) -> None:
    """Refuse training data that a stage writes: the run would overwrite the added rows."""
    from mlops.pipeline.schema import load_pipeline

    for stage in load_pipeline(repo.root).stages.values():
        for out in stage.outputs:
            if rel == out.path or rel.startswith(out.path + "/"):
                raise MonitorError(
                    f"mlops.yaml: monitor.retrain: {rel} is an output of stage {stage.name!r}, "
                    "which would overwrite the added rows; name that stage's input data instead"
                )


def _not_in(rows: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``rows`` that are not, value for value, a row of ``current``."""
    present = {tuple(map(_key, row)) for row in current.itertuples(index=False)}
    keep = [tuple(map(_key, row)) not in present for row in rows.itertuples(index=False)]
    return rows[keep]


def _key(value: object) -> object:
    # 1 and 1.0 (an int column read back as float) are the same value; NaN equals NaN.
    if isinstance(value, float):
        return "nan" if value != value else (int(value) if value.is_integer() else value)
    if hasattr(value, "item"):  # numpy scalars
        return _key(value.item())
    return value


def _encode(path: Path, current: pd.DataFrame, rows: pd.DataFrame, mode: str) -> bytes:
    """The training file's new bytes; plain CSV is appended to as text, keeping old rows."""
    import pandas as pd

    name = path.name.lower()
    sep = "\t" if ".tsv" in name else ","
    if name.endswith((".csv", ".tsv")):
        if mode == "replace":
            return str(rows.to_csv(index=False, sep=sep, lineterminator="\n")).encode()
        existing = path.read_bytes()
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        added = rows.to_csv(index=False, header=False, sep=sep, lineterminator="\n")
        return existing + str(added).encode()
    frame = rows if mode == "replace" else pd.concat([current, rows], ignore_index=True)
    buffer = io.BytesIO()
    if name.endswith((".parquet", ".pq")):
        frame.to_parquet(buffer, index=False)
    elif name.endswith((".csv.gz", ".tsv.gz")):
        frame.to_csv(buffer, index=False, sep=sep, compression={"method": "gzip"})
    else:
        gzip = {"method": "gzip"} if name.endswith(".gz") else None
        frame.to_json(buffer, orient="records", lines=True, compression=gzip)
    return buffer.getvalue()
