"""README's variant table is the computed one, and its parameter counts follow the equations."""
from pathlib import Path

from lstm_ablation import variant_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_holds_the_computed_table():
    assert variant_table.table() in README.read_text(), "regenerate: python -m lstm_ablation.variant_table"


def test_parameter_counts_of_the_family():
    I, H = variant_table.I, variant_table.H
    counts = {r[0].strip("`"): int(r[3].replace(",", "")) for r in variant_table.rows()}
    gate = H * (I + H) + H                                  # W_x, W_h, b of one gate
    assert counts["vanilla"] == counts["slstm"] == 4 * gate  # sLSTM: same rows, other equations
    assert counts["fgr"] == counts["peephole"] + 9 * H * H  # V plus nine H x H gate-to-gate matrices
    assert counts["janet"] == 2 * gate                      # forget gate and candidate only
    assert counts["minlstm"] == 3 * H * (I + 1)             # f, i, candidate from x_t: no W_h at all
