"""--from-report: runs of a committed report as a source of another, where their job folders are gone."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from lstm_ablation.report import regenerate, write_report
from lstm_ablation.report.cli import main
from test_report import make_run, tree_bytes, write_probes


def study(root: Path, cells: dict[str, float], seeds=(0, 1, 2, 3)) -> list[Path]:
    """One sweep per cell (root/<cell>), every seed: test loss = the cell's level + seed/1000, probe ratio 10^-(seed+1)."""
    for cell, level in cells.items():
        for seed in seeds:
            write_probes(make_run(root / cell, seed, cell, seed, level + seed / 1000), 10.0 ** -(seed + 1))
    return [root / cell for cell in cells]


def test_a_cell_taken_from_a_committed_report_joins_the_new_report_as_if_its_sweep_were_given(tmp_path: Path) -> None:
    """The other study ran no_forget_gate beside its own vanilla; its folders are gone, its report is not.
    A report of this study's sweeps plus that cell has the statistics of the report built from the
    sweeps themselves; only the run ids (which name the source report) and the sources differ."""
    here = study(tmp_path / "here", {"vanilla": 0.010, "rnn": 0.16})
    there = study(tmp_path / "there", {"vanilla": 0.011, "no_forget_gate": 0.05})
    (there[1] / "multirun.yaml").write_text("hydra:\n  overrides:\n    task: [experiment=x, cell=no_forget_gate]\n")
    write_report(there, tmp_path / "reports" / "other", plots=False)
    direct = write_report([*here, there[1]], tmp_path / "direct", plots=False)
    shutil.rmtree(tmp_path / "there")  # the job folders are gone; the committed report stays

    out = write_report(here, tmp_path / "reports" / "joined", plots=False,
                       from_reports=[f"{tmp_path / 'reports' / 'other'}:cell=no_forget_gate"])
    runs = pd.read_csv(out / "results.csv")
    taken = runs[runs["cell"] == "no_forget_gate"]
    assert len(runs) == 12 and len(taken) == 4 and taken["run"].str.startswith("other:").all()
    assert set(runs["cell"]) == {"vanilla", "rnn", "no_forget_gate"}  # not the other study's vanilla
    assert f"--from-report {tmp_path / 'reports' / 'other'}:cell=no_forget_gate --out" in (out / "README.md").read_text()
    assert (out / "summary.csv").read_bytes() == (direct / "summary.csv").read_bytes()
    gradients, direct_gradients = (pd.read_csv(d / "gradient_summary.csv") for d in (out, direct))
    assert (gradients["run_dir"].str.startswith("other:") == (gradients["cell"] == "no_forget_gate")).all()
    assert gradients.drop(columns="run_dir").sort_values(["cell", "seed"]).reset_index(drop=True).equals(
        direct_gradients.drop(columns="run_dir").sort_values(["cell", "seed"]).reset_index(drop=True))
    table = (out / "README.md").read_text().split("## Gradient flow and gates")[1]
    assert table == (direct / "README.md").read_text().split("## Gradient flow and gates")[1]
    before = tree_bytes(out)
    regenerate(out, plots=False)
    assert tree_bytes(out) == before
    # the sweep's launch command travels with its runs, also on a second hop
    launched = "  - `lstm-ablate -m experiment=x cell=no_forget_gate`"
    assert launched in (out / "README.md").read_text().splitlines()
    again = write_report([], tmp_path / "again", plots=False, from_reports=[f"{out}:cell=no_forget_gate"])
    assert launched in (again / "README.md").read_text().splitlines()


def test_a_report_rebuilt_from_itself_and_another_keeps_its_runs_and_adds_theirs(tmp_path: Path) -> None:
    """A committed study gains a cell another study ran with its protocol: both sources are reports."""
    ours = write_report(study(tmp_path / "a", {"vanilla": 0.010, "rnn": 0.16}), tmp_path / "reports" / "ours", plots=False)
    write_report(study(tmp_path / "b", {"no_forget_gate": 0.05}), tmp_path / "reports" / "theirs", plots=False)
    ours_runs = pd.read_csv(ours / "results.csv")
    out = write_report([], ours, plots=False, from_reports=[str(ours), f"{tmp_path / 'reports' / 'theirs'}:task=adding"])
    runs = pd.read_csv(out / "results.csv")
    assert sorted(runs["run"]) == sorted([f"ours:{r}" for r in ours_runs["run"]] +
                                         [f"theirs:no_forget_gate/{s}-no_forget_gate-s{s}" for s in range(4)])
    # once more: the runs that already name their report keep their ids; the duplicate is refused
    with pytest.raises(ValueError, match="are the same job .* from two sources"):
        write_report([], ours, plots=False, from_reports=[str(ours), f"{tmp_path / 'reports' / 'theirs'}"])


def test_a_job_given_as_a_sweep_and_inside_a_report_is_refused(tmp_path: Path) -> None:
    """The same vanilla runs through their sweep and through the report built from it: other ids, other
    sweep paths, the same jobs; counted twice they would shrink every interval."""
    sweeps = study(tmp_path / "here", {"vanilla": 0.010, "rnn": 0.16})
    write_report(sweeps, tmp_path / "reports" / "old", plots=False)
    with pytest.raises(ValueError, match=r"vanilla/0-vanilla-s0 and old:vanilla/0-vanilla-s0 are the same job"):
        write_report(sweeps, tmp_path / "new", plots=False, from_reports=[f"{tmp_path / 'reports' / 'old'}:cell=vanilla"])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("spec, expected", [
    ("{reports}/other:cell=gru", "selects no run; the report has cell=no_forget_gate/vanilla"),
    ("{reports}/other:colour=red", "'colour=red' is not a selector; expected REPORT_DIR[:cell=NAME][,task=NAME]"),
    ("{reports}/nope", "is not a report directory"),
])
def test_a_bad_from_report_exits_2_in_one_line_and_writes_nothing(tmp_path: Path, capsys, spec: str, expected: str) -> None:
    write_report(study(tmp_path / "there", {"vanilla": 0.011, "no_forget_gate": 0.05}), tmp_path / "reports" / "other",
                 plots=False)
    here = study(tmp_path / "here", {"vanilla": 0.010})
    with pytest.raises(SystemExit) as e:
        main([*map(str, here), "--from-report", spec.format(reports=tmp_path / "reports"), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "rep").exists()


def test_from_report_alone_needs_an_out_dir(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--from-report", "reports/seed_gates"])
    assert e.value.code == 2 and "give --out" in capsys.readouterr().err
