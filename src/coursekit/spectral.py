"""Spectral analysis of instability (§4.3): exact operator norms of conv layers, per-layer bounds.

A layer φ_k is L_k-Lipschitz when ‖φ_k(x) − φ_k(x + r)‖ ≤ L_k‖r‖; the network is then
L-Lipschitz with L = Π L_k. For a (rectified) linear layer L_k ≤ ‖W_k‖, the operator norm.

**The Fourier method (the paper's eq. 1, with the stride normalisation derived).** A conv
layer with weight w [D, C, k, k] and stride Δ acting *circularly* on C × H × W inputs (H, W
multiples of Δ) maps x to y_d(n) = Σ_c Σ_u w_dc(u) x_c(Δn + u), n on the (H/Δ) × (W/Δ) grid.
With unnormalised DFTs on the input grid, the output's DFT at ξ is

    Y_d(ξ) = Δ⁻² Σ_c Σ_l ŵ_dc(ξ + l·M) X_c(ξ + l·M),   M = (H/Δ, W/Δ), l ∈ {0..Δ−1}²,

so each output frequency ξ sees only the Δ² aliased input frequencies ξ + l·M: the operator is
block-diagonal with D × (C·Δ²) blocks A(ξ)[d, (c, l)] = ŵ_dc(ξ + l·M). Parseval on both grids
(‖y‖² = Σ|Y|²/(HW/Δ²), ‖x‖² = Σ|X|²/(HW)) gives

    ‖W‖ = max_ξ σ_max(A(ξ)) / Δ.

The paper's eq. 1 puts Δ⁻² inside A; with the unnormalised DFT the right power is Δ⁻¹ (the
tests check it against an explicit matrix for strides 1–4). For a real kernel,
A(−ξ) = conj(A(ξ)) up to a column permutation, so half of the frequencies suffice.

The real layer pads with zeros, not circularly. Its norm is bounded by the circular norm on any
grid L ≥ N + 2p (a multiple of Δ): embedding the input in the larger grid is an isometry and
the real outputs are a subset of the circular ones. The circular norm on the N grid itself is
*not* always a bound. ``conv_operator_norm_bound`` computes the certified one;
``conv_operator_norm_power`` measures the real layer by power iteration with its true adjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import ArgumentTypeError, NotCertifiedError, check_int, check_positive, eval_mode, model_device

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd


__all__ = [
    "BOUND_MARGIN",
    "BOUNDED_LAYERS",
    "ONE_LIPSCHITZ",
    "PADDING_MODES",
    "CertifiedNorm",
    "circular_conv",
    "conv_operator_norm",
    "conv_operator_norm_bound",
    "conv_operator_norm_certified",
    "conv_operator_norm_power",
    "conv_singular_values",
    "explicit_operator_matrix",
    "fourier_blocks",
    "gram_blocks",
    "layer_bounds",
    "layer_gains",
    "layer_operator_norm",
    "linear_operator_norm",
    "polyphase_weight",
    "zero_padding_grid",
]


def _pair(value, argument: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be an int or a pair of ints, got {value!r}") from None
    if (a, b) != tuple(value):
        raise ValueError(f"{argument} must be an int or a pair of ints, got {value!r}")
    return a, b


def _check_weight(weight, dims: int, layout: str) -> torch.Tensor:
    """A finite floating weight of ``dims`` dimensions; float16/bfloat16 are computed in float32."""
    if not isinstance(weight, torch.Tensor) or weight.dim() != dims:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a {dims}-D tensor {layout}, got {shape}")
    if not weight.is_floating_point():
        raise ArgumentTypeError(f"weight must be a floating-point tensor, got dtype {weight.dtype}")
    if not bool(torch.isfinite(weight).all()):
        raise ValueError("weight contains NaN or inf: no finite norm to bound")
    if weight.dtype in (torch.float16, torch.bfloat16):
        weight = weight.float()
    return weight


def _check_conv(weight: torch.Tensor, stride, input_size) -> tuple[int, tuple[int, int]]:
    _check_weight(weight, 4, "[D, C, k, k]")
    check_int("stride", stride)
    height, width = _pair(input_size, "input_size")
    if height % stride or width % stride:
        raise ValueError(
            f"input_size {(height, width)} must be divisible by stride {stride} for the circular operator; "
            "pad the grid (conv_operator_norm_bound does) or choose another size"
        )
    if weight.shape[2] > height or weight.shape[3] > width:
        raise ValueError(f"kernel {tuple(weight.shape[2:])} is larger than input_size {(height, width)}")
    return stride, (height, width)


def _dft_matrix(size: int, taps: int, frequencies: torch.Tensor, dtype) -> torch.Tensor:
    """E[u, k] = exp(−2πi·u·k/size) for taps u < ``taps`` and the given frequencies k."""
    u = torch.arange(taps, dtype=torch.float64)[:, None]
    return torch.exp(-2j * math.pi * u * frequencies.to(torch.float64)[None, :] / size).to(dtype)


def fourier_blocks(
    weight: torch.Tensor, stride: int, input_size: int | tuple[int, int], *, half: bool = True
) -> torch.Tensor:
    """The blocks A(ξ) of the circular strided conv, [F, D, C·Δ²] complex (F output frequencies).

    Row d, column (c, l) of block ξ is ŵ_dc(ξ + l·M), the kernel's DFT on the input grid. The
    DFT is computed as a product with the DFT matrices of the k taps (cheaper than FFTs of the
    zero-padded kernels when k ≪ H). ``half=True`` keeps only ξ with 0 ≤ ξ_w ≤ M_w/2
    (conjugate symmetry makes the rest redundant for singular values).
    """
    stride, (height, width) = _check_conv(weight, stride, input_size)
    weight = _check_weight(weight, 4, "[D, C, k, k]")
    d, c, k_h, k_w = weight.shape
    mh, mw = height // stride, width // stride
    complex_dtype = torch.complex128 if weight.dtype == torch.float64 else torch.complex64
    j_w = torch.arange(mw // 2 + 1 if half else mw)
    # frequency index k = j + l·M, laid out as [l, j]
    freq_h = (torch.arange(mh)[None, :] + mh * torch.arange(stride)[:, None]).reshape(-1)
    freq_w = (j_w[None, :] + mw * torch.arange(stride)[:, None]).reshape(-1)
    e_h = _dft_matrix(height, k_h, freq_h, complex_dtype).to(weight.device).view(k_h, stride, mh)
    e_w = _dft_matrix(width, k_w, freq_w, complex_dtype).to(weight.device).view(k_w, stride, len(j_w))
    # Real weights: contract the real and imaginary parts of the DFT matrices separately.
    e_w = torch.cat([e_w.real, e_w.imag], 1)  # [k_w, 2·stride, J] (real | imaginary)
    half_w = torch.einsum("dcuv,vmk->dcumk", weight, e_w.to(weight.dtype))  # [D, C, k_h, 2Δ, J]
    half_w = torch.complex(half_w[:, :, :, :stride], half_w[:, :, :, stride:])
    blocks = torch.einsum("dcumk,ulj->jkdclm", half_w, e_h)
    return blocks.reshape(mh * len(j_w), d, c * stride * stride)


def _lanczos_round(gram: torch.Tensor, start: torch.Tensor, steps: int, reorthogonalise: int = 2):
    """One batched Lanczos run of ``steps`` steps from ``start`` [F, d] with full
    reorthogonalisation: returns (top Ritz value θ, its residual norm, its Ritz vector)."""
    count, size, _ = gram.shape
    q = start / start.norm(dim=1, keepdim=True)
    basis = torch.zeros(count, size, steps, dtype=gram.dtype, device=gram.device)
    alphas, betas = [], []
    for j in range(steps):
        basis[:, :, j] = q
        w = torch.bmm(gram, q.unsqueeze(2)).squeeze(2)
        alphas.append((q.conj() * w).sum(1).real)
        used = basis[:, :, : j + 1]
        for _ in range(reorthogonalise):  # full reorthogonalisation (twice: stable to rounding)
            w = w - torch.bmm(used, torch.bmm(used.conj().transpose(1, 2), w.unsqueeze(2))).squeeze(2)
        beta = w.norm(dim=1)
        betas.append(beta)
        q = w / beta.clamp_min(1e-300)[:, None]
    tridiagonal = torch.diag_embed(torch.stack(alphas, 1))
    if steps > 1:
        off = torch.stack(betas[:-1], 1)
        tridiagonal = tridiagonal + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    values, vectors = torch.linalg.eigh(tridiagonal)  # ≤ 32 × 32: one batched Jacobi call on a GPU
    top = vectors[:, :, -1]
    ritz = torch.bmm(basis, top.to(basis.dtype).unsqueeze(2)).squeeze(2)
    return values[:, -1], betas[-1] * top[:, -1].abs(), ritz


def _top_eigenvalues(
    gram: torch.Tensor, *, steps: int = 32, tol: float = 1e-7, restarts: int = 3, seed: int = 0, method: str = "auto"
) -> torch.Tensor:
    """λ_max of every Hermitian positive semi-definite matrix in ``gram`` [F, d, d].

    ``method="lanczos"`` (the default on a GPU): batched Lanczos (``steps`` ≤ 32, so that the
    small tridiagonal problems go to one batched Jacobi call) in float64, restarted from the top
    Ritz vector up to ``restarts`` times for the matrices whose residual is still above
    ``tol``·θ (then |θ − λ| ≤ tol·θ for an eigenvalue λ); what remains is finished by a dense
    ``eigvalsh``. ``method="dense"`` (the default on a CPU): LAPACK's ``eigvalsh`` for all.
    Returns [F] (real).
    """
    count, size, _ = gram.shape
    if method == "auto":
        method = "lanczos" if gram.device.type == "cuda" else "dense"
    if method == "dense":
        # On a CPU, LAPACK's dense eigensolver beats batched matrix-vector products,
        # which are limited by memory bandwidth.
        return torch.linalg.eigvalsh(gram)[:, -1]
    gram = gram.to(torch.complex128 if gram.is_complex() else torch.float64)
    if size <= 32:
        return torch.linalg.eigvalsh(gram)[:, -1].to(torch.float64)
    steps = min(steps, size)
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(count, size, dtype=gram.dtype, generator=generator).to(gram.device)
    theta, residual, ritz = _lanczos_round(gram, start, steps)
    todo = torch.arange(count, device=gram.device)  # rows still being refined; ritz is theirs
    for _ in range(restarts + 1):
        unsure = residual[todo] > tol * theta[todo].abs().clamp_min(1e-300)
        if not bool(unsure.any()):
            return theta
        todo, start = todo[unsure], ritz[unsure]
        if _ == restarts:
            break
        new_theta, new_residual, ritz = _lanczos_round(gram[todo], start, steps)
        theta, residual = theta.clone(), residual.clone()
        theta[todo], residual[todo] = new_theta, new_residual
    theta = theta.clone()
    theta[todo] = torch.linalg.eigvalsh(gram[todo])[:, -1]
    return theta


def _largest_singular_values(blocks: torch.Tensor) -> torch.Tensor:
    """σ_max of every block [F, a, b] (no autograd), from the smaller Gram matrix."""
    if blocks.shape[1] > blocks.shape[2]:
        blocks = blocks.transpose(1, 2)
    gram = torch.bmm(blocks, blocks.conj().transpose(1, 2))  # [F, d, d], d the smaller side
    return _top_eigenvalues(gram).clamp_min(0).sqrt().to(blocks.real.dtype)


def conv_operator_norm(
    weight: torch.Tensor, stride: int = 1, input_size: int | tuple[int, int] = (32, 32)
) -> torch.Tensor:
    """The exact operator norm of the circular conv layer (weight [D, C, k, k], stride Δ) on
    C × H × W inputs, by the Fourier method: max_ξ σ_max(A(ξ)) / Δ. A scalar tensor.

    Differentiable in ``weight`` when it requires grad (then the block SVDs run through autograd).
    """
    blocks = fourier_blocks(weight, stride, input_size)
    if torch.is_grad_enabled() and weight.requires_grad:
        return torch.linalg.matrix_norm(blocks, ord=2).max() / stride
    with torch.no_grad():
        return _largest_singular_values(blocks).max() / stride


def conv_singular_values(
    weight: torch.Tensor, stride: int = 1, input_size: int | tuple[int, int] = (32, 32)
) -> torch.Tensor:
    """All singular values of the circular strided conv layer, sorted descending (for plots).

    There are (H/Δ)(W/Δ)·min(D, C·Δ²) of them (the operator's rank is at most that).
    """
    with torch.no_grad():
        blocks = fourier_blocks(weight, stride, input_size, half=False)
        return (torch.linalg.svdvals(blocks).flatten() / stride).sort(descending=True).values


def circular_conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """y_d(n) = Σ_c Σ_u w_dc(u) x_c(Δn + u) with indices modulo the input grid: [N, D, H/Δ, W/Δ]."""
    k_h, k_w = weight.shape[2:]
    padded = F.pad(x, (0, k_w - 1, 0, k_h - 1), mode="circular")
    return F.conv2d(padded, weight, stride=stride)


def conv_operator_norm_power(
    layer_or_weight: nn.Conv2d | torch.Tensor,
    stride: int | None = None,
    padding: int | tuple[int, int] | None = None,
    input_size: int | tuple[int, int] = (32, 32),
    *,
    iterations: int = 10_000,
    tol: float = 1e-6,
    circular: bool = False,
    seed: int = 0,
) -> torch.Tensor:
    """The operator norm of a conv layer measured by power iteration on the layer itself.

    Args:
        layer_or_weight: an ``nn.Conv2d`` (its own stride and zero padding are used unless given)
            or a weight [D, C, k, k].
        stride, padding: override the layer's (a weight needs them; default 1 and 0).
        input_size: (H, W) of the input.
        iterations: the most iterations; stops earlier when the estimate changes by < tol (relative).
        circular: use the circular operator (``circular_conv``) instead of zero padding.

    Each iteration applies the layer and its true adjoint (the vector-Jacobian product through
    autograd, i.e. conv_transpose2d with the matching output size). Returns σ (a lower bound
    that converges to the norm from below).
    """
    mode = "zeros"
    if isinstance(layer_or_weight, nn.Conv2d):
        weight = layer_or_weight.weight.detach()
        stride = layer_or_weight.stride[0] if stride is None else stride
        padding = layer_or_weight.padding if padding is None else padding  # type: ignore[assignment]
        mode = layer_or_weight.padding_mode
    else:
        weight = layer_or_weight.detach()
        stride = 1 if stride is None else stride
        padding = 0 if padding is None else padding
    weight = _check_weight(weight, 4, "[D, C, k, k]")
    height, width = _pair(input_size, "input_size")
    if min(_pair(padding, "padding")) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if circular:
        _check_conv(weight, stride, (height, width))

    def apply(v):
        if circular:
            return circular_conv(v, weight, stride)
        if mode != "zeros":  # the layer's own reflect/replicate/circular padding
            pad_h, pad_w = _pair(padding, "padding")
            return F.conv2d(F.pad(v, (pad_w, pad_w, pad_h, pad_h), mode=mode), weight, stride=stride)
        return F.conv2d(v, weight, stride=stride, padding=padding)

    generator = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(1, weight.shape[1], height, width, generator=generator).to(weight)
    v /= v.norm()
    sigma = torch.zeros((), dtype=weight.dtype, device=weight.device)
    for _ in range(iterations):
        v.requires_grad_(True)
        u = apply(v)
        (w,) = torch.autograd.grad(u, v, grad_outputs=u)  # Aᵀ A v
        v = v.detach()
        new_sigma = (w * v).sum().clamp_min(0).sqrt()  # Rayleigh quotient of AᵀA: ‖A v‖
        v = w / w.norm()
        if abs(new_sigma - sigma) <= tol * new_sigma:
            return new_sigma
        sigma = new_sigma
    return sigma


def zero_padding_grid(
    input_size: int | tuple[int, int], padding: int | tuple[int, int], stride: int
) -> tuple[int, int]:
    """The smallest grid L ≥ N + 2p that is a multiple of the stride, per side."""
    height, width = _pair(input_size, "input_size")
    pad_h, pad_w = _pair(padding, "padding")
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    check_int("stride", stride)
    return (math.ceil((height + 2 * pad_h) / stride) * stride, math.ceil((width + 2 * pad_w) / stride) * stride)


PADDING_MODES = ("zeros", "circular")


def _conv_settings(layer: nn.Conv2d):
    """(weight, stride, padding, padding_mode) of a conv layer that can be bounded; ValueError
    for a grouped, dilated, non-square-stride or string-padded one."""
    if layer.groups != 1 or layer.dilation != (1, 1) or layer.stride[0] != layer.stride[1]:
        raise ValueError(
            "only ungrouped, undilated, square-stride convolutions can be bounded, got "
            f"groups={layer.groups}, dilation={layer.dilation}, stride={layer.stride}"
        )
    if isinstance(layer.padding, str):
        raise ValueError(f"padding={layer.padding!r} layers are not supported; give the padding as ints")
    return layer.weight, layer.stride[0], layer.padding, layer.padding_mode


def conv_operator_norm_bound(
    layer_or_weight: nn.Conv2d | torch.Tensor,
    stride: int | None = None,
    padding: int | tuple[int, int] | None = None,
    input_size: int | tuple[int, int] = (32, 32),
    *,
    padding_mode: str | None = None,
) -> torch.Tensor:
    """A certified upper bound on the operator norm of the real conv layer on ``input_size``.

    ``padding_mode="zeros"`` (PyTorch's default): the circular norm on the grid L ≥ N + 2p (a
    multiple of Δ). ``"circular"``: the layer is a shifted circular conv on the N grid itself
    whose outputs are a subset of the circular operator's when N is a multiple of Δ and the
    layer has at most N/Δ outputs per side (e.g. "same" padding 2p ≤ k − 1); then the circular
    norm on N is the bound (exact when all N/Δ outputs are kept). Other cases, and
    ``"reflect"``/``"replicate"`` padding (which repeat input pixels, so the norm can exceed
    the circular one), are refused with a ValueError: no number is returned that is not a bound.
    """
    if isinstance(layer_or_weight, nn.Conv2d):
        weight, own_stride, own_padding, own_mode = _conv_settings(layer_or_weight)
        stride = own_stride if stride is None else stride
        padding = own_padding if padding is None else padding
        padding_mode = own_mode if padding_mode is None else padding_mode
    else:
        weight = layer_or_weight
        stride = 1 if stride is None else stride
        padding = 0 if padding is None else padding
        padding_mode = "zeros" if padding_mode is None else padding_mode
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {PADDING_MODES} to be bounded, got {padding_mode!r} "
            "(reflect/replicate padding repeats pixels: its norm can exceed the circular bound)"
        )
    grid = zero_padding_grid(input_size, padding, stride)
    if padding_mode == "circular":
        grid = _circular_grid(weight, stride, padding, input_size)
    return conv_operator_norm(weight, stride, grid)


def _circular_grid(weight: torch.Tensor, stride: int, padding, input_size) -> tuple[int, int]:
    """The N grid on which a circularly padded layer's outputs are rows of the circular operator."""
    size = _pair(input_size, "input_size")
    pads = _pair(padding, "padding")
    for n, p, k in zip(size, pads, weight.shape[2:]):
        outputs = (n + 2 * p - k) // stride + 1
        if n % stride or outputs > n // stride or p > n:
            raise ValueError(
                f"circular padding {pads} with kernel {tuple(weight.shape[2:])} and stride {stride} on input "
                f"{size} wraps outputs around the grid; no certified bound for it"
            )
    return size


def explicit_operator_matrix(fn: Callable[[torch.Tensor], torch.Tensor], input_shape: tuple[int, ...]) -> torch.Tensor:
    """The dense matrix of a linear map ``fn`` on inputs of ``input_shape`` (small sizes only):
    column j is fn(e_j) flattened. For brute-force checks."""
    numel = math.prod(input_shape)
    if numel > 20_000:
        raise ValueError(f"input_shape {tuple(input_shape)} is too large for an explicit matrix ({numel} inputs)")
    basis = torch.eye(numel, dtype=torch.float64).view(numel, *input_shape)
    return fn(basis).reshape(numel, -1).T


def linear_operator_norm(weight: torch.Tensor) -> torch.Tensor:
    """The largest singular value of a weight matrix [out, in] (differentiable)."""
    return torch.linalg.matrix_norm(_check_weight(weight, 2, "[out, in]"), ord=2)


def layer_operator_norm(layer: nn.Module, input_size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """The operator norm of a ``nn.Linear`` or ``nn.Conv2d`` (differentiable in its weight).

    A convolution without an ``input_size`` is bounded for a 32 × 32 input
    (``conv_operator_norm_bound``: with zero padding p its circular norm on the grid 32 + 2p
    rounded up to the stride, 36 × 36 for padding 2; enough for MNIST's 28 × 28).
    """
    if isinstance(layer, nn.Linear):
        return linear_operator_norm(layer.weight)
    if isinstance(layer, nn.Conv2d):
        size = input_size or (32, 32)
        return conv_operator_norm_bound(layer, input_size=size)
    raise ValueError(f"layer must be nn.Linear or nn.Conv2d, got {type(layer).__name__}")


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


def _trace_leaves(model: nn.Module, input_shape, device) -> list[tuple[str, nn.Module, tuple, tuple]]:
    """The leaf modules in the order a forward pass on one random input calls them, with their
    input and output shapes. Raises ValueError unless the model is a plain chain of them
    (each leaf's input is the previous leaf's output, up to reshaping; the model's input and
    output are the first input and the last output): a residual addition or any computation
    outside the modules would make the product of the layers' bounds meaningless."""
    names = {m: n for n, m in model.named_modules()}
    calls, inputs = [], []

    def before(module, args):
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise ValueError(f"layer {names[module]!r} takes {len(args)} inputs; only chains of layers can be bounded")
        inputs.append(args[0].detach().clone())  # before an in-place layer changes it

    def after(module, args, output):
        calls.append((names[module], module, inputs[-1], output.detach().clone()))

    leaves = [m for m in model.modules() if len(list(m.children())) == 0]
    hooks = [h for m in leaves for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    x = torch.rand(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    try:
        with eval_mode(model), torch.no_grad():
            output = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    links = [x, *[c[3] for c in calls]]
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
    return [(name, module, tuple(given.shape[1:]), tuple(out.shape[1:])) for name, module, given, out in calls]


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
    """
    import pandas as pd

    if device is None:
        device = model_device(model)
    rows = []
    for name, module, shape_in, shape_out in _trace_leaves(model, input_shape, device):
        with torch.no_grad():
            bound, circular = _module_bound(name, module, shape_in, shape_out)
        rows.append(
            {
                "layer": name,
                "type": type(module).__name__,
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


# ---------------------------------------------------------------------------------------------
# A certified norm: a lower and an upper bound that bracket the exact circular norm.
#
# Route (all in float64):
# 1. Polyphase: a stride-Δ conv on an H × W grid is a stride-1 conv on the (H/Δ) × (W/Δ) grid
#    with C·Δ² input channels (x_{c,r}(m) = x_c(Δm + r)) and kernel taps w'_{d,(c,r)}(q) =
#    w_dc(Δq + r): the input permutation is an isometry, so the norms agree (no 1/Δ factor).
# 2. Autocorrelation: for a stride-1 conv with taps V_u (n × m, n the smaller side), the block
#    Gram matrices are G(ξ) = Σ_δ e^{−2πiξ·δ/M} K_δ with K_δ = Σ_v V_{v+δ} V_vᵀ, so the
#    (2k−1)² real products K_δ (half of them: K_{−δ} = K_δᵀ) replace F complex block products.
# 3. Lower bound: a few batched Lanczos steps rank the blocks; the best candidates get a Lanczos
#    Ritz vector v (later rounds: a dense eigenvector), and the Rayleigh quotient vᴴGv / vᴴv ≤ λ_max
#    (any v) is the lower bound L.
# 4. Upper bound: by Sylvester's law of inertia, U·I − G(ξ) has a Cholesky factor iff
#    λ_max(G(ξ)) < U. One batched Cholesky at U = L(1 + tol)² certifies every block at once (first
#    in complex64 with Rump's rigorous shift, then in complex128 for the few blocks near U); a
#    block that fails has λ_max ≥ U > L, so it is refined (dense eigenvector, new L) and
#    checked again.
#
# Why not Gram iteration (Delattre et al. 2023)? Its bound ‖G^{2^t}‖_F^{1/2^t} approaches
# λ_max at the rate (λ₂/λ₁)^{2^t} of each block; random kernels give blocks whose top
# eigenvalues are close (Wishart edge), so every block needs many n³ squarings. One Cholesky
# (n³/3) per block certifies any U above the true top, whatever the gap.
# ---------------------------------------------------------------------------------------------

_ROUNDING_MARGIN = 1e-9  # relative; float64 rounding in G and Cholesky is ~n·1e-16 ≪ this


@dataclass(frozen=True)
class CertifiedNorm:
    """An operator norm bracketed by certified bounds: ``lower`` ≤ ‖W‖ ≤ ``upper``.

    ``upper − lower ≤ tol · lower``. ``rounds``: Cholesky rounds used; ``refined``: blocks
    given a dense eigenvector; ``blocks``: the number of frequency blocks checked.
    """

    lower: float
    upper: float
    tol: float
    rounds: int
    refined: int
    blocks: int

    @property
    def value(self) -> float:
        """The midpoint of the bracket."""
        return 0.5 * (self.lower + self.upper)


def polyphase_weight(weight: torch.Tensor, stride: int) -> torch.Tensor:
    """The stride-1 kernel [D, C·Δ², ⌈k/Δ⌉, ⌈k/Δ⌉] whose circular conv on the (H/Δ) × (W/Δ)
    grid equals the stride-Δ conv on H × W up to a permutation of the input (same norm).

    Channel c·Δ² + r_h·Δ + r_w, tap q holds w[:, c, Δq_h + r_h, Δq_w + r_w] (zero past k).
    """
    d, c, k_h, k_w = weight.shape
    q_h, q_w = -(-k_h // stride), -(-k_w // stride)
    padded = F.pad(weight, (0, q_w * stride - k_w, 0, q_h * stride - k_h))
    taps = padded.view(d, c, q_h, stride, q_w, stride).permute(0, 1, 3, 5, 2, 4)
    return taps.reshape(d, c * stride * stride, q_h, q_w)


def _shift_products(weight: torch.Tensor) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """K_δ = Σ_v V_{v+δ} V_vᵀ for the shifts δ = (a, b) with a > 0, or a = 0 and b ≥ 0.

    V_u is the tap u of ``weight`` [D, C, k_h, k_w] as an n × m matrix, n = min(D, C).
    Returns the shifts and K [S, n, n] (float64).
    """
    d, c, k_h, k_w = weight.shape
    taps = weight.to(torch.float64).permute(2, 3, 0, 1)  # [k_h, k_w, D, C]
    if c < d:
        taps = taps.transpose(2, 3)
    shifts, products = [], []
    for a in range(k_h):
        for b in range(-(k_w - 1), k_w):
            if a == 0 and b < 0:
                continue
            left = taps[a:, max(b, 0) : k_w + min(b, 0)]  # V_{v+δ}
            right = taps[: k_h - a, max(-b, 0) : k_w - max(b, 0)]  # V_v
            left = left.permute(2, 0, 1, 3).reshape(left.shape[2], -1)
            right = right.permute(2, 0, 1, 3).reshape(right.shape[2], -1)
            shifts.append((a, b))
            products.append(left @ right.T)
    return shifts, torch.stack(products)


def gram_blocks(weight: torch.Tensor, stride: int, input_size: int | tuple[int, int]) -> torch.Tensor:
    """Hermitian positive semi-definite matrices [F, n, n] (complex128) whose largest
    eigenvalue, maximised over the F blocks, is ‖W‖² of the circular strided conv.

    Built by the polyphase and autocorrelation route (see the comment above); F covers the
    half of the (H/Δ) × (W/Δ) frequency grid that conjugate symmetry leaves, n = min(D, C·Δ²).
    """
    stride, (height, width) = _check_conv(weight, stride, input_size)
    mh, mw = height // stride, width // stride
    shifts, products = _shift_products(polyphase_weight(weight.detach(), stride))
    n = products.shape[1]
    symmetric = products + products.transpose(1, 2)
    antisymmetric = products - products.transpose(1, 2)
    symmetric[0] = products[0]  # δ = 0 appears once (K_0 is symmetric)
    antisymmetric[0] = 0
    xi_h = torch.arange(mh, dtype=torch.float64, device=weight.device)
    xi_w = torch.arange(mw // 2 + 1, dtype=torch.float64, device=weight.device)
    delta = torch.tensor(shifts, dtype=torch.float64, device=weight.device)  # [S, 2]
    phase = 2 * math.pi * (xi_h[:, None, None] * delta[:, 0] / mh + xi_w[None, :, None] * delta[:, 1] / mw)
    phase = phase.reshape(-1, len(shifts))  # [F, S]
    real = torch.cos(phase) @ symmetric.view(len(shifts), -1)
    imag = -torch.sin(phase) @ antisymmetric.view(len(shifts), -1)
    return torch.complex(real, imag).view(-1, n, n)


def _rayleigh(gram: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """vᴴGv / vᴴv per block (float64): a lower bound on λ_max of each G."""
    gv = torch.bmm(gram, vectors.unsqueeze(2)).squeeze(2)
    return (vectors.conj() * gv).sum(1).real / (vectors.conj() * vectors).sum(1).real


def _dense_lower_bounds(gram: torch.Tensor) -> torch.Tensor:
    """Certified lower bounds ≈ λ_max for a few blocks: the Rayleigh quotient of the top
    eigenvector that LAPACK returns."""
    _, vectors = torch.linalg.eigh(gram)
    return _rayleigh(gram, vectors[:, :, -1])


def _lanczos_lower_bounds(gram: torch.Tensor, steps: int = 24, restarts: int = 2) -> torch.Tensor:
    """Certified lower bounds ≈ λ_max (Rayleigh quotients of restarted Lanczos Ritz vectors)."""
    if gram.shape[1] <= steps:
        return _dense_lower_bounds(gram)
    generator = torch.Generator().manual_seed(1)
    vector = torch.randn(gram.shape[0], gram.shape[1], dtype=gram.dtype, generator=generator).to(gram.device)
    for _ in range(restarts + 1):
        _, _, vector = _lanczos_round(gram, vector, steps)
    return _rayleigh(gram, vector)


def _lanczos_screen(gram: torch.Tensor, steps: int) -> torch.Tensor:
    """Rough λ_max estimates to rank the blocks: the top Ritz value of ``steps`` plain Lanczos
    steps (three-term recurrence, no reorthogonalisation; an estimate, not a bound)."""
    count, size, _ = gram.shape
    steps = min(steps, size)
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(count, size, 1, generator=generator, dtype=gram.dtype).to(gram.device)
    q = q / q.norm(dim=1, keepdim=True)
    previous = torch.zeros_like(q)
    beta = torch.zeros(count, 1, 1, dtype=torch.float64, device=gram.device)
    alphas, betas = [], []
    for _ in range(steps):
        w = torch.bmm(gram, q)
        alpha = (q.conj() * w).sum(1, keepdim=True).real
        w = w - alpha * q - beta * previous
        beta = w.norm(dim=1, keepdim=True)
        previous, q = q, w / beta.clamp_min(1e-300)
        alphas.append(alpha.view(count))
        betas.append(beta.view(count))
    tridiagonal = torch.diag_embed(torch.stack(alphas, 1))
    if steps > 1:
        off = torch.stack(betas[:-1], 1)
        tridiagonal = tridiagonal + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    return torch.linalg.eigvalsh(tridiagonal)[:, -1]


def _unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2


def _certify_upper(gram: torch.Tensor, upper: float) -> torch.Tensor:
    """True for each block whose λ_max is certified below ``upper``: U·I − G is positive
    definite. Two stages: a complex64 Cholesky of U·I − G − c·I with Rump's shift
    c = 4·γ_{n+1}/(1 − 2γ_{n+1})·tr(U·I − G) plus the float32 rounding of G (Rump, BIT 46,
    2006: if it completes, U·I − G is positive definite; the factor 4 covers complex
    arithmetic), then a complex128 Cholesky (shift ``_ROUNDING_MARGIN``·U) for the blocks
    that stage leaves undecided."""
    size = gram.shape[1]
    target = upper * (1 - _ROUNDING_MARGIN)
    u32 = _unit_roundoff(torch.float32)
    gamma = (size + 1) * u32 / (1 - (size + 1) * u32)
    trace = gram.diagonal(dim1=1, dim2=2).real.sum(1)  # ≥ ‖G‖_F for G ⪰ 0
    shift = 4 * gamma / (1 - 2 * gamma) * (size * upper + trace) + 2 * u32 * trace  # [F]
    fast = gram.to(torch.complex64).neg_()
    fast.diagonal(dim1=1, dim2=2).add_((target - shift[:, None]).to(fast.dtype))
    passed = torch.linalg.cholesky_ex(fast).info == 0
    undecided = (~passed).nonzero().squeeze(1)
    if len(undecided):
        exact = -gram[undecided]
        exact.diagonal(dim1=1, dim2=2).add_(target)
        passed[undecided] = torch.linalg.cholesky_ex(exact).info == 0
    return passed


def conv_operator_norm_certified(
    weight: torch.Tensor,
    stride: int = 1,
    input_size: int | tuple[int, int] = (32, 32),
    *,
    tol: float = 1e-4,
    candidates: int = 4,
    screen_steps: int = 8,
    max_rounds: int = 3,
) -> CertifiedNorm:
    """Certified bounds on the norm of the circular strided conv (as ``conv_operator_norm``).

    Args:
        weight: [D, C, k, k]; stride Δ; input_size (H, W), multiples of Δ.
        tol: the relative width asked for: upper − lower ≤ tol · lower (e.g. 1e-4).
        candidates: blocks given a dense eigenvector before the first check.
        screen_steps: Lanczos steps that rank the blocks.
        max_rounds: Cholesky rounds allowed before refusing.

    Returns a ``CertifiedNorm`` (float64 arithmetic; bounds hold up to a relative rounding
    margin of 1e-9). Raises ``NotCertifiedError`` when ``max_rounds`` do not suffice.
    """
    check_positive("tol", tol)
    for name, value in (("candidates", candidates), ("screen_steps", screen_steps), ("max_rounds", max_rounds)):
        check_int(name, value)
    with torch.no_grad():
        gram = gram_blocks(weight, stride, input_size)
        count, size, _ = gram.shape
        if not bool(weight.detach().abs().amax() > 0):
            return CertifiedNorm(0.0, 0.0, tol, 0, 0, count)
        screen = _lanczos_screen(gram, screen_steps)
        lower = torch.zeros(count, dtype=torch.float64, device=gram.device)
        todo = screen.topk(min(candidates, count)).indices
        refined = 0
        pending = torch.arange(count, device=gram.device)
        for round_ in range(1, max_rounds + 1):
            refine = _lanczos_lower_bounds if round_ == 1 else _dense_lower_bounds
            lower[todo] = torch.maximum(lower[todo], refine(gram[todo]))
            refined += len(todo)
            sigma = math.sqrt(lower.max().item() * (1 - _ROUNDING_MARGIN))
            sigma_upper = sigma * (1 + tol * (1 - 1e-9))  # strictly within tol after rounding
            passed = _certify_upper(gram[pending], sigma_upper**2)
            pending = pending[~passed]
            if len(pending) == 0:
                return CertifiedNorm(sigma, sigma_upper, tol, round_, refined, count)
            todo = pending
    raise NotCertifiedError(
        f"could not certify the norm to tol={tol} in max_rounds={max_rounds}: {len(pending)} of {count} "
        "blocks stay above the upper bound"
    )
