"""Lipschitz bounds of a whole network: a certified bound per leaf layer (``layer_bounds``, the
one list ``BOUNDED_LAYERS`` of what can be bounded) and the gains measured on real perturbations."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .._checks import eval_mode, model_device
from ..chain import chain_layers

if TYPE_CHECKING:
    import pandas as pd
from .fourier import _conv_settings, _pair, conv_operator_norm, conv_operator_norm_bound, linear_operator_norm

__all__ = [
    "BOUNDED_LAYERS",
    "BOUND_MARGIN",
    "ONE_LIPSCHITZ",
    "layer_bounds",
    "layer_gains",
]


def _max_pool_bound(module: nn.MaxPool2d) -> float:
    """Lipschitz constant of max-pooling in ℓ2: √(the most windows one input can fall in)."""
    if module.dilation not in (1, (1, 1)):
        raise ValueError(f"max-pooling with dilation {module.dilation} is not supported")
    k_h, k_w = _pair(module.kernel_size, "kernel_size")
    s_h, s_w = _pair(module.stride if module.stride is not None else module.kernel_size, "stride")
    return math.sqrt(math.ceil(k_h / s_h) * math.ceil(k_w / s_w))


def _avg_pool_bound(module: nn.Module, shape_in: tuple, shape_out: tuple) -> float:
    """Lipschitz constant of average pooling in ℓ2: each output is the mean of k_h·k_w inputs,
    so by Cauchy–Schwarz |y|² ≤ (windows per input)/(k_h·k_w)·|x|², i.e.
    √(⌈k_h/s_h⌉⌈k_w/s_w⌉ / (k_h k_w)). Zero padding counted in the mean keeps it; padding
    left out of the mean (``count_include_pad=False``), ``ceil_mode`` and adaptive pools that
    are not a plain pool are refused."""
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if shape_in == shape_out:
            return 1.0  # the identity on inputs of this size
        (h, w), (oh, ow) = shape_in[-2:], shape_out[-2:]
        if h % oh or w % ow:
            raise ValueError(
                f"adaptive average pooling from {(h, w)} to {(oh, ow)} has unequal windows; no bound implemented"
            )
        kernel, stride = (h // oh, w // ow), (h // oh, w // ow)
    else:
        if module.ceil_mode or (not module.count_include_pad and _pair(module.padding, "padding") != (0, 0)):
            raise ValueError("average pooling with ceil_mode or count_include_pad=False is not supported")
        if module.divisor_override is not None:
            raise ValueError("average pooling with divisor_override is not supported")
        kernel = _pair(module.kernel_size, "kernel_size")
        stride = _pair(module.stride if module.stride is not None else module.kernel_size, "stride")
    (k_h, k_w), (s_h, s_w) = kernel, stride
    return math.sqrt(math.ceil(k_h / s_h) * math.ceil(k_w / s_w) / (k_h * k_w))


ONE_LIPSCHITZ = (nn.ReLU, nn.Flatten, nn.Dropout, nn.Identity, nn.Unflatten, nn.Tanh)
# Every leaf layer ``_module_bound`` bounds (certified, not estimated): the one list, also read by
# ``modern_attacks.certified_radius``.
BOUNDED_LAYERS = (
    nn.Conv2d,
    nn.Linear,
    *ONE_LIPSCHITZ,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.MaxPool2d,
    nn.LocalResponseNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.AdaptiveAvgPool2d,
    nn.AvgPool2d,
)


BOUND_MARGIN = 1e-9  # relative: layer bounds are computed in float64 (dense, on the CPU) and inflated by this


def _exact_weight(module: nn.Module) -> torch.Tensor:
    """The module's weight in float64 on the CPU: its norm is then computed by LAPACK's dense
    solvers with a rounding error ~n·1e-16 (float32 put bounds up to 4e-7 below the norm)."""
    return module.weight.detach().to("cpu", torch.float64)  # type: ignore[operator]


def _module_bound(name: str, module: nn.Module, shape_in: tuple, shape_out: tuple) -> tuple[float, float]:
    """(certified bound, circular norm on the input grid or NaN) of one leaf module in eval mode.

    The bounds of weighted layers are computed in float64 and inflated by BOUND_MARGIN, so that
    they stay upper bounds after rounding. Raises ValueError for a module it cannot bound
    (never a number that is not a bound)."""
    circular = float("nan")
    if not isinstance(module, BOUNDED_LAYERS):
        raise ValueError(
            f"layer {name!r}: no Lipschitz bound is known for {type(module).__name__}; "
            "refusing rather than reporting a number that may not be an upper bound"
        )
    if isinstance(module, nn.Conv2d):
        _, stride, padding, padding_mode = _conv_settings(module)
        bound = conv_operator_norm_bound(
            _exact_weight(module), stride, padding, shape_in[1:], padding_mode=padding_mode
        ).item() * (1 + BOUND_MARGIN)
        grid = tuple(math.ceil(s / stride) * stride for s in shape_in[1:])
        circular = conv_operator_norm(module.weight, stride, grid).item()
    elif isinstance(module, nn.Linear):
        bound = linear_operator_norm(_exact_weight(module)).item() * (1 + BOUND_MARGIN)
    elif isinstance(module, ONE_LIPSCHITZ):
        bound = 1.0
    elif isinstance(module, nn.Sigmoid):
        bound = 0.25
    elif isinstance(module, nn.LeakyReLU):
        bound = max(1.0, abs(module.negative_slope))
    elif isinstance(module, nn.MaxPool2d):
        bound = _max_pool_bound(module)
    elif isinstance(module, nn.LocalResponseNorm):
        bound = float(module.k) ** (-float(module.beta))
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        variance = module.running_var.detach().to("cpu", torch.float64)  # type: ignore[union-attr]
        gamma = _exact_weight(module) if module.weight is not None else torch.ones_like(variance)
        bound = (gamma.abs() / (variance + module.eps).sqrt()).max().item() * (1 + BOUND_MARGIN)
    else:  # nn.AdaptiveAvgPool2d, nn.AvgPool2d
        bound = _avg_pool_bound(module, shape_in, shape_out)
    if not math.isfinite(bound):
        raise ValueError(f"layer {name!r}: its bound is not finite ({bound})")
    return bound, circular


def layer_bounds(
    model: nn.Module, input_shape: tuple[int, ...], *, device: torch.device | str | None = None
) -> pd.DataFrame:
    """A table of every layer's upper Lipschitz bound and their product.

    Walks the model's leaf modules in the order a forward pass on one input of
    ``input_shape`` (C, H, W) calls them, and refuses (ValueError) a model that is not a plain
    chain of them (e.g. a residual addition). Bounds: convolution — the certified Fourier bound
    for its zero or circular padding (and, for comparison, the circular norm on its own input
    grid, as the paper computes it; reflect/replicate padding is refused); linear — the largest
    singular value; ReLU, Tanh, Flatten, Dropout (eval), identity-sized pooling — 1; sigmoid —
    1/4; max-pooling — √(windows per input), which is 1 when the windows do not overlap (the
    paper's case) and 2 for AlexNet's 3×3, stride-2 pools; average pooling —
    √(windows per input / window size); contrast normalisation (``nn.LocalResponseNorm``) —
    the paper's ε^(−γ) with ε = k, γ = β; batch norm — max |γ| / √(σ² + ε). Any other module is
    refused. Returns a pandas DataFrame with columns ``layer``, ``type``, ``input``,
    ``output``, ``bound``, ``circular_bound`` (conv layers); ``table.attrs["product"]`` is the
    product of the bounds.

    Used in chapter 5 (book/05_spectral.md).
    """
    import pandas as pd

    if device is None:
        device = model_device(model)
    rows = []
    for layer in chain_layers(model, input_shape, device=device):  # refuses what is not a plain chain
        shape_in, shape_out = layer.input_shape or (), layer.output_shape or ()
        with torch.no_grad():
            bound, circular = _module_bound(layer.name, layer.module, shape_in, shape_out)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer.module).__name__,
                "input": shape_in,
                "output": shape_out,
                "bound": bound,
                "circular_bound": circular,
            }
        )
    if not rows:
        raise ValueError("the model has no layers to bound")
    table = pd.DataFrame(rows)
    product = float(torch.tensor(table["bound"].to_list(), dtype=torch.float64).prod())
    table.attrs["product"] = product
    return table


@torch.no_grad()
def layer_gains(model: nn.Module, x: torch.Tensor, x_perturbed: torch.Tensor) -> pd.DataFrame:
    """Measured gain of every leaf layer for the perturbations x_perturbed − x.

    For each layer k (in the order of ``layer_bounds``): the per-image ratio
    ‖φ_k(x') − φ_k(x)‖ / ‖φ_{k−1}(x') − φ_{k−1}(x)‖ (inputs and outputs of that layer on the
    two batches). Returns a pandas DataFrame with ``layer``, ``type``, ``median gain``,
    ``max gain``. A measured gain can never exceed the layer's Lipschitz bound.

    Used in chapter 5 (book/05_spectral.md).
    """
    import pandas as pd

    if x.shape != x_perturbed.shape:
        raise ValueError(
            f"x and x_perturbed must have the same shape, got {tuple(x.shape)} and {tuple(x_perturbed.shape)}"
        )
    device = model_device(model)
    names = {m: n for n, m in model.named_modules()}
    records: list[list] = [[], []]
    leaves = [m for m in model.modules() if len(list(m.children())) == 0]
    for run, batch in enumerate((x, x_perturbed)):
        hooks = [
            m.register_forward_hook(lambda mod, inp, out, run=run: records[run].append((mod, inp[0], out)))
            for m in leaves
        ]
        try:
            with eval_mode(model):
                model(batch.to(device))
        finally:
            for hook in hooks:
                hook.remove()
    rows = []
    for (module, in_a, out_a), (_, in_b, out_b) in zip(*records):
        before = (in_b - in_a).flatten(1).norm(dim=1)
        after = (out_b - out_a).flatten(1).norm(dim=1)
        gain = (after / before.clamp_min(1e-12))[before > 0]
        rows.append(
            {
                "layer": names[module],
                "type": type(module).__name__,
                "median gain": gain.median().item() if len(gain) else float("nan"),
                "max gain": gain.max().item() if len(gain) else float("nan"),
            }
        )
    return pd.DataFrame(rows)
