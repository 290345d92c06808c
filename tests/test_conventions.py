"""Issue 12: the habits of Lightning, Hydra and W&B users (presets, env vars, the step axis, reports
in W&B, ranks, help, user config dirs) work as they expect."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TINY
from lstm_ablation.report.cli import main as report_main
from lstm_ablation.results import read_result
from lstm_ablation.spec import ConfigError
from lstm_ablation.train import check_group_choices, train, validate
from test_report import make_run
from wandb_log import read_run

BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------- debug= and trainer= presets

STREAM = ("task=continual_reber_stream", "task.seq_len=6", "task.train_stream_len=18", "task.val_stream_len=30",
          "task.test_stream_len=50", "task.eval_chunk_len=16", "task.n_val=2", "task.n_test=3", "model.hidden_size=4",
          "optim.batch_size=4", "wandb.mode=disabled", "num_threads=1")


@pytest.mark.parametrize("task", [("task=adding", *TINY), STREAM])
def test_overfit_preset_trains_on_one_fixed_batch(make_cfg, tmp_path, task):
    cfg = make_cfg(*task, "debug=overfit", "trainer.max_steps=6", "trainer.val_check_interval=3")
    assert cfg.trainer.overfit_batches == 1 and cfg.wandb.mode == "disabled"
    record = train(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert record["steps"] == 6


def test_fixed_batches_replay_the_first_batches_in_order():
    from torch.utils.data import SequentialSampler

    from lstm_ablation.overfit import fixed_batches
    from lstm_ablation.resume import resumable_loader

    x, y = torch.arange(40.0).reshape(20, 2), torch.arange(20.0)
    source = resumable_loader(x, y, batch_size=4, seed=3)
    first = [b[1].tolist() for b in source][:2]
    loader = fixed_batches(resumable_loader(x, y, batch_size=4, seed=3), 2)
    assert isinstance(loader.sampler, SequentialSampler)  # what Lightning's overfit check leaves alone
    assert [b[1].tolist() for b in loader] == [b[1].tolist() for b in loader] == first


def test_fast_preset_runs_one_batch_of_each_split(make_cfg, tmp_path):
    record = train(make_cfg(*TINY, "debug=fast"), tmp_path)
    assert record["status"] == "completed", record["error"]
    assert record["steps"] == 1 and "test/loss" in record["metrics"]


def test_limit_preset_caps_the_batches(make_cfg, tmp_path):
    cfg = make_cfg(*TINY, "debug=limit", "trainer.max_steps=8", "trainer.val_check_interval=4")
    record = train(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert record["steps"] == 8 and metrics["val/loss"].notna().sum() >= 2


def test_profile_preset_writes_lightning_simple_profile(make_cfg, tmp_path):
    record = train(make_cfg(*TINY, "debug=profile", "trainer.max_steps=4"), tmp_path)
    assert record["status"] == "completed", record["error"]
    profile = (tmp_path / "fit-profile.txt").read_text()
    assert "run_training_batch" in profile and "Mean duration" in profile


def test_trainer_presets(make_cfg):
    assert make_cfg("trainer=cpu").trainer.accelerator == "cpu"
    cfg = make_cfg("trainer=gpu", "trainer.max_steps=7")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.max_steps == 7 and cfg.trainer.gradient_clip_val == 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_preset_without_a_gpu_is_refused_before_any_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"^trainer.accelerator: got 'gpu', but this machine has no CUDA GPU"):
        validate(make_cfg("trainer=gpu"))
    done = run("lstm-ablate", "-m", "trainer=gpu", "seed=0,1", "wandb.mode=disabled", cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("lstm-ablate: error: trainer.accelerator"), done.stderr
    assert not (tmp_path / "multirun").exists()


def test_trainer_key_typo_in_a_sweep_is_one_line_before_any_job(tmp_path):
    done = run("lstm-ablate", "-m", "seed=0,1", "+trainer.max_step=10", "wandb.mode=disabled", cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "trainer.max_step: not an argument of pytorch_lightning.Trainer (did you mean max_steps" in lines[0]
    assert not (tmp_path / "multirun").exists()


# ---------------------------------------------------------------------------- cells and tasks from the user's config dir

def test_cell_from_a_users_config_dir_is_accepted(tmp_path, capsys):
    mine = tmp_path / "myconf"
    (mine / "cell").mkdir(parents=True)
    (mine / "cell" / "my_nfg.yaml").write_text("name: my_nfg\nshort: MNFG\nchange: f = 1 (mine)\nforget_gate: none\n")
    check_group_choices(["cell=my_nfg", "--config-dir", str(mine)])
    check_group_choices(["cell=vanilla,my_nfg", f"hydra.searchpath=[file://{mine}]"])
    with pytest.raises(SystemExit) as exit_:
        check_group_choices(["cell=nowhere", "--config-dir", str(mine)])
    assert exit_.value.code == 2 and "cell: unknown cell 'nowhere'; allowed: " in capsys.readouterr().err
    done = run("lstm-ablate", "--config-dir", str(mine), "cell=my_nfg", *TINY, "hydra.run.dir=job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = read_result(tmp_path / "job" / "result.json")
    assert record["status"] == "completed" and record["cell"] == "my_nfg" and record["config"]["cell"]["forget_gate"] == "none"


# ---------------------------------------------------------------------------- start-up and help

def test_help_opens_with_what_the_tool_is_and_three_examples(tmp_path):
    done = run("lstm-ablate", "--help", cwd=tmp_path)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lstm-ablate: train one recurrent cell")
    examples = [line for line in lines[:8] if line.strip().startswith("lstm-ablate ")]
    assert len(examples) == 3 and any(" -m experiment=" in line for line in examples)


def test_first_build_of_the_cpp_layer_says_so(tmp_path, monkeypatch, capsys):
    import torch.utils.cpp_extension as cpp

    from lstm_ablation import fast

    monkeypatch.setenv("LSTM_ABLATION_EXT_DIR", str(tmp_path))
    monkeypatch.setattr(cpp, "load", lambda **kw: "built")  # the compile itself is not what is tested
    assert fast._load() == "built"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("lstm-ablation: compiling the C++ LSTM layer into " + str(tmp_path))
    (fast.build_dir() / "lstm_ablation_fast.so").write_bytes(b"")  # built: later jobs stay quiet
    fast._load()
    assert capsys.readouterr().err == ""


def test_job_log_line_names_its_output_dir(make_cfg, tmp_path, caplog):
    caplog.set_level("INFO", logger="lstm_ablation")
    train(make_cfg(*TINY, "trainer.max_steps=2"), tmp_path)
    assert any(r.getMessage().endswith(f"in {tmp_path}") and "completed" in r.getMessage() for r in caplog.records)


def test_only_rank_zero_writes_result_and_wandb_run(make_cfg, tmp_path, monkeypatch):
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)  # what Lightning reads from RANK/LOCAL_RANK in a DDP worker
    record = train(make_cfg(*TINY, "trainer.max_steps=2", "wandb.mode=offline"), tmp_path)
    assert record["status"] == "completed", record["error"]
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "wandb").exists()


# ---------------------------------------------------------------------------- W&B

def test_wandb_settings_default_from_the_environment(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_PROJECT", "ci-project")
    monkeypatch.setenv("WANDB_ENTITY", "lab")
    cfg = make_cfg()
    assert (cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity) == ("disabled", "ci-project", "lab")
    assert make_cfg("wandb.mode=offline", "wandb.project=mine").wandb.project == "mine"  # explicit wins
    monkeypatch.delenv("WANDB_ENTITY")
    assert make_cfg().wandb.entity is None


def test_charts_plot_against_the_training_step_and_best_model_is_an_artifact(make_cfg, tmp_path):
    record = train(make_cfg(*TINY, "wandb.mode=offline", "wandb.log_model=true"), tmp_path, group="g")
    assert record["status"] == "completed"
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    logged = read_run(run_dir)
    assert logged["step_metrics"]["*"] == "trainer/global_step"
    assert "trainer/global_step" in logged["history_keys"] and "train/loss" in logged["history_keys"]
    (model,) = [a for a in logged["artifacts"] if a["type"] == "model"]
    assert model["files"] == ["best.ckpt"] and logged["summary"]["error"] is None


def test_failed_run_shows_its_error_and_keeps_its_console_log(tmp_path):
    # A real command: wandb captures the console by patching sys.stdout/stderr, which pytest's own capture defeats.
    done = run("lstm-ablate", *TINY, "wandb.mode=offline", "wandb.log_model=true", "+trainer.strategy=bogus",
               "hydra.run.dir=job", cwd=tmp_path)
    assert done.returncode == 1
    record = read_result(tmp_path / "job" / "result.json")
    (run_dir,) = (tmp_path / "job" / "wandb").glob("offline-run-*")
    logged = read_run(run_dir)
    assert record["status"] == "failed" and "bogus" in record["error"]
    assert logged["summary"]["error"] == record["error"] and logged["exit_code"] == 1
    assert "job failed" in logged["console"] and "Traceback" in logged["console"] and "bogus" in logged["console"]
    assert logged["artifacts"] == []  # no model for a failed job


def test_report_reaches_wandb_as_a_report_run_in_the_sweeps_group(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    sweep = tmp_path / "sweep"
    for num, (cell, seed, value) in enumerate([("vanilla", 0, 0.01), ("vanilla", 1, 0.02), ("rnn", 0, 0.16), ("rnn", 1, 0.17)]):
        make_run(sweep, num, cell, seed, value)
    report_main([str(sweep), "--out", str(tmp_path / "rep"), "--no-plots", "--to-wandb"])
    (run_dir,) = (sweep / "wandb").glob("offline-run-*")
    logged = read_run(run_dir)
    assert logged["job_type"] == "report" and logged["group"] == "default/sweep" and logged["exit_code"] == 0
    (artifact,) = [a for a in logged["artifacts"] if a["type"] == "report"]  # wandb.Table adds a run_table one
    assert artifact["type"] == "report" and {"README.md", "summary.csv", "results.csv"} <= set(artifact["files"])
    (table,) = run_dir.glob("files/media/table/report/summary_*.table.json")
    table = json.loads(table.read_text())
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert table["columns"] == list(summary.columns) and sorted(r[0] for r in table["data"]) == sorted(summary.iloc[:, 0])


def test_to_wandb_needs_sweep_dirs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        report_main(["--regenerate", str(tmp_path), "--to-wandb"])
    assert exit_.value.code == 2 and "--to-wandb only applies with SWEEP_DIR" in capsys.readouterr().err


def test_report_after_a_sweep_reaches_wandb_with_report_wandb_true(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_module
    from omegaconf import open_dict

    from lstm_ablation.train import ReportAfterSweep

    monkeypatch.delenv("WANDB_MODE", raising=False)
    sweep = tmp_path / "sweep"
    for num, (cell, seed, value) in enumerate([("vanilla", 0, 0.01), ("vanilla", 1, 0.02), ("rnn", 0, 0.16), ("rnn", 1, 0.17)]):
        make_run(sweep, num, cell, seed, value)
    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        cfg = compose("config", overrides=["report.after_sweep=true", "report.wandb=true", f"report.out={tmp_path / 'rep'}"],
                      return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(sweep)
    ReportAfterSweep().on_multirun_end(cfg)
    assert (tmp_path / "rep" / "README.md").is_file()
    (run_dir,) = (sweep / "wandb").glob("offline-run-*")
    logged = read_run(run_dir)
    assert logged["job_type"] == "report" and logged["group"] == "default/sweep"
    assert [a["type"] for a in logged["artifacts"] if a["type"] == "report"] == ["report"]


def test_two_checkouts_build_the_cpp_layer_in_folders_of_their_own(tmp_path, monkeypatch):
    """ninja rebuilds when its command changes, and the command names the source's path: two checkouts
    sharing one folder recompiled the layer in turn, at every job's start."""
    from lstm_ablation import fast

    monkeypatch.setenv("LSTM_ABLATION_EXT_DIR", str(tmp_path))
    here = fast.build_dir()
    monkeypatch.setattr(fast, "CSRC", tmp_path / "other-checkout" / "csrc")
    there = fast.build_dir()
    assert here != there and here.parent == there.parent == tmp_path
    monkeypatch.setattr(fast, "CSRC", Path(fast.__file__).with_name("csrc"))
    assert fast.build_dir() == here  # the same checkout finds its folder again
