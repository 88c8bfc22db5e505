"""Argument checks shared by the modules: each error names the argument and the value it got."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager

import torch


def check_choice(argument: str, value, choices: Iterable) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}")


def check_positive(argument: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a number, got {value!r}") from None
    ok = number >= 0 if allow_zero else number > 0
    if not ok or number != number or number == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{argument} must be finite and {bound}, got {value!r}")


def check_images(argument: str, x, *, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Check a batch of images: a floating tensor [N, ...] with no NaN and values in [low, high]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{argument} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{argument} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{argument} must be a batch [N, ...] with N images, got shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError(f"{argument} contains NaN")
    if x.numel() and (x.min() < low or x.max() > high):
        raise ValueError(
            f"{argument} must lie in [{low}, {high}], got values in "
            f"[{x.min().item():.4g}, {x.max().item():.4g}]"
        )
    return x


def check_labels(argument: str, labels, count: int, num_classes: int) -> torch.Tensor:
    """Check integer labels: a tensor of shape [count] with values in [0, num_classes).

    Any integer dtype (int32, uint8, ...) is accepted; the labels are returned as int64.
    """
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{argument} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{argument} must be an integer tensor, got dtype {labels.dtype}")
    if tuple(labels.shape) != (count,):
        raise ValueError(f"{argument} must have shape ({count},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{argument} must lie in [0, {num_classes - 1}], got values in "
            f"[{labels.min().item()}, {labels.max().item()}]"
        )
    return labels.to(torch.int64)


def check_int(argument: str, value, *, minimum: int = 1) -> int:
    """Raise ValueError unless ``value`` is an int (not a bool) >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value!r}")
    return value


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards
    (also when the block raises)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
