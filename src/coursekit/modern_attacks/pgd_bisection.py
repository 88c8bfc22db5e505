"""The ℓ∞ minimum-norm attack made from PGD: a bisection over the radius ε, per image."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_int
from ..results import AttackResult, attacking, from_points, lp_distance
from .common import _col, _images, _labels
from .pgd import _pgd_steps, _PgdRun, _random_start

__all__ = ["pgd_bisection"]


def pgd_bisection(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    steps: int = 10,
    bisection_steps: int = 10,
    seed: int = 0,
) -> AttackResult:
    """The ℓ∞ minimum-norm attack made from PGD: per image, a bisection over ε in [0, 1] (the
    whole box), ``bisection_steps`` times PGD of ``steps`` steps (``_targeted_pgd``) at the
    midpoint of the bracket; a success lowers the bracket's top to the found point's |r|∞.
    Returns the closest point that reached the target (x itself where none did) as an
    AttackResult; ``evaluations`` = bisection_steps × steps forward+backward passes.

    Args: x [N, ...] in [0, 1]; target [N] labels; ``seed`` fixes the random starts."""
    check_int("steps", steps)
    check_int("bisection_steps", bisection_steps)
    generator = torch.Generator().manual_seed(seed)
    x, _, _ = _images(model, x, (0.0, 1.0))
    with attacking(model, x) as passes:
        target = _labels(model, x, {"target": target})["target"]
        low = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        high = torch.ones_like(low)
        best, best_d = x.clone(), torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)
        for _ in range(bisection_steps):
            mid = (low + high) / 2
            point, hit = _targeted_pgd(model, x, target, mid, steps, generator)
            d = torch.where(hit, lp_distance(point - x, "inf"), torch.full_like(best_d, math.inf))
            better = d < best_d
            best = torch.where(_col(better, x), point, best)
            best_d = torch.minimum(best_d, d)
            high = torch.where(hit, torch.minimum(high, d.to(x.dtype)), high)
            low = torch.where(hit, low, mid)
        return from_points(model, x, best, target, passes=passes)


def _targeted_pgd(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, eps: torch.Tensor, steps: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ∞ PGD (``pgd._pgd_steps``) towards ``target`` with a radius per image (eps [N]): random
    start, ``steps`` signed-gradient steps of 2.5 ε / steps descending CE(f(x'), target), each
    projected onto the ε-cube and the box. Returns the closest point (in ℓ∞) that reached the
    target at any step or at the last iterate [N, ...], and whether one did [N]."""
    col = _col(eps, x)
    best, best_d = x.clone(), torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)

    def keep_closest(point: torch.Tensor, delta: torch.Tensor, logits: torch.Tensor) -> None:
        nonlocal best, best_d
        better = (logits.argmax(1) == target) & (lp_distance(delta, "inf") < best_d)
        best = torch.where(_col(better, x), point, best)
        best_d = torch.where(better, lp_distance(delta, "inf"), best_d)

    delta = _random_start(x, col, "inf", generator)
    delta = (x + delta).clamp(0, 1) - x
    run = _PgdRun(col, 2.5 * col / steps, steps, "inf", 0.0, 1.0, sign=-1.0)
    delta = _pgd_steps(model, x, target, delta, run, watch=keep_closest)
    with torch.no_grad():  # the last iterate
        keep_closest(x + delta, delta, model(x + delta))
    return best, torch.isfinite(best_d)
