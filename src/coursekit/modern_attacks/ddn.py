"""Decoupled direction and norm (Rony et al. 2019): an L2 minimum-norm attack."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_positive
from ..results import AttackResult, attacking, from_points
from .common import _col, _images, _labels, _one_of, _reached

__all__ = ["ddn"]


def ddn(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    y: torch.Tensor | None = None,
    steps: int = 100,
    gamma: float = 0.05,
    init_norm: float = 1.0,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> AttackResult:
    """Decoupled direction and norm (Rony et al. 2019), an L2 minimum-norm attack.

    Each step: δ moves by α along the normalised gradient of the loss (ascent on CE(y), or
    descent on CE(target)), α falling from 1 to 0.01 on a cosine; then a norm ε (one per image,
    from ``init_norm``) shrinks by (1 − γ) if x + δ reaches the goal and grows by (1 + γ) if
    not, δ is rescaled to |δ|₂ = ε, and x + δ is clipped to the box. The smallest δ that
    reached the goal is kept. One gradient per image per step; no search over a weight c.

    Args: x [N, ...] in ``bounds``; exactly one of ``target`` [N] or ``y`` [N]; gamma in (0, 1).

    Used in chapters 7a (book/07a_attacks_and_linearity.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    _one_of(target, y)
    check_int("steps", steps)
    check_positive("init_norm", init_norm)
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    x, lower, upper = _images(model, x, bounds)
    targeted = target is not None
    largest = torch.maximum(x - lower, upper - x).flatten(1).norm(dim=1)  # no δ in the box is longer
    delta = torch.zeros_like(x)
    norm = torch.full((len(x),), float(init_norm), device=x.device, dtype=x.dtype)
    best_delta, best_l2 = delta.clone(), torch.full_like(norm, math.inf)
    with attacking(model, x) as passes:
        labels = _labels(model, x, {"target": target, "y": y})
        goal = labels["target"] if targeted else labels["y"]
        for i in range(steps):
            alpha = 0.01 + (1 - 0.01) * (1 + math.cos(math.pi * i / steps)) / 2
            point = (x + delta).detach().requires_grad_(True)
            logits = model(point)
            loss = F.cross_entropy(logits, goal, reduction="sum")
            (grad,) = torch.autograd.grad(-loss if targeted else loss, point)
            hit = _reached(logits.detach(), labels["target"], labels["y"])
            l2 = delta.flatten(1).norm(dim=1)
            better = hit & (l2 <= best_l2)
            best_l2 = torch.where(better, l2, best_l2)
            best_delta = torch.where(_col(better, x), delta, best_delta)
            delta = delta + alpha * grad / _col(grad.flatten(1).norm(dim=1).clamp_min(1e-12), x)
            norm = torch.minimum(norm * torch.where(hit, 1 - gamma, 1 + gamma), largest)
            delta = delta * _col(norm / delta.flatten(1).norm(dim=1).clamp_min(1e-12), x)
            delta = (x + delta).clamp(lower, upper) - x
        return from_points(model, x, x + best_delta, labels["target"], y=labels["y"], passes=passes)
