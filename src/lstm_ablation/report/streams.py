"""Long streams in the report: each continual-stream run's stream.json (streams.StreamRecorder) ->
the symbols predicted before the first error per test stream, and |c| along the stream per variant
(the mechanism of Gers et al. 2000: without a forget gate nothing lets the cell state shrink).

    data = stream_data(sweep_dirs)            # (cell curves, first errors) of the test streams, or None
    text = section(cell_curves, first_errors, target, colours, plots=True, reference="vanilla")
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .collect import run_id, runs_root
from . import stats
from .render import fmt, fmt_p, markdown_table, slug

STREAM_FILE = "stream.json"
LABELS = ("cell", "task", "seed")


def stream_data(sweep_dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The test split of every run that has a stream.json: |c| at each chunk end (one row per run and
    position) and symbols until the first error (one row per run and stream); None if no run has one."""
    cells, errors = [], []
    root = runs_root(sweep_dirs)
    for run_dir in sorted(p.parent for sweep in sweep_dirs for p in Path(sweep).rglob(STREAM_FILE)):
        data = json.loads((run_dir / STREAM_FILE).read_text())
        test = data.get("test")
        if test is None:   # training ended without a test (a failed job): nothing to show
            continue
        labels = {"run_dir": run_id(run_dir, root), **{k: data["labels"].get(k) for k in LABELS}}
        for row, n in enumerate(test["until_first_error"]):
            errors.append({**labels, "stream": row, "until_first_error": n, "stream_len": test["stream_len"]})
        if test["cell"] is not None:
            for at, mean, peak in zip(test["cell"]["at"], test["cell"]["abs_mean"], test["cell"]["abs_max"]):
                cells.append({**labels, "at": at, "cell_abs_mean": mean, "cell_abs_max": peak})
    if not errors:
        return None
    return (pd.DataFrame(cells, columns=["run_dir", *LABELS, "at", "cell_abs_mean", "cell_abs_max"]),
            pd.DataFrame(errors))


def first_error_table(errors: pd.DataFrame, cells: pd.DataFrame, reference: str) -> str:
    """Per task and variant: symbols before the first error over every test stream of every seed,
    the streams without any error (in all, and per run: Gers et al.'s measure is per network), the
    per-run count of perfect streams against the reference's (exact two-sided Mann-Whitney, Holm over
    the variants of a task), and mean |c| at the streams' end (median over runs)."""
    rows = []
    end = cells.sort_values("at").groupby("run_dir").tail(1).set_index("run_dir")["cell_abs_mean"]
    perfect = errors.assign(perfect=errors["until_first_error"] == errors["stream_len"])
    per_run = perfect.groupby(["task", "cell", "seed", "run_dir"], sort=True)["perfect"].sum().astype(int)
    for task, task_errors in errors.groupby("task", sort=True):
        counts = {cell: per_run.loc[task, cell].to_numpy() for cell in task_errors["cell"].unique()}
        others = sorted(c for c in counts if c != reference) if reference in counts else []
        p_holm = dict(zip(others, stats.holm([stats.mann_whitney(counts[c], counts[reference])[0] for c in others])))
        for cell, g in task_errors.groupby("cell", sort=True):
            n = g["until_first_error"]
            c_end = end.reindex(g["run_dir"].unique()).dropna()
            p = "reference" if cell == reference else fmt_p(p_holm[cell]) if cell in p_holm else "–"
            rows.append([task, cell, str(g["run_dir"].nunique()), f"{len(g)} x {int(g['stream_len'].max())}",
                         fmt(n.median(), 6), fmt(n.min(), 6), fmt(n.max(), 6),
                         f"{int((n == g['stream_len']).sum())}/{len(g)}",
                         ", ".join(str(k) for k in counts[cell]), p, fmt(c_end.median()) if len(c_end) else "–"])
    header = ["task", "cell", "runs", "test streams x symbols", "median symbols before the first error", "min",
              "max", "streams without error", "perfect streams per run (by seed)",
              f"p (Holm), perfect streams per run vs `{reference}`", "mean abs(c) at the end (median over runs)"]
    return markdown_table(header, rows)


def plot_cell_state(cells: pd.DataFrame, path: Path, colours: dict, title: str, metadata: dict | None = None) -> Path:
    """Mean |c| over units and test streams at each chunk end, against the position in the stream:
    one line per seed, log-log (a cell that never forgets keeps climbing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for cell, g in cells.groupby("cell", sort=True):
        for n, (_, run) in enumerate(g.groupby("run_dir", sort=True)):
            ax.loglog(run["at"], run["cell_abs_mean"], color=colours.get(cell), alpha=0.8, linewidth=1,
                      label=f"{cell} ({g['run_dir'].nunique()} runs)" if n == 0 else None)
    ax.set_xlabel("symbols into the stream")
    ax.set_ylabel("mean |c| (units, test streams)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata=metadata)
    plt.close(fig)
    return path


def section(cells: pd.DataFrame, errors: pd.DataFrame, target: Path, colours: dict, plots: bool, reference: str,
            metadata: dict | None = None) -> str:
    lines = ["", "## Long streams", "",
             "Test streams read without any reset (continual tasks, state carried from chunk to chunk), of the "
             "runs the statistics above are about (in a tuned sweep: the confirmation runs). "
             "Symbols before the first error: the measure of Gers et al. 2000 (a stream without error counts "
             "its full length; a perfect stream is one without error). |c|: the cell state at each chunk end, "
             "mean over units and streams; without a forget gate nothing lets it shrink.", ""]
    if plots and not cells.empty:
        for task, g in cells.groupby("task", sort=True):
            name = f"plots/cell_state_{slug(task)}.png"
            plot_cell_state(g, target / name, colours, f"{task}: |c| along the test streams", metadata)
            lines += [f"![cell state along the stream, {task}]({name})", ""]
    lines += [first_error_table(errors, cells, reference), ""]
    return "\n".join(lines)
