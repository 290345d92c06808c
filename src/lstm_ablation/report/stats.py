"""Per task x variant statistics, and each variant against the reference variant of its task.

The headline value of a run is its test/<metric>; only completed runs have one. Diverged runs count
as launched and unsolved; failed (crashed) and missing runs count as launched only.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from .collect import MISSING

TOO_SMALL = "n too small"
SUMMARY_COLUMNS = [
    "task_label", "rank", "cell", "short", "change", "metric", "higher_is_better", "baseline", "solved_threshold",
    "launched", "completed", "diverged", "failed", "missing",
    "mean", "std", "median", "ci95_low", "ci95_high", "solved", "solve_rate", "reached", "steps_to_threshold",
    "params", "params_recurrent", "reference", "diff", "effect_size", "p_value", "p_holm", "significant", "note",
]


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval for the mean; undefined (NaN) below two values."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean, sem = float(np.mean(values)), float(np.std(values, ddof=1)) / math.sqrt(n)
    half = float(sps.t.ppf(0.5 + level / 2, df=n - 1)) * sem
    return mean - half, mean + half


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; NaN when either side has < 2 values or neither varies."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.var(a, ddof=1) == 0 and np.var(b, ddof=1) == 0:
        return math.nan
    return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """(mean a - mean b) / sqrt((var a + var b) / 2): the average-variance d that matches Welch's test."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    spread = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return float((np.mean(a) - np.mean(b)) / spread) if spread > 0 else math.nan


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni step-down adjustment over the tests that have a p-value (NaN stays NaN)."""
    valid = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (len(valid) - rank) * p))
        adjusted[i] = running
    return adjusted


def solved(values: pd.Series, threshold: float, higher_is_better: bool) -> pd.Series:
    return values >= threshold if higher_is_better else values <= threshold


def steps_to_threshold(curves: pd.DataFrame, threshold: float, higher_is_better: bool) -> dict[str, float]:
    """Per run: the first logged step whose validation headline metric reaches the threshold."""
    if curves.empty or threshold is None or pd.isna(threshold):
        return {}
    hit = curves[solved(curves["value"], threshold, higher_is_better)]
    return hit.groupby("run")["step"].min().astype(float).to_dict()


def first_valid(series: pd.Series):
    series = series.dropna()
    return series.iloc[0] if len(series) else None


def group_row(task_label: str, cell: str, runs: pd.DataFrame, first_step: dict[str, float]) -> dict:
    status = runs["status"]
    done = runs[(status == "completed") & runs["value"].notna()]
    values = done["value"].to_numpy(dtype=float)
    higher = bool(first_valid(runs["higher_is_better"]))
    threshold = first_valid(runs["solved_threshold"])
    trained = runs[status.isin(["completed", "diverged"])]  # diverged seeds are unsolved, not ignored
    n_solved = int(solved(trained["value"], threshold, higher).sum()) if threshold is not None else 0
    reached = [first_step[r] for r in done["run"] if r in first_step]
    low, high = t_interval(values)
    return {
        "task_label": task_label, "cell": cell, "short": first_valid(runs["short"]), "change": first_valid(runs["change"]),
        "metric": first_valid(runs["metric"]), "higher_is_better": higher,
        "baseline": first_valid(runs["baseline"]), "solved_threshold": threshold,
        "launched": len(runs), "completed": int((status == "completed").sum()),
        "diverged": int((status == "diverged").sum()), "failed": int((status == "failed").sum()),
        "missing": int((status == MISSING).sum()),
        "mean": float(np.mean(values)) if len(values) else math.nan,
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
        "median": float(np.median(values)) if len(values) else math.nan,
        "ci95_low": low, "ci95_high": high,
        "solved": n_solved, "solve_rate": n_solved / len(trained) if threshold is not None and len(trained) else math.nan,
        "reached": len(reached), "steps_to_threshold": float(np.median(reached)) if reached else math.nan,
        "params": first_valid(runs["params"]), "params_recurrent": first_valid(runs["params_recurrent"]),
    }


def compare_to_reference(table: pd.DataFrame, values: dict[str, np.ndarray], reference: str, alpha: float) -> pd.DataFrame:
    """Difference, effect size and Holm-corrected Welch p-value of each variant of one task vs the reference."""
    table = table.copy()
    table["reference"] = reference if reference in values else None
    for column in ("diff", "effect_size", "p_value", "p_holm"):
        table[column] = math.nan
    table["significant"] = False
    table["note"] = ""
    if reference not in values:
        table["note"] = f"no reference ({reference}) runs"
        return table
    ref = values[reference]
    p_values = []
    for index, row in table.iterrows():
        cell = row["cell"]
        if cell == reference:
            table.at[index, "note"] = "reference"
            p_values.append(math.nan)
            continue
        mine = values[cell]
        if len(mine) and len(ref):
            table.at[index, "diff"] = float(np.mean(mine) - np.mean(ref))
        table.at[index, "effect_size"] = cohens_d(mine, ref)
        p = welch_p(mine, ref)
        if len(mine) < 2 or len(ref) < 2:
            table.at[index, "note"] = TOO_SMALL
        elif math.isnan(p):
            table.at[index, "note"] = "no variance"
        table.at[index, "p_value"] = p
        p_values.append(p)
    table["p_holm"] = holm(p_values)
    table["significant"] = table["p_holm"] < alpha
    return table


def rank(table: pd.DataFrame) -> pd.DataFrame:
    """Best mean first (direction from the task); variants without a completed run go last."""
    higher = bool(first_valid(table["higher_is_better"]))
    key = -table["mean"] if higher else table["mean"]
    order = table.assign(_key=key).sort_values(["_key", "cell"], na_position="last", kind="stable").drop(columns="_key")
    ranks = pd.Series(range(1, len(order) + 1), index=order.index, dtype="Int64")
    order["rank"] = ranks.mask(order["mean"].isna())
    return order


# Settings that, when they differ inside one task x variant group, mean its seeds are not replicates.
SETTING_PREFIXES = ("config.cell.", "config.model.", "config.optim.", "config.trainer.")


def mixed_settings(runs: pd.DataFrame) -> list[str]:
    """One line per task x variant whose runs differ in a setting other than the seed."""
    keys = [c for c in runs.columns if c.startswith(SETTING_PREFIXES)]
    lines = []
    for (task_label, cell), group in runs.groupby(["task_label", "cell"], sort=True):
        varying = [k[len("config."):] for k in keys if group[k].dropna().astype(str).nunique() > 1]
        if varying:
            lines.append(f"{task_label} / {cell}: runs differ in {', '.join(varying)}; they are pooled as seeds")
    return lines


def summarize(runs: pd.DataFrame, curves: pd.DataFrame, reference: str = "vanilla", alpha: float = 0.05) -> pd.DataFrame:
    """One row per task x variant (SUMMARY_COLUMNS), tasks in name order, variants ranked."""
    tables = []
    for task_label, task_runs in runs.groupby("task_label", sort=True):
        threshold = first_valid(task_runs["solved_threshold"])
        higher = bool(first_valid(task_runs["higher_is_better"]))
        task_curves = curves[curves["run"].isin(task_runs["run"])]
        first_step = steps_to_threshold(task_curves, threshold, higher)
        rows, values = [], {}
        # Some baselines depend on the generated data (a majority class): average over the task's runs.
        baseline = task_runs["baseline"].astype(float).mean()
        for cell, cell_runs in task_runs.groupby("cell", sort=True):
            rows.append({**group_row(task_label, cell, cell_runs, first_step), "baseline": baseline})
            done = cell_runs[(cell_runs["status"] == "completed") & cell_runs["value"].notna()]
            values[cell] = done["value"].to_numpy(dtype=float)
        table = compare_to_reference(pd.DataFrame(rows), values, reference, alpha)
        tables.append(rank(table))
    summary = pd.concat(tables, ignore_index=True)
    return summary[SUMMARY_COLUMNS]
