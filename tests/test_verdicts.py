"""Verdicts that hold up: rank/Fisher/bootstrap statistics by hand, the heat map's normalisation,
published expectations from a study YAML beside what was found, and the reports index."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_ablation import ConfigError
from lstm_ablation.expectations import from_study_yaml, parse
from lstm_ablation.report import regenerate, write_report
from lstm_ablation.report.cli import main
from lstm_ablation.report.stats import (fisher_p, mann_whitney, median_diff_interval, median_interval, min_attainable_p,
                                        rank_sum_exact_p, t_interval)

from test_report import make_run, tree_bytes

# ---------------------------------------------------------------------------- statistics by hand


def test_mann_whitney_without_ties_by_hand() -> None:
    # a = 1,2,3,5 vs b = 4,6,7: U_a = #(a > b) = 1 (5 > 4). Of the C(7,3) = 35 splits, U = 0 and U = 1
    # occur once each, so P(U <= 1) = 2/35 and p = 4/35; delta = 2 * 1 / 12 - 1 = -5/6.
    p, delta = mann_whitney(np.array([3.0, 1, 2, 5]), np.array([4.0, 6, 7]))
    assert p == pytest.approx(4 / 35) and delta == pytest.approx(-5 / 6)
    assert rank_sum_exact_p(np.array([3.0, 1, 2, 5]), np.array([4.0, 6, 7])) == pytest.approx(4 / 35)


def test_mann_whitney_with_ties_all_equal_and_tiny_groups() -> None:
    # ties: 1, 1.5 vs 1, 2, 3 -> p = 0.6 (see test_summary_on_a_fixed_table), delta = -1/2
    assert mann_whitney(np.array([1.0, 1.5]), np.array([1.0, 2, 3])) == pytest.approx((0.6, -0.5))
    # a tie across the groups at the extreme: 1, 1 vs 1, 2, 2: mid-ranks 2, 2 | 2, 4.5, 4.5; W = 4;
    # pairs of {2, 2, 2, 4.5, 4.5}: 3 pairs sum 4, 6 sum 6.5, 1 sums 9 -> P(W <= 4) = 3/10, p = 0.6
    assert mann_whitney(np.array([1.0, 1]), np.array([1.0, 2, 2]))[0] == pytest.approx(0.6)
    assert mann_whitney(np.ones(4), np.ones(3)) == (1.0, 0.0)                     # all equal: no evidence
    assert mann_whitney(np.array([1.0]), np.array([2.0])) == (1.0, -1.0)          # n = 1: p = 1 at best
    assert mann_whitney(np.array([1.0, 2]), np.array([3.0, 4])) == pytest.approx((1 / 3, -1.0))  # n = 2: 2/C(4,2)
    assert all(map(math.isnan, mann_whitney(np.array([]), np.array([1.0]))))


def test_minimum_attainable_p() -> None:
    assert min_attainable_p(5, 5) == pytest.approx(2 / 252) and round(min_attainable_p(5, 5), 4) == 0.0079
    assert min_attainable_p(10, 10) == pytest.approx(2 / 184756)
    assert min_attainable_p(1, 1) == 1.0 and min_attainable_p(2, 2) == pytest.approx(1 / 3)
    assert math.isnan(min_attainable_p(0, 3))
    # it is attained: complete separation at 5 vs 5, by both the rank test and Fisher's test on counts
    assert mann_whitney(np.arange(5.0), np.arange(5.0) + 10)[0] == pytest.approx(2 / 252)
    assert fisher_p(0, 5, 5, 5) == pytest.approx(2 / 252)


def test_fisher_by_hand() -> None:
    # 0/5 vs 4/5 solved: 4 solved among 10; P(0 in the first 5) = C(5,4)/C(10,4) = 5/210, and the
    # mirror table 4/5 vs 0/5 is as extreme: p = 10/210 (the 0.048)
    assert fisher_p(0, 5, 4, 5) == pytest.approx(10 / 210)
    assert fisher_p(2, 2, 2, 2) == 1.0 and math.isnan(fisher_p(0, 0, 1, 2))


def test_bootstrap_intervals_stay_non_negative_where_t_goes_below_zero() -> None:
    losses = np.array([0.001, 0.0009, 0.002, 0.16, 0.001])          # 4 solved seeds and one at the baseline
    assert t_interval(losses)[0] < 0                                 # the mean's t interval: a negative loss
    low, high = median_interval(losses)
    assert 0.0009 <= low <= np.median(losses) <= high <= 0.16
    assert median_interval(losses) == (low, high)                    # fixed seed: the same bytes on regeneration
    assert all(map(math.isnan, median_interval(np.array([0.1]))))    # n = 1: nothing to resample
    assert median_interval(np.array([0.2, 0.2, 0.2])) == (0.2, 0.2)
    d_low, d_high = median_diff_interval(np.array([0.16, 0.165, 0.163, 0.17, 0.158]), losses)
    assert 0 < d_low <= 0.163 - 0.001 <= d_high


# ---------------------------------------------------------------------------- heat map


def test_heat_map_sign_is_defined_when_the_reference_is_no_better_than_the_baseline(tmp_path: Path) -> None:
    from lstm_ablation.report.plots import heat_map, relative_gap

    base = 1 / 6
    # reference worse than the memoryless baseline, variant solves it: better, so negative (blue);
    # the old Δ / (baseline - reference) gave +5.7, painted as a failure
    assert relative_gap(0.01 - 0.2, 0.2, 0.01, base, higher_is_better=False) < 0
    assert relative_gap(0.9 - 0.2, 0.2, 0.9, 0.25, higher_is_better=True) < 0     # accuracy, same story
    assert relative_gap(base - 0.001, 0.001, base, base, higher_is_better=False) == pytest.approx(1.0)  # gain lost
    assert relative_gap(0.0, base, base, base, higher_is_better=False) == 0.0     # both memoryless: no difference
    assert math.isnan(relative_gap(math.nan, base, base, base, higher_is_better=False))
    summary = pd.DataFrame({"task_label": ["adding"] * 2, "cell": ["vanilla", "nfg"], "reference": ["vanilla"] * 2,
                            "median": [0.2, 0.01], "diff": [math.nan, -0.19], "baseline": [base] * 2,
                            "higher_is_better": [False] * 2, "significant": [False, False]})
    assert heat_map(summary, "vanilla", tmp_path / "h.png") and (tmp_path / "h.png").stat().st_size > 1000


# ---------------------------------------------------------------------------- the literature as data

STUDY = """\
# @package _global_
name: toy
report:
  expectations:
    - {cell: no_forget_gate, task: adding, claim: "NFG hurts", source: "Greff et al. 2017", tag: V, expect: worse}
    - {cell: rnn, claim: "the RNN fails", source: "the seed article (H6)", tag: S, expect: fails}
    - {cell: vanilla, claim: "vanilla solves it", source: "H&S 1997", tag: V, expect: solves}
    - {cell: vanilla, claim: "0.01 reported", source: "a paper, Tab. 1", tag: U, expect: matches, value: 0.011}
    - {cell: coupled_gates, claim: "CIFG does not hurt", source: "Greff et al. 2017", tag: V, expect: not_worse}
    - {cell: rnn, task: copy_memory, claim: "on copy", source: "x", tag: U, expect: fails}
"""


@pytest.fixture
def toy_sweep(tmp_path: Path) -> Path:
    s = tmp_path / "sweep"
    num = 0
    for cell, values in [("vanilla", [0.010, 0.011, 0.012, 0.013, 0.014]), ("no_forget_gate", [0.15, 0.16, 0.17, 0.155, 0.165]),
                         ("rnn", [0.16, 0.17, 0.165, 0.012, 0.168])]:
        for seed, v in enumerate(values):
            make_run(s, num, cell, seed, v, threshold=0.05)
            num += 1
    return s


def test_expectation_table_from_a_study_yaml(toy_sweep: Path, tmp_path: Path) -> None:
    (tmp_path / "toy.yaml").write_text(STUDY)
    expectations = from_study_yaml(tmp_path / "toy.yaml")
    out = write_report([toy_sweep], tmp_path / "reports" / "toy", plots=False, expectations=expectations)
    table = pd.read_csv(out / "expectations.csv", keep_default_na=False)
    agrees = {(r["cell"], r["expect"], r["task_label"]): r["agrees"] for _, r in table.iterrows()}
    # 5 vs 5 complete separation: p = 2/252 = 0.0079, Holm over 2 variants -> 0.016 < 0.05
    assert agrees[("no_forget_gate", "worse", "adding")] == "yes"
    assert agrees[("rnn", "fails", "adding")] == "yes"                  # 1 of 5 seeds solved
    assert agrees[("vanilla", "solves", "adding")] == "yes"
    assert agrees[("vanilla", "matches", "adding")] == "yes"            # 0.011 inside the median's interval
    assert agrees[("coupled_gates", "not_worse", "adding")] == "not run"
    assert agrees[("rnn", "fails", "copy_memory")] == "not run"         # a task the study did not run
    readme = (out / "README.md").read_text()
    assert "Published expectations:" in readme and "worse (Greff et al. 2017 [V])" in readme
    assert "| `no_forget_gate` (NFG) |" in readme and "| worse (Greff et al. 2017): yes |" in readme
    assert "5/5 solved, rate [0.478, 1]; median 0.012 [" in readme and "Names: this project's `vanilla` is Greff et al. 2017's NP" in readme
    assert (out / "report.json").read_text().count('"claim"') == 6     # kept for --regenerate
    index = (tmp_path / "reports").joinpath("README.md")
    assert not index.exists()
    reports = regenerate(tmp_path / "reports")                          # a reports dir: the index is written
    assert reports == [out]
    text = index.read_text()
    assert "| [toy](toy/README.md) | 15 (15 completed) |" in text and "| 2 not run, 4 yes |" in text
    assert "| NFG hurts (Greff et al. 2017 [V]) | adding | `no_forget_gate` | worse | Δ median" in text
    assert text.count("(toy/README.md) |\n") == 4                     # the four tested claims, each linked
    untested = text.split("## Claims recorded but not yet tested")[1]
    assert "`coupled_gates`: CIFG does not hurt" in untested and "`rnn`: on copy" in untested
    assert "NFG hurts" not in untested
    # a second study testing the same claims: its rows sit beside the first study's, the claim not repeated
    write_report([toy_sweep], tmp_path / "reports" / "toy_again", plots=False, expectations=expectations)
    regenerate(tmp_path / "reports")
    findings = index.read_text().split("## Findings")[1].split("## Claims")[0]
    rows = [line for line in findings.splitlines() if line.startswith("| ") and "](" in line]
    assert [r.rsplit("| [", 1)[1].split("]")[0] for r in rows[:2]] == ["toy", "toy_again"]
    assert rows[0].startswith("| NFG hurts (Greff et al. 2017 [V]) | adding |")           # the first claim of the study file
    assert rows[1].startswith("| 〃 | adding |") and len(rows) == 8
    before = tree_bytes(tmp_path / "reports")
    regenerate(tmp_path / "reports")
    assert tree_bytes(tmp_path / "reports") == before


def test_expectations_travel_with_the_runs_config(toy_sweep: Path, tmp_path: Path) -> None:
    """A study's report.expectations reach each result.json's config; the report takes them from there."""
    import json

    claims = [{"cell": "rnn", "claim": "the RNN is worse", "source": "s", "tag": "U", "expect": "better"}]
    for path in toy_sweep.glob("*/result.json"):
        record = json.loads(path.read_text())
        record["config"]["report"] = {"reference": "vanilla", "expectations": claims}
        path.write_text(json.dumps(record))
    out = write_report([toy_sweep], tmp_path / "rep", plots=False)
    row = pd.read_csv(out / "expectations.csv", keep_default_na=False).iloc[0]
    assert (row["cell"], row["expect"], row["agrees"]) == ("rnn", "better", "no")   # significantly worse instead


@pytest.mark.parametrize("entry, field", [
    ({"expect": "wrose"}, "report.expectations[0].expect: got 'wrose'; allowed: solves, fails"),
    ({"cell": "vanila"}, "report.expectations[0].cell: unknown cell 'vanila'"),
    ({"tag": "X"}, "report.expectations[0].tag: got 'X'; allowed: V, S, U"),
    ({"expect": "matches"}, "report.expectations[0].value: expect 'matches' needs the published number"),
    ({"claim": ""}, "report.expectations[0].claim"),
    ({"paper": "x"}, "report.expectations[0].paper: unknown key"),
    ({"task": "adding_problem"}, "report.expectations[0].task: unknown task 'adding_problem'"),
])
def test_bad_expectations_name_the_field(entry: dict, field: str) -> None:
    good = {"cell": "vanilla", "claim": "c", "source": "s", "tag": "V", "expect": "solves"}
    with pytest.raises(ConfigError, match=None) as e:
        parse([{**good, **entry}])
    assert field in str(e.value) and "\n" not in str(e.value)


def test_bad_expectations_stop_a_job_and_the_report_cli(make_cfg, tmp_path: Path, toy_sweep: Path, capsys) -> None:
    from lstm_ablation.train import validate

    with pytest.raises(ConfigError, match=r"report.expectations\[0\].expect"):
        validate(make_cfg("report.expectations=[{cell: vanilla, claim: c, source: s, tag: V, expect: wins}]"))
    (tmp_path / "bad.yaml").write_text("report:\n  expectations:\n    - {cell: vanilla}\n")
    with pytest.raises(SystemExit) as e:
        main([str(toy_sweep), "--out", str(tmp_path / "rep"), "--expectations", str(tmp_path / "bad.yaml")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "--expectations: " in err and "claim" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "rep").exists()


def test_every_study_states_its_expectations_and_ten_seeds() -> None:
    import yaml

    root = Path(__file__).resolve().parents[1] / "experiments"
    for path in sorted(root.glob("*.yaml")):
        expectations = from_study_yaml(path)
        assert expectations, f"{path.name}: no report.expectations"
        study = yaml.safe_load(path.read_text())
        if "confirm" in study.get("tune", {}):  # a tuned study: verdicts come from its confirmation seeds (tune.py)
            assert study["tune"]["confirm"]["seeds"] == 10, path.name
            continue
        seeds = str(study["hydra"]["sweeper"]["params"]["seed"])
        assert seeds == ",".join(map(str, range(10))), path.name


def test_the_index_never_replaces_a_hand_written_readme(toy_sweep: Path, tmp_path: Path) -> None:
    write_report([toy_sweep], tmp_path / "project" / "reports" / "toy", plots=False)
    (tmp_path / "project" / "README.md").write_text("# my project\n")
    regenerate(tmp_path / "project")                                   # e.g. `--regenerate .` in a repository
    assert (tmp_path / "project" / "README.md").read_text() == "# my project\n"
    regenerate(tmp_path / "project" / "reports")
    assert "[toy](toy/README.md)" in (tmp_path / "project" / "reports" / "README.md").read_text()


def test_agreement_rules() -> None:
    from lstm_ablation.report.literature import judge

    base = {"launched": 10, "completed": 10, "diverged": 0, "solved": 3, "solved_threshold": 0.01, "median": 0.1,
            "ci95_low": 0.05, "ci95_high": 0.15, "note": "", "reference": "vanilla", "diff": 0.05, "diff_ci95_low": 0.01,
            "diff_ci95_high": 0.09, "p_holm": 0.2, "p_min_holm": 0.0001, "higher_is_better": False}
    row = pd.Series(base)

    def agrees(expect: str, **changes) -> str:
        exp = {"expect": expect, "value": changes.pop("value", None), "tolerance": changes.pop("tolerance", None)}
        return judge(exp, pd.Series({**base, **changes}), alpha=0.05)[1]

    assert agrees("worse") == "no (n.s.)" and agrees("worse", p_min_holm=0.08) == "too few seeds"
    assert agrees("worse", p_holm=0.01) == "yes" and agrees("better", p_holm=0.01) == "no"
    assert agrees("better", p_holm=0.01, higher_is_better=True) == "yes"           # +Δ in accuracy is better
    assert agrees("not_worse") == "yes" and agrees("not_worse", p_holm=0.01) == "no"
    assert agrees("not_worse", p_min_holm=0.08) == "too few seeds"
    # a "yes" to not_worse says how much worse the data still allow: the interval's unfavourable end
    found = judge({"expect": "not_worse"}, row, alpha=0.05)[0]
    assert found.endswith("; worse by at most 0.09 (180% of vanilla's median 0.05)")      # a loss: Δ up to +0.09
    wide = pd.Series({**base, "diff_ci95_high": 0.16, "median": 0.00011, "diff": 5e-05})   # a bimodal cell
    assert judge({"expect": "not_worse"}, wide, alpha=0.05)[0].endswith("at most 0.16 (2,667x vanilla's median 6e-05)")
    accuracy = pd.Series({**base, "higher_is_better": True, "median": 0.9, "diff": -0.01, "diff_ci95_low": -0.03})
    assert judge({"expect": "not_worse"}, accuracy, alpha=0.05)[0].endswith("at most 0.03 (3% of vanilla's median 0.91)")
    better = pd.Series({**base, "diff_ci95_low": -0.09, "diff_ci95_high": -0.01})
    assert judge({"expect": "not_worse"}, better, alpha=0.05)[0].endswith("; the interval excludes any worsening")
    assert "at most" not in judge({"expect": "not_worse"}, pd.Series({**base, "p_holm": 0.01}), alpha=0.05)[0]  # "no": Δ says it
    assert agrees("fails") == "yes" and agrees("solves") == "no" and agrees("solves", solved=5) == "unclear (half the seeds)"
    assert agrees("solves", solved=4, diverged=2) == "no"                          # 4 of 12 trained seeds
    # the solve rate's exact 95% interval: 6/10 cannot be told from a rate below one half
    assert judge({"expect": "solves"}, pd.Series({**base, "solved": 6}), 0.05)[0].startswith("6/10 solved, rate [0.262, 0.878]; ")
    assert agrees("matches", value=0.12) == "yes" and agrees("matches", value=0.2) == "no"
    assert agrees("matches", value=0.2, tolerance=0.1) == "yes"
    assert agrees("worse", note="reference") == "–" and judge({"expect": "worse"}, None, 0.05) == ("not run", "not run")
    assert "p(Holm) 0.200 (n=10)" in judge({"expect": "worse"}, row, 0.05)[0]


@pytest.mark.slow
def test_committed_reports_regenerate_byte_identical(tmp_path: Path) -> None:
    """`lstm-ablate-report --regenerate reports/` on a copy of the committed reports changes no byte."""
    import shutil

    committed = Path(__file__).resolve().parents[1] / "reports"
    shutil.copytree(committed, tmp_path / "reports")
    before = tree_bytes(tmp_path / "reports")
    main(["--regenerate", str(tmp_path / "reports")])
    assert tree_bytes(tmp_path / "reports") == before


def test_the_index_states_each_studys_compute() -> None:
    """CPU-hours weigh each job by its threads (unset counts as 1, and says so); the span runs from
    the first job's start to the last one's finish."""
    import pandas as pd

    from lstm_ablation.report.literature import compute

    runs = pd.DataFrame({"duration_s": [3600.0, 1800.0, None], "config.num_threads": [2, None, 1],
                         "finished": ["2026-11-29T10:00:00Z", "2026-11-29T12:00:00Z", None]})
    assert compute(runs) == ("Compute: 2.50 CPU-hours (1.50 job-hours; 1 job(s) without num_threads counted as 1 thread), "
                             "3.00 h from the first job's start to the last one's finish.")
    assert compute(pd.DataFrame({"status": ["missing"]})) == "Compute: not recorded."
    # a job on a GPU is not CPU-hours: counted apart, found by its recorded device or its trainer=gpu config
    on_gpu = pd.DataFrame({"duration_s": [3600.0, 1800.0, 900.0], "config.num_threads": [2, 1, 1],
                           "config.trainer.accelerator": ["auto", "gpu", "auto"],
                           "device": ["cpu", None, "cuda (NVIDIA H200)"]})
    assert compute(on_gpu) == "Compute: 2.00 CPU-hours (1.00 job-hours) and 0.75 job-hours on a GPU (2 runs)."
    assert compute(on_gpu.iloc[:2]).endswith("and 0.50 job-hours on a GPU (1 run).")


def test_the_index_counts_a_run_shown_by_two_reports_once(toy_sweep: Path, tmp_path: Path) -> None:
    """A check report reuses a study's runs (vanilla's confirmation runs, say): the index says how much of
    its compute is shared and counts each run once in the total. Here `check` shows the toy sweep again,
    from another common folder (so its `run` column differs), beside a sweep of its own."""
    other = tmp_path / "other" / "sweep2"
    for seed in range(2):
        make_run(other, seed, "vanilla", seed, 0.02 + seed / 100, threshold=0.05)
    write_report([toy_sweep], tmp_path / "reports" / "study", plots=False)
    write_report([toy_sweep, other], tmp_path / "reports" / "check", plots=False)
    regenerate(tmp_path / "reports")
    index = (tmp_path / "reports" / "README.md").read_text()
    study = next(line for line in index.splitlines() if "(study/README.md)" in line)
    check = next(line for line in index.splitlines() if "(check/README.md)" in line)
    # make_run records 1 s per job, one thread: 15 toy runs (0.0042 CPU-hours), 2 runs of the check's own
    assert "; 0.00 CPU-hours of it in 15 runs that other reports also show." in study
    assert "; 0.00 CPU-hours of it in 15 runs that other reports also show." in check and "| 17 (17 completed) |" in check
    assert "All reports together: 17 distinct runs, 0.00 CPU-hours (a run shown by several reports counted once)." in index
