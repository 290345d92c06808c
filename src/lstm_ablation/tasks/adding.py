"""Adding problem, modern form (Le et al. 2015; Arjovsky et al. 2016).

Each step has two channels: a value u_t ~ U[0, 1] and a marker. Exactly two markers are 1, one at
a uniform position in the first half [0, T//2) and one in the second half [T//2, T). The target,
read at the last step, is u_a + u_b; loss MSE. Predicting the mean 1 without memory scores
Var(u_a + u_b) = 2 * 1/12 = 1/6.
"""
from __future__ import annotations

import torch

from .base import SPLITS, RegressionTask, check_int, check_positive, split_generator

BASELINE_MSE = 1 / 6


def generate(seed: int, split: str, n: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (n, seq_len, 2), y (n, 1)."""
    g = split_generator(seed, split)
    u = torch.rand(n, seq_len, generator=g)
    half = seq_len // 2
    a = torch.randint(0, half, (n,), generator=g)
    b = torch.randint(half, seq_len, (n,), generator=g)
    rows = torch.arange(n)
    marker = torch.zeros(n, seq_len)
    marker[rows, a] = 1.0
    marker[rows, b] = 1.0
    x = torch.stack([u, marker], dim=-1)
    y = (u[rows, a] + u[rows, b]).unsqueeze(1)
    return x, y


def check(seq_len: int, n_train: int, n_val: int, n_test: int) -> None:
    check_int("seq_len", seq_len, 2, why="one marker per half")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 100, n_train: int = 10000, n_val: int = 1000, n_test: int = 1000) -> RegressionTask:
    check(seq_len, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    return RegressionTask(
        name="adding", input_size=2, output_size=1, readout="last",
        metric="loss", higher_is_better=False, baseline=BASELINE_MSE, solved_threshold=0.01,
        splits={s: generate(seed, s, sizes[s], seq_len) for s in SPLITS},
    )
