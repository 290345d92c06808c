"""Validate once more when training ends, inside Lightning's own fit loop.

Without it, a run whose last step is not a multiple of `trainer.val_check_interval` tests weights
that validation never saw, and one with `max_steps < val_check_interval` has no validation at all
(no `val/loss_best`; the test uses the last weights while the report says "best"). At the last
training batch this callback sets `trainer.should_stop`, the same request EarlyStopping makes: the
training loop then runs its validation for that step (`_should_check_val_fx` honours should_stop)
and ends. The final weights compete for "best" like any other validation, so whatever keeps the
best weights (SequenceModel's in-memory copy, or a ModelCheckpoint on val/loss) sees them.
"""
from __future__ import annotations

import logging

import pytorch_lightning as pl

log = logging.getLogger("lstm_ablation")


class FinalValidation(pl.Callback):
    def __init__(self) -> None:
        self.validations = 0  # completed validation loops during fit (sanity checks excluded)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validations += 1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.should_stop or not self.is_last_batch(trainer, batch_idx):
            return
        if self.validations == 0:
            log.warning("no validation ran during training (trainer.max_steps=%s, trainer.val_check_interval=%s): "
                        "validating the final weights once, at step %d", trainer.max_steps,
                        trainer.val_check_interval, trainer.global_step)
        trainer.should_stop = True  # validation runs for this step, then fit ends as it would have

    @staticmethod
    def is_last_batch(trainer: pl.Trainer, batch_idx: int) -> bool:
        """This batch ends training: max_steps reached, or the last batch of the last epoch."""
        if trainer.max_steps is not None and trainer.max_steps > 0:
            return trainer.global_step >= trainer.max_steps
        last_epoch = trainer.max_epochs is not None and trainer.max_epochs > 0 and trainer.current_epoch + 1 >= trainer.max_epochs
        return last_epoch and batch_idx + 1 >= trainer.num_training_batches
