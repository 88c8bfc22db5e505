"""Chapter 5's exercises (``book/05_spectral.md``): the norm of a strided circular convolution
from its kernel's DFT, in 1-D and then in 2-D with channels (the paper's eq. 1)."""

from __future__ import annotations

import numpy as np
import torch

from ..spectral import conv_operator_norm
from .bank import Exercise
from .checking import Mistake


def _padded(taps: np.ndarray, size: int) -> np.ndarray:
    """The kernel's taps on the circle of ``size`` samples (zeros after them)."""
    padded = np.zeros(size)
    padded[: len(taps)] = taps
    return padded


def strided_norm_1d_explicit(taps: np.ndarray, size: int, stride: int) -> float:
    """‖C[::stride]‖ from the explicit matrix: C [size, size] is the circular layer
    y(n) = Σ_u taps[u]·x(n + u) (indices modulo size), C[::stride] keeps every stride-th output.
    taps: a 1-D array of at most ``size`` entries; ``stride`` divides ``size``. A float."""
    from scipy.linalg import circulant

    if size % stride:
        raise ValueError(f"stride must divide size, got stride={stride}, size={size}")
    return float(np.linalg.norm(circulant(_padded(np.asarray(taps, float), size)).T[::stride], 2))


def _power(taps: np.ndarray, size: int) -> np.ndarray:
    """|ŵ(ξ)|², ξ = 0..size−1, of the padded kernel."""
    return np.abs(np.fft.fft(_padded(np.asarray(taps, float), size))) ** 2


def _1d_no_division(taps, size, stride):
    """Folded, but the sum not divided by the stride."""
    return float(np.sqrt(_power(taps, size).reshape(stride, -1).sum(0).max()))


def _1d_norm_over_stride(taps, size, stride):
    """Folded, the norm (not its square) divided by the stride."""
    return float(np.sqrt(_power(taps, size).reshape(stride, -1).sum(0).max()) / stride)


def _1d_adjacent(taps, size, stride):
    """Neighbouring frequencies summed (ξ·Δ … ξ·Δ + Δ − 1) instead of the aliased ξ + l·M."""
    return float(np.sqrt(_power(taps, size).reshape(-1, stride).sum(1).max() / stride))


def _1d_no_fold(taps, size, stride):
    """The stride ignored: the full layer's norm max |ŵ|."""
    return float(np.sqrt(_power(taps, size).max()))


def _1d_cases() -> list[tuple]:
    rng = np.random.default_rng(0)
    taps = rng.standard_normal(3)
    return [(taps, 16, 1), (taps, 16, 2), (taps, 16, 4), (rng.standard_normal(5), 12, 3)]


def conv_norm_2d_reference(weight: torch.Tensor, stride: int, size: int) -> torch.Tensor:
    """‖W‖ of the circular strided conv (weight [D, C, k, k], stride Δ) on C × size × size
    inputs: max over output frequencies ξ of σ_max(A(ξ)), divided by Δ (``conv_operator_norm``)."""
    return conv_operator_norm(weight, stride, (size, size))


def _blocks(weight: torch.Tensor, stride: int, size: int, adjacent: bool = False) -> torch.Tensor:
    """A(ξ) [M, M, D, C·Δ²] from the FFT of the padded kernels; ``adjacent``: the mistake of
    folding neighbouring frequencies instead of ξ + l·M."""
    d, c, k, _ = weight.shape
    m = size // stride
    w_hat = torch.fft.fft2(torch.nn.functional.pad(weight, (0, size - k, 0, size - k)))
    if adjacent:  # frequency index ξ·Δ + l
        folded = w_hat.reshape(d, c, m, stride, m, stride).permute(2, 4, 0, 1, 3, 5)
    else:  # frequency index ξ + l·M
        folded = w_hat.reshape(d, c, stride, m, stride, m).permute(3, 5, 0, 1, 2, 4)
    return folded.reshape(m, m, d, c * stride * stride)


def _2d_printed(weight, stride, size):
    """Eq. 1 as printed: Δ⁻² with the unnormalised DFT."""
    return torch.linalg.matrix_norm(_blocks(weight, stride, size), 2).max() / stride**2


def _2d_no_division(weight, stride, size):
    """No factor of Δ at all."""
    return torch.linalg.matrix_norm(_blocks(weight, stride, size), 2).max()


def _2d_frobenius(weight, stride, size):
    """The Frobenius norm of each A(ξ) instead of its largest singular value."""
    return torch.linalg.matrix_norm(_blocks(weight, stride, size), "fro").max() / stride


def _2d_per_pair(weight, stride, size):
    """Each (output, input) channel pair alone, the largest of their norms."""
    d, c = weight.shape[:2]
    pairs = [conv_norm_2d_reference(weight[i : i + 1, j : j + 1], stride, size) for i in range(d) for j in range(c)]
    return torch.stack(pairs).max()


def _2d_adjacent(weight, stride, size):
    """Neighbouring frequencies folded together."""
    return torch.linalg.matrix_norm(_blocks(weight, stride, size, adjacent=True), 2).max() / stride


def _2d_cases() -> list[tuple]:
    generator = torch.Generator().manual_seed(0)
    layers = [(4, 3, 3, 1, 8), (6, 3, 5, 2, 8), (5, 2, 4, 4, 12), (3, 2, 3, 3, 9)]  # D, C, k, Δ, size
    return [
        (torch.randn(d, c, k, k, dtype=torch.float64, generator=generator), stride, size)
        for d, c, k, stride, size in layers
    ]


EXERCISES = (
    Exercise(
        id="strided_norm_1d",
        chapter="05_spectral",
        title="The norm of a strided 1-D circular convolution",
        reference=strided_norm_1d_explicit,
        mistakes=(
            Mistake(
                "you ignored the stride: max |ŵ(ξ)| is the norm of the full layer C. Keeping every "
                "Δ-th output folds the Δ frequencies ξ, ξ + M, … (M = size/Δ) onto output frequency ξ.",
                _1d_no_fold,
            ),
            Mistake(
                "you folded the power spectrum but did not divide by the stride. Keeping every Δ-th "
                "output keeps a 1/Δ share of the energy: σ(ξ)² = Σ_l |ŵ(ξ + l·M)|² / Δ.",
                _1d_no_division,
            ),
            Mistake(
                "you divided the norm by the stride; the division by Δ is on the squared singular "
                "value, σ(ξ)² = Σ_l |ŵ(ξ + l·M)|² / Δ, so the norm is divided by √Δ.",
                _1d_norm_over_stride,
            ),
            Mistake(
                "you summed neighbouring frequencies (ξ·Δ, ξ·Δ + 1, …). The frequencies that land "
                "on output frequency ξ are ξ, ξ + M, ξ + 2M, … (M = size/Δ): reshape the spectrum to "
                "[Δ, M] and sum over the first axis.",
                _1d_adjacent,
            ),
        ),
        sample_cases=_1d_cases,
        points=2,
        hint="square the magnitudes |ŵ(ξ)| first, then fold, then divide by the stride.",
    ),
    Exercise(
        id="conv_norm_2d",
        chapter="05_spectral",
        title="Eq. 1 in code: the norm of a strided 2-D convolution with channels",
        reference=conv_norm_2d_reference,
        mistakes=(
            Mistake(
                "you used the factor Δ⁻² of the paper's eq. 1 as printed. With the unnormalised "
                "DFT that gives the map between Fourier coefficients, which is Δ times smaller than "
                "the map between images: the operator norm is max σ_max(A(ξ)) / Δ.",
                _2d_printed,
            ),
            Mistake(
                "you left out the factor of the stride: with the unnormalised DFT the norm is max σ_max(A(ξ)) / Δ.",
                _2d_no_division,
            ),
            Mistake(
                "you took the Frobenius norm of each A(ξ) (the root of the sum of its squared "
                "entries); the operator norm needs its largest singular value, "
                "torch.linalg.matrix_norm(A, 2).",
                _2d_frobenius,
            ),
            Mistake(
                "you treated each pair of channels (d, c) alone. An output channel sums over all "
                "input channels, so A(ξ) is one D × C·Δ² matrix and its largest singular value is "
                "not the largest of the pairs' norms.",
                _2d_per_pair,
            ),
            Mistake(
                "you folded neighbouring frequencies together; output frequency ξ gathers the input "
                "frequencies ξ + l·M (M = size/Δ, l in {0..Δ−1}²): reshape each axis to [Δ, M], "
                "not [M, Δ].",
                _2d_adjacent,
            ),
        ),
        sample_cases=_2d_cases,
        points=3,
        hint="pad each kernel to size × size, take fft2, gather for each output frequency ξ the "
        "Δ² frequencies ξ + l·M of every (d, c) into a D × C·Δ² matrix, take its largest singular "
        "value, maximise over ξ and divide by Δ.",
    ),
)
