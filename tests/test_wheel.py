"""`pip install .` as a user does it: a wheel (not editable) in a fresh venv runs a job and a
`hydra/launcher=local` sweep, and records the commit it was built from."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def sh(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_a_job_and_a_local_launcher_sweep(tmp_path):
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", ROOT, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("lstm_ablation-*.whl")
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    pip = venv / "bin" / "pip"
    sh(pip, "install", "-q", "torch==2.13.0", cwd=tmp_path)  # the CPU build first, as the Makefile does
    sh(pip, "install", "-q", wheel, cwd=tmp_path)
    work = tmp_path / "work"  # outside the repo: git cannot answer for the installed package
    work.mkdir()
    sh(venv / "bin" / "lstm-ablate", *TINY, "hydra.run.dir=job", cwd=work)
    record = json.loads((work / "job" / "result.json").read_text())
    assert record["status"] == "completed" and record["git"]["commit"] == commit
    sh(venv / "bin" / "lstm-ablate", "-m", "hydra/launcher=local", "cell=vanilla,rnn", *TINY, "hydra.sweep.dir=sweep", cwd=work)
    results = sorted((work / "sweep").glob("*/result.json"))
    assert [p.parent.name for p in results] == ["0-vanilla-s0", "1-rnn-s0"]
    assert all(json.loads(p.read_text())["status"] == "completed" for p in results)
