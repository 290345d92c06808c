"""Temporal order (Hochreiter & Schmidhuber 1997, "Long short-term memory", experiments 6a and 6b).

Eight symbols, one-hot: E (start), B (end/trigger), distractors a, b, c, d, and X, Y. A sequence of
length T = task.seq_len starts with E, ends with B, and holds n_symbols relevant symbols, each X or
Y with probability 1/2, at one uniform step inside its window; every other step is a uniform
distractor. The class, read at the last step, is the order of the relevant symbols:
  6a (n_symbols=2): XX, XY, YX, YY -> 4 classes (the paper's Q, R, S, U); chance 1/4.
  6b (n_symbols=3): XXX .. YYY      -> 8 classes;                          chance 1/8.
Windows: the paper's, for T ~ 100, are t1 in [10, 20], t2 in [50, 60] (6a) and t1 in [10, 20],
t2 in [33, 43], t3 in [66, 76] (6b). We scale them with T: window [f_lo * T, f_hi * T] rounded, as
0-based step indices (T = 100 gives exactly the paper's numbers). The paper draws T from [100, 110];
we keep T fixed so every sequence ends at the same step for the last-state readout.
Classes are balanced by construction, so the memoryless baseline is chance, 1 / 2**n_symbols.
Solved (our choice): test accuracy >= 0.95 (the paper demanded every output within 0.3).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..spec import ConfigError
from .base import SPLITS, ClassificationTask, check_choice, check_positive, one_hot, split_generator

E, B, A, D, X, Y = 0, 1, 2, 5, 6, 7     # distractors a..d are 2..5
N_INPUT = 8
WINDOWS = {2: ((0.10, 0.20), (0.50, 0.60)), 3: ((0.10, 0.20), (0.33, 0.43), (0.66, 0.76))}


def windows(seq_len: int, n_symbols: int) -> list[tuple[int, int]]:
    """Inclusive 0-based step windows of the relevant symbols."""
    return [(int(lo * seq_len + 0.5), int(hi * seq_len + 0.5)) for lo, hi in WINDOWS[n_symbols]]


def windows_fit(seq_len: int, n_symbols: int) -> bool:
    """After E, before B, and disjoint, so each relevant symbol has its own window."""
    w = windows(seq_len, n_symbols)
    return w[0][0] >= 1 and w[-1][1] <= seq_len - 2 and all(w[k][1] < w[k + 1][0] for k in range(len(w) - 1))


MIN_SEQ_LEN = {n: next(t for t in range(3, 200) if all(windows_fit(u, n) for u in range(t, 400))) for n in WINDOWS}


def order_class(tokens: Tensor, n_symbols: int) -> Tensor:
    """(N, T) tokens -> (N,) class: the X/Y symbols read in order as bits X=0, Y=1, first is most significant."""
    relevant = tokens >= X
    bits = (tokens[relevant] - X).view(len(tokens), n_symbols)            # boolean indexing keeps row order
    return (bits * 2 ** torch.arange(n_symbols - 1, -1, -1)).sum(1)


def generate(seed: int, split: str, n: int, seq_len: int, n_symbols: int) -> tuple[Tensor, Tensor]:
    """tokens (n, T) in 0..7, classes (n,) in [0, 2**n_symbols)."""
    g = split_generator(seed, split)
    tokens = torch.randint(A, D + 1, (n, seq_len), generator=g)
    tokens[:, 0], tokens[:, -1] = E, B
    rows = torch.arange(n)
    for lo, hi in windows(seq_len, n_symbols):
        step = torch.randint(lo, hi + 1, (n,), generator=g)
        tokens[rows, step] = X + torch.randint(0, 2, (n,), generator=g)
    return tokens, order_class(tokens, n_symbols)


def check(seq_len: int, n_symbols: int, n_train: int, n_val: int, n_test: int) -> None:
    check_choice("n_symbols", n_symbols, (2, 3))
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < MIN_SEQ_LEN[n_symbols]:
        raise ConfigError(f"task.seq_len: got {seq_len!r}; allowed: an integer >= {MIN_SEQ_LEN[n_symbols]} "
                          f"(disjoint windows for n_symbols={n_symbols})")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 100, n_symbols: int = 2, n_train: int = 10000, n_val: int = 1000,
         n_test: int = 1000) -> ClassificationTask:
    check(seq_len, n_symbols, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {}
    for s in SPLITS:
        tokens, classes = generate(seed, s, sizes[s], seq_len, n_symbols)
        splits[s] = (one_hot(tokens, N_INPUT), classes)                    # x (n, T, 8), y (n,)
    return ClassificationTask(
        name="temporal_order", input_size=N_INPUT, output_size=2 ** n_symbols, readout="last",
        metric="accuracy", higher_is_better=True, baseline=1 / 2 ** n_symbols, solved_threshold=0.95,
        splits=splits,
    )
