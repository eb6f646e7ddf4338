"""The experiment design, checked once when the workflow is parsed, so a mistake fails before any job.

Order of the checks: the config against workflow/schemas/config.schema.yaml (unknown keys, types),
the games sheet against workflow/schemas/games.schema.yaml, the chosen games against the sheet and
ale-py's ROMs, then the preset and hyperparameter overrides through dqn.config.resolve, the same
function `python -m dqn.train` calls, and last the run folders the experiment already has against
the plan. Every failure is one line that names the key (or the folder).
"""

import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from dqn.config import PRESETS, resolve
from dqn.errors import UserError
from dqn.games import ale_rom_ids
from dqn import run_folder
from dqn.run_folder import config_difference
from analysis.report.results import REQUIRED_COLUMNS

GAMES_SHEET = Path(workflow.basedir) / "config" / "games.tsv"
# The results tree, as dqn/run_folder.py names it (the only place that spells it).
RESULTS = "results/{experiment}/"
RUN_DIR = RESULTS + run_folder.RUN_DIR
DQN_EPISODES = RESULTS + run_folder.DQN_EPISODES
RANDOM_EPISODES = RESULTS + run_folder.RANDOM_EPISODES


def run_file(name):
    """A file of a training run's folder, as a pattern."""
    return os.path.join(RUN_DIR, name)
WEIGHTS = list(run_folder.WEIGHTS)
# The training-time evaluator of dqn.train runs as one process beside the learner.
SIDE_EVAL_WORKERS = 1
# Replay frames are 84x84 bytes, stored once each; the rest is the learner, torch and the
# checkpoint writer.
REPLAY_BYTES_PER_TRANSITION = 84 * 84 + 16
TRAIN_BASE_MEM_MB = 2500


def _key_path(parts):
    """['report', 'bootstrap_repetitions'] -> 'report.bootstrap_repetitions'; ['seeds', 0] -> 'seeds[0]'."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _schema_error_line(error, what):
    """One line from a jsonschema error: the key's path and what is wrong with it."""
    path = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        scope = f" of {path!r}" if path else ""
        return f"{what}: unknown key {key!r}{hint}; valid keys{scope}: {', '.join(allowed)}"
    message = error.message
    if error.context:  # anyOf: say what each alternative wanted
        message += f" ({'; '.join(sorted({sub.message for sub in error.context}))})"
    where = f"key {path!r}" if path else "top level"
    return f"{what}: {where}: {message}"


def validated(data, schema, what):
    """snakemake.utils.validate (which also fills in the schema's defaults), with a one-line error."""
    try:
        validate(data, schema)
    except WorkflowError as exc:
        # validate() raises from inside its handler of the jsonschema error: that is the context.
        error = exc.__context__
        if not hasattr(error, "absolute_path"):
            raise
        row = re.search(r"Error validating row (\d+)", str(exc))
        where = f"{what} line {int(row.group(1)) + 2}" if row else what  # after the header line
        raise WorkflowError(_schema_error_line(error, where)) from None
    return data


def read_games_sheet(path):
    if not path.is_file():
        raise WorkflowError(f"games sheet {str(path)!r} is missing; it lists the games (ale_id, display_name)")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    validated(sheet, "../schemas/games.schema.yaml", str(path))
    duplicated = sorted(set(sheet["ale_id"][sheet["ale_id"].duplicated()]))
    if duplicated:
        raise WorkflowError(f"{path}: ale_id {duplicated[0]!r} appears more than once")
    return sheet


def chosen_games(choice, sheet):
    """The config's `games` ("all" or a list) as ALE ids, each a row of the sheet and a ROM of ale-py."""
    known = list(sheet["ale_id"])
    games = known if choice == "all" else list(choice)
    for game in games:
        if game not in known:
            close = difflib.get_close_matches(game, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise WorkflowError(f"config key 'games': unknown game {game!r}{hint}; add it to config/games.tsv or pick from it")
    roms = set(ale_rom_ids())
    missing = [g for g in games if g not in roms]
    if missing:
        raise WorkflowError(f"config/games.tsv: game {missing[0]!r} is not a ROM of the installed ale-py")
    return games


def visible_gpus():
    """GPUs `nvidia-smi -L` lists, narrowed by CUDA_VISIBLE_DEVICES; 0 without a driver (no torch import)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    if listing.returncode != 0:
        return 0
    count = sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))
    if visible is not None:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    return count


def training_device(choice):
    if choice != "auto":
        return choice
    return "cuda" if visible_gpus() > 0 else "cpu"


def resolved_hyperparameters(preset, overrides):
    if preset not in PRESETS:
        raise WorkflowError(f"config key 'preset': unknown preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    try:
        return resolve(preset, overrides)
    except UserError as exc:
        raise WorkflowError(f"config key 'hyperparameters': {exc}") from None


def cli_value(value):
    """A resolved hyperparameter as `--set key=value` writes it (what dqn.config.parse_overrides reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(f"{game}:{frames}" for game, frames in value)
    return repr(value) if isinstance(value, float) else str(value)


def set_arguments(hp, overrides):
    """`--set key=value ...` of the overrides, or nothing (canonical values, so YAML spelling does not matter)."""
    pairs = [f"{key}={cli_value(getattr(hp, key))}" for key in sorted(overrides)]
    return ["--set", *pairs] if pairs else []


# ---------------------------------------------------------------------------- the design
def integer_items(values):
    """`--config 'seeds=[0,1,2]'` hands the list's items over as strings: read the digits back as ints."""
    if isinstance(values, list):
        return [int(v) if isinstance(v, str) and v.strip().isdigit() else v for v in values]
    return values


if "seeds" in config:
    config["seeds"] = integer_items(config["seeds"])
validated(config, "../schemas/config.schema.yaml", "config")
GAMES_TABLE = read_games_sheet(GAMES_SHEET)
EXPERIMENT = config["experiment"]
PRESET = config["preset"]
GAMES = chosen_games(config["games"], GAMES_TABLE)
SEEDS = list(config["seeds"])
HP = resolved_hyperparameters(PRESET, config["hyperparameters"])
SET_ARGUMENTS = set_arguments(HP, config["hyperparameters"])
TRAIN_DEVICE = training_device(config["device"])
EVALUATION_WORKERS = config["evaluation_workers"]
REPORT = config["report"]

# Agent steps per second of one training on a CPU core pair, measured (docs/PERFORMANCE.md:
# 139-159 on the 2-core test machine). No GPU rate has been measured by this project yet.
CPU_AGENT_STEPS_PER_SECOND = 150


def cost_line():
    """What the plan costs, said before any job: runs x frames, the device, the hours at the measured rate."""
    runs = len(GAMES) * len(SEEDS)
    frames = sum(HP.for_game(game).training_length_frames for game in GAMES) * len(SEEDS)
    steps = sum(HP.for_game(game).training_length_steps for game in GAMES) * len(SEEDS)
    line = f"plan: {runs} training run(s), {frames:,} frames ({steps:,} agent steps) in all, on {TRAIN_DEVICE}"
    if TRAIN_DEVICE == "cpu":
        hours = steps / CPU_AGENT_STEPS_PER_SECOND / 3600
        return (f"{line}; about {hours:,.1f} training hours at the {CPU_AGENT_STEPS_PER_SECOND} agent steps/s "
                "one CPU training runs (docs/PERFORMANCE.md), divided by the trainings run at once")
    return f"{line}; no GPU rate is measured yet (benchmarks/README.md), so no estimate of the hours"


logger.info(cost_line())
if TRAIN_DEVICE == "cpu" and PRESET == "nature" and HP.training_length_frames >= 10_000_000:
    logger.warning(
        "the paper's preset is planned on a CPU: each training takes about "
        f"{HP.training_length_steps / CPU_AGENT_STEPS_PER_SECOND / 86_400:,.0f} days; train on GPUs "
        "(device: cuda, or a Slurm profile), or start with config/demo.yaml"
    )


def check_planned_runs():
    """Refuse, before any job, a planned run whose folder holds a run of another config.

    Snakemake deletes a job's outputs before running it again, and a finished training keeps no
    checkpoint: re-running one would retrain it from scratch. So a training is never re-run for a
    changed parameter (see training_preset below); its own record, config.json, is compared with
    the plan here instead (hyperparameters that only change how a run is kept safe do not count).
    """
    for game in GAMES:
        planned = json.loads(json.dumps(HP.for_game(game).to_dict(), sort_keys=True, default=str))
        for seed in SEEDS:
            record = run_folder.run_dir(Path("results", EXPERIMENT), game, seed) / "config.json"
            try:
                recorded = json.loads(record.read_text())
            except (OSError, ValueError):
                continue  # none yet, or unreadable: the training job itself says so
            difference = config_difference(recorded, {"game": game, "seed": seed, "hyperparameters": planned})
            if difference is not None:
                raise WorkflowError(
                    f"{record.parent} holds a run of another config ({difference}); give the experiment "
                    "a new name in the config, or delete that folder to train it again"
                )


check_planned_runs()


def check_report_inputs():
    """`snakemake --report` packs the figures and the report of a finished run: say so in one line
    when there are none yet, instead of a warning per missing file and a WorkflowError."""
    if "--report" not in sys.argv:
        return
    report_html = Path("reports", EXPERIMENT, "report.html")
    if not report_html.is_file():
        raise WorkflowError(
            f"no report of experiment {EXPERIMENT!r} yet ({report_html} is missing): run the workflow first "
            "(the same command without --report), then --report again"
        )


check_report_inputs()


wildcard_constraints:
    experiment=re.escape(EXPERIMENT),
    game="[a-z0-9_]+",
    seed=r"\d+",
    weights="|".join(WEIGHTS),
    index=r"\d+",


# ---------------------------------------------------------------------------- planned files
def planned(pattern, **more):
    """`pattern` for every planned (game, seed) of this experiment."""
    return expand(pattern, experiment=EXPERIMENT, game=GAMES, seed=SEEDS, **more)


def learning_curves(wildcards):
    return planned(run_file("learning_curve.parquet"))


def dqn_episodes(wildcards):
    return planned(DQN_EPISODES, weights=WEIGHTS)


def random_episodes(wildcards):
    return planned(RANDOM_EPISODES)


# ---------------------------------------------------------------------------- resources
# Several trainings on one GPU: on CUDA every training is of the Snakemake group train_gpu, and
# Snakemake's own `--group-components train_gpu=N` (profiles/slurm sets it) puts N of them into
# one cluster job. A group job sums its members' cores and memory, keeps their longest runtime,
# and passes on a string resource that every member gives alike: so with N > 1 a training asks for
# no `gpu` of its own and the job asks for one GPU as `gres`. Locally Snakemake runs the members
# one by one, and one_gpu.sh hands each GPU to N trainings. Snakemake hands its settings to the
# workflow after parsing, so N is read when the jobs are built, by the functions below; the
# trainings' inputs do not depend on it, so a changed N never re-runs a training.
TRAIN_GROUP = "train_gpu" if TRAIN_DEVICE == "cuda" else None


def trainings_per_gpu():
    """N of --group-components train_gpu=N (1 without it, and on CPU)."""
    if TRAIN_GROUP is None:
        return 1
    return workflow.group_settings.group_components.get(TRAIN_GROUP, 1)


def training_gpus(wildcards):
    """One `gpu` unit for a CUDA training with a GPU of its own; grouped trainings ask as a job."""
    return 1 if TRAIN_GROUP is not None and trainings_per_gpu() == 1 else 0


def training_gres(wildcards):
    """The job's GPU request (Slurm's --gres) for N > 1 trainings per GPU; empty otherwise."""
    return "gpu:1" if trainings_per_gpu() > 1 else ""


def training_mem_mb(wildcards):
    replay_mb = HP.replay_memory_size_transitions * REPLAY_BYTES_PER_TRANSITION // 1_000_000
    return replay_mb + TRAIN_BASE_MEM_MB


def learner_threads(wildcards, threads):
    """The job's threads less one for the training-time evaluator's process, at least one."""
    return max(1, threads - SIDE_EVAL_WORKERS)


def run_folder(wildcards, output):
    return str(Path(output.final).parent)


# Parameters of a training are functions of `output` (here and below): the profiles' rerun
# trigger `params` skips such derived parameters, so a changed config, device or GPU sharing never
# re-runs (and so never deletes) a finished training, while a changed report option re-renders
# the report; check_planned_runs() compares each run's config.json with the plan instead.
def training_preset(wildcards, output):
    return PRESET


def training_overrides(wildcards, output):
    return SET_ARGUMENTS


def results_folder(wildcards, output):
    return str(Path(output.scores).parent)


def tables_folder(wildcards, input):
    return str(Path(input.scores).parent)


def figures_folder(wildcards, output):
    return str(Path(output.normalized_scores).parent)


# Put before the training command when it trains on CUDA: on a machine with several GPUs each
# training takes one that no other holds (see the script); under Slurm it changes nothing.
GPU_SCRIPT = Path(workflow.basedir) / "workflow" / "scripts" / "one_gpu.sh"


def training_launcher(wildcards, output):
    if TRAIN_DEVICE != "cuda":
        return ""
    launcher = f"bash {shlex.quote(str(GPU_SCRIPT))}"
    return launcher + (f" --trainings-per-gpu {trainings_per_gpu()}" if trainings_per_gpu() > 1 else "")


def device_of_training(wildcards, output):
    return TRAIN_DEVICE


def training_sharing(wildcards, output):
    """dqn.train places its replay memory knowing how many trainings share its GPU."""
    return f" --trainings-per-gpu {trainings_per_gpu()}" if trainings_per_gpu() > 1 else ""


# ---------------------------------------------------------------------------- partial report
def aggregate_command(results):
    return [sys.executable, "-m", "analysis.aggregate", "--results", results, "--games", *GAMES,
            "--seeds", *map(str, SEEDS), "--preset", PRESET, *SET_ARGUMENTS, "--games-sheet", str(GAMES_SHEET)]


def report_command(results, reports):
    return [sys.executable, "-m", "analysis.report", "--results", results, "--out", f"{reports}/report.html",
            "--figures-dir", f"{reports}/figures", "--bootstrap-reps", str(REPORT["bootstrap_repetitions"]),
            "--seed", str(REPORT["bootstrap_seed"])]


# Where the tables and the report of a failed run go: beside the outputs, never in their place, so
# that Snakemake sees the missing outputs as missing and the next run finishes them.
PARTIAL_RESULTS = "results/{experiment}/partial"
PARTIAL_REPORTS = "reports/{experiment}/partial"


def partial_report():
    """The tables and the report of whatever exists, after a failed job (the `onerror` hook).

    Same commands as the aggregate and report rules, into the partial folders, which no rule
    writes: runs.parquet marks what is missing.
    """
    results = f"results/{EXPERIMENT}"
    partial_results, partial_reports = (path.format(experiment=EXPERIMENT) for path in (PARTIAL_RESULTS, PARTIAL_REPORTS))
    log_path = Path("logs") / EXPERIMENT / "partial_report.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    commands = [[*aggregate_command(results), "--out", partial_results], report_command(partial_results, partial_reports)]
    with open(log_path, "w") as log:
        for command in commands:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                logger.error(f"Partial report: {shlex.join(command[1:3])} failed; see {log_path}")
                return
    logger.error(
        f"Some jobs failed. Tables of what exists are in {partial_results}/ (runs.parquet marks the missing runs) "
        f"and a partial report in {partial_reports}/report.html; run snakemake again to finish what is missing."
    )


def remove_partial_report():
    """After a run that finished everything (the `onsuccess` hook): a partial report would only mislead."""
    for path in (PARTIAL_RESULTS, PARTIAL_REPORTS):
        shutil.rmtree(path.format(experiment=EXPERIMENT), ignore_errors=True)


# ---------------------------------------------------------------------------- comparisons (compare.smk)
COMPARE_WITH = list(config["compare_with"])
# The files python -m analysis.compare reads of each experiment, scores.parquet first.
COMPARE_TABLES = (*REQUIRED_COLUMNS, "provenance.json")


def check_compare_with():
    """Each experiment named in compare_with is another one, with its results tables: one line if not."""
    for name in COMPARE_WITH:
        if name == EXPERIMENT:
            raise WorkflowError(f"config key 'compare_with': {name!r} is this experiment itself; name the experiments "
                                "to compare it with, e.g. compare_with: [nature]")
        missing = [table for table in COMPARE_TABLES if not Path("results", name, table).is_file()]
        if missing:
            raise WorkflowError(f"config key 'compare_with': experiment {name!r} has no results/{name}/{missing[0]}; "
                                f"run the workflow for {name!r} first (or remove it from compare_with)")


check_compare_with()


def compared_folder(wildcards, input):
    return str(Path(input.a_scores).parent)


def comparing_folder(wildcards, input):
    return str(Path(input.b_scores).parent)


def compare_figures_folder(wildcards, output):
    return str(Path(output.performance_profile).parent)
