"""The Hydra entry point: compose -> validate -> build -> fit -> test -> write result.json.

    lstm-ablate cell=no_forget_gate task.seq_len=200 seed=3
    lstm-ablate -m cell=vanilla,no_forget_gate seed=0,1,2
    lstm-ablate -m experiment=seed_gates

This is the only module that knows Hydra; `train(cfg, run_dir)` works on any composed config.
"""
from __future__ import annotations

import logging
import math
import re
import secrets
import shlex
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

from .config_check import check_config, unknown_key
from .expectations import parse as parse_expectations
from .results import flatten, write_result
from .signals import JobInterrupted, SignalGuard
from .spec import (KINDS, ConfigError, available_variants, shipped_configs, spec_from_config, valid_chrono_t_max,
                   variant_config)
from .sweep import FINAL, SweepError, check_start, earlier_attempts_s, lock, planned_jobs, previous_record, summary
from .tracking import log_best_checkpoint, plot_against_training_step, record_failure

log = logging.getLogger("lstm_ablation")
CONF = "pkg://lstm_ablation.conf"
WANDB_MODES = ("offline", "online", "disabled")
# Cached in the config itself, so every job of a sweep (even on another SLURM node) sees the same
# value: two sweeps started in the same second still get different directories.
OmegaConf.register_new_resolver("uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)
OmegaConf.register_new_resolver("or", lambda a, b: a if a is not None else b, replace=True)  # resume= or a fresh dir


# ---------------------------------------------------------------------------- validation

def validate(cfg: DictConfig) -> None:
    """Every check that needs no data or training; raises ConfigError (one line) on bad input."""
    from .baselines import baseline_settings
    from .tasks import check_task_config

    budgets = cfg.get("task_steps")
    if budgets is not None and OmegaConf.is_interpolation(cfg.trainer, "max_steps") and cfg.task.name not in budgets:
        raise ConfigError(f"task_steps: the study has no calibrated budget for task {cfg.task.name!r}; allowed: "
                          f"{', '.join(budgets)}, or set trainer.max_steps")
    chrono = OmegaConf.select(cfg, "init.chrono_t_max", default=0)
    if isinstance(chrono, bool) or not valid_chrono_t_max(chrono):
        raise ConfigError(f"init.chrono_t_max: got {chrono!r}; allowed: 0 (off) or an integer >= 2")
    cell = OmegaConf.to_container(cfg.cell, resolve=True)
    kind = cell.get("kind", "lstm")
    if kind not in KINDS:
        raise ConfigError(f"cell.kind: got {kind!r}; allowed: {', '.join(KINDS)}")
    if kind == "lstm":
        spec_from_config(cell)
    else:
        baseline_settings(kind, cell)
    check_task_config(OmegaConf.to_container(cfg.task, resolve=True))  # each task checks its own sizes

    def positive_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    checks = {
        "model.hidden_size": (cfg.model.hidden_size, "a positive integer", positive_int),
        "model.num_layers": (cfg.model.num_layers, "a positive integer", positive_int),
        "model.dropout": (cfg.model.dropout, "a number in [0, 1)",
                          lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1),
        "model.match_params": (cfg.model.match_params, "true, false", lambda v: isinstance(v, bool)),
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
    parse_expectations(OmegaConf.to_container(cfg.report, resolve=True).get("expectations"))
    if cfg.model.match_params and cfg.report.reference not in available_variants():
        raise ConfigError(f"report.reference: unknown cell {cfg.report.reference!r} (model.match_params matches "
                          f"parameter counts to it); allowed: {', '.join(available_variants())}")
    # unknown keys, seed/impl/trainer values, checkpoint.keep, and a memory bound (config_check.py)
    check_config(OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True))


# ---------------------------------------------------------------------------- the job

def device_name(device) -> str:
    """Where a job trained, for its record: "cpu", or "cuda (NVIDIA H200)" (the card's name)."""
    import torch

    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type


def git_state() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    if (here / "build_info.json").is_file():  # an installed wheel: the commit it was built from (setup.py)
        import json

        return json.loads((here / "build_info.json").read_text())
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, check=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


class WandbStartFailed(RuntimeError):
    """wandb.init raised; the job is recorded as failed with this one line."""


class TrialPruned(Exception):
    """The tuning trial's pruner stopped it at `step`; the job is recorded as pruned (a result, not a failure)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step


def start_wandb(cfg: DictConfig, run_dir: Path, group: str, config: dict, run_id: str | None = None):
    if cfg.wandb.mode == "disabled":
        return None
    import wandb

    # A resumed job continues its W&B run (same id) instead of starting a second one.
    try:
        run = wandb.init(id=run_id, resume="allow" if run_id else None,
            project=cfg.wandb.project, entity=cfg.wandb.entity, mode=cfg.wandb.mode, dir=str(run_dir),
            group=group, job_type=cfg.cell.name, tags=[cfg.cell.name, cfg.task.name],
            name=f"{cfg.cell.name}-{cfg.task.name}-s{cfg.seed}", config=flatten(config),
            settings=wandb.Settings(silent=True, console="wrap"),  # the console log stays with the run (why it failed)
        )
    except Exception as e:  # noqa: BLE001 -- e.g. online without a key: the job's failure, in one line
        raise WandbStartFailed(f"wandb.mode={cfg.wandb.mode}: W&B did not start ({type(e).__name__}: "
                               f"{' '.join(str(e).split())}); allowed: offline, disabled, or online after `wandb login`") from None
    plot_against_training_step(run)
    # The dashboard's run table shows each metric's summary: best validation, not the last value.
    run.define_metric("val/loss", summary="min")
    run.define_metric("val/accuracy", summary="max")
    return run


def train(cfg: DictConfig, run_dir: Path, group: str | None = None, trial_storage: str | None = None) -> dict[str, Any]:
    """Run one job and write its result.json into run_dir; returns the record.

    A crash or divergence is recorded (status failed/diverged), never raised, so a sweep goes on.
    ConfigError is raised before any work starts. `trial_storage`: the Optuna storage of a tuning
    trial that reports to its trial (`tune.study_id`, `tune.trial`) and may be pruned (tune_pruning.py); None: never pruned.
    """
    validate(cfg)
    import pytorch_lightning as pl
    import torch
    from lightning_fabric.utilities.rank_zero import rank_zero_only
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    from .checkpointing import AtomicCheckpointIO, model_checkpoint, prune, resumable
    from .final_validation import FinalValidation
    from .model import Diverged, SequenceModel, batch_loader
    from .param_match import matched_hidden_size
    from .probe_callback import GradientProbe
    from .resume import RNGState, keep_earlier_curve, resumable_loader, wandb_run_id
    from .solved_stop import StopWhenSolved
    from .streams import StreamRecorder, stream_loaders
    from .tasks import build_task

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Lightning's start-up chatter (GPU/TPU lines, tips, "logs directory not empty") is noise in a sweep.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(directory .* exists and is not empty|LeafSpec|does not have many workers).*")
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    config.pop("resume", None)  # where a sweep continues is not a setting of the job
    record: dict[str, Any] = {
        "status": "failed", "cell": cfg.cell.name, "short": cfg.cell.get("short"), "change": cfg.cell.get("change"),
        "task": cfg.task.name, "seed": cfg.seed, "metrics": {}, "baseline": None, "params": None, "steps": None,
        "duration_s": 0.0, "git": git_state(), "config": config, "error": None, "torch": torch.__version__,
    }
    earlier_s = earlier_attempts_s(run_dir)  # a job that runs again: its duration_s counts every attempt
    if earlier_s:
        record["earlier_attempts_s"] = earlier_s
    start = time.perf_counter()
    run = model = trainer = interrupted = solved_stop = pruning = None
    signals = SignalGuard().start()
    # Under DDP every rank runs this job (Lightning starts the others with RANK/LOCAL_RANK set):
    # only rank 0 starts the W&B run and writes result.json.
    rank_zero = rank_zero_only.rank == 0
    try:
        checkpoint = resumable(run_dir)  # None, or the checked last.ckpt of an earlier attempt
        run = start_wandb(cfg, run_dir, group or cfg.name, config, run_id=wandb_run_id(run_dir)) if rank_zero else None
        if cfg.num_threads:  # small cells are faster on 1 thread; parallel jobs should not oversubscribe
            torch.set_num_threads(cfg.num_threads)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        task = build_task(config["task"], seed=cfg.task.data_seed)
        record.update(baseline=task.baseline, metric=task.metric, higher_is_better=task.higher_is_better,
                      solved_threshold=task.solved_threshold)
        hidden_size = cfg.model.hidden_size
        if cfg.model.get("match_params", False):  # same parameter count as the reference at model.hidden_size
            hidden_size = matched_hidden_size(config["cell"], variant_config(cfg.report.reference), task.input_size,
                                              task.output_size, cfg.model.hidden_size, num_layers=cfg.model.num_layers)
            record["hidden_size_reference"] = cfg.model.hidden_size
        record["hidden_size"] = hidden_size
        model = SequenceModel(config["cell"], config["task"], hidden_size, cfg.optim.lr,
                              num_layers=cfg.model.num_layers, dropout=cfg.model.dropout, data=task)
        record["params"] = sum(p.numel() for p in model.parameters())
        record["params_recurrent"] = sum(p.numel() for p in model.layer.parameters())
        if run is not None:
            run.summary.update({"params": record["params"], "baseline": task.baseline})

        loggers = [CSVLogger(save_dir=run_dir, name="", version="")]  # run_dir/metrics.csv: per-step curves
        if checkpoint and rank_zero:
            keep_earlier_curve(loggers[0], checkpoint["global_step"])
        if run is not None:
            loggers.append(WandbLogger(experiment=run))
        # Gradient flow and gate statistics on a fixed slice of the validation split (never trained on).
        px, py = (t[: cfg.probe.batch_size] for t in task.splits["val"])
        probe = GradientProbe((px, py), cfg.probe.every_n_steps, run_dir, enabled=cfg.probe.enabled,
                              labels={"cell": cfg.cell.name, "short": cfg.cell.get("short"), "task": cfg.task.name, "seed": cfg.seed})
        recorder = [StreamRecorder(run_dir, labels=probe.labels)] if hasattr(task, "open_stream") else []
        if cfg.stop_when_solved.enabled:
            solved_stop = StopWhenSolved(task.metric, task.solved_threshold, task.higher_is_better, cfg.stop_when_solved.patience)
        if trial_storage is not None:
            from .tune_pruning import TrialPruning, build_pruner

            interval = cfg.trainer.val_check_interval  # an int: the step of the first validation
            pruner = build_pruner(cfg.tune.pruner, cfg.tune.pruner_startup_trials, cfg.tune.pruner_warmup_steps,
                                  interval if isinstance(interval, int) else 1, cfg.trainer.max_steps)
            pruning = TrialPruning(trial_storage, cfg.tune.study_id, cfg.tune.trial, task.metric, pruner)
        # stop_when_solved before pruning: a trial that is solved ends as completed, not pruned
        stopping = [c for c in (solved_stop, pruning) if c is not None]
        trainer_args = dict(config["trainer"])
        if trainer_args.get("profiler") == "simple":  # debug=profile: its table into the run dir, not the silenced Lightning log
            from pytorch_lightning.profilers import SimpleProfiler

            trainer_args["profiler"] = SimpleProfiler(dirpath=run_dir, filename="profile")
        trainer = pl.Trainer(**trainer_args, logger=loggers,
                             callbacks=[probe, *recorder, model_checkpoint(run_dir), RNGState(), FinalValidation(), *stopping],
                             plugins=[AtomicCheckpointIO()], default_root_dir=run_dir)
        record["device"] = device_name(trainer.strategy.root_device)  # the reports count GPU jobs apart from CPU-hours
        if recorder:  # continual streams: chunks in stream order, the state carried between them (streams.py)
            train_loader, val_loader, test_loader = stream_loaders(task, cfg.optim.batch_size)
        else:
            # A resumed job draws the batches an uninterrupted one draws from the same step on.
            position = checkpoint["global_step"] * trainer.accumulate_grad_batches if checkpoint else 0
            train_loader = resumable_loader(*task.splits["train"], cfg.optim.batch_size, seed=cfg.seed, position=position)
            eval_size = max(cfg.optim.batch_size, 1024)
            val_loader = batch_loader(*task.splits["val"], eval_size, shuffle=False)
            test_loader = batch_loader(*task.splits["test"], eval_size, shuffle=False)
        if config["trainer"].get("overfit_batches"):  # debug=overfit: the same first batches, every step
            from .overfit import fixed_batches

            n = config["trainer"]["overfit_batches"]
            train_loader, val_loader = fixed_batches(train_loader, n), fixed_batches(val_loader, n)
        if checkpoint:
            record["resumed_from_step"] = checkpoint["global_step"]
            log.info("resuming from %s at step %d", checkpoint["path"], checkpoint["global_step"])
        trainer.fit(model, train_loader, val_loader, ckpt_path=checkpoint["path"] if checkpoint else None)
        del checkpoint
        if pruning is not None and pruning.pruned_at_step is not None:  # no test: the trial's value is its validation
            raise TrialPruned(pruning.pruned_at_step)
        if model.best_state is not None:  # test the weights that scored best on validation
            model.load_state_dict(model.best_state)
        tested = trainer.test(model, test_loader, verbose=False)[0]
        record["metrics"] = {**{f"{k}_best": v for k, v in model.best.items()}, **tested}
        record["steps"] = trainer.global_step
        record["status"] = "completed"
    except Diverged as e:
        record.update(status="diverged", error=str(e))
    except TrialPruned as e:
        record.update(status="pruned", pruned_at_step=e.step)
    except JobInterrupted as e:  # recorded, then raised again: the process must stop and say so
        record.update(status="interrupted", error=f"interrupted by {e} (resumable from its last checkpoint)")
        interrupted = e
    except Exception as e:  # noqa: BLE001 -- any crash becomes a record; the sweep goes on
        record.update(status="failed", error=f"{type(e).__name__}: {e}")
        log.error("job failed: %s", e) if isinstance(e, WandbStartFailed) else log.error("job failed:\n%s", traceback.format_exc())
    finally:
        signals.hold()  # a second signal now would only cut the record short
    if record["status"] != "completed" and model is not None:  # keep what the job reached
        record["metrics"] = {f"{k}_best": v for k, v in model.best.items()}
        record["steps"] = trainer.global_step if trainer is not None else None
    if run is not None and record["status"] == "completed" and cfg.wandb.log_model:  # before prune can remove best.ckpt
        log_best_checkpoint(run, run_dir, {k: record[k] for k in ("cell", "task", "seed", "steps")} | record["metrics"])
    if solved_stop is not None:  # steps-to-threshold stays the report's: the first validation past the threshold
        record.update(stopped_early=solved_stop.stopped_at_step is not None, stopped_at_step=solved_stop.stopped_at_step)
    if record["status"] in FINAL:
        prune(run_dir, cfg.checkpoint.keep)
    record["duration_s"] = round(earlier_s + time.perf_counter() - start, 3)
    record["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if rank_zero and (trainer is None or trainer.is_global_zero):
        write_result(run_dir, record)
    if run is not None:  # what a report read from W&B needs, the same as result.json holds
        keys = ("status", "metric", "higher_is_better", "solved_threshold", "params_recurrent", "hidden_size", "steps", "duration_s")
        optional = {k: record[k] for k in ("stopped_early", "stopped_at_step", "pruned_at_step") if k in record}
        run.summary.update({k: record.get(k) for k in keys} | optional | {"git_commit": record["git"]["commit"], **record["metrics"]})
        record_failure(run, record["error"])
        run.finish(exit_code=0 if record["status"] in ("completed", "pruned") else 1)
    log.info("%s %s seed=%s: %s %s in %s", record["cell"], record["task"], record["seed"], record["status"], record["metrics"], run_dir)
    signals.stop()
    if interrupted is not None or signals.pending is not None:
        raise interrupted or JobInterrupted(signals.pending)
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
        try:  # only now, with every job valid, does the sweep dir come into being
            lock(check_start(config), warn=lambda line: log.warning("sweep: %s", line))
        except SweepError as e:
            fail(str(e))


class SweepSummary(Callback):
    """When a multirun ends: one line of what its jobs reached; non-zero exit unless each has a result."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = planned_jobs(config)
        line, ok = summary(Path(config.hydra.sweep.dir), len(jobs) if jobs is not None else None)
        print(line, file=sys.stderr, flush=True)
        if not ok:
            raise SystemExit(1)


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
            if config.report.wandb:
                from .report.to_wandb import log_report

                log.info("report logged to W&B: %s", log_report(out, [sweep_dir]))
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
        if not multirun and cfg.get("resume") is None:  # a fresh single run's directory holds only Hydra's own files yet: leave nothing
            logging.shutdown()
            shutil.rmtree(run_dir, ignore_errors=True)
        fail(str(e))
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("resume", None)
    try:  # a resumed sweep (or single job) skips what already has its result
        previous = previous_record(run_dir, config)
    except SweepError as e:
        fail(str(e))
    if previous is not None:
        log.info("%s: already %s; skipped", run_dir, previous["status"])
        return
    group = cfg.wandb.group or f"{cfg.name}/{Path(hc.sweep.dir).name if multirun else run_dir.name}"
    storage = None
    # only a stage-1 job the sweeper launched knows its trial; confirmation runs are never pruned
    if cfg.tune.stage == "tune" and cfg.tune.pruner is not None and cfg.tune.study_id is not None:
        from .tune import storage_url

        storage = storage_url(cfg.tune.storage, Path(hc.sweep.dir))
    try:
        record = train(cfg, run_dir, group, trial_storage=storage)
    except JobInterrupted as e:
        again = shlex.join(["lstm-ablate", *(a for a in sys.argv[1:] if not a.startswith("resume="))])
        where = Path(hc.sweep.dir) if multirun else run_dir
        line = summary(where, None)[0] + "; " if multirun else ""
        print(f"lstm-ablate: interrupted by {e} in {run_dir}; {line}continue with: {again} resume={where}",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + e.signum) from None
    if record["status"] == "failed" and not multirun:
        raise SystemExit(1)
    from .tune import objective
    return objective(record)


def user_config_dirs(argv: list[str]) -> list[Path] | None:
    """The config dirs a user adds (`--config-dir`/`-cd DIR`, `hydra.searchpath=[file://DIR]`);
    None where one cannot be listed here (a pkg:// search path): then Hydra alone decides."""
    dirs = [Path(v) for flag, v in zip(argv, argv[1:]) if flag in ("--config-dir", "-cd")]
    dirs += [Path(a.split("=", 1)[1]) for a in argv if a.startswith("--config-dir=")]
    for arg in argv:
        if arg.startswith(("hydra.searchpath=", "+hydra.searchpath=", "++hydra.searchpath=")):
            for entry in arg.split("=", 1)[1].strip("[]").split(","):
                entry = entry.strip().strip("'\"")
                if not entry.startswith("file://"):
                    return None
                dirs.append(Path(entry.removeprefix("file://")))
    return dirs


def check_group_choices(argv: list[str]) -> None:
    """Unknown `cell=`/`task=` values get one clear line before Hydra starts (Hydra's is multi-line).
    Cells and tasks a user adds through --config-dir or hydra.searchpath count as known. Tasks are
    read from their config files, not the task modules: a typo is answered without importing torch."""
    extra = user_config_dirs(argv)
    if extra is None:
        return
    choices = {key: [p.name.removesuffix(".yaml") for p in shipped_configs(key)] for key in ("cell", "task")}
    for key in choices:
        choices[key] = sorted(set(choices[key]) | {p.stem for d in extra for p in (d / key).glob("*.yaml")})
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in choices and not value.startswith(("choice(", "glob(", "range(")):
            for name in value.split(","):
                if name not in choices[key]:
                    fail(f"{key}: unknown {key} {name!r}; allowed: {', '.join(choices[key])}")


SWEEPER_PARAMS = "hydra.sweeper.params."


def check_overrides(argv: list[str]) -> None:
    """Compose what the command asks for in-process (a sweep: its first job) before Hydra starts:
    Hydra's own multi-line errors (a typo without `+`, a malformed override) become one line, and a
    single run is validated before Hydra creates its directory. Commands with other flags skip this."""
    from hydra import compose, initialize_config_module
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in overrides):
        return
    try:
        first, swept, settings = [], [], []
        parsed = OverridesParser.create().parse_overrides(overrides)
        given = {o.key_or_group for o in parsed}
        for override in parsed:
            key = override.key_or_group
            if key.startswith("hydra.") and override.is_sweep_override():
                fail(f"{key}: Hydra's own settings cannot be swept; a sweeper parameter takes its list quoted: "
                     f"{key}='{override.input_line.partition('=')[2]}'")
            value = next(iter(override.sweep_string_iterator())) if override.is_sweep_override() else None
            if key.startswith("hydra."):  # Hydra's own settings are not part of a job's config
                settings.append(override.input_line)
            else:
                first.append(override.input_line if value is None else f"{override.input_line.partition('=')[0]}={value}")
            if multirun and key.startswith(SWEEPER_PARAMS) and key[len(SWEEPER_PARAMS):] not in given:
                # the sweeper applies these to every job: `hydra.sweeper.params.cell=gru cell.update_bias=0`
                # is a GRU job, so its first job is composed as one
                swept.append(f"{key[len(SWEEPER_PARAMS):]}={str(override.value()).split(',')[0].strip()}")
        first = swept + first
        with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
            # Hydra's own settings go in too: compose applies them to its config (a typo fails here) before it
            # leaves that config out, and hydra.searchpath finds the cells and tasks a user adds
            cfg = compose("config", overrides=first + settings)
    except HydraException as e:
        typo = re.match(r"Could not override '((?!task\.)[^']+)'", str(e))  # a key the config lacks, given without +
        fail(bad_key(typo.group(1)) if typo else " ".join(str(e).split()))
    except Exception:  # noqa: BLE001 -- a sweep syntax this cannot expand: Hydra checks it itself
        return
    if not multirun:
        try:
            validate(cfg)
        except ConfigError as e:
            fail(str(e))


def bad_key(key: str) -> str:
    """The line for `key=...` where the config has no such key (Hydra's says 'not in struct' over four lines)."""
    if key.startswith(SWEEPER_PARAMS):
        name = key[len(SWEEPER_PARAMS):]
        return (f"{key}: this sweeper has no parameter {name!r}; a job setting is swept on the command line "
                f"({name}=a,b), or added to the sweeper's parameters with +{key}=")
    if key.startswith("hydra."):
        return f"{key}: not a setting of Hydra's config (see `lstm-ablate --cfg hydra`); a new key needs +{key}="
    return unknown_key(key) + f"; a new key needs +{key}="


MODES = {"-m": "-m", "--multirun": "-m", "-r": "--run", "--run": "--run", "-c": "--cfg", "--cfg": "--cfg",
         "-i": "--info", "--info": "--info", "-sc": "--shell-completion", "--shell-completion": "--shell-completion"}


def check_modes(argv: list[str]) -> None:
    """Hydra raises a ValueError traceback for two of its modes at once (`-m ... --cfg job`): one line."""
    given = [a for a in argv if a in MODES]
    if len({MODES[a] for a in given}) > 1:
        fail(f"{' and '.join(given)}: one mode at a time; allowed: one of -m (a sweep), --cfg job|hydra|all (print the "
             "config of a single run), --info")


def main() -> None:
    check_modes(sys.argv[1:])
    check_group_choices(sys.argv[1:])
    check_overrides(sys.argv[1:])
    # hydra/sweeper=tune: Hydra finds plugins by scanning hydra_plugins, which an editable install hides
    from hydra.core.plugins import Plugins
    from hydra_plugins.lstm_ablation_tune import TuneSweeper

    Plugins.instance().register(TuneSweeper)
    hydra_main()


if __name__ == "__main__":
    main()
