"""What the gradient probes cost: the same training run without and with GradientProbe.

    python benchmarks/probe_cost.py --steps 1000 --every 100 250 --probe-batch 128 [--wandb]

Adding problem T=100, hidden 64, batch 64, Adam, clip 1.0 (conf/config.yaml's settings), validation
off so the probe is compared with pure training time (a conservative ratio). Prints wall time per
run and the callback's own account of the seconds it spent (probe + file + W&B when --wandb).
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings

import pytorch_lightning as pl
import torch

from lstm_ablation.model import SequenceModel, batch_loader
from lstm_ablation.probe_callback import GradientProbe
from lstm_ablation.spec import variant_config
from lstm_ablation.tasks import build_task


def train_once(variant: str, steps: int, every: int | None, probe_batch: int, run_dir: str) -> tuple[float, float, float, int]:
    """Wall and CPU seconds of trainer.fit, seconds spent probing, number of probes; every=None: no callback.
    CPU time (one torch thread) is the steadier number on a machine shared with other jobs."""
    pl.seed_everything(0, verbose=False)
    task_cfg = {"name": "adding", "seq_len": 100, "n_train": 10000, "n_val": 1000, "n_test": 10, "data_seed": 0}
    task = build_task(task_cfg, seed=0)
    model = SequenceModel(variant_config(variant), task_cfg, 64, lr=1e-3, data=task)
    callbacks = []
    if every is not None:
        x, y = task.splits["val"]
        callbacks.append(GradientProbe((x[:probe_batch], y[:probe_batch]), every, run_dir, labels={"cell": variant}))
    trainer = pl.Trainer(max_steps=steps, gradient_clip_val=1.0, logger=False, callbacks=callbacks, limit_val_batches=0,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, batch_loader(*task.splits["train"], 64, shuffle=True, seed=0))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, (callbacks[0].seconds if callbacks else 0.0), (len(callbacks[0].records) if callbacks else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="vanilla")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, nargs="+", default=[100, 250])
    parser.add_argument("--probe-batch", type=int, default=128)
    parser.add_argument("--wandb", action="store_true", help="log to an offline W&B run as train.py does")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no oversubscription on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        if args.wandb:
            import wandb

            wandb.init(project="probe-cost", mode="offline", dir=tmp, settings=wandb.Settings(silent=True, console="off"))
        print(f"{args.variant} T=100 H=64 {args.steps} steps, torch threads {torch.get_num_threads()}")
        for _ in range(args.repeat):  # interleaved, so load drift on a shared machine hits both alike
            base, base_cpu, _, _ = train_once(args.variant, args.steps, None, args.probe_batch, tmp)
            print(f"  no probes:        {base:6.1f} s wall, {base_cpu:6.1f} s CPU", flush=True)
            for every in args.every:
                wall, cpu, spent, n = train_once(args.variant, args.steps, every, args.probe_batch, tmp)
                print(f"  every {every:4d} steps: {wall:6.1f} s wall ({(wall / base - 1) * 100:+5.1f} %), "
                      f"{cpu:6.1f} s CPU ({(cpu / base_cpu - 1) * 100:+5.1f} %); {n} probes took {spent:.2f} s = "
                      f"{spent / (wall - spent) * 100:.1f} % of that run's training, {spent / n * 1e3:.0f} ms each",
                      flush=True)


if __name__ == "__main__":
    main()
