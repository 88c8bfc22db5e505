"""Is this model a plain chain of layers? The one walk that answers it.

Four parts of the course can only handle a model that applies its layers one after another,
each to the previous one's output: the exact answer for a linear model (``exact.linear_weights``),
the exact encoding of a ReLU network (``verification.relu_network``), a certified radius
(``modern_attacks.certified_radius``) and the product of layer bounds (``spectral.layer_bounds``):
a skip connection or a computation outside the layers would make each of them wrong. They all
read the model's layers through ``chain_layers``, which answers in one of two ways:

* from the containers (no input needed): ``nn.Sequential`` applies its children in order, and so
  does a module class that says it does with the class attribute ``chains_children = True``
  (coursekit's ``ZooModel``: ``body``, then ``head``); any other module with children is
  refused by name, since its forward could do anything with them;
* by tracing one forward pass on a random input of a given shape: any model (torchvision's
  AlexNet, whose forward flattens between its containers, too) whose leaf layers each take the
  previous one's output, up to reshaping, and whose output is the last one's; each layer comes
  with its input and output shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._checks import eval_mode

__all__ = ["ChainLayer", "chain_layers"]


@dataclass(frozen=True)
class ChainLayer:
    """One layer of a chain: its ``name`` in ``model.named_modules()`` ("" for a model that is
    itself one layer), the ``module``, and (traced only, else None) the shapes of one example
    going in and coming out, without the batch dimension."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None


def chain_layers(
    model: nn.Module, input_shape: tuple[int, ...] | None = None, *, device: torch.device | str = "cpu"
) -> list[ChainLayer]:
    """The leaf layers of ``model`` in the order it applies them, when it is a plain chain of
    them; a ValueError naming what breaks the chain otherwise.

    Without ``input_shape``: read from the containers (module docstring); the error names the
    first container that is neither ``nn.Sequential`` nor a class with ``chains_children``. With ``input_shape``
    (one example's shape, e.g. (1, 28, 28)): traced by one forward pass, in eval mode and
    without gradients, on a random input on ``device`` in the model's floating dtype; the error
    names the layer that does not take the previous one's output (or says the output is not the
    last layer's). What the layers are (which types a caller can handle) is the caller's check.
    """
    if input_shape is None:
        return [ChainLayer(name, module) for name, module in _declared(model)]
    return _traced(model, tuple(input_shape), device)


def _declared(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """(name, layer) of the leaves of nested containers that apply their children in order
    (nn.Sequential, and a class with ``chains_children = True``: ZooModel), in order."""
    if isinstance(model, nn.Sequential) or getattr(type(model), "chains_children", False):
        out = []
        for name, child in model.named_children():
            out += _declared(child, f"{prefix}.{name}" if prefix else name)
        return out
    if len(list(model.children())):
        raise ValueError(
            f"{prefix or 'model'!r} is a {type(model).__name__}: only nn.Sequential containers (and "
            "coursekit's ZooModel, chains_children = True) are read as a chain of layers; another "
            "module's forward could do anything with its children"
        )
    return [(prefix, model)]


def _traced(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str) -> list[ChainLayer]:
    """``chain_layers`` by one forward pass (see there)."""
    names = {m: n for n, m in model.named_modules()}
    calls: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    inputs: list[torch.Tensor] = []

    def before(module: nn.Module, args: tuple) -> None:
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise ValueError(f"layer {names[module]!r} takes {len(args)} inputs; only chains of layers can be bounded")
        inputs.append(args[0].detach().clone())  # before an in-place layer changes it

    def after(module: nn.Module, args: tuple, output: Any) -> None:
        calls.append((names[module], module, inputs[-1], output.detach().clone()))

    leaves = [m for m in model.modules() if len(list(m.children())) == 0]
    hooks = [h for m in leaves for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    floating = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype = floating.dtype if floating is not None else torch.get_default_dtype()  # a float64 model: float64
    x = torch.rand(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
    try:
        with eval_mode(model), torch.no_grad():
            output = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    _check_links(x, calls, output)
    return [
        ChainLayer(name, module, tuple(given.shape[1:]), tuple(out.shape[1:])) for name, module, given, out in calls
    ]


def _check_links(x: torch.Tensor, calls: list, output: torch.Tensor) -> None:
    """Refuse unless each traced call took the previous one's output (x for the first), up to
    reshaping, and the model's output is the last one's."""
    links = [x, *[call[3] for call in calls]]
    for (name, _, given, _), previous in zip(calls, links):
        if given.numel() != previous.numel() or not torch.equal(given.flatten(), previous.flatten()):
            raise ValueError(
                f"layer {name!r} does not take the previous layer's output as its input (a residual "
                "connection or computation outside the modules?): its bound would not chain"
            )
    if not torch.equal(output.detach().flatten(), links[-1].flatten()):
        raise ValueError(
            "the model's output is not its last layer's output (a residual connection or computation "
            "outside the modules?): the product of bounds would not bound it"
        )
