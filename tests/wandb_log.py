"""Read an offline W&B run file (run-<id>.wandb) so tests can check what the dashboard will show.

The file is a LevelDB-style log (what `wandb sync` uploads): a 7-byte header (":W&B", magic
0xBEE1, version 1), then 32 KiB blocks of chunks, each chunk = crc32 (4) + length (2) + type (1:
full, 2: first, 3: middle, 4: last) + payload; a record's payload is a wandb_internal_pb2.Record.
"""
import json
import struct
import time
from pathlib import Path

from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER, CHUNK_HEADER = 32 * 1024, 7, 7


def records(path: Path):
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, pending = HEADER, b""
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos: pos + CHUNK_HEADER])
        payload = data[pos + CHUNK_HEADER: pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            continue
        pending += payload
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def read_run(run_dir: Path, timeout_s: float = 20.0) -> dict:
    """The run's metadata, config, last summary values and history keys.

    wandb's core process writes the file asynchronously and may still be flushing after
    run.finish() returns, so wait until the exit record is there.
    """
    (path,) = Path(run_dir).glob("run-*.wandb")
    deadline = time.monotonic() + timeout_s
    while True:
        try:  # a chunk still being written parses as garbage: read again once it is complete
            done = list(records(path))
        except DecodeError:
            done = []
        if any(r.WhichOneof("record_type") == "exit" for r in done) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out = {"summary": {}, "config": {}, "history_keys": set(), "exit_code": None, "step_metrics": {}, "console": "",
           "artifacts": []}
    for r in done:
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out.update(group=r.run.run_group, job_type=r.run.job_type, tags=list(r.run.tags))
            out["config"].update({i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.summary.update})
        elif kind == "history":
            out["history_keys"].update(i.key or "/".join(i.nested_key) for i in r.history.item)
        elif kind == "metric":  # define_metric: which metric is each chart's x-axis
            out["step_metrics"][r.metric.name or r.metric.glob_name] = r.metric.step_metric
        elif kind == "output_raw":
            out["console"] += r.output_raw.line
        elif kind == "artifact":
            out["artifacts"].append({"type": r.artifact.type, "name": r.artifact.name,
                                     "files": [m.path for m in r.artifact.manifest.contents]})
        elif kind == "exit":
            out["exit_code"] = r.exit.exit_code
    return out
