"""The worker-wide thread budget (jobs/threads.py): shares, waits, dead processes, cgroups."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xgboost as xgb

from tests.support import wait_for
from xgenerator.jobs import threads
from xgenerator.jobs.kinds.train import summary_threads
from xgenerator.jobs.threads import Budget, allot, cgroup_quota, parse_cpu_max


def test_allot_shares_the_cores_and_honours_a_request() -> None:
    assert allot(4, [], None) == 4  # alone: every core
    assert allot(4, [(0, False)], None) == 2  # the other has not started: its half is kept
    assert allot(4, [(2, False), (1, False)], None) == 1
    assert allot(2, [(1, False), (1, False)], None) == 1  # more jobs than cores: one each
    assert allot(2, [(2, False)], None) is None  # wait: the other gives one back next round
    assert allot(2, [(2, True)], None) == 1  # a user's nthread never shrinks: do not wait
    assert allot(2, [(1, False)], 8) == 2  # a request is honoured up to the cores
    assert allot(4, [(4, False)], 1) == 1


def run_jobs(
    budget: Budget, starts: list[float], rounds: int, between_rounds: bool = False
) -> list[tuple[str, int, int]]:
    """Simulated trainings (threads of this process), each taking its share every round
    (`Share.current` with `between_rounds`, as a training does): (job, threads taken,
    threads held by all jobs right after)."""
    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def job(name: str, delay: float) -> None:
        time.sleep(delay)
        with budget.share(name) as share:
            for _ in range(rounds):
                got = share.current() if between_rounds else share.take()
                held = sum(budget.snapshot().values())
                with lock:
                    seen.append((name, got.threads, max(held, got.held)))
                time.sleep(0.002)

    workers = [
        threading.Thread(target=job, args=(f"job{i}", delay)) for i, delay in enumerate(starts)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return seen


def test_concurrent_jobs_never_hold_more_threads_than_cores(tmp_path: Path) -> None:
    budget = Budget(tmp_path / "budget.json", cores=4)
    seen = run_jobs(budget, starts=[0.0, 0.02, 0.04, 0.06], rounds=40)
    assert max(held for _, _, held in seen) <= 4
    by_job = {name: [n for job, n, _ in seen if job == name] for name, _, _ in seen}
    assert by_job["job0"][0] == 4  # alone at first: every core
    assert min(by_job["job0"]) == 1  # lowered while all four ran
    assert budget.snapshot() == {}  # everyone left


def test_a_job_gets_its_threads_back_when_the_other_leaves(tmp_path: Path) -> None:
    budget = Budget(tmp_path / "budget.json", cores=2)
    with budget.share("a") as a:
        assert a.take().threads == 2
        with budget.share("b") as b:
            assert a.take().threads == 1  # a's next round
            got = b.take()
            assert (got.threads, got.jobs, got.held) == (1, 2, 2)
        assert a.take().threads == 2


def test_between_rounds_a_job_reads_the_registry_only_every_recheck(tmp_path: Path) -> None:
    budget = Budget(tmp_path / "budget.json", cores=2, recheck_s=3600)
    with budget.share("a") as a:
        first = a.current()
        assert first.threads == 2
        with budget.share("b"):
            assert a.current() is first  # not read again: still both cores
            assert a.take().threads == 1  # a take always reads
            assert a.current().threads == 1
    budget = Budget(tmp_path / "other.json", cores=2, recheck_s=0)
    with budget.share("a") as a:
        assert a.current().threads == 2
        with budget.share("b"):
            assert a.current().threads == 1


def test_jobs_reading_between_rounds_never_hold_more_threads_than_cores(
    tmp_path: Path,
) -> None:
    """A job that starts while another keeps its last take waits for that job's next read:
    the threads held never exceed the cores, and the first job does give one back."""
    budget = Budget(tmp_path / "budget.json", cores=2, recheck_s=0.02)
    seen = run_jobs(budget, starts=[0.0, 0.03], rounds=60, between_rounds=True)
    assert max(held for _, _, held in seen) <= 2
    first = [n for job, n, _ in seen if job == "job0"]
    assert first[0] == 2 and min(first) == 1


def test_a_new_job_waits_for_a_running_one_to_give_threads_back(tmp_path: Path) -> None:
    budget = Budget(tmp_path / "budget.json", cores=2, wait_s=30)
    with budget.share("a") as a:
        assert a.take().threads == 2
        with budget.share("b") as b:
            result: list[int] = []
            taker = threading.Thread(target=lambda: result.append(b.take().threads))
            taker.start()
            time.sleep(0.2)
            assert result == []  # b waits: a still holds both cores
            assert a.take().threads == 1
            taker.join(5)
            assert result == [1]
            assert sum(budget.snapshot().values()) == 2


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    budget = Budget(tmp_path / "budget.json", cores=2, wait_s=0.1)
    with budget.share("a") as a, budget.share("b") as b:
        a.take()  # one thread (b is registered); then a stuck job holding two:
        entries = json.loads((tmp_path / "budget.json").read_text())
        entries["a"]["threads"] = 2
        (tmp_path / "budget.json").write_text(json.dumps(entries))
        started = time.monotonic()
        assert b.take().threads == 1  # a never came back: one thread after the bound
        assert time.monotonic() - started < 5


def test_a_killed_process_frees_its_share(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    probe = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from xgenerator.jobs.threads import Budget\n"
        f"budget = Budget(Path({str(path)!r}), cores=2)\n"
        "with budget.share('doomed') as share:\n"
        "    share.take()\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "holding"
        budget = Budget(path, cores=2)
        assert budget.snapshot() == {"doomed": 2}
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert budget.snapshot() == {}
    with budget.share("next") as share:
        assert share.take().threads == 2


def test_a_reused_pid_is_not_the_registered_process(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    stale = {"pid": os.getpid(), "started": "1", "threads": 2, "fixed": False}
    path.write_text(json.dumps({"old-job": stale}))
    assert Budget(path, cores=2).snapshot() == {}


def test_a_torn_registry_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    path.write_text('{"half": {"pid": ')
    budget = Budget(path, cores=2)
    with budget.share("a") as a:
        assert a.take().threads == 2


class FakeProc:
    """A /proc with the machine's CPU time and one process's, in clock ticks."""

    def __init__(self, root: Path, pid: int) -> None:
        self.root, self.pid = root, pid
        self.machine = self.ours = 0
        self.running = 1  # procs_running: this thread
        (root / str(pid)).mkdir(parents=True)
        self.write()

    def advance(self, machine_cores: float, our_cores: float, seconds: float) -> None:
        """The machine worked `machine_cores` (ours included), we `our_cores`, for `seconds`."""
        self.machine += round(machine_cores * seconds * threads.TICKS_PER_S)
        self.ours += round(our_cores * seconds * threads.TICKS_PER_S)
        self.write()

    def write(self) -> None:
        # user nice system idle iowait irq softirq steal: work split over user and system
        half = self.machine // 2
        (self.root / "stat").write_text(
            f"cpu  {half} 0 {self.machine - half} 999999 7 0 0 0 0 0\n"
            f"procs_running {self.running}\n"
        )
        fields = ["S"] + ["0"] * 10 + [str(self.ours), "0"] + ["0"] * 30
        (self.root / str(self.pid) / "stat").write_text(f"{self.pid} (python x) {' '.join(fields)}")


def test_other_programs_load_is_their_cpu_time_not_ours(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, 4242)
    load = threads.OtherLoad(tmp_path, window_s=0.25)
    assert load.update([4242], 1, now=0.0) == 0.0  # no window yet: the run queue, this thread
    proc.advance(machine_cores=2.0, our_cores=1.0, seconds=1.0)  # one core is another's
    assert load.update([4242], 1, now=1.0) == pytest.approx(1.0, abs=0.02)
    proc.advance(machine_cores=2.0, our_cores=2.0, seconds=0.1)  # spinning: still ours
    assert load.update([4242], 1, now=1.1) == pytest.approx(1.0, abs=0.02)  # within the window
    proc.advance(machine_cores=2.0, our_cores=2.0, seconds=0.4)
    assert load.update([4242], 1, now=1.5) == pytest.approx(0.5, abs=0.02)  # smoothed down
    assert threads.process_ticks(999_999_999, tmp_path) == 0  # a process gone counts nothing
    proc.running = 4  # three threads besides this one, at the instant a new process looks
    proc.write()
    assert threads.OtherLoad(tmp_path).update([4242], 1, now=0.0) == 3.0


def test_each_training_measures_the_load_from_its_own_start(tmp_path: Path) -> None:
    """A kept process's next job: what ran since its previous training (another job of the
    worker, a script on both cores) says nothing of now; an instant's run queue is only a
    guess until a window is measured; a round longer than `stale_s` is still measured."""
    proc = FakeProc(tmp_path, 4242)
    load = threads.OtherLoad(tmp_path, window_s=0.25, stale_s=1.0)
    load.begin()
    load.update([4242], 1, now=0.0)
    proc.advance(machine_cores=1.0, our_cores=1.0, seconds=0.5)  # a training, alone
    assert load.update([4242], 1, now=0.5) == 0.0
    proc.advance(machine_cores=2.0, our_cores=0.0, seconds=0.5)  # between jobs: both cores
    load.begin()
    assert load.update([4242], 1, now=1.0) == 0.0  # its own window; the estimate carried
    proc.advance(machine_cores=1.0, our_cores=1.0, seconds=0.25)
    assert load.update([4242], 1, now=1.25) == 0.0
    proc.advance(machine_cores=2.0, our_cores=0.0, seconds=10.0)  # a long pause
    proc.running = 2  # something wakes at the instant the next job starts
    proc.write()
    load.begin()
    assert load.update([4242], 1, now=11.25) == 1.0  # too old to carry: the run queue
    proc.running = 1
    proc.advance(machine_cores=1.0, our_cores=1.0, seconds=0.25)
    assert load.update([4242], 1, now=11.5) == 0.0  # the first window replaces the guess
    proc.advance(machine_cores=2.0, our_cores=1.0, seconds=3.0)  # one long round
    assert load.update([4242], 1, now=14.5) == pytest.approx(0.5, abs=0.02)  # blended


def test_a_busy_machine_gets_one_thread_until_it_calms_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = FakeProc(tmp_path / "proc", os.getpid())
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    budget = Budget(tmp_path / "budget.json", cores=2, load_aware=True, proc=proc.root)

    def round_(machine_cores: float, our_cores: float) -> int:
        """One 0.3 s round of this training: the threads it takes for the next."""
        clock[0] += 0.3
        proc.advance(machine_cores, our_cores, 0.3)
        return share.take().threads

    with budget.share("alone") as share:
        assert share.take().threads == 2  # no window measured yet
        assert round_(machine_cores=2.0, our_cores=0.9) == 1  # another program holds a core
        assert round_(machine_cores=2.0, our_cores=1.0) == 1  # and keeps it
        calm = [round_(machine_cores=1.0, our_cores=1.0) for _ in range(4)]
    assert calm[0] == 1 and calm[-1] == 2  # smoothed over the windows, then every core
    with budget.share("next") as share:  # the machine gets busy again during the next job
        share.take()
        assert round_(machine_cores=2.0, our_cores=1.0) == 1
    # what follows it in this process (a SHAP summary takes its threads once) starts from
    # what the process measured, not from an idle machine
    with budget.share("summary") as share:
        assert share.take().threads == 1
    # also after a training that asked for its own nthread (the budget honours it as asked)
    fixed = Budget(tmp_path / "fixed.json", cores=2, load_aware=True, proc=proc.root)
    with fixed.share("trained", requested=2) as share:
        share.take()
        assert round_(machine_cores=2.0, our_cores=1.0) == 2
    with fixed.share("summary") as share:
        assert share.take().threads == 1
    configured = Budget(tmp_path / "other.json", cores=2, load_aware=False, proc=proc.root)
    with configured.share("alone") as share:
        share.take()
        assert round_(machine_cores=2.0, our_cores=0.0) == 2  # the operator's cores are ours


def test_without_a_budget_xgboost_decides() -> None:
    threads.install(None)
    with threads.registered("job", 3) as share:
        assert share is None


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert parse_cpu_max(tmp_path / "cpu.max") is None
    nested = tmp_path / "system.slice" / "worker.scope"
    nested.mkdir(parents=True)
    (tmp_path / "system.slice" / "cpu.max").write_text("300000 100000\n")
    (nested / "cpu.max").write_text("150000 100000\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/system.slice/worker.scope\n")
    assert cgroup_quota(tmp_path, proc) == pytest.approx(1.5)
    proc.write_text("4:memory:/x\n")  # cgroup v1 only
    assert cgroup_quota(tmp_path, proc) is None
    assert threads.available_cores() >= 1
    assert threads.available_cores() <= len(os.sched_getaffinity(0))


def test_jobs_starting_together_split_the_cores(tmp_path: Path) -> None:
    budget = Budget(tmp_path / "budget.json", cores=2)
    seen = run_jobs(budget, starts=[0.0, 0.0], rounds=30)
    assert max(held for _, _, held in seen) <= 2
    wait_for(lambda: budget.snapshot() == {}, 5, what="both jobs to leave")


def test_a_summary_after_success_predicts_on_its_share(tmp_path: Path) -> None:
    """The SHAP summary follows a job's success, when the worker may run the next job
    already: it takes its threads from the budget like a training."""
    booster = xgb.train({"nthread": 2}, xgb.DMatrix([[0.0], [1.0]], label=[0.0, 1.0]), 1)
    budget = Budget(tmp_path / "budget.json", cores=2)
    threads.install(budget)
    try:
        with budget.share("next-job", requested=1) as other:  # a user's nthread=1
            other.take()
            with summary_threads("done-job:shap", booster) as n:
                assert n == 1
                assert budget.snapshot() == {"next-job": 1, "done-job:shap": 1}
                config = json.loads(booster.save_config())
                assert config["learner"]["generic_param"]["nthread"] == "1"
        assert budget.snapshot() == {}
    finally:
        threads.install(None)
    with summary_threads("outside-a-worker", booster) as n:
        assert n is None
