"""The workflow's comparison: `compare_with` in the config renders this experiment against each named
one, run here on synthetic tables with only the compare rule allowed (no training), and refuses a
name it cannot compare with in one line before any job."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.synthetic_results import write_results
from helpers.workflow_runs import REPO, output_of, snakemake, write_config

CONFIG = {"experiment": "tiny", "preset": "demo", "games": ["pong", "breakout"], "seeds": [0, 1], "device": "cpu",
          "report": {"bootstrap_repetitions": 100, "bootstrap_seed": 0}}
ENV = dict(os.environ, PYTHONPATH=str(REPO))  # the jobs import this checkout's analysis package


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three workflows parsed at once (each parse takes seconds): the comparison rendered, and two refusals."""
    cases = {"renders": ["base"], "itself": ["tiny"], "no results": ["elsewhere"]}

    def run(case):
        root = tmp_path_factory.mktemp(case.replace(" ", "_"))
        for name, rng_seed in (("base", 0), ("tiny", 4)):
            write_results(root / "results" / name, games=("pong", "breakout"), seeds=(0, 1), preset="demo",
                          rng_seed=rng_seed)
        config = write_config(root / "config.yaml", **CONFIG, compare_with=cases[case])
        done = snakemake(root, "--cores", "1", "--configfile", str(config), "--allowed-rules", "compare", "--",
                         f"reports/compare/{cases[case][0]}_vs_tiny.html", env=ENV)
        return root, done

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(cases, pool.map(run, cases)))


def test_compare_with_renders_the_page_and_its_figures(runs):
    root, done = runs["renders"]
    assert done.returncode == 0, output_of(done)
    page = (root / "reports" / "compare" / "base_vs_tiny.html").read_text()
    assert "<title>base vs tiny</title>" in page and "P(tiny &gt; base) = " in page
    figures = root / "reports" / "compare" / "base_vs_tiny_figures"
    assert sorted(p.name for p in figures.iterdir()) == ["learning_curves.png", "performance_profile.png"]
    assert "--bootstrap-reps 100 --seed 0" in output_of(done)
    verdict, wrote = (root / "logs" / "tiny" / "compare_base.log").read_text().splitlines()
    assert wrote == "wrote reports/compare/base_vs_tiny.html" and "P(tiny > base) = " in verdict


@pytest.mark.parametrize("case, message", [
    ("itself", "config key 'compare_with': 'tiny' is this experiment itself"),
    ("no results", "config key 'compare_with': experiment 'elsewhere' has no results/elsewhere/scores.parquet"),
])
def test_compare_with_a_name_without_results_is_refused_before_any_job(runs, case, message):
    root, done = runs[case]
    text = output_of(done)
    assert done.returncode != 0 and message in text, text
    assert "Building DAG of jobs" not in text and not (root / "reports").exists()
