"""Model registry commands: ``mlops model ...`` and ``mlops lineage``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from mlops.cli import complete
from mlops.cli.app import app, echo, emit_json, json_option

if TYPE_CHECKING:
    from mlops.registry.lineage import LineageNode

JSON = json_option()

model_app = typer.Typer(
    help="Model registry: register, list, show, history, promote, rollback, get.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")


def _repo() -> Any:
    from mlops.core.repo import find_repo

    return find_repo()


@model_app.command()
def register(
    name: str = typer.Argument(..., help="Model name (letters, digits, '_', '-', '.')."),
    path: str = typer.Argument(..., help="The model file or folder."),
    run: str | None = typer.Option(
        None, "--run", help="Run that produced it (default: the newest run whose outputs match)."
    ),
    stage: str | None = typer.Option(None, "--stage", help="Producing stage of --run."),
    description: str | None = typer.Option(None, "--description", "-d", help="What changed."),
    promote: str | None = typer.Option(
        None, "--promote", help="Then promote the version to this alias (gated)."
    ),
    json: bool = JSON,
) -> None:
    """Register PATH as a new immutable version of model NAME."""
    from mlops.registry.register import register_model

    version = register_model(_repo(), name, path, run, stage, description, promote)
    if json:
        emit_json(version.to_dict())
        return
    echo(f"registered {version.ref} ({version.content.path}, {version.content.oid[:12]})")
    if version.run is None:
        echo("  no recorded run produced this content: params, metrics and data are not known")
    else:
        echo(f"  from run {version.run.id}, stage {version.run.stage!r}")
    if promote:
        echo(f"  promoted to {promote}")
    echo("Share it with: git push --tags && mlops push")


@model_app.command("list")
def list_(json: bool = JSON) -> None:
    """Registered models, their latest version and aliases."""
    from mlops.registry.history import list_models

    models = list_models(_repo())
    if json:
        emit_json([m.to_dict() for m in models])
        return
    if not models:
        echo("no models registered yet: `mlops model register NAME PATH`")
        return
    width = max(len(m.name) for m in models)
    for m in models:
        aliases = ", ".join(f"{a}={v}" for a, v in m.aliases.items()) or "-"
        echo(
            f"{m.name:<{width}}  {m.versions} version(s), latest {m.latest.label} "
            f"({m.latest.time[:19]})  aliases: {aliases}"
        )


@model_app.command()
def show(
    reference: str = typer.Argument(
        ..., help="NAME (latest), NAME:VERSION or NAME@ALIAS.", autocompletion=complete.models
    ),
    json: bool = JSON,
) -> None:
    """One version: content, author, commit, run, params, metrics, data and checks."""
    from mlops.registry.history import show as show_version

    view = show_version(_repo(), reference)
    if json:
        emit_json(view.to_dict())
        return
    v = view.version
    run = f"{v.run.id} (stage {v.run.stage}, {v.run.status})" if v.run else "none recorded"
    kind = f"folder of {v.content.files} files" if v.content.is_dir else "file"
    lines = [
        f"{v.ref}" + (f"  [{', '.join(view.aliases)}]" if view.aliases else ""),
        f"  id:          {v.id} (tag {v.tag})",
        f"  content:     {v.content.oid} ({kind}, {v.content.size} bytes, from {v.content.path})",
        f"  registered:  {v.time} by {v.author}",
        f"  commit:      {v.commit or 'none'}{' (uncommitted changes)' if v.dirty else ''}",
        f"  run:         {run}",
    ]
    if v.description:
        lines.append(f"  description: {v.description}")
    state, problems = v.checks_state()
    lines.append(f"  checks:      {state}" + (f" ({problems[0]})" if problems else ""))
    lines += _values("params", v.params) + _values("metrics", v.metrics)
    if v.data:
        lines.append("  data:")
        lines += [f"    {path}  {oid[:12]}" for path, oid in sorted(v.data.items())]
    for line in lines:
        echo(line)


def _values(title: str, values: dict[str, Any]) -> list[str]:
    rows = [
        f"    {file}: {key} = {value}"
        for file, keys in sorted(values.items())
        for key, value in (keys.items() if isinstance(keys, dict) else [("", keys)])
    ]
    return [f"  {title}:", *rows] if rows else []


@model_app.command()
def history(
    name: str = typer.Argument(..., help="Model name.", autocompletion=complete.model_names),
    json: bool = JSON,
) -> None:
    """Every registration and alias move: what, when, who, why."""
    from mlops.registry.history import history as model_history

    entries = model_history(_repo(), name)
    if json:
        emit_json([e.to_dict() for e in entries])
        return
    for e in entries:
        if e.action == "register":
            what = f"registered {e.version}"
        elif e.action == "rollback":
            what = f"rolled back {e.alias} from {e.previous} to {e.version}"
        else:
            since = f" (was {e.previous})" if e.previous else ""
            what = f"promoted {e.version} to {e.alias}{since}" + (" FORCED" if e.forced else "")
        why = f": {e.reason}" if e.reason else ""
        echo(f"{e.time[:19]}  {e.author}  {what}{why}")


@model_app.command()
def promote(
    name: str = typer.Argument(..., help="Model name.", autocompletion=complete.model_names),
    version: str = typer.Argument(..., help="Version: 3, v3, 3-<id> or latest."),
    to: str = typer.Option(..., "--to", help="Alias to move: staging, production, ..."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the history)."),
    force: bool = typer.Option(False, "--force", help="Override a refused gate (needs --reason)."),
    json: bool = JSON,
) -> None:
    """Point an alias at a version, if its checks passed and (for production) it is no worse."""
    from mlops.registry.promote import promote as promote_version

    move = promote_version(_repo(), name, version, to, reason, force)
    if json:
        emit_json(move.to_dict())
        return
    if not move.moved:
        echo(f"{move.version.ref} already holds {to}; nothing changed")
        return
    was = f" (was {move.previous.label})" if move.previous else ""
    forced = " despite the gate (forced)" if move.event and move.event.forced else ""
    echo(f"{name}@{to} -> {move.version.label}{was}{forced}")
    echo("Share it with: git push --tags")


@model_app.command()
def rollback(
    name: str = typer.Argument(..., help="Model name.", autocompletion=complete.model_names),
    alias: str = typer.Option("production", "--alias", help="Alias to roll back."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the history)."),
    json: bool = JSON,
) -> None:
    """Return an alias to the version that held it before its last promotion."""
    from mlops.registry.promote import rollback as rollback_alias

    move = rollback_alias(_repo(), name, alias, reason)
    if json:
        emit_json(move.to_dict())
        return
    previous = move.previous.label if move.previous else "?"
    echo(f"{name}@{alias} -> {move.version.label} (rolled back from {previous})")
    echo("Share it with: git push --tags")


@model_app.command()
def get(
    reference: str = typer.Argument(
        ..., help="NAME@ALIAS, NAME:VERSION or NAME (latest).", autocompletion=complete.models
    ),
    output: str = typer.Option(..., "--output", "-o", help="Where to write the model."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing PATH."),
    remote: str | None = typer.Option(
        None,
        "--remote",
        "-r",
        help="Remote to fetch from (default: the default remote).",
        autocompletion=complete.remotes,
    ),
    json: bool = JSON,
) -> None:
    """Write a version's content to PATH, fetching it if needed and checking its hash."""
    from mlops.registry.content import get_model

    got = get_model(_repo(), reference, output, force, remote)
    if json:
        emit_json(got.to_dict())
        return
    fetched = f", {got.fetched} object(s) fetched" if got.fetched else ""
    echo(f"wrote {got.version.ref} to {output} ({got.files} file(s), {got.size} bytes{fetched})")


@app.command()
def lineage(
    target: str = typer.Argument(
        ..., help="NAME:VERSION, NAME@ALIAS or a tracked path.", autocompletion=complete.models
    ),
    used_by: bool = typer.Option(
        False, "--used-by", help="Instead: the model versions trained on this data."
    ),
    json: bool = JSON,
) -> None:
    """What produced a model version or file (run, stage, commit, params, inputs), recursively."""
    from mlops.registry.lineage import lineage as trace
    from mlops.registry.lineage import used_by as find_users

    repo = _repo()
    if used_by:
        path, oid, found = find_users(repo, target)
        if json:
            emit_json({"path": path, "hash": oid, "used_by": [u.to_dict() for u in found]})
            return
        if not found:
            echo(f"no registered model version was trained on {path} ({oid[:12]})")
        for u in found:
            how = "directly" if u.direct else f"through {u.via}"
            echo(f"{u.version.ref}  {u.version.time[:19]}  {u.version.author}  ({how})")
        return
    node = trace(repo, target)
    if json:
        emit_json(node.to_dict())
        return
    for line in _tree(node, 0):
        echo(line)


def _tree(node: LineageNode, depth: int) -> list[str]:
    from mlops.registry.lineage import NodeKind

    pad = "   " * depth
    if node.kind in (NodeKind.MODEL, NodeKind.OUTPUT):
        commit = f", commit {node.commit[:10]}" if node.commit else ""
        made = f"run {node.run}, stage {node.stage}{commit}" if node.run else node.source
    else:
        made = node.source or node.note
    lines = [f"{pad}{'<- ' if depth else ''}{node.name}  {node.hash[:12]}  [{node.kind}: {made}]"]
    params = [
        f"{file}:{key}={value}"
        for file, keys in sorted(node.params.items())
        for key, value in (keys.items() if isinstance(keys, dict) else [])
    ]
    if params:
        lines.append(f"{pad}     params: {', '.join(params)}")
    if node.note and node.kind in (NodeKind.MODEL, NodeKind.OUTPUT, NodeKind.DATA):
        lines.append(f"{pad}     note: {node.note}")
    for child in node.inputs:
        lines += _tree(child, depth + 1)
    return lines
