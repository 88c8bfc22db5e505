"""Chapter 7b's exercises (``book/07b_certificates_and_defences.md``)."""

from __future__ import annotations

import torch

from .bank import Exercise
from .checking import Mistake


def _logits(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x @ W.T + b  # [N, K]


def linear_radius(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The exact ℓ2 distance from each image to the nearest decision boundary of the linear
    classifier z = W v + b, ignoring the box [0, 1].

    ``W`` [K, n], ``b`` [K], ``x`` [N, n] flattened images, ``y`` [N] labels (int64 in [0, K)).
    Per image: the smallest over j ≠ y of (z_y − z_j) / ‖w_y − w_j‖₂ (the distance to the
    hyperplane z_y = z_j), clamped at 0 (a misclassified image is at distance 0). Returns [N].
    """
    z = _logits(W, b, x)
    length = (W[y][:, None, :] - W[None]).norm(dim=2)  # [N, K]: ‖w_y − w_j‖₂
    gaps = (z.gather(1, y[:, None]) - z) / length
    return gaps.scatter(1, y[:, None], float("inf")).amin(1).clamp_min(0)


def _one_bound(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The certificate's bound: the margin over √2 ‖W‖₂, the same length for every rival."""
    z = _logits(W, b, x)
    rival = z.scatter(1, y[:, None], -float("inf")).amax(1)
    margin = z.gather(1, y[:, None]).squeeze(1) - rival
    return (margin / (2**0.5 * torch.linalg.matrix_norm(W, ord=2))).clamp_min(0)


def _rival_norm(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Divided by ‖w_j‖₂, the rival's weights alone."""
    z = _logits(W, b, x)
    gaps = (z.gather(1, y[:, None]) - z) / W.norm(dim=1)[None]
    return gaps.scatter(1, y[:, None], float("inf")).amin(1).clamp_min(0)


def _runner_up(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The distance to the boundary of the rival with the largest logit only."""
    z = _logits(W, b, x)
    j = z.scatter(1, y[:, None], -float("inf")).argmax(1)
    gap = z.gather(1, y[:, None]).squeeze(1) - z.gather(1, j[:, None]).squeeze(1)
    return (gap / (W[y] - W[j]).norm(dim=1)).clamp_min(0)


def _not_clamped(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """No clamp: a misclassified image gets a negative distance."""
    z = _logits(W, b, x)
    length = (W[y][:, None, :] - W[None]).norm(dim=2)
    gaps = (z.gather(1, y[:, None]) - z) / length
    return gaps.scatter(1, y[:, None], float("inf")).amin(1)


def _radius_cases() -> list[tuple]:
    """A 2-D toy with a misclassified image, and a random 10-class classifier whose nearest
    boundary is often not the runner-up class's."""
    toy = (
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]),
        torch.zeros(3),
        torch.tensor([[2.0, 1.0], [0.0, 3.0]]),
        torch.tensor([0, 2]),
    )
    draw = torch.Generator().manual_seed(0)
    W = torch.randn(10, 20, generator=draw, dtype=torch.float64) * torch.linspace(0.2, 3.0, 10)[:, None]
    b = torch.randn(10, generator=draw, dtype=torch.float64)
    x = torch.rand(12, 20, generator=draw, dtype=torch.float64)
    y = (x @ W.T + b).argmax(1)
    y[:2] = (y[:2] + 1) % 10  # two misclassified images
    return [toy, (W, b, x, y)]


EXERCISES = (
    Exercise(
        id="linear_radius",
        chapter="07b_certificates_and_defences",
        title="The exact radius of a linear model",
        reference=linear_radius,
        mistakes=(
            Mistake(
                "you divided every margin by the certificate's one bound √2‖W‖₂; the exact "
                "distance to the boundary between y and j divides z_y − z_j by that pair's own "
                "length ‖w_y − w_j‖₂, and takes the smallest over j.",
                _one_bound,
            ),
            Mistake(
                "you divided by ‖w_j‖₂, the rival's weights alone; the boundary z_y = z_j is "
                "the hyperplane (w_y − w_j)·v + b_y − b_j = 0, whose normal is w_y − w_j.",
                _rival_norm,
            ),
            Mistake(
                "you measured the distance to the boundary of the runner-up class only (the "
                "largest rival logit); the nearest boundary can belong to another class whose "
                "w_y − w_j is longer. Take the smallest distance over every j ≠ y.",
                _runner_up,
            ),
            Mistake(
                "you did not clamp at 0: a misclassified image (z_y below a rival's logit) has "
                "a negative gap, but it is already an error, so its radius is 0.",
                _not_clamped,
            ),
        ),
        sample_cases=_radius_cases,
        points=3,
        hint="per image, the smallest over j ≠ y of (z_y − z_j) / ‖w_y − w_j‖₂, clamped at 0.",
    ),
)
