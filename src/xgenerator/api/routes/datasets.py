from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from xgenerator.api.deps import (
    ContextDep,
    CurrentUser,
    OwnedDataset,
    PageLimit,
    PageOffset,
    SessionDep,
)
from xgenerator.api.schemas.datasets import DatasetList, DatasetPublic
from xgenerator.datasets import repository as registry
from xgenerator.errors import Forbidden, PayloadTooLarge

router = APIRouter(tags=["datasets"])


@router.post("/datasets", status_code=201, response_model=DatasetPublic)
async def upload_dataset(
    context: ContextDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="CSV or Parquet")],
    dataset_name: Annotated[str, Form(min_length=1, max_length=200)],
    user_id: Annotated[str | None, Form()] = None,
) -> DatasetPublic:
    if user_id is not None and user_id != user.id:
        raise Forbidden("user_id does not match the API key's user")
    limit = context.settings.max_upload_bytes
    scratch = context.settings.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    # The multipart parser already spooled the file to disk; copy it into our own scratch
    # space (never named after the client's file name) and check its real size.
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        upload = Path(tmp) / "upload"
        with upload.open("wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out, 1 << 20)
        if upload.stat().st_size > limit:
            raise PayloadTooLarge(
                f"file exceeds {context.settings.max_upload_mb} MB", {"limit_bytes": limit}
            )
        row = await run_in_threadpool(
            registry.create_from_upload, context, user.id, dataset_name, upload
        )
    return DatasetPublic.model_validate(row)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_name: str = Field(min_length=1, max_length=200)
    uri: str = Field(min_length=1, max_length=1000)


@router.post("/datasets/register", status_code=201, response_model=DatasetPublic)
def register_dataset(
    context: ContextDep, user: CurrentUser, request: RegisterRequest
) -> DatasetPublic:
    """A Parquet file or folder already in an allowed location, registered without upload."""
    row = registry.create_from_reference(context, user.id, request.dataset_name, request.uri)
    return DatasetPublic.model_validate(row)


@router.get("/datasets", response_model=DatasetList)
def list_datasets(
    user: CurrentUser,
    session: SessionDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> DatasetList:
    rows, total = registry.list_owned(session, user.id, limit, offset)
    return DatasetList(
        datasets=[DatasetPublic.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/datasets/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset: OwnedDataset) -> DatasetPublic:
    return DatasetPublic.model_validate(dataset)


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(dataset: OwnedDataset, context: ContextDep) -> None:
    registry.delete(context, dataset)
