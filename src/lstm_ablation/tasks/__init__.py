"""Tasks by name. Each module's `make(seed, **task_config) -> Task` documents its generation rules;
its optional `check(**task_config)` validates values before anything is generated or loaded."""
from __future__ import annotations

import inspect

from ..spec import ConfigError
from . import (adding, associative_recall, continual_reber, continual_reber_stream, copy_memory, listops, mnist,
               selective_copy, sequential_digits, temporal_order)
from .base import Task

MODULES = {
    "adding": adding,
    "copy_memory": copy_memory,
    "temporal_order": temporal_order,
    "continual_reber": continual_reber,
    "continual_reber_stream": continual_reber_stream,   # the same grammar on unbroken streams (streams.py)
    "selective_copy": selective_copy,
    "associative_recall": associative_recall,
    "listops": listops,
    "sequential_digits": sequential_digits,   # conf/task/permuted_digits.yaml: permuted: true
    "permuted_digits": sequential_digits,
    "sequential_mnist": mnist,          # conf/task/permuted_mnist.yaml: the same module with permuted: true
    "permuted_mnist": mnist,
}
TASKS = {name: module.make for name, module in MODULES.items()}
NOT_TASK_KEYS = ("name", "data_seed", "batch_size")


def check_task_config(task: dict) -> None:
    """Cheap checks before any data is generated: known task, known keys, then the module's value checks."""
    name = task.get("name")
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}; allowed: {', '.join(sorted(TASKS))}")
    parameters = inspect.signature(TASKS[name]).parameters
    allowed = [p for p in parameters if p != "seed"]
    for key in task:
        if key not in allowed and key not in NOT_TASK_KEYS:
            raise ConfigError(f"task.{key}: unknown for task {name!r}; allowed: {', '.join(allowed)}")
    check = getattr(MODULES[name], "check", None)
    if check is not None:
        values = {p: parameters[p].default for p in allowed}
        values.update({k: v for k, v in task.items() if k not in NOT_TASK_KEYS})
        check(**{k: v for k, v in values.items() if k in inspect.signature(check).parameters})


def build_task(task: dict, seed: int) -> Task:
    check_task_config(task)
    kwargs = {k: v for k, v in task.items() if k not in NOT_TASK_KEYS}
    return TASKS[task["name"]](seed=seed, **kwargs)


__all__ = ["MODULES", "TASKS", "Task", "build_task", "check_task_config"]
