"""experiments/: one study per task family, each the seed study's variants x 10 seeds, with a header
that gives the command and the expected outcome, composing into valid jobs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from lstm_ablation.tasks import TASKS
from lstm_ablation.train import validate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
FAMILY_STUDIES = ("greff_variants", "modern_gates")  # their own variants: tests/test_family_studies.py
TUNED_STUDIES = ("seed_gates_tuned",)  # its own grid and search space: tests/test_tune.py
STUDIES = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml") if p.stem != "seed_gates" and p.stem not in FAMILY_STUDIES + TUNED_STUDIES)
SEED_VARIANTS = "vanilla,no_forget_gate,no_input_gate,sigmoid_candidate,no_output_gate,sigmoid_output,rnn"


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("data") / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, shape in (("train-images-idx3-ubyte", (8, 4, 4)), ("train-labels-idx1-ubyte", (8,)),
                        ("t10k-images-idx3-ubyte", (4, 4, 4)), ("t10k-labels-idx1-ubyte", (4,))):
        header = bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
        (raw / name).write_bytes(header + np.zeros(shape, dtype=np.uint8).tobytes())
    return raw.parents[1]


def compose_study(name: str, *overrides: str):
    with initialize_config_module(config_module="lstm_ablation.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[f"experiment={name}", *overrides], return_hydra_config=True)


@pytest.mark.parametrize("name", STUDIES)
def test_study_header_sweep_and_jobs(name, mnist_dir):
    text = (EXPERIMENTS / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    header = text.split("\nname:")[0]
    assert f"lstm-ablate -m experiment={name}" in header and "# Expect" in header and "expectation" in header
    cfg = compose_study(name)
    assert cfg.name == name
    params = cfg.hydra.sweeper.params
    assert params.cell == SEED_VARIANTS and params.seed == "0,1,2,3,4,5,6,7,8,9"  # 10 seeds per study
    tasks = str(params.get("task", cfg.task.name)).split(",")
    for task in tasks:   # every job of the sweep validates (MNIST against a tiny IDX directory)
        data = [f"task.data_dir={mnist_dir}"] if "mnist" in task else []
        validate(compose_study(name, f"task={task}", *data))


def test_every_task_family_has_a_study():
    covered = {"adding"}   # experiments/seed_gates.yaml
    for name in STUDIES:
        params = compose_study(name).hydra.sweeper.params
        covered |= set(str(params.get("task", compose_study(name).task.name)).split(","))
    assert covered == set(TASKS)
