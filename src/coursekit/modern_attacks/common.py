"""The helpers the modern attacks share: the set-up of images and labels, the result, gradients."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .._checks import (
    check_bounds,
    check_images,
    check_labels,
    eval_mode,
    to_model,
)
from ..attack import AttackResult, distortion

if TYPE_CHECKING:
    pass


__all__ = ["NORMS"]


NORMS = ("inf", "2")


def _setup(model, x, labels: dict, bounds):
    """Check x and the labels, move x to the model's device and floating dtype (a float64 batch
    for a float32 model is converted, as ``lbfgs_attack`` does). Returns (x, labels, lower,
    upper); ``labels`` maps argument names to tensors or None. The model's number of classes is
    read from one image in eval mode, without gradients: a model left in train mode keeps its
    BatchNorm statistics, and its dropout does not draw from the global random generator."""
    lower, upper = check_bounds(bounds)
    check_images("x", x, low=lower, high=upper)
    x = to_model(model, x)
    with eval_mode(model), torch.no_grad():
        k = model(x[:1]).shape[1]
    checked = {
        name: None if value is None else check_labels(name, value, len(x), k).to(x.device)
        for name, value in labels.items()
    }
    return x, checked, lower, upper


def _one_of(target, y) -> None:
    if (target is None) == (y is None):
        given = [name for name, value in (("target", target), ("y", y)) if value is not None]
        raise ValueError(
            "give exactly one of target (targeted attack) and y (untargeted attack), "
            f"got {' and '.join(given) or 'neither'}"
        )


def _reached(logits: torch.Tensor, target, y) -> torch.Tensor:
    """[N] bool: the attack's goal holds (argmax = target, or argmax ≠ y when untargeted)."""
    predicted = logits.argmax(1)
    return predicted == target if target is not None else predicted != y


def _result(
    model, x, x_adv, target, y, *, keep_failed: bool, c=None, evaluations: int | torch.Tensor = 0, forward_only: int = 0
):
    """The AttackResult for x_adv (see the module docstring for the conventions); its
    ``evaluations`` are the forward+backward passes per image, its ``forward_only`` the
    forward passes without a backward one (``forward_only`` per image, plus the final check,
    plus ``_setup``'s look at the first image)."""
    with torch.no_grad():
        success = _reached(model(x_adv), target, y)
    n = len(x)
    if not keep_failed:
        x_adv = torch.where(_col(success, x), x_adv, x)
    inf = torch.full((n,), math.inf, device=x.device, dtype=x.dtype)
    if c is None:
        c = torch.full((n,), math.nan, device=x.device, dtype=x.dtype)
    if not isinstance(evaluations, torch.Tensor):
        evaluations = torch.full((n,), int(evaluations), device=x.device, dtype=torch.long)
    return AttackResult(
        x_adv=x_adv.detach(),
        success=success,
        c=c,
        evaluations=evaluations,
        forward_only=torch.full((n,), forward_only + 1, device=x.device, dtype=torch.long).index_add(
            0,
            torch.zeros(min(n, 1), device=x.device, dtype=torch.long),
            torch.ones(min(n, 1), device=x.device, dtype=torch.long),
        ),
        target=target if target is not None else torch.full((n,), -1, device=x.device, dtype=torch.long),
        distortion=torch.where(success, distortion(x, x_adv), inf),
        l2=torch.where(success, (x_adv - x).flatten(1).norm(dim=1), inf),
    )


def _gradient(model, x, labels, sign: float) -> torch.Tensor:
    """sign · ∇ₓ Σ CE(f(x), labels), [N, ...] (the sum keeps each image's own gradient)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(sign * loss, x)
    return grad


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-image vector [N] reshaped to broadcast against images x [N, ...]."""
    return v.view(-1, *[1] * (x.dim() - 1))
