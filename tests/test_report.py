"""The report over hand-written run records: tables, counts, bad input (no training needed)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lstm_ablation.report import ReportError, write_report
from lstm_ablation.report.cli import main
from lstm_ablation.results import write_result

CHANGES = {"vanilla": ("V", "reference cell"), "no_forget_gate": ("NFG", "f = 1"), "rnn": ("RNN", "tanh RNN")}


def make_run(sweep: Path, num: int, cell: str, seed: int, value: float | None, status: str = "completed",
             task: str = "adding", metric: str = "loss", higher: bool = False, baseline: float = 1 / 6,
             threshold: float = 0.01, curve: list[tuple[int, float]] | None = None, seq_len: int = 10) -> Path:
    """One job dir as train.py leaves it: result.json (+ metrics.csv and .hydra/config.yaml)."""
    job = sweep / f"{num}-{cell}-s{seed}"
    (job / ".hydra").mkdir(parents=True)
    short, change = CHANGES.get(cell, (cell.upper(), f"changes {cell}"))
    config = {"cell": {"name": cell, "short": short, "change": change}, "task": {"name": task, "seq_len": seq_len, "data_seed": seed},
              "seed": seed, "model": {"hidden_size": 8}, "optim": {"lr": 0.01, "batch_size": 4}}
    (job / ".hydra" / "config.yaml").write_text(
        f"cell:\n  name: {cell}\n  short: {short}\ntask:\n  name: {task}\n  seq_len: {seq_len}\nseed: {seed}\n")
    metrics = {} if value is None or status != "completed" else {f"test/{metric}": value, f"val/{metric}_best": value}
    write_result(job, {
        "status": status, "cell": cell, "short": short, "change": change, "task": task, "seed": seed,
        "metrics": metrics, "metric": metric, "higher_is_better": higher, "baseline": baseline,
        "solved_threshold": threshold, "params": 100, "params_recurrent": 80, "duration_s": 1.0, "steps": 50,
        "git": {"commit": "abc123", "dirty": False}, "config": config,
        "error": None if status == "completed" else "boom",
    })
    if curve:
        rows = [f"0,{step},,{v}" for step, v in curve]
        (job / "metrics.csv").write_text(f"epoch,step,train/loss,val/{metric}\n" + "\n".join(rows) + "\n")
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    s = tmp_path / "sweep"
    for num, (cell, seed, value, status) in enumerate([
        ("vanilla", 0, 0.010, "completed"), ("vanilla", 1, 0.012, "completed"), ("vanilla", 2, 0.014, "completed"),
        ("rnn", 0, 0.16, "completed"), ("rnn", 1, 0.17, "completed"), ("rnn", 2, None, "failed"),
        ("no_forget_gate", 0, 0.05, "completed"), ("no_forget_gate", 1, None, "diverged"),
    ]):
        make_run(s, num, cell, seed, value, status, curve=[(9, 0.2), (19, value or 0.3), (29, value or 0.3)])
    return s


def test_report_tables_count_every_run(sweep: Path, tmp_path: Path) -> None:
    out = write_report([sweep], tmp_path / "rep", plots=False)
    runs = pd.read_csv(out / "results.csv")
    assert len(runs) == 8 and sorted(runs["status"].unique()) == ["completed", "diverged", "failed"]
    summary = pd.read_csv(out / "summary.csv").set_index("cell")
    assert summary.loc["rnn", ["launched", "completed", "failed"]].tolist() == [3, 2, 1]
    assert summary.loc["no_forget_gate", ["launched", "completed", "diverged"]].tolist() == [2, 1, 1]
    assert summary.loc["vanilla", "mean"] == pytest.approx(0.012)
    readme = (out / "README.md").read_text()
    assert "| 2/3 (1 failed) |" in readme and "| 1/2 (1 diverged) |" in readme
    assert "0.1667" in readme and "reference cell" in readme and "NFG" in readme
    assert "\\begin{tabular}" in (out / "tables.tex").read_text()


@pytest.mark.parametrize("make_input, expected", [
    (lambda p: p / "nope", "no such directory"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no runs found"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys, make_input, expected) -> None:
    source = make_input(tmp_path)
    with pytest.raises(SystemExit) as e:
        main([str(source), "--out", str(tmp_path / "rep")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "rep").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_out_must_not_be_a_non_report_dir(sweep: Path) -> None:
    with pytest.raises(ReportError, match="not a report directory"):
        write_report([sweep], sweep, plots=False)
