"""Per-cell tuning (lstm_ablation.tune): the search space, the trial bookkeeping, resume, two workers
on one storage, and the tiny tuned sweep end to end into a report."""
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from conftest import TINY
from lstm_ablation import CellSpec, LSTMLayer
from lstm_ablation.spec import ConfigError
from lstm_ablation.tune import Point, check_settings, chosen, claims, consistent, distribution, objective, parse_space, run

BIN = Path(sys.executable).parent
SPACE = "tune.space={optim.lr: 'tag(log, interval(1e-3, 1e-1))', cell.input_bias: 'interval(-2.0, 0.0)'}"


def lstm_ablate(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lstm-ablate"), *args], cwd=cwd, capture_output=True, text=True, timeout=600, **kw)


# ---------------------------------------------------------------------------- the cell's new biases

def test_input_and_output_bias_set_the_initial_gate_biases():
    layer = LSTMLayer(CellSpec(input_bias=-2.0, output_bias=0.5, forget_bias=1.5), input_size=3, hidden_size=4)
    gates = layer.gate_slices()
    assert torch.all(layer.bias[gates["i"]] == -2.0) and torch.all(layer.bias[gates["o"]] == 0.5)
    assert torch.all(layer.bias[gates["f"]] == 1.5)
    default = LSTMLayer(CellSpec(), input_size=3, hidden_size=4)  # null: nn.LSTM's uniform init, as before
    assert default.bias[default.gate_slices()["i"]].abs().max() <= 0.5 and default.bias[default.gate_slices()["i"]].std() > 0


@pytest.mark.parametrize("changes,field", [
    ({"input_gate": "none", "input_bias": -1.0}, "cell.input_bias"),
    ({"output_gate": "none", "output_bias": 1.0}, "cell.output_bias"),
    ({"input_bias": float("nan")}, "cell.input_bias"),
    ({"input_bias": True}, "cell.input_bias"),
    ({"chrono_t_max": 10, "input_bias": -1.0}, "cell.input_bias"),
])
def test_bias_without_its_gate_is_refused(changes, field):
    with pytest.raises(ConfigError, match=f"^{field}"):
        CellSpec(**changes)


# ---------------------------------------------------------------------------- space and objective

@pytest.mark.parametrize("space,message", [
    (None, "tune.space: got None"),
    ({}, "tune.space: got {}"),
    ({"optim.lr": "interval(1e-3"}, "tune.space.optim.lr: cannot parse"),
    ({"optim.lr": "interval(0.1, 0.01)"}, "tune.space.optim.lr: .* needs low < high"),
    ({"optim.lr": "interval(0.1, 0.1)"}, "needs low < high"),
    ({"optim.lr": "tag(log, interval(0.0, 0.1))"}, "tune.space.optim.lr: a log range needs 0 < low"),
    ({"optim.lr": "tag(log, interval(-1.0, 0.1))"}, "a log range needs 0 < low"),
    ({"optim.lr": "0.01"}, "tune.space.optim.lr: got '0.01'; allowed: interval"),
    ({"optim.lr": 0.01}, "tune.space.optim.lr: got 0.01"),
    ({"seed": "interval(0, 5)"}, "tune.space.seed: cannot be tuned"),
])
def test_bad_space_is_one_clear_line(space, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_space(space)
    assert "\n" not in str(e.value)


def test_space_grammar_gives_optuna_distributions():
    space = parse_space({"optim.lr": "tag(log, interval(1e-4, 1e-1))", "model.hidden_size": "int(interval(8, 64))",
                         "optim.batch_size": "choice(32, 64)"})
    assert space["optim.lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert space["model.hidden_size"] == optuna.distributions.IntDistribution(8, 64)
    assert space["optim.batch_size"] == optuna.distributions.CategoricalDistribution([32, 64])
    assert distribution("x", "interval(0, 3)") == optuna.distributions.FloatDistribution(0.0, 3.0)


def test_objective_is_best_validation_value_and_baseline_when_diverged():
    record = {"status": "completed", "metric": "accuracy", "metrics": {"val/accuracy_best": 0.75, "test/accuracy": 0.7}, "baseline": 0.25}
    assert objective(record) == 0.75
    assert objective({**record, "status": "diverged", "metrics": {}}) == 0.25  # never NaN
    assert objective({**record, "status": "failed"}) is None


# ---------------------------------------------------------------------------- bookkeeping

class FakeTrial:
    def __init__(self, number, state="RUNNING", **attrs):
        self.number, self.user_attrs = number, attrs
        self.state = type("S", (), {"name": state})()


def test_claims_replay_gives_each_slot_once_whatever_the_order():
    trials = [FakeTrial(0, "COMPLETE", slot=0, job_status="completed"), FakeTrial(1, "FAIL"),  # 1: interrupted
              FakeTrial(2, slot=1), FakeTrial(3), FakeTrial(4), FakeTrial(5)]
    held = claims(trials, [0, 1, 2, 3])
    assert held == {0: 0, 2: 1, 3: 2, 4: 3, 5: None}  # 5 asked beyond the budget: surplus
    assert claims(list(reversed(trials)), [0, 1, 2, 3]) == held


def value(lr: float, seed: int) -> float:
    """A fake validation loss: the distance from lr 0.01, plus luck that depends on the seed."""
    return abs(lr - 0.01) + (hash((round(lr, 12), seed)) % 1000) / 1e5


def fake_launch(sweep_dir: Path, delay: float):
    """Stands in for hydra's launcher: each 'job' writes the result.json a real job would."""
    def launch(batch):
        for overrides in batch:
            o = dict(x.split("=", 1) for x in overrides)
            job_dir = sweep_dir / o["hydra.sweep.subdir"]
            job_dir.mkdir(parents=True)  # fails if two workers ever ran the same job
            (job_dir / "result.json").write_text(json.dumps({
                "status": "completed", "metric": "loss", "baseline": 1.0, "seed": int(o["seed"]),
                "metrics": {"val/loss_best": value(float(o["optim.lr"]), int(o["seed"]))}, "stage": o["tune.stage"],
                "cell": o["cell"], "trial": int(o["tune.trial"]), "worker": os.getpid()}))
            time.sleep(delay)
        return [None] * len(batch)
    return launch


def worker(url: str, sweep_dir: str, delay: float) -> None:
    import lstm_ablation.tune
    lstm_ablation.tune.POLL_S = 0.05  # waiting for the other worker's trials: poll fast in a test
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    points = []
    for cell in ("vanilla", "rnn"):
        point = Point([f"cell={cell}"], [f"cell={cell}"], cell, 0, parse_space({"optim.lr": "tag(log, interval(1e-4, 1e-1))"}), [1, 2, 3],
                      top_k=2, rescore_seeds=[4, 5])
        for stage in ("tune", "rescore", "confirm"):
            point.studies[stage] = optuna.create_study(storage=storage, study_name=f"t/{cell}/{stage}", load_if_exists=True)
        points.append(point)
    assert run(points, n_trials=5, n_jobs=2, sweep_dir=Path(sweep_dir), launch=fake_launch(Path(sweep_dir), delay)) == 0


def test_two_workers_on_one_sqlite_storage_never_run_the_same_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=url, study_name="warm-up")  # the schema exists before two processes race to create it
    ctx = multiprocessing.get_context("fork")  # no re-import of torch in each worker
    workers = [ctx.Process(target=worker, args=(url, str(tmp_path), 0.02)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0, 0]
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*/result.json")]
    for cell in ("vanilla", "rnn"):
        tune = [r for r in records if r["cell"] == cell and r["stage"] == "tune"]
        confirm = [r for r in records if r["cell"] == cell and r["stage"] == "confirm"]
        assert len(tune) == 5 and sorted(r["seed"] for r in confirm) == [1, 2, 3]  # exact budget, each seed once
        study = optuna.load_study(storage=url, study_name=f"t/{cell}/tune")
        assert sum(t.state.name == "COMPLETE" for t in study.trials) == 5
        # re-score: the two best stage-1 trials, each once on seeds 4 and 5 (after the confirmation seeds)
        top = sorted(tune, key=lambda r: r["metrics"]["val/loss_best"])[:2]
        rescore = [r for r in records if r["cell"] == cell and r["stage"] == "rescore"]
        assert sorted((r["trial"], r["seed"]) for r in rescore) == sorted((r["trial"], s) for r in top for s in (4, 5))
        # stage 2 confirms the candidate with the lowest mean over seeds 0, 4 and 5
        mean = {r["trial"]: statistics.mean([r["metrics"]["val/loss_best"], *(x["metrics"]["val/loss_best"] for x in rescore
                                                                              if x["trial"] == r["trial"])]) for r in top}
        assert {r["trial"] for r in confirm} == {min(mean, key=mean.get)}
    assert len({p.parent.name for p in tmp_path.glob("*/result.json")}) == len(records) == 24
    assert len({r["worker"] for r in records}) == 2  # both workers took part


def test_rescoring_confirms_the_best_mean_not_the_luckiest_trial(tmp_path):
    """The sLSTM case (reports/slstm_lr_check): the best-of-N on the tuning seed is a setting that was
    lucky on it; re-scored on fresh seeds, the runner-up has the better mean and is the one confirmed.
    A candidate whose re-score run failed ranks after every complete one."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    lr = {"optim.lr": FloatDistribution(1e-4, 1e-1, log=True)}
    point = Point(["cell=slstm"], ["cell=slstm"], "slstm", 0, lr, [1, 2], direction="maximize", top_k=3, rescore_seeds=[3])
    point.studies = {stage: optuna.create_study(direction="maximize") for stage in ("tune", "rescore", "confirm")}
    for rate, val in [(0.085, 0.950), (0.0044, 0.937), (0.02, 0.930), (0.001, 0.60)]:
        point.studies["tune"].add_trial(create_trial(params={"optim.lr": rate}, distributions=lr, value=val))
    assert point.studies["tune"].best_trial.number == 0

    def rescored(number, value, state=TrialState.COMPLETE):
        point.studies["rescore"].add_trial(create_trial(
            state=state, value=value, user_attrs={"slot": f"t{number}-s3", "overrides": ["seed=3", f"tune.trial={number}"],
                                                  "job_status": "completed" if value else "failed"}))

    rescored(0, 0.86)
    rescored(1, 0.925)
    rescored(2, None, TrialState.FAIL)  # would be best on its stage-1 value alone if a failure were skipped
    assert chosen(point).number == 1    # means: t0 0.905, t1 0.931; t2 failed
    point.top_k = 0
    assert chosen(point).number == 0    # re-scoring off: the best-of-N, as before

    # a sweep confirmed with the re-score's pick cannot be resumed without re-scoring, nor the reverse
    point.top_k = 3
    point.studies["confirm"].add_trial(create_trial(value=0.93, user_attrs={"overrides": ["seed=1", "tune.trial=1"], "slot": 1,
                                                                             "job_status": "completed"}))
    consistent(point)
    point.top_k = 0
    with pytest.raises(ConfigError, match="confirmed with trial 1, not its best-of-N trial 0"):
        consistent(point)
    point.top_k, point.studies["rescore"] = 3, optuna.create_study(direction="maximize")
    consistent(point)  # re-scoring a sweep confirmed without it is allowed (plan() reports a different pick)
    # a sweep made before trials stored their overrides: the confirmed trial is read from the job's record
    old = tmp_path / "confirm-slstm-c0-s1"
    old.mkdir()
    (old / "result.json").write_text(json.dumps({"status": "completed", "config": {"tune": {"stage": "confirm", "trial": 1}}}))
    point.top_k, point.studies["confirm"] = 0, optuna.create_study(direction="maximize")
    point.studies["confirm"].add_trial(create_trial(value=0.93, user_attrs={"job_dir": str(old), "slot": 1, "job_status": "completed"}))
    with pytest.raises(ConfigError, match="confirmed with trial 1, not its best-of-N trial 0"):
        consistent(point)


def test_with_no_complete_candidate_the_pick_is_the_best_mean_of_the_values_there_are():
    """Every candidate has a failed re-score run: the pick is the best mean over the runs that have a
    value. A failed run is left out, not counted as 0 (for a loss, 0 would make a failure look best);
    the report's Re-score table (report.tuning.rescored) picks the same trial."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from lstm_ablation.report.tuning import rescored as report_rescored

    lr = {"optim.lr": FloatDistribution(1e-4, 1e-1, log=True)}
    point = Point(["cell=vanilla"], ["cell=vanilla"], "vanilla", 0, lr, [1, 2], direction="minimize", top_k=2,
                  rescore_seeds=[3, 4])
    point.studies = {stage: optuna.create_study(direction="minimize") for stage in ("tune", "rescore", "confirm")}
    for rate, val in [(0.01, 0.08), (0.003, 0.09), (0.05, 0.5)]:
        point.studies["tune"].add_trial(create_trial(params={"optim.lr": rate}, distributions=lr, value=val))
    runs = []
    for number, seed, value in [(0, 3, None), (0, 4, None), (1, 3, 0.06), (1, 4, None)]:
        point.studies["rescore"].add_trial(create_trial(
            state=TrialState.COMPLETE if value is not None else TrialState.FAIL, value=value,
            user_attrs={"slot": f"t{number}-s{seed}", "overrides": [f"seed={seed}", f"tune.trial={number}"]}))
        runs.append({"cell": "vanilla", "config.tune.stage": "rescore", "config.tune.trial": number, "seed": seed,
                     "objective": value if value is not None else float("nan")})
    assert chosen(point).number == 1    # known means: t0 0.08 (both failed), t1 (0.09 + 0.06) / 2 = 0.075
    for number, val in [(0, 0.08), (1, 0.09), (2, 0.5)]:
        runs.append({"cell": "vanilla", "config.tune.stage": "tune", "config.tune.trial": number, "seed": 0, "objective": val})
    table = report_rescored(pd.DataFrame(runs), "vanilla", higher=False)
    assert [c["trial"] for c in table] == [0, 1] and [c["trial"] for c in table if c["pick"]] == [1]



def test_ties_on_a_saturated_accuracy_go_to_the_lower_validation_loss_in_the_sweep_and_in_its_report(tmp_path):
    """Continual Reber: five of eight trials reach string accuracy 1.0. Under `tune.tie_break: val_loss` the
    re-score takes the three with the lowest best validation loss, and among candidates whose means tie it
    picks the lowest mean validation loss; `earliest` takes the trial numbers. A trial told before trials
    held their loss is read from its record. The report's Re-score table and best trial agree."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from lstm_ablation.report.tuning import by_rank, rescored as report_rescored, tied_best
    from lstm_ablation.tune import candidates, tell

    lr = {"optim.lr": FloatDistribution(1e-4, 1e-1, log=True)}
    point = Point(["cell=vanilla"], ["cell=vanilla"], "vanilla", 0, lr, [1, 2], direction="maximize", top_k=3,
                  rescore_seeds=[11], tie_break="val_loss")
    point.studies = {stage: optuna.create_study(direction="maximize") for stage in ("tune", "rescore", "confirm")}
    stage1 = [(1.0, 0.30), (0.9, 0.10), (1.0, 0.05), (1.0, 0.20), (0.6, 0.01), (1.0, 0.08), (1.0, None)]
    old = tmp_path / "tune-vanilla-t6"   # told before trials held their loss: read from the job's record
    old.mkdir()
    (old / "result.json").write_text(json.dumps({"status": "completed", "metrics": {"val/loss_best": 0.02}}))
    runs = []
    for number, (value, loss) in enumerate(stage1):
        attrs = {"job_dir": str(old)} if loss is None else {"val_loss_best": loss}
        point.studies["tune"].add_trial(create_trial(params={"optim.lr": 0.01}, distributions=lr, value=value, user_attrs=attrs))
        runs.append({"cell": "vanilla", "config.tune.stage": "tune", "config.tune.trial": number, "seed": 0, "status": "completed",
                     "objective": value, "metrics.val/loss_best": 0.02 if loss is None else loss, "config.tune.tie_break": "val_loss"})
    assert [t.number for t in candidates(point)] == [6, 2, 5]            # value 1.0, then the lowest losses
    point.tie_break = "earliest"
    assert [t.number for t in candidates(point)] == [0, 2, 3]
    point.tie_break, point.top_k = "val_loss", 0
    assert chosen(point).number == 6                                      # the best-of-N breaks its tie the same way
    point.top_k = 3
    # each candidate solves its re-score seed too: the means tie at 1.0, so the lower mean loss is the pick
    for number, loss in [(6, 0.09), (2, 0.03), (5, 0.04)]:
        trial = point.studies["rescore"].ask()
        point.studies["rescore"]._storage.set_trial_user_attr(trial._trial_id, "overrides", ["seed=11", f"tune.trial={number}"])
        tell(point.studies["rescore"], trial._trial_id, {"status": "completed", "metric": "string_accuracy",
                                                        "metrics": {"val/string_accuracy_best": 1.0, "val/loss_best": loss}}, None)
        runs.append({"cell": "vanilla", "config.tune.stage": "rescore", "config.tune.trial": number, "seed": 11, "status": "completed",
                     "objective": 1.0, "metrics.val/loss_best": loss, "config.tune.tie_break": "val_loss"})
    assert chosen(point).number == 2                                      # mean losses: t6 0.055, t2 0.04, t5 0.06
    table = report_rescored(pd.DataFrame(runs), "vanilla", higher=True)
    assert [c["trial"] for c in table] == [6, 2, 5] and [c["trial"] for c in table if c["pick"]] == [2]
    first = pd.DataFrame([r for r in runs if r["config.tune.stage"] == "tune"])
    assert int(by_rank(first, higher=True)["config.tune.trial"].iloc[0]) == 6
    assert tied_best(first, ["vanilla"], higher=True, top_k=3) == []   # the losses break the tie: nothing left to the rule
    earliest = first.assign(**{"config.tune.tie_break": "earliest"})
    assert int(by_rank(earliest, higher=True)["config.tune.trial"].iloc[0]) == 0
    assert tied_best(earliest, ["vanilla"], higher=True, top_k=3) == ["`vanilla`: 5 trials tie at 1 (trials 0, 2, 3, 5, 6)"]


def test_the_report_names_a_cell_whose_best_value_ties_across_more_trials_than_the_re_score_takes():
    """Continual Reber: many trials reach string accuracy 1.0 on the tuning seed. Which three the re-score
    takes is then the tie rule's choice (the earliest), and the report says so; a tie within top_k is no news."""
    from lstm_ablation.report.tuning import tied_best

    values = {"vanilla": [1.0, 0.5, 1.0, 1.0, 0.9, 1.0], "rnn": [0.5, 0.7, 0.7, 0.6, 0.7, 0.2], "gru": [0.8, 0.8, 0.1]}
    runs = pd.DataFrame([{"cell": cell, "config.tune.stage": "tune", "config.tune.trial": n, "seed": 0, "objective": v}
                         for cell, vs in values.items() for n, v in enumerate(vs)])
    assert tied_best(runs, ["vanilla", "rnn", "gru"], higher=True, top_k=3) == ["`vanilla`: 4 trials tie at 1 (trials 0, 2, 3, 5)"]
    assert tied_best(runs, ["vanilla", "rnn", "gru"], higher=True, top_k=2) == [
        "`vanilla`: 4 trials tie at 1 (trials 0, 2, 3, 5)", "`rnn`: 3 trials tie at 0.7 (trials 1, 2, 4)"]
    assert tied_best(runs, ["rnn"], higher=False, top_k=1) == []   # its lowest value, 0.2, is one trial's


def test_re_scoring_a_confirmed_sweep_reports_a_different_pick_and_runs_no_second_confirmation(tmp_path):
    """`resume=<dir> tune.rescore.top_k=2` on a sweep confirmed with its best-of-N: the re-score runs; when it
    picks another trial, that trial is reported (exit 1) and no seed of it joins the cell's confirmation."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    luck = {4: lambda lr: 10.0 - 100 * abs(lr - 0.01)}  # seed 4 reverses stage 1's order, far apart

    def launch(batch):
        for overrides in batch:
            o = dict(x.split("=", 1) for x in overrides)
            lr, seed = float(o["optim.lr"]), int(o["seed"])
            (tmp_path / o["hydra.sweep.subdir"]).mkdir()
            (tmp_path / o["hydra.sweep.subdir"] / "result.json").write_text(json.dumps({
                "status": "completed", "metric": "loss", "baseline": 1.0,
                "metrics": {"val/loss_best": luck.get(seed, lambda lr: abs(lr - 0.01))(lr)}}))
        return [None] * len(batch)

    def point(top_k):
        p = Point(["cell=vanilla"], ["cell=vanilla"], "vanilla", 0, parse_space({"optim.lr": "tag(log, interval(1e-4, 1e-1))"}),
                  [1, 2, 3], top_k=top_k, rescore_seeds=[4] if top_k else [])
        p.studies = {stage: optuna.create_study(storage=url, study_name=f"t/{stage}", load_if_exists=True) for stage in ("tune", "rescore", "confirm")}
        return p

    first = point(0)
    assert run([first], n_trials=4, n_jobs=1, sweep_dir=tmp_path, launch=launch) == 0
    best = first.studies["tune"].best_trial
    again = point(2)
    consistent(again)
    assert run([again], n_trials=4, n_jobs=1, sweep_dir=tmp_path, launch=launch) == 0
    runner_up = sorted(t.value for t in again.studies["tune"].trials)[1]
    runner_up = next(t.number for t in again.studies["tune"].trials if t.value == runner_up)
    assert again.unconfirmed_pick == (best.number, runner_up)
    assert sorted(p.name for p in tmp_path.glob("rescore-*")) == sorted(f"rescore-vanilla-t{n}-s4" for n in (best.number, runner_up))
    assert len(list(tmp_path.glob("confirm-*"))) == 3  # the best-of-N's three seeds, nothing of the pick


def test_the_report_says_when_a_re_score_picks_another_trial_than_the_confirmed_one(tmp_path):
    """Records of a sweep re-scored after its confirmation: trial 0 (best on the tuning seed) confirmed,
    trial 1 the better mean. The statistics stay the confirmed trial's; the header names the pick."""
    from lstm_ablation.report import write_report
    from lstm_ablation.results import write_result

    def job(name, stage, trial, seed, lr, acc):
        config = {"cell": {"name": "slstm"}, "task": {"name": "permuted_digits"}, "seed": seed, "optim": {"lr": lr},
                  "tune": {"stage": stage, "trial": trial, "space": {"optim.lr": "tag(log, interval(1e-4, 1e-1))"}}}
        write_result(tmp_path / "sweep" / name, {
            "status": "completed", "cell": "slstm", "task": "permuted_digits", "seed": seed, "metric": "accuracy",
            "metrics": {"test/accuracy": acc, "val/accuracy_best": acc}, "higher_is_better": True, "baseline": 0.1,
            "solved_threshold": 0.9, "params": 10, "params_recurrent": 8, "duration_s": 1.0, "steps": 5,
            "git": {"commit": "abc", "dirty": False}, "config": config, "error": None})

    for n, (lr, acc) in enumerate([(0.085, 0.95), (0.0044, 0.937), (0.02, 0.7)]):
        job(f"tune-slstm-t{n}", "tune", n, 0, lr, acc)
    job("rescore-slstm-t0-s11", "rescore", 0, 11, 0.085, 0.86)
    job("rescore-slstm-t1-s11", "rescore", 1, 11, 0.0044, 0.925)
    for seed in (1, 2, 3):
        job(f"confirm-slstm-c{seed}-s{seed}", "confirm", 0, seed, 0.085, 0.88 + seed / 100)
    out = write_report([tmp_path / "sweep"], tmp_path / "report", plots=False, reference="slstm")
    readme = (out / "README.md").read_text()
    assert "confirmed with the best-of-N, where the re-score picks another trial: `slstm` (permuted_digits): trial 1, confirmed 0" in readme
    rows = [line for line in readme.split("Re-score (`tune.rescore`)")[1].splitlines() if line.startswith("| `slstm`")]
    assert rows == ["| `slstm` | 0 | 0.95 | s11 0.86 | 0.905 | – | **yes** |", "| `slstm` | 1 | 0.937 | s11 0.925 | 0.931 | **pick** | – |"]
    summary = pd.read_csv(out / "summary.csv").set_index("cell")
    assert summary.loc["slstm", "launched"] == 3 and summary.loc["slstm", "median"] == pytest.approx(0.9)  # confirmations only


# ---------------------------------------------------------------------------- the command

def tuned(sweep: Path, *extra: str, space: str = SPACE) -> list[str]:
    return ["-m", "hydra/sweeper=tune", "cell=vanilla,no_input_gate", space, "tune.n_trials=3", "tune.confirm.seeds=2",
            "tune.n_jobs=1", *TINY, "num_threads=1", "probe.enabled=false", "name=tiny_tuned", f"hydra.sweep.dir={sweep}", *extra]


@pytest.mark.parametrize("override,message", [
    ("tune.n_trials=0", "tune.n_trials: got 0; allowed: an integer >= 1"),
    ("tune.space={optim.lrr: 'interval(0.001, 0.01)'}", "tune.space.optim.lrr: unknown parameter"),
    ("tune.space={optim.lr: 'interval(0.01, 0.001)'}", "tune.space.optim.lr: 'interval(0.01, 0.001)' needs low < high"),
    ("tune.pruner=fast", "tune.pruner: got 'fast'; allowed: null (no pruning), median, hyperband"),
    ("tune.rescore.top_k=-1", "tune.rescore.top_k: got -1; allowed: an integer >= 0"),
    ("tune.tie_break=lowest", "tune.tie_break: got 'lowest'; allowed: val_loss, earliest"),
])
def test_bad_tuning_input_stops_before_any_job(tmp_path, override, message):
    sweep = tmp_path / "sweep"
    args = tuned(sweep, space=override) if override.startswith("tune.space") else [*tuned(sweep), override]
    done = lstm_ablate(*args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-ablate: error: ") and message in lines[0], done.stderr[-2000:]
    assert not any(sweep.glob("*/result.json")) and not (sweep / "optuna.db").exists()


def test_a_study_run_one_cell_per_sweep_skips_the_biases_its_cell_lacks(tmp_path):
    """experiments/seed_gates_tuned.yaml run as one sweep per cell: no_input_gate has no b_i, so the
    study's cell.input_bias applies to no cell of that sweep; it is not searched, and the sweep runs.
    Its report's gradient table, like its statistics, is about the confirmation runs only."""
    sweep = tmp_path / "sweep"
    done = lstm_ablate("-m", "hydra/sweeper=tune", "cell=no_input_gate", SPACE, "tune.n_trials=2", "tune.confirm.seeds=1",
                       "tune.n_jobs=1", *TINY, "num_threads=1", "report.after_sweep=true", "name=one_cell",
                       f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    trial = json.loads((sweep / "tune-no_input_gate-t0" / "result.json").read_text())
    assert trial["config"]["cell"]["input_bias"] is None and trial["status"] == "completed"
    assert (sweep / "confirm-no_input_gate-c0-s1" / "result.json").is_file()
    gradients = (sweep / "report" / "README.md").read_text().split("## Gradient flow and gates")[1]
    row = next(line for line in gradients.splitlines() if line.startswith("| no_input_gate"))
    assert [c.strip() for c in row.split("|")[1:4]] == ["no_input_gate", "adding", "1"]  # seed 1 only, not the trials' seed 0


@pytest.mark.parametrize("key, value, line", [
    ("pruner", "Median", "tune.pruner: got 'Median'; allowed: null (no pruning), median, hyperband"),
    ("pruner_startup_trials", -1, "tune.pruner_startup_trials: got -1; allowed: an integer >= 0"),
    ("pruner_warmup_steps", 2.5, "tune.pruner_warmup_steps: got 2.5; allowed: an integer >= 0"),
    ("pruner_warmup_steps", True, "tune.pruner_warmup_steps: got True; allowed: an integer >= 0"),
])
def test_bad_pruner_settings_are_one_line(make_cfg, key, value, line):
    cfg = make_cfg()
    cfg.tune[key] = value
    with pytest.raises(ConfigError, match=re.escape(line)):
        check_settings(cfg.tune)
    check_settings(make_cfg("tune.pruner=hyperband").tune)  # the defaults with a pruner pass


@pytest.mark.parametrize("kind, expected", [("median", "MedianPruner"), ("hyperband", "HyperbandPruner")])
def test_pruners_count_in_training_steps(kind, expected):
    from lstm_ablation.tune_pruning import build_pruner

    pruner = build_pruner(kind, startup_trials=2, warmup_steps=500, first_step=250, max_steps=4000)
    assert type(pruner).__name__ == expected
    if kind == "median":
        assert pruner._n_startup_trials == 2 and pruner._n_warmup_steps == 500
    else:  # budgets from the warm-up (or the first validation, if later) to the full budget: 2 brackets, not 8 from step 1
        assert (pruner._min_resource, pruner._max_resource) == (500, 4000)


def test_tiny_tuned_sweep_with_the_median_pruner(tmp_path):
    """1 cell x 4 trials, one at a time, the median pruner after 1 finished trial: each stage-1 job reports its
    validations to its trial; one below the median is pruned, recorded and told PRUNED; stage 2 never reports."""
    sweep = tmp_path / "sweep"
    done = lstm_ablate("-m", "hydra/sweeper=tune", "cell=vanilla", "tune.space={optim.lr: 'tag(log, interval(1e-4, 1.0))'}",
                       "tune.n_trials=4", "tune.confirm.seeds=1", "tune.n_jobs=1", "tune.pruner=median",
                       "tune.pruner_startup_trials=1", *TINY, "trainer.max_steps=9", "num_threads=1", "probe.enabled=false",
                       "name=tiny_pruned", f"hydra.sweep.dir={sweep}", "report.after_sweep=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep: 4/5 completed, 1 pruned" in done.stderr
    url = f"sqlite:///{sweep / 'optuna.db'}"
    trials = optuna.load_study(storage=url, study_name="tiny_pruned/cell=vanilla/tune").trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    completed = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(pruned) == 1 and len(completed) == 3
    for t in completed:  # every validation reported, at its training step; the value told is the best of them
        assert sorted(t.intermediate_values) == [3, 6, 9] and t.value == min(t.intermediate_values.values())
    t = pruned[0]
    record = json.loads((sweep / f"tune-vanilla-t{t.number}" / "result.json").read_text())
    assert record["status"] == "pruned" and record["pruned_at_step"] == record["steps"] == t.last_step < 9
    assert "test/loss" not in record["metrics"]  # stopped: no test
    # the median rule over the trials that had finished before it (n_jobs=1: the earlier numbers)
    before = [u.intermediate_values[t.last_step] for u in completed if u.number < t.number]
    assert t.intermediate_values[t.last_step] > statistics.median(before)
    confirm = optuna.load_study(storage=url, study_name="tiny_pruned/cell=vanilla/confirm").trials
    assert [c.state.name for c in confirm] == ["COMPLETE"] and confirm[0].intermediate_values == {}  # never pruned
    stage1 = (sweep / "report" / "README.md").read_text().split("### adding: stage 1")[1]
    assert "| `vanilla` | 3/4 (1 pruned) |" in stage1


@pytest.mark.parametrize("left", ["interrupted", "completed", None])
def test_a_trial_whose_sweeper_died_runs_again_in_place_unless_its_job_finished(tmp_path, left):
    """SIGTERM makes a job write an `interrupted` record before the sweep exits; SIGKILL leaves none.
    Either way the trial did not finish: on resume it runs again in its own dir with its own overrides
    (train.py continues from checkpoints/last.ckpt), keeping its number, slot and parameters; a job that
    completed while its sweeper died is told from its record, not run twice."""
    from lstm_ablation.tune import Point, reap, rerun, worker_id

    study = optuna.create_study(direction="minimize")
    trial = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
    job_dir = tmp_path / f"tune-vanilla-t{trial.number}"
    (job_dir / "checkpoints").mkdir(parents=True)
    (job_dir / "checkpoints" / "last.ckpt").write_bytes(b"the job's progress")
    overrides = ["cell=vanilla", f"optim.lr={trial.params['optim.lr']}", "seed=0", "tune.stage=tune", "tune.trial=0"]
    for key, value in (("job_dir", str(job_dir)), ("slot", 0), ("overrides", overrides),
                       ("worker", f"{socket.gethostname()}:{2**22 + 12345}")):  # a pid that is not running here
        trial.set_user_attr(key, value)
    if left is not None:
        record = {"status": left, "metric": "loss", "metrics": {"val/loss_best": 0.5} if left == "completed" else {}}
        (job_dir / "result.json").write_text(json.dumps(record))
    assert reap(study, room=0) == []  # no room: nothing taken over yet (a finished job is told all the same)
    again = reap(study, room=1)
    (only,) = study.get_trials(deepcopy=False)
    if left == "completed":
        assert again == [] and only.state.name == "COMPLETE" and only.value == 0.5
        return
    assert [t.number for t in again] == [trial.number] and only.state.name == "RUNNING"
    assert only.user_attrs["worker"] == worker_id()  # taken over: not stale while this sweeper lives
    assert reap(study, room=1) == []  # and not taken twice
    point = Point(["cell=vanilla"], ["cell=vanilla"], "vanilla", 0, {}, [1])
    job = rerun(point, "tune", study, again[0])
    assert job.overrides == overrides and job.job_dir == job_dir and job.slot == 0 and job.trial._trial_id == trial._trial_id
    assert (job_dir / "checkpoints" / "last.ckpt").read_bytes() == b"the job's progress"  # kept to resume from


def cut_trial(study, job_dir: Path, slot, overrides: list[str]):
    """A trial left RUNNING by a sweeper that died mid-job (its worker's pid is not running here)."""
    trial = study.ask()
    for key, value in (("job_dir", str(job_dir)), ("slot", slot), ("overrides", overrides),
                       ("worker", f"{socket.gethostname()}:{2**22 + 12345}")):
        trial.set_user_attr(key, value)
    return trial


def test_a_resumed_sweep_fills_the_room_beside_its_cut_job(tmp_path):
    """With n_jobs = 2 and one job cut, the first launch after a resume runs the cut job again and one new
    job beside it, in both stages (it used to run the cut job alone, leaving a slot idle for a whole job)."""
    from lstm_ablation.tune import plan

    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    point = Point(["cell=vanilla"], ["cell=vanilla"], "vanilla", 0, {"optim.lr": lr}, [1, 2, 3],
                  studies={"tune": optuna.create_study(), "confirm": optuna.create_study()})
    cut = cut_trial(point.studies["tune"], tmp_path / "tune-vanilla-t0", 0, ["cell=vanilla", "tune.trial=0"])
    jobs, done = plan(point, 2, 3, tmp_path)
    assert not done and [j.trial.number for j in jobs] == [cut.number, cut.number + 1]
    assert jobs[0].overrides == ["cell=vanilla", "tune.trial=0"] and jobs[1].slot == 1  # the cut one in place; a new slot
    assert len(plan(point, 2, 3, tmp_path)[0]) == 1  # one trial left to ask: the room is not overfilled
    for t in point.studies["tune"].get_trials(deepcopy=False):
        point.studies["tune"].tell(t.number, 0.1 * (t.number + 1))
    cut = cut_trial(point.studies["confirm"], tmp_path / "confirm-vanilla-c0-s1", 1, ["cell=vanilla", "seed=1", "tune.trial=0"])
    jobs, done = plan(point, 2, 3, tmp_path)
    assert not done and [j.slot for j in jobs] == [1, 2] and jobs[0].trial.number == cut.number
    assert "tune.trial=0" in jobs[1].overrides  # the new seed runs the confirmed trial too


def test_a_trial_asked_before_overrides_were_stored_is_asked_again(tmp_path):
    """A sweep begun by an older version stored no overrides: its interrupted trial is marked failed,
    its dir removed, and its parameters asked again as a new trial (the former behaviour)."""
    from lstm_ablation.tune import abandoned, reap

    study = optuna.create_study(direction="minimize")
    trial = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
    job_dir = tmp_path / f"tune-vanilla-t{trial.number}"
    job_dir.mkdir()
    (job_dir / "result.json").write_text(json.dumps({"status": "interrupted", "metric": "loss", "metrics": {}}))
    trial.set_user_attr("job_dir", str(job_dir))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{2**22 + 12345}")
    assert reap(study, room=1) == []
    first, retry = study.get_trials(deepcopy=False)
    assert first.state.name == "FAIL" and abandoned(first) and not job_dir.exists()
    assert retry.state.name == "WAITING" and retry.system_attrs["fixed_params"] == first.params


@pytest.mark.slow  # two sweeper start-ups and 10 jobs: 1-4 min on the shared 2 cores
def test_tiny_tuned_sweep_killed_resumed_and_reported(tmp_path):
    """2 cells x 3 trials x 2 confirmation seeds; killed after two jobs finished, then the same command again."""
    sweep = tmp_path / "sweep"
    first = subprocess.Popen([str(BIN / "lstm-ablate"), *tuned(sweep, "report.after_sweep=true")], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while len(list(sweep.glob("*/result.json"))) < 2 and first.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = {p.parent.name: p.read_text() for p in sweep.glob("*/result.json")}
    assert 2 <= len(before) < 10  # killed in the middle

    again = lstm_ablate(*tuned(sweep, "report.after_sweep=true"), f"resume={sweep}", cwd=tmp_path)  # the same command, resumed
    assert again.returncode == 0, again.stderr[-3000:]
    for name, text in before.items():  # finished trials were not re-run
        assert (sweep / name / "result.json").read_text() == text
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name not in ("report", ".hydra"))
    assert all((sweep / j / "result.json").is_file() for j in jobs)  # the killed job ran again in its own dir
    records = [json.loads((sweep / j / "result.json").read_text()) for j in jobs]
    for cell in ("vanilla", "no_input_gate"):
        mine = [r for r in records if r["cell"] == cell]
        trials = sorted(r["config"]["tune"]["trial"] for r in mine if r["config"]["tune"]["stage"] == "tune")
        seeds = sorted(r["seed"] for r in mine if r["config"]["tune"]["stage"] == "confirm")
        assert len(trials) == 3 and len(set(trials)) == 3 and seeds == [1, 2]  # exact counts, tuning seed 0 never reused
        study = optuna.load_study(storage=f"sqlite:///{sweep / 'optuna.db'}", study_name=f"tiny_tuned/cell={cell}/tune")
        assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3
        best = min((r for r in mine if r["config"]["tune"]["stage"] == "tune"), key=objective)
        for r in mine:  # stage 2 re-runs the best trial's settings
            if r["config"]["tune"]["stage"] == "confirm":
                assert r["config"]["optim"]["lr"] == best["config"]["optim"]["lr"]
                assert r["config"]["tune"]["trial"] == best["config"]["tune"]["trial"]
    assert all(r["config"]["cell"]["input_bias"] is None for r in records if r["cell"] == "no_input_gate")

    readme = (sweep / "report" / "README.md").read_text()
    assert "tuned: 3 trials per cell, 2 confirmation seeds" in readme
    assert "## Stage 1: per-cell tuning" in readme and "plots/tuning-lr-adding.png" in readme
    summary = pd.read_csv(sweep / "report" / "summary.csv").set_index("cell")
    assert summary.loc["vanilla", "launched"] == 2 and summary.loc["no_input_gate", "launched"] == 2  # stage 2 only
    stage1 = readme.split("### adding: stage 1")[1]
    vanilla_row = next(line for line in stage1.splitlines() if line.startswith("| `vanilla`"))
    best_of_n = min(objective(r) for r in records if r["cell"] == "vanilla" and r["config"]["tune"]["stage"] == "tune")
    assert "3/3" in vanilla_row and f"| {best_of_n:.4g} |" in vanilla_row


@pytest.mark.slow  # two sweeper start-ups and 3 jobs of 300 steps: about a minute
def test_a_tuned_sweep_stopped_by_sigterm_continues_its_trial_from_the_checkpoint(tmp_path):
    """SIGTERM in the middle of a trial (a session or SLURM time limit): the job records `interrupted`,
    the sweep exits non-zero; the same command with resume= runs that trial again in its own dir from
    its last checkpoint, and the cell still gets exactly its trials and seeds."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=tune", "cell=vanilla", SPACE, "tune.n_trials=2", "tune.confirm.seeds=1", "tune.n_jobs=1",
            *TINY, "trainer.max_steps=300", "num_threads=1", "probe.enabled=false", "name=tiny_term", f"hydra.sweep.dir={sweep}"]
    first = subprocess.Popen([str(BIN / "lstm-ablate"), *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = sweep / "tune-vanilla-t0" / "checkpoints" / "last.ckpt"
    try:
        while not checkpoint.is_file() and first.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)
        os.killpg(first.pid, signal.SIGTERM)
        assert first.wait(timeout=120) != 0  # interrupted says so in its exit status
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    stopped = json.loads((sweep / "tune-vanilla-t0" / "result.json").read_text())
    assert stopped["status"] == "interrupted" and 0 < stopped["steps"] < 300

    again = lstm_ablate(*args, f"resume={sweep}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads((sweep / "tune-vanilla-t0" / "result.json").read_text())
    assert resumed["status"] == "completed" and resumed["steps"] == 300 and resumed["resumed_from_step"] > 0
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name != ".hydra")
    assert jobs == ["confirm-vanilla-c0-s1", "tune-vanilla-t0", "tune-vanilla-t1"]  # no retry under a new number
    study = optuna.load_study(storage=f"sqlite:///{sweep / 'optuna.db'}", study_name="tiny_term/cell=vanilla/tune")
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE"]


def test_tuned_seed_gates_study_composes_and_its_space_fits_every_cell():
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from lstm_ablation.train import validate
    from lstm_ablation.tune import applies

    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        cfg = compose("config", overrides=["experiment=seed_gates_tuned"], return_hydra_config=True)
        assert cfg.hydra.sweeper._target_ == "hydra_plugins.lstm_ablation_tune.TuneSweeper"
        assert cfg.tune.n_trials == 12 and cfg.tune.confirm.seeds == 10 and cfg.task.seq_len == 100
        space = parse_space(OmegaConf.to_container(cfg.tune.space))
        searched = {}
        for cell in cfg.hydra.sweeper.params.cell.split(","):
            job = compose("config", overrides=["experiment=seed_gates_tuned", f"cell={cell}"])
            searched[cell] = sorted(k for k in space if applies(k, job))
            for end in (0, -1):
                for k in searched[cell]:
                    d = space[k]
                    OmegaConf.update(job, k, d.choices[end] if hasattr(d, "choices") else (d.low, d.high)[end], merge=False)
                validate(job)
    assert "cell.input_bias" in searched["vanilla"] and "cell.input_bias" not in searched["no_input_gate"]
    assert searched["rnn"] == ["optim.batch_size", "optim.lr", "trainer.gradient_clip_val"]  # no gates, no biases


def test_a_chrono_cell_does_not_search_the_biases_its_init_sets():
    """JANET's b_f comes from chrono init (log U[1, T_max - 1], b_i = -b_f); a searched cell.forget_bias
    would be an inert dimension that the best trial still reports, and cell.input_bias an invalid job."""
    from hydra import compose, initialize_config_module

    from lstm_ablation.tune import applies

    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        janet = compose("config", overrides=["experiment=modern_gates", "cell=janet"])
        vanilla = compose("config", overrides=["experiment=modern_gates", "cell=vanilla"])
        chrono_vanilla = compose("config", overrides=["experiment=modern_gates", "cell=vanilla", "cell.chrono_t_max=64"])
    assert janet.cell.chrono_t_max > 0 and not applies("cell.forget_bias", janet)
    assert applies("cell.forget_bias", vanilla) and not applies("cell.forget_bias", chrono_vanilla)
    assert applies("cell.input_bias", vanilla) and not applies("cell.input_bias", chrono_vanilla)
    assert applies("optim.lr", janet)


def test_the_copy_study_gives_chrono_to_the_cells_with_sigmoid_forget_and_input_gates():
    """experiments/copy_memory.yaml sets init.chrono_t_max: the cells whose yaml reads it start from
    chrono's biases and do not search b_f and b_i; no_forget_gate keeps its searched b_i, the rnn has neither,
    and every job of the study still validates."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from lstm_ablation.spec import spec_from_config
    from lstm_ablation.train import validate
    from lstm_ablation.tune import applies

    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        jobs = {cell: compose("config", overrides=["experiment=copy_memory", "hparams_search=gates", f"cell={cell}"])
                for cell in ("vanilla", "no_forget_gate", "no_input_gate", "sigmoid_candidate", "no_output_gate",
                             "sigmoid_output", "rnn", "janet", "slstm")}
        plain = compose("config", overrides=["experiment=seed_gates", "cell=vanilla"])
    for cell, job in jobs.items():
        validate(job)
        expected = {"no_forget_gate": 0, "rnn": None, "janet": 50, "slstm": 0}.get(cell, 75)  # janet: its own T_max = T
        assert job.cell.get("chrono_t_max") == expected, cell
    for cell in ("vanilla", "no_input_gate", "sigmoid_candidate", "no_output_gate", "sigmoid_output"):
        assert not applies("cell.forget_bias", jobs[cell]) and not applies("cell.input_bias", jobs[cell]), cell
    assert applies("cell.input_bias", jobs["no_forget_gate"]) and plain.cell.chrono_t_max == 0
    layer = LSTMLayer(spec_from_config(OmegaConf.to_container(jobs["vanilla"].cell, resolve=True)), 10, 64)
    b_f, b_i = layer.bias[layer.gate_slices()["f"]], layer.bias[layer.gate_slices()["i"]]
    assert torch.all((b_f >= 0) & (b_f <= math.log(74) + 1e-6)) and b_f.std() > 0.5 and torch.equal(b_i, -b_f)


def test_the_gru_searches_its_update_gate_bias_as_the_lstm_its_forget_bias():
    """A tuned vanilla starts from its best b_f; the GRU's keep gate z gets the same chance (cell.update_bias),
    and no LSTM cell searches a bias it does not have."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from lstm_ablation.train import validate
    from lstm_ablation.tune import applies

    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        cfg = compose("config", overrides=["experiment=modern_gates", "hparams_search=gates"])
        space = parse_space(OmegaConf.to_container(cfg.tune.space))
        searched = {}
        for cell in ("gru", "vanilla", "rnn"):
            job = compose("config", overrides=["experiment=modern_gates", "hparams_search=gates", f"cell={cell}"])
            searched[cell] = sorted(k for k in space if applies(k, job))
            for k in searched[cell]:
                d = space[k]
                OmegaConf.update(job, k, d.choices[-1] if hasattr(d, "choices") else d.high, merge=False)
            validate(job)
    assert searched["gru"] == ["cell.update_bias", "optim.batch_size", "optim.lr", "trainer.gradient_clip_val"]
    assert "cell.update_bias" not in searched["vanilla"] + searched["rnn"] and "cell.forget_bias" in searched["vanilla"]


STUDIES = [p.stem for p in (Path(__file__).parents[1] / "experiments").glob("*.yaml") if p.stem != "seed_gates_tuned"]


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_hparams_search_gates_turns_every_study_into_a_tuned_one(study):
    """`experiment=<study> hparams_search=gates`: the tune sweeper, one tuning seed instead of the
    study's ten seeds, its grid of cells (and tasks) kept, and the committed tuned study's space."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        plain = compose("config", overrides=[f"experiment={study}"], return_hydra_config=True)
        tuned = compose("config", overrides=[f"experiment={study}", "hparams_search=gates"], return_hydra_config=True)
        reference = compose("config", overrides=["experiment=seed_gates_tuned"])
    assert tuned.hydra.sweeper._target_ == "hydra_plugins.lstm_ablation_tune.TuneSweeper"
    assert plain.hydra.sweeper.params.seed == "0,1,2,3,4,5,6,7,8,9" and tuned.hydra.sweeper.params.seed == "0"
    assert tuned.hydra.sweeper.params.cell == plain.hydra.sweeper.params.cell
    assert OmegaConf.to_container(tuned.tune.space) == OmegaConf.to_container(reference.tune.space)
    assert tuned.trainer.max_steps == plain.trainer.max_steps       # the study's budget, for every cell and trial


def test_hparams_search_gates_runs_a_tuned_digits_study_with_rescoring(tmp_path):
    from lstm_ablation.report import write_report

    sweep = tmp_path / "sweep"
    done = lstm_ablate("-m", "experiment=sequential_digits", "hparams_search=gates", "hydra.sweeper.params.cell='vanilla,rnn'",
                       "hydra.sweeper.params.task=permuted_digits", "tune.n_trials=3", "tune.confirm.seeds=1", "tune.n_jobs=1",
                       "tune.rescore.top_k=2", "model.hidden_size=8", "trainer.max_steps=4", "trainer.val_check_interval=2",
                       "wandb.mode=disabled", "probe.enabled=false", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}
    rnn = records["tune-rnn-t1"]["config"]
    assert rnn["seed"] == 0 and rnn["tune"]["stage"] == "tune" and rnn["task"]["name"] == "permuted_digits"
    assert rnn["trainer"]["max_steps"] == 4 and rnn["optim"]["lr"] != 0.001           # its lr searched, the budget not
    confirmed = {}
    for cell in ("vanilla", "rnn"):
        trials = {r["config"]["tune"]["trial"]: objective(r) for r in records.values()
                  if r["cell"] == cell and r["config"]["tune"]["stage"] == "tune"}
        top = sorted(trials, key=lambda n: (-trials[n], n))[:2]   # accuracy: higher is better
        again = {r["config"]["tune"]["trial"]: r for r in records.values() if r["cell"] == cell and r["config"]["tune"]["stage"] == "rescore"}
        assert sorted(again) == sorted(top) and {r["seed"] for r in again.values()} == {2}  # after confirmation seed 1
        for n, r in again.items():  # a re-score run is the candidate's own settings on another seed
            tuned = next(x for x in records.values() if x["cell"] == cell and x["config"]["tune"]["trial"] == n and x["config"]["tune"]["stage"] == "tune")
            assert r["config"]["optim"] == tuned["config"]["optim"]
        mean = {n: (trials[n] + objective(again[n])) / 2 for n in top}
        confirm = [r for r in records.values() if r["cell"] == cell and r["config"]["tune"]["stage"] == "confirm"]
        assert [r["seed"] for r in confirm] == [1]
        confirmed[cell] = confirm[0]["config"]["tune"]["trial"]
        assert confirmed[cell] == max(top, key=lambda n: (mean[n], -top.index(n)))
    assert len(records) == 2 * (3 + 2 + 1)

    readme = (write_report([sweep], tmp_path / "report", plots=False) / "README.md").read_text()
    assert "chosen by re-scoring its best trials on more seeds" in readme
    rescore = readme.split("Re-score (`tune.rescore`)")[1].split("\n\n", 2)[1]
    rows = [line for line in rescore.splitlines() if line.startswith("| `")]
    assert len(rows) == 4 and sum("**yes**" in line for line in rows) == 2
    assert all(("**pick**" in line) == ("**yes**" in line) for line in rows)  # the re-score's pick is the confirmed trial
    assert "re-scored after their confirmation" not in readme
    assert any(line.startswith("| `rnn` | " + str(confirmed["rnn"]) + " |") and "**yes**" in line for line in rows)
    assert "| `vanilla` | 3/3 |" in readme  # stage 1 counts its trials, not the re-score runs
