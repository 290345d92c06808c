"""The issue-13 studies (greff_variants, modern_gates): header, sweep, every job valid, and the
published expectations as data in the shared shape (report.expectations)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from lstm_ablation.spec import available_variants
from lstm_ablation.train import validate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CELLS = {
    "greff_variants": "peephole,vanilla,no_input_gate,no_forget_gate,no_output_gate,linear_candidate,linear_output,coupled_gates,fgr",
    "modern_gates": "vanilla,janet,slstm,minlstm,gru",
}
KEYS = {"cell", "task", "claim", "source", "tag", "expect", "value"}
EXPECT = {"solves", "fails", "worse", "not_worse", "better", "matches"}


def compose_study(name: str, *overrides: str):
    with initialize_config_module(config_module="lstm_ablation.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[f"experiment={name}", *overrides], return_hydra_config=True)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_family_study_sweeps_ten_seeds_and_every_job_validates(name):
    header = (EXPERIMENTS / f"{name}.yaml").read_text().split("\nname:")[0]
    assert f"lstm-ablate -m experiment={name}" in header and "# Expect" in header
    cfg = compose_study(name)
    params = cfg.hydra.sweeper.params
    assert params.cell == CELLS[name] and params.seed == ",".join(map(str, range(10)))
    for task in params.task.split(","):
        for cell in params.cell.split(","):
            validate(compose_study(name, f"task={task}", f"cell={cell}"))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_expectations_are_data_in_the_shared_shape(name):
    cfg = compose_study(name)
    params = cfg.hydra.sweeper.params
    expectations = OmegaConf.to_container(cfg.report.expectations)
    assert expectations and cfg.report.reference in params.cell.split(",")
    for e in expectations:
        assert KEYS - {"task"} <= set(e) <= KEYS, e
        assert e["cell"] in params.cell.split(",") and e["cell"] in available_variants()
        assert e.get("task") is None or e["task"] in params.task.split(",")
        assert e["expect"] in EXPECT and e["tag"] in ("V", "S", "U") and e["claim"] and e["source"]
        assert e["cell"] != cfg.report.reference or e["expect"] in ("solves", "fails")
