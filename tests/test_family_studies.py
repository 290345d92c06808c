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


SHARED = [  # (family study, the single-task study whose jobs it shares, task)
    ("greff_variants", "sequential_digits", "sequential_digits"),
    ("greff_variants", "sequential_digits", "permuted_digits"),
    ("modern_gates", "sequential_digits", "permuted_digits"),
    ("modern_gates", "selective_copy", "selective_copy"),
    ("greff_variants", "seed_gates_tuned", "adding"),
]


@pytest.mark.parametrize("family, study, task", SHARED)
def test_a_family_study_runs_the_same_jobs_as_the_task_study_it_shares_cells_with(family, study, task):
    """Each task of a family study gets its calibrated budget (task_steps), so its vanilla runs are the
    task study's: everything a job trains with is equal, only the names and the claims differ."""
    def job(name):
        cfg = compose_study(name, f"task={task}", "cell=vanilla", "hparams_search=gates")
        out = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
        for key in ("name", "report", "task_steps"):
            out.pop(key)
        for key in cfg.tune.space:  # every trial sets the searched keys itself: their defaults are never trained
            section, _, leaf = key.partition(".")
            out[section].pop(leaf, None)
        return out

    assert job(family) == job(study)


def test_a_task_without_a_calibrated_budget_is_refused_in_one_line():
    from lstm_ablation.spec import ConfigError

    with pytest.raises(ConfigError, match=r"^task_steps: the study has no calibrated budget for task 'adding'; "
                                          r"allowed: permuted_digits, selective_copy, or set trainer.max_steps$"):
        validate(compose_study("modern_gates", "task=adding"))
    cfg = compose_study("modern_gates", "task=adding", "trainer.max_steps=7")  # an explicit budget is the user's choice
    validate(cfg)
    assert cfg.trainer.max_steps == 7
