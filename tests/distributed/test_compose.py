"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

`docker compose config -q` validates the file against Compose's own schema where the
plugin is installed, and is skipped (saying so) where it is not. The structural checks run
everywhere: services, start order, health checks, persistence, and that every XGEN_ variable
is a real setting and every `xgenerator` command and option used exists.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.support import WorkerProcess, settings_env, wait_for
from xgenerator.cli.main import cli
from xgenerator.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
OUR_IMAGE = ("migrate", "api", "worker", "worker-gpu", "beat")
ONE_SHOT = ("migrate", "minio-init")
PROFILES = ["--profile", "gpu", "--profile", "flower", "--profile", "dask"]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}: Compose's interpolation
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_the_services_and_their_profiles(compose: dict[str, Any]) -> None:
    found = services(compose)
    assert set(found) == {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "migrate",
        "api",
        "worker",
        "worker-gpu",
        "beat",
        "flower",
        "dask-scheduler",
        "dask-worker",
    }
    optional = {name: s["profiles"] for name, s in found.items() if "profiles" in s}
    assert optional == {
        "worker-gpu": ["gpu"],
        "flower": ["flower"],
        "dask-scheduler": ["dask"],
        "dask-worker": ["dask"],
    }
    for name in OUR_IMAGE:
        assert found[name]["image"].startswith("xgenerator:"), name
        assert found[name]["build"] == ".", name


def test_start_order_waits_on_health_and_on_one_shots(compose: dict[str, Any]) -> None:
    found = services(compose)
    for name, service in found.items():
        for target, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]  # the long form everywhere: a bare name only waits
            if condition == "service_healthy":  # for the container to start
                assert "healthcheck" in found[target], (name, target)
            elif condition == "service_completed_successfully":
                assert target in ONE_SHOT, (name, target)
            else:
                pytest.fail(f"{name} waits on {target} with {condition}")
    expected = {
        "migrate": "service_completed_successfully",
        "minio-init": "service_completed_successfully",
        "redis": "service_healthy",
    }
    for name in ("api", "worker", "worker-gpu"):
        conditions = {t: r["condition"] for t, r in found[name]["depends_on"].items()}
        assert conditions == expected, name
    assert found["beat"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert found["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert found["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        elif name != "beat":  # beat takes no remote commands; restart brings it back
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
            assert service["restart"] == "unless-stopped", name


def test_state_is_persisted(compose: dict[str, Any]) -> None:
    found = services(compose)
    redis = " ".join(found["redis"]["command"])
    assert "--appendonly yes" in redis
    assert "--maxmemory-policy noeviction" in redis
    volumes = {
        v.split(":")[0]: v.split(":")[1]
        for name in ("postgres", "redis", "minio")
        for v in found[name]["volumes"]
    }
    assert volumes == {
        "pgdata": "/var/lib/postgresql/data",
        "redisdata": "/data",
        "miniodata": "/data",
    }
    assert set(compose["volumes"]) == set(volumes)


def test_workers(compose: dict[str, Any]) -> None:
    found = services(compose)
    worker = found["worker"]
    assert worker["deploy"]["replicas"] == 2
    # concurrency comes from the environment (XGEN_WORKER_CONCURRENCY), not the command
    assert "--concurrency" not in worker["command"]
    assert "XGEN_WORKER_CONCURRENCY" in worker["environment"]
    assert option(worker["command"], "--queues") == "train,predict,process,maintenance"
    gpu = found["worker-gpu"]
    assert option(gpu["command"], "--queues") == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_every_xgen_variable_is_a_setting(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    named = set(re.findall(r"\bXGEN_\w+", text))
    assert {"XGEN_DATABASE_URL", "XGEN_BROKER_URL", "XGEN_STORAGE_URL"} <= named
    unknown = sorted(
        n for n in named if n.removeprefix("XGEN_").lower() not in Settings.model_fields
    )
    assert unknown == [], f"not fields of Settings: {unknown}"


def test_the_environment_is_valid_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the containers get, with every ${VAR:-default} at its default."""
    for key in [k for k in os.environ if k.startswith("XGEN_")]:
        monkeypatch.delenv(key)
    for key, value in services(compose)["api"]["environment"].items():
        monkeypatch.setenv(key, interpolate(str(value)))
    settings = load_settings()
    assert not settings.embedded
    assert settings.resolved_database_url.startswith("postgresql+psycopg://xgen:")
    assert settings.storage_url == "s3://xgenerator/artifacts"
    # the bucket minio-init creates is the one the store uses, with MinIO's own credentials
    script = services(compose)["minio-init"]["command"][0]
    assert "mc mb --ignore-existing local/xgenerator" in script
    minio = services(compose)["minio"]["environment"]
    assert settings.s3_access_key_id == interpolate(minio["MINIO_ROOT_USER"])
    assert settings.s3_secret_access_key == interpolate(minio["MINIO_ROOT_PASSWORD"])


def test_every_command_and_option_exists(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name in OUR_IMAGE:
        command = services(compose)[name]["command"]
        result = runner.invoke(cli, [command[0], "--help"])
        assert result.exit_code == 0, (name, result.output)
        for flag in (word for word in command[1:] if word.startswith("--")):
            assert flag in result.output, (name, flag)


def test_the_worker_as_compose_runs_it(
    compose: dict[str, Any], distributed_settings: Settings
) -> None:
    """No --concurrency: XGEN_WORKER_CONCURRENCY decides. The exact command of the health
    check answers for a worker named as Celery names one by default (celery@<host>), and
    fails for a name no worker has."""
    check = services(compose)["worker"]["healthcheck"]["test"][1].replace("$$", "$")
    env = settings_env(distributed_settings) | {"HOSTNAME": socket.gethostname()}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # celery

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    worker = WorkerProcess(
        distributed_settings, "celery", concurrency=None, extra_env={"XGEN_WORKER_CONCURRENCY": "3"}
    )
    worker.start()
    try:
        assert "concurrency: 3 (prefork)" in worker.output()
        healthy = run(check)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        absent = run(
            check.replace("celery@$HOSTNAME", "celery@nobody").replace(
                "--timeout 10", "--timeout 1"
            )
        )
        assert absent.returncode != 0
    finally:
        worker.stop()


def test_the_dask_services_as_compose_runs_them(compose: dict[str, Any], tmp_path: Path) -> None:
    """The `dask` profile's commands, run as written (free ports instead of the fixed ones):
    the worker joins the scheduler, and both answer the URL their health check reads."""
    found = services(compose)
    scheduler, worker = found["dask-scheduler"], found["dask-worker"]
    assert scheduler["entrypoint"] == worker["entrypoint"] == ["dask"]
    assert worker["command"][1] == "tcp://dask-scheduler:" + option(scheduler["command"], "--port")
    assert "XGEN_DASK_SCHEDULER" in found["worker"]["environment"]
    port, dashboard, worker_dashboard = (free_port() for _ in range(3))

    def started(service: dict[str, Any], replace: dict[str, str], name: str) -> Any:
        command = [replace.get(word, word) for word in service["command"]]
        dask = Path(sys.executable).parent / "dask"
        with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            return subprocess.Popen([str(dask), *command], stdout=log, stderr=subprocess.STDOUT)

    def healthy(service: dict[str, Any], port: int) -> bool:
        script = re.sub(r":\d+/health", f":{port}/health", service["healthcheck"]["test"][3])
        check = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, timeout=30, check=False
        )
        return check.returncode == 0

    processes = [
        started(
            scheduler,
            {"8786": str(port), ":8787": f"127.0.0.1:{dashboard}"},
            "scheduler",
        )
    ]
    try:
        wait_for(lambda: healthy(scheduler, dashboard), 60, 0.2, "the Dask scheduler")
        address = f"tcp://127.0.0.1:{port}"
        processes.append(
            started(
                worker,
                {
                    "tcp://dask-scheduler:8786": address,
                    ":8788": f"127.0.0.1:{worker_dashboard}",
                },
                "worker",
            )
        )
        wait_for(lambda: healthy(worker, worker_dashboard), 60, 0.2, "the Dask worker")

        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=30)
            assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_dockerfile_is_multi_stage_slim_and_not_root() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, flags=re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert stages[-1][0].endswith("-slim")
    runtime = text.split("AS runtime", 1)[1]
    user = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["xgenerator"]' in runtime
    assert "from=builder" in runtime  # installs the builder's wheels, not from source
    # pyproject.toml names README.md as the package's readme: the build needs it
    assert "COPY pyproject.toml README.md ./" in text
    assert (ROOT / "README.md").exists()


def test_docker_compose_config_validates() -> None:
    """Compose's own schema check: the docker plugin (v2), else Debian's docker-compose
    (v1.29, which knows profiles, health conditions and device reservations)."""
    command = compose_command()
    if command is None:
        pytest.skip(
            "neither `docker compose` nor `docker-compose` is installed: the "
            "structural checks in this file stand in for `config`"
        )
    done = subprocess.run(
        [*command, "-f", str(COMPOSE), *PROFILES, "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- helpers ---------------------------------------------------------------------------------


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with no variable set: the default ("" without one)."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)
