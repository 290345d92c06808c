"""`trainer.overfit_batches=n` (debug=overfit) with this project's own batch loaders.

Lightning rebuilds a loader whose sampler is not a SequentialSampler, with SequentialSampler(dataset):
that breaks the whole-batch loaders (model.TensorBatches indexed by a list of indices, the resumable
sampler of resume.py) and the stream loaders (an IterableDataset has no length). So the first n
batches are drawn once, in the loader's own order, and handed over as a list that a plain
DataLoader replays in sequence: Lightning finds nothing to rebuild, and every task works the same.
"""
from __future__ import annotations

from itertools import islice

from torch.utils.data import DataLoader


def fixed_batches(loader: DataLoader, n: int) -> DataLoader:
    batches = list(islice(iter(loader), n))  # each item is already a whole batch
    return DataLoader(batches, batch_size=None)  # sampler: SequentialSampler over the n batches
