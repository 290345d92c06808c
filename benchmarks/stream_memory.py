"""Peak memory of a long-stream evaluation: it must not grow with the stream (continual streams, issue 16).

    python benchmarks/stream_memory.py no_forget_gate 200000    # cell, symbols per test stream

Runs 10 test streams of continual_reber_stream through an untrained hidden-64 model chunk by chunk,
as the test loop does, and prints the process's peak RSS after 10 and 100 chunks and at the end.
"""
import resource
import sys

import torch

from lstm_ablation.model import SequenceModel
from lstm_ablation.spec import variant_config
from lstm_ablation.streams import StreamChunks
from lstm_ablation.tasks import continual_reber_stream


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(cell: str, length: int) -> None:
    torch.set_num_threads(1)
    task = continual_reber_stream.make(0, n_test=10, test_stream_len=length)
    model = SequenceModel(variant_config(cell), {"name": task.name}, 64, lr=1e-3, data=task)
    print(cell, length, "symbols per stream; peak RSS at the start:", peak_mb(), "MB", flush=True)
    with torch.no_grad():
        for i, batch in enumerate(StreamChunks(task, "test", 10, redraw=False)):
            pred = model.step(batch, "test")
            if batch[2].all():
                score = task.stream_score()
            score.update(pred, batch[1], model.carried["test"])
            if i + 1 in (10, 100):
                print(i + 1, "chunks:", peak_mb(), "MB", flush=True)
    print("end:", peak_mb(), "MB", score.result())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
