"""rk view's page in a real browser (headless Debian Chromium through selenium): a run loads
with its charts, the samples table filters, a sample opens, two runs compare, and a response
made of HTML and script is shown as text, served and exported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit.view import create_app, export_html, load_run

from ..conftest import LiveServer, require_integration
from ._browser import CHROMEDRIVER, CHROMIUM, chromium
from ._synthetic import HOSTILE, write_run

HOSTILE_SAMPLE = 2 * 4  # prompt 2, sample 0: rows are written prompt by prompt, 4 samples each


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [
        write_run(root / "a", hostile_prompt=2, env_prompt=7),
        write_run(root / "b", skill=0.9, seed=1, model="model-b"),
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_integration(CHROMIUM, CHROMEDRIVER, modules=("selenium",))
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def served(runs: list[Path]) -> Iterator[str]:
    with LiveServer(create_app([load_run(p) for p in runs])) as server:
        yield server.url


def open_page(driver: Any, url: str) -> None:
    """Load ``url`` and wait until the page has rendered its route."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait_ready(driver)
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def wait_ready(driver: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script(
            "return document.body.getAttribute('data-ready') === location.hash"
        )
    )


def text(driver: Any) -> str:
    return str(driver.find_element("tag name", "main").text)


def test_a_run_at_a_glance(browser: Any, served: str) -> None:
    open_page(browser, served + "/#/run/0")
    page = text(browser)
    assert "a (model-a)" in page
    assert "120\nsamples" in page
    exact = browser.find_element("css selector", '[data-reward="exact_match"]')
    badges = [b.text for b in exact.find_elements("css selector", ".badge")]
    assert {"error 1", "timeout 1", "skipped 1"} <= set(badges)  # failures, never zeros
    assert len(exact.find_elements("css selector", "canvas")) == 2  # pass@k and histogram
    assert "pass^k" in exact.text
    assert "ab" * 32 in page


def test_filter_the_samples_table(browser: Any, served: str) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    open_page(browser, served + "/#/run/0/samples")
    assert browser.find_element("id", "count").text == "1-50 of 120"
    Select(browser.find_element("name", "status")).select_by_value("timeout")
    wait_ready(browser)
    assert browser.find_element("id", "count").text == "1-2 of 2"
    prompts = {
        r.get_attribute("data-sample")
        for r in browser.find_elements("css selector", "tr[data-sample]")
    }
    assert len(prompts) == 2
    browser.find_element("css selector", "button").click()  # clear
    wait_ready(browser)
    search = browser.find_element("name", "q")
    search.send_keys("don't know", Keys.ENTER)
    wait_ready(browser)
    rows = browser.find_elements("css selector", "tr[data-sample] td.preview")
    assert rows
    assert all("I don't know" in r.text for r in rows)


def test_open_a_sample(browser: Any, served: str) -> None:
    open_page(browser, served + "/#/run/0/samples?prompt=p00001")
    browser.find_element("css selector", "tr[data-sample]").click()
    wait_ready(browser)
    page = text(browser)
    assert "prompt p00001 · sample 0" in page
    assert "What is question 1?" in page
    assert "You are a careful assistant." in page
    assert "tool call: calculator" in page  # generation.tool_calls
    assert "exact_match" in page
    assert "brevity" in page
    assert "chars" in page
    assert "Ground truth" in page
    assert "attempts" in page
    assert "finish reason" in page
    browser.find_element("link text", "all samples of this prompt").click()
    wait_ready(browser)
    assert len(browser.find_elements("css selector", ".sample")) == 4


def test_compare_two_runs(browser: Any, served: str) -> None:
    open_page(browser, served + "/#/compare/0/1")
    rows = browser.find_elements("css selector", "#compare tr[data-reward]")
    assert [r.get_attribute("data-reward") for r in rows] == ["exact_match", "brevity"]
    assert "paired bootstrap over prompts" in text(browser)
    changed = browser.find_elements("css selector", "#changed tr[data-prompt]")
    assert changed
    prompt = changed[0].get_attribute("data-prompt")
    changed[0].click()
    wait_ready(browser)
    assert f"Prompt {prompt}: A and B" in text(browser)
    for side in ("a", "b"):
        column = browser.find_element("css selector", f'[data-side="{side}"]')
        assert len(column.find_elements("css selector", ".sample")) == 4


def _assert_shown_as_text(driver: Any, *, markdown: bool = True) -> None:
    assert driver.execute_script("return window.__rkInjected") is None
    main = driver.find_element("tag name", "main")
    # (markdown may embolden the __...__ between the two __rkInjected: only the tags matter)
    assert "<script>window." in main.text
    assert "<img src=x onerror=" in main.text
    assert "<b>bold?</b>" in main.text
    assert main.find_elements("css selector", "img, script, b") == []
    if markdown:
        assert main.find_elements("css selector", "strong")  # markdown bold still renders


@pytest.mark.parametrize("raw", [False, True], ids=["markdown", "as-written"])
def test_a_hostile_response_is_text(browser: Any, served: str, raw: bool) -> None:
    open_page(browser, served + f"/#/run/0/sample/{HOSTILE_SAMPLE}")
    if raw:
        browser.find_element("css selector", "label.muted input").click()
        wait_ready(browser)
        assert HOSTILE in text(browser)
    else:
        _assert_shown_as_text(browser)
    open_page(browser, served + "/#/run/0/samples?q=rkinjected")
    assert browser.find_element("id", "count").text == "1-1 of 1"
    assert browser.execute_script("return window.__rkInjected") is None
    open_page(browser, served + "/#/compare/0/1/prompt?id=p00002")
    _assert_shown_as_text(browser, markdown=not raw)  # the toggle holds for the whole page


def test_the_export_works_offline(browser: Any, runs: list[Path], tmp_path: Path) -> None:
    report = export_html([load_run(p) for p in runs], tmp_path / "report.html")
    url = report.as_uri()
    open_page(browser, url + "#/run/0/samples?status=timeout")
    assert browser.find_element("id", "count").text == "1-2 of 2"
    open_page(browser, url + f"#/run/0/sample/{HOSTILE_SAMPLE}")
    _assert_shown_as_text(browser)
    open_page(browser, url + "#/compare/1/0")
    assert browser.find_elements("css selector", "#compare tr[data-reward]")
    open_page(browser, url + "#/run/1")
    assert len(browser.find_elements("css selector", "canvas")) == 4
    assert "<script>" not in browser.execute_script(
        "return document.getElementById('rk-data').textContent"
    )


def test_an_environment_rollout_shows_its_steps(browser: Any, served: str) -> None:
    open_page(browser, served + f"/#/run/0/sample/{7 * 4 + 1}")
    page = text(browser)
    assert page.count("tool call: calculator") == 2
    assert "result 1" in page
    steps = browser.find_elements("css selector", ".step-reward")
    assert [s.text for s in steps] == ["step 1 reward 0.250", "step 2 reward 1"]
    assert "environment calculator_env: done, 2 steps, done" in page
    assert "Done: 12" in page
