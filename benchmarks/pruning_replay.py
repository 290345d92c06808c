"""What would a pruner have done to a finished tuned sweep? (issue 15: tune.pruner)

    python benchmarks/pruning_replay.py multirun/seed_gates_tuned/*              # median and hyperband
    python benchmarks/pruning_replay.py <sweep dirs> --pruner median --warmup-steps 1000

Stage 1 of a tuned sweep (lstm_ablation.tune) ran every trial to the end, and each trial's
metrics.csv holds its whole validation curve. With the random sampler a trial's settings do not
depend on how earlier trials ended, and a trial that is not pruned trains exactly as it did, so
replaying the curves through Optuna's own pruner (built by tune_pruning.build_pruner, as a pruned
sweep builds it) is an exact answer to "which trials would have been pruned, at which step, and
would the chosen configuration differ", at no training cost.

Trials are replayed in the sweep's order, `tune.n_jobs` at a time as the sweeper launched them:
a trial sees, at each step, the trials completed before its batch started (Optuna's percentile
pruners compare against completed trials only). Reported steps are the training steps the job's
pruning callback reports (`global_step` after the validation: the CSV's step + 1).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import optuna

from lstm_ablation.report.collect import read_curve
from lstm_ablation.results import read_result
from lstm_ablation.tune import objective
from lstm_ablation.tune_pruning import build_pruner


def stage1_trials(sweep_dir: Path) -> list[dict]:
    """The stage-1 trials of one tuned sweep, in trial order: number, objective, curve, cost."""
    trials = []
    for path in sorted(sweep_dir.glob("tune-*/result.json")):
        record = read_result(path)
        if record["status"] != "completed":
            continue  # a failed or diverged trial is what it is with or without pruning
        curve = read_curve(path.parent, record["metric"], path.parent.name)
        trials.append({"number": record["config"]["tune"]["trial"], "record": record,
                       "objective": objective(record),
                       "steps": [int(s) + 1 for s in curve["step"]], "values": list(curve["value"])})
    return sorted(trials, key=lambda t: t["number"])


def replay(trials: list[dict], kind: str, startup: int, warmup: int) -> dict:
    record = trials[0]["record"]
    cfg = record["config"]
    higher = record["higher_is_better"]
    interval = cfg["trainer"]["val_check_interval"]
    pruner = build_pruner(kind, startup, warmup, interval if isinstance(interval, int) else 1, cfg["trainer"]["max_steps"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=f"{cfg['name']}/cell={record['cell']}/tune", pruner=pruner,
                                direction="maximize" if higher else "minimize")
    n_jobs = cfg["tune"]["n_jobs"]
    pruned: dict[int, int] = {}  # trial number -> step
    for first in range(0, len(trials), n_jobs):
        batch = trials[first:first + n_jobs]
        asked = [study.ask() for _ in batch]  # all running: none sees the others of its batch
        for trial, t in zip(asked, batch):
            for step, value in zip(t["steps"], t["values"]):
                trial.report(value, step)
                if trial.should_prune():
                    pruned[t["number"]] = step
                    break
        for trial, t in zip(asked, batch):
            if t["number"] in pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, t["objective"])
    best = (max if higher else min)(trials, key=lambda t: t["objective"])
    kept = [t for t in trials if t["number"] not in pruned]
    best_pruned = (max if higher else min)(kept, key=lambda t: t["objective"]) if kept else None
    total = sum(t["steps"][-1] for t in trials)
    run = sum(pruned.get(t["number"], t["steps"][-1]) for t in trials)
    return {"cell": record["cell"], "trials": len(trials), "pruned": pruned, "best": best,
            "best_pruned": best_pruned, "steps_saved": 1 - run / total}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="+", type=Path, help="tuned sweep directories (one per cell or several cells each)")
    p.add_argument("--pruner", choices=["median", "hyperband", "both"], default="both")
    p.add_argument("--startup-trials", type=int, default=5, help="tune.pruner_startup_trials (median)")
    p.add_argument("--warmup-steps", type=int, default=0, help="tune.pruner_warmup_steps")
    args = p.parse_args()
    kinds = ["median", "hyperband"] if args.pruner == "both" else [args.pruner]
    print(f"optuna {optuna.__version__}; startup trials {args.startup_trials} (median), warm-up {args.warmup_steps} steps\n")
    print("| pruner | cell | trials | pruned (trial@step) | best trial (value) | best with pruning (value) | same? | stage-1 steps saved |")
    print("|---|---|---|---|---|---|---|---|")
    changed, saved = 0, []
    for kind in kinds:
        for sweep in args.sweeps:
            trials = stage1_trials(sweep)
            if not trials:
                print(f"{sweep}: no completed stage-1 trials", file=sys.stderr)
                continue
            cells = sorted({t["record"]["cell"] for t in trials})
            for cell in cells:
                r = replay([t for t in trials if t["record"]["cell"] == cell], kind, args.startup_trials, args.warmup_steps)
                same = r["best_pruned"] is not None and r["best_pruned"]["number"] == r["best"]["number"]
                changed += not same
                saved.append(r["steps_saved"])
                pruned = ", ".join(f"t{n}@{s}" for n, s in sorted(r["pruned"].items())) or "none"
                best, bp = r["best"], r["best_pruned"]
                with_pruning = f"t{bp['number']} ({bp['objective']:.4g})" if bp else "none"
                print(f"| {kind} | `{cell}` | {r['trials']} | {len(r['pruned'])}: {pruned} | t{best['number']} "
                      f"({best['objective']:.4g}) | {with_pruning} | {'yes' if same else '**no**'} | {r['steps_saved']:.0%} |")
    if saved:
        print(f"\n{changed} of {len(saved)} (pruner, cell) pairs choose another configuration; "
              f"stage-1 training steps saved: median {statistics.median(saved):.0%}, range {min(saved):.0%}-{max(saved):.0%}")


if __name__ == "__main__":
    main()
