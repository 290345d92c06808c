"""A sweep directory as a whole: which jobs it plans, one sweep at a time in it, and the line it ends with.

    lstm-ablate -m experiment=seed_gates                           # killed half-way ...
    lstm-ablate -m experiment=seed_gates resume=multirun/<d>/<t>   # ... picks it up: completed,
                                                                   # diverged (and pruned) jobs are skipped, the
                                                                   # rest run (from their last.ckpt)
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .results import RESULT_FILE, ResultError, flatten, read_result

LOCK_FILE = ".sweep.lock"
FINAL = ("completed", "diverged", "pruned")  # a job with one of these results is done; the others run again


class SweepError(ValueError):
    """A sweep that must not start; the message is one line."""


def planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """The override list of every job a multirun config launches, in Hydra's job-number order;
    None for sweepers other than Hydra's basic one (they choose their jobs as they go)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    target = str(OmegaConf.select(config, "hydra.sweeper._target_") or "")
    if not target.endswith("BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def user_overrides(overrides: list[str]) -> list[str]:
    """The command's overrides without the ones that only say where and how many at a time to run, and
    without `tune.rescore.*`: a finished tuned sweep may be re-scored afterwards (tune.py keeps its
    confirmation consistent)."""
    return sorted(o for o in overrides if not o.startswith(("resume=", "hydra.sweep.dir=", "tune.n_jobs=", "tune.rescore.")))


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories Hydra created in a sweep dir (each holds .hydra/), in job-number order."""
    found = [p.parent for p in Path(sweep_dir).glob("*/.hydra")]
    return sorted(found, key=lambda p: (int(p.name.split("-")[0]) if p.name.split("-")[0].isdigit() else 1 << 30, p.name))


def check_start(config: DictConfig) -> Path:
    """Before a multirun: a fresh dir, or `resume=<dir>` pointing at a sweep started by the same command."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    resume = config.get("resume")
    previous = sweep_dir / "multirun.yaml"
    if resume is None:
        if previous.exists() or job_dirs(sweep_dir):
            raise SweepError(f"hydra.sweep.dir: {sweep_dir} already holds a sweep; continue it with resume={sweep_dir}, "
                             "or choose another directory")
        return sweep_dir
    if not previous.is_file():
        raise SweepError(f"resume: {resume} holds no sweep (no multirun.yaml); allowed: the directory of a sweep started before")
    old = user_overrides(list(OmegaConf.load(previous).hydra.overrides.task))
    new = user_overrides(list(config.hydra.overrides.task))
    if old != new:
        raise SweepError(f"resume: {resume} was started with overrides [{' '.join(old)}], this command has "
                         f"[{' '.join(new)}]; allowed: the same overrides plus resume=")
    return sweep_dir


def lock(sweep_dir: Path, warn) -> None:
    """One sweep at a time in a directory: <sweep dir>/.sweep.lock holds host and pid; a lock whose
    process is gone (killed with SIGKILL, machine lost) is taken over with a warning."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / LOCK_FILE
    me = f"{socket.gethostname()} {os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            host, pid, since = (path.read_text().split() + ["?", "0", "?"])[:3]
            if host == socket.gethostname() and pid.isdigit() and not alive(int(pid)):
                warn(f"{path}: left by process {pid}, which is gone; taking it over")
                path.unlink(missing_ok=True)
                continue
            raise SweepError(f"hydra.sweep.dir: {sweep_dir} is in use by another sweep (host {host}, pid {pid}, since {since}); "
                             "wait for it to end, or choose another directory") from None
        with os.fdopen(fd, "w") as f:
            f.write(me + "\n")
        atexit.register(unlock, path, me)
        return
    raise SweepError(f"hydra.sweep.dir: could not lock {sweep_dir}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unlock(path: Path, me: str) -> None:
    try:
        if path.read_text().strip() == me:
            path.unlink()
    except OSError:
        pass


def status_of(job_dir: Path) -> str:
    try:
        return read_result(job_dir / RESULT_FILE)["status"]
    except FileNotFoundError:
        return "missing"
    except (ResultError, OSError, UnicodeDecodeError):
        return "unreadable"


def summary(sweep_dir: Path, planned: int | None) -> tuple[str, bool]:
    """`sweep: 33/35 completed, 1 diverged, 1 failed (see <dirs>)` and whether every job ended with a result."""
    if planned is None and (Path(sweep_dir) / "multirun.yaml").is_file():  # what the sweep launches, from its own record
        jobs = planned_jobs(OmegaConf.load(Path(sweep_dir) / "multirun.yaml"))
        planned = len(jobs) if jobs is not None else None
    dirs = job_dirs(sweep_dir)
    statuses = {d: status_of(d) for d in dirs}
    total = max(planned or 0, len(dirs))
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s] = counts.get(s, 0) + 1
    never = total - len(dirs)
    parts = [f"{counts.pop('completed', 0)}/{total} completed"]
    parts += [f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (kv[0] != "diverged", kv[0]))]
    if never:
        parts.append(f"{never} not started")
    bad = [str(d) for d, s in statuses.items() if s not in FINAL]
    line = "sweep: " + ", ".join(parts) + (f" (see {' '.join(bad)})" if bad else "")
    return line, not bad and not never


def earlier_attempts_s(run_dir: Path) -> float:
    """Seconds the earlier attempts of a job that runs again spent: the duration_s of the failed or
    interrupted record the last one left (itself the sum over the attempts before it); 0 for a fresh job
    or one whose record is final. An attempt killed without a record (SIGKILL) left no time to count."""
    try:
        record = read_result(Path(run_dir) / RESULT_FILE)
    except (FileNotFoundError, ResultError):
        return 0.0
    return 0.0 if record["status"] in FINAL else float(record["duration_s"] or 0.0)


def previous_record(run_dir: Path, config: dict[str, Any]) -> dict | None:
    """The record of an earlier attempt of this job when it is final (completed/diverged/pruned) and was
    made with this very config; SweepError when the directory holds a result of another config."""
    path = Path(run_dir) / RESULT_FILE
    try:
        record = read_result(path)
    except (FileNotFoundError, ResultError):
        return None
    config = json.loads(json.dumps(config, default=str))  # as the record stores it
    if record["config"] != config:
        old, new = flatten(record["config"]), flatten(config)
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise SweepError(f"{run_dir}: holds the result of another config (differs in {', '.join(keys[:5])}); "
                         "allowed: the same config, or another directory")
    return record if record["status"] in FINAL else None

