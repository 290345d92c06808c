"""Every task composes with every cell: `lstm-ablate task=<t> cell=<c>` runs a short job in-process.

Tiny sizes (a few steps, hidden 4, 2 training steps) keep the 11 x 13 grid around a minute of CPU.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from lstm_ablation.tasks import TASKS
from lstm_ablation.train import train

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CELLS = sorted(p.stem for p in (CONF_DIR / "cell").glob("*.yaml"))
TINY = {
    "adding": ["task.seq_len=8"],
    "copy_memory": ["task.seq_len=4"],
    "temporal_order": ["task.seq_len=8"],
    "continual_reber": ["task.seq_len=24"],
    "continual_reber_stream": ["task.seq_len=6", "task.train_stream_len=12", "task.val_stream_len=20",
                               "task.test_stream_len=20", "task.eval_chunk_len=8"],
    "selective_copy": ["task.seq_len=12", "task.n_tokens=3", "task.vocab_size=6"],
    "associative_recall": ["task.seq_len=12", "task.num_kv_pairs=2", "task.vocab_size=8"],
    "listops": ["task.seq_len=12", "task.min_len=4"],
    "sequential_digits": [],
    "permuted_digits": [],
    "sequential_mnist": ["task.n_val=4", "task.n_test=null"],
    "permuted_mnist": ["task.n_val=4", "task.n_test=null"],
}
COMMON = ["model.hidden_size=4", "optim.batch_size=8", "trainer.max_steps=2", "trainer.val_check_interval=2",
          "trainer.accelerator=cpu", "+trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1",
          "wandb.mode=disabled"]


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX file: magic 0x08 (unsigned byte) and the number of dims, big-endian int32 dims, raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    """A tiny MNIST in the torchvision layout: 4x4 images (16 steps), 24 train and 8 test."""
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("t10k", 8)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 4, 4)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


def test_every_task_has_a_config():
    assert sorted(TINY) == sorted(TASKS) == sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("task", sorted(TINY))
def test_task_cell_pair_runs(task, cell, tmp_path, mnist_dir):
    if "mnist" in task:   # the tiny IDX files hold 24 train and 8 test images
        sizes = [f"task.data_dir={mnist_dir}", "task.n_train=16"]
    elif task == "continual_reber_stream":   # no fixed training set: every batch row reads its own stream
        sizes = ["task.n_val=8", "task.n_test=8"]
    else:
        sizes = ["task.n_train=16", "task.n_val=8", "task.n_test=8"]
    overrides = [f"task={task}", f"cell={cell}", *COMMON, *sizes, *TINY[task]]
    with initialize_config_module(config_module="lstm_ablation.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    record = train(cfg, tmp_path, group="test")
    assert record["status"] == "completed", record["error"]
    assert record["task"] == task and record["cell"] == cell
    metric = record["metric"]
    assert math.isfinite(record["baseline"]) and math.isfinite(record["solved_threshold"])
    for key in (f"test/{metric}", "test/loss", f"val/{metric}_best"):
        assert math.isfinite(record["metrics"][key]), key
    if record["higher_is_better"]:   # accuracies and chance levels are fractions
        assert 0 <= record["metrics"][f"test/{metric}"] <= 1 and 0 <= record["baseline"] < 1
    else:
        assert record["metrics"]["test/loss"] >= 0 and record["baseline"] > 0
    assert (tmp_path / "result.json").is_file()
