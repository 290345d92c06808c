"""Per task x variant statistics, and each variant against the reference variant of its task.

The headline value of a run is its test/<metric>; only completed runs have one. Diverged runs count
as launched and unsolved; failed (crashed) and missing runs count as launched only.

Ablation outcomes are bimodal (a seed solves the task or stays at the memoryless baseline), so the
tests are rank- and count-based: Mann-Whitney U (exact, ties included) on the headline metric and
Fisher's exact test on solved/unsolved seeds; intervals are bootstrap percentile intervals of
medians, which stay inside the range of the data (never below 0 for a loss). Welch's t-test stays
in summary.csv as a column, not as the verdict.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import comb

from .collect import MISSING

TOO_SMALL = "n too small"
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # fixed: regenerating a report must give the same intervals
SUMMARY_COLUMNS = [
    "task_label", "rank", "cell", "short", "change", "metric", "higher_is_better", "baseline", "solved_threshold",
    "launched", "completed", "diverged", "failed", "missing",
    "mean", "std", "median", "ci95_low", "ci95_high", "solved", "solve_rate", "reached", "steps_to_threshold",
    "curves_cut",
    "params", "params_recurrent", "hidden_size", "reference", "diff", "diff_ci95_low", "diff_ci95_high", "diff_mean",
    "effect_size", "p_value", "p_holm", "p_fisher", "p_fisher_holm", "p_welch", "p_min", "p_min_holm",
    "significant", "note",
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
    with warnings.catch_warnings():
        # scipy warns of "precision loss" when one side's values are all equal (every seed at accuracy 1):
        # its variance is exactly 0 then, and the test is well defined
        warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """(mean a - mean b) / sqrt((var a + var b) / 2): the average-variance d that matches Welch's test."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    spread = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return float((np.mean(a) - np.mean(b)) / spread) if spread > 0 else math.nan


def rank_sum_exact_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact permutation p-value of the Wilcoxon rank sum of a, with mid-ranks for ties.

    scipy's method="exact" ignores ties and its PermutationMethod enumerates all C(n, k) splits
    (seconds at 10 vs 10); here the null distribution of the doubled (hence integer) rank sum is
    counted by dynamic programming: ways[k, s] = number of k-subsets of the pooled ranks summing to s.
    p = 2 * min(P(W <= w), P(W >= w)), capped at 1, the same two-sided rule as scipy's exact test.
    """
    pooled = np.concatenate([a, b])
    doubled = np.rint(2 * sps.rankdata(pooled)).astype(int)          # (n,) mid-ranks x 2: integers
    k, top = len(a), int(doubled.sum())
    ways = np.zeros((k + 1, top + 1), dtype=float)                     # float: C(20, 10) fits exactly
    ways[0, 0] = 1.0
    for r in doubled:
        ways[1:, r:] += ways[:-1, : top + 1 - r].copy()
    null = ways[k] / ways[k].sum()                                     # P(2W = s), s = 0..top
    observed = int(doubled[:k].sum())
    p = 2 * min(null[: observed + 1].sum(), null[observed:].sum())
    return float(min(1.0, p))


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(p, Cliff's delta) of a vs b. delta = P(a > b) - P(a < b) = 2 U_a / (n_a n_b) - 1, the
    rank-biserial r; p exact (scipy's exact test without ties, the tie-aware count with ties)."""
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    u = float(sps.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").statistic)
    delta = 2 * u / (len(a) * len(b)) - 1
    if len(np.unique(np.concatenate([a, b]))) == len(a) + len(b):
        p = float(sps.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)
    else:
        p = rank_sum_exact_p(a, b)
    return p, delta


def min_attainable_p(n_a: int, n_b: int) -> float:
    """Smallest two-sided p a rank test (and Fisher's test on counts) can give n_a vs n_b seeds:
    complete separation, 2 / C(n_a + n_b, n_a); 5 vs 5 -> 2/252 = 0.0079."""
    if n_a == 0 or n_b == 0:
        return math.nan
    return float(min(1.0, 2 / comb(n_a + n_b, n_a, exact=True)))


def fisher_p(solved_a: int, n_a: int, solved_b: int, n_b: int) -> float:
    """Two-sided Fisher exact test on solved/unsolved seeds."""
    if n_a == 0 or n_b == 0:
        return math.nan
    return float(sps.fisher_exact([[solved_a, n_a - solved_a], [solved_b, n_b - solved_b]]).pvalue)


def bootstrap_interval(samples: tuple[np.ndarray, ...], statistic, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (scipy.stats.bootstrap, fixed seed). Percentiles of resampled
    medians lie within the data, so a non-negative metric never gets a negative bound. NaN below
    two values per sample (nothing to resample)."""
    if any(len(s) < 2 for s in samples):
        return math.nan, math.nan
    if all(np.all(s == s[0]) for s in samples):  # no spread: the interval is the point itself
        value = float(statistic(*samples, axis=-1))
        return value, value
    result = sps.bootstrap(samples, statistic, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=level,
                           method="percentile", vectorized=True, rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def median_interval(values: np.ndarray) -> tuple[float, float]:
    return bootstrap_interval((values,), lambda x, axis: np.median(x, axis=axis))


def median_diff_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return bootstrap_interval((a, b), lambda x, y, axis: np.median(x, axis=axis) - np.median(y, axis=axis))


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


def curves_cut(runs: pd.DataFrame, curves: pd.DataFrame) -> set[str]:
    """Runs whose validation curve starts more than one interval late: its beginning is lost. (Code before
    6981af5 let Lightning's CSV writer delete the rows logged before a resume.) Such a run's first step at
    the threshold is unknown, since it may have been reached in the lost part."""
    first_logged = curves.groupby("run")["step"].min()
    every = pd.to_numeric(runs.get("config.trainer.val_check_interval", pd.Series(math.nan, index=runs.index)),
                          errors="coerce")
    cut = set()
    for run, interval in zip(runs["run"], every):
        # an interval in steps (Lightning reads a float <= 1 as a fraction of an epoch); the first point is
        # logged at step interval - 1, the next at 2 * interval - 1
        if interval >= 2 and first_logged.get(run, -math.inf) >= 2 * interval - 1:
            cut.add(run)
    return cut


def first_valid(series: pd.Series):
    series = series.dropna()
    return series.iloc[0] if len(series) else None


def group_row(task_label: str, cell: str, runs: pd.DataFrame, first_step: dict[str, float], cut: set[str] = frozenset()) -> dict:
    """`cut`: runs whose curve before a resume is lost (curves_cut): left out of steps to threshold, and counted."""
    status = runs["status"]
    done = runs[(status == "completed") & runs["value"].notna()]
    values = done["value"].to_numpy(dtype=float)
    higher = bool(first_valid(runs["higher_is_better"]))
    threshold = first_valid(runs["solved_threshold"])
    trained = runs[status.isin(["completed", "diverged"])]  # diverged seeds are unsolved, not ignored
    n_solved = int(solved(trained["value"], threshold, higher).sum()) if threshold is not None else 0
    whole = [r for r in done["run"] if r not in cut]
    reached = [first_step[r] for r in whole if r in first_step]
    low, high = median_interval(values)
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
        "curves_cut": len(done) - len(whole),
        "params": first_valid(runs["params"]), "params_recurrent": first_valid(runs["params_recurrent"]),
        "hidden_size": first_valid(runs["hidden_size"]) if "hidden_size" in runs else None,
    }


def compare_to_reference(table: pd.DataFrame, values: dict[str, np.ndarray], reference: str, alpha: float) -> pd.DataFrame:
    """Each variant of one task vs the reference: median difference with its bootstrap interval,
    Cliff's delta, Mann-Whitney p (the verdict) and Fisher p on solved counts, both Holm-corrected
    across the variants of the task, and the smallest p the sample sizes allow before and after Holm."""
    table = table.copy()
    table["reference"] = reference if reference in values else None
    for column in ("diff", "diff_ci95_low", "diff_ci95_high", "diff_mean", "effect_size", "p_value", "p_holm",
                   "p_fisher", "p_fisher_holm", "p_welch", "p_min", "p_min_holm"):
        table[column] = math.nan
    table["significant"] = False
    table["note"] = ""
    if reference not in values:
        table["note"] = f"no reference ({reference}) runs"
        return table
    ref = values[reference]
    ref_row = table[table["cell"] == reference].iloc[0]
    ref_trained = int(ref_row["completed"] + ref_row["diverged"])
    for index, row in table.iterrows():
        cell = row["cell"]
        if cell == reference:
            table.at[index, "note"] = "reference"
            continue
        mine = values[cell]
        if len(mine) and len(ref):
            table.at[index, "diff"] = float(np.median(mine) - np.median(ref))
            table.at[index, "diff_mean"] = float(np.mean(mine) - np.mean(ref))
        table.loc[index, ["diff_ci95_low", "diff_ci95_high"]] = median_diff_interval(mine, ref)
        p, delta = mann_whitney(mine, ref)
        table.at[index, "effect_size"] = delta
        table.at[index, "p_welch"] = welch_p(mine, ref)
        table.at[index, "p_min"] = min_attainable_p(len(mine), len(ref))
        trained = int(row["completed"] + row["diverged"])
        if pd.notna(row["solved_threshold"]):
            table.at[index, "p_fisher"] = fisher_p(int(row["solved"]), trained, int(ref_row["solved"]), ref_trained)
        if len(mine) < 2 or len(ref) < 2:
            table.at[index, "note"] = TOO_SMALL
            p = math.nan  # n = 1 on a side: p = 1 at best; no test is run
        table.at[index, "p_value"] = p
    tested = table["p_value"].notna()
    table["p_holm"] = holm(table["p_value"].tolist())
    table["p_fisher_holm"] = holm(table["p_fisher"].where(tested).tolist())
    # Holm multiplies the smallest p by the number of tests: no variant can go below m * p_min.
    table["p_min_holm"] = (table["p_min"] * int(tested.sum())).clip(upper=1.0).where(tested)
    table["significant"] = table["p_holm"] < alpha
    return table


def rank(table: pd.DataFrame) -> pd.DataFrame:
    """Best median first (direction from the task); variants without a completed run go last."""
    higher = bool(first_valid(table["higher_is_better"]))
    key = -table["median"] if higher else table["median"]
    order = table.assign(_key=key).sort_values(["_key", "cell"], na_position="last", kind="stable").drop(columns="_key")
    ranks = pd.Series(range(1, len(order) + 1), index=order.index, dtype="Int64")
    order["rank"] = ranks.mask(order["median"].isna())
    return order


# Settings that, when they differ inside one task x variant group, mean its seeds are not replicates.
SETTING_PREFIXES = ("config.cell.", "config.model.", "config.optim.", "config.trainer.")
CELL_LABELS = tuple(f"config.cell.{k}" for k in ("name", "short", "change", "literature", "impl"))  # words, not settings


def mixed_settings(runs: pd.DataFrame) -> list[str]:
    """One line per task x variant whose runs differ in a setting other than the seed."""
    keys = [c for c in runs.columns if c.startswith(SETTING_PREFIXES)]
    lines = []
    for (task_label, cell), group in runs.groupby(["task_label", "cell"], sort=True):
        varying = [k[len("config."):] for k in keys if group[k].dropna().astype(str).nunique() > 1]
        if varying:
            lines.append(f"{task_label} / {cell}: runs differ in {', '.join(varying)}; they are pooled as seeds")
        # set in some runs, unset in others (null, or a key older code did not record): a difference the
        # records cannot resolve, so say it rather than pool in silence
        partial = [k[len("config."):] for k in keys if group[k].notna().any() and group[k].isna().any()
                   and k[len("config."):] not in varying and k not in CELL_LABELS]
        if partial:
            lines.append(f"{task_label} / {cell}: only some runs set {', '.join(partial)} (unset in the others: null, "
                         "or made by code that did not record it); they are pooled as seeds")
    return lines


def summarize(runs: pd.DataFrame, curves: pd.DataFrame, reference: str = "vanilla", alpha: float = 0.05) -> pd.DataFrame:
    """One row per task x variant (SUMMARY_COLUMNS), tasks in name order, variants ranked."""
    tables = []
    for task_label, task_runs in runs.groupby("task_label", sort=True):
        threshold = first_valid(task_runs["solved_threshold"])
        higher = bool(first_valid(task_runs["higher_is_better"]))
        task_curves = curves[curves["run"].isin(task_runs["run"])]
        first_step = steps_to_threshold(task_curves, threshold, higher)
        cut = curves_cut(task_runs, task_curves)
        rows, values = [], {}
        # Some baselines depend on the generated data (a majority class): average over the task's runs.
        baseline = task_runs["baseline"].astype(float).mean()
        for cell, cell_runs in task_runs.groupby("cell", sort=True):
            rows.append({**group_row(task_label, cell, cell_runs, first_step, cut), "baseline": baseline})
            done = cell_runs[(cell_runs["status"] == "completed") & cell_runs["value"].notna()]
            values[cell] = done["value"].to_numpy(dtype=float)
        table = compare_to_reference(pd.DataFrame(rows), values, reference, alpha)
        tables.append(rank(table))
    summary = pd.concat(tables, ignore_index=True)
    return summary[SUMMARY_COLUMNS]
