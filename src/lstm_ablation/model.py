"""SequenceModel: a recurrent layer, a linear readout, and the task's own loss and metrics.

Plain typed arguments only; Hydra stays in train.py.
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .baselines import BASELINES
from .layer import LSTMLayer
from .spec import KINDS, ConfigError, spec_from_config
from .streams import carry_in, detach
from .tasks import Task


class Diverged(RuntimeError):
    """Training loss became NaN or infinite."""


def build_recurrent(cell: dict, input_size: int, hidden_size: int) -> nn.Module:
    """The recurrent layer a cell config names: our LSTMLayer for kind lstm, else a baseline."""
    kind = cell.get("kind", "lstm")
    if kind == "lstm":
        return LSTMLayer(spec_from_config(cell), input_size, hidden_size, impl=cell.get("impl", "auto"))
    if kind in BASELINES:
        return BASELINES[kind](input_size, hidden_size)
    raise ConfigError(f"cell.kind: got {kind!r}; allowed: {', '.join(KINDS)}")


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
    def __init__(self, layer: nn.Module, task: Task, lr: float):
        super().__init__()
        self.layer, self.task, self.lr = layer, task, lr
        self.readout = nn.Linear(layer.hidden_size, task.output_size)
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
        loss = self.task.loss(self.step(batch, "train"), y)
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

    def on_test_epoch_end(self) -> None:
        self.finish_streams("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
