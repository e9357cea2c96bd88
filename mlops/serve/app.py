"""The HTTP application: Starlette routes over a ``ModelHolder`` and a ``PredictionLog``.

Routes: ``POST /predict`` and MLflow's ``POST /invocations``, ``POST /feedback``,
``GET /health/live``, ``/health/ready``, ``/version``, ``/metrics``. Every answer carries
``X-Request-ID`` and ``X-Model-Version`` (the version that served it). Predictions run
in a small thread pool (``--threads``); the alias follower and the log writer are threads
of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops.errors import RequestError
from mlops.monitor.predlog import DEFAULT_LABEL, REQUEST_ID, ROW
from mlops.serve import codec
from mlops.serve.inputs import parse_body
from mlops.serve.log import Entry, Feedback, PredictionLog
from mlops.serve.model import ModelHolder, Served, prepare_process

SETTINGS_ENV = "MLOPS_SERVE_SETTINGS"
# prometheus_client's multiprocess mode: the workers of one server write their values to
# files in this folder (a private one per server, made and removed by server.serve).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_THREADS = min(8, 2 * (os.cpu_count() or 1))
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
# Request ids: 32 hex digits, as a uuid4's, but a random prefix per process and a counter
# (uuid4 reads the OS's random source at every request: a system call each).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()
log = logging.getLogger("mlops.serve")


@dataclass(frozen=True)
class ServeSettings:
    """What ``mlops serve`` was asked for; JSON-able, so that each worker can read it."""

    root: str
    reference: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_dir: str | None = None
    log_rows: int = 10_000
    log_seconds: float = 300.0
    poll: float = 2.0
    max_body: int = 10 * 1024 * 1024
    threads: int = DEFAULT_THREADS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        return cls(**json.loads(text))


class _Metrics:
    """The Prometheus metrics of one server: of this process, or, with ``--workers N``,
    of every worker (each writes its values to the shared folder; ``/metrics`` sums them)."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # type: ignore[no-untyped-call] # a *_created series per label set: noise for this use
        self.shared = bool(os.environ.get(METRICS_DIR_ENV))
        self.registry = CollectorRegistry()
        r: CollectorRegistry | None = self.registry
        if self.shared:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            r = None  # the values live in the folder's files, read by the collector
        self.requests = Counter(
            "mlops_requests", "Requests answered.", ["endpoint", "code"], registry=r
        )
        self.errors = Counter(
            "mlops_request_errors", "Requests answered with an error.", ["endpoint"], registry=r
        )
        self.latency = Histogram(
            "mlops_request_duration_seconds",
            "Time to answer a scoring request.",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.rows = Counter("mlops_rows", "Rows scored.", ["endpoint"], registry=r)
        self.in_flight = Gauge(
            "mlops_in_flight_requests",
            "Requests being answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.model = Gauge(
            "mlops_model_info",
            "The version serving (1; 0 once no worker serves it).",
            ["model", "version", "hash"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._serving: tuple[str, str, str] | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.switches = Counter("mlops_model_switches", "Alias moves followed.", registry=r)
        self.log_rows = Counter(
            "mlops_prediction_log_rows",
            "Rows given to the prediction log.",
            ["outcome"],
            registry=r,
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: the lookup takes a lock and builds a tuple."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def serving(self, served: Served) -> None:
        v = served.version
        if not self.shared:
            self.model.clear()
        elif self._serving is not None:
            # Set to 0, not removed: a worker's files keep every value it ever wrote.
            self.model.labels(*self._serving).set(0)
        self._serving = (v.model, v.label, v.content.oid)
        self.model.labels(*self._serving).set(1)

    def stop(self) -> None:
        """This worker's live gauges leave the sums once it has stopped."""
        if self.shared:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class _State:
    """What the routes share: settings, model holder, log, metrics."""

    def __init__(self, settings: ServeSettings, holder: ModelHolder | None) -> None:
        self.settings = settings
        self.holder = holder
        self.log: PredictionLog | None = None
        self.metrics = _Metrics()
        self.ready = False  # once the model is loaded and warmed up, and the log is open
        self._logged: tuple[int, ...] = (0, 0, 0)
        self._logged_lock = threading.Lock()

    def start(self) -> None:
        from mlops.core.repo import Repo

        if self.holder is None:
            self.holder = ModelHolder(
                Repo(Path(self.settings.root)), self.settings.reference, self.settings.poll
            )
        holder = self.holder
        self.metrics.serving(holder.current)

        def switched(served: Served) -> None:
            self.metrics.serving(served)
            self.metrics.switches.inc()

        holder.on_switch = switched
        holder.start()
        if self.settings.log_dir is not None:
            self.log = PredictionLog(
                Path(self.settings.log_dir),
                rows=self.settings.log_rows,
                seconds=self.settings.log_seconds,
                on_problem=lambda p: log.error("%s", p) if p else log.info("prediction log ok"),
                on_counts=self.sync_log_metrics,
            )
        # What is loaded now (libraries, the model) lives as long as the process: out of
        # the garbage collector's full passes, which the log's queued rows set off, and
        # which otherwise walk all of it each time.
        gc.freeze()
        self.ready = True  # load_served ran the warm-up prediction

    def stop(self) -> None:
        self.ready = False
        self.metrics.stop()
        if self.holder is not None:
            self.holder.stop()
        if self.log is not None:
            self.log.close()
            s = self.log.stats()
            log.info(
                "stopped: %d rows logged in %d files, %d dropped", s.written, s.files, s.dropped
            )

    def sync_log_metrics(self) -> None:
        """Bring the log counters up to the writer's figures: called by the writer after
        each batch (and on a drop), so that with ``--workers`` the worker that answers
        /metrics sums every worker's, and again when /metrics is asked."""
        if self.log is None:
            return
        with self._logged_lock:  # the writer, a dropping request and /metrics
            now = (self.log.written, self.log.dropped, self.log.feedback_dropped)
            for outcome, value, before in zip(
                ("written", "dropped", "feedback_dropped"), now, self._logged, strict=True
            ):
                if value > before:
                    self.metrics.child(self.metrics.log_rows, outcome).inc(value - before)
            self._logged = tuple(max(a, b) for a, b in zip(now, self._logged, strict=True))

    def problems(self) -> list[str]:
        found = []
        if self.holder is not None and self.holder.problem:
            found.append(self.holder.problem)
        if self.log is not None and self.log.problem:
            found.append(f"{self.log.problem} ({self.log.dropped} rows dropped)")
        return found


def build_app(settings: ServeSettings, holder: ModelHolder | None = None) -> Any:
    """The Starlette application; ``holder`` is the model loaded already (else loaded here)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    prepare_process()
    state = _State(settings, holder)
    # The model runs in a few threads: scikit-learn releases the GIL in its compiled
    # parts, so two requests can use two cores, and the event loop stays free to read
    # the next ones (measured: higher throughput and a far shorter tail than running
    # the model on the event loop itself).
    pool = ThreadPoolExecutor(
        settings.threads, thread_name_prefix="mlops-model", initializer=prepare_process
    )

    def answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(codec.dumps(data), status, headers, media_type="application/json")

    async def score(request: Request, mlflow: bool) -> Response:
        endpoint = "/invocations" if mlflow else "/predict"
        assert state.holder is not None
        served = state.holder.current  # once: a switch never touches this request
        request_id = _request_id(request)
        headers = {"X-Request-ID": request_id, "X-Model-Version": served.label}
        metrics = state.metrics
        metrics.in_flight.inc()
        start = time.perf_counter()
        code = 200
        try:
            body = await _read_body(request, settings.max_body)
            rows = parse_body(
                body, request.headers.get("content-type", ""), served.signature, mlflow
            )
            scored = await asyncio.get_running_loop().run_in_executor(
                pool, served.score, rows, not mlflow
            )
            predictions, proba = scored.predictions, scored.probabilities
            classes = served.classes if proba is not None else None
            if state.log is not None:
                v = served.version
                # The arrays go to the log as they are; with the features in one, the
                # request's lists of values are freed here, while they are in the cache,
                # rather than kept till the writer has taken them.
                kept = rows if scored.features is None else rows.names_only()
                state.log.submit(
                    Entry(
                        request_id,
                        time.time(),
                        v.model,
                        v.label,
                        kept,
                        scored.predicted,
                        scored.proba,
                        classes,
                        scored.features,
                    )
                )
            metrics.child(metrics.rows, endpoint).inc(rows.count)
            if mlflow:
                return answer({"predictions": predictions}, headers=headers)
            data: dict[str, Any] = {"request_id": request_id, **_who(served)}
            data["predictions"] = predictions
            if proba is not None:
                data["classes"] = classes
                data["probabilities"] = proba
            return answer(data, headers=headers)
        except RequestError as exc:
            code = exc.status
            return answer(
                {"error": exc.message, "column": exc.column, "request_id": request_id},
                code,
                headers,
            )
        except Exception as exc:  # the model's library raises anything; the server stays up
            code = 500
            log.exception("request %s failed", request_id)
            message = f"the model failed on this input: {type(exc).__name__}: {exc}"
            return answer(
                {"error": message, "column": None, "request_id": request_id}, code, headers
            )
        finally:
            metrics.in_flight.dec()
            metrics.child(metrics.latency, endpoint).observe(time.perf_counter() - start)
            metrics.child(metrics.requests, endpoint, str(code)).inc()
            if code >= 400:
                metrics.child(metrics.errors, endpoint).inc()

    async def predict(request: Request) -> Response:
        return await score(request, mlflow=False)

    async def invocations(request: Request) -> Response:
        return await score(request, mlflow=True)

    async def feedback(request: Request) -> Response:
        """Labels for logged requests, joined later by ``mlops monitor label``."""
        try:
            if state.log is None:
                raise RequestError(
                    "this server logs no predictions, so it keeps no labels: start it with "
                    "--log-dir or a monitor.batches folder",
                    409,
                )
            body = await _read_body(request, settings.max_body)
            records = _feedback_records(body)
        except RequestError as exc:
            return answer({"error": exc.message, "column": exc.column}, exc.status)
        state.log.submit_feedback(Feedback(records))
        return answer({"accepted": len(records)}, 202)

    async def live(request: Request) -> Response:
        return answer({"live": True})

    async def ready(request: Request) -> Response:
        if not state.ready or state.holder is None:
            data = {"ready": False, "status": "starting", "problems": ["the model is loading"]}
            return answer(data, 503)
        served = state.holder.current
        problems = state.problems()
        data = {"ready": True, "status": "degraded" if problems else "ok", "problems": problems}
        return answer({**data, **_who(served)}, headers={"X-Model-Version": served.label})

    async def version(request: Request) -> Response:
        assert state.holder is not None
        served = state.holder.current
        data = {**served.identity(), "signature": served.signature.to_dict()}
        return answer(data, headers={"X-Model-Version": served.label})

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        state.sync_log_metrics()
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()
            pool.shutdown()

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/feedback", feedback, methods=["POST"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/ping", ready, methods=["GET"]),  # MLflow's readiness probe
        Route("/version", version, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.mlops = state
    return app


def app_from_env() -> Any:
    """The application of one worker process (``--workers N``), from the settings in the env."""
    return build_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))


def _who(served: Served) -> dict[str, Any]:
    v = served.version
    return {"model": v.model, "version": v.label, "hash": v.content.oid}


def _request_id(request: Any) -> str:
    given = request.headers.get("x-request-id")
    if given and _REQUEST_ID.fullmatch(given):
        return str(given)
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _feedback_records(body: bytes) -> list[dict[str, Any]]:
    """``{request_id, row?, label}`` or a list of them, checked."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RequestError("malformed JSON: send {request_id, label} or a list of them") from None
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise RequestError("no labels: the list is empty")
    records = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - {REQUEST_ID, ROW, DEFAULT_LABEL}:
            raise RequestError(f"label {i}: expected an object of {REQUEST_ID}, {ROW}, label", 422)
        rid, row, label = item.get(REQUEST_ID), item.get(ROW), item.get(DEFAULT_LABEL)
        if not isinstance(rid, str) or not _REQUEST_ID.fullmatch(rid):
            raise RequestError(f"label {i}: {REQUEST_ID} must be a request id", 422, REQUEST_ID)
        if row is not None and (type(row) is not int or row < 0):
            raise RequestError(f"label {i}: {ROW} must be a whole number from 0", 422, ROW)
        if label is None or isinstance(label, (dict, list)):
            raise RequestError(
                f"label {i}: label must be a number, string or boolean", 422, "label"
            )
        records.append({REQUEST_ID: rid, **({ROW: row} if row is not None else {}), "label": label})
    return records


async def _read_body(request: Any, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to pass ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(f"the body of {length} bytes is over the limit of {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)
