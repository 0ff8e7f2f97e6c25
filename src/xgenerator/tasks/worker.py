"""Entry point of a worker process (`xgenerator worker`, or `celery -A xgenerator.tasks.worker`).

Settings are read once here. Cross-cutting concerns live in the signal handlers below, not in
the task: one context per process (built after the fork), and in the main process of each
worker the background threads: the reconciler, the heartbeat (its row in `worker_heartbeats`,
deleted on a clean shutdown) and, with `--beat` (embedded mode), the retention cleanup timer.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import signals

from xgenerator.context import Context, build_context
from xgenerator.jobs import kinds, reconciler, runner, threads
from xgenerator.jobs.kinds import cleanup
from xgenerator.ops import heartbeats
from xgenerator.settings import load_settings
from xgenerator.tasks.app import RUN_JOB, SUBMIT_CLEANUP, make_celery
from xgenerator.tasks.dispatch import CeleryDispatcher

log = logging.getLogger(__name__)

settings = load_settings()
app = make_celery(settings)
# Import every job kind (XGBoost, pandas, scikit-learn) here, before the pool forks: the
# children share them, where each child otherwise spent seconds on its first job importing
# them (2.7 s against 0.16 s for a no-op job, measured by bench/).
kinds.load_all()
_context: Context | None = None
_stop = threading.Event()
_run_cleanup_timer = False  # set by `main(beat=True)`
_heartbeat: tuple[heartbeats.WorkerInfo, threading.Thread] | None = None
# Unique to this worker process (its pool children inherit it through the fork): node names
# are not unique (two workers on one host with the default name share one), pids are reused,
# and on SIGTERM a worker must release its own jobs and nobody else's.
INSTANCE = uuid.uuid4().hex[:12]


def job_worker_prefix(nodename: str) -> str:
    """What the worker id of every job this process runs starts with."""
    return f"{nodename}:{INSTANCE}:"


def main(argv: list[str], *, beat: bool = False) -> None:
    """Run the Celery worker; `beat` also submits the retention cleanup on a timer."""
    global _run_cleanup_timer
    _run_cleanup_timer = beat
    app.worker_main(argv=argv)


def context() -> Context:
    global _context
    if _context is None:
        _context = build_context(settings, CeleryDispatcher(app))
    return _context


@app.task(name=RUN_JOB, bind=True)
def run_job(self: Any, job_id: str) -> str:
    """Thin: decode the message, run the job; the outcome is recorded in the database."""
    # `<node name>:<instance>:<pool pid>`: the pid says which process to look at.
    worker_id = f"{job_worker_prefix(self.request.hostname or socket.gethostname())}{os.getpid()}"
    return runner.run(context(), job_id, worker_id)


@app.task(name=SUBMIT_CLEANUP)
def submit_cleanup() -> str | None:
    """Sent by `xgenerator beat`: submit the retention cleanup job (unless one is active)."""
    job = cleanup.schedule(context())
    return job.id if job is not None else None


@signals.worker_init.connect
def _install_thread_budget(**_: Any) -> None:
    # In the main process, before the pool forks: every pool process inherits the budget, so
    # the trainings this worker runs at once share its cores (jobs/threads.py).
    # Cores given by the operator are taken as the worker's own; detected ones may be
    # shared with other programs, whose load the trainings then leave alone.
    cores = settings.worker_threads or threads.available_cores()
    handle, path = tempfile.mkstemp(prefix="xgenerator-threads-", suffix=".json")
    os.close(handle)
    load_aware = settings.worker_threads is None
    threads.install(threads.Budget(Path(path), cores, load_aware=load_aware))
    log.info(
        "thread budget: %s cores shared by this worker's trainings%s (%s)",
        cores,
        ", less what other programs keep busy" if load_aware else "",
        path,
    )


@signals.worker_process_init.connect
def _fresh_context_after_fork(**_: Any) -> None:
    # Connections must never be shared across a fork: every pool process builds its own.
    global _context
    _context = None


def _reconcile_forever() -> None:
    interval = settings.reconcile_interval_s
    while not _stop.is_set():
        try:
            reconciler.reconcile(context())
        except Exception:
            log.exception("reconciler pass failed; trying again in %ss", interval)
        _stop.wait(interval)


@signals.worker_ready.connect
def _start_reconciler(**_: Any) -> None:
    threading.Thread(target=_reconcile_forever, name="xgen-reconciler", daemon=True).start()


@signals.worker_shutting_down.connect
def _stop_reconciler(sender: str | None = None, **_: Any) -> None:
    _stop.set()
    if sender:
        # Warm shutdown waits for running jobs; past the grace period they go back to the
        # queue for another worker, and this one's copies stop at their next progress write.
        prefix = job_worker_prefix(sender)
        timer = threading.Timer(settings.shutdown_grace_s, _release_jobs, args=(prefix,))
        timer.daemon = True
        timer.start()


def _release_jobs(prefix: str) -> None:
    report = reconciler.release_worker_jobs(context(), prefix)
    if report.requeued or report.failed or report.cancelled:
        log.warning("shutdown grace period over: handed back %s", report)


def _every(name: str, interval: float, action: Callable[[], object]) -> threading.Thread:
    """Run `action` now and then every `interval` seconds, until the worker shuts down."""

    def loop() -> None:
        while not _stop.is_set():
            try:
                action()
            except Exception:
                log.exception("%s failed; trying again in %ss", name, interval)
            _stop.wait(interval)

    thread = threading.Thread(target=loop, name=f"xgen-{name}", daemon=True)
    thread.start()
    return thread


def _beat(info: heartbeats.WorkerInfo) -> None:
    with context().db.session() as session:
        heartbeats.beat(session, info)


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    global _heartbeat
    info = heartbeats.local_info(
        sender.hostname, list(sender.app.amqp.queues.consume_from), sender.controller.concurrency
    )
    thread = _every("heartbeat", settings.worker_heartbeat_interval_s, lambda: _beat(info))
    _heartbeat = (info, thread)
    if _run_cleanup_timer:
        _every("cleanup-timer", settings.cleanup_interval_s, lambda: cleanup.schedule(context()))


@signals.worker_shutdown.connect
def _remove_heartbeat(**_: Any) -> None:
    # After the pool stopped, in the main process: a worker that shut down cleanly leaves
    # no row behind (a killed one is noticed once its row is older than the timeout).
    _stop.set()
    budget = threads.installed()
    if budget is not None:
        budget.path.unlink(missing_ok=True)
    if _heartbeat is None:
        return
    info, thread = _heartbeat
    thread.join(timeout=5)
    try:
        with context().db.session() as session:
            heartbeats.remove(session, info.worker_id)
    except Exception:
        log.exception("could not remove the heartbeat of %s", info.worker_id)
