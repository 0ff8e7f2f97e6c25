"""10. Online prediction over HTTP, side by side in one run on one model: XGenerator's
`POST /models/{id}/predict` and `/invocations` against MLflow's `mlflow models serve` and a bare
uvicorn route returning a constant (the HTTP floor); then 8 clients at once against the one API
process.

The model (binary, 30 float features, depth 6; 50,000 rows and 100 rounds, 5,000 and 20 in
`--quick`) is trained in-process before the run's services are up, registered into the SQLite
stack (embedded mode's database) and saved with `mlflow.xgboost.save_model`, so that MLflow
serves the same booster: its server reads the directory at start-up, and starting takes
seconds, so it starts with the other services (`prestart`). Requests alternate between the
servers, one each per round in a shuffled order, on keep-alive connections of the same minimal
client (`bench.loadgen`); every server answers the same rows and the answers are compared first
(rtol 1e-6). Against the floor, the one-row predict and the floor alternate by themselves.
Without MLflow installed (`pip install '.[bench]'`) its rows are skipped.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import Bench, HttpServer, log, mlflow_server
from bench.loadgen import Connection, LoadResult, Request, load
from bench.prediction import records
from bench.report import Row, Sample, Target, describe_time, seconds
from bench.seed_model import TARGET, Seeded, numeric_frame, seed

NAME = "online"
SIZES = (1, 1_000)
FLOOR_MARGIN = 1e-3  # the target: one row within the HTTP floor + 1 ms
TARGETS = {1: 0.25, 1_000: 0.5}  # XGenerator's p50 against MLflow's


def expected(quick: bool) -> list[str]:
    rows = []
    for size in SIZES:
        rows += [
            f"predict {size:,} row(s) vs MLflow models serve",
            f"invocations {size:,} row(s) vs MLflow models serve",
        ]
    return [
        *rows,
        "predict 1 row vs HTTP floor + 1 ms",
        "load: concurrent clients, predict 1 row vs HTTP floor",
    ]


@dataclass
class Prepared:
    seeded: Seeded
    mlflow: HttpServer | None  # None: MLflow is not installed


def prestart(bench: Bench) -> None:
    """Train and register the model, save it for MLflow, and start MLflow's server, while the
    stack and the bare API start."""
    cfg = bench.config
    stack = bench.spawn_stack("sqlite")
    log(f"online: training a {cfg.online_rounds}-round model on {cfg.online_model_rows:,} rows")
    seeded = seed(stack.context, numeric_frame(cfg.online_model_rows, seed=3), cfg.online_rounds)
    server = None
    if importlib.util.find_spec("mlflow") is not None:
        model_file = bench.workdir / "online-model.ubj"
        seeded.bundle.booster.save_model(str(model_file))
        server = bench.spawn(mlflow_server(model_file, bench.workdir))
    bench.shared[NAME] = Prepared(seeded, server)


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    prepared: Prepared = bench.shared[NAME]
    seeded = prepared.seeded
    stack = bench.stack("sqlite")
    floor = bench.bare_api()
    if prepared.mlflow is not None:
        prepared.mlflow.wait_ready()
    auth = {"X-API-Key": seeded.api_key}
    predict_path = f"/models/{seeded.model_id}/predict"
    invocations_path = f"/models/{seeded.model_id}/invocations"
    # complete rows: MLflow's schema check refuses a column that is null in every row sent
    features = seeded.frame.drop(columns=[TARGET]).dropna()
    rows: list[Row] = []
    floor_1: Sample | None = None
    service_1: Sample | None = None
    for size in SIZES:
        sample = records(features.iloc[:size])
        targets = {
            "predict": (stack.api.url, Request.json("POST", predict_path, {"rows": sample}, auth)),
            "invocations": (
                stack.api.url,
                Request.json("POST", invocations_path, {"dataframe_records": sample}, auth),
            ),
            "floor": (floor.url, Request.json("POST", "/constant", {"rows": sample})),
        }
        if prepared.mlflow is not None:
            targets["mlflow"] = (
                prepared.mlflow.url,
                Request.json("POST", "/invocations", {"dataframe_records": sample}),
            )
        times, answers = asyncio.run(_alternate(targets, cfg.online_requests))
        _check_answers(answers, seeded, features.iloc[:size])
        samples = {name: Sample.of(values) for name, values in times.items()}
        log(
            f"online: {size:,} row(s) "
            + ", ".join(f"{name} {seconds(s.p50)}" for name, s in samples.items())
        )
        floor_note = f"HTTP floor p50 {seconds(samples['floor'].p50)}"
        for route in ("predict", "invocations"):
            measure = f"{route} {size:,} row(s) vs MLflow models serve"
            if "mlflow" not in samples:
                note = "skipped: MLflow is not installed (pip install '.[bench]')"
                rows.append(Row(NAME, measure, describe_time(samples[route]), note=note))
                continue
            rows.append(
                Row(
                    NAME,
                    measure,
                    describe_time(samples[route]),
                    describe_time(samples["mlflow"]),
                    samples[route].p50 / samples["mlflow"].p50,
                    Target("<=", TARGETS[size]),
                    f"same booster, same rows, keep-alive, alternating; {floor_note}",
                )
            )
        if size == 1:
            # against the floor, the two alone: a request that comes after MLflow's waits for
            # the CPU that MLflow's server keeps using after its answer (~1 ms more at p75)
            pair = {name: targets[name] for name in ("predict", "floor")}
            times, _ = asyncio.run(_alternate(pair, cfg.online_requests))
            floor_1, service_1 = Sample.of(times["floor"]), Sample.of(times["predict"])
            log(f"online: 1 row, predict {seconds(service_1.p50)}, floor {seconds(floor_1.p50)}")
    assert floor_1 is not None and service_1 is not None
    rows.append(
        Row(
            NAME,
            "predict 1 row vs HTTP floor + 1 ms",
            describe_time(service_1),
            describe_time(floor_1),
            service_1.p50 / (floor_1.p50 + FLOOR_MARGIN),
            Target("<=", 1.0),
            "ratio against the floor's p50 + 1 ms; floor: bare uvicorn route returning a "
            "constant; the two alternating alone",
        )
    )
    rows.append(_load(bench, stack.api.url, floor.url, predict_path, auth, features))
    return rows


async def _alternate(
    targets: dict[str, tuple[str, Request]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, bytes]]:
    """`repeats` rounds of one request to each target, in a shuffled order (after five
    warm-up rounds), each on its own keep-alive connection; the first answer of each is
    kept."""
    connections = {name: _connect(url) for name, (url, _) in targets.items()}
    times: dict[str, list[float]] = {name: [] for name in targets}
    answers: dict[str, bytes] = {}
    try:
        order = list(targets)
        shuffle = random.Random(0).shuffle
        for i in range(repeats + 5):
            # a new order each round: a server's work after its answer (MLflow's, ours) falls
            # into whichever request comes next, so no target may always come after the same one
            shuffle(order)
            for name in order:
                request = targets[name][1]
                started = time.perf_counter()
                status, body = await connections[name].send(request)
                took = time.perf_counter() - started
                if status != 200:
                    raise RuntimeError(f"{name} answered {status}: {body[:300]!r}")
                answers.setdefault(name, body)
                if i >= 5:
                    times[name].append(took)
    finally:
        for connection in connections.values():
            connection.close()
    return times, answers


def _connect(url: str) -> Connection:
    host, _, port = url.removeprefix("http://").partition(":")
    return Connection(host, int(port))


def _check_answers(answers: dict[str, bytes], seeded: Seeded, rows: Any) -> None:
    """Every server predicted what the booster predicts on these rows (rtol 1e-6)."""
    bundle = seeded.bundle
    assert bundle.labels is not None
    positive = str(bundle.labels.classes[1])
    expected = bundle.booster.inplace_predict(rows.to_numpy(dtype=np.float32))
    predicted = json.loads(answers["predict"])
    probabilities = [p[positive] for p in predicted["probabilities"]]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    labels = json.loads(answers["invocations"])["predictions"]
    assert labels == predicted["predictions"], "invocations and predict disagree"
    if "mlflow" in answers:
        mlflow = json.loads(answers["mlflow"])["predictions"]
        np.testing.assert_allclose(mlflow, expected, rtol=1e-6)


def _load(
    bench: Bench,
    service_url: str,
    floor_url: str,
    path: str,
    auth: dict[str, str],
    features: Any,
) -> Row:
    """`load_clients` clients sending one-row predictions back to back for `load_seconds`,
    then the same against the floor; any answer but 200 fails the benchmark."""
    cfg = bench.config
    sample = records(features.iloc[:64])

    def predict(i: int) -> Request:
        return Request.json("POST", path, {"rows": [sample[i % len(sample)]]}, auth)

    def constant(i: int) -> Request:
        return Request.json("POST", "/constant", {"rows": [sample[i % len(sample)]]})

    log(f"online: {cfg.load_clients} clients for {cfg.load_seconds:g} s, then the floor")
    service = load(service_url, predict, cfg.load_clients, seconds=cfg.load_seconds)
    floor = load(floor_url, constant, cfg.load_clients, seconds=cfg.load_seconds)
    for name, result in (("predict", service), ("floor", floor)):
        errors = sum(n for status, n in result.statuses.items() if status != 200)
        if errors:
            raise RuntimeError(f"{name} under load: {errors} error(s), {dict(result.statuses)}")
    s, f = Sample.of(service.latencies), Sample.of(floor.latencies)
    return Row(
        NAME,
        expected(cfg.quick)[-1],
        _describe_load(service, s),
        _describe_load(floor, f),
        s.p50 / f.p50,
        None,
        f"{cfg.load_clients} keep-alive clients for {cfg.load_seconds:g} s each, one API "
        "process (SQLite, embedded mode's database); no error",
    )


def _describe_load(result: LoadResult, sample: Sample) -> str:
    return (
        f"p50 {seconds(sample.p50)} · p99 {seconds(sample.quantile(0.99))} · "
        f"{result.rate:,.0f} req/s · n={len(sample.values)}"
    )
