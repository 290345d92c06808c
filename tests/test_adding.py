"""Adding problem: rules, determinism, and the memoryless baseline 1/6."""
import pytest
import torch

from lstm_ablation import ConfigError
from lstm_ablation.tasks import build_task
from lstm_ablation.tasks.adding import generate


def test_exactly_two_markers_one_per_half_and_target_is_their_sum():
    T = 51
    x, y = generate(seed=3, split="train", n=2000, seq_len=T)
    u, marker = x[..., 0], x[..., 1]
    assert x.shape == (2000, T, 2) and y.shape == (2000, 1)
    assert torch.all(marker.sum(1) == 2)
    assert torch.all(marker[:, : T // 2].sum(1) == 1) and torch.all(marker[:, T // 2:].sum(1) == 1)
    torch.testing.assert_close(y[:, 0], (u * marker).sum(1))
    assert u.min() >= 0 and u.max() <= 1


def test_target_depends_only_on_marked_values():
    x, y = generate(seed=0, split="val", n=100, seq_len=20)
    noisy = x.clone()
    unmarked = noisy[..., 1] == 0
    noisy[..., 0][unmarked] = torch.rand(int(unmarked.sum()))
    torch.testing.assert_close((noisy[..., 0] * noisy[..., 1]).sum(1, keepdim=True), y)


def test_deterministic_and_splits_independent():
    a = build_task({"name": "adding", "seq_len": 10, "n_train": 50, "n_val": 20, "n_test": 20}, seed=7)
    b = build_task({"name": "adding", "seq_len": 10, "n_train": 80, "n_val": 20, "n_test": 20}, seed=7)
    c = build_task({"name": "adding", "seq_len": 10, "n_train": 50, "n_val": 20, "n_test": 20}, seed=8)
    torch.testing.assert_close(a.splits["val"][0], b.splits["val"][0])  # val fixed when n_train changes
    assert not torch.equal(a.splits["train"][0], c.splits["train"][0])
    assert not torch.equal(a.splits["train"][0], a.splits["test"][0])


def test_memoryless_baseline_is_one_sixth():
    task = build_task({"name": "adding", "seq_len": 100, "n_train": 10, "n_val": 10, "n_test": 50000}, seed=0)
    _, y = task.splits["test"]
    mse_of_mean = task.loss(torch.ones_like(y), y).item()  # best constant prediction: E[y] = 1
    assert task.baseline == pytest.approx(1 / 6)
    assert mse_of_mean == pytest.approx(1 / 6, abs=0.005)
    assert task.metric == "loss" and not task.higher_is_better


@pytest.mark.parametrize("cfg,field", [
    ({"seq_len": 1}, "task.seq_len"), ({"seq_len": -5}, "task.seq_len"),
    ({"n_train": 0}, "task.n_train"), ({"n_val": -1}, "task.n_val"), ({"bogus": 3}, "task.bogus"),
])
def test_bad_sizes_are_refused(cfg, field):
    with pytest.raises(ConfigError) as err:
        build_task({"name": "adding", **cfg}, seed=0)
    assert str(err.value).startswith(field)
