"""Opening the SQLite databases under .mlops/ (state cache, runs, monitoring history)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

# How long a command waits for another one's write to end before it gives up.
BUSY_TIMEOUT = 30.0


def connect(
    path: Path, synchronous: str = "NORMAL", same_thread: bool = True
) -> sqlite3.Connection:
    """A connection to the database at ``path`` (created if missing) in write-ahead-log mode.

    Several commands may write at once: each waits up to ``BUSY_TIMEOUT`` for the others.
    Switching a new database to WAL needs it alone for a moment, and when two processes
    create it together SQLite answers "database is locked" at once instead of waiting,
    so that switch is retried for as long.
    """
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, check_same_thread=same_thread)
    deadline = time.monotonic() + BUSY_TIMEOUT
    try:
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db
