"""Chapter 7a's exercises (``book/07a_attacks_and_linearity.md``): a targeted FGSM, and PGD in
the ℓ2 ball.

Every function here takes images x [N, 1, 28, 28] in [0, 1] (on the model's device), integer
labels [N] and a budget ε, and returns the attacked images [N, 1, 28, 28].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import eval_mode
from ..modern_attacks import pgd
from .bank import Exercise
from .checking import Mistake


def _gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """∇ₓ of the summed cross-entropy of ``labels`` at x, [N, ...]."""
    with eval_mode(model):
        point = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(point), labels, reduction="sum"), point)
    return grad


# --- Exercise 1: a targeted FGSM -------------------------------------------------------------


def targeted_fgsm(model: nn.Module, x: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """One step *down* the loss of the target label: x − ε·sign(∇ₓ loss_f(x, target)), clipped
    to [0, 1] (equals ``pgd(..., steps=1, step_size=eps, random_start=False, target=target)``)."""
    return (x - eps * _gradient(model, x, target).sign()).clamp(0, 1).detach()


def _fgsm_up_the_target_loss(model, x, target, eps):
    return (x + eps * _gradient(model, x, target).sign()).clamp(0, 1).detach()


def _fgsm_raw_gradient(model, x, target, eps):
    return (x - eps * _gradient(model, x, target)).clamp(0, 1).detach()


def _fgsm_outside_the_box(model, x, target, eps):
    return (x - eps * _gradient(model, x, target).sign()).detach()


# --- Exercise 2: PGD in the ℓ2 ball ------------------------------------------------------------


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 20) -> torch.Tensor:
    """Untargeted ℓ2 PGD from r = 0 with step size 2.5·ε/steps (coursekit's ``pgd`` with
    ``norm="2", random_start=False``); eps in ‖r‖₂."""
    return pgd(model, x, y, eps, norm="2", steps=steps, random_start=False).x_adv


def _per_image(v: torch.Tensor) -> torch.Tensor:
    """‖v_i‖₂ per image, shaped [N, 1, 1, 1] (never 0)."""
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (v.dim() - 1))


def _l2_pgd(step, project):
    """ℓ2 PGD with a given step direction and projection (the mistakes vary one of them)."""

    def attack(model, x, y, eps, steps=20):
        r, size = torch.zeros_like(x), 2.5 * eps / steps
        for _ in range(steps):
            r = project(r + size * step(_gradient(model, x + r, y)), eps)
            r = (x + r).clamp(0, 1) - x
        return (x + r).detach()

    return attack


def _along_the_norm(g):
    return g / _per_image(g)


def _into_the_ball(r, eps):
    return r * (eps / _per_image(r)).clamp(max=1)


_pgd_l2_clip_per_pixel = _l2_pgd(_along_the_norm, lambda r, eps: r.clamp(-eps, eps))
_pgd_l2_sign_step = _l2_pgd(torch.sign, _into_the_ball)
_pgd_l2_batch_norm = _l2_pgd(lambda g: g / g.norm().clamp_min(1e-12), _into_the_ball)
_pgd_l2_onto_the_sphere = _l2_pgd(_along_the_norm, lambda r, eps: r * eps / _per_image(r))


# --- Sample cases that need no chapter state ----------------------------------------------------


def _sample_models() -> list[nn.Module]:
    """A linear model and a small ReLU network on 28×28 images, seeded (the global RNG is kept)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        linear = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        network = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    return [linear.eval(), network.eval()]


def _sample_images(count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(count, 1, 28, 28, generator=generator) ** 3  # mostly dark, as MNIST
    labels = torch.randint(0, 10, (count,), generator=generator)
    return x, labels


def _targeted_cases() -> list[tuple]:
    x, target = _sample_images()
    linear, network = _sample_models()
    return [(linear, x, target, 0.1), (network, x, (target + 3) % 10, 0.3)]


def _pgd_l2_cases() -> list[tuple]:
    x, y = _sample_images()
    linear, network = _sample_models()
    return [(linear, x, y, 1.0), (network, x, y, 2.0, 5)]


EXERCISES = (
    Exercise(
        id="targeted_fgsm",
        chapter="07a_attacks_and_linearity",
        title="A targeted FGSM",
        reference=targeted_fgsm,
        mistakes=(
            Mistake(
                "you stepped *up* the loss of the target label, which pushes the image away "
                "from the target; to reach it, step down that loss: x − ε·sign(∇ₓ loss_f(x, t)).",
                _fgsm_up_the_target_loss,
            ),
            Mistake(
                "you stepped along the gradient itself; FGSM steps along its sign, so that every "
                "pixel moves by exactly ε, the most the ℓ∞ budget allows.",
                _fgsm_raw_gradient,
            ),
            Mistake(
                "you left pixels outside the box: clip x' to [0, 1] (no pixel can be darker than "
                "black or brighter than white).",
                _fgsm_outside_the_box,
            ),
        ),
        sample_cases=_targeted_cases,
        points=2,
        atol=1e-6,
        hint="a targeted FGSM is one step of size ε, against the sign of the gradient of "
        "loss_f(x, target), then a clip to [0, 1].",
    ),
    Exercise(
        id="pgd_l2",
        chapter="07a_attacks_and_linearity",
        title="PGD in the ℓ2 ball",
        reference=pgd_l2,
        mistakes=(
            Mistake(
                "you clipped each pixel of r to [−ε, ε]: that is the ℓ∞ ball's projection (and "
                "here it hardly acts, since no single pixel grows to ε). The ℓ2 ball's projection "
                "shrinks the whole r: r·min(1, ε/‖r‖₂).",
                _pgd_l2_clip_per_pixel,
            ),
            Mistake(
                "you stepped along sign(g), the ℓ∞ step; in the ℓ2 ball the step goes along "
                "g/‖g‖₂, the direction in which a step of ℓ2 length 1 raises the loss most.",
                _pgd_l2_sign_step,
            ),
            Mistake(
                "you normalised the gradient by the norm of the whole batch; each image needs "
                "its own ‖g‖₂ (flatten(1).norm(dim=1), reshaped to [N, 1, 1, 1]).",
                _pgd_l2_batch_norm,
            ),
            Mistake(
                "you rescaled r to length ε at every step, onto the sphere; the projection onto "
                "the ball leaves a shorter r alone: r·min(1, ε/‖r‖₂).",
                _pgd_l2_onto_the_sphere,
            ),
        ),
        sample_cases=_pgd_l2_cases,
        points=2,
        atol=1e-5,
        hint="each step: g at x + r; r += step·g/‖g‖₂ (per image); r *= min(1, ε/‖r‖₂); then clip x + r to [0, 1].",
    ),
)
