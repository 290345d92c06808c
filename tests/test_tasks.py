"""Each generator against its stated rules: markers, what the target depends on, balance,
determinism, and the memoryless baseline measured on generated data against the formula."""
from __future__ import annotations

import gzip
import math
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_ablation.spec import ConfigError
from lstm_ablation.tasks import (associative_recall, check_task_config, continual_reber, copy_memory, listops, mnist,
                                 selective_copy, sequential_digits, temporal_order)
from lstm_ablation.tasks.base import IGNORE

# ---------------------------------------------------------------------------- shared properties

SMALL = {
    "copy_memory": dict(seq_len=5),
    "temporal_order": dict(seq_len=20),
    "continual_reber": dict(seq_len=40),
    "selective_copy": dict(seq_len=16, n_tokens=4, vocab_size=6),
    "associative_recall": dict(seq_len=16, num_kv_pairs=3, vocab_size=12),
    "listops": dict(seq_len=20, min_len=5),
}
MODULES = {"copy_memory": copy_memory, "temporal_order": temporal_order, "continual_reber": continual_reber,
           "selective_copy": selective_copy, "associative_recall": associative_recall, "listops": listops}


def splits_equal(a, b, which=("train", "val", "test")) -> bool:
    return all(torch.equal(a.splits[s][0], b.splits[s][0]) and torch.equal(a.splits[s][1], b.splits[s][1])
               for s in which)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generation_is_deterministic_and_val_test_do_not_move_with_n_train(name):
    make = MODULES[name].make
    a = make(seed=3, n_train=40, n_val=20, n_test=20, **SMALL[name])
    assert splits_equal(a, make(seed=3, n_train=40, n_val=20, n_test=20, **SMALL[name]))
    assert not splits_equal(a, make(seed=4, n_train=40, n_val=20, n_test=20, **SMALL[name]), ("train",))
    bigger = make(seed=3, n_train=80, n_val=20, n_test=20, **SMALL[name])
    assert splits_equal(a, bigger, ("val", "test"))
    assert not torch.equal(a.splits["val"][0], a.splits["test"][0])      # independent streams per split
    x, y = a.splits["train"]
    assert x.dtype == torch.float32 and x.shape[0] == 40 and x.shape[-1] == a.input_size


@pytest.mark.parametrize("name, bad, field", [
    ("copy_memory", dict(seq_len=0), "task.seq_len"),
    ("temporal_order", dict(seq_len=4), "task.seq_len"),
    ("temporal_order", dict(n_symbols=4), "task.n_symbols"),
    ("temporal_order", dict(seq_len=6, n_symbols=3), "task.seq_len"),
    ("continual_reber", dict(n_train=0), "task.n_train"),
    ("selective_copy", dict(seq_len=7, n_tokens=4), "task.seq_len"),
    ("selective_copy", dict(vocab_size=3), "task.vocab_size"),
    ("associative_recall", dict(seq_len=15), "task.seq_len"),
    ("associative_recall", dict(vocab_size=8, num_kv_pairs=4), "task.num_kv_pairs"),
    ("associative_recall", dict(power_a=0), "task.power_a"),
    ("listops", dict(seq_len=10, min_len=20), "task.seq_len"),
    ("listops", dict(max_depth=2, max_args=2, min_len=5, seq_len=10), "task.min_len"),
    ("sequential_digits", dict(permuted="yes"), "task.permuted"),
    ("sequential_digits", dict(n_train=2000), "task.n_train"),
])
def test_bad_values_are_one_line_config_errors_before_any_generation(name, bad, field):
    with pytest.raises(ConfigError) as e:
        check_task_config({"name": name, "data_seed": 0, **bad})
    assert str(e.value).startswith(field) and "allowed" in str(e.value) and "\n" not in str(e.value)


def test_unknown_key_is_rejected_by_the_make_signature():
    with pytest.raises(ConfigError, match="task.n_symbol: unknown"):
        check_task_config({"name": "temporal_order", "n_symbol": 2})


# ---------------------------------------------------------------------------- copy memory

def test_copy_memory_layout_and_targets():
    delay = 7
    tokens, y = copy_memory.generate(0, "train", 500, delay)
    assert tokens.shape == y.shape == (500, delay + 20)
    assert ((tokens[:, :10] >= 1) & (tokens[:, :10] <= 8)).all()
    assert (tokens[:, delay + 9] == 9).all() and (tokens == 9).sum(1).eq(1).all()          # one delimiter, at T+10
    rest = torch.cat([tokens[:, 10:delay + 9], tokens[:, delay + 10:]], 1)
    assert (rest == 0).all()
    assert (y[:, :delay + 10] == 0).all() and torch.equal(y[:, -10:], tokens[:, :10])      # recall in order
    freq = torch.bincount(tokens[:, :10].flatten(), minlength=9)[1:] / 5000
    assert (freq - 1 / 8).abs().max() < 0.02                                             # uniform symbols


def test_copy_memory_position_only_predictor_scores_the_formula():
    """The best memoryless predictor: each step's marginal target distribution, estimated on train."""
    delay = 30
    task = copy_memory.make(seed=0, seq_len=delay, n_train=4000, n_val=10, n_test=4000)
    _, y_train = task.splits["train"]
    freq = torch.stack([torch.bincount(y_train[:, t], minlength=9) for t in range(delay + 20)]).float()  # (T+20, 9)
    log_p = torch.log((freq + 1e-3) / (freq + 1e-3).sum(1, keepdim=True))
    x_test, y_test = task.splits["test"]
    m = task.metrics(log_p.expand(len(y_test), -1, -1), y_test)
    assert task.baseline == pytest.approx(10 * math.log(8) / (delay + 20))
    assert float(m["loss"]) == pytest.approx(task.baseline, rel=0.02)
    assert float(m["recall_accuracy"]) == pytest.approx(1 / 8, abs=0.02)
    perfect = torch.nn.functional.one_hot(y_test, 9).float() * 50
    assert float(task.metrics(perfect, y_test)["recall_accuracy"]) == 1.0
    assert task.solved(float(task.loss(perfect, y_test))) and not task.solved(task.baseline)


# ---------------------------------------------------------------------------- temporal order

@pytest.mark.parametrize("n_symbols", [2, 3])
def test_temporal_order_markers_windows_and_balance(n_symbols):
    seq_len, n = 100, 8000
    tokens, y = temporal_order.generate(0, "train", n, seq_len, n_symbols)
    assert (tokens[:, 0] == temporal_order.E).all() and (tokens[:, -1] == temporal_order.B).all()
    relevant = tokens >= temporal_order.X
    assert relevant.sum(1).eq(n_symbols).all()                                            # marker count
    middle = tokens[:, 1:-1][~relevant[:, 1:-1]]
    assert ((middle >= 2) & (middle <= 5)).all()                                         # distractors a..d only
    steps = relevant.nonzero()[:, 1].view(n, n_symbols)
    for k, (lo, hi) in enumerate(temporal_order.windows(seq_len, n_symbols)):
        assert steps[:, k].min() == lo and steps[:, k].max() == hi                       # whole window used, no more
    paper = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}[n_symbols]
    assert temporal_order.windows(100, n_symbols) == paper
    freq = torch.bincount(y, minlength=2 ** n_symbols).float() / n
    assert (freq - 1 / 2 ** n_symbols).abs().max() < 0.02                                # balanced classes
    # the class of XX..: X=0, Y=1, first symbol most significant
    bits = (tokens[relevant].view(n, n_symbols) - temporal_order.X)
    assert torch.equal(y, sum(bits[:, k] << (n_symbols - 1 - k) for k in range(n_symbols)))


def test_temporal_order_class_depends_only_on_the_relevant_symbols():
    tokens, y = temporal_order.generate(1, "train", 2000, 60, 2)
    relevant = tokens >= temporal_order.X
    shuffled = tokens.clone()
    shuffled[~relevant] = torch.randint(2, 6, (int((~relevant).sum()),))                 # redraw every distractor
    shuffled[:, 0], shuffled[:, -1] = temporal_order.E, temporal_order.B
    assert torch.equal(temporal_order.order_class(shuffled, 2), y)
    flipped = tokens.clone()
    first = relevant.float().argmax(1)
    flipped[torch.arange(2000), first] ^= 1                                              # X <-> Y (6 <-> 7)
    assert (temporal_order.order_class(flipped, 2) != y).all()


def test_temporal_order_memoryless_predictor_is_at_chance():
    task = temporal_order.make(seed=0, seq_len=30, n_symbols=3, n_train=8000, n_val=10, n_test=8000)
    majority = torch.bincount(task.splits["train"][1]).argmax()
    acc = float((task.splits["test"][1] == majority).float().mean())
    assert task.baseline == 1 / 8 and acc == pytest.approx(1 / 8, abs=0.02)
    # the last input (always B) carries nothing
    assert (task.splits["test"][0][:, -1] == task.splits["train"][0][0, -1]).all()


# ---------------------------------------------------------------------------- continual Reber

REBER = {  # the Reber graph, written as a plain successor table (node -> {symbol: node}); 'end' after E
    1: {"T": 2, "P": 3}, 2: {"S": 2, "X": 4}, 3: {"T": 3, "V": 5}, 4: {"X": 3, "S": 6}, 5: {"P": 4, "V": 6},
    6: {"E": "end"},
}


def reference_legal_sets(stream: str) -> list[set[str]]:
    """Walk a continual stream of embedded Reber strings symbol by symbol; return the legal next sets."""
    out, phase, node, branch = [], "outer_B", None, None
    for ch in stream:
        if phase == "outer_B":
            assert ch == "B"
            phase, nxt = "branch", {"T", "P"}
        elif phase == "branch":
            assert ch in "TP"
            branch, phase, nxt = ch, "inner_B", {"B"}
        elif phase == "inner_B":
            assert ch == "B"
            phase, node, nxt = "reber", 1, set(REBER[1])
        elif phase == "reber":
            assert ch in REBER[node], (stream, ch, node)
            node = REBER[node][ch]
            phase, nxt = ("close", {branch}) if node == "end" else ("reber", set(REBER[node]))
        elif phase == "close":
            assert ch == branch
            phase, nxt = "outer_E", {"E"}
        else:
            assert ch == "E"
            phase, nxt = "outer_B", {"B"}
        out.append(nxt)
    return out


def test_continual_reber_follows_the_grammar_and_targets_are_the_legal_sets():
    tokens, legal = continual_reber.generate(0, "train", 30, 200)
    for row in range(30):
        stream = "".join(continual_reber.SYMBOLS[i] for i in tokens[row])
        expected = reference_legal_sets(stream)
        got = [{continual_reber.SYMBOLS[j] for j in range(7) if legal[row, t, j]} for t in range(200)]
        assert got == expected
        assert all(stream[t + 1] in got[t] for t in range(199))


def test_continual_reber_branch_is_balanced_and_strings_are_delimited():
    tokens, legal = continual_reber.generate(0, "train", 2000, 300)
    single_tp = legal[:, :, continual_reber.T] ^ legal[:, :, continual_reber.P]
    closing = single_tp & (legal.sum(-1) == 1) & (tokens == continual_reber.E)   # after a Reber string's E
    branch_t = legal[:, :, continual_reber.T][closing].float().mean()
    assert float(branch_t) == pytest.approx(0.5, abs=0.02)
    # complete strings are found in every stream, about one per 12 symbols
    ends = continual_reber.string_ends(legal.float())
    assert int(ends.sum()) > 2000 * 300 / 14                                               # ~12 symbols a string


def test_continual_reber_baselines_measured():
    task = continual_reber.make(seed=0, seq_len=200, n_train=1000, n_val=10, n_test=1000)
    x, y = task.splits["test"]
    oracle = (y * 2 - 1) * 10                                                            # logits: legal > 0, illegal < 0
    assert float(task.metrics(oracle, y)["string_accuracy"]) == 1.0
    # knows the grammar, forgets the branch: always guesses T at the closing step
    guess = oracle.clone()
    tokens = x.argmax(-1)
    closing = (tokens == continual_reber.E) & (y[..., continual_reber.T] + y[..., continual_reber.P] == 1) \
        & (y.sum(-1) == 1)
    guess[closing] = -10
    guess[..., continual_reber.T][closing] = 10
    acc = float(task.metrics(guess, y)["string_accuracy"])
    assert task.baseline == 0.5 and acc == pytest.approx(0.5, abs=0.03)
    # truly memoryless: the legal-set frequencies given the current symbol only, thresholded at 0.5
    xt, yt = task.splits["train"]
    current = xt.argmax(-1).flatten()
    p_legal = torch.stack([yt.reshape(-1, 7)[current == s].mean(0) for s in range(7)])   # (7 symbols, 7 legal)
    memoryless = (p_legal[tokens] - 0.5) * 10
    assert float(task.metrics(memoryless, y)["string_accuracy"]) == 0.0


def test_continual_reber_string_accuracy_counts_complete_strings_only():
    # two complete strings then a cut one; one error in the second string
    stream = "BTBTXSETE" + "BPBPVVEPE" + "BTB"
    legal = reference_legal_sets(stream)
    y = torch.tensor([[[continual_reber.SYMBOLS[j] in s for j in range(7)] for s in legal]]).float()
    assert float(continual_reber.string_accuracy(torch.ones(1, len(stream), dtype=torch.bool), y)) == 1.0
    ok = torch.ones(1, len(stream), dtype=torch.bool)
    ok[0, 12] = False                                                                     # inside string 2
    assert float(continual_reber.string_accuracy(ok, y)) == 0.5
    ok = torch.ones(1, len(stream), dtype=torch.bool)
    ok[0, -1] = False                                                                     # in the cut string: not counted
    assert float(continual_reber.string_accuracy(ok, y)) == 1.0
    ok[0, 8] = False                                                                      # the E of string 1 (predicts B)
    assert float(continual_reber.string_accuracy(ok, y)) == 0.5
    assert int(continual_reber.string_ends(y).sum()) == 2


# ---------------------------------------------------------------------------- selective copy

def test_selective_copy_layout_targets_and_perturbation():
    seq_len, m, a, n = 30, 5, 8, 4000
    tokens, y = selective_copy.generate(0, "train", n, seq_len, m, a)
    context = tokens[:, :seq_len - m]
    data = (context > 0)
    assert data.sum(1).eq(m).all() and (context[data] <= a - 2).all()                    # M data tokens among noise
    assert (tokens[:, -m:] == a - 1).all() and (context != a - 1).all()                  # M markers, at the end
    assert (y[:, :-m] == IGNORE).all() and torch.equal(y[:, -m:], context[data].view(n, m))  # in order
    # target depends only on the data tokens and their order, not on where they sit
    moved = torch.zeros_like(tokens)
    moved[:, -m:] = a - 1
    moved[:, :m] = context[data].view(n, m)                                              # packed to the front
    assert torch.equal(selective_copy.recall_targets(moved, m, a), y)
    changed = tokens.clone()
    first = data.float().argmax(1)
    changed[torch.arange(n), first] = changed[torch.arange(n), first] % (a - 2) + 1       # another data token
    assert (selective_copy.recall_targets(changed, m, a)[:, -m] != y[:, -m]).all()
    # positions uniform over the L + M slots; tokens uniform over 1..A-2
    where = data.nonzero()[:, 1].float()
    assert float(where.mean()) == pytest.approx((seq_len - m - 1) / 2, abs=0.3)
    freq = torch.bincount(context[data], minlength=a - 1)[1:].float() / (n * m)
    assert (freq - 1 / (a - 2)).abs().max() < 0.01


def test_selective_copy_memoryless_baseline():
    task = selective_copy.make(seed=0, seq_len=20, n_tokens=4, vocab_size=8, n_train=4000, n_val=10, n_test=4000)
    y_train, y_test = task.splits["train"][1], task.splits["test"][1]
    majority = torch.bincount(y_train[y_train != IGNORE]).argmax()
    acc = float((y_test[y_test != IGNORE] == majority).float().mean())
    assert task.baseline == 1 / 6 and acc == pytest.approx(1 / 6, abs=0.015)


# ---------------------------------------------------------------------------- associative recall

def test_mqar_pairs_queries_and_labels():
    seq_len, k, v, n = 40, 5, 32, 2000
    tokens, y = associative_recall.generate(0, "train", n, seq_len, k, v, 0.01, True)
    keys, values = tokens[:, 0:2 * k:2], tokens[:, 1:2 * k:2]
    assert ((keys >= 1) & (keys < v // 2)).all() and ((values >= v // 2) & (values < v)).all()
    assert all(len(set(r.tolist())) == k for r in keys) and all(len(set(r.tolist())) == k for r in values)
    scored = y != IGNORE
    assert scored.sum(1).eq(k).all() and not scored[:, :2 * k].any()
    assert ((scored.nonzero()[:, 1] - 2 * k) % 2 == 0).all()                             # queries at even offsets
    for row in range(200):
        pairs = dict(zip(keys[row].tolist(), values[row].tolist()))
        queried = tokens[row][scored[row]].tolist()
        assert sorted(queried) == sorted(pairs)                                          # each key asked once
        assert y[row][scored[row]].tolist() == [pairs[q] for q in queried]               # label: its value
    # power law a = 0.01: gap 0 is far likelier than under uniform gaps
    gaps = (scored.nonzero()[:, 1] - 2 * k) // 2
    space = (seq_len - 2 * k) // 2
    assert float((gaps == 0).float().mean()) > 2 * k / space / k


def test_mqar_label_depends_only_on_the_pair_and_without_filler_rest_is_zero():
    tokens, y = associative_recall.generate(0, "train", 500, 24, 3, 16, 0.5, False)
    scored = y != IGNORE
    rest = tokens[:, 6:][~scored[:, 6:]]
    assert (rest == 0).all()                                                              # no filler: empty steps are 0
    with_filler, y2 = associative_recall.generate(0, "train", 500, 24, 3, 16, 0.5, True)
    assert torch.equal(y, y2)                                                             # filler never moves a label
    assert torch.equal(with_filler[scored], tokens[scored]) and (with_filler[:, 6:] != 0).float().mean() > 0.8


def test_mqar_memoryless_baseline():
    v = 16
    task = associative_recall.make(seed=0, seq_len=16, num_kv_pairs=3, vocab_size=v, n_train=6000, n_val=10,
                                   n_test=6000)
    (x_tr, y_tr), (x_te, y_te) = task.splits["train"], task.splits["test"]
    # best guess from the query key alone: the value most often paired with it in train
    key_tr, val_tr = x_tr.argmax(-1)[y_tr != IGNORE], y_tr[y_tr != IGNORE]
    table = torch.zeros(v, v).index_put_((key_tr, val_tr), torch.ones(len(val_tr)), accumulate=True).argmax(1)
    key_te, val_te = x_te.argmax(-1)[y_te != IGNORE], y_te[y_te != IGNORE]
    acc = float((table[key_te] == val_te).float().mean())
    assert task.baseline == 1 / 8 and acc == pytest.approx(1 / 8, abs=0.02)


# ---------------------------------------------------------------------------- ListOps

def parse(tokens: list[int]) -> tuple[int, int, int]:
    """Reference: evaluate a prefix ListOps expression recursively with LRA's to_value rules.
    Returns (value, operator depth, largest argument count)."""
    pos = 0

    def node(depth: int) -> tuple[int, int, int]:
        nonlocal pos
        t = tokens[pos]
        pos += 1
        if t < 10:
            return t, 0, 0
        args, deepest, widest = [], 0, 0
        while tokens[pos] != listops.END:
            v, d, w = node(depth + 1)
            args.append(v)
            deepest, widest = max(deepest, d), max(widest, w)
        pos += 1
        op = listops.OPERATORS[t - listops.OP_TOKEN]
        value = {"[MIN": min, "[MAX": max, "[MED": lambda a: int(np.median(a)), "[SM": lambda a: sum(a) % 10}[op](args)
        return value, deepest + 1, max(widest, len(args))

    value = node(1)
    assert pos == len(tokens)
    return value


def test_listops_values_lengths_and_structure_match_the_lra_rules():
    seq_len, min_len = 60, 20
    tokens, values = listops.generate(0, "train", 1500, seq_len, min_len, 10, 10)
    for row, value in zip(tokens.tolist(), values.tolist()):
        body = [t for t in row if t != listops.PAD]
        assert row[:seq_len - len(body)] == [listops.PAD] * (seq_len - len(body))         # left padding only
        assert min_len <= len(body) <= seq_len
        got, depth, width = parse(body)
        assert got == value and depth <= 9 and width <= 10
    # small max_depth / max_args are honoured too
    tokens, values = listops.generate(1, "train", 300, 30, 4, 3, 3)
    for row, value in zip(tokens.tolist(), values.tolist()):
        got, depth, width = parse([t for t in row if t != listops.PAD])
        assert got == value and depth <= 2 and 2 <= width <= 3


def lra_generate_tree(depth: int, max_depth: int, max_args: int, rng: random.Random):
    """LRA's recursive generate_tree, returning (value, length), for a distribution comparison."""
    if depth < max_depth and rng.random() <= listops.VALUE_P:
        n = rng.randint(2, max_args)
        subs = [lra_generate_tree(depth + 1, max_depth, max_args, rng) for _ in range(n)]
        op = rng.choice(listops.OPERATORS)
        vals = [v for v, _ in subs]
        value = {"[MIN": min, "[MAX": max, "[MED": lambda a: int(np.median(a)), "[SM": lambda a: sum(a) % 10}[op](vals)
        return value, 2 + sum(length for _, length in subs)
    return rng.randrange(10), 1


def test_listops_distribution_matches_the_recursive_lra_generator():
    # shallow trees keep the pure-Python recursion fast; the per-node rules are the same at any depth
    lo, hi, n, depth, args = 4, 30, 6000, 5, 6
    rng, ref = random.Random(0), []
    while len(ref) < n:
        value, length = lra_generate_tree(1, depth, args, rng)
        if lo <= length <= hi:
            ref.append((value, length))
    tokens, values = listops.generate(0, "train", n, hi, lo, depth, args)
    ours_len = (tokens != listops.PAD).sum(1).float()
    ref_val = torch.bincount(torch.tensor([v for v, _ in ref]), minlength=10).float() / n
    our_val = torch.bincount(values, minlength=10).float() / n
    assert (ref_val - our_val).abs().max() < 0.025
    assert float(ours_len.mean()) == pytest.approx(np.mean([length for _, length in ref]), abs=0.4)


def test_listops_majority_baseline():
    task = listops.make(seed=0, seq_len=30, min_len=10, n_train=2000, n_val=10, n_test=2000)
    y_train, y_test = task.splits["train"][1], task.splits["test"][1]
    majority = torch.bincount(y_train, minlength=10).argmax()
    assert task.baseline == pytest.approx(float((y_test == majority).float().mean()))
    assert 0.1 <= task.baseline < 0.4                                                    # skewed towards 0 and 9, not degenerate
    x = task.splits["test"][0]
    assert x.shape == (2000, 30, 15) and (x.sum(-1) <= 1).all() and (x[:, -1].sum(-1) == 1).all()


# ---------------------------------------------------------------------------- 8x8 digits

def test_sequential_digits_pixels_splits_and_fixed_permutation():
    pytest.importorskip("sklearn")
    task = sequential_digits.make(seed=0)
    x, y = task.splits["train"]
    assert x.shape == (1197, 64, 1) and task.splits["val"][0].shape[0] == 300 == task.splits["test"][0].shape[0]
    assert x.min() >= 0 and x.max() == 1.0
    other_seed = sequential_digits.make(seed=7)
    assert splits_equal(task, other_seed)                                                 # real data: seed-free splits
    from sklearn.datasets import load_digits
    digits = load_digits()
    rows = {tuple(r) for r in (digits.data / 16).round(6).tolist()}
    test_rows = [tuple(r) for r in task.splits["test"][0].squeeze(-1).double().round(decimals=6).tolist()]
    assert all(r in rows for r in test_rows)                                              # row-major pixels / 16
    permuted = sequential_digits.make(seed=5, permuted=True)
    perm = sequential_digits.permutation(64)
    assert torch.equal(permuted.splits["test"][0], task.splits["test"][0][:, perm])
    assert torch.equal(perm, sequential_digits.permutation(64)) and not torch.equal(perm, torch.arange(64))
    assert 0.05 < task.baseline < 0.2 and torch.bincount(y, minlength=10).min() > 80       # about balanced


# ---------------------------------------------------------------------------- MNIST from IDX files

def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        Path(f"{path}.gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def tiny_mnist(root: Path, side: int = 28, n_train: int = 30, n_test: int = 10, compress: bool = False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, side, side)) for s, n in (("train", n_train), ("t10k", n_test))}
    labels = {s: rng.integers(0, 10, n) for s, n in (("train", n_train), ("t10k", n_test))}
    for s in images:
        write_idx(raw / f"{s}-images-idx3-ubyte", images[s], compress)
        write_idx(raw / f"{s}-labels-idx1-ubyte", labels[s], compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_row_major_and_holds_out_validation(tmp_path, compress):
    images, labels = tiny_mnist(tmp_path, compress=compress)
    task = mnist.make(seed=0, data_dir=str(tmp_path), n_val=6)
    x_test, y_test = task.splits["test"]
    assert x_test.shape == (10, 784, 1) and task.input_size == 1
    assert torch.allclose(x_test[3, :, 0], torch.tensor(images["t10k"][3].reshape(-1) / 255.0, dtype=torch.float32))
    assert torch.equal(y_test, torch.tensor(labels["t10k"]))
    x_train, x_val = task.splits["train"][0], task.splits["val"][0]
    assert len(x_train) == 24 and len(x_val) == 6
    all_train = torch.tensor(images["train"].reshape(30, -1) / 255.0, dtype=torch.float32)
    seen = {tuple(r) for r in x_train.squeeze(-1).tolist()}
    assert not any(tuple(r) in seen for r in x_val.squeeze(-1).tolist())                  # disjoint hold-out
    assert len(seen | {tuple(r) for r in x_val.squeeze(-1).tolist()}) == len({tuple(r) for r in all_train.tolist()})
    again = mnist.make(seed=9, data_dir=str(tmp_path), n_val=6)
    assert splits_equal(task, again)                                                      # split is not the run seed's
    perm = mnist.make(seed=3, data_dir=str(tmp_path), n_val=6, permuted=True)
    assert perm.name == "permuted_mnist" and perm.solved_threshold < task.solved_threshold
    assert torch.equal(perm.splits["test"][0], x_test[:, mnist.permutation(784)])


def test_mnist_missing_files_say_what_to_place_where(tmp_path):
    with pytest.raises(ConfigError) as e:
        check_task_config({"name": "sequential_mnist", "data_dir": str(tmp_path / "nowhere")})
    message = str(e.value)
    assert message.startswith("task.data_dir") and "\n" not in message
    for name in mnist.FILES.values():
        assert name in message
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in message


def test_mnist_rejects_a_file_that_is_not_idx(tmp_path):
    tiny_mnist(tmp_path, side=4)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(ConfigError, match="not an IDX labels file"):
        mnist.make(seed=0, data_dir=str(tmp_path), n_val=4)


# ---------------------------------------------------------------------------- speed (measured, not asserted)

def test_generation_is_vectorised_for_moderately_large_sets(capsys):
    timings = {}
    for name, fn in {
        "copy_memory": lambda: copy_memory.generate(0, "train", 20000, 500),
        "temporal_order": lambda: temporal_order.generate(0, "train", 20000, 500, 3),
        "continual_reber": lambda: continual_reber.generate(0, "train", 20000, 500),
        "selective_copy": lambda: selective_copy.generate(0, "train", 20000, 500, 16, 16),
        "associative_recall": lambda: associative_recall.generate(0, "train", 20000, 500, 16, 64, 0.01, True),
        "listops": lambda: listops.generate(0, "train", 2000, 500, 250, 10, 10),
    }.items():
        start = time.perf_counter()
        tokens, _ = fn()
        timings[name] = time.perf_counter() - start
        assert tokens.shape[1] in (500, 520)                                              # copy: T + 20
    with capsys.disabled():
        print("\ngeneration seconds (20k x 500; listops 2k x [250, 500]):",
              {k: round(v, 2) for k, v in timings.items()})
