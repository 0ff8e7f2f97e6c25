"""The dashboard's workflows in real headless Chromium: upload a file and see its schema,
train from the form, compare two jobs, read importance, move and roll back an alias."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.live import FAST, csv_file
from tests.support import classification_frame
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
    page.goto(f"{server.url}/ui/models/{infos[1].model_id}")
    importance = page.locator("#importance tbody tr")
    expect(importance).to_have_count(3)
    page.get_by_label("Type").select_option("shap")
    expect(importance.first.locator("td").first).to_have_text(
        next(iter(client.models.importance(infos[1].model_id or "", "shap")))
    )
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
