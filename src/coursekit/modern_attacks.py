"""What came after the paper: the attacks of the next decade, a certificate and PGD training.

Same conventions as ``coursekit.attack.lbfgs_attack``: batched tensors on the model's device,
images x [N, ...] inside explicit ``bounds`` (default [0, 1]), integer labels [N], the model
used in eval mode and left as it was, results as ``AttackResult``. Distortion is the paper's
sqrt(Σ r_i² / n) (n pixels per image); ``l2`` is |r|₂.

Fixed-budget attacks (the question: *is there an error within ε?*)

``fgsm(model, x, y, eps)``
    Goodfellow et al. 2014: one step x + ε·sign(∇ₓ loss_f(x, y)), clipped to the box.
``pgd(model, x, y, eps, norm="inf" | "2", steps, step_size, target=None)``
    Madry et al. 2017: projected gradient ascent on the loss inside the ε-ball (L∞ or L2),
    from a random start; with ``target`` it descends the loss of the target label instead.

Minimum-norm attacks (the question of Tables 1–4: *how far is the nearest error?*)

``carlini_wagner_l2(model, x, target)``
    Carlini and Wagner 2017: Adam on |r|² + c·max(max_{j≠t} Z_j − Z_t, −κ) in tanh
    coordinates (so the box needs no projection), with a binary search over c.
``ddn(model, x, target)``
    Rony et al. 2019, "decoupled direction and norm": a gradient step for the direction,
    then the perturbation is rescaled to a norm ε that shrinks by (1 − γ) while the point is
    adversarial and grows by (1 + γ) while it is not.

Both minimum-norm attacks also run untargeted (``y=`` the true labels instead of ``target``).
In the results, ``target`` is −1 for an untargeted attack; ``success`` means "classified as
the target" (targeted) or "not classified as y" (untargeted). A fixed-budget attack returns
the perturbed image also where it failed (adversarial training needs it); a minimum-norm
attack returns x itself there. Either way ``distortion`` and ``l2`` are inf where the attack
failed, so that a mean over failures cannot pass for a small distortion.

``certified_radius`` turns chapter 5's product of layer bounds into a guarantee, and
``madry_training`` trains a zoo model on PGD examples (cached like every trained model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_bounds,
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_positive,
    eval_mode,
    logit_margin,
    model_device,
    to_model,
)
from .attack import AttackResult, distortion
from .config import PROFILE_TABLE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    import pandas as pd

    from .models import ZooModel


__all__ = [
    "MODERN_SIZES",
    "NORMS",
    "attack_summary",
    "carlini_wagner_l2",
    "certified_radius",
    "ddn",
    "error_vs_eps",
    "fgsm",
    "madry_training",
    "pgd",
    "timed",
]

NORMS = ("inf", "2")

# Sizes of chapter 7's experiments per profile (the profiles of ``coursekit.config``).
# Chapter 7's sizes per profile: the "modern" section of the profile table (``config.PROFILE_TABLE``).
MODERN_SIZES = {profile: sizes["modern"] for profile, sizes in PROFILE_TABLE.items()}


def _setup(model, x, labels: dict, bounds):
    """Check x and the labels, move x to the model's device and floating dtype (a float64 batch
    for a float32 model is converted, as ``lbfgs_attack`` does). Returns (x, labels, lower,
    upper); ``labels`` maps argument names to tensors or None. The model's number of classes is
    read from one image in eval mode, without gradients: a model left in train mode keeps its
    BatchNorm statistics, and its dropout does not draw from the global random generator."""
    lower, upper = check_bounds(bounds)
    check_images("x", x, low=lower, high=upper)
    x = to_model(model, x)
    with eval_mode(model), torch.no_grad():
        k = model(x[:1]).shape[1]
    checked = {
        name: None if value is None else check_labels(name, value, len(x), k).to(x.device)
        for name, value in labels.items()
    }
    return x, checked, lower, upper


def _one_of(target, y) -> None:
    if (target is None) == (y is None):
        given = [name for name, value in (("target", target), ("y", y)) if value is not None]
        raise ValueError(
            "give exactly one of target (targeted attack) and y (untargeted attack), "
            f"got {' and '.join(given) or 'neither'}"
        )


def _reached(logits: torch.Tensor, target, y) -> torch.Tensor:
    """[N] bool: the attack's goal holds (argmax = target, or argmax ≠ y when untargeted)."""
    predicted = logits.argmax(1)
    return predicted == target if target is not None else predicted != y


def _result(
    model, x, x_adv, target, y, *, keep_failed: bool, c=None, evaluations: int | torch.Tensor = 0, forward_only: int = 0
):
    """The AttackResult for x_adv (see the module docstring for the conventions); its
    ``evaluations`` are the forward+backward passes per image, its ``forward_only`` the
    forward passes without a backward one (``forward_only`` per image, plus the final check,
    plus ``_setup``'s look at the first image)."""
    with torch.no_grad():
        success = _reached(model(x_adv), target, y)
    n = len(x)
    if not keep_failed:
        x_adv = torch.where(_col(success, x), x_adv, x)
    inf = torch.full((n,), math.inf, device=x.device, dtype=x.dtype)
    if c is None:
        c = torch.full((n,), math.nan, device=x.device, dtype=x.dtype)
    if not isinstance(evaluations, torch.Tensor):
        evaluations = torch.full((n,), int(evaluations), device=x.device, dtype=torch.long)
    return AttackResult(
        x_adv=x_adv.detach(),
        success=success,
        c=c,
        evaluations=evaluations,
        forward_only=torch.full((n,), forward_only + 1, device=x.device, dtype=torch.long).index_add(
            0,
            torch.zeros(min(n, 1), device=x.device, dtype=torch.long),
            torch.ones(min(n, 1), device=x.device, dtype=torch.long),
        ),
        target=target if target is not None else torch.full((n,), -1, device=x.device, dtype=torch.long),
        distortion=torch.where(success, distortion(x, x_adv), inf),
        l2=torch.where(success, (x_adv - x).flatten(1).norm(dim=1), inf),
    )


def _gradient(model, x, labels, sign: float) -> torch.Tensor:
    """sign · ∇ₓ Σ CE(f(x), labels), [N, ...] (the sum keeps each image's own gradient)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(sign * loss, x)
    return grad


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-image vector [N] reshaped to broadcast against images x [N, ...]."""
    return v.view(-1, *[1] * (x.dim() - 1))


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
    x, labels, lower, upper = _setup(model, x, {"y": y}, bounds)
    with eval_mode(model):
        grad = _gradient(model, x, labels["y"], 1.0)
        x_adv = (x + eps * grad.sign()).clamp(lower, upper)
        return _result(model, x, x_adv, None, labels["y"], keep_failed=True, evaluations=1)


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
    x, labels, lower, upper = _setup(model, x, {"y": y, "target": target}, bounds)
    y, target = labels["y"], labels["target"]
    generator = torch.Generator().manual_seed(seed)
    delta = _random_start(x, eps, norm, generator) if random_start else torch.zeros_like(x)
    delta = (x + delta).clamp(lower, upper) - x
    with eval_mode(model):
        for _ in range(steps):
            grad = _gradient(model, x + delta, y if target is None else target, 1.0 if target is None else -1.0)
            delta = _step_and_project(delta, grad, eps, step_size, norm)
            delta = (x + delta).clamp(lower, upper) - x
        return _result(model, x, x + delta, target, y if target is None else None, keep_failed=True, evaluations=steps)


def _cw_margin(logits: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """C&W's f: max_{j≠t} Z_j − Z_t (targeted) or Z_y − max_{j≠y} Z_j, per image [N].
    Positive while the goal is not reached."""
    margin = logit_margin(logits, labels)
    return -margin if targeted else margin


def carlini_wagner_l2(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    y: torch.Tensor | None = None,
    search_steps: int = 9,
    steps: int = 1000,
    c_init: float = 1e-3,
    lr: float = 1e-2,
    confidence: float = 0.0,
    abort_early: bool = True,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> AttackResult:
    """The Carlini–Wagner L2 attack (2017), batched.

    x' = m + h·tanh(w) (m, h the box's centre and half-width) is inside the box for every w.
    For each weight c, Adam (learning rate ``lr``, ``steps`` steps, all images at once) from
    w = atanh(x) minimises |x' − x|² + c·max(f(x'), −κ), f as in ``_cw_margin``; with
    ``abort_early`` it stops when the batch's loss has not fallen by 0.01% over a tenth of the
    steps. The search over c starts at ``c_init``, ×10 until an image succeeds, then bisects
    (c weighs the *loss* here, the opposite of the paper's c). Every iterate that reaches the
    goal and is closer than the best so far is kept; an image that is already at the goal is
    returned as it is (distortion 0, c = inf, as in ``lbfgs_attack``).

    Args: x [N, ...] in ``bounds``; exactly one of ``target`` [N] (targeted) or ``y`` [N]
    (untargeted). Returns an AttackResult; ``c`` is the weight whose run found x_adv.
    """
    _one_of(target, y)
    for name, value in (("search_steps", search_steps), ("steps", steps)):
        check_int(name, value)
    check_positive("c_init", c_init)
    check_positive("lr", lr)
    check_positive("confidence", confidence, allow_zero=True)
    x, labels, lower, upper = _setup(model, x, {"target": target, "y": y}, bounds)
    goal = labels["target"] if target is not None else labels["y"]
    middle, half = (upper + lower) / 2, (upper - lower) / 2
    w0 = torch.atanh((x - middle) / half * 0.999999)
    c = torch.full((len(x),), float(c_init), device=x.device, dtype=x.dtype)
    c_low, c_high = torch.zeros_like(c), torch.full_like(c, math.inf)
    with eval_mode(model), torch.no_grad():  # an image already at the goal is its own answer
        trivial = _reached(model(x), labels["target"], labels["y"])
    best = _CWBest(
        x.clone(), torch.where(trivial, 0.0, math.inf).to(x.dtype), torch.where(trivial, math.inf, math.nan).to(x.dtype)
    )
    run = _CWRun(x, w0, middle, half, goal, labels, target is not None, steps, lr, confidence, abort_early)
    evaluations = 0
    with eval_mode(model):
        for _ in range(search_steps):
            found, taken = _cw_adam(model, run, c, best)
            evaluations += taken
            c_high = torch.where(found, c, c_high)
            c_low = torch.where(found, c_low, c)
            c = torch.where(torch.isinf(c_high), c * 10, (c_low + c_high) / 2)
        return _result(
            model,
            x,
            best.x,
            labels["target"],
            labels["y"],
            keep_failed=False,
            c=best.c,
            evaluations=evaluations,
            forward_only=1,
        )


@dataclass
class _CWBest:
    """The closest example at the goal found so far per image: x [N, ...], d2 = |x − x0|² [N]
    and the weight c [N] whose run found it."""

    x: torch.Tensor
    d2: torch.Tensor
    c: torch.Tensor


@dataclass
class _CWRun:
    """What one weight's Adam run of ``carlini_wagner_l2`` needs: the images x, the start w0 in
    tanh space, the box's ``middle`` and ``half`` width, the ``goal`` labels (``labels``: the
    target and y as given), whether the attack is ``targeted``, and the options."""

    x: torch.Tensor
    w0: torch.Tensor
    middle: float
    half: float
    goal: torch.Tensor
    labels: dict
    targeted: bool
    steps: int
    lr: float
    confidence: float
    abort_early: bool


def _cw_adam(model: nn.Module, run: _CWRun, c: torch.Tensor, best: _CWBest) -> tuple[torch.Tensor, int]:
    """Adam on w for the weights c [N] (``carlini_wagner_l2``): every iterate at the goal and
    closer than ``best`` replaces it (in place). Returns (found [N]: the images that reached
    the goal, the steps taken)."""
    x = run.x
    w = run.w0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=run.lr)
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    previous, taken = math.inf, 0
    for step in range(run.steps):
        x_new = run.middle + run.half * torch.tanh(w)
        logits = model(x_new)
        d2 = (x_new - x).flatten(1).pow(2).sum(1)
        margin = _cw_margin(logits, run.goal, run.targeted)
        loss = (d2 + c * (margin + run.confidence).clamp_min(0)).sum()
        (w.grad,) = torch.autograd.grad(loss, w)  # not loss.backward(): the model's .grad stay
        optimizer.step()
        taken += 1
        if run.abort_early and step % math.ceil(run.steps / 10) == 0:
            if not loss.item() <= 0.9999 * previous:
                break
            previous = loss.item()
        if run.confidence:
            hit = margin.detach() + run.confidence < 0
        else:
            hit = _reached(logits.detach(), run.labels["target"], run.labels["y"])
        found |= hit
        better = hit & (d2.detach() < best.d2)
        best.x = torch.where(_col(better, x), x_new.detach(), best.x)
        best.d2 = torch.where(better, d2.detach(), best.d2)
        best.c = torch.where(better, c, best.c)
    return found, taken


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
    """
    _one_of(target, y)
    check_int("steps", steps)
    check_positive("init_norm", init_norm)
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    x, labels, lower, upper = _setup(model, x, {"target": target, "y": y}, bounds)
    targeted = target is not None
    goal = labels["target"] if targeted else labels["y"]
    largest = torch.maximum(x - lower, upper - x).flatten(1).norm(dim=1)  # no δ in the box is longer
    delta = torch.zeros_like(x)
    norm = torch.full((len(x),), float(init_norm), device=x.device, dtype=x.dtype)
    best_delta, best_l2 = delta.clone(), torch.full_like(norm, math.inf)
    with eval_mode(model):
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
        return _result(model, x, x + best_delta, labels["target"], labels["y"], keep_failed=False, evaluations=steps)


def _check_certifiable(model: nn.Module) -> None:
    """Refuse models whose product of layer bounds is not a Lipschitz bound we can vouch for:
    only chains (nn.Sequential, ZooModel) of layers with certified bounds."""
    from .models import ZooModel
    from .spectral import BOUNDED_LAYERS

    for name, module in model.named_modules():
        if isinstance(module, (nn.Sequential, ZooModel)):
            continue
        if len(list(module.children())) or not isinstance(module, BOUNDED_LAYERS):
            raise ValueError(
                f"model must be a chain of {[t.__name__ for t in BOUNDED_LAYERS]}; "
                f"layer {name or 'model'!r} is a {type(module).__name__}"
            )


def certified_radius(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lipschitz: float | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """A radius in |r|₂ within which no perturbation can change the model's correct answer.

    With L an upper bound on the Lipschitz constant of x ↦ logits (by default the product of
    chapter 5's layer bounds, ``spectral.layer_bounds``), each logit difference Z_y − Z_j is
    √2·L-Lipschitz, so it cannot change sign while |r|₂ < (Z_y − max_{j≠y} Z_j) / (√2·L)
    (Tsuzuku et al. 2018). Images the model misclassifies get radius 0. Divide by √n (n pixels)
    for the paper's distortion. Refuses (ValueError) a model that is not a plain chain of layers
    with certified bounds (a product of bounds means nothing for a skip connection).

    Args: x [N, ...]; y [N] true labels; ``lipschitz``: a known bound L to use instead.
    Returns: [N] radii on the model's device.
    """
    from .spectral import layer_bounds

    check_images("x", x)
    if lipschitz is None:
        _check_certifiable(model)
        lipschitz = layer_bounds(model, input_shape or tuple(x.shape[1:])).attrs["product"]
    check_positive("lipschitz", lipschitz)
    x, labels, _, _ = _setup(model, x, {"y": y}, (0.0, 1.0))
    with eval_mode(model), torch.no_grad():
        margin = _cw_margin(model(x), labels["y"], targeted=False)
    return (margin / (math.sqrt(2) * lipschitz)).clamp_min(0)


def madry_training(
    name: str = "FC100-100-10",
    eps: float = 0.1,
    *,
    norm: str = "inf",
    steps: int | None = None,
    epochs: int | None = None,
    subset: str = "train",
    seed: int = 0,
    profile: str | None = None,
    device: torch.device | str | None = None,
    use_cache: bool = True,
) -> ZooModel:
    """``name`` trained on PGD examples (Madry et al. 2017), cached like every zoo model.

    The profile's Adam training (``train.settings_for``) with ``epochs`` (default: the
    profile's ``madry_epochs``), where every minibatch of clean images is joined by as many
    PGD examples (ε = ``eps`` in ``norm``, ``steps`` steps of 2.5·ε/steps, random start) of
    other random training images, made for the model of that moment: half clean, half
    adversarial, the mixture of Goodfellow et al. with Madry's stronger examples (Madry et
    al. train on adversarial examples only). ``model.training_info`` has the settings and time.
    """
    from dataclasses import replace

    from .config import profile_sizes, resolve_profile
    from .train import TrainingRun, cache_key, cached_training, fit, settings_for

    profile = resolve_profile(profile)
    check_positive("eps", eps)
    check_choice("norm", norm, NORMS)
    sizes = profile_sizes("modern", profile)
    steps = sizes["madry_steps"] if steps is None else steps
    epochs = sizes["madry_epochs"] if epochs is None else epochs
    check_int("steps", steps)
    check_int("epochs", epochs)
    settings = replace(settings_for(name, profile), epochs=epochs)
    if settings.optimizer != "adam":
        raise ValueError(
            f"name must be a model trained by minibatch Adam (FC100-100-10, FC200-200-10, "
            f"FC123-456-10, CNN), got {name!r}, which is trained full-batch"
        )
    madry = {"eps": eps, "norm": norm, "steps": steps}
    key = cache_key(name, subset, seed, settings, madry=madry)

    def run(model: ZooModel, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> TrainingRun:
        def adversarial_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            pick = torch.randint(0, len(x), (settings.batch_size,), generator=generator).to(x.device)
            result = pgd(model, x[pick], y[pick], eps, norm=norm, steps=steps, seed=seed + step)
            return result.x_adv, y[pick]

        fit(model, x, y, settings, seed=seed, extra_batches=adversarial_batch)
        return TrainingRun(info=madry)

    return cached_training(name, subset, seed, key, run, tag="madry-", device=device, use_cache=use_cache).model


def timed(attack: Callable[..., AttackResult], *args: Any, **kwargs: Any) -> tuple[AttackResult, float]:
    """Run ``attack(*args, **kwargs)``; return (its result, the wall-clock seconds it took),
    with the GPU synchronised before and after so that the time is the attack's own."""
    import time

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = attack(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def attack_summary(runs: dict) -> pd.DataFrame:
    """One row per attack from ``{name: (AttackResult, seconds)}`` (all on the same images).

    Columns: ``success`` (share of images), ``mean distortion`` (over the images *every*
    attack succeeded on, so that the rows compare like with like), ``median distortion``
    (same images), ``ms per image`` and ``gradients per image`` (``evaluations``).
    A pandas DataFrame.
    """
    import pandas as pd

    if not runs:
        raise ValueError("runs must name at least one attack, got an empty mapping")
    results = {name: result for name, (result, _) in runs.items()}
    common = torch.stack([r.success.cpu() for r in results.values()]).all(0)
    rows = {}
    for name, (result, seconds) in runs.items():
        shared = result.distortion.cpu()[common]
        rows[name] = {
            "success": result.success.float().mean().item(),
            "mean distortion": shared.mean().item() if len(shared) else math.nan,
            "median distortion": shared.median().item() if len(shared) else math.nan,
            "ms per image": 1000 * seconds / len(result),
            "gradients per image": result.evaluations.float().mean().item(),
        }
    table = pd.DataFrame(rows).T
    table.attrs["images compared"] = int(common.sum())
    return table


def error_vs_eps(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    *,
    steps: int = 20,
    norm: str = "inf",
    seed: int = 0,
) -> pd.DataFrame:
    """The error rate (share of the images misclassified) under FGSM and under PGD with
    ``steps`` steps, for each ε in ``epsilons`` (ε = 0: the clean error). FGSM is L∞ only, so
    with ``norm="2"`` only PGD is run. A pandas DataFrame indexed by ε."""
    import pandas as pd

    check_choice("norm", norm, NORMS)
    with torch.no_grad():
        clean = (model(x.to(model_device(model))).argmax(1).cpu() != y.cpu()).float().mean().item()
    rows = {}
    for eps in epsilons:
        if eps == 0:
            rows[0.0] = {"FGSM": clean, "PGD": clean} if norm == "inf" else {"PGD": clean}
            continue
        row = {"PGD": pgd(model, x, y, eps, norm=norm, steps=steps, seed=seed).success.float().mean().item()}
        if norm == "inf":
            row = {"FGSM": fgsm(model, x, y, eps).success.float().mean().item(), **row}
        rows[float(eps)] = row
    table = pd.DataFrame(rows).T
    table.index.name = "epsilon"
    return table
