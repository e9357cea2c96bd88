"""``mlops checkout``: make the workspace match the pointers, losing nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlops.core.fsutil import make_writable
from mlops.core.parallel import Progress
from mlops.core.repo import Repo, repo_lock
from mlops.errors import CacheError, WorkspaceConflict
from mlops.storage.cache import Soundness
from mlops.storage.links import SHARED
from mlops.storage.manifest import Entry
from mlops.storage.paths import refuse_symlinks
from mlops.storage.store import Store, open_store
from mlops.workspace.tracked import (
    ScannedFile,
    Target,
    desired_entries,
    find_targets,
    hash_files,
    scan_folder,
)


@dataclass(frozen=True)
class CheckoutResult:
    """What ``checkout`` did to one tracked path."""

    path: str
    placed: int
    removed: int
    unchanged: int
    replaced: tuple[str, ...]  # files whose content was not in the cache (only with --force)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "placed": self.placed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "replaced": list(self.replaced),
        }


@dataclass(frozen=True)
class _Plan:
    target: Target
    place: list[Entry]  # entries to put in place (paths relative to the target)
    remove: list[str]  # workspace files (absolute) to delete
    unchanged: int
    at_risk: list[str]  # files to overwrite or delete whose content the cache lacks
    clear: bool  # a file stands where a folder goes, or the reverse: remove it whole


def checkout(
    repo: Repo,
    paths: list[str] | None = None,
    force: bool = False,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Place every tracked path's content from the cache; refuse to lose unsaved data."""
    with repo_lock(repo, wait=30, purpose="checkout"), open_store(repo) as store:
        return checkout_targets(store, find_targets(repo, paths), force, jobs, progress)


def checkout_targets(
    store: Store,
    targets: list[Target],
    force: bool = False,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Place ``targets`` from the cache; the caller holds the lock and flushes the state.

    Nothing changes unless every object is present and sound, and (without
    ``force``) no file whose content the cache lacks would be overwritten.
    """
    repo = store.repo
    plans = [_plan(store, t, jobs, progress) for t in targets]
    at_risk = [f for plan in plans for f in plan.at_risk]
    if at_risk and not force:
        shown = ", ".join(repo.relpath(Path(f)) for f in at_risk[:5])
        more = f" and {len(at_risk) - 5} more" if len(at_risk) > 5 else ""
        raise WorkspaceConflict(
            f"checkout would overwrite or delete {len(at_risk)} file(s) whose content "
            f"is not in the cache: {shown}{more}; `mlops add` them first, or use --force"
        )
    _verify_objects(store, plans, jobs, progress)
    if any(plan.place for plan in plans) and store.linker.chosen is None:
        store.linker.probe(repo.cache_dir, repo.mlops_dir)
    return [_execute(store, plan, jobs, progress) for plan in plans]


def _plan(store: Store, target: Target, jobs: int | None, progress: Progress | None) -> _Plan:
    cache, repo = store.cache, store.repo
    # Before anything is read or written: never through a symbolic link, --force or not.
    refuse_symlinks(repo.root, target.data_path, repo.cache_dir)
    # Whether the objects to place are in the cache is asked as they are verified.
    wanted = desired_entries(cache, target, target.relpath(repo))
    path = target.data_path
    if path.is_dir():
        current, same_shape = scan_folder(path), target.pointer.is_dir
    elif path.is_file():
        current, same_shape = [ScannedFile("", str(path), os.stat(path))], not target.pointer.is_dir
    else:
        current, same_shape = [], True
    have = hash_files(store, current, jobs, progress)
    in_cache = cache.existing(e.oid for e in have)
    if not same_shape:
        lost = [f.abspath for f, e in zip(current, have, strict=True) if e.oid not in in_cache]
        return _Plan(target, wanted, [], 0, lost, clear=True)
    now = {e.path: (f.abspath, e.oid) for f, e in zip(current, have, strict=True)}
    place, remove, at_risk = [], [], []
    for entry in wanted:
        found = now.get(entry.path)
        if found is None or found[1] != entry.oid:
            place.append(entry)
            if found is not None and found[1] not in in_cache:
                at_risk.append(found[0])
    wanted_paths = {e.path for e in wanted}
    for rel, (abspath, oid) in now.items():
        if rel not in wanted_paths:
            remove.append(abspath)
            if oid not in in_cache:
                at_risk.append(abspath)
    return _Plan(target, place, remove, len(wanted) - len(place), at_risk, clear=False)


def _verify_objects(
    store: Store, plans: list[_Plan], jobs: int | None, progress: Progress | None
) -> None:
    # In the manifests' order, each once (sorting a million ids costs a second).
    oids = list(dict.fromkeys(e.oid for plan in plans for e in plan.place))
    found = store.cache.soundness(oids, jobs, progress)
    bad = [oid for oid, judged in zip(oids, found, strict=True) if judged == Soundness.CORRUPT]
    for oid in bad:
        store.cache.set_aside(oid)
    missing = {oid for oid, judged in zip(oids, found, strict=True) if judged == Soundness.MISSING}
    if missing:
        first = next(p for p in plans if any(e.oid in missing for e in p.place))
        raise CacheError(
            f"{first.target.relpath(store.repo)}: {len(missing)} object(s) are not in the "
            "cache; run `mlops pull` (or `mlops fetch`) first"
        )
    if bad:
        raise CacheError(
            f"{len(bad)} cache object(s) are corrupt (first: {bad[0]}) and were set aside; "
            "nothing was changed; run `mlops pull` to fetch them again"
        )


def _execute(
    store: Store, plan: _Plan, jobs: int | None, progress: Progress | None
) -> CheckoutResult:
    cache, linker = store.cache, store.linker
    path = plan.target.data_path
    removed = len(plan.remove)
    if plan.clear:
        if path.is_dir():
            removed += sum(1 for _ in path.rglob("*") if not _.is_dir())
            shutil.rmtree(path)
        else:
            removed += 1
            _unlink(str(path))
    for file in plan.remove:
        _unlink(file)
    if plan.target.pointer.is_dir:
        _remove_empty_dirs(path)
    # rpartition: a third of dirname's time over hundreds of thousands of entries.
    for folder in sorted({e.path.rpartition("/")[0] for e in plan.place if e.path}):
        (path / folder).mkdir(parents=True, exist_ok=True)

    base = str(path)
    state = store.state

    def put(entry: Entry) -> None:
        dst = f"{base}/{entry.path}" if entry.path else base
        if cache.place(entry.oid, dst, linker, entry.executable) not in SHARED:
            state.put(os.stat(dst), entry.oid)  # a copy has an inode of its own

    cache.map_files(put, plan.place, jobs, progress, "checking out")
    repo = store.repo
    return CheckoutResult(
        plan.target.relpath(repo),
        len(plan.place),
        removed,
        plan.unchanged,
        tuple(repo.relpath(Path(f)) for f in plan.at_risk),
    )


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        try:
            os.unlink(path)
        except PermissionError:
            make_writable(os.path.dirname(path))
            os.unlink(path)


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for folder, _dirs, _files in os.walk(root, topdown=False):
        if folder != str(root) and not os.listdir(folder):
            os.rmdir(folder)
