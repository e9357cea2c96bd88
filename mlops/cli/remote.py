"""Sharing commands: remote add/list/remove/modify, push, pull, fetch, install-hooks, hook."""

from __future__ import annotations

from typing import Any

import typer

from mlops.cli import complete
from mlops.cli.app import app, echo, emit_json, human_size, json_option

JSON = json_option()
JOBS = typer.Option(
    None, "--jobs", "-j", min=1, help="Parallel transfers (default: 4 per core, at most 32)."
)
REMOTE = typer.Option(
    None,
    "--remote",
    "-r",
    help="Remote name (default: core.remote).",
    autocompletion=complete.remotes,
)
PATHS = typer.Argument(None, help="Limit to these tracked paths.")
LOCAL = typer.Option(
    False, "--local", help="Write to .mlops/config.local.yaml (per machine, not committed)."
)

remote_app = typer.Typer(
    help="Configure remotes: where push, pull and fetch move objects.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(remote_app, name="remote")
hook_app = typer.Typer(
    help="Entry points run by the Git hooks (and the pre-commit framework).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(hook_app, name="hook")


def _repo() -> Any:
    from mlops.core.repo import find_repo

    return find_repo()


@remote_app.command("add")
def remote_add(
    name: str = typer.Argument(..., help="A short name, such as origin."),
    url: str = typer.Argument(..., help="A folder, or an fsspec URL: s3://, gs://, az://, ssh://"),
    default: bool = typer.Option(False, "--default", "-d", help="Make it the default remote."),
    local: bool = LOCAL,
) -> None:
    """Configure a remote."""
    from mlops.remote.config import add_remote

    spec = add_remote(_repo(), name, url, default, local)
    where = ".mlops/config.local.yaml" if local else ".mlops/config.yaml"
    echo(f"added remote {spec.name!r} -> {spec.to_dict()['url']} in {where}")


@remote_app.command("list")
def remote_list(json: bool = JSON) -> None:
    """List remotes (secrets are masked)."""
    from mlops.remote.config import list_remotes

    remotes = [r.to_dict() for r in list_remotes(_repo())]
    if json:
        emit_json(remotes)
        return
    if not remotes:
        echo("No remotes; add one with `mlops remote add NAME URL --default`.")
    for r in remotes:
        extra = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("name", "url", "default"))
        mark = " (default)" if r["default"] else ""
        echo(f"{r['name']}\t{r['url']}{mark}" + (f"\t{extra}" if extra else ""))


@remote_app.command("remove")
def remote_remove(
    name: str = typer.Argument(..., help="The remote to forget.", autocompletion=complete.remotes),
) -> None:
    """Forget a remote (its objects stay where they are)."""
    from mlops.remote.config import remove_remote

    remove_remote(_repo(), name)
    echo(f"removed remote {name!r}")


@remote_app.command("modify")
def remote_modify(
    name: str = typer.Argument(..., help="The remote to change.", autocompletion=complete.remotes),
    key: str = typer.Argument(..., help="url, endpoint_url, profile, pack, connect_timeout..."),
    value: str = typer.Argument(..., help="The new value (secrets need --local)."),
    local: bool = LOCAL,
) -> None:
    """Set one option of a remote."""
    from mlops.remote.config import modify_remote

    modify_remote(_repo(), name, key, value, local)
    echo(f"set remote.{name}.{key}")


@app.command()
def push(
    paths: list[str] = PATHS,
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
    rev: list[str] = typer.Option(
        None, "--rev", help="Push what these commits need instead of HEAD (repeatable)."
    ),
    run_cache: bool = typer.Option(
        False, "--run-cache", help="Also push the run cache, for teammates' and workers' runs."
    ),
    json: bool = JSON,
) -> None:
    """Send the objects the workspace and HEAD need that the remote lacks."""
    from mlops.cli.progress import progress_bar
    from mlops.flows.roots import push as do_push

    with progress_bar() as report:
        result = do_push(_repo(), paths or None, remote, jobs, report, rev or None, run_cache)
    _report(result, json)


@app.command()
def fetch(
    paths: list[str] = PATHS,
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
    json: bool = JSON,
) -> None:
    """Bring into the cache the objects the pointers need, without touching the workspace."""
    from mlops.cli.progress import progress_bar
    from mlops.flows.roots import fetch as do_fetch

    with progress_bar() as report:
        result = do_fetch(_repo(), paths or None, remote, jobs, report)
    _report(result, json)


@app.command()
def pull(
    paths: list[str] = PATHS,
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
    force: bool = typer.Option(
        False, "--force", "-f", help="Replace workspace files even when not in the cache."
    ),
    json: bool = JSON,
) -> None:
    """Fetch, then check out: make the workspace match the pointers."""
    from mlops.cli.progress import progress_bar
    from mlops.flows.roots import pull as do_pull

    with progress_bar() as report:
        result = do_pull(_repo(), paths or None, remote, jobs, force, report)
    if json:
        emit_json(result.to_dict())
        return
    _report(result.fetch, False)
    placed = sum(r.placed for r in result.checkout)
    removed = sum(r.removed for r in result.checkout)
    echo(f"checked out {len(result.checkout)} path(s): {placed} file(s) placed, {removed} removed")


def _report(result: Any, json: bool) -> None:

    if json:
        emit_json(result.to_dict())
        return
    if result.action == "push":
        verb, where, present = "pushed", "to", "already there"
    else:
        verb, where, present = "fetched", "from", "already in the cache"
    packs = f" in {result.packs} pack(s) and single objects" if result.packs else ""
    echo(
        f"{verb} {result.objects} object(s) ({human_size(result.bytes)}) {where} remote "
        f"{result.remote!r}{packs}; {result.present} {present}"
    )
    if result.run_cache:
        echo(f"pushed {result.run_cache} run-cache entr{'y' if result.run_cache == 1 else 'ies'}")


@app.command("install-hooks")
def install_hooks(
    uninstall: bool = typer.Option(False, "--uninstall", help="Remove only mlops's hooks."),
    json: bool = JSON,
) -> None:
    """Install Git hooks: post-checkout (checkout), pre-commit (status), pre-push (push)."""
    from mlops.flows import githooks as hooks

    repo = _repo()
    changes = hooks.uninstall_hooks(repo) if uninstall else hooks.install_hooks(repo)
    if json:
        emit_json([c.to_dict() for c in changes])
        return
    words = {
        "installed": "installed",
        "updated": "updated (was already installed)",
        "chained": f"installed; the hook that was there runs first, as {{}}{hooks.KEPT_SUFFIX}",
        "removed": "removed",
        "restored": "removed; the hook it chained is back in place",
        "absent": "not installed",
        "foreign": "not mlops's hook; left alone",
    }
    for c in changes:
        echo(f"{c.hook}: {words[c.action].format(c.hook)} ({c.path})")


@hook_app.command("pre-commit")
def hook_pre_commit() -> None:
    """Fail when tracked data changed but its pointer file was not updated."""
    from mlops._githook import main

    raise typer.Exit(main(["pre-commit"]))


@hook_app.command("post-checkout")
def hook_post_checkout(
    args: list[str] = typer.Argument(None, help="Git's arguments: PREV_HEAD NEW_HEAD FLAG."),
) -> None:
    """After a branch checkout, make the workspace match the new pointers."""
    from mlops._githook import main

    raise typer.Exit(main(["post-checkout", *(args or [])]))


@hook_app.command("pre-push")
def hook_pre_push(
    args: list[str] = typer.Argument(None, help="Git's arguments: REMOTE_NAME URL."),
) -> None:
    """Push the data of the pushed commits (refs on standard input) to the default remote."""
    from mlops._githook import main

    raise typer.Exit(main(["pre-push", *(args or [])]))
