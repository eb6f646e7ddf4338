"""The comparison page in a real headless Chromium at 1400 and 800 px: no console error, every image
decodes and stays inside its figure and the window, the verdict and difference columns sort."""

from __future__ import annotations

import pytest

from analysis.compare import build_comparison
from helpers.synthetic_comparison import copy_as, shift_scores
from helpers.synthetic_results import write_results
from helpers.browser import at_width, start_browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


GAMES = ("alien", "atlantis", "boxing", "breakout", "double_dunk", "enduro", "fishing_derby", "pong",
         "seaquest", "tennis", "video_pinball", "zaxxon")  # fmt: skip
BETTER, WORSE = ("alien", "zaxxon"), ("pong", "tennis")
WIDTHS = (1400, 800)


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    a = write_results(folder / "a", games=GAMES, seeds=(0, 1, 2), preset="nature")
    b = copy_as(a, folder / "b", "b")
    # Shifts far above each game's spread of seed means: two games better, two worse, the rest equal.
    shift_scores(b, 100_000.0, games=BETTER)
    shift_scores(b, -100_000.0, games=WORSE)
    out = tmp_path_factory.mktemp("page") / "a_vs_b.html"
    build_comparison(a, b, out, reps=200)
    return out.as_uri()


def column(browser, index: int) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#compare-table tbody tr'))"
        ".map(r => r.cells[arguments[0]].getAttribute('data-value'));", index)


def header(browser, label: str, occurrence: int = 0):
    headers = browser.find_elements("css selector", "#compare-table thead tr:last-child th")
    return [h for h in headers if h.text.strip() == label][occurrence]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_console_error_and_every_image_inside_its_figure_and_the_window(browser, page_url, width):
    client_width = at_width(browser, page_url, width)
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('figure')).map(f => { const i = f.querySelector('img'); "
        "const a = f.getBoundingClientRect(), b = i.getBoundingClientRect(); "
        "return [i.complete, i.naturalWidth, a.left, a.right, b.left, b.right, b.width]; });")
    assert len(boxes) == 2
    for complete, natural_width, fig_left, fig_right, img_left, img_right, img_width in boxes:
        assert complete and natural_width > 0
        assert fig_left <= img_left and img_right <= fig_right + 0.5
        assert 0 <= img_left and img_right <= client_width and img_width > 300  # shown, not shrunk to a stamp
    # Only the per-game table scrolls sideways, inside its frame; the page itself does not.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= client_width


@pytest.mark.parametrize("width", WIDTHS)
def test_the_verdict_column_sorts_worse_cant_tell_better(browser, page_url, width):
    at_width(browser, page_url, width)
    verdict = header(browser, "Verdict")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", verdict)
    verdict.click()
    values = [int(v) for v in column(browser, 1)]
    assert values == sorted(values) and values.count(-1) == len(WORSE) and values.count(1) == len(BETTER)
    verdict.click()
    texts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#compare-table tbody tr')).map(r => r.cells[1].textContent);")
    assert texts[: len(BETTER)] == ["better"] * len(BETTER) and texts[-len(WORSE):] == ["worse"] * len(WORSE)
    names = browser.execute_script(
        "return Array.from(document.querySelectorAll('#compare-table tbody tr')).map(r => r.cells[0].textContent);")
    assert sorted(names[: len(BETTER)]) == ["Alien", "Zaxxon"] and sorted(names[-len(WORSE):]) == ["Pong", "Tennis"]


def test_the_difference_column_sorts_numerically(browser, page_url):
    at_width(browser, page_url, 1400)
    difference = header(browser, "B \u2212 A")  # the first: best-intermediate weights
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", difference)
    difference.click()
    values = [float(v) for v in column(browser, 5)]
    assert values == sorted(values) and values[0] == pytest.approx(-100_000.0) and values[-1] == pytest.approx(100_000.0)
