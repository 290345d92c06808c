"""Continual embedded Reber grammar on unbroken streams, trained and judged without resets (Gers,
Schmidhuber & Cummins 2000, "Learning to forget", Sec. 4).

Same grammar, targets and loss as continual_reber (whose short version cuts the stream into
independent seq_len-symbol samples, each from a zero state). Here the network is never reset inside a
stream (streams.py carries the state):
- training: each batch row reads its own stream of `train_stream_len` symbols in chunks of `seq_len`
  (truncated BPTT: gradients stop at chunk boundaries, the state does not); when the streams end
  every row gets a fresh stream from a zero state. Training streams never repeat. With
  `restart_on_error` (the default; the paper's protocol) a row whose chunk has a wrong step (StreamScore's
  criterion) also gets a fresh stream, a new string at B from a zero state, while the other rows go on;
  since Lightning fetches one chunk ahead, the restart comes at the second chunk after the error, not
  the first. A restarted row's stream still ends with the others' at the train_stream_len boundary.
- val / test: `n_val` / `n_test` rows, each one unbroken stream of `val_stream_len` / `test_stream_len`
  symbols, read in chunks of `eval_chunk_len` with the state carried; the val streams start with the
  same symbols as continual_reber's val samples of the same seed.
The paper's protocol (Sec. 4.2, as given by the notes cited in the README): training streams of 10^5
symbols, each stopped at the first error (restart_on_error; off: our streams run to their end); after
each training stream a test on 10 test streams, each run until the first error; a net that predicts
10^6 successive symbols is a "perfect solution", more than 1000 on average over the 10 a "good" one.
Hence the defaults train_stream_len=100000, n_test=10, test_stream_len=1000000.

Metrics over each whole evaluation stream (StreamScore, summed chunk by chunk):
    first_error_median / _min / _mean   symbols predicted right before a row's first error (the paper's
                                        measure); a row without error counts its whole stream
    perfect                             fraction of rows without any error in the whole stream
    string_accuracy                     fraction of the stream's strings wholly right (the headline, as in
                                        continual_reber: baseline 1/2, solved >= 0.95)
    step_accuracy                       fraction of steps right
    cell_abs_end, cell_abs_peak         mean |c| over rows and units at the stream's end, and the largest
                                        such value at any chunk end (the mechanism: without a forget
                                        gate, c can only grow); not for layers without a cell (rnn, gru)
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import check_choice, check_int, one_hot, split_generator
from .continual_reber import BASELINE, ContinualReberTask, ReberStreams, generate, string_ends

def stream_generator(seed: int, split: str, number: int) -> torch.Generator:
    """val/test: the split's own generator (as continual_reber); training stream `number`: its own seed,
    far above the split generators' seed * 3 + split."""
    if split != "train":
        return split_generator(seed, split)
    return torch.Generator().manual_seed(2**40 + (seed << 24) + number)


def cell_state(state) -> Tensor | None:
    """The cell state c in a layer's final state (h, c); None for layers without one (rnn, gru)."""
    return state[1] if isinstance(state, (tuple, list)) and len(state) == 2 else None


class OneHotStreams:
    """ReberStreams as model input: x (n, L, 7) one-hot float, y (n, L, 7) float legal sets."""

    def __init__(self, streams: ReberStreams):
        self.streams = streams

    def next(self, length: int) -> tuple[Tensor, Tensor]:
        tokens, legal = self.streams.next(length)
        return one_hot(tokens, 7), legal.float()

    def restart(self, rows: Tensor) -> None:
        self.streams.restart(rows)


class StreamScore:
    """Whole-stream metrics of one evaluation, accumulated chunk by chunk: per-row counters and one
    |c| value per chunk, never a stream-length tensor."""

    def __init__(self):
        self.seen = 0                                   # symbols of every row read so far
        self.first_error: Tensor | None = None          # (B,) position of the first wrong step; -1: none yet
        self.cell_mean: list[float] = []                # mean |c| over rows and units at each chunk end
        self.cell_max: list[float] = []                 # largest |c| at each chunk end
        self.ends_at: list[int] = []                    # stream position of each chunk end

    def update(self, pred: Tensor, y: Tensor, state=None) -> None:
        """pred (B, L, 7) logits, y (B, L, 7) legal sets; state: the layer's state after the chunk."""
        pred, y = pred.detach().cpu(), y.detach().cpu()                       # counters live on the CPU
        B, L, _ = y.shape
        ok = ((pred > 0) == (y > 0.5)).all(-1)                                # (B, L)
        if self.first_error is None:
            self.first_error = torch.full((B,), -1)
            self.open_errors = torch.zeros(B, dtype=torch.long)               # errors in the string not yet ended
            self.last_y = torch.zeros(B, 1, 7)                                 # the previous chunk's last target
            self.strings = torch.zeros(B, dtype=torch.long)
            self.strings_ok = torch.zeros(B, dtype=torch.long)
            self.steps_ok = torch.zeros(B, dtype=torch.long)
        bad = ~ok
        new = (self.first_error < 0) & bad.any(1)
        self.first_error[new] = self.seen + bad.long().argmax(1)[new]         # argmax: the first True
        # strings as continual_reber.string_accuracy, with the string still open at the chunk's start
        ends = string_ends(torch.cat([self.last_y, y], 1))[:, 1:]              # (B, L)
        errors = self.open_errors[:, None] + torch.cumsum(bad, 1)             # errors since the last end
        at_last_end = torch.cummax(errors * ends, 1).values
        before = F.pad(at_last_end, (1, 0))[:, :-1]
        self.strings += ends.sum(1)
        self.strings_ok += (ends & (errors == before)).sum(1)
        self.open_errors = errors[:, -1] - at_last_end[:, -1]
        self.steps_ok += ok.sum(1)
        self.last_y = y[:, -1:]
        self.seen += L
        c = cell_state(state)
        if c is not None:
            c = c.detach().abs()
            self.cell_mean.append(float(c.mean()))
            self.cell_max.append(float(c.max()))
            self.ends_at.append(self.seen)

    def until_first_error(self) -> Tensor:
        """(B,) symbols predicted right before each row's first error; the whole stream if none."""
        return torch.where(self.first_error < 0, self.seen, self.first_error)

    def result(self) -> dict[str, float]:
        first = self.until_first_error().double()
        out = {
            "string_accuracy": float(self.strings_ok.sum() / self.strings.sum().clamp(min=1)),
            "step_accuracy": float(self.steps_ok.sum() / (self.seen * len(first))),
            "first_error_median": float(first.quantile(0.5)),
            "first_error_min": float(first.min()),
            "first_error_mean": float(first.mean()),
            "perfect": float((self.first_error < 0).double().mean()),
        }
        if self.cell_mean:
            out.update(cell_abs_end=self.cell_mean[-1], cell_abs_peak=max(self.cell_mean))
        return out

    def summary(self) -> dict:
        """JSON-ready: the metrics, the per-row distribution and |c| over the stream."""
        return {"stream_len": self.seen, "rows": len(self.first_error), "metrics": self.result(),
                "until_first_error": self.until_first_error().tolist(),
                "cell": {"at": self.ends_at, "abs_mean": self.cell_mean, "abs_max": self.cell_max} if self.cell_mean else None}


@dataclass
class ContinualReberStreamTask(ContinualReberTask):
    seed: int = 0
    stream_len: dict[str, int] = field(default_factory=dict)    # split -> symbols per stream
    chunk_len: dict[str, int] = field(default_factory=dict)     # split -> symbols per chunk
    stream_rows: dict[str, int] = field(default_factory=dict)   # val/test -> rows (streams)
    restart_on_error: bool = False                              # Gers et al.: a training row's stream ends at its first error
    # The feedback path of restart_on_error: SequenceModel.training_step appends each trained chunk's
    # wrong rows, (B,) bool, in training order; the training StreamChunks takes them before drawing its
    # next chunk (streams.py). A queue on the task because the model and the loader share the task object
    # and the loader runs in the training process (num_workers=0).
    train_errors: deque = field(default_factory=deque, repr=False, compare=False)

    def metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Per chunk only the loss: everything else is a whole-stream metric (StreamScore)."""
        return {"loss": self.loss(pred, y)}

    def maximise(self, key: str) -> bool:
        return super().maximise(key) or key.startswith(("first_error", "perfect"))

    def report_train_errors(self, pred: Tensor, y: Tensor) -> None:
        """One trained chunk's rows with a wrong step (StreamScore's criterion), for restart_on_error."""
        ok = ((pred.detach() > 0) == (y > 0.5)).all(-1)                      # (B, L)
        self.train_errors.append((~ok).any(1).cpu())

    def open_stream(self, split: str, rows: int, number: int) -> OneHotStreams:
        return OneHotStreams(ReberStreams(stream_generator(self.seed, split, number), rows))

    def stream_score(self) -> StreamScore:
        return StreamScore()


def check(seq_len: int, train_stream_len: int, n_val: int, val_stream_len: int, n_test: int,
          test_stream_len: int, eval_chunk_len: int, restart_on_error: bool = True) -> None:
    check_choice("restart_on_error", restart_on_error, (True, False))
    check_int("seq_len", seq_len, 2, why="symbols per training chunk (truncated BPTT length)")
    check_int("train_stream_len", train_stream_len, seq_len, why="symbols per training stream, at least one chunk")
    check_int("eval_chunk_len", eval_chunk_len, 1, why="symbols per evaluation chunk")
    for key, value in (("n_val", n_val), ("n_test", n_test)):
        check_int(key, value, 1, why="evaluation streams")
    for key, value in (("val_stream_len", val_stream_len), ("test_stream_len", test_stream_len)):
        check_int(key, value, 2, why="symbols per evaluation stream")


def make(seed: int, seq_len: int = 300, train_stream_len: int = 100_000, n_val: int = 10,
         val_stream_len: int = 10_000, n_test: int = 10, test_stream_len: int = 1_000_000,
         eval_chunk_len: int = 1000, restart_on_error: bool = True) -> ContinualReberStreamTask:
    check(seq_len, train_stream_len, n_val, val_stream_len, n_test, test_stream_len, eval_chunk_len, restart_on_error)
    # The gradient probe's fixed batch: the first seq_len symbols of the val streams, from a zero state.
    tokens, legal = generate(seed, "val", n_val, min(seq_len, val_stream_len))
    return ContinualReberStreamTask(
        name="continual_reber_stream", input_size=7, output_size=7, readout="sequence",
        metric="string_accuracy", higher_is_better=True, baseline=BASELINE, solved_threshold=0.95,
        splits={"val": (one_hot(tokens, 7), legal.float())}, seed=seed,
        stream_len={"train": train_stream_len, "val": val_stream_len, "test": test_stream_len},
        chunk_len={"train": seq_len, "val": eval_chunk_len, "test": eval_chunk_len},
        stream_rows={"val": n_val, "test": n_test}, restart_on_error=restart_on_error,
    )
