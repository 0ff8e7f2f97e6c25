from __future__ import annotations

from datetime import datetime

from pydantic import Field

from xgenerator.api.schemas import Request, Response


class UserCreate(Request):
    username: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$",
        description="3-64 letters, digits, '_', '.', '-'",
    )
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserPublic(Response):
    user_id: str = Field(validation_alias="id")
    username: str
    email: str
    created_at: datetime


class UserCreated(UserPublic):
    api_key: str = Field(description="Shown once; only a hash is stored")


class KeyCreate(Request):
    name: str | None = Field(default=None, max_length=100)


class KeyPublic(Response):
    key_id: str = Field(validation_alias="id")
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None


class KeyCreated(KeyPublic):
    api_key: str
