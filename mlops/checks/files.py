"""The data files and models of one run of checks, each loaded once, only the columns needed.

Tables are read by :mod:`mlops.tables.read`; this module plans which columns of which
files the suites need, reads the files in a background thread while the checks start,
and keeps what was loaded for every check of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.checks.spec import CheckProblem, Suite
from mlops.core.imports import import_serially, importing
from mlops.errors import TableError
from mlops.tables.read import Data, Loaded, import_numpy_unspun, parse, read_table, table_format

if TYPE_CHECKING:
    from concurrent.futures import Future

Needs = dict[Path, frozenset[str] | None]


def plan_reads(suites: Iterable[Suite], root: Path) -> Needs:
    """Which columns of which files the suites need, so that each file is read once."""
    needs: Needs = {}

    def want(rel: str, cols: frozenset[str] | None) -> None:
        path = resolve(root, rel)
        if path in needs:
            old = needs[path]
            needs[path] = None if old is None or cols is None else old | cols
        else:
            needs[path] = cols

    for suite in suites:
        if suite.data is not None:
            want(suite.data, suite.data_columns())
        for check in suite.checks:
            if check.kind == "drift":
                want(check.args["reference"], check.columns())
            elif check.kind == "predicts":
                want(check.args["rows"], None)
    return needs


def resolve(root: Path, rel: str) -> Path:
    """``rel`` relative to the project root, normalised so equal files get equal keys."""
    return Path(os.path.normpath(root / rel))


class DataStore:
    """Loaded tables and models of one run, keyed by path (the state that lives here)."""

    def __init__(self, root: Path, needs: Needs | None = None) -> None:
        self.root = root
        self.needs: Needs = needs or {}
        self._tables: dict[Path, Data] = {}
        self._models: dict[Path, Any] = {}
        self._pending: dict[Path, Future[Loaded]] = {}

    def prefetch(self) -> None:
        """Start reading the planned data files in a background thread.

        pyarrow parses without holding the GIL, so the reads overlap what the caller
        does meanwhile: loading a suite's model (and scikit-learn), importing
        pyarrow's compute functions for the checks.
        """
        files = [p for p in self.needs if p.is_file() and table_format(p) is not None]
        if not files:
            return
        import_numpy_unspun()
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-read")
        for path in files:
            self._pending[path] = pool.submit(parse, path, self.needs[path])
        pool.shutdown(wait=False)

    def table(self, rel: str, key: str) -> Data:
        """The data file ``rel`` (``key`` is the YAML key that named it, for errors), or
        ``CheckProblem`` saying why it cannot be read."""
        path = resolve(self.root, rel)
        if path not in self._tables:
            pending = self._pending.pop(path, None)
            if pending is not None and not pending.done():
                # Most checks need it: importing it now overlaps the parse instead of following it.
                import_serially("pyarrow._compute")
            try:
                self._tables[path] = read_table(path, rel, key, self.needs.get(path), pending)
            except TableError as exc:
                raise CheckProblem(exc.key, exc.message) from exc
        return self._tables[path]

    def put(self, rel: str, frame: Any) -> None:
        """Use ``frame`` (a pandas DataFrame or a pyarrow Table) as the content of ``rel``."""
        self._tables[resolve(self.root, rel)] = Data.of(frame, rel)

    def model(self, rel: str, key: str) -> Any:
        """The model file ``rel``, loaded with joblib."""
        path = resolve(self.root, rel)
        if path not in self._models:
            if not path.is_file():
                raise CheckProblem(key, f"model file {rel} does not exist")
            try:
                with importing():  # unpickling imports the model's packages
                    import joblib

                    self._models[path] = joblib.load(path)
            except Exception as exc:  # unpickling runs arbitrary code: report any failure
                raise CheckProblem(
                    key, f"cannot load model {rel}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._models[path]
