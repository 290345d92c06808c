"""SequenceModel: a recurrent layer, a linear readout, and the task's own loss and metrics.

Plain typed arguments only; Hydra stays in train.py.
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .baselines import build_baseline
from .layer import LSTMLayer
from .spec import KINDS, ConfigError, spec_from_config
from .stack import Stack
from .streams import carry_in, detach
from .tasks import Task, build_task


class Diverged(RuntimeError):
    """Training loss became NaN or infinite."""


def build_recurrent(cell: dict, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> nn.Module:
    """The recurrent layer a cell config names: our LSTMLayer for kind lstm, else a baseline; with
    num_layers > 1 a Stack of them, `dropout` between layers."""
    kind = cell.get("kind", "lstm")
    if kind not in KINDS:
        raise ConfigError(f"cell.kind: got {kind!r}; allowed: {', '.join(KINDS)}")

    def one(n_in: int) -> nn.Module:
        if kind == "lstm":
            return LSTMLayer(spec_from_config(cell), n_in, hidden_size, impl=cell.get("impl", "auto"))
        return build_baseline(kind, cell, n_in, hidden_size)

    if num_layers == 1:
        return one(input_size)
    return Stack([one(input_size if k == 0 else hidden_size) for k in range(num_layers)], dropout)


class TensorBatches(Dataset):
    """Indexing with a list of indices returns a whole batch: no per-sample Python work."""

    def __init__(self, x: Tensor, y: Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(idx)
        return self.x[idx], self.y[idx]


def batch_loader(x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    data = TensorBatches(x, y)
    order = RandomSampler(data, generator=torch.Generator().manual_seed(seed)) if shuffle else SequentialSampler(data)
    return DataLoader(data, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


class SequenceModel(pl.LightningModule):
    """Built from plain config dicts, which `save_hyperparameters` stores in every checkpoint, so
    `SequenceModel.load_from_checkpoint(path)` rebuilds the trained model (and its task's data from
    task["data_seed"]). `data` passes an already generated Task and is not stored."""

    def __init__(self, cell: dict, task: dict, hidden_size: int, lr: float, num_layers: int = 1, dropout: float = 0.0,
                 data: Task | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["data"])
        task_data = data if data is not None else build_task(task, seed=task["data_seed"])
        self.layer = build_recurrent(cell, task_data.input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        self.task, self.lr = task_data, lr
        self.readout = nn.Linear(self.layer.hidden_size, task_data.output_size)
        self.best: dict[str, float] = {}          # best validation value of each metric so far
        self.best_state: dict[str, Tensor] | None = None  # weights at the best val/loss
        self.carried: dict[str, object] = {}      # continual streams: each split's state after its last chunk
        self.stream_scores: dict[str, object] = {}     # ... the whole-stream metrics of the running evaluation
        self.stream_summaries: dict[str, dict] = {}    # ... and of the last finished one (streams.StreamRecorder)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.layer(x)                    # (B, T, H)
        if self.task.readout == "last":
            out = out[:, -1]                      # (B, H)
        return self.readout(out)                  # (B, C) or (B, T, C)

    def step(self, batch: tuple[Tensor, ...], split: str) -> Tensor:
        """Predictions for (x, y), or for one chunk (x, y, fresh) of continual streams (streams.py): it starts
        from the state its rows carried out of their previous chunk, detached (truncated BPTT), zero where fresh."""
        if len(batch) == 2:
            return self(batch[0])
        x, _, fresh = batch
        out, last = self.layer(x, carry_in(self.carried.get(split), fresh))   # (B, T, H)
        self.carried[split] = detach(last)
        return self.readout(out)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        x, y = batch[:2]
        pred = self.step(batch, "train")
        loss = self.task.loss(pred, y)
        if len(batch) == 3 and getattr(self.task, "restart_on_error", False):
            # Gers et al.'s protocol: a row that erred gets a fresh stream. The training loader runs in this
            # process (num_workers=0) and reads these reports from the task object it shares (streams.py).
            self.task.report_train_errors(pred, y)
        if not torch.isfinite(loss):
            raise Diverged(f"train/loss is {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=len(x))
        return loss

    def evaluate(self, batch: tuple[Tensor, ...], split: str) -> None:
        x, y = batch[:2]
        pred = self.step(batch, split)
        for key, value in self.task.metrics(pred, y).items():
            self.log(f"{split}/{key}", value, on_step=False, on_epoch=True, batch_size=len(x))
        if len(batch) == 3:
            if batch[2].all():    # every stream starts here: a new evaluation
                self.stream_scores[split] = self.task.stream_score()
            self.stream_scores[split].update(pred, y, self.carried[split])

    def finish_streams(self, split: str) -> dict[str, float]:
        """Log the whole-stream metrics of the evaluation that just ended (continual streams only)."""
        score = self.stream_scores.pop(split, None)
        if score is None:
            return {}
        self.stream_summaries[split] = score.summary()
        metrics = {f"{split}/{key}": value for key, value in score.result().items()}
        for key, value in metrics.items():
            self.log(key, value)
        return metrics

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        streams = self.finish_streams("val")
        if self.trainer.sanity_checking:
            return
        for key, value in {**self.trainer.callback_metrics, **streams}.items():
            if not key.startswith("val/") or key.endswith("_best"):
                continue
            value = float(value)
            better = max if self.task.maximise(key.removeprefix("val/")) else min
            if key not in self.best or better(value, self.best[key]) != self.best[key]:
                self.best[key] = value
                if key == "val/loss":
                    self.best_state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        for key, value in self.best.items():
            self.log(f"{key}_best", value)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # A resumed job must keep its best-so-far values and weights: the test set is scored with them.
        checkpoint["best"], checkpoint["best_state"] = dict(self.best), self.best_state

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best, self.best_state = dict(checkpoint.get("best", {})), checkpoint.get("best_state")

    def on_test_epoch_end(self) -> None:
        self.finish_streams("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
