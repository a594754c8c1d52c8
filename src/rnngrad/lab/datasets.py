r"""Real data read one number per step: MNIST-1D and scikit-learn's digits.

- **mnist1d** (Greydanus & Kobak 2020/2024): 4000 training and 1000 test
  sequences of 40 steps, 10 classes, generated offline by the ``mnist1d``
  package's own generator with its default arguments and seed (never
  downloaded). ``mnist1d_shuffled`` permutes the 40 steps by one fixed
  permutation (their "shuffled" variant: order carries no information).
  Published test accuracies: logistic regression 32%, MLP 68%, CNN 94%, GRU 91%;
  shuffled: GRU 57%.
- **digits**: scikit-learn's bundled 8 x 8 digits (1797 images) read pixel by
  pixel (64 steps, values / 16), a fixed 80/20 train/test split by a permutation
  drawn from seed 0; ``digits_permuted`` reads the pixels in one fixed random
  order (the permuted-MNIST idea on a small scale).

The fixed permutations are drawn from ``numpy.random.default_rng(0)``. Both
packages are an extra: ``pip install 'rnngrad[data]'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from rnngrad.errors import InvalidInputError

__all__ = ["DATASETS", "DatasetSplit", "load_dataset"]

DATASETS = ("mnist1d", "mnist1d_shuffled", "digits", "digits_permuted")


@dataclass(frozen=True)
class DatasetSplit:
    """Inputs ``(N, T, 1)`` float32 and class labels ``(N,)`` int64, train and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def steps(self) -> int:
        return int(self.train_x.shape[1])


def _missing(package: str) -> InvalidInputError:
    return InvalidInputError(f"the {package} package is not installed: pip install 'rnngrad[data]'")


def _mnist1d() -> tuple[np.ndarray, ...]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise _missing("mnist1d") from None
    data = make_dataset(get_dataset_args())
    return data["x"], data["y"], data["x_test"], data["y_test"]


def _digits() -> tuple[np.ndarray, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise _missing("scikit-learn") from None
    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.8 * len(labels))
    images = images / 16.0
    return images[order[:cut]], labels[order[:cut]], images[order[cut:]], labels[order[cut:]]


@lru_cache(maxsize=4)
def load_dataset(name: str) -> DatasetSplit:
    """The data set ``name`` (one of :data:`DATASETS`), generated or read once per process.

    Raises:
        InvalidInputError: an unknown name, or the package that provides it is missing.
    """
    if name not in DATASETS:
        raise InvalidInputError(f"unknown data set {name!r}; expected one of {DATASETS}")
    base = name.split("_")[0]
    train_x, train_y, test_x, test_y = _mnist1d() if base == "mnist1d" else _digits()
    if name.endswith(("_shuffled", "_permuted")):
        order = np.random.default_rng(0).permutation(train_x.shape[1])
        train_x, test_x = train_x[:, order], test_x[:, order]

    def inputs(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).unsqueeze(-1)

    def labels(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(values, dtype=np.int64))

    return DatasetSplit(inputs(train_x), labels(train_y), inputs(test_x), labels(test_y))
