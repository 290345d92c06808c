"""Sweep directories -> one pandas table of runs (one row per launched job) and their val curves.

Every job dir Hydra created is a row: a good result.json gives its status (completed / diverged /
failed); a job dir without a usable result.json (crashed hard, still running, corrupt file) is a
row with status "missing" and a warning naming the path. Nothing is dropped silently.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..results import RESULT_FILE, ResultError, flatten, read_result

MISSING = "missing"
METRICS_LOG = "metrics.csv"

# Fixed leading columns of results.csv; metrics and config keys follow, sorted, so the file is stable.
CORE_COLUMNS = [
    "task_label", "task", "cell", "short", "change", "seed", "status", "error",
    "metric", "higher_is_better", "baseline", "solved_threshold", "value",
    "params", "params_recurrent", "hidden_size", "steps", "duration_s", "finished",
    "git_commit", "git_dirty", "sweep", "run",
]
CURVE_COLUMNS = ["run", "key", "step", "value"]
# Config keys whose differences between runs of one task make them different experiments.
TASK_IDENTITY_IGNORED = ("task.name", "task.data_seed")
# Settings that do not change what a run learns; any other key that differs between runs of one
# cell (optim.lr, model.hidden_size, cell.forget_bias, ...) makes them different experiments too.
NOT_SETTINGS = ("seed", "name", "num_threads", "resume", "tune.", "wandb.", "report.", "probe.", "checkpoint.", "trainer.enable_",
                "trainer.log_every_n_steps", "trainer.accelerator", "trainer.devices", "cell.name", "cell.short", "cell.change",
                "cell.literature", "cell.impl")


class ReportError(ValueError):
    """Input a report cannot be built from; the message is one line naming what and what is expected."""


@dataclass
class Collection:
    runs: pd.DataFrame                      # CORE_COLUMNS + "metrics.<key>" + "config.<key>"
    curves: pd.DataFrame                    # CURVE_COLUMNS: val/<headline metric> per run and step
    warnings: list[str] = field(default_factory=list)


def record_row(record: dict, run: str, sweep: str, finished: str | None) -> dict[str, Any]:
    """One results.csv row from a validated result.json record (local or rebuilt from W&B)."""
    metric = record.get("metric")
    metrics = record.get("metrics") or {}
    git = record.get("git") or {}
    value = metrics.get(f"test/{metric}") if metric else None
    row = {
        "task": record["task"], "cell": record["cell"], "short": record.get("short"),
        "change": record.get("change"), "seed": record["seed"], "status": record["status"],
        "error": record.get("error"), "metric": metric, "higher_is_better": record.get("higher_is_better"),
        "baseline": record.get("baseline"), "solved_threshold": record.get("solved_threshold"),
        # A completed run without its headline metric cannot be ranked; keep it visible as NaN.
        "value": value if record["status"] == "completed" else None,
        "params": record.get("params"), "params_recurrent": record.get("params_recurrent"),
        "hidden_size": record.get("hidden_size"), "steps": record.get("steps"), "duration_s": record.get("duration_s"), "finished": finished,
        "git_commit": git.get("commit"), "git_dirty": git.get("dirty"), "sweep": sweep, "run": run,
    }
    if record.get("device"):  # where it trained (records from before 2026-12 lack it): a column only where recorded
        row["device"] = record["device"]
    if record.get("resumed_from_step"):  # restarted from a checkpoint: a column only where some run was
        row["resumed_from_step"] = record["resumed_from_step"]
    if record.get("stopped_early"):  # stop_when_solved ended it: a column only where some run stopped
        row["stopped_at_step"] = record.get("stopped_at_step")
    row.update({f"metrics.{k}": v for k, v in metrics.items()})
    row.update({f"config.{k}": to_json_safe(v) for k, v in flatten(record.get("config") or {}).items()})
    return row


def missing_row(job_dir: Path, run: str, sweep: str, reason: str) -> dict[str, Any]:
    """A job Hydra launched but that left no usable record: place it in its group from .hydra/config.yaml."""
    config: dict = {}
    try:
        config = yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        pass
    cell, task = config.get("cell") or {}, config.get("task") or {}
    return {
        "task": task.get("name"), "cell": cell.get("name"), "short": cell.get("short"),
        "change": cell.get("change"), "seed": config.get("seed"), "status": MISSING, "error": reason,
        "sweep": sweep, "run": run,
        **{f"config.{k}": v for k, v in flatten(config).items() if isinstance(v, (int, float, str, bool))},
    }


def read_curve(job_dir: Path, metric: str | None, run: str) -> pd.DataFrame:
    """val/<metric> per logged step from the job's own Lightning CSV log (sparse rows)."""
    path = job_dir / METRICS_LOG
    key = f"val/{metric}"
    if metric is None or not path.is_file():
        return pd.DataFrame(columns=CURVE_COLUMNS)
    try:
        log = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return pd.DataFrame(columns=CURVE_COLUMNS)
    if key not in log.columns or "step" not in log.columns:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    points = log[["step", key]].dropna().drop_duplicates("step", keep="last")
    return pd.DataFrame({"run": run, "key": key, "step": points["step"].astype(int), "value": points[key]})


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every dir holding a result.json or Hydra's .hydra/ (a launched job), skipping W&B's files."""
    found = set()
    for path in sweep_dir.rglob("*"):
        if "wandb" in path.relative_to(sweep_dir).parts:
            continue
        if path.name == RESULT_FILE and path.is_file():
            found.add(path.parent)
        elif path.name == ".hydra" and path.is_dir() and not (path.parent / "multirun.yaml").exists():
            found.add(path.parent)  # the sweep dir itself may hold a .hydra of its own: not a job
    return sorted(found)


TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"  # sortable as text: the report's date is the newest of them


def finish_time(record: dict, path: Path) -> str | None:
    """When the job finished (UTC, to the second): the record's own `finished_at` if it has one
    (survives copying a sweep), else the file's modification time. The report's date comes from
    the data, never from the clock, so regenerating it changes nothing."""
    stamp = record.get("finished_at")
    if stamp:
        try:
            moment = pd.Timestamp(stamp)
        except ValueError:
            return None
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        return moment.strftime(TIME_FORMAT)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).strftime(TIME_FORMAT)


def runs_root(sweep_dirs) -> Path:
    """Run ids are paths relative to the sweeps' common parent: unique even when two sweep dirs share a
    name (digits/sequential/vanilla and digits/permuted/vanilla), and the same ids in every data file."""
    return Path(os.path.commonpath([Path(d).resolve().parent for d in sweep_dirs]))


def run_id(job_dir: Path, root: Path) -> str:
    return Path(job_dir).resolve().relative_to(root).as_posix()


def collect_local(sweep_dirs: list[Path]) -> Collection:
    rows, curves, warnings = [], [], []
    sweep_dirs = list(dict.fromkeys(Path(d) for d in sweep_dirs))  # the same dir twice is one sweep
    for sweep_dir in sweep_dirs:
        if not sweep_dir.is_dir():
            raise ReportError(f"{sweep_dir}: no such directory; expected a sweep directory holding <job>/result.json files")
    root = runs_root(sweep_dirs)
    for sweep_dir in sweep_dirs:
        for job_dir in job_dirs(sweep_dir):
            run = run_id(job_dir, root)
            path = job_dir / RESULT_FILE
            try:
                record = read_result(path)
            except FileNotFoundError:
                warnings.append(f"{job_dir}: no {RESULT_FILE} (crashed or still running); counted as missing")
                rows.append(missing_row(job_dir, run, str(sweep_dir), f"no {RESULT_FILE}"))
                continue
            except (ResultError, OSError, UnicodeDecodeError) as e:
                warnings.append(f"{e}; counted as missing")
                rows.append(missing_row(job_dir, run, str(sweep_dir), str(e)))
                continue
            if not isinstance(record["seed"], int) or isinstance(record["seed"], bool):  # a pre-validation record
                warnings.append(f"{path}: seed {record['seed']!r} is not an integer; counted as missing")
                rows.append(missing_row(job_dir, run, str(sweep_dir), f"seed {record['seed']!r} is not an integer"))
                continue
            rows.append(record_row(record, run, str(sweep_dir), finish_time(record, path)))
            if record["status"] == "completed" and rows[-1]["value"] is None:
                warnings.append(f"{path}: completed but has no test/{record.get('metric')} metric; left out of the mean")
            curves.append(read_curve(job_dir, record.get("metric"), run))
        rows += never_started(sweep_dir, {Path(r["run"]).name for r in rows if r["sweep"] == str(sweep_dir)}, root, warnings)
    dirs = ", ".join(map(str, sweep_dirs))
    if not rows:
        raise ReportError(f"no runs found under {dirs}; expected job directories holding {RESULT_FILE} (a finished `lstm-ablate -m` sweep)")
    if all(row["status"] == MISSING for row in rows):  # a report of nothing but gaps would mislead
        raise ReportError(f"no results under {dirs}: {len(rows)} job dir(s), none with a readable {RESULT_FILE} "
                          f"(e.g. {warnings[0].partition(': ')[0]}); expected at least one finished job")
    return finish(rows, curves, warnings)


def never_started(sweep_dir: Path, found: set[str], root: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """Jobs the sweep's multirun.yaml plans that left no directory (the sweep was stopped before them):
    missing rows placed by their cell=/seed=/task= overrides, else the sweep's own values."""
    from omegaconf import OmegaConf

    from ..sweep import planned_jobs

    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return []
    try:
        config = OmegaConf.load(path)
        jobs = planned_jobs(config) or []
        defaults = {"cell": OmegaConf.select(config, "cell.name"), "task": OmegaConf.select(config, "task.name"),
                    "seed": OmegaConf.select(config, "seed")}
    except Exception as e:  # noqa: BLE001 -- an unreadable plan must not stop the report of what ran
        warnings.append(f"{path}: cannot read the planned jobs ({type(e).__name__}); only jobs found on disk are counted")
        return []
    numbers = {name.split("-")[0] for name in found}
    rows = []
    for number, overrides in enumerate(jobs):
        if str(number) in numbers:
            continue
        given = dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith(("+", "~")))
        seed = given.get("seed", defaults["seed"])
        rows.append({"task": given.get("task", defaults["task"]), "cell": given.get("cell", defaults["cell"]),
                     "seed": int(seed) if str(seed).isdigit() else seed, "status": MISSING, "error": "never started",
                     "sweep": str(sweep_dir), "run": f"{sweep_dir.resolve().relative_to(root).as_posix()}/#{number}"})
    if rows:
        warnings.append(f"{sweep_dir}: {len(rows)} of {len(jobs)} planned jobs never started (multirun.yaml); counted as missing")
    return rows


def launch_command(sweep_dir: Path) -> str | None:
    """The command line of the sweep's last launch, rebuilt from the overrides its multirun.yaml records
    (Hydra rewrites the file at every launch, so a resumed or re-scored sweep shows that command, with its
    resume=<dir>); None where there is no readable multirun.yaml (a W&B source, a hand-made run folder)."""
    import shlex

    try:
        overrides = yaml.safe_load((Path(sweep_dir) / "multirun.yaml").read_text())["hydra"]["overrides"]
        words = [*overrides.get("task", []), *(o for o in overrides.get("hydra", []) if o != "hydra.mode=MULTIRUN")]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return " ".join(["lstm-ablate", "-m", *map(shlex.quote, map(str, words))])


def finish(rows: list[dict], curves: list[pd.DataFrame], warnings: list[str]) -> Collection:
    """Shared by every source: label task groups, order rows and columns deterministically."""
    runs = pd.DataFrame(rows)
    refuse_copies(runs)
    unplaced = runs["task"].isna() | runs["cell"].isna()
    for run in runs.loc[unplaced, "run"]:
        warnings.append(f"{run}: task or cell unknown (no readable .hydra/config.yaml); listed under task '?'")
    runs["task"] = runs["task"].fillna("?")
    runs["cell"] = runs["cell"].fillna("?")
    runs["task_label"] = task_labels(runs)
    for column in CORE_COLUMNS:
        if column not in runs.columns:
            runs[column] = None
    extra = sorted(c for c in runs.columns if c not in CORE_COLUMNS)
    runs = runs[CORE_COLUMNS + extra].sort_values(["task_label", "cell", "seed", "run"], kind="stable", na_position="last")
    curves_df = pd.concat([c for c in curves if len(c)], ignore_index=True) if any(len(c) for c in curves) else pd.DataFrame(columns=CURVE_COLUMNS)
    curves_df = curves_df.sort_values(["run", "key", "step"], kind="stable")
    return Collection(runs.reset_index(drop=True), curves_df.reset_index(drop=True), warnings)


def refuse_copies(runs: pd.DataFrame) -> None:
    """One job's record found twice (a copy of its dir inside a sweep, or a sweep passed beside a dir
    that holds it) would count its seed twice and shrink every interval: refuse it. Two real runs
    never agree in config, seed, every metric and wall time to the last digit."""
    records = runs[runs["status"] != MISSING]
    key = records.drop(columns=["run", "sweep", "finished"]).map(repr).agg("\x1f".join, axis=1)
    twins = key[key.duplicated(keep=False)]
    if len(twins):
        a, b = records.loc[key == twins.iloc[0], "run"].iloc[:2]
        raise ReportError(f"{a} and {b} hold the same record (config, seed, metrics and duration): a copy of one job "
                          f"would count its seed twice; remove the copy or report the sweeps apart")


def task_labels(runs: pd.DataFrame) -> pd.Series:
    """The task name, plus any task.* setting that differs between its runs (seq_len=10 vs 100 are
    different experiments and get separate tables, never one mixed mean)."""
    labels = runs["task"].astype(str).copy()
    task_keys = [c for c in runs.columns if c.startswith("config.task.") and c[len("config."):] not in TASK_IDENTITY_IGNORED]
    setting_keys = [c for c in runs.columns if c.startswith("config.") and not c.startswith("config.task.")
                    and not c[len("config."):].startswith(NOT_SETTINGS)]
    for task, group in runs.groupby("task", sort=True):
        varying = [c for c in task_keys if group[c].dropna().astype(str).nunique() > 1]
        # other settings split a task only when they differ between runs of one cell: a cell's own
        # gates or its parameter-matched size differ between cells by design
        # (tuning trials and re-score runs of a tuned sweep differ in the searched settings by design: only the
        # confirmation runs decide)
        decided = group[~group["config.tune.stage"].isin(["tune", "rescore"])] if "config.tune.stage" in group else group
        varying += [c for c in setting_keys if (decided.groupby("cell")[c].agg(lambda v: v.dropna().astype(str).nunique()) > 1).any()]
        for index, row in group.iterrows():
            parts = [f"{c[len('config.task.'):] if c.startswith('config.task.') else c[len('config.'):]}={setting(row[c])}"
                     for c in varying if pd.notna(row[c])]
            labels[index] = " ".join([str(task), *parts])
    return labels


def setting(value: Any) -> Any:
    """A setting as the user wrote it: a column with gaps holds 2500 as 2500.0, which no config says."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def to_json_safe(value: Any) -> Any:
    """Config values like lists must survive a CSV round trip: store them as JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value
