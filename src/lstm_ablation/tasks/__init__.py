"""Tasks by name. Each module's `make(seed, **task_config) -> Task` documents its generation rules."""
from __future__ import annotations

import inspect

from ..spec import ConfigError
from . import adding
from .base import Task

TASKS = {"adding": adding.make}


def check_task_config(task: dict) -> None:
    """Cheap checks before any data is generated: known task, known keys."""
    name = task.get("name")
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}; allowed: {', '.join(sorted(TASKS))}")
    allowed = [p for p in inspect.signature(TASKS[name]).parameters if p != "seed"]
    for key in task:
        if key not in allowed and key not in ("name", "data_seed", "batch_size"):
            raise ConfigError(f"task.{key}: unknown for task {name!r}; allowed: {', '.join(allowed)}")


def build_task(task: dict, seed: int) -> Task:
    check_task_config(task)
    kwargs = {k: v for k, v in task.items() if k not in ("name", "data_seed", "batch_size")}
    return TASKS[task["name"]](seed=seed, **kwargs)


__all__ = ["TASKS", "Task", "build_task", "check_task_config"]
