"""Screenshots of the three views of ``actlab explore`` for the README (headless Chromium).

Start a server first (``actlab explore --no-browser --port 8765 --runs RUNS``, with a compare run in
RUNS), then: ``python docs/img/make_screenshots.py http://127.0.0.1:8765/ docs/img``
(``... docs/img twins``: only the Twins view, ``explore-twins.png``).
"""

from __future__ import annotations

import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def twins(driver: webdriver.Chrome, out: str, epochs: int = 100, seeds: int = 5,
          study_epochs: int = 100) -> None:  # fmt: skip
    """The sigmoid vs ReLU preset at depth 8 after ``epochs`` lockstep epochs, with the headline
    of "test this properly" (its two activations over ``seeds`` seeds) beside the twins."""
    driver.set_window_size(1400, 1760)  # the headline above the surfaces, the charts below
    driver.find_element("id", "tab-twins").click()
    time.sleep(2)
    driver.find_element("id", "tw-preset-depth").click()
    deadline = time.monotonic() + 300
    while driver.execute_script("return window.explore.tw.shown") < epochs:
        if time.monotonic() > deadline:
            raise SystemExit("the twins did not reach the epoch in 300 s")
        time.sleep(0.5)
    driver.find_element("id", "tw-play").click()  # pause
    for key, value in (("study-seeds", seeds), ("study-epochs", study_epochs)):
        field = driver.find_element("id", key)
        field.clear()
        field.send_keys(str(value))
    s = "window.actlabStudy.state"
    state = f"{s} && [{s}.id, {s}.state]"
    before = (driver.execute_script(f"return {state}") or [None])[0]  # a reloaded server's last
    driver.find_element("id", "study-start").click()
    deadline = time.monotonic() + 600

    def finished() -> bool:
        now = driver.execute_script(f"return {state}")
        return bool(now) and now[0] != before and now[1] in ("done", "failed", "cancelled")

    while not finished():
        if time.monotonic() > deadline:
            raise SystemExit("the run did not finish in 600 s")
        time.sleep(1)
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(1.5)
    driver.save_screenshot(f"{out}/explore-twins.png")


def main(url: str, out: str, only: str = "") -> None:
    options = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,960",
        "--disable-gpu",
    ):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        if only == "twins":
            time.sleep(2)
            twins(driver, out)
            return
        driver.set_window_size(1400, 1400)  # tall enough for the softmax panel
        time.sleep(3)
        driver.find_element("id", "pick-elu").click()  # four curves, ELU's saturation on the left
        driver.find_element("id", "shade-relu").click()  # ReLU's dead zone shaded
        time.sleep(2)
        driver.save_screenshot(f"{out}/explore-functions.png")
        driver.set_window_size(1400, 960)
        driver.find_element("id", "tab-playground").click()
        time.sleep(2)
        driver.find_element("id", "pg-play").click()
        time.sleep(10)
        driver.save_screenshot(f"{out}/explore-playground.png")
        driver.find_element("id", "preset-sigmoid").click()
        time.sleep(12)
        driver.save_screenshot(f"{out}/explore-playground-sigmoid.png")
        driver.find_element("id", "preset-relu").click()
        time.sleep(12)
        driver.save_screenshot(f"{out}/explore-playground-relu.png")
        driver.find_element("id", "tab-runs").click()
        time.sleep(2)
        links = driver.find_elements("link text", "show")
        if links:
            links[0].click()
            time.sleep(2)
        driver.save_screenshot(f"{out}/explore-runs.png")
        twins(driver, out)
        for entry in driver.get_log("browser"):
            print(entry)
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
