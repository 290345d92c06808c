"""Continual streams: truncated backpropagation through time on unbroken streams, state carried.

A stream task (tasks/continual_reber_stream.py) has no fixed sample tensors to shuffle; each batch row
reads its own stream, chunk after chunk, and the network is never reset inside a stream:

    training      `batch_size` rows, each a stream of task.stream_len["train"] symbols read in chunks of
                  task.chunk_len["train"]; gradients stop at chunk boundaries, the state does not (it is
                  carried detached); when the streams end every row gets a fresh one (a re-draw), which
                  starts from a zero state. The data never repeats. With task.restart_on_error a row
                  also gets a fresh stream after a chunk in which it erred (StreamChunks).
    val / test    task.stream_rows[split] rows, one unbroken stream each of task.stream_len[split]
                  symbols in chunks of task.chunk_len[split]; the same streams at every validation.

The loader yields (x, y, fresh) in stream order (an IterableDataset: Lightning cannot shuffle chunks);
fresh (rows,) bool marks rows whose stream starts with this chunk. SequenceModel.step carries the
state between chunks with `carry_in` / `detach` below; the task's StreamScore sums the metrics of a
whole evaluation stream chunk by chunk, so memory stays O(rows x chunk) for any stream length.

What a stream task provides: stream_len, chunk_len (dict split -> int), stream_rows (dict val/test ->
int), open_stream(split, rows, number) -> an object whose next(length) returns the next (x, y) of
every row, and stream_score() -> an object with update(pred, y, state), result(), summary(). Optional,
for restart_on_error: the stream object's restart(rows), task.train_errors and task.report_train_errors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from .results import write_json_atomic

STREAM_FILE = "stream.json"
FORMAT = 1


class StreamChunks(IterableDataset):
    """The chunks of `rows` parallel streams of one split, in order; `redraw`: fresh streams forever.

    With task.restart_on_error (training only), a row whose chunk had a wrong step gets a fresh stream
    (zero state, a new string at B) from the next chunk this loader draws; the model reports the wrong
    rows of every trained chunk into task.train_errors. Lightning fetches one chunk ahead of the one
    it trains, so the restart lands one chunk later than the error's next chunk; a report about a
    chunk of a stream the row has already left is ignored (chunks are counted: the i-th report is
    about the i-th chunk drawn)."""

    def __init__(self, task: Any, split: str, rows: int, redraw: bool):
        self.task, self.split, self.rows, self.redraw = task, split, rows, redraw
        self.length, self.chunk = task.stream_len[split], task.chunk_len[split]
        self.restart_on_error = redraw and getattr(task, "restart_on_error", False)

    def __iter__(self):
        number, drawn, reported = 0, 0, 0               # re-draws, chunks drawn, chunks reported on
        errors = self.task.train_errors if self.restart_on_error else None
        if errors is not None:
            errors.clear()                              # reports about another iteration's chunks
        while True:
            stream = self.task.open_stream(self.split, self.rows, number)
            fresh = torch.ones(self.rows, dtype=torch.bool)
            started = torch.full((self.rows,), drawn)   # the chunk each row's stream started at
            for start in range(0, self.length, self.chunk):
                while errors:                           # restart rows that erred in their current stream
                    wrong = errors.popleft()
                    if start > 0:
                        fresh = fresh | (wrong & (started <= reported))
                    reported += 1
                if start > 0 and bool(fresh.any()):
                    stream.restart(fresh)
                    started[fresh] = drawn
                x, y = stream.next(min(self.chunk, self.length - start))
                yield x, y, fresh                 # x (rows, L, I), y (rows, L, ...), fresh (rows,)
                drawn += 1
                fresh = torch.zeros(self.rows, dtype=torch.bool)
            if not self.redraw:
                return
            number += 1


def stream_loaders(task: Any, batch_size: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """train (endless, re-drawn; batch_size rows), val and test loaders of a stream task."""
    rows = {"train": batch_size, **task.stream_rows}
    return tuple(DataLoader(StreamChunks(task, split, rows[split], redraw=split == "train"), batch_size=None)
                 for split in ("train", "val", "test"))


def carry_in(state: Any, fresh: Tensor) -> Any:
    """The state a chunk starts from: the carried one, zero in rows whose stream is fresh.

    state: None, a tensor or a tuple/list of tensors whose batch dim is -2 ((B, H) or (layers, B, H))."""
    if state is None or not bool(fresh.any()):
        return state
    if isinstance(state, (tuple, list)):
        return type(state)(carry_in(s, fresh) for s in state)
    return state * (~fresh).to(state.dtype).unsqueeze(-1)


def detach(state: Any) -> Any:
    """Truncated BPTT: the state crosses the chunk boundary, its gradient path does not."""
    if isinstance(state, (tuple, list)):
        return type(state)(detach(s) for s in state)
    return state.detach()


class StreamRecorder(pl.Callback):
    """Writes run_dir/stream.json: the whole-stream summaries (symbols until the first error per row,
    |c| at every chunk end, ...) of the latest validation and of the test, for the report."""

    def __init__(self, run_dir: str | Path, labels: dict[str, Any] | None = None):
        self.path = Path(run_dir) / STREAM_FILE
        self.labels = dict(labels or {})
        self.summaries: dict[str, dict] = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.save(pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(pl_module, "test")

    def save(self, pl_module: pl.LightningModule, split: str) -> None:
        summary = pl_module.stream_summaries.get(split)
        if summary is None:
            return
        self.summaries[split] = {"step": pl_module.global_step, **summary}
        write_json_atomic(self.path, indent=None, data={"format": FORMAT, "labels": self.labels, **self.summaries})
