"""Exact operator norms of conv and linear layers by the Fourier method (the paper's eq. 1 with
the stride normalisation derived; see the package docstring), and their power-iteration check."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import ArgumentTypeError, check_choice, check_int

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = [
    "PADDING_MODES",
    "circular_conv",
    "conv_operator_norm",
    "conv_operator_norm_bound",
    "conv_operator_norm_power",
    "conv_singular_values",
    "explicit_operator_matrix",
    "fourier_blocks",
    "layer_operator_norm",
    "linear_operator_norm",
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

    Used in chapter 5 (book/05_spectral.md).
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

    Used in chapter 5 (book/05_spectral.md).
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
    """y_d(n) = Σ_c Σ_u w_dc(u) x_c(Δn + u) with indices modulo the input grid: [N, D, H/Δ, W/Δ].

    Used in chapter 5 (book/05_spectral.md).
    """
    k_h, k_w = weight.shape[2:]
    padded = F.pad(x, (0, k_w - 1, 0, k_h - 1), mode="circular")
    return F.conv2d(padded, weight, stride=stride)


@dataclass(frozen=True)
class _ConvMap:
    """A conv layer's linear part x ↦ W * x (no bias) as ``F.conv2d`` computes it: the weight
    [D, C/groups, k_h, k_w], stride, padding (ints per side, or "same"/"valid"), dilation,
    groups, padding mode (``nn.Conv2d.padding_mode``) and the number of input channels C."""

    weight: torch.Tensor
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    mode: str = "zeros"

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    def explicit_padding(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) padding, as ``nn.Conv2d`` pads for a padding mode other
        than zeros ("same": d·(k − 1) in all, the smaller half before)."""
        if isinstance(self.padding, str):
            if self.padding == "valid":
                return (0, 0, 0, 0)
            h_total, w_total = (d * (k - 1) for d, k in zip(self.dilation, self.weight.shape[2:]))
            return (w_total // 2, w_total - w_total // 2, h_total // 2, h_total - h_total // 2)
        pad_h, pad_w = self.padding
        return (pad_w, pad_w, pad_h, pad_h)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """W * v for inputs v [N, C, H, W]: outputs [N, D, H', W']."""
        if self.mode == "zeros":
            return F.conv2d(
                v, self.weight, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
            )
        padded = F.pad(v, self.explicit_padding(), mode=self.mode)
        return F.conv2d(padded, self.weight, stride=self.stride, dilation=self.dilation, groups=self.groups)


def _conv_padding(padding: Any) -> tuple[int, int] | str:
    """A conv padding checked: "same", "valid", or an int / pair of ints ≥ 0."""
    if isinstance(padding, str):
        check_choice("padding", padding, ("same", "valid"))
        return padding
    pads = _pair(padding, "padding")
    if min(pads) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return pads


def _conv_map(layer_or_weight: nn.Conv2d | torch.Tensor, stride: Any, padding: Any) -> _ConvMap:
    """The linear map of an ``nn.Conv2d`` (its own stride, padding, dilation, groups and padding
    mode; ``stride``/``padding`` given replace its own) or of a weight [D, C, k, k] (default
    stride 1 and zero padding 0)."""
    if isinstance(layer_or_weight, nn.Conv2d):
        layer = layer_or_weight
        weight = _check_weight(layer.weight.detach(), 4, "[D, C/groups, k, k]")
        stride = layer.stride if stride is None else stride
        padding = layer.padding if padding is None else padding
        own = dict(dilation=_pair(layer.dilation, "dilation"), groups=layer.groups, mode=layer.padding_mode)
    else:
        weight = _check_weight(layer_or_weight, 4, "[D, C, k, k]").detach()
        stride = 1 if stride is None else stride
        padding = 0 if padding is None else padding
        own = {}
    strides = _pair(stride, "stride")
    if min(strides) < 1:
        raise ValueError(f"stride must be an int >= 1 or a pair of them, got {stride!r}")
    conv = _ConvMap(weight, strides, _conv_padding(padding), **own)  # type: ignore[arg-type]
    if conv.padding == "same" and strides != (1, 1):
        raise ValueError(f"padding='same' needs stride 1 (as in torch), got stride {stride!r}")
    return conv


def _check_applicable(conv: _ConvMap, size: tuple[int, int]) -> None:
    """Refuse (ValueError) an input size the layer cannot be applied to (a kernel wider than the
    padded input, reflect padding wider than the input), with torch's reason."""
    try:
        with torch.no_grad():
            out = conv(torch.zeros(1, conv.in_channels, *size, dtype=conv.weight.dtype, device=conv.weight.device))
    except RuntimeError as error:
        raise ValueError(f"input_size {size} does not fit this conv layer: {error!s:.200}") from None
    if out.numel() == 0:
        raise ValueError(f"input_size {size} gives this conv layer no output")


def _circular_map(conv: _ConvMap, size: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The circular operator (``circular_conv``) of the layer's weight and stride on ``size``;
    ValueError for a layer it does not describe (grouped, dilated, unequal strides)."""
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.stride[0] != conv.stride[1]:
        raise ValueError(
            "circular=True is the circular operator of an ungrouped, undilated, square-stride conv; got "
            f"groups={conv.groups}, dilation={conv.dilation}, stride={conv.stride}"
        )
    stride, _ = _check_conv(conv.weight, conv.stride[0], size)
    return lambda v: circular_conv(v, conv.weight, stride)


def conv_operator_norm_power(
    layer_or_weight: nn.Conv2d | torch.Tensor,
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str | None = None,
    input_size: int | tuple[int, int] = (32, 32),
    *,
    iterations: int = 10_000,
    tol: float = 1e-6,
    circular: bool = False,
    seed: int = 0,
) -> torch.Tensor:
    """The operator norm of a conv layer measured by power iteration on the layer itself.

    Args:
        layer_or_weight: an ``nn.Conv2d``, measured as it computes (its stride, padding,
            padding mode, dilation and groups; its bias is not part of the linear map), or a
            weight [D, C, k, k] (an ungrouped, undilated layer with zero padding).
        stride, padding: replace the layer's (a weight needs them; default 1 and 0).
        input_size: (H, W) of the input, in pixels.
        iterations: the most iterations; stops earlier when the estimate changes by < tol (relative).
        circular: use the circular operator (``circular_conv``) instead of the layer's padding
            (refused for a grouped, dilated or unequal-stride layer, which it does not describe).

    Each iteration applies the layer and its true adjoint (the vector-Jacobian product through
    autograd: conv_transpose2d with the matching output size, and the adjoint of the layer's
    padding). Returns σ, a scalar tensor: ‖A v‖ for a unit v, so a lower bound on the norm that
    converges to it from below.

    Used in chapter 5 (book/05_spectral.md).
    """
    conv = _conv_map(layer_or_weight, stride, padding)
    size = _pair(input_size, "input_size")
    if min(size) < 1:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    if circular:
        apply = _circular_map(conv, size)
    else:
        _check_applicable(conv, size)
        apply = conv
    generator = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(1, conv.in_channels, *size, generator=generator).to(conv.weight)
    return _power_iteration(apply, v / v.norm(), iterations, tol)


def _power_iteration(
    apply: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, iterations: int, tol: float
) -> torch.Tensor:
    """σ = ‖A v‖ after power iteration on AᵀA from the unit vector ``v`` (Aᵀ by autograd)."""
    sigma = torch.zeros((), dtype=v.dtype, device=v.device)
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
    column j is fn(e_j) flattened. For brute-force checks.

    Used in chapter 5 (book/05_spectral.md).
    """
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
