"""The rendered report in a real headless Chromium: no console error, every image decodes, the table sorts.

Needs Debian's `chromium` and `chromium-driver` (CI installs them) and the Python `selenium`
package; without them the test fails and says what to install.
"""

from __future__ import annotations

import math

import pytest

from analysis.report import build_report
from helpers.browser import at_width, start_browser
from helpers.synthetic_results import write_demo, write_full, write_results

pytestmark = pytest.mark.browser

# 12 games whose scores span signs and magnitudes, so a text sort and a numeric sort disagree.
GAMES = ("alien", "atlantis", "boxing", "breakout", "double_dunk", "enduro", "fishing_derby", "pong",
         "seaquest", "tennis", "video_pinball", "zaxxon")  # fmt: skip
MISSING = ("enduro",)
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
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


def _report_of(tmp_path_factory, write, name: str):
    """The report of the synthetic results `write` makes (50 bootstrap resamples: the page, not the numbers)."""
    folder = write(tmp_path_factory.mktemp("results") / name)
    out = tmp_path_factory.mktemp(f"report-{name}")
    build_report(folder, out / "report.html", out / "figures", bootstrap_reps=50)
    return out / "report.html"


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """A first demo run (one seed, the demo preset): the report carries the not-the-paper banner."""
    return _report_of(tmp_path_factory, write_demo, "demo")


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


def test_clicking_the_standing_header_sorts_below_between_above_with_missing_last(page):
    index = header_index(page, "Vs. paper & PFRL")
    header = page.find_elements("css selector", "#game-table thead tr:last-child th")[index]
    header.click()
    texts = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr')).map(r => r.cells[arguments[0]].textContent.trim());",
        index,
    )
    assert len(texts) == len(GAMES)  # one row per game, the new columns included
    rank = {"below both": 0, "between": 1, "above both": 2}
    present = [t for t in texts if t]
    assert set(present) <= set(rank) and len(present) == len(GAMES) - len(MISSING)
    assert [rank[t] for t in present] == sorted(rank[t] for t in present)
    assert texts[len(present):] == [""] * len(MISSING)  # the game without a score stays last
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    texts = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr')).map(r => r.cells[arguments[0]].textContent.trim());",
        index,
    )
    assert [rank[t] for t in texts if t] == sorted((rank[t] for t in present), reverse=True)
    assert texts[-len(MISSING):] == [""] * len(MISSING)
    # Every row keeps as many cells as the header has columns.
    counts = page.execute_script(
        "return [document.querySelectorAll('#game-table thead tr:last-child th').length].concat("
        "Array.from(document.querySelectorAll('#game-table tbody tr')).map(r => r.cells.length));")
    assert set(counts) == {21}  # the on-track column included


def test_clicking_the_game_header_sorts_by_name(page):
    index = header_index(page, "Game")
    page.find_elements("css selector", "#game-table thead tr:last-child th")[index].click()
    names = page.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr')).map(r => r.cells[0].textContent.trim());"
    )
    assert names == sorted(names, key=str.lower)


@pytest.mark.parametrize("width", [1400, 800])
def test_banner_is_visible_at_the_top(browser, demo_report, width):
    client_width = at_width(browser, demo_report.as_uri(), width)
    assert abs(client_width - width) <= 20
    banner = browser.find_element("id", "banner-top")
    assert banner.is_displayed()
    box = browser.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                 "return [r.left, r.top, r.right, r.bottom, window.innerWidth, window.innerHeight];", banner)
    left, top, right, bottom, view_width, view_height = box
    # Inside the first screen, whole, without scrolling; under the title.
    assert 0 <= left and right <= view_width and 0 <= top and bottom <= min(view_height, 400), box
    assert "Not the paper's experiment" in banner.text and "400,000 emulator frames" in banner.text
    summary = browser.find_element("id", "banner-summary")
    assert summary.is_displayed() and "Why: preset demo" in summary.text
    browser.set_window_size(1400, 1000)


def test_game_name_stays_visible_when_the_table_scrolls_sideways(browser, report):
    at_width(browser, report.as_uri(), 800)
    wrap = browser.execute_script("return document.getElementById('game-table').parentElement;")
    scrollable = browser.execute_script("return [arguments[0].scrollWidth, arguments[0].clientWidth];", wrap)
    assert scrollable[0] > scrollable[1] + 200, scrollable  # the table is wider than an 800 px window
    # The table's top rows in the middle of the window, then the table scrolled to its right end.
    browser.execute_script("window.scrollTo(0, arguments[0].getBoundingClientRect().top + window.scrollY - 200);", wrap)
    browser.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth;", wrap)
    assert browser.execute_script("return arguments[0].scrollLeft;", wrap) > 200
    # The game cell of the first row is still inside the wrapper's visible box, and on top at its own place.
    visible = browser.execute_script(
        """const wrap = arguments[0], cell = document.querySelector('#game-table tbody tr td.game');
        const w = wrap.getBoundingClientRect(), c = cell.getBoundingClientRect();
        const hit = document.elementFromPoint(c.left + c.width / 2, c.top + c.height / 2);
        return [c.left >= w.left - 1 && c.right <= w.right + 1, cell.contains(hit) || hit === cell, cell.textContent];""",
        wrap,
    )
    assert visible[0] and visible[1], visible
    assert visible[2] == "Alien"
    header = browser.execute_script(
        """const th = document.querySelector('#game-table thead tr:last-child th.game');
        const r = th.getBoundingClientRect(); const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return th.contains(hit) || hit === th;""")
    assert header
    browser.set_window_size(1400, 1000)


def test_learning_curve_legend_lies_inside_its_figure(tmp_path):
    from analysis.report import curve_figures
    from analysis.report.results import load_results
    from analysis.report.tables import game_table

    for games in (("pong",), ("pong", "breakout"), GAMES):
        folder = write_results(tmp_path / f"r{len(games)}", games=games, seeds=(0,), curve_points=2)
        results = load_results(folder)
        fig = curve_figures.learning_curves_figure(results.learning_curves, game_table(results), reference_label="Nature 2015 paper")
        fig.canvas.draw()
        legend, box = fig.legends[0].get_window_extent(), fig.bbox
        assert box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0 and legend.y1 <= box.y1, games


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """All 49 games: the longest names (Montezuma's Revenge) and the widest scores (Video Pinball's)."""
    return _report_of(tmp_path_factory, write_full, "full")


def test_per_game_table_fits_a_1400_px_window_and_shows_the_sort_direction(browser, full_report):
    at_width(browser, full_report.as_uri(), 1400)
    widths = browser.execute_script(
        "const t = document.getElementById('game-table'); return [t.parentElement.scrollWidth, t.parentElement.clientWidth];")
    assert widths[0] <= widths[1], widths  # 21 columns of 49 games, no sideways scrolling at 1400 px
    # Every body row is one line high (no verdict or score wraps).
    heights = browser.execute_script(
        "return Array.from(document.querySelectorAll('#game-table tbody tr:not(.status-missing)'))"
        ".map(r => r.getBoundingClientRect().height);")
    assert max(heights) < 1.5 * min(heights), heights
    header = browser.find_elements("css selector", "#game-table thead tr:last-child th")[header_index(browser, "DQN best")]
    arrow = "return getComputedStyle(arguments[0], '::after').content;"
    assert browser.execute_script(arrow, header) == '"\u2195"'
    header.click()
    assert browser.execute_script(arrow, header) == '"\u25b2"'
    header.click()
    assert browser.execute_script(arrow, header) == '"\u25bc"'
