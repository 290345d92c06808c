"""Summary table -> README.md (Markdown) and tables.tex (booktabs LaTeX). Pure text, no I/O.

Every value shown comes from results.csv / report.json, never from the clock or the machine, so
regenerating a report from its committed data gives the same bytes.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from . import literature
from .collect import MISSING
from .stats import TOO_SMALL, curves_cut, mixed_settings

DASH = "–"
ALL_TASKS = "__all__"  # key of the cross-task plots among the images passed to readme()


def fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{float(x):.{digits}g}"


def fmt_int(x) -> str:
    return DASH if x is None or pd.isna(x) else f"{int(x):,}"


def fmt_p(p) -> str:
    if p is None or pd.isna(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "task"


def runs_cell(row) -> str:
    """'3/3', or '2/4 (1 diverged, 1 missing)': every launched run is accounted for."""
    extra = [f"{int(row[k])} {k}" for k in ("diverged", "failed", "missing") if row[k]]
    return f"{int(row['completed'])}/{int(row['launched'])}" + (f" ({', '.join(extra)})" if extra else "")


def verdict(row, alpha: float = 0.05) -> str:
    """One word a reader can scan: is this variant different from the reference beyond seed noise?"""
    note = row["note"] or ""
    if note in ("reference", TOO_SMALL, "no variance") or note.startswith("no reference"):
        return note
    if pd.isna(row["p_holm"]):
        return DASH
    if not row["significant"]:
        # Even complete separation could not reach α after Holm: the sample, not the cell, decides.
        few = pd.notna(row["p_min_holm"]) and row["p_min_holm"] >= alpha
        return "≈ (n.s.; too few seeds)" if few else "≈ (n.s.)"
    better = (row["diff"] > 0) == bool(row["higher_is_better"])
    return "**better** *" if better else "**worse** *"


def direction(row) -> str:
    return "higher is better" if row["higher_is_better"] else "lower is better"


def solve_cell(row) -> str:
    if pd.isna(row["solve_rate"]):
        return DASH
    trained = int(row["completed"]) + int(row["diverged"])
    return f"{row['solve_rate']:.0%} ({int(row['solved'])}/{trained})"


def mean_std(row) -> str:
    if pd.isna(row["mean"]):
        return DASH
    return fmt(row["mean"]) + ("" if pd.isna(row["std"]) else f" ± {fmt(row['std'], 2)}")


def ci_cell(row) -> str:
    return DASH if pd.isna(row["ci95_low"]) else f"[{fmt(row['ci95_low'])}, {fmt(row['ci95_high'])}]"


def median_cell(row) -> str:
    return DASH if pd.isna(row["median"]) else f"{fmt(row['median'])} {ci_cell(row) if pd.notna(row['ci95_low']) else ''}".rstrip()


def diff_cell(row) -> str:
    if pd.isna(row["diff"]):
        return DASH
    interval = "" if pd.isna(row["diff_ci95_low"]) else f" [{row['diff_ci95_low']:+.3g}, {row['diff_ci95_high']:+.3g}]"
    return f"{row['diff']:+.4g}{interval}"


def min_p_line(table: pd.DataFrame, alpha: float) -> str:
    """What the sample can show: the smallest p its seed counts allow, before and after Holm."""
    tested = table[table["p_holm"].notna()]
    if tested.empty:
        return "No variant has two or more completed seeds beside the reference's: no test was run."
    ref = table[table["note"] == "reference"]
    ref_n = int(ref["completed"].iloc[0]) if len(ref) else 0
    sizes = tested.drop_duplicates("completed").sort_values("completed", ascending=False)
    parts = [f"{int(r['completed'])} vs {ref_n} seeds: {fmt(r['p_min'], 2)} ({fmt(r['p_min_holm'], 2)} after Holm)"
             for _, r in sizes.iterrows()]
    line = (f"Smallest attainable p (two-sided exact, complete separation; Holm over {len(tested)} variant(s)): "
            + "; ".join(parts) + ".")
    if tested["p_min_holm"].min() >= alpha:
        line += f" Not below α = {alpha}: \"n.s.\" here means too few seeds, not \"no difference\"."
    return line


def stopped_line(runs: pd.DataFrame) -> str | None:
    """Which runs of a task stop_when_solved ended (None when none did: older runs never did)."""
    if "stopped_at_step" not in runs:
        return None
    stopped = runs[runs["stopped_at_step"].notna()]
    if stopped.empty:
        return None
    column = "config.stop_when_solved.patience"
    patience = sorted({int(p) for p in stopped[column].dropna()}) if column in stopped else []
    which = ", ".join(f"`{r['cell']}` s{fmt_int(r['seed'])} at step {fmt_int(r['stopped_at_step'])}" for _, r in stopped.iterrows())
    return (f"{len(stopped)} of {len(runs)} runs stopped when solved (stop_when_solved, patience "
            f"{', '.join(map(str, patience)) or DASH}): {which}. Their test values are those of the weights when solved, "
            "not after the full budget: compare solve rates and steps to threshold, not final values.")


def cut_line(runs: pd.DataFrame, curves: pd.DataFrame) -> str | None:
    """Which runs of a task lost the beginning of their curve (stats.curves_cut); None when none did."""
    lost = runs[runs["run"].isin(curves_cut(runs, curves))]
    if lost.empty:
        return None
    first_logged = curves.groupby("run")["step"].min()
    which = ", ".join(f"`{r['cell']}` s{fmt_int(r['seed'])} from step {fmt_int(first_logged[r['run']])}" for _, r in lost.iterrows())
    return (f"{len(lost)} of {len(runs)} runs lost the beginning of their validation curve (resumed from a checkpoint by "
            f"code that deleted the rows logged before it): {which}. Their test values are those of whole runs, but the "
            "step at which they first reached the threshold is unknown: `summary.csv` leaves them out of "
            "steps_to_threshold and counts them in curves_cut.")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)])


def task_markdown(task_label: str, table: pd.DataFrame, reference: str, plots: dict[str, str],
                  expectations: pd.DataFrame, alpha: float, notes: list[str] = ()) -> str:
    """The compact main table (the rest of the numbers are in summary.csv) and the literature beside it."""
    first = table.iloc[0]
    metric = first["metric"] or "?"
    ref_name = first["reference"] or reference
    header = ["#", "variant", "n (completed/launched)", f"test {metric} median [95% CI]", "solved",
              f"Δ median vs {ref_name} [95% CI]", "p (Holm)", "verdict", "expected"]
    rows = []
    for _, row in table.iterrows():
        rows.append([
            fmt_int(row["rank"]), f"`{row['cell']}` ({row['short'] or DASH})", runs_cell(row), median_cell(row),
            solve_cell(row), diff_cell(row), fmt_p(row["p_holm"]), verdict(row, alpha),
            literature.cell_column(expectations, task_label, row["cell"]),
        ])
    threshold = first["solved_threshold"]
    solved_rule = DASH if pd.isna(threshold) else f"{metric} {'≥' if first['higher_is_better'] else '≤'} {fmt(threshold)}"
    lines = [
        f"## {task_label}", "",
        f"Headline: test {metric} ({direction(first)}) of the weights with the lowest validation loss (the checkpoint each run keeps). "
        f"Memoryless baseline: **{fmt(first['baseline'])}**. Solved: {solved_rule}.", "",
        markdown_table(header, rows), "",
        *[part for note in notes for part in (note, "")],
        min_p_line(table, alpha), "",
    ]
    mine = expectations[expectations["task_label"] == task_label]
    if len(mine):
        lines += ["Published expectations:", "", literature.markdown(mine), ""]
    lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines).rstrip() + "\n"


def launch_lines(meta: dict) -> list[str]:
    """The sweeps' own commands (report.json's "launch", from each sweep's multirun.yaml), so that the header
    says how to run the study again and not only how to rebuild the report; none for a report made before
    they were recorded."""
    launch = meta.get("launch") or {}
    # a sweep's one command; for runs taken from a committed report, {their sweep: its command}
    commands = [c for s in meta["sources"] if s in launch for c in ([launch[s]] if isinstance(launch[s], str) else launch[s].values())]
    if not commands:
        return []
    return ["- Launched by (each sweep's last launch, as its multirun.yaml records it; `resume=<dir>` goes on "
            "with a sweep, or re-scores it in place):", *[f"  - `{c}`" for c in commands]]


def readme(meta: dict, summary: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame, plots: dict[str, dict[str, str]],
           expectations: pd.DataFrame | None = None, *, cost: str) -> str:
    """The report's README.md; `cost`: what every run of the study took (stage 1 of a tuned sweep
    included, which `runs` leaves out), literature.compute's line."""
    expectations = expectations if expectations is not None else literature.evaluate([], summary, runs, meta["alpha"])
    counts = runs["status"].value_counts()
    status_line = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("completed", "diverged", "failed", MISSING) if counts.get(s, 0))
    commits = sorted({str(c)[:12] for c in runs["git_commit"].dropna()})
    dirty = bool(runs["git_dirty"].fillna(False).astype(str).str.lower().eq("true").any())
    finished = runs["finished"].dropna()
    lines = [
        f"# Ablation report: {meta['title']}", "",
        f"- Command: `{meta['command']}`",
        f"- Date: {finished.max() if len(finished) else DASH} (newest run finished)",
        f"- Git commit of the runs: {', '.join(commits) or DASH}{' (some with uncommitted changes)' if dirty else ''}",
        f"- Sweeps: {', '.join(f'`{s}`' for s in meta['sources'])}",
        *launch_lines(meta),
        f"- Runs: {len(runs)} launched: {status_line}",
        f"- {cost}",
        f"- Statistics: per variant the median over completed seeds with a 95% percentile-bootstrap interval "
        f"(scipy.stats.bootstrap, 9999 resamples, fixed seed); each variant vs the reference `{meta['reference']}` by "
        f"the two-sided exact Mann-Whitney U test (ties by exact permutation), Holm-corrected across the variants "
        f"of a task, α = {meta['alpha']}; Δ = difference of medians with its bootstrap interval. Fisher's exact test "
        "on solved/unsolved seeds, Cliff's delta, means, Welch's t-test and parameter counts are in `summary.csv`. "
        "Solve rate counts diverged seeds as unsolved. "
        "Regenerate with `lstm-ablate-report --regenerate <reports dir>`.",
        "- Names: this project's `vanilla` is Greff et al. 2017's NP (no peepholes; their \"vanilla\" has "
        "peepholes) and its `peephole` is Greff's V; each claim below is compared through those names.",
        "",
    ]
    mixed = mixed_settings(runs)
    if mixed:  # before the tables: a reader must see that some "seeds" are not replicates
        lines += ["**Warnings**", "", *[f"- {line}" for line in mixed], ""]
    for task_label, table in summary.groupby("task_label", sort=True):
        task_runs = runs[runs["task_label"] == task_label]
        notes = [line for line in (stopped_line(task_runs), cut_line(task_runs, curves)) if line]
        lines.append(task_markdown(task_label, table, meta["reference"], plots.get(task_label, {}), expectations, meta["alpha"], notes))
    if ALL_TASKS in plots:
        lines += ["## Difference from the reference, all tasks", "",
                  "Colour: how much worse than the reference (difference of medians, signed so that positive is worse), as a "
                  "fraction of the larger of the two distances from the memoryless baseline (reference's or variant's); "
                  "defined whichever is better, comparable across tasks and metric directions: 0 = as the reference, "
                  "+1 = the reference's whole gain over memoryless lost, −1 = the variant's whole gain missing from the reference.", "", *[f"![{n}]({p})" for n, p in plots[ALL_TASKS].items()], ""]
    problems = runs[runs["status"] != "completed"]
    if len(problems):
        lines += ["## Runs without a completed result", "",
                  markdown_table(["run", "task", "variant", "seed", "status", "error"],
                                 [[r["run"], r["task"], r["cell"], fmt_int(r["seed"]), r["status"],
                                   DASH if pd.isna(r["error"]) else str(r["error"])[:200]]
                                  for _, r in problems.iterrows()]), ""]
    return "\n".join(lines).rstrip() + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex(text) -> str:
    text = "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return text.replace("–", "--").replace("±", r"$\pm$").replace("<", "$<$").replace(">", "$>$")


def latex(summary: pd.DataFrame, reference: str, alpha: float) -> str:
    """One booktabs table per task; needs \\usepackage{booktabs}."""
    out = ["% Generated by lstm-ablate-report; needs \\usepackage{booktabs}.", ""]
    for task_label, table in summary.groupby("task_label", sort=True):
        first = table.iloc[0]
        metric = first["metric"] or "?"
        out += [
            r"\begin{table}[t]", r"\centering", r"\begin{tabular}{lllrlrrrr}", r"\toprule",
            rf"Variant & Short & Runs & Test {tex(metric)} (median) & 95\% CI & Solved & $\Delta$ median vs {tex(reference)} & $p$ (Holm) & Params \\",
            r"\midrule",
        ]
        for _, row in table.iterrows():
            diff = "--" if pd.isna(row["diff"]) else f"{row['diff']:+.4g}" + ("$^{*}$" if row["significant"] else "")
            out.append(" & ".join([
                tex(row["cell"]), tex(row["short"] or DASH), tex(runs_cell(row)), tex(fmt(row['median'])), tex(ci_cell(row)),
                tex(DASH if pd.isna(row["solve_rate"]) else f"{row['solve_rate']:.0%}"), diff,
                tex(fmt_p(row["p_holm"]) if row["note"] != TOO_SMALL else "n too small"), tex(fmt_int(row["params"])),
            ]) + r" \\")
        out += [
            r"\midrule",
            rf"\multicolumn{{9}}{{l}}{{Memoryless baseline: {tex(fmt(first['baseline']))} ({tex(direction(first))})}} \\",
            r"\bottomrule", r"\end{tabular}",
            rf"\caption{{{tex(task_label)}: test {tex(metric)} over seeds (median, 95\% bootstrap interval). $^{{*}}$: differs from "
            rf"{tex(reference)} (exact Mann-Whitney $U$ test, Holm-corrected, $\alpha={alpha}$). {tex(min_p_line(table, alpha))}}}",
            rf"\label{{tab:{slug(task_label)}}}", r"\end{table}", "",
        ]
    return "\n".join(out)
