"""The stage graph: which stage's outputs feed which stage, in dependency order."""

from __future__ import annotations

import difflib
import os
import posixpath
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from mlops.errors import PipelineError
from mlops.pipeline.schema import Pipeline, Stage
from mlops.storage.pointer import SUFFIX


@dataclass(frozen=True)
class Dag:
    """Stages, the stages each one depends on, and a dependency order."""

    stages: dict[str, Stage]
    upstream: dict[str, tuple[str, ...]]
    order: tuple[str, ...]

    def select(self, targets: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """``targets`` (stage names or foreach names) and every stage they depend on, in order."""
        if not targets:
            return self.order
        wanted: set[str] = set()
        stack: list[str] = []
        for target in targets:
            names = (
                [target]
                if target in self.stages
                else [name for name, stage in self.stages.items() if stage.group == target]
            )
            if not names:
                close = difflib.get_close_matches(target, list(self.stages), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PipelineError(f"no stage named {target!r} in mlops.yaml{hint}")
            stack.extend(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.upstream[name])
        return tuple(name for name in self.order if name in wanted)

    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs in order."""
        return [(up, name) for name in self.order for up in self.upstream[name]]


def build_dag(pipeline: Pipeline, root: Path | None = None) -> Dag:
    """Link each stage to the stages producing its deps; with ``root``, check deps exist.

    Raises PipelineError for one output produced by two stages (or nested in
    another stage's output), a stage depending on its own output, a dep that
    neither exists nor is produced by a stage, and a cycle (naming its stages).
    """
    stages = pipeline.stages
    producer: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.outputs:
            if out.path in producer:
                raise PipelineError(
                    f"{pipeline.at_output(stage, out)}: output {out.path!r} is produced by two "
                    f"stages: {producer[out.path]!r} and {stage.name!r}"
                )
            producer[out.path] = stage.name
    # Every folder above an output, mapped to the stages with outputs below it.
    below: dict[str, set[str]] = {}
    for path, name in producer.items():
        for parent in _parents(path):
            if parent in producer:
                stage = stages[name]
                out = next(o for o in stage.outputs if o.path == path)
                raise PipelineError(
                    f"{pipeline.at_output(stage, out)}: output {path!r} of stage {name!r} is "
                    f"inside output {parent!r} of stage {producer[parent]!r}"
                )
            below.setdefault(parent, set()).add(name)
    upstream: dict[str, tuple[str, ...]] = {}
    for stage in stages.values():
        found: dict[str, None] = {}
        for index, dep in enumerate(stage.deps):
            makers = below.get(dep, set()) | {
                producer[p] for p in (dep, *_parents(dep)) if p in producer
            }
            if stage.name in makers:
                raise PipelineError(
                    f"{pipeline.at(stage, 'deps', index)}: stage {stage.name!r} depends on its "
                    f"own output through dep {dep!r}"
                )
            if not makers and root is not None and not os.path.lexists(root / dep):
                where = pipeline.at(stage, "deps", index)
                raise PipelineError(f"{where}: {_missing_dep(stage, dep, root)}")
            found.update(dict.fromkeys(sorted(makers)))
        upstream[stage.name] = tuple(found)
    sorter = TopologicalSorter(upstream)
    try:
        order = tuple(sorter.static_order())
    except CycleError as exc:
        cycle = list(exc.args[1])  # each stage feeds the next
        raise PipelineError(
            f"{pipeline.at(stages[cycle[0]])}: the stages form a cycle: {' -> '.join(cycle)}"
        ) from None
    return Dag(stages, upstream, order)


def _parents(path: str) -> list[str]:
    parents = []
    parent = posixpath.dirname(path)
    while parent:
        parents.append(parent)
        parent = posixpath.dirname(parent)
    return parents


def _missing_dep(stage: Stage, dep: str, root: Path) -> str:
    message = f"stage {stage.name!r}: dep {dep!r} does not exist and no stage produces it"
    if (root / (dep + SUFFIX)).exists():
        message += f"; it is tracked by {dep}{SUFFIX}: run `mlops checkout {dep}`"
    return message


def to_text(dag: Dag) -> str:
    """One line per stage, in order, with the stages it depends on."""
    width = max((len(name) for name in dag.order), default=0)
    lines = []
    for name in dag.order:
        ups = dag.upstream[name]
        lines.append(f"{name:<{width}}  <- {', '.join(ups)}" if ups else name)
    return "\n".join(lines)


def to_mermaid(dag: Dag) -> str:
    """A Mermaid flowchart (for Markdown files that render Mermaid)."""
    ids = {name: f"s{i}" for i, name in enumerate(dag.order)}
    lines = ["flowchart TD"]
    lines += [f'    {ids[name]}["{name}"]' for name in dag.order]
    lines += [f"    {ids[up]} --> {ids[down]}" for up, down in dag.edges()]
    return "\n".join(lines)


def to_dot(dag: Dag) -> str:
    """A Graphviz digraph."""
    lines = ["digraph pipeline {", "    rankdir=TB;", "    node [shape=box];"]
    lines += [f'    "{name}";' for name in dag.order]
    lines += [f'    "{up}" -> "{down}";' for up, down in dag.edges()]
    lines.append("}")
    return "\n".join(lines)
