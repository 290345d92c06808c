"""The Hydra entry point: compose -> validate -> build -> fit -> test -> write result.json.

    lstm-ablate cell=no_forget_gate task.seq_len=200 seed=3
    lstm-ablate -m cell=vanilla,no_forget_gate seed=0,1,2
    lstm-ablate -m experiment=seed_gates

This is the only module that knows Hydra; `train(cfg, run_dir)` works on any composed config.
"""
from __future__ import annotations

import logging
import math
import secrets
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .results import flatten, write_result
from .spec import KINDS, ConfigError, available_variants, spec_from_config

log = logging.getLogger("lstm_ablation")
CONF = "pkg://lstm_ablation.conf"
WANDB_MODES = ("offline", "online", "disabled")
# Cached in the config itself, so every job of a sweep (even on another SLURM node) sees the same
# value: two sweeps started in the same second still get different directories.
OmegaConf.register_new_resolver("uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)


# ---------------------------------------------------------------------------- validation

def validate(cfg: DictConfig) -> None:
    """Every check that needs no data or training; raises ConfigError (one line) on bad input."""
    from .tasks import check_task_config

    cell = OmegaConf.to_container(cfg.cell, resolve=True)
    kind = cell.get("kind", "lstm")
    if kind not in KINDS:
        raise ConfigError(f"cell.kind: got {kind!r}; allowed: {', '.join(KINDS)}")
    if kind == "lstm":
        spec_from_config(cell)
    check_task_config(OmegaConf.to_container(cfg.task, resolve=True))  # each task checks its own sizes

    def positive_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    checks = {
        "model.hidden_size": (cfg.model.hidden_size, "a positive integer", positive_int),
        "num_threads": (cfg.num_threads, "null or a positive integer", lambda v: v is None or positive_int(v)),
        "optim.batch_size": (cfg.optim.batch_size, "a positive integer", positive_int),
        "optim.lr": (cfg.optim.lr, "a positive number", lambda v: isinstance(v, (int, float)) and v > 0 and math.isfinite(v)),
        "wandb.mode": (cfg.wandb.mode, ", ".join(WANDB_MODES), lambda v: v in WANDB_MODES),
        "probe.enabled": (cfg.probe.enabled, "true, false", lambda v: isinstance(v, bool)),
        "probe.every_n_steps": (cfg.probe.every_n_steps, "a positive integer", positive_int),
        "probe.batch_size": (cfg.probe.batch_size, "a positive integer", positive_int),
    }
    for field, (value, allowed, ok) in checks.items():
        if not ok(value):
            raise ConfigError(f"{field}: got {value!r}; allowed: {allowed}")


# ---------------------------------------------------------------------------- the job

def git_state() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, check=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def start_wandb(cfg: DictConfig, run_dir: Path, group: str, config: dict):
    if cfg.wandb.mode == "disabled":
        return None
    import wandb

    run = wandb.init(
        project=cfg.wandb.project, entity=cfg.wandb.entity, mode=cfg.wandb.mode, dir=str(run_dir),
        group=group, job_type=cfg.cell.name, tags=[cfg.cell.name, cfg.task.name],
        name=f"{cfg.cell.name}-{cfg.task.name}-s{cfg.seed}", config=flatten(config),
        settings=wandb.Settings(silent=True, console="off"),
    )
    # The dashboard's run table shows each metric's summary: best validation, not the last value.
    run.define_metric("val/loss", summary="min")
    run.define_metric("val/accuracy", summary="max")
    return run


def train(cfg: DictConfig, run_dir: Path, group: str | None = None) -> dict[str, Any]:
    """Run one job and write its result.json into run_dir; returns the record.

    A crash or divergence is recorded (status failed/diverged), never raised, so a sweep goes on.
    ConfigError is raised before any work starts.
    """
    validate(cfg)
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    from .model import Diverged, SequenceModel, batch_loader, build_recurrent
    from .probe_callback import GradientProbe
    from .tasks import build_task

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Lightning's start-up chatter (GPU/TPU lines, tips, "logs directory not empty") is noise in a sweep.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(directory .* exists and is not empty|LeafSpec|does not have many workers).*")
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    record: dict[str, Any] = {
        "status": "failed", "cell": cfg.cell.name, "short": cfg.cell.get("short"), "change": cfg.cell.get("change"),
        "task": cfg.task.name, "seed": cfg.seed, "metrics": {}, "baseline": None, "params": None,
        "duration_s": 0.0, "git": git_state(), "config": config, "error": None,
    }
    start = time.perf_counter()
    run = start_wandb(cfg, run_dir, group or cfg.name, config)
    try:
        if cfg.num_threads:  # small cells are faster on 1 thread; parallel jobs should not oversubscribe
            torch.set_num_threads(cfg.num_threads)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        task = build_task(config["task"], seed=cfg.task.data_seed)
        record.update(baseline=task.baseline, metric=task.metric, higher_is_better=task.higher_is_better,
                      solved_threshold=task.solved_threshold)
        layer = build_recurrent(config["cell"], task.input_size, cfg.model.hidden_size)
        model = SequenceModel(layer, task, lr=cfg.optim.lr)
        record["params"] = sum(p.numel() for p in model.parameters())
        record["params_recurrent"] = sum(p.numel() for p in layer.parameters())
        if run is not None:
            run.summary.update({"params": record["params"], "baseline": task.baseline})

        loggers = [CSVLogger(save_dir=run_dir, name="", version="")]  # run_dir/metrics.csv: per-step curves
        if run is not None:
            loggers.append(WandbLogger(experiment=run))
        # Gradient flow and gate statistics on a fixed slice of the validation split (never trained on).
        px, py = (t[: cfg.probe.batch_size] for t in task.splits["val"])
        probe = GradientProbe((px, py), cfg.probe.every_n_steps, run_dir, enabled=cfg.probe.enabled,
                              labels={"cell": cfg.cell.name, "short": cfg.cell.get("short"), "task": cfg.task.name, "seed": cfg.seed})
        trainer = pl.Trainer(**config["trainer"], logger=loggers, callbacks=[probe], default_root_dir=run_dir)
        x, y = task.splits["train"]
        train_loader = batch_loader(x, y, cfg.optim.batch_size, shuffle=True, seed=cfg.seed)
        eval_size = max(cfg.optim.batch_size, 1024)
        val_loader = batch_loader(*task.splits["val"], eval_size, shuffle=False)
        trainer.fit(model, train_loader, val_loader)
        if model.best_state is not None:  # test the weights that scored best on validation
            model.load_state_dict(model.best_state)
        tested = trainer.test(model, batch_loader(*task.splits["test"], eval_size, shuffle=False), verbose=False)[0]
        record["metrics"] = {**{f"{k}_best": v for k, v in model.best.items()}, **tested}
        record["steps"] = trainer.global_step
        record["status"] = "completed"
    except Diverged as e:
        record.update(status="diverged", error=str(e))
    except Exception as e:  # noqa: BLE001 -- any crash becomes a record; the sweep goes on
        record.update(status="failed", error=f"{type(e).__name__}: {e}")
        log.error("job failed:\n%s", traceback.format_exc())
    record["duration_s"] = round(time.perf_counter() - start, 3)
    record["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_result(run_dir, record)
    if run is not None:  # what a report read from W&B needs, the same as result.json holds
        keys = ("status", "metric", "higher_is_better", "solved_threshold", "params_recurrent", "steps", "duration_s")
        run.summary.update({k: record.get(k) for k in keys} | {"git_commit": record["git"]["commit"], **record["metrics"]})
        run.finish(exit_code=0 if record["status"] == "completed" else 1)
    log.info("%s %s seed=%s: %s %s", record["cell"], record["task"], record["seed"], record["status"], record["metrics"])
    return record


# ---------------------------------------------------------------------------- Hydra glue

def fail(message: str) -> None:
    print(f"lstm-ablate: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class ValidateSweep(Callback):
    """Before a multirun launches anything, compose and validate every job it will run."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException

        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
        loader = GlobalHydra.instance().config_loader()
        for batch in BasicSweeper.split_arguments(overrides, None):
            for job in batch:
                try:
                    validate(loader.load_sweep_config(config, list(job)))
                except ConfigError as e:
                    fail(f"{e} (job {' '.join(job)})")
                except HydraException as e:
                    fail(f"{' '.join(str(e).split())} (job {' '.join(job)})")


class ReportAfterSweep(Callback):
    """Opt-in (`report.after_sweep=true`): write the comparison report when a multirun finishes."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.report.after_sweep:
            return
        from .report.build import write_report
        from .report.collect import ReportError

        sweep_dir = Path(config.hydra.sweep.dir)
        out = Path(config.report.out or sweep_dir / "report")
        try:
            write_report([sweep_dir], out, reference=config.report.reference, title=config.name,
                         warn=lambda line: log.warning("report: %s", line))
            log.info("report written to %s", out)
        except ReportError as e:
            log.error("report: %s", e)


@hydra.main(config_path=CONF, config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    """One job; returns its objective (tune.objective) so that any Hydra sweeper can drive it."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode.name == "MULTIRUN"
    try:
        validate(cfg)
    except ConfigError as e:
        if not multirun:  # a single run's directory holds only Hydra's own files yet: leave nothing
            logging.shutdown()
            shutil.rmtree(run_dir, ignore_errors=True)
        fail(str(e))
    group = cfg.wandb.group or f"{cfg.name}/{Path(hc.sweep.dir).name if multirun else run_dir.name}"
    record = train(cfg, run_dir, group)
    if record["status"] == "failed" and not multirun:
        raise SystemExit(1)
    from .tune import objective
    return objective(record)


def check_group_choices(argv: list[str]) -> None:
    """Unknown `cell=`/`task=` values get one clear line before Hydra starts (Hydra's is multi-line)."""
    from .tasks import TASKS

    choices = {"cell": available_variants(), "task": sorted(TASKS)}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in choices and not value.startswith(("choice(", "glob(", "range(")):
            for name in value.split(","):
                if name not in choices[key]:
                    fail(f"{key}: unknown {key} {name!r}; allowed: {', '.join(choices[key])}")


def main() -> None:
    check_group_choices(sys.argv[1:])
    # hydra/sweeper=tune: Hydra finds plugins by scanning hydra_plugins, which an editable install hides
    from hydra.core.plugins import Plugins
    from hydra_plugins.lstm_ablation_tune import TuneSweeper

    Plugins.instance().register(TuneSweeper)
    hydra_main()


if __name__ == "__main__":
    main()
