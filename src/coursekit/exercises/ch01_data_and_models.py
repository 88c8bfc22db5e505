"""Chapter 1's exercises (``book/01_data_and_models.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..models import ZooModel, build, weight_decay, weight_layers
from .bank import Exercise
from .checking import Mistake


def _layers(model: ZooModel) -> list[tuple[float, torch.Tensor, torch.Tensor]]:
    """(λ, weight, bias) of each weight layer, input side first."""
    layers = weight_layers(model)
    return [(lam, layer.weight, layer.bias) for lam, layer in zip(model.decay, layers)]  # type: ignore[misc]


def _decay_over_inputs(model: ZooModel) -> torch.Tensor:
    """k read as the number of inputs of each layer (weight.shape[1])."""
    return torch.stack([lam * w.pow(2).sum() / w.shape[1] for lam, w, _ in _layers(model)]).sum()


def _decay_without_k(model: ZooModel) -> torch.Tensor:
    """λ Σ w², not divided by k."""
    return torch.stack([lam * w.pow(2).sum() for lam, w, _ in _layers(model)]).sum()


def _decay_with_biases(model: ZooModel) -> torch.Tensor:
    """The biases decayed too."""
    biases = [lam * b.pow(2).sum() / w.shape[0] for lam, w, b in _layers(model)]
    return weight_decay(model) + torch.stack(biases).sum()


def _decay_cases() -> list[tuple]:
    torch.manual_seed(0)
    models = [build("FC10(1)"), build("FC100-100-10"), build("CNN")]
    with torch.no_grad():  # non-zero biases, so that decaying them shows
        for model in models:
            for _, _, bias in _layers(model):
                bias.uniform_(-0.5, 0.5)
    return [(model,) for model in models]


# --- smallest_eps: the smallest ℓ∞ budget, image by image -----------------------------------

ATTACK_STEPS = 10  # the chapter's push_away: ten signed steps of 2.5·ε/10 (coursekit's pgd default)


def push_away(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """The chapter's ℓ∞ attack as coursekit computes it: ``pgd`` without its random start, ten
    steps of 2.5·ε/10; images x [N, 1, 28, 28] in [0, 1], labels y [N]; returns x + r [N, 1, 28, 28]."""
    from ..modern_attacks import pgd

    return pgd(model, x, y, eps, norm="inf", steps=ATTACK_STEPS, random_start=False).x_adv


def _answers(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


def _search(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    grid: Sequence[float],
    *,
    keep: str = "first",
    unfooled: float = math.inf,
    attack_wrong: bool = False,
) -> torch.Tensor:
    """The grid search of ``smallest_eps`` and its likely mistakes: ``keep`` "first" (the
    smallest ε that fools an image) or "last" (a later success overwrites an earlier one);
    ``unfooled``: the value for an image no ε fools; ``attack_wrong``: treat images the model
    already gets wrong like the others (instead of giving them 0)."""
    wrong = (_answers(model, x) != y).cpu()
    needed = torch.full((len(x),), unfooled, dtype=torch.float64)
    found = torch.zeros(len(x), dtype=torch.bool)
    if not attack_wrong:
        needed[wrong], found[wrong] = 0.0, True
    for eps in grid:
        fooled = (_answers(model, push_away(model, x, y, eps)) != y).cpu()
        new = fooled & ~found if keep == "first" else fooled.clone()
        if not attack_wrong:
            new &= ~wrong
        needed[new], found[new] = float(eps), True
    return needed


def smallest_eps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, grid: Sequence[float]) -> torch.Tensor:
    """For each image of x [N, 1, 28, 28] in [0, 1] with true labels y [N]: the smallest ε of
    ``grid`` (increasing) at which the chapter's attack (``push_away``) makes ``model`` answer
    something other than y; 0 for an image the model already gets wrong; inf where no ε of the
    grid is enough. A float tensor [N] (on the CPU)."""
    grid = list(grid)
    if not grid or any(not e > 0 for e in grid) or grid != sorted(grid):
        raise ValueError(f"grid must be increasing positive budgets, got {grid!r}")
    return _search(model, x, y, grid)


def _largest_eps(model, x, y, grid) -> torch.Tensor:
    return _search(model, x, y, grid, keep="last")


def _zero_when_unfooled(model, x, y, grid) -> torch.Tensor:
    return _search(model, x, y, grid, unfooled=0.0)


def _attacked_the_wrong_ones(model, x, y, grid) -> torch.Tensor:
    return _search(model, x, y, grid, attack_wrong=True)


def nearest_mean_model(count: int = 1000) -> ZooModel:
    """An FC10 whose weights are the mean images of the first ``count`` training images of each
    digit (logit j = ⟨mean_j, x⟩ − ‖mean_j‖²/2: the nearest class mean), built without training:
    small, deterministic cases for the tests."""
    from ..data import load_mnist

    x, y = load_mnist("train")
    x, y = x[:count].flatten(1), y[:count]
    means = torch.stack([x[y == d].mean(0) for d in range(10)])
    model = build("FC10(1e-4)")
    linear = model.head[0]
    with torch.no_grad():
        linear.weight.copy_(means)  # type: ignore[operator]
        linear.bias.copy_(-0.5 * means.pow(2).sum(1))  # type: ignore[operator]
    return model.eval()


def _smallest_eps_cases() -> list[tuple]:
    from ..data import load_mnist

    x, y = load_mnist("test")
    return [(nearest_mean_model(), x[:40], y[:40], (0.02, 0.04, 0.08))]


EXERCISES = (
    Exercise(
        id="paper_decay",
        chapter="01_data_and_models",
        title="The paper's weight decay",
        reference=weight_decay,
        mistakes=(
            Mistake(
                "you divided by the number of inputs of each layer (weight.shape[1]); the paper "
                "divides by k, the layer's number of units: its outputs, weight.shape[0].",
                _decay_over_inputs,
            ),
            Mistake(
                "you left out the division by k: the paper's term is λ Σ w² / k, with k the "
                "layer's number of units (weight.shape[0]).",
                _decay_without_k,
            ),
            Mistake(
                "you decayed the biases too; the paper's decay covers the connection weights "
                "only (layer.weight, not layer.bias).",
                _decay_with_biases,
            ),
        ),
        sample_cases=_decay_cases,
        points=2,
    ),
    Exercise(
        id="smallest_eps",
        chapter="01_data_and_models",
        title="The smallest budget, image by image",
        reference=smallest_eps,
        mistakes=(
            Mistake(
                "a later ε overwrote an earlier one, so you kept the largest ε of the grid that "
                "fools each image; keep the first success, the smallest ε.",
                _largest_eps,
            ),
            Mistake(
                "you gave 0 to images that no ε of the grid fools; 0 means 'already wrong'. An "
                "image that resists every ε tried needs more than the largest: give inf.",
                _zero_when_unfooled,
            ),
            Mistake(
                "you attacked the images the model already gets wrong; they need no change at "
                "all: give them 0 before trying any ε.",
                _attacked_the_wrong_ones,
            ),
        ),
        sample_cases=_smallest_eps_cases,
        points=3,
    ),
)
