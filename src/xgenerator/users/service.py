"""Users and their API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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
    if not plaintext:
        raise Unauthorized("missing API key: send it in the X-API-Key header")
    parts = keys.split(plaintext)
    row = None
    if parts is not None:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[0]))
    secret_ok = keys.matches(parts[1] if parts else "", row.secret_hash if row else keys.DUMMY_HASH)
    if row is None or not secret_ok or row.revoked_at is not None:
        raise Unauthorized("invalid API key")
    user = session.get(User, row.user_id)
    if user is None:
        raise Unauthorized("invalid API key")
    now = utcnow()
    # At most one write a minute per key: "last used" needs no more precision than that.
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_PRECISION:
        row.last_used_at = now
    return user
