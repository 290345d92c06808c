"""The report over sweeps as a new user leaves them: half-finished, mixed settings, edited files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lstm_ablation.report import write_report
from lstm_ablation.report.cli import main
from lstm_ablation.report.collect import ReportError, collect_local

from test_report import make_run


def plan(sweep: Path, *overrides: str) -> None:
    """The multirun.yaml Hydra writes when a sweep starts: what it will launch."""
    OmegaConf.save({"cell": {"name": "vanilla"}, "task": {"name": "adding"}, "seed": 0,
                    "hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": None},
                              "overrides": {"task": list(overrides)}}}, sweep / "multirun.yaml")


def test_jobs_planned_but_never_started_count_as_missing(tmp_path):
    sweep = tmp_path / "sweep"
    make_run(sweep, 0, "vanilla", 0, 0.01)
    make_run(sweep, 1, "vanilla", 1, 0.02)
    plan(sweep, "cell=vanilla,no_forget_gate", "seed=0,1")  # 4 jobs; the sweep stopped after 2
    collection = collect_local([sweep])
    runs = collection.runs.set_index(["cell", "seed"])
    assert len(runs) == 4 and runs.loc[("no_forget_gate", 0), "status"] == "missing"
    assert runs.loc[("no_forget_gate", 1), "error"] == "never started" and runs.loc[("vanilla", 1), "status"] == "completed"
    assert any("2 of 4 planned jobs never started" in w for w in collection.warnings)


def test_runs_that_differ_in_a_setting_are_not_pooled_as_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    for num, lr in enumerate([0.01, 0.01, 0.1, 0.1]):
        job = make_run(sweep, num, "vanilla", num % 2, 0.01 * (num + 1))
        record = json.loads((job / "result.json").read_text())
        record["config"]["optim"]["lr"] = lr
        (job / "result.json").write_text(json.dumps(record))
    runs = collect_local([sweep]).runs
    assert sorted(runs["task_label"].unique()) == ["adding optim.lr=0.01", "adding optim.lr=0.1"]
    # a size that differs between cells but not within one (parameter matching) splits nothing
    other = tmp_path / "matched"
    for num, (cell, size) in enumerate([("vanilla", 8), ("vanilla", 8), ("rnn", 16), ("rnn", 16)]):
        job = make_run(other, num, cell, num % 2, 0.1)
        record = json.loads((job / "result.json").read_text())
        record["config"]["model"]["hidden_size"] = size
        (job / "result.json").write_text(json.dumps(record))
    assert set(collect_local([other]).runs["task_label"]) == {"adding"}


def test_a_record_with_a_non_integer_seed_is_missing_not_a_crash(tmp_path):
    sweep = tmp_path / "sweep"
    make_run(sweep, 0, "vanilla", 0, 0.01)
    job = make_run(sweep, 1, "vanilla", 1, 0.02)
    record = json.loads((job / "result.json").read_text())
    record["seed"] = "abc"  # written before seeds were validated
    (job / "result.json").write_text(json.dumps(record))
    collection = collect_local([sweep])
    assert sorted(collection.runs["status"]) == ["completed", "missing"]
    assert any("seed 'abc' is not an integer" in w for w in collection.warnings)


def test_rewriting_a_report_keeps_the_users_own_files(tmp_path):
    sweep = tmp_path / "sweep"
    make_run(sweep, 0, "vanilla", 0, 0.01)
    make_run(sweep, 1, "vanilla", 1, 0.02)
    out = write_report([sweep], tmp_path / "rep", plots=False)
    (out / "notes.md").write_text("my notes\n")
    (out / "extra").mkdir()
    (out / "extra" / "fig.png").write_bytes(b"png")
    write_report([sweep], out, plots=False)
    assert (out / "notes.md").read_text() == "my notes\n" and (out / "extra" / "fig.png").read_bytes() == b"png"
    assert (out / "README.md").is_file()


def one_line_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("tamper, says", [
    (lambda text: text.splitlines()[0] + "\n", "has no runs"),
    # whole, however long the report's path (it was wrapped in another message and cut at 150 characters)
    (lambda text: text.replace("0.01,", "zero,", 1), "'zero' is not a number; expected the file as lstm-ablate-report writes it"),
])
def test_a_tampered_results_csv_is_refused_in_one_line(tmp_path, capsys, tamper, says):
    sweep = tmp_path / "sweep"
    make_run(sweep, 0, "vanilla", 0, 0.01)
    make_run(sweep, 1, "vanilla", 1, 0.02)
    out = write_report([sweep], tmp_path / "reports" / "rep", plots=False)
    (out / "results.csv").write_text(tamper((out / "results.csv").read_text()))
    before = (out / "results.csv").read_text()
    line = one_line_error(capsys, ["--regenerate", str(tmp_path / "reports"), "--no-plots"])
    assert line.startswith("lstm-ablate-report: error:") and says in line
    assert (out / "results.csv").read_text() == before  # left as it was


def test_a_read_only_destination_is_one_line(tmp_path, capsys, monkeypatch):
    import lstm_ablation.report.build as build

    sweep = tmp_path / "sweep"
    make_run(sweep, 0, "vanilla", 0, 0.01)

    def read_only(dir, prefix):  # what mkdtemp raises in a read-only directory (the tests may run as root)
        raise PermissionError(13, "Permission denied", dir)

    monkeypatch.setattr(build.tempfile, "mkdtemp", read_only)
    line = one_line_error(capsys, [str(sweep), "--out", str(tmp_path / "rep"), "--no-plots"])
    assert line == f"lstm-ablate-report: error: {tmp_path}: cannot write (Permission denied); expected a writable report directory"


def test_a_setting_recorded_by_only_some_runs_is_said_not_pooled_in_silence(tmp_path):
    from lstm_ablation.report.stats import mixed_settings

    sweep = tmp_path / "sweep"
    for num in range(3):
        job = make_run(sweep, num, "no_forget_gate", num, 0.1)
        record = json.loads((job / "result.json").read_text())
        if num == 2:  # one run sets an initial input-gate bias that the others (older code) never recorded
            record["config"]["cell"]["input_bias"] = -2.0
        (job / "result.json").write_text(json.dumps(record))
    lines = mixed_settings(collect_local([sweep]).runs)
    assert len(lines) == 1 and lines[0].startswith("adding / no_forget_gate: only some runs set cell.input_bias")


def test_a_copy_of_a_job_inside_a_sweep_is_refused_not_counted_twice(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for num, seed in enumerate([0, 1, 2]):
        make_run(sweep, num, "vanilla", seed, 0.01 * (seed + 1))
    make_run(sweep, 3, "vanilla", 0, 0.05)  # the same seed run again, learning otherwise: a second run, kept
    assert len(collect_local([sweep]).runs) == 4
    shutil.copytree(sweep / "1-vanilla-s1", sweep / "kept" / "1-vanilla-s1")  # a records backup left inside the sweep
    with pytest.raises(ReportError, match=r"sweep/1-vanilla-s1 and sweep/kept/1-vanilla-s1 hold the same record"):
        collect_local([sweep])
    message = one_line_error(capsys, [str(sweep), "--out", str(tmp_path / "rep")])
    assert "count its seed twice" in message and not (tmp_path / "rep").exists()


def test_a_setting_is_labelled_as_written_even_beside_a_run_that_never_started(tmp_path):
    sweep = tmp_path / "sweep"
    for num, steps in enumerate([2500, 2500, 5000, 5000]):
        job = make_run(sweep, num, "vanilla", num % 2, 0.01 * (num + 1))
        record = json.loads((job / "result.json").read_text())
        record["config"]["trainer"] = {"max_steps": steps}
        (job / "result.json").write_text(json.dumps(record))
    plan(sweep, "seed=0,1,2,3,4")  # job 4 never started: a row without settings, so the column has a gap
    runs = collect_local([sweep]).runs
    assert set(runs.loc[runs["status"] != "missing", "task_label"]) == {"adding trainer.max_steps=2500", "adding trainer.max_steps=5000"}
