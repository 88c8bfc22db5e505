"""Fixed-budget attacks (is there an error within ε?): FGSM and PGD."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import (
    check_choice,
    check_int,
    check_positive,
)
from ..results import AttackResult, attacking, from_points
from .common import NORMS, _col, _gradient, _images, _labels

__all__ = ["fgsm", "pgd"]


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, bounds: tuple[float, float] = (0.0, 1.0)
) -> AttackResult:
    """The fast gradient sign method (Goodfellow et al. 2014), untargeted, in L∞.

    x' = clip(x + ε·sign(∇ₓ CE(f(x), y))). One gradient per image; for a linear model this is
    the exact maximiser of the loss's first-order change within |r|∞ ≤ ε. Equals
    ``pgd(..., steps=1, step_size=eps, random_start=False)``.

    Args: x [N, ...] in ``bounds``; y [N] true labels; eps > 0, in pixel units.
    Returns: AttackResult with x_adv the perturbed images (also where they fail), target −1.
    """
    check_positive("eps", eps)
    x, lower, upper = _images(model, x, bounds)
    with attacking(model, x) as passes:
        y = _labels(model, x, {"y": y})["y"]
        grad = _gradient(model, x, y, 1.0)
        x_adv = (x + eps * grad.sign()).clamp(lower, upper)
        return from_points(model, x, x_adv, None, y=y, passes=passes, keep_failed=True)


def _random_start(x, eps, norm, generator):
    """A uniform random point of the ε-ball (L∞ cube or L2 ball) around each image."""
    noise = torch.rand(x.shape, generator=generator).to(x)
    if norm == "inf":
        return (2 * noise - 1) * eps
    direction = torch.randn(x.shape, generator=generator).to(x)
    direction = direction / _col(direction.flatten(1).norm(dim=1), x)
    radius = eps * torch.rand(len(x), generator=generator).to(x) ** (1 / x[0].numel())
    return direction * _col(radius, x)


def _step_and_project(delta, grad, eps, step_size, norm):
    """One ascent step on delta along grad in ``norm``, then back into the ε-ball."""
    if norm == "inf":
        return (delta + step_size * grad.sign()).clamp(-eps, eps)
    delta = delta + step_size * grad / _col(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)
    factor = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return delta * _col(factor, delta)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    norm: str = "inf",
    steps: int = 40,
    step_size: float | None = None,
    target: torch.Tensor | None = None,
    random_start: bool = True,
    seed: int = 0,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> AttackResult:
    """Projected gradient descent (Madry et al. 2017) in the L∞ or L2 ball of radius ε.

    From a uniform random point of the ball (``random_start``), ``steps`` times: a step of
    length ``step_size`` along sign(∇) (L∞) or ∇/|∇|₂ (L2) of the loss, then projection onto
    the ball and the box. Untargeted it ascends CE(f(x'), y); with ``target`` [N] it descends
    CE(f(x'), target). Returns the last iterate, as Madry et al. and foolbox do.

    Args: x [N, ...] in ``bounds``; y [N] true labels; eps > 0 in pixel units (L∞) or in
    |r|₂ (L2); step_size defaults to 2.5·ε/steps; ``seed`` fixes the random start.
    """
    check_positive("eps", eps)
    check_choice("norm", norm, NORMS)
    check_int("steps", steps)
    step_size = 2.5 * eps / steps if step_size is None else step_size
    check_positive("step_size", step_size)
    x, lower, upper = _images(model, x, bounds)
    with attacking(model, x) as passes:
        labels = _labels(model, x, {"y": y, "target": target})
        y, target = labels["y"], labels["target"]
        generator = torch.Generator().manual_seed(seed)
        delta = _random_start(x, eps, norm, generator) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(lower, upper) - x
        for _ in range(steps):
            grad = _gradient(model, x + delta, y if target is None else target, 1.0 if target is None else -1.0)
            delta = _step_and_project(delta, grad, eps, step_size, norm)
            delta = (x + delta).clamp(lower, upper) - x
        goal = {"y": y} if target is None else {}
        return from_points(model, x, x + delta, target, passes=passes, keep_failed=True, **goal)
