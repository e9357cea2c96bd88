"""Run records: every ``mlops run`` in ``.mlops/runs.db``, each also stored as an object.

The database also holds the pipeline's run cache (stage inputs -> outputs), so
that one ``mlops run`` opens one SQLite file and writes it in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.git import StatusProbe
from mlops.core.repo import Repo
from mlops.core.sqlite import connect
from mlops.errors import InputError

RUNS_DB = "runs.db"
# Packages whose versions are worth knowing when comparing two runs.
KEY_PACKAGES = (
    "mlops",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "joblib",
    "torch",
    "tensorflow",
    "xgboost",
    "lightgbm",
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs ("
    " id TEXT PRIMARY KEY, started REAL NOT NULL, ended REAL NOT NULL, status TEXT NOT NULL,"
    " user TEXT, host TEXT, git_commit TEXT, dirty INTEGER, argv TEXT, python TEXT,"
    " packages TEXT, object TEXT)",
    # One row per stage: what queries select on as columns, the rest as the stage's JSON.
    "CREATE TABLE IF NOT EXISTS stages ("
    " run_id TEXT NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL,"
    " status TEXT NOT NULL, exit_code INTEGER, checks TEXT, data TEXT NOT NULL,"
    " PRIMARY KEY (run_id, name))",
    "CREATE TABLE IF NOT EXISTS run_cache ("
    " key TEXT PRIMARY KEY, stage TEXT NOT NULL, created REAL NOT NULL, entry TEXT NOT NULL)",
)


@dataclass(frozen=True)
class StageRecord:
    """What one stage did in a run.

    ``status``: ran, skipped, restored (outputs taken from the cache), rechecked
    (only its check suites changed: its outputs were kept and passed them), failed,
    interrupted, blocked (an upstream stage failed) or cancelled (the run stopped
    after another stage failed). ``checks`` is free-form JSON written by the
    checks integration.
    """

    name: str
    status: str
    reasons: tuple[str, ...] = ()
    started: float | None = None
    duration: float = 0.0
    cmd: tuple[str, ...] = ()
    deps: dict[str, str] = field(default_factory=dict)  # path -> hash
    outs: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> key -> value
    metrics: dict[str, Any] = field(default_factory=dict)  # file -> key -> value
    exit_code: int | None = None
    error: str = ""
    checks: Any = None
    # Where it ran when not on this machine: worker address, host, seconds waited and ran.
    where: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "status": self.status,
            "reasons": list(self.reasons),
            "started": self.started,
            "duration": round(self.duration, 6),
            "cmd": list(self.cmd),
            "deps": self.deps,
            "outs": self.outs,
            "params": self.params,
            "metrics": self.metrics,
            "exit_code": self.exit_code,
            "error": self.error,
            "checks": self.checks,
        }
        if self.where is not None:  # local runs' records stay as they were
            data["where"] = self.where
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRecord:
        return cls(
            name=data["name"],
            status=data["status"],
            reasons=tuple(data.get("reasons") or ()),
            started=data.get("started"),
            duration=float(data.get("duration") or 0.0),
            cmd=tuple(data.get("cmd") or ()),
            deps=dict(data.get("deps") or {}),
            outs=dict(data.get("outs") or {}),
            params=dict(data.get("params") or {}),
            metrics=dict(data.get("metrics") or {}),
            exit_code=data.get("exit_code"),
            error=data.get("error") or "",
            checks=data.get("checks"),
            where=data.get("where"),
        )


@dataclass(frozen=True)
class RunRecord:
    """One ``mlops run``: where, when, on what code, and what each stage did.

    ``status``: success, failed or interrupted. ``object_id`` is the id of the
    record's canonical JSON in the object store (empty until stored).
    """

    id: str
    started: float
    ended: float
    status: str
    user: str
    host: str
    commit: str | None
    dirty: bool
    argv: tuple[str, ...]
    python: str
    packages: dict[str, str]
    stages: tuple[StageRecord, ...]
    object_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-able data (without ``object_id``, which is its hash)."""
        return {
            "id": self.id,
            "started": self.started,
            "ended": self.ended,
            "status": self.status,
            "user": self.user,
            "host": self.host,
            "commit": self.commit,
            "dirty": self.dirty,
            "argv": list(self.argv),
            "python": self.python,
            "packages": self.packages,
            "stages": [s.to_dict() for s in self.stages],
        }

    def canonical_bytes(self) -> bytes:
        """The stored form: sorted keys, no spaces."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    def count(self, status: str) -> int:
        return sum(1 for s in self.stages if s.status == status)

    @classmethod
    def from_dict(cls, data: dict[str, Any], object_id: str = "") -> RunRecord:
        return cls(
            id=data["id"],
            started=float(data["started"]),
            ended=float(data["ended"]),
            status=data["status"],
            user=data.get("user") or "",
            host=data.get("host") or "",
            commit=data.get("commit"),
            dirty=bool(data.get("dirty")),
            argv=tuple(data.get("argv") or ()),
            python=data.get("python") or "",
            packages=dict(data.get("packages") or {}),
            stages=tuple(StageRecord.from_dict(s) for s in data.get("stages") or ()),
            object_id=object_id,
        )


@dataclass(frozen=True)
class Environment:
    """Who ran, where, on which commit, with which Python and packages."""

    user: str
    host: str
    commit: str | None
    dirty: bool
    python: str
    packages: dict[str, str]


def new_run_id() -> str:
    """A random 12-hex-digit run id."""
    return os.urandom(6).hex()


class EnvironmentProbe:
    """The environment of a run, cheaply: ``git status`` starts at once and runs while the
    caller works; ``result()`` collects it. No package is imported to learn versions."""

    def __init__(self, root: Path) -> None:
        self._status = StatusProbe(root)

    def result(self) -> Environment:
        """Wait for ``git status`` and describe the environment."""
        commit, dirty = self._status.result()
        return Environment(
            user=_user(),
            host=os.uname().nodename,
            commit=commit,
            dirty=dirty,
            python=sys.version.split()[0],
            packages=package_versions(KEY_PACKAGES),
        )


def environment(root: Path) -> Environment:
    """The current environment: user, host, Git commit and dirty flag, Python, packages."""
    return EnvironmentProbe(root).result()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names``, read from ``*.dist-info`` folder names.

    One directory listing per ``sys.path`` entry: far cheaper than
    ``importlib.metadata`` lookups or imports.
    """
    wanted = {_normal(name): name for name in names}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not item.endswith((".dist-info", ".egg-info")):
                continue
            name, _, version = item.rsplit(".", 1)[0].partition("-")
            key = wanted.get(_normal(name))
            # A source tree's ``NAME.egg-info`` (from an editable install) has no version.
            if key is not None and key not in found and version:
                found[key] = version.split("-py")[0]
    return dict(sorted(found.items()))


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


class RunsDB:
    """``.mlops/runs.db``: run records and the run cache, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = connect(self.path)
            for statement in _SCHEMA:
                db.execute(statement)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def save(self, record: RunRecord, cache_entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Store a run and new run-cache entries (key, stage, entry) in one transaction."""
        db = self._connect()
        with db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.started,
                    record.ended,
                    record.status,
                    record.user,
                    record.host,
                    record.commit,
                    int(record.dirty),
                    json.dumps(list(record.argv)),
                    record.python,
                    json.dumps(record.packages),
                    record.object_id,
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        record.id,
                        position,
                        s.name,
                        s.status,
                        s.exit_code,
                        json.dumps(s.checks),
                        json.dumps(s.to_dict()),
                    )
                    for position, s in enumerate(record.stages)
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO run_cache VALUES (?, ?, ?, ?)",
                [
                    (key, stage, record.ended, json.dumps(entry))
                    for key, stage, entry in cache_entries
                ],
            )

    def cached(self, key: str) -> dict[str, Any] | None:
        """The run-cache entry for a stage's inputs, if an earlier run recorded one."""
        if self._db is None and not self.path.exists():
            return None
        row = (
            self._connect().execute("SELECT entry FROM run_cache WHERE key = ?", (key,)).fetchone()
        )
        return json.loads(row[0]) if row else None

    def cache_entries(self) -> dict[str, dict[str, Any]]:
        """Every run-cache entry, by key."""
        if self._db is None and not self.path.exists():
            return {}
        rows = self._connect().execute("SELECT key, entry FROM run_cache").fetchall()
        return {key: json.loads(entry) for key, entry in rows}

    def records(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        if not self.path.exists():
            return []
        rows = self._connect().execute(
            "SELECT id FROM runs ORDER BY started DESC LIMIT ?", (-1 if limit is None else limit,)
        )
        return [self._load(run_id) for (run_id,) in rows.fetchall()]

    def stage_values(
        self, statuses: Sequence[str], stages: Sequence[str], executed: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """Runs, newest first, as (id, started, ended, status, commit, dirty, stages) where
        ``stages`` is a list of [position, name, status, params, metrics]; one query.

        ``statuses``: only runs that ended so; ``stages``: only runs in which one of
        these stages had a status in ``executed``. SQLite takes the params and metrics
        out of each stage's JSON and gathers a run's stages into one JSON text, so that
        Python parses one small document per run.
        """
        if not self.path.exists():
            return []
        sql = (
            "SELECT r.id, r.started, r.ended, r.status, r.git_commit, r.dirty,"
            " (SELECT json_group_array(json_array(s.position, s.name, s.status,"
            " json(json_extract(s.data, '$.params')), json(json_extract(s.data, '$.metrics'))))"
            " FROM stages s WHERE s.run_id = r.id)"
            " FROM runs r"
        )
        where: list[str] = []
        args: list[str] = []
        if statuses:
            where.append(f"r.status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if stages:
            where.append(
                "r.id IN (SELECT run_id FROM stages WHERE"
                f" name IN ({', '.join('?' * len(stages))})"
                f" AND status IN ({', '.join('?' * len(executed))}))"
            )
            args.extend([*stages, *executed])
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.started DESC, r.id"
        return [
            (*row[:6], sorted(json.loads(row[6] or "[]")))
            for row in self._connect().execute(sql, args)
        ]

    def find(self, prefix: str) -> RunRecord:
        """The run whose id starts with ``prefix``; unknown or ambiguous is an input error."""
        if not prefix or not self.path.exists():
            raise InputError(f"no run with id {prefix!r} (see `mlops runs list`)")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        ids = [
            row[0]
            for row in self._connect().execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY started DESC LIMIT 6",
                (escaped + "%",),
            )
        ]
        if not ids:
            raise InputError(f"no run with id {prefix!r} (see `mlops runs list`)")
        if len(ids) > 1 and prefix not in ids:
            raise InputError(f"run id {prefix!r} is ambiguous: {', '.join(ids[:5])}")
        return self._load(prefix if prefix in ids else ids[0])

    def _load(self, run_id: str) -> RunRecord:
        db = self._connect()
        row = db.execute(
            "SELECT id, started, ended, status, user, host, git_commit, dirty, argv, python,"
            " packages, object FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        stage_rows = db.execute(
            "SELECT data FROM stages WHERE run_id = ? ORDER BY position", (run_id,)
        ).fetchall()
        stages = tuple(StageRecord.from_dict(json.loads(data)) for (data,) in stage_rows)
        return RunRecord(
            id=row[0],
            started=row[1],
            ended=row[2],
            status=row[3],
            user=row[4] or "",
            host=row[5] or "",
            commit=row[6],
            dirty=bool(row[7]),
            argv=tuple(json.loads(row[8] or "[]")),
            python=row[9] or "",
            packages=json.loads(row[10] or "{}"),
            stages=stages,
            object_id=row[11] or "",
        )


def open_runs(repo: Repo) -> RunsDB:
    """The repository's run database."""
    return RunsDB(repo.mlops_dir / RUNS_DB)


def list_runs(repo: Repo, limit: int | None = None) -> list[RunRecord]:
    """Recorded runs, newest first."""
    db = open_runs(repo)
    try:
        return db.records(limit)
    finally:
        db.close()


def get_run(repo: Repo, run_id: str) -> RunRecord:
    """One run by id or unambiguous id prefix."""
    db = open_runs(repo)
    try:
        return db.find(run_id)
    finally:
        db.close()


@dataclass(frozen=True)
class RunDiffRow:
    """One parameter, metric or data path in two runs (None where a run lacks it)."""

    kind: str  # "param", "metric" or "data"
    name: str  # "params.yaml:train.lr", "metrics.json:accuracy", "data/prepared"
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return bool(self.a != self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "a": self.a, "b": self.b}


def diff_runs(repo: Repo, id_a: str, id_b: str) -> tuple[RunRecord, RunRecord, list[RunDiffRow]]:
    """Params, metrics and data hashes of two runs, side by side."""
    db = open_runs(repo)
    try:
        a, b = db.find(id_a), db.find(id_b)
    finally:
        db.close()
    rows: list[RunDiffRow] = []
    for kind, pick in (("param", _params_of), ("metric", _metrics_of), ("data", _data_of)):
        left, right = pick(a), pick(b)
        rows.extend(
            RunDiffRow(kind, name, left.get(name), right.get(name))
            for name in sorted(left.keys() | right.keys())
        )
    return a, b, rows


def _params_of(record: RunRecord) -> dict[str, Any]:
    return {
        f"{file}:{key}": value
        for stage in record.stages
        for file, values in stage.params.items()
        for key, value in values.items()
    }


def _metrics_of(record: RunRecord) -> dict[str, Any]:
    return {
        f"{file}:{key}": value
        for stage in record.stages
        for file, values in stage.metrics.items()
        for key, value in (values.items() if isinstance(values, dict) else [("", values)])
    }


def _data_of(record: RunRecord) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for stage in record.stages:
        data.update(stage.deps)
    for stage in record.stages:
        data.update(stage.outs)
    return data
