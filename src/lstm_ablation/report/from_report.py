"""Runs of a committed report as a source of another: `--from-report REPORT[:cell=NAME][,task=NAME]`.

A study can reuse another study's runs (the same experiment file, budget and protocol) after their raw
job folders are gone: a report's data files keep each run's record (results.csv), its validation curve
(curves.csv), its probes and its test streams. The selected rows join the new report unchanged but for
their run id, which gets the source report's name (`greff_variants:s19/adding_tuned/.../confirm-...-s1`),
so ids stay unique and say where a row came from (a run the source itself took from a report keeps its id);
`sweep` and `finished` are kept, so the reports index counts a run shown by both reports once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .collect import CURVE_COLUMNS, ReportError

SELECTORS = ("cell", "task")


@dataclass
class ReportPart:
    spec: str                                   # as the user wrote it: the report's source entry
    runs: pd.DataFrame                          # results.csv rows, task_label dropped (the new report labels them)
    curves: pd.DataFrame                        # CURVE_COLUMNS
    gradients: tuple[pd.DataFrame, pd.DataFrame] | None = None
    streams: tuple[pd.DataFrame, pd.DataFrame] | None = None
    launch: dict[str, str] = field(default_factory=dict)  # the selected sweeps' own commands, by sweep


def parse(spec: str) -> tuple[Path, dict[str, str]]:
    """'reports/greff_variants:cell=coupled_gates,task=adding' -> (path, {"cell": ..., "task": ...})."""
    path, _, selection = spec.partition(":")
    selectors: dict[str, str] = {}
    for part in filter(None, selection.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in SELECTORS or not value:
            raise ReportError(f"--from-report {spec}: {part!r} is not a selector; expected "
                              f"REPORT_DIR[:cell=NAME][,task=NAME] (keys: {', '.join(SELECTORS)})")
        selectors[key] = value
    return Path(path), selectors


def read(spec: str) -> ReportPart:
    from .build import CURVES_FILE, GRAD_CURVES_FILE, GRAD_SUMMARY_FILE, META_FILE, RUNS_FILE, STREAM_FILES, read_runs

    report, selectors = parse(spec)
    if not ((report / META_FILE).is_file() and (report / RUNS_FILE).is_file()):
        raise ReportError(f"--from-report {spec}: {report} is not a report directory (no {META_FILE} and {RUNS_FILE}); "
                          "expected a directory lstm-ablate-report wrote")
    runs = read_runs(report / RUNS_FILE)
    chosen = pd.Series(True, index=runs.index)
    for key, value in selectors.items():
        chosen &= runs[key] == value
    if not chosen.any():
        found = ", ".join(f"{k}={'/'.join(sorted(runs[k].dropna().unique()))}" for k in selectors)
        raise ReportError(f"--from-report {spec}: selects no run; the report has {found}")
    runs = runs[chosen].drop(columns="task_label")
    # a run this report itself took from another keeps the id that names where it came from
    rename = {run: run if ":" in run else f"{report.resolve().name}:{run}" for run in runs["run"]}

    def rows_of(name: str, key: str) -> pd.DataFrame | None:
        if not (report / name).is_file():
            return None
        frame = pd.read_csv(report / name, low_memory=False)
        return frame[frame[key].isin(rename)].assign(**{key: lambda d: d[key].map(rename)})

    curves = rows_of(CURVES_FILE, "run")
    gradients = tuple(rows_of(name, "run_dir") for name in (GRAD_CURVES_FILE, GRAD_SUMMARY_FILE))
    streams = tuple(rows_of(name, "run_dir") for name in STREAM_FILES)
    launch: dict[str, str] = {}  # by sweep, also those of runs the report itself took from another
    for key, value in (json.loads((report / META_FILE).read_text()).get("launch") or {}).items():
        launch.update({key: value} if isinstance(value, str) else value)
    commands = {s: launch[s] for s in dict.fromkeys(runs["sweep"].dropna()) if s in launch}
    return ReportPart(spec, runs.assign(run=runs["run"].map(rename)),
                      curves if curves is not None else pd.DataFrame(columns=CURVE_COLUMNS),
                      gradients if all(g is not None and len(g) for g in gradients) else None,
                      streams if all(s is not None for s in streams) and len(streams[1]) else None,
                      commands)
