"""What a job's W&B run shows beyond its metrics: the training step as the x-axis, why a run failed,
and (opt-in, `wandb.log_model=true`) the best checkpoint as a model artifact.

train.py starts the run itself and hands it to Lightning's WandbLogger(experiment=run); Lightning
declares its step metric only for runs it starts, so this declares it for ours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

STEP = "trainer/global_step"  # what WandbLogger logs beside every metric (and the probes log too)


def plot_against_training_step(run: Any) -> None:
    """Every chart's x-axis: the optimizer step, not W&B's internal `_step` (a count of log calls)."""
    run.define_metric(STEP)
    run.define_metric("*", step_metric=STEP, step_sync=True)


def record_failure(run: Any, error: str | None) -> None:
    """The dashboard's run table and overview show why the run failed (wandb_source reads it back)."""
    run.summary["error"] = error


def log_best_checkpoint(run: Any, run_dir: Path, metadata: dict[str, Any]) -> bool:
    """checkpoints/best.ckpt as a `model` artifact aliased `best`; False if there is none to log."""
    import wandb

    best = Path(run_dir) / "checkpoints" / "best.ckpt"
    if not best.is_file():
        return False
    artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata=metadata)
    artifact.add_file(str(best), name="best.ckpt")
    run.log_artifact(artifact, aliases=["best"])
    return True
