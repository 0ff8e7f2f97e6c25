"""Survival analysis: time-to-event targets with right censoring.

The target is the time (> 0); the event column says whether it was observed (1) or the row
was censored then (0). XGBoost reads that in two ways: `survival:cox` from a signed label
(negative = censored) and `survival:aft` from an interval [lower, upper] with upper = +inf
when censored. Models are compared with Harrell's concordance index (`c_index`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xgenerator.errors import TrainingFailed

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def check_survival(time: FloatArray, event: FloatArray) -> None:
    """Times must be > 0 (XGBoost's models take their log) and events 0 or 1."""
    bad_time = ~(time > 0)
    if bad_time.any():
        raise TrainingFailed(
            "InvalidSurvivalTime",
            "survival times must be > 0",
            {"rows": int(bad_time.sum()), "examples": [float(v) for v in time[bad_time][:3]]},
        )
    bad_event = ~np.isin(event, (0.0, 1.0))
    if bad_event.any():
        raise TrainingFailed(
            "InvalidEvent",
            "the event column must hold 1 (observed) or 0 (censored)",
            {"rows": int(bad_event.sum()), "examples": [float(v) for v in event[bad_event][:3]]},
        )


def label_fields(objective: str, time: FloatArray, event: FloatArray) -> dict[str, FloatArray]:
    """The DMatrix label fields `objective` reads."""
    observed = event == 1.0
    if objective == "survival:aft":
        upper = np.where(observed, time, np.inf)
        return {"label_lower_bound": time, "label_upper_bound": upper}
    return {"label": np.where(observed, time, -time)}


def c_index(time: FloatArray, event: FloatArray, risk: FloatArray) -> float | None:
    """Harrell's C: among pairs (i, j) with t_i < t_j and i observed, the share where i has the
    higher risk (ties in risk count one half). None when no pair is comparable.

    O(n log n): rows are taken by decreasing time, and a Fenwick tree over risk ranks counts,
    for each observed row, the later rows with a lower and with the same risk.
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event, dtype=np.float64) == 1.0
    r = np.asarray(risk, dtype=np.float64)
    ranks = np.unique(r, return_inverse=True)[1].astype(np.int64) + 1
    size = int(ranks.max()) if len(ranks) else 0
    tree = np.zeros(size + 1, dtype=np.int64)

    def add(i: int) -> None:
        while i <= size:
            tree[i] += 1
            i += i & -i

    def below(i: int) -> int:  # how many inserted ranks are <= i
        total = 0
        while i > 0:
            total += int(tree[i])
            i -= i & -i
        return total

    order = np.argsort(-t, kind="stable")
    concordant = 0.0
    comparable = 0
    inserted = 0
    start = 0
    while start < len(order):
        stop = start
        while stop < len(order) and t[order[stop]] == t[order[start]]:
            stop += 1
        block = order[start:stop]
        for i in block:
            if e[i]:
                lower = below(int(ranks[i]) - 1)
                same = below(int(ranks[i])) - lower
                concordant += lower + 0.5 * same
                comparable += inserted
        for i in block:
            add(int(ranks[i]))
        inserted += len(block)
        start = stop
    return concordant / comparable if comparable else None
