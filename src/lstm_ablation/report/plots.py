"""PNG plots for the report (learning curves, final-metric strips, heat map): next commit."""
from __future__ import annotations


def draw_all(runs, curves, summary, meta, target) -> dict:
    return {}
