"""The tuned-sweep part of a report (lstm_ablation.tune): stage 1 beside the stage-2 statistics.

A run's stage is its `config.tune.stage` column: `tune` (a trial of the per-cell search), `rescore`
(one of the top trials run again on another seed, `tune.rescore`) or `confirm` (the chosen trial re-run
on a fresh seed). The statistics tables are built from the confirmation runs only; this module writes
what stage 1 found, from results.csv alone, so a regenerated report is byte-identical:
- per cell: trials finished/launched, the best configuration, best-of-N and median validation value;
- with re-scoring: each candidate's value per seed, their mean and which trial was confirmed;
- all trials per cell as a box/strip plot (Greff et al. 2017, Fig. 3 style);
- hyper-parameter importance (Optuna's fANOVA evaluator, seeded) as a table and a bar plot;
- the validation value against the learning rate, one line per cell.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .collect import MISSING
from .render import DASH, fmt, markdown_table, slug

STAGE, SPACE = "config.tune.stage", "config.tune.space."
SEARCH = ("tune", "rescore")  # the runs of the search; every other run of a tuned sweep is a confirmation
LR = "optim.lr"


def split(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(runs the statistics are about, the search's runs (stage-1 trials and re-score runs) or None when
    the data is not a tuned sweep)."""
    if STAGE not in runs.columns or not runs[STAGE].eq("tune").any():
        return runs, None
    search = runs[STAGE].isin(SEARCH)
    return runs[~search].reset_index(drop=True), runs[search].reset_index(drop=True)


def objective(row: pd.Series) -> float:
    """What the search ranked the trial by (lstm_ablation.tune.objective): best validation value of
    the headline metric; a diverged trial scores the memoryless baseline."""
    if row["status"] == "diverged":
        return float(row["baseline"])
    if row["status"] != "completed":
        return math.nan
    value = row.get(f"metrics.val/{row['metric']}_best")
    return math.nan if value is None or pd.isna(value) else float(value)


def space(trials: pd.DataFrame) -> dict[str, str]:
    return {c[len(SPACE):]: trials[c].dropna().iloc[0] for c in sorted(trials.columns)
            if c.startswith(SPACE) and trials[c].notna().any()}


def tuned_params(trials: pd.DataFrame, keys: list[str]) -> list[str]:
    """The searched parameters these trials actually vary (a cell without b_i never varies it)."""
    return [k for k in keys if f"config.{k}" in trials and trials[f"config.{k}"].notna().all()
            and trials[f"config.{k}"].nunique() > 1]


def marker(trials: pd.DataFrame, confirm: pd.DataFrame) -> str:
    """'tuned: N trials per cell, M confirmation seeds' (ranges when cells differ)."""
    def span(counts: pd.Series) -> str:
        return DASH if counts.empty else str(counts.min()) if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"

    n = trials[trials[STAGE] == "tune"].groupby(["task_label", "cell"]).size()
    m = confirm.groupby(["task_label", "cell"]).size()
    return f"tuned: {span(n)} trials per cell, {span(m)} confirmation seeds"


def unconfirmed(trials: pd.DataFrame, confirm: pd.DataFrame) -> list[str]:
    """'`cell` (task)' for each cell with stage-1 runs but no confirmation run (a report of a study under way)."""
    done = set(zip(confirm["task_label"], confirm["cell"]))
    return [f"`{cell}` ({task})" for task, cell in sorted(set(zip(trials["task_label"], trials["cell"])) - done)]


def mark(text: str, trials: pd.DataFrame, confirm: pd.DataFrame, task_labels: list[str]) -> str:
    """Mark the report's header and each stage-2 task table as confirmation-only."""
    tag = marker(trials, confirm)
    lines = text.split("\n")
    chosen = ("the trial of each cell chosen by re-scoring its best trials on more seeds (*Re-score*), re-run on fresh seeds"
              if trials[STAGE].eq("rescore").any() else "the best trial of each cell re-run on fresh seeds")
    if other := unconfirmed_picks(trials, confirm):
        chosen += ("; re-scored after their confirmation, so confirmed with the best-of-N, where the re-score picks "
                   "another trial: " + "; ".join(other))
    waiting = unconfirmed(trials, confirm)
    lines.insert(2, f"- Tuned sweep ({tag}): every table of statistics below is stage 2 only ({chosen}); "
                    "stage 1 is in *Stage 1: per-cell tuning*."
                    + (f" **Not confirmed yet**, so in no statistics table: {', '.join(waiting)}." if waiting else ""))
    marked = {f"## {label}" for label in task_labels}
    return "\n".join(f"{line} (stage 2; {tag})" if line in marked else line for line in lines)


def importance(trials: pd.DataFrame, params: list[str], spec: dict[str, str], higher_is_better: bool) -> dict[str, float]:
    """fANOVA importance (Hutter et al. 2014, as Greff et al. 2017 used it) of each parameter; {} if too few trials."""
    import optuna

    from ..spec import ConfigError
    from ..tune import distribution

    done = trials[np.isfinite(trials["objective"])]
    if len(done) < 3 or not params:
        return {}
    try:
        dists = {k: distribution(k, spec[k]) for k in params}
    except ConfigError:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if higher_is_better else "minimize")
    for _, row in done.iterrows():
        values = {k: row[f"config.{k}"] for k in params}
        values = {k: (int(v) if isinstance(dists[k], optuna.distributions.IntDistribution) else
                      v if isinstance(dists[k], optuna.distributions.CategoricalDistribution) else float(v))
                  for k, v in values.items()}
        for k, d in dists.items():  # CSV turns a choice of ints into floats: map back to the declared choice
            if isinstance(d, optuna.distributions.CategoricalDistribution):
                values[k] = next((c for c in d.choices if str(c) == str(values[k]) or c == values[k]), values[k])
        try:
            study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=float(row["objective"])))
        except ValueError:
            continue
    if len(study.trials) < 3:
        return {}
    try:
        scores = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=params, normalize=True)
    except (RuntimeError, ValueError):
        return {}
    return {k: round(float(v), 6) for k, v in scores.items()}


def strip_plot(task_trials: pd.DataFrame, cells: list[str], colour: dict, path: Path, title: str, ylabel: str) -> None:
    from .plots import maybe_log, save
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(cells) + 2), 4.2))
    for x, cell in enumerate(cells):
        values = task_trials.loc[task_trials["cell"] == cell, "objective"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            ax.boxplot(values, positions=[x], widths=0.5, showfliers=False, medianprops={"color": colour[cell]}, boxprops={"color": "0.4"})
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(x + jitter, values, color=colour[cell], s=22, zorder=3, edgecolor="black", linewidth=0.4)
    baseline = float(task_trials["baseline"].dropna().iloc[0]) if task_trials["baseline"].notna().any() else math.nan
    if math.isfinite(baseline):
        ax.axhline(baseline, color="0.3", linestyle="--", linewidth=1, label=f"memoryless baseline ({fmt(baseline)})")
        ax.legend(fontsize=7, loc="best")
    maybe_log(ax, np.append(task_trials["objective"].to_numpy(dtype=float), baseline))
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels(cells, fontsize=8)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def importance_plot(table: pd.DataFrame, params: list[str], colour: dict, path: Path, title: str) -> None:
    from .plots import save
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(params) + 2), 3.8))
    rows = list(table.index)
    width = 0.8 / max(1, len(rows))
    for i, name in enumerate(rows):
        heights = [table.loc[name, p] if pd.notna(table.loc[name, p]) else 0.0 for p in params]
        ax.bar(np.arange(len(params)) + (i - (len(rows) - 1) / 2) * width, heights, width,
               color=colour.get(name, "0.6"), label=name, edgecolor="black", linewidth=0.3)
    ax.set_xticks(range(len(params)))
    ax.set_xticklabels(params, fontsize=8)
    ax.set_ylabel("fANOVA importance (share of variance)")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def lr_plot(task_trials: pd.DataFrame, cells: list[str], colour: dict, path: Path, title: str, ylabel: str) -> None:
    from .plots import maybe_log, save
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for cell in cells:
        points = task_trials[(task_trials["cell"] == cell) & np.isfinite(task_trials["objective"])]
        points = points.assign(lr=points[f"config.{LR}"].astype(float)).sort_values(["lr", "run"])
        if len(points):
            ax.plot(points["lr"], points["objective"], marker="o", markersize=4, color=colour[cell], label=cell, linewidth=1)
    ax.set_xscale("log")
    maybe_log(ax, task_trials["objective"].to_numpy(dtype=float))
    ax.set_xlabel("learning rate (optim.lr)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save(fig, path)


TIE_BREAK, TIE_LOSS = "config.tune.tie_break", "metrics.val/loss_best"


def tie_rule(runs: pd.DataFrame) -> str:
    """The sweep's `tune.tie_break` (lstm_ablation.tune.tie_key); `earliest` for runs made before it existed."""
    rules = runs[TIE_BREAK].dropna().unique() if TIE_BREAK in runs else []
    return str(rules[0]) if len(rules) else "earliest"


def with_objective(search: pd.DataFrame) -> pd.DataFrame:
    """The search's runs with their `objective` (what each was ranked by) and `tie` (what broke a tie on it:
    the best validation loss under `tune.tie_break: val_loss`, else 0, so the trial number decides) columns."""
    if "objective" not in search:
        search = search.assign(objective=search.apply(objective, axis=1).astype(float))
    if "tie" not in search:
        loss = search[TIE_LOSS].astype(float).fillna(math.inf) if TIE_LOSS in search else pd.Series(math.inf, index=search.index)
        search = search.assign(tie=loss if tie_rule(search) == "val_loss" else 0.0)
    return search


def by_rank(trials: pd.DataFrame, higher: bool) -> pd.DataFrame:
    """Stage-1 trials with a value, best first, as lstm_ablation.tune.ranked orders them."""
    trials = with_objective(trials).dropna(subset=["objective"])
    return trials.assign(key=-trials["objective"] if higher else trials["objective"]).sort_values(
        ["key", "tie", "config.tune.trial"], kind="stable").drop(columns="key")


def rescored(search: pd.DataFrame, cell: str, higher: bool) -> list[dict]:
    """One cell's re-score candidates, best stage-1 value first: trial, value on the tuning seed, values on
    the re-score seeds, the mean and whether it is the pick (lstm_ablation.tune.chosen: the best mean over
    complete candidates; a candidate with a failed run ranks after them, by the mean of the values it has)."""
    search = with_objective(search)
    mine = search[search["cell"] == cell]
    again = mine[mine[STAGE] == "rescore"].sort_values("seed")
    out = []
    for number, runs in again.groupby(again["config.tune.trial"].astype(int)):
        first = mine[(mine[STAGE] == "tune") & (mine["config.tune.trial"] == number)]
        first, tie = (float(first["objective"].iloc[0]), float(first["tie"].iloc[0])) if len(first) else (math.nan, math.inf)
        values = [first, *runs["objective"]]
        out.append({"trial": number, "first": first, "seeds": list(zip(runs["seed"].astype(int), runs["objective"])),
                    "mean": float(np.mean(values)) if np.all(np.isfinite(values)) else math.nan,
                    "ties": [tie, *runs["tie"].astype(float)]})
    out.sort(key=lambda c: (-c["first"] if higher else c["first"], c["ties"][0], c["trial"]))

    def rank(c):  # as tune.chosen: complete candidates first, then by the mean of the values a candidate has, then the tie rule's
        known = [v for v in (c["first"], *(v for _, v in c["seeds"])) if np.isfinite(v)]
        mean = float(np.mean(known)) if known else math.inf * (-1 if higher else 1)
        return (not np.isfinite(c["mean"]), -mean if higher else mean, sum(c["ties"]) / len(c["ties"]))

    pick = min(out, key=rank) if out else None  # min is stable: ties go to the better stage-1 value
    for c in out:
        c["pick"] = c is pick
    return out


def unconfirmed_picks(search: pd.DataFrame, confirm: pd.DataFrame) -> list[str]:
    """'`cell` (task): trial M' for each cell re-scored after its confirmation whose pick is not the confirmed trial."""
    out = []
    for (task, cell), runs in search[search[STAGE] == "rescore"].groupby(["task_label", "cell"], sort=True):
        higher = bool(runs["higher_is_better"].iloc[0])
        pick = next((c["trial"] for c in rescored(search[search["task_label"] == task], cell, higher) if c["pick"]), None)
        confirmed = set(confirm.loc[(confirm["task_label"] == task) & (confirm["cell"] == cell), "config.tune.trial"].dropna().astype(int))
        if confirmed and pick not in confirmed:
            out.append(f"`{cell}` ({task}): trial {pick}, confirmed {', '.join(map(str, sorted(confirmed)))}")
    return out


def tied_best(task_search: pd.DataFrame, cells: list[str], higher: bool, top_k: int) -> list[str]:
    """'`cell`: trials a, b, c' for each cell whose best stage-1 value is shared by more trials than the
    re-score takes: which of them it takes then rests on the tie rule (tune.candidates), not the data."""
    search = with_objective(task_search)
    out = []
    for cell in cells:
        first = by_rank(search[(search["cell"] == cell) & (search[STAGE] == "tune")], higher)
        if first.empty:
            continue
        best, tie = first["objective"].iloc[0], first["tie"].iloc[0]
        tied = sorted(first.loc[(first["objective"] == best) & (first["tie"] == tie), "config.tune.trial"].astype(int))
        if len(tied) > top_k:
            out.append(f"`{cell}`: {len(tied)} trials tie at {fmt(best)} (trials {', '.join(map(str, tied))})")
    return out


def rescore_table(task_search: pd.DataFrame, confirm: pd.DataFrame, cells: list[str], higher: bool) -> list[list[str]]:
    """Per cell and candidate: its value on the tuning seed and on each re-score seed, the mean, whether it
    is the re-score's pick and whether stage 2 confirmed it (the trial its confirmation runs name)."""
    rows = []
    for cell in cells:
        confirmed = set(confirm.loc[confirm["cell"] == cell, "config.tune.trial"].dropna().astype(int))
        for c in rescored(task_search, cell, higher):
            rows.append([f"`{cell}`", str(c["trial"]), fmt(c["first"]), ", ".join(f"s{seed} {fmt(v)}" for seed, v in c["seeds"]),
                         fmt(c["mean"]) if np.isfinite(c["mean"]) else "failed run", "**pick**" if c["pick"] else DASH,
                         "**yes**" if c["trial"] in confirmed else DASH])
    return rows


def section(trials: pd.DataFrame, target: Path, reference: str, plots: bool, confirm: pd.DataFrame | None = None) -> str:
    """README section for stage 1 (and the re-score, if the sweep had one), one block per task."""
    search = with_objective(trials)
    trials = search[search[STAGE] == "tune"]
    spec = space(trials)
    lines = ["", "## Stage 1: per-cell tuning", "",
             "Each cell had its own search over the space below (Optuna; every trial one run on the tuning seed). "
             "Value: the best validation value of the headline metric during training (a diverged trial scores the "
             "memoryless baseline), the quantity the search optimised. Best-of-N favours cells that are merely noisy; "
             "the verdicts above come from the confirmation runs only.", "",
             markdown_table(["parameter", "search range"], [[f"`{k}`", f"`{v}`"] for k, v in spec.items()]), ""]
    if tie_rule(trials) == "val_loss":
        lines += ["Ties on the value (an accuracy that saturates at 1 on several trials): the trial with the lower best "
                  "validation loss ranks first (`tune.tie_break: val_loss`), in the best trial below, in the re-score's "
                  "candidates and in its pick.", ""]
    pruners = sorted(trials["config.tune.pruner"].dropna().unique()) if "config.tune.pruner" in trials else []
    if pruners:
        lines += [f"Pruning (`tune.pruner`: {', '.join(pruners)}): a trial the pruner stopped at a validation counts as "
                  "pruned; it has no value here and cannot be the best trial (as in Optuna, only completed trials compete).", ""]
    if plots:
        from .plots import colours
        palette = colours(list(trials["cell"].unique()), reference)
    for task_label, task_trials in trials.groupby("task_label", sort=True):
        first = task_trials.iloc[0]
        higher = bool(first["higher_is_better"])
        best_of = (lambda s: s.max()) if higher else (lambda s: s.min())
        cells = sorted(task_trials["cell"].unique(), key=lambda c: (c != reference, c))
        ylabel = f"validation {first['metric']} (best during training)"
        rows, imp_rows = [], {}
        for cell in cells:
            mine = task_trials[task_trials["cell"] == cell]
            values = mine["objective"][np.isfinite(mine["objective"])]
            counts = mine["status"].value_counts()
            extra = [f"{int(counts[s])} {s}" for s in ("diverged", "pruned", "failed", MISSING) if counts.get(s, 0)]
            params = tuned_params(mine, list(spec))
            if len(values):
                best = by_rank(mine, higher).iloc[0]
                setting = ", ".join(f"{k}={fmt(best[f'config.{k}'])}" for k in params) or DASH
                trial = best.get("config.tune.trial")
            else:
                setting, trial = DASH, None
            rows.append([f"`{cell}`", f"{int(counts.get('completed', 0))}/{len(mine)}" + (f" ({', '.join(extra)})" if extra else ""),
                         fmt(best_of(values)) if len(values) else DASH, fmt(values.median()) if len(values) else DASH,
                         DASH if trial is None or pd.isna(trial) else str(int(trial)), setting])
            imp_rows[cell] = importance(mine, params, spec, higher)
        common = [k for k in spec if all(k in tuned_params(task_trials[task_trials["cell"] == c], list(spec)) for c in cells)]
        imp_rows["all cells"] = importance(task_trials, common, spec, higher) if len(cells) > 1 else {}
        lines += [f"### {task_label}: stage 1", "",
                  f"Validation {first['metric']} ({'higher' if higher else 'lower'} is better); memoryless baseline "
                  f"{fmt(first['baseline'])}.", "",
                  markdown_table(["cell", "trials completed/run", f"best-of-N val {first['metric']}", "median of trials",
                                  "best trial", "best configuration (searched parameters)"], rows), ""]
        task_search = search[search["task_label"] == task_label]
        if task_search[STAGE].eq("rescore").any():
            picked = confirm[confirm["task_label"] == task_label] if confirm is not None else task_search.iloc[:0]
            lines += [f"Re-score (`tune.rescore`): each cell's best trials run again on more seeds; the one with the "
                      f"{'highest' if higher else 'lowest'} mean over the tuning seed and these is the pick, which stage 2 "
                      "confirms (best-of-N on one seed favours the trial that was lucky on it). A sweep re-scored after "
                      "its confirmation keeps its confirmed trial; the header names any cell whose pick differs.", "",
                      markdown_table(["cell", "trial", f"val {first['metric']}, tuning seed", "re-score seeds", "mean",
                                      "re-score's pick", "confirmed"],
                                     rescore_table(task_search, picked, cells, higher)), ""]
            top_k = int(task_search.loc[task_search[STAGE] == "rescore", "config.tune.trial"].groupby(
                task_search["cell"]).nunique().max())
            if ties := tied_best(task_search, cells, higher, top_k):
                lines += [f"Ties on the tuning seed, more than the {top_k} the re-score takes: {'; '.join(ties)}. The re-score "
                          f"takes the earliest of them (`tune.ranked`: ties{' in value and validation loss' if tie_rule(task_search) == 'val_loss' else ''} "
                          "go to the earlier trial), so which settings stage 2 confirms among equally good ones rests on that rule.", ""]
        params = [k for k in spec if any(k in r for r in imp_rows.values())]
        table = pd.DataFrame({name: {k: r.get(k, math.nan) for k in params} for name, r in imp_rows.items() if r}).T
        if params and len(table):
            lines += ["Hyper-parameter importance (fANOVA, Optuna's `FanovaImportanceEvaluator(seed=0)`, share of the "
                      "variance of the value explained by each parameter; `all cells`: the trials of every cell pooled, "
                      "over the parameters every cell searched; – : not searched for that cell):", "",
                      markdown_table(["cell", *[f"`{k}`" for k in params]],
                                     [[name, *[fmt(table.loc[name, k], 2) for k in params]] for name in table.index]), ""]
        if plots:
            stem = slug(task_label)
            strip_plot(task_trials, cells, palette, target / f"plots/tuning-trials-{stem}.png",
                       f"{task_label}: all tuning trials per cell", ylabel)
            lines += [f"![all tuning trials, {task_label}](plots/tuning-trials-{stem}.png)", ""]
            if params and len(table):
                importance_plot(table, params, {**palette, "all cells": "0.6"}, target / f"plots/tuning-importance-{stem}.png",
                                f"{task_label}: hyper-parameter importance (fANOVA)")
                lines += [f"![hyper-parameter importance, {task_label}](plots/tuning-importance-{stem}.png)", ""]
            if f"config.{LR}" in task_trials and LR in spec:
                lr_plot(task_trials, cells, palette, target / f"plots/tuning-lr-{stem}.png",
                        f"{task_label}: validation value vs learning rate (each point one trial)", ylabel)
                lines += [f"![value vs learning rate, {task_label}](plots/tuning-lr-{stem}.png)", ""]
    return "\n".join(lines)
