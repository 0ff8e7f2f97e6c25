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
from xgenerator.users import service as users

router = APIRouter(tags=["users"])


@router.post("/users", status_code=201, response_model=UserCreated)
def create_user(body: UserCreate, session: SessionDep) -> UserCreated:
    created = users.create_user(session, body.username, body.email)
    return UserCreated(
        **UserPublic.model_validate(created.user).model_dump(), api_key=created.api_key
    )


@router.get("/users/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/users/me/keys", status_code=201, response_model=KeyCreated)
def create_key(
    body: KeyCreate, user: CurrentUser, session: SessionDep, context: ContextDep
) -> KeyCreated:
    limit = context.settings.max_keys_per_user
    row, plaintext = users.add_key(session, user.id, body.name, max_active=limit)
    return KeyCreated(**KeyPublic.model_validate(row).model_dump(), api_key=plaintext)


@router.get("/users/me/keys", response_model=list[KeyPublic])
def list_keys(user: CurrentUser, session: SessionDep) -> list[KeyPublic]:
    return [KeyPublic.model_validate(row) for row in users.list_keys(session, user.id)]


@router.delete("/users/me/keys/{key_id}", status_code=204)
def revoke_key(key_id: str, user: CurrentUser, session: SessionDep) -> None:
    users.revoke_key(session, user.id, key_id)
