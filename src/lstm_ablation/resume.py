"""A job that is stopped and run again continues where it was: same step, same batches, same RNG.

- ResumableBatches: the shuffled batch order is a function of (seed, position in the stream), so a
  job resumed at step s draws exactly the batches an uninterrupted job draws from step s on.
- RNGState: the global torch and Python RNG states travel in the checkpoint (dropout, anything random).
- keep_earlier_curve: the rows of metrics.csv logged before the resume stay in it.
- SignalGuard (signals.py, which needs no torch): SIGTERM and SIGINT become JobInterrupted, so the job
  writes an `interrupted` record with the steps it reached instead of vanishing.
"""
from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from .model import TensorBatches


class ResumableBatches(Sampler[list[int]]):
    """Batches of a fresh permutation per epoch, epoch e drawn from seed (seed, e); `position` counts
    the batches handed out since step 0, and the next iteration continues from there."""

    def __init__(self, n: int, batch_size: int, seed: int, position: int = 0):
        self.n, self.batch_size, self.seed, self.position = n, batch_size, seed, position
        self.per_epoch = -(-n // batch_size)

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.position, self.per_epoch)
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        for batch in order.split(self.batch_size)[offset:]:
            self.position += 1
            yield batch.tolist()


def resumable_loader(x: Tensor, y: Tensor, batch_size: int, seed: int, position: int = 0) -> DataLoader:
    sampler = ResumableBatches(len(x), batch_size, seed, position)
    return DataLoader(TensorBatches(x, y), sampler=sampler, batch_size=None)


class RNGState(pl.Callback):
    """torch's and Python's global RNG states in the checkpoint, restored on resume (numpy's is not
    used in training, and its arrays would not pass Lightning's weights-only checkpoint loading)."""

    def state_dict(self) -> dict:
        return {"torch": torch.get_rng_state(), "python": random.getstate()}

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run a previous attempt of this job started (its run folder ends in the id)."""
    runs = sorted(Path(run_dir, "wandb").glob("*run-*-*"), key=lambda p: p.name.split("-")[-2])
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def keep_earlier_curve(csv_logger, step: int) -> None:
    """Keep in metrics.csv the rows an earlier attempt logged before `step`, where the job resumes (later
    ones are trained again). Lightning's CSV writer deletes metrics.csv when it opens a folder that is not
    empty, which a resumed job's always is: without this a resumed run's curve starts at the resume."""
    path = Path(csv_logger.log_dir) / "metrics.csv"
    keys, rows = [], []
    if path.is_file():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            keys = list(reader.fieldnames or [])
            rows = [row for row in reader if row.get("step") and int(row["step"]) < step]
    writer = csv_logger.experiment  # opening it deletes the file
    if not rows:
        return
    writer.metrics_keys = sorted(keys)  # its later rows are appended under this header (or rewritten with more keys)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=writer.metrics_keys)
        out.writeheader()
        out.writerows(rows)
    os.replace(tmp, path)
