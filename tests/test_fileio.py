"""Output folders and temporaries: a refused command leaves no folder, a crash's temporaries are
cleared at the next start, and a temporary that a live process writes is never touched."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dqn import fileio
from dqn.errors import UserError, cli_main

REPO = Path(__file__).resolve().parents[1]
AN_HOUR_AGO = time.time() - 2 * fileio.STALE_TEMPORARY_AGE_SECONDS


def backdate(path: Path, mtime: float = AN_HOUR_AGO) -> Path:
    os.utime(path, (mtime, mtime))
    return path


# ---------------------------------------------------------------------------- output folders
def test_a_failed_disk_check_removes_the_folders_it_created_and_only_those(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(UserError, match="not enough free disk"):
        fileio.check_output_dir(existing / "new" / "deeper", min_free_bytes=2**80)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"] and not any(existing.iterdir())
    with pytest.raises(UserError, match="not enough free disk"):
        fileio.check_output_dir(existing, min_free_bytes=2**80)
    assert existing.is_dir()  # it was there before: not ours to remove


def test_a_folder_that_cannot_be_written_is_refused_in_one_line_and_removed(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # The folder is made, then the write probe fails (as on a full or read-only file system).
    monkeypatch.setattr(fileio.tempfile, "NamedTemporaryFile", full_disk)
    with pytest.raises(UserError) as error:
        fileio.check_output_dir(tmp_path / "a" / "b")
    assert "cannot write to output folder" in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_under_a_file_is_refused_and_nothing_is_made(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="Not a directory"):
        fileio.check_output_dir(tmp_path / "file" / "sub")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_several_folders_are_all_removed_when_one_check_fails(tmp_path):
    (tmp_path / "file").write_text("x")
    created = []
    with pytest.raises(UserError):
        fileio.check_output_dirs([tmp_path / "reports" / "demo", tmp_path / "file" / "figures"], created=created)
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and created == []


def test_folders_made_before_a_later_failure_are_removed_if_still_empty(tmp_path):
    with pytest.raises(RuntimeError):
        with fileio.removed_if_failed() as created:
            fileio.check_output_dir(tmp_path / "empty" / "out", created=created)
            fileio.check_output_dir(tmp_path / "kept", created=created)
            (tmp_path / "kept" / "written.parquet").write_text("x")
            raise RuntimeError("the work failed")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # the one that holds a file stays
    with fileio.removed_if_failed() as created:
        fileio.check_output_dir(tmp_path / "fine", created=created)
    assert (tmp_path / "fine").is_dir()  # success keeps it, even empty


# ---------------------------------------------------------------------------- stale temporaries
def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    stale = tmp_path / ".x.parquet.abc.tmp"
    stale.write_text("half")
    backdate(stale)
    fresh = tmp_path / ".y.parquet.k2j_9x0q.tmp"
    fresh.write_text("being written")
    others = [tmp_path / name for name in ("x.parquet", ".train.lock", ".write-probe-abc", "x.tmp", ".x.parquet.ABC.tmp")]
    for path in others:
        path.write_text("keep")
        backdate(path)
    assert fileio.remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name] + [p.name for p in others])
    # Past the age, the other temporary goes too; the files of other patterns never do.
    backdate(fresh)
    assert fileio.remove_stale_temporaries(tmp_path) == [fresh]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in others)


def test_recursion_skips_hidden_folders_and_targets_narrow_the_names(tmp_path):
    deep, hidden = tmp_path / "runs" / "seed0", tmp_path / ".snakemake"
    deep.mkdir(parents=True)
    hidden.mkdir()
    paths = [tmp_path / ".a.parquet.q1.tmp", tmp_path / ".b.json.q2.tmp", deep / ".c.pt.q3.tmp", hidden / ".d.q4.tmp"]
    for path in paths:
        path.write_text("")
        backdate(path)
    assert fileio.remove_stale_temporaries(tmp_path, recursive=False, targets=["a.parquet", "c.pt"]) == [paths[0]]
    assert fileio.remove_stale_temporaries(tmp_path, recursive=False) == [paths[1]]
    assert fileio.remove_stale_temporaries(tmp_path) == [paths[2]]
    assert paths[3].exists()
    assert fileio.remove_stale_temporaries(tmp_path / "missing") == []


def test_a_link_named_like_a_temporary_is_left_with_its_target(tmp_path):
    target = tmp_path / "precious.parquet"
    target.write_text("keep")
    link = tmp_path / ".x.parquet.abc.tmp"
    link.symlink_to(target)
    os.utime(link, (AN_HOUR_AGO, AN_HOUR_AGO), follow_symlinks=False)
    assert fileio.remove_stale_temporaries(tmp_path) == []
    assert link.is_symlink() and target.read_text() == "keep"


def test_a_temporary_that_a_live_process_writes_is_never_removed(tmp_path):
    # Another process sits inside atomic_write's write callback; its temporary is made to look an
    # hour old (as a slow writer's could), so only the writer's lock protects it.
    ready, release = tmp_path / "ready", tmp_path / "release"
    out = tmp_path / "out" / "x.parquet"
    writer = subprocess.Popen([sys.executable, "-c", f"""
import pathlib, time
from dqn import fileio
def write(tmp):
    tmp.write_text("half")
    pathlib.Path({str(ready)!r}).write_text(str(tmp))
    while not pathlib.Path({str(release)!r}).exists():
        time.sleep(0.01)
fileio.atomic_write({str(out)!r}, write)
"""], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        # Until the writer's note is whole: `ready` exists before write_text has filled it.
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        temporary = Path(ready.read_text())
        backdate(temporary)
        assert fileio.remove_stale_temporaries(tmp_path, min_age_seconds=0) == []
        assert temporary.read_text() == "half"
    finally:
        release.write_text("")
        assert writer.wait(timeout=60) == 0
    assert out.read_text() == "half" and [p.name for p in out.parent.iterdir()] == ["x.parquet"]


def test_atomic_write_leaves_no_temporary_when_the_write_fails(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(tmp_path / "x.parquet", fail)
    assert list(tmp_path.iterdir()) == []
    fileio.write_json({"a": 1}, tmp_path / "x.json")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


# ---------------------------------------------------------------------------- every CLI: refused, nothing made
def run_cli(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_aggregate_checks_preset_and_results_before_making_its_output(tmp_path, capsys):
    from analysis.aggregate import main

    results = tmp_path / "results" / "exp"
    results.mkdir(parents=True)
    err = run_cli(main, ["--results", str(results), "--seeds", "0", "--preset", "natur", "--out", str(tmp_path / "look" / "a")],
                  capsys)
    assert "unknown preset 'natur'" in err and not (tmp_path / "look").exists()
    # A mistyped --results is refused, not made and filled with tables of missing runs.
    err = run_cli(main, ["--results", str(tmp_path / "results" / "exq"), "--seeds", "0"], capsys)
    assert "results folder" in err and "exq" in err
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["exp"]


def test_aggregate_that_fails_after_making_its_output_removes_it(tmp_path, capsys, monkeypatch):
    from analysis import aggregate

    def fail(*args, **kwargs):
        raise UserError("a results file is damaged")

    monkeypatch.setattr(aggregate, "aggregate", fail)
    results = tmp_path / "results" / "exp"
    results.mkdir(parents=True)
    run_cli(aggregate.main, ["--results", str(results), "--games", "pong", "--seeds", "0", "--out", str(tmp_path / "look")],
            capsys)
    assert not (tmp_path / "look").exists()


def test_report_checks_its_arguments_before_the_results_and_makes_no_folder(tmp_path, capsys):
    from analysis.report.__main__ import main

    out = tmp_path / "reports" / "demo"
    for flag, value, message in [("--bootstrap-reps", "0", "--bootstrap-reps"), ("--seed", "-1", "--seed")]:
        err = run_cli(main, ["--results", str(tmp_path / "missing"), "--out", str(out / "report.html"),
                             "--figures-dir", str(out / "figures"), flag, value], capsys)
        assert message in err and "missing" not in err
    err = run_cli(main, ["--results", str(tmp_path / "missing"), "--out", str(tmp_path),
                         "--figures-dir", str(out / "figures")], capsys)
    assert "is a folder" in err
    assert not (tmp_path / "reports").exists()


def test_report_whose_figures_folder_fails_removes_the_report_folder_it_made(tmp_path, capsys):
    from analysis.report.__main__ import main
    from helpers.synthetic_results import write_small

    results = write_small(tmp_path / "results" / "demo")
    (tmp_path / "file").write_text("x")
    err = run_cli(main, ["--results", str(results), "--out", str(tmp_path / "reports" / "report.html"),
                         "--figures-dir", str(tmp_path / "file" / "figures")], capsys)
    assert "cannot write to output folder" in err
    assert not (tmp_path / "reports").exists()


def test_every_lock_goes_on_without_flock_where_the_file_system_has_none(tmp_path, monkeypatch, caplog):
    """On a network mount without flock, fcntl.flock raises ENOLCK: the training's run-folder lock,
    the evaluator's lock and the status probe go on (with a warning) instead of a traceback."""
    import fcntl
    import logging

    from dqn import snapshot_eval
    from dqn.run_folder import RunFiles, training_running
    from dqn.run_lifecycle import lock_run_folder

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    files = RunFiles(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dqn.run_lifecycle"):
        handle = lock_run_folder(files)
    handle.close()
    assert files.lock.read_text().startswith("PID ") and "no flock" in caplog.text
    with snapshot_eval._evaluator_lock(tmp_path, None):
        assert files.evaluator_lock.is_file()
    assert training_running(files) is False
    # Any other error of flock is still raised, not taken for a missing lock.
    monkeypatch.setattr(fcntl, "flock", lambda fd, op: (_ for _ in ()).throw(OSError(errno.EBADF, "bad fd")))
    with pytest.raises(OSError):
        fileio.try_flock(0, fcntl.LOCK_EX)
