"""Small ReLU networks to verify: built, trained on MNIST and cached; their sizes per profile."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_positive
from ..config import profile_sizes, profile_views
from ..records import modules_version

__all__ = [
    "RELU_CODE_VERSION",
    "relu_mlp",
    "train_relu_mlp",
    "verify_size",
    "VERIFY_SIZES",
]


# The hash of this module's code and of everything it imports (``records.modules_version``): part of
# the ReLU networks' cache key, so that a changed statement in that code retrains them.
RELU_CODE_VERSION = modules_version("verification")


def relu_mlp(hidden: tuple[int, ...], inputs: int = 784, classes: int = 10) -> nn.Sequential:
    """Flatten, then Linear/ReLU for each width in ``hidden``, then Linear to ``classes`` logits
    (e.g. hidden=(16,) is 784-16-10). Freshly initialised by torch's current seed."""
    if not isinstance(hidden, tuple) or not all(isinstance(h, int) and h >= 1 for h in hidden):
        raise ValueError(f"hidden must be a tuple of positive ints, got {hidden!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    sizes = [inputs, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], classes))


def train_relu_mlp(
    hidden: tuple[int, ...],
    *,
    epochs: int = 2,
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 128,
    use_cache: bool = True,
) -> nn.Sequential:
    """``relu_mlp(hidden)`` trained on MNIST's 60,000 training images by minibatch Adam
    (cross-entropy, no regulariser), seeded; cached like the zoo. In eval mode on the CPU
    (a 784-16-10 network: ~5 s per epoch on one core). The initialisation and the minibatch
    order come from ``seed`` alone: the global random generator is neither read nor changed.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    from ..cache import key_digest, record_digest, save_record
    from ..config import cache_dir
    from ..data import load_mnist
    from ..train import load_model_record, model_record

    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    check_positive("lr", lr)
    key = {
        "name": "relu-mlp",
        "hidden": list(hidden),
        "epochs": epochs,
        "seed": seed,
        "lr": lr,
        "batch_size": batch_size,
        "code": RELU_CODE_VERSION,
    }
    record_digest(key)  # a key the cache file cannot hold is refused before the training
    with torch.random.fork_rng(devices=[]):  # initialised by ``seed``; the caller's generator is left alone
        torch.manual_seed(seed)
        model = relu_mlp(hidden)
    path = cache_dir() / "models" / f"relu-mlp-{'-'.join(map(str, hidden))}-{key_digest(key)}.pt"
    if use_cache and load_model_record(model, path, key) is not None:
        return model.eval()
    x, y = load_mnist("train")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            index = order[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    model.eval()
    if use_cache:
        save_record(model_record(model, {"key": key}), path)
    return model


# Sizes of the exact-verification experiments per profile (the profiles of ``coursekit.config``).
# The solver runs on the CPU in every profile (SCIP, one thread).
# Kept for the chapters: ``config.profile_sizes("verify", profile)``.
VERIFY_SIZES = profile_views("verify")


def verify_size(name: str, profile: str | None = None) -> Any:
    """The size ``name`` of ``profile_sizes("verify", profile)`` (default: the current profile),
    with an error naming the known ones.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    sizes = profile_sizes("verify", profile)
    if name not in sizes:
        raise ValueError(f"name must be one of {tuple(sizes)}, got {name!r}")
    return sizes[name]
