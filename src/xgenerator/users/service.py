"""Users and their API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xgenerator.db.tables import ApiKey, User, utcnow
from xgenerator.errors import Conflict, NotFound, Unauthorized
from xgenerator.users import keys

LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedUser:
    user: User
    api_key: str


def create_user(session: Session, username: str, email: str) -> CreatedUser:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", {"username": username})
    user = User(username=username, email=email)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # lost a race with a concurrent request for the same name
        raise Conflict(f"username {username!r} is taken", {"username": username}) from None
    plaintext = add_key(session, user.id)[1]
    return CreatedUser(user, plaintext)


def add_key(
    session: Session, user_id: str, name: str | None = None, max_active: int | None = None
) -> tuple[ApiKey, str]:
    """A new key, shown once. `max_active` caps a user's live keys, so that the unpaginated
    key list stays short and a leaked key cannot mint keys without end (409 past it)."""
    if max_active is not None:
        active = session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        )
        if (active or 0) >= max_active:
            raise Conflict(
                f"at most {max_active} active keys per user; revoke one first",
                {"limit": max_active},
            )
    new = keys.generate()
    row = ApiKey(user_id=user_id, prefix=new.prefix, secret_hash=new.secret_hash, name=name)
    session.add(row)
    session.flush()
    return row, new.plaintext


def list_keys(session: Session, user_id: str) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    return list(session.scalars(query.order_by(ApiKey.created_at)))


def revoke_key(session: Session, user_id: str, key_id: str) -> None:
    row = session.get(ApiKey, key_id)
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        raise NotFound("key", key_id)
    row.revoked_at = utcnow()


def authenticate(session: Session, plaintext: str | None) -> User:
    """The user owning this key; `Unauthorized` for a missing, malformed, wrong or revoked key."""
    parts = split_key(plaintext)
    row = None
    if parts is not None:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[0]))
    check_key(parts, row.secret_hash if row else None, row.revoked_at if row else None)
    user = session.get(User, row.user_id) if row is not None else None
    if row is None or user is None:
        raise Unauthorized("invalid API key")
    now = utcnow()
    if stale_last_used(row.last_used_at, now):
        row.last_used_at = now
    return user


def split_key(plaintext: str | None) -> tuple[str, str] | None:
    """(prefix, secret) of the key sent, None if malformed (`check_key` refuses it after the
    same hash comparison); `Unauthorized` when none was sent."""
    if not plaintext:
        raise Unauthorized("missing API key: send it in the X-API-Key header")
    return keys.split(plaintext)


def check_key(
    parts: tuple[str, str] | None, secret_hash: str | None, revoked_at: datetime | None
) -> None:
    """`Unauthorized` unless the secret matches the stored hash of a live key (`secret_hash`
    None: no key has that prefix)."""
    secret_ok = keys.matches(parts[1] if parts else "", secret_hash or keys.DUMMY_HASH)
    if secret_hash is None or not secret_ok or revoked_at is not None:
        raise Unauthorized("invalid API key")


def stale_last_used(last_used_at: datetime | None, now: datetime) -> bool:
    """At most one write a minute per key: "last used" needs no more precision than that."""
    return last_used_at is None or now - last_used_at > LAST_USED_PRECISION
