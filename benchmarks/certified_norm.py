"""A certified circular norm: lower and upper bounds that bracket it (polyphase, autocorrelation,
Lanczos for the lower bound, one batched Cholesky for the upper; ``conv_operator_norm_certified``).

Beside the benchmark that uses it (``spectral.py``), not in the student package: the chapters
use the Fourier norms and bounds of ``coursekit.spectral``, which this module builds on (its
private ``_check_conv`` and ``_lanczos_round``). Scripts in this folder import it as
``certified_norm``; the tests add the folder to ``sys.path``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from coursekit._checks import NotCertifiedError, check_int, check_positive
from coursekit.spectral.fourier import _check_conv, _lanczos_round

__all__ = [
    "CertifiedNorm",
    "conv_operator_norm_certified",
    "gram_blocks",
    "polyphase_weight",
]


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
