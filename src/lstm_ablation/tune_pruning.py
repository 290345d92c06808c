"""Pruning of tuning trials (`tune.pruner`: median | hyperband; off by default).

Each trial of stage 1 is its own process, launched through Hydra's launcher, and shares the Optuna
storage with the sweeper. This callback, in the trial's process, reopens the trial the sweeper
asked (trial number `tune.trial` of the study `tune.study_id` in that storage), reports the validation value of the
task's headline metric at every validation (step = the training step), and asks the pruner whether
to go on. A pruned trial stops as EarlyStopping stops a run (`trainer.should_stop`); train.py records
it as status "pruned" with `pruned_at_step`, and the sweeper tells Optuna TrialState.PRUNED.

The pruner compares the trial with the other trials of its cell's study at the same step, so every
trial must report at the same steps: they do as long as `trainer.val_check_interval` is not tuned.
Confirmation runs (stage 2) never get this callback: their budget is the comparison.
"""
from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger("lstm_ablation")


def build_pruner(kind: str, startup_trials: int, warmup_steps: int, first_step: int, max_steps: int) -> Any:
    """The Optuna pruner `tune.pruner` names, in training steps.

    median: a trial stops when its value at a step is worse than the median of the other trials at
    that step, once `startup_trials` trials have finished and from `warmup_steps` on.
    hyperband: budgets from the first validation (or `warmup_steps`, if later) up to max_steps, a
    third of the trials promoted at each rung (Li et al. 2018; Optuna's HyperbandPruner).
    """
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
    smallest = min(max(1, warmup_steps, first_step), max_steps)
    return optuna.pruners.HyperbandPruner(min_resource=smallest, max_resource=max_steps, reduction_factor=3)


class TrialPruning(pl.Callback):
    def __init__(self, storage_url: str, study_id: int, trial_number: int, metric: str, pruner: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        engine = {"connect_args": {"timeout": 60}} if storage_url.startswith("sqlite") else {}
        storage = optuna.storages.RDBStorage(storage_url, engine_kwargs=engine)
        # The sampler is never asked here (the sweeper asked this trial); a random one costs nothing to build.
        study = optuna.load_study(study_name=storage.get_study_name_from_id(study_id), storage=storage, pruner=pruner,
                                  sampler=optuna.samplers.RandomSampler())
        self.trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, trial_number))
        self.key = f"val/{metric}"
        self.pruned_at_step: int | None = None
        self.closed = False  # the trial was closed under us (another worker took it for dead)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        if trainer.sanity_checking or self.closed or self.key not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.key])
        try:
            self.trial.report(value, trainer.global_step)
        except UpdateFinishedTrialError:
            log.warning("tune: trial id %d was closed by another worker; this job goes on without pruning", self.trial._trial_id)
            self.closed = True
            return
        # A run already stopping (its last step, or solved) has reached its end: nothing left to prune.
        if not trainer.should_stop and self.trial.should_prune():
            self.pruned_at_step = trainer.global_step
            trainer.should_stop = True
            log.info("tune: trial %d pruned at step %d (%s = %s)", self.trial.number, trainer.global_step, self.key, value)
