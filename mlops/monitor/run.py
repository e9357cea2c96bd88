"""``mlops monitor``: one monitoring pass. Find the batch, score it, and on an alert
(with retraining) run a self-healing episode; the result is appended to the history,
the episode recorded in it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.repo import Repo
from mlops.errors import ConfigError
from mlops.monitor.config import load_monitor_config
from mlops.monitor.heal import EpisodeStatus, monitor_lock, retrain_episode
from mlops.monitor.history import MonitorRecord, list_records
from mlops.monitor.monitoring import find_batch, save_record, score_batch
from mlops.storage.store import open_store

if TYPE_CHECKING:
    from mlops.pipeline.results import RunEvent


class MonitorStatus(StrEnum):
    """How a monitoring pass judged its batch."""

    HEALTHY = "healthy"
    ALERT = "alert"
    HEALED = "healed"  # an alert fixed by promoting a retrained candidate
    NO_BATCH = "no-batch"


@dataclass(frozen=True)
class MonitorResult:
    """What ``run_monitor`` did: the stored record, or ``note`` when no batch was new."""

    record: MonitorRecord | None
    record_id: str | None = None
    html: str | None = None
    note: str = ""

    @property
    def status(self) -> MonitorStatus:
        """How the batch was judged (``NO_BATCH``: none was new)."""
        if self.record is None:
            return MonitorStatus.NO_BATCH
        if self.record.healthy:
            return MonitorStatus.HEALTHY
        retrain = self.record.links.get("retrain") or {}
        promoted = retrain.get("status") == EpisodeStatus.PROMOTED
        return MonitorStatus.HEALED if promoted else MonitorStatus.ALERT

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; the drift part leaves out the plot histograms (the HTML report has them)."""
        from mlops.monitor.drift import DriftReport

        record = None
        if self.record is not None:
            record = self.record.to_dict()
            record["drift"] = DriftReport.from_dict(self.record.drift).to_dict(histograms=False)
        return {
            "status": self.status,
            "record_id": self.record_id,
            "html": self.html,
            "note": self.note,
            "record": record,
        }


def run_monitor(
    repo: Repo,
    data: str | None = None,
    retrain: bool | None = None,
    html: str | os.PathLike[str] | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
    argv: tuple[str, ...] = (),
) -> MonitorResult:
    """Score the batch (``data`` or the newest unseen one) and store the result.

    ``retrain`` (default: ``on_alert: retrain`` in mlops.yaml) runs a self-healing episode
    on an alert; only one such episode runs at a time in a repository. ``html`` also writes
    the report there. ``on_event`` sees the retraining run's progress; ``argv`` is recorded
    as that run's command line.
    """
    config = load_monitor_config(repo.root)
    heal = config.on_alert == "retrain" if retrain is None else retrain
    if heal and config.retrain is None:
        raise ConfigError(
            "mlops.yaml: monitor.retrain: not set; say how a batch joins the training data "
            "before retraining (e.g. retrain: {append_to: data/train.csv})"
        )
    with monitor_lock(repo) if heal else contextlib.nullcontext():
        with open_store(repo) as store:
            batch, note = find_batch(repo, store, config, data)
            if batch is None:
                return MonitorResult(None, note=note)
            scored = score_batch(repo, store, config, batch)
        record = scored.record
        if heal and not record.healthy:
            links = retrain_episode(repo, config, scored, on_event, argv)
            record = replace(record, links={**record.links, **links})
        record_id = save_record(repo, record)
        written = None
        if html is not None:
            from mlops.monitor.report_html import write_html_report

            history = list_records(repo.mlops_dir, model=config.model)
            write_html_report(Path(html), record, history)
            written = str(html)
    return MonitorResult(record, record_id, written)
