"""The client commands of the CLI against a live embedded server: output and exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from tests.live import csv_file, running_with_rounds, single_class_frame
from tests.support import AFTER_SUCCESS, classification_frame, shap_summary, wait_for
from xgenerator.cli.demo import LocalServer
from xgenerator.cli.main import cli
from xgenerator.client import Client


@pytest.fixture(scope="module")
def api_key(server: LocalServer) -> str:
    return Client.create_user(server.url, "carl", "carl@example.com").api_key


@pytest.fixture
def xgen(tmp_path: Path, server: LocalServer, api_key: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `xgenerator ARGS` logged in (config in this test's tmp dir)."""
    monkeypatch.setenv("XGEN_CLIENT_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("XGEN_CLIENT_URL", raising=False)
    monkeypatch.delenv("XGEN_CLIENT_API_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    result = run("login", "--url", server.url, "--api-key", api_key)
    assert result.exit_code == 0, result.output
    return run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_login_saves_a_private_config_and_checks_the_key(
    tmp_path: Path, server: LocalServer, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "nested" / "config.json"
    monkeypatch.setenv("XGEN_CLIENT_CONFIG", str(config))
    runner = CliRunner()
    bad = runner.invoke(cli, ["login", "--url", server.url, "--api-key", "xg_nope"])
    assert bad.exit_code == 3 and "error" in bad.stderr
    assert not config.exists()
    good = runner.invoke(cli, ["login", "--url", server.url, "--api-key", api_key, "--json"])
    assert good.exit_code == 0, good.output
    assert as_json(good)["username"] == "carl"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": server.url, "api_key": api_key}
    created = runner.invoke(
        cli, ["signup", "newbie", "newbie@example.com", "--url", server.url, "--json"]
    )
    assert created.exit_code == 0, created.output
    assert json.loads(config.read_text())["api_key"] == as_json(created)["api_key"]
    assert (
        as_json(
            runner.invoke(
                cli,
                ["login", "--url", server.url, "--api-key", as_json(created)["api_key"], "--json"],
            )
        )["username"]
        == "newbie"
    )


def test_not_logged_in_and_usage_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XGEN_CLIENT_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.delenv("XGEN_CLIENT_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["jobs", "list"])
    assert result.exit_code == 2 and "xgenerator login" in result.stderr
    assert runner.invoke(cli, ["train", "--target", "y"]).exit_code == 2  # options missing
    assert (
        runner.invoke(cli, ["train", "-d", "x", "-t", "y", "-n", "m", "-p", "oops"]).exit_code == 2
    )


def test_the_environment_can_name_server_and_key(
    tmp_path: Path, server: LocalServer, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XGEN_CLIENT_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("XGEN_CLIENT_URL", server.url)
    monkeypatch.setenv("XGEN_CLIENT_API_KEY", api_key)
    result = CliRunner().invoke(cli, ["jobs", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert isinstance(as_json(result), list)


def test_datasets_commands(xgen: Any, tmp_path: Path) -> None:
    path = csv_file(tmp_path, classification_frame(80), "people.csv")
    uploaded = xgen("datasets", "upload", str(path), "--json")
    assert uploaded.exit_code == 0, uploaded.output
    dataset = as_json(uploaded)
    assert dataset["dataset_name"] == "people" and dataset["row_count"] == 80
    listed = as_json(xgen("datasets", "list", "--json"))
    assert dataset["dataset_id"] in [d["dataset_id"] for d in listed]
    shown = xgen("datasets", "show", dataset["dataset_id"])
    assert shown.exit_code == 0 and "color" in shown.stdout and "categorical" in shown.stdout
    assert xgen("datasets", "delete", dataset["dataset_id"]).exit_code == 0
    missing = xgen("datasets", "show", dataset["dataset_id"], "--json")
    assert missing.exit_code == 4
    assert json.loads(missing.stderr)["error"] == "dataset_not_found"


def test_train_wait_then_jobs_and_models(xgen: Any, tmp_path: Path) -> None:
    frame = classification_frame(200)
    dataset_id = as_json(xgen("datasets", "upload", str(csv_file(tmp_path, frame)), "--json"))[
        "dataset_id"
    ]
    trained = xgen(
        "train",
        "-d",
        dataset_id,
        "-t",
        "label",
        "-n",
        "cli-model",
        "--rounds",
        "15",
        "-p",
        "max_depth=3",
        "-p",
        "nthread=1",
        "--wait",
        "--json",
    )
    assert trained.exit_code == 0, trained.output
    job = as_json(trained)
    assert job["status"] == "succeeded" and job["model_id"]
    human = xgen("jobs", "show", job["job_id"])
    assert human.exit_code == 0 and "succeeded" in human.stdout and "accuracy" in human.stdout
    detail = as_json(xgen("jobs", "show", job["job_id"], "--json"))
    events = [e["event"] for e in detail["events"]]
    assert events[:3] == ["submitted", "started", "succeeded"]
    assert set(events[3:]) <= AFTER_SUCCESS
    listed = as_json(xgen("jobs", "list", "--status", "succeeded", "--json"))
    assert job["job_id"] in [j["job_id"] for j in listed]
    assert "cli-model" in xgen("jobs", "list").stdout

    model_id = job["model_id"]
    assert model_id in [m["model_id"] for m in as_json(xgen("models", "list", "--json"))]
    assert as_json(xgen("models", "show", model_id, "--json"))["num_boost_round"] == 15
    saved = tmp_path / "m.ubj"
    assert xgen("models", "download", model_id, "-o", str(saved)).exit_code == 0
    assert saved.stat().st_size > 0
    rows = csv_file(tmp_path, frame.drop(columns="label").head(12), "rows.csv")
    predicted = as_json(xgen("models", "predict", model_id, str(rows), "--json"))
    assert len(predicted["predictions"]) == 12
    out = tmp_path / "predictions.csv"
    assert xgen("models", "predict", model_id, str(rows), "-o", str(out)).exit_code == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["prediction", "p_no", "p_yes"] and len(written) == 12
    assert xgen("models", "show", "0" * 32).exit_code == 4


def test_a_failed_job_exits_1_with_its_error(xgen: Any, tmp_path: Path) -> None:
    dataset_id = as_json(
        xgen("datasets", "upload", str(csv_file(tmp_path, single_class_frame())), "--json")
    )["dataset_id"]
    result = xgen(
        "train", "-d", dataset_id, "-t", "label", "-n", "bad", "--rounds", "3", "--wait", "--json"
    )
    assert result.exit_code == 1
    assert as_json(result)["error"]["error_type"] == "SingleClass"
    assert json.loads(result.stderr)["error"] == "job_failed"


def test_watch_times_out_with_5_and_a_cancelled_job_exits_1(
    xgen: Any, tmp_path: Path, server: LocalServer, api_key: str
) -> None:
    dataset_id = as_json(
        xgen("datasets", "upload", str(csv_file(tmp_path, classification_frame(200))), "--json")
    )["dataset_id"]
    submitted = xgen(
        "train",
        "-d",
        dataset_id,
        "-t",
        "label",
        "-n",
        "long",
        "--rounds",
        "100000",
        "-p",
        "nthread=1",
        "-p",
        "eta=0.001",
        "--json",
    )
    assert submitted.exit_code == 0, submitted.output
    job_id = as_json(submitted)["job_id"]
    assert xgen("jobs", "watch", job_id, "--timeout", "0.5").exit_code == 5
    with Client(server.url, api_key) as client:
        job = client.jobs.get(job_id)
        wait_for(lambda: running_with_rounds(job), 120, 0.2, "the job to run")
    cancelled = xgen("jobs", "cancel", job_id, "--json")
    assert cancelled.exit_code == 0 and as_json(cancelled)["cancel_requested"] is True
    watched = xgen("jobs", "watch", job_id, "--json")
    assert watched.exit_code == 1
    assert as_json(watched)["status"] == "cancelled"
    assert xgen("jobs", "cancel", job_id).exit_code == 3  # 409: already finished


def test_cv_importance_and_explained_predictions(
    xgen: Any, tmp_path: Path, server: LocalServer, api_key: str
) -> None:
    frame = classification_frame(150)
    dataset_id = as_json(xgen("datasets", "upload", str(csv_file(tmp_path, frame)), "--json"))[
        "dataset_id"
    ]
    ran = xgen(
        "cv", "-d", dataset_id, "-t", "label", "-n", "cv-cli", "--folds", "3", "--refit",
        "--rounds", "5", "-p", "nthread=1", "--wait", "--json",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    job = as_json(ran)
    assert job["job_type"] == "cv" and job["result"]["folds"] == 3
    model_id = job["result"]["model_id"]
    with Client(server.url, api_key) as api:
        kept = shap_summary(api, model_id)  # just after the job's success
    shap = as_json(xgen("models", "importance", model_id, "--type", "shap", "--json"))
    assert shap == kept
    assert set(shap) == {"x1", "x2", "color"}
    human = xgen("models", "importance", model_id)
    assert human.exit_code == 0 and "gain" in human.stdout
    rows = csv_file(tmp_path, frame.drop(columns="label").head(6), "rows.csv")
    out = tmp_path / "explained.csv"
    done = xgen("models", "predict", model_id, str(rows), "--explain", "-o", str(out))
    assert done.exit_code == 0, done.output
    written = pd.read_csv(out)
    contributions = [c for c in written.columns if c.startswith("contribution_")]
    assert contributions == [f"contribution_{c}" for c in ("x1", "x2", "color", "bias")]


def test_train_a_quantile_model_with_task_fields_and_write_its_levels(
    xgen: Any, tmp_path: Path
) -> None:
    frame = (
        classification_frame(200)
        .assign(y=lambda f: f["x1"] * 2, w=1.0, label=None)
        .drop(columns="label")
    )
    dataset_id = as_json(xgen("datasets", "upload", str(csv_file(tmp_path, frame)), "--json"))[
        "dataset_id"
    ]
    trained = xgen(
        "train",
        "-d",
        dataset_id,
        "-t",
        "y",
        "-n",
        "q",
        "--task",
        "regression",
        "--weight-column",
        "w",
        "--rounds",
        "5",
        "-p",
        "objective=reg:quantileerror",
        "-p",
        "quantile_alpha=[0.1, 0.9]",
        "--wait",
        "--json",
    )
    assert trained.exit_code == 0, trained.output
    job = as_json(trained)
    assert {"name": "w", "reason": "role", "detail": "used as weight_column"} in job["result"][
        "excluded_features"
    ]
    assert set(job["result"]["metrics"]) == {"pinball@0.1", "pinball@0.9", "coverage@0.1-0.9"}
    rows = csv_file(tmp_path, frame.drop(columns=["y", "w"]).head(5), "rows.csv")
    out = tmp_path / "levels.csv"
    assert xgen("models", "predict", job["model_id"], str(rows), "-o", str(out)).exit_code == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["quantile_0.1", "quantile_0.9"] and len(written) == 5
    assert (written["quantile_0.1"] <= written["quantile_0.9"]).all()
    refused = xgen("train", "-d", dataset_id, "-t", "y", "-n", "r", "--task", "ranking", "--json")
    assert refused.exit_code != 0 and "group_column" in refused.stderr


def test_compare_aliases_batch_prediction_and_report(xgen: Any, tmp_path: Path) -> None:
    frame = classification_frame(120)
    dataset_id = as_json(xgen("datasets", "upload", str(csv_file(tmp_path, frame)), "--json"))[
        "dataset_id"
    ]
    jobs = []
    for depth in ("2", "3"):
        trained = xgen(
            "train", "-d", dataset_id, "-t", "label", "-n", "ranked", "--rounds", "4",
            "-p", f"max_depth={depth}", "-p", "nthread=1", "--wait", "--json",
        )  # fmt: skip
        assert trained.exit_code == 0, trained.output
        jobs.append(as_json(trained))
    ids = [j["job_id"] for j in jobs]

    compared = as_json(xgen("jobs", "compare", *ids, "--json"))
    rows = {(r["section"], r["name"]): r for r in compared["rows"]}
    assert rows[("param", "max_depth")] == {
        "section": "param", "name": "max_depth", "values": [2, 3], "differs": True,
    }  # fmt: skip
    assert rows[("setting", "target")]["values"] == ["label", "label"]
    assert not rows[("setting", "target")]["differs"]
    assert any(section == "metric" for section, _ in rows)
    only = as_json(xgen("jobs", "compare", *ids, "--diff", "--json"))["rows"]
    assert only and all(r["differs"] for r in only)
    human = xgen("jobs", "compare", *ids)
    assert human.exit_code == 0 and "≠ max_depth" in human.stdout
    assert "≠ target" not in human.stdout and "target" in human.stdout
    assert xgen("jobs", "compare", ids[0]).exit_code == 2
    assert xgen("jobs", "compare", ids[0], "0" * 32).exit_code == 4

    moved = as_json(xgen("models", "alias", "ranked", "prod", "2", "--json"))
    assert (moved["from_version"], moved["to_version"]) == (None, 2)
    assert xgen("models", "alias", "ranked", "prod", "1").exit_code == 0
    back = as_json(xgen("models", "alias", "ranked", "prod", "--rollback", "--json"))
    assert (back["from_version"], back["to_version"]) == (1, 2)
    shown = as_json(xgen("models", "alias", "ranked", "--json"))
    assert shown["aliases"] == {"prod": 2} and len(shown["history"]) == 3
    table = xgen("models", "alias", "ranked")
    assert table.exit_code == 0 and "Alias moves" in table.stdout and "prod" in table.stdout
    assert (
        as_json(xgen("models", "show", "ranked@prod", "--json"))["model_id"] == jobs[1]["model_id"]
    )
    assert xgen("models", "alias", "ranked", "prod").exit_code == 2  # no action
    assert xgen("models", "alias", "ranked", "prod", "9").exit_code == 4  # no version 9

    scored = tmp_path / "scored.csv"
    batch = xgen(
        "predict-batch", "ranked@prod", dataset_id, "--explain", "-o", str(scored), "--json"
    )
    assert batch.exit_code == 0, batch.output
    summary = as_json(batch)
    assert summary["status"] == "succeeded" and summary["rows"] == 120
    written = pd.read_csv(scored)
    assert len(written) == 120 and "contribution_bias" in written.columns
    assert set(summary["prediction_columns"]) <= set(written.columns)
    queued = as_json(xgen("predict-batch", "ranked@prod", dataset_id, "--json"))
    assert queued["job_type"] == "predict" and queued["job_id"] != summary["job_id"]

    page = tmp_path / "report.html"
    reported = xgen("report", "ranked@prod", "-o", str(page), "--json")
    assert reported.exit_code == 0, reported.output
    assert as_json(reported)["model_id"] == jobs[1]["model_id"]
    assert "<html" in page.read_text().lower()


def test_tune_follows_a_live_table_and_jobs_trials_reads_the_leaderboard(
    xgen: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = classification_frame(120)
    dataset_id = as_json(xgen("datasets", "upload", str(csv_file(tmp_path, frame)), "--json"))[
        "dataset_id"
    ]
    # a terminal, as Rich sees it: the live table draws every refresh, not only the last
    for name, value in (("TTY_COMPATIBLE", "1"), ("TTY_INTERACTIVE", "1"), ("NO_COLOR", "1")):
        monkeypatch.setenv(name, value)
    tuned = xgen(
        "tune", "-d", dataset_id, "-t", "label", "-n", "cli-tuned", "--rounds", "5",
        "-s", "eta=float:0.05:0.5:log", "-s", "max_depth=int:1:3",
        "-s", 'grow_policy={"type": "categorical", "choices": ["depthwise"]}',
        "--trials", "3", "--parallel", "2", "--strategy", "random", "--no-prune",
        "-p", "nthread=1", "--wait", "--interval", "0.2",
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    # the live table was redrawn on stderr while trials were still queued or running
    frames = tuned.stderr
    assert frames.count("Search") >= 2 and ("queued" in frames or "running" in frames)
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        monkeypatch.delenv(name)
    # the final leaderboard on stdout: a row per trial, then the best model
    assert "Search" in tuned.stdout and "validation-logloss" in tuned.stdout
    assert "3 succeeded" in tuned.stdout and "best model" in tuned.stdout
    listed = as_json(xgen("jobs", "list", "--json"))
    search = next(j for j in listed if j["job_type"] == "tune" and j["model_name"] == "cli-tuned")
    board = as_json(xgen("jobs", "trials", search["job_id"], "--json"))
    assert board["status"] == "succeeded" and len(board["trials"]) == 3
    for t in board["trials"]:
        assert t["status"] == "succeeded" and t["rounds"] == 5
        assert 0.05 <= t["params"]["eta"] <= 0.5 and 1 <= t["params"]["max_depth"] <= 3
        assert t["params"]["grow_policy"] == "depthwise"
        assert f"{t['number']} " in tuned.stdout.split("Search", 1)[1]
    followed = as_json(xgen("jobs", "trials", search["job_id"], "--wait", "--json"))
    assert followed["job_id"] == search["job_id"] and followed["status"] == "succeeded"
    assert (
        followed["model_id"] == board["best"]["model_id"] == followed["trials"]["best"]["model_id"]
    )

    # exit codes: a spec the CLI cannot read (2), one the service refuses (3)
    bad = xgen("tune", "-d", dataset_id, "-t", "label", "-n", "x", "-s", "eta=float:1")
    assert bad.exit_code == 2
    refused = xgen(
        "tune", "-d", dataset_id, "-t", "label", "-n", "x", "-s", "max_depth=int:1:99", "--json"
    )
    assert refused.exit_code == 3 and "max_depth" in refused.stderr
    # a search still running at --timeout (5), then cancelled (1)
    long = xgen(
        "tune", "-d", dataset_id, "-t", "label", "-n", "long-search", "--rounds", "100000",
        "-s", "max_depth=int:6:8", "--trials", "2", "-p", "nthread=1", "-p", "eta=0.001",
        "--json",
    )  # fmt: skip
    assert long.exit_code == 0, long.output
    long_id = as_json(long)["job_id"]
    assert as_json(long)["status"] == "running"
    assert xgen("jobs", "trials", long_id, "--wait", "--timeout", "0.3").exit_code == 5
    assert xgen("jobs", "cancel", long_id, "--json").exit_code == 0
    ended = xgen("jobs", "trials", long_id, "--wait", "--json")
    assert ended.exit_code == 1 and json.loads(ended.stderr)["error"] == "job_cancelled"
    assert as_json(ended)["status"] == "cancelled"
