"""One job in-process: the record it writes, and that crashes/divergence are recorded, not raised."""
import json

import pytest

from lstm_ablation import ConfigError
from lstm_ablation.results import read_result
from lstm_ablation.train import train

from conftest import TINY
from wandb_log import read_run


def test_completed_job_writes_full_record(make_cfg, tmp_path):
    cfg = make_cfg("cell=no_forget_gate", "seed=2", *TINY)
    record = train(cfg, tmp_path, group="g")
    on_disk = read_result(tmp_path / "result.json")
    assert on_disk == json.loads(json.dumps(record))
    assert on_disk["status"] == "completed" and on_disk["cell"] == "no_forget_gate" and on_disk["short"] == "NFG"
    assert on_disk["task"] == "adding" and on_disk["seed"] == 2
    assert on_disk["baseline"] == pytest.approx(1 / 6)
    assert {"test/loss", "val/loss_best"} <= set(on_disk["metrics"])
    assert 0 < on_disk["metrics"]["test/loss"] < 10
    # NFG: 3 gate rows of H*(I+H)+H, plus the readout H+1
    assert on_disk["params"] == 3 * (8 * (2 + 8) + 8) + 8 + 1
    assert on_disk["config"]["task"]["seq_len"] == 6 and on_disk["config"]["cell"]["forget_gate"] == "none"
    assert "hydra" not in on_disk["config"]
    assert set(on_disk["git"]) == {"commit", "dirty"} and on_disk["duration_s"] > 0
    import torch
    assert on_disk["device"] == "cpu" and on_disk["torch"] == torch.__version__  # where and with what it trained
    assert (tmp_path / "metrics.csv").read_text().startswith("epoch,step")  # per-step curve for reports


def test_val_loss_best_is_the_minimum_seen(make_cfg, tmp_path):
    record = train(make_cfg(*TINY, "trainer.max_steps=12", "trainer.val_check_interval=2"), tmp_path)
    import pandas as pd
    curve = pd.read_csv(tmp_path / "metrics.csv")["val/loss"].dropna()
    assert len(curve) == 6
    assert record["metrics"]["val/loss_best"] == pytest.approx(curve.min())


def test_diverged_job_is_recorded(make_cfg, tmp_path, monkeypatch):
    import lstm_ablation.tasks.adding as adding
    real = adding.generate
    monkeypatch.setattr(adding, "generate", lambda *a, **k: (lambda x, y: (x, y * float("nan")))(*real(*a, **k)))
    record = train(make_cfg(*TINY), tmp_path)
    assert record["status"] == "diverged" and "train/loss is nan" in record["error"]
    assert read_result(tmp_path / "result.json")["status"] == "diverged"


def test_crashed_job_is_recorded_and_wandb_run_finished(make_cfg, tmp_path, monkeypatch):
    import lstm_ablation.model as model
    def boom(*a, **k):
        raise RuntimeError("out of memory (simulated)")
    monkeypatch.setattr(model, "build_recurrent", boom)
    record = train(make_cfg(*TINY, "wandb.mode=offline"), tmp_path, group="sweep-x")
    assert record["status"] == "failed" and "out of memory (simulated)" in record["error"]
    assert read_result(tmp_path / "result.json")["status"] == "failed"
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_run(run_dir)
    assert run["exit_code"] == 1 and run["summary"]["status"] == "failed"


def test_offline_wandb_run_holds_group_tags_config_and_best(make_cfg, tmp_path):
    record = train(make_cfg("cell=coupled_gates", *TINY, "wandb.mode=offline", "trainer.max_steps=12"), tmp_path, group="study/sweep-1")
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_run(run_dir)
    assert run["group"] == "study/sweep-1" and run["job_type"] == "coupled_gates"
    assert set(run["tags"]) == {"coupled_gates", "adding"}
    assert run["config"]["cell.forget_gate"] == "coupled" and run["config"]["task.seq_len"] == 6  # flattened
    assert run["summary"]["val/loss_best"] == pytest.approx(record["metrics"]["val/loss_best"])
    assert run["summary"]["val/loss"] == {"min": pytest.approx(record["metrics"]["val/loss_best"])}
    assert {"train/loss", "val/loss"} <= run["history_keys"] and run["exit_code"] == 0


def test_bad_config_raises_before_any_file_is_written(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="^task.seq_len"):
        train(make_cfg("task.seq_len=1", "wandb.mode=offline"), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_probes_are_written_at_the_interval_and_reach_wandb(make_cfg, tmp_path):
    train(make_cfg("cell=vanilla", *TINY, "trainer.max_steps=10", "probe.every_n_steps=4", "wandb.mode=offline"), tmp_path)
    probes = json.loads((tmp_path / "probes.json").read_text())
    steps = [p["step"] for p in probes["probes"]]
    assert steps == [0, 4, 8, 10]
    final = probes["probes"][-1]
    assert len(final["grad_h"]) == 6 and len(final["grad_c"]) == 6  # one norm per time step (seq_len 6)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert "probe/grad_h_log10_ratio" in read_run(run_dir)["summary"]


def test_probes_switched_off(make_cfg, tmp_path):
    train(make_cfg(*TINY, "probe.enabled=false"), tmp_path)
    assert not (tmp_path / "probes.json").exists()


def test_training_ends_with_a_validation_even_below_val_check_interval(make_cfg, tmp_path, caplog):
    """max_steps < val_check_interval used to leave no validation: the test took the last weights
    while the report said "best". Now the last step is validated inside fit, with one warning line."""
    import logging

    import pandas as pd

    with caplog.at_level(logging.WARNING, logger="lstm_ablation"):
        record = train(make_cfg(*TINY, "trainer.max_steps=5", "trainer.val_check_interval=100", "probe.enabled=false"),
                       tmp_path / "a")
    curve = pd.read_csv(tmp_path / "a" / "metrics.csv")[["step", "val/loss"]].dropna()
    assert curve["step"].tolist() == [4] and record["steps"] == 5          # one validation, after the 5th step
    assert record["metrics"]["val/loss_best"] == pytest.approx(curve["val/loss"].iloc[0])
    warnings = [r.getMessage() for r in caplog.records if "no validation ran" in r.getMessage()]
    assert len(warnings) == 1 and "trainer.max_steps=5" in warnings[0] and "\n" not in warnings[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lstm_ablation"):
        train(make_cfg(*TINY, "trainer.max_steps=7", "trainer.val_check_interval=3", "probe.enabled=false"), tmp_path / "b")
    steps = pd.read_csv(tmp_path / "b" / "metrics.csv")[["step", "val/loss"]].dropna()["step"].tolist()
    assert steps == [2, 5, 6]                      # after steps 3 and 6, and the final 7th (0-based log steps)
    assert not [r for r in caplog.records if "no validation ran" in r.getMessage()]


def test_matched_parameters_are_recorded(make_cfg, tmp_path):
    record = train(make_cfg(*TINY, "cell=rnn", "model.match_params=true", "model.hidden_size=16", "probe.enabled=false"), tmp_path)
    assert record["hidden_size_reference"] == 16 and record["hidden_size"] > 16
    vanilla = 4 * (16 * (2 + 16) + 16) + 16 + 1                           # the reference at H = 16
    assert abs(record["params"] / vanilla - 1) <= 0.02
