"""Chapter 3b's exercises (``book/03b_minimum_distortion.md``)."""

from __future__ import annotations

import torch

from ..linear import half_space_bound
from .bank import Exercise
from .checking import Mistake


def _gaps(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, l: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_j − z_l for j ≠ l, |w_l − w_j| for j ≠ l), float64."""
    W, b = W.double(), b.double()
    z = W @ x.flatten().double() + b
    others = torch.arange(len(W)) != int(l)
    return z[others] - z[int(l)], (W[int(l)] - W[others]).norm(dim=1)


def _smallest_gap(W, b, x, l) -> float:
    """The closest rival's half-space instead of the farthest."""
    gap, length = _gaps(W, b, x, l)
    return float((gap.clamp(min=0) / length).min())


def _squared_length(W, b, x, l) -> float:
    """Divided by |w_l − w_j|² (the step of the projection) instead of |w_l − w_j|."""
    gap, length = _gaps(W, b, x, l)
    return float((gap.clamp(min=0) / length**2).max())


def _per_pixel(W, b, x, l) -> float:
    """The bound as a per-pixel RMS (divided by √n), not an ℓ2 length."""
    return half_space_bound(W, b, x, l) / x.numel() ** 0.5


def _no_positive_part(W, b, x, l) -> float:
    """(z_j − z_l) without the positive part: negative where x is already labelled l."""
    gap, length = _gaps(W, b, x, l)
    return float((gap / length).max())


def _bound_cases() -> list[tuple]:
    """A random linear classifier on 12 "pixels", three images attacked towards another label
    and one towards the label it already has (the bound is then 0)."""
    generator = torch.Generator().manual_seed(0)
    W = torch.randn(10, 12, generator=generator, dtype=torch.float64)
    b = 0.1 * torch.randn(10, generator=generator, dtype=torch.float64)
    x = torch.rand(4, 12, generator=generator, dtype=torch.float64)
    own = (W @ x.T + b[:, None]).argmax(0)
    targets = [int((own[0] + 1) % 10), int((own[1] + 3) % 10), int((own[2] + 7) % 10), int(own[3])]
    return [(W, b, x[i], targets[i]) for i in range(4)]


EXERCISES = (
    Exercise(
        id="half_space_bound",
        chapter="03b_minimum_distortion",
        title="The half-space bound",
        reference=half_space_bound,
        mistakes=(
            Mistake(
                "you took the smallest distance over the rivals j; l must beat every rival, so "
                "the point must lie in every half-space: the bound is the largest distance.",
                _smallest_gap,
            ),
            Mistake(
                "you divided by |w_l − w_j|²: that is the step along w_l − w_j; the distance to "
                "the hyperplane divides the gap by the length |w_l − w_j| once.",
                _squared_length,
            ),
            Mistake(
                "you divided by √n and returned a per-pixel RMS; the bound is on the ℓ2 length "
                "|D(x, l) − x|, the quantity the next cell compares it with.",
                _per_pixel,
            ),
            Mistake(
                "you left out the positive part (·)₊: where l already beats j the gap is negative "
                "and that half-space costs nothing, so the bound is 0, never negative.",
                _no_positive_part,
            ),
        ),
        sample_cases=_bound_cases,
        points=2,
    ),
)
