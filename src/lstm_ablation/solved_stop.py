"""Stop when solved: end training once the validation headline metric has stayed past the task's
solved threshold for `patience` validations in a row (`stop_when_solved.enabled`, off by default).

A study that only asks "does this cell solve the task, and how fast?" wastes most of its budget on
seeds that solved it early. Stopping them changes what their final numbers mean: the test value of
a stopped run is that of the weights when it was solved, not after the full budget, so across such
runs compare solve rates and steps-to-threshold, not final losses (README, "Run").

The stop is the same request EarlyStopping makes (`trainer.should_stop` at the end of a
validation): the validation that completes the streak has already run and been checkpointed, so
the best weights, `val/<metric>_best` and the test of the best weights stay as for any other run.
The streak is part of the checkpoint, so a resumed job stops where an uninterrupted one would.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger("lstm_ablation")


class StopWhenSolved(pl.Callback):
    def __init__(self, metric: str, threshold: float, higher_is_better: bool, patience: int) -> None:
        self.key = f"val/{metric}"
        self.threshold, self.higher_is_better, self.patience = threshold, higher_is_better, patience
        self.streak = 0                        # validations in a row past the threshold
        self.stopped_at_step: int | None = None

    def solved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.key not in trainer.callback_metrics:
            return
        self.streak = self.streak + 1 if self.solved(float(trainer.callback_metrics[self.key])) else 0
        # Already stopping (the last step's validation, or another callback): not an early stop.
        if self.streak >= self.patience and not trainer.should_stop:
            self.stopped_at_step = trainer.global_step
            trainer.should_stop = True
            log.info("stop_when_solved: %s past %s for %d validations in a row; stopping at step %d",
                     self.key, self.threshold, self.streak, trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak = int(state_dict.get("streak", 0))
