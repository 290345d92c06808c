"""What every task provides: fixed train/val/test tensors, a loss, metrics and its memoryless baseline.

Shapes: x is (N, T, input_size). For `readout="last"` y is (N, output_size) for regression or (N,)
class ids; for `readout="sequence"` y is (N, T) class ids with IGNORE at unscored steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..spec import ConfigError

IGNORE = -100  # target at steps that carry no loss (F.cross_entropy's ignore_index)
SPLITS = ("train", "val", "test")


def split_generator(seed: int, split: str) -> torch.Generator:
    """One independent stream per split, so val/test stay fixed when n_train changes."""
    return torch.Generator().manual_seed(seed * len(SPLITS) + SPLITS.index(split))


def check_positive(**sizes: int) -> None:
    for key, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"task.{key}: got {value!r}; allowed: a positive integer")


def check_int(key: str, value: object, low: int, high: int | None = None, why: str = "") -> None:
    """One-line ConfigError unless low <= value (<= high); `why` says where the bound comes from."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        raise ConfigError(f"task.{key}: got {value!r}; allowed: {allowed}{f' ({why})' if why else ''}")


def check_choice(key: str, value: object, choices: tuple) -> None:
    if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
        raise ConfigError(f"task.{key}: got {value!r}; allowed: {', '.join(map(str, choices))}")


def one_hot(tokens: Tensor, size: int) -> Tensor:
    """(N, T) token ids -> (N, T, size) float; ids < 0 (left padding) become all-zero inputs."""
    x = F.one_hot(tokens.clamp(min=0), size).float()
    return x * (tokens >= 0).unsqueeze(-1)


def majority_baseline(train_y: Tensor, test_y: Tensor) -> float:
    """Accuracy on the test labels of always answering the most frequent train label (no input at all)."""
    majority = torch.bincount(train_y).argmax()
    return float((test_y == majority).float().mean())


@dataclass
class Task:
    name: str
    input_size: int
    output_size: int
    readout: str                 # "last": predict from h_T; "sequence": predict at every step
    metric: str                  # headline metric key in metrics(), reported against `baseline`
    higher_is_better: bool
    baseline: float              # value of `metric` for the best memoryless predictor
    solved_threshold: float      # `metric` beyond this counts as solved
    splits: dict[str, tuple[Tensor, Tensor]] = field(repr=False)

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"loss": self.loss(pred, y)}

    def maximise(self, key: str) -> bool:
        """Whether a larger value of metric `key` is better (accuracies; a higher-is-better headline)."""
        return "accuracy" in key or (key == self.metric and self.higher_is_better)

    def solved(self, value: float) -> bool:
        return value >= self.solved_threshold if self.higher_is_better else value <= self.solved_threshold


class RegressionTask(Task):
    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(pred, y)


class ClassificationTask(Task):
    """Cross-entropy over classes; with readout="sequence", pred is (N, T, C) and y is (N, T)."""

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1), ignore_index=IGNORE)

    def metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        scored = y != IGNORE
        correct = (pred.argmax(-1) == y) & scored
        return {"loss": self.loss(pred, y), "accuracy": correct.sum() / scored.sum().clamp(min=1)}
