"""Only one thing pyproject.toml cannot say: a wheel records the git commit it was built from.

An installed wheel has no .git beside it, so build_py writes lstm_ablation/build_info.json
({"commit", "dirty"}, both null when built outside a git checkout, e.g. from an sdist);
train.git_state() reads it before asking git.
"""
import json
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


class BuildWithCommit(build_py):
    def run(self):
        super().run()
        commit, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
        info = {"commit": commit, "dirty": None if commit is None or status is None else bool(status)}
        target = Path(self.build_lib) / "lstm_ablation" / "build_info.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(info) + "\n")


setup(cmdclass={"build_py": BuildWithCommit})
