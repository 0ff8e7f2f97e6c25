"""How much slower memory is to touch after its process slept, and what that costs a
`POST /train` (docs/benchmarks.md, "Fixed cost per job").

`python -m bench.idle_memory` prints, for each pause, the time to touch one float per 4 KiB
page of a 200 MB array that was touched just before the pause; then, on a fresh PostgreSQL
stack with no worker, the time of a `POST /train` (the `diamonds` body of bench/realdata.py)
sent after the same pauses. Not part of `python -m bench`: it describes the machine, not the
service against a baseline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Bench, headers
from bench.realdata import body, upload
from bench.realdata_sets import DATASETS
from bench.report import Config

PAUSES = (0.0, 0.0, 0.5, 1.0, 2.0, 0.0, 5.0, 0.0)


def touch_after(pause: float, pages: np.ndarray) -> float:
    time.sleep(pause)
    started = time.perf_counter()
    pages.sum()
    return time.perf_counter() - started


def main() -> None:
    array = np.ones(50_000_000, dtype=np.float32)
    pages = array[:: 4096 // array.itemsize]
    touch_after(0, pages)
    for pause in PAUSES:
        print(
            f"touch 200 MB after {pause:.1f} s asleep: {touch_after(pause, pages) * 1000:6.2f} ms"
        )
    del array, pages

    bench = Bench(Config.make(False), Path(tempfile.mkdtemp(prefix="xgen-idle-")))
    try:
        stack = bench.stack("postgresql", workers=0)
        user = stack.create_user()
        data = next(d for d in DATASETS if d.name == "diamonds")
        path = stack.dir / "diamonds.csv"
        data.frame(0).to_csv(path, index=False)
        payload = body(data, upload(stack, user, path, "diamonds"), 200)
        for pause in PAUSES:
            time.sleep(pause)
            started = time.perf_counter()
            answer = stack.http.post("/train", headers=headers(user), json=payload)
            took = time.perf_counter() - started
            status = answer.status_code
            print(f"POST /train after {pause:.1f} s idle: {took * 1000:6.1f} ms ({status})")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
