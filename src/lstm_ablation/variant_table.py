"""The README's variant table, computed from conf/cell/*.yaml and the layers themselves.

    python -m lstm_ablation.variant_table            # prints the Markdown table (I=2, H=64)

Parameter counts are those of one recurrent layer built as a job builds it (the readout excluded);
tests/test_variant_table.py checks that README.md holds exactly this table.
"""
from __future__ import annotations

from . import fast
from .model import build_recurrent
from .spec import available_variants, spec_from_config, variant_config

I, H = 2, 64  # the adding problem's input size and the default hidden size


def path(cell: dict) -> str:
    """Which implementation trains the cell: the C++ layer, minLSTM's scan, or the Python loop."""
    if cell.get("kind", "lstm") != "lstm":
        return "torch"
    spec = spec_from_config(cell)
    return "scan" if spec.parallel_scan else "C++" if fast.spec_reason(spec) is None else "reference"


def rows() -> list[list[str]]:
    vanilla = sum(p.numel() for p in build_recurrent(variant_config("vanilla"), I, H).parameters())
    order = lambda name: (variant_config(name).get("kind", "lstm") != "lstm", name != "vanilla", name)
    out = []
    for name in sorted(available_variants(), key=order):
        cell = variant_config(name)
        n = sum(p.numel() for p in build_recurrent(cell, I, H).parameters())
        out.append([f"`{name}`", cell["short"], cell["change"], f"{n:,}", f"{n / vanilla:.2f}", path(cell),
                    cell.get("literature", "")])
    return out


def table() -> str:
    header = ["cell", "short", "change", f"params (I={I}, H={H})", "vs vanilla", "trains on", "in the literature"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows()])


if __name__ == "__main__":
    print(table())
