"""The columns of every table of the HTML report: which column of the computed table each shows,
under what header, in what number format, with what tooltip; and the group headers above them.

A formatter of None marks a text column. Only here are headers and tooltips written: the page's
prose names a column through these constants, so a renamed header changes everywhere at once.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import pandas as pd

from analysis.numbers import format_hours, format_int, format_percent, format_score
from analysis.report import reproductions
from analysis.report.method import evaluation_protocol
from analysis.results_files import GAME_STATUSES

Formatter = Callable[[Any], str]


class Column(NamedTuple):
    key: str  # column of the computed table
    header: str
    fmt: Formatter | None  # None: a text column
    tip: str = ""  # the header's tooltip
    css: str = ""  # extra class of its cells


class Group(NamedTuple):
    label: str  # "Paper" stands for the reference paper's own name
    span: int  # columns under it
    css: str = ""


_PROTOCOL = evaluation_protocol()
_EPISODES = _PROTOCOL["episodes"]
EPISODE_SD = "\u00b1 s.d. episodes"
SEED_SD = "\u00b1 s.d. seeds"
STANDS_HEADER = "Vs. paper & PFRL"
GAME_TIP = "game as printed in the paper"
STATUS_TIP = (f"{GAME_STATUSES[0]}: every planned seed trained and scored; {GAME_STATUSES[1]}; "
              f"{GAME_STATUSES[2]}: no DQN score")
_OUR_EPISODE_SD_TIP = (
    "s.d. over single evaluation episodes, the paper's kind of s.d.: each seed's s.d. over its episodes "
    "(scores.parquet std), pooled over seeds as their root mean square"
)
_SEED_SD_TIP = (
    "s.d. across seeds of the seed means (ddof 1): how far a mean moves from one seed to another, not the "
    "spread of single episodes; n/a with one seed"
)

# The per-game table (tables.game_table).
GAME_COLUMNS = [
    Column("display_name", "Game", None, GAME_TIP, "game"),
    Column("status", "Status", None, STATUS_TIP, "status"),
    Column("random_score", "Random", format_score, "the paper's random agent"),
    Column("human_score", "Human", format_score, "the paper's professional human tester"),
    Column("paper_dqn_mean", "DQN", format_score, f"the paper's DQN: mean over {_EPISODES} episodes"),
    Column("paper_dqn_std", EPISODE_SD, format_score,
           f"the paper's s.d. over its {_EPISODES} evaluation episodes (one trained agent): the spread of single episodes", "sd"),
    Column("random_mean", "Random", format_score, "this run's random agent: mean of seed means"),
    Column("best_mean", "DQN best", format_score, f"best-intermediate weights: mean of seed means (each over {_EPISODES} episodes)"),
    Column("best_episode_std", EPISODE_SD, format_score, f"best-intermediate weights: {_OUR_EPISODE_SD_TIP}", "sd"),
    Column("best_std", SEED_SD, format_score, f"best-intermediate weights: {_SEED_SD_TIP}", "sd"),
    Column("final_mean", "DQN final", format_score, f"final weights: mean of seed means (each over {_EPISODES} episodes)"),
    Column("final_episode_std", EPISODE_SD, format_score, f"final weights: {_OUR_EPISODE_SD_TIP}", "sd"),
    Column("final_std", SEED_SD, format_score, f"final weights: {_SEED_SD_TIP}", "sd"),
    Column("paper_normalized", "Paper", format_percent, "the paper's DQN, human-normalized (%)"),
    Column("best_normalized", "Best", format_percent, "this run, best-intermediate weights, human-normalized (%)"),
    Column("final_normalized", "Final", format_percent, "this run, final weights, human-normalized (%)"),
    Column("higher", "Higher", None, "whose DQN score is higher: this run (best-intermediate) or the paper"),
]
# The game's own cell stands alone, so that it can stay in view while the table scrolls sideways.
GAME_GROUPS = [Group("", 1, "game"), Group("", 1), Group("Paper", 4, "group-paper"), Group("This run", 7, "group-ours"),
               Group("Human-normalized (%)", 3), Group("", 1)]
# The columns PFRL's reproduction adds where the reference shows it: {the column it follows: its own}.
_PFRL_TIP = (
    f"PFRL's reproduction of the Nature DQN: its best intermediate agent re-evaluated for {_EPISODES} episodes of at most "
    f"{_PROTOCOL['minutes']} minutes at \u03b5 {_PROTOCOL['epsilon']}, mean over its seeds "
    f"({format_int(reproductions.PFRL_TRAINING_FRAMES / 1e6)}M frames, no sticky actions)"
)
PFRL_COLUMNS = {
    "paper_dqn_std": Column("pfrl_dqn_mean", "DQN", format_score, _PFRL_TIP),
    "paper_normalized": Column("pfrl_normalized", "PFRL", format_percent, f"{_PFRL_TIP}, human-normalized (%)"),
    "higher": Column("stands", STANDS_HEADER, None,
                     "where this run's best-intermediate score stands against the paper's DQN and PFRL's reproduction: "
                     "below both, between (a tie counts as between) or above both"),
}
PFRL_GROUPS = [Group("", 1, "game"), Group("", 1), Group("Paper", 4, "group-paper"), Group("PFRL", 1, "group-paper"),
               Group("This run", 7, "group-ours"), Group("Human-normalized (%)", 4), Group("", 2)]
ON_TRACK_COLUMN = Column("on_track", "On track", None,
                         "the game's training-time evaluations (mean over seeds, at the frames every seed reached) "
                         f"against nnabla-rl's {reproductions.NNABLA_SEEDS} seeds under the paper's protocol at the same frames: their mean so far "
                         "below, within or above the range of the seeds' means; hover a cell for the numbers")
ON_TRACK_GROUP = Group("Same protocol", 1)
# Text columns that sort by a rank in data-value, so their header sorts as numbers.
RANKED_COLUMNS = ("stands", "on_track")


def game_columns(table: pd.DataFrame) -> tuple[list[Column], list[Group]]:
    """(columns, groups) of the per-game table: GAME_COLUMNS and GAME_GROUPS, with PFRL's and the
    on-track column where `table` has them."""
    columns, groups = list(GAME_COLUMNS), list(GAME_GROUPS)
    if "pfrl_dqn_mean" in table.columns:
        columns = []
        for column in GAME_COLUMNS:
            columns.append(column)
            if column.key in PFRL_COLUMNS:
                columns.append(PFRL_COLUMNS[column.key])
        groups = list(PFRL_GROUPS)
    if "on_track" in table.columns:
        columns.append(ON_TRACK_COLUMN)
        groups.append(ON_TRACK_GROUP)
    return columns, groups


# The best-episode table (tables.best_episode_table).
BEST_EPISODE_COLUMNS = [
    Column("display_name", "Game", None, GAME_TIP, "game"),
    Column("status", "Status", None, STATUS_TIP),
    Column("paper_dqn_best", "DQN Best", format_score, "the paper's DQN: score of its single best episode"),
    Column("paper_hneat_best", "HNeat Best", format_score,
           "the paper's HyperNEAT (HNeat Best row): score of its single best episode"),
    # Not "DQN best": beside the paper's "DQN Best" that would read as the same quantity.
    Column("best_max_score", "Best-intermediate weights", format_score,
           "highest score of any evaluation episode, over every seed"),
    Column("final_max_score", "Final weights", format_score, "highest score of any evaluation episode, over every seed"),
]
BEST_EPISODE_GROUPS = [Group("", 1, "game"), Group("", 1), Group("Paper", 2, "group-paper"),
                       Group("This run, best single episode", 2, "group-ours")]

# The aggregates table (tables.aggregate_table): the label heads each row; the three statistics
# carry their interval.
_CI = "with its 95 % confidence interval in brackets (stratified bootstrap over seeds; n/a with one seed per game)"
AGGREGATE_LABEL = Column("label", "", None)
AGGREGATE_COUNTS = [Column("games", "games", format_int, "games with a score"),
                    Column("runs", "runs", format_int, "run x game scores")]
AGGREGATE_STATISTICS = [Column("median", "median (%)", format_percent, f"median over games {_CI}"),
                        Column("mean", "mean (%)", format_percent, f"mean over games {_CI}"),
                        Column("iqm", "IQM (%)", format_percent, f"interquartile mean of all run x game scores {_CI}")]
AGGREGATE_THRESHOLDS = [Column("at_or_above_100", "games \u2265 100 %", format_int),
                        Column("at_or_above_75", "games \u2265 75 %", format_int)]

# The plain tables of the missing runs and the provenance section.
MISSING_RUN_COLUMNS = [
    Column("display_name", "game", None), Column("seed", "seed", format_int), Column("status", "status", None),
    Column("frames_done", "frames done", format_int), Column("frames_planned", "frames planned", format_int),
    Column("reason", "reason", None),
]
DEVIATION_COLUMNS = [Column("field", "field", None), Column("paper_value", "paper", None),
                     Column("this_value", "this run", None), Column("unit", "unit", None), Column("note", "note", None)]
PROTOCOL_NOTE_COLUMNS = [Column("field", "field", None), Column("value", "value", None), Column("unit", "unit", None),
                         Column("note", "note", None)]
HOURS_COLUMNS = [
    Column("display_name", "game", None), Column("frames_done", "frames done (all seeds)", format_int),
    Column("frames_planned", "frames planned (all seeds)", format_int), Column("gpu_hours", "GPU hours", format_hours),
    Column("cpu_hours", "CPU hours", format_hours),
]
RUN_COLUMNS = [
    Column("display_name", "game", None), Column("seed", "seed", format_int), Column("status", "status", None),
    Column("frames_done", "frames done", format_int), Column("frames_planned", "frames planned", format_int),
    Column("frames_percent", "% of plan", format_percent), Column("wall_hours", "wall hours", format_hours),
    Column("device", "device", None), Column("hostname", "host", None), Column("run_versions", "versions", None),
    Column("scored_weights", "scored weights", None),
]
