"""Sizes, statistics and the one markdown table every benchmark adds rows to."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Literal

# --- sizes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Every size in one place; `quick` is the CI smoke run (< 2 min on 2 cores)."""

    quick: bool
    train_rows: int
    train_rounds: int
    train_repeats: int
    naive_repeats: int
    queue_latency_jobs: int
    queue_throughput_jobs: int
    submit_seconds: float
    submit_clients: int
    listing_sizes: tuple[int, ...]
    json_store_sizes: tuple[int, ...]
    listing_requests: int
    pollers: int
    poll_seconds: float
    predict_model_rows: int
    predict_rounds: int
    predict_requests: int
    realdata_rows: int  # 0: every row of each dataset
    realdata_rounds: int
    realdata_repeats: int
    explain_model_rows: int = 100_000
    explain_rounds: int = 100
    explain_repeats: int = 10
    cv_rows: int = 100_000
    cv_rounds: int = 50
    cv_folds: int = 5
    cv_repeats: int = 3
    tune_rows: int = 10_000
    tune_rounds: int = 30
    tune_trials: int = 20
    tune_large_rows: int = 50_000
    tune_large_rounds: int = 200
    # the online benchmark: its model, requests per server and size, and the load run
    online_model_rows: int = 50_000
    online_rounds: int = 100
    online_requests: int = 300
    load_clients: int = 8
    load_seconds: float = 60.0

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(
                quick=True,
                train_rows=20_000,
                train_rounds=20,
                train_repeats=1,
                naive_repeats=1,
                queue_latency_jobs=20,
                queue_throughput_jobs=100,
                submit_seconds=2.0,
                submit_clients=8,
                listing_sizes=(1_000, 10_000),
                json_store_sizes=(1_000, 10_000),
                listing_requests=15,
                pollers=50,
                poll_seconds=2.0,
                predict_model_rows=5_000,
                predict_rounds=20,
                predict_requests=20,
                realdata_rows=3_000,
                realdata_rounds=20,
                realdata_repeats=1,
                explain_model_rows=5_000,
                explain_rounds=20,
                explain_repeats=3,
                cv_rows=5_000,
                cv_rounds=10,
                cv_folds=3,
                cv_repeats=1,
                tune_rows=1_000,
                tune_rounds=8,
                tune_trials=2,
                tune_large_rows=2_000,
                tune_large_rounds=10,
                online_model_rows=5_000,
                online_rounds=20,
                online_requests=15,
                load_seconds=2.0,
            )
        return cls(
            quick=False,
            train_rows=1_000_000,
            train_rounds=100,
            train_repeats=3,
            naive_repeats=1,
            queue_latency_jobs=200,
            queue_throughput_jobs=1_000,
            submit_seconds=10.0,
            submit_clients=16,
            listing_sizes=(1_000, 10_000, 100_000, 1_000_000),
            # 1M files take ~3 min to write and ~45 s per scan here; see the notes
            json_store_sizes=(1_000, 10_000, 100_000),
            listing_requests=100,
            pollers=50,
            poll_seconds=10.0,
            predict_model_rows=100_000,
            predict_rounds=100,
            predict_requests=100,
            realdata_rows=0,
            realdata_rounds=200,
            realdata_repeats=1,
        )


# --- statistics and rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """Repeated measurements of one quantity (seconds, or a rate)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Sample:
        if not values:
            raise ValueError("no measurements")
        return cls(tuple(values))

    def quantile(self, q: float) -> float:
        ordered = sorted(self.values)
        if len(ordered) == 1:
            return ordered[0]
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    @property
    def p50(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        return self.quantile(0.95)

    @property
    def iqr(self) -> float:
        return self.quantile(0.75) - self.quantile(0.25)


def seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def describe_time(sample: Sample) -> str:
    """p50 · p95 · IQR · n, the cell format of every timing."""
    return (
        f"p50 {seconds(sample.p50)} · p95 {seconds(sample.p95)} · "
        f"IQR {seconds(sample.iqr)} · n={len(sample.values)}"
    )


def describe_rate(sample: Sample, unit: str) -> str:
    spread = f" · IQR {sample.iqr:,.0f}" if len(sample.values) > 1 else ""
    return f"{sample.p50:,.0f} {unit}{spread} · n={len(sample.values)}"


def megabytes(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


@dataclass(frozen=True)
class Target:
    """A bound on a ratio; `source` says who set it (the issue, or this benchmark)."""

    op: Literal["<=", ">="]
    value: float
    source: str = "issue"

    def met(self, ratio: float) -> bool:
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def __str__(self) -> str:
        suffix = "" if self.source == "issue" else f" ({self.source})"
        return f"{self.op} {self.value:g}×{suffix}"


@dataclass(frozen=True)
class Row:
    benchmark: str
    measure: str
    service: str = ""
    baseline: str = ""
    ratio: float | None = None
    target: Target | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "skipped" if self.note.startswith("skipped") else "error"
        if self.target is None:
            return "info"
        return "met" if self.target.met(self.ratio) else "**missed**"


HEADER = ("benchmark", "measure", "XGenerator", "baseline", "ratio", "target", "result", "note")


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}×"
        cells = (
            row.benchmark,
            row.measure,
            row.service or "—",
            row.baseline or "—",
            ratio,
            str(row.target) if row.target else "—",
            row.verdict,
            row.note,
        )
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
