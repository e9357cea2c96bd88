"""Entry point of the Git hooks that ``mlops install-hooks`` writes.

``python -m mlops._githook HOOK [ARGS...]``. Like ``__main__``, this is the
command-line layer: it prints and sets the exit code. It lives outside
``mlops.cli`` because the pre-commit hook runs on every commit and must not pay
for loading typer and every command module; ``mlops hook HOOK`` (used by the
pre-commit framework) calls the same ``main``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def _pre_commit(args: list[str]) -> int:
    from mlops.flows.githooks import mlops_repo_here, stale_pointers

    repo = mlops_repo_here()
    problems = stale_pointers(repo) if repo else []
    for problem in problems:
        sys.stderr.write(f"mlops: {problem}\n")
    return 1 if problems else 0


def _post_checkout(args: list[str]) -> int:
    from mlops.flows.githooks import is_branch_checkout, mlops_repo_here
    from mlops.workspace.checkout import checkout

    repo = mlops_repo_here()
    if repo is None or not is_branch_checkout(args, dict(os.environ)):
        return 0
    for r in checkout(repo):
        if r.placed or r.removed:
            sys.stderr.write(f"mlops: {r.path}: {r.placed} placed, {r.removed} removed\n")
    return 0


def _pre_push(args: list[str]) -> int:
    from mlops.flows.githooks import mlops_repo_here, pushed_revisions
    from mlops.flows.roots import push

    repo = mlops_repo_here()
    if repo is None:
        return 0
    refs = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    revisions = pushed_revisions(refs, dict(os.environ))
    if revisions == []:
        return 0  # the push only deletes refs
    result = push(repo, revisions=revisions)
    sys.stderr.write(f"mlops: pushed {result.objects} object(s) to remote {result.remote!r}\n")
    return 0


HOOKS: dict[str, Callable[[list[str]], int]] = {
    "pre-commit": _pre_commit,
    "post-checkout": _post_checkout,
    "pre-push": _pre_push,
}


def main(argv: list[str]) -> int:
    """Run hook ``argv[0]`` with Git's arguments; return the exit code."""
    from mlops.errors import MlopsError

    if not argv or argv[0] not in HOOKS:
        sys.stderr.write(f"usage: python -m mlops._githook {{{','.join(HOOKS)}}} [ARGS...]\n")
        return 2
    try:
        return HOOKS[argv[0]](argv[1:])
    except MlopsError as exc:
        sys.stderr.write(f"mlops: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("mlops: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
