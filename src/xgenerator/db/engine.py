"""Engine and session scope; the same code runs on SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import SingletonThreadPool

from xgenerator.errors import InvalidInput, ServiceUnavailable


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # sqlite3's `timeout` is SQLite's busy timeout: a writer waits up to 30 s for a lock
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the API read while a worker writes; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # pre_ping: a worker that outlives a PostgreSQL restart must not hand out dead connections.
    # prepare_threshold=None: no server-side prepared statements, so every query is planned
    # for its own parameters. A prepared statement soon gets PostgreSQL's generic plan, made
    # for an average user_id; with one big user in the table that plan scanned the whole
    # table to count a small user's jobs (bench/: GET /jobs 276 ms instead of ~20 ms).
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args={"prepare_threshold": None},
    )


# How long a read on the event loop may wait for a lock; past it, the reader takes the thread
# pool (`Database.loop_read`). In WAL mode a reader waits only in rare cases (recovery).
LOOP_READ_BUSY_MS = 50


def _loop_read_engine(url: str) -> Engine | None:
    """SQLite on a file: read-only connections, one per thread, for `Database.loop_read`.
    Only threads running an event loop take from it (one per API process; a test client
    starts others), fewer than the five connections `SingletonThreadPool` keeps before it
    closes one to open another."""
    if not url.startswith("sqlite") or make_url(url).database in (None, "", ":memory:"):
        return None
    engine = create_engine(
        url,
        poolclass=SingletonThreadPool,
        # sqlite3's `timeout` is SQLite's busy timeout: the one wait for a lock
        connect_args={"check_same_thread": False, "timeout": LOOP_READ_BUSY_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")  # a write here would wait on the loop
        cursor.close()

    return engine


class Database:
    """Owns the engine; `session()` (or, for one hot read, `connection()`) is the one way code
    opens a transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._loop_reads = _loop_read_engine(url)
        self._inherited: list[object] = []

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error.

        Connection failures surface as `ServiceUnavailable`, so the API answers 503 and the
        worker's retry policy can tell them from bugs. A value the database refuses to store
        or compare (PostgreSQL: a NUL byte in text, a number out of range) is `InvalidInput`:
        a 422, not a 500, and a job that would fail the same way on every retry.
        """
        with _mapped_errors(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core transaction, with `session`'s error mapping, for the one hot read that needs
        no ORM object: an online prediction's key and model (models/serving.py). The ORM's
        unit of work cost that lookup a millisecond; a Core query a tenth of one."""
        with _mapped_errors(), self.engine.begin() as connection:
            yield connection

    @property
    def reads_on_loop(self) -> bool:
        """Whether `loop_read` is open to the caller: on an SQLite file, not on a server."""
        return self._loop_reads is not None

    @contextmanager
    def loop_read(self) -> Iterator[Connection]:
        """A read-only connection of this thread's own, for one indexed read on the event
        loop: on an SQLite file that read takes ~10 µs, a tenth of the thread-pool trip it
        saves (an online prediction's key and model, api/deps.py). A server database's round
        trip stays in the thread pool (`reads_on_loop` is False). A lock held past
        `LOOP_READ_BUSY_MS` raises `ServiceUnavailable`, as any unreachable database does:
        the caller reads again through the pool, which may wait."""
        if self._loop_reads is None:
            raise RuntimeError("loop_read is only for an SQLite file (see reads_on_loop)")
        with _mapped_errors(), self._loop_reads.connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
        if self._loop_reads is not None:
            self._loop_reads.dispose()

    def after_fork(self) -> None:
        """In a forked child: a pool of its own. The parent's connections are neither used
        nor closed (they stay referenced until the child exits, so no driver closes a
        shared socket when they are garbage collected)."""
        self._inherited.append(self.engine.pool)
        self.engine.dispose(close=False)
        if self._loop_reads is not None:
            self._inherited.append(self._loop_reads.pool)
            self._loop_reads.dispose(close=False)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, PoolTimeout) as exc:
        raise ServiceUnavailable(
            "database unavailable", {"reason": str(getattr(exc, "orig", None) or exc)[:200]}
        ) from exc
    except DataError as exc:
        raise InvalidInput(
            "a value in this request cannot be stored",
            {"reason": str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]},
        ) from exc
