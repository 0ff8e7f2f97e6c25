"""`xgenerator models alias`: show a model name's versions and aliases, move, roll back."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from xgenerator.cli.command import (
    EXIT_USAGE,
    Json,
    connect,
    console,
    fail,
    guarded,
    print_json,
)
from xgenerator.client import AliasMove, RegisteredModel


@guarded
def alias(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias_name: Annotated[str | None, typer.Argument(metavar="ALIAS", help="e.g. prod")] = None,
    version: Annotated[int | None, typer.Argument(help="Version to point ALIAS at")] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Move ALIAS back to its previous version")
    ] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Remove ALIAS")] = False,
    as_json: Json = False,
) -> None:
    """NAME: versions, aliases and their history. NAME ALIAS VERSION: point ALIAS at
    VERSION. NAME ALIAS --rollback: back to where it was. NAME ALIAS --delete: remove it.
    Any model command then takes NAME@ALIAS for a model id."""
    actions = sum((version is not None, rollback, delete))
    if alias_name is None and actions or alias_name is not None and actions != 1:
        fail(
            "give NAME, or NAME ALIAS with one of VERSION, --rollback, --delete",
            EXIT_USAGE,
            as_json,
            "usage",
        )
    with connect() as client:
        registry = client.registered_models
        if alias_name is None:
            described = registry.get(name)
            print_json(described) if as_json else _show(console(), described)
            return
        if rollback:
            move = registry.rollback(name, alias_name)
        elif delete:
            move = registry.delete_alias(name, alias_name)
        else:
            assert version is not None  # noqa: S101 (counted above)
            move = registry.move_alias(name, alias_name, version)
    if as_json:
        print_json(move)
    else:
        console().print(
            f"{name}@{move.alias}: {_version(move.from_version)} → {_version(move.to_version)}"
        )


def _version(value: int | None) -> str:
    return "none" if value is None else f"v{value}"


def _show(out: Console, described: RegisteredModel) -> None:
    pointing: dict[int, list[str]] = {}
    for name, version in described.aliases.items():
        pointing.setdefault(version, []).append(name)
    versions = Table("version", "model id", "aliases", "metrics", "created", title=described.name)
    for m in described.versions:
        metrics = ", ".join(
            f"{k}={v:.4f}" for k, v in m.metrics.items() if isinstance(v, int | float)
        )
        tags = ", ".join(sorted(pointing.get(m.version or 0, [])))
        versions.add_row(
            _version(m.version),
            m.model_id,
            tags,
            metrics,
            m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(versions)
    if described.history:
        out.print(_history(described.history))


def _history(moves: list[AliasMove]) -> Table:
    table = Table("when", "alias", "from", "to", "by", title="Alias moves (newest first)")
    for move in moves:
        table.add_row(
            move.at.strftime("%Y-%m-%d %H:%M:%S"),
            move.alias,
            _version(move.from_version),
            _version(move.to_version),
            move.actor,
        )
    return table
