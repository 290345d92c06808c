"""The commands a researcher types: a real multirun + report, and bad input refused in one line."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import TINY

BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_multirun_then_report(tmp_path):
    sweep = tmp_path / "sweep"
    done = run("lstm-ablate", "-m", "cell=vanilla,no_forget_gate", "seed=0,1", *TINY, "trainer.max_steps=20",
               "name=cli_test", f"hydra.sweep.dir={sweep}", "report.after_sweep=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name != "report")
    assert jobs == ["0-vanilla-s0", "1-vanilla-s1", "2-no_forget_gate-s0", "3-no_forget_gate-s1"]
    # report.after_sweep: the on_multirun_end callback wrote the sweep's own report
    assert len(pd.read_csv(sweep / "report" / "results.csv")) == 4 and (sweep / "report" / "README.md").is_file()

    report = run("lstm-ablate-report", str(sweep), "--out", str(tmp_path / "report"), "--no-plots", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "report" / "results.csv")
    assert len(runs) == 4 and set(runs["status"]) == {"completed"}
    summary = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("cell")
    assert set(summary.index) == {"vanilla", "no_forget_gate"}
    readme = (tmp_path / "report" / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("|") and ("vanilla" in line or "no_forget_gate" in line)]
    assert len(rows) >= 2
    nfg = next(line for line in rows if "no_forget_gate" in line)
    assert "NFG" in nfg and "2/2" in nfg and "Memoryless baseline: **0.1667**" in readme  # short name, runs, baseline 1/6
    # every job probed its gradient flow; the report tabulates it per variant
    gradients = pd.read_csv(tmp_path / "report" / "gradient_summary.csv")
    assert len(gradients) == 4 and gradients["grad_h_log10_ratio"].notna().all()
    assert "## Gradient flow and gates" in readme
    vanilla_median = runs[runs.cell == "vanilla"]["value"].median()  # value: each run's test/<headline metric>
    vanilla = next(line for line in rows if "`vanilla`" in line)
    assert f"| {vanilla_median:.4g} [" in vanilla  # the table's median is the median of the runs


@pytest.mark.parametrize("args,field", [
    (["cell=bogus"], "cell"),
    (["task=bogus"], "task"),
    (["task.seq_len=1"], "task.seq_len"),
    (["task.seq_len=-5"], "task.seq_len"),
    (["cell.forget_gate=coupled", "cell.input_gate=none"], "cell.forget_gate"),
    (["optim.lr=0"], "optim.lr"),
    (["model.hidden_size=-2"], "model.hidden_size"),
    (["-m", "cell=vanilla,bogus"], "cell"),
    (["-m", "cell=vanilla,rnn", "task.seq_len=10,1"], "task.seq_len"),
    (["cell=gru", "+cell.forget_bias=2"], "cell.forget_bias"),  # a setting the GRU would silently ignore
    (["-m", "cell=vanilla", "--cfg", "job"], "-m and --cfg"),     # Hydra's own ValueError traceback before
])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, args, field):
    done = run("lstm-ablate", *args, "wandb.mode=disabled", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"lstm-ablate: error: {field}") and "allowed" in lines[0]
    assert not list(tmp_path.rglob("result.json")) and not (tmp_path / "multirun").exists()
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.json"))


def test_report_over_a_directory_without_results(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run("lstm-ablate-report", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "out").exists()


def test_sweep_dirs_started_in_the_same_second_differ():
    import re

    from hydra import compose, initialize_config_module

    import lstm_ablation.train  # noqa: F401 -- registers the ${uid:} resolver, as the app does
    dirs = []
    for _ in range(2):
        with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
            cfg = compose("config", return_hydra_config=True)
            dirs.append(str(cfg.hydra.sweep.dir))
    assert all(re.fullmatch(r"multirun/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d-[0-9a-f]{6}", d) for d in dirs), dirs
    assert dirs[0] != dirs[1]  # same second or not, the random suffix keeps them apart


def test_python_dash_m_entry_point(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lstm_ablation", "--cfg", "job", "cell=peephole"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "peepholes: true" in done.stdout


@pytest.mark.slow
def test_parallel_local_launcher_keeps_one_sweep_dir(tmp_path):
    """submitit runs each job in its own process: the ${uid:} in the sweep dir must not re-resolve there."""
    done = run("lstm-ablate", "-m", "hydra/launcher=local", "cell=vanilla,rnn", *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = sorted(tmp_path.glob("multirun/*/*/*/result.json"))
    assert [p.parent.name for p in results] == ["0-vanilla-s0", "1-rnn-s0"]
    assert results[0].parent.parent == results[1].parent.parent


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_module
    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.cpus_per_task == 2


def test_a_key_of_the_swept_cell_is_known_to_the_check_before_hydra_starts(capsys):
    """`-m hydra.sweeper.params.cell=gru cell.update_bias=0` sweeps GRU jobs, whose cell has the key; the
    pre-check composes its first job as the sweeper will, and still refuses the key for a cell that lacks it."""
    from lstm_ablation.train import check_overrides

    check_overrides(["-m", "experiment=sequential_digits", "hydra.sweeper.params.cell=gru",
                     "hydra.sweeper.params.seed='1,2'", "cell.update_bias=0"])  # no SystemExit: valid
    with pytest.raises(SystemExit) as exit_:
        check_overrides(["-m", "hydra.sweeper.params.cell=vanilla", "cell.update_bias=0"])
    assert exit_.value.code == 2 and "cell.update_bias: unknown key" in capsys.readouterr().err


def test_local_launcher_shows_each_job_the_gpu(monkeypatch, tmp_path):
    """submitit's local executor sets each job's CUDA_VISIBLE_DEVICES to the GPUs it asks for: asking for
    none hides the GPU, and trainer.accelerator=auto would then train on the CPU of a GPU machine."""
    from hydra import compose, initialize_config_module
    from submitit.local import local

    with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=local"], return_hydra_config=True)
    started = {}

    class Process:
        pid = 1

    monkeypatch.setattr(local, "start_controller", lambda **kw: started.update(kw) or Process())
    executor = local.LocalExecutor(folder=tmp_path)
    executor.update_parameters(gpus_per_node=cfg.hydra.launcher.gpus_per_node)
    executor._submit_command("true")
    assert started["cuda_devices"] == "0"
