"""The reconciler re-sends only lost tasks, in bounded batches, one process at a time.
On SQLite and PostgreSQL, with a real (private) Redis and no worker consuming."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from tests.support.rows import new_user, queued_task_ids
from xgenerator.context import Context
from xgenerator.db.clock import db_now
from xgenerator.db.tables import Job, JobEvent, ServiceLease, WorkerHeartbeat, utcnow
from xgenerator.jobs import leader, reconciler, service
from xgenerator.ops import heartbeats
from xgenerator.ops.broker import queue_keys, redis_client


def submitted(context: Context, n: int) -> list[str]:
    """n noop jobs, committed and sent, as the API submits them."""
    user_id = new_user(context)
    ids = []
    for _ in range(n):
        job = Job(user_id=user_id, job_type="noop", queue="maintenance", config={})
        ids.append(service.enqueue(context, job).job.id)
    return ids


def resent_events(context: Context) -> list[str]:
    with context.db.session() as session:
        return list(session.scalars(select(JobEvent.job_id).where(JobEvent.event == "resent")))


def test_a_backlog_waiting_in_its_queue_is_not_sent_again(context: Context) -> None:
    submitted(context, 3)
    start = utcnow()
    for minutes in (1, 2, 3):  # three passes over three minutes, nobody consuming
        report = reconciler.reconcile(context, start + timedelta(minutes=minutes, seconds=10))
        assert report.active and report.resent == []
    assert len(queued_task_ids(context, "maintenance")) == 3
    assert resent_events(context) == []


def test_a_task_lost_from_the_broker_is_sent_again_once(context: Context) -> None:
    ids = submitted(context, 3)
    broker = redis_client(context.settings.broker_url or "")
    broker.delete(*queue_keys("maintenance"))  # Redis lost its messages (flushed, restarted)
    broker.close()
    later = utcnow() + timedelta(minutes=2)

    first = reconciler.reconcile(context, later)
    second = reconciler.reconcile(context, later + timedelta(minutes=2))

    assert sorted(first.resent) == sorted(ids) == sorted(resent_events(context))
    assert second.resent == []
    with context.db.session() as session:
        recorded = {str(task_id) for task_id in session.scalars(select(Job.celery_task_id))}
    assert set(queued_task_ids(context, "maintenance")) == recorded  # one message per job
    assert len(queued_task_ids(context, "maintenance")) == 3


def test_a_pass_reads_a_bounded_batch(context: Context) -> None:
    user_id = new_user(context)
    with context.db.session() as session:
        session.add_all(
            Job(user_id=user_id, job_type="noop", queue="maintenance", config={}, status="queued")
            for _ in range(reconciler.BATCH + 5)
        )
    later = utcnow() + timedelta(minutes=5)
    assert len(reconciler.reconcile(context, later).resent) == reconciler.BATCH
    assert len(reconciler.reconcile(context, later).resent) == 5
    assert len(queued_task_ids(context, "maintenance")) == reconciler.BATCH + 5


def test_one_reconciler_at_a_time(context: Context) -> None:
    assert leader.hold(context, "reconciler", 30, holder="other")
    assert not reconciler.reconcile(context).active  # this process waits its turn
    assert leader.hold(context, "reconciler", 30, holder="other")  # the holder renews
    with context.db.session() as session:  # the holder died: its lease runs out
        session.execute(update(ServiceLease).values(expires_at=db_now(-1)))
    assert reconciler.reconcile(context).active
    assert not leader.hold(context, "reconciler", 30, holder="other")


def test_a_gpu_job_with_no_gpu_worker_fails_after_the_wait(context: Context) -> None:
    user_id = new_user(context)
    job = Job(
        user_id=user_id,
        job_type="train",
        queue="gpu",
        config={"xgb_params": {"device": "cuda"}},
    )
    job_id = service.enqueue(context, job, enforce_quota=False).job.id
    wait = context.settings.gpu_wait_s
    # Within the wait: a GPU worker may be on its way.
    assert (
        job_id not in reconciler.reconcile(context, utcnow() + timedelta(seconds=wait / 2)).failed
    )
    # A GPU worker alive: the job keeps waiting for it, however long.
    with context.db.session() as session:
        heartbeats.beat(session, heartbeats.local_info("gpu-host", ["gpu"], 1))
    later = utcnow() + timedelta(seconds=wait + 60)
    assert job_id not in reconciler.reconcile(context, later).failed
    with context.db.session() as session:
        session.execute(update(WorkerHeartbeat).values(last_seen_at=utcnow() - timedelta(hours=1)))
    # None alive past the wait: failed, saying why, and its quota slot is free again.
    assert job_id in reconciler.reconcile(context, later).failed
    with context.db.session() as session:
        row = session.get(Job, job_id)
        assert row is not None and row.status == "failed"
        assert row.error is not None and row.error["error_type"] == "NoGpuWorker"
