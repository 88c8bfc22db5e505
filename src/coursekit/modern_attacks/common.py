"""The helpers the modern attacks share: the set-up of images and labels, gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_bounds,
    check_images,
    check_labels,
    eval_mode,
    to_model,
)
from ..results import goal_reached

__all__ = ["NORMS"]


NORMS = ("inf", "2")


def _images(model: nn.Module, x: torch.Tensor, bounds: tuple[float, float]) -> tuple[torch.Tensor, float, float]:
    """x checked against the box ``bounds`` and moved to the model's device and floating dtype
    (a float64 batch for a float32 model is converted, as ``lbfgs_attack`` does). Returns
    (x, lower, upper). Runs nothing through the model."""
    lower, upper = check_bounds(bounds)
    check_images("x", x, low=lower, high=upper)
    return to_model(model, x), lower, upper


def _labels(model: nn.Module, x: torch.Tensor, labels: dict) -> dict:
    """The labels checked against the model's number of classes: ``labels`` maps argument
    names to tensors [N] or None, the result the same names to int64 tensors on x's device (or
    None). The number of classes is read from one image, without gradients; the attacks call
    this inside ``results.attacking`` (eval mode: a model left in train mode keeps its
    BatchNorm statistics and its dropout does not draw from the global random generator; the
    look is counted as a pass of image 0)."""
    with torch.no_grad():
        k = model(x[:1]).shape[1]
    return {
        name: None if value is None else check_labels(name, value, len(x), k).to(x.device)
        for name, value in labels.items()
    }


def _setup(
    model: nn.Module, x: torch.Tensor, labels: dict, bounds: tuple[float, float]
) -> tuple[torch.Tensor, dict, float, float]:
    """``_images`` and ``_labels`` (in eval mode) for what is not an attack (the certificate)."""
    x, lower, upper = _images(model, x, bounds)
    with eval_mode(model):
        return x, _labels(model, x, labels), lower, upper


def _one_of(target: torch.Tensor | None, y: torch.Tensor | None) -> None:
    if (target is None) == (y is None):
        given = [name for name, value in (("target", target), ("y", y)) if value is not None]
        raise ValueError(
            "give exactly one of target (targeted attack) and y (untargeted attack), "
            f"got {' and '.join(given) or 'neither'}"
        )


_reached = goal_reached  # the attack's goal at logits [N, K] (``results.goal_reached``)


def _gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, sign: float) -> torch.Tensor:
    """sign · ∇ₓ Σ CE(f(x), labels), [N, ...] (the sum keeps each image's own gradient)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(sign * loss, x)
    return grad


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-image vector [N] reshaped to broadcast against images x [N, ...]."""
    return v.view(-1, *[1] * (x.dim() - 1))
