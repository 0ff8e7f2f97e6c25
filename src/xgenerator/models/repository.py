"""The model registry: model rows, their UBJSON files, and a per-process booster cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xgenerator.artifacts import ArtifactStore
from xgenerator.context import Context
from xgenerator.db.tables import Model
from xgenerator.errors import Conflict
from xgenerator.ml import bundle
from xgenerator.ml.bundle import ModelBundle
from xgenerator.models import versions

MB = 1024 * 1024


def get_owned(session: Session, user_id: str, reference: str) -> Model:
    """The user's model by id, `name@alias` or `name@N`; another user's is reported exactly
    like a missing one."""
    return versions.resolve(session, user_id, reference)


def list_owned(
    session: Session, user_id: str, limit: int, offset: int, name: str | None = None
) -> tuple[list[Model], int]:
    query = select(Model).where(Model.user_id == user_id)
    if name is not None:
        query = query.where(Model.name == name)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(Model.created_at.desc(), Model.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page)), total


def delete(context: Context, model: Model) -> None:
    """Row first, file after the commit (an orphan file is harmless, a dangling row is not)."""
    with context.db.session() as session:
        aliases = versions.aliases_of(session, model)
        if aliases:
            raise Conflict(
                "aliases point at this version: move them first",
                {"aliases": aliases, "name": model.name, "version": model.version},
            )
        row = session.get(Model, model.id)
        if row is not None:
            session.delete(row)
    context.store.delete(model.storage_key)
    CACHE.forget(model.id)


def load_bundle(context: Context, row: Model) -> ModelBundle:
    """The model, ready to predict: from this process's cache, bounded by the settings."""
    return CACHE.load(context.store, row, context.settings.model_cache_mb * MB)


def cached_bundle(row: Model) -> ModelBundle | None:
    """The model if this process holds it already: no file read, so an async route may ask
    on the event loop and go to the thread pool (`load_bundle`) only when this is None."""
    return CACHE.get(row.id)


class BoosterCache:
    """Loaded models by id, least recently used evicted once their model files add up to more
    than `max_bytes` (a file's size stands for its booster's memory; one model may be
    gigabytes, so a count bound meant nothing). Models are immutable once written.

    Single flight: concurrent requests for a model that is not loaded yet wait for one load
    instead of each reading and parsing the file. Ours rather than cachetools': the bound is
    changed at run time (`max_bytes` comes with each call, from the settings) and the
    in-flight loads need the same lock as the entries anyway."""

    def __init__(self, max_bytes: int = 1024 * MB) -> None:
        self.max_bytes = max_bytes
        self.loads = 0  # files read and parsed: what single flight saves, seen by tests
        self._items: OrderedDict[str, tuple[ModelBundle, int]] = OrderedDict()
        self._bytes = 0
        self._loading: dict[str, Future[ModelBundle]] = {}
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def load(self, store: ArtifactStore, row: Model, max_bytes: int | None = None) -> ModelBundle:
        """The model's bundle, from memory or loaded once; `max_bytes` (the
        `model_cache_mb` setting) re-bounds the cache first."""
        with self._lock:
            if max_bytes is not None and max_bytes != self.max_bytes:
                self.max_bytes = max_bytes
                self._evict()
            cached = self._items.get(row.id)
            if cached is not None:
                self._items.move_to_end(row.id)
                return cached[0]
            pending = self._loading.get(row.id)
            first = pending is None
            if pending is None:
                pending = self._loading[row.id] = Future()
        if not first:
            return pending.result()  # another thread is loading it: wait for that load
        try:
            data = store.get_bytes(row.storage_key)
            loaded = bundle.loads(data)
        except BaseException as exc:
            with self._lock:
                del self._loading[row.id]
            pending.set_exception(exc)
            raise
        with self._lock:
            self.loads += 1
            del self._loading[row.id]
            if len(data) <= self.max_bytes:  # a model bigger than the whole cache is not kept
                self._items[row.id] = (loaded, len(data))
                self._bytes += len(data)
                self._evict()
        pending.set_result(loaded)
        return loaded

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, (_, size) = self._items.popitem(last=False)
            self._bytes -= size

    def get(self, model_id: str) -> ModelBundle | None:
        """The loaded model, or None (not loaded, or loading): never waits for a load."""
        with self._lock:
            cached = self._items.get(model_id)
            if cached is None:
                return None
            self._items.move_to_end(model_id)
            return cached[0]

    def forget(self, model_id: str) -> None:
        with self._lock:
            entry = self._items.pop(model_id, None)
            if entry is not None:
                self._bytes -= entry[1]


CACHE = BoosterCache()
