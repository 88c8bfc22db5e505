"""The helpers every module shares: argument checks (each error names the argument and the value
it got), the error for what cannot be certified, eval mode, the course's and the model's device,
the logit margin and "every other label".

Errors follow Python's convention: a value of the wrong type raises ``ArgumentTypeError`` (a
``TypeError``; also a ``ValueError``, so callers written for the older ValueError still catch it),
a value of the right type but out of range raises ``ValueError``. A result that cannot be
certified raises ``NotCertifiedError`` (a ``RuntimeError``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ArgumentTypeError",
    "NotCertifiedError",
    "check_bounds",
    "check_choice",
    "check_finite",
    "check_images",
    "check_int",
    "check_labels",
    "check_positive",
    "default_device",
    "eval_mode",
    "every_other_label",
    "logit_margin",
    "model_device",
    "other_labels",
    "to_model",
    "without_label",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type. A ``TypeError`` as Python raises it; also a ``ValueError``
    so that code written when the package raised ValueError for every bad argument still works."""


class NotCertifiedError(RuntimeError, ArithmeticError):
    """A result that cannot be certified (a bound that cannot be brought within the requested
    accuracy, a dual that does not close its gap, a solver that contradicts itself): the
    function refuses rather than returns a number it cannot vouch for. A ``RuntimeError``
    (``exact`` raised that before) and an ``ArithmeticError`` (``spectral`` raised that)."""


def check_choice(argument: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}")


def _number(argument: str, value: Any) -> float:
    """``value`` as a float; ArgumentTypeError when it is not a number (a bool is not one)."""
    if isinstance(value, bool):
        raise ArgumentTypeError(f"{argument} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{argument} must be a number, got {value!r}") from None


def check_finite(argument: str, value: Any) -> float:
    """``value`` as a float; ArgumentTypeError unless a number, ValueError unless finite."""
    number = _number(argument, value)
    if not math.isfinite(number):
        raise ValueError(f"{argument} must be finite, got {value!r}")
    return number


def check_positive(argument: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``);
    ArgumentTypeError when it is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{argument} must be a number, got {value!r}") from None
    ok = number >= 0 if allow_zero else number > 0
    if not ok or number != number or number == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{argument} must be finite and {bound}, got {value!r}")


def check_images(argument: str, x: Any, *, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Check a batch of images: a floating tensor [N, ...] with no NaN and values in [low, high]
    (ArgumentTypeError for another type or dtype, ValueError for the shape or the values)."""
    if not isinstance(x, torch.Tensor):
        raise ArgumentTypeError(f"{argument} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ArgumentTypeError(f"{argument} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{argument} must be a batch [N, ...] with N images, got shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError(f"{argument} contains NaN")
    if x.numel() and (x.min() < low or x.max() > high):
        raise ValueError(
            f"{argument} must lie in [{low}, {high}], got values in [{x.min().item():.4g}, {x.max().item():.4g}]"
        )
    return x


def check_labels(argument: str, labels: Any, count: int, num_classes: int) -> torch.Tensor:
    """Check integer labels: a tensor of shape [count] with values in [0, num_classes).

    Any integer dtype (int32, uint8, ...) is accepted; the labels are returned as int64.
    """
    if not isinstance(labels, torch.Tensor):
        raise ArgumentTypeError(f"{argument} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ArgumentTypeError(f"{argument} must be an integer tensor, got dtype {labels.dtype}")
    if tuple(labels.shape) != (count,):
        raise ValueError(f"{argument} must have shape ({count},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{argument} must lie in [0, {num_classes - 1}], got values in "
            f"[{labels.min().item()}, {labels.max().item()}]"
        )
    return labels.to(torch.int64)


def check_int(argument: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` itself when it is an int (not a bool) in [``minimum``, ``maximum``] (None: no
    bound on that side): ArgumentTypeError for another type, ValueError out of range. numpy
    integers are accepted."""
    bound = {
        (False, False): f" in [{minimum}, {maximum}]",
        (False, True): f" >= {minimum}",
        (True, False): f" <= {maximum}",
        (True, True): "",
    }[(minimum is None, maximum is None)]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{argument} must be an int{bound}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{argument} must be an int{bound}, got {value!r}")
    return value


def check_bounds(bounds: Any) -> tuple[float, float]:
    """The box ``bounds`` = (lower, upper) as two floats with finite lower < upper."""
    try:
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (lower, upper) of numbers, got {bounds!r}") from None
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(f"bounds must be (lower, upper) with finite lower < upper, got {bounds!r}")
    return lower, upper


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards
    (also when the block raises)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def default_device() -> torch.device:
    """The device the course computes on: ``COURSEKIT_DEVICE``, else CUDA when present, else CPU.
    (Here, beside ``model_device``, so that ``config`` and ``threads`` both read it without
    importing each other; ``config.default_device`` is the same function.)

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    name = os.environ.get("COURSEKIT_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter; the CPU for a model without parameters (a
    fixed function such as ``nn.Flatten`` runs anywhere, and the course runs those on the CPU)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def to_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the model's device (``model_device``) and in its floating dtype (a float16 or
    float64 batch for a float32 model is converted; kept as it is for a model without floating
    parameters)."""
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else x.dtype
    return x.to(device=model_device(model), dtype=dtype)


def without_label(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The logits [N, K] with column ``labels[i]`` of row i set to −inf (the rivals of a label)."""
    return logits.scatter(1, labels[:, None], -math.inf)


def logit_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Z_l − max_{j≠l} Z_j per row [N], for logits [N, K] and labels l [N]: positive where the
    label wins, by how much."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    return own - without_label(logits, labels).amax(1)


def other_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Every label but ``labels[i]``, in increasing order, per row: [N, K−1] int64."""
    every = torch.arange(num_classes, device=labels.device).expand(len(labels), num_classes)
    return every[every != labels[:, None]].view(len(labels), num_classes - 1)


def every_other_label(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For labels y [N]: (image index, label) pairs for every label l ≠ y, each [N·(K−1)],
    image by image and the labels in increasing order."""
    image = torch.arange(len(labels), device=labels.device).repeat_interleave(num_classes - 1)
    return image, other_labels(labels, num_classes).reshape(-1)
