"""Retention cleanup with an injected clock, on both databases: what goes, what stays, and
two cleanups at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.support.rows import model_row
from tests.support.services import ADMIN, Service, ServiceFactory, add_job
from xgenerator.db.tables import Dataset, Job, JobArtifact, JobEvent, Model, PredictionLog
from xgenerator.jobs import orphans, runner
from xgenerator.jobs.kinds import cleanup
from xgenerator.jobs.kinds.cleanup import Report, Retention, run_cleanup
from xgenerator.jobs.runtime import checkpoint_key
from xgenerator.users import service as users

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def new_user(service: Service, name: str = "alice") -> str:
    with service.context.db.session() as session:
        return users.create_user(session, name, f"{name}@example.com").user.id


def job_ids(service: Service) -> set[str]:
    with service.context.db.session() as session:
        return set(session.scalars(select(Job.id)))


def count(service: Service, table: type) -> int:
    with service.context.db.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def add_model(
    service: Service, user_id: str, job_id: str, storage_key: str, dataset_id: str | None = None
) -> None:
    """A registry row, enough for retention to see (its booster file is the caller's)."""
    with service.context.db.session() as session:
        session.add(
            model_row(user_id, job_id=job_id, storage_key=storage_key, dataset_id=dataset_id)
        )


def add_artifact(service: Service, job_id: str, name: str = "report.json") -> str:
    store = service.context.store
    key = store.new_key("results", ".json")
    store.put_bytes(key, b"{}")
    with service.context.db.session() as session:
        session.add(
            JobArtifact(
                job_id=job_id,
                name=name,
                content_type="application/json",
                storage_key=key,
                size_bytes=2,
            )
        )
    return key


def add_dataset(service: Service, user_id: str, created: datetime) -> tuple[str, str]:
    store = service.context.store
    key = store.new_key("datasets", ".parquet")
    store.put_bytes(key, b"PAR1")
    with service.context.db.session() as session:
        row = Dataset(
            user_id=user_id,
            name="d",
            original_format="csv",
            storage_key=key,
            size_bytes=4,
            row_count=1,
            column_count=1,
            schema={"columns": []},
            created_at=created,
        )
        session.add(row)
        session.flush()
        return row.id, key


def test_retention_cutoffs_are_per_status() -> None:
    retention = Retention(
        succeeded=timedelta(days=90), failed=timedelta(days=30), cancelled=timedelta(days=30)
    )
    assert retention.cutoffs(NOW) == {
        "succeeded": days_ago(90),
        "failed": days_ago(30),
        "cancelled": days_ago(30),
    }


def test_each_status_has_its_own_retention(service: ServiceFactory) -> None:
    svc = service()
    alice = new_user(svc)
    expired = {
        add_job(svc.context, alice, "succeeded", days_ago(91)),
        add_job(svc.context, alice, "failed", days_ago(31)),
        add_job(svc.context, alice, "cancelled", days_ago(31)),
    }
    kept = {
        add_job(svc.context, alice, "succeeded", days_ago(89)),
        add_job(svc.context, alice, "failed", days_ago(29)),
        add_job(svc.context, alice, "cancelled", days_ago(29)),
        # active jobs never expire, however old
        add_job(svc.context, alice, "queued", None, created_at=days_ago(400)),
        add_job(
            svc.context, alice, "running", None, created_at=days_ago(400), started_at=days_ago(400)
        ),
    }
    report = run_cleanup(svc.context, NOW)
    assert job_ids(svc) == kept
    assert not expired & job_ids(svc)
    assert (report.jobs, report.events) == (3, 3)
    assert count(svc, JobEvent) == len(kept)

    # Two days later the 89-day-old succeeded job is 91 days old: it goes too.
    run_cleanup(svc.context, NOW + timedelta(days=2))
    assert len(job_ids(svc)) == 2  # the queued and the running job


def test_retention_days_are_settings(service: ServiceFactory) -> None:
    svc = service(retention_succeeded_days=7)
    alice = new_user(svc)
    add_job(svc.context, alice, "succeeded", days_ago(8))
    kept = add_job(svc.context, alice, "succeeded", days_ago(6))
    run_cleanup(svc.context, NOW)
    assert job_ids(svc) == {kept}


def test_artifacts_go_with_their_job_and_models_stay(service: ServiceFactory) -> None:
    svc = service()
    alice = new_user(svc)
    store = svc.context.store
    old = add_job(svc.context, alice, "succeeded", days_ago(91))
    young = add_job(svc.context, alice, "succeeded", days_ago(89))
    old_keys = [add_artifact(svc, old, "a"), add_artifact(svc, old, "b")]
    young_key = add_artifact(svc, young)
    store.put_bytes(f"checkpoints/{old}.ubj", b"left behind by a lost worker")
    model_key = store.new_key("models", ".ubj")
    store.put_bytes(model_key, b"booster")
    add_model(svc, alice, old, model_key)
    # One artifact file is already gone (a crash after an earlier commit): not an error.
    store.delete(old_keys[1])

    report = run_cleanup(svc.context, NOW)

    assert report.artifacts == 2
    assert not any(store.exists(k) for k in old_keys)
    assert not store.exists(f"checkpoints/{old}.ubj")
    assert store.exists(young_key)
    with svc.context.db.session() as session:
        assert list(session.scalars(select(JobArtifact.job_id))) == [young]
        model = session.scalar(select(Model))
    assert model is not None and model.job_id == old
    assert store.exists(model_key)


def test_unused_datasets_expire_only_when_enabled(service: ServiceFactory) -> None:
    svc = service()
    alice = new_user(svc)
    old_unused, old_key = add_dataset(svc, alice, days_ago(100))
    run_cleanup(svc.context, NOW)
    assert count(svc, Dataset) == 1  # off by default

    svc = service(retention_unused_dataset_days=60)
    used_by_job, _ = add_dataset(svc, alice, days_ago(100))
    used_by_model, _ = add_dataset(svc, alice, days_ago(100))
    recent, _ = add_dataset(svc, alice, days_ago(10))
    orphaned, orphaned_key = add_dataset(svc, alice, days_ago(100))
    derived, derived_key = add_dataset(svc, alice, days_ago(100))
    add_job(svc.context, alice, "running", None, dataset_id=used_by_job)
    # the output of a job that is kept, its file shared with that job's artifact
    producer = add_job(svc.context, alice, "succeeded", days_ago(5))
    with svc.context.db.session() as session:
        session.get_one(Dataset, derived).source_job_id = producer
        session.add(
            JobArtifact(
                job_id=producer, name="out", content_type="x", storage_key=derived_key, size_bytes=4
            )
        )
    # this job expires now, which leaves its dataset unused: both go in the same run
    add_job(svc.context, alice, "failed", days_ago(40), dataset_id=orphaned)
    add_model(svc, alice, "j", "k", dataset_id=used_by_model)

    report = run_cleanup(svc.context, NOW)

    assert report.datasets == 2
    with svc.context.db.session() as session:
        left = set(session.scalars(select(Dataset.id)))
    assert left == {used_by_job, used_by_model, recent, derived}
    assert svc.context.store.exists(derived_key)
    assert not svc.context.store.exists(old_key)
    assert not svc.context.store.exists(orphaned_key)
    assert old_unused not in left


def test_two_cleanups_at_once_do_no_harm(service: ServiceFactory) -> None:
    svc = service(cleanup_batch_size=7)  # several batches each
    alice = new_user(svc)
    expired = [add_job(svc.context, alice, "succeeded", days_ago(95)) for _ in range(30)]
    keys = [add_artifact(svc, job_id) for job_id in expired]
    kept = {add_job(svc.context, alice, "failed", days_ago(5)) for _ in range(3)}

    barrier = threading.Barrier(2)
    reports: list[Report] = []
    errors: list[BaseException] = []

    def clean() -> None:
        try:
            barrier.wait()
            reports.append(run_cleanup(svc.context, NOW))
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=clean) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert len(reports) == 2
    # Each row was deleted exactly once, by one of the two.
    assert sum(r.jobs for r in reports) == 30
    assert sum(r.artifacts for r in reports) == 30
    assert sum(r.events for r in reports) == 30
    assert job_ids(svc) == kept
    assert not any(svc.context.store.exists(k) for k in keys)
    # and running it again finds nothing
    assert run_cleanup(svc.context, NOW).result()["jobs_deleted"] == 0


def test_cleanup_is_a_visible_job_of_the_system_user(service: ServiceFactory) -> None:
    svc = service(max_active_jobs_per_user=1, cleanup_interval_s=3600, isolate_jobs=False)
    alice = new_user(svc)
    add_job(svc.context, alice, "succeeded", datetime.now(UTC) - timedelta(days=91))

    job = cleanup.schedule(svc.context)
    assert job is not None
    assert (job.job_type, job.queue, job.user_id) == ("cleanup", "maintenance", "system")
    # one active (or recent) cleanup at a time: a second beat, or a restarted timer, adds none
    assert cleanup.schedule(svc.context) is None

    assert runner.run(svc.context, job.id, "test-worker") == "succeeded"
    with svc.context.db.session() as session:
        done = session.get(Job, job.id)
    assert done is not None and done.status == "succeeded"
    assert done.result == {
        "jobs_deleted": 1,
        "events_deleted": 1,
        "artifacts_deleted": 0,
        "datasets_deleted": 0,
        "heartbeats_deleted": 0,
        "prediction_logs_deleted": 0,
        "orphan_files_deleted": 0,
        "checkpoints_deleted": 0,
    }
    # the cleanup ran recently: the next one waits for half an interval
    assert cleanup.schedule(svc.context) is None
    later = datetime.now(UTC) + timedelta(seconds=1801)
    assert cleanup.schedule(svc.context, later) is not None
    # it appears in /status
    status = svc.client.get("/status", headers=ADMIN).json()
    assert status["last_cleanup"]["status"] == "queued"


def test_logged_predictions_expire(service: ServiceFactory) -> None:
    svc = service(retention_prediction_log_days=30, cleanup_batch_size=2)
    alice = new_user(svc)
    job_id = add_job(svc.context, alice, "succeeded", days_ago(1))
    add_model(svc, alice, job_id, "models/none.ubj")
    with svc.context.db.session() as session:
        model_id = session.scalars(select(Model.id)).one()
        for age in (31, 45, 60, 29, 1):  # three past 30 days: more than one batch of 2
            session.add(
                PredictionLog(
                    model_id=model_id,
                    user_id=alice,
                    features={},
                    prediction={"value": 1},
                    actual=None,
                    created_at=days_ago(age),
                )
            )
    report = run_cleanup(svc.context, NOW)
    assert report.prediction_logs == 3
    with svc.context.db.session() as session:
        left = sorted(session.scalars(select(PredictionLog.created_at)))
    assert [NOW - at.replace(tzinfo=UTC) for at in left] == [timedelta(days=29), timedelta(days=1)]


def test_files_no_row_refers_to_and_dead_checkpoints_are_swept(service: ServiceFactory) -> None:
    # What a worker killed between writing its files and committing leaves behind.
    svc = service()
    store = svc.context.store
    alice = new_user(svc)
    running = add_job(svc.context, alice, "running", days_ago(1))
    done = add_job(svc.context, alice, "failed", datetime.now(UTC))
    model_key = store.new_key("models", ".ubj")
    store.put_bytes(model_key, b"model")
    add_model(svc, alice, done, model_key)
    orphan = store.new_key("models", ".ubj")
    store.put_bytes(orphan, b"never committed")
    half_written = f"{store.new_key('models', '.ubj')}.0123.tmp"
    store.put_bytes(half_written, b"half")
    for job_id in (running, done, "gone"):
        store.put_bytes(checkpoint_key(job_id), b"checkpoint")

    # Within the grace period an unreferenced file may belong to a commit under way.
    fresh = run_cleanup(svc.context, datetime.now(UTC))
    assert (fresh.orphan_files, fresh.checkpoints) == (0, 2)
    assert store.exists(orphan) and store.exists(checkpoint_key(running))

    report = run_cleanup(svc.context, datetime.now(UTC) + orphans.GRACE + timedelta(hours=1))
    assert report.orphan_files == 2
    with svc.context.db.session() as session:
        referenced = set(session.scalars(select(Model.storage_key)))
    assert {key for key, _ in store.listing("models")} == referenced == {model_key}
    assert [key for key, _ in store.listing("checkpoints")] == [checkpoint_key(running)]
