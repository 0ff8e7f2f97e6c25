"""What a training will cost, from its parameters alone, so that work no worker can finish is
refused before it starts.

Each parameter can be within its own bound while together they are hours a round or gigabytes
of histogram: 1,000 classes x 100 parallel trees x depth 16 took 16 minutes for round 1, and
lossguide with 65,536 leaves on 50 features tried to allocate 7.2 GB. Two figures bound it:

- leaves grown in all: rounds x trees per round (classes x parallel trees) x leaves per tree,
  which is the model's size and, near enough, its training time;
- histogram bytes: leaves x features x bins x 16 (a gradient and a hessian sum per bin, for
  every node that can be expanded at once), which is the training's peak memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xgenerator.errors import InvalidInput

HISTOGRAM_ENTRY_BYTES = 16
DEFAULT_DEPTH = 6
DEFAULT_BINS = 256


@dataclass(frozen=True)
class Budget:
    max_leaves: int  # leaves grown over the whole training
    max_histogram_bytes: int


@dataclass(frozen=True)
class Cost:
    leaves: int
    histogram_bytes: int


def leaves_per_tree(params: Mapping[str, object]) -> int:
    depth = int(str(params.get("max_depth", DEFAULT_DEPTH)))
    max_leaves = int(str(params.get("max_leaves", 0)))
    by_depth = 2**depth if depth > 0 else 0
    if max_leaves and by_depth:
        return min(max_leaves, by_depth)
    # depth 0 means unlimited (lossguide): only max_leaves bounds it
    return max_leaves or by_depth or 2**16


def estimate(
    params: Mapping[str, object],
    n_features: int,
    rounds: int,
    n_classes: int = 1,
    rows: int | None = None,
) -> Cost:
    """`rows` (when known) bounds the leaves of a tree: each leaf holds at least one row."""
    leaves = leaves_per_tree(params)
    if rows is not None:
        leaves = max(1, min(leaves, rows))
    trees = max(1, n_classes) * max(1, int(str(params.get("num_parallel_tree", 1))))
    bins = int(str(params.get("max_bin", DEFAULT_BINS)))
    return Cost(
        leaves=rounds * trees * leaves,
        histogram_bytes=leaves * n_features * bins * HISTOGRAM_ENTRY_BYTES,
    )


def check(cost: Cost, budget: Budget) -> None:
    """InvalidInput naming the figure past its budget and what lowers it."""
    if cost.leaves > budget.max_leaves:
        raise InvalidInput(
            f"this training would grow {cost.leaves:,} leaves (rounds x classes x "
            f"num_parallel_tree x leaves per tree); the limit is {budget.max_leaves:,}: lower "
            "num_boost_round, num_parallel_tree or max_depth / max_leaves",
            {"leaves": cost.leaves, "limit": budget.max_leaves},
        )
    if cost.histogram_bytes > budget.max_histogram_bytes:
        raise InvalidInput(
            f"this training would need {cost.histogram_bytes / 2**20:,.0f} MB of histograms "
            f"(leaves x features x max_bin); the limit is "
            f"{budget.max_histogram_bytes / 2**20:,.0f} MB: lower max_leaves, max_depth or max_bin",
            {"histogram_bytes": cost.histogram_bytes, "limit": budget.max_histogram_bytes},
        )
