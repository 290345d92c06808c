"""The run record: one result.json per job, written atomically, read back with validation."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
STATUSES = ("completed", "diverged", "failed", "interrupted", "pruned")  # pruned: a tuning trial its pruner stopped
REQUIRED = ("status", "cell", "task", "seed", "metrics", "baseline", "params", "duration_s", "git", "config")


class ResultError(ValueError):
    """A result.json that cannot be used; the message names the file and the field."""


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any, indent: int | None = 2) -> None:
    """Write to a temp file in the same directory, fsync, then rename: readers never see half a file.
    indent=None writes compact JSON (no spaces), for files rewritten often."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(data), f, indent=indent, sort_keys=indent is not None,
                      separators=None if indent is not None else (",", ":"))
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; run records are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"cell": {"name": "v"}} -> {"cell.name": "v"}: the config as W&B and the report's columns see it."""
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_result(run_dir: Path, record: dict) -> Path:
    validate_record(record, source=str(run_dir))
    path = Path(run_dir) / RESULT_FILE
    write_json_atomic(path, record)
    return path


def validate_record(record: Any, source: str) -> dict:
    if not isinstance(record, dict):
        raise ResultError(f"{source}: expected a JSON object, got {type(record).__name__}")
    for key in REQUIRED:
        if key not in record:
            raise ResultError(f"{source}: missing field {key!r}")
    if record["status"] not in STATUSES:
        raise ResultError(f"{source}: status {record['status']!r}; allowed: {', '.join(STATUSES)}")
    if not isinstance(record["metrics"], dict):
        raise ResultError(f"{source}: metrics must be an object")
    return record


def read_result(path: Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return validate_record(record, source=str(path))
