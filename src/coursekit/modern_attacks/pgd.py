"""Projected gradient descent (Madry et al. 2017): a fixed-budget attack in the L∞ or L2 ball.

``_pgd_steps`` is PGD's loop itself, also run by the ℓ∞ minimum-norm attack made from it
(``pgd_bisection``), with a radius per image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_choice,
    check_int,
    check_positive,
)
from ..results import AttackResult, attacking, from_points
from .common import NORMS, _col, _images, _labels

__all__ = ["pgd"]


def _random_start(x: torch.Tensor, eps: float | torch.Tensor, norm: str, generator: torch.Generator) -> torch.Tensor:
    """A uniform random point of the ε-ball (L∞ cube or L2 ball) around each image; ``eps`` a
    number or one radius per image (a tensor that broadcasts against x [N, ...])."""
    noise = torch.rand(x.shape, generator=generator).to(x)
    if norm == "inf":
        return (2 * noise - 1) * eps
    direction = torch.randn(x.shape, generator=generator).to(x)
    direction = direction / _col(direction.flatten(1).norm(dim=1), x)
    radius = eps * torch.rand(len(x), generator=generator).to(x) ** (1 / x[0].numel())
    return direction * _col(radius, x)


def _within(t: torch.Tensor, bound: float | torch.Tensor) -> torch.Tensor:
    """t clamped to [−bound, bound]: one bound (a number) or one per element (a tensor)."""
    if isinstance(bound, torch.Tensor):
        return t.clamp(-bound, bound)
    return t.clamp(-bound, bound)


def _step_and_project(
    delta: torch.Tensor, grad: torch.Tensor, eps: float | torch.Tensor, step_size: float | torch.Tensor, norm: str
) -> torch.Tensor:
    """One ascent step on delta along grad in ``norm``, then back into the ε-ball."""
    if norm == "inf":
        return _within(delta + step_size * grad.sign(), eps)
    delta = delta + step_size * grad / _col(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)
    factor = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return delta * _col(factor, delta)


@dataclass(frozen=True)
class _PgdRun:
    """What PGD's loop needs besides the images: ``steps`` steps of ``step_size`` in ``norm``
    inside the ε-ball (``eps`` and ``step_size``: numbers, or one per image as tensors that
    broadcast against the images) and the box [lower, upper]; ``sign`` +1 ascends the loss of
    the labels (untargeted), −1 descends it (towards a target)."""

    eps: float | torch.Tensor
    step_size: float | torch.Tensor
    steps: int
    norm: str
    lower: float
    upper: float
    sign: float


Watch = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


def _pgd_steps(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    delta: torch.Tensor,
    run: _PgdRun,
    watch: Watch | None = None,
) -> torch.Tensor:
    """PGD's loop from the perturbation delta [N, ...] of the images x: each step a gradient of
    sign · Σ CE(f(x + δ), labels), a step along it and the projection onto the ball and the box.
    ``watch(point, delta, logits)`` sees each step's point x + δ, its δ and logits (detached)
    before the step. Returns the last δ."""
    for _ in range(run.steps):
        point = (x + delta).detach().requires_grad_(True)
        logits = model(point)
        (grad,) = torch.autograd.grad(run.sign * F.cross_entropy(logits, labels, reduction="sum"), point)
        if watch is not None:
            watch(point.detach(), delta, logits.detach())
        delta = _step_and_project(delta, grad, run.eps, run.step_size, run.norm)
        delta = (x + delta).clamp(run.lower, run.upper) - x
    return delta


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

    Used in chapters 1 (book/01_data_and_models.md), 7a (book/07a_attacks_and_linearity.md) and
    7b (book/07b_certificates_and_defences.md).
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
        run = _PgdRun(eps, step_size, steps, norm, lower, upper, sign=1.0 if target is None else -1.0)
        delta = _pgd_steps(model, x, y if target is None else target, delta, run)
        goal = {"y": y} if target is None else {}
        return from_points(model, x, x + delta, target, passes=passes, keep_failed=True, **goal)
