"""A worker process: the Celery app built from the settings it is given, its thin tasks, and
the cross-cutting concerns in signal handlers (dramatiq's middleware, in Celery's terms).

`xgenerator worker` reads the settings once and calls `main`; `celery -A
xgenerator.tasks.entry` does the same through `tasks/entry.py`. The handlers give each
process one context (built after the fork) and run, in each worker's main process, the thread
budget, the reconciler, the heartbeat (its row in `worker_heartbeats`, deleted on a clean
shutdown) and, with `--beat` (embedded mode), the retention cleanup timer.
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

from celery import Celery, signals

from xgenerator.context import Context, build_context
from xgenerator.jobs import kinds, reconciler, runner, threads
from xgenerator.jobs.kinds import cleanup
from xgenerator.ops import heartbeats
from xgenerator.settings import Settings
from xgenerator.tasks.app import RUN_JOB, SUBMIT_CLEANUP, make_celery
from xgenerator.tasks.dispatch import CeleryDispatcher

log = logging.getLogger(__name__)

# Unique to this worker process (its pool children inherit it through the fork): node names
# are not unique (two workers on one host with the default name share one), pids are reused,
# and on SIGTERM a worker must release its own jobs and nobody else's.
INSTANCE = uuid.uuid4().hex[:12]


def job_worker_prefix(nodename: str) -> str:
    """What the worker id of every job this process runs starts with."""
    return f"{nodename}:{INSTANCE}:"


class Worker:
    """One worker process's app, context and background threads."""

    def __init__(self, settings: Settings, *, beat: bool = False) -> None:
        self.settings = settings
        self.beat = beat
        self.app: Celery = make_celery(settings)
        self._context: Context | None = None
        self._stop = threading.Event()
        self._heartbeat: tuple[heartbeats.WorkerInfo, threading.Thread] | None = None
        self._register_tasks()
        self._connect_signals()
        # Import every job kind (XGBoost, pandas, scikit-learn) now, before the pool forks:
        # the children share them, where each child otherwise spent seconds on its first job
        # importing them (2.7 s against 0.16 s for a no-op job, measured by bench/).
        kinds.load_all()

    def context(self) -> Context:
        if self._context is None:
            self._context = build_context(self.settings, CeleryDispatcher(self.app))
        return self._context

    def _register_tasks(self) -> None:
        @self.app.task(name=RUN_JOB, bind=True)
        def run_job(task: Any, job_id: str) -> str:
            """Thin: decode the message, run the job; the outcome is in the database."""
            # `<node name>:<instance>:<pool pid>`: the pid says which process to look at.
            node = task.request.hostname or socket.gethostname()
            return runner.run(self.context(), job_id, f"{job_worker_prefix(node)}{os.getpid()}")

        @self.app.task(name=SUBMIT_CLEANUP)
        def submit_cleanup() -> str | None:
            """Sent by `xgenerator beat`: submit the retention cleanup (unless one is active)."""
            job = cleanup.schedule(self.context())
            return job.id if job is not None else None

    def _connect_signals(self) -> None:
        # weak=False: the handlers are bound methods of this object, which the app outlives.
        signals.worker_init.connect(self._install_thread_budget, weak=False)
        signals.worker_process_init.connect(self._fresh_context_after_fork, weak=False)
        signals.worker_ready.connect(self._start_background, weak=False)
        signals.worker_shutting_down.connect(self._on_shutting_down, weak=False)
        signals.worker_shutdown.connect(self._on_shutdown, weak=False)

    def _install_thread_budget(self, **_: Any) -> None:
        # In the main process, before the pool forks: every pool process inherits the budget,
        # so the trainings this worker runs at once share its cores (jobs/threads.py). Cores
        # given by the operator are taken as the worker's own; detected ones may be shared with
        # other programs, whose load the trainings then leave alone.
        cores = self.settings.worker_threads or threads.available_cores()
        handle, path = tempfile.mkstemp(prefix="xgenerator-threads-", suffix=".json")
        os.close(handle)
        load_aware = self.settings.worker_threads is None
        threads.install(threads.Budget(Path(path), cores, load_aware=load_aware))
        log.info(
            "thread budget: %s cores shared by this worker's trainings%s (%s)",
            cores,
            ", less what other programs keep busy" if load_aware else "",
            path,
        )

    def _fresh_context_after_fork(self, **_: Any) -> None:
        # Connections must never be shared across a fork: every pool process builds its own.
        self._context = None

    def _start_background(self, sender: Any = None, **_: Any) -> None:
        settings = self.settings
        self._every("reconciler", settings.reconcile_interval_s, self._reconcile)
        info = heartbeats.local_info(
            sender.hostname,
            list(sender.app.amqp.queues.consume_from),
            sender.controller.concurrency,
        )
        thread = self._every(
            "heartbeat", settings.worker_heartbeat_interval_s, lambda: self._beat(info)
        )
        self._heartbeat = (info, thread)
        if self.beat:
            self._every(
                "cleanup-timer",
                settings.cleanup_interval_s,
                lambda: cleanup.schedule(self.context()),
            )

    def _reconcile(self) -> None:
        reconciler.reconcile(self.context())

    def _beat(self, info: heartbeats.WorkerInfo) -> None:
        with self.context().db.session() as session:
            heartbeats.beat(session, info)

    def _on_shutting_down(self, sender: str | None = None, **_: Any) -> None:
        self._stop.set()
        if sender:
            # Warm shutdown waits for running jobs; past the grace period they go back to the
            # queue for another worker, and this one's copies stop at their next progress write.
            prefix = job_worker_prefix(sender)
            timer = threading.Timer(
                self.settings.shutdown_grace_s, self._release_jobs, args=(prefix,)
            )
            timer.daemon = True
            timer.start()

    def _release_jobs(self, prefix: str) -> None:
        report = reconciler.release_worker_jobs(self.context(), prefix)
        if report.requeued or report.failed or report.cancelled:
            log.warning("shutdown grace period over: handed back %s", report)

    def _on_shutdown(self, **_: Any) -> None:
        # After the pool stopped, in the main process: a worker that shut down cleanly leaves
        # no row behind (a killed one is noticed once its row is older than the timeout).
        self._stop.set()
        budget = threads.installed()
        if budget is not None:
            budget.path.unlink(missing_ok=True)
        if self._heartbeat is None:
            return
        info, thread = self._heartbeat
        thread.join(timeout=5)
        try:
            with self.context().db.session() as session:
                heartbeats.remove(session, info.worker_id)
        except Exception:
            log.exception("could not remove the heartbeat of %s", info.worker_id)

    def _every(self, name: str, interval: float, action: Callable[[], object]) -> threading.Thread:
        """Run `action` now and then every `interval` seconds, until the worker shuts down."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    action()
                except Exception:
                    log.exception("%s failed; trying again in %ss", name, interval)
                self._stop.wait(interval)

        thread = threading.Thread(target=loop, name=f"xgen-{name}", daemon=True)
        thread.start()
        return thread


def main(settings: Settings, argv: list[str], *, beat: bool = False) -> None:
    """Run a Celery worker; `beat` also submits the retention cleanup on a timer."""
    Worker(settings, beat=beat).app.worker_main(argv=argv)
