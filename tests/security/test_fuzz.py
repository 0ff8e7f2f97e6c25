"""Schemathesis against the live app's own OpenAPI spec, in-process over ASGI (OWASP API8,
API9: the spec is the inventory, and the app must keep to it).

Every operation in the spec, valid and invalid data, authenticated with a real API key;
path parameters and body ids are sometimes Alice's real objects (tests/security/world.py) so
that requests get past the 404 into the code behind it. Checks: no 5xx, responses (errors
included) match their declared schemas, every error body is exactly {error, message,
details}, invalid data refused, plus schemathesis' other default checks (but not "valid
data is accepted": a schema-valid request may be refused on its content, by design).

CI runs a bounded, seeded run: XGEN_FUZZ_EXAMPLES (12) examples per operation, valid and
invalid mixed, XGEN_FUZZ_SEED (20230601). A longer local run, e.g.:

    XGEN_FUZZ_EXAMPLES=300 XGEN_FUZZ_SEED=$RANDOM .venv/bin/pytest tests/security/test_fuzz.py

A failure names each failing operation, the check, the seed, and a curl command that
replays the request. What it found is pinned in tests/security/test_fuzz_findings.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.python import asgi
from sqlalchemy import text

from tests.security.world import World, build
from tests.support.services import TABLES, make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.engine import make_engine
from xgenerator.embedded import PrivateRedis

EXAMPLES = int(os.environ.get("XGEN_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("XGEN_FUZZ_SEED", "20230601"))


@dataclass
class Fuzzed:
    schema: schemathesis.BaseSchema
    world: World
    context: Context


def real_path_values(world: World) -> dict[str, list[dict[str, str]]]:
    """Alice's objects for each path parameter set. Never her key id (the fuzz key must stay
    valid), and only finished jobs (a stream of a queued job stays open)."""
    jobs = [world.ids["train_job_id"], world.ids["report_job_id"], world.ids["artifact_job_id"]]
    return {
        "job_id": [{"job_id": j} for j in jobs],
        "model_id": [{"model_id": world.ids["model_id"]}],
        "dataset_id": [{"dataset_id": world.ids["dataset_id"]}],
        "job_id,name": [
            {"job_id": world.ids["artifact_job_id"], "name": world.ids["artifact_name"]}
        ],
    }


def install_hooks(schema: schemathesis.BaseSchema, world: World) -> None:
    paths = real_path_values(world)

    @schema.hook
    def before_generate_path_parameters(
        context: schemathesis.HookContext, strategy: st.SearchStrategy[Any]
    ) -> st.SearchStrategy[Any]:
        operation = context.operation
        if operation is None or operation.method.upper() == "DELETE":
            return strategy  # deleting her objects would leave nothing to reach
        names = ",".join(sorted(p.name for p in operation.path_parameters))
        real = paths.get(names)
        return st.one_of(strategy, st.sampled_from(real)) if real else strategy

    @schema.hook
    def before_generate_body(
        context: schemathesis.HookContext, strategy: st.SearchStrategy[Any]
    ) -> st.SearchStrategy[Any]:
        def with_real_dataset(body: Any) -> Any:
            if isinstance(body, dict) and "dataset_id" in body:
                return {**body, "dataset_id": world.ids["dataset_id"]}
            return body

        return st.one_of(strategy, strategy.map(with_real_dataset))


@schemathesis.check
def error_shape(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every error answer is exactly {error, message, details}, whatever the route."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "message", "details"}, body
    assert isinstance(body["error"], str) and isinstance(body["message"], str), body
    return True


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    private_redis: PrivateRedis,
) -> Iterator[Fuzzed]:
    """One service for the whole run of one database (module scope: built once, not per
    operation), with a user, Alice's objects and a key."""
    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        shutil.copyfile(sqlite_template, tmp / "fuzz.db")
        url = f"sqlite:///{tmp / 'fuzz.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        engine.dispose()
    client = redis.Redis(unix_socket_path=str(private_redis.socket))
    client.flushall()
    client.close()
    # Streams end fast: the fuzzer reads each to its end.
    settings = make_settings(tmp, url, private_redis.url, stream_max_s=0.5, stream_poll_s=0.05)
    context = build_context(settings)
    app = create_app(settings, context)
    with TestClient(app) as test_client:
        world = build(test_client, context)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"X-API-Key": world.alice["X-API-Key"]},
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            # A schema-valid request may still be refused on its content (an empty file, an
            # unknown target column: 422 by design), so "valid data is accepted" is off.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    install_hooks(schema, world)
    try:
        yield Fuzzed(schema, world, context)
    finally:
        asgi.shutdown_lifespans()
        context.close()


def fuzz(operation: schemathesis.APIOperation[Any, Any, Any, Any]) -> None:
    """Seeded, bounded Hypothesis run of one operation, valid and invalid data mixed."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(case=cases)
    def run(case: Case[Any]) -> None:
        case.call_and_validate(additional_checks=[error_shape])

    run()


# CI's bound (about 12 s a database on two busy cores); a longer local run is not cut off.
@pytest.mark.timeout(90 if EXAMPLES <= 20 else 0)
def test_fuzz_every_operation(fuzzed: Fuzzed) -> None:
    operations = [result.ok() for result in fuzzed.schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 30
    failures = []
    for operation in operations:
        try:
            fuzz(operation)
        except (Exception, BaseExceptionGroup) as exc:  # report each, go on with the next
            failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    assert not failures, f"seed {SEED}, {EXAMPLES} examples:\n\n" + "\n\n".join(failures)
