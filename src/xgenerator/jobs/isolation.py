"""Running a job in a child process of its own, so that it can be stopped at once.

XGBoost spends a boosting round in C code, where no Python callback runs: one round of a
large model took 16 minutes, and a cancel had to wait for its end while the round kept the
worker's cores. So the worker's pool process forks a child for each job and keeps only the
lease thread (`jobs/runtime.py`) itself. When that thread ends the job (cancel, time limit)
or finds its lease lost, it sends the child SIGTERM, then SIGKILL after `job_stop_grace_s`,
and only then deletes the checkpoint; the child's CPU and memory are the system's again as
soon as it dies. The job's code runs in the child unchanged: it inherits the context, opens
database connections of its own, writes progress, checkpoints and the outcome as it would in
the pool process, and hands back only the runner's one-word answer through a pipe. Once it
has answered, the job is final and the child only does the work that follows a success
(`Outcome.then`): the lease thread, finding the job no longer running, leaves it be.

Why the whole job and not just the boosting: XGBoost's OpenMP runtime (libgomp) is not
fork-safe. A child forked from a process that ran a parallel region on several threads hangs
at its own first one (reproduced with XGBoost 3.2), so the pool process must never run
XGBoost itself (SHAP, predictions, reports) if it is to fork trainings. Why `os.fork` and
not `multiprocessing`: Celery's pool processes are daemonic, and multiprocessing (billiard
too) refuses to start children from a daemonic process. The fork comes before the lease
thread starts, so the pool process has a single thread when it forks.

The fork costs ~30 ms of CPU a job (`bench/isolation.py`, docs/benchmarks.md). Kinds that
never run XGBoost or other OpenMP code and end quickly (`IN_POOL_PROCESS`) skip it.

A job whose work runs elsewhere (a training on a Dask cluster, `works_elsewhere`) must not
die at SIGTERM: the cluster would train on without it, and xgboost.dask's worker locks,
held by its Dask client, would never be released. Its SIGTERM only ends the job at its next
check (`Runtime.end_at_next_check`, at most a tick away while it waits on the cluster), so
that its code stops the cluster's work and waits for it; SIGKILL comes `dask_stop_wait_s`
later than for other jobs.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.jobs import reconciler
from xgenerator.jobs.runtime import Runtime
from xgenerator.settings import Settings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# The runner's answers are single words; a pipe's buffer holds far more than this.
MAX_ANSWER = 512
# After SIGKILL the kernel frees a process at once; past this something is badly wrong.
KILL_WAIT_S = 30.0


# Kinds that run in the pool process itself: no XGBoost, no OpenMP (which would make every
# later fork hang), nothing long inside C code.
IN_POOL_PROCESS = frozenset({"noop", "cleanup"})


def wanted(settings: Settings, job_type: str) -> bool:
    """Whether a job of this kind runs in a process of its own."""
    return settings.isolate_jobs and job_type not in IN_POOL_PROCESS


def works_elsewhere(job: Job) -> bool:
    """Whether the job's work runs outside its process (on a Dask cluster): its process is
    then stopped politely (see the module docstring)."""
    return job.job_type == "train" and bool(job.config.get("distributed"))


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


Work = Callable[[], tuple[str, Callable[[], None]]]


def run(
    context: Context,
    runtime: Runtime,
    work: Work,
    on_end: Callable[[str], None],
    *,
    elsewhere: bool = False,
) -> str:
    """Run `work` (the job's code, which records its own outcome, says what happened and
    hands back what follows it) in a child while this process keeps the lease. Returns the
    child's answer, or what stopped it: "ended" (the lease thread ended the job), "lost"
    (the lease was lost), "died" (the child died by itself, say killed for memory: the job is
    handed back like a lost worker's). `on_end` gets that result once, as soon as it is
    known: a search schedules its next trials while the child still does what follows a
    success. `elsewhere`: the job's work runs outside the child (`works_elsewhere`)."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    # The child's garbage collector must not walk the objects it inherits: touching them
    # copies every page of the heap (a full collection cost ~0.4 s and the heap's size).
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(context, parent, work, write_end, runtime if elsewhere else None)
    gc.unfreeze()
    os.close(write_end)
    log.info("job %s: running in process %s", runtime.job_id, pid)
    settings = context.settings
    grace_s = settings.job_stop_grace_s + (settings.dask_stop_wait_s if elsewhere else 0.0)
    child = Child(pid, grace_s, answers=read_end)
    try:
        with runtime.keeping_lease(halt=child.stop):
            try:
                early = child.wait_answer()
                if early:
                    on_end(early)
                status = child.wait()
            except BaseException:  # this process is being stopped: the job goes with it
                child.kill()
                raise
        answer = child.read_answer()
    finally:
        os.close(read_end)
    result = answer or _without_answer(context, runtime, pid, status)
    if not early:
        on_end(result)
    return result


def _without_answer(context: Context, runtime: Runtime, pid: int, status: int) -> str:
    """What stopped a child that did not answer; one that died by itself hands its job back."""
    if runtime.ended:
        log.warning("job %s: ended while running (cancel or time limit); stopped", runtime.job_id)
        return "ended"
    if runtime.lost:
        log.warning("job %s: attempt %s lost its lease; stopped", runtime.job_id, runtime.attempt)
        return "lost"
    how = describe(status)
    log.error("job %s: its process %s %s without an answer", runtime.job_id, pid, how)
    reconciler.release_job(context, runtime.job_id, runtime.attempt, f"its process {how}")
    return "died"


class Child:
    """A forked child, reaped by the thread that waits for it and stopped from another: the
    lock makes sure no signal is sent once its pid is reaped (and may be reused)."""

    def __init__(self, pid: int, grace_s: float, answers: int | None = None) -> None:
        self.pid = pid
        self.grace_s = grace_s
        self.answers = answers  # the pipe's read end: an answer there means the job is final
        self.answer = ""
        self._lock = threading.Lock()
        self._status: int | None = None
        self._gone = threading.Event()

    def wait(self) -> int:
        """Block until the child exits, reap it, and return its wait status."""
        # WNOWAIT: see the exit without reaping, so that `stop` may still signal the pid.
        os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            _, status = os.waitpid(self.pid, 0)
            self._status = status
        self._gone.set()
        return status

    def stop(self) -> None:
        """SIGTERM, SIGKILL after the grace period; returns once the child is gone. A child
        that has answered is left to finish: its job is final already."""
        if self.answered() or not self._signal(signal.SIGTERM):
            return
        if self._gone.wait(self.grace_s):
            return
        log.warning("process %s ignored SIGTERM for %gs: SIGKILL", self.pid, self.grace_s)
        self._signal(signal.SIGKILL)
        if not self._gone.wait(KILL_WAIT_S):
            log.error("process %s still not gone %gs after SIGKILL", self.pid, KILL_WAIT_S)

    def answered(self) -> bool:
        """Whether the child has answered (read already, or waiting in the pipe)."""
        if self.answer:
            return True
        if self.answers is None:
            return False
        readable, _, _ = select.select([self.answers], [], [], 0)
        return bool(readable)

    def wait_answer(self) -> str:
        """Block until the child answers or exits; its answer ("" if it has none yet).
        Not the pipe's end of file: a grandchild may hold its write end."""
        if self.answers is None or not hasattr(os, "pidfd_open"):
            return ""  # then the answer is read once the child has exited
        exited = os.pidfd_open(self.pid)  # readable once the child has exited
        try:
            select.select([self.answers, exited], [], [])
        finally:
            os.close(exited)
        return self.read_answer()

    def read_answer(self) -> str:
        """What the child wrote (non-blocking, at most once)."""
        if not self.answer and self.answers is not None:
            self.answer = _read_answer(self.answers)
        return self.answer

    def kill(self) -> None:
        """SIGKILL and reap, from the waiting thread itself."""
        self._signal(signal.SIGKILL)
        self.wait()

    def _signal(self, sig: signal.Signals) -> bool:
        """Send `sig` unless the child was reaped already; whether it was sent."""
        with self._lock:
            if self._status is not None:
                return False
            os.kill(self.pid, sig)  # not reaped: at worst a zombie, never another process
            return True


def _child(
    context: Context,
    parent: int,
    work: Work,
    answer_to: int,
    polite: Runtime | None,
) -> NoReturn:
    """The child's whole life: never returns into the caller's (Celery's) code. With `polite`
    (the runtime of a job whose work runs elsewhere), SIGTERM ends that job at its next check
    instead of killing the process."""
    code = 1
    try:
        die_with_parent()  # a pool process killed by Celery's hard limit takes its job along
        if os.getppid() != parent:  # it died before the line above
            os._exit(code)
        if polite is None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # die at once, even inside C code
        else:
            runtime = polite
            signal.signal(signal.SIGTERM, lambda signum, frame: runtime.end_at_next_check())
        context.db.after_fork()
        answer, then = work()
        os.write(answer_to, answer.encode()[:MAX_ANSWER])
        code = 0
        then()
        context.db.dispose()
    except BaseException:
        log.exception("job process %s failed", os.getpid())
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: S110 - nothing left to report it to
                pass
        os._exit(code)  # no atexit hooks or finalizers of the pool process run here


def _read_answer(fd: int) -> str:
    """What the child wrote before it exited (nothing if it was stopped). Non-blocking: a
    grandchild that inherited the write end must not hold this process up."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, MAX_ANSWER).decode(errors="replace")
    except BlockingIOError:
        return ""


def describe(status: int) -> str:
    """A wait status in words: "was killed by SIGKILL", "exited with code 1"."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
