"""Gradient flow and gate statistics in the report: read each run's probes.json (written by
lstm_ablation.probe_callback.GradientProbe), tabulate, and plot |dL/dh_t| against t per variant.

    curves = collect_curves(run_dirs)        # one row per (run, probe step, t)
    summaries = collect_summaries(run_dirs)  # one row per (run, probe step)
    plot_gradient_flow(curves, "reports/x/gradient_flow.png")
    print(summary_markdown(summaries))

Curves are averaged over seeds geometrically (the mean of log10), since they span many decades.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..gradient_ratio import ratios_to_last_reached

PROBE_FILE = "probes.json"
RESULT_FILE = "result.json"
LABELS = ("cell", "task", "seed")
PER_T = ("grad_h", "grad_h_ratio", "grad_c", "grad_c_ratio", "cell_abs_mean", "cell_abs_max")
GATE_STATS = ("mean", "sat_low", "sat_high")
SUMMARY_COLUMNS = ("grad_h_log10_ratio", "grad_c_log10_ratio", "cell_abs_max", "gate_i_mean", "gate_f_mean",
                   "gate_o_mean", "gate_f_sat_high", "gate_r_mean", "gate_z_mean", "loss")


def probe_dirs(root: str | Path) -> list[Path]:
    """Every run directory under root that holds a probes.json."""
    return sorted(p.parent for p in Path(root).rglob(PROBE_FILE))


def load_probes(run_dir: str | Path) -> dict | None:
    """probes.json of one run, its labels completed from result.json where the run has one; None if absent."""
    run_dir = Path(run_dir)
    if not (run_dir / PROBE_FILE).is_file():
        return None
    data = json.loads((run_dir / PROBE_FILE).read_text())
    labels = dict(data.get("labels") or {})
    if (run_dir / RESULT_FILE).is_file():
        result = json.loads((run_dir / RESULT_FILE).read_text())
        for key in LABELS:
            labels.setdefault(key, result.get(key))
    data["labels"] = {key: labels.get(key) for key in LABELS} | labels
    return data


def each_probe(run_dirs: Iterable[str | Path]):
    """(run_dir, {cell, task, seed}, probe) for every probe of every run that has a probes.json."""
    for run_dir in run_dirs:
        data = load_probes(run_dir)
        if data is None:
            continue
        labels = {key: data["labels"][key] for key in LABELS}
        for p in data["probes"]:
            yield str(run_dir), labels, with_ratios(p)


def with_ratios(p: dict) -> dict:
    """The probe with its ratios to r, the last step the gradient reaches (gradient_ratio.py). Probes written
    before r was used divided by the last step's norm; where that was 0 (associative recall) they hold no
    ratio at all, so it is derived here from the norms, as are the summary's log10 ratios."""
    for name in ("grad_h", "grad_c"):
        norm, ratio = p.get(name), p.get(f"{name}_ratio")
        if norm is not None and (ratio is None or all(v is None for v in ratio)):
            ratio, log10 = ratios_to_last_reached(norm)
            p = p | {f"{name}_ratio": ratio, "summary": p["summary"] | {f"{name}_log10_ratio": log10}}
    return p


def collect_curves(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Long form: run_dir, cell, task, seed, step, final, t, then grad_h, grad_h_ratio, grad_c,
    grad_c_ratio, cell_abs_mean, cell_abs_max and gate_<g>_<mean|sat_low|sat_high> (NaN where absent)."""
    rows = []
    for run_dir, labels, p in each_probe(run_dirs):
        columns = {k: p[k] for k in PER_T if p.get(k) is not None}
        for g, stats in p["gates"].items():
            columns.update({f"gate_{g}_{s}": stats[s] for s in GATE_STATS})
        for t in range(len(p["grad_h"])):
            row = {"run_dir": run_dir, **labels, "step": p["step"], "final": p["final"], "t": t}
            row.update({k: v[t] for k, v in columns.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def collect_summaries(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run and probe step: run_dir, cell, task, seed, step, final and the summary numbers."""
    return pd.DataFrame([{"run_dir": run_dir, **labels, "step": p["step"], "final": p["final"], **p["summary"]}
                         for run_dir, labels, p in each_probe(run_dirs)])


def at_step(df: pd.DataFrame, step: str | int = "final") -> pd.DataFrame:
    """Rows of one probe per run: "final" (end of training), "first" (usually step 0) or a step number."""
    if df.empty:
        return df
    if step == "final":  # the end-of-training probe is each run's last (a crashed run: its last probe)
        return df[df["step"] == df.groupby("run_dir")["step"].transform("max")]
    if step == "first":
        return df[df["step"] == df.groupby("run_dir")["step"].transform("min")]
    return df[df["step"] == int(step)]


def mean_curves(curves: pd.DataFrame, quantity: str = "grad_h_ratio", step: str | int = "final") -> pd.DataFrame:
    """Per cell and t: geometric mean over seeds of `quantity`, its min and max, and the seed count."""
    columns = ["cell", "t", "mean", "min", "max", "log10_mean", "n_seeds"]
    if quantity not in curves:  # e.g. grad_c_ratio where no cell of the report has a cell state c (GRU, RNN)
        return pd.DataFrame(columns=columns)
    df = at_step(curves, step)
    df = df[df[quantity].notna()]
    log = np.log10(df[quantity].where(df[quantity] > 0))
    grouped = log.groupby([df["cell"], df["t"]])
    out = pd.DataFrame({"log10_mean": grouped.mean(), "min": 10 ** grouped.min(), "max": 10 ** grouped.max(),
                        "n_seeds": grouped.count()}).reset_index()
    out["mean"] = 10 ** out["log10_mean"]
    return out[columns]


def plot_gradient_flow(curves: pd.DataFrame, path: str | Path, steps: Iterable[str | int] = ("first", "final"),
                       cells: Iterable[str] | None = None, title: str | None = None,
                       colours: dict | None = None, metadata: dict | None = None) -> Path:
    """One panel per probe step: |dL/dh_t| / |dL/dh_r| (solid) and |dL/dc_t| / |dL/dc_r| (dashed, where the
    cell has c) against t on a log axis; lines are geometric means over seeds, bands span min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = list(steps)
    cells = list(cells) if cells is not None else sorted(curves["cell"].unique())
    fig, axes = plt.subplots(1, len(steps), figsize=(5.2 * len(steps), 3.8), sharey=True, squeeze=False)
    for ax, step in zip(axes[0], steps):
        for n, cell in enumerate(cells):
            color = colours[cell] if colours else f"C{n}"  # the report passes its per-variant colours
            for quantity, style, sym in (("grad_h_ratio", "-", "h"), ("grad_c_ratio", "--", "c")):
                m = mean_curves(curves[curves["cell"] == cell], quantity, step)
                if m.empty:
                    continue
                seeds = int(m["n_seeds"].max())
                ax.semilogy(m["t"], m["mean"], style, color=color, label=f"{cell}: |dL/d{sym}_t| (n={seeds})")
                if seeds > 1:
                    ax.fill_between(m["t"], m["min"], m["max"], color=color, alpha=0.15, linewidth=0)
        at = at_step(curves[curves["cell"].isin(cells)], step)["step"].unique()
        ax.set_title(f"{step} probe (training step {', '.join(str(s) for s in sorted(at))})")
        ax.set_xlabel("t (input step)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("gradient norm / its value at r,\nthe last step it reaches")
    if axes[0][-1].get_legend_handles_labels()[0]:  # no curve at all (no probes reached a gradient): no empty box
        axes[0][-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, metadata=metadata)
    plt.close(fig)
    return path


def summary_markdown(summaries: pd.DataFrame, columns: Iterable[str] = SUMMARY_COLUMNS, step: str | int = "final") -> str:
    """Markdown table: per cell and task, mean ± std over seeds of the summary numbers at one probe step.
    Columns that no run has are left out; a cell without the quantity (no c, no such gate) shows "–"."""
    df = at_step(summaries, step)
    columns = [c for c in columns if c in df and df[c].notna().any()]
    rows = []
    for (cell, task), group in df.groupby(["cell", "task"], sort=True, dropna=False):
        row = {"cell": cell, "task": task, "seeds": group["seed"].nunique()}
        for c in columns:
            values = group[c].dropna()
            row[c] = "–" if values.empty else fmt(values.mean(), values.std() if len(values) > 1 else math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["cell", "task", "seeds", *columns]).to_markdown(index=False)


def fmt(mean: float, std: float) -> str:
    return f"{mean:.3g}" if math.isnan(std) else f"{mean:.3g} ± {std:.2g}"
