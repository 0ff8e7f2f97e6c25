"""The migrations build exactly the schema the tables declare, on both databases, and number
the models that existed before versions did."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from xgenerator.db.engine import make_engine
from xgenerator.db.migrate import alembic_config
from xgenerator.db.tables import Base


def test_migrations_match_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)  # migrated from empty by the fixture
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_models_before_versions_are_numbered_by_age(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            connection.execute(
                text(
                    "INSERT INTO users (id, username, email, created_at)"
                    " VALUES ('u', 'u', 'u@x', '2026-01-01')"
                )
            )
            ages = [("a", "2026-01-03"), ("a", "2026-01-01"), ("b", "2026-01-02")]
            for i, (name, at) in enumerate(ages):
                connection.execute(
                    text(
                        "INSERT INTO models (id, user_id, job_id, name, task_type, target,"
                        " features, params, metrics, history, row_count, num_boost_round,"
                        " storage_key,"
                        " xgboost_version, created_at) VALUES (:id, 'u', :id, :name, 'regression',"
                        " 'y', '[]', '{}', '{}', '[]', 1, 1, 'k', '3', :at)"
                    ),
                    {"id": f"m{i}", "name": name, "at": at},
                )
            command.upgrade(config, "head")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, version FROM models ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("m0", 2), ("m1", 1), ("m2", 1)]
    finally:
        engine.dispose()
