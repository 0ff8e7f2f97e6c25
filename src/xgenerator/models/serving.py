"""Who is predicting with which model: the API key and the model reference of an online
prediction, read in one Core query (on the event loop where the database allows it:
api/deps.py, `caller_model`).

Going through `users.authenticate` and `repository.get_owned` took three ORM queries, and
most of a one-row prediction's time (about a millisecond of ORM work). Here, one statement
per form of reference (prepared once) reads the key, its user and the model together, on a
plain connection. Every request still reads the database: a revoked key is refused, and a
moved alias followed, on the very next request, whichever API process it reaches.

The checks and their order are `get_current_user` then `OwnedModel`'s: the key (401), the
caller's budget (429, `charge`), then the model (404; another user's is reported exactly
like a missing one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Executable, and_, bindparam, select, update

from xgenerator.db.tables import ApiKey, Model, ModelAlias, User, utcnow
from xgenerator.errors import NotFound
from xgenerator.models import versions
from xgenerator.users import service as users


@dataclass(frozen=True)
class Caller:
    """The authenticated user, and their model named in the request (its serving columns
    only: the row's JSON documents are not read). `stale_key`: the key's id if its "last
    used" is due a write (`touch_key`), else None."""

    user_id: str
    model: Model
    stale_key: str | None = None


_KEY_AND_MODEL = (
    ApiKey.id,
    ApiKey.user_id,
    ApiKey.secret_hash,
    ApiKey.revoked_at,
    ApiKey.last_used_at,
    Model.id.label("model_id"),
    Model.name,
    Model.version,
    Model.storage_key,
)
_KEY = ApiKey.prefix == bindparam("prefix")
_MODEL_BY_ID = and_(Model.user_id == ApiKey.user_id, Model.id == bindparam("model_id"))
_MODEL_BY_VERSION = and_(
    Model.user_id == ApiKey.user_id,
    Model.name == bindparam("name"),
    Model.version == bindparam("version"),
)
_ALIAS = and_(
    ModelAlias.user_id == ApiKey.user_id,
    ModelAlias.name == bindparam("name"),
    ModelAlias.alias == bindparam("alias"),
)
_MODEL_BY_ALIAS = and_(
    Model.user_id == ApiKey.user_id,
    Model.name == bindparam("name"),
    Model.version == ModelAlias.version,
)


def _statement(model_join: ColumnElement[bool], alias: bool = False) -> Executable:
    """The key (and its user, which must exist), and the model if the key's user has it."""
    query = select(*_KEY_AND_MODEL).join(User, User.id == ApiKey.user_id)
    if alias:
        query = query.outerjoin(ModelAlias, _ALIAS)
    return query.outerjoin(Model, model_join).where(_KEY)


_BY_ID = _statement(_MODEL_BY_ID)
_BY_VERSION = _statement(_MODEL_BY_VERSION)
_BY_ALIAS = _statement(_MODEL_BY_ALIAS, alias=True)
_TOUCH = update(ApiKey).where(ApiKey.id == bindparam("key_id")).values(last_used_at=bindparam("at"))


def find_caller(
    connection: Connection,
    api_key: str | None,
    reference: str,
    charge: Callable[[str], None],
) -> Caller:
    """The key's user and their model for `reference` (an id, `name@N` or `name@alias`);
    `charge(user_id)` spends the user's budget between the key's check and the model's.
    Reads only: the key's "last used" is written by `touch_key`."""
    parts = users.split_key(api_key)
    row = None
    if parts is not None:
        params: dict[str, Any]
        name, tag = versions.parse_reference(reference)
        if tag is None:
            statement, params = _BY_ID, {"model_id": reference}
        elif isinstance(tag, int):
            statement, params = _BY_VERSION, {"name": name, "version": tag}
        else:
            statement, params = _BY_ALIAS, {"name": name, "alias": tag}
        row = connection.execute(statement, {"prefix": parts[0], **params}).one_or_none()
    users.check_key(parts, row.secret_hash if row else None, row.revoked_at if row else None)
    assert row is not None  # noqa: S101 - check_key refuses a prefix no key has
    charge(row.user_id)
    if row.model_id is None:
        raise NotFound("model", reference)
    stale = users.stale_last_used(row.last_used_at, utcnow())
    model = Model(
        id=row.model_id,
        user_id=row.user_id,
        name=row.name,
        version=row.version,
        storage_key=row.storage_key,
    )
    return Caller(row.user_id, model, row.id if stale else None)


def touch_key(connection: Connection, caller: Caller) -> None:
    """Write the key's "last used" if `find_caller` found it due (at most once a minute)."""
    if caller.stale_key is not None:
        connection.execute(_TOUCH, {"key_id": caller.stale_key, "at": utcnow()})
