"""Summary table -> README.md (Markdown) and tables.tex (booktabs LaTeX). Pure text, no I/O.

Every value shown comes from results.csv / report.json, never from the clock or the machine, so
regenerating a report from its committed data gives the same bytes.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from .collect import MISSING
from .stats import TOO_SMALL, mixed_settings

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


def verdict(row) -> str:
    """One word a reader can scan: is this variant different from the reference beyond seed noise?"""
    note = row["note"] or ""
    if note in ("reference", TOO_SMALL, "no variance") or note.startswith("no reference"):
        return note
    if pd.isna(row["p_holm"]):
        return DASH
    if not row["significant"]:
        return "≈ (n.s.)"
    better = (row["diff"] > 0) == bool(row["higher_is_better"])
    return "**better** *" if better else "**worse** *"


def direction(row) -> str:
    return "higher is better" if row["higher_is_better"] else "lower is better"


def solve_cell(row) -> str:
    if pd.isna(row["solve_rate"]):
        return DASH
    trained = int(row["completed"]) + int(row["diverged"])
    return f"{row['solve_rate']:.0%} ({int(row['solved'])}/{trained})"


def steps_cell(row) -> str:
    if not row["reached"]:
        return DASH
    return f"{fmt_int(row['steps_to_threshold'])} ({int(row['reached'])}/{int(row['completed'])})"


def mean_std(row) -> str:
    if pd.isna(row["mean"]):
        return DASH
    return fmt(row["mean"]) + ("" if pd.isna(row["std"]) else f" ± {fmt(row['std'], 2)}")


def ci_cell(row) -> str:
    return DASH if pd.isna(row["ci95_low"]) else f"[{fmt(row['ci95_low'])}, {fmt(row['ci95_high'])}]"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)])


def task_markdown(task_label: str, table: pd.DataFrame, reference: str, plots: dict[str, str]) -> str:
    first = table.iloc[0]
    metric = first["metric"] or "?"
    ref_name = first["reference"] or reference
    header = ["#", "variant", "short", "what changes", "runs completed/launched", f"test {metric} mean ± std",
              "median", "95% CI", "solved", "steps to threshold", f"Δ vs {ref_name}", "effect d",
              "p (Holm)", "verdict", "memoryless baseline", "params"]
    rows = []
    for _, row in table.iterrows():
        rows.append([
            fmt_int(row["rank"]), f"`{row['cell']}`", row["short"] or DASH, row["change"] or DASH, runs_cell(row),
            mean_std(row), fmt(row["median"]), ci_cell(row), solve_cell(row), steps_cell(row),
            DASH if pd.isna(row["diff"]) else f"{row['diff']:+.4g}", fmt(row["effect_size"], 3),
            fmt_p(row["p_holm"]), verdict(row), fmt(row["baseline"]), fmt_int(row["params"]),
        ])
    threshold = first["solved_threshold"]
    solved_rule = DASH if pd.isna(threshold) else f"{metric} {'≥' if first['higher_is_better'] else '≤'} {fmt(threshold)}"
    lines = [
        f"## {task_label}", "",
        f"Headline: test {metric} ({direction(first)}) of the weights with the best validation score. "
        f"Memoryless baseline: **{fmt(first['baseline'])}**. Solved: {solved_rule}.", "",
        markdown_table(header, rows), "",
    ]
    lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines).rstrip() + "\n"


def readme(meta: dict, summary: pd.DataFrame, runs: pd.DataFrame, plots: dict[str, dict[str, str]]) -> str:
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
        f"- Runs: {len(runs)} launched: {status_line}",
        f"- Statistics: mean ± std over completed seeds; 95% Student-t interval; each variant vs the reference "
        f"`{meta['reference']}` by Welch's t-test, Holm-corrected across the variants of a task, α = {meta['alpha']}; "
        "effect d = Δ / sqrt((s₁² + s₂²)/2). Solve rate counts diverged seeds as unsolved. "
        "Regenerate with `lstm-ablate-report --regenerate <reports dir>`.",
        "",
    ]
    mixed = mixed_settings(runs)
    if mixed:  # before the tables: a reader must see that some "seeds" are not replicates
        lines += ["**Warnings**", "", *[f"- {line}" for line in mixed], ""]
    for task_label, table in summary.groupby("task_label", sort=True):
        lines.append(task_markdown(task_label, table, meta["reference"], plots.get(task_label, {})))
    if ALL_TASKS in plots:
        lines += ["## Difference from the reference, all tasks", "",
                  "Colour: Δ / (memoryless baseline − reference mean), comparable across tasks and metric directions: "
                  "0 = as good as the reference, 1 = no better than memoryless, below 0 = better than the reference.", "", *[f"![{n}]({p})" for n, p in plots[ALL_TASKS].items()], ""]
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
            rf"Variant & Short & Runs & Test {tex(metric)} & 95\% CI & Solved & $\Delta$ vs {tex(reference)} & $p$ (Holm) & Params \\",
            r"\midrule",
        ]
        for _, row in table.iterrows():
            diff = "--" if pd.isna(row["diff"]) else f"{row['diff']:+.4g}" + ("$^{*}$" if row["significant"] else "")
            out.append(" & ".join([
                tex(row["cell"]), tex(row["short"] or DASH), tex(runs_cell(row)), tex(mean_std(row)), tex(ci_cell(row)),
                tex(DASH if pd.isna(row["solve_rate"]) else f"{row['solve_rate']:.0%}"), diff,
                tex(fmt_p(row["p_holm"]) if row["note"] != TOO_SMALL else "n too small"), tex(fmt_int(row["params"])),
            ]) + r" \\")
        out += [
            r"\midrule",
            rf"\multicolumn{{9}}{{l}}{{Memoryless baseline: {tex(fmt(first['baseline']))} ({tex(direction(first))})}} \\",
            r"\bottomrule", r"\end{tabular}",
            rf"\caption{{{tex(task_label)}: test {tex(metric)} over seeds (mean $\pm$ std). $^{{*}}$: differs from "
            rf"{tex(reference)} (Welch $t$-test, Holm-corrected, $\alpha={alpha}$).}}",
            rf"\label{{tab:{slug(task_label)}}}", r"\end{table}", "",
        ]
    return "\n".join(out)
