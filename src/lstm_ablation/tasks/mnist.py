"""Sequential MNIST and permuted MNIST (Le, Jaitly & Hinton 2015, "IRNN"; pMNIST as in Arjovsky et
al. 2016 and JANET): each 28x28 image is read one pixel per step, row-major, 784 steps of one input,
pixel / 255 in [0, 1]; the digit (10-way) is read out at the last step.

Data: the four standard IDX files, read directly (no torchvision), from
<task.data_dir>/MNIST/raw/ -- the layout torchvision uses -- each plain or gzipped (.gz):
    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
Nothing is downloaded; when a file is missing the error names every file and where to put it.
Any image size works (steps = rows * cols), which lets tests use tiny IDX files.

permuted: true (conf/task/permuted_mnist.yaml) applies one fixed permutation of the pixels to every
image, drawn from torch.Generator seed PERMUTATION_SEED -- not the run seed -- so all runs share it.
Splits: test is the 10k t10k set (or its first n_test); validation is a fixed hold-out of n_val
training images chosen by a permutation with seed SPLIT_SEED (not the run seed); the training set is
the rest (or its first task.n_train). Memoryless baseline: the train-majority class scored on the
test labels (about 0.11). Solved (our choice): 0.97 sequential (LSTM reported 98.5 %, JANET
paper), 0.9 permuted (LSTM 91.0 %).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..spec import ConfigError
from .base import ClassificationTask, check_choice, check_positive, majority_baseline

FILES = {
    ("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte", ("test", "labels"): "t10k-labels-idx1-ubyte",
}
MAGIC = {"images": 0x00000803, "labels": 0x00000801}   # unsigned bytes, 3 dims / 1 dim
PERMUTATION_SEED = 1234
SPLIT_SEED = 0


def raw_dir(data_dir: str) -> Path:
    return Path(data_dir).expanduser() / "MNIST" / "raw"


def find(data_dir: str, name: str) -> Path:
    for candidate in (raw_dir(data_dir) / name, raw_dir(data_dir) / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    missing = [n for n in FILES.values() if not (raw_dir(data_dir) / n).is_file() and not (raw_dir(data_dir) / f"{n}.gz").is_file()]
    raise ConfigError(f"task.data_dir: MNIST file {name}(.gz) not found; place {', '.join(missing)} (plain or .gz, "
                      f"from http://yann.lecun.com/exdb/mnist/ or a torchvision download) in {raw_dir(data_dir).resolve()}/")


def read_idx(path: Path, kind: str) -> np.ndarray:
    """IDX: big-endian int32 magic (0x0803 images / 0x0801 labels), int32 dims, then unsigned bytes."""
    data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    magic = int.from_bytes(data[0:4], "big")
    if magic != MAGIC[kind]:
        raise ConfigError(f"task.data_dir: {path} is not an IDX {kind} file (magic {magic:#010x}, expected {MAGIC[kind]:#010x})")
    n_dims = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(n_dims)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims)
    if array.size != int(np.prod(dims)):
        raise ConfigError(f"task.data_dir: {path} holds {array.size} bytes of data, its header says {dims}")
    return array.reshape(dims)


def load(data_dir: str, split: str) -> tuple[Tensor, Tensor]:
    """(N, rows*cols) pixels in [0, 1], row-major; (N,) labels."""
    images = read_idx(find(data_dir, FILES[split, "images"]), "images")
    labels = read_idx(find(data_dir, FILES[split, "labels"]), "labels")
    if len(images) != len(labels):
        raise ConfigError(f"task.data_dir: {split} has {len(images)} images but {len(labels)} labels")
    pixels = torch.tensor(images.reshape(len(images), -1), dtype=torch.float32) / 255.0
    return pixels, torch.tensor(labels, dtype=torch.long)


def permutation(n_pixels: int) -> Tensor:
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(PERMUTATION_SEED))


def check(data_dir: str, permuted: bool, n_train: int | None, n_val: int, n_test: int | None) -> None:
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(f"task.data_dir: got {data_dir!r}; allowed: a directory path holding MNIST/raw/")
    check_choice("permuted", permuted, (False, True))
    check_positive(n_val=n_val)
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if value is not None:
            check_positive(**{key: value})
    for name in FILES.values():                                            # fail before a sweep launches
        find(data_dir, name)


def make(seed: int, data_dir: str = "data", permuted: bool = False, n_train: int | None = None,
         n_val: int = 5000, n_test: int | None = None) -> ClassificationTask:
    check(data_dir, permuted, n_train, n_val, n_test)
    train_pixels, train_labels = load(data_dir, "train")
    test_pixels, test_labels = load(data_dir, "test")
    if n_val >= len(train_labels) or (n_train is not None and n_train > len(train_labels) - n_val):
        raise ConfigError(f"task.n_val: n_val={n_val}, n_train={n_train} do not fit the {len(train_labels)} "
                          "training images (n_val < images, n_train <= images - n_val)")
    if n_test is not None and n_test > len(test_labels):
        raise ConfigError(f"task.n_test: got {n_test}; allowed: at most {len(test_labels)} (the t10k images)")
    if permuted:
        perm = permutation(train_pixels.shape[1])
        train_pixels, test_pixels = train_pixels[:, perm], test_pixels[:, perm]
    order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val, train = order[:n_val], order[n_val:] if n_train is None else order[n_val:n_val + n_train]
    test = slice(None) if n_test is None else slice(0, n_test)
    splits = {                                                             # x (n, rows*cols, 1), y (n,)
        "train": (train_pixels[train].unsqueeze(-1), train_labels[train]),
        "val": (train_pixels[val].unsqueeze(-1), train_labels[val]),
        "test": (test_pixels[test].unsqueeze(-1), test_labels[test]),
    }
    return ClassificationTask(
        name="permuted_mnist" if permuted else "sequential_mnist", input_size=1, output_size=10,
        readout="last", metric="accuracy", higher_is_better=True,
        baseline=majority_baseline(splits["train"][1], splits["test"][1]),
        solved_threshold=0.9 if permuted else 0.97, splits=splits,
    )
