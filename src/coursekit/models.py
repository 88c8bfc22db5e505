"""The paper's MNIST model zoo (Table 1 and Table 3), plus a small CNN for §3.

``build(name)`` knows exactly these names:

================  ==========================================================================
``FC10(1e-4)``    softmax on pixels, weight decay λ = 1e-4
``FC10(1e-2)``    softmax on pixels, λ = 1e-2
``FC10(1)``       softmax on pixels, λ = 1
``FC100-100-10``  two sigmoid hidden layers of 100 units, λ = 1e-5, 1e-5, 1e-6
``FC200-200-10``  two sigmoid hidden layers of 200 units, λ = 1e-5, 1e-5, 1e-6
``FC123-456-10``  sigmoid hidden layers of 123 and 456 units, λ = 1e-5, 1e-5, 1e-6 (Table 3)
``AE400-10``      a sparse sigmoid autoencoder's 400-unit encoder (trained unsupervised, then
                  frozen) with a softmax on top, λ = 1e-6
``CNN``           two 5×5 convolutions (16, 32 channels) with ReLU and 2×2 max-pooling, a
                  128-unit ReLU layer and a softmax; the convolutional net of §3
================  ==========================================================================

Every model maps images [N, 1, 28, 28] in [0, 1] to logits [N, 10]; ``model.features(x)`` is
φ(x), the last hidden layer's activations [N, n] (for the FC10 models, which have no hidden
layer, φ(x) is the flattened image).

The paper's weight decay (§4.2): ``loss_decay = λ Σ w² / k`` added to the loss for each layer,
with k the number of units in the layer (its outputs) and w its connection weights (not the
biases). ``weight_decay(model)`` computes it from the per-layer λ stored on the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "IMAGE_SHAPE",
    "MODEL_NAMES",
    "NUM_CLASSES",
    "SPECS",
    "TABLE1_MODELS",
    "build",
    "build_decoder",
    "ModelSpec",
    "parameter_count",
    "template_roughness",
    "weight_decay",
    "weight_layers",
    "ZooModel",
]

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    """What ``build`` needs to know about a zoo model."""

    name: str
    kind: str  # "fc", "ae" or "cnn"
    hidden: tuple[int, ...]
    decay: tuple[float, ...]  # one λ per weight layer, input side first
    description: str


def _fc10(label: str, lam: float) -> ModelSpec:
    return ModelSpec(f"FC10({label})", "fc", (), (lam,), f"Softmax with λ = {label}")


SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _fc10("1e-4", 1e-4),
        _fc10("1e-2", 1e-2),
        _fc10("1", 1.0),
        ModelSpec("FC100-100-10", "fc", (100, 100), (1e-5, 1e-5, 1e-6), "Sigmoid network λ = 1e-5, 1e-5, 1e-6"),
        ModelSpec("FC200-200-10", "fc", (200, 200), (1e-5, 1e-5, 1e-6), "Sigmoid network λ = 1e-5, 1e-5, 1e-6"),
        ModelSpec("FC123-456-10", "fc", (123, 456), (1e-5, 1e-5, 1e-6), "Sigmoid network λ = 1e-5, 1e-5, 1e-6"),
        ModelSpec("AE400-10", "ae", (400,), (1e-6, 1e-6), "Autoencoder with Softmax λ = 1e-6"),
        ModelSpec("CNN", "cnn", (16, 32, 128), (1e-5, 1e-5, 1e-5, 1e-6), "Conv 5×5×16, 5×5×32, FC 128, ReLU, max-pool"),
    )
}
MODEL_NAMES = tuple(SPECS)
TABLE1_MODELS = ("FC10(1e-4)", "FC10(1e-2)", "FC10(1)", "FC100-100-10", "FC200-200-10", "AE400-10")


class ZooModel(nn.Module):
    """A classifier split into ``body`` (images → φ(x)) and ``head`` (φ(x) → logits).

    Both are ``nn.Sequential``, so ``model.modules()`` lists the layers in the order they are
    applied (``coursekit.spectral.layer_bounds`` relies on it). ``decay`` holds λ for each weight
    layer (``nn.Linear`` / ``nn.Conv2d``) in that order.

    Set by the training that made it (absent on a model built but not trained):
    ``training_info`` (``train.cached_training``), ``pools`` and ``pool`` (the adversarial
    pools of ``adversarial_training.adversarial_pool_training``).
    """

    chains_children = True  # forward is head(body(x)): a plain chain of its layers (``chain.chain_layers``)
    body: nn.Sequential
    head: nn.Sequential
    training_info: dict
    pools: dict
    pool: Any

    def __init__(self, name: str, body: nn.Sequential, head: nn.Sequential, decay: tuple[float, ...]):
        super().__init__()
        self.name = name
        self.body = body
        self.head = head
        self.decay = tuple(decay)
        weights = weight_layers(self)
        if len(weights) != len(self.decay):
            raise ValueError(f"{name}: {len(weights)} weight layers but {len(self.decay)} decay values")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): the last hidden layer's activations, [N, n]."""
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, 10] for images [N, 1, 28, 28]."""
        return self.head(self.body(x))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, decay={self.decay}"


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The model's ``nn.Linear`` and ``nn.Conv2d`` layers in order.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def weight_decay(model: ZooModel) -> torch.Tensor:
    """The paper's decay term Σ_layers λ_layer · Σ w² / k_layer (k = the layer's number of units).

    For a linear layer k is its number of outputs; for a convolution, its number of output
    channels. Biases are not decayed. Returns a scalar tensor (differentiable).

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    total = None
    for lam, layer in zip(model.decay, weight_layers(model)):
        units = layer.weight.shape[0]  # type: ignore[index]
        term = lam * layer.weight.pow(2).sum() / units  # type: ignore[operator]
        total = term if total is None else total + term
    return total  # type: ignore[return-value]


def build(name: str, *, dropout: float = 0.0) -> ZooModel:
    """A freshly initialised zoo model (see the module docstring for the names).

    ``dropout`` (FC models with hidden layers only) inserts ``nn.Dropout(dropout)`` after each
    hidden layer: the paper's dropout baseline of §4.2.

    Used in chapters 1 (book/01_data_and_models.md) and 6 (book/06_adversarial_training.md).
    """
    spec = SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if dropout and (spec.kind != "fc" or not spec.hidden):
        raise ValueError(f"dropout applies to FC models with hidden layers, not {name!r}")
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
    if spec.kind == "fc":
        body: list[nn.Module] = [nn.Flatten()]
        sizes = [pixels, *spec.hidden]
        for inp, out in zip(sizes[:-1], sizes[1:]):
            body += [nn.Linear(inp, out), nn.Sigmoid()]
            if dropout:
                body.append(nn.Dropout(dropout))
        head = [nn.Linear(sizes[-1], NUM_CLASSES)]
    elif spec.kind == "ae":
        body = [nn.Flatten(), nn.Linear(pixels, spec.hidden[0]), nn.Sigmoid()]
        head = [nn.Linear(spec.hidden[0], NUM_CLASSES)]
    else:  # cnn
        c1, c2, fc = spec.hidden
        body = [
            nn.Conv2d(1, c1, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, fc),
            nn.ReLU(),
        ]
        head = [nn.Linear(fc, NUM_CLASSES)]
    return ZooModel(name, nn.Sequential(*body), nn.Sequential(*head), spec.decay)


def build_decoder(model: ZooModel) -> nn.Sequential:
    """The decoder of an ``AE400-10`` model's autoencoder: φ(x) [N, 400] → images [N, 1, 28, 28]."""
    if SPECS[model.name].kind != "ae":
        raise ValueError(f"only AE models have a decoder, got {model.name!r}")
    hidden = SPECS[model.name].hidden[0]
    return nn.Sequential(nn.Linear(hidden, 784), nn.Sigmoid(), nn.Unflatten(1, IMAGE_SHAPE))


def parameter_count(model: nn.Module) -> int:
    """The number of trainable and frozen parameters.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    return sum(p.numel() for p in model.parameters())


def template_roughness(weight: torch.Tensor) -> torch.Tensor:
    """How speckled each 28×28 template of ``weight`` [K, 784] is: the sum of squared differences
    between horizontally and vertically neighbouring pixels, divided by the sum of squares of
    the template. Returns [K], ≥ 0: 0 for a constant template, about 3.9 on average for white
    noise (each of the 2·28·27 = 1512 neighbour pairs contributes 2σ², over 784σ²), small for a
    smooth, digit-like one.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    if weight.dim() != 2 or weight.shape[1] != 784:
        raise ValueError(f"weight must be [K, 784], got {tuple(weight.shape)}")
    w = weight.detach().reshape(-1, 28, 28)
    energy = w.pow(2).sum((1, 2))
    if bool((energy == 0).any()):
        raise ValueError("a template is all zeros: its roughness is undefined")
    across = (w[:, :, 1:] - w[:, :, :-1]).pow(2).sum((1, 2))
    down = (w[:, 1:, :] - w[:, :-1, :]).pow(2).sum((1, 2))
    return (across + down) / energy
