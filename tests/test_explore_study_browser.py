"""The "test this properly" button in a real browser (headless Debian Chromium, Selenium): the
button turns the Playground into a small compare run, the progress line moves, the headline and
ranking appear beside the Playground, and the link opens the run's report in Runs. Skips when
Chromium, chromedriver or Selenium are missing (CI installs them: see .ci/run).

``ACTLAB_SCREENSHOT=path.png`` also saves the finished run's screenshot there (the README's).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
selenium = pytest.importorskip("selenium")

from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from _browser import js, needs_chromium, new_browser  # noqa: E402
from _explore_server import LiveServer  # noqa: E402

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    driver = new_browser()
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def test_test_this_properly_finishes_a_small_run_and_shows_its_headline(
    browser, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default --runs, relative: the command shown says so
    runs = tmp_path / "actlab-runs"
    with LiveServer(Path("actlab-runs")) as server:
        # the Playground: moons, 2 layers of ReLU, Adam at 0.03 (the link's state)
        browser.get(server.url + "/#view=playground&data=moons&noise=0.2&width=8&lr=0.03"
                    "&opt=adam&batch=32&layer=relu&layer=relu")  # fmt: skip
        wait = WebDriverWait(browser, 30, poll_frequency=0.2)
        wait.until(lambda d: js(d, "window.explore.pg.frame && window.explore.pg.frame.epoch") == 0)
        if os.environ.get("ACTLAB_SCREENSHOT"):  # the README's picture: a trained Playground,
            browser.find_element("id", "pg-play").click()
            wait.until(lambda d: js(d, "window.explore.pg.frame.epoch") >= 60)
            browser.find_element("id", "pg-play").click()  # and 5 seeds x 20 epochs below
        acts = browser.find_element("id", "study-acts")
        # one activation in the layers: a rival is offered beside it
        wait.until(lambda d: acts.get_attribute("value") == "relu, tanh")
        acts.clear()
        acts.send_keys("relu, tanh, sigmoid")
        shot = os.environ.get("ACTLAB_SCREENSHOT")
        seeds, epochs = (5, 20) if shot else (3, 4)
        for key, value in (("study-seeds", seeds), ("study-epochs", epochs)):
            field = browser.find_element("id", key)
            field.clear()
            field.send_keys(str(value))
        browser.find_element("id", "study-start").click()
        wait.until(lambda d: "running" in d.find_element("id", "study-progress").text
                   or "done" in d.find_element("id", "study-progress").text)  # fmt: skip
        assert not browser.find_element("id", "study-cancel").get_attribute("hidden") or (
            "done" in browser.find_element("id", "study-progress").text
        )
        WebDriverWait(browser, 300, poll_frequency=0.5).until(
            lambda d: js(d, "window.actlabStudy.state && window.actlabStudy.state.state") == "done"
        )
        state = js(browser, "window.actlabStudy.state")
        assert state["models"] == {"done": 3 * seeds, "total": 3 * seeds}
        assert (state["seeds"], state["epochs"]) == (seeds, epochs)
        assert state["activations"] == ["relu", "tanh", "sigmoid"]
        assert state["dataset"] == "moons" and state["depth"] == 2
        # the headline on the page is the run's own, with its verdict and one row per activation
        headline = browser.find_element("id", "study-headline").text
        assert headline == state["headline"] and headline
        badge = browser.find_element("css selector", ".study-verdict .badge").text
        assert badge == (f"winner: {state['winner']}" if state["winner"] else "no clear winner")
        rows = browser.find_elements("css selector", ".study-table tbody tr")
        assert sorted(r.find_elements("tag name", "td")[1].text for r in rows) == [
            "relu", "sigmoid", "tanh"]  # fmt: skip
        assert "done in" in browser.find_element("id", "study-progress").text
        assert (runs / state["run"] / "report.html").is_file()
        if shot:
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(shot)
        browser.save_screenshot(str(tmp_path / "study.png"))

        # its report opens in Runs
        browser.find_element("id", "study-report").click()
        wait.until(lambda d: d.find_element("id", "run-report").get_attribute("src") or "")
        src = browser.find_element("id", "run-report").get_attribute("src")
        assert src.endswith(f"/runs/{state['run']}/report.html")
        assert state["run"] in browser.find_element("id", "runs-table").text

        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
