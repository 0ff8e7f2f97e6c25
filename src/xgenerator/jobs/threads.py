"""The worker-wide thread budget: how many OpenMP threads each running training may use.

A training alone on a worker uses every core the worker may use, with OpenMP's default
(spinning) waits: passive waiting made a lone job 1.2-3x slower. Trainings running at once on
one worker share those cores instead of oversubscribing them: two jobs x two spinning threads on
two cores ran 10x slower than one thread each (docs/benchmarks.md). Each job takes its share
before its matrices and then reads it again between boosting rounds, at most every
`recheck_s`, so a job lowers its threads within a tenth of a second when another starts and
raises them again when it finishes.

The shared state is a small JSON file (`{key: {"pid", "started", "threads", "fixed"}}`) read
and written under an exclusive `flock`, which the kernel releases when its holder dies; entries
whose process no longer exists (same pid and start time) are dropped at every access, so a pool
process killed mid-training frees its share by the others' next read (within `recheck_s`).
Nothing here knows about Celery: `tasks/worker.py` installs a budget in the worker's main
process, before the pool forks.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may run on (affinity), capped by a cgroup v2 `cpu.max` quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cgroup_quota(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The tightest cgroup v2 CPU quota (in CPUs) on the way from this process's cgroup to the
    root, or None without one (no cgroup v2, or `max` everywhere)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    quotas = []
    directory = root / relative.lstrip("/")
    while True:
        quota = parse_cpu_max(directory / "cpu.max")
        if quota is not None:
            quotas.append(quota)
        if directory == root or root not in directory.parents:
            break
        directory = directory.parent
    return min(quotas) if quotas else None


def parse_cpu_max(path: Path) -> float | None:
    """`cpu.max` holds "QUOTA PERIOD" in microseconds, or "max PERIOD" for no limit."""
    try:
        fields = path.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    quota, period = float(fields[0]), float(fields[1])
    return quota / period if period > 0 else None


@dataclass(frozen=True)
class Allotment:
    """One job's threads, and the state of the budget right after it took them."""

    threads: int
    jobs: int  # trainings registered on the worker, this one included
    held: int  # threads held by all of them, this job's included
    cores: int


def allot(cores: int, others: list[tuple[int, bool]], requested: int | None) -> int | None:
    """Threads for one job given the `(threads, fixed)` each other job holds; None: wait,
    another job is about to give threads back (it holds more than its share and adapts).

    An equal share of the cores, never more than the others leave free, and at least one (a
    worker running more trainings than it has cores gives each a single thread, which never
    spin-waits). A user's explicit `nthread` is honoured up to the cores.
    """
    if requested is not None and requested > 0:
        return min(requested, cores)
    fair = max(1, cores // (len(others) + 1))
    room = cores - sum(threads for threads, _ in others)
    if room >= 1:
        return min(fair, room)
    if any(threads > fair and not fixed for threads, fixed in others):
        return None
    return 1


PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def runnable_now(proc: Path = PROC) -> int | None:
    """Threads runnable on the machine at this instant (`procs_running`), None if unknown."""
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("procs_running "):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def machine_busy_ticks(proc: Path = PROC) -> int | None:
    """CPU time the machine's cores spent working since boot, in clock ticks (`/proc/stat`:
    user, nice, system, irq, softirq and steal, i.e. not idle or waiting); None if unknown."""
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("cpu "):
                fields = [int(v) for v in line.split()[1:9]]
                user, nice, system, _idle, _iowait, irq, softirq, steal = fields
                return user + nice + system + irq + softirq + steal
    except (OSError, ValueError):
        return None
    return None


def process_ticks(pid: int, proc: Path = PROC) -> int:
    """CPU time of process `pid` (all its threads), in clock ticks; 0 once it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class OtherLoad:
    """Cores that other programs keep busy: the machine's CPU time less that of this worker's
    trainings, over windows of at least `window_s`, smoothed across windows.

    CPU time over a window, not the run queue at an instant: `procs_running` between two
    rounds also counted kernel threads and this worker's own idle processes waking for a
    moment, and a lone training on an idle machine spent 5-20 % of its rounds on one thread.

    Each training measures from its own first take (`begin`): a window reaching back to the
    process's previous training measured what ran in between (another job of this worker,
    which no longer counts as ours once it ended, or a script that had just ended), and gave
    a lone half-second training one thread for its first 0.3 s. Until its first window a
    training keeps the estimate this process measured last, if that is at most `stale_s`
    old (a SHAP summary right after its training, the next trial of a search), else guesses
    from the run queue at that instant; the first window replaces a guess."""

    proc: Path = PROC
    window_s: float = 0.25
    stale_s: float = 1.0
    cores: float = 0.0  # the estimate
    _last: tuple[float, int, int] | None = None  # (monotonic time, machine ticks, ours)
    _measured_at: float | None = None  # when `cores` was measured over a window (else a guess)

    def begin(self) -> None:
        """A training starts in this process: its first window starts at its first take."""
        self._last = None

    def update(self, pids: list[int], held: int, now: float) -> float:
        """The estimate, renewed when a window has passed since the last renewal. A guess
        is the run queue at this instant (`procs_running`) less the `held` threads of this
        worker's trainings and this thread."""
        machine = machine_busy_ticks(self.proc)
        if machine is None:
            return 0.0
        ours = sum(process_ticks(pid, self.proc) for pid in set(pids))
        last = self._last
        if last is None:
            self._last = (now, machine, ours)
            measured = self._measured_at
            if measured is None or now - measured > self.stale_s:
                running = runnable_now(self.proc)
                self.cores = 0.0 if running is None else float(max(0, running - max(held, 1)))
                self._measured_at = None
            return self.cores
        elapsed = now - last[0]
        if elapsed < self.window_s:
            return self.cores
        other = max(0, (machine - last[1]) - (ours - last[2])) / TICKS_PER_S / elapsed
        blend = self._measured_at is not None
        self.cores = 0.5 * self.cores + 0.5 * other if blend else other
        self._measured_at = now
        self._last = (now, machine, ours)
        return self.cores


@dataclass
class Budget:
    """The registry of one worker's running trainings (see the module docstring).

    `load_aware`: the cores may be shared with other programs (the count was detected, not
    configured), so a job also leaves the cores that other work keeps busy: OpenMP threads
    spinning at barriers on a busy machine made a 2-thread training 7-14x slower than with
    passive waiting, where one thread (no barriers at all) was the fastest of all.
    """

    path: Path
    cores: int
    load_aware: bool = False
    proc: Path = PROC  # where the machine's and the trainings' CPU times are read
    # How long a new job waits for a running one to give threads back (one of its rounds);
    # past it the new job starts with one thread anyway.
    wait_s: float = 10.0
    poll_s: float = 0.01
    # How often a running job reads the registry again between rounds (`Share.current`):
    # each read (a locked file, /proc for the load) took ~140 us, 5-7 % of a half-second
    # training that read it before each of its 200 rounds.
    recheck_s: float = 0.1
    # This process's estimate, carried from one job to the next (each process forked from
    # the worker measures its own): a SHAP summary after a training takes its threads once,
    # and must not start from "idle" on a busy machine.
    load: OtherLoad = field(init=False)

    def __post_init__(self) -> None:
        self.load = OtherLoad(self.proc)

    @contextmanager
    def _entries(self) -> Iterator[dict[str, Any]]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = b""
            while chunk := os.read(fd, 65536):
                raw += chunk
            try:
                stored: dict[str, Any] = json.loads(raw) if raw else {}
            except ValueError:  # a writer died mid-write: start over, the live jobs re-register
                stored = {}
            entries = {k: v for k, v in stored.items() if _alive(v)}
            yield entries
            data = json.dumps(entries).encode()
            if data != raw:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def share(self, key: str, requested: int | None = None) -> Iterator[Share]:
        """Register a training under `key` for the duration of the block."""
        fixed = requested is not None and requested > 0
        self.load.begin()
        with self._entries() as entries:
            entries[key] = _registration(0, fixed)
        try:
            yield Share(self, key, requested if fixed else None)
        finally:
            with self._entries() as entries:
                entries.pop(key, None)

    def snapshot(self) -> dict[str, int]:
        """Threads held per registered job (for tests and diagnostics)."""
        with self._entries() as entries:
            return {key: int(entry["threads"]) for key, entry in entries.items()}


@dataclass
class Share:
    """One registered training's view of the budget."""

    budget: Budget
    key: str
    requested: int | None
    # (monotonic time, allotment) of the last take
    _last: tuple[float, Allotment] | None = field(default=None, init=False, repr=False)

    def current(self) -> Allotment:
        """The threads for the next round: the last take while it is younger than the
        budget's `recheck_s`, else a new one. A job starting meanwhile waits for this one's
        next take (`take`'s wait), so the cores are never oversubscribed in between."""
        last = self._last
        if last is not None and time.monotonic() - last[0] < self.budget.recheck_s:
            return last[1]
        return self.take()

    def take(self) -> Allotment:
        """The threads to use from now on, recorded as held; waits (bounded) while another job
        still holds threads it is about to give back."""
        budget = self.budget
        deadline = time.monotonic() + budget.wait_s
        while True:
            with budget._entries() as entries:
                mine = entries.setdefault(self.key, _registration(0, self.requested is not None))
                others = [
                    (int(e["threads"]), bool(e["fixed"]))
                    for k, e in entries.items()
                    if k != self.key
                ]
                threads = allot(budget.cores, others, self.requested)
                if threads is None and time.monotonic() >= deadline:
                    threads = 1
                if threads is not None and budget.load_aware:
                    # measured whatever the request, so that what follows in this process
                    # (a summary after a training with its own `nthread`) knows the load
                    pids = [int(e["pid"]) for e in entries.values()]
                    held = int(mine["threads"]) + sum(t for t, _ in others)
                    free = self._free_of_load(pids, held)
                    threads = threads if self.requested is not None else min(threads, free)
                if threads is not None:
                    mine["threads"] = threads
                    got = Allotment(
                        threads=threads,
                        jobs=len(entries),
                        held=threads + sum(t for t, _ in others),
                        cores=budget.cores,
                    )
                    self._last = (time.monotonic(), got)
                    return got
            time.sleep(budget.poll_s)

    def _free_of_load(self, pids: list[int], held: int) -> int:
        """Cores not kept busy by other programs (the processes of this worker's trainings,
        `pids`, spinning or working, are not other programs)."""
        other = self.budget.load.update(pids, held, time.monotonic())
        return max(1, self.budget.cores - round(other))


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), so that a pid reused by
    a new process is not mistaken for the one that registered; "" where /proc is absent and
    None when the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else _exists(pid)
    except OSError:
        return _exists(pid)
    return stat.rsplit(")", 1)[1].split()[19]


def _exists(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # exists, owned by someone else
        return ""
    return ""


def _alive(entry: dict[str, Any]) -> bool:
    return _started(int(entry["pid"])) == entry.get("started")


def _registration(threads: int, fixed: bool) -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "started": _started(pid), "threads": threads, "fixed": fixed}


_installed: Budget | None = None


def install(budget: Budget | None) -> None:
    """Set this process's budget (inherited by the processes it forks afterwards)."""
    global _installed
    _installed = budget


def installed() -> Budget | None:
    """The worker's budget; None outside a worker (then XGBoost picks its own threads)."""
    return _installed


@contextmanager
def registered(key: str, requested: object = None) -> Iterator[Share | None]:
    """Register a training with the installed budget for the block; None without one."""
    budget = _installed
    if budget is None:
        yield None
        return
    with budget.share(key, requested if isinstance(requested, int) else None) as share:
        yield share


def describe(allotment: Allotment, requested: int | None) -> str:
    """The event message for a job's thread count (it says why, and what it shares)."""
    n = allotment.threads
    text = (
        f"training on {n} thread{'s' if n != 1 else ''}: {allotment.jobs} training job(s) on "
        f"this worker hold {allotment.held} threads for its {allotment.cores} cores"
    )
    if requested is not None and requested > n:
        text += f" (nthread={requested} lowered to the worker's cores)"
    return text
