"""No pickle anywhere (OWASP API8, API10: unsafe consumption of what others wrote).

Proved elsewhere, not repeated here:
- model files load only through `Booster.load_model` on UBJSON/JSON, a pickle is refused
  unexecuted: tests/ml/test_ml_bundle.py::test_a_pickle_is_refused_and_never_executed
- an uploaded dataset that is a pickle: 422 and no marker file:
  tests/api/test_datasets.py::test_a_pickle_is_refused_and_never_loaded (and, below the API,
  tests/datasets/test_ingest.py::test_a_pickle_is_never_loaded)
Here: the Celery worker refuses a pickle-serialized task message, and the source tree uses no
pickle-based loader at all, with ruff's S301 watching.
"""

from __future__ import annotations

import ast
import tomllib
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from kombu import Connection, Exchange, Queue

from tests.security.spec import SQLITE_ONLY
from tests.support import WorkerProcess, auth, create_user, wait_for
from tests.support.jobs import wait_final
from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.jobs import repository
from xgenerator.tasks.app import RUN_JOB

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "xgenerator"
# Modules and calls that can run code from the bytes they read.
UNSAFE_MODULES = {
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}
UNSAFE_CALLS = {"read_pickle", "to_pickle", "unsafe_load", "full_load"}


class Marker:
    """Unpickling this creates a file: proof that code from the message ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Path.touch, (self.path,))


def send_pickled_task(broker_url: str, queue: str, task_id: str, args: list[Any]) -> None:
    """A well-formed Celery protocol-2 task message, serialized with pickle, straight
    through kombu: what someone with write access to the broker could send."""
    exchange = Exchange(queue, type="direct")
    with Connection(broker_url) as connection:
        producer = connection.Producer()
        producer.publish(
            (args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}),
            exchange=exchange,
            routing_key=queue,
            declare=[Queue(queue, exchange, routing_key=queue)],
            serializer="pickle",
            headers={
                "lang": "py",
                "task": RUN_JOB,
                "id": task_id,
                "root_id": task_id,
                "parent_id": None,
                "group": None,
                "retries": 0,
                "eta": None,
                "expires": None,
                "timelimit": [None, None],
                "argsrepr": "(...)",
                "kwargsrepr": "{}",
                "origin": "attacker",
                "ignore_result": True,
            },
        )


@SQLITE_ONLY  # the broker is the subject, not the database
def test_the_worker_refuses_a_pickle_serialized_message(
    client: TestClient, context: Context, worker: WorkerProcess, tmp_path: Path
) -> None:
    alice = create_user(client)
    with context.db.session() as session:  # a queued job the message claims to carry
        job = repository.create(
            session, Job(user_id=alice["user_id"], job_type="noop", queue="train", config={})
        )
    marker = tmp_path / "unpickled"
    task_id = uuid.uuid4().hex
    send_pickled_task(str(context.settings.broker_url), "train", task_id, [job.id, Marker(marker)])

    refused = "Refusing to deserialize untrusted content of type pickle"
    wait_for(lambda: refused in worker.output(), 30, 0.1, "the worker to refuse the message")
    # The worker is alive and consuming: a JSON job sent after it runs to the end.
    noop = client.post("/jobs/noop", headers=auth(alice))
    assert wait_final(client, alice, noop.json()["job_id"])["status"] == "succeeded"

    assert not marker.exists(), "the pickle was deserialized"
    with context.db.session() as session:
        row = session.get(Job, job.id)
        assert row is not None and (row.status, row.attempts) == ("queued", 0)
    log = worker.output()
    assert f"run_job[{task_id}] received" not in log
    assert "application/x-python-serialize" in log


def unsafe_uses(path: Path) -> list[str]:
    """Imports of pickle-like modules, pickle-based calls, and `allow_pickle=True`, read
    from the syntax tree (so comments and docstrings saying why there is none are fine)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        hit = any(name in UNSAFE_MODULES for name in names)
        if isinstance(node, ast.Attribute) and node.attr in UNSAFE_CALLS:
            hit = True
        if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            hit = not (isinstance(node.value, ast.Constant) and node.value.value is False)
        if hit:
            found.append(f"{path}:{getattr(node, 'lineno', '?')}")
    return found


def test_no_pickle_based_loader_in_the_source() -> None:
    found = [use for path in sorted(SOURCE.rglob("*.py")) for use in unsafe_uses(path)]
    assert found == []


def test_the_source_check_finds_each_kind_of_use(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '''"""No pickle here, says the docstring."""
import numpy as np
import pandas as pd
from joblib import load
import pickle
frame = pd.read_pickle("f")
array = np.load("f", allow_pickle=True)
safe = np.load("f", allow_pickle=False)
'''
    )
    assert unsafe_uses(sample) == [f"{sample}:{n}" for n in (4, 5, 6, 7)]


def test_ruff_flags_pickle_loads_in_the_package() -> None:
    """S301 (`pickle.loads` and friends) is on for src/: ruff's S set is selected, and
    neither S nor S301 is ignored for the package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"] or "S301" in config["select"]
    assert not {"S", "S3", "S30", "S301"} & set(config.get("ignore", []))
    for pattern, ignored in config.get("per-file-ignores", {}).items():
        if pattern.startswith("src") or pattern in ("*", "**", "**/*.py"):
            assert not {"S", "S3", "S30", "S301"} & set(ignored), pattern
