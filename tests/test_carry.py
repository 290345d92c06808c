"""sweeps/carry.py: a study under way packed on one machine and restored on the next keeps what its
resume needs (storage, final records and logs, the queue) and nothing that would mislead it."""
import json
import os
import subprocess
import sys
from pathlib import Path

CARRY = Path(__file__).resolve().parents[1] / "sweeps" / "carry.py"


def job(sweep: Path, name: str, status: str | None) -> Path:
    d = sweep / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (d / "metrics.csv").write_text("step,val/loss\n1,0.5\n")
    (d / "probes.json").write_text("{}")
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (d / "wandb").mkdir()
    (d / "wandb" / "run.wandb").write_bytes(b"log")
    if status:
        (d / "result.json").write_text(json.dumps({"status": status, "duration_s": 5.0}))
    return d


def carry(*args: str, root: Path, packed: Path) -> str:
    env = {**os.environ, "WORK_ROOT": str(root), "SWEEPS_DIR": str(packed)}
    done = subprocess.run([sys.executable, str(CARRY), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pack_keeps_what_a_resume_needs_and_restore_puts_it_back_at_the_same_path(tmp_path: Path) -> None:
    root, packed = tmp_path / "s19", tmp_path / "repo_sweeps"
    sweep = root / "study" / "task" / "vanilla"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    (sweep / "optuna.db").write_bytes(b"SQLite format 3")
    (sweep / ".sweep.lock").write_text("host 1")
    job(sweep, "tune-vanilla-t0", "completed")
    job(sweep, "confirm-vanilla-c0-s1", "completed")
    job(sweep, "tune-vanilla-t1", "interrupted")   # cut by SIGTERM: its record only (its time counts next attempt)
    job(sweep, "tune-vanilla-t2", None)            # still running, or killed: left out, runs again
    (root / "queue").mkdir()
    (root / "queue" / "010-next").write_text("exec lstm-ablate -m ...\n")
    (root / "queue" / "STOP").write_text("")

    out = carry("pack", str(sweep), root=root, packed=packed)
    assert "2 finished jobs, 1 cut, 1 without a record left out" in out
    kept = sorted(str(p.relative_to(packed)) for p in packed.rglob("*") if p.is_file())
    base = "study/task/vanilla/"
    assert kept == sorted([
        base + "multirun.yaml", base + "optuna.db",
        base + "tune-vanilla-t0/result.json", base + "tune-vanilla-t0/metrics.csv", base + "tune-vanilla-t0/.hydra/overrides.yaml",
        base + "confirm-vanilla-c0-s1/result.json", base + "confirm-vanilla-c0-s1/metrics.csv",
        base + "confirm-vanilla-c0-s1/probes.json", base + "confirm-vanilla-c0-s1/.hydra/overrides.yaml",
        base + "tune-vanilla-t1/result.json", base + "tune-vanilla-t1/.hydra/overrides.yaml",
        "queue/010-next"])

    fresh = tmp_path / "next_machine" / "s19"
    out = carry("restore", root=fresh, packed=packed)
    assert (fresh / "study/task/vanilla/optuna.db").read_bytes() == b"SQLite format 3"
    assert json.loads((fresh / "study/task/vanilla/tune-vanilla-t1/result.json").read_text())["status"] == "interrupted"
    assert not (fresh / "study/task/vanilla/tune-vanilla-t1/checkpoints").exists()
    assert (fresh / "queue" / "010-next").is_file() and (fresh / "worker.sh").is_file() and (fresh / "running").is_dir()


def test_pack_refuses_a_dir_that_is_not_a_sweep_below_the_work_root(tmp_path: Path) -> None:
    env = {**os.environ, "WORK_ROOT": str(tmp_path / "s19"), "SWEEPS_DIR": str(tmp_path / "packed")}
    (tmp_path / "elsewhere").mkdir()
    done = subprocess.run([sys.executable, str(CARRY), "pack", str(tmp_path / "elsewhere")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "expected a sweep dir (with multirun.yaml) below" in done.stderr
    assert not (tmp_path / "packed").exists()


def test_land_moves_a_built_study_into_its_report_and_out_of_the_queue_and_work_root(tmp_path: Path) -> None:
    root, packed, landed = tmp_path / "s19", tmp_path / "repo_sweeps", tmp_path / "landed"
    sweeps = [root / "mqar" / "recall" / cell for cell in ("vanilla", "rnn")]
    for sweep in sweeps:
        sweep.mkdir(parents=True)
        (sweep / "multirun.yaml").write_text("hydra: {}\n")
        job(sweep, f"confirm-{sweep.name}-c0-s1", "completed")
    other = root / "listops" / "vanilla"
    other.mkdir(parents=True)
    (root / "queue").mkdir()
    (root / "running").mkdir()
    (packed / "queue").mkdir(parents=True)
    (packed / "queue" / "102-mqar-rnn").write_text(f"exec lstm-ablate -m hydra.sweep.dir={sweeps[1]} resume={sweeps[1]}\n")
    (packed / "queue" / "104-listops").write_text(f"exec lstm-ablate -m hydra.sweep.dir={other}\n")
    report = tmp_path / "reports" / "associative_recall"
    report.mkdir(parents=True)
    (report / "report.json").write_text(json.dumps({"sources": [str(s) for s in sweeps]}))
    env = {**os.environ, "WORK_ROOT": str(root), "SWEEPS_DIR": str(packed), "LANDED_ROOT": str(landed)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(CARRY), "land", *args], env=env, capture_output=True, text=True)

    # refused, with nothing moved, while one of its sweeps is still running
    (root / "running" / "102-mqar-rnn.B").write_text(f"exec lstm-ablate -m hydra.sweep.dir={sweeps[1]}\n")
    done = run(str(root / "mqar"), str(report))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "still running" in done.stderr
    assert all(s.is_dir() for s in sweeps) and not (report / "runs").exists()
    (root / "running" / "102-mqar-rnn.B").unlink()

    done = run(str(root / "mqar"), str(report))
    assert done.returncode == 0, done.stderr
    for sweep in sweeps:
        assert json.loads((report / "runs" / sweep.name / f"confirm-{sweep.name}-c0-s1" / "result.json").read_text())["status"] == "completed"
        assert not (report / "runs" / sweep.name / f"confirm-{sweep.name}-c0-s1" / "checkpoints").exists()
    assert not (packed / "mqar").exists() and not (root / "mqar").exists() and (landed / "mqar" / "recall" / "rnn").is_dir()
    assert sorted(p.name for p in (packed / "queue").iterdir()) == ["104-listops"]

    # a report built from other sweeps is refused
    again = run(str(other.parent), str(report))
    assert again.returncode == 2 and "no sweep" in again.stderr
    (other / "multirun.yaml").write_text("hydra: {}\n")
    again = run(str(other.parent), str(report))
    assert again.returncode == 2 and "not among associative_recall's sources" in again.stderr and other.is_dir()


def test_a_pack_taken_mid_run_puts_the_running_items_back_in_the_queue_to_resume(tmp_path: Path) -> None:
    root, packed = tmp_path / "s19", tmp_path / "repo_sweeps"
    begun, fresh = root / "temporal" / "vanilla", root / "temporal" / "rnn"
    begun.mkdir(parents=True)
    (begun / "multirun.yaml").write_text("hydra: {}\n")
    job(begun, "tune-vanilla-t0", "completed")
    for folder in ("queue", "running"):
        (root / folder).mkdir()
    (root / "queue" / "112-next").write_text("exec lstm-ablate -m\n")
    (root / "running" / "110-begun.B").write_text(f"cd tree\nexec lstm-ablate -m hydra.sweep.dir={begun}\n")
    (root / "running" / "111-fresh.A").write_text(f"cd tree\nexec lstm-ablate -m hydra.sweep.dir={fresh}\n")  # no multirun.yaml yet

    out = carry("pack", str(begun), root=root, packed=packed)
    assert "3 items (110-begun, 111-fresh, 112-next); 2 of them running now" in out
    assert (packed / "queue" / "110-begun").read_text() == f"cd tree\nexec lstm-ablate -m hydra.sweep.dir={begun} resume={begun}\n"
    assert (packed / "queue" / "111-fresh").read_text() == f"cd tree\nexec lstm-ablate -m hydra.sweep.dir={fresh}\n"
    assert (root / "running" / "110-begun.B").read_text().count("resume=") == 0  # the live item is left as it runs


def test_stop_requeues_an_item_whose_worker_was_killed_without_logging_its_end(tmp_path: Path) -> None:
    """A machine that stops under the workers leaves items in running/ with a start and no end logged."""
    root, packed = tmp_path / "s19", tmp_path / "repo_sweeps"
    sweep = root / "temporal" / "vanilla"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    job(sweep, "tune-vanilla-t0", "completed")
    for folder in ("queue", "running", "done"):
        (root / folder).mkdir()
    (root / "done" / "109-finished").write_text(f"exec lstm-ablate -m hydra.sweep.dir={sweep.parent / 'nfg'}\n")
    (root / "running" / "110-vanilla.B").write_text(f"exec lstm-ablate -m hydra.sweep.dir={sweep}\n")
    (root / "queue_times.log").write_text("T B start 109-finished\nT B end 109-finished rc=0\nT B start 110-vanilla\n")
    env = {**os.environ, "WORK_ROOT": str(root), "SWEEPS_DIR": str(packed)}
    done = subprocess.run(["bash", str(CARRY.parent / "stop.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (root / "queue" / "110-vanilla").read_text() == f"exec lstm-ablate -m hydra.sweep.dir={sweep} resume={sweep}\n"
    assert not any((root / "running").iterdir()) and (root / "done" / "109-finished").is_file()
    assert not (root / "queue" / "STOP").exists()
    assert (packed / "queue" / "110-vanilla").read_text() == (root / "queue" / "110-vanilla").read_text()
    assert (packed / "temporal" / "vanilla" / "tune-vanilla-t0" / "result.json").is_file()
