"""The state cache: (inode, mtime_ns, size) -> hash, so no unchanged file is hashed twice.

It also remembers, per tracked folder, a fingerprint of every file's stat at the
moment the folder was last found to match its snapshot: an unchanged folder is
then known clean from one ``scandir`` pass and one row, without per-file lookups.
With it go the stat line and hash of each file, so that re-adding a folder where a few
files changed looks up one row instead of one per file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

from mlops.sqlite import connect
from mlops.storage.hashing import hash_file_stat

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS state ("
    " inode INTEGER PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS folders ("
    " path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, oid TEXT NOT NULL,"
    " generation TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS folder_files (path TEXT PRIMARY KEY, files TEXT NOT NULL);"
)


# inode, mtime in ns, size, hash
StateRow = tuple[int, int, int, str]


class FolderRecord(NamedTuple):
    """A folder known to hold exactly snapshot ``oid`` while its stats gave ``fingerprint``."""

    fingerprint: str
    oid: str
    generation: str  # the cache generation when every object was last seen present


class StateCache:
    """Remembers the hash of every file seen, keyed by inode and checked by mtime and size.

    Single lookups query one row; bulk work calls ``preload`` to read every row
    once. New rows are written in one transaction on ``flush``: a lost update
    only costs a re-hash, never a wrong answer.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._known: dict[int, tuple[int, int, str]] | None = None
        self._pending: dict[int, tuple[int, int, str]] = {}
        self._pending_folders: dict[str, tuple[FolderRecord, str]] = {}

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Losing the newest rows in a power cut only costs a re-hash.
            db = connect(self._path, synchronous="OFF", same_thread=False)
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def preload(self) -> None:
        """Read every row now: for bulk lookups, and before worker threads share this."""
        if self._known is None:
            rows = self._connect().execute("SELECT inode, mtime_ns, size, hash FROM state")
            self._known = {inode: (mtime, size, h) for inode, mtime, size, h in rows}

    def get(self, st: os.stat_result) -> str | None:
        """The known hash of a file with this stat, or None."""
        row = self._pending.get(st.st_ino)
        if row is None:
            if self._known is not None:
                row = self._known.get(st.st_ino)
            else:
                row = (
                    self._connect()
                    .execute("SELECT mtime_ns, size, hash FROM state WHERE inode = ?", (st.st_ino,))
                    .fetchone()
                )
        if row is not None and row[0] == st.st_mtime_ns and row[1] == st.st_size:
            return str(row[2])
        return None

    def put(self, st: os.stat_result, oid: str) -> None:
        """Remember that the file with this stat has hash ``oid``."""
        self._pending[st.st_ino] = (st.st_mtime_ns, st.st_size, oid)

    def hash(self, path: str | os.PathLike[str], st: os.stat_result | None = None) -> str:
        """The file's hash, from the cache when its stat is unchanged."""
        st = st or os.stat(path)
        known = self.get(st)
        return known if known is not None else self.hash_unknown(path, st)

    def hash_unknown(self, path: str | os.PathLike[str], st: os.stat_result) -> str:
        """Hash a file the cache does not know (``get`` said None) and remember it."""
        oid, after = hash_file_stat(path, st.st_size)
        # A file changed while we read it must not be remembered under the old stat.
        if after.st_mtime_ns == st.st_mtime_ns and after.st_size == st.st_size:
            self.put(st, oid)
        return oid

    def put_many(self, items: Iterable[tuple[os.stat_result, str]]) -> None:
        """Remember several files at once."""
        for st, oid in items:
            self.put(st, oid)

    def pending_rows(self) -> list[StateRow]:
        """What was remembered and not yet written: to carry it out of a worker process."""
        return [(inode, *row) for inode, row in self._pending.items()]

    def put_rows(self, rows: Iterable[StateRow]) -> None:
        """Remember rows from ``pending_rows`` (of a worker process)."""
        self._pending.update((inode, (mtime, size, oid)) for inode, mtime, size, oid in rows)

    def folder(self, path: str) -> FolderRecord | None:
        """What was last recorded for the tracked folder ``path``."""
        row = (
            self._connect()
            .execute("SELECT fingerprint, oid, generation FROM folders WHERE path = ?", (path,))
            .fetchone()
        )
        return FolderRecord(*row) if row else None

    def put_folder(
        self, path: str, record: FolderRecord, lines: list[str], oids: list[str]
    ) -> None:
        """Remember that folder ``path`` matched its snapshot under this fingerprint, and
        each file's stat line with its hash (see ``folder_hashes``)."""
        text = "\n".join([f"{line}\0{oid}" for line, oid in zip(lines, oids, strict=True)])
        self._pending_folders[path] = (record, text)

    def folder_hashes(self, path: str) -> dict[str, str]:
        """Stat line -> hash of every file of folder ``path`` when it last matched its
        snapshot: a file whose stat line is the same still has that content."""
        row = (
            self._connect()
            .execute("SELECT files FROM folder_files WHERE path = ?", (path,))
            .fetchone()
        )
        if not row:
            return {}
        return dict(item.rsplit("\0", 1) for item in row[0].split("\n") if "\0" in item)

    def flush(self) -> None:
        """Write remembered hashes to disk in one transaction."""
        if not self._pending and not self._pending_folders:
            return
        db = self._connect()
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                [(inode, m, s, h) for inode, (m, s, h) in self._pending.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO folders VALUES (?, ?, ?, ?)",
                [(path, *record) for path, (record, _) in self._pending_folders.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO folder_files VALUES (?, ?)",
                [(path, files) for path, (_, files) in self._pending_folders.items()],
            )
        if self._known is not None:
            self._known.update(self._pending)
        self._pending = {}
        self._pending_folders = {}

    def close(self) -> None:
        """Close the database connection."""
        if self._db is not None:
            with closing(self._db):
                self._db = None
