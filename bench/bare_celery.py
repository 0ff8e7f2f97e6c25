"""The bare baseline for the queue: a Celery app with one no-op task, on the same Redis.

Celery's defaults except a Redis result backend, which `apply_async().get()` needs; the
service itself keeps results in its database and runs with no result backend.
"""

from __future__ import annotations

from celery import Celery

from bench import REDIS_URL

app = Celery("bare", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_default_queue="bare",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bare.noop")  # type: ignore[untyped-decorator]  # Celery is untyped
def noop() -> bool:
    return True
