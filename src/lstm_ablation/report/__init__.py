"""Comparison reports over sweeps: collect (runs -> DataFrame) -> stats -> render/plots -> report dir.

`write_report(sweep_dirs, out_dir, **options)` is the entry point for code (the Hydra
on_multirun_end callback); `lstm-ablate-report` (cli.py) is the one for people.
"""
from .build import regenerate, write_report
from .collect import ReportError

__all__ = ["ReportError", "regenerate", "write_report"]
