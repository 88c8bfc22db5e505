"""Why adversarial examples exist (chapter 7a): the linear explanation measured, and the paper's
"pockets" tested.

Goodfellow et al. (2015) explained adversarial examples by linearity: for a score wᵀx the step
ε·sign(w) changes the score by ε‖w‖₁, many small changes adding up. The paper (§4) had called
them low-probability "pockets", hard to find by sampling at random near an example. These
functions measure both pictures on a trained model; images x [N, ...] lie in the box [0, 1]
(any device: they are moved to the model's), labels y [N] are integers, ε is in pixel units.
Every function uses the model in eval mode and leaves it as it was.

``margin_ratio``, ``gradient_sign_change``
    along FGSM's step: how well the first-order prediction of the margin holds (1 for linear
    logits), and how much the loss's gradient turns (0 if the loss were linear).
``rival_template``
    for one image of a linear model: FGSM's step beside the sign of w_j − w_y, j the strongest
    rival.
``random_at_distance``, ``pocket_test``, ``pocket_table``
    the pockets test: is x + t·r still misclassified for t beyond 1 (r a minimum-norm
    perturbation found by an attack), and is a random point at the same distance?
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_bounds, check_images, check_int, check_labels, check_positive, eval_mode, to_model
from ._checks import without_label as _without_label
from .modern_attacks import fgsm, pgd

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PocketTest",
    "fgsm_against_pgd",
    "gradient_sign_change",
    "margin_ratio",
    "misclassified",
    "pocket_table",
    "pocket_test",
    "random_at_distance",
    "rival_template",
]


def _prepare(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y checked and moved to the model's device (x in the model's dtype)."""
    check_images("x", x)
    x = to_model(model, x)
    with eval_mode(model), torch.no_grad():
        classes = model(x[:1]).shape[1]
    return x, check_labels("y", y, len(x), classes).to(x.device)


def misclassified(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """bool [N] on the CPU: the model's answer for x [N, ...] is not y [N]."""
    x, y = _prepare(model, x, y)
    with eval_mode(model), torch.no_grad():
        return (model(x).argmax(1) != y).cpu()


def margin_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Per image, the change of the margin m = Z_y − Z_j along FGSM's step δ (size ``eps``) over
    its first-order prediction ∇ₓm·δ; j is the runner-up class at x (fixed along the step).

    Exactly 1 (up to rounding) when the logits Z are linear in x, whatever the box clipping
    does to δ; a deeper network bends it. Returns float64 [N] on the CPU (NaN where the
    prediction is 0).

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    check_positive("eps", eps)
    x, y = _prepare(model, x, y)
    with eval_mode(model):
        point = x.detach().clone().requires_grad_(True)
        logits = model(point)
        rival = _without_label(logits.detach(), y).argmax(1)

        def margin(z: torch.Tensor) -> torch.Tensor:
            return (z.gather(1, y[:, None]) - z.gather(1, rival[:, None])).squeeze(1)

        (grad,) = torch.autograd.grad(margin(logits).sum(), point)
        step = fgsm(model, x, y, eps).x_adv - x
        with torch.no_grad():
            change = margin(model(x + step)) - margin(logits.detach())
        predicted = (grad * step).flatten(1).sum(1)
    ratio = change.double() / predicted.double()
    return torch.where(predicted != 0, ratio, torch.full_like(ratio, math.nan)).cpu()


def _loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    point = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(point), y, reduction="sum"), point)
    return grad


def gradient_sign_change(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Per image, the share of pixels where sign ∇ₓ loss_f(·, y) differs between x and FGSM's
    point x + δ (size ``eps``): 0 if the loss were linear along δ. float [N] on the CPU.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    check_positive("eps", eps)
    x, y = _prepare(model, x, y)
    with eval_mode(model):
        before = _loss_gradient(model, x, y).sign()
        after = _loss_gradient(model, fgsm(model, x, y, eps).x_adv, y).sign()
    return (before != after).flatten(1).float().mean(1).cpu()


def rival_template(
    model: nn.Module, weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1
) -> tuple[int, torch.Tensor, torch.Tensor, float]:
    """For one image of a linear model (logits weight·x + b, ``weight`` [K, n]): (j, template,
    step, agree). j is the strongest rival of the label y (the largest other logit); template
    is sign(w_j − w_y) and step is FGSM's step divided by ``eps``, both [n] on the CPU; agree is
    the share of the pixels FGSM moved where the step's sign equals the template's.

    x: one image [1, ...] with n values; y: its label [1].

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    check_positive("eps", eps)
    if len(x) != 1:
        raise ValueError(f"x must hold one image [1, ...], got shape {tuple(x.shape)}")
    if weight.dim() != 2 or weight.shape[1] != x[0].numel():
        raise ValueError(f"weight must be [K, {x[0].numel()}], got shape {tuple(weight.shape)}")
    x, y = _prepare(model, x, y)
    with eval_mode(model), torch.no_grad():
        rival = int(_without_label(model(x), y).argmax(1))
    w = weight.detach().cpu().double()
    template = torch.sign(w[rival] - w[int(y)])
    step = ((fgsm(model, x, y, eps).x_adv - x) / eps).flatten().cpu().double()
    moved = step != 0
    agree = float((torch.sign(step) == template)[moved].double().mean()) if moved.any() else math.nan
    return rival, template, step, agree


def random_at_distance(
    x: torch.Tensor, length: torch.Tensor, *, seed: int = 0, bounds: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    """Per image a point p of the box at ‖p − x‖₂ = length[i], in a uniformly random direction.

    p = clip(x + s·u) with u uniform on the unit sphere (a seeded Gaussian, normalised) and s
    found by bisection: clipping only shortens a change, so s ≥ length. x [N, ...] in
    ``bounds``; length [N] ≥ 0 (any device). Returns [N, ...] like x. A length no point of the
    box reaches in direction u raises ValueError.
    """
    lower, upper = check_bounds(bounds)
    check_images("x", x, low=lower, high=upper)
    length = torch.as_tensor(length, dtype=x.dtype, device=x.device)
    if length.shape != (len(x),) or not torch.isfinite(length).all() or (length < 0).any():
        raise ValueError(f"length must be [{len(x)}] finite values >= 0, got {tuple(length.shape)}")
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.device)
    u = u / u.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))
    x64, want = x.double(), length.double()

    def size(s: torch.Tensor) -> torch.Tensor:
        return _clip(x64, s, u, lower, upper).sub(x64).flatten(1).norm(dim=1)

    room = torch.where(u > 0, upper - x64, lower - x64) * (u != 0)
    if (want > room.flatten(1).norm(dim=1) * (1 - 1e-9)).any():
        raise ValueError("length asks for a longer change than the box allows in the random direction")
    low, high = torch.zeros_like(want), want.clone()
    while (size(high) < want).any():
        high = torch.where(size(high) < want, 2 * high, high)
    for _ in range(60):
        middle = (low + high) / 2
        short = size(middle) < want
        low, high = torch.where(short, middle, low), torch.where(short, high, middle)
    return _clip(x64, high, u, lower, upper).to(x.dtype)


def _clip(x: torch.Tensor, s: torch.Tensor, u: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    return (x + s.view(-1, *[1] * (x.dim() - 1)) * u).clamp(lower, upper)


@dataclass(frozen=True)
class PocketTest:
    """The pockets test on the images an attack moved to an error (M of them).

    ``scales`` (S values of t); ``along`` bool [M, S]: x + t·r (clipped to the box) is
    misclassified; ``random`` bool [M]: a random point at distance ‖r‖₂ is misclassified;
    ``distortion`` [M]: the paper's per-pixel RMS of r; ``images``: how many images were given,
    ``correct``: how many of them the model classifies right (the attack's M of ``correct``).
    """

    scales: tuple[float, ...]
    along: torch.Tensor
    random: torch.Tensor
    distortion: torch.Tensor
    images: int
    correct: int

    def share(self, t: float) -> float:
        """The share of the M images still misclassified at x + t·r (t one of ``scales``)."""
        if t not in self.scales:
            raise ValueError(f"t must be one of the scales {self.scales}, got {t!r}")
        return float(self.along[:, self.scales.index(t)].double().mean()) if len(self.along) else math.nan


def pocket_test(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    scales: Sequence[float] = (0.5, 0.9, 1.0, 1.5, 2.0, 4.0),
    *,
    seed: int = 0,
) -> PocketTest:
    """Along r = x_adv − x: is clip(x + t·r) misclassified for each t in ``scales``, and is a
    random point at the same distance ‖r‖₂ (``random_at_distance``)?

    Only the images the model classifies right at x and wrong at x_adv are tested (an attack
    returns x itself where it failed). If the wrong answers filled a short segment of the ray
    (a "pocket" along r), they would stop beyond t = 1; if they fill a half-space, as for a
    linear model, they go on. x, x_adv [N, ...] in [0, 1]; y [N]; scales positive.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    if not scales or any(not (isinstance(t, (int, float)) and 0 < t < math.inf) for t in scales):
        raise ValueError(f"scales must be positive numbers, got {scales!r}")
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    check_int("seed", seed, minimum=0)
    x, y = _prepare(model, x, y)
    check_images("x_adv", x_adv)
    x_adv = to_model(model, x_adv)
    right = ~misclassified(model, x, y)
    moved = (right & misclassified(model, x_adv, y)).to(x.device) & (x_adv != x).flatten(1).any(1)
    start, r, labels = x[moved], (x_adv - x)[moved], y[moved]
    along = torch.stack([misclassified(model, (start + t * r).clamp(0, 1), labels) for t in scales], 1)
    length = r.flatten(1).norm(dim=1)
    far = random_at_distance(start, length, seed=seed)
    return PocketTest(
        scales=tuple(float(t) for t in scales),
        along=along.reshape(len(start), len(scales)),
        random=misclassified(model, far, labels),
        distortion=r.flatten(1).pow(2).mean(1).sqrt().cpu(),
        images=len(x),
        correct=int(right.sum()),
    )


def pocket_table(tests: Mapping[str, PocketTest]) -> pd.DataFrame:
    """One row per model: "tested" (images moved to an error), "reached" (their share of the
    images the model got right), "median distortion" (per-pixel RMS of r), the share still
    misclassified at each "t = …", and "random, same distance" (the share a random point at
    ‖r‖₂ misclassifies).

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    import pandas as pd

    if not tests:
        raise ValueError("tests must name at least one model, got an empty mapping")
    rows = {}
    for name, test in tests.items():
        row: dict[str, float] = {
            "tested": float(len(test.along)),
            "reached": len(test.along) / test.correct if test.correct else math.nan,
            "median distortion": float(test.distortion.median()) if len(test.along) else math.nan,
        }
        row |= {f"t = {t:g}": test.share(t) for t in test.scales}
        row["random, same distance"] = float(test.random.double().mean()) if len(test.random) else math.nan
        rows[name] = row
    return pd.DataFrame(rows).T


def fgsm_against_pgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1, steps: int = 20
) -> dict[str, int | float]:
    """FGSM and ℓ∞ PGD (``steps`` steps, coursekit's default start) at ``eps`` on the same images,
    compared image by image: ``report.paired_error_change`` with a = FGSM, b = PGD ({"n",
    "error_a", "error_b", "only_a", "only_b", "p_value"}; an error is a misclassified x').

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    from .report import paired_error_change

    check_positive("eps", eps)
    x, y = _prepare(model, x, y)
    one = fgsm(model, x, y, eps).success.cpu()
    many = pgd(model, x, y, eps, steps=steps).success.cpu()
    return paired_error_change(one, many)
