"""ListOps (Nangia & Bowman 2018), with the Long Range Arena rules (Tay et al. 2021; generator:
google-research/long-range-arena lra_benchmarks/data/listops.py).

An expression is a tree. generate_tree(depth) with the root at depth 1: below max_depth (10) a
node is an operator with probability 0.25, otherwise (and always at max_depth) a leaf digit 0..9
drawn uniformly. An operator node picks 2..max_args (10) arguments uniformly, generates each as a
subtree at depth + 1, and one of MIN, MAX, MED (int(np.median), so the mean of the two middle
values rounded down), SM (sum mod 10) uniformly. Written in prefix form: `[MAX 2 9 [MIN 4 7 ] 0 ]`.
Tokens are the 15 symbols 0..9, [MIN, [MAX, [MED, [SM, ] -- LRA's string also has parentheses,
which its loaders (e.g. S4's listops tokenizer) drop; we never emit them, and the length counts
operators, digits and ] exactly as LRA's generate_tree does. Trees are drawn until their length
lies in [task.min_len, task.seq_len] (LRA: strictly between 500 and 2000; our CPU default is
[50, 100]). The class is the value of the expression, 10-way, read at the last step; sequences are
left-padded with all-zero inputs to seq_len so every one ends at the last step. LRA keeps only
distinct trees (a set); we do not deduplicate. Generation is vectorised level by level over all
candidate trees at once (same independent per-node draws as LRA's recursion, in another order).
Memoryless baseline: always answer the majority class of the train labels, scored on the test
labels. Solved (our choice): test accuracy >= 0.9.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..spec import ConfigError
from .base import SPLITS, ClassificationTask, check_int, check_positive, majority_baseline, one_hot, split_generator

MIN, MAX, MED, SM = range(4)
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
OP_TOKEN = 10                       # token of operator k is 10 + k
END = 14                            # "]"
PAD = -1                            # left padding: an all-zero input vector
N_TOKENS = 15
VALUE_P = 0.25                      # LRA: r > VALUE_P is a leaf, so an operator with probability 0.25
TOKEN_NAMES = [str(d) for d in range(10)] + list(OPERATORS) + ["]"]


def evaluate(op: Tensor, counts: Tensor) -> Tensor:
    """op (M,), counts (M, 10) of argument values -> (M,) value of the operator."""
    present = counts > 0
    digits = torch.arange(10)
    low = present.int().argmax(1)                                            # first present digit
    high = 9 - present.flip(1).int().argmax(1)
    total = counts.sum(1)
    cum = counts.cumsum(1)                                                   # k-th smallest: first digit with cum > k
    kth = lambda k: (cum <= k.unsqueeze(1)).sum(1)                           # noqa: E731
    median = (kth((total - 1) // 2) + kth(total // 2)) // 2                  # int(np.median) of digits >= 0
    summod = (counts * digits).sum(1) % 10
    return torch.stack([low, high, median, summod], 1).gather(1, op.unsqueeze(1)).squeeze(1)


def grow(m: int, max_len: int, min_len: int, max_depth: int, max_args: int,
         g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Draw m candidate trees and keep those with min_len <= length <= max_len.

    Vectorised level by level over a flat array of all nodes at one depth (the recursion draws the
    same independent choices per node, only in another order). A tree whose known tokens plus one
    per pending argument already exceed max_len stops growing; it is rejected anyway.
    Returns tokens (k, max_len) left-padded with PAD and values (k,) of the k kept trees.
    """
    levels = []                                                              # per depth: tree, parent, op, digit, n_args
    tree = torch.arange(m)                                                   # (k,) tree of each node at this depth
    parent = torch.full((m,), -1)                                            # (k,) index of its parent one level up
    alive = torch.ones(m, dtype=torch.bool)
    known = torch.zeros(m, dtype=torch.long)                                 # tokens so far: operator 2 (op, "]"), leaf 1
    for depth in range(1, max_depth + 1):
        k = len(tree)
        is_op = torch.rand(k, generator=g) <= VALUE_P if depth < max_depth else torch.zeros(k, dtype=torch.bool)
        op = torch.where(is_op, torch.randint(0, 4, (k,), generator=g), -1)
        digit = torch.randint(0, 10, (k,), generator=g)
        n_args = torch.where(is_op, torch.randint(2, max_args + 1, (k,), generator=g), 0)
        levels.append((tree, parent, op, digit, n_args))
        known.index_add_(0, tree, 1 + is_op.long())
        pending = torch.zeros(m, dtype=torch.long).index_add_(0, tree, n_args)
        alive &= known + pending <= max_len
        parent = torch.arange(k).repeat_interleave(n_args)                  # children, grouped by parent in order
        parent = parent[alive[tree[parent]]]
        tree = tree[parent]
        if len(tree) == 0:
            break
    # an alive tree is complete and `known` is its length: keep only the nodes of accepted trees
    keep = alive & (known >= min_len) & (known <= max_len)
    kept_levels, new_index = [], None
    for tree, parent, op, digit, n_args in levels:
        mine = keep[tree]
        parent = new_index[parent[mine]] if new_index is not None else parent[mine]
        new_index = torch.cumsum(mine, 0) - 1
        kept_levels.append((tree[mine], parent, op[mine], digit[mine], n_args[mine]))
    levels = [level for level in kept_levels if len(level[0])]
    # bottom-up: subtree lengths and values
    if not levels:
        return torch.full((0, max_len), PAD, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    lengths, values = [None] * len(levels), [None] * len(levels)
    child_len = torch.zeros(len(levels[-1][0]), dtype=torch.long)
    child_counts = torch.zeros(len(levels[-1][0]), 10, dtype=torch.long)    # argument values per operator
    for d in range(len(levels) - 1, -1, -1):
        tree, parent, op, digit, n_args = levels[d]
        is_op = op >= 0
        lengths[d] = torch.where(is_op, 2 + child_len, 1)
        values[d] = digit.clone()
        values[d][is_op] = evaluate(op[is_op], child_counts[is_op])
        if d > 0:
            k_up = len(levels[d - 1][0])
            child_len = torch.zeros(k_up, dtype=torch.long).index_add_(0, parent, lengths[d])
            child_counts = torch.zeros(k_up, 10, dtype=torch.long).index_put_(
                (parent, values[d]), torch.ones_like(parent), accumulate=True)
    n_kept = len(lengths[0])                                                 # level 0: one root per kept tree, in order
    pad = max_len - lengths[0]                                               # left padding of each kept tree
    tokens = torch.full((n_kept, max_len), PAD, dtype=torch.long)
    # top-down: each node's step = parent's step + 1 + lengths of its earlier siblings
    start = torch.zeros(n_kept, dtype=torch.long)
    row_up = start_up = None                                                 # the level above: rows, steps
    for d, (tree, parent, op, digit, n_args) in enumerate(levels):
        row = torch.arange(n_kept) if d == 0 else row_up[parent]
        if d > 0:
            before = torch.cumsum(lengths[d], 0) - lengths[d]               # exclusive, over the whole level
            first = torch.searchsorted(parent, parent)                      # first sibling (parent is sorted)
            start = start_up[parent] + 1 + before - before[first]
        at = pad[row] + start
        is_op = op >= 0
        tokens[row, at] = torch.where(is_op, OP_TOKEN + op, digit)
        tokens[row[is_op], (at + lengths[d] - 1)[is_op]] = END
        row_up, start_up = row, start
    return tokens, values[0]


def max_tree_length(max_depth: int, max_args: int) -> int:
    """Longest tree the rules allow: every node above max_depth an operator with max_args arguments."""
    length = 1
    for _ in range(max_depth - 1):
        length = 2 + max_args * length
    return length


def generate(seed: int, split: str, n: int, seq_len: int, min_len: int, max_depth: int,
             max_args: int, max_rounds: int = 1000) -> tuple[Tensor, Tensor]:
    """tokens (n, seq_len) left-padded with PAD, values (n,) in 0..9; rejection sampling of whole trees."""
    g = split_generator(seed, split)
    kept_tokens, kept_values, have, tried, batch = [], [], 0, 0, max(1024, 8 * n)
    for _ in range(max_rounds):
        tokens, values = grow(batch, seq_len, min_len, max_depth, max_args, g)
        kept_tokens.append(tokens), kept_values.append(values)
        have, tried = have + len(values), tried + batch
        if have >= n:
            break
        rate = max(have, 1) / tried                                         # acceptance rate so far
        batch = min(1 << 21, max(1024, int(1.2 * (n - have) / rate)))          # caps memory (GBs at seq_len 1000)
    else:
        raise ConfigError(f"task.min_len: only {have} of {n} trees in {max_rounds} rounds fell in "
                          f"[min_len, seq_len] = [{min_len}, {seq_len}]; widen the range")
    return torch.cat(kept_tokens)[:n], torch.cat(kept_values)[:n]


def check(seq_len: int, min_len: int, max_depth: int, max_args: int, n_train: int, n_val: int, n_test: int) -> None:
    check_int("max_depth", max_depth, 1)
    check_int("max_args", max_args, 2)
    check_int("min_len", min_len, 1)
    check_int("seq_len", seq_len, min_len, why="the longest expression; must be >= task.min_len")
    longest = max_tree_length(max_depth, max_args)
    if min_len > longest:
        raise ConfigError(f"task.min_len: got {min_len}; allowed: at most {longest}, the longest tree with "
                          f"max_depth={max_depth}, max_args={max_args}")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 100, min_len: int = 50, max_depth: int = 10, max_args: int = 10,
         n_train: int = 10000, n_val: int = 1000, n_test: int = 1000) -> ClassificationTask:
    check(seq_len, min_len, max_depth, max_args, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {}
    for s in SPLITS:
        tokens, values = generate(seed, s, sizes[s], seq_len, min_len, max_depth, max_args)
        splits[s] = (one_hot(tokens, N_TOKENS), values)                     # x (n, T, 15), y (n,)
    return ClassificationTask(
        name="listops", input_size=N_TOKENS, output_size=10, readout="last",
        metric="accuracy", higher_is_better=True,
        baseline=majority_baseline(splits["train"][1], splits["test"][1]), solved_threshold=0.9,
        splits=splits,
    )
