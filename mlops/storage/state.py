"""The state cache: (inode, mtime_ns, size) -> hash, so no unchanged file is hashed twice."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from mlops.storage.hashing import hash_file

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS state ("
    " inode INTEGER PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,"
    " hash TEXT NOT NULL)"
)


class StateCache:
    """Remembers the hash of every file seen, keyed by inode and checked by mtime and size.

    Rows are read once into memory and new ones written in one transaction on
    ``flush``; a lost update only costs a re-hash, never a wrong answer.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._known: dict[int, tuple[int, int, str]] | None = None
        self._pending: dict[int, tuple[int, int, str]] = {}

    def preload(self) -> None:
        """Read the table now (before worker threads share this object)."""
        self._load()

    def _load(self) -> dict[int, tuple[int, int, str]]:
        if self._known is None:
            self._known = {}
            if self._path.exists():
                with closing(self._connect()) as db:
                    rows = db.execute("SELECT inode, mtime_ns, size, hash FROM state")
                    self._known = {inode: (mtime, size, h) for inode, mtime, size, h in rows}
        return self._known

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_SCHEMA)
        return db

    def get(self, st: os.stat_result) -> str | None:
        """The known hash of a file with this stat, or None."""
        row = self._pending.get(st.st_ino) or self._load().get(st.st_ino)
        if row is not None and row[0] == st.st_mtime_ns and row[1] == st.st_size:
            return row[2]
        return None

    def put(self, st: os.stat_result, oid: str) -> None:
        """Remember that the file with this stat has hash ``oid``."""
        self._pending[st.st_ino] = (st.st_mtime_ns, st.st_size, oid)

    def hash(self, path: str | os.PathLike[str], st: os.stat_result | None = None) -> str:
        """The file's hash, from the cache when its stat is unchanged."""
        st = st or os.stat(path)
        known = self.get(st)
        if known is not None:
            return known
        oid = hash_file(path, st.st_size)
        # A file changed while we read it must not be remembered under the old stat.
        if os.stat(path).st_mtime_ns == st.st_mtime_ns:
            self.put(st, oid)
        return oid

    def put_many(self, items: Iterable[tuple[os.stat_result, str]]) -> None:
        """Remember several files at once."""
        for st, oid in items:
            self.put(st, oid)

    def flush(self) -> None:
        """Write remembered hashes to disk in one transaction."""
        if not self._pending:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                [(inode, m, s, h) for inode, (m, s, h) in self._pending.items()],
            )
        self._load().update(self._pending)
        self._pending = {}
