"""Carry study sweeps under way across machines: a session can end, and its machine go, mid-study.

    python sweeps/carry.py pack /work/s19/reber_tuned/continual_reber_stream/vanilla ...
    python sweeps/carry.py restore            # every packed sweep (and the queue) back below the work root
    python sweeps/carry.py land /work/s19/mqar_tuned reports/associative_recall   # a study whose report is built

`pack` copies into sweeps/<path below the work root> what resuming needs: the sweep's multirun.yaml and
optuna.db, and per job result.json, metrics.csv, stream.json and .hydra/, plus probes.json of
confirmation runs (the report's gradient table reads only those). Checkpoints and W&B files stay
behind, so a job that was cut runs again from its start (only its record is packed, for its time); a
job with no record (still running, or killed) is left out and runs again. `restore` puts each sweep back at the same
absolute path (the storage records its job dirs by path); then the sweep's command with
resume=<dir> goes on. `pack` also keeps the work root's queue/ (worker.sh's command files), the items
running now back in it with resume=<their sweep dir>, so a pack taken mid-run restores too; `restore`
puts it back with worker.sh. `land` ends a study's stay here once its report is built from the live sweeps:
each sweep packed into <report>/runs/<sweep name> (the report's raw records), its items out of the packed
queue, and the study dir moved from the work root to $LANDED_ROOT (default /work/landed), so that stop.sh
does not pack it again. Work root: $WORK_ROOT, default /work/s19.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(os.environ.get("SWEEPS_DIR", Path(__file__).resolve().parent))   # where packed sweeps live (tests: a tmp dir)
ROOT = Path(os.environ.get("WORK_ROOT", "/work/s19"))
LANDED = Path(os.environ.get("LANDED_ROOT", ROOT.parent / "landed"))
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


def pack(sweep: Path) -> Path:
    """Returns where it was packed."""
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
    return dest


def resumable(item: Path) -> str:
    """A running item's command as the queue would get it back: ` resume=<its sweep dir>` added once its
    sweep has begun (as stop.sh does), so that a machine lost mid-run goes on from the packed state."""
    text, sweep = item.read_text(), sweep_of(item)
    if "resume=" in text or sweep is None or not (sweep / "multirun.yaml").is_file():
        return text
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[:-1] + [f"{lines[-1]} resume={sweep}"]) + "\n"


def pack_queue() -> None:
    """The work root's queue (worker.sh's items, one command file each, run in name order) as it stands,
    with the items running now (running/<item>.<worker>) back in it under their own names."""
    shutil.rmtree(HERE / "queue", ignore_errors=True)
    items = {p.name: p.read_text() for p in sorted((ROOT / "queue").glob("*")) if p.is_file() and p.name != "STOP"}
    running = {p.name.rsplit(".", 1)[0]: resumable(p) for p in sorted((ROOT / "running").glob("*.*")) if p.is_file()}
    for name, text in sorted({**items, **running}.items()):
        (HERE / "queue").mkdir(exist_ok=True)
        (HERE / "queue" / name).write_text(text)
    names = sorted({**items, **running})
    print(f"packed the queue: {len(names)} items ({', '.join(names) or 'none'}); {len(running)} of them running now")


def sweep_of(item: Path) -> Path | None:
    """The sweep dir a queue item runs (its hydra.sweep.dir=)."""
    found = re.search(r"hydra\.sweep\.dir=(\S+)", item.read_text())
    return Path(found.group(1)).resolve() if found else None


def land(study: Path, report: Path) -> None:
    study, report = study.resolve(), report.resolve()
    if ROOT not in study.parents or not study.is_dir():
        refuse(f"{study}: expected a study dir below {ROOT} (set WORK_ROOT)")
    sweeps = sorted(p.parent for p in study.rglob("multirun.yaml") if ".submitit" not in p.parts)
    if not sweeps:
        refuse(f"{study}: holds no sweep (no multirun.yaml below it); expected the study dir of finished sweeps")
    try:
        sources = {Path(s).resolve() for s in json.loads((report / "report.json").read_text())["sources"]}
    except (OSError, ValueError, KeyError):
        refuse(f"{report}: no report.json with sources; build the report from the live sweeps first (lstm-ablate-report)")
    if missing := [s for s in sweeps if s not in sources]:
        refuse(f"{missing[0]}: not among {report.name}'s sources; expected a report built from every sweep of {study}")
    for folder in ("queue", "running"):
        for item in sorted((ROOT / folder).glob("*")):
            if item.is_file() and sweep_of(item) in sweeps:
                refuse(f"{item}: still {'queued' if folder == 'queue' else 'running'}; land a study once its sweeps have ended")
    runs = [report / "runs" / s.name for s in sweeps]
    if len(set(runs)) != len(runs):
        refuse(f"{study}: two sweeps share a name ({', '.join(s.name for s in sweeps)}); expected one runs/<name> per sweep")
    if taken := [r for r in runs if r.exists()]:
        refuse(f"{taken[0]}: already exists; expected one new runs/<name> per sweep")
    landed = LANDED / study.relative_to(ROOT)
    if landed.exists():
        refuse(f"{landed}: already exists; expected the study to land once")
    packed = []
    for sweep, dest in zip(sweeps, runs):
        packed.append(pack(sweep))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(packed[-1], dest)
        print(f"landed {sweep} -> {dest}")
    for item in sorted((HERE / "queue").glob("*")):
        if sweep_of(item) in sweeps:
            item.unlink()
            print(f"removed {item} from the packed queue")
    folders = {parent for folder in packed for parent in folder.parents}
    for leftover in sorted(folders, key=lambda p: -len(p.parts)):
        if HERE in leftover.parents and leftover.is_dir() and not any(leftover.rglob("*")):
            leftover.rmdir()  # the packed study's folders, now empty
    landed.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(study, landed)
    print(f"moved {study} -> {landed}; commit {report.name}/runs and sweeps/")


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
    usage = {"pack": lambda n: n >= 2, "restore": lambda n: n == 2, "land": lambda n: n == 4}
    if len(sys.argv) < 2 or sys.argv[1] not in usage or not usage[sys.argv[1]](len(sys.argv)):
        refuse("usage: carry.py pack [SWEEP_DIR...] | carry.py restore | carry.py land STUDY_DIR REPORT_DIR")
    if sys.argv[1] == "pack":
        for path in sys.argv[2:]:
            pack(Path(path))
        pack_queue()
    elif sys.argv[1] == "land":
        land(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        restore()
