"""Prometheus metrics, correct with any number of API and worker processes on any hosts.

Three sources, each chosen so that one scrape of any API process sees the whole service:

- Job counters and histograms (submitted, finished, duration, queue wait) are written by
  whichever process sees the event (the API on submit, the worker on finish) into hashes in the
  broker's Redis, and read back at scrape time. No multiprocess directory, and workers, which
  serve no HTTP, need not be scraped. A Redis restart resets them, which Prometheus treats as
  an ordinary counter reset. They are not derived from the jobs table because the retention
  cleanup deletes rows, and a counter must never go down.
- Gauges (active jobs, oldest queued job, queue depth, workers alive) are read from the database
  and Redis at scrape time.
- HTTP request counts and latencies live in the API process's own registry (cheap, no I/O per
  request). With several API processes, scrape each of them.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import redis
import xgboost
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis.client import Pipeline

import xgenerator
from xgenerator.db.tables import utcnow
from xgenerator.errors import ServiceUnavailable
from xgenerator.jobs import stats
from xgenerator.jobs.queues import QUEUES
from xgenerator.jobs.status import JobStatus
from xgenerator.ops import broker, heartbeats

if TYPE_CHECKING:
    from xgenerator.context import Context

log = logging.getLogger(__name__)

KEY = "xgen:metrics:"
SUBMITTED = KEY + "submitted"
FINISHED = KEY + "finished"
DURATION = KEY + "duration"
QUEUE_WAIT = KEY + "queue_wait"

DURATION_BUCKETS = (0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, math.inf)
QUEUE_WAIT_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
    math.inf,
)


class JobMetrics:
    """Job counters and histograms in Redis hashes, fields named ``job_type|...``.

    Writes never raise: a metric is not worth failing a job or a request for.
    """

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client

    def submitted(self, job_type: str) -> None:
        self._write(lambda pipe: pipe.hincrby(SUBMITTED, job_type, 1))

    def started(self, job_type: str, waited_s: float) -> None:
        """A job's first attempt started `waited_s` after it was submitted."""
        self._write(lambda pipe: _observe(pipe, QUEUE_WAIT, QUEUE_WAIT_BUCKETS, job_type, waited_s))

    def finished(self, job_type: str, status: str, duration_s: float | None = None) -> None:
        """A job reached a final status; `duration_s` is its running time, if it ran."""

        def write(pipe: Pipeline) -> None:
            pipe.hincrby(FINISHED, f"{job_type}|{status}", 1)
            if duration_s is not None:
                _observe(pipe, DURATION, DURATION_BUCKETS, job_type, duration_s)

        self._write(write)

    def _write(self, write: Callable[[Pipeline], object]) -> None:
        if self.client is None:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                write(pipe)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("job metric not recorded: %s", exc)

    def families(self) -> list[Metric]:
        """The stored counters and histograms as Prometheus metric families."""
        if self.client is None:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for key in (SUBMITTED, FINISHED, DURATION, QUEUE_WAIT):
                pipe.hgetall(key)
            submitted, finished, duration, wait = (_decode(h) for h in pipe.execute())
        jobs_submitted = CounterMetricFamily(
            "xgen_jobs_submitted", "Jobs submitted", labels=["job_type"]
        )
        for job_type, n in sorted(submitted.items()):
            jobs_submitted.add_metric([job_type], float(n))
        jobs_finished = CounterMetricFamily(
            "xgen_jobs_finished", "Jobs that reached a final status", labels=["job_type", "status"]
        )
        for field, n in sorted(finished.items()):
            job_type, status = field.split("|", 1)
            jobs_finished.add_metric([job_type, status], float(n))
        return [
            jobs_submitted,
            jobs_finished,
            _histogram(
                "xgen_job_duration_seconds",
                "Running time of finished jobs",
                DURATION_BUCKETS,
                duration,
            ),
            _histogram(
                "xgen_job_queue_wait_seconds",
                "Time from submission to the start of the first attempt",
                QUEUE_WAIT_BUCKETS,
                wait,
            ),
        ]


def _observe(
    pipe: Pipeline, key: str, buckets: tuple[float, ...], job_type: str, value: float
) -> None:
    # One (non-cumulative) bucket per observation; `_histogram` sums them up when read.
    value = max(value, 0.0)
    le = buckets[bisect.bisect_left(buckets, value)]
    pipe.hincrby(key, f"{job_type}|{_le(le)}", 1)
    pipe.hincrbyfloat(key, f"{job_type}|sum", value)


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it ("0.5", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def _histogram(
    name: str, doc: str, buckets: tuple[float, ...], fields: dict[str, str]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["job_type"])
    by_type: dict[str, dict[str, str]] = {}
    for field, value in fields.items():
        job_type, part = field.split("|", 1)
        by_type.setdefault(job_type, {})[part] = value
    for job_type, parts in sorted(by_type.items()):
        cumulative = 0.0
        series = []
        for le in buckets:
            bound = _le(le)
            cumulative += float(parts.get(bound, 0))
            series.append((bound, cumulative))
        family.add_metric([job_type], series, float(parts.get("sum", 0.0)))
    return family


class ServiceCollector:
    """Reads the cluster-wide numbers at scrape time (see the module docstring)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "xgen_build_info", "Service and XGBoost versions", labels=["version", "xgboost_version"]
        )
        info.add_metric([xgenerator.__version__, xgboost.__version__], 1.0)
        yield info
        yield from self._database()
        yield from self._broker()

    def _database(self) -> Iterator[Metric]:
        settings = self.context.settings
        now = utcnow()
        up = GaugeMetricFamily("xgen_database_up", "Whether the database answered")
        try:
            with self.context.db.session() as session:
                active = stats.active_counts(session)
                oldest = stats.oldest_queued(session)
                alive = heartbeats.alive(session, now, settings.worker_heartbeat_timeout_s)
        except ServiceUnavailable:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        jobs = GaugeMetricFamily(
            "xgen_jobs_active", "Jobs queued or running now", labels=["job_type", "status"]
        )
        for (job_type, status), n in sorted(active.items()):
            jobs.add_metric([job_type, status], float(n))
        yield jobs
        running = GaugeMetricFamily("xgen_jobs_running", "Jobs running now")
        running.add_metric([], float(stats.by_status(active)[JobStatus.RUNNING]))
        yield running
        age = GaugeMetricFamily(
            "xgen_oldest_queued_job_age_seconds", "Age of the oldest queued job", labels=["queue"]
        )
        for queue in QUEUES:
            at = oldest.get(queue)
            age.add_metric([queue], (now - at).total_seconds() if at else 0.0)
        yield age
        alive_gauge = GaugeMetricFamily(
            "xgen_workers_alive",
            "Workers with a fresh heartbeat, by queue served",
            labels=["queue"],
        )
        for queue in QUEUES:
            alive_gauge.add_metric([queue], float(sum(queue in w.queues for w in alive)))
        yield alive_gauge

    def _broker(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("xgen_broker_up", "Whether the broker's Redis answered")
        client = self.context.redis
        if client is None:
            up.add_metric([], 0.0)
            yield up
            return
        try:
            depths = broker.queue_depths(client, QUEUES)
            families = self.context.metrics.families()
        except redis.RedisError:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        depth = GaugeMetricFamily(
            "xgen_queue_depth", "Messages waiting in each queue", labels=["queue"]
        )
        for queue, n in depths.items():
            depth.add_metric([queue], float(n))
        yield depth
        yield from families


class RequestMetrics:
    """Per-process HTTP metrics, labelled by route template (never the raw path, whose ids
    would make one series per object)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "xgen_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "xgen_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


def build_registry(context: Context) -> tuple[CollectorRegistry, RequestMetrics]:
    """A registry per app (not the global one), so that tests can build many apps."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(context))
    return registry, RequestMetrics(registry)
