"""GradientProbe: run lstm_ablation.probes on a fixed batch every n training steps and at the end.

Off the hot path: the probe runs between optimizer steps, under enable_grad, with autograd.grad
w.r.t. the states only, so no parameter and no .grad changes. Each probe is appended to
run_dir/probes.json (rewritten atomically, floats to 4 significant digits) and, when a W&B run is
active (online or offline), logged there as a line plot of log10 |dL/dh_t| vs t, gate histograms and
scalars; the last probe's summary numbers go into run.summary under "probe/...".
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from .probes import HIST_EDGES, SAT_HIGH, SAT_LOW, probe
from .results import write_json_atomic
from .spec import ConfigError

PROBE_FILE = "probes.json"
FORMAT = 1


def compact(value: Any) -> Any:
    """Floats to 4 significant digits; NaN/inf to null (JSON has neither)."""
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    return value


class GradientProbe(pl.Callback):
    def __init__(self, batch: tuple[Tensor, Tensor], every_n_steps: int, run_dir: str | Path,
                 enabled: bool = True, labels: dict[str, Any] | None = None):
        """batch: the fixed probe batch (x (B, T, I), y); every_n_steps: probe when global_step is a
        multiple of it (step 0 included); labels: e.g. cell/task/seed, stored for the report."""
        if not isinstance(every_n_steps, int) or isinstance(every_n_steps, bool) or every_n_steps < 1:
            raise ConfigError(f"probe.every_n_steps: got {every_n_steps!r}; allowed: a positive integer")
        self.batch, self.every_n_steps, self.enabled = batch, every_n_steps, bool(enabled)
        self.path = Path(run_dir) / PROBE_FILE
        self.labels = dict(labels or {})
        self.records: list[dict] = []
        self.seconds = 0.0   # wall time spent probing, W&B logging included: the cost

    # -- Lightning hooks

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.records:  # a resumed job has its step-0 probe from the checkpoint
            self.run_probe(trainer, pl_module)

    def state_dict(self) -> dict:  # earlier probes travel in the checkpoint, so a resumed job keeps them
        return {"records": self.records, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.records, self.seconds = list(state["records"]), state["seconds"]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.run_probe(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run_probe(trainer, pl_module, final=True)

    # -- the probe

    def run_probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, final: bool = False) -> None:
        if not self.enabled:
            return
        step = trainer.global_step
        if self.records and self.records[-1]["step"] == step:  # already probed at this step
            if final and not self.records[-1]["final"]:
                self.records[-1]["final"] = True
                self.save(pl_module)
                self.log_wandb(self.records[-1], step, final=True, repeat=True)
            return
        start = time.perf_counter()
        x, y = (t.to(pl_module.device) for t in self.batch)
        record = {"step": step, "final": final, **compact(probe(pl_module, x, y))}
        self.records.append(record)
        self.seconds += time.perf_counter() - start
        start = time.perf_counter()
        self.log_wandb(record, step, final)
        self.save(pl_module)
        self.seconds += time.perf_counter() - start  # the file on disk lags this last write by one

    def save(self, pl_module: pl.LightningModule) -> None:
        x = self.batch[0]
        last = self.records[-1]
        write_json_atomic(self.path, indent=None, data={
            "format": FORMAT, "labels": self.labels, "layer": type(pl_module.layer).__name__,
            "num_layers": len(getattr(pl_module.layer, "layers", [pl_module.layer])),  # a Stack's: probes[*].layers
            "gates": sorted(last["gates"]), "has_cell": last["grad_c"] is not None,
            "seq_len": x.shape[1], "batch_size": x.shape[0], "every_n_steps": self.every_n_steps,
            "sat_low": SAT_LOW, "sat_high": SAT_HIGH, "hist_edges": compact(HIST_EDGES.tolist()),
            "probe_seconds": round(self.seconds, 3), "probes": self.records,
        })

    def log_wandb(self, record: dict, step: int, final: bool, repeat: bool = False) -> None:
        """Only if the caller already imported wandb and started a run (online or offline).
        repeat: this probe was logged already; the end of training adds only the image and the summary."""
        wandb = sys.modules.get("wandb")
        run = getattr(wandb, "run", None) if wandb else None
        if run is None:
            return
        data: dict[str, Any] = {"trainer/global_step": step}  # Lightning's WandbLogger: the x-axis of every metric
        if not repeat:
            keys, ys = ["log10 |dL/dh_t|"], [[log10(v) for v in record["grad_h"]]]
            if record["grad_c"] is not None:
                keys.append("log10 |dL/dc_t|")
                ys.append([log10(v) for v in record["grad_c"]])
            data["probe/grad_norm_vs_t"] = wandb.plot.line_series(
                xs=list(range(len(record["grad_h"]))), ys=ys, keys=keys, title=f"gradient norm vs t (step {step})", xname="t")
            data.update({f"probe/{k}": v for k, v in record["summary"].items() if v is not None})
            edges = HIST_EDGES.numpy()
            for name, stats in record["gates"].items():
                data[f"probe/gate_{name}_hist"] = wandb.Histogram(np_histogram=(stats["hist"], edges))
        if final:
            fig = gradient_figure(record)
            data["probe/grad_norm_vs_t_image"] = wandb.Image(fig)
            fig.clf()
            run.summary.update({f"probe/{k}": v for k, v in record["summary"].items() if v is not None})
        run.log(data)


def log10(v: float | None) -> float | None:
    return math.log10(v) if v else None


def gradient_figure(record: dict):
    """|dL/dh_t| (and |dL/dc_t|) relative to the last step the loss reaches (r), on a real log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.semilogy(record["grad_h_ratio"], label="|dL/dh_t| / |dL/dh_r|")
    if record["grad_c_ratio"] is not None:
        ax.semilogy(record["grad_c_ratio"], "--", label="|dL/dc_t| / |dL/dc_r|")
    ax.set_xlabel("t")
    ax.set_title(f"gradient flow at step {record['step']}")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)  # off pyplot's figure list; savefig (what wandb.Image does) still works
    return fig
