"""PNG plots for the README: learning curves and final-metric box/strip plots per task, and a
variant x task heat map of the difference from the reference.

Deterministic bytes (regeneration must not change committed PNGs): Agg backend, fixed size and
dpi, no "Software" metadata, no randomness (strip-plot jitter is a fixed spread). Each variant
keeps one colour in every plot of a report.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .render import ALL_TASKS, fmt, slug  # noqa: E402
DPI = 100
PNG_METADATA = {"Software": None}
LOG_SPAN = 30.0  # use a log axis when positive values span more than this factor


def colours(cells: list[str], reference: str) -> dict[str, tuple]:
    """Reference first, then by name: the same variant gets the same colour in every plot."""
    order = sorted(set(cells), key=lambda c: (c != reference, c))
    palette = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    return {cell: palette(i % palette.N) for i, cell in enumerate(order)}


def maybe_log(ax, values: np.ndarray) -> None:
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() / values.min() > LOG_SPAN:
        ax.set_yscale("log")


def reference_lines(ax, row: pd.Series) -> None:
    ax.axhline(row["baseline"], color="0.3", linestyle="--", linewidth=1, label=f"memoryless baseline ({fmt(row['baseline'])})")
    if pd.notna(row["solved_threshold"]):
        ax.axhline(row["solved_threshold"], color="0.5", linestyle=":", linewidth=1, label=f"solved threshold ({fmt(row['solved_threshold'])})")


def save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)


def learning_curves(task_runs: pd.DataFrame, curves: pd.DataFrame, table: pd.DataFrame, colour: dict, path: Path) -> bool:
    first = table.iloc[0]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = []
    for cell in table["cell"]:
        mine = curves[curves["run"].isin(task_runs.loc[task_runs["cell"] == cell, "run"])]
        if mine.empty:
            continue
        wide = mine.pivot_table(index="step", columns="run", values="value", aggfunc="last").sort_index()
        # Median and quartiles, not the mean: one failed seed among solved ones must not drag the line.
        median = wide.median(axis=1)
        n = wide.shape[1]
        ax.plot(median.index, median.to_numpy(), color=colour[cell], linewidth=1.8, label=f"{cell} (n={n})")
        ax.fill_between(median.index, wide.quantile(0.25, axis=1).to_numpy(), wide.quantile(0.75, axis=1).to_numpy(),
                        color=colour[cell], alpha=0.18, linewidth=0)
        drawn.append(wide.to_numpy().ravel())
    if not drawn:
        plt.close(fig)
        return False
    reference_lines(ax, first)
    values = np.concatenate([*drawn, [first["baseline"], first["solved_threshold"]]]).astype(float)
    values = values[np.isfinite(values)]
    if not first["higher_is_better"] and len(values) and values.min() > 0:
        ax.set_yscale("log")  # losses: a log axis shows the orders of magnitude between solved and baseline
    else:
        maybe_log(ax, values)
    ax.set_xscale("log")      # early learning and the long plateau on one axis
    ax.set_xlabel("training step (log)")
    ax.set_ylabel(f"validation {first['metric']}")
    ax.set_title(f"{first['task_label']}: validation {first['metric']} (line: median, band: inter-quartile range over seeds)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save(fig, path)
    return True


def final_values(task_runs: pd.DataFrame, table: pd.DataFrame, colour: dict, path: Path) -> bool:
    """Box per variant (ranked order) with each completed seed as a dot: spread and n at a glance."""
    first = table.iloc[0]
    done = task_runs[(task_runs["status"] == "completed") & task_runs["value"].notna()]
    if done.empty:
        return False
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(table) + 2), 4.2))
    for x, (_, row) in enumerate(table.iterrows()):
        values = done.loc[done["cell"] == row["cell"], "value"].to_numpy(dtype=float)
        if len(values):
            ax.boxplot(values, positions=[x], widths=0.5, showfliers=False,
                       medianprops={"color": colour[row["cell"]]}, boxprops={"color": "0.4"})
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(x + jitter, values, color=colour[row["cell"]], s=22, zorder=3, edgecolor="black", linewidth=0.4)
    reference_lines(ax, first)
    maybe_log(ax, np.append(done["value"].to_numpy(dtype=float), [first["baseline"], first["solved_threshold"]]).astype(float))
    ax.set_xticks(range(len(table)))
    ax.set_xticklabels([f"{r['cell']}\n{int(r['completed'])}/{int(r['launched'])}" for _, r in table.iterrows()], fontsize=8)
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_xlabel("variant (ranked; completed/launched runs)")
    ax.set_ylabel(f"test {first['metric']}")
    ax.set_title(f"{first['task_label']}: final test {first['metric']} per seed", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save(fig, path)
    return True


def relative_gap(diff: float, ref: float, cell: float, baseline: float, higher_is_better: bool) -> float:
    """How much worse than the reference the variant is, as a fraction of the larger of the two
    distances from the memoryless baseline: worse / max(|baseline - ref|, |baseline - cell|).

    Signed so that + is worse whatever the metric's direction; in [-1, 1] unless the variant is
    beyond the baseline on the bad side (clipped when drawn). Unlike dividing by (baseline - ref), it
    keeps its sign when the reference is no better than the baseline: a variant that beats a
    memoryless reference is -1 (blue), not a failure. 0 when both sit at the baseline; NaN when unknown.
    """
    if not all(math.isfinite(v) for v in (diff, ref, cell, baseline)):
        return math.nan
    worse = -diff if higher_is_better else diff
    scale = max(abs(baseline - ref), abs(baseline - cell))
    return worse / scale if scale > 0 else 0.0


def heat_map(summary: pd.DataFrame, reference: str, path: Path) -> bool:
    """Colour: relative_gap of each variant's median vs the reference's, the same scale on every task
    and for either metric direction: 0 = as good as the reference, +1 = its whole gain lost."""
    compared = summary[summary["reference"].notna() & (summary["cell"] != reference)]
    if compared.empty or compared["diff"].isna().all():
        return False
    cells = sorted(compared["cell"].unique())
    tasks = sorted(compared["task_label"].unique())
    scaled = np.full((len(cells), len(tasks)), np.nan)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(tasks) + 4), max(3.0, 0.45 * len(cells) + 1.8)))
    for _, row in compared.iterrows():
        i, j = cells.index(row["cell"]), tasks.index(row["task_label"])
        ref = summary[(summary["task_label"] == row["task_label"]) & (summary["cell"] == reference)]["median"].iloc[0]
        scaled[i, j] = relative_gap(row["diff"], ref, row["median"], row["baseline"], bool(row["higher_is_better"]))
        text = fmt(row["diff"], 2) + ("*" if row["significant"] else "") if pd.notna(row["diff"]) else "–"
        dark = abs(scaled[i, j]) > 0.6 if np.isfinite(scaled[i, j]) else False
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    image = ax.imshow(np.clip(scaled, -1, 1), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, fontsize=8, rotation=20, ha="right")
    ax.set_yticks(range(len(cells)))
    ax.set_yticklabels(cells, fontsize=8)
    ax.set_xlabel("task")
    ax.set_ylabel("variant")
    ax.set_title(f"Difference from {reference}\n(text: Δ median of the headline test metric; *: significant after Holm)", fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("worse / max distance from baseline\n0: as reference · +1: gain lost · −1: better", fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return True


def draw_all(runs: pd.DataFrame, curves: pd.DataFrame, summary: pd.DataFrame, meta: dict, target: Path) -> dict[str, dict[str, str]]:
    """Write target/plots/*.png; returns {task_label or ALL_TASKS: {alt text: relative path}}."""
    reference = meta["reference"]
    colour = colours(list(runs["cell"].astype(str)), reference)
    images: dict[str, dict[str, str]] = {}
    for task_label, table in summary.groupby("task_label", sort=True):
        task_runs = runs[runs["task_label"] == task_label]
        name = slug(task_label)
        mine = {}
        if learning_curves(task_runs, curves, table, colour, target / "plots" / f"curves-{name}.png"):
            mine["learning curves"] = f"plots/curves-{name}.png"
        if final_values(task_runs, table, colour, target / "plots" / f"final-{name}.png"):
            mine["final test metric per seed"] = f"plots/final-{name}.png"
        images[task_label] = mine
    if heat_map(summary, reference, target / "plots" / "difference-heatmap.png"):
        images[ALL_TASKS] = {"difference from the reference": "plots/difference-heatmap.png"}
    return images
