"""A written report as one W&B run beside the runs it compares (`lstm-ablate-report --to-wandb`,
`report.wandb=true` after a sweep): job_type "report" in the sweep's group, summary.csv as a
wandb.Table, and the whole report directory (README, CSVs, plots) as a `report` artifact.

Project, entity and mode are the ones the jobs recorded (WANDB_MODE, if set, wins); a sweep that ran
with W&B disabled is reported offline. Offline, the run lands in <first sweep dir>/wandb/.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .collect import ReportError


def recorded_settings(sweep_dirs: list[Path]) -> dict:
    """The W&B settings and group of the first job found; the group as train.py names it."""
    for sweep in sweep_dirs:
        for path in sorted(Path(sweep).rglob("result.json")):
            config = json.loads(path.read_text()).get("config") or {}
            wandb = config.get("wandb") or {}
            mode = os.environ.get("WANDB_MODE") or wandb.get("mode") or "offline"
            return {"project": wandb.get("project") or "lstm-ablation", "entity": wandb.get("entity"),
                    "mode": "offline" if mode == "disabled" else mode,
                    "group": wandb.get("group") or f"{config.get('name', 'default')}/{Path(sweep).resolve().name}"}
    raise ReportError(f"--to-wandb: no result.json under {', '.join(map(str, sweep_dirs))}; expected the sweep's job dirs")


def log_report(out: Path, sweep_dirs: list[Path]) -> Path:
    """Log the report in `out` as one run; returns the run's local directory."""
    import pandas as pd
    import wandb

    settings = recorded_settings(sweep_dirs)
    try:
        run = wandb.init(project=settings["project"], entity=settings["entity"], mode=settings["mode"],
                         dir=str(sweep_dirs[0]), group=settings["group"], job_type="report", name=f"report-{Path(out).name}",
                         config={"report_dir": str(out), "sweep_dirs": [str(d) for d in sweep_dirs]},
                         settings=wandb.Settings(silent=True, console="off"))
    except Exception as e:  # noqa: BLE001 -- e.g. online without a key: one line, not a traceback
        raise ReportError(f"--to-wandb: W&B did not start in mode {settings['mode']!r} ({type(e).__name__}: "
                          f"{' '.join(str(e).split())}); allowed: offline, or online after `wandb login`") from None
    try:
        run.log({"report/summary": wandb.Table(dataframe=pd.read_csv(Path(out) / "summary.csv"))})
        artifact = wandb.Artifact(re.sub(r"[^\w.-]", "-", f"report-{settings['group']}"), type="report",
                                  metadata={"group": settings["group"]})
        artifact.add_dir(str(out))
        run.log_artifact(artifact)
    finally:
        run.finish()
    return Path(run.dir).parent
