"""Checkpoints of one job (in-process): best/last written, kept as `checkpoint.keep` says, loadable,
a crashed job resumed to the very numbers of an uninterrupted one, a corrupt checkpoint refused."""
import logging

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from lstm_ablation.checkpointing import AtomicCheckpointIO, resumable
from lstm_ablation.model import SequenceModel, batch_loader
from lstm_ablation.probe_callback import GradientProbe
from lstm_ablation.results import read_result
from lstm_ablation.train import train

from conftest import TINY

JOB = (*TINY, "trainer.max_steps=12", "num_threads=1")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One job run straight through, keeping both checkpoints."""
    from hydra import compose, initialize_config_module

    run_dir = tmp_path_factory.mktemp("straight")
    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*JOB, "checkpoint.keep=both"])
    return run_dir, train(cfg, run_dir)


def test_both_checkpoints_and_the_test_metric_reproduced_from_best(uninterrupted):
    run_dir, record = uninterrupted
    assert record["status"] == "completed" and record["steps"] == 12
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    model = SequenceModel.load_from_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert model.hparams.hidden_size == 8 and model.hparams.task["seq_len"] == 6  # rebuilt from the stored config
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    tested = trainer.test(model, batch_loader(*model.task.splits["test"], 1024, shuffle=False), verbose=False)[0]
    assert tested["test/loss"] == pytest.approx(record["metrics"]["test/loss"], rel=1e-6)


def test_crashed_job_keeps_its_metrics_and_resumes_to_the_same_numbers(make_cfg, tmp_path, monkeypatch, uninterrupted):
    real = GradientProbe.on_train_batch_end

    def crash_at_8(self, trainer, *args):
        real(self, trainer, *args)
        if trainer.global_step == 8:
            raise RuntimeError("machine lost (simulated)")

    monkeypatch.setattr(GradientProbe, "on_train_batch_end", crash_at_8)
    crashed = train(make_cfg(*JOB), tmp_path)
    assert crashed["status"] == "failed" and crashed["steps"] == 8
    assert set(crashed["metrics"]) == {"val/loss_best"}  # what validations at steps 3 and 6 reached is kept
    monkeypatch.setattr(GradientProbe, "on_train_batch_end", real)

    resumed = train(make_cfg(*JOB), tmp_path)  # the same job again: continues from last.ckpt (step 6)
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 6 and resumed["steps"] == 12
    # same batches, same Adam state, same best-so-far: exactly the numbers of the uninterrupted job
    assert resumed["metrics"] == uninterrupted[1]["metrics"]
    # and the whole curve: the rows logged before step 6 kept (Lightning's logger would delete them), those
    # from step 6 on trained again and logged once
    curve, straight = (pd.read_csv(d / "metrics.csv") for d in (tmp_path, uninterrupted[0]))
    assert curve.step.min() < 6 and curve.step.is_monotonic_increasing
    pd.testing.assert_frame_equal(curve, straight[curve.columns], check_exact=False, rtol=1e-6)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["best.ckpt"]  # checkpoint.keep=best
    # the job's cost counts both attempts (the reports' CPU-hours); a fresh job has no earlier attempt
    assert resumed["earlier_attempts_s"] == crashed["duration_s"] > 0
    assert resumed["duration_s"] > crashed["duration_s"] and "earlier_attempts_s" not in uninterrupted[1]
    again = train(make_cfg(*JOB), tmp_path)  # a completed record is not an earlier attempt: a new job's time only
    assert again["status"] == "completed" and "earlier_attempts_s" not in again


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint_is_refused_in_one_line_and_the_job_starts_over(make_cfg, tmp_path, caplog, uninterrupted, damage):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    good = (uninterrupted[0] / "checkpoints" / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(b"not a checkpoint" if damage == "garbage" else good[: len(good) // 2])
    with caplog.at_level(logging.WARNING, logger="lstm_ablation"):
        record = train(make_cfg(*JOB, "checkpoint.keep=none"), tmp_path)
    warnings = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "starting this job from scratch" in warnings[0]
    assert record["status"] == "completed" and "resumed_from_step" not in record
    assert record["metrics"] == uninterrupted[1]["metrics"]  # a clean start, not a damaged one
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt.corrupt"]  # keep=none: only the evidence stays


def test_atomic_save_leaves_the_previous_file_when_a_write_fails(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"x": torch.ones(3)}, tmp_path / "last.ckpt")
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full (simulated)")))
    with pytest.raises(OSError):
        io.save_checkpoint({"x": torch.zeros(3)}, tmp_path / "last.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind
    assert torch.load(tmp_path / "last.ckpt")["x"].tolist() == [1.0, 1.0, 1.0]


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert resumable(tmp_path) is None


def test_keep_last_leaves_only_last_ckpt(make_cfg, tmp_path):
    record = train(make_cfg(*TINY, "checkpoint.keep=last"), tmp_path)
    assert read_result(tmp_path / "result.json")["steps"] == record["steps"] == 6
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]


def test_wandb_that_cannot_start_is_a_failed_record_in_one_line(make_cfg, tmp_path, monkeypatch, caplog):
    import wandb

    def no_key(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", no_key)
    with caplog.at_level(logging.ERROR, logger="lstm_ablation"):
        record = train(make_cfg(*TINY, "wandb.mode=online"), tmp_path)
    assert record["status"] == "failed" and "wandb.mode=online: W&B did not start" in record["error"]
    assert read_result(tmp_path / "result.json")["status"] == "failed"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in line and "No API key" in line  # no traceback for a setting the user chose
