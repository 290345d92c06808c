"""Sequential (and permuted) 8x8 digits: the pixel-by-pixel MNIST protocol (Le, Jaitly & Hinton 2015,
"IRNN") on the handwritten digits that ship with scikit-learn (UCI optdigits test set, 1797 images
of 8x8 pixels with values 0..16), so a real-data task runs offline.

Each image is read one pixel per step in row-major order: 64 steps, one input, pixel / 16 in [0, 1].
The class (10-way) is read out at the last step. permuted: true (conf/task/permuted_digits.yaml, so
results group under their own task name) applies one fixed permutation of the 64 steps to every
image (as in pMNIST); it is drawn from torch.Generator seed PERMUTATION_SEED, not from the run seed,
so every run and every seed sees the same permutation.
Splits: the 1797 images are shuffled once with SPLIT_SEED (again not the run seed), then the first
n_test are the test set, the next n_val the validation set, and the rest the training pool, of
which task.n_train (null: all) are used. Val and test are therefore fixed across runs.
Memoryless baseline: the train-majority class scored on the test labels (about 1/10).
Solved (our choice): test accuracy >= 0.9.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..spec import ConfigError
from .base import ClassificationTask, check_choice, check_positive, majority_baseline

N_IMAGES = 1797
PERMUTATION_SEED = 1234
SPLIT_SEED = 0


def load_images() -> tuple[Tensor, Tensor]:
    """(1797, 64) pixels in [0, 1], row-major; (1797,) labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ConfigError("task: sequential_digits needs scikit-learn (pip install scikit-learn)") from e
    digits = load_digits()
    return torch.tensor(digits.data, dtype=torch.float32) / 16.0, torch.tensor(digits.target, dtype=torch.long)


def permutation(n_pixels: int) -> Tensor:
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(PERMUTATION_SEED))


def check(permuted: bool, n_train: int | None, n_val: int, n_test: int) -> None:
    check_choice("permuted", permuted, (False, True))
    check_positive(n_val=n_val, n_test=n_test)
    if n_train is not None:
        check_positive(n_train=n_train)
    pool = N_IMAGES - n_val - n_test
    if pool < 1 or (n_train is not None and n_train > pool):
        raise ConfigError(f"task.n_train: got {n_train!r} with n_val={n_val}, n_test={n_test}; allowed: null or "
                          f"at most {max(pool, 0)} (the {N_IMAGES} images minus val and test)")


def make(seed: int, permuted: bool = False, n_train: int | None = None, n_val: int = 300,
         n_test: int = 300) -> ClassificationTask:
    check(permuted, n_train, n_val, n_test)
    pixels, labels = load_images()
    if permuted:
        pixels = pixels[:, permutation(pixels.shape[1])]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, val, pool = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    train = pool if n_train is None else pool[:n_train]
    splits = {s: (pixels[i].unsqueeze(-1), labels[i]) for s, i in (("train", train), ("val", val), ("test", test))}
    return ClassificationTask(                                             # x (n, 64, 1), y (n,)
        name="permuted_digits" if permuted else "sequential_digits", input_size=1, output_size=10,
        readout="last", metric="accuracy", higher_is_better=True,
        baseline=majority_baseline(splits["train"][1], splits["test"][1]), solved_threshold=0.9, splits=splits,
    )
