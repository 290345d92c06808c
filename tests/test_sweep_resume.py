"""Jobs and sweeps that are killed and run again (real processes, real signals)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lstm_ablation.resume import wandb_run_id
from lstm_ablation.results import read_result
from lstm_ablation.sweep import LOCK_FILE, SweepError, check_start, lock, summary
from lstm_ablation.train import train

from conftest import TINY

BIN = Path(sys.executable).parent
# Long enough (40 validations, each writing last.ckpt) that a kill lands mid-training.
SLOW_JOB = (*TINY, "trainer.max_steps=120", "trainer.val_check_interval=3", "num_threads=1", "probe.enabled=false")


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "lstm-ablate"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    """Until `path` exists (a checkpoint written: training is under way); the process must still run."""
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def offline_ids(job: Path) -> set[str]:
    return {p.name.rsplit("-", 1)[-1] for p in (job / "wandb").glob("offline-run-*")}


def test_job_killed_with_sigkill_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path, make_cfg):
    """SIGKILL leaves no record and no chance to clean up: only last.ckpt (written atomically) survives."""
    job = tmp_path / "job"
    process = start(*SLOW_JOB, "wandb.mode=offline", f"hydra.run.dir={job}", cwd=tmp_path)
    wait_for(job / "checkpoints" / "last.ckpt", process)
    process.kill()
    process.communicate()
    assert not (job / "result.json").exists()
    step = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < step < 120
    first_id = wandb_run_id(job)

    done = subprocess.run([str(BIN / "lstm-ablate"), *SLOW_JOB, "wandb.mode=offline", f"resume={job}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_result(job / "result.json")
    assert record["status"] == "completed" and record["resumed_from_step"] == step and record["steps"] == 120
    straight = train(make_cfg(*SLOW_JOB, "wandb.mode=disabled"), tmp_path / "straight")
    assert record["metrics"] == straight["metrics"]  # exactly equal: same batches, optimiser state, best-so-far
    assert offline_ids(job) == {first_id}  # one W&B run, continued under its id


@pytest.mark.slow
def test_sigint_records_an_interrupted_job_and_exits_non_zero(tmp_path):
    job = tmp_path / "job"
    process = start(*SLOW_JOB, "wandb.mode=disabled", f"hydra.run.dir={job}", cwd=tmp_path)
    wait_for(job / "checkpoints" / "last.ckpt", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate()
    assert process.returncode == 130, err[-3000:]
    record = read_result(job / "result.json")
    assert record["status"] == "interrupted" and "SIGINT" in record["error"]
    assert record["steps"] > 0 and "val/loss_best" in record["metrics"]
    assert stderr_lines(err)[-1].startswith("lstm-ablate: interrupted by SIGINT") and f"resume={job}" in stderr_lines(err)[-1]


@pytest.mark.slow
def test_sweep_killed_twice_and_resumed_ends_with_each_job_exactly_once(tmp_path):
    sweep = tmp_path / "sweep"
    command = ["-m", "seed=0,1,2,3", *SLOW_JOB, "trainer.max_steps=60", "wandb.mode=offline", f"hydra.sweep.dir={sweep}"]
    jobs = [sweep / f"{n}-vanilla-s{n}" for n in range(4)]

    # 1. SIGTERM (what `timeout`, SLURM and submitit send) while job 1 trains
    process = start(*command, cwd=tmp_path)
    wait_for(jobs[1] / "checkpoints" / "last.ckpt", process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate()
    assert process.returncode == 143, err[-3000:]
    assert read_result(jobs[0] / "result.json")["status"] == "completed"
    interrupted = read_result(jobs[1] / "result.json")
    assert interrupted["status"] == "interrupted" and interrupted["steps"] > 0
    assert not jobs[2].exists() and not jobs[3].exists()
    last = stderr_lines(err)[-1]
    assert "interrupted by SIGTERM" in last and "1/4 completed, 1 interrupted, 2 not started" in last and f"resume={sweep}" in last
    done_0 = (jobs[0] / "result.json").read_text()
    ids = {job: offline_ids(job) for job in jobs[:2]}

    # 2. resumed, then SIGKILL while job 2 trains: no record for it, a stale lock left behind
    process = start(*command, f"resume={sweep}", cwd=tmp_path)
    wait_for(jobs[2] / "checkpoints" / "last.ckpt", process)
    process.kill()
    process.communicate()
    assert 0 < read_result(jobs[1] / "result.json")["resumed_from_step"] <= interrupted["steps"]
    assert not (jobs[2] / "result.json").exists() and (sweep / LOCK_FILE).exists()
    done_1 = (jobs[1] / "result.json").read_text()

    # 3. resumed to the end
    done = subprocess.run([str(BIN / "lstm-ablate"), *command, f"resume={sweep}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    errors = {r.parent.name: read_result(r)["error"] for r in sweep.rglob("result.json") if read_result(r)["error"]}
    assert done.returncode == 0, (errors, done.stderr[-3000:])  # a failed job's own error says why
    assert stderr_lines(done.stderr)[-1] == "sweep: 4/4 completed"
    assert "taking it over" in done.stdout  # Hydra's log: the lock of the killed process
    records = sorted(sweep.rglob("result.json"))
    assert [r.parent for r in records] == jobs and {read_result(r)["status"] for r in records} == {"completed"}
    assert (jobs[0] / "result.json").read_text() == done_0 and (jobs[1] / "result.json").read_text() == done_1  # not re-run
    assert offline_ids(jobs[0]) == ids[jobs[0]] and offline_ids(jobs[1]) == ids[jobs[1]]  # W&B run ids unchanged
    assert len(list((jobs[0] / "wandb").glob("offline-run-*"))) == 1  # a completed job starts no second run
    assert all(len(offline_ids(job)) == 1 for job in jobs) and not (sweep / LOCK_FILE).exists()


@pytest.mark.slow
def test_preempted_submitit_job_is_requeued_and_resumes(tmp_path):
    """What SLURM preemption or a time limit does through submitit, on its local executor: USR2 to the
    job's worker, submitit checkpoints (the launcher resubmits the same job) and requeues it, and the
    requeued job continues from its last.ckpt."""
    sweep = tmp_path / "sweep"
    process = start("-m", "hydra/launcher=local", "hydra.launcher.timeout_min=20", "seed=0", *SLOW_JOB,
                    "trainer.max_steps=600", "wandb.mode=disabled", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    wait_for(sweep / "0-vanilla-s0" / "checkpoints" / "last.ckpt", process)
    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and is_worker(p, sweep)]
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGUSR2)  # what submitit's LocalJob._interrupt() sends
    _, err = process.communicate()
    assert process.returncode == 0, err[-3000:]
    record = read_result(sweep / "0-vanilla-s0" / "result.json")
    assert record["status"] == "completed" and record["resumed_from_step"] > 0 and record["steps"] == 600
    assert stderr_lines(err)[-1] == "sweep: 1/1 completed"
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "Requeued job" in logs


def is_worker(proc: Path, sweep: Path) -> bool:
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "submitit.core._submit" in cmdline and str(sweep) in cmdline


def test_sweep_where_every_job_fails_says_so_and_exits_non_zero(tmp_path):
    """A Trainer value only Lightning checks (at launch) fails every job; the sweep must not look fine."""
    sweep = tmp_path / "sweep"
    command = [str(BIN / "lstm-ablate"), "-m", "seed=0,1", *TINY, "+trainer.fast_dev_run=abc", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    assert {read_result(p)["status"] for p in sweep.rglob("result.json")} == {"failed"}
    jobs = f"{sweep / '0-vanilla-s0'} {sweep / '1-vanilla-s1'}"
    assert stderr_lines(done.stderr)[-1] == f"sweep: 0/2 completed, 2 failed (see {jobs})"
    # the same command into the same directory would mix two sweeps: refused, nothing touched
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and stderr_lines(again.stderr) == [
        f"lstm-ablate: error: hydra.sweep.dir: {sweep} already holds a sweep; continue it with resume={sweep}, or choose another directory"]


def sweep_config(sweep: Path, resume: str | None, overrides: list[str]):
    return OmegaConf.create({"resume": resume, "hydra": {"sweep": {"dir": str(sweep)}, "overrides": {"task": overrides}}})


def test_resume_refuses_another_command_and_a_dir_without_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    with pytest.raises(SweepError, match="^resume: .* holds no sweep"):
        check_start(sweep_config(sweep, str(sweep), ["seed=0,1"]))
    sweep.mkdir()
    OmegaConf.save(sweep_config(sweep, None, ["seed=0,1", f"hydra.sweep.dir={sweep}"]), sweep / "multirun.yaml")
    assert check_start(sweep_config(sweep, str(sweep), ["seed=0,1", f"resume={sweep}"])) == sweep
    with pytest.raises(SweepError, match=r"^resume: .* was started with overrides \[seed=0,1\], this command has \[seed=0,1,2\]"):
        check_start(sweep_config(sweep, str(sweep), ["seed=0,1,2", f"resume={sweep}"]))
    # a finished tuned sweep can be re-scored afterwards: the re-score settings are not part of the command's identity
    assert check_start(sweep_config(sweep, str(sweep), ["seed=0,1", "tune.rescore.top_k=3", f"resume={sweep}"])) == sweep
    assert check_start(sweep_config(sweep, str(sweep), ["seed=0,1", "tune.n_jobs=1", f"resume={sweep}"])) == sweep  # how many at a time


def test_lock_refuses_a_second_sweep_and_takes_over_a_dead_ones(tmp_path):
    warnings = []
    (tmp_path / LOCK_FILE).write_text(f"{os.uname().nodename} {os.getpid()} 2026-01-01T00:00:00Z\n")  # alive: this test
    with pytest.raises(SweepError, match=f"in use by another sweep .*pid {os.getpid()}"):
        lock(tmp_path, warnings.append)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(f"{os.uname().nodename} {dead.pid} 2026-01-01T00:00:00Z\n")
    lock(tmp_path, warnings.append)
    assert len(warnings) == 1 and "gone" in warnings[0]
    assert (tmp_path / LOCK_FILE).read_text().split()[1] == str(os.getpid())


def test_summary_counts_planned_jobs_that_never_started(tmp_path):
    for n, status in enumerate(["completed", "diverged"]):
        job = tmp_path / f"{n}-vanilla-s{n}"
        (job / ".hydra").mkdir(parents=True)
        (job / "result.json").write_text(json.dumps({"status": status, "cell": "vanilla", "task": "adding", "seed": n,
                                                     "metrics": {}, "baseline": 0, "params": 1, "duration_s": 0,
                                                     "git": {}, "config": {}}))
    (tmp_path / "2-vanilla-s2" / ".hydra").mkdir(parents=True)
    line, ok = summary(tmp_path, planned=4)
    assert line == f"sweep: 1/4 completed, 1 diverged, 1 missing, 1 not started (see {tmp_path / '2-vanilla-s2'})"
    assert not ok
    assert summary(tmp_path, planned=None)[0].startswith("sweep: 1/3 completed")
