"""The migrations build exactly the schema the tables declare, on both databases, and number
the models that existed before versions did."""

from __future__ import annotations

import json
from typing import Any

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


def test_job_histories_become_one_row_per_round_and_back(database_url: str) -> None:
    """0009 moves `jobs.history` into `job_rounds` (a round recorded twice, as a replay after
    a resume left it, keeps its last value) and its downgrade puts the lists back."""
    engine = make_engine(database_url)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    history = [
        {"round": 1, "validation-logloss": 0.9},
        {"round": 2, "validation-logloss": 0.8},
        {"round": 2, "validation-logloss": 0.7},
        {"round": 3, "validation-logloss": 0.6, "train-logloss": 0.5},
    ]
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
            connection.execute(
                text(
                    "INSERT INTO users (id, username, email, created_at)"
                    " VALUES ('u', 'u', 'u@x', '2026-01-01')"
                )
            )
            for job_id, rows in (("j1", history), ("j2", [])):
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, user_id, job_type, status, queue, config, progress,"
                        " history, attempts, cancel_requested, created_at, updated_at) VALUES"
                        " (:id, 'u', 'train', 'succeeded', 'train', '{}', '{}', :history, 1,"
                        " false, '2026-01-01', '2026-01-01')"
                    ),
                    {"id": job_id, "history": json.dumps(rows)},
                )
            command.upgrade(config, "head")
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT job_id, round, metrics FROM job_rounds ORDER BY job_id, round")
            ).all()
        metrics = [m if isinstance(m, dict) else json.loads(m) for _, _, m in stored]
        assert [(j, r) for j, r, _ in stored] == [("j1", 1), ("j1", 2), ("j1", 3)]
        assert metrics == [
            {"validation-logloss": 0.9},
            {"validation-logloss": 0.7},
            {"validation-logloss": 0.6, "train-logloss": 0.5},
        ]
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
            back: dict[str, Any] = dict(
                connection.execute(text("SELECT id, history FROM jobs")).all()
            )
            command.upgrade(config, "head")
        lists = {k: v if isinstance(v, list) else json.loads(v) for k, v in back.items()}
        assert lists == {"j1": [history[0], history[2], history[3]], "j2": []}
    finally:
        engine.dispose()
