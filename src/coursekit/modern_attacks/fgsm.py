"""The fast gradient sign method (Goodfellow et al. 2014): a fixed-budget attack in L∞."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive
from ..results import AttackResult, attacking, from_points
from .common import _gradient, _images, _labels

__all__ = ["fgsm"]


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, bounds: tuple[float, float] = (0.0, 1.0)
) -> AttackResult:
    """The fast gradient sign method (Goodfellow et al. 2014), untargeted, in L∞.

    x' = clip(x + ε·sign(∇ₓ CE(f(x), y))). One gradient per image; for a linear model this is
    the exact maximiser of the loss's first-order change within |r|∞ ≤ ε. Equals
    ``pgd(..., steps=1, step_size=eps, random_start=False)``.

    Args: x [N, ...] in ``bounds``; y [N] true labels; eps > 0, in pixel units.
    Returns: AttackResult with x_adv the perturbed images (also where they fail), target −1.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    check_positive("eps", eps)
    x, lower, upper = _images(model, x, bounds)
    with attacking(model, x) as passes:
        y = _labels(model, x, {"y": y})["y"]
        grad = _gradient(model, x, y, 1.0)
        x_adv = (x + eps * grad.sign()).clamp(lower, upper)
        return from_points(model, x, x_adv, None, y=y, passes=passes, keep_failed=True)
