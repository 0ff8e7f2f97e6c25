"""Request and response bodies, split by direction: `XCreate` comes in, `XPublic` goes out."""

from pydantic import BaseModel, ConfigDict


class Request(BaseModel):
    """Unknown fields are refused: a client cannot set what it must not (status, owner, ...)."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    """Built from ORM rows by `model_validate(row)`; a field named differently from its column
    says where it reads from with `validation_alias`."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)
