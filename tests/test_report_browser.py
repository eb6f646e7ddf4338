"""The rendered report in a real headless Chromium: no console error, every image decodes, the table sorts.

Needs Debian's `chromium` and `chromium-driver` (CI installs them) and the Python `selenium`
package; without them the test fails and says what to install.
"""

from __future__ import annotations

import math
import shutil

import pytest

from analysis.report import build_report
from helpers.synthetic_results import write_results

pytestmark = pytest.mark.browser

# 12 games whose scores span signs and magnitudes, so a text sort and a numeric sort disagree.
GAMES = ("alien", "atlantis", "boxing", "breakout", "double_dunk", "enduro", "fishing_derby", "pong",
         "seaquest", "tennis", "video_pinball", "zaxxon")  # fmt: skip
MISSING = ("enduro",)
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
)  # fmt: skip


def _executable(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{' or '.join(names)} not found: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver) to run the browser tests"
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
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
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would try to download one, and the network is closed.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = write_results(tmp_path_factory.mktemp("results") / "browser", games=GAMES, seeds=(0, 1), missing_games=MISSING)
    out = tmp_path_factory.mktemp("report")
    build_report(folder, out / "report.html", out / "figures", bootstrap_reps=200)
    return out / "report.html"


@pytest.fixture(scope="module")
def page(browser, report):
    browser.get(report.as_uri())
    browser.execute_script("return document.readyState")
    return browser


def column_values(page, index: int) -> list[float]:
    """The data-value of column `index` in the game table's current row order (NaN for missing)."""
    values = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr'))"
        ".map(r => r.cells[arguments[0]].getAttribute('data-value'));",
        index,
    )
    return [math.nan if v == "" else float(v) for v in values]


def header_index(page, label: str) -> int:
    labels = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table thead tr:last-child th')).map(th => th.textContent.trim());"
    )
    return labels.index(label)


def test_no_console_errors(page):
    severe = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def test_every_image_decodes(page):
    images = page.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt]);"
    )
    assert len(images) == 4
    for complete, width, height, alt in images:
        assert complete and width > 300 and height > 150, alt


def test_table_has_one_row_per_game(page):
    games = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr')).map(r => r.getAttribute('data-game'));"
    )
    assert games == list(GAMES)  # the paper's order, the missing game included
    assert page.execute_script("return document.querySelectorAll('#game-table tbody tr.status-missing').length") == len(MISSING)


def test_clicking_a_header_sorts_numerically_with_missing_last(page):
    index = header_index(page, "DQN best")
    before = column_values(page, index)
    present = [v for v in before if not math.isnan(v)]
    # The scores span signs and magnitudes: sorting their text would give another order.
    assert sorted(present) != sorted(present, key=repr)
    header = page.find_elements("css selector", "#game-table thead tr:last-child th")[index]

    header.click()
    ascending = column_values(page, index)
    assert ascending != before
    assert ascending[: len(present)] == sorted(present)
    assert all(math.isnan(v) for v in ascending[len(present) :])
    assert header.get_attribute("aria-sort") == "ascending"

    header.click()
    descending = column_values(page, index)
    assert descending[: len(present)] == sorted(present, reverse=True)
    assert all(math.isnan(v) for v in descending[len(present) :])  # missing stays last
    assert header.get_attribute("aria-sort") == "descending"


def test_clicking_the_game_header_sorts_by_name(page):
    index = header_index(page, "Game")
    page.find_elements("css selector", "#game-table thead tr:last-child th")[index].click()
    names = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr')).map(r => r.cells[0].textContent.trim());"
    )
    assert names == sorted(names, key=str.lower)
