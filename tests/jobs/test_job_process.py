"""A job's process is kept for the pool process's next job (jobs/isolation.py): not after a
cancel, not once it holds much memory of its own, and a kept one that died is replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import wait_for
from xgenerator.context import Context
from xgenerator.jobs import isolation
from xgenerator.jobs.runtime import Runtime

_held: list[bytes] = []  # what a job's process keeps after its job (its heap, as it were)


def job_begin(
    pid_file: Path, *answers: str, keep_mib: int = 0, churn_mib: int = 0
) -> isolation.Begin:
    """Jobs that write their process's pid, keep `keep_mib` MiB, use and free `churn_mib` MiB
    of small heap blocks below one they keep (so the heap cannot shrink from its top), and
    answer `answers` in turn, then "succeeded"."""
    left = list(answers)

    def begin(ctx: Context, call: isolation.Call) -> tuple[Runtime, isolation.Work]:
        def work() -> tuple[str, Callable[[], None]]:
            pid_file.write_text(str(os.getpid()))
            if keep_mib:
                _held.append(b"\x01" * (keep_mib * 1024 * 1024))
            if churn_mib:
                size = 1000  # a name, not a literal: Python would fold the product into one
                used = [b"\x01" * size for _ in range(churn_mib * 1024 * 1024 // size)]
                _held.append(b"\x02" * size)
                del used
            return left.pop(0) if left else "succeeded", lambda: None

        return Runtime(ctx, call.job_id, call.attempt, "train"), work

    return begin


def run_job(context: Context, begin: isolation.Begin, pid_file: Path) -> tuple[str, int]:
    """Run one job through `isolation.run`: its answer and the pid of its process."""
    runtime = Runtime(context, "no-such-job", 1, "train")
    answer = isolation.run(
        context, runtime, isolation.Call("no-such-job", 1), begin, lambda _: None
    )
    return answer, int(pid_file.read_text())


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()  # reaped (a zombie still has its entry)


@pytest.fixture(autouse=True)
def no_spare() -> Iterator[None]:
    isolation.retire_spare()
    yield
    isolation.retire_spare()


@pytest.mark.parametrize("ended", ["succeeded", "failed", "pruned"])
def test_the_next_job_runs_in_the_same_process(
    context: Context, tmp_path: Path, ended: str
) -> None:
    pid_file = tmp_path / "pid"
    begin = job_begin(pid_file, ended)  # one `begin` for both jobs, as a worker has
    answer, first = run_job(context, begin, pid_file)
    assert answer == ended and not gone(first)  # idle, waiting for the next job
    assert run_job(context, begin, pid_file) == ("succeeded", first)
    isolation.retire_spare()
    assert gone(first)


def test_a_cancelled_jobs_process_is_not_kept(context: Context, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    answer, pid = run_job(context, job_begin(pid_file, "cancelled"), pid_file)
    assert answer == "cancelled" and gone(pid)
    assert isolation._spare is None


def test_a_process_holding_much_memory_is_not_kept(context: Context, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    big = isolation.MAX_IDLE_PRIVATE // (1024 * 1024) + 64
    answer, pid = run_job(context, job_begin(pid_file, keep_mib=big), pid_file)
    assert answer == "succeeded"
    wait_for(lambda: gone(pid), 10, 0.05, "the big process to exit")
    _, again = run_job(context, job_begin(pid_file), pid_file)
    assert again != pid


def test_a_process_is_judged_on_the_memory_it_holds_not_what_it_freed(
    context: Context, tmp_path: Path
) -> None:
    """Freed heap pages stay mapped, and counted, until glibc is asked to give them back."""
    pid_file = tmp_path / "pid"
    churn = isolation.MAX_IDLE_PRIVATE // (1024 * 1024) + 64
    begin = job_begin(pid_file, churn_mib=churn)
    answer, first = run_job(context, begin, pid_file)
    assert answer == "succeeded" and not gone(first)
    assert run_job(context, begin, pid_file) == ("succeeded", first)


def test_a_kept_process_that_died_is_replaced(context: Context, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    begin = job_begin(pid_file)
    _, first = run_job(context, begin, pid_file)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: os.waitid(os.P_PID, first, os.WEXITED | os.WNOHANG | os.WNOWAIT), 10, 0.01)
    answer, second = run_job(context, begin, pid_file)
    assert answer == "succeeded" and second != first and gone(first)
