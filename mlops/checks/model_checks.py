"""Model checks: scikit-learn metrics on holdout data, recorded metrics, known cases, latency."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from mlops.checks.data_checks import MAX_EXAMPLES, Context, Outcome, jsonable, show
from mlops.checks.report import FAIL, PASS
from mlops.checks.spec import Check, CheckProblem, Condition
from mlops.tables.read import Data

Scorer = Callable[[Any, Any, Any], float]
LATENCY_ROWS = 1000
LATENCY_MAX_ROWS = 10_000


def resolve_metric(name: str) -> Scorer:
    """A scikit-learn metric by name: a scorer name (``accuracy``, ``f1_macro``, ``roc_auc``),
    an error or loss whose scorer is negated (``log_loss``, ``mean_squared_error``), or a
    ``sklearn.metrics`` function comparing true and predicted labels (``cohen_kappa_score``)."""
    from mlops.core.imports import import_serially

    metrics = import_serially("sklearn.metrics")
    scorers = set(metrics.get_scorer_names())
    for candidate in dict.fromkeys((name, name.removesuffix("_score"))):
        if candidate in scorers:
            scorer = metrics.get_scorer(candidate)
            return lambda model, x, y: float(scorer(model, x, y))
        if f"neg_{candidate}" in scorers:
            negated = metrics.get_scorer(f"neg_{candidate}")
            # sklearn negates errors so that greater is better; the user wrote the plain name.
            return lambda model, x, y: -float(negated(model, x, y))
    functions = _prediction_metrics(metrics)
    if name in functions:
        func = functions[name]
        return lambda model, x, y: float(func(y, model.predict(x)))
    import difflib

    known = sorted(scorers | set(functions))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise CheckProblem(
        name,
        f"unknown scikit-learn metric {name!r} ({hint}valid: sklearn.metrics.get_scorer_names() "
        "or a sklearn.metrics function of (y_true, y_pred))",
    )


def _prediction_metrics(metrics: Any) -> dict[str, Callable[..., Any]]:
    import inspect

    found: dict[str, Callable[..., Any]] = {}
    for attr in dir(metrics):
        func = getattr(metrics, attr)
        if attr.startswith("_") or not inspect.isfunction(func):
            continue
        params = list(inspect.signature(func).parameters)[:2]
        if params in (["y_true", "y_pred"], ["y1", "y2"], ["labels_true", "labels_pred"]):
            found[attr] = func
    return found


def _target(ctx: Context, data: Data) -> Any:
    target = ctx.suite.target
    if target is None or target not in data.frame.columns:
        raise CheckProblem("target", f"target column {target!r} is not in {data.shown}")
    return data.frame[target]


def _features(ctx: Context, data: Data, drop: tuple[str | None, ...], model: Any) -> Any:
    """The model's input: the suite's ``features``, else the columns the model was fitted
    on (scikit-learn records them), else every column but ``drop``."""
    features = ctx.suite.features
    if features is None:
        fitted = getattr(model, "feature_names_in_", None)
        if fitted is None:
            # Fitted on a bare array: give it one, as it was trained.
            return data.frame.drop(columns=[c for c in drop if c in data.frame.columns]).to_numpy()
        features = tuple(str(c) for c in fitted)
    missing = [c for c in features if c not in data.frame.columns]
    if missing:
        raise CheckProblem("features", f"column {missing[0]!r} is not in {data.shown}")
    chosen = data.frame[list(features)]
    if hasattr(model, "n_features_in_") and not hasattr(model, "feature_names_in_"):
        # A scikit-learn model fitted on a bare array warns on each call given names.
        return chosen.to_numpy()
    return chosen


def score_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    condition: Condition = check.args
    scorer = resolve_metric(condition.name)
    model = ctx.store.model(ctx.suite.model or "", "model")
    y = _target(ctx, data)
    x = _features(ctx, data, (ctx.suite.target,), model)
    try:
        value = scorer(model, x, y)
    except Exception as exc:  # sklearn raises ValueError/TypeError/AttributeError for misuse
        raise CheckProblem(
            condition.name,
            f"scikit-learn could not compute {condition.name}: {type(exc).__name__}: {exc}",
        ) from exc
    return [_compare(condition, value, f"{condition.name} on {data.shown}")]


def latency_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    import numpy as np
    import pandas as pd

    condition: Condition = check.args
    model = ctx.store.model(ctx.suite.model or "", "model")
    x = _features(ctx, data, (ctx.suite.target,), model)[:LATENCY_MAX_ROWS]
    if not len(x):
        raise CheckProblem("data", f"{data.shown} has no rows to time predictions on")
    # Time whole batches of at least 1000 rows so per-call overhead is counted once per 1k.
    copies = [x] * math.ceil(LATENCY_ROWS / len(x))
    batch = (
        pd.concat(copies, ignore_index=True) if hasattr(x, "columns") else np.concatenate(copies)
    )
    try:
        model.predict(batch)  # warm-up: first calls pay for lazy imports and caches
        best = math.inf
        for _ in range(3):
            started = time.perf_counter()
            model.predict(batch)
            best = min(best, time.perf_counter() - started)
    except Exception as exc:  # the model's own code
        raise CheckProblem("model", f"model.predict failed: {type(exc).__name__}: {exc}") from exc
    per_1k = best * 1000 / len(batch) * LATENCY_ROWS
    return [_compare(condition, round(per_1k, 4), f"{len(batch)} rows, best of 3")]


def metric_file_check(check: Check, data: Data | None, ctx: Context) -> list[Outcome]:
    from mlops.core.yamlio import YamlProblem, parse_json, parse_yaml

    args = check.args
    path = ctx.root / args["file"]
    if not path.is_file():
        raise CheckProblem("file", f"metrics file {args['file']} does not exist")
    try:
        raw = path.read_bytes()
        node: Any = parse_yaml(raw) if path.suffix in (".yaml", ".yml") else parse_json(raw)
    except YamlProblem as exc:
        raise CheckProblem("file", f"cannot read {exc.located(args['file'])}") from None
    except OSError as exc:
        raise CheckProblem("file", f"cannot read {args['file']}: {exc}") from exc
    for part in args["key"].split("."):
        if not isinstance(node, dict) or part not in node:
            keys = ", ".join(map(str, node)) if isinstance(node, dict) else "none"
            raise CheckProblem("key", f"no key {args['key']!r} in {args['file']} (keys: {keys})")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise CheckProblem("key", f"{args['key']!r} in {args['file']} is {node!r}, not a number")
    low, high = args["min"], args["max"]
    parts = [f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else ""]
    expected = f"{args['key']} " + " and ".join(p for p in parts if p)
    if (low is None or node >= low) and (high is None or node <= high):
        return [Outcome(None, PASS, node, expected)]
    return [
        Outcome(
            None,
            FAIL,
            node,
            expected,
            f"{args['key']} = {node:g} in {args['file']}, expected {expected}",
            1,
        )
    ]


def predicts_check(check: Check, data: Data | None, ctx: Context) -> list[Outcome]:
    import numpy as np

    args = check.args
    cases = ctx.store.table(args["rows"], "rows")
    if args["column"] not in cases.frame.columns:
        raise CheckProblem("column", f"column {args['column']!r} is not in {cases.shown}")
    expected_values = cases.frame[args["column"]].to_numpy()
    model = ctx.store.model(ctx.suite.model or "", "model")
    x = _features(ctx, cases, (args["column"], ctx.suite.target), model)
    try:
        predicted = np.asarray(model.predict(x))
    except Exception as exc:  # the model's own code
        raise CheckProblem(
            "rows", f"model.predict on {cases.shown} failed: {type(exc).__name__}: {exc}"
        ) from exc
    numeric = predicted.dtype.kind in "iuf" and expected_values.dtype.kind in "iuf"
    if numeric:
        mask = ~(
            np.abs(predicted.astype(float) - expected_values.astype(float)) <= args["tolerance"]
        )
    else:
        mask = predicted.astype(object) != expected_values.astype(object)
    failing = int(mask.sum())
    want = "all rows" + (f" within {args['tolerance']:g}" if args["tolerance"] else "")
    if not failing:
        return [Outcome(None, PASS, 0, want)]
    rows = np.flatnonzero(mask)[:MAX_EXAMPLES]
    examples = tuple(
        {
            "row": int(r),
            "expected": jsonable(expected_values[r]),
            "predicted": jsonable(predicted[r]),
        }
        for r in rows
    )
    shown = ", ".join(
        f"row {e['row']}: {show(e['expected'])} -> {show(e['predicted'])}" for e in examples
    )
    return [
        Outcome(
            None,
            FAIL,
            failing,
            want,
            f"{failing} of {len(mask)} known cases in {cases.shown} predicted wrong ({shown})",
            failing,
            examples,
        )
    ]


def _compare(condition: Condition, value: float, context: str) -> Outcome:
    if math.isnan(value):
        return Outcome(
            None, FAIL, None, condition.expected, f"{condition.name} is NaN ({context})", 1
        )
    if condition.holds(value):
        return Outcome(None, PASS, value, condition.expected)
    return Outcome(
        None,
        FAIL,
        value,
        condition.expected,
        f"{condition.name} = {value:.4g}, expected {condition.expected} ({context})",
        1,
    )


MODEL_CHECKS: dict[str, Callable[[Check, Any, Context], list[Outcome]]] = {
    "score": score_check,
    "latency": latency_check,
    "metric": metric_file_check,
    "predicts": predicts_check,
}
