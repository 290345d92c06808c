"""W&B as a source: each run's config + summary rebuilt into a result.json-shaped record, then the
same rows as local sweeps (collect.record_row). Only this module talks to wandb.Api().

What train.py puts in W&B: the flattened config ("cell.name", "task.name", "seed", ...) and in the
summary "status", "params", "baseline", the test/* and val/*_best metrics, and (through Lightning's
WandbLogger) the val/<metric> history against "trainer/global_step".
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .collect import CURVE_COLUMNS, MISSING, TIME_FORMAT, Collection, ReportError, finish, record_row
from ..results import STATUSES

STEP_KEY = "trainer/global_step"
# Keys the summary should carry so a W&B report needs no guessing (ask train.py to log them).
TASK_KEYS = ("metric", "higher_is_better", "solved_threshold")


def plain_config(config: dict) -> dict[str, Any]:
    """Flat "a.b" keys; unwraps {"value": v, "desc": ...} entries that some API versions return."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in plain_config(value).items()})
        elif not key.startswith("_"):
            flat[key] = value
    return flat


def number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def infer_task_keys(summary: dict) -> dict[str, Any]:
    """Older runs logged no metric name: a classification task logs test/accuracy, others only test/loss."""
    metric = "accuracy" if "test/accuracy" in summary else "loss"
    return {"metric": metric, "higher_is_better": metric == "accuracy", "solved_threshold": None}


def git_commit(run) -> str | None:
    try:
        return ((getattr(run, "metadata", None) or {}).get("git") or {}).get("commit")
    except Exception:  # noqa: BLE001 -- metadata is a separate download that may be absent; the run still counts
        return None


def run_record(run) -> tuple[dict, list[str]]:
    """A result.json-shaped record for one W&B run, and the warnings it raised."""
    config = plain_config(dict(run.config))
    summary = {k: v for k, v in dict(run.summary).items() if not isinstance(v, dict)}
    warnings = []
    status = summary.get("status")
    if status not in STATUSES:  # crashed/killed/running before train.py wrote its status
        status = MISSING
        warnings.append(f"W&B run {'/'.join(run.path)} ({run.name}): state {run.state!r}, no status; counted as missing")
    task_keys = {k: summary[k] for k in TASK_KEYS if k in summary}
    if len(task_keys) < len(TASK_KEYS):
        task_keys = {**infer_task_keys(summary), **task_keys}
        if status != MISSING:  # a run that never finished has nothing to score anyway
            warnings.append(f"W&B run {'/'.join(run.path)}: summary lacks {', '.join(k for k in TASK_KEYS if k not in summary)}; "
                            f"inferred headline metric {task_keys['metric']!r}, no solved threshold")
    metrics = {k: number(v) for k, v in summary.items()
               if (k.startswith("test/") or (k.startswith("val/") and k.endswith("_best"))) and number(v) is not None}
    nested: dict[str, Any] = {}
    for key, value in config.items():  # back to the record's nested config, for record_row
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    record = {
        "status": status, "cell": config.get("cell.name"), "short": config.get("cell.short"),
        "change": config.get("cell.change"), "task": config.get("task.name"), "seed": config.get("seed"),
        "metrics": metrics, **task_keys, "baseline": number(summary.get("baseline")),
        "params": summary.get("params"), "params_recurrent": summary.get("params_recurrent"),
        "hidden_size": summary.get("hidden_size"),
        "steps": summary.get("steps", summary.get(STEP_KEY)), "duration_s": number(summary.get("duration_s", summary.get("_runtime"))),
        "git": {"commit": summary.get("git_commit") or git_commit(run), "dirty": None},
        "config": nested, "error": summary.get("error"),
        **{k: summary[k] for k in ("stopped_early", "stopped_at_step") if k in summary},  # stop_when_solved
    }
    return record, warnings


def finished_at(summary: dict) -> str | None:
    stamp = number(summary.get("_timestamp"))
    if stamp is None:
        return None
    return dt.datetime.fromtimestamp(stamp, tz=dt.timezone.utc).strftime(TIME_FORMAT)


def run_curve(run, metric: str, run_id: str) -> pd.DataFrame:
    key = f"val/{metric}"
    rows = [(r[STEP_KEY], r[key]) for r in run.scan_history(keys=[STEP_KEY, key])
            if number(r.get(STEP_KEY)) is not None and number(r.get(key)) is not None]
    frame = pd.DataFrame(rows, columns=["step", "value"]).drop_duplicates("step", keep="last")
    return pd.DataFrame({"run": run_id, "key": key, "step": frame["step"].astype(int), "value": frame["value"].astype(float)},
                        columns=CURVE_COLUMNS)


def collect_runs(runs, source: str) -> Collection:
    """Rows and curves from W&B run objects (wandb.apis.public.Run or anything with the same fields)."""
    rows, curves, warnings = [], [], []
    for run in runs:
        record, notes = run_record(run)
        warnings += notes
        run_id = "/".join(run.path)
        if record["cell"] is None or record["task"] is None:
            warnings.append(f"W&B run {run_id}: config has no cell.name/task.name (not an lstm-ablate run?); skipped")
            continue
        rows.append(record_row(record, run_id, source, finished_at(dict(run.summary))))
        if record["status"] != MISSING:
            curves.append(run_curve(run, record["metric"], run_id))
    if not rows:
        raise ReportError(f"{source}: no lstm-ablate runs found; expected W&B runs whose config has cell.name and task.name")
    return finish(rows, curves, warnings)


def collect_wandb(path: str, group: str | None = None) -> Collection:
    if path.count("/") != 1 or not all(path.split("/")):
        raise ReportError(f"--wandb: got {path!r}; expected ENTITY/PROJECT")
    import wandb

    filters = {"group": group} if group else None
    try:
        runs = list(wandb.Api().runs(path, filters=filters))
    except Exception as e:  # noqa: BLE001 -- auth, network or unknown project: one line, not a traceback
        raise ReportError(f"--wandb {path}: cannot list runs ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    return collect_runs(runs, f"wandb:{path}" + (f" group={group}" if group else ""))


def meta_for(path: str, group: str | None, out: Path, args, command: str) -> dict:
    return {
        "title": args.title or Path(out).name, "command": command,
        "sources": [f"wandb:{path}" + (f" group={group}" if group else "")],
        "reference": args.reference, "alpha": args.alpha, "plots": not args.no_plots,
    }
