"""Carry study sweeps under way across machines: a session can end, and its machine go, mid-study.

    python sweeps/carry.py pack /work/s19/reber_tuned/continual_reber_stream/vanilla ...
    python sweeps/carry.py restore            # every packed sweep (and the queue) back below the work root

`pack` copies into sweeps/<path below the work root> what resuming needs: the sweep's multirun.yaml and
optuna.db, and per job result.json, metrics.csv, stream.json and .hydra/, plus probes.json of
confirmation runs (the report's gradient table reads only those). Checkpoints and W&B files stay
behind, so a job that was cut runs again from its start (only its record is packed, for its time); a
job with no record (still running, or killed) is left out and runs again. `restore` puts each sweep back at the same
absolute path (the storage records its job dirs by path); then the sweep's command with
resume=<dir> goes on. `pack` also keeps the work root's queue/ (worker.sh's command files); `restore`
puts it back with worker.sh. Work root: $WORK_ROOT, default /work/s19.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(os.environ.get("SWEEPS_DIR", Path(__file__).resolve().parent))   # where packed sweeps live (tests: a tmp dir)
ROOT = Path(os.environ.get("WORK_ROOT", "/work/s19"))
SWEEP_FILES = ("multirun.yaml", "optuna.db")
JOB_FILES = ("result.json", "metrics.csv", "stream.json")


def refuse(line: str) -> None:
    print(f"carry.py: {line}", file=sys.stderr)
    sys.exit(2)


def status(job: Path) -> str | None:
    try:
        return json.loads((job / "result.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def kept(job: Path) -> list[Path]:
    """A finished job: its record and logs. A cut one (`interrupted`): its record only, so that its next
    attempt counts this one's time and starts clean. One still running or killed (no record): nothing."""
    state = status(job)
    if state is None:
        return []
    names = ("result.json",) if state == "interrupted" else JOB_FILES
    files = [job / name for name in names if (job / name).is_file()]
    if state != "interrupted" and job.name.startswith("confirm-") and (job / "probes.json").is_file():
        files.append(job / "probes.json")
    return files + sorted(p for p in (job / ".hydra").glob("*") if p.is_file())


def pack(sweep: Path) -> None:
    sweep = sweep.resolve()
    if ROOT not in sweep.parents or not (sweep / "multirun.yaml").is_file():
        refuse(f"{sweep}: expected a sweep dir (with multirun.yaml) below {ROOT} (set WORK_ROOT)")
    dest = HERE / sweep.relative_to(ROOT)
    shutil.rmtree(dest, ignore_errors=True)
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    for src in [sweep / name for name in SWEEP_FILES if (sweep / name).is_file()] + [f for job in jobs for f in kept(job)]:
        target = dest / src.relative_to(sweep)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    states = [status(job) for job in jobs]
    final = sum(s not in (None, "interrupted") for s in states)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 1e6
    print(f"packed {sweep} -> {dest}: {final} finished jobs, {states.count('interrupted')} cut, "
          f"{states.count(None)} without a record left out; {size:.1f} MB")


def pack_queue() -> None:
    """The work root's queue (worker.sh's items, one command file each, run in name order) as it stands."""
    shutil.rmtree(HERE / "queue", ignore_errors=True)
    items = sorted(p for p in (ROOT / "queue").glob("*") if p.is_file() and p.name != "STOP")
    for item in items:
        (HERE / "queue").mkdir(exist_ok=True)
        shutil.copy2(item, HERE / "queue" / item.name)
    print(f"packed the queue: {len(items)} items ({', '.join(p.name for p in items) or 'none'})")


def restore() -> None:
    for packed in sorted(p.parent for p in HERE.rglob("multirun.yaml")):
        dest = ROOT / packed.relative_to(HERE)
        shutil.copytree(packed, dest, dirs_exist_ok=True)
        print(f"restored {packed} -> {dest}")
    if (HERE / "queue").is_dir():
        shutil.copytree(HERE / "queue", ROOT / "queue", dirs_exist_ok=True)
        for name in ("running", "done", "logs"):
            (ROOT / name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(__file__).resolve().parent / "worker.sh", ROOT / "worker.sh")
        print(f"restored the queue -> {ROOT / 'queue'} and worker.sh")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("pack", "restore") or (sys.argv[1] == "pack" and len(sys.argv) < 3):
        refuse("usage: carry.py pack SWEEP_DIR... | carry.py restore")
    if sys.argv[1] == "pack":
        for path in sys.argv[2:]:
            pack(Path(path))
        pack_queue()
    else:
        restore()
