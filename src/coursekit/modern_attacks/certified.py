"""A certified radius from chapter 5's product of layer bounds (Tsuzuku et al. 2018)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import (
    check_images,
    check_positive,
    eval_mode,
)
from ..chain import chain_layers
from .carlini_wagner import _cw_margin
from .common import _setup

__all__ = ["certified_radius"]


def _check_certifiable(model: nn.Module) -> None:
    """Refuse models whose product of layer bounds is not a Lipschitz bound we can vouch for:
    only chains (``chain.chain_layers``: nn.Sequential, ZooModel) of layers with certified
    bounds (``spectral.BOUNDED_LAYERS``)."""
    from ..spectral import BOUNDED_LAYERS

    allowed = [t.__name__ for t in BOUNDED_LAYERS]
    try:
        layers = chain_layers(model)
    except ValueError as error:
        raise ValueError(f"model must be a chain of {allowed}: {error}") from None
    for layer in layers:
        if not isinstance(layer.module, BOUNDED_LAYERS):
            kind = type(layer.module).__name__
            raise ValueError(f"model must be a chain of {allowed}; layer {layer.name or 'model'!r} is a {kind}")


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

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    from ..spectral import layer_bounds

    check_images("x", x)
    if lipschitz is None:
        _check_certifiable(model)
        lipschitz = layer_bounds(model, input_shape or tuple(x.shape[1:])).attrs["product"]
    check_positive("lipschitz", lipschitz)
    x, labels, _, _ = _setup(model, x, {"y": y}, (0.0, 1.0))
    with eval_mode(model), torch.no_grad():
        margin = _cw_margin(model(x), labels["y"], targeted=False)
    return (margin / (math.sqrt(2) * lipschitz)).clamp_min(0)
