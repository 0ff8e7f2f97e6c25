"""The Celery app and the configuration XGenerator relies on, each setting with its reason.

The database, not the broker, is the source of truth: these settings make delivery
at-least-once, and the claim in `jobs/repository.py` turns that into exactly-once running.
"""

from __future__ import annotations

from celery import Celery
from kombu.entity import Exchange, Queue

from xgenerator.jobs import queues
from xgenerator.settings import Settings

RUN_JOB = "xgenerator.run_job"
SUBMIT_CLEANUP = "xgenerator.submit_cleanup"


def make_celery(settings: Settings) -> Celery:
    if settings.broker_url is None:
        raise ValueError("make_celery needs a broker URL (embedded mode sets one at start)")
    app = Celery("xgenerator", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # JSON only: a pickle-serialized message would be code execution on the worker.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Results live in the database; a result backend would be a second source of truth.
        task_ignore_result=True,
        result_backend=None,
        # Ack after the task ran, so a message whose worker died is delivered again ...
        task_acks_late=True,
        # ... including when the child process was killed (SIGKILL, OOM) mid-task.
        task_reject_on_worker_lost=True,
        # One message at a time per process: a long training must not hold others hostage.
        worker_prefetch_multiplier=1,
        # Redis re-delivers unacked messages after this; it must exceed the longest job,
        # or a running training would be delivered again (the claim would still stop it).
        broker_transport_options={
            "visibility_timeout": int(
                settings.visibility_timeout_s or settings.hard_time_limit_s + 600
            ),
            "queue_order_strategy": "priority",
        },
        # A broker blip must not kill running jobs: cancelling them (True) cost every
        # running job an attempt per blip, and three blips failed a long job. Their messages
        # are delivered again after the reconnect, but the compare-and-set claim refuses a
        # job that is running, so it still runs once.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Workers start before Redis in many deployments: keep trying instead of exiting.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Backstop only: XGBoost's C code ignores signals, the training callback enforces the
        # real limit (settings.soft_time_limit_s).
        task_time_limit=int(settings.hard_time_limit_s + 60),
        # One direct exchange per queue, so `send_task(queue=...)` lands in exactly that queue.
        task_queues=[
            Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]
            for name in queues.QUEUES
        ],
        task_default_queue=queues.Queue.TRAIN.value,
        worker_hijack_root_logger=False,
        # No mingle/gossip traffic is needed: workers coordinate through the database.
        worker_enable_remote_control=True,
        task_send_sent_event=False,
        # `xgenerator beat` only asks a worker to submit the retention cleanup (a visible job,
        # see jobs/kinds/cleanup.py); a message older than one interval is dropped, not piled up.
        beat_schedule={
            "retention-cleanup": {
                "task": SUBMIT_CLEANUP,
                "schedule": settings.cleanup_interval_s,
                "options": {
                    "queue": queues.Queue.MAINTENANCE.value,
                    "expires": settings.cleanup_interval_s,
                },
            },
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    return app
