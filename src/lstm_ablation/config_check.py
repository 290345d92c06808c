"""Checks of a composed config beyond cell and task: unknown keys, value types, a memory bound.

Known keys are those of the shipped defaults (conf/config.yaml, conf/trainer/*.yaml, conf/debug/*.yaml
and every conf/experiment/*.yaml),
so a key another part of the project adds to them is accepted without touching this file;
trainer keys are the arguments of Lightning's Trainer. Each check raises ConfigError (one line).
"""
from __future__ import annotations

import difflib
import inspect
import os
from functools import cache
from importlib.resources import files
from typing import Any

from omegaconf import OmegaConf

from .results import flatten
from .spec import ConfigError, is_number, shipped_configs

OWN_CHECKS = ("cell", "task", "hydra")   # spec.py and the task modules check their own keys
CHECKPOINT_KEEP = ("both", "best", "last", "none")  # checkpoint.keep: which files a finished job keeps (checkpointing.KEEP)
MEMORY_FRACTION = 0.5                    # refuse a job whose data alone needs more than this share of RAM


@cache
def known_keys() -> frozenset[str]:
    """Every dotted key the shipped config files define (lists and null values are leaves)."""
    # (file, package): a group's file lands under its group name unless it says `# @package _global_`
    sources = [(files("lstm_ablation.conf") / "config.yaml", "")] + \
              [(p, "trainer") for p in shipped_configs("trainer")] + \
              [(p, "") for p in shipped_configs("debug") + shipped_configs("experiment")]
    keys: set[str] = set()
    for source, package in sources:
        data = OmegaConf.to_container(OmegaConf.create(source.read_text())) or {}
        data.pop("defaults", None)
        data = {package: data} if package else data
        keys.update(k for k in flatten(data) if k.split(".")[0] not in OWN_CHECKS)
    return frozenset(keys)


def suggest(key: str, allowed: list[str]) -> str:
    near = difflib.get_close_matches(key, allowed, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def unknown_key(key: str) -> str:
    """`model.hiden_size: unknown key; allowed under model: model.hidden_size (did you mean ...?)`"""
    known, parts = known_keys(), key.split(".")
    if parts[0] == "cell":  # the CellSpec fields
        from .spec import META_FIELDS, SPEC_FIELDS

        known = frozenset(f"cell.{f}" for f in SPEC_FIELDS + META_FIELDS)
    section = parts[0] if len(parts) > 1 and any(k.startswith(parts[0] + ".") for k in known) else ""
    allowed = sorted(k for k in known if k.startswith(section + ".")) if section else sorted({k.split(".")[0] for k in known} | {"cell", "task", "trainer"})
    return f"{key}: unknown key; allowed {'under ' + section if section else 'at the top level'}: {', '.join(allowed)}{suggest(key, allowed)}"


def check_keys(config: dict) -> None:
    known = known_keys()
    for key in flatten({k: v for k, v in config.items() if k not in OWN_CHECKS + ("trainer",)}):
        parts = key.split(".")
        if any(".".join(parts[:i]) in known for i in range(1, len(parts) + 1)):
            continue  # a known key, or something under a known leaf (e.g. a dict given for a null default)
        raise ConfigError(unknown_key(key))
    shipped = {k.split(".", 1)[1] for k in known if k.startswith("trainer.")}
    if set(config.get("trainer") or {}) <= shipped:
        return  # keys the shipped configs pass to the Trainer: no need to load Lightning to ask
    import pytorch_lightning as pl

    trainer_args = [p for p in inspect.signature(pl.Trainer).parameters if p not in ("self", "logger", "callbacks", "plugins", "default_root_dir")]
    for key in config.get("trainer") or {}:
        if key not in trainer_args:
            raise ConfigError(f"trainer.{key}: not an argument of pytorch_lightning.Trainer{suggest(key, trainer_args)}; "
                              "allowed: any of its keyword arguments except logger, callbacks, plugins, default_root_dir")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_values(config: dict) -> None:
    trainer, cell = config.get("trainer") or {}, config.get("cell") or {}
    solved_stop = config.get("stop_when_solved") or {}
    checks = {
        "seed": (config.get("seed"), "an integer >= 0", lambda v: is_int(v) and v >= 0),
        "cell.forget_bias": (cell.get("forget_bias", 1.0), "a number", is_number),
        "trainer.max_steps": (trainer.get("max_steps"), "a positive integer", lambda v: is_int(v) and v > 0),
        "trainer.val_check_interval": (trainer.get("val_check_interval", 1.0), "a positive integer (steps) or a fraction in (0, 1]",
                                       lambda v: (is_int(v) and v > 0) or (isinstance(v, float) and 0 < v <= 1)),
        "trainer.enable_checkpointing": (trainer.get("enable_checkpointing", True), "true (checkpoint.keep=none deletes the files once a job ends)",
                                         lambda v: v is True),
        "trainer.overfit_batches": (trainer.get("overfit_batches", 0), "0 or a positive integer (batches; a fraction is not supported)",
                                    lambda v: is_int(v) and v >= 0),
        "checkpoint.keep": ((config.get("checkpoint") or {}).get("keep"), ", ".join(CHECKPOINT_KEEP), lambda v: v in CHECKPOINT_KEEP),
        "resume": (config.get("resume"), "null or a directory path", lambda v: v is None or (isinstance(v, str) and v != "")),
        "stop_when_solved.enabled": (solved_stop.get("enabled", False), "true, false", lambda v: isinstance(v, bool)),
        "stop_when_solved.patience": (solved_stop.get("patience", 3), "an integer >= 1 (validations in a row)",
                                      lambda v: is_int(v) and v >= 1),
    }
    if cell.get("kind", "lstm") == "lstm":
        from .layer import IMPLS

        checks["cell.impl"] = (cell.get("impl", "auto"), ", ".join(IMPLS), lambda v: v in IMPLS)
    for field, (value, allowed, ok) in checks.items():
        if not ok(value):
            raise ConfigError(f"{field}: got {value!r}; allowed: {allowed}")
    if trainer.get("accelerator") in ("gpu", "cuda"):  # refused here, not as a failed record per job
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.accelerator: got {trainer['accelerator']!r}, but this machine has no CUDA GPU "
                              "(torch.cuda.is_available() is false); allowed here: cpu, auto (trainer=cpu or the default)")


def check_memory(config: dict) -> None:
    """A lower bound of what the job allocates (4 bytes per generated step, plus the batch's cell
    activations kept for backprop), against the machine's memory: huge seq_len fails here, in one line."""
    task, model, optim = config.get("task") or {}, config.get("model") or {}, config.get("optim") or {}
    length = task.get("seq_len")
    sizes = [task.get(k) for k in ("n_train", "n_val", "n_test")]
    if not is_int(length) or not all(is_int(n) or n is None for n in sizes):
        return
    sequences = sum(n for n in sizes if n is not None)
    hidden, batch = model.get("hidden_size") or 0, optim.get("batch_size") or 0
    need = 4 * length * (sequences + 6 * hidden * batch)  # bytes: data, plus ~6 gate values per unit and step
    limit = MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > limit:
        raise ConfigError(f"task.seq_len: {length} x {sequences} sequences needs at least {need / 2**30:.1f} GiB "
                          f"(data and activations at 4 bytes per step); allowed: at most {limit / 2**30:.1f} GiB, "
                          f"half of this machine's memory")


def check_config(config: dict) -> None:
    check_keys(config)
    check_values(config)
    check_memory(config)
