"""The README's at-a-glance table ("In short", under Results so far) is typed by hand; every entry in it
must be what the committed report it comes from says: seeds solved and the verdict."""
import re
from pathlib import Path

import pandas as pd
import pytest

from lstm_ablation.report.render import verdict

ROOT = Path(__file__).resolve().parents[1]
# column -> (task label, the reports its plain entries come from, in order); "pick:" and "lr 0.012:" entries
# come from the checks that re-ran a cell with another trial, "10000 steps:" from the one that ran it longer
COLUMNS = {
    "adding T = 100": ("adding", ["seed_gates"]),
    "sequential digits": ("sequential_digits", ["sequential_digits"]),
    "permuted digits": ("permuted_digits", ["sequential_digits", "modern_gates"]),
    "continual Reber, hidden 64": ("continual_reber_stream", ["continual_reber"]),
    "continual Reber, hidden 8": ("continual_reber_stream", ["continual_reber_h8"]),
    "associative recall": ("associative_recall", ["associative_recall"]),
    "ListOps": ("listops", ["listops"]),
    "adding T = 200": ("adding", ["adding_long"]),
}
# check -> (its reports, the task label there: None where it is the column's own)
CHECKS = {
    "pick": (["rescore_check_adding", "rescore_check_modern"], None),
    "lr 0.012": (["reber_h8_lr_check"], None),
    "10000 steps": (["adding_long_budget10000"], "adding trainer.max_steps=10000"),
}
ENTRY = re.compile(r"(?:(pick|lr 0\.012|10000 steps): )?(\d+), (\*\*worse\*\*|\*\*better\*\*|≈)")


def table() -> tuple[list[str], list[list[str]]]:
    lines = (ROOT / "README.md").read_text().split("**In short.**", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:  # the first table after the heading, to its last row
        if not line.startswith("|"):
            break
        rows.append(line)
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return cells[0], [row for row in cells[2:]]


def found(reports: list[str], task: str, cell: str) -> tuple[int, str]:
    for report in reports:
        summary = pd.read_csv(ROOT / "reports" / report / "summary.csv").fillna({"note": ""})
        row = summary[(summary.task_label == task) & (summary.cell == cell)]
        if len(row):  # the report's own verdict column, in the table's short form
            said = verdict(row.iloc[0])
            return int(row.iloc[0].solved), "≈" if said.startswith("≈") else said.removesuffix(" *")
    raise AssertionError(f"no report of {reports} has {cell} on {task}")


def test_every_entry_of_the_at_a_glance_table_is_what_its_report_says():
    header, rows = table()
    assert header[1:] == list(COLUMNS)
    checked = 0
    for row in rows:
        cell = row[0].split(" ")[0]
        for column, entry in zip(COLUMNS, row[1:]):
            task, reports = COLUMNS[column]
            for check, solved, verdict in ENTRY.findall(entry):
                source, label = CHECKS[check] if check else (reports, None)
                assert (int(solved), verdict) == found(source, label or task, cell), f"{cell}, {column}: {entry}"
                checked += 1
    assert len(rows) == 11 and checked == 37  # every row read, none skipped


@pytest.mark.parametrize("cell,task,reports,expected", [
    ("no_input_gate", "adding", ["seed_gates"], (0, "**worse**")),
    ("coupled_gates", "adding", ["seed_gates"], (10, "**better**")),
    ("no_forget_gate", "adding", ["seed_gates"], (10, "≈")),
])
def test_the_verdict_reading_follows_the_metric_direction(cell, task, reports, expected):
    """adding's MSE is lower-is-better: a positive difference is worse, a negative one better."""
    assert found(reports, task, cell) == expected
