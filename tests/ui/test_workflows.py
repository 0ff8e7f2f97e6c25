"""The dashboard's workflows in real headless Chromium: upload a file and see its schema,
train from the form, compare two jobs, read importance, move and roll back an alias, run a
small search and follow its leaderboard, explain a typed row, predict a dataset in a batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect

from tests.live import FAST, csv_file
from tests.support import classification_frame, shap_summary, wait_for
from xgenerator.cli.demo import LocalServer
from xgenerator.client import Client

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def account(server: LocalServer) -> Iterator[tuple[Client, str]]:
    user = Client.create_user(server.url, "erin", "erin@example.com")
    with Client(server.url, user.api_key) as client:
        yield client, user.api_key


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab that fails the test on a script error or a CSP violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console: {message.text}")

    tab.on("console", console)
    yield tab
    context.close()
    assert not problems, problems


def sign_in(page: Page, server: LocalServer, key: str, path: str) -> None:
    page.goto(f"{server.url}{path}")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")  # the keyboard is enough
    expect(page.locator("#who")).to_have_text("erin")


def test_compare_page_takes_only_2_to_10_job_ids(server: LocalServer) -> None:
    one = httpx.get(f"{server.url}/ui/compare", params={"ids": "a" * 32})
    assert one.status_code == 422
    eleven = ",".join(["a" * 32] * 11)
    assert httpx.get(f"{server.url}/ui/compare", params={"ids": eleven}).status_code == 422
    hostile = httpx.get(f"{server.url}/ui/compare", params={"ids": f"{'a' * 32},..%2Fusers"})
    assert hostile.status_code == 404
    ok = httpx.get(f"{server.url}/ui/compare", params={"ids": f"{'a' * 32},{'b' * 32}"})
    assert ok.status_code == 200 and "script-src 'self'" in ok.headers["content-security-policy"]


def test_upload_then_train_from_the_form(
    page: Page,
    server: LocalServer,
    account: tuple[Client, str],
    tmp_path: Path,
    artifacts: Path,
) -> None:
    client, key = account
    sign_in(page, server, key, "/ui/datasets")
    upload = csv_file(tmp_path, classification_frame(150), "churn.csv")
    page.get_by_label("CSV or Parquet file").set_input_files(str(upload))
    expect(page.locator("#upload-status")).to_contain_text("churn.csv")
    # The page navigates away once the upload is in: what the progress bar showed is kept
    # in this tab's sessionStorage to be read afterwards.
    page.evaluate(
        """() => new MutationObserver(() => {
            const bar = document.querySelector("#upload-progress");
            if (!bar.hidden) sessionStorage.setItem("seen-progress", String(bar.value));
        }).observe(document.querySelector("#upload-status"), { childList: true })"""
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/ui/datasets/*?uploaded=1", timeout=TIMEOUT_MS)
    assert page.evaluate("sessionStorage.getItem('seen-progress')") == "100"
    dataset_id = page.url.split("/ui/datasets/")[1].split("?")[0]
    assert client.datasets.get(dataset_id).row_count == 150

    schema = page.locator("#dataset-schema tbody")
    expect(schema.locator("tr")).to_have_count(4)
    expect(schema.locator("tr[data-column=color] td").nth(2)).to_have_text("categorical feature")
    expect(schema.locator("tr[data-column=label] td").nth(2)).to_have_text("target")
    target = page.get_by_label("Target (column to predict)")
    task = page.get_by_label("Task")
    expect(task).to_have_value("classification")  # label is text
    target.select_option("x1")
    expect(task).to_have_value("regression")  # x1 is numeric
    expect(schema.locator("tr[data-column=x1] td").nth(2)).to_have_text("target")
    expect(schema.locator("tr[data-column=label] td").nth(2)).to_have_text("categorical feature")
    target.select_option("label")
    expect(page.get_by_label("Max depth (1–16)")).to_have_attribute("max", "16")
    page.get_by_label("Boosting rounds (1–5000)").fill("6")
    page.get_by_label("Max depth (1–16)").fill("2")
    page.get_by_label("Model name").fill("churn")
    params = page.get_by_label("Advanced XGBoost parameters (JSON)")
    params.fill('{"eta": 0.1}')
    page.get_by_role("button", name="Train").click()
    expect(page.locator("#train-error")).to_contain_text("eta")  # never overridden silently
    params.fill("{not json")
    page.get_by_role("button", name="Train").click()
    expect(page.locator("#train-error")).to_contain_text("not valid JSON")
    params.fill('{"nthread": 1}')
    page.screenshot(path=str(artifacts / "train-form.png"), full_page=True)
    page.get_by_role("button", name="Train").click()
    page.wait_for_url("**/ui/jobs/*", timeout=TIMEOUT_MS)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TIMEOUT_MS)
    job = client.jobs.get(page.url.rsplit("/", 1)[1]).info
    model = client.models.get(job.model_id or "")
    assert (model.task_type, model.target, model.num_boost_round) == (
        "classification",
        "label",
        6,
    )
    assert model.params is not None and model.params["max_depth"] == 2


def test_compare_two_jobs_then_move_and_roll_back_an_alias(
    page: Page, server: LocalServer, account: tuple[Client, str], artifacts: Path
) -> None:
    client, key = account
    dataset = client.datasets.upload(classification_frame(120), "compared")
    infos = [
        client.train(
            dataset,
            "label",
            model_name="rival",
            num_boost_round=rounds,
            xgb_params={**FAST, "max_depth": depth},
        ).wait(timeout=120, progress=False)
        for rounds, depth in ((5, 2), (8, 3))
    ]
    sign_in(page, server, key, "/ui")
    compare = page.get_by_role("button", name="Compare selected")
    expect(compare).to_be_disabled()
    for info in infos:
        page.get_by_label(f"Compare rival ({info.job_id})").check()
    expect(compare).to_have_text("Compare selected (2)")
    compare.click()
    page.wait_for_url("**/ui/compare?ids=*")
    assert sorted(page.url.split("ids=")[1].split(",")) == sorted(i.job_id for i in infos)
    rows = page.locator("#compare-table tbody")
    expect(rows.locator("tr[data-row='param:max_depth']")).to_have_class("differs")
    expect(rows.locator("tr[data-row='param:max_depth'] td").nth(1)).to_have_text("2")
    expect(rows.locator("tr[data-row='setting:num_boost_round']")).to_have_class("differs")
    expect(rows.locator("tr[data-row='setting:target']")).not_to_have_class("differs")
    curves = page.locator("#curve path.series")
    expect(curves).to_have_count(2)
    assert curves.nth(0).get_attribute("data-points") == "5"
    assert curves.nth(1).get_attribute("data-points") == "8"
    page.screenshot(path=str(artifacts / "compare.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1

    page.set_viewport_size({"width": 1280, "height": 900})
    shap = shap_summary(client, infos[1].model_id or "")  # kept just after the success
    page.goto(f"{server.url}/ui/models/{infos[1].model_id}")
    importance = page.locator("#importance tbody tr")
    expect(importance).to_have_count(3)
    page.get_by_label("Type").select_option("shap")
    expect(importance.first.locator("td").first).to_have_text(next(iter(shap)))
    page.get_by_label("Alias", exact=True).fill("prod")
    page.get_by_label("Version").select_option("1")
    page.get_by_role("button", name="Move alias").click()
    expect(page.locator("#aliases tr[data-alias=prod] td").nth(1)).to_have_text("v1")
    page.get_by_label("Version").select_option("2")
    page.get_by_role("button", name="Move alias").click()
    expect(page.locator("#aliases tr[data-alias=prod] td").nth(1)).to_have_text("v2")
    assert client.models.get("rival@prod").model_id == infos[1].model_id
    page.get_by_role("button", name="Roll back prod").click()
    expect(page.locator("#aliases tr[data-alias=prod] td").nth(1)).to_have_text("v1")
    expect(page.locator("#alias-history li")).to_have_count(3)
    assert client.registered_models.get("rival").aliases == {"prod": 1}
    page.screenshot(path=str(artifacts / "model-aliases.png"), full_page=True)


def test_drop_a_file_to_upload_it_at_phone_width(
    page: Page, server: LocalServer, account: tuple[Client, str], artifacts: Path
) -> None:
    client, key = account
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, server, key, "/ui/datasets")
    text = classification_frame(40).to_csv(index=False)
    dropped = page.evaluate_handle(
        """(text) => {
            const data = new DataTransfer();
            data.items.add(new File([text], "dropped.csv", { type: "text/csv" }));
            return data;
        }""",
        text,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": dropped})
    expect(page.locator("#upload-status")).to_contain_text("dropped.csv")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    page.screenshot(path=str(artifacts / "phone-upload.png"), full_page=True)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/ui/datasets/*?uploaded=1", timeout=TIMEOUT_MS)
    dataset_id = page.url.split("/ui/datasets/")[1].split("?")[0]
    assert client.datasets.get(dataset_id).dataset_name == "dropped"
    expect(page.locator("#dataset-schema tbody tr")).to_have_count(4)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    page.screenshot(path=str(artifacts / "phone-dataset.png"), full_page=True)


PHONE: ViewportSize = {"width": 390, "height": 844}


def overflow(page: Page) -> int:
    """How far the page body scrolls sideways (0: it fits the viewport)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def focus_is_visible(page: Page) -> bool:
    style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    return style not in ("none", "")


def test_search_page_takes_only_a_job_id(server: LocalServer) -> None:
    for hostile in ("..%5Cjobs", "%22%3E%3Cscript%3E", "A" * 32):
        response = httpx.get(f"{server.url}/ui/searches/{hostile}")
        assert response.status_code == 404, hostile
        assert "<script>" not in response.text
    ok = httpx.get(f"{server.url}/ui/searches/{'a' * 32}")
    assert ok.status_code == 200 and 'data-page="search"' in ok.text


def test_start_a_search_from_the_dataset_page(
    page: Page, server: LocalServer, account: tuple[Client, str], artifacts: Path
) -> None:
    client, key = account
    dataset = client.datasets.upload(classification_frame(150), "to-tune")
    sign_in(page, server, key, f"/ui/datasets/{dataset.dataset_id}")
    page.get_by_label("Boosting rounds (1–5000)").fill("5")
    page.get_by_label("Model name").fill("tuned")
    page.get_by_label("Advanced XGBoost parameters (JSON)").fill('{"nthread": 1}')
    page.get_by_label("max_depth from").fill("1")
    page.get_by_label("max_depth to").fill("3")
    page.get_by_label("eta from").fill("0.05")  # eta stays ticked, on a log scale
    page.get_by_label("Metric (validation, every round)").select_option("auc")
    expect(page.get_by_label("Strategy")).to_have_value("tpe")
    page.get_by_label("At once (1–20)").fill("2")
    trials = page.get_by_label("Trials (1–200)")
    trials.fill("2")
    trials.press("Enter")  # the keyboard submits the form
    page.wait_for_url("**/ui/searches/*", timeout=TIMEOUT_MS)
    search_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#search-status")).to_have_text("succeeded", timeout=TIMEOUT_MS)

    board = client.trials(search_id)
    config = client.request("GET", f"/jobs/{search_id}")["config"]
    # what the form asked for, and only that: max_depth is searched, not also fixed
    space = {
        name: {k: spec[k] for k in ("type", "low", "high", "log")}
        for name, spec in config["search"]["search_space"].items()
    }
    assert space == {
        "max_depth": {"type": "int", "low": 1, "high": 3, "log": False},
        "eta": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
    }
    assert config["search"]["metric"] == "validation-auc"
    assert not {"max_depth", "eta"} & set(config["train"]["xgb_params"])
    assert config["train"]["xgb_params"]["eval_metric"] == "auc"
    assert (config["search"]["max_trials"], config["search"]["max_parallel"]) == (2, 2)
    assert config["search"]["strategy"] == "tpe"

    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(2)
    # best first, as the API ranks them, the best row marked
    expect(rows.first).to_have_attribute("data-trial", str(board["trials"][0]["number"]))
    expect(rows.first).to_have_class("best")
    best = board["best"]
    expect(page.locator("#best-params tr[data-param=max_depth] td")).to_have_text(
        str(best["params"]["max_depth"])
    )
    expect(page.locator("#best-params tr[data-param=eta] td")).to_have_text(
        f"{best['params']['eta']:.4f}"
    )
    expect(page.locator("#best-summary")).to_contain_text(f"Trial {best['number']}")
    # every trial's curve on one chart, each as long as its history
    expect(page.locator("#metric")).to_have_value("auc")
    curves = page.locator("#curve path.series")
    expect(curves).to_have_count(2)
    for trial in board["trials"]:
        history = client.jobs.get(trial["job_id"]).history()
        curve = page.locator(f"#curve path[data-run='{trial['number']}']")
        expect(curve).to_have_attribute("data-points", str(len(history)))
    expect(page.locator(f"#curve path[data-run='{best['number']}']")).to_have_class(
        f"series run run-{best['number'] % 10} best"
    )
    page.screenshot(path=str(artifacts / "search.png"), full_page=True)
    page.set_viewport_size(PHONE)
    expect(page.locator("#leaderboard tbody tr")).to_have_count(2)
    assert overflow(page) <= 1
    page.screenshot(path=str(artifacts / "phone-search.png"), full_page=True)

    # the jobs list leads to the search's page, and so does a trial's page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server.url}/ui")
    link = page.locator(f"tr[data-job-id='{search_id}'] a")
    expect(link).to_have_attribute("href", f"/ui/searches/{search_id}")
    page.goto(f"{server.url}/ui/jobs/{board['trials'][0]['job_id']}")
    expect(page.locator("#search-link a")).to_have_attribute("href", f"/ui/searches/{search_id}")


def test_search_page_is_live_and_cancels_the_search(
    page: Page, server: LocalServer, account: tuple[Client, str]
) -> None:
    client, key = account
    dataset = client.datasets.upload(classification_frame(150), "tune-long")
    search = client.tune(
        dataset,
        "label",
        model_name="tuned-long",
        search_space={"max_depth": {"type": "int", "low": 1, "high": 3}},
        max_trials=2,
        max_parallel=1,
        num_boost_round=100_000,  # runs until cancelled
        xgb_params={**FAST, "eta": 0.001},
        prune=False,
    )
    sign_in(page, server, key, f"/ui/searches/{search.id}")
    expect(page.locator("#search-status")).to_have_text("running")
    row = page.locator("#leaderboard tbody tr[data-trial='0']")
    expect(row).to_contain_text("running", timeout=TIMEOUT_MS)
    # the running trial's curve grows without a reload
    wait_for(lambda: last_round(page) >= 3, TIMEOUT_MS / 1000, 0.2, "the trial's curve")
    seen = last_round(page)
    wait_for(lambda: last_round(page) > seen, TIMEOUT_MS / 1000, 0.2, "the curve to grow")
    cancel = page.get_by_role("button", name="Cancel search")
    cancel.focus()
    assert focus_is_visible(page)
    cancel.press("Enter")
    expect(page.locator("#search-status")).to_have_text("cancelled", timeout=TIMEOUT_MS)
    expect(row).to_contain_text("cancelled")
    expect(cancel).to_be_hidden()
    assert search.refresh().status == "cancelled"
    assert client.trials(search.id)["counts"]["cancelled"] == 1


def last_round(page: Page) -> int:
    """The last round drawn of trial 0's curve (its points are thinned to a few hundred)."""
    curve = page.locator("#curve path[data-run='0']")
    return int(curve.get_attribute("data-last-round") or 0) if curve.count() else 0


@pytest.fixture(scope="module")
def scored_model(account: tuple[Client, str]) -> str:
    """A small binary classifier (x1, x2 numeric; color categorical)."""
    client, _ = account
    dataset = client.datasets.upload(classification_frame(150), "to-explain")
    info = client.train(
        dataset, "label", model_name="explained", num_boost_round=10, xgb_params=FAST
    ).wait(timeout=120, progress=False)
    assert info.model_id is not None
    return info.model_id


def test_explain_a_typed_row_as_a_waterfall_to_the_margin(
    page: Page,
    server: LocalServer,
    account: tuple[Client, str],
    scored_model: str,
    artifacts: Path,
) -> None:
    client, key = account
    sign_in(page, server, key, f"/ui/models/{scored_model}")
    # one field per input column of the model's signature
    expect(page.locator("#explain-form input, #explain-form select")).to_have_count(3)
    page.get_by_label("color").select_option("red")
    page.get_by_label("x1").fill("0.7")
    x2 = page.get_by_label("x2")
    x2.fill("6.5")
    x2.press("Enter")
    steps = page.locator("#waterfall g.step")
    expect(steps).to_have_count(5)  # the bias, three features, the margin

    row = {"x1": 0.7, "x2": 6.5, "color": "red"}
    margin = client.predict(scored_model, [row], output="margin").predictions[0]
    expected = client.predict(scored_model, [row], explain=True).contributions
    assert expected is not None
    total = float(page.locator("#waterfall g.total").get_attribute("data-total") or "nan")
    assert abs(total - margin) < 1e-5
    # each bar starts where the previous ended, from the bias, the largest contributions first
    bars = [
        {k: steps.nth(i).get_attribute(f"data-{k}") or "" for k in ("name", "start", "end")}
        for i in range(4)
    ]
    assert bars[0]["name"] == "bias" and float(bars[0]["start"]) == 0
    for before, after in zip(bars, bars[1:], strict=False):
        assert float(after["start"]) == float(before["end"])
    names = [b["name"] for b in bars[1:]]
    assert names == sorted(["x1", "x2", "color"], key=lambda n: -abs(float(expected[0][n])))
    for bar in bars[1:]:
        width = float(bar["end"]) - float(bar["start"])
        assert abs(width - float(expected[0][bar["name"]])) < 1e-6
    expect(page.locator("#explain-check")).to_contain_text("add up to")
    expect(page.locator("#explain-prediction")).to_contain_text("log-odds of “yes”")
    expect(page.locator("#explain-table tr[data-feature=color] td").first).to_have_text("red")
    page.screenshot(path=str(artifacts / "model-explain.png"), full_page=True)
    page.locator("#explain-card").screenshot(path=str(artifacts / "explain-card.png"))
    page.set_viewport_size(PHONE)
    expect(page.locator("#waterfall g.total")).to_be_visible()
    assert overflow(page) <= 1
    page.screenshot(path=str(artifacts / "phone-model-explain.png"), full_page=True)


def test_explain_a_row_of_a_three_class_model_class_by_class(
    page: Page, server: LocalServer, account: tuple[Client, str]
) -> None:
    client, key = account
    frame = classification_frame(150)
    frame["label"] = pd.cut(frame["x1"], [-99, -0.5, 0.5, 99], labels=["low", "mid", "high"])
    frame["label"] = frame["label"].astype(str)
    model_id = (
        client.train(
            client.datasets.upload(frame, "three-classes"),
            "label",
            model_name="three",
            num_boost_round=4,
            xgb_params=FAST,
        )
        .wait(timeout=120, progress=False)
        .model_id
    )
    assert model_id is not None
    sign_in(page, server, key, f"/ui/models/{model_id}")
    page.get_by_label("x1").fill("1.5")
    page.get_by_label("x1").press("Enter")  # x2 and color left empty: missing values
    row = {"x1": 1.5, "x2": None, "color": None}
    margins = client.predict(model_id, [row], output="margin").predictions[0]
    predicted = client.predict(model_id, [row]).predictions[0]
    chosen = page.get_by_label("Class")
    expect(chosen).to_have_value(str(predicted))  # the predicted class's contributions first
    for label in ("low", "mid", "high"):
        chosen.select_option(label)
        expect(page.locator("#explain-prediction")).to_contain_text(f"margin of “{label}”")
        total = page.locator("#waterfall g.total").get_attribute("data-total")
        assert abs(float(total or "nan") - margins[label]) < 1e-5
    expect(page.locator("#explain-table tr[data-feature=color] td").first).to_have_text("missing")


def test_batch_prediction_from_a_dataset_with_a_download_link(
    browser: Browser,
    server: LocalServer,
    account: tuple[Client, str],
    scored_model: str,
    tmp_path: Path,
    artifacts: Path,
) -> None:
    client, key = account
    scored = client.datasets.upload(classification_frame(57, seed=3), "to-score")
    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    try:
        page = context.new_page()
        sign_in(page, server, key, f"/ui/models/{scored_model}")
        page.get_by_label("Dataset").select_option(scored.dataset_id)
        submit = page.get_by_role("button", name="Predict the dataset")
        submit.focus()
        assert focus_is_visible(page)
        submit.press("Enter")
        link = page.locator("#batch-download")
        expect(link).to_be_visible(timeout=TIMEOUT_MS)
        expect(link).to_contain_text("57 rows")
        assert overflow(page) <= 1
        page.screenshot(path=str(artifacts / "phone-batch-prediction.png"), full_page=True)
        with page.expect_download() as download:
            link.click()
        saved = tmp_path / "predictions.parquet"
        download.value.save_as(saved)
        frame = pd.read_parquet(saved)
        assert len(frame) == 57
        assert set(frame.columns) >= {"x1", "x2", "color", "prediction"}
        job_id = (link.get_attribute("href") or "").split("/")[2]
        job = client.request("GET", f"/jobs/{job_id}")
        assert job["job_type"] == "predict" and job["config"]["dataset_id"] == scored.dataset_id
    finally:
        context.close()
