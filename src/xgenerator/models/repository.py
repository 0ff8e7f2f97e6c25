"""The model registry: model rows, their UBJSON files, and a per-process booster cache."""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xgenerator.artifacts import ArtifactStore
from xgenerator.context import Context
from xgenerator.db.tables import Model
from xgenerator.errors import Conflict
from xgenerator.ml import bundle
from xgenerator.ml.bundle import ModelBundle
from xgenerator.models import versions


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


class BoosterCache:
    """Loaded models by id, least recently used evicted; models are immutable once written."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, ModelBundle] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, store: ArtifactStore, row: Model) -> ModelBundle:
        with self._lock:
            if row.id in self._items:
                self._items.move_to_end(row.id)
                return self._items[row.id]
        loaded = bundle.loads(store.get_bytes(row.storage_key))
        with self._lock:
            self._items[row.id] = loaded
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return loaded

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._items.pop(model_id, None)


CACHE = BoosterCache()
