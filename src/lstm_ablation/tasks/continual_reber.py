"""Continual embedded Reber grammar (Gers, Schmidhuber & Cummins 2000, "Learning to forget").

Reber grammar (Reber 1967; the graph used by Fahlman and by Hochreiter & Schmidhuber 1997), symbols
B T S X P V E, every branch taken with probability 1/2:
    R1 -T-> R2   R1 -P-> R3
    R2 -S-> R2   R2 -X-> R4
    R3 -T-> R3   R3 -V-> R5
    R4 -X-> R3   R4 -S-> R6
    R5 -P-> R4   R5 -V-> R6
a Reber string is B, a walk from R1 to R6, E. An embedded Reber string is B, then T or P (the branch,
1/2 each), a Reber string, the same branch symbol again, E. The continual task concatenates embedded
strings with no separator and no reset: one sample is a stream of task.seq_len symbols that starts
at a string boundary (its last string is usually cut off). The network's state is reset only
between samples, so for seq_len >> one string (about 12 symbols on average) it must reset itself.

Target at every step: the set of symbols that may legally come next (multi-hot over 7, BCE loss on
every step). It is a single symbol except inside the Reber walk and after B; after a Reber string's
E it is the branch symbol seen at the start of the embedded string -- the long-range dependency.
Metric string_accuracy: the fraction of embedded strings lying wholly in the sample for which every
step's prediction is exactly the legal set (legal symbols above 0.5, illegal below); the prediction
made at a string's final E (that B comes next) belongs to that string. step_accuracy: same per step.

Baseline (derived, our choice of reference level): a predictor that knows the grammar exactly but
does not remember the branch symbol gets every step right except the branch prediction, where it
can only guess: string_accuracy exactly 1/2. A truly memoryless predictor (current symbol only)
gets 0: T (or P) is followed by B after the opening and by E at the closing of the same string.
Gers et al. report that LSTM without forget gates breaks down on this stream (cell states grow
without bound); with forget gates it solves it. Solved (our choice): string_accuracy >= 0.95.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SPLITS, Task, check_int, check_positive, one_hot, split_generator

SYMBOLS = "BTSXPVE"
B, T, S, X, P, V, E = range(7)
# Grammar states: outer B, branch, inner B, Reber R1..R6, closing branch, outer E.
OUT_B, BRANCH, IN_B, R1, R2, R3, R4, R5, R6, CLOSE, OUT_E = range(11)
#        state:  (symbol, next state) for coin 0, then for coin 1 (equal pairs: no choice here)
GRAMMAR = {
    OUT_B: ((B, BRANCH), (B, BRANCH)),
    BRANCH: ((T, IN_B), (P, IN_B)),
    IN_B: ((B, R1), (B, R1)),
    R1: ((T, R2), (P, R3)),
    R2: ((S, R2), (X, R4)),
    R3: ((T, R3), (V, R5)),
    R4: ((X, R3), (S, R6)),
    R5: ((P, R4), (V, R6)),
    R6: ((E, CLOSE), (E, CLOSE)),
    CLOSE: ((-1, OUT_E), (-1, OUT_E)),     # -1: the branch symbol of this string
    OUT_E: ((E, OUT_B), (E, OUT_B)),
}
EMIT = torch.tensor([[GRAMMAR[s][c][0] for c in (0, 1)] for s in range(11)])     # (11, 2)
NEXT = torch.tensor([[GRAMMAR[s][c][1] for c in (0, 1)] for s in range(11)])     # (11, 2)
LEGAL = torch.zeros(11, 7, dtype=torch.bool)                                     # symbols a state may emit
for s, choices in GRAMMAR.items():
    for symbol, _ in choices:
        if symbol >= 0:
            LEGAL[s, symbol] = True
LEGAL_BY_BRANCH = LEGAL.repeat_interleave(2, dim=0)                            # row 2 * state + (branch is P)
LEGAL_BY_BRANCH[2 * CLOSE, T] = LEGAL_BY_BRANCH[2 * CLOSE + 1, P] = True
BASELINE = 0.5


class ContinualReberTask(Task):
    """pred: (N, T, 7) logits; y: (N, T, 7) multi-hot float of the legal next symbols."""

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(pred, y)

    def metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        step_ok = ((pred > 0) == (y > 0.5)).all(-1)                        # (N, T): sigmoid > 0.5 <=> logit > 0
        return {"loss": self.loss(pred, y), "string_accuracy": string_accuracy(step_ok, y),
                "step_accuracy": step_ok.float().mean()}


def string_ends(y: Tensor) -> Tensor:
    """(N, T, 7) targets -> (N, T) bool: the steps at a string's final E (legal {E} then legal {B})."""
    only = lambda sym: y.bool().eq(F.one_hot(torch.tensor(sym, device=y.device), 7).bool()).all(-1)  # noqa: E731
    ends = torch.zeros(y.shape[:2], dtype=torch.bool, device=y.device)
    ends[:, 1:] = only(E)[:, :-1] & only(B)[:, 1:]
    return ends


def string_accuracy(step_ok: Tensor, y: Tensor) -> Tensor:
    """Fraction of complete strings whose every step is right; strings run from one end (exclusive) to the next."""
    ends = string_ends(y)
    errors = torch.cumsum(~step_ok, dim=1)                                 # (N, T) errors up to and including t
    at_last_end = torch.cummax(errors * ends, dim=1).values                # errors up to the latest end <= t
    before = F.pad(at_last_end, (1, 0))[:, :-1]                            # ... up to the previous end, < t
    string_ok = ends & (errors == before)
    return string_ok.sum() / ends.sum().clamp(min=1)


class ReberStreams:
    """n continual streams of embedded Reber strings, read chunk by chunk: the grammar state and each
    row's branch symbol carry over from one chunk to the next, so chunks concatenate to one stream.

    The coins for a chunk of L symbols are one (L, n) draw; torch's CPU generator fills it element by
    element, so any chunking of a stream gives the same symbols as one draw of the whole length."""

    def __init__(self, generator: torch.Generator, n: int):
        self.generator = generator
        self.state = torch.full((n,), OUT_B)                              # grammar state before the next symbol
        self.branch = torch.zeros(n, dtype=torch.long)                    # branch symbol of the current string

    def next(self, length: int) -> tuple[Tensor, Tensor]:
        """The next `length` symbols of every stream: tokens (n, L) in 0..6, legal (n, L, 7) bool."""
        n = len(self.state)
        emit, step = EMIT.flatten().numpy(), NEXT.flatten().numpy()         # indexed by 2 * state + coin
        coins = torch.randint(0, 2, (length, n), generator=self.generator).numpy()
        state, branch = self.state.numpy(), self.branch.numpy()
        # time-major uint8 buffers: each step writes one contiguous row; 100 MB each for 100k x 1000.
        # The walk is sequential in t: numpy's per-call cost on small rows is a fraction of torch's.
        tokens = np.empty((length, n), dtype=np.uint8)
        states = np.empty((length, n), dtype=np.uint8)                    # grammar state after step t
        branches = np.empty((length, n), dtype=np.uint8)                  # branch symbol of the current string
        for t in range(length):
            choice = 2 * state + coins[t]
            symbol = emit[choice]
            branch = np.where(state == BRANCH, symbol, branch)
            tokens[t] = np.where(state == CLOSE, branch, symbol)
            state = step[choice]
            states[t] = state
            branches[t] = branch
        self.state, self.branch = torch.from_numpy(state), torch.from_numpy(branch)
        states, branches = torch.from_numpy(states), torch.from_numpy(branches)
        tokens = torch.from_numpy(tokens)
        # legal sets by one table lookup on (state, branch is P): only CLOSE depends on the branch
        code = 2 * states.T.long() + (branches.T == P)                     # (n, L)
        return tokens.T.long(), LEGAL_BY_BRANCH[code]                       # (n, L), (n, L, 7)

    def restart(self, rows: Tensor) -> None:
        """Rows (n,) bool start a new stream with their next symbol: a new embedded string at B (the
        string they were in is dropped). The other rows go on; the coins stay one draw for all rows."""
        self.state = torch.where(rows, OUT_B, self.state)
        self.branch = torch.where(rows, 0, self.branch)


def generate(seed: int, split: str, n: int, seq_len: int) -> tuple[Tensor, Tensor]:
    """tokens (n, T) in 0..6, legal (n, T, 7) bool: the symbols that may follow step t."""
    return ReberStreams(split_generator(seed, split), n).next(seq_len)


def check(seq_len: int, n_train: int, n_val: int, n_test: int) -> None:
    check_int("seq_len", seq_len, 2, why="symbols per continual stream")
    check_positive(n_train=n_train, n_val=n_val, n_test=n_test)


def make(seed: int, seq_len: int = 300, n_train: int = 5000, n_val: int = 500, n_test: int = 500) -> ContinualReberTask:
    check(seq_len, n_train, n_val, n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {}
    for s in SPLITS:
        tokens, legal = generate(seed, s, sizes[s], seq_len)
        splits[s] = (one_hot(tokens, 7), legal.float())                    # x (n, T, 7), y (n, T, 7)
    return ContinualReberTask(
        name="continual_reber", input_size=7, output_size=7, readout="sequence",
        metric="string_accuracy", higher_is_better=True, baseline=BASELINE, solved_threshold=0.95,
        splits=splits,
    )
