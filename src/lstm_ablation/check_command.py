"""lstm-ablate-check: the command of a check, built from a tuned sweep.

A verdict that disagrees with a paper is chased with the one check that could explain it: the same
cell, with the settings its tuning chose, re-run on fresh seeds with one thing changed (the budget,
the learning rate, an initial bias, the sequence length, another trial of the search). Typed by hand,
such a command copies six floats and a dozen overrides from a job folder. This builds it from the
trial's own job: the overrides that job ran with (`.hydra/overrides.yaml`), less the tuning's
bookkeeping (`hparams_search`, `tune.*`, `seed`, `resume`), plus the check's seeds and changes.

    lstm-ablate-check multirun/selcopy/minlstm model.num_layers=3 --out multirun/minlstm_3_layers
    lstm-ablate-check multirun/reber_h8/no_forget_gate --trial 6 --out multirun/nfg_t6   # the runner-up

It prints the command (one shell-quoted line: `lstm-ablate-check ... | bash` runs it, or it goes into a
queue file as it is) and runs nothing; what it chose goes to stderr. Without --trial the trial is the one the sweep confirmed; without --seeds the seeds are
the sweep's confirmation seeds (as tune.py chose them), so the check's runs pair with the confirmed
ones seed by seed.
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import yaml

from .results import RESULT_FILE, ResultError, read_result
from .tune import fresh_seeds

PROG = "lstm-ablate-check"
DROPPED = ("hparams_search", "seed", "resume")   # with every key below tune.: the tuned sweep's bookkeeping
OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.\-/@]*=")


class CheckError(ValueError):
    """Input the check cannot be built from; the message is one line."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Print the command that re-runs a tuned cell's trial on fresh "
                                "seeds with one thing changed (the check of a verdict). Nothing runs.")
    p.add_argument("sweep_dir", type=Path, help="a tuned sweep (hparams_search=gates or hydra/sweeper=tune)")
    p.add_argument("changes", nargs="*", metavar="KEY=VALUE", help="what the check changes (Hydra overrides; "
                   "a key the trial set is replaced)")
    p.add_argument("--trial", type=int, help="the stage-1 trial to re-run (default: the one the sweep confirmed)")
    p.add_argument("--cell", help="the cell, where the sweep tuned several")
    p.add_argument("--task", help="the task, where the sweep tuned several")
    p.add_argument("--seeds", help="e.g. 1-10 or 1,3,5 (default: the sweep's confirmation seeds)")
    p.add_argument("--out", type=Path, help="the check's sweep dir (hydra.sweep.dir; default: Hydra's multirun/<date>/<time>)")
    return p


def parse_seeds(text: str) -> list[int]:
    """'1-10' or '1,3,5' -> [1, ..., 10] / [1, 3, 5]."""
    try:
        if re.fullmatch(r"\d+-\d+", text):
            low, high = map(int, text.split("-"))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(s) for s in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise CheckError(f"--seeds: got {text!r}; allowed: distinct integers >= 0 as FIRST-LAST (1-10) or a list (1,3,5)")
    return seeds


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def tuned_jobs(sweep_dir: Path) -> list[tuple[Path, dict]]:
    """(job dir, record) of every job of a tuned sweep that has a readable result.json."""
    if not sweep_dir.is_dir():
        raise CheckError(f"sweep_dir: {sweep_dir} is not a directory")
    jobs = []
    for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}")):
        try:
            record = read_result(path)
        except ResultError:
            continue  # a job cut before it wrote its record holds no settings to check
        if (record.get("config", {}).get("tune") or {}).get("stage"):
            jobs.append((path.parent, record))
    if not jobs:
        raise CheckError(f"sweep_dir: {sweep_dir} holds no job of a tuned sweep (no result.json with tune.stage); "
                         "allowed: a sweep run with hparams_search=gates or hydra/sweeper=tune")
    return jobs


def only(jobs: list[tuple[Path, dict]], field: str, wanted: str | None) -> list[tuple[Path, dict]]:
    """The jobs of one cell (field 'cell') or task ('task'): the one named, or the sweep's only one."""
    names = sorted({record[field] for _, record in jobs})
    if wanted is None:
        if len(names) > 1:
            raise CheckError(f"--{field}: this sweep tuned {len(names)} {field}s ({', '.join(names)}); name one")
        return jobs
    if wanted not in names:
        raise CheckError(f"--{field}: got {wanted!r}; allowed here: {', '.join(names)}")
    return [(d, r) for d, r in jobs if r[field] == wanted]


def confirmed_trial(jobs: list[tuple[Path, dict]]) -> int:
    trials = {r["config"]["tune"]["trial"] for _, r in jobs if r["config"]["tune"]["stage"] == "confirm"}
    if not trials:
        raise CheckError("--trial: the sweep has no confirmation run yet, so it has no pick; name the trial (--trial N)")
    if len(trials) > 1:
        raise CheckError(f"--trial: the sweep confirmed trials {sorted(trials)}; name one (--trial N)")
    return trials.pop()


def trial_overrides(jobs: list[tuple[Path, dict]], trial: int) -> list[str]:
    """The overrides a job of this trial ran with (its stage-1 job first; a re-score or confirmation job
    of the same trial ran the same settings on another seed)."""
    order = {"tune": 0, "rescore": 1, "confirm": 2}
    runs = sorted((order.get(r["config"]["tune"]["stage"], 3), str(d)) for d, r in jobs if r["config"]["tune"]["trial"] == trial)
    if not runs:
        known = sorted({r["config"]["tune"]["trial"] for _, r in jobs if r["config"]["tune"]["trial"] is not None})
        raise CheckError(f"--trial: got {trial}; allowed here: {', '.join(map(str, known))}")
    for _, job in runs:
        path = Path(job) / ".hydra" / "overrides.yaml"
        if path.is_file():
            return [str(o) for o in yaml.safe_load(path.read_text()) or []]
    raise CheckError(f"--trial: no job of trial {trial} kept .hydra/overrides.yaml (looked in {runs[0][1]} and its kin)")


def build(sweep_dir: Path, changes: list[str], trial: int | None = None, cell: str | None = None,
          task: str | None = None, seeds: str | None = None, out: Path | None = None) -> tuple[list[str], str]:
    """(the check's lstm-ablate argv, a line saying what it runs)."""
    for change in changes:
        if not OVERRIDE.match(change):
            raise CheckError(f"KEY=VALUE: got {change!r}; allowed: a Hydra override such as trainer.max_steps=8000")
        if key_of(change) in DROPPED or key_of(change).startswith("tune.") or key_of(change) == "hydra.sweep.dir":
            raise CheckError(f"KEY=VALUE: got {change!r}; the check sets {key_of(change)} itself "
                             "(seeds: --seeds; sweep dir: --out; it is a plain sweep, not a tuned one)")
    seed_list = parse_seeds(seeds) if seeds is not None else None
    jobs = only(only(tuned_jobs(Path(sweep_dir)), "cell", cell), "task", task)
    pick = confirmed_trial(jobs) if trial is None else trial
    settings: dict[str, str] = {}
    for override in trial_overrides(jobs, pick):
        key = key_of(override)
        if key not in DROPPED and not key.startswith("tune."):
            settings[key] = override
    for change in changes:
        settings[key_of(change)] = change  # the check's change replaces the trial's value, or adds a key
    if seed_list is None:  # the sweep's confirmation seeds, by tune.py's own rule
        tuning_seed = next((r["seed"] for _, r in jobs if r["config"]["tune"]["stage"] == "tune"), 0)
        seed_list = fresh_seeds(tuning_seed, jobs[0][1]["config"]["tune"]["confirm"]["seeds"])
    argv = ["lstm-ablate", "-m", *settings.values(), "seed=" + ",".join(map(str, seed_list))]
    if out is not None:
        argv.append(f"hydra.sweep.dir={out}")
    record = jobs[0][1]
    how = "the trial the sweep confirmed" if trial is None else "named with --trial"
    consecutive = seed_list == list(range(seed_list[0], seed_list[0] + len(seed_list)))
    named = f"{seed_list[0]}-{seed_list[-1]}" if consecutive and len(seed_list) > 1 else ",".join(map(str, seed_list))
    said = (f"{PROG}: trial {pick} ({how}) of {record['cell']} on {record['task']}, seeds {named}; "
            + (f"changed: {' '.join(changes)}" if changes else "nothing changed (a replication)"))
    return argv, said


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    try:
        command, said = build(args.sweep_dir, args.changes, args.trial, args.cell, args.task, args.seeds, args.out)
    except CheckError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        raise SystemExit(2)
    print(said, file=sys.stderr)
    print(shlex.join(command))


if __name__ == "__main__":
    main()
