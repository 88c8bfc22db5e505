"""The exact closest adversarial example of a linear classifier (§4.1, the FC10 models).

For a softmax on pixels, logits z = W v + b, the label l wins at v = x + r when
(w_j − w_l)·(x + r) + b_j − b_l + margin ≤ 0 for every j ≠ l. The paper's problem

    minimise ½|r|²   subject to   A r ≤ h,   −x ≤ r ≤ 1 − x,

with A = rows (w_j − w_l) [K−1, n] and h = −(A x + b_j − b_l + margin) [K−1], is then a convex
quadratic programme (QP) with K − 1 = 9 linear constraints and a box: no penalty, no search
over c, and a unique minimiser. Its Lagrangian dual has one variable per constraint:

    g(λ) = min over the box of ½|r|² + λᵀ(A r − h),   λ ≥ 0,

whose inner minimiser is r(λ) = clip(−Aᵀλ, −x, 1 − x) (the box is separable), and whose
gradient is A r(λ) − h. ``linear_min_perturbation`` maximises g over λ ≥ 0 with scipy's
L-BFGS-B (9 bound-constrained variables per problem; all rows at once, since their duals are
independent, then any uncertified row alone; independent of ``lbfgs_attack``) and returns
r(λ*) with a certificate: weak duality gives g(λ) ≤ ½|r*|² ≤ ½|r(λ)|² for a feasible r(λ),
so the returned distortion is certified to ``tol`` (relative) or the function refuses. When
g(λ) exceeds the largest ½|r|² in the box, no point of the box makes l win: distortion inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn

from ._checks import (
    ArgumentTypeError,
    NotCertifiedError,
    check_images,
    check_int,
    check_labels,
    check_positive,
    eval_mode,
    every_other_label,
    other_labels,
    to_model,
)
from .chain import chain_layers

__all__ = [
    "DAMPING_TRIES",
    "box_qp",
    "BoxQPResult",
    "check_linear_on",
    "exact_min_distortion",
    "ExactResult",
    "linear_min_perturbation",
    "linear_weights",
]


@dataclass
class ExactResult:
    """The exact solutions, one row per (image, target).

    r           [N, n] float64 optimal perturbation (zeros where infeasible), x + r in [0, 1]^n
    distortion  [N] the paper's sqrt(|r|² / n) of the optimum; inf where l cannot win in the box
    lower_bound [N] sqrt(2 g(λ) / n): a certified lower bound on the exact distortion
    violation   [N] max_j (A r − h)_j of the returned r (≤ the requested feasibility tolerance)
    multipliers [N, K−1] the dual variables λ (λ_j > 0: class j ties with l at the optimum)
    """

    r: torch.Tensor
    distortion: torch.Tensor
    lower_bound: torch.Tensor
    violation: torch.Tensor
    multipliers: torch.Tensor


def linear_weights(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [K, n], b [K]) of a model that is one ``nn.Linear`` on flattened images (the FC10
    models; ``nn.Flatten`` and identity modules are allowed around it). A ValueError for any
    other model: the exact QP holds only for a linear classifier (read as a plain chain of
    layers, ``chain.chain_layers``).

    Used in chapters 3b (book/03b_minimum_distortion.md), 7a (book/07a_attacks_and_linearity.md)
    and 7b (book/07b_certificates_and_defences.md).
    """
    try:
        layers = [layer.module for layer in chain_layers(model)]
    except ValueError as error:
        raise ValueError(f"model must be a single nn.Linear on the pixels (W·x + b, an FC10 model): {error}") from None
    linear = [m for m in layers if isinstance(m, nn.Linear)]
    others = [m for m in layers if not isinstance(m, (nn.Linear, nn.Flatten, nn.Identity))]
    if len(linear) != 1 or others:
        raise ValueError(
            f"model must be a single nn.Linear on the pixels (an FC10 model), got "
            f"{len(linear)} Linear layers and {[type(m).__name__ for m in others]}"
        )
    weight = linear[0].weight.detach().to("cpu", torch.float64)
    bias = linear[0].bias
    if bias is None:
        return weight, torch.zeros(len(weight), dtype=torch.float64)
    bias = bias.detach().to("cpu", torch.float64)  # type: ignore[assignment]
    return weight, bias


def check_linear_on(model: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Refuse (ValueError) unless ``model(x)`` is W·x + b on the images x [N, ...]: a module
    holding one ``nn.Linear`` may still transform its input first (a normalisation, a
    crop), and the QP would then solve another model's problem. Agreement is required to 1e-4
    of the size of the terms Σ_i |W_ki x_i| + |b_k| (float32 rounding is far below that)."""
    check_images("x", x)
    with eval_mode(model), torch.no_grad():
        logits = model(to_model(model, x)).detach().to("cpu", torch.float64)
    flat = x.detach().to("cpu", torch.float64).flatten(1)
    if logits.shape != (len(x), len(weight)) or flat.shape[1] != weight.shape[1]:
        raise ValueError(
            f"model must map x {tuple(x.shape)} to logits W·x + b [N, {len(weight)}], got logits {tuple(logits.shape)}"
        )
    expected = flat @ weight.T + bias
    scale = flat.abs() @ weight.abs().T + bias.abs()
    worst = ((logits - expected).abs() / scale.clamp_min(1e-300)).max().item()
    if not worst <= 1e-4:
        raise ValueError(
            f"model must compute W·x + b of its nn.Linear on the pixels (an FC10 model); on these "
            f"images its logits differ from W·x + b by up to {worst:.3g} of their scale "
            f"(does its forward transform the input first?)"
        )


def _dual(
    A: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray, lam: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows of problems: r(λ) [N, n], g(λ) [N] and its gradient A r − h [N, K−1]."""
    r = np.clip(-np.matmul(lam[:, None, :], A)[:, 0], lo, hi)
    slack = np.matmul(A, r[:, :, None])[:, :, 0] - h
    return r, 0.5 * np.einsum("ij,ij->i", r, r) + np.einsum("ij,ij->i", lam, slack), slack


def _maximise_dual(
    A: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray, lam: np.ndarray, cap: float
) -> np.ndarray:
    """λ in [0, cap] maximising Σ_rows g(λ_row) (the rows are independent) with L-BFGS-B."""
    shape = lam.shape

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        _, value, slack = _dual(A, h, lo, hi, flat.reshape(shape))
        return -value.sum(), -slack.ravel()

    out = minimize(
        objective,
        lam.ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, cap)] * lam.size,
        options={"maxiter": 20_000, "ftol": 1e-16, "gtol": 1e-13, "maxcor": 30},
    )
    return out.x.reshape(shape)


def _certify(
    A: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray, lam: np.ndarray, tol: float
) -> tuple[np.ndarray, ...]:
    """Per row: (r, ½|r|², g(λ), violation, status) with status 1 certified optimal,
    −1 certified infeasible (g(λ) above the largest ½|r|² in the box), 0 not certified.

    Optimal: every constraint met to tol times its scale |h_j| + Σ_i |A_ji|·max(|lo_i|, |hi_i|)
    (the size of its terms over the box, so the test does not depend on the logits' units)
    and |½|r|² − g(λ)| ≤ tol·½|r|² (weak duality: g(λ) ≤ the optimum)."""
    r, value, slack = _dual(A, h, lo, hi, lam)
    primal = 0.5 * np.einsum("ij,ij->i", r, r)
    violation = slack.max(1)
    reach = np.maximum(np.abs(lo), np.abs(hi))
    box_max = 0.5 * (reach**2).sum(1)
    scale = np.abs(h) + np.matmul(np.abs(A), reach[:, :, None])[:, :, 0]
    feasible = (slack <= tol * scale).all(1)
    gap_ok = np.abs(primal - value) <= tol * primal
    status = np.where(value > box_max * (1 + tol), -1, np.where(feasible & gap_ok, 1, 0))
    return r, primal, value, violation, status


def _solve(A: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> tuple[np.ndarray, ...]:
    """All rows together first, then each uncertified row on its own with a growing cap on λ."""
    lam = _maximise_dual(A, h, lo, hi, np.zeros(h.shape), cap=1e6)
    r, primal, value, violation, status = _certify(A, h, lo, hi, lam, tol)
    for i in np.flatnonzero(status == 0):
        one = (A[i : i + 1], h[i : i + 1], lo[i : i + 1], hi[i : i + 1])
        for cap in (1e6, 1e9, 1e12):
            lam[i : i + 1] = _maximise_dual(*one, lam[i : i + 1], cap=cap)
            result = _certify(*one, lam[i : i + 1], tol)
            if result[4][0] != 0:
                break
        else:
            raise NotCertifiedError(
                f"the dual did not certify row {i} (gap {result[1][0] - result[2][0]:.3g}, "
                f"constraint violation {result[3][0]:.3g}); refusing to return it"
            )
        r[i], primal[i], value[i], violation[i], status[i] = (part[0] for part in result)
    return r, primal, value, violation, status, lam


def _check_margin(margin: float | torch.Tensor, rows: int) -> np.ndarray:
    """``margin`` (a number or a tensor [rows]) as float64 [rows], each finite and ≥ 0."""
    if isinstance(margin, torch.Tensor):
        if margin.shape not in ((), (rows,)):
            raise ValueError(f"margin must be a number or a tensor of shape ({rows},), got {tuple(margin.shape)}")
        values = np.broadcast_to(margin.detach().to("cpu", torch.float64).numpy(), (rows,))
    else:
        check_positive("margin", margin, allow_zero=True)
        values = np.full(rows, float(margin))
    if not np.all(np.isfinite(values) & (values >= 0)):
        raise ValueError(f"margin must be finite and >= 0, got {margin!r}")
    return values


def linear_min_perturbation(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float | torch.Tensor = 0.0,
    tol: float = 1e-7,
) -> ExactResult:
    """The smallest r (in |r|₂) with x + r in [0, 1]^n on which ``target`` beats every other
    logit of W(x + r) + b by at least ``margin``: one convex QP per row (see the module doc).

    weight [K, n], bias [K]; x [N, ...] images in [0, 1] with n pixels; target [N] labels;
    ``margin`` ≥ 0 in logits, one for all rows or a tensor [N] (``attack.success_margin``).
    ``tol``: relative duality gap and feasibility (relative to each constraint's scale, so the
    same for W, b scaled by any factor) certified for every row; a NotCertifiedError (a RuntimeError) if the solver
    cannot certify a row, or if a distortion came out below its certified lower bound.
    Distortions are sqrt(|r|² / n).

    Used in chapters 3b (book/03b_minimum_distortion.md) and
    7a (book/07a_attacks_and_linearity.md).
    """
    check_images("x", x)
    if len(x) == 0:
        raise ValueError("x is empty: give at least one image")
    if weight.dim() != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(f"weight must be [K, n] and bias [K], got {tuple(weight.shape)} and {tuple(bias.shape)}")
    k, n = weight.shape
    if x[0].numel() != n:
        raise ValueError(f"x has {x[0].numel()} pixels per image, the weights expect {n}")
    target = check_labels("target", target, len(x), k).cpu()
    margins = _check_margin(margin, len(x))
    check_positive("tol", tol)
    W = weight.detach().to("cpu", torch.float64).numpy()
    b = bias.detach().to("cpu", torch.float64).numpy()
    xs = x.detach().to("cpu", torch.float64).flatten(1).numpy()
    t = target.numpy()
    others = other_labels(target, k).numpy()  # [N, K−1]: every label but the target
    A = W[others] - W[t][:, None, :]  # [N, K−1, n]: rows w_j − w_l
    h = -(np.matmul(A, xs[:, :, None])[:, :, 0] + b[others] - b[t][:, None] + margins[:, None])
    norms = np.linalg.norm(A, axis=2)  # each constraint divided by |w_j − w_l|: the same set,
    norms = np.where(norms > 0, norms, 1.0)  # and multipliers of one size whatever the logits' units
    r, primal, value, _, status, lam = _solve(A / norms[:, :, None], h / norms, -xs, 1 - xs, tol)
    if np.any((status == 1) & (primal < value * (1 - 10 * tol))):
        raise NotCertifiedError("a distortion came out below its certified lower bound; refusing to return it")
    lam = lam / norms
    violation = (np.matmul(A, r[:, :, None])[:, :, 0] - h).max(1)
    infeasible = status == -1
    r[infeasible] = 0.0
    distortion = np.where(infeasible, np.inf, np.sqrt(2 * primal / n))
    return ExactResult(
        r=torch.from_numpy(r),
        distortion=torch.from_numpy(distortion),
        lower_bound=torch.from_numpy(np.sqrt(2 * np.maximum(value, 0) / n)),
        violation=torch.from_numpy(np.where(infeasible, np.inf, violation)),
        multipliers=torch.from_numpy(lam),
    )


def _no_images(
    weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor, margin: float | torch.Tensor, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``exact_min_distortion``'s answer for x with no images, [0, K] and [0] (float64), after
    the checks a non-empty x gets (pixels per image, labels, margin, tol)."""
    pixels = math.prod(x.shape[1:])
    if pixels != weight.shape[1]:
        raise ValueError(f"x has {pixels} pixels per image, the weights expect {weight.shape[1]}")
    check_labels("y", y, 0, len(weight))
    _check_margin(margin, 0)
    check_positive("tol", tol)
    return torch.empty(0, len(weight), dtype=torch.float64), torch.empty(0, dtype=torch.float64)


def exact_min_distortion(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, margin: float = 0.0, tol: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor]:
    """For an FC10 model: the exact distortion of D(x, l) for every image and label l, [N, K]
    (column y is NaN: not a target; inf where l cannot win in the box), and the minimum over
    l ≠ y per image [N] (the exact value of Table 1's last column for these images; 0 where
    the model already misclassifies x). Refuses (ValueError) a model whose output on x is not
    W·x + b of its one ``nn.Linear`` (``check_linear_on``). N = 0 images give ([0, K], [0]).

    Used in chapters 3b (book/03b_minimum_distortion.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    weight, bias = linear_weights(model)
    k = len(weight)
    if len(check_images("x", x)) == 0:
        return _no_images(weight, x, y, margin, tol)
    check_linear_on(model, x, weight, bias)
    y = check_labels("y", y, len(x), k).cpu()
    image, target = every_other_label(y, k)
    result = linear_min_perturbation(weight, bias, x[image], target, margin=margin, tol=tol)
    per_target = torch.full((len(x), k), float("nan"), dtype=torch.float64)
    per_target[image, target] = result.distortion
    return per_target, result.distortion.view(len(x), k - 1).min(1).values


@dataclass
class BoxQPResult:
    """``box_qp``'s answer, one row per problem.

    r           [N, n] r(λ) = clip(−Aᵀλ, lo, hi) at the best multipliers found
    violation   [N] max_j (A r − h)_j (−inf when there is no constraint, k = 0)
    status      [N] int8: 1 certified optimal (every constraint met to ``tol`` times its scale
                and relative duality gap ≤ ``tol``); −1 certified infeasible (the dual value
                exceeds the largest ½|r|² in the box: no point of the box meets A r ≤ h);
                0 not certified: r is then only the best point found, not the minimiser
    lower_bound [N] g(λ), a certified lower bound on the optimal ½|r|² (weak duality)
    """

    r: torch.Tensor
    violation: torch.Tensor
    status: torch.Tensor
    lower_bound: torch.Tensor

    @property
    def certified(self) -> torch.Tensor:
        """[N] bool: the row's answer (optimal or infeasible) is certified."""
        return self.status != 0


def _box_dual(
    A: torch.Tensor, h: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched torch version of ``_dual``: r(λ) [N, n], g(λ) [N], slack A r − h [N, k] and the
    free pixels (not clipped by the box) [N, n] bool."""
    unclipped = -torch.bmm(lam.unsqueeze(1), A).squeeze(1)
    r = torch.minimum(torch.maximum(unclipped, lo), hi)
    slack = torch.bmm(A, r.unsqueeze(2)).squeeze(2) - h
    value = 0.5 * r.pow(2).sum(1) + (lam * slack).sum(1)
    return r, value, slack, (unclipped > lo) & (unclipped < hi)


def _box_scales(
    A: torch.Tensor, h: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the scale s_j = |h_j| + Σ_i |A_ji|·max(|lo_i|, |hi_i|) of constraint j's terms
    over the box [N, k], and the largest ½|r|² in the box [N]."""
    reach = torch.maximum(lo.abs(), hi.abs())
    return h.abs() + torch.bmm(A.abs(), reach.unsqueeze(2)).squeeze(2), 0.5 * reach.pow(2).sum(1)


def _box_measures(
    scales: tuple[torch.Tensor, ...], lam: torch.Tensor, state: tuple[torch.Tensor, ...], tol: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: (status, residual, noise) at λ.

    status: 1 certified optimal, −1 certified infeasible, 0 neither (see ``BoxQPResult``).
    Feasible: (A r − h)_j ≤ tol·s_j (``_box_scales``: scaling A and h together changes
    nothing). Optimal:
    feasible and the duality gap ½|r|² − g(λ) = −λᵀ(A r − h) at most tol·½|r|² in size.
    Infeasible: g(λ) above max over the box of ½|r|² (then every r of the box has
    λᵀ(A r − h) > 0). residual: the larger of the relative infeasibility and the relative gap
    (what the certificate needs below tol). noise: the rounding error of g(λ)."""
    r, value, slack, _ = state
    scale, box_max = scales
    tiny, eps = torch.finfo(r.dtype).tiny, torch.finfo(r.dtype).eps
    infeasibility = (slack / scale.clamp_min(tiny)).amax(1).clamp_min(0)
    primal = 0.5 * r.pow(2).sum(1)
    gap = (lam * slack).sum(1).abs() / primal.clamp_min(tiny)
    optimal = (slack <= tol * scale).all(1) & (gap <= tol)
    infeasible = value > box_max * (1 + max(tol, 100 * eps)) + tiny
    status = torch.where(infeasible, -1, torch.where(optimal, 1, 0)).to(torch.int8)
    noise = 16 * eps * (primal + (lam * scale).sum(1))
    return status, torch.maximum(infeasibility, gap), noise


def _dual_hessian(A: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """A_F A_Fᵀ [N, k, k] (F the free pixels [N, n]): minus the dual's Hessian."""
    return torch.bmm(A * free.unsqueeze(1).to(A.dtype), A.transpose(1, 2))


def _damped_step(H: torch.Tensor, slack: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The projected Newton direction of the dual, damped (Levenberg–Marquardt) by ``mu`` [N];
    H = A_F A_Fᵀ (``_dual_hessian``).

    Multipliers at 0 whose gradient points below 0 are held (Bertsekas 1982), and so is any
    other at 0 that the step would push below 0 (recomputed: the step on the remaining face).
    The others solve (A_F A_Fᵀ + μ I) d = A r − h: a Newton step for small μ, a gradient step
    of length 1/μ for large μ. Nearly parallel rows make A_F A_Fᵀ nearly singular; μ keeps the
    step finite."""
    k = H.shape[1]
    eye = torch.eye(k, dtype=H.dtype, device=H.device)
    held = (lam <= 0) & (slack <= 0)
    for _ in range(k):
        pair = (~held).unsqueeze(2) & (~held).unsqueeze(1)
        M = torch.where(pair, H, torch.zeros_like(H)) + eye * torch.where(held, 1.0, mu[:, None]).unsqueeze(2)
        d, info = torch.linalg.solve_ex(M, torch.where(held, torch.zeros_like(slack), slack))
        d = torch.where((info == 0)[:, None], d, torch.full_like(d, float("nan")))
        more = (lam <= 0) & (d < 0) & ~held
        if not bool(more.any()):
            break
        held = held | more
    return torch.where(held, torch.zeros_like(d), d)


DAMPING_TRIES = 8  # μ grows 100× per failed try: from 100·eps·L to past L, where ascent is assured


def _ascent(
    problem: tuple[torch.Tensor, ...],
    scales: tuple[torch.Tensor, ...],
    lam: torch.Tensor,
    state: tuple[torch.Tensor, ...],
    measures: tuple[torch.Tensor, ...],
    mu: torch.Tensor,
    lipschitz: torch.Tensor,
    tol: float,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """One step of the dual per row (``problem`` = (A, h, lo, hi)): the damped Newton step for
    μ, 100 μ, 10⁴ μ, … (the first accepted; each retry only for the rows still without one),
    else a projected gradient step of length 1/L (L = |A|₂², the Lipschitz constant of the
    dual's gradient: it raises g unless λ is optimal). A step is accepted where it raises g, or
    where it keeps g within its rounding error and lowers the certificate's residual: near the
    optimum g is flat to second order while r(λ) still moves to first order, so comparing
    values of g alone stalls at a gap of about √eps. Returns (λ, state, measures, μ for the
    next step, moved [N] bool)."""
    moved = torch.zeros_like(mu, dtype=torch.bool)
    next_mu = mu.clone()
    H = _dual_hessian(problem[0], state[3])
    rows = torch.arange(len(mu), device=mu.device)  # the rows still without an accepted step
    trial_mu = mu
    for attempt in range(DAMPING_TRIES + 1):
        pick = (lambda t: t[rows]) if attempt else (lambda t: t)
        sub_lam, slack = pick(lam), pick(state[2])
        if attempt < DAMPING_TRIES:
            step = _damped_step(pick(H), slack, sub_lam, trial_mu)
        else:  # the fallback: projected gradient ascent, assured to rise
            step = slack / pick(lipschitz)[:, None]
        trial = (sub_lam + step).clamp_min(0)
        new = _box_dual(*(pick(t) for t in problem), trial)  # type: ignore[call-arg]
        new_measures = _box_measures(tuple(pick(t) for t in scales), trial, new, tol)
        value, (_, residual, noise) = pick(state[1]), (pick(t) for t in measures)
        ok = (new[1] > value) | ((new[1] >= value - noise) & (new_measures[1] < residual))
        took = rows[ok]
        lam[took] = trial[ok]
        for old, n in zip(state + measures, new + new_measures):
            old[took] = n[ok]
        next_mu[took] = trial_mu[ok] / 10
        moved[took] = True
        rows, trial_mu = rows[~ok], trial_mu[~ok] * 100
        if len(rows) == 0:
            break
    floor = 100 * torch.finfo(lam.dtype).eps * lipschitz
    return lam, state, measures, torch.maximum(next_mu, floor), moved


def _check_box_qp(A: Any, h: Any, lo: Any, hi: Any, iterations: Any) -> None:
    """Shapes, dtypes and the box of ``box_qp``'s problem, each error naming the argument."""
    for name, t in (("A", A), ("h", h), ("lo", lo), ("hi", hi)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise ArgumentTypeError(f"{name} must be a floating-point torch.Tensor, got {t!r:.80}")
    kinds = {(name, t.dtype, t.device) for name, t in (("A", A), ("h", h), ("lo", lo), ("hi", hi))}
    if len({(dtype, device) for _, dtype, device in kinds}) > 1:
        raise ValueError(
            "A, h, lo and hi must share one dtype and device, got "
            + ", ".join(f"{name}: {dtype} on {device}" for name, dtype, device in sorted(kinds))
        )
    if A.dim() != 3:
        raise ValueError(f"A must be [N, k, n], got shape {tuple(A.shape)}")
    n_rows, k, n = A.shape
    for name, t, shape in (("h", h, (n_rows, k)), ("lo", lo, (n_rows, n)), ("hi", hi, (n_rows, n))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} to match A {tuple(A.shape)}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(A).all() & torch.isfinite(h).all()):
        raise ValueError("A and h must be finite (no NaN or inf)")
    if bool((lo > hi).any()) or bool(torch.isnan(lo).any() | torch.isnan(hi).any()):
        raise ValueError("lo must be <= hi everywhere (and not NaN)")
    if not bool(torch.isfinite(lo).all() & torch.isfinite(hi).all()):
        raise ValueError("lo and hi must be finite (a bounded box)")
    check_int("iterations", iterations)


def _unconstrained_box_qp(A: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> BoxQPResult:
    """``box_qp`` without constraints (A [N, 0, n]): the point of each box closest to 0, optimal."""
    r = torch.minimum(torch.maximum(torch.zeros_like(lo), lo), hi)
    rows = len(A)
    slack = torch.full((rows,), -math.inf, dtype=A.dtype, device=A.device)
    return BoxQPResult(r, slack, torch.ones(rows, dtype=torch.int8, device=A.device), 0.5 * r.pow(2).sum(1))


def box_qp(
    A: torch.Tensor,
    h: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    *,
    iterations: int = 100,
    tol: float | None = None,
) -> BoxQPResult:
    """min ½|r|² subject to A r ≤ h and lo ≤ r ≤ hi, for a batch of problems at once, in torch
    (any device, no host loop over problems).

    A [N, k, n] (k small: the K − 1 competing classes; k = 0 is the box alone), h [N, k],
    lo ≤ hi [N, n], all of one dtype and device. Maximises the same dual as
    ``linear_min_perturbation`` by projected Newton steps damped as needed (Levenberg–Marquardt),
    with a projected gradient step as the fallback that always ascends. A row stops as soon as
    its answer is certified (``BoxQPResult.status``: feasible to ``tol`` relative to each
    constraint's scale and a relative duality gap ≤ ``tol``, or infeasible by the dual value);
    default tol 1e-10 in float64, 1e-4 otherwise. Rows not certified after ``iterations`` steps
    (or where no step raises the dual any more, at the rounding level) have status 0: their r is
    then the best point found, not the minimiser. ``lbfgs_attack`` uses it on the model's local
    linearisation and checks every point it returns with the model itself.
    """
    _check_box_qp(A, h, lo, hi, iterations)
    if tol is None:
        tol = 1e-10 if A.dtype == torch.float64 else 1e-4
    check_positive("tol", tol)
    if A.shape[1] == 0:  # no constraint: the point of the box closest to 0
        return _unconstrained_box_qp(A, lo, hi)
    lam = torch.zeros_like(h)
    state: tuple[torch.Tensor, ...] = _box_dual(A, h, lo, hi, lam)
    scales = _box_scales(A, h, lo, hi)
    measures: tuple[torch.Tensor, ...] = _box_measures(scales, lam, state, tol)
    lipschitz = torch.linalg.eigvalsh(torch.bmm(A, A.transpose(1, 2)))[:, -1].clamp_min(torch.finfo(A.dtype).tiny)
    mu = 100 * torch.finfo(A.dtype).eps * lipschitz
    stuck = torch.zeros_like(h[:, 0], dtype=torch.bool)  # no step accepted: the rounding level
    for _ in range(iterations):
        todo = ((measures[0] == 0) & ~stuck).nonzero().squeeze(1)
        if len(todo) == 0:
            break
        every = len(todo) == len(h)  # work on the unfinished rows only (most finish in a few steps)
        pick = (lambda t: t) if every else (lambda t: t[todo])
        lam_t, state_t, measures_t, mu_t, moved = _ascent(
            tuple(pick(t) for t in (A, h, lo, hi)),
            tuple(pick(t) for t in scales),
            pick(lam),
            tuple(pick(t) for t in state),
            tuple(pick(t) for t in measures),
            pick(mu),
            pick(lipschitz),
            tol,
        )
        lam, mu = lam.index_copy(0, todo, lam_t), mu.index_copy(0, todo, mu_t)
        stuck = stuck.index_copy(0, todo, ~moved)
        state = tuple(t.index_copy(0, todo, new) for t, new in zip(state, state_t))
        measures = tuple(t.index_copy(0, todo, new) for t, new in zip(measures, measures_t))
    status = measures[0]
    r, value, slack, _ = state
    return BoxQPResult(r, slack.amax(1), status, value)
