"""Where an online prediction reads its key and model: on the event loop for an SQLite file
(a ~10 µs read, where a thread-pool trip costs ~0.3 ms over HTTP), through the thread pool
for PostgreSQL or when the user's budget is a Redis round trip, and through the pool again
when the file is locked. (What the lookup answers: tests/models/test_serving.py.)"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import text

from tests.api.test_predict_fast import FEATURES, registered
from tests.support import auth, classification_frame, create_user
from tests.support.services import Service, ServiceFactory
from xgenerator.errors import ServiceUnavailable


@contextmanager
def pool_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the functions sent through the thread pool meanwhile."""
    trips: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        named = getattr(func, "func", func)  # starlette passes a functools.partial
        trips.append(getattr(named, "__name__", repr(named)))
        return await run_sync(func, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(anyio.to_thread, "run_sync", counted)
        yield trips


def predict(svc: Service, user: dict[str, Any], model_id: str) -> None:
    rows = json.loads(classification_frame(1, seed=3)[FEATURES].to_json(orient="records"))
    answer = svc.client.post(f"/models/{model_id}/predict", headers=auth(user), json={"rows": rows})
    assert answer.status_code == 200, answer.text


def is_sqlite(svc: Service) -> bool:
    return svc.context.db.url.startswith("sqlite")


def test_a_one_row_prediction_takes_the_thread_pool_only_where_it_must(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service()
    user = create_user(svc.client)
    model_id, _ = registered(svc.context, user["user_id"])
    with pool_trips(monkeypatch) as first:
        predict(svc, user, model_id)  # loads the model, writes the key's "last used"
    assert first
    with pool_trips(monkeypatch) as trips:
        for _ in range(5):
            predict(svc, user, model_id)
    if is_sqlite(svc):
        assert trips == []
    else:  # a server's round trip stays off the loop: one trip a request
        assert trips == ["_find_caller"] * 5


def test_a_budget_counted_in_redis_takes_the_pool_with_the_lookup(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(rate_limit_enabled=True, rate_limit_predict=100)
    user = create_user(svc.client)
    model_id, _ = registered(svc.context, user["user_id"])
    predict(svc, user, model_id)
    with pool_trips(monkeypatch) as trips:
        predict(svc, user, model_id)
    assert trips == ["_find_caller"]


def test_the_loop_reads_no_more_than_it_reads(service: ServiceFactory) -> None:
    svc = service()
    if not is_sqlite(svc):
        assert not svc.context.db.reads_on_loop
        with pytest.raises(RuntimeError), svc.context.db.loop_read():
            pass
        return
    user = create_user(svc.client)
    with svc.context.db.loop_read() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 1
    with pytest.raises(ServiceUnavailable), svc.context.db.loop_read() as connection:
        connection.execute(text("DELETE FROM api_keys"))
    assert svc.client.get("/users/me", headers=auth(user)).status_code == 200


def test_a_locked_database_is_waited_for_in_the_pool_not_on_the_loop(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service()
    if not is_sqlite(svc):
        pytest.skip("a lock that stops SQLite's readers; PostgreSQL's readers never wait")
    user = create_user(svc.client)
    model_id, _ = registered(svc.context, user["user_id"])
    predict(svc, user, model_id)
    # An exclusive lock stops even WAL readers: the loop's read gives up after
    # LOOP_READ_BUSY_MS and the pool's read waits until the lock goes. (Taking it needs the
    # service's connections closed: in WAL mode each holds a shared lock while open.)
    svc.context.db.dispose()
    path = svc.context.db.url.removeprefix("sqlite:///")
    locker = sqlite3.connect(path, check_same_thread=False)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE users SET email = email")
    unlocked = threading.Event()

    def release() -> None:
        locker.rollback()
        locker.close()
        unlocked.set()

    released = threading.Timer(1.0, release)
    with pool_trips(monkeypatch) as trips:
        released.start()
        try:
            predict(svc, user, model_id)
        finally:
            released.join()
    assert unlocked.is_set()
    assert trips == ["_find_caller"]
