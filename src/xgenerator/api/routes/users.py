from __future__ import annotations

from fastapi import APIRouter

from xgenerator.api.deps import ContextDep, CurrentUser, SessionDep
from xgenerator.api.schemas.users import (
    KeyCreate,
    KeyCreated,
    KeyPublic,
    UserCreate,
    UserCreated,
    UserPublic,
)
from xgenerator.db.tables import ApiKey, User
from xgenerator.users import service as users

router = APIRouter(tags=["users"])


def _public(user: User) -> UserPublic:
    return UserPublic(
        user_id=user.id, username=user.username, email=user.email, created_at=user.created_at
    )


def _key(row: ApiKey) -> KeyPublic:
    return KeyPublic(
        key_id=row.id,
        prefix=row.prefix,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


@router.post("/users", status_code=201, response_model=UserCreated)
def create_user(body: UserCreate, session: SessionDep) -> UserCreated:
    created = users.create_user(session, body.username, body.email)
    return UserCreated(**_public(created.user).model_dump(), api_key=created.api_key)


@router.get("/users/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return _public(user)


@router.post("/users/me/keys", status_code=201, response_model=KeyCreated)
def create_key(
    body: KeyCreate, user: CurrentUser, session: SessionDep, context: ContextDep
) -> KeyCreated:
    limit = context.settings.max_keys_per_user
    row, plaintext = users.add_key(session, user.id, body.name, max_active=limit)
    return KeyCreated(**_key(row).model_dump(), api_key=plaintext)


@router.get("/users/me/keys", response_model=list[KeyPublic])
def list_keys(user: CurrentUser, session: SessionDep) -> list[KeyPublic]:
    return [_key(row) for row in users.list_keys(session, user.id)]


@router.delete("/users/me/keys/{key_id}", status_code=204)
def revoke_key(key_id: str, user: CurrentUser, session: SessionDep) -> None:
    users.revoke_key(session, user.id, key_id)
