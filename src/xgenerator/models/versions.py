"""Registered models: a name groups the versions trained under it; aliases point at versions.

Every model trained under a `model_name` becomes that name's next version (1, 2, ...). An alias
(`production`, `staging`, any name) points at one version; each move is recorded in an
append-only history (who, when, from, to), and a rollback moves the alias back to where it
pointed before its last move. Anywhere a model is named, a reference may be its id,
`name@alias` or `name@N` (version N): `parse_reference` is the one place that parses them,
`resolve` reads them (and, in one query with the API key, `serving.find_caller`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xgenerator.db.tables import Model, ModelAlias, ModelAliasMove, User, utcnow
from xgenerator.errors import Conflict, InvalidInput, NotFound

# Not all digits, so that `name@3` always means version 3.
ALIAS = re.compile(r"(?=.*[a-z_-])[a-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Move:
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    versions: list[Model]  # newest first
    aliases: dict[str, int]
    history: list[Move]  # newest first


def resolve(session: Session, user_id: str, reference: str) -> Model:
    """The user's model for an id, `name@alias` or `name@N`; anything else is a 404.
    (The prediction routes read the same references in one query: models/serving.py.)"""
    name, tag = parse_reference(reference)
    if tag is None:
        row = session.get(Model, reference)
        if row is None or row.user_id != user_id:
            raise NotFound("model", reference)
        return row
    version = tag if isinstance(tag, int) else _alias_version(session, user_id, name, tag)
    row = session.scalar(
        select(Model).where(Model.user_id == user_id, Model.name == name, Model.version == version)
    )
    if row is None:
        raise NotFound("model", reference)
    return row


def parse_reference(reference: str) -> tuple[str, int | str | None]:
    """(id, None) for a model id, (name, N) for `name@N`, (name, alias) for `name@alias`."""
    if "@" not in reference:
        return reference, None
    name, _, tag = reference.rpartition("@")
    return name, int(tag) if tag.isdigit() else tag


def assign_version(session: Session, model: Model) -> None:
    """Number a new model within its name, inside the transaction that records it. The user's
    row is locked first (PostgreSQL), so two trainings of one name finishing together queue
    up instead of taking the same number; SQLite serializes writers anyway."""
    session.execute(select(User.id).where(User.id == model.user_id).with_for_update(key_share=True))
    latest = session.scalar(
        select(func.max(Model.version)).where(
            Model.user_id == model.user_id, Model.name == model.name
        )
    )
    model.version = (latest or 0) + 1


def names(session: Session, user_id: str, limit: int, offset: int) -> tuple[list[Model], int]:
    """The latest version of each of the user's model names, by name; and how many names."""
    latest = (
        select(Model.name, func.max(Model.version).label("version"))
        .where(Model.user_id == user_id, Model.version.is_not(None))
        .group_by(Model.name)
        .subquery()
    )
    query = (
        select(Model)
        .join(latest, (Model.name == latest.c.name) & (Model.version == latest.c.version))
        .where(Model.user_id == user_id)
    )
    total = session.scalar(select(func.count()).select_from(latest)) or 0
    return list(session.scalars(query.order_by(Model.name).limit(limit).offset(offset))), total


def describe(session: Session, user_id: str, name: str) -> RegisteredModel:
    versions = list(
        session.scalars(
            select(Model)
            .where(Model.user_id == user_id, Model.name == name, Model.version.is_not(None))
            .order_by(Model.version.desc())
        )
    )
    if not versions:
        raise NotFound("registered_model", name)
    aliases = session.scalars(
        select(ModelAlias).where(ModelAlias.user_id == user_id, ModelAlias.name == name)
    )
    moves = session.scalars(
        select(ModelAliasMove)
        .where(ModelAliasMove.user_id == user_id, ModelAliasMove.name == name)
        .order_by(ModelAliasMove.id.desc())
    )
    return RegisteredModel(
        name=name,
        versions=versions,
        aliases={a.alias: a.version for a in aliases},
        history=[Move(m.alias, m.from_version, m.to_version, m.actor, m.at) for m in moves],
    )


def move_alias(session: Session, user: User, name: str, alias: str, version: int | None) -> Move:
    """Point `alias` at `version` (None removes it), and record the move."""
    if not ALIAS.fullmatch(alias):
        raise InvalidInput(
            "an alias is 1-64 of a-z, 0-9, '_' and '-', not only digits", {"alias": alias}
        )
    if version is not None:
        resolve(session, user.id, f"{name}@{version}")  # 404 for a version that is not there
    current = session.get(ModelAlias, (user.id, name, alias))
    before = current.version if current is not None else None
    if version is None:
        if current is None:
            raise NotFound("alias", f"{name}@{alias}")
        session.delete(current)
    elif current is None:
        session.add(ModelAlias(user_id=user.id, name=name, alias=alias, version=version))
    else:
        current.version, current.updated_at = version, utcnow()
    move = ModelAliasMove(
        user_id=user.id,
        name=name,
        alias=alias,
        from_version=before,
        to_version=version,
        actor=user.username,
        at=utcnow(),
    )
    session.add(move)
    return Move(alias, before, version, user.username, move.at)


def rollback_alias(session: Session, user: User, name: str, alias: str) -> Move:
    """Move the alias back to where its last move took it from (409 when it has none)."""
    last = session.scalar(
        select(ModelAliasMove)
        .where(
            ModelAliasMove.user_id == user.id,
            ModelAliasMove.name == name,
            ModelAliasMove.alias == alias,
        )
        .order_by(ModelAliasMove.id.desc())
        .limit(1)
    )
    if last is None:
        raise NotFound("alias", f"{name}@{alias}")
    if last.from_version is None:
        raise Conflict(
            "the alias's last move created it: there is nothing to roll back to",
            {"alias": alias, "version": last.to_version},
        )
    return move_alias(session, user, name, alias, last.from_version)


def aliases_of(session: Session, model: Model) -> list[str]:
    """The aliases that point at `model` (such a version may not be deleted)."""
    if model.version is None:
        return []
    return list(
        session.scalars(
            select(ModelAlias.alias).where(
                ModelAlias.user_id == model.user_id,
                ModelAlias.name == model.name,
                ModelAlias.version == model.version,
            )
        )
    )


def _alias_version(session: Session, user_id: str, name: str, alias: str) -> int:
    row = session.get(ModelAlias, (user_id, name, alias))
    if row is None:
        raise NotFound("model", f"{name}@{alias}")
    return row.version
