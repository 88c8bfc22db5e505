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

The package: ``fourier`` (the Fourier norms of one layer) and ``network`` (bounds and gains of a
whole network). Every public name is re-exported here (``from coursekit.spectral import
layer_bounds``). The certified bracket of a conv layer's circular norm (Lanczos and Cholesky),
which only the benchmarks use, lives beside them: ``benchmarks/certified_norm.py``.
"""

from .._checks import NotCertifiedError
from .fourier import (
    PADDING_MODES,
    _top_eigenvalues,  # noqa: F401
    circular_conv,
    conv_operator_norm,
    conv_operator_norm_bound,
    conv_operator_norm_power,
    conv_singular_values,
    explicit_operator_matrix,
    fourier_blocks,
    layer_operator_norm,
    linear_operator_norm,
    zero_padding_grid,
)
from .network import BOUND_MARGIN, BOUNDED_LAYERS, ONE_LIPSCHITZ, layer_bounds, layer_gains

__all__ = [
    "BOUNDED_LAYERS",
    "BOUND_MARGIN",
    "NotCertifiedError",
    "ONE_LIPSCHITZ",
    "PADDING_MODES",
    "circular_conv",
    "conv_operator_norm",
    "conv_operator_norm_bound",
    "conv_operator_norm_power",
    "conv_singular_values",
    "explicit_operator_matrix",
    "fourier_blocks",
    "layer_bounds",
    "layer_gains",
    "layer_operator_norm",
    "linear_operator_norm",
    "zero_padding_grid",
]
