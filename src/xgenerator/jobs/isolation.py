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

A job's process is kept for the pool process's next job (`_spare`) when its job ended by
itself: a fresh process paid ~15,000 page faults and a new database connection per job, 0.1 s
of a 0.3 s search trial here (docs/benchmarks.md). It gets each job as one line on a pipe
(`Call`: the job's id and attempt; it reads the claimed job itself) and answers with one
line, then `idle` once the work after a success is done. It first gives the free pages of
its heap back to the system, and exits instead when it still holds more than
`MAX_IDLE_PRIVATE` of its own memory (what a big job left in use goes back with it), after
`IDLE_S` without a job, after a job whose work ran elsewhere, or with the pool process. A
stopped job's process is killed, and a cancelled job's exits: neither is reused. Kinds
that never run XGBoost or other OpenMP code and end quickly (`IN_POOL_PROCESS`) skip all
this (`bench/isolation.py` measures a fresh process).

A job whose work runs elsewhere (a training on a Dask cluster, `works_elsewhere`) must not
die at SIGTERM: the cluster would train on without it, and xgboost.dask's worker locks,
held by its Dask client, would never be released. Its SIGTERM only ends the job at its next
check (`Runtime.end_at_next_check`, at most a tick away while it waits on the cluster), so
that its code stops the cluster's work and waits for it; SIGKILL comes `dask_stop_wait_s`
later than for other jobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
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
# A job's process waits this long for the next job, and is kept only below this size.
IDLE_S = 300.0
MAX_IDLE_PRIVATE = 256 * 1024 * 1024
IDLE = b"idle\n"
# The answers after which a job's process is kept for the next job.
REUSED_AFTER = frozenset({"succeeded", "failed", "retrying", "pruned"})


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


@dataclass(frozen=True)
class Call:
    """What a job's process is asked to run: a claimed job's attempt. `elsewhere`: its work
    runs outside the process (`works_elsewhere`), so SIGTERM ends it at its next check."""

    job_id: str
    attempt: int
    elsewhere: bool = False

    def line(self) -> bytes:
        return f"{self.job_id} {self.attempt} {int(self.elsewhere)}\n".encode()

    @classmethod
    def parse(cls, line: bytes) -> Call:
        job_id, attempt, elsewhere = line.decode().split()
        return cls(job_id, int(attempt), elsewhere == "1")


Work = Callable[[], tuple[str, Callable[[], None]]]
# In the job's process: the call's runtime and work (the job's code, which records its own
# outcome, says what happened and hands back what follows it).
Begin = Callable[[Context, Call], tuple[Runtime, Work]]


@dataclass
class _Process:
    """A job's process, as the pool process that forked it sees it."""

    pid: int
    requests: int  # write end: one `Call` line per job
    answers: int  # read end: the job's answer line, then IDLE when it can take another
    context: Context  # what it was forked with: it serves calls made with the same only
    begin: Begin

    def close(self) -> None:
        os.close(self.requests)
        os.close(self.answers)


_spare: _Process | None = None  # this pool process's idle job process, if any


def run(
    context: Context, runtime: Runtime, call: Call, begin: Begin, on_end: Callable[[str], None]
) -> str:
    """Run the call in a job's process while this process keeps the lease. Returns the
    process's answer, or what stopped it: "ended" (the lease thread ended the job), "lost"
    (the lease was lost), "died" (the process died by itself, say killed for memory: the job
    is handed back like a lost worker's). `on_end` gets that result once, as soon as it is
    known: a search schedules its next trials while the process still does what follows a
    success."""
    global _spare
    process = _take_spare(context, begin) if not call.elsewhere else None
    if process is not None:
        try:
            os.write(process.requests, call.line())
        except BrokenPipeError:  # it exited after all (idle, just now)
            _retire(process)
            process = None
    if process is None:
        process = _spawn(context, begin)
        os.write(process.requests, call.line())
    log.info("job %s: running in process %s", runtime.job_id, process.pid)
    settings = context.settings
    grace_s = settings.job_stop_grace_s + (settings.dask_stop_wait_s if call.elsewhere else 0.0)
    child = Child(process.pid, grace_s, answers=process.answers)
    reusable = early = False
    try:
        with runtime.keeping_lease(halt=child.stop):
            try:
                early = bool(child.wait_answer())
                if early:
                    on_end(child.answer)
                # a cancelled job's process goes with it (a cancel stops the process)
                reusable = child.wait_idle() and child.answer in REUSED_AFTER
            except BaseException:  # this process is being stopped: the job goes with it
                child.kill()
                raise
        answer = child.read_answer()
    finally:
        if reusable:
            _spare = process
        elif child.status is None:  # idle, but not to be kept
            _retire(process)
        else:
            process.close()
    result = answer or _without_answer(context, runtime, process.pid, child.status or 0)
    if not early:
        on_end(result)
    return result


def _take_spare(context: Context, begin: Begin) -> _Process | None:
    """The idle job process, if it is alive and runs jobs the same way."""
    global _spare
    process, _spare = _spare, None
    if process is None:
        return None
    if process.context is context and process.begin is begin and _alive(process.pid):
        return process
    _retire(process)
    return None


def _alive(pid: int) -> bool:
    """Whether the child has not exited (a spare that timed out idle has)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def retire_spare() -> None:
    """End this process's idle job process, if any (it would otherwise wait `IDLE_S`)."""
    global _spare
    process, _spare = _spare, None
    if process is not None:
        _retire(process)


def _retire(process: _Process) -> None:
    """End a spare job process and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    os.waitpid(process.pid, 0)
    process.close()


def _spawn(context: Context, begin: Begin) -> _Process:
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    parent = os.getpid()
    # The child's garbage collector must not walk the objects it inherits: touching them
    # copies every page of the heap (a full collection cost ~0.4 s and the heap's size).
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        os.close(requests_write)
        os.close(answers_read)
        _job_process(context, parent, begin, requests_read, answers_write)
    gc.unfreeze()
    os.close(requests_read)
    os.close(answers_write)
    return _Process(pid, requests_write, answers_read, context, begin)


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
        self._received = b""  # read from `answers`, not yet consumed
        self._lock = threading.Lock()
        self._status: int | None = None
        self._gone = threading.Event()

    @property
    def status(self) -> int | None:
        """The wait status once reaped."""
        return self._status

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
        if self.answer or self._received:
            return True
        if self.answers is None:
            return False
        readable, _, _ = select.select([self.answers], [], [], 0)
        return bool(readable)

    def wait_answer(self) -> str:
        """Block until the child answers or exits; its answer ("" if it has none)."""
        self._wait_until(lambda: b"\n" in self._received)
        return self.read_answer()

    def wait_idle(self) -> bool:
        """After the answer: block until the child can take another job (True), or it has
        exited (False, and it is reaped)."""
        if self._wait_until(lambda: IDLE in self._received.partition(b"\n")[2]):
            return True
        self.wait()
        return False

    def read_answer(self) -> str:
        """The answer line, once it is there (non-blocking; a child that exited without a
        line break answered with all it wrote)."""
        if not self.answer and self.answers is not None:
            self._drain()
            line, newline, _ = self._received.partition(b"\n")
            if newline or not self._running():
                self.answer = line.decode(errors="replace")[:MAX_ANSWER]
        return self.answer

    def kill(self) -> None:
        """SIGKILL and reap, from the waiting thread itself."""
        self._signal(signal.SIGKILL)
        self.wait()

    def _wait_until(self, done: Callable[[], bool]) -> bool:
        """Read the child's lines until `done()`; False if the child exits (or closes the
        pipe) first. Not the pipe's end of file alone: a grandchild may hold its write end."""
        if self.answers is None:
            return False
        exited = os.pidfd_open(self.pid) if hasattr(os, "pidfd_open") else None
        try:
            while not done():
                watched = [self.answers] if exited is None else [self.answers, exited]
                readable, _, _ = select.select(watched, [], [], None if exited is not None else 0.1)
                if self.answers in readable and self._drain() and done():
                    return True
                if (exited is not None and exited in readable) or not self._running():
                    self._drain()
                    return done()
            return True
        finally:
            if exited is not None:
                os.close(exited)

    def _drain(self) -> bool:
        """Append what the pipe holds now (non-blocking); False at its end of file."""
        if self.answers is None:
            return False
        os.set_blocking(self.answers, False)
        try:
            while chunk := os.read(self.answers, 4096):
                self._received += chunk
            return False  # end of file: every writer is gone
        except BlockingIOError:
            return True

    def _running(self) -> bool:
        with self._lock:
            return self._status is None and _alive(self.pid)

    def _signal(self, sig: signal.Signals) -> bool:
        """Send `sig` unless the child was reaped already; whether it was sent."""
        with self._lock:
            if self._status is not None:
                return False
            os.kill(self.pid, sig)  # not reaped: at worst a zombie, never another process
            return True


def _job_process(
    context: Context, parent: int, begin: Begin, requests: int, answers: int
) -> NoReturn:
    """A job process's whole life: never returns into the caller's (Celery's) code. Runs the
    calls that come one line at a time, until it is told no more, waits `IDLE_S` for one,
    holds more than `MAX_IDLE_PRIVATE` or ran a job whose work runs elsewhere (whose SIGTERM only
    ends the job at its next check instead of killing the process)."""
    code = 1
    try:
        die_with_parent()  # a pool process killed by Celery's hard limit takes its job along
        if os.getppid() != parent:  # it died before the line above
            os._exit(code)
        context.db.after_fork()
        while (call := _next_call(requests)) is not None:
            runtime, work = begin(context, call)
            # die at once at SIGTERM, even inside C code, unless the work runs elsewhere
            signal.signal(signal.SIGTERM, _polite(runtime) if call.elsewhere else signal.SIG_DFL)
            answer, then = work()
            os.write(answers, answer.encode()[:MAX_ANSWER].replace(b"\n", b" ") + b"\n")
            then()
            if call.elsewhere or _trimmed_private_bytes() > MAX_IDLE_PRIVATE:
                break
            os.write(answers, IDLE)
        code = 0
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


def _polite(runtime: Runtime) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that ends the job at its next check."""
    return lambda signum, frame: runtime.end_at_next_check()


def _next_call(requests: int) -> Call | None:
    """The next call; None when the pool process closed the pipe or sent none for IDLE_S.
    One line per call, written at once (far below PIPE_BUF), and only once the last is done."""
    readable, _, _ = select.select([requests], [], [], IDLE_S)
    if not readable:
        return None
    line = os.read(requests, 4096)
    return Call.parse(line) if line else None


def _trimmed_private_bytes() -> int:
    """`_private_bytes` once the heap's free pages are given back (glibc's `malloc_trim`).

    A job frees most of what it used, but glibc keeps freed pages mapped, and counted, until
    then. A 200-round training on nycflights13 (327k rows) left 282-348 MiB, 225 MiB after
    the trim (7 ms): its process is kept, and the next job skips a fork, a new database
    connection and its first calls' costs."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return _private_bytes()


def _private_bytes() -> int:
    """Memory only this process holds (its own pages, not those still shared with the pool
    process it was forked from): what its exit would give back. 0 where /proc is absent."""
    try:
        with open("/proc/self/smaps_rollup") as rollup:
            kib = sum(
                int(line.split()[1])
                for line in rollup
                if line.startswith(("Private_Clean:", "Private_Dirty:"))
            )
    except (OSError, ValueError, IndexError):
        return 0
    return kib * 1024


def describe(status: int) -> str:
    """A wait status in words: "was killed by SIGKILL", "exited with code 1"."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
