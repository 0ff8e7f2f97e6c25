from __future__ import annotations

from datetime import datetime

from pydantic import Field

from xgenerator.api.schemas import Request, Response
from xgenerator.api.schemas.models import ModelSummary


class AliasMoveRequest(Request):
    version: int = Field(ge=1, description="The version the alias points at from now on")


class AliasMovePublic(Response):
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str = Field(description="The user who moved it")
    at: datetime


class RegisteredModelSummary(Response):
    name: str
    latest: ModelSummary


class RegisteredModelList(Response):
    registered_models: list[RegisteredModelSummary]
    total: int
    limit: int
    offset: int


class RegisteredModelDetail(Response):
    name: str
    versions: list[ModelSummary] = Field(description="Newest first")
    aliases: dict[str, int] = Field(description="alias → version")
    history: list[AliasMovePublic] = Field(description="Every alias move, newest first")
