"""Checkpoints of one job: <run dir>/checkpoints/{best,last}.ckpt, written atomically.

best.ckpt: the weights of the best val/loss (what the test set is scored with; load it with
`SequenceModel.load_from_checkpoint`). last.ckpt: the whole training state at the latest validation
(weights, Adam moments, loop progress, best-so-far, RNG), what a killed job resumes from. Both are
written at every validation while the job runs; `checkpoint.keep` says which stay once it has ended.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from .config_check import CHECKPOINT_KEEP

log = logging.getLogger("lstm_ablation")
CHECKPOINT_DIR = "checkpoints"
BEST, LAST = "best.ckpt", "last.ckpt"
KEEP = dict(zip(CHECKPOINT_KEEP, [(BEST, LAST), (BEST,), (LAST,), ()]))  # checkpoint.keep -> the files it keeps
# What a resumable checkpoint must hold; a file without them is half-written or not ours.
RESUME_KEYS = ("state_dict", "optimizer_states", "loops", "global_step", "hyper_parameters")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temp file in the same directory, fsync, rename: a kill mid-write leaves the previous
    checkpoint intact and never a half file under the real name."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def model_checkpoint(run_dir: Path) -> ModelCheckpoint:
    """Lightning's ModelCheckpoint: best val/loss as best.ckpt plus last.ckpt, fixed names (no -v1 on resume)."""
    return ModelCheckpoint(dirpath=Path(run_dir) / CHECKPOINT_DIR, filename="best", monitor="val/loss", mode="min",
                           save_top_k=1, save_last=True, enable_version_counter=False, auto_insert_metric_name=False)


def resumable(run_dir: Path) -> dict | None:
    """The last.ckpt to resume from, loaded and checked; None when there is none. A corrupt or
    half-written one is refused with one warning line, moved aside, and the job starts from scratch."""
    path = Path(run_dir) / CHECKPOINT_DIR / LAST
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # as Lightning will load it
        missing = [k for k in RESUME_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
    except Exception as e:  # noqa: BLE001 -- any unreadable file is refused the same way
        why = f"{type(e).__name__}: {' '.join(str(e).split())}"[:120]
        aside = path.with_name(LAST + ".corrupt")
        os.replace(path, aside)
        log.warning("checkpoint %s is unusable (%s); moved to %s, starting this job from scratch", path, why, aside.name)
        return None
    checkpoint["path"] = str(path)
    return checkpoint


def prune(run_dir: Path, keep: str) -> None:
    """Once a job has ended with a result: delete the checkpoints `keep` does not name."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return
    for name in (BEST, LAST):  # only the files ModelCheckpoint writes; a set-aside corrupt one stays
        if name not in KEEP[keep]:
            (folder / name).unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()
