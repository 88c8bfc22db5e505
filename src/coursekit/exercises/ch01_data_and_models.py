"""Chapter 1's exercises (``book/01_data_and_models.md``)."""

from __future__ import annotations

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
)
