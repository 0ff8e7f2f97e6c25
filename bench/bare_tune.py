"""The bare baseline for a search: the same trainings, back to back, in one script.

`python -m bench.bare_tune PARQUET ROUNDS TRIALS_JSON`: TRIALS_JSON is a file holding a list
of parameter sets (the params a search's trials were sampled, read back from its
leaderboard). Each is trained as `bench.bare_train` trains (read the Parquet, split, `hist`
matrices, `xgboost.train`, predict the validation rows), one after the other, as a user's
own loop would. Prints JSON: the total and per-training seconds. `bench.tune` calls `run`
in its own process (the clock starts after the imports either way).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.bare_train import train


def run(path: Path, rounds: int, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The trainings one after the other: total and per-training seconds."""
    started = time.perf_counter()
    each = [train(path, rounds, params)[0] for params in trials]
    return {"seconds": time.perf_counter() - started, "each": each}


if __name__ == "__main__":
    sets = json.loads(Path(sys.argv[3]).read_text())
    print(json.dumps(run(Path(sys.argv[1]), int(sys.argv[2]), sets)))
