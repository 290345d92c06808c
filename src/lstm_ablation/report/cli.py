"""lstm-ablate-report: sweep dirs (or W&B, or committed report data) -> a report directory.

    lstm-ablate-report multirun/2024-05-01/12-00-00-ab12cd --out reports/gates
    lstm-ablate-report --wandb me/lstm-ablation --group seed_gates --out reports/gates
    lstm-ablate-report --regenerate reports/
    lstm-ablate-report reports/seed_gates/runs/* --from-report reports/greff_variants:cell=coupled_gates,task=adding \
        --out reports/seed_gates   # runs of a committed report beside the sweeps (same protocol and budget)
    lstm-ablate-report multirun/2024-05-01/12-00-00-ab12cd --to-wandb   # the report also as a W&B run
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

PROG = "lstm-ablate-report"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Compare LSTM variants across seeds and tasks: tables, statistics, plots.")
    p.add_argument("sweep_dirs", nargs="*", type=Path, help="sweep directories (searched recursively for result.json)")
    p.add_argument("--out", type=Path, help="report directory to write (default: reports/<first sweep dir name>)")
    p.add_argument("--from-report", action="append", default=[], metavar="REPORT_DIR[:cell=NAME][,task=NAME]",
                   help="also take these runs of a committed report (its data files: records, curves, probes, "
                        "streams), where their job folders are gone; repeatable")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read runs from W&B instead of local dirs")
    p.add_argument("--group", help="with --wandb: only runs of this W&B group")
    p.add_argument("--regenerate", type=Path, metavar="REPORTS_DIR", help="rebuild every report under this dir from its committed data")
    p.add_argument("--reference", default="vanilla", help="variant the others are compared with (default: vanilla)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm correction (default: 0.05)")
    p.add_argument("--title", help="report title (default: the output dir name)")
    p.add_argument("--no-plots", action="store_true", help="tables only (faster)")
    p.add_argument("--expectations", type=Path, metavar="STUDY_YAML",
                   help="take the published expectations from this study file's report.expectations "
                        "(default: what the runs recorded; with --regenerate: what report.json keeps)")
    p.add_argument("--to-wandb", action="store_true",
                   help="with SWEEP_DIR...: also log the report as a job_type=report W&B run in the sweep's group "
                        "(summary table, report files as an artifact); offline unless the jobs ran online")
    return p


def fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def warn(line: str) -> None:
    print(f"{PROG}: warning: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    from .build import regenerate, write_collection, write_report
    from .collect import ReportError

    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    sources = [bool(args.sweep_dirs or args.from_report), bool(args.wandb), bool(args.regenerate)]
    if sum(sources) != 1:
        fail("give exactly one source: SWEEP_DIR... (and/or --from-report), --wandb ENTITY/PROJECT, or --regenerate REPORTS_DIR")
    if args.from_report and not args.sweep_dirs and not args.out:
        fail("--from-report without SWEEP_DIR...: give --out, the report directory to write")
    if args.to_wandb and not args.sweep_dirs:
        fail("--to-wandb only applies with SWEEP_DIR... (the report joins that sweep's W&B group)")
    if args.group and not args.wandb:
        fail("--group only applies with --wandb ENTITY/PROJECT")
    if not 0 < args.alpha < 1:
        fail(f"--alpha: got {args.alpha}; expected a number between 0 and 1")
    command = shlex.join([PROG, *argv])
    try:
        expectations = None
        if args.expectations:
            from ..expectations import from_study_yaml
            from ..spec import ConfigError
            try:
                expectations = from_study_yaml(args.expectations)
            except ConfigError as e:
                fail(f"--expectations: {e}")
        if args.regenerate:
            for report in regenerate(args.regenerate, plots=not args.no_plots, expectations=expectations):
                print(report / "README.md")
            return
        if args.wandb:
            from .wandb_source import collect_wandb, meta_for

            out = args.out or Path("reports") / (args.group or args.wandb.split("/")[-1]).replace("/", "-")
            collection = collect_wandb(args.wandb, args.group)
            for line in collection.warnings:
                warn(line)
            meta = meta_for(args.wandb, args.group, out, args, command)
            if expectations is not None:
                meta["expectations"] = expectations
            write_collection(collection, out, meta, plots=not args.no_plots)
        else:
            out = args.out or Path("reports") / args.sweep_dirs[0].resolve().name
            write_report(args.sweep_dirs, out, reference=args.reference, alpha=args.alpha, title=args.title,
                         command=command, plots=not args.no_plots, warn=warn, expectations=expectations,
                         from_reports=args.from_report)
            if args.to_wandb:
                from .to_wandb import log_report

                print(f"W&B report run: {log_report(out, args.sweep_dirs)}", file=sys.stderr)
    except ReportError as e:
        fail(str(e))
    except OSError as e:  # a read-only or full destination
        fail(f"{e.filename or args.out or args.regenerate}: cannot write ({e.strerror or e}); expected a writable report directory")
    print(out / "README.md")


if __name__ == "__main__":
    main()
