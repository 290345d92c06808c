"""stop_when_solved (solved_stop.py): a job ends once its validation headline metric has stayed past
the task's solved threshold for `patience` validations; the record, steps-to-threshold, the test of
the best weights, resume and the report line."""
import pandas as pd
import pytest

from lstm_ablation.probe_callback import GradientProbe
from lstm_ablation.report.build import write_report
from lstm_ablation.report.stats import steps_to_threshold
from lstm_ablation.results import read_result
from lstm_ablation.train import check_overrides, train

# Adding on 4 steps: vanilla passes MSE 0.01 at its 11th validation (step 110), misses it at the
# 12th, then stays below from the 13th on, in about a second (measured: 300 steps, 1.1 s).
QUICK = ("task.seq_len=4", "task.n_train=512", "task.n_val=128", "task.n_test=128", "model.hidden_size=16",
         "optim.lr=0.02", "trainer.max_steps=300", "trainer.val_check_interval=10", "trainer.log_every_n_steps=10",
         "wandb.mode=disabled", "probe.enabled=false", "num_threads=1")
INTERVAL, THRESHOLD = 10, 0.01


def val_curve(run_dir) -> pd.Series:
    log = pd.read_csv(run_dir / "metrics.csv")
    return log[["step", "val/loss"]].dropna().set_index("step")["val/loss"]


def first_streak_end(values: list[float], patience: int) -> int:
    """Index of the validation that completes the first run of `patience` solved values in a row."""
    streak = 0
    for i, v in enumerate(values):
        streak = streak + 1 if v <= THRESHOLD else 0
        if streak == patience:
            return i
    raise AssertionError("never solved for long enough")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two jobs of one sweep dir, the same seed: the full budget, and stop_when_solved (patience 3)."""
    from hydra import compose, initialize_config_module

    root = tmp_path_factory.mktemp("solved")
    records = {}
    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        for name, extra in (("0-full", []), ("1-stopped", ["stop_when_solved.enabled=true", "checkpoint.keep=both"])):
            records[name] = train(compose("config", overrides=[*QUICK, *extra]), root / name)
    return root, records


def test_the_job_stops_after_patience_solved_validations_in_a_row(sweep):
    root, records = sweep
    full, stopped = records["0-full"], records["1-stopped"]
    assert "stopped_early" not in full and full["steps"] == 300  # off by default: nothing recorded, full budget
    on_disk = read_result(root / "1-stopped" / "result.json")
    assert on_disk["status"] == "completed" and on_disk["stopped_early"] is True
    whole = val_curve(root / "0-full").tolist()
    end = first_streak_end(whole, patience=3)
    assert on_disk["stopped_at_step"] == on_disk["steps"] == INTERVAL * (end + 1) < 300
    assert whole[end - 3] > THRESHOLD  # a streak that was broken once (a value past the threshold, then not) started over
    # the same training up to the stop, float for float
    assert val_curve(root / "1-stopped").tolist() == whole[: end + 1]


def test_steps_to_threshold_is_the_same_with_and_without_stopping(sweep):
    root, records = sweep
    curves = pd.concat([val_curve(root / name).reset_index().assign(run=name).rename(columns={"val/loss": "value"})
                        for name in records])
    first = steps_to_threshold(curves, THRESHOLD, higher_is_better=False)
    assert first["0-full"] == first["1-stopped"] < records["1-stopped"]["stopped_at_step"]


def test_a_stopped_job_tests_the_weights_of_its_best_validation(sweep):
    root, records = sweep
    stopped = records["1-stopped"]
    assert stopped["metrics"]["val/loss_best"] == pytest.approx(val_curve(root / "1-stopped").min())
    assert stopped["metrics"]["test/loss"] <= THRESHOLD  # the best weights, solved, not the initial ones
    assert (root / "1-stopped" / "checkpoints" / "best.ckpt").is_file()


def test_a_streak_that_completes_at_the_last_step_is_not_an_early_stop(make_cfg, sweep, tmp_path):
    _, records = sweep
    at = records["1-stopped"]["stopped_at_step"]
    record = train(make_cfg(*QUICK, "stop_when_solved.enabled=true", f"trainer.max_steps={at}"), tmp_path)
    assert record["steps"] == at and record["stopped_early"] is False and record["stopped_at_step"] is None


def test_a_resumed_job_keeps_its_streak_and_stops_where_an_uninterrupted_one_does(make_cfg, sweep, tmp_path, monkeypatch):
    _, records = sweep
    at = records["1-stopped"]["stopped_at_step"]
    real = GradientProbe.on_train_batch_end

    def crash_before_the_stop(self, trainer, *args):  # after the validation one step before the stop
        if trainer.global_step == at - INTERVAL + 1:
            raise RuntimeError("simulated crash")
        return real(self, trainer, *args)

    job = (*QUICK, "stop_when_solved.enabled=true")
    monkeypatch.setattr(GradientProbe, "on_train_batch_end", crash_before_the_stop)
    assert train(make_cfg(*job), tmp_path)["status"] == "failed"
    monkeypatch.setattr(GradientProbe, "on_train_batch_end", real)
    resumed = train(make_cfg(*job), tmp_path)  # without the streak in the checkpoint it would stop 2 validations later
    assert resumed["resumed_from_step"] == at - INTERVAL
    assert resumed["stopped_at_step"] == at and resumed["metrics"] == records["1-stopped"]["metrics"]


@pytest.mark.parametrize("args, line", [
    (["stop_when_solved.patience=0"], "stop_when_solved.patience: got 0; allowed: an integer >= 1 (validations in a row)"),
    (["stop_when_solved.patience=1.5"], "stop_when_solved.patience: got 1.5; allowed: an integer >= 1"),
    (["stop_when_solved.enabled=maybe"], "stop_when_solved.enabled: got 'maybe'; allowed: true, false"),
])
def test_bad_values_are_one_line_and_exit_2(args, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        check_overrides(args)
    assert exit_.value.code == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith(f"lstm-ablate: error: {line}"), err


def test_the_report_says_which_runs_stopped_when_solved(sweep, tmp_path):
    root, records = sweep
    out = write_report([root], tmp_path / "report", plots=False)
    readme = (out / "README.md").read_text()
    at = records["1-stopped"]["stopped_at_step"]
    # a run that may stop early is another experiment (its final value is the value when solved): its own table
    full, stopped = readme.split("## adding stop_when_solved.enabled=False")[1].split("## adding stop_when_solved.enabled=True")
    assert "stopped when solved" not in full
    assert (f"1 of 1 runs stopped when solved (stop_when_solved, patience 3): `vanilla` s0 at step {at}. "
            "Their test values are those of the weights when solved") in stopped
    runs = pd.read_csv(out / "results.csv")
    assert runs.set_index("run")["stopped_at_step"].dropna().to_dict() == {f"{root.name}/1-stopped": at}
