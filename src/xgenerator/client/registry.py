"""`client.registered_models`: the versions of a model name and the aliases that point at
them (`name@alias` works wherever a model id does)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING
from urllib.parse import quote

from xgenerator.client.types import AliasMove, Model, RegisteredModel

if TYPE_CHECKING:
    from xgenerator.client.core import Client


class RegisteredModels:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self, limit: int = 50, offset: int = 0) -> builtins.list[Model]:
        """The newest version of each model name."""
        body = self.client.request(
            "GET", "/registered-models", params={"limit": limit, "offset": offset}
        )
        return [Model.model_validate(r["latest"]) for r in body["registered_models"]]

    def get(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self.client.request("GET", _path(name)))

    def move_alias(self, name: str, alias: str, version: int) -> AliasMove:
        """Point `alias` at `version` (creating the alias); the move is recorded."""
        body = self.client.request(
            "PUT", f"{_path(name)}/aliases/{quote(alias, safe='')}", json={"version": version}
        )
        return AliasMove.model_validate(body)

    def rollback(self, name: str, alias: str) -> AliasMove:
        """Move `alias` back to where it pointed before its last move."""
        body = self.client.request(
            "POST", f"{_path(name)}/aliases/{quote(alias, safe='')}/rollback"
        )
        return AliasMove.model_validate(body)

    def delete_alias(self, name: str, alias: str) -> AliasMove:
        body = self.client.request("DELETE", f"{_path(name)}/aliases/{quote(alias, safe='')}")
        return AliasMove.model_validate(body)


def _path(name: str) -> str:
    return f"/registered-models/{quote(name, safe='')}"
