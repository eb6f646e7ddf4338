"""Debian's headless Chromium driven by Selenium, for the browser tests of the report and the comparison page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
)  # fmt: skip


def _executable(*names: str) -> str:
    # conftest.py fails a browser test before it starts when none of the names is on PATH.
    return next(path for path in map(shutil.which, names) if path)


def start_browser(profile_dir: Path):
    """A headless Chromium with a fresh profile in `profile_dir`; the caller quits it."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the selenium package is missing: pip install -e '.[dev]' (or pip install selenium)")
    chromium = _executable("chromium", "chromium-browser")
    driver_path = _executable("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would try to download one, and the network is closed.
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def at_width(browser, url: str, width: int):
    """The page at `url` in a window `width` px wide, scrolled to the top."""
    browser.set_window_size(width, 1000)
    browser.get(url)
    browser.execute_script("window.scrollTo(0, 0); return document.readyState")
    # The window size includes the browser's frame: the page's own width is what a reader has.
    return browser.execute_script("return document.documentElement.clientWidth")
