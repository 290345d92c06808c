"""Selective copying (Gu & Dao 2023, "Mamba", sec. 3.1 / 4.1.1; generator: state-spaces/s4
src/dataloaders/datasets/copying.py, torch_copying_data(L, M, A, variable=True)).

Alphabet of A = task.vocab_size tokens: noise 0, data 1..A-2, marker A-1. M = task.n_tokens data
tokens drawn uniformly from 1..A-2 are written, in order, at M distinct positions drawn uniformly
(sorted) among the first L + M steps; the other L of those steps are noise 0. Then come M markers.
Total length task.seq_len = L + 2M (S4's L is seq_len - 2M). At the i-th marker step the target is
the i-th data token; every other step is unscored (IGNORE). Inputs one-hot over A; readout at every
step over A classes; loss cross-entropy on the marker steps.
Memoryless baseline: data tokens are uniform and independent of their position, so chance is
1/(A-2) per token. Mamba's setting is L = 4096, A = 16, M = 16; our CPU default is much shorter.
Solved (our choice): per-token accuracy >= 0.95.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..spec import ConfigError
from .base import IGNORE, SPLITS, ClassificationTask, check_int, check_positive, one_hot, split_generator


def recall_targets(tokens: Tensor, n_tokens: int, vocab_size: int) -> Tensor:
    """(N, L+2M) tokens -> (N, L+2M) targets: the data tokens, in order, at the marker steps."""
    n = len(tokens)
    context = tokens[:, :-n_tokens]
    data = context[(context > 0) & (context < vocab_size - 1)].view(n, n_tokens)   # row order kept
    targets = torch.full_like(tokens, IGNORE)
    targets[:, -n_tokens:] = data
    return targets


def generate(seed: int, split: str, n: int, seq_len: int, n_tokens: int, vocab_size: int) -> tuple[Tensor, Tensor]:
    """tokens (n, seq_len) in 0..A-1, targets (n, seq_len) in 1..A-2 or IGNORE."""
    g = split_generator(seed, split)
    context = seq_len - n_tokens                                            # L + M slots
    data = torch.randint(1, vocab_size - 1, (n, n_tokens), generator=g)
    # M distinct uniform positions: the M largest of iid uniform keys (a uniform random M-subset)
    where = torch.rand(n, context, generator=g).topk(n_tokens, dim=1).indices.sort(dim=1).values
    tokens = torch.zeros(n, seq_len, dtype=torch.long)
    tokens.scatter_(1, where, data)
    tokens[:, context:] = vocab_size - 1
    return tokens, recall_targets(tokens, n_tokens, vocab_size)


def check(seq_len: int, n_tokens: int, vocab_size: int, n_train: int, n_val: int, n_test: int) -> None:
    check_int("n_tokens", n_tokens, 1)
    check_int("vocab_size", vocab_size, 4, why="noise 0, at least two data tokens 1..A-2, marker A-1")
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 2 * n_tokens:
        raise ConfigError(f"task.seq_len: got {seq_len!r}; allowed: an integer >= 2 * n_tokens = {2 * n_tokens} "
                          "(L noise steps + M data + M markers)")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 64, n_tokens: int = 8, vocab_size: int = 10, n_train: int = 10000,
         n_val: int = 1000, n_test: int = 1000) -> ClassificationTask:
    check(seq_len, n_tokens, vocab_size, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {}
    for s in SPLITS:
        tokens, targets = generate(seed, s, sizes[s], seq_len, n_tokens, vocab_size)
        splits[s] = (one_hot(tokens, vocab_size), targets)                  # x (n, T, A), y (n, T)
    return ClassificationTask(
        name="selective_copy", input_size=vocab_size, output_size=vocab_size, readout="sequence",
        metric="accuracy", higher_is_better=True, baseline=1 / (vocab_size - 2), solved_threshold=0.95,
        splits=splits,
    )
