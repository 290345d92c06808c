"""Copy memory (Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs", their copying_data()).

A sequence of T + 20 symbols: 10 data symbols drawn uniformly from {1..8}, then T - 1 blanks (0),
the delimiter 9 at step T + 9 (0-based; "position T + 10"), then 10 more blanks. The target is
blank (0) at the first T + 10 steps and the 10 data symbols, in order, at the last 10 steps.
task.seq_len is the delay T. Inputs are one-hot over the 10 input symbols; the readout predicts one
of 9 classes (blank, 1..8) at every step.

Loss: cross-entropy averaged over ALL T + 20 output steps (blanks included, as Arjovsky did).
Memoryless baseline: output blank at the first T + 10 steps (loss 0, the position fixes the answer)
and the uniform distribution over {1..8} at the last 10: 10 ln 8 / (T + 20).
Also reported: recall_accuracy, the argmax accuracy on the 10 recalled symbols (chance 1/8).
Solved (our choice): loss below 5% of the baseline, i.e. about 0.1 nats per recalled symbol.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import SPLITS, ClassificationTask, check_int, check_positive, one_hot, split_generator

N_DATA = 10          # symbols to remember
N_INPUT = 10         # blank 0, data 1..8, delimiter 9
N_OUTPUT = 9         # blank 0, data 1..8
DELIMITER = 9


class CopyMemoryTask(ClassificationTask):
    def metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        recall = y > 0                            # (N, T+20): the last 10 steps, the only non-blank targets
        correct = (pred.argmax(-1) == y) & recall
        return {"loss": self.loss(pred, y), "recall_accuracy": correct.sum() / recall.sum().clamp(min=1)}


def baseline(delay: int) -> float:
    return N_DATA * math.log(8) / (delay + 2 * N_DATA)


def generate(seed: int, split: str, n: int, delay: int) -> tuple[Tensor, Tensor]:
    """tokens (n, T+20) in 0..9, targets (n, T+20) in 0..8."""
    g = split_generator(seed, split)
    data = torch.randint(1, 9, (n, N_DATA), generator=g)                    # (n, 10)
    tokens = torch.zeros(n, delay + 2 * N_DATA, dtype=torch.long)
    tokens[:, :N_DATA] = data
    tokens[:, N_DATA + delay - 1] = DELIMITER
    targets = torch.zeros_like(tokens)
    targets[:, -N_DATA:] = data
    return tokens, targets


def check(seq_len: int, n_train: int, n_val: int, n_test: int) -> None:
    check_int("seq_len", seq_len, 1, why="the delay T: blanks between the data and the recall")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 100, n_train: int = 10000, n_val: int = 1000, n_test: int = 1000) -> CopyMemoryTask:
    check(seq_len, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {}
    for s in SPLITS:
        tokens, targets = generate(seed, s, sizes[s], seq_len)
        splits[s] = (one_hot(tokens, N_INPUT), targets)                     # x (n, T+20, 10), y (n, T+20)
    b = baseline(seq_len)
    return CopyMemoryTask(
        name="copy_memory", input_size=N_INPUT, output_size=N_OUTPUT, readout="sequence",
        metric="loss", higher_is_better=False, baseline=b, solved_threshold=0.05 * b, splits=splits,
    )
