"""Registered models: the versions of a model name, and aliases moved, recorded, rolled back.

Any model route takes `name@alias` or `name@N` where it takes a model id (api/deps.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from xgenerator.api.deps import CurrentUser, PageLimit, PageOffset, SessionDep
from xgenerator.api.schemas.models import ModelSummary
from xgenerator.api.schemas.registered_models import (
    AliasMovePublic,
    AliasMoveRequest,
    RegisteredModelDetail,
    RegisteredModelList,
    RegisteredModelSummary,
)
from xgenerator.models import versions

router = APIRouter(tags=["models"])

Name = Annotated[str, Path(min_length=1, max_length=200)]
Alias = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/registered-models", response_model=RegisteredModelList)
def list_registered_models(
    user: CurrentUser, session: SessionDep, limit: PageLimit = 50, offset: PageOffset = 0
) -> RegisteredModelList:
    latest, total = versions.names(session, user.id, limit, offset)
    return RegisteredModelList(
        registered_models=[
            RegisteredModelSummary(name=m.name, latest=ModelSummary.model_validate(m))
            for m in latest
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/registered-models/{model_name}", response_model=RegisteredModelDetail)
def get_registered_model(
    model_name: Name, user: CurrentUser, session: SessionDep
) -> RegisteredModelDetail:
    return RegisteredModelDetail.model_validate(versions.describe(session, user.id, model_name))


@router.put("/registered-models/{model_name}/aliases/{alias}", response_model=AliasMovePublic)
def move_alias(
    model_name: Name, alias: Alias, body: AliasMoveRequest, user: CurrentUser, session: SessionDep
) -> AliasMovePublic:
    """Point the alias at a version (creating it); the move is recorded in the history."""
    return AliasMovePublic.model_validate(
        versions.move_alias(session, user, model_name, alias, body.version)
    )


@router.post(
    "/registered-models/{model_name}/aliases/{alias}/rollback", response_model=AliasMovePublic
)
def rollback_alias(
    model_name: Name, alias: Alias, user: CurrentUser, session: SessionDep
) -> AliasMovePublic:
    """Move the alias back to the version it pointed at before its last move."""
    return AliasMovePublic.model_validate(versions.rollback_alias(session, user, model_name, alias))


@router.delete("/registered-models/{model_name}/aliases/{alias}", response_model=AliasMovePublic)
def delete_alias(
    model_name: Name, alias: Alias, user: CurrentUser, session: SessionDep
) -> AliasMovePublic:
    return AliasMovePublic.model_validate(
        versions.move_alias(session, user, model_name, alias, None)
    )
