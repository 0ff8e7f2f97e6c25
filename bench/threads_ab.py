"""A/B of the worker's thread handling between two versions of the code, on `gss_wages`.

`python -m bench.threads_ab ROUNDS LABEL=SRC [LABEL=SRC ...]` (SRC: a `src/` directory, e.g.
from `git archive <commit> src | tar -x -C /tmp/old`). Each argument is one block, run in
order on a fresh stack (API and worker from SRC, two pool processes): a warm-up, one training
alone, then two submitted together. Prints one line per block; `docs/benchmarks.md` has the
figures. Not part of `python -m bench`: it compares code versions, not the service with a
baseline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Stack, flush_redis
from bench.realdata import body, finished, submit, upload, warm_up
from bench.realdata_sets import DATASETS
from bench.training import epoch


def block(work: Path, csv: Path, rounds: int) -> tuple[float, list[float]]:
    stack = Stack("postgresql", work, migrate=False)
    # the schema of the code version under test, migrated by that code
    subprocess.run([sys.executable, "-m", "xgenerator", "migrate"], env=stack.env, check=True)
    try:
        stack.start_workers(1, concurrency=2)
        user = stack.create_user()
        warm_up(stack, user)
        data = next(d for d in DATASETS if d.name == "gss_wages")
        payload = body(data, upload(stack, user, csv, data.name), rounds)
        sent, job = submit(stack, user, payload)
        alone = epoch(finished(stack, user, job, 0.5)["completed_at"]) - sent
        sent = time.time()
        jobs = [submit(stack, user, payload)[1] for _ in range(2)]
        both = [epoch(finished(stack, user, j, 0.5)["completed_at"]) - sent for j in jobs]
        return alone, both
    finally:
        stack.close()


def main(argv: list[str]) -> None:
    rounds, blocks = int(argv[0]), [a.split("=", 1) for a in argv[1:]]
    work = Path(tempfile.mkdtemp(prefix="xgen-ab-"))
    csv = work / "gss_wages.csv"
    next(d for d in DATASETS if d.name == "gss_wages").frame().to_csv(csv, index=False)
    for label, src in blocks:
        os.environ["PYTHONPATH"] = f"{src}{os.pathsep}{ROOT}"  # the stack's processes' code
        flush_redis()
        alone, both = block(work, csv, rounds)
        load = Path("/proc/loadavg").read_text().split()[0]
        print(
            f"{label}: alone {alone:.2f} s; two at once {both[0]:.2f} / {both[1]:.2f} s; "
            f"load {load}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
