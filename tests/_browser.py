"""Headless Debian Chromium driven by Selenium, for the explore page's browser tests.

The tests skip (``needs_chromium``) when Chromium or chromedriver are missing; CI installs both
(see .ci/run). Selenium itself is imported by the caller first (``pytest.importorskip``).
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def new_browser() -> Any:
    """A fresh headless Chromium (its own profile), 1400 x 1000, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)  # --no-sandbox: CI runs as root, where the sandbox cannot start
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def js(driver: Any, script: str) -> Any:
    """The value of the JavaScript expression ``script`` in the page."""
    return driver.execute_script(f"return {script};")
