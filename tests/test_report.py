"""The report over hand-written run records: tables, counts, bad input (no training needed)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_ablation.report import ReportError, write_report
from lstm_ablation.report.cli import main
from lstm_ablation.results import write_result

CHANGES = {"vanilla": ("V", "reference cell"), "no_forget_gate": ("NFG", "f = 1"), "rnn": ("RNN", "tanh RNN")}


def make_run(sweep: Path, num: int, cell: str, seed: int, value: float | None, status: str = "completed",
             task: str = "adding", metric: str = "loss", higher: bool = False, baseline: float = 1 / 6,
             threshold: float = 0.01, curve: list[tuple[int, float]] | None = None, seq_len: int = 10,
             val_every: int | None = None) -> Path:
    """One job dir as train.py leaves it: result.json (+ metrics.csv and .hydra/config.yaml)."""
    job = sweep / f"{num}-{cell}-s{seed}"
    (job / ".hydra").mkdir(parents=True)
    short, change = CHANGES.get(cell, (cell.upper(), f"changes {cell}"))
    config = {"cell": {"name": cell, "short": short, "change": change}, "task": {"name": task, "seq_len": seq_len, "data_seed": seed},
              "seed": seed, "model": {"hidden_size": 8}, "optim": {"lr": 0.01, "batch_size": 4}}
    if val_every is not None:
        config["trainer"] = {"val_check_interval": val_every}
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


def test_runs_on_a_gpu_are_counted_apart_from_cpu_hours(sweep: Path, tmp_path: Path) -> None:
    """The device a job recorded reaches results.csv, and the compute line keeps its GPU time out of CPU-hours."""
    from lstm_ablation.results import read_result

    for job in sorted(sweep.glob("[01]-vanilla-*")):  # two of the 8 jobs trained on a GPU, 30 minutes each
        write_result(job, read_result(job / "result.json") | {"device": "cuda (NVIDIA H200)", "duration_s": 1800.0})
    out = write_report([sweep], tmp_path / "rep", plots=False)
    runs = pd.read_csv(out / "results.csv")
    assert sorted(runs["device"].dropna()) == ["cuda (NVIDIA H200)"] * 2
    readme = (out / "README.md").read_text()
    assert ("- Compute: 0.00 CPU-hours (0.00 job-hours; 6 job(s) without num_threads counted as 1 thread) "
            "and 1.00 job-hours on a GPU (2 runs)") in readme


def test_report_tables_count_every_run(sweep: Path, tmp_path: Path) -> None:
    out = write_report([sweep], tmp_path / "rep", plots=False)
    readme = (out / "README.md").read_text()
    assert "Launched by" not in readme  # hand-made job dirs: no multirun.yaml, so no command to show
    assert "- Compute: 0.00 CPU-hours (0.00 job-hours; 8 job(s) without num_threads counted as 1 thread)" in readme
    runs = pd.read_csv(out / "results.csv")
    assert len(runs) == 8 and sorted(runs["status"].unique()) == ["completed", "diverged", "failed"]
    summary = pd.read_csv(out / "summary.csv").set_index("cell")
    assert summary.loc["rnn", ["launched", "completed", "failed"]].tolist() == [3, 2, 1]
    assert summary.loc["no_forget_gate", ["launched", "completed", "diverged"]].tolist() == [2, 1, 1]
    assert summary.loc["vanilla", "mean"] == pytest.approx(0.012)
    readme = (out / "README.md").read_text()
    assert "| 2/3 (1 failed) |" in readme and "| 1/2 (1 diverged) |" in readme
    assert "0.1667" in readme and "| reference |" in readme and "(NFG)" in readme
    assert "\\begin{tabular}" in (out / "tables.tex").read_text()


def test_a_cell_is_named_as_the_literature_names_it_even_if_its_runs_recorded_an_older_short(sweep: Path, tmp_path: Path) -> None:
    """The runs recorded vanilla as "V" (Greff et al.'s name for the cell with peepholes); the report
    names it by its conf/cell short now, NP, and keeps an unknown cell's recorded short."""
    make_run(sweep, 8, "my_cell", 0, 0.02)  # not in conf/cell: its recorded short MY_CELL stays
    out = write_report([sweep], tmp_path / "rep", plots=False)
    assert set(pd.read_csv(out / "results.csv").query("cell == 'vanilla'")["short"]) == {"V"}  # the data as recorded
    readme = (out / "README.md").read_text()
    assert "`vanilla` (NP)" in readme and "`vanilla` (V)" not in readme and "`my_cell` (MY_CELL)" in readme
    assert pd.read_csv(out / "summary.csv").set_index("cell").loc["vanilla", "short"] == "NP"


def write_probes(job: Path, ratio_at_0: float) -> None:
    """A minimal probes.json: a first and a final probe over T = 3 steps (what the probe callback writes)."""
    import json

    def probe(step: int, final: bool) -> dict:
        ratio = [ratio_at_0, 0.5, 1.0]
        return {"step": step, "final": final, "loss": 0.1, "grad_h": ratio, "grad_h_ratio": ratio, "grad_c": ratio,
                "grad_c_ratio": ratio, "cell_abs_mean": [0.1] * 3, "cell_abs_max": [0.2] * 3,
                "gates": {"f": {"mean": [0.9] * 3, "sat_low": [0.0] * 3, "sat_high": [0.1] * 3}},
                "summary": {"loss": 0.1, "grad_h_log10_ratio": float(np.log10(ratio_at_0)), "grad_c_log10_ratio": 0.0,
                            "cell_abs_max": 0.2, "gate_f_mean": 0.9, "gate_f_sat_low": 0.0, "gate_f_sat_high": 0.1}}
    (job / "probes.json").write_text(json.dumps({"labels": {}, "probes": [probe(0, False), probe(29, True)]}))


def test_sweeps_of_the_same_name_under_two_parents_keep_their_gradients_apart(tmp_path: Path) -> None:
    """One cell per sweep, one folder per task (digits/sequential/vanilla, digits/permuted/vanilla): the
    probes are keyed by the same run ids as results.csv, so the gradient table holds both tasks' runs."""
    sweeps = []
    for task, ratio in (("sequential_digits", 0.1), ("permuted_digits", 0.01)):
        sweep = tmp_path / "digits" / task / "vanilla"
        for seed in (0, 1):
            job = make_run(sweep, seed, "vanilla", seed, 0.9, task=task, metric="accuracy", higher=True, baseline=0.1,
                           threshold=0.9)
            write_probes(job, ratio)
        sweeps.append(sweep)
    out = write_report(sweeps, tmp_path / "rep", plots=False)
    runs = pd.read_csv(out / "results.csv")
    gradients = pd.read_csv(out / "gradient_summary.csv")
    assert sorted(gradients["run_dir"]) == sorted(runs["run"])  # the same ids: permuted/vanilla/0-vanilla-s0, ...
    table = (out / "README.md").read_text().split("## Gradient flow and gates")[1]
    rows = {line.split("|")[2].strip(): line for line in table.splitlines() if line.startswith("| vanilla")}
    assert set(rows) == {"sequential_digits", "permuted_digits"}
    assert "-2" in rows["permuted_digits"] and "-1" in rows["sequential_digits"]  # log10 of each task's own ratio


def test_the_gradient_table_keeps_a_task_at_two_settings_apart(tmp_path: Path) -> None:
    """Adding at T = 10 and T = 100 in one sweep are two experiments (two task labels): a row per label, each
    the log10 ratio of its own runs, never one row that pools four runs as "2 seeds"."""
    sweep = tmp_path / "sweep"
    for num, (seq_len, seed, ratio) in enumerate([(10, 0, 0.1), (10, 1, 0.1), (100, 0, 0.001), (100, 1, 0.001)]):
        write_probes(make_run(sweep, num, "vanilla", seed, 0.01, seq_len=seq_len), ratio)
    out = write_report([sweep], tmp_path / "rep", plots=False)
    table = (out / "README.md").read_text().split("## Gradient flow and gates")[1]
    rows = {line.split("|")[2].strip(): line for line in table.splitlines() if line.startswith("| vanilla")}
    assert set(rows) == {"adding seq_len=10", "adding seq_len=100"}
    assert "-1" in rows["adding seq_len=10"] and "-3" in rows["adding seq_len=100"]
    assert "-2" not in table  # the pooled mean of the two settings


def stage_one_only(sweep: Path) -> Path:
    """A tuned sweep still in stage 1: two trials, no confirmation run yet."""
    import json

    for trial in (0, 1):
        job = make_run(sweep, trial, "vanilla", 0, 0.02 + trial)
        record = json.loads((job / "result.json").read_text())
        record["config"]["tune"] = {"stage": "tune", "trial": trial}
        write_result(job, record)
    return sweep


def test_a_report_of_a_tuned_study_under_way_names_the_cells_not_confirmed_yet(tmp_path: Path) -> None:
    """A study landed cell by cell: vanilla is confirmed, rnn has only its stage-1 trials. rnn's trials
    show in Stage 1, but it is in no statistics table, and the header says so instead of dropping it
    without a word."""
    import json

    def tuned(sweep: Path, cell: str, stage: str, trial: int, seed: int, value: float) -> None:
        job = make_run(sweep, 100 * (stage == "confirm") + 10 * trial + seed, cell, seed, value)
        record = json.loads((job / "result.json").read_text())
        record["config"]["tune"] = {"stage": stage, "trial": trial}
        write_result(job, record)

    for trial, value in ((0, 0.02), (1, 0.03)):
        tuned(tmp_path / "vanilla", "vanilla", "tune", trial, 0, value)
        tuned(tmp_path / "rnn", "rnn", "tune", trial, 0, 0.16 + value)
    for seed in (1, 2, 3):
        tuned(tmp_path / "vanilla", "vanilla", "confirm", 0, seed, 0.01 * seed)
    out = write_report([tmp_path / "vanilla", tmp_path / "rnn"], tmp_path / "rep", plots=False)
    text = (out / "README.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("- Tuned sweep"))
    assert "**Not confirmed yet**, so in no statistics table: `rnn` (adding)." in header
    assert set(pd.read_csv(out / "summary.csv")["cell"]) == {"vanilla"}
    assert "| `rnn` | 2/2 |" in text.split("## Stage 1: per-cell tuning")[1]


@pytest.mark.parametrize("make_input, expected", [
    (lambda p: p / "nope", "no such directory"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no runs found"),
    (lambda p: (p / "crashed" / "0-vanilla-s0" / ".hydra").mkdir(parents=True) or p / "crashed", "none with a readable result.json"),
    (lambda p: stage_one_only(p / "tuning"), "no confirmation run yet: a tuned sweep's statistics come from stage 2 only"),
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


# ---------------------------------------------------------------------------- statistics by hand

def test_t_interval_welch_d_by_hand() -> None:
    import math

    from scipy import stats as sps

    from lstm_ablation.report.stats import cohens_d, t_interval, welch_p

    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0, 7.0])
    low, high = t_interval(a)  # mean 2, s 1, t(0.975, 2) = 4.302653
    assert (low, high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), rel=1e-6)
    # Welch: t = -3.5 / sqrt(1/3 + (5/3)/4); df = 0.75^2 / ((1/3)^2/2 + (5/12)^2/3)
    t = -3.5 / math.sqrt(1 / 3 + 5 / 12)
    df = 0.75 ** 2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    assert welch_p(a, b) == pytest.approx(2 * sps.t.sf(abs(t), df), rel=1e-9)
    assert cohens_d(a, b) == pytest.approx(-3.5 / math.sqrt((1 + 5 / 3) / 2))
    assert math.isnan(t_interval(np.array([1.0]))[0]) and math.isnan(welch_p(np.array([1.0]), b))


def test_welch_with_one_side_all_equal_is_exact_and_quiet() -> None:
    """Every reference seed at accuracy 1 (associative recall): variance 0 on one side, a well-defined Welch
    test (t = difference / sqrt(s_b^2 / n_b), df = n_b - 1), and no scipy "precision loss" warning for the user."""
    import warnings

    from scipy import stats as sps

    from lstm_ablation.report.stats import welch_p

    a = np.ones(10)
    b = np.array([0.257, 0.254, 0.201, 0.26, 0.249, 0.262, 0.255, 0.25, 0.258, 0.253])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = welch_p(a, b)
    t = (1 - b.mean()) / (b.std(ddof=1) / np.sqrt(10))
    assert p == pytest.approx(2 * sps.t.sf(t, 9), rel=1e-9)


def test_holm_step_down() -> None:
    from lstm_ablation.report.stats import holm

    # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04): monotone; NaN untouched
    adjusted = holm([0.01, 0.04, 0.03, float("nan")])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_summary_on_a_fixed_table(tmp_path: Path) -> None:
    """vanilla 1,2,3; worse 4..7; single 2.5 (one seed); flaky 1,1 + a diverged seed; threshold 2.5."""
    from lstm_ablation.report.collect import collect_local
    from lstm_ablation.report.stats import TOO_SMALL, summarize

    s = tmp_path / "s"
    runs = [("vanilla", [1, 2, 3]), ("worse", [4, 5, 6, 7]), ("single", [2.5]), ("flaky", [1.0, 1.5, None])]
    num = 0
    for cell, values in runs:
        for seed, v in enumerate(values):
            curve = [(10, 9.0), (20, 2.0), (30, 1.0)] if cell == "vanilla" and seed < 2 else [(10, 9.0), (20, 8.0)]
            make_run(s, num, cell, seed, v, "completed" if v is not None else "diverged", threshold=2.5, curve=curve)
            num += 1
    collection = collect_local([s])
    summary = summarize(collection.runs, collection.curves).set_index("cell")
    assert summary.loc["vanilla", ["mean", "std", "median"]].tolist() == pytest.approx([2.0, 1.0, 2.0])
    assert summary.loc["vanilla", "solve_rate"] == pytest.approx(2 / 3)        # 1 and 2 are <= 2.5
    assert summary.loc["flaky", "solve_rate"] == pytest.approx(2 / 3)          # the diverged seed is unsolved
    assert summary.loc["flaky", ["launched", "completed", "diverged"]].tolist() == [3, 2, 1]
    assert summary.loc["vanilla", ["reached", "steps_to_threshold"]].tolist() == [2, 20]
    assert summary.loc["single", "note"] == TOO_SMALL and np.isnan(summary.loc["single", "p_holm"])
    assert summary.loc["single", "diff"] == pytest.approx(0.5)                 # medians 2.5 - 2
    # worse 4..7 vs 1,2,3: complete separation, exact p = 2 / C(7, 3) = 2/35; Cliff's delta +1
    assert summary.loc["worse", "p_value"] == pytest.approx(2 / 35) and summary.loc["worse", "effect_size"] == 1.0
    # flaky 1.0, 1.5 vs 1, 2, 3 (a tie at 1): mid-ranks 1.5, 3 -> W = 4.5; of the 10 equally likely pairs
    # of {1.5, 1.5, 3, 4, 5}, 3 have W <= 4.5 -> p = 2 * 3/10; U = 1.5, delta = 2 * 1.5 / 6 - 1
    assert summary.loc["flaky", "p_value"] == pytest.approx(0.6) and summary.loc["flaky", "effect_size"] == pytest.approx(-0.5)
    # Holm over the two testable variants (worse, flaky)
    assert summary.loc["worse", "p_holm"] == pytest.approx(4 / 35) and summary.loc["flaky", "p_holm"] == pytest.approx(0.6)
    assert summary.loc["worse", ["p_min", "p_min_holm"]].tolist() == pytest.approx([2 / 35, 4 / 35])
    assert not summary.loc["worse", "significant"] and summary.loc["worse", "diff"] == pytest.approx(3.5)
    # Fisher on solved (<= 2.5) seeds: worse 0/4 vs vanilla 2/3 -> P(table) = C(3,2)/C(7,2) = 1/7, the only one as extreme
    assert summary.loc["worse", "p_fisher"] == pytest.approx(1 / 7)
    low, high = summary.loc["vanilla", ["ci95_low", "ci95_high"]]
    assert 1 <= low <= 2 <= high <= 3                                          # a median interval stays in the data
    ranked = summarize(collection.runs, collection.curves)["cell"].tolist()
    assert ranked == ["flaky", "vanilla", "single", "worse"]  # lower median loss first
    readme = (write_report([s], tmp_path / "rep", plots=False) / "README.md").read_text()
    assert "Holm over 2 variant(s)): 4 vs 3 seeds: 0.057 (0.11 after Holm); 2 vs 3 seeds: 0.2 (0.4 after Holm)." in readme
    assert "| ≈ (n.s.; too few seeds) |" in readme and '"n.s." here means too few seeds' in readme


def test_a_curve_that_lost_its_beginning_is_left_out_of_steps_to_threshold(tmp_path: Path) -> None:
    """A run resumed by code that deleted its earlier log starts its curve late: it may have reached the
    threshold in the lost part, so it is counted apart (curves_cut), not as reached late or not reached."""
    from lstm_ablation.report.collect import collect_local
    from lstm_ablation.report.stats import summarize

    s = tmp_path / "s"
    whole = [(9, 0.5), (19, 0.005), (29, 0.004)]          # validation every 10 steps, first logged at step 9
    make_run(s, 0, "vanilla", 0, 0.004, curve=whole, val_every=10)
    make_run(s, 1, "vanilla", 1, 0.004, curve=[(9, 0.5), (19, 0.5), (29, 0.006)], val_every=10)
    make_run(s, 2, "vanilla", 2, 0.004, curve=[(39, 0.005), (49, 0.004)], val_every=10)   # resumed at 30
    make_run(s, 3, "vanilla", 3, 0.5, curve=[(19, 0.5), (29, 0.5)], val_every=10)          # resumed at 10: also lost
    collection = collect_local([s])
    row = summarize(collection.runs, collection.curves).set_index("cell").loc["vanilla"]
    # seeds 0 and 1 count (steps 19 and 29); seeds 2 and 3 would have given 39 and "not reached"
    assert row[["completed", "reached", "steps_to_threshold", "curves_cut"]].tolist() == [4, 2, 24, 2]
    out = write_report([s], tmp_path / "r", plots=False)
    text = (out / "README.md").read_text()
    assert "2 of 4 runs lost the beginning of their validation curve" in text
    assert "`vanilla` s2 from step 39, `vanilla` s3 from step 19" in text


def test_a_curve_starting_at_its_first_validation_is_whole(tmp_path: Path) -> None:
    """No interval recorded, or a float one (a fraction of an epoch), or a first point one interval in: not cut."""
    from lstm_ablation.report.collect import collect_local
    from lstm_ablation.report.stats import curves_cut

    s = tmp_path / "s"
    make_run(s, 0, "vanilla", 0, 0.004, curve=[(99, 0.5), (199, 0.004)], val_every=100)
    make_run(s, 1, "vanilla", 1, 0.004, curve=[(500, 0.5)])
    make_run(s, 2, "vanilla", 2, 0.004, curve=[(500, 0.5)], val_every=1.0)
    make_run(s, 3, "vanilla", 3, 0.004, curve=[(199, 0.5)], val_every=100)
    collection = collect_local([s])
    runs = collection.runs
    assert curves_cut(runs, collection.curves) == set(runs.loc[runs["seed"] == 3, "run"])


def test_higher_is_better_and_other_reference(tmp_path: Path) -> None:
    from lstm_ablation.report.collect import collect_local
    from lstm_ablation.report.stats import summarize

    s = tmp_path / "s"
    for num, (cell, v) in enumerate([("rnn", 0.5), ("rnn", 0.6), ("vanilla", 0.9), ("vanilla", 0.95)]):
        make_run(s, num, cell, num, v, task="order", metric="accuracy", higher=True, baseline=0.25, threshold=0.9)
    c = collect_local([s])
    summary = summarize(c.runs, c.curves, reference="rnn").set_index("cell")
    assert summary.index.tolist() == ["vanilla", "rnn"]                        # higher accuracy ranks first
    assert summary.loc["vanilla", "diff"] == pytest.approx(0.375) and summary.loc["rnn", "note"] == "reference"
    assert summary.loc["vanilla", "solve_rate"] == 1.0 and summary.loc["rnn", "solve_rate"] == 0.0


# ---------------------------------------------------------------------------- malformed input

def test_malformed_runs_warn_and_good_runs_count(sweep: Path, tmp_path: Path) -> None:
    crashed = sweep / "9-vanilla-s3"
    (crashed / ".hydra").mkdir(parents=True)
    (crashed / ".hydra" / "config.yaml").write_text("cell:\n  name: vanilla\ntask:\n  name: adding\nseed: 3\n")
    corrupt = make_run(sweep, 10, "rnn", 4, 0.2)
    (corrupt / "result.json").write_text('{"status": "completed", ')
    incomplete = make_run(sweep, 11, "rnn", 5, 0.2)
    (incomplete / "result.json").write_text('{"status": "completed"}')
    make_run(sweep, 12, "vanilla", 0, 0.5, task="copy", metric="accuracy", higher=True, baseline=0.1)
    warnings: list[str] = []
    out = write_report([sweep], tmp_path / "rep", plots=False, warn=warnings.append)
    assert len(warnings) == 3
    assert any(str(crashed) in w and "no result.json" in w for w in warnings)
    assert any(str(corrupt) in w and "not valid JSON" in w for w in warnings)
    assert any(str(incomplete) in w and "missing field" in w for w in warnings)
    summary = pd.read_csv(out / "summary.csv")
    adding = summary[summary["task_label"] == "adding"].set_index("cell")
    assert adding.loc["vanilla", ["launched", "completed", "missing"]].tolist() == [4, 3, 1]
    assert adding.loc["rnn", ["launched", "completed", "failed", "missing"]].tolist() == [5, 2, 1, 2]
    assert sorted(summary["task_label"].unique()) == ["adding", "copy"]        # mixed tasks: one table each
    readme = (out / "README.md").read_text()
    assert "## adding" in readme and "## copy" in readme and "test accuracy" in readme
    assert "## Runs without a completed result" in readme and "missing" in readme


def test_report_date_comes_from_the_records(tmp_path: Path) -> None:
    import json

    s = tmp_path / "s"
    for num, stamp in enumerate(["2024-05-01T10:00:00+02:00", "2024-05-01T09:30:00Z"]):
        job = make_run(s, num, "vanilla", num, 0.1)
        record = json.loads((job / "result.json").read_text())
        (job / "result.json").write_text(json.dumps({**record, "finished_at": stamp}))
    readme = (write_report([s], tmp_path / "rep", plots=False) / "README.md").read_text()
    assert "- Date: 2024-05-01 09:30:00 UTC (newest run finished)" in readme


def test_differing_task_settings_get_separate_tables(tmp_path: Path) -> None:
    s = tmp_path / "s"
    make_run(s, 0, "vanilla", 0, 0.1, seq_len=10)
    make_run(s, 1, "vanilla", 0, 0.2, seq_len=100)
    out = write_report([s], tmp_path / "rep", plots=False)
    assert sorted(pd.read_csv(out / "summary.csv")["task_label"]) == ["adding seq_len=10", "adding seq_len=100"]


def test_regenerate_bad_input(tmp_path: Path, capsys) -> None:
    for target, expected in [(tmp_path / "none", "no such directory"), (tmp_path, "no report found")]:
        with pytest.raises(SystemExit) as e:
            main(["--regenerate", str(target)])
        assert e.value.code == 2 and expected in capsys.readouterr().err


def test_regeneration_with_statistics_and_plots_is_byte_identical(sweep: Path, tmp_path: Path) -> None:
    from lstm_ablation.report import regenerate

    out = write_report([sweep], tmp_path / "reports" / "synthetic")
    before = tree_bytes(out)
    assert "plots/difference-heatmap.png" in before and "worse" in before["README.md"].decode()
    assert regenerate(tmp_path / "reports") == [out]
    assert tree_bytes(out) == before


def test_atomic_replace_keeps_old_report_on_failure(sweep: Path, tmp_path: Path, monkeypatch) -> None:
    out = write_report([sweep], tmp_path / "rep", plots=False)
    before = (out / "README.md").read_bytes()
    from lstm_ablation.report import render

    monkeypatch.setattr(render, "latex", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report([sweep], out, plots=False, title="new")
    assert (out / "README.md").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "sweep"]


# ---------------------------------------------------------------------------- a real tiny sweep

@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory) -> Path:
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("real")
    cmd = [sys.executable, "-m", "lstm_ablation", "-m", "cell=vanilla,rnn", "seed=0", "task.seq_len=6",
           "task.n_train=64", "task.n_val=32", "task.n_test=32", "trainer.max_steps=12", "trainer.val_check_interval=4",
           "trainer.log_every_n_steps=4", "wandb.mode=disabled", f"hydra.sweep.dir={root / 'sweep'}"]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True, timeout=300)
    return root / "sweep"


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report_from_a_real_sweep_and_regeneration_is_byte_identical(real_sweep: Path, tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    main([str(real_sweep), "--out", str(reports / "tiny")])
    out = reports / "tiny"
    files = tree_bytes(out)
    assert {"README.md", "results.csv", "summary.csv", "curves.csv", "report.json", "tables.tex",
            "plots/curves-adding.png", "plots/final-adding.png", "plots/difference-heatmap.png"} <= set(files)
    readme = files["README.md"].decode()
    assert "![learning curves](plots/curves-adding.png)" in readme and "| 1/1 |" in readme
    assert "Command: `lstm-ablate-report " in readme and "Git commit of the runs: " in readme
    # how to run the study again: the sweep's own command, from its multirun.yaml; and what it cost
    launched = f"  - `lstm-ablate -m cell=vanilla,rnn seed=0 task.seq_len=6 task.n_train=64"
    assert launched in readme and f"hydra.sweep.dir={real_sweep}`" in readme and "hydra.mode" not in readme
    # two 12-step jobs on torch's threads; how long they took depends on the machine's load, not on the report
    assert re.search(r"- Compute: \d+\.\d\d CPU-hours \(\d+\.\d\d job-hours; 2 job\(s\) without num_threads counted as 1 "
                     r"thread\), \d+\.\d\d h from the first job's start to the last one's finish\.", readme)
    runs = pd.read_csv(out / "results.csv")
    assert len(runs) == 2 and {"git_commit", "config.optim.lr", "metrics.test/loss", "status"} <= set(runs.columns)
    assert pd.read_csv(out / "curves.csv")["step"].nunique() >= 2
    # Regeneration needs only the report dir: move the sweep away first.
    real_sweep.rename(real_sweep.with_name("gone"))
    try:
        main(["--regenerate", str(reports)])
    finally:
        real_sweep.with_name("gone").rename(real_sweep)
    assert tree_bytes(out) == files
    assert capsys.readouterr().out.strip().endswith("README.md")


# ---------------------------------------------------------------------------- W&B as a source

class FakeRun:
    """What wandb.Api().runs() yields, rebuilt from a local job dir the way train.py logs to W&B."""

    def __init__(self, job: Path, task_keys: bool) -> None:
        from lstm_ablation.report.collect import flatten
        from lstm_ablation.results import read_result

        record = read_result(job / "result.json")
        self.path, self.name, self.state = ["me", "proj", job.name], job.name, "finished"
        self.config = flatten(record["config"])
        self.summary = {"status": record["status"], "params": record["params"], "baseline": record["baseline"],
                        **record["metrics"], "val/loss": {"min": 0.1}, "_runtime": 3.0, "_timestamp": 1.7e9,
                        "trainer/global_step": record.get("steps")}
        if task_keys:
            self.summary.update({k: record[k] for k in ("metric", "higher_is_better", "solved_threshold")})
        self.log = pd.read_csv(job / "metrics.csv")
        self.metadata = {"git": {"commit": record["git"]["commit"]}}

    def scan_history(self, keys):
        for _, row in self.log.iterrows():
            step = {"trainer/global_step": row["step"]}
            yield {**step, **{k: row[k] for k in keys if k in row and pd.notna(row[k])}}


@pytest.mark.parametrize("task_keys", [True, False])
def test_wandb_adapter_matches_the_local_report(real_sweep: Path, task_keys: bool, monkeypatch) -> None:
    import wandb

    from lstm_ablation.report.collect import collect_local
    from lstm_ablation.report.stats import summarize
    from lstm_ablation.report.wandb_source import collect_wandb

    runs = [FakeRun(job, task_keys) for job in sorted(real_sweep.iterdir()) if (job / "result.json").exists()]
    crashed = FakeRun(sorted(real_sweep.iterdir())[0], task_keys)
    crashed.summary, crashed.state, crashed.path = {}, "crashed", ["me", "proj", "x"]
    asked = {}

    class Api:
        def runs(self, path, filters=None):
            asked.update(path=path, filters=filters)
            return runs + [crashed]

    monkeypatch.setattr(wandb, "Api", Api)
    remote = collect_wandb("me/proj", group="g1")
    assert asked == {"path": "me/proj", "filters": {"group": "g1"}}
    assert any("x" in w and "missing" in w for w in remote.warnings)
    assert any("inferred" in w for w in remote.warnings) != task_keys
    local = collect_local([real_sweep])
    columns = ["cell", "completed", "mean", "std", "params", "baseline"] + (["solve_rate", "steps_to_threshold"] if task_keys else [])
    got = summarize(remote.runs, remote.curves)
    want = summarize(local.runs, local.curves)
    assert got.set_index("cell").loc[["rnn", "vanilla"], "launched"].tolist() == [1, 2]  # the crashed run counts
    pd.testing.assert_frame_equal(got[columns[1:]].set_index(got["cell"]).drop(columns="completed"),
                                  want[columns[1:]].set_index(want["cell"]).drop(columns="completed"), check_dtype=False)
    assert sorted(remote.curves["value"]) == pytest.approx(sorted(local.curves["value"]))


def test_wandb_bad_path(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--wandb", "just-a-project"])
    assert e.value.code == 2 and "expected ENTITY/PROJECT" in capsys.readouterr().err


def test_regenerate_corrupt_data_is_one_line_and_keeps_the_report(sweep: Path, tmp_path: Path, capsys) -> None:
    out = write_report([sweep], tmp_path / "reports" / "r", plots=False)
    (out / "report.json").write_text("{")
    with pytest.raises(SystemExit) as e:
        main(["--regenerate", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "cannot read its data" in err and len(err.splitlines()) == 1
    assert (out / "README.md").exists() and sorted(p.name for p in out.parent.iterdir()) == ["r"]


def test_launch_command_is_the_last_launch_from_multirun_yaml(tmp_path: Path) -> None:
    import yaml

    from lstm_ablation.report.collect import launch_command

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    assert launch_command(sweep) is None                       # no multirun.yaml: nothing to say
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {
        "task": ["experiment=seed_gates_tuned", f"resume={sweep}", "tune.space.optim.lr=tag(log, interval(1e-4, 1e-1))"],
        "hydra": ["hydra.sweeper.params.cell=vanilla,rnn", f"hydra.sweep.dir={sweep}", "hydra.mode=MULTIRUN"]}}}))
    assert launch_command(sweep) == (f"lstm-ablate -m experiment=seed_gates_tuned resume={sweep} "
                                     "'tune.space.optim.lr=tag(log, interval(1e-4, 1e-1))' "
                                     f"hydra.sweeper.params.cell=vanilla,rnn hydra.sweep.dir={sweep}")
    (sweep / "multirun.yaml").write_text("hydra: [not, a, mapping]\n")
    assert launch_command(sweep) is None
