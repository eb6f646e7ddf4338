"""The captions of the report's four figures. Every number they quote is read from where it is
defined: the figures' drawing constants, the paper's preset (dqn.config), the reproductions' data."""

from __future__ import annotations

from analysis.numbers import format_int, number_text
from analysis.report import curve_figures, figures, reproductions
from analysis.report.method import evaluation_protocol
from dqn.config import PRESETS

HUMAN_LEVEL_PERCENT = 100.0  # a human-normalized score of 100 % is the human tester's


def normalized_scores(reference_label: str, *, pfrl: bool) -> str:
    text = (f"This run's best-intermediate weights (mean of seed means) beside DQN in the {reference_label}, sorted "
            f"by this run's score; dashed line: human level ({number_text(HUMAN_LEVEL_PERCENT)} %). Bars are cut at "
            f"{number_text(figures.BAR_CLIP_PERCENT)} % and then labelled with their value; games without a score are "
            "drawn last, marked \u201cno score\u201d.")
    if pfrl:
        text += (" Black tick on the paper's bar: PFRL's reproduction of the paper's protocol (its value written out "
                 "when off the axis).")
    return text


def _reproductions(same_protocol: bool) -> str:
    """What the learning curves draw behind this run's: nnabla-rl's (same protocol) and Dopamine's."""
    paper = PRESETS["nature"]
    nnabla_first = curve_figures.frames_text(reproductions.NNABLA_FIRST_FRAMES)
    dopamine_first = curve_figures.frames_text(reproductions.DOPAMINE_FIRST_FRAMES)
    nnabla = (
        f" Green line and band behind: {reproductions.NNABLA_LABEL}'s {reproductions.NNABLA_SEEDS} seeds under "
        f"{reproductions.NNABLA_PROTOCOL} (the same measurement as this run's: every "
        f"{curve_figures.frames_text(paper.eval_interval_frames)} frames, {format_int(paper.eval_length_frames)} frames "
        f"at \u03b5 = {paper.eval_epsilon}), their mean and range (min to max), only over the frames this run covers "
        f"(none, and a note in the legend, where this run covers less than the first {nnabla_first} frames): where a "
        "run of the paper's hyperparameters should be at each point. Its network starts from He-normal weights where "
        "DeepMind's code drew Lua's uniform ones (this harness's default), which can put its first points above a "
        "faithful run (docs/ROAD_RUNNER.md)." if same_protocol else "")
    return nnabla + (
        f" Pink dash-dot line and fainter band behind: {reproductions.DOPAMINE_LABEL}'s learning curve of the game, the "
        f"mean and the range (min to max) over its {reproductions.DOPAMINE_RUNS} runs of the training returns of each "
        f"{dopamine_first}-frame iteration, drawn at the iteration's last frame and only over the frames this run covers "
        f"(none, and a note in the legend, where this run covers less than the first {dopamine_first} frames). Another "
        f"protocol: {reproductions.DOPAMINE_PROTOCOL}, so its level is a shape to compare with, not a score."
    )


def learning_curves(*, same_protocol: bool) -> str:
    return (
        f"Training-time evaluation score (\u03b5 = {evaluation_protocol()['epsilon']}, one environment playing the whole "
        "budget, the unfinished last episode discarded) against emulator frames for every game: line, the mean over "
        f"seeds (a dot on each evaluation when a run has at most {curve_figures.MARKER_POINTS}); band, the range (min to "
        "max) over seeds; dashed grey, the paper's final DQN score (written in the panel instead, \u2191, where it is "
        f"over {curve_figures.PAPER_SCORE_OFF_SCALE_RATIO:g}x everything else drawn there: a short run stays readable); "
        "dotted, this run's random agent (its mean score over seeds and episodes); red cross at 0, an evaluation that "
        "completed no episode (no score; 0 in the choice of the best snapshot, as in DeepMind's code)."
        + _reproductions(same_protocol)
    )


AVERAGE_MAX_Q = (
    "Mean over the held-out transitions of max_a Q_target(s', a), the target network on their next states, as "
    "DeepMind's compute_validation_statistics (the online network without a target network), against emulator "
    "frames: line, the mean over seeds; band, the range (min to max) over seeds."
)


def scores_vs_paper(*, pfrl: bool) -> str:
    text = (f"Raw scores on symmetric-log axes (linear within \u00b1{number_text(figures.SYMLOG_LINEAR_WIDTH)} points, "
            "logarithmic outside, so negative scores need no shift); the dotted diagonal is equality; error bars are the "
            f"s.d. across seeds; the {figures.SCATTER_LABELS} games farthest from equality are named. Grey crosses: this "
            "run's random agent against the paper's random agent.")
    if pfrl:
        text += (" Black horizontal ticks: PFRL's reproduction against the paper's score, on the same vertical as "
                 "this run's point.")
    return text
