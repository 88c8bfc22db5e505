"""Chapter 4's exercises (``book/04_transfer.md``)."""

from __future__ import annotations

import torch
from torch import nn

from ..train import predict
from ..transfer import amplify, transfer_matrix
from .bank import Exercise
from .checking import Mistake


def _accuracy(examples, models, y) -> torch.Tensor:
    """The share classified correctly instead of the share misclassified."""
    return 1 - transfer_matrix(examples, models, y)


def _transposed(examples, models, y) -> torch.Tensor:
    """Rows = the models asked, columns = the sources."""
    return transfer_matrix(examples, models, y).T


def _counts(examples, models, y) -> torch.Tensor:
    """The number of fooling examples instead of their share."""
    rates = transfer_matrix(examples, models, y)
    return rates * len(y)


def _linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 10)).double()


def _matrix_cases() -> list[tuple]:
    """Two random linear classifiers on 4 × 4 "images", examples of two sources made by noise
    (so that the entries differ from row to row and from column to column)."""
    generator = torch.Generator().manual_seed(0)
    models = {"A": _linear(1), "B": _linear(2), "C": _linear(3)}
    x = torch.rand(40, 1, 4, 4, generator=generator, dtype=torch.float64)
    y = predict(models["A"], x)  # A is right on every clean image
    examples = {
        name: (x + scale * torch.randn(x.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
        for name, scale in (("A", 0.3), ("B", 0.6))
    }
    return [(examples, models, y)]


def _unclipped(x, x_adv, stddev) -> torch.Tensor:
    """The formula without clipping to the box."""
    r = x_adv - x
    return x + stddev * r / r.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))


def _batch_norm(x, x_adv, stddev) -> torch.Tensor:
    """One ℓ2 norm for the whole batch instead of one per image."""
    r = x_adv - x
    return (x + stddev * r / r.norm()).clamp(0, 1)


def _per_pixel_rms(x, x_adv, stddev) -> torch.Tensor:
    """Divided by the per-pixel RMS of r (an RMS of ``stddev``) instead of its ℓ2 norm."""
    r = x_adv - x
    rms = r.flatten(1).pow(2).mean(1).sqrt().view(-1, *[1] * (x.dim() - 1))
    return (x + stddev * r / rms).clamp(0, 1)


def _amplify_cases() -> list[tuple]:
    """MNIST-like images (most pixels 0, some near 1) and small perturbations of them; a large
    ``stddev`` makes the clipping show."""
    generator = torch.Generator().manual_seed(0)
    ink = torch.rand(6, 1, 8, 8, generator=generator) < 0.3
    x = torch.where(ink, 0.6 + 0.4 * torch.rand(6, 1, 8, 8, generator=generator), torch.zeros(()))
    x_adv = (x + 0.05 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    return [(x[:3], x_adv[:3], 0.1), (x[3:], x_adv[3:], 2.0)]


def _amplify_literal(x, x_adv, stddev) -> torch.Tensor:
    return amplify(x, x_adv, stddev, reading="literal")


EXERCISES = (
    Exercise(
        id="transfer_matrix",
        chapter="04_transfer",
        title="The transfer matrix",
        reference=transfer_matrix,
        mistakes=(
            Mistake(
                "you computed the share each model classifies correctly; an entry is the share it "
                "misclassifies (its answer is not the true label y).",
                _accuracy,
            ),
            Mistake(
                "you put the models asked in the rows; the paper's rows are the sources (whose "
                "examples), its columns the models asked: entry [i, j] = source i, model j.",
                _transposed,
            ),
            Mistake(
                "you returned the number of examples that fool each model; an entry is their share "
                "(divide by the number of images N).",
                _counts,
            ),
        ),
        sample_cases=_matrix_cases,
        points=3,
    ),
    Exercise(
        id="amplify_literal",
        chapter="04_transfer",
        title="The paper's amplification formula, literally",
        reference=_amplify_literal,
        mistakes=(
            Mistake(
                "you did not clip the result to [0, 1]; an amplified example must stay an image.",
                _unclipped,
            ),
            Mistake(
                "you divided by one norm over the whole batch; ‖x′ − x‖₂ in the formula is each "
                "image's own (flatten each image, then take the norm over its pixels).",
                _batch_norm,
            ),
            Mistake(
                "you divided by the per-pixel RMS of r, which scales r to an RMS of stddev (the "
                "other reading); the formula divides by the ℓ2 norm ‖x′ − x‖₂, √n times larger.",
                _per_pixel_rms,
            ),
        ),
        sample_cases=_amplify_cases,
        points=1,
    ),
)
