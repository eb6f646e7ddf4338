"""The numbers the report's method section quotes ("How the numbers are computed"): the evaluation
protocol read from the paper's preset, the bootstrap's settings, and what sets the published
reproductions apart, read from their data and from analysis.report.reproductions.
"""

from __future__ import annotations

from typing import Any

from analysis.numbers import format_int, number_text
from analysis.report import metrics, reproductions
from analysis.report.content import ReportContent
from analysis.report.paper import paper_columns
from analysis.report.tables import NO_INTERVAL_ONE_SEED
from dqn.config import PRESETS

# The Atari 2600's frame rate: the paper's 5-minute evaluation episode is 18,000 emulator frames.
EMULATOR_FRAMES_PER_SECOND = 60
# The aggregates' intervals (analysis.report.metrics.interval_estimate's default) and the IQM's cut.
CONFIDENCE_PERCENT = 95
IQM_CUT_FRACTION = 0.25


def evaluation_protocol(preset: str = "nature") -> dict[str, Any]:
    """The final evaluation of the paper's protocol: episodes, their cap in minutes, epsilon."""
    hp = PRESETS[preset]
    return {"episodes": hp.final_eval_episodes, "epsilon": hp.eval_epsilon,
            "minutes": number_text(hp.final_eval_max_episode_frames / EMULATOR_FRAMES_PER_SECOND / 60)}


def pfrl_facts() -> dict[str, Any]:
    """PFRL's reproduction: its games, how many it scores higher than the paper on, its length and seeds."""
    pfrl = reproductions.pfrl_columns("nature").merge(paper_columns("nature"), on="game")
    steps = reproductions.PFRL_TRAINING_FRAMES // PRESETS["nature"].action_repeat_frames
    return {"games": len(pfrl), "higher": int((pfrl["pfrl_dqn_mean"] > pfrl["paper_dqn_mean"]).sum()),
            "steps_m": format_int(steps / 1e6), "frames_m": format_int(reproductions.PFRL_TRAINING_FRAMES / 1e6),
            "seed_counts": " or ".join(map(str, reproductions.PFRL_SEED_COUNTS))}


def dopamine_facts() -> dict[str, Any]:
    """Dopamine's DQN baseline: its runs, iterations and the settings that differ from the paper's protocol."""
    settings = reproductions.DOPAMINE_SETTINGS
    max_seconds = settings["max_episode_steps"] * PRESETS["nature"].action_repeat_frames / EMULATOR_FRAMES_PER_SECOND
    return {"runs": reproductions.DOPAMINE_RUNS, "iterations": reproductions.DOPAMINE_ITERATIONS,
            "iteration_m": format_int(reproductions.DOPAMINE_FIRST_FRAMES / 1e6),
            "sticky": number_text(settings["sticky_action_probability"], 2),
            "epsilon": number_text(settings["epsilon"], 2),
            "epsilon_decay_m": format_int(settings["epsilon_decay_frames"] / 1e6),
            "max_minutes": format_int(max_seconds / 60), "max_steps": format_int(settings["max_episode_steps"]),
            "learning_starts_k": format_int(settings["learning_starts_frames"] / 1e3),
            "target_update_k": format_int(settings["target_update_frames"] / 1e3)}


def method(content: ReportContent) -> dict[str, Any]:
    """Everything the method section quotes."""
    shown_pfrl = "pfrl_dqn_mean" in content.game_table.columns
    other_pfrl = not shown_pfrl and content.game_table["game"].isin(reproductions.pfrl_columns("nature")["game"]).any()
    dopamine = content.game_table["game"].isin(reproductions.dopamine_games()).any()
    return {
        "citation": content.citation,
        "normalization": content.normalization[0].upper() + content.normalization[1:],
        "protocol": evaluation_protocol(),
        "confidence": CONFIDENCE_PERCENT, "iqm_cut": IQM_CUT_FRACTION,
        "iqm_middle": format_int(100 * (1 - 2 * IQM_CUT_FRACTION)),
        "thresholds": [format_int(threshold) for threshold in metrics.THRESHOLDS_PERCENT],
        "bootstrap_reps": format_int(content.bootstrap_reps), "bootstrap_seed": content.bootstrap_seed,
        "no_interval": NO_INTERVAL_ONE_SEED,
        "results_path": content.results_path,
        "pfrl": pfrl_facts() if shown_pfrl else None,
        "pfrl_not_shown": bool(other_pfrl),
        "dopamine": dopamine_facts() if dopamine else None,
    }
