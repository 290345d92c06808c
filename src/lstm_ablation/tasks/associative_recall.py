"""Multi-query associative recall, MQAR (Arora, Eyuboglu et al. 2023, "Zoology"; generator:
HazyResearch/zoology zoology/data/multiquery_ar.py, num_passes=1).

Vocabulary of V = task.vocab_size tokens; keys are drawn from [1, V/2), values from [V/2, V),
K = task.num_kv_pairs distinct keys and K distinct values per sequence. The sequence of length
task.seq_len = L (even) starts with the key-value block k1 v1 k2 v2 ... kK vK (2K steps). The rest is
the query region: each key is asked once, at step 2K + 2*gap, with K distinct gaps in
[0, (L - 2K) / 2) drawn without replacement with p(gap) proportional to a * (gap + 1)**(a - 1),
a = task.power_a (0.01: near queries are much likelier). The target at a query step is the value
paired with that key (next-token prediction, as Zoology labels it); every other step is IGNORE.
With random_non_queries (Zoology's default) the empty query-region steps get uniform tokens from
[0, V), so a key may also appear as unscored noise. Inputs one-hot over V (no embedding layer),
readout at every step over V classes; loss cross-entropy on the query steps.
Zoology asserts V > L for its embedding models; we drop that (a one-hot input makes V costly).
Memoryless baseline: the value paired with a key is uniform over the V - V/2 values, independent of
the key, so chance is 1/(V - V/2). Solved (our choice): query accuracy >= 0.95.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..spec import ConfigError
from .base import IGNORE, SPLITS, ClassificationTask, check_int, check_positive, one_hot, split_generator


def distinct(n: int, k: int, low: int, high: int, g: torch.Generator) -> Tensor:
    """(n, k) distinct uniform draws from [low, high) per row: the k largest of iid uniform keys."""
    return torch.rand(n, high - low, generator=g).topk(k, dim=1).indices + low


def generate(seed: int, split: str, n: int, seq_len: int, num_kv_pairs: int, vocab_size: int,
             power_a: float, random_non_queries: bool) -> tuple[Tensor, Tensor]:
    """tokens (n, L) in [0, V), targets (n, L): values at the K query steps, IGNORE elsewhere."""
    g = split_generator(seed, split)
    k, half = num_kv_pairs, vocab_size // 2
    keys = distinct(n, k, 1, half, g)                                       # (n, K)
    values = distinct(n, k, half, vocab_size, g)                            # (n, K)
    tokens = torch.zeros(n, seq_len, dtype=torch.long)
    tokens[:, 0:2 * k:2], tokens[:, 1:2 * k:2] = keys, values
    # K gaps without replacement, p ~ a k^(a-1): Gumbel-top-k is exactly successive sampling
    space = (seq_len - 2 * k) // 2
    log_p = torch.log(power_a * torch.arange(1, space + 1, dtype=torch.float64) ** (power_a - 1))
    gumbel = -torch.log(-torch.log(torch.rand(n, space, generator=g, dtype=torch.float64)))
    gaps = (log_p + gumbel).topk(k, dim=1).indices                         # (n, K)
    query = 2 * k + 2 * gaps
    tokens.scatter_(1, query, keys)
    targets = torch.full_like(tokens, IGNORE)
    targets.scatter_(1, query, values)
    if random_non_queries:
        filler = torch.randint(0, vocab_size, (n, seq_len), generator=g)
        tokens = torch.where(tokens == 0, filler, tokens)
    return tokens, targets


def check(seq_len: int, num_kv_pairs: int, vocab_size: int, power_a: float, random_non_queries: bool,
          n_train: int, n_val: int, n_test: int) -> None:
    check_int("vocab_size", vocab_size, 4, why="keys from [1, V/2), values from [V/2, V)")
    check_int("num_kv_pairs", num_kv_pairs, 1, vocab_size // 2 - 1, why="distinct keys from [1, V/2)")
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len % 2 or seq_len < 4 * num_kv_pairs:
        raise ConfigError(f"task.seq_len: got {seq_len!r}; allowed: an even integer >= 4 * num_kv_pairs = "
                          f"{4 * num_kv_pairs} (the key-value block, then room for K queries)")
    if not isinstance(power_a, (int, float)) or isinstance(power_a, bool) or not 0 < power_a <= 1:
        raise ConfigError(f"task.power_a: got {power_a!r}; allowed: a number in (0, 1] (1: uniform gaps)")
    if not isinstance(random_non_queries, bool):
        raise ConfigError(f"task.random_non_queries: got {random_non_queries!r}; allowed: true, false")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 64, num_kv_pairs: int = 4, vocab_size: int = 64, power_a: float = 0.01,
         random_non_queries: bool = True, n_train: int = 10000, n_val: int = 1000,
         n_test: int = 1000) -> ClassificationTask:
    check(seq_len, num_kv_pairs, vocab_size, power_a, random_non_queries, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {}
    for s in SPLITS:
        tokens, targets = generate(seed, s, sizes[s], seq_len, num_kv_pairs, vocab_size, power_a, random_non_queries)
        splits[s] = (one_hot(tokens, vocab_size), targets)                  # x (n, L, V), y (n, L)
    return ClassificationTask(
        name="associative_recall", input_size=vocab_size, output_size=vocab_size, readout="sequence",
        metric="accuracy", higher_is_better=True, baseline=1 / (vocab_size - vocab_size // 2),
        solved_threshold=0.95, splits=splits,
    )
