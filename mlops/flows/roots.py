"""What a repository needs: the objects named by its pointers, its lock, its model
versions and its monitoring records, for a set of commits. ``gc`` keeps them, ``push``
sends them and ``fetch``/``pull`` bring them; the layers below take them as roots and
know nothing of pipelines, the registry or monitoring.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from mlops.core.git import (
    all_commits,
    has_commits,
    read_blobs,
    ref_commits,
    resolve_revision,
    tree_files,
)
from mlops.core.parallel import Progress
from mlops.core.repo import Repo, repo_lock
from mlops.monitor.monitoring import monitor_objects
from mlops.pipeline.lock import lock_objects, output_targets
from mlops.registry.content import registry_objects
from mlops.remote import transfer
from mlops.remote.transfer import PullResult, Roots, TransferResult
from mlops.storage.gc import GcResult
from mlops.storage.gc import gc as collect
from mlops.storage.pointer import SUFFIX, parse_pointer
from mlops.storage.store import Store, expand_folders, open_store
from mlops.workspace.tracked import Target, find_targets


def data_roots(store: Store, commits: list[str], uncached: bool = False) -> set[str]:
    """The objects the workspace and ``commits`` name: data pointers, cached pipeline
    outputs and their run records (folders as their manifests). ``uncached`` adds the
    copies of ``cache: false`` outputs (see ``lock_objects``)."""
    repo = store.repo
    roots = {t.pointer.oid for t in find_targets(repo)}
    roots |= lock_objects(store, commits, uncached)
    for commit in commits:
        blobs = tree_files(repo.root, commit, SUFFIX)
        contents = read_blobs(repo.root, blobs.values())
        for name, blob in blobs.items():
            text = contents[blob].decode(errors="replace")
            roots.add(parse_pointer(text, f"{name} at {commit[:10]}").oid)
    return roots


def record_roots(repo: Repo) -> set[str]:
    """Every registered model version and monitoring record."""
    return registry_objects(repo) | monitor_objects(repo)


def tracked_targets(repo: Repo, paths: list[str] | None = None) -> list[Target]:
    """The tracked paths (``paths`` among them): pointer files' data and the cached
    pipeline outputs that ``mlops.lock`` names."""
    return find_targets(repo, paths, output_targets(repo.root))


def _commits(repo: Repo, revisions: list[str] | None) -> list[str]:
    if revisions is not None:
        return [resolve_revision(repo.root, rev) for rev in revisions]
    return [resolve_revision(repo.root, "HEAD")] if has_commits(repo.root) else []


def _roots(
    repo: Repo, paths: list[str] | None, revisions: list[str] | None, sharing: bool
) -> Roots:
    """``paths``' targets, or everything the workspace and the commits need. ``sharing``
    (push) adds every model version and monitoring record this clone holds; fetch leaves
    those to ``mlops model get`` and ``load_model``, so that a pull never waits on (or
    fails for) a model nobody asked for."""
    # Read when the transfer asks, under the repository lock.
    targets = functools.cache(functools.partial(tracked_targets, repo, paths))
    find: Callable[[Store], set[str]]
    if paths:

        def find(store: Store) -> set[str]:
            return {t.pointer.oid for t in targets()}

    else:

        def find(store: Store) -> set[str]:
            found = data_roots(store, _commits(repo, revisions))
            return found | store.cache.existing(record_roots(repo)) if sharing else found

    return Roots(find, targets)


def push(
    repo: Repo,
    paths: list[str] | None = None,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    revisions: list[str] | None = None,
    run_cache: bool = False,
) -> TransferResult:
    """Send what the workspace and HEAD (or ``revisions``) need that the remote lacks, with
    the model versions and monitoring records this clone holds (and, with ``run_cache``,
    its run-cache entries with their outputs, for teammates' and workers' runs)."""
    result = transfer.push(repo, _roots(repo, paths, revisions, True), remote, jobs, progress)
    if not run_cache:
        return result
    from mlops.pipeline.shared_cache import push_entries
    from mlops.remote.backend import open_backend
    from mlops.remote.config import get_remote

    backend = open_backend(get_remote(repo, remote), repo)
    with repo_lock(repo, wait=30, purpose="push"), open_store(repo) as store:
        sent = push_entries(repo, store, backend, jobs or transfer.default_transfer_jobs())
    return replace(result, run_cache=sent)


def fetch(
    repo: Repo,
    paths: list[str] | None = None,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Bring into the cache what the workspace and HEAD (or ``paths``) need."""
    return transfer.fetch(repo, _roots(repo, paths, None, False), remote, jobs, progress)


def pull(
    repo: Repo,
    paths: list[str] | None = None,
    remote: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> PullResult:
    """``fetch``, then ``checkout`` of the same paths."""
    roots = _roots(repo, paths, None, False)
    return transfer.pull(repo, roots, remote, jobs, force, progress)


def gc(repo: Repo, all_commits_: bool = False, dry_run: bool = False) -> GcResult:
    """Remove the objects that neither the workspace, a branch or tag (or, with
    ``all_commits_``, any commit), a model version nor a monitoring record needs."""
    with repo_lock(repo, wait=30, purpose="gc"), open_store(repo) as store:
        commits = all_commits(repo.root) if all_commits_ else ref_commits(repo.root)
        roots = data_roots(store, commits, uncached=True) | record_roots(repo)
        return collect(store, expand_folders(store.cache, roots), dry_run)
