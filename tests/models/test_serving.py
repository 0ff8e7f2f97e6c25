"""The prediction routes' one-query lookup of key and model answers what `authenticate` then
`get_owned` answer, for every form of reference and every refusal, in the same order, and
reads the database on every call: a revoked key or a moved alias counts at once."""

from __future__ import annotations

import pytest

from tests.support.rows import model_row
from xgenerator.context import Context
from xgenerator.db.tables import ApiKey, Model, User
from xgenerator.errors import NotFound, RateLimited, Unauthorized
from xgenerator.models import repository, serving, versions
from xgenerator.users import service as users


def new_user(context: Context, name: str) -> tuple[User, str]:
    with context.db.session() as session:
        created = users.create_user(session, name, f"{name}@example.com")
        return created.user, created.api_key


def add_version(context: Context, user_id: str, name: str = "m") -> Model:
    """The next version of `name` (a registry row; no booster file is needed here)."""
    model = model_row(user_id, name=name)
    with context.db.session() as session:
        versions.assign_version(session, model)
        session.add(model)
    return model


def find(context: Context, api_key: str | None, reference: str) -> tuple[serving.Caller, list[str]]:
    charged: list[str] = []
    with context.db.connection() as connection:
        caller = serving.find_caller(connection, api_key, reference, charged.append)
        serving.touch_key(connection, caller)  # as the route does, on the loop or not
    return caller, charged


def expected(context: Context, api_key: str, reference: str) -> tuple[str, Model]:
    with context.db.session() as session:
        user = users.authenticate(session, api_key)
        return user.id, repository.get_owned(session, user.id, reference)


def served(model: Model) -> tuple[object, ...]:
    return (model.id, model.user_id, model.name, model.version, model.storage_key)


def move(context: Context, user: User, alias: str, version: int) -> None:
    with context.db.session() as session:
        versions.move_alias(session, user, "m", alias, version)


def test_every_reference_reads_the_model_get_owned_reads(context: Context) -> None:
    alice, key = new_user(context, "alice")
    first, second = add_version(context, alice.id), add_version(context, alice.id)
    move(context, alice, "production", 1)
    for reference in (first.id, second.id, "m@1", "m@2", "m@production"):
        caller, charged = find(context, key, reference)
        user_id, model = expected(context, key, reference)
        assert (caller.user_id, served(caller.model)) == (user_id, served(model)), reference
        assert charged == [alice.id]
    # no cache between two requests: the alias moved is followed at once
    move(context, alice, "production", 2)
    assert find(context, key, "m@production")[0].model.id == second.id


def test_what_get_owned_refuses_is_refused_after_the_budget_is_spent(context: Context) -> None:
    alice, key = new_user(context, "alice")
    bob, bob_key = new_user(context, "bob")
    mine = add_version(context, alice.id)
    theirs = add_version(context, bob.id)
    move(context, bob, "production", 1)
    refused = [theirs.id, "m@production", "m@2", "other@1", "nothing", "m@", "@1", mine.id + "x"]
    for reference in refused:
        with pytest.raises(NotFound):
            expected(context, key, reference)
        with pytest.raises(NotFound):
            find(context, key, reference)
    # the key is checked, then the budget spent (429), then the model looked for (404)
    charged: list[str] = []
    with pytest.raises(NotFound), context.db.connection() as connection:
        serving.find_caller(connection, key, theirs.id, charged.append)
    assert charged == [alice.id]

    def refuse(user_id: str) -> None:
        raise RateLimited("over budget", retry_after=1)

    with pytest.raises(RateLimited), context.db.connection() as connection:
        serving.find_caller(connection, key, theirs.id, refuse)
    assert find(context, bob_key, "m@production")[0].model.id == theirs.id


def test_a_bad_or_revoked_key_is_refused_before_the_budget_at_once(context: Context) -> None:
    alice, key = new_user(context, "alice")
    model = add_version(context, alice.id)
    prefix = key.split("_")[1]
    with context.db.session() as session:
        spare, spare_key = users.add_key(session, alice.id)
    assert find(context, spare_key, model.id)[0].user_id == alice.id
    with context.db.session() as session:
        users.revoke_key(session, alice.id, spare.id)
    for bad in (None, "", "garbage", f"xg_{prefix}_wrong", "xg_nosuchprefix_secret", spare_key):
        charged: list[str] = []
        with pytest.raises(Unauthorized), context.db.connection() as connection:
            serving.find_caller(connection, bad, model.id, charged.append)
        assert charged == [], bad
        with pytest.raises(Unauthorized), context.db.session() as session:
            users.authenticate(session, bad)


def test_last_used_is_written_once_a_minute(context: Context) -> None:
    alice, key = new_user(context, "alice")
    model = add_version(context, alice.id)

    def last_used() -> object:
        with context.db.session() as session:
            row = session.query(ApiKey).filter(ApiKey.user_id == alice.id).one()
            return row.last_used_at

    assert last_used() is None
    find(context, key, model.id)
    first = last_used()
    assert first is not None
    find(context, key, model.id)
    assert last_used() == first
