"""The local executor: each job on a thread of this process, its commands in process
groups of their own (``mlops.core.processes``)."""

from __future__ import annotations

import threading
import time

from mlops.core.processes import GROUPS
from mlops.pipeline.executors.base import OutputLine, Report, StageJob
from mlops.pipeline.work import Workspace, run_job

# How long ``stop_all`` waits for the threads after their commands were killed.
_WIND_DOWN = 5.0


class LocalExecutor:
    """Runs jobs in this work tree, as many at once as the scheduler submits."""

    def __init__(self, ws: Workspace, report: Report) -> None:
        self.ws = ws
        self.report = report
        self.threads: list[threading.Thread] = []

    def submit(self, job: StageJob) -> None:
        store = self.ws.store
        if store.linker.chosen is None:
            store.linker.probe(self.ws.repo.cache_dir, self.ws.repo.mlops_dir)
        store.state.preload()  # a no-op after the first: done before threads share it
        thread = threading.Thread(
            target=self._work, args=(job,), name=f"stage-{job.stage.name}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _work(self, job: StageJob) -> None:
        name = job.stage.name

        def on_line(text: str, is_err: bool) -> None:
            self.report(OutputLine(name, text, is_err))

        self.report(run_job(self.ws, job, on_line))

    def stop_all(self) -> None:
        GROUPS.stop_all()  # a check a worker starts from now on is killed at once
        deadline = time.monotonic() + _WIND_DOWN
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
