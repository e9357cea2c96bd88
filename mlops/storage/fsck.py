"""``mlops fsck``: re-hash every cache object and move corrupt ones aside."""

from __future__ import annotations

from dataclasses import dataclass

from mlops.core.parallel import Progress, parallel_map
from mlops.core.repo import Repo, repo_lock
from mlops.storage.store import open_store


@dataclass(frozen=True)
class FsckResult:
    """How many objects were checked, and which were corrupt (now in ``.mlops/corrupt/``)."""

    checked: int
    corrupt: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "corrupt": list(self.corrupt)}


def fsck(repo: Repo, jobs: int | None = None, progress: Progress | None = None) -> FsckResult:
    """Re-hash every object; move those whose bytes do not match their id aside."""
    with repo_lock(repo, wait=30, purpose="fsck"), open_store(repo) as store:
        oids = sorted(store.cache.iter_objects())
        good = parallel_map(store.cache.rehash, oids, jobs, progress, "checking")
        corrupt = tuple(oid for oid, ok in zip(oids, good, strict=True) if not ok)
        for oid in corrupt:
            store.cache.set_aside(oid)
    return FsckResult(len(oids), corrupt)
